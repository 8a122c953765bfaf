//! One shard ([`ShardCore`](engine::shard::ShardCore), exactly as the engine drives it)
//! with two connected peers on the project's virtual network ([`testkit::Net`]): peer 0
//! is the hostile one, peer 1 a bystander. Each publishes video and audio and receives
//! the other's.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use engine::msg::{Control, Subscription};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::MediaKind;
use testkit::{Endpoint, Net};

use crate::peer::RawPeer;

pub use testkit::factory;

/// The hostile peer.
pub const HOSTILE: usize = 0;
/// The bystander.
pub const CALM: usize = 1;

/// See the module docs. It derefs to its [`Net`]: `w.clients[HOSTILE]`, `w.shards[0]`.
pub struct World {
    /// The network, its one shard and the two peers.
    pub net: Net<RawPeer>,
    /// A sequence number for forged packets (kept across inputs when a world is reused,
    /// so that str0m does not drop them as replays).
    pub next_seq: u16,
}

impl Deref for World {
    type Target = Net<RawPeer>;
    fn deref(&self) -> &Net<RawPeer> {
        &self.net
    }
}

impl DerefMut for World {
    fn deref_mut(&mut self) -> &mut Net<RawPeer> {
        &mut self.net
    }
}

impl Endpoint for RawPeer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        RawPeer::poll_transmit(self)
    }

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        RawPeer::handle_datagram(self, now, from, data);
    }

    fn poll_timeout(&self) -> Instant {
        RawPeer::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        RawPeer::handle_timeout(self, now);
    }

    fn accept_answer(&mut self, answer: SdpAnswer) {
        RawPeer::accept_answer(self, answer).expect("the peer takes the shard's answer");
    }

    fn accept_offer(&mut self, offer: SdpOffer) -> Option<SdpAnswer> {
        RawPeer::accept_offer(self, offer).ok()
    }

    fn is_connected(&self) -> bool {
        RawPeer::is_connected(self)
    }
}

impl World {
    /// Two peers connected, publishing, and subscribed to each other; a few packets sent
    /// each way. `None` if that did not happen in 10 virtual seconds.
    pub fn connected() -> Option<World> {
        Self::connected_tapped(false)
    }

    /// [`World::connected`], with the wiretap on from the start when `tap`.
    pub fn connected_tapped(tap: bool) -> Option<World> {
        let mut w = World {
            net: Net::new(1),
            next_seq: 1000,
        };
        if tap {
            w.wiretap = Some(Vec::new());
        }
        for (i, name) in ["hostile", "calm"].iter().enumerate() {
            let mut peer = RawPeer::new(w.now, Net::<RawPeer>::client_addr(i));
            let video = format!("{name}-video");
            let audio = format!("{name}-audio");
            let offer = peer.offer(&[
                (MediaKind::Video, name, &video),
                (MediaKind::Audio, name, &audio),
            ]);
            w.add(0, peer, &offer);
        }
        if !w.run_until(Duration::from_secs(10), |w| {
            w.clients.iter().all(|c| c.is_connected()) && w.published.len() == 4
        }) {
            return None;
        }
        for (me, other) in [(HOSTILE, CALM), (CALM, HOSTILE)] {
            let tracks = w
                .published
                .iter()
                .filter(|p| p.peer == w.clients[other].id)
                .map(|p| Subscription {
                    track: p.track,
                    name: p.name.clone(),
                })
                .collect();
            let peer = w.clients[me].id;
            w.control(0, Control::Subscribe { peer, tracks });
        }
        if !w.run_until(Duration::from_secs(10), |w| w.subscriptions() == 4) {
            return None;
        }
        for seq in 1..=3 {
            for i in [HOSTILE, CALM] {
                w.send_media(i, seq);
            }
            w.step(Duration::from_millis(20));
        }
        w.run_for(Duration::from_millis(100));
        Some(w)
    }

    /// Peer `i` sends one ordinary video and one audio packet.
    pub fn send_media(&mut self, i: usize, seq: u64) {
        let name = if i == HOSTILE { "hostile" } else { "calm" };
        let now = self.now;
        let p = &mut self.clients[i];
        let mut payload = vec![0u8; 100];
        // Each video packet opens a keyframe, so a new subscriber starts at any of them.
        payload[..4].copy_from_slice(&testkit::KEYFRAME_START);
        payload[4..12].copy_from_slice(&seq.to_be_bytes());
        if let Some(mid) = p.mid_of(&format!("{name}-video")) {
            p.send_rtp(now, mid, Codec::Vp8, seq, &payload);
        }
        if let Some(mid) = p.mid_of(&format!("{name}-audio")) {
            p.send_rtp(now, mid, Codec::Opus, seq, &payload[..40]);
        }
    }

    /// The address of peer `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.clients[i].addr
    }

    /// A datagram reaches the shard from `source` at once, as the I/O loop delivers it.
    pub fn deliver(&mut self, source: SocketAddr, data: &[u8]) {
        let now = self.now;
        self.shards[0].handle_datagram(now, source, data);
    }
}
