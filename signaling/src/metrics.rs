//! The `/metrics` page: what the server is doing, in the OpenMetrics text format that
//! Prometheus scrapes, written by `prometheus-client` (the Prometheus project's own Rust
//! client).
//!
//! Rendered by the signalling thread when someone allowed to read it asks (see
//! `transport::http::MetricsAccess`), from figures that already exist: the app's rooms and
//! sessions, the transport's connections, the counters each shard publishes twice a
//! second, and this process's CPU and memory from the kernel's own accounting. Nothing on
//! the media path does any work for it: the figures are copied into a collector that
//! lives for one scrape, so no metric object is shared with a media thread.

use std::fmt;
use std::time::Duration;

use engine::io::ShardSnapshot;
use engine::latency;
use procstat::{ProcSample, ThreadCpu};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The page's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
    /// How long since each shard's thread last turned its loop, indexed by shard id.
    pub silences: &'a [Duration],
    /// This process, if /proc could be read.
    pub process: Option<&'a ProcSample>,
    /// The cluster, when the server is one node of several (`--redis`).
    pub cluster: Option<crate::cluster_link::ClusterFigures>,
}

/// The page.
pub fn render(f: &Figures<'_>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        rooms: f.rooms,
        sessions: f.sessions,
        websockets: f.websockets,
        shards: f.shards.to_vec(),
        silences: f.silences.to_vec(),
        process: f.process.cloned(),
        cluster: f.cluster,
    }));
    let mut page = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail, and our collector returns only its errors.
    prometheus_client::encoding::text::encode(&mut page, &registry)
        .expect("the metrics page renders into a string");
    page
}

/// One scrape's figures, owned (see the module docs).
#[derive(Debug)]
struct Scrape {
    rooms: usize,
    sessions: usize,
    websockets: usize,
    shards: Vec<ShardSnapshot>,
    silences: Vec<Duration>,
    process: Option<ProcSample>,
    cluster: Option<crate::cluster_link::ClusterFigures>,
}

/// One of a shard's gauges.
type ShardFigure = fn(&ShardSnapshot) -> f64;

/// One of a thread's times.
type ThreadTime = fn(&ThreadCpu) -> Duration;

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        gauge(
            &mut e,
            "peercalls_rooms",
            "Rooms with someone in them.",
            self.rooms,
        )?;
        gauge(
            &mut e,
            "peercalls_sessions",
            "Joined peers, connected or within their reconnect grace period.",
            self.sessions,
        )?;
        gauge(
            &mut e,
            "peercalls_websockets",
            "Open WebSockets.",
            self.websockets,
        )?;
        gauge(
            &mut e,
            "peercalls_shards",
            "Media shards.",
            self.shards.len(),
        )?;

        let ids: Vec<String> = (0..self.shards.len()).map(|i| i.to_string()).collect();
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
            let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (s, id) in self.shards.iter().zip(&ids) {
                m.encode_family(&[("shard", id.as_str())])?
                    .encode_gauge(&figure(s))?;
            }
        }
        let mut m = e.encode_descriptor(
            "peercalls_shard_heartbeat_age_seconds",
            "Time since the shard's thread last turned its loop (a healthy one turns at least every half second; /health reports 2 s as stalled).",
            None,
            MetricType::Gauge,
        )?;
        for (silence, id) in self.silences.iter().zip(&ids) {
            m.encode_family(&[("shard", id.as_str())])?
                .encode_gauge(&silence.as_secs_f64())?;
        }
        let counters: Vec<_> = self.shards.iter().map(|s| s.stats.counters()).collect();
        if let Some(first) = counters.first() {
            for (i, (name, help, _)) in first.iter().enumerate() {
                let name = format!("peercalls_shard_{name}");
                let mut m = e.encode_descriptor(&name, help, None, MetricType::Counter)?;
                for (c, id) in counters.iter().zip(&ids) {
                    counter(&mut m.encode_family(&[("shard", id.as_str())])?, c[i].2)?;
                }
            }
        }
        self.latency_histograms(&mut e, &ids)?;
        self.estimate_bands(&mut e, &ids)?;
        if let Some(c) = &self.cluster {
            gauge(
                &mut e,
                "peercalls_cluster_nodes",
                "Live nodes of the cluster, this one included (from the Redis registry).",
                c.nodes,
            )?;
            gauge(
                &mut e,
                "peercalls_cluster_redis_up",
                "1 while the cluster's Redis answers, 0 while it does not (calls go on).",
                usize::from(c.redis_up),
            )?;
            let mut m = e.encode_descriptor(
                "peercalls_cluster_room_events",
                "Room events received from other nodes.",
                None,
                MetricType::Counter,
            )?;
            counter(&mut m, c.room_events)?;
            node_port(&mut e, &c.node_port)?;
        }
        if let Some(p) = &self.process {
            process(&mut e, p)?;
        }
        Ok(())
    }
}

