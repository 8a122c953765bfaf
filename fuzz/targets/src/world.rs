//! One shard ([`ShardCore`], exactly as the engine drives it) with two connected peers
//! over an in-memory network and a virtual clock: peer 0 is the hostile one, peer 1 a
//! bystander. Each publishes video and audio and receives the other's.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use engine::factory::PeerFactory;
use engine::msg::{Control, Notice, PeerId, Subscription, TrackId, TrackName};
use engine::shard::ShardCore;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::MediaKind;

use crate::peer::RawPeer;

/// The hostile peer.
pub const HOSTILE: usize = 0;
/// The bystander.
pub const CALM: usize = 1;

/// The process's one peer factory (generating its certificate costs milliseconds).
pub fn factory() -> &'static PeerFactory {
    static FACTORY: OnceLock<PeerFactory> = OnceLock::new();
    FACTORY.get_or_init(PeerFactory::new)
}

/// See the module docs.
pub struct World {
    /// The virtual clock.
    pub now: Instant,
    /// The shard under test.
    pub shard: ShardCore,
    /// Its address.
    pub shard_addr: SocketAddr,
    /// [`HOSTILE`] and [`CALM`].
    pub peers: Vec<RawPeer>,
    /// Their peer ids.
    pub ids: Vec<PeerId>,
    /// Published tracks.
    pub published: Vec<(PeerId, TrackId, TrackName)>,
    /// Peers the shard dropped.
    pub gone: Vec<PeerId>,
    /// Subscriptions that became active.
    pub subscribed: usize,
    /// A sequence number for forged packets (kept across inputs when a world is reused,
    /// so that str0m does not drop them as replays).
    pub next_seq: u16,
    /// When set, every datagram on the in-memory network is copied here: `(from, to, bytes)`.
    pub wiretap: Option<Vec<(SocketAddr, SocketAddr, Vec<u8>)>>,
}

fn reparse_offer(o: &SdpOffer) -> SdpOffer {
    SdpOffer::from_sdp_string(&o.to_sdp_string()).expect("str0m reads its own offer")
}

fn reparse_answer(a: &SdpAnswer) -> SdpAnswer {
    SdpAnswer::from_sdp_string(&a.to_sdp_string()).expect("str0m reads its own answer")
}

impl World {
    /// Two peers connected, publishing, and subscribed to each other; a few packets sent
    /// each way. `None` if that did not happen in 10 virtual seconds.
    pub fn connected() -> Option<World> {
        Self::connected_tapped(false)
    }

    /// [`World::connected`], with the wiretap on from the start when `tap`.
    pub fn connected_tapped(tap: bool) -> Option<World> {
        let now = Instant::now();
        let shard_addr: SocketAddr = "127.0.0.1:20000".parse().ok()?;
        let mut w = World {
            now,
            shard: ShardCore::new(0, 1, shard_addr, now),
            shard_addr,
            peers: Vec::new(),
            ids: Vec::new(),
            published: Vec::new(),
            gone: Vec::new(),
            subscribed: 0,
            next_seq: 1000,
            wiretap: None,
        };
        if tap {
            w.wiretap = Some(Vec::new());
        }
        for (i, name) in ["hostile", "calm"].iter().enumerate() {
            let addr: SocketAddr = format!("127.0.1.{}:{}", i + 1, 30_000 + i).parse().ok()?;
            let mut peer = RawPeer::new(now, addr);
            let video = format!("{name}-video");
            let audio = format!("{name}-audio");
            let offer = peer.offer(&[
                (MediaKind::Video, name, &video),
                (MediaKind::Audio, name, &audio),
            ]);
            let accepted = factory()
                .accept_offer(now, shard_addr, reparse_offer(&offer))
                .ok()?;
            peer.accept_answer(reparse_answer(&accepted.answer)).ok()?;
            let id = PeerId(i as u64 + 1);
            w.shard.handle_control(
                now,
                Control::AddPeer {
                    peer: id,
                    rtc: accepted.rtc,
                    ufrag: accepted.ufrag,
                },
            );
            w.peers.push(peer);
            w.ids.push(id);
        }
        if !w.run_until(Duration::from_secs(10), |w| {
            w.peers.iter().all(RawPeer::is_connected) && w.published.len() == 4
        }) {
            return None;
        }
        for (me, other) in [(HOSTILE, CALM), (CALM, HOSTILE)] {
            let tracks = w
                .published
                .iter()
                .filter(|(p, ..)| *p == w.ids[other])
                .map(|(_, track, name)| Subscription {
                    track: *track,
                    name: name.clone(),
                })
                .collect();
            let peer = w.ids[me];
            w.shard
                .handle_control(w.now, Control::Subscribe { peer, tracks });
        }
        if !w.run_until(Duration::from_secs(10), |w| w.subscribed == 4) {
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
        let p = &mut self.peers[i];
        let mut payload = vec![0u8; 100];
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        if let Some(mid) = p.mid_of(&format!("{name}-video")) {
            p.send_rtp(now, mid, Codec::Vp8, seq, &payload);
        }
        if let Some(mid) = p.mid_of(&format!("{name}-audio")) {
            p.send_rtp(now, mid, Codec::Opus, seq, &payload[..40]);
        }
    }

    /// The address of peer `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.peers[i].addr
    }

