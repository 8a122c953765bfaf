//! The report of a run: every metric of `docs/benchmarks.md` (Method), as a table for
//! people and as JSON for tools. Unknown values (the server's CPU when its process is not
//! known) are `null`, never guessed.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use engine::latency::LatencyHistogram;

use crate::driver::Measured;
use crate::floor::Floor;
use crate::scenario::Scenario;
use crate::traffic::TrafficConfig;

/// How publishers sent.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficReport {
    /// Video bitrate of normal frames, kbit/s.
    pub video_kbps: u32,
    /// Frames per second.
    pub fps: u32,
    /// Keyframe interval, ms.
    pub keyframe_interval_ms: u64,
    /// Video in three simulcast layers (`video_kbps` is the top one's).
    pub simulcast: bool,
}

/// One server thread's load over the window.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadLoad {
    /// Thread name (`shard-0`, `signaling`, …).
    pub name: String,
    /// Cores it kept busy on average (1.0 = one core all the time).
    pub cores: f64,
    /// Milliseconds per second it was runnable but waited for a CPU (the machine is shared).
    pub cpu_wait_ms_per_s: f64,
}

/// The server's own forwarding latency over the window, from its histogram: quantiles
/// are known to their bucket.
#[derive(Debug, Clone, Serialize)]
pub struct ServerLatency {
    /// Datagrams the server counted.
    pub datagrams: u64,
    /// Their mean time in the server, µs.
    pub mean_us: f64,
    /// The bucket that holds the median: (above, at most) µs.
    pub p50_us: (u64, Option<u64>),
    /// The bucket that holds the 99th percentile; `null` upper bound: above 1 s.
    pub p99_us: (u64, Option<u64>),
}

impl ServerLatency {
    fn new(h: &LatencyHistogram) -> Option<ServerLatency> {
        Some(ServerLatency {
            datagrams: h.count(),
            mean_us: h.sum_ns as f64 / 1e3 / h.count().max(1) as f64,
            p50_us: h.quantile_bucket(0.5)?,
            p99_us: h.quantile_bucket(0.99)?,
        })
    }
}

/// A latency bucket for people: "300–500 µs", "1.5–2 ms", "> 1000 ms".
fn bucket_range((lower, upper): (u64, Option<u64>)) -> String {
    let ms = |us: u64| format!("{}", us as f64 / 1e3);
    match upper {
        None => format!("> {} ms", ms(lower)),
        Some(u) if u <= 1_000 => format!("{lower}–{u} µs"),
        Some(u) => format!("{}–{} ms", ms(lower), ms(u)),
    }
}

/// The server's CPU over the window, from its own process accounting.
#[derive(Debug, Clone, Serialize)]
pub struct ServerCpu {
    /// User + system seconds.
    pub cpu_s: f64,
    /// Cores kept busy on average.
    pub cores: f64,
    /// CPU µs per packet delivered to a subscriber.
    pub us_per_packet: f64,
    /// Of `us_per_packet`, the part in user space (the server's code, str0m, SRTP) and
    /// the part in the kernel (sockets, the loopback delivery, wake-ups), by the kernel's
    /// tick-sampled split of its CPU time.
    pub split_us_per_packet: Option<UserKernel>,
    /// Delivered packets per second per busy core (delivered pps ÷ cores busy).
    pub pps_per_core: f64,
    /// `us_per_packet` ÷ the floor per packet.
    pub floor_multiple: f64,
    /// Delivered pps ÷ the busiest shard's load: the rate at which that shard would be
    /// saturated if the load grew evenly (an estimate, not a measurement).
    pub projected_capacity_pps: Option<f64>,
    /// Milliseconds per second its threads waited for a CPU, all threads together.
    pub cpu_wait_ms_per_s: Option<f64>,
    /// Per thread.
    pub threads: Vec<ThreadLoad>,
}

/// CPU µs per packet in user space and in the kernel.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct UserKernel {
    /// In user space.
    pub user: f64,
    /// In the kernel.
    pub kernel: f64,
}

