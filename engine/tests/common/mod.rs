//! A deterministic harness for the sans-IO shard core: several `ShardCore`s and str0m
//! client peers joined by an in-memory network, a virtual clock, and the harness itself
//! in the role of signalling (building each peer's `Rtc`, relaying offers and answers,
//! carrying messages between shards). No sockets, no sleeps.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client::{ClientPeer, LocalTrack, PeerEvent, ReceivedRtp};
use engine::factory::PeerFactory;
use engine::msg::{Control, Notice, PeerId, ShardId, Subscription, TrackId, TrackName};
use engine::shard::ShardCore;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid};

pub struct TestClient {
    pub peer: ClientPeer,
    pub addr: SocketAddr,
    pub id: PeerId,
    pub shard: ShardId,
    pub received: Vec<ReceivedRtp>,
    pub keyframe_requests: usize,
    pub subscribed: Vec<TrackId>,
    pub alive: bool,
}

pub struct Published {
    pub peer: PeerId,
    pub track: TrackId,
    pub name: TrackName,
}

/// Decides, for a datagram from → to, whether the network loses it.
pub type LossRule = Box<dyn FnMut(SocketAddr, SocketAddr, &[u8]) -> bool>;

pub struct Harness {
    pub now: Instant,
    pub shards: Vec<ShardCore>,
    pub shard_addrs: Vec<SocketAddr>,
    pub clients: Vec<TestClient>,
    pub published: Vec<Published>,
    pub gone: Vec<(PeerId, String)>,
    pub bad_answers: usize,
    factory: PeerFactory,
    wire: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    next_peer: u64,
    /// Returns true for a datagram the network loses.
    pub loss: Option<LossRule>,
    /// Datagrams lost so far.
    pub lost: usize,
    /// Time spent inside the shards' handlers, for the forwarding benchmark.
    pub meter: ShardMeter,
}

/// Times the calls into the shards while `on` (the forwarding benchmark's measured
/// rounds; the clients' work is outside it), and counts their allocations when given a
/// counter (the benchmark's global allocator keeps one).
#[derive(Default)]
pub struct ShardMeter {
    pub on: bool,
    pub busy: Duration,
    pub allocations: u64,
    pub allocation_counter: Option<fn() -> u64>,
}

/// Every call into a shard goes through here.
fn in_shard<R>(meter: &mut ShardMeter, f: impl FnOnce() -> R) -> R {
    if meter.on {
        metered_shard_call(meter, f)
    } else {
        f()
    }
}

/// Its name is what `valgrind --tool=callgrind --toggle-collect='*metered_shard_call*'`
/// counts instructions in (docs/benchmarks.md).
#[inline(never)]
pub fn metered_shard_call<R>(meter: &mut ShardMeter, f: impl FnOnce() -> R) -> R {
    let allocations = meter.allocation_counter.map(|count| count());
    let start = Instant::now();
    let r = f();
    meter.busy += start.elapsed();
    if let (Some(before), Some(count)) = (allocations, meter.allocation_counter) {
        meter.allocations += count() - before;
    }
    r
}

impl Harness {
    pub fn new(shards: usize) -> Self {
        let now = Instant::now();
        let shard_addrs: Vec<SocketAddr> = (0..shards)
            .map(|k| format!("127.0.0.1:{}", 20_000 + k).parse().unwrap())
            .collect();
        Self {
            now,
            shards: (0..shards)
                .map(|k| ShardCore::new(k, shards, shard_addrs[k], now))
                .collect(),
            shard_addrs,
            clients: Vec::new(),
            published: Vec::new(),
            gone: Vec::new(),
            bad_answers: 0,
            factory: PeerFactory::new(),
            wire: VecDeque::new(),
            next_peer: 1,
            loss: None,
            lost: 0,
            meter: ShardMeter::default(),
        }
    }

