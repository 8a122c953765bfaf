//! The thin I/O driver around a [`ShardCore`]: one pinned thread, one UDP socket, one
//! mio loop. It moves bytes and messages; every decision is the core's.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use super::batch::{BATCH, BatchSender, RecvBatch};
use super::tcp::TcpMedia;
use crate::latency::LatencyHistogram;
use crate::msg::{Control, MediaBatch, Notice};
use crate::shard::{Datagram, ShardCore};
use crate::stats::ShardStats;

const SOCKET: Token = Token(0);
pub(crate) const WAKE: Token = Token(1);
/// Datagrams that wait for the socket to drain before the oldest are dropped.
const MAX_QUEUED_SENDS: usize = 8192;
/// Messages taken from each channel per loop turn, so one source cannot starve the socket.
const CHANNEL_BUDGET: usize = 1024;
/// Receive batches read per loop turn before the due peers are driven. Input arriving
/// as fast as the shard reads it (an overloaded shard, a flood) must not starve the
/// output: the turn ends, the peers are driven, and the next turn reads on at once.
const READ_BATCHES: usize = 8;
/// Datagrams the loop lets the core produce before it sends them (two `sendmmsg`
/// batches' worth: few extra system calls, and a flush every ~100-200 µs of work).
const FLUSH_EVERY: usize = 64;
const STATS_INTERVAL: Duration = Duration::from_millis(500);

/// How one shard reaches another.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) control: Sender<Control>,
    pub(crate) media: Sender<MediaHop>,
    pub(crate) waker: Arc<Waker>,
}

/// Packets for another shard, with the kernel's arrival stamp on the oldest datagram of
/// the turn that produced them: the receiving shard's latency histogram then counts the
/// whole way through the server.
pub(crate) struct MediaHop {
    pub(crate) arrived: Option<SystemTime>,
    pub(crate) batch: MediaBatch,
}

/// What a shard publishes about itself for metrics and placement.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardSnapshot {
    /// Counters.
    pub stats: ShardStats,
    /// Peers on the shard now.
    pub peers: usize,
    /// Remote addresses the shard routes to a peer now (bounded per peer).
    pub flows: usize,
    /// How long datagrams stayed in the shard (see [`crate::latency`]).
    pub latency: LatencyHistogram,
    /// Its subscribers' bandwidth estimates, by band (see [`crate::bwe`]).
    pub estimates: crate::bwe::Bands,
    /// The share of the last stats interval (half a second) the shard spent working or
    /// waiting for a CPU rather than waiting for input: 0 idle, 1 saturated.
    pub busy: f64,
}

pub(crate) struct ShardThread {
    pub(crate) core: ShardCore,
    pub(crate) poll: Poll,
    pub(crate) socket: UdpSocket,
    pub(crate) control: Receiver<Control>,
    pub(crate) media: Receiver<MediaHop>,
    pub(crate) links: Vec<Link>,
    pub(crate) notices: Sender<Notice>,
    pub(crate) notice_waker: Arc<Waker>,
    pub(crate) snapshot: Arc<Mutex<ShardSnapshot>>,
    /// Which shards a flush sent something to (reused: no allocation per flush).
    pub(crate) woken: Vec<bool>,
    /// Sends, by how long after the oldest input of their turn they left.
    pub(crate) latency: LatencyHistogram,
    /// The kernel's arrival stamp of the oldest datagram read this turn.
    pub(crate) oldest_input: Option<SystemTime>,
    /// Beaten every loop turn (see [`super::heartbeat`]).
    pub(crate) heartbeat: Arc<super::heartbeat::Heartbeat>,
    /// The ICE-TCP listener and its connections, when the shard has one.
    pub(crate) tcp: Option<TcpMedia>,
}

