//! The generator's event loop: every synthetic peer of a run on one thread, one mio
//! `Poll` over their sockets and one timer heap over their wake-ups, so the generator
//! spends its CPU on the peers' real work (str0m, SRTP, system calls) and none on
//! waiting or polling.
//!
//! A run goes through its phases in order:
//! 1. joining: peers join at `join_rate` (a room's first member at once, the others once
//!    someone in the room publishes), connect, publish, subscribe; done when every peer
//!    is connected, publishing and has every subscription confirmed;
//! 2. warm-up: traffic runs, nothing is measured (first keyframes, RTT estimates);
//! 3. the measured window: the server's and the generator's CPU are read at both ends;
//! 4. the tail: publishers stop, and the loop waits until every packet sent has arrived
//!    (or the tail limit passes), so nothing in flight counts as lost;
//! 5. everyone leaves.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use mio::{Events, Poll, Token};

use crate::check::{Loss, Tally};
use crate::probe::ServerProbe;
use crate::procstat::{self, ProcSample};
use crate::scenario::Scenario;
use crate::simulcast::{LayerCounts, ServerLayers};
use crate::synthetic::{STATS_INTERVAL, Shared, SyntheticPeer};
use crate::traffic::TrafficConfig;
use engine::io::batch::RecvBatch;
use engine::latency::LatencyHistogram;

/// How often subscribers look for unrepaired video gaps.
const GAP_CHECK: Duration = Duration::from_millis(50);
/// How often the progress line is redrawn.
const PROGRESS: Duration = Duration::from_secs(1);

/// What to run and against which server.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The scenario.
    pub scenario: Scenario,
    /// How publishers send.
    pub traffic: TrafficConfig,
    /// The server's HTTP address.
    pub server: SocketAddr,
    /// `--nodes`: the nodes of a cluster (the first is `server`); peer `i` joins node
    /// `i % nodes`, and the window measures the cost of a hop. Empty: one server.
    pub nodes: Vec<ServerProbe>,
    /// Where the server's CPU and memory are read.
    pub probe: ServerProbe,
    /// The IP the peers' UDP sockets bind to.
    pub media_ip: IpAddr,
    /// Peers joining per second.
    pub join_rate: f64,
    /// Traffic before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// How long joining may take.
    pub ready_timeout: Duration,
    /// How long to wait for packets in flight after the publishers stop.
    pub tail: Duration,
    /// Draw a progress line on standard error.
    pub progress: bool,
    /// Room names start with this (unique per run, so runs against a shared server do
    /// not meet).
    pub room_prefix: String,
}