/// The generator's own CPU over the window.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorCpu {
    /// User + system seconds.
    pub cpu_s: f64,
    /// Cores kept busy on average.
    pub cores: f64,
    /// CPU µs per packet delivered (it sends and receives each).
    pub us_per_packet: f64,
    /// Milliseconds per second it waited for a CPU.
    pub cpu_wait_ms_per_s: f64,
}

/// Forwarding latency: publisher send → subscriber receive, same clock.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Worst, µs.
    pub max_us: f64,
    /// Packets measured (those sent inside the window).
    pub samples: u64,
}

/// Delivered loss over the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct LossReport {
    /// Packets that should have reached a subscriber (from its first packet of each
    /// stream to the publisher's last).
    pub expected: u64,
    /// Packets that did.
    pub received: u64,
    /// The difference.
    pub lost: u64,
    /// `lost ÷ expected`.
    pub ratio: f64,
    /// Packets received twice.
    pub duplicates: u64,
    /// How long the tail took after the publishers stopped, ms.
    pub tail_ms: u64,
    /// Every packet had arrived by the end of the tail.
    pub tail_complete: bool,
    /// Packets sent inside the window that reached their subscriber's socket
    /// `late_after_ms` or more after they were sent: a server falling behind.
    pub late: u64,
    /// `late ÷` the packets sent inside the window that arrived.
    pub late_ratio: f64,
    /// The deadline, ms ([`crate::check::LATE_AFTER`]).
    pub late_after_ms: u64,
}

/// Feedback: NACKs and keyframe requests.
#[derive(Debug, Clone, Serialize)]
pub struct Feedback {
    /// NACKs the subscribers sent (`null`: not counted by this client).
    pub nacks: Option<u64>,
    /// PLIs the subscribers sent for unrepaired gaps.
    pub plis_sent: u64,
    /// PLIs/FIRs that reached publishers (the server's own, for new subscribers, included).
    pub keyframe_requests_received: u64,
    /// Keyframes publishers sent for them.
    pub keyframes_on_request: u64,
}

/// Join: WebSocket open → first media packet.
#[derive(Debug, Clone, Serialize)]
pub struct Join {
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub p95_ms: Option<f64>,
    /// Worst, ms.
    pub max_ms: Option<f64>,
    /// Peers measured (those that found tracks when they joined).
    pub samples: usize,
    /// From the first join until every peer was ready, ms.
    pub all_ready_ms: u64,
    /// Peers ÷ that time: the joins a second the server handled, bounded by the rate
    /// offered and by a room's later members waiting for its first to publish.
    pub per_second: f64,
    /// The join rate offered (`--join-rate`).
    pub offered_per_second: f64,
}

/// The server's memory.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// RSS before any peer joined, KiB.
    pub idle_rss_kib: Option<u64>,
    /// RSS with every peer in, KiB.
    pub loaded_rss_kib: Option<u64>,
    /// (loaded − idle) ÷ peers, KiB.
    pub per_peer_kib: Option<f64>,
}

/// Things that make a run less trustworthy; all should be zero.
#[derive(Debug, Clone, Serialize)]
pub struct Problems {
    /// Frames/audio packets publishers skipped because the generator was late.
    pub skipped_frames: u64,
    /// Frames/audio packets that were due over the run, sent or skipped.
    pub scheduled_frames: u64,
    /// Datagrams the generator could not send.
    pub generator_send_dropped: u64,
    /// Packets without a valid stamp.
    pub unstamped: u64,
    /// Errors peers met.
    pub errors: Vec<String>,
}

