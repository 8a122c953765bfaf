//! A client on the virtual network, and the project's own client as one.

use std::net::SocketAddr;
use std::time::Instant;

use client::{ClientPeer, LocalTrack, PeerEvent, ReceivedRtp};
use engine::msg::ShardId;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid};

use crate::net::Net;

/// What [`crate::Net`] needs of a client peer: a sans-IO WebRTC endpoint at one address.
/// A client's own failures panic (the test is broken); what the shard sends it is the
/// subject of the test.
pub trait Endpoint {
    /// Its UDP address.
    fn addr(&self) -> SocketAddr;
    /// The next datagram it sends.
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)>;
    /// A datagram arrived.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]);
    /// When [`Endpoint::handle_timeout`] is next due.
    fn poll_timeout(&self) -> Instant;
    /// Time has reached `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// The server's answer to the client's first offer.
    fn accept_answer(&mut self, answer: SdpAnswer);
    /// Answers an offer of the server's; `None` if the client cannot.
    fn accept_offer(&mut self, offer: SdpOffer) -> Option<SdpAnswer>;
    /// ICE and DTLS are up.
    fn is_connected(&self) -> bool;
}

/// The project's client (`client::ClientPeer`) with what it received.
pub struct TestClient {
    /// The peer.
    pub peer: ClientPeer,
    /// Its address.
    pub addr: SocketAddr,
    /// Every RTP packet received, in order.
    pub received: Vec<ReceivedRtp>,
    /// Keyframe requests received from the server.
    pub keyframe_requests: usize,
    /// The data channel is open, and the text messages the server sent on it.
    pub channel_open: bool,
    pub channel_texts: Vec<String>,
}

impl TestClient {
    /// A client at `addr`.
    pub fn new(now: Instant, addr: SocketAddr) -> Self {
        Self {
            peer: ClientPeer::new(now, addr),
            addr,
            received: Vec::new(),
            keyframe_requests: 0,
            channel_open: false,
            channel_texts: Vec::new(),
        }
    }

    fn take_events(&mut self) {
        while let Some(e) = self.peer.poll_event() {
            match e {
                PeerEvent::Rtp(p) => self.received.push(p),
                PeerEvent::KeyframeRequest { .. } => self.keyframe_requests += 1,
                PeerEvent::ChannelOpen => self.channel_open = true,
                PeerEvent::ChannelText(t) => self.channel_texts.push(t),
                _ => {}
            }
        }
    }
}

impl Endpoint for TestClient {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.peer.poll_transmit()
    }

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.peer
            .handle_datagram(now, from, data)
            .expect("the client takes the datagram");
        self.take_events();
    }

    fn poll_timeout(&self) -> Instant {
        self.peer.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.peer.handle_timeout(now).expect("the client's timeout");
        self.take_events();
    }

    fn accept_answer(&mut self, answer: SdpAnswer) {
        self.peer
            .accept_answer(answer)
            .expect("the client takes the answer");
    }

    fn accept_offer(&mut self, offer: SdpOffer) -> Option<SdpAnswer> {
        Some(
            self.peer
                .accept_offer(offer)
                .expect("the client answers the offer"),
        )
    }

    fn is_connected(&self) -> bool {
        self.peer.is_connected()
    }
}

impl Net<TestClient> {
    /// A client joins on `shard`, publishing `tracks` in its first offer. Returns its index.
    pub fn join(&mut self, shard: ShardId, tracks: &[LocalTrack]) -> usize {
        let addr = Self::client_addr(self.clients.len());
        let mut client = TestClient::new(self.now, addr);
        let offer = client
            .peer
            .create_offer(tracks)
            .expect("the client makes an offer");
        self.add(shard, client, &offer)
    }

    /// Client `client` sends one RTP packet on its m-line for `stream_id`/`track_id`.
    pub fn send(
        &mut self,
        client: usize,
        stream_id: &str,
        track_id: &str,
        codec: Codec,
        seq: u32,
        payload: &[u8],
    ) {
        let now = self.now;
        let c = &mut self.clients[client];
        let mid: Mid = c
            .peer
            .mid_of(stream_id, track_id)
            .expect("a sending m-line");
        c.peer
            .send_rtp(now, mid, codec, seq * 3000, true, payload)
            .expect("the client sends");
    }
}

/// A video track of stream `stream` (track id `<stream>-video`).
pub fn video(stream: &str) -> LocalTrack {
    LocalTrack {
        stream_id: stream.into(),
        track_id: format!("{stream}-video"),
        kind: MediaKind::Video,
    }
}

/// An audio track of stream `stream` (track id `<stream>-audio`).
pub fn audio(stream: &str) -> LocalTrack {
    LocalTrack {
        stream_id: stream.into(),
        track_id: format!("{stream}-audio"),
        kind: MediaKind::Audio,
    }
}
