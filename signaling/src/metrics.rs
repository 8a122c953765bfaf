//! The `/metrics` page: what the server is doing, in the Prometheus text format (0.0.4).
//!
//! Rendered by the signalling thread when someone allowed to read it asks (see
//! `transport::http::MetricsAccess`), from figures that already exist: the app's rooms and
//! sessions, the transport's connections, the counters each shard publishes twice a
//! second, and this process's CPU and memory from the kernel's own accounting. Nothing on
//! the media path does any work for it.

use std::fmt::Write as _;
use std::time::Duration;

use engine::io::ShardSnapshot;
use engine::latency;
use procstat::{ProcSample, ThreadCpu};

/// The page's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the page shows.
#[derive(Debug, Clone, Copy)]
pub struct Figures<'a> {
    /// Rooms with someone in them.
    pub rooms: usize,
    /// Joined peers (connected, or within their reconnect grace period).
    pub sessions: usize,
    /// Open WebSockets.
    pub websockets: usize,
    /// Each shard's published counters, indexed by shard id.
    pub shards: &'a [ShardSnapshot],
    /// This process, if /proc could be read.
    pub process: Option<&'a ProcSample>,
}

/// The page.
pub fn render(f: &Figures<'_>) -> String {
    let mut page = Page(String::with_capacity(8 * 1024));
    page.single(
        "peercalls_rooms",
        "Rooms with someone in them.",
        "gauge",
        f.rooms,
    );
    page.single(
        "peercalls_sessions",
        "Joined peers, connected or within their reconnect grace period.",
        "gauge",
        f.sessions,
    );
    page.single(
        "peercalls_websockets",
        "Open WebSockets.",
        "gauge",
        f.websockets,
    );
    page.single("peercalls_shards", "Media shards.", "gauge", f.shards.len());

    let ids: Vec<String> = (0..f.shards.len()).map(|i| i.to_string()).collect();
    let per_shard: [(&str, &str, ShardFigure); 3] = [
        ("peercalls_shard_peers", "Peers on the shard.", |s| {
            s.peers as f64
        }),
        (
            "peercalls_shard_flows",
            "Remote addresses the shard routes to a peer.",
            |s| s.flows as f64,
        ),
        (
            "peercalls_shard_busy_ratio",
            "Share of the last half second the shard spent working (or waiting for a CPU) rather than waiting for input; new peers avoid a shard over --max-shard-load.",
            |s| s.busy,
        ),
    ];
    for (name, help, figure) in per_shard {
        page.family(name, help, "gauge");
        for (s, id) in f.shards.iter().zip(&ids) {
            page.sample(name, &[("shard", id)], figure(s));
        }
    }
    let counters = f
        .shards
        .iter()
        .map(|s| s.stats.counters())
        .collect::<Vec<_>>();
    if let Some(first) = counters.first() {
        for (i, (name, help, _)) in first.iter().enumerate() {
            let metric = format!("peercalls_shard_{name}_total");
            page.family(&metric, help, "counter");
            for (c, id) in counters.iter().zip(&ids) {
                page.sample(&metric, &[("shard", id)], c[i].2);
            }
        }
    }

    latency_histograms(&mut page, f.shards, &ids);

    if let Some(p) = f.process {
        page.single(
            "process_cpu_seconds_total",
            "User and system CPU time of the process.",
            "counter",
            (p.user + p.system).as_secs_f64(),
        );
        page.family(
            "peercalls_cpu_seconds_total",
            "CPU time of the process in user space and in the kernel (sampled at the kernel's clock tick: proportions).",
            "counter",
        );
        page.sample(
            "peercalls_cpu_seconds_total",
            &[("mode", "user")],
            p.user.as_secs_f64(),
        );
        page.sample(
            "peercalls_cpu_seconds_total",
            &[("mode", "system")],
            p.system.as_secs_f64(),
        );
        page.single(
            "process_resident_memory_bytes",
            "Resident memory of the process.",
            "gauge",
            p.rss_kib * 1024,
        );
        let tids: Vec<String> = p.threads.iter().map(|t| t.tid.to_string()).collect();
        let per_thread: [(&str, &str, ThreadTime); 2] = [
            (
                "peercalls_thread_cpu_seconds_total",
                "CPU time of each thread of the process (shard-<k>: a media shard).",
                |t| t.cpu,
            ),
            (
                "peercalls_thread_cpu_wait_seconds_total",
                "Time each thread was ready to run but waited for a CPU.",
                |t| t.waited,
            ),
        ];
        for (name, help, time) in per_thread {
            page.family(name, help, "counter");
            for (t, tid) in p.threads.iter().zip(&tids) {
                let labels = [("thread", t.name.as_str()), ("tid", tid.as_str())];
                page.sample(name, &labels, time(t).as_secs_f64());
            }
        }
    }
    page.0
}