/// A benchmark report. See the module docs.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario and its sizes.
    pub scenario: Scenario,
    /// In words.
    pub description: String,
    /// The server: `started` (with its shard count) or the URL.
    pub server: String,
    /// The server's shards, when the benchmark started it.
    pub shards: Option<usize>,
    /// Which CPUs the shards and the generator ran on (`cores`).
    pub cores: String,
    /// CPUs this machine has (the generator and the server share them).
    pub machine_cpus: usize,
    /// How publishers sent.
    pub traffic: TrafficReport,
    /// Peers.
    pub peers: usize,
    /// Publishing peers.
    pub publishers: usize,
    /// (subscriber, track) pairs.
    pub subscriptions: usize,
    /// The measured window, s.
    pub window_s: f64,
    /// Packets publishers sent per second.
    pub sent_pps: f64,
    /// Packets delivered to subscribers per second (= forwarded).
    pub delivered_pps: f64,
    /// Payload megabits per second delivered.
    pub delivered_mbps: f64,
    /// Share of delivered packets that were video.
    pub video_share: f64,
    /// The server's CPU (`null` when its accounting could not be read).
    pub server_cpu: Option<ServerCpu>,
    /// Why `server_cpu` is `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_unknown: Option<String>,
    /// The generator's CPU.
    pub generator_cpu: GeneratorCpu,
    /// Forwarding latency.
    pub latency: Latency,
    /// Publisher send → arrival in the subscriber's socket (the kernel's stamp): the
    /// forwarding latency without the time a datagram waited for the generator's one
    /// thread to read it (with many subscribers, most of the webinar's latency).
    pub socket_latency: Latency,
    /// The server's own figure, from the histogram on its `/metrics` page: from the
    /// kernel's arrival stamp on the oldest datagram a shard read in a turn to the send
    /// of what the turn produced (`null` when the page could not be read).
    pub server_latency: Option<ServerLatency>,
    /// Why `server_latency` is `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_latency_unknown: Option<String>,
    /// Loss.
    pub loss: LossReport,
    /// NACKs and PLIs.
    pub feedback: Feedback,
    /// Join times.
    pub join: Join,
    /// Server memory.
    pub memory: Memory,
    /// The floor of this machine, measured in this run.
    pub floor: Floor,
    /// The floor for this run's packet mix, ns per packet.
    pub floor_ns_per_packet: f64,
    /// Should all be zero.
    pub problems: Problems,
    /// `--nodes`: what a hop between nodes cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop: Option<crate::hop::HopReport>,
    /// `--simulcast`: the layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulcast: Option<crate::simulcast::SimulcastReport>,
}

fn pct(sorted: &[Duration], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i].as_secs_f64() * 1e3)
}