    /// A client joins on `shard`, publishing `tracks` in its first offer. Returns its index.
    pub fn join(&mut self, shard: ShardId, tracks: &[LocalTrack]) -> usize {
        let n = self.clients.len();
        let addr: SocketAddr = format!("127.0.1.{}:{}", 1 + n % 250, 30_000 + n)
            .parse()
            .unwrap();
        let mut peer = ClientPeer::new(self.now, addr);
        let offer = peer.create_offer(tracks).unwrap();
        let offer = SdpOffer::from_sdp_string(&offer.to_sdp_string()).unwrap();
        let accepted = self
            .factory
            .accept_offer(self.now, self.shard_addrs[shard], offer)
            .unwrap();
        let answer = SdpAnswer::from_sdp_string(&accepted.answer.to_sdp_string()).unwrap();
        peer.accept_answer(answer).unwrap();
        let id = PeerId(self.next_peer);
        self.next_peer += 1;
        self.control(
            shard,
            Control::AddPeer {
                peer: id,
                rtc: accepted.rtc,
                ufrag: accepted.ufrag,
            },
        );
        self.clients.push(TestClient {
            peer,
            addr,
            id,
            shard,
            received: Vec::new(),
            keyframe_requests: 0,
            subscribed: Vec::new(),
            alive: true,
        });
        n
    }

    pub fn track(&self, publisher: usize, kind: MediaKind) -> TrackId {
        let id = self.clients[publisher].id;
        self.published
            .iter()
            .find(|p| p.peer == id && p.name.kind == kind)
            .map(|p| p.track)
            .expect("the publisher's track is published")
    }

    pub fn subscribe(&mut self, client: usize, tracks: &[TrackId]) {
        let subs = tracks
            .iter()
            .map(|t| {
                let p = self.published.iter().find(|p| p.track == *t).unwrap();
                Subscription {
                    track: *t,
                    name: p.name.clone(),
                }
            })
            .collect();
        let c = &self.clients[client];
        let (shard, peer) = (c.shard, c.id);
        self.control(shard, Control::Subscribe { peer, tracks: subs });
    }

    pub fn control(&mut self, shard: ShardId, control: Control) {
        let (now, shard) = (self.now, &mut self.shards[shard]);
        in_shard(&mut self.meter, || shard.handle_control(now, control));
    }