/// What a run measured, before it becomes a report.
pub struct Measured {
    /// Peers in the run.
    pub peers: usize,
    /// Of which publishers.
    pub publishers: usize,
    /// (subscriber, track) pairs confirmed.
    pub subscriptions: usize,
    /// Time from the first join until everyone was ready.
    pub ready_after: Duration,
    /// The join rate asked for, peers per second.
    pub join_rate: f64,
    /// The measured window's length.
    pub window: Duration,
    /// The server's CPU over the window (its own accounting), if known.
    pub server_cpu: Option<Duration>,
    /// Time the server's threads waited for a CPU over the window.
    pub server_waited: Option<Duration>,
    /// The share of the server's CPU over the window spent in user space (the kernel's
    /// tick-sampled split), the rest in the kernel.
    pub server_user_share: Option<f64>,
    /// The server's CPU and CPU wait per thread over the window.
    pub server_threads: Vec<(String, Duration, Duration)>,
    /// Why the server's CPU and memory are unknown, if they are.
    pub server_unknown: Option<String>,
    /// The server's own forwarding latency over the window (its `/metrics` histogram),
    /// or why it is unknown.
    pub server_latency: anyhow::Result<LatencyHistogram>,
    /// The server's RSS before any peer joined, KiB.
    pub server_rss_idle_kib: Option<u64>,
    /// The server's RSS with every peer in, KiB.
    pub server_rss_loaded_kib: Option<u64>,
    /// The generator's own CPU over the window.
    pub generator_cpu: Duration,
    /// Time the generator waited for a CPU over the window.
    pub generator_waited: Duration,
    /// Receive-side counters; the window's and the latency histogram.
    pub tally: Tally,
    /// `--nodes`: what a hop between nodes cost.
    pub hop: Option<crate::hop::HopReport>,
    /// `--simulcast`: the layers' counts at the window's two ends.
    pub layers: Option<(LayerCounts, LayerCounts)>,
    /// Packets the publishers sent inside the window.
    pub window_sent: u64,
    /// Loss over the whole run (from each subscriber's first packet of each stream).
    pub loss: Loss,
    /// Join times (WebSocket open → first media packet).
    pub join_times: Vec<Duration>,
    /// NACKs the subscribers sent, if the client counts them.
    pub nacks: Option<u64>,
    /// PLIs/FIRs that reached the publishers.
    pub keyframe_requests: u64,
    /// Keyframes the publishers sent because of them.
    pub keyframes_on_request: u64,
    /// Frames or audio packets the publishers skipped because the loop was late.
    pub skipped: u64,
    /// Frames and audio packets that were due over the run, sent or skipped.
    pub scheduled: u64,
    /// Datagrams the generator could not send.
    pub udp_send_dropped: u64,
    /// How long the tail took, and whether every packet arrived by then.
    pub tail: (Duration, bool),
    /// Errors peers met: the first five, then how many more (see [`failures`]).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Joining,
    Warmup(Instant),
    Window(Instant),
    Tail(Instant),
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Joining => "joining",
            Phase::Warmup(_) => "warm-up",
            Phase::Window(_) => "measuring",
            Phase::Tail(_) => "tail",
        }
    }
}

/// What the measured window saw.
struct Window {
    len: Duration,
    server_cpu: Option<Duration>,
    server_waited: Option<Duration>,
    server_user_share: Option<f64>,
    server_threads: Vec<(String, Duration, Duration)>,
    generator_cpu: (Duration, Duration),
    sent: u64,
    server_latency: anyhow::Result<LatencyHistogram>,
}

struct Loop {
    poll: Poll,
    peers: Vec<SyntheticPeer>,
    /// Which peer publishes stream `s`.
    stream_owner: Vec<usize>,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Scratch space for received datagrams, lent to the peer whose socket is read.
    recv: RecvBatch,
    shared: Shared,
}

impl Loop {
    fn reschedule(&mut self, i: usize) {
        let p = &mut self.peers[i];
        let wake = p.next_wake();
        if p.scheduled.is_none_or(|s| wake < s) {
            p.scheduled = Some(wake);
            self.heap.push(Reverse((wake, i)));
        }
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, i))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if self.peers[i].scheduled != Some(at) {
                continue; // superseded by an earlier wake-up
            }
            self.peers[i].scheduled = None;
            self.peers[i].on_timer(now, &mut self.shared);
            self.reschedule(i);
        }
    }

    /// The first member of a room may join at once; the others wait until someone in
    /// their room publishes, so that every later join finds media to receive and its
    /// join time (WebSocket open → first media packet) means what it says.
    fn room_is_publishing(&self, room: &str) -> bool {
        let mut members = self.peers.iter().filter(|p| p.plan.room == room).peekable();
        members.peek().is_none() || members.any(|p| p.traffic.is_some())
    }

    /// `--simulcast`: the server's layer counters and the publishers' video bytes now.
    fn layer_counts(&self, probe: &ServerProbe) -> LayerCounts {
        let mut c = LayerCounts {
            server: ServerLayers::read(probe).ok(),
            ..LayerCounts::default()
        };
        for t in self.peers.iter().filter_map(|p| p.traffic.as_ref()) {
            c.sent += t.video_bytes;
            c.paused += t.paused_bytes;
        }
        c
    }

    fn loss(&self) -> Loss {
        let sent = |s: u32| {
            self.stream_owner
                .get(s as usize)
                .map_or(0, |&owner| self.peers[owner].sent(s))
        };
        let mut total = Loss::default();
        for p in &self.peers {
            let l = p.rx.loss(sent);
            total.expected += l.expected;
            total.received += l.received;
        }
        total
    }

    /// Waits up to `wait` for socket readiness and handles it.
    fn turn(&mut self, events: &mut Events, wait: Duration) -> anyhow::Result<()> {
        if let Err(e) = self.poll.poll(events, Some(wait))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(anyhow!("poll: {e}"));
        }
        for ev in events.iter() {
            let i = ev.token().0 / 2;
            if i >= self.peers.len() {
                continue;
            }
            if ev.token().0 % 2 == 0 {
                self.peers[i].on_udp(&mut self.recv, &mut self.shared);
            } else {
                self.peers[i].on_ws(&mut self.shared);
            }
            self.reschedule(i);
        }
        Ok(())
    }
}