    /// A datagram reaches the shard from `source`, as the I/O loop delivers it.
    pub fn inject(&mut self, source: SocketAddr, data: &[u8]) {
        self.shard.handle_datagram(self.now, source, data);
    }

    /// Moves everything in flight until nothing moves.
    pub fn exchange(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            let now = self.now;
            let mut wire = Vec::new();
            for p in &mut self.peers {
                while let Some((to, data)) = p.poll_transmit() {
                    wire.push((p.addr, to, data));
                }
            }
            for d in std::mem::take(&mut self.shard.out.transmits) {
                wire.push((self.shard_addr, d.to, d.data));
            }
            self.shard.out.control.clear();
            for batch in &mut self.shard.out.media {
                batch.clear();
            }
            if let Some(tap) = &mut self.wiretap {
                tap.extend(wire.iter().cloned());
            }
            for (from, to, data) in wire {
                moved = true;
                if to == self.shard_addr {
                    self.shard.handle_datagram(now, from, &data);
                } else if let Some(p) = self.peers.iter_mut().find(|p| p.addr == to) {
                    p.handle_datagram(now, from, &data);
                }
            }
            for n in std::mem::take(&mut self.shard.out.notices) {
                moved = true;
                self.on_notice(n);
            }
            if !moved {
                return;
            }
        }
    }

    fn on_notice(&mut self, n: Notice) {
        match n {
            Notice::TrackPublished {
                peer, track, name, ..
            } => self.published.push((peer, track, name)),
            Notice::TrackUnpublished { track, .. } => {
                self.published.retain(|(_, t, _)| *t != track);
            }
            Notice::Offer { peer, offer } => {
                let Some(i) = self.ids.iter().position(|p| *p == peer) else {
                    return;
                };
                if let Ok(answer) = self.peers[i].accept_offer(reparse_offer(&offer)) {
                    self.shard.handle_control(
                        self.now,
                        Control::Answer {
                            peer,
                            answer: reparse_answer(&answer),
                        },
                    );
                }
            }
            Notice::Subscribed { tracks, .. } => self.subscribed += tracks.len(),
            Notice::PeerGone { peer, .. } => self.gone.push(peer),
            _ => {}
        }
    }

    /// Exchanges, then advances the clock to the next timeout (at most `max`).
    pub fn step(&mut self, max: Duration) {
        self.exchange();
        let mut next = (self.now + max).min(self.shard.poll_timeout());
        for p in &self.peers {
            next = next.min(p.poll_timeout());
        }
        self.now = next.max(self.now + Duration::from_micros(100));
        let now = self.now;
        self.shard.handle_timeout(now);
        for p in &mut self.peers {
            p.handle_timeout(now);
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step(Duration::from_millis(20));
        }
    }

    /// Runs until `done` or `limit` passes; whether `done` held.
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&World) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step(Duration::from_millis(20));
        }
        done(self)
    }
}
