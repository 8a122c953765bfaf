//! The virtual network: shards, clients, the wire between them, and the clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use engine::factory::PeerFactory;
use engine::msg::{Control, Notice, PeerId, ShardId, Subscription, TrackId, TrackName};
use engine::shard::ShardCore;
use str0m::change::{SdpAnswer, SdpOffer};

use crate::endpoint::Endpoint;

/// A client on the network, with what signalling knows of it.
pub struct Member<E> {
    /// The client.
    pub endpoint: E,
    /// Its peer id on its shard.
    pub id: PeerId,
    /// Its shard.
    pub shard: ShardId,
    /// Tracks it receives (the shard said `Subscribed`).
    pub subscribed: Vec<TrackId>,
    /// False once it [vanished](Net::vanish): it neither sends nor receives.
    pub alive: bool,
}

impl<E> Deref for Member<E> {
    type Target = E;
    fn deref(&self) -> &E {
        &self.endpoint
    }
}

impl<E> DerefMut for Member<E> {
    fn deref_mut(&mut self) -> &mut E {
        &mut self.endpoint
    }
}

/// A track a shard published.
pub struct Published {
    /// Its publisher.
    pub peer: PeerId,
    /// The engine's id.
    pub track: TrackId,
    /// Its ids and kind.
    pub name: TrackName,
}

/// Decides, for a datagram from → to, whether the network loses it.
pub type LossRule = Box<dyn FnMut(SocketAddr, SocketAddr, &[u8]) -> bool>;

/// A link into one address that carries `bps` with a queue of at most `queue` at that
/// rate, as `tc … tbf` on a router: datagrams wait their turn, and what would wait longer
/// is lost.
struct Bottleneck {
    to: SocketAddr,
    bps: u64,
    queue: Duration,
    /// When the link is free of what it holds.
    free_at: Instant,
    /// Datagrams on their way: when each is through, from where, the bytes.
    held: VecDeque<(Instant, SocketAddr, Vec<u8>)>,
}

/// Times the calls into the shards while `on` (the forwarding benchmark's measured
/// rounds; the clients' work is outside it), and counts their allocations when given a
/// counter (the benchmark's global allocator keeps one).
#[derive(Default)]
pub struct ShardMeter {
    /// Measure now.
    pub on: bool,
    /// Time spent inside the shards' handlers.
    pub busy: Duration,
    /// Allocations inside them.
    pub allocations: u64,
    /// Reads the allocation count.
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

/// The process's one peer factory (generating its certificate costs milliseconds).
pub fn factory() -> &'static PeerFactory {
    static FACTORY: OnceLock<PeerFactory> = OnceLock::new();
    FACTORY.get_or_init(PeerFactory::new)
}

/// Shards and clients on an in-memory network with a virtual clock (see the crate docs).
pub struct Net<E: Endpoint> {
    /// The virtual clock.
    pub now: Instant,
    /// The shards, indexed by shard id.
    pub shards: Vec<ShardCore>,
    /// Their addresses.
    pub shard_addrs: Vec<SocketAddr>,
    /// The clients, in the order they joined.
    pub clients: Vec<Member<E>>,
    /// Tracks published now.
    pub published: Vec<Published>,
    /// What the shards told publishers of the simulcast layers wanted, in order.
    pub layers_wanted: Vec<(PeerId, TrackId, u8)>,
    /// Peers the shards dropped, with the reason.
    pub gone: Vec<(PeerId, String)>,
    /// Answers a shard could not use.
    pub bad_answers: usize,
    /// What shards said of data channels: opened, and the text that came in on them.
    pub channels_open: Vec<PeerId>,
    pub channel_texts: Vec<(PeerId, String)>,
    /// Returns true for a datagram the network loses.
    pub loss: Option<LossRule>,
    /// Datagrams lost so far.
    pub lost: usize,
    /// When set, every datagram put on the wire is copied here: `(from, to, bytes)`.
    pub wiretap: Option<Vec<(SocketAddr, SocketAddr, Vec<u8>)>>,
    /// Time spent inside the shards' handlers, for the forwarding benchmark.
    pub meter: ShardMeter,
    wire: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    links: Vec<Bottleneck>,
    next_peer: u64,
}

/// SDP goes through its text form, as it does between a browser and the server.
fn reparse_offer(o: &SdpOffer) -> SdpOffer {
    SdpOffer::from_sdp_string(&o.to_sdp_string()).expect("str0m reads its own offer")
}

fn reparse_answer(a: &SdpAnswer) -> SdpAnswer {
    SdpAnswer::from_sdp_string(&a.to_sdp_string()).expect("str0m reads its own answer")
}