/// One of a thread's times.
type ThreadTime = fn(&ThreadCpu) -> Duration;

/// One of a shard's gauges.
type ShardFigure = fn(&ShardSnapshot) -> f64;

/// Each shard's forwarding latency (`engine::latency`) as a Prometheus histogram.
fn latency_histograms(page: &mut Page, shards: &[ShardSnapshot], ids: &[String]) {
    const NAME: &str = "peercalls_shard_forwarding_latency_seconds";
    page.family(
        NAME,
        "Datagrams sent, by their time in the shard: from the kernel's arrival stamp on the oldest datagram the shard read in the same turn to their send.",
        "histogram",
    );
    let bounds: Vec<String> = latency::BOUNDS_US
        .iter()
        .map(|&us| (us as f64 / 1e6).to_string())
        .chain(["+Inf".to_owned()])
        .collect();
    let bucket = format!("{NAME}_bucket");
    for (s, id) in shards.iter().zip(ids) {
        let mut cumulative = 0;
        for (n, le) in s.latency.buckets.iter().zip(&bounds) {
            cumulative += n;
            page.sample(&bucket, &[("shard", id), ("le", le)], cumulative);
        }
        let seconds = s.latency.sum_ns as f64 / 1e9;
        page.sample(&format!("{NAME}_sum"), &[("shard", id)], seconds);
        page.sample(&format!("{NAME}_count"), &[("shard", id)], cumulative);
    }
}

/// A page being written.
struct Page(String);

impl Page {
    /// The `HELP` and `TYPE` lines that start a metric's samples.
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// A metric with one sample and no labels.
    fn single(&mut self, name: &str, help: &str, kind: &str, value: impl Value) {
        self.family(name, help, kind);
        self.sample(name, &[], value);
    }

    /// One sample line.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Value) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.0.push_str("\\\\"),
                        '"' => self.0.push_str("\\\""),
                        '\n' => self.0.push_str("\\n"),
                        c => self.0.push(c),
                    }
                }
                self.0.push('"');
            }
            self.0.push('}');
        }
        self.0.push(' ');
        value.write(&mut self.0);
        self.0.push('\n');
    }
}

/// A sample's value: counts as integers, seconds as decimals.
trait Value {
    fn write(self, out: &mut String);
}