impl Scrape {
    /// Each shard's forwarding latency (`engine::latency`) as a histogram.
    fn latency_histograms(&self, e: &mut DescriptorEncoder<'_>, ids: &[String]) -> fmt::Result {
        let mut m = e.encode_descriptor(
            "peercalls_shard_forwarding_latency_seconds",
            "Datagrams sent, by their time in the shard: from the kernel's arrival stamp on the oldest datagram the shard read in the same turn to their send.",
            None,
            MetricType::Histogram,
        )?;
        for (s, id) in self.shards.iter().zip(ids) {
            // Upper bounds in seconds; the last bucket is +Inf (f64::MAX to the encoder).
            let buckets: Vec<(f64, u64)> = latency::BOUNDS_US
                .iter()
                .map(|&us| us as f64 / 1e6)
                .chain([f64::MAX])
                .zip(s.latency.buckets.iter().copied())
                .collect();
            let count = s.latency.buckets.iter().sum();
            m.encode_family(&[("shard", id.as_str())])?
                .encode_histogram::<NoLabelSet>(
                    s.latency.sum_ns as f64 / 1e9,
                    count,
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }
}

impl Scrape {
    /// Each shard's subscribers by bandwidth estimate: a gauge per upper bound `le`
    /// (bits per second), cumulative like a histogram's buckets.
    fn estimate_bands(&self, e: &mut DescriptorEncoder<'_>, ids: &[String]) -> fmt::Result {
        let mut m = e.encode_descriptor(
            "peercalls_shard_subscribers_by_estimate",
            "Peers whose bandwidth estimate (from their congestion control feedback) is at most le bits per second.",
            None,
            MetricType::Gauge,
        )?;
        let bounds: Vec<String> = engine::bwe::BAND_BOUNDS_BPS
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_owned()])
            .collect();
        for (s, id) in self.shards.iter().zip(ids) {
            let mut total = 0;
            for (n, le) in s.estimates.iter().zip(&bounds) {
                total += n;
                m.encode_family(&[("le", le.as_str()), ("shard", id.as_str())])?
                    .encode_gauge(&i64::from(total))?;
            }
        }
        Ok(())
    }
}

/// The process's CPU time (total, user/kernel, per thread), CPU wait and memory.
fn process(e: &mut DescriptorEncoder<'_>, p: &ProcSample) -> fmt::Result {
    let mut m = e.encode_descriptor(
        "process_cpu_seconds",
        "User and system CPU time of the process.",
        None,
        MetricType::Counter,
    )?;
    counter(&mut m, (p.user + p.system).as_secs_f64())?;
    let mut m = e.encode_descriptor(
        "peercalls_cpu_seconds",
        "CPU time of the process in user space and in the kernel (sampled at the kernel's clock tick: proportions).",
        None,
        MetricType::Counter,
    )?;
    for (mode, time) in [("user", p.user), ("system", p.system)] {
        counter(&mut m.encode_family(&[("mode", mode)])?, time.as_secs_f64())?;
    }
    gauge(
        e,
        "process_resident_memory_bytes",
        "Resident memory of the process.",
        p.rss_kib * 1024,
    )?;
    let tids: Vec<String> = p.threads.iter().map(|t| t.tid.to_string()).collect();
    let per_thread: [(&str, &str, ThreadTime); 2] = [
        (
            "peercalls_thread_cpu_seconds",
            "CPU time of each thread of the process (shard-<k>: a media shard).",
            |t| t.cpu,
        ),
        (
            "peercalls_thread_cpu_wait_seconds",
            "Time each thread was ready to run but waited for a CPU.",
            |t| t.waited,
        ),
    ];
    // prometheus-client writes label values as they are; a thread's name (from /proc)
    // may hold anything the text format must escape.
    let names: Vec<String> = p.threads.iter().map(|t| escape_label(&t.name)).collect();
    for (name, help, time) in per_thread {
        let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
        for ((t, tid), thread) in p.threads.iter().zip(&tids).zip(&names) {
            let labels = [("thread", thread.as_str()), ("tid", tid.as_str())];
            counter(&mut m.encode_family(&labels)?, time(t).as_secs_f64())?;
        }
    }
    Ok(())
}