impl Report {
    /// Builds the report of a run.
    pub fn new(
        scenario: Scenario,
        traffic: TrafficConfig,
        server: String,
        shards: Option<usize>,
        cores: String,
        m: &Measured,
        floor: Floor,
    ) -> Report {
        let secs = m.window.as_secs_f64().max(1e-9);
        let delivered = m.tally.window_packets;
        let delivered_pps = delivered as f64 / secs;
        let video_share = if delivered > 0 {
            m.tally.window_video as f64 / delivered as f64
        } else {
            0.0
        };
        let floor_ns = floor.mixed_ns(video_share);
        let per_packet_us = |cpu: Duration| {
            if delivered == 0 {
                0.0
            } else {
                cpu.as_secs_f64() * 1e6 / delivered as f64
            }
        };
        let server_cpu = m.server_cpu.map(|cpu| {
            let cores = cpu.as_secs_f64() / secs;
            let us = per_packet_us(cpu);
            let threads: Vec<ThreadLoad> = m
                .server_threads
                .iter()
                .filter(|(_, c, _)| !c.is_zero())
                .map(|(name, c, w)| ThreadLoad {
                    name: name.clone(),
                    cores: c.as_secs_f64() / secs,
                    cpu_wait_ms_per_s: w.as_secs_f64() * 1e3 / secs,
                })
                .collect();
            let busiest = threads
                .iter()
                .filter(|t| t.name.starts_with("shard-"))
                .map(|t| t.cores)
                .fold(0.0, f64::max);
            ServerCpu {
                cpu_s: cpu.as_secs_f64(),
                cores,
                us_per_packet: us,
                split_us_per_packet: m.server_user_share.map(|share| UserKernel {
                    user: us * share,
                    kernel: us * (1.0 - share),
                }),
                pps_per_core: if cores > 0.0 {
                    delivered_pps / cores
                } else {
                    0.0
                },
                floor_multiple: if floor_ns > 0.0 {
                    us * 1e3 / floor_ns
                } else {
                    0.0
                },
                projected_capacity_pps: (busiest > 0.0).then(|| delivered_pps / busiest),
                cpu_wait_ms_per_s: m.server_waited.map(|w| w.as_secs_f64() * 1e3 / secs),
                threads,
            }
        });
        let latency = |h: &hdrhistogram::Histogram<u64>| {
            let q = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
            Latency {
                p50_us: q(0.5),
                p90_us: q(0.9),
                p99_us: q(0.99),
                p999_us: q(0.999),
                max_us: h.max() as f64 / 1e3,
                samples: h.len(),
            }
        };
        let mut joins = m.join_times.clone();
        joins.sort();
        let lost = m.loss.expected.saturating_sub(m.loss.received);
        let per_peer_kib = match (m.server_rss_idle_kib, m.server_rss_loaded_kib) {
            (Some(a), Some(b)) if m.peers > 0 => Some(b.saturating_sub(a) as f64 / m.peers as f64),
            _ => None,
        };
        Report {
            scenario,
            description: scenario.describe(),
            server,
            shards,
            cores,
            machine_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            traffic: TrafficReport {
                video_kbps: traffic.video_kbps,
                fps: traffic.fps,
                keyframe_interval_ms: traffic.keyframe_interval.as_millis() as u64,
                simulcast: traffic.simulcast,
            },
            peers: m.peers,
            publishers: m.publishers,
            subscriptions: m.subscriptions,
            window_s: secs,
            sent_pps: m.window_sent as f64 / secs,
            delivered_pps,
            delivered_mbps: m.tally.window_bytes as f64 * 8.0 / secs / 1e6,
            video_share,
            server_unknown: if server_cpu.is_none() {
                m.server_unknown.clone()
            } else {
                None
            },
            server_cpu,
            generator_cpu: GeneratorCpu {
                cpu_s: m.generator_cpu.as_secs_f64(),
                cores: m.generator_cpu.as_secs_f64() / secs,
                us_per_packet: per_packet_us(m.generator_cpu),
                cpu_wait_ms_per_s: m.generator_waited.as_secs_f64() * 1e3 / secs,
            },
            latency: latency(&m.tally.latency),
            socket_latency: latency(&m.tally.socket_latency),
            server_latency: m.server_latency.as_ref().ok().and_then(ServerLatency::new),
            server_latency_unknown: match &m.server_latency {
                Ok(h) if h.count() == 0 => Some("the server counted no datagram".into()),
                Ok(_) => None,
                Err(e) => Some(format!("{e:#}")),
            },
            loss: LossReport {
                expected: m.loss.expected,
                received: m.loss.received,
                lost,
                ratio: if m.loss.expected > 0 {
                    lost as f64 / m.loss.expected as f64
                } else {
                    0.0
                },
                duplicates: m.tally.duplicates,
                tail_ms: m.tail.0.as_millis() as u64,
                tail_complete: m.tail.1,
                late: m.tally.late,
                late_ratio: match m.tally.latency.len() {
                    0 => 0.0,
                    n => m.tally.late as f64 / n as f64,
                },
                late_after_ms: crate::check::LATE_AFTER.as_millis() as u64,
            },
            feedback: Feedback {
                nacks: m.nacks,
                plis_sent: m.tally.plis,
                keyframe_requests_received: m.keyframe_requests,
                keyframes_on_request: m.keyframes_on_request,
            },
            join: Join {
                p50_ms: pct(&joins, 0.5),
                p95_ms: pct(&joins, 0.95),
                max_ms: joins.last().map(|d| d.as_secs_f64() * 1e3),
                samples: joins.len(),
                all_ready_ms: m.ready_after.as_millis() as u64,
                per_second: m.peers as f64 / m.ready_after.as_secs_f64().max(1e-3),
                offered_per_second: m.join_rate,
            },
            memory: Memory {
                idle_rss_kib: m.server_rss_idle_kib,
                loaded_rss_kib: m.server_rss_loaded_kib,
                per_peer_kib,
            },
            floor_ns_per_packet: floor_ns,
            floor,
            problems: Problems {
                skipped_frames: m.skipped,
                scheduled_frames: m.scheduled,
                generator_send_dropped: m.udp_send_dropped,
                unstamped: m.tally.unstamped,
                errors: m.errors.clone(),
            },
            hop: m.hop.clone(),
            simulcast: m.layers.as_ref().map(|(start, end)| {
                crate::simulcast::SimulcastReport::new(
                    start,
                    end,
                    m.tally.window_layer_bytes,
                    secs,
                    m.publishers,
                )
            }),
        }
    }