impl Value for u64 {
    fn write(self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for usize {
    fn write(self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for f64 {
    fn write(self, out: &mut String) {
        // Display never uses an exponent, and prints whole numbers without a point:
        // both are valid in the text format.
        let _ = write!(out, "{self}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use engine::stats::ShardStats;

    use super::*;

    /// Every sample of a page: (name, labels, value). Panics on a line that is not a valid
    /// comment or sample, or on a sample whose family was not announced before it.
    fn parse(page: &str) -> Vec<(String, String, f64)> {
        let mut typed = HashMap::new();
        let mut samples = Vec::new();
        for line in page.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
                assert!(
                    typed.insert(name.to_owned(), kind).is_none(),
                    "twice: {line}"
                );
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.strip_suffix('}').unwrap()),
                None => (series, ""),
            };
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
                "{line}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find(|f| typed.get(*f) == Some(&"histogram"))
                .unwrap_or(name);
            assert!(typed.contains_key(family), "no TYPE before {line}");
            if typed[family] == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
            samples.push((name.to_owned(), labels.to_owned(), value.parse().unwrap()));
        }
        samples
    }

    fn value(samples: &[(String, String, f64)], name: &str, labels: &str) -> f64 {
        samples
            .iter()
            .find(|s| s.0 == name && s.1 == labels)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}}"))
            .2
    }

    #[test]
    fn a_page_shows_every_figure() {
        let shards = [
            ShardSnapshot {
                stats: ShardStats {
                    rtp_forwarded: 120,
                    rx_bytes: 9000,
                    ..ShardStats::default()
                },
                peers: 3,
                flows: 4,
                busy: 0.25,
                latency: {
                    let mut h = engine::latency::LatencyHistogram::default();
                    h.record(Duration::from_micros(400), 9);
                    h.record(Duration::from_millis(3), 1);
                    h
                },
            },
            ShardSnapshot {
                stats: ShardStats {
                    rtp_forwarded: 5,
                    ..ShardStats::default()
                },
                peers: 1,
                flows: 1,
                busy: 0.0,
                latency: Default::default(),
            },
        ];
        let process = ProcSample {
            cpu: Duration::from_millis(2_600),
            waited: Duration::from_millis(30),
            user: Duration::from_millis(2_000),
            system: Duration::from_millis(500),
            rss_kib: 2048,
            threads: vec![
                ThreadCpu {
                    tid: 11,
                    name: "shard-0".into(),
                    cpu: Duration::from_millis(2_250),
                    waited: Duration::from_millis(20),
                },
                ThreadCpu {
                    tid: 12,
                    name: "odd \"name\"\\".into(),
                    cpu: Duration::from_millis(350),
                    waited: Duration::from_millis(10),
                },
            ],
        };
        let page = render(&Figures {
            rooms: 2,
            sessions: 4,
            websockets: 5,
            shards: &shards,
            process: Some(&process),
        });
        let s = parse(&page);
        assert_eq!(value(&s, "peercalls_rooms", ""), 2.0);
        assert_eq!(value(&s, "peercalls_sessions", ""), 4.0);
        assert_eq!(value(&s, "peercalls_websockets", ""), 5.0);
        assert_eq!(value(&s, "peercalls_shards", ""), 2.0);
        assert_eq!(value(&s, "peercalls_shard_peers", "shard=\"0\""), 3.0);
        assert_eq!(value(&s, "peercalls_shard_flows", "shard=\"1\""), 1.0);
        assert_eq!(value(&s, "peercalls_shard_busy_ratio", "shard=\"0\""), 0.25);
        let fwd = "peercalls_shard_rtp_forwarded_total";
        assert_eq!(value(&s, fwd, "shard=\"0\""), 120.0);
        assert_eq!(value(&s, fwd, "shard=\"1\""), 5.0);
        assert_eq!(
            value(&s, "peercalls_shard_rx_bytes_total", "shard=\"0\""),
            9000.0
        );
        // Every counter of every shard is on the page.
        let shard_counters = s
            .iter()
            .filter(|x| x.0.starts_with("peercalls_shard_") && x.0.ends_with("_total"))
            .count();
        assert_eq!(shard_counters, 2 * ShardStats::default().counters().len());
        assert_eq!(value(&s, "process_cpu_seconds_total", ""), 2.5);
        assert_eq!(
            value(&s, "peercalls_cpu_seconds_total", "mode=\"system\""),
            0.5
        );
        assert_eq!(
            value(&s, "process_resident_memory_bytes", ""),
            2048.0 * 1024.0
        );
        let shard0 = "thread=\"shard-0\",tid=\"11\"";
        assert_eq!(
            value(&s, "peercalls_thread_cpu_seconds_total", shard0),
            2.25
        );
        assert_eq!(
            value(&s, "peercalls_thread_cpu_wait_seconds_total", shard0),
            0.02
        );
        // The latency histogram: cumulative buckets, a sum and a count per shard.
        let h = "peercalls_shard_forwarding_latency_seconds";
        let bucket = |le: &str| {
            value(
                &s,
                &format!("{h}_bucket"),
                &format!("shard=\"0\",le=\"{le}\""),
            )
        };
        assert_eq!(bucket("0.0003"), 0.0);
        assert_eq!(bucket("0.0005"), 9.0);
        assert_eq!(bucket("0.003"), 10.0);
        assert_eq!(bucket("+Inf"), 10.0);
        assert_eq!(value(&s, &format!("{h}_count"), "shard=\"0\""), 10.0);
        assert_eq!(value(&s, &format!("{h}_count"), "shard=\"1\""), 0.0);
        let sum = value(&s, &format!("{h}_sum"), "shard=\"0\"");
        assert!((sum - (9.0 * 0.0004 + 0.003)).abs() < 1e-9, "{sum}");
        let odd = "thread=\"odd \\\"name\\\"\\\\\",tid=\"12\"";
        assert_eq!(value(&s, "peercalls_thread_cpu_seconds_total", odd), 0.35);
    }

    #[test]
    fn a_page_without_process_figures_still_shows_the_rest() {
        let page = render(&Figures {
            rooms: 0,
            sessions: 0,
            websockets: 0,
            shards: &[ShardSnapshot::default()],
            process: None,
        });
        let s = parse(&page);
        assert_eq!(value(&s, "peercalls_shards", ""), 1.0);
        assert!(!page.contains("process_cpu_seconds_total"));
    }
}
