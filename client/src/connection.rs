//! A client connected to a server for real: a WebSocket for signalling, a UDP socket
//! for media, and a [`ClientPeer`] between them. It answers the server's offers by
//! itself and reports what happens as [`SessionEvent`]s.
//!
//! It is driven by calling [`Connection::poll`]; nothing runs in the background.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use protocol::{ClientMessage, ErrorCode, PeerInfo, ServerMessage, TrackInfo, TrackRef};
use str0m::change::{SdpAnswer, SdpOffer};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::peer::{ClientPeer, LocalTrack, PeerEvent};

/// What a connection reports.
#[derive(Debug)]
pub enum SessionEvent {
    /// A message from the server (after the connection has acted on offers/answers).
    Server(ServerMessage),
    /// Something happened to the media peer.
    Peer(PeerEvent),
    /// The WebSocket closed.
    Closed,
}

/// Why a connection failed.
#[derive(Debug)]
pub enum ClientError {
    /// The server could not be reached or the socket failed.
    Io(io::Error),
    /// The WebSocket failed.
    WebSocket(tungstenite::Error),
    /// The server refused a request.
    Refused(ErrorCode, String),
    /// The server did not answer in time.
    Timeout(&'static str),
    /// The media session failed.
    Media(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::WebSocket(e) => write!(f, "websocket: {e}"),
            ClientError::Refused(code, reason) => write!(f, "refused ({code:?}): {reason}"),
            ClientError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            ClientError::Media(e) => write!(f, "media: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<tungstenite::Error> for ClientError {
    fn from(e: tungstenite::Error) -> Self {
        ClientError::WebSocket(e)
    }
}

/// How long connecting and joining may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A signalling + media connection. See the module docs.
pub struct Connection {
    server: SocketAddr,
    ws: Option<WebSocket<MaybeTlsStream<TcpStream>>>,
    udp: UdpSocket,
    peer: ClientPeer,
    room: String,
    nickname: String,
    /// Our peer id, once joined.
    pub peer_id: String,
    token: String,
    /// Other members, as the server last told us.
    pub peers: Vec<PeerInfo>,
    /// Tracks published in the room, as the server last told us.
    pub tracks: Vec<TrackInfo>,
    events: VecDeque<SessionEvent>,
    buf: Vec<u8>,
    /// The media address in the server's answer (its ICE candidate).
    server_media: Option<SocketAddr>,
}

impl Connection {
    /// Connects to the server at `server` (its HTTP address), joins `room` as
    /// `nickname`, and binds a UDP socket on `media_ip` for media.
    pub fn join(
        server: SocketAddr,
        room: &str,
        nickname: &str,
        media_ip: std::net::IpAddr,
    ) -> Result<Self, ClientError> {
        let udp = UdpSocket::bind(SocketAddr::new(media_ip, 0))?;
        udp.set_nonblocking(true)?;
        let local = udp.local_addr()?;
        let mut c = Self {
            server,
            ws: None,
            udp,
            peer: ClientPeer::new(Instant::now(), local),
            room: room.to_string(),
            nickname: nickname.to_string(),
            peer_id: String::new(),
            token: String::new(),
            peers: Vec::new(),
            tracks: Vec::new(),
            events: VecDeque::new(),
            buf: vec![0; 2048],
            server_media: None,
        };
        c.open_and_join(None)?;
        Ok(c)
    }

    /// Opens a new WebSocket and resumes the session with its token, as a browser does
    /// after a network blip. Media keeps flowing meanwhile.
    pub fn reconnect(&mut self) -> Result<(), ClientError> {
        if let Some(mut ws) = self.ws.take() {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        let token = self.token.clone();
        self.open_and_join(Some(token))
    }

    /// Drops the WebSocket without a word (the session waits out its grace period).
    pub fn drop_websocket(&mut self) {
        self.ws = None;
    }

    fn open_and_join(&mut self, token: Option<String>) -> Result<(), ClientError> {
        let stream = TcpStream::connect_timeout(&self.server, JOIN_TIMEOUT)?;
        stream.set_nodelay(true)?;
        let url = format!("ws://{}/ws", self.server);
        let (ws, _) = tungstenite::client::client(url.as_str(), MaybeTlsStream::Plain(stream))
            .map_err(|e| ClientError::Io(io::Error::other(e.to_string())))?;
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_nonblocking(true)?;
        }
        self.ws = Some(ws);
        self.send(&ClientMessage::Join {
            room: self.room.clone(),
            nickname: self.nickname.clone(),
            token,
        })?;
        let deadline = Instant::now() + JOIN_TIMEOUT;
        loop {
            self.poll(Duration::from_millis(5))?;
            while let Some(e) = self.events.pop_front() {
                match e {
                    SessionEvent::Server(ServerMessage::Joined { .. }) => return Ok(()),
                    SessionEvent::Server(ServerMessage::Error { code, reason }) => {
                        return Err(ClientError::Refused(code, reason));
                    }
                    SessionEvent::Closed => {
                        return Err(ClientError::Timeout("joined (socket closed)"));
                    }
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                return Err(ClientError::Timeout("joined"));
            }
        }
    }

    /// Starts media: sends the first offer, publishing `tracks` (possibly none).
    pub fn start_media(&mut self, tracks: &[LocalTrack]) -> Result<(), ClientError> {
        let offer = self
            .peer
            .create_offer(tracks)
            .map_err(|e| ClientError::Media(e.to_string()))?;
        self.send(&ClientMessage::Offer {
            sdp: offer.to_sdp_string(),
        })
    }

    /// The server's media address for this client (from the ICE candidate of its
    /// answer): which shard the client landed on.
    pub fn server_media_addr(&self) -> Option<SocketAddr> {
        self.server_media
    }

    /// Sends any protocol message.
    pub fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let text = serde_json::to_string(msg).expect("client messages serialise");
        let Some(ws) = self.ws.as_mut() else {
            return Err(ClientError::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "no websocket",
            )));
        };
        match ws.send(Message::text(text)) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Asks to receive these tracks.
    pub fn subscribe(&mut self, tracks: Vec<TrackRef>) -> Result<(), ClientError> {
        self.send(&ClientMessage::Subscribe { tracks })
    }

    /// The media peer, to send RTP or look up m-lines.
    pub fn peer(&mut self) -> &mut ClientPeer {
        &mut self.peer
    }

    /// The next event.
    pub fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Does all pending work, waiting up to `wait` for something to arrive.
    pub fn poll(&mut self, wait: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + wait;
        loop {
            let mut busy = self.read_ws()?;
            busy |= self.read_udp()?;
            let now = Instant::now();
            self.peer
                .handle_timeout(now)
                .map_err(|e| ClientError::Media(e.to_string()))?;
            self.flush_udp()?;
            while let Some(e) = self.peer.poll_event() {
                self.events.push_back(SessionEvent::Peer(e));
            }
            if let Some(ws) = self.ws.as_mut() {
                match ws.flush() {
                    Ok(()) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            if !busy {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }

    fn read_ws(&mut self) -> Result<bool, ClientError> {
        let mut busy = false;
        loop {
            let Some(ws) = self.ws.as_mut() else {
                return Ok(busy);
            };
            match ws.read() {
                Ok(Message::Text(text)) => {
                    busy = true;
                    let msg: ServerMessage = match serde_json::from_str(text.as_str()) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!("unparseable server message: {e}");
                            continue;
                        }
                    };
                    self.on_server_message(msg)?;
                }
                Ok(Message::Close(_))
                | Err(tungstenite::Error::ConnectionClosed)
                | Err(tungstenite::Error::AlreadyClosed) => {
                    self.ws = None;
                    self.events.push_back(SessionEvent::Closed);
                    return Ok(true);
                }
                Ok(_) => busy = true,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(busy);
                }
                Err(_) => {
                    self.ws = None;
                    self.events.push_back(SessionEvent::Closed);
                    return Ok(true);
                }
            }
        }
    }

    fn on_server_message(&mut self, msg: ServerMessage) -> Result<(), ClientError> {
        match &msg {
            ServerMessage::Joined {
                peer_id,
                token,
                peers,
                tracks,
                ..
            } => {
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
                self.send(&ClientMessage::Answer {
                    sdp: answer.to_sdp_string(),
                })?;
            }
            _ => {}
        }
        self.events.push_back(SessionEvent::Server(msg));
        Ok(())
    }

    fn read_udp(&mut self) -> Result<bool, ClientError> {
        let mut busy = false;
        loop {
            match self.udp.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    busy = true;
                    let now = Instant::now();
                    self.peer
                        .handle_datagram(now, from, &self.buf[..n])
                        .map_err(|e| ClientError::Media(e.to_string()))?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(busy),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush_udp(&mut self) -> Result<(), ClientError> {
        while let Some((to, data)) = self.peer.poll_transmit() {
            match self.udp.send_to(&data, to) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Polls until `done` returns true for an event (consumed) or `limit` passes.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&SessionEvent) -> bool,
    ) -> Result<bool, ClientError> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            self.poll(Duration::from_millis(2))?;
            while let Some(e) = self.events.pop_front() {
                if done(&e) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// The address of the first UDP host candidate in an SDP.
fn candidate_addr(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|l| {
        let c = l.strip_prefix("a=candidate:")?;
        let f: Vec<&str> = c.split_whitespace().collect();
        // foundation component transport priority address port typ ...
        if f.len() < 6 || !f[2].eq_ignore_ascii_case("udp") {
            return None;
        }
        format!("{}:{}", f[4], f[5])
            .parse()
            .ok()
            .or_else(|| format!("[{}]:{}", f[4], f[5]).parse().ok())
    })
}