/// The server's accounting now; the first failure is kept in `why_unknown` for the
/// report (later ones are alike).
fn sample(probe: &ServerProbe, why_unknown: &mut Option<String>) -> Option<ProcSample> {
    match probe.sample() {
        Ok(s) => Some(s),
        Err(e) => {
            why_unknown.get_or_insert(format!("{e:#}"));
            None
        }
    }
}

/// Why a run produced no figures: the ramp tells a load the server did not admit from a
/// run that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// Not every peer was ready within the ready timeout: the server did not admit the
    /// load (a saturated shard drops handshake packets along with media).
    #[error("{0}")]
    NotReady(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::Failed(format!("{e:#}"))
    }
}

impl From<std::io::Error> for RunError {
    fn from(e: std::io::Error) -> Self {
        RunError::Failed(e.to_string())
    }
}

/// Runs one scenario against a running server. See the module docs.
pub fn run(config: &RunConfig) -> Result<Measured, RunError> {
    let plan = config.scenario.plan(&config.room_prefix);
    let epoch = Instant::now();
    let mut stream_owner = Vec::new();
    // With simulcast, each stamp stream's video layer.
    let mut stream_layers = Vec::new();
    let mut streams = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        // A video takes a stream per layer; it is known by its first.
        let mut next = |on: bool, layers: u32| {
            on.then(|| {
                let first = stream_owner.len() as u32;
                for l in 0..layers {
                    stream_owner.push(i);
                    stream_layers.push(config.traffic.simulcast.then_some(l as u8));
                }
                first
            })
        };
        let video = next(p.video, config.traffic.video_streams());
        let audio = next(p.audio, 1);
        streams.push((video, audio));
    }
    let hops = (config.nodes.len() > 1)
        .then(|| crate::hop::HopLatency::new(&stream_owner, config.nodes.len()));
    let mut tally = Tally::new();
    tally.stream_layers = stream_layers;
    let mut lp = Loop {
        poll: Poll::new().map_err(|e| anyhow!("poll: {e}"))?,
        peers: Vec::with_capacity(plan.len()),
        stream_owner,
        heap: BinaryHeap::new(),
        recv: RecvBatch::new(),
        shared: Shared {
            epoch,
            traffic: config.traffic,
            tally,
            udp_send_dropped: 0,
            packets_sent: 0,
            packets: Vec::new(),
            mids: Vec::new(),
            hops,
        },
    };
    let mut why_unknown = None;
    let idle = sample(&config.probe, &mut why_unknown);
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    let join_interval = Duration::from_secs_f64(1.0 / config.join_rate.max(0.1));
    let mut next_join = start;
    let mut phase = Phase::Joining;
    let mut ready_after = Duration::ZERO;
    let mut next_gap_check = start + GAP_CHECK;
    let mut next_progress = start + PROGRESS;
    let mut progress = Progress::new(config.probe.clone());
    // When the window opened: (time, the server's sample, the generator's CPU, packets sent).
    type WindowStart = (
        Instant,
        Option<ProcSample>,
        anyhow::Result<LatencyHistogram>,
        (Duration, Duration),
        u64,
    );
    let mut window_start: Option<WindowStart> = None;
    // `--nodes`: every node at the window's start, then the hop's cost.
    let mut nodes_at_start = None;
    let mut hop = None;
    let mut window: Option<Window> = None;
    // `--simulcast`: the layers at the window's start, then at both ends.
    let mut layers_at_start = None;
    let mut layers = None;
    let mut loaded: Option<ProcSample> = None;
    let tail;
    let mut drained = None;

    loop {
        let now = Instant::now();
        while lp.peers.len() < plan.len()
            && matches!(phase, Phase::Joining)
            && now >= next_join
            && lp.room_is_publishing(&plan[lp.peers.len()].room)
        {
            let i = lp.peers.len();
            let server = match config.nodes.len() {
                0 => config.server,
                n => config.nodes[i % n].addr,
            };
            let mut peer = SyntheticPeer::open(
                plan[i].clone(),
                server,
                config.media_ip,
                streams[i],
                lp.poll.registry(),
                Token(2 * i),
                Token(2 * i + 1),
                i as u64 + 1,
            )
            .map_err(|e| anyhow!("peer {} cannot open: {e}", plan[i].nickname))?;
            peer.node = i % config.nodes.len().max(1);
            lp.peers.push(peer);
            lp.reschedule(i);
            next_join += join_interval;
        }
        lp.run_timers(now);
        if now >= next_gap_check {
            next_gap_check = now + GAP_CHECK;
            for i in 0..lp.peers.len() {
                lp.peers[i].check_gaps(now, &mut lp.shared);
            }
        }
        let errors = failures(&lp.peers);
        if !errors.is_empty() && matches!(phase, Phase::Joining | Phase::Warmup(_)) {
            progress.finish(config.progress);
            let why = format!("peers failed: {}", errors.join("; "));
            // Only timeouts: the server did not answer them in time, as when a saturated
            // shard drops their handshakes. Anything else is a failure of its own.
            let only_timeouts = lp
                .peers
                .iter()
                .filter(|p| p.error.is_some())
                .all(|p| p.timed_out);
            return Err(if only_timeouts {
                RunError::NotReady(why)
            } else {
                RunError::Failed(why)
            });
        }

        match phase {
            Phase::Joining => {
                if lp.peers.len() == plan.len() && lp.peers.iter().all(|p| p.ready()) {
                    ready_after = now - start;
                    phase = Phase::Warmup(now + config.warmup);
                } else if now > start + config.ready_timeout {
                    progress.finish(config.progress);
                    let connected = lp.peers.iter().filter(|p| p.connected).count();
                    let ready = lp.peers.iter().filter(|p| p.ready()).count();
                    return Err(RunError::NotReady(format!(
                        "not ready after {:?}: {} of {} peers opened, {connected} connected, {ready} ready",
                        config.ready_timeout,
                        lp.peers.len(),
                        plan.len()
                    )));
                }
            }
            Phase::Warmup(until) if now >= until => {
                let ns = now.duration_since(epoch).as_nanos() as u64;
                lp.shared.tally.open_window(ns);
                window_start = Some((
                    now,
                    sample(&config.probe, &mut why_unknown),
                    config.probe.latency(),
                    procstat::self_cpu(),
                    lp.shared.packets_sent,
                ));
                if config.nodes.len() > 1 {
                    nodes_at_start = Some(crate::hop::sample_nodes(&config.nodes)?);
                }
                if config.traffic.simulcast {
                    layers_at_start = Some(lp.layer_counts(&config.probe));
                }
                phase = Phase::Window(now + config.duration);
            }
            Phase::Window(until) if now >= until => {
                let ns = now.duration_since(epoch).as_nanos() as u64;
                lp.shared.tally.close_window(ns);
                let (t0, s0, l0, g0, sent0) = window_start.take().expect("the window was opened");
                let s1 = sample(&config.probe, &mut why_unknown);
                let server_latency = l0.and_then(|a| Ok(config.probe.latency()?.since(&a)));
                let (server_cpu, server_waited, server_user_share, server_threads) =
                    match (&s0, &s1) {
                        (Some(a), Some(b)) => {
                            let user = b.user.saturating_sub(a.user).as_secs_f64();
                            let system = b.system.saturating_sub(a.system).as_secs_f64();
                            (
                                Some(b.cpu.saturating_sub(a.cpu)),
                                Some(b.waited.saturating_sub(a.waited)),
                                (user + system > 0.0).then(|| user / (user + system)),
                                procstat::thread_delta(a, b),
                            )
                        }
                        _ => (None, None, None, Vec::new()),
                    };
                let g1 = procstat::self_cpu();
                if let Some(start) = layers_at_start.take() {
                    layers = Some((start, lp.layer_counts(&config.probe)));
                }
                if let (Some(before), Some(latency)) = (&nodes_at_start, &lp.shared.hops) {
                    let after = crate::hop::sample_nodes(&config.nodes)?;
                    hop = Some(crate::hop::HopReport::new(
                        before,
                        &after,
                        now - t0,
                        latency,
                    ));
                }
                window = Some(Window {
                    len: now - t0,
                    server_cpu,
                    server_waited,
                    server_user_share,
                    server_threads,
                    generator_cpu: (g1.0.saturating_sub(g0.0), g1.1.saturating_sub(g0.1)),
                    sent: lp.shared.packets_sent - sent0,
                    server_latency,
                });
                loaded = s1;
                for p in &mut lp.peers {
                    p.stop_media();
                }
                phase = Phase::Tail(now);
            }
            Phase::Tail(since) => {
                let loss = lp.loss();
                if drained.is_none() && loss.expected == loss.received {
                    drained = Some(now - since);
                }
                // Wait for one more round of receive statistics (the NACK counts).
                let stats_due = now >= since + STATS_INTERVAL + Duration::from_millis(100);
                if (drained.is_some() && stats_due)
                    || now >= since + config.tail.max(STATS_INTERVAL)
                {
                    tail = (drained.unwrap_or(now - since), drained.is_some());
                    break;
                }
            }
            _ => {}
        }

        if now >= next_progress {
            next_progress = now + PROGRESS;
            progress.draw(config.progress, now - start, phase.name(), &lp, plan.len());
        }

        let mut wake = next_gap_check.min(next_progress);
        if let Some(&Reverse((at, _))) = lp.heap.peek() {
            wake = wake.min(at);
        }
        if matches!(phase, Phase::Joining) && lp.peers.len() < plan.len() {
            // A join held back until its room publishes is retried every millisecond.
            wake = wake.min(next_join.max(now + Duration::from_millis(1)));
        }
        match phase {
            Phase::Warmup(t) | Phase::Window(t) => wake = wake.min(t),
            Phase::Tail(_) => wake = wake.min(now + Duration::from_millis(20)),
            Phase::Joining => {}
        }
        let wait = wake.saturating_duration_since(Instant::now());
        lp.turn(&mut events, wait)?;
    }
    progress.finish(config.progress);

    // Goodbye, and a moment for the server to read it.
    for p in &mut lp.peers {
        p.leave();
    }
    let bye = Instant::now() + Duration::from_millis(100);
    while Instant::now() < bye {
        lp.turn(&mut events, Duration::from_millis(10))?;
    }

    let window =
        window.ok_or_else(|| RunError::Failed("the run ended before its window".into()))?;
    let loss = lp.loss();
    let errors = failures(&lp.peers);
    let publishers = lp.peers.iter().filter(|p| p.traffic.is_some()).count();
    let (mut keyframe_requests, mut keyframes_on_request) = (0, 0);
    let (mut skipped, mut scheduled) = (0, 0);
    for p in &lp.peers {
        keyframe_requests += p.keyframe_requests;
        if let Some(t) = &p.traffic {
            keyframes_on_request += t.keyframes_on_request;
            skipped += t.skipped;
            scheduled += t.scheduled();
        }
    }
    Ok(Measured {
        peers: lp.peers.len(),
        publishers,
        subscriptions: lp.peers.iter().map(|p| p.subscribed).sum(),
        ready_after,
        join_rate: config.join_rate,
        window: window.len,
        server_cpu: window.server_cpu,
        server_waited: window.server_waited,
        server_user_share: window.server_user_share,
        server_threads: window.server_threads,
        server_unknown: why_unknown,
        server_latency: window.server_latency,
        server_rss_idle_kib: idle.map(|s| s.rss_kib),
        server_rss_loaded_kib: loaded.map(|s| s.rss_kib),
        generator_cpu: window.generator_cpu.0,
        generator_waited: window.generator_cpu.1,
        join_times: lp.peers.iter().filter_map(|p| p.join_time()).collect(),
        nacks: Some(lp.peers.iter_mut().map(|p| p.nacks_sent()).sum()),
        keyframe_requests,
        keyframes_on_request,
        skipped,
        scheduled,
        udp_send_dropped: lp.shared.udp_send_dropped,
        tail,
        errors,
        window_sent: window.sent,
        loss,
        tally: lp.shared.tally,
        hop,
        layers,
    })
}