    /// The report as a table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("unknown".into(), |v| format!("{v:.1} {unit}"));
        row(
            "scenario",
            format!("{} — {}", self.scenario.name(), self.description),
        );
        row("server", self.server.clone());
        row("cores", self.cores.clone());
        row(
            "traffic",
            format!(
                "video {} kbit/s at {} fps{}, keyframe every {} ms; audio 50 pps",
                self.traffic.video_kbps,
                self.traffic.fps,
                if self.traffic.simulcast {
                    " (the top of 3 simulcast layers)"
                } else {
                    ""
                },
                self.traffic.keyframe_interval_ms
            ),
        );
        row(
            "peers",
            format!(
                "{} ({} publishing), {} forwarded streams",
                self.peers, self.publishers, self.subscriptions
            ),
        );
        row("measured window", format!("{:.1} s", self.window_s));
        row(
            "sent / delivered",
            format!(
                "{:.0} pps sent, {:.0} pps delivered ({:.1} Mbit/s, {:.0}% video)",
                self.sent_pps,
                self.delivered_pps,
                self.delivered_mbps,
                self.video_share * 100.0
            ),
        );
        match &self.server_cpu {
            Some(s) => {
                row(
                    "server CPU per packet",
                    format!(
                        "{:.2} µs ({:.1}× the floor of {:.2} µs){}",
                        s.us_per_packet,
                        s.floor_multiple,
                        self.floor_ns_per_packet / 1e3,
                        s.split_us_per_packet.map_or(String::new(), |split| format!(
                            "; {:.1} in user space, {:.1} in the kernel",
                            split.user, split.kernel
                        ))
                    ),
                );
                row(
                    "server CPU",
                    format!(
                        "{:.2} cores busy; {:.0} pps per busy core; waited for a CPU {} ms/s",
                        s.cores,
                        s.pps_per_core,
                        s.cpu_wait_ms_per_s
                            .map_or("?".into(), |w| format!("{w:.1}"))
                    ),
                );
                let threads: Vec<String> = s
                    .threads
                    .iter()
                    .filter(|t| t.cores >= 0.005)
                    .map(|t| format!("{} {:.2}", t.name, t.cores))
                    .collect();
                row("server threads (cores)", threads.join(", "));
                if let Some(c) = s.projected_capacity_pps {
                    row(
                        "projected capacity",
                        format!("{c:.0} pps (busiest shard at 100%)"),
                    );
                }
            }
            None => row(
                "server CPU",
                format!(
                    "unknown: {}",
                    self.server_unknown
                        .as_deref()
                        .unwrap_or("the server's accounting was not read")
                ),
            ),
        }
        row(
            "generator CPU",
            format!(
                "{:.2} cores busy; {:.2} µs per delivered packet; waited for a CPU {:.1} ms/s",
                self.generator_cpu.cores,
                self.generator_cpu.us_per_packet,
                self.generator_cpu.cpu_wait_ms_per_s
            ),
        );
        let l = &self.latency;
        row(
            "latency p50 / p99 / max",
            format!(
                "{:.0} / {:.0} / {:.0} µs ({} packets)",
                l.p50_us, l.p99_us, l.max_us, l.samples
            ),
        );
        let l = &self.socket_latency;
        row(
            "  to the socket",
            format!(
                "{:.0} / {:.0} / {:.0} µs (kernel arrival stamp, before the generator reads it)",
                l.p50_us, l.p99_us, l.max_us
            ),
        );
        row(
            "  in the server",
            match (&self.server_latency, &self.server_latency_unknown) {
                (Some(s), _) => format!(
                    "p50 {}, p99 {}, mean {:.0} µs (its /metrics histogram, {} datagrams)",
                    bucket_range(s.p50_us),
                    bucket_range(s.p99_us),
                    s.mean_us,
                    s.datagrams
                ),
                (None, why) => format!("unknown: {}", why.as_deref().unwrap_or("not read")),
            },
        );
        let loss = &self.loss;
        row(
            "delivered loss",
            format!(
                "{} of {} ({:.4}%), {} duplicates; tail {} ms{}",
                loss.lost,
                loss.expected,
                loss.ratio * 100.0,
                loss.duplicates,
                loss.tail_ms,
                if loss.tail_complete {
                    ""
                } else {
                    " (incomplete)"
                }
            ),
        );
        row(
            "late",
            format!(
                "{} ({:.4}%) reached the socket {} ms or more after they were sent",
                loss.late,
                loss.late_ratio * 100.0,
                loss.late_after_ms
            ),
        );
        let f = &self.feedback;
        row(
            "NACKs / PLIs",
            format!(
                "{} NACKs, {} PLIs sent; {} keyframe requests reached publishers",
                f.nacks.map_or("unknown".into(), |n| n.to_string()),
                f.plis_sent,
                f.keyframe_requests_received
            ),
        );
        row(
            "join p50 / p95",
            format!(
                "{} / {} ({} peers); all ready after {} ms: {:.0} joins/s (offered {:.0}/s)",
                opt(self.join.p50_ms, "ms"),
                opt(self.join.p95_ms, "ms"),
                self.join.samples,
                self.join.all_ready_ms,
                self.join.per_second,
                self.join.offered_per_second
            ),
        );
        row(
            "server memory per peer",
            format!(
                "{} (RSS {} → {} KiB)",
                opt(self.memory.per_peer_kib, "KiB"),
                self.memory
                    .idle_rss_kib
                    .map_or("?".into(), |v| v.to_string()),
                self.memory
                    .loaded_rss_kib
                    .map_or("?".into(), |v| v.to_string())
            ),
        );
        let fl = &self.floor;
        row(
            "floor (this machine)",
            format!(
                "video {:.2} µs = protect {:.2} + send {:.2}; audio {:.2} µs",
                fl.video.floor_ns / 1e3,
                fl.video.protect_aes256gcm_ns / 1e3,
                fl.video.send_batched_ns / 1e3,
                fl.audio.floor_ns / 1e3
            ),
        );
        let p = &self.problems;
        if p.skipped_frames + p.generator_send_dropped + p.unstamped > 0 || !p.errors.is_empty() {
            row(
                "problems",
                format!(
                    "{} skipped frames, {} generator send drops, {} unstamped{}",
                    p.skipped_frames,
                    p.generator_send_dropped,
                    p.unstamped,
                    p.errors
                        .iter()
                        .map(|e| format!("; {e}"))
                        .collect::<String>()
                ),
            );
        }
        if let Some(s) = &self.simulcast {
            rows.extend(s.rows());
        }
        let mut out = render(&rows);
        if let Some(hop) = &self.hop {
            out.push('\n');
            out.push_str(&hop.table());
        }
        out
    }
}

