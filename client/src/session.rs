//! The client side of the signalling protocol, sans-IO: server messages in, client
//! messages and events out. It answers the server's offers and applies its answers on
//! the [`ClientPeer`] it owns. [`crate::Connection`] drives it over real sockets; the
//! benchmark's synthetic peers drive many of them from one event loop.

use std::collections::VecDeque;
use std::net::SocketAddr;

use protocol::{Allowed, ClientMessage, PeerInfo, ServerMessage, TrackInfo};
use str0m::change::{SdpAnswer, SdpOffer};

use crate::error::ClientError;
use crate::peer::{ClientPeer, LocalTrack, PeerEvent};

/// What a session reports.
#[derive(Debug)]
pub enum SessionEvent {
    /// A message from the server (after the session has acted on offers/answers).
    Server(ServerMessage),
    /// Something happened to the media peer.
    Peer(PeerEvent),
    /// The WebSocket closed.
    Closed,
}

/// One client's protocol state. See the module docs.
pub struct Session {
    peer: ClientPeer,
    /// Our peer id, once joined.
    pub peer_id: String,
    /// The token that resumes this session.
    pub token: String,
    /// Other members, as the server last told us.
    pub peers: Vec<PeerInfo>,
    /// Tracks published in the room, as the server last told us.
    pub tracks: Vec<TrackInfo>,
    /// The media address in the server's answer (its ICE candidate): the shard we landed on.
    pub server_media: Option<SocketAddr>,
    /// In a cluster, where the other nodes are (to go on there if ours dies).
    pub nodes: Vec<String>,
    /// Our nickname in the room (an access token may fix it), and what we may do there.
    pub nickname: String,
    pub allowed: Allowed,
    outgoing: VecDeque<ClientMessage>,
    events: VecDeque<SessionEvent>,
}

impl Session {
    /// A session around a media peer.
    pub fn new(peer: ClientPeer) -> Self {
        Self {
            peer,
            peer_id: String::new(),
            token: String::new(),
            peers: Vec::new(),
            tracks: Vec::new(),
            server_media: None,
            nodes: Vec::new(),
            nickname: String::new(),
            allowed: Allowed::default(),
            outgoing: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The media peer.
    pub fn peer(&mut self) -> &mut ClientPeer {
        &mut self.peer
    }

    /// Queues the first offer, publishing `tracks` (possibly none).
    pub fn start_media(&mut self, tracks: &[LocalTrack]) -> Result<(), ClientError> {
        let offer = self
            .peer
            .create_offer(tracks)
            .map_err(|e| ClientError::Media(e.to_string()))?;
        self.outgoing.push_back(ClientMessage::Offer {
            sdp: offer.to_sdp_string(),
        });
        Ok(())
    }

    /// Queues any message.
    pub fn send(&mut self, msg: ClientMessage) {
        self.outgoing.push_back(msg);
    }

    /// The next message to send to the server.
    pub fn poll_outgoing(&mut self) -> Option<ClientMessage> {
        self.outgoing.pop_front()
    }

    /// Reports something that happened outside the protocol (media events, the socket closing).
    pub fn push_event(&mut self, e: SessionEvent) {
        self.events.push_back(e);
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Acts on a message from the server (answers offers, applies answers, keeps the
    /// room's members and tracks), then reports it as an event.
    pub fn handle_server_message(&mut self, msg: ServerMessage) -> Result<(), ClientError> {
        match &msg {
            ServerMessage::Joined {
                peer_id,
                token,
                peers,
                tracks,
                nodes,
                nickname,
                allowed,
                ..
            } => {
                self.nodes = nodes.clone();
                self.nickname = nickname.clone();
                self.allowed = allowed.clone();
                self.peer_id = peer_id.clone();
                self.token = token.clone();
                self.peers = peers.clone();
                self.tracks = tracks.clone();
            }
            ServerMessage::PeerJoined { peer } => self.peers.push(peer.clone()),
            ServerMessage::PeerLeft { peer_id } => self.peers.retain(|p| p.peer_id != *peer_id),
            ServerMessage::TrackPublished { track } => self.tracks.push(track.clone()),
            ServerMessage::TrackUnpublished { peer_id, track } => {
                self.tracks
                    .retain(|t| !(t.peer_id == *peer_id && t.track == *track));
            }
            ServerMessage::Answer { sdp } => {
                self.server_media = candidate_addr(sdp);
                let answer = SdpAnswer::from_sdp_string(sdp)
                    .map_err(|e| ClientError::Media(e.to_string()))?;
                self.peer
                    .accept_answer(answer)
                    .map_err(|e| ClientError::Media(e.to_string()))?;
            }
            ServerMessage::Offer { sdp } => {
                let offer = SdpOffer::from_sdp_string(sdp)
                    .map_err(|e| ClientError::Media(e.to_string()))?;
                let answer = self
                    .peer
                    .accept_offer(offer)
                    .map_err(|e| ClientError::Media(e.to_string()))?;
                self.outgoing.push_back(ClientMessage::Answer {
                    sdp: answer.to_sdp_string(),
                });
            }
            _ => {}
        }
        self.events.push_back(SessionEvent::Server(msg));
        Ok(())
    }
}

/// The address of the first UDP host candidate in an SDP.
fn candidate_addr(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|l| {
        let c = l.strip_prefix("a=candidate:")?;
        let f: Vec<&str> = c.split_whitespace().collect();
        // foundation component transport priority address port typ …
        if f.len() < 6 || !f[2].eq_ignore_ascii_case("udp") {
            return None;
        }
        let ip: std::net::IpAddr = f[4].parse().ok()?;
        let port: u16 = f[5].parse().ok()?;
        Some(SocketAddr::new(ip, port))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_udp_host_candidate() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50001 typ host\r\n";
        assert_eq!(
            candidate_addr(sdp),
            Some("127.0.0.1:50001".parse().unwrap())
        );
        let v6 = "a=candidate:1 1 UDP 1 ::1 9 typ host\r\n";
        assert_eq!(candidate_addr(v6), Some("[::1]:9".parse().unwrap()));
        assert_eq!(
            candidate_addr("a=candidate:1 1 tcp 1 1.2.3.4 9 typ host"),
            None
        );
    }
}