    /// Sends one RTP packet from a client on its m-line for `kind`.
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
            .unwrap();
    }

    /// Moves every datagram and message until nothing is in flight, then advances the
    /// clock to the next timeout (at most `max_step`).
    pub fn step(&mut self, max_step: Duration) {
        for _ in 0..1000 {
            if !self.exchange() {
                break;
            }
        }
        let mut next = self.now + max_step;
        for s in &self.shards {
            next = next.min(s.poll_timeout());
        }
        for c in self.clients.iter().filter(|c| c.alive) {
            next = next.min(c.peer.poll_timeout());
        }
        self.now = next.max(self.now + Duration::from_micros(100));
        let now = self.now;
        for s in &mut self.shards {
            in_shard(&mut self.meter, || s.handle_timeout(now));
        }
        for c in self.clients.iter_mut().filter(|c| c.alive) {
            c.peer.handle_timeout(now).unwrap();
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step(Duration::from_millis(20));
        }
    }

    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Harness) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step(Duration::from_millis(20));
        }
        done(self)
    }

    pub fn all_connected(&self) -> bool {
        self.clients
            .iter()
            .filter(|c| c.alive)
            .all(|c| c.peer.is_connected())
    }

    /// Puts a datagram on the wire, delivered at the next step: with a loss rule that
    /// keeps what it takes, a test delays datagrams (in order, so SRTCP's replay check
    /// passes).
    pub fn inject(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        self.wire.push_back((from, to, data));
    }

    /// The client vanishes: its datagrams stop, nothing is said.
    pub fn vanish(&mut self, client: usize) {
        self.clients[client].alive = false;
    }

    fn exchange(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        // Client → wire.
        for c in self.clients.iter_mut().filter(|c| c.alive) {
            while let Some((to, data)) = c.peer.poll_transmit() {
                self.wire.push_back((c.addr, to, data));
            }
        }
        // Shards' outboxes.
        for k in 0..self.shards.len() {
            // Drained in place, as the I/O thread does: the outbox keeps its capacity.
            let from = self.shard_addrs[k];
            for d in self.shards[k].out.transmits.drain(..) {
                self.wire.push_back((from, d.to, d.data));
            }
            let controls = std::mem::take(&mut self.shards[k].out.control);
            for (to, c) in controls {
                moved = true;
                let shard = &mut self.shards[to];
                in_shard(&mut self.meter, || shard.handle_control(now, c));
            }
            for to in 0..self.shards.len() {
                let batch = std::mem::take(&mut self.shards[k].out.media[to]);
                if !batch.is_empty() {
                    moved = true;
                    let shard = &mut self.shards[to];
                    in_shard(&mut self.meter, || shard.handle_media(now, batch));
                }
            }
            let notices = std::mem::take(&mut self.shards[k].out.notices);
            for n in notices {
                moved = true;
                self.on_notice(k, n);
            }
        }
        // Wire → receivers.
        while let Some((from, to, data)) = self.wire.pop_front() {
            moved = true;
            if let Some(loss) = self.loss.as_mut()
                && loss(from, to, &data)
            {
                self.lost += 1;
                continue;
            }
            if let Some(k) = self.shard_addrs.iter().position(|a| *a == to) {
                let shard = &mut self.shards[k];
                in_shard(&mut self.meter, || shard.handle_datagram(now, from, &data));
            } else if let Some(c) = self.clients.iter_mut().find(|c| c.addr == to && c.alive) {
                c.peer.handle_datagram(now, from, &data).unwrap();
            }
        }
        // Client events.
        for c in self.clients.iter_mut().filter(|c| c.alive) {
            while let Some(e) = c.peer.poll_event() {
                match e {
                    PeerEvent::Rtp(p) => c.received.push(p),
                    PeerEvent::KeyframeRequest { .. } => c.keyframe_requests += 1,
                    _ => {}
                }
            }
        }
        moved
    }

    fn on_notice(&mut self, shard: ShardId, n: Notice) {
        match n {
            Notice::TrackPublished {
                peer, track, name, ..
            } => self.published.push(Published { peer, track, name }),
            Notice::TrackUnpublished { track, .. } => {
                self.published.retain(|p| p.track != track);
                // As signalling does: end every subscription to it.
                let subscribers: Vec<(ShardId, PeerId)> = self
                    .clients
                    .iter()
                    .filter(|c| c.subscribed.contains(&track))
                    .map(|c| (c.shard, c.id))
                    .collect();
                for (shard, peer) in subscribers {
                    let tracks = vec![track];
                    self.control(shard, Control::Unsubscribe { peer, tracks });
                }
            }
            Notice::Offer { peer, offer } => {
                let c = self.clients.iter_mut().find(|c| c.id == peer).unwrap();
                let offer = SdpOffer::from_sdp_string(&offer.to_sdp_string()).unwrap();
                let answer = c.peer.accept_offer(offer).unwrap();
                let answer = SdpAnswer::from_sdp_string(&answer.to_sdp_string()).unwrap();
                self.control(shard, Control::Answer { peer, answer });
            }
            Notice::Subscribed { peer, tracks } => {
                let c = self.clients.iter_mut().find(|c| c.id == peer).unwrap();
                c.subscribed.extend(tracks);
            }
            Notice::Unsubscribed { peer, tracks } => {
                let c = self.clients.iter_mut().find(|c| c.id == peer).unwrap();
                c.subscribed.retain(|t| !tracks.contains(t));
            }
            Notice::PeerGone { peer, reason } => self.gone.push((peer, reason)),
            Notice::BadAnswer { .. } => self.bad_answers += 1,
            Notice::Connected { .. } | Notice::UnknownPeer { .. } => {}
        }
    }
}

/// RTP (not RTCP) by RFC 7983 and RFC 5761: first byte 128–191, payload type byte
/// outside 192–223.
pub fn is_rtp(d: &[u8]) -> bool {
    d.len() > 1 && (128..=191).contains(&d[0]) && !(192..=223).contains(&d[1])
}

pub fn video(stream: &str) -> LocalTrack {
    LocalTrack {
        stream_id: stream.into(),
        track_id: format!("{stream}-video"),
        kind: MediaKind::Video,
    }
}

pub fn audio(stream: &str) -> LocalTrack {
    LocalTrack {
        stream_id: stream.into(),
        track_id: format!("{stream}-audio"),
        kind: MediaKind::Audio,
    }
}