/// A label value as the text format writes it: `\\`, `"` and line feeds escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A gauge with one sample and no labels.
/// The node port's figures (multi-node).
fn node_port(e: &mut DescriptorEncoder<'_>, p: &engine::node_port::NodePortStats) -> fmt::Result {
    gauge(
        e,
        "peercalls_node_port_nodes",
        "Other nodes the node port knows (from the cluster's registry).",
        p.nodes,
    )?;
    gauge(
        e,
        "peercalls_node_port_nodes_reachable",
        "Other nodes heard from on the node port within the last 3 s (each pings every second).",
        p.nodes_reachable,
    )?;
    let counters: [(&str, &str, u64); 7] = [
        (
            "peercalls_node_port_rtp_sent",
            "RTP packets sealed for other nodes, one per packet per node that asked for its track.",
            p.rtp_sent,
        ),
        (
            "peercalls_node_port_rtp_received",
            "RTP packets received from other nodes.",
            p.rtp_received,
        ),
        (
            "peercalls_node_port_rtp_unrouted",
            "RTP packets from other nodes for tracks nobody here subscribes to (the origin is told to stop).",
            p.rtp_unrouted,
        ),
        (
            "peercalls_node_port_rtp_nacked",
            "Packets of remote tracks lost between the nodes and asked for again from their origin.",
            p.rtp_nacked,
        ),
        (
            "peercalls_node_port_rtp_resent",
            "Packets sent again to a node that asked (NACK).",
            p.rtp_resent,
        ),
        (
            "peercalls_node_port_datagrams_sent",
            "Sealed datagrams sent to other nodes.",
            p.link.datagrams_sent,
        ),
        (
            "peercalls_node_port_datagrams_received",
            "Datagrams from other nodes that opened under their pair's key.",
            p.link.datagrams_received,
        ),
    ];
    for (name, help, value) in counters {
        let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
        counter(&mut m, value)?;
    }
    let mut m = e.encode_descriptor(
        "peercalls_node_port_refused",
        "Datagrams on the node port dropped unread: from an address no node has, malformed, replayed, or not sealed with the pair's key.",
        None,
        MetricType::Counter,
    )?;
    for (reason, n) in [
        ("unknown_source", p.link.unknown_source),
        ("malformed", p.link.malformed),
        ("replayed", p.link.replayed),
        ("forged", p.link.forged),
    ] {
        counter(&mut m.encode_family(&[("reason", reason)])?, n)?;
    }
    Ok(())
}

fn gauge(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl prometheus_client::encoding::EncodeGaugeValue,
) -> fmt::Result {
    e.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// A counter's one sample (its name gets `_total`).
fn counter(
    m: &mut MetricEncoder<'_>,
    value: impl prometheus_client::encoding::EncodeCounterValue,
) -> fmt::Result {
    m.encode_counter::<NoLabelSet, _, u64>(&value, None)
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
        assert!(
            page.ends_with("# EOF\n"),
            "an OpenMetrics page ends with # EOF"
        );
        for line in page.lines() {
            if line == "# EOF" {
                continue;
            }
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
                .or_else(|| {
                    name.strip_suffix("_total")
                        .filter(|f| typed.get(*f) == Some(&"counter"))
                })
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
                estimates: [0, 1, 2, 0, 0, 1],
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
                estimates: Default::default(),
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
            silences: &[Duration::from_millis(120), Duration::from_secs(3)],
            process: Some(&process),
            cluster: Some(crate::cluster_link::ClusterFigures {
                nodes: 3,
                redis_up: true,
                room_events: 7,
                node_port: engine::node_port::NodePortStats {
                    rtp_sent: 11,
                    nodes: 2,
                    nodes_reachable: 1,
                    link: relay::link::LinkStats {
                        forged: 5,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            }),
        });
        let s = parse(&page);
        assert_eq!(value(&s, "peercalls_rooms", ""), 2.0);
        assert_eq!(value(&s, "peercalls_sessions", ""), 4.0);
        assert_eq!(value(&s, "peercalls_websockets", ""), 5.0);
        assert_eq!(value(&s, "peercalls_shards", ""), 2.0);
        assert_eq!(value(&s, "peercalls_shard_peers", "shard=\"0\""), 3.0);
        assert_eq!(value(&s, "peercalls_shard_flows", "shard=\"1\""), 1.0);
        assert_eq!(value(&s, "peercalls_shard_busy_ratio", "shard=\"0\""), 0.25);
        assert_eq!(
            value(&s, "peercalls_shard_heartbeat_age_seconds", "shard=\"1\""),
            3.0
        );
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
                &format!("le=\"{le}\",shard=\"0\""),
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
        // Subscribers by estimate: cumulative per bound.
        let band = |le: &str| {
            value(
                &s,
                "peercalls_shard_subscribers_by_estimate",
                &format!("le=\"{le}\",shard=\"0\""),
            )
        };
        assert_eq!(band("100000"), 0.0);
        assert_eq!(band("300000"), 1.0);
        assert_eq!(band("1000000"), 3.0);
        assert_eq!(band("10000000"), 3.0);
        assert_eq!(band("+Inf"), 4.0);
        assert_eq!(value(&s, "peercalls_cluster_nodes", ""), 3.0);
        assert_eq!(value(&s, "peercalls_cluster_redis_up", ""), 1.0);
        assert_eq!(value(&s, "peercalls_cluster_room_events_total", ""), 7.0);
        assert_eq!(value(&s, "peercalls_node_port_rtp_sent_total", ""), 11.0);
        assert_eq!(value(&s, "peercalls_node_port_nodes", ""), 2.0);
        assert_eq!(value(&s, "peercalls_node_port_nodes_reachable", ""), 1.0);
        assert_eq!(
            value(&s, "peercalls_node_port_refused_total", "reason=\"forged\""),
            5.0
        );
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
            silences: &[Duration::ZERO],
            process: None,
            cluster: None,
        });
        let s = parse(&page);
        assert_eq!(value(&s, "peercalls_shards", ""), 1.0);
        assert!(!page.contains("process_cpu_seconds_total"));
    }
}