/// The live progress line.
struct Progress {
    probe: ServerProbe,
    last: Option<(Instant, u64, u64, Option<Duration>, Duration)>,
    drawn: bool,
}

impl Progress {
    fn new(probe: ServerProbe) -> Self {
        Self {
            probe,
            last: None,
            drawn: false,
        }
    }

    fn draw(&mut self, on: bool, elapsed: Duration, phase: &str, lp: &Loop, total: usize) {
        if !on {
            return;
        }
        let now = Instant::now();
        let sent = lp.shared.packets_sent;
        let rcvd = lp.shared.tally.received;
        let server = self.probe.sample().ok().map(|s| s.cpu);
        let me = procstat::self_cpu().0;
        let connected = lp.peers.iter().filter(|p| p.connected).count();
        let ready = lp.peers.iter().filter(|p| p.ready()).count();
        let mut line = format!(
            "{:>6.1}s {:<9} peers {}/{} connected {} ready {}",
            elapsed.as_secs_f64(),
            phase,
            lp.peers.len(),
            total,
            connected,
            ready
        );
        if let Some((t, s0, r0, srv0, me0)) = self.last {
            let dt = (now - t).as_secs_f64().max(1e-3);
            let pct = |d: Duration| 100.0 * d.as_secs_f64() / dt;
            line += &format!(
                " | sent {:.0} pps, received {:.0} pps",
                (sent - s0) as f64 / dt,
                (rcvd - r0) as f64 / dt
            );
            match (server, srv0) {
                (Some(a), Some(b)) => line += &format!(" | server {:.0}% CPU", pct(a - b)),
                _ => line += " | server CPU unknown",
            }
            line += &format!(", generator {:.0}% CPU", pct(me - me0));
        }
        self.last = Some((now, sent, rcvd, server, me));
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line:<120}");
        let _ = err.flush();
        self.drawn = true;
    }

    fn finish(&mut self, on: bool) {
        if on && self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}