impl ShardThread {
    pub(crate) fn run(mut self) -> io::Result<()> {
        // Readable only: with WRITABLE too, every send's freed buffer space is an
        // edge that wakes the shard for nothing (measured: ~45% of all wake-ups,
        // docs/benchmarks.md). WRITABLE is asked for only while sends wait for space.
        self.poll
            .registry()
            .register(&mut self.socket, SOCKET, Interest::READABLE)?;
        let mut waiting_for_space = false;
        let fd = self.socket.as_raw_fd();
        let mut events = Events::with_capacity(64);
        let mut batch = RecvBatch::new();
        let mut sender = BatchSender::new();
        let mut queued: VecDeque<Datagram> = VecDeque::new();
        let mut next_stats = Instant::now();
        let mut stats_since = next_stats;
        // Time spent in poll since `stats_since`: the rest of the interval was busy.
        let mut idle = Duration::ZERO;
        // A turn left input unread (a budget ran out): the next poll does not sleep.
        let mut more_pending = false;
        loop {
            let backlog = !queued.is_empty();
            if backlog != waiting_for_space {
                waiting_for_space = backlog;
                let interest = if waiting_for_space {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                self.poll
                    .registry()
                    .reregister(&mut self.socket, SOCKET, interest)?;
            }
            let asleep = Instant::now();
            let wait = if more_pending {
                Duration::ZERO
            } else {
                self.core.poll_timeout().saturating_duration_since(asleep)
            };
            more_pending = false;
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            idle += asleep.elapsed();
            self.heartbeat.beat();
            if let Some(tcp) = self.tcp.as_mut() {
                let registry = self.poll.registry();
                for e in events.iter().filter(|e| TcpMedia::owns(e.token())) {
                    let readable = e.is_readable() || e.is_read_closed() || e.is_error();
                    tcp.ready(
                        registry,
                        e.token(),
                        readable,
                        e.is_writable(),
                        &mut self.core,
                    );
                }
                tcp.expire(registry, Instant::now());
            }
            // Read the socket (to empty, or for READ_BATCHES batches), flushing after
            // each batch so str0m's send times stay within a batch of the truth. Each
            // batch is stamped when it is read: its peers were heard then, not when the
            // turn began.
            for read in 1..=READ_BATCHES {
                let n = batch.recv(fd)?;
                let now = Instant::now();
                for message in (0..n).filter_map(|i| batch.message(i)) {
                    input_arrived(&mut self.oldest_input, message.arrived);
                    for (data, too_long) in message.datagrams() {
                        if too_long {
                            self.core.stats.rx_datagrams += 1;
                            self.core.stats.rx_dropped += 1;
                            continue;
                        }
                        self.core.handle_datagram(now, message.source, data);
                    }
                    // A keyframe to many subscribers is thousands of datagrams: the
                    // first subscribers' share need not wait for the last's. Sent after
                    // each message, not each datagram: a GRO message is a burst from one
                    // publisher (a frame), so each subscriber's share of it goes to the
                    // kernel together, as one GSO send.
                    if self.core.out.transmits.len() >= FLUSH_EVERY {
                        self.flush(fd, &mut sender, &mut queued)?;
                    }
                }
                self.flush(fd, &mut sender, &mut queued)?;
                if n < BATCH {
                    break;
                }
                more_pending |= read == READ_BATCHES;
            }
            let now = Instant::now();
            let mut taken = 0;
            for c in self.control.try_iter().take(CHANNEL_BUDGET) {
                if matches!(c, Control::Shutdown) {
                    return Ok(());
                }
                #[cfg(feature = "fault-injection")]
                match c {
                    Control::InjectStall { for_ } => std::thread::sleep(for_),
                    Control::InjectThreadPanic => panic!("injected fault in the shard's thread"),
                    _ => {}
                }
                self.core.handle_control(now, c);
                taken += 1;
            }
            more_pending |= taken == CHANNEL_BUDGET;
            taken = 0;
            while taken < CHANNEL_BUDGET {
                let Ok(hop) = self.media.try_recv() else {
                    break;
                };
                input_arrived(&mut self.oldest_input, hop.arrived);
                self.core.handle_media(now, hop.batch);
                if self.core.out.transmits.len() >= FLUSH_EVERY {
                    self.flush(fd, &mut sender, &mut queued)?;
                }
                taken += 1;
            }
            more_pending |= taken == CHANNEL_BUDGET;
            // Drive the due peers (str0m's own timeouts), sending every FLUSH_EVERY
            // datagrams.
            let now = Instant::now();
            while self.core.handle_timeout_until(now, FLUSH_EVERY) {
                self.flush(fd, &mut sender, &mut queued)?;
            }
            self.flush(fd, &mut sender, &mut queued)?;
            self.oldest_input = None;
            if now >= next_stats {
                next_stats = now + STATS_INTERVAL;
                let interval = now.saturating_duration_since(stats_since);
                let busy = 1.0 - idle.as_secs_f64() / interval.as_secs_f64().max(1e-9);
                (stats_since, idle) = (now, Duration::ZERO);
                if let Ok(mut s) = self.snapshot.lock() {
                    *s = ShardSnapshot {
                        stats: self.core.stats,
                        peers: self.core.peer_count(),
                        flows: self.core.flow_count(),
                        latency: self.latency,
                        estimates: self.core.estimate_bands(),
                        busy: busy.clamp(0.0, 1.0),
                    };
                }
            }
        }
    }

    /// Sends what the core produced: datagrams, messages to other shards, notices.
    fn flush(
        &mut self,
        fd: i32,
        sender: &mut BatchSender,
        queued: &mut VecDeque<Datagram>,
    ) -> io::Result<()> {
        let out = &mut self.core.out;
        if !queued.is_empty() {
            queued.extend(out.transmits.drain(..));
            let (a, _) = queued.as_slices();
            let n = sender.send(fd, a)?;
            self.core.stats.tx_datagrams += n as u64;
            record_latency(&mut self.latency, self.oldest_input, n);
            for d in queued.drain(..n) {
                out.recycle(d.data);
            }
        } else if !out.transmits.is_empty() {
            // Optimisation (docs/benchmarks.md): fan-out emits one datagram per
            // subscriber per packet, interleaving destinations. A stable sort by
            // destination puts each subscriber's datagrams side by side (their order
            // kept), so the sender can hand each run to the kernel as one UDP GSO send.
            out.transmits.sort_by_key(|d| d.to);
            let n = sender.send(fd, &out.transmits)?;
            self.core.stats.tx_datagrams += n as u64;
            let mut sent = std::mem::take(&mut out.transmits);
            queued.extend(sent.drain(n..));
            for d in sent.drain(..) {
                out.recycle(d.data);
            }
            // Drained in place: the outbox keeps its capacity.
            out.transmits = sent;
            record_latency(&mut self.latency, self.oldest_input, n);
        }
        while queued.len() > MAX_QUEUED_SENDS {
            queued.pop_front();
        }
        if !out.tcp_transmits.is_empty() {
            let mut frames = std::mem::take(&mut out.tcp_transmits);
            match self.tcp.as_mut() {
                Some(tcp) => tcp.send(self.poll.registry(), &mut frames, &mut self.core),
                None => frames.clear(),
            }
            // Drained in place: the outbox keeps its capacity.
            self.core.out.tcp_transmits = frames;
        }
        let out = &mut self.core.out;
        let woken = &mut self.woken;
        woken.clear();
        woken.resize(self.links.len(), false);
        for (shard, control) in out.control.drain(..) {
            if self.links[shard].control.send(control).is_ok() {
                woken[shard] = true;
            }
        }
        for (shard, batch) in out.media.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let batch = std::mem::take(batch);
            let n = batch.len() as u64;
            let hop = MediaHop {
                arrived: self.oldest_input,
                batch,
            };
            match self.links[shard].media.try_send(hop) {
                Ok(()) => woken[shard] = true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.core.stats.cross_shard_dropped += n;
                }
            }
        }
        for (shard, &w) in woken.iter().enumerate() {
            if w {
                let _ = self.links[shard].waker.wake();
            }
        }
        if !out.notices.is_empty() {
            for n in out.notices.drain(..) {
                let _ = self.notices.send(n);
            }
            let _ = self.notice_waker.wake();
        }
        Ok(())
    }
}

/// Keeps the oldest arrival stamp of the turn's input.
fn input_arrived(oldest: &mut Option<SystemTime>, at: Option<SystemTime>) {
    if let Some(at) = at {
        *oldest = Some(oldest.map_or(at, |o| o.min(at)));
    }
}

/// Counts `sent` datagrams as leaving now, as old as the turn's oldest input (from its
/// socket, or the stamp of another shard's packets; none when the turn read nothing).
fn record_latency(latency: &mut LatencyHistogram, oldest_input: Option<SystemTime>, sent: usize) {
    if let (Some(oldest), true) = (oldest_input, sent > 0) {
        let age = SystemTime::now().duration_since(oldest).unwrap_or_default();
        latency.record(age, sent as u64);
    }
}

/// The advertised address str0m must see as every datagram's destination.
pub(crate) fn advertised(local: SocketAddr, ip: Option<std::net::IpAddr>) -> SocketAddr {
    SocketAddr::new(ip.unwrap_or(local.ip()), local.port())
}