/// A two-column table.
pub fn render(rows: &[(String, String)]) -> String {
    let w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<w$}  {v}");
    }
    out
}

/// The floor alone, as a table.
pub fn floor_table(f: &Floor) -> String {
    let mut rows = Vec::new();
    for s in [&f.video, &f.audio] {
        let b = s.payload_bytes;
        rows.push((
            format!("{b} B: SRTP protect"),
            format!(
                "AEAD-AES-256-GCM {:.2} µs (negotiated); AEAD-AES-128-GCM {:.2} µs; AES-CM+HMAC-SHA1-80 {:.2} µs",
                s.protect_aes256gcm_ns / 1e3,
                s.protect_aes128gcm_ns / 1e3,
                s.protect_aescm_sha1_ns / 1e3
            ),
        ));
        rows.push((
            format!("{b} B: loopback send"),
            format!(
                "{:.2} µs per packet in sendmmsg batches of 32; {:.2} µs one send_to each; {} in UDP GSO sends of 16",
                s.send_batched_ns / 1e3,
                s.send_single_ns / 1e3,
                s.send_gso16_ns.map_or("no GSO".into(), |g| format!("{:.2} µs", g / 1e3))
            ),
        ));
        rows.push((
            format!("{b} B: floor"),
            format!("{:.2} µs per packet", s.floor_ns / 1e3),
        ));
    }
    render(&rows)
}