impl<E: Endpoint> Net<E> {
    /// `shards` shards at 127.0.0.1:20000 + k, no clients, the clock at now.
    pub fn new(shards: usize) -> Self {
        let now = Instant::now();
        let shard_addrs: Vec<SocketAddr> = (0..shards)
            .map(|k| SocketAddr::from(([127, 0, 0, 1], 20_000 + k as u16)))
            .collect();
        Self {
            now,
            shards: (0..shards)
                .map(|k| ShardCore::new(k, shards, shard_addrs[k], now))
                .collect(),
            shard_addrs,
            clients: Vec::new(),
            published: Vec::new(),
            layers_wanted: Vec::new(),
            gone: Vec::new(),
            bad_answers: 0,
            channels_open: Vec::new(),
            channel_texts: Vec::new(),
            loss: None,
            lost: 0,
            wiretap: None,
            meter: ShardMeter::default(),
            wire: VecDeque::new(),
            links: Vec::new(),
            next_peer: 1,
        }
    }

    /// The address the `n`th client gets: 127.0.1.x, a port of its own.
    pub fn client_addr(n: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 1, 1 + (n % 250) as u8], 30_000 + n as u16))
    }

    /// A client joins on `shard` with its first `offer`, as signalling does it: the
    /// shard's peer is built by the factory, the client gets the answer. Returns its index.
    pub fn add(&mut self, shard: ShardId, mut endpoint: E, offer: &SdpOffer) -> usize {
        let accepted = factory()
            .accept_offer(self.now, self.shard_addrs[shard], reparse_offer(offer))
            .expect("the shard accepts the offer");
        endpoint.accept_answer(reparse_answer(&accepted.answer));
        let id = PeerId(self.next_peer);
        self.next_peer += 1;
        self.control(
            shard,
            Control::AddPeer {
                peer: id,
                rtc: accepted.rtc,
                ufrag: accepted.ufrag,
                keys: accepted.keys,
            },
        );
        self.clients.push(Member {
            endpoint,
            id,
            shard,
            subscribed: Vec::new(),
            alive: true,
        });
        self.clients.len() - 1
    }

    /// The track of `kind` the client `publisher` publishes.
    pub fn track(&self, publisher: usize, kind: str0m::media::MediaKind) -> TrackId {
        let id = self.clients[publisher].id;
        self.published
            .iter()
            .find(|p| p.peer == id && p.name.kind == kind)
            .map(|p| p.track)
            .expect("the publisher's track is published")
    }

    /// The client subscribes to `tracks`, as signalling asks its shard.
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

    /// A command to a shard.
    pub fn control(&mut self, shard: ShardId, control: Control) {
        let (now, shard) = (self.now, &mut self.shards[shard]);
        in_shard(&mut self.meter, || shard.handle_control(now, control));
    }

    /// Datagrams to `to` go through a link that carries `bps` with a queue of `queue` at
    /// that rate (`None`: no such link from now on; what it holds still comes through).
    pub fn cap_link(&mut self, to: SocketAddr, cap: Option<(u64, Duration)>) {
        let now = self.now;
        match self.links.iter_mut().find(|l| l.to == to) {
            Some(link) => {
                // Uncapped: each datagram through at once, after what the link holds.
                (link.bps, link.queue) = cap.unwrap_or((u64::MAX, Duration::MAX));
            }
            None => {
                if let Some((bps, queue)) = cap {
                    self.links.push(Bottleneck {
                        to,
                        bps,
                        queue,
                        free_at: now,
                        held: VecDeque::new(),
                    });
                }
            }
        }
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
            next = next.min(c.poll_timeout());
        }
        for (through, ..) in self.links.iter().filter_map(|l| l.held.front()) {
            next = next.min(*through);
        }
        self.now = next.max(self.now + Duration::from_micros(100));
        let now = self.now;
        for s in &mut self.shards {
            in_shard(&mut self.meter, || s.handle_timeout(now));
        }
        for c in self.clients.iter_mut().filter(|c| c.alive) {
            c.handle_timeout(now);
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
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step(Duration::from_millis(20));
        }
        done(self)
    }

    /// Subscriptions active now, every client's together.
    pub fn subscriptions(&self) -> usize {
        self.clients.iter().map(|c| c.subscribed.len()).sum()
    }

    /// Every live client is connected.
    pub fn all_connected(&self) -> bool {
        self.clients
            .iter()
            .filter(|c| c.alive)
            .all(|c| c.is_connected())
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

    /// One round: clients' and shards' output onto the wire, messages between shards and
    /// to signalling delivered, the wire delivered. Whether anything moved.
    pub fn exchange(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        for c in self.clients.iter_mut().filter(|c| c.alive) {
            let from = c.addr();
            while let Some((to, data)) = c.poll_transmit() {
                self.wire.push_back((from, to, data));
            }
        }
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
        if let Some(tap) = &mut self.wiretap {
            tap.extend(self.wire.iter().cloned());
        }
        // What the links let through by now, then what is on the wire.
        let mut through = Vec::new();
        for link in &mut self.links {
            while link.held.front().is_some_and(|d| d.0 <= now) {
                let (_, from, data) = link.held.pop_front().expect("a datagram is held");
                through.push((from, link.to, data));
            }
        }
        for datagram in through {
            moved = true;
            self.deliver(now, datagram);
        }
        while let Some((from, to, data)) = self.wire.pop_front() {
            moved = true;
            if let Some(loss) = self.loss.as_mut()
                && loss(from, to, &data)
            {
                self.lost += 1;
                continue;
            }
            if let Some(link) = self.links.iter_mut().find(|l| l.to == to) {
                let start = link.free_at.max(now);
                if start.saturating_duration_since(now) > link.queue {
                    self.lost += 1; // the queue is full
                } else {
                    let bits = (data.len() as u64 + 28) * 8; // with IP and UDP headers
                    link.free_at = start + Duration::from_micros(bits * 1_000_000 / link.bps);
                    link.held.push_back((link.free_at, from, data));
                }
                continue;
            }
            self.deliver(now, (from, to, data));
        }
        moved
    }

    /// A datagram reaches `to`; a shard's buffer goes back to it.
    fn deliver(&mut self, now: Instant, (from, to, data): (SocketAddr, SocketAddr, Vec<u8>)) {
        if let Some(k) = self.shard_addrs.iter().position(|a| *a == to) {
            let shard = &mut self.shards[k];
            in_shard(&mut self.meter, || shard.handle_datagram(now, from, &data));
        } else if let Some(c) = self.clients.iter_mut().find(|c| c.alive && c.addr() == to) {
            c.handle_datagram(now, from, &data);
        }
        // Sent: a shard's buffer goes back to it, as the I/O thread gives it back.
        if let Some(k) = self.shard_addrs.iter().position(|a| *a == from) {
            self.shards[k].out.recycle(data);
        }
    }

    /// Signalling's part: what a shard reports.
    fn on_notice(&mut self, shard: ShardId, n: Notice) {
        match n {
            Notice::TrackPublished {
                peer, track, name, ..
            } => self.published.push(Published { peer, track, name }),
            Notice::TrackUnpublished { track, .. } => {
                self.published.retain(|p| p.track != track);
                // As signalling does: end every subscription to it, and free any parked
                // m-line of it (every client hears of it).
                let members: Vec<(ShardId, PeerId)> =
                    self.clients.iter().map(|c| (c.shard, c.id)).collect();
                for (shard, peer) in members {
                    let tracks = vec![track];
                    let gone = true;
                    self.control(shard, Control::Unsubscribe { peer, tracks, gone });
                }
            }
            Notice::Offer { peer, offer } => {
                let Some(c) = self.clients.iter_mut().find(|c| c.id == peer) else {
                    return;
                };
                if let Some(answer) = c.accept_offer(reparse_offer(&offer)) {
                    let answer = reparse_answer(&answer);
                    self.control(shard, Control::Answer { peer, answer });
                }
            }
            Notice::Subscribed { peer, tracks } => {
                if let Some(c) = self.clients.iter_mut().find(|c| c.id == peer) {
                    c.subscribed.extend(tracks);
                }
            }
            Notice::Unsubscribed { peer, tracks } => {
                if let Some(c) = self.clients.iter_mut().find(|c| c.id == peer) {
                    c.subscribed.retain(|t| !tracks.contains(t));
                }
            }
            Notice::PeerGone { peer, reason } => self.gone.push((peer, reason)),
            Notice::LayersWanted { peer, track, max } => {
                self.layers_wanted.push((peer, track, max));
            }
            Notice::BadAnswer { .. } => self.bad_answers += 1,
            Notice::ChannelOpen { peer } => self.channels_open.push(peer),
            Notice::ChannelClosed { peer } => self.channels_open.retain(|p| *p != peer),
            Notice::ChannelData { peer, text } => self.channel_texts.push((peer, text)),
            Notice::Connected { .. } | Notice::UnknownPeer { .. } => {}
        }
    }
}

/// RTP (not RTCP) by RFC 7983 and RFC 5761: first byte 128–191, payload type byte
/// outside 192–223.
pub fn is_rtp(d: &[u8]) -> bool {
    d.len() > 1 && (128..=191).contains(&d[0]) && !(192..=223).contains(&d[1])
}