/// The peers' failures for a report: the first five by name, then how many more failed,
/// so a step where every peer was refused reads as one line, not one per peer.
fn failures(peers: &[SyntheticPeer]) -> Vec<String> {
    summarize(
        peers
            .iter()
            .filter_map(|p| Some((p.plan.nickname.as_str(), p.error.as_deref()?))),
    )
}

fn summarize<'a>(failed: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    const SHOWN: usize = 5;
    let mut failed = failed.map(|(peer, why)| format!("{peer}: {why}"));
    let mut list: Vec<String> = failed.by_ref().take(SHOWN).collect();
    let more = failed.count();
    if more > 0 {
        list.push(format!("and {more} more peers failed"));
    }
    list
}

#[cfg(test)]
mod tests {
    use super::summarize;

    #[test]
    fn failures_past_the_fifth_are_counted_not_listed() {
        let names: Vec<String> = (0..8).map(|k| format!("p{k}")).collect();
        let failed = names.iter().map(|n| (n.as_str(), "refused"));
        let list = summarize(failed.clone().take(5));
        assert_eq!(list.len(), 5);
        assert_eq!(list[0], "p0: refused");
        let list = summarize(failed);
        assert_eq!(list.len(), 6);
        assert_eq!(list[4], "p4: refused");
        assert_eq!(list[5], "and 3 more peers failed");
        assert!(summarize(std::iter::empty()).is_empty());
    }
}
