//! `--nodes N`: the scenario on a cluster started on this machine (one `redis-server` and
//! N `peer-calls serve --redis …`), each room's members spread over the nodes in turn,
//! and what a hop between nodes costs:
//!
//! - CPU: the node port threads' CPU (sealing on the sending node, opening and handing
//!   to the shards on the receiving one) per packet that crossed, over the window;
//! - latency: publisher send → subscriber receive of packets that crossed nodes, beside
//!   those that did not (same run, same load), and the difference.
//!
//! The main report's server figures are the first node's.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use hdrhistogram::Histogram;
use procstat::ProcSample;
use serde::Serialize;

use crate::probe::ServerProbe;
use crate::server::ServerProcess;
use crate::traffic::Stamp;

/// The cluster's shared secret (loopback only, for this run).
const SECRET: &str = "peer-calls bench cluster secret";

/// A redis-server and the nodes, stopped when dropped (the nodes first).
pub struct Cluster {
    pub nodes: Vec<ServerProcess>,
    redis: Child,
}

impl Cluster {
    /// Starts a redis-server on a free loopback port and `n` nodes on it, and waits
    /// until each sees all the others.
    pub fn start(
        bin: &Path,
        shards: usize,
        max_room_size: usize,
        n: usize,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let redis = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow!("--nodes needs redis-server (apt-get install redis-server): {e}")
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(anyhow!("redis-server did not listen on {port}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let url = format!("redis://127.0.0.1:{port}/");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            redis,
        };
        for k in 0..n {
            let env = [
                ("PEERCALLS_REDIS", url.clone()),
                ("PEERCALLS_CLUSTER_SECRET", SECRET.to_owned()),
                ("PEERCALLS_NODE_ID", format!("bench-{k}")),
            ];
            cluster
                .nodes
                .push(ServerProcess::start_with(bin, shards, max_room_size, &env)?);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for node in &cluster.nodes {
            let probe = probe_of(node);
            loop {
                let seen = probe
                    .page()
                    .ok()
                    .and_then(|p| figure(&p, "peercalls_cluster_nodes"));
                if seen == Some(n as f64) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(anyhow!("the nodes did not see each other within 15 s"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(cluster)
    }

    /// Where each node's CPU and `/metrics` are read.
    pub fn probes(&self) -> Vec<ServerProbe> {
        self.nodes.iter().map(probe_of).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = self.redis.kill();
        let _ = self.redis.wait();
    }
}

fn probe_of(node: &ServerProcess) -> ServerProbe {
    ServerProbe {
        pid: Some(node.pid()),
        addr: node.http,
        token: None,
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A sample's value on a `/metrics` page.
fn figure(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// One node at one end of the window: its threads' CPU and its node port's counter.
pub struct NodeSample {
    cpu: ProcSample,
    crossed: f64,
}

/// Every node now.
pub fn sample_nodes(probes: &[ServerProbe]) -> anyhow::Result<Vec<NodeSample>> {
    probes
        .iter()
        .map(|p| {
            let page = p.page()?;
            Ok(NodeSample {
                cpu: p.sample()?,
                crossed: figure(&page, "peercalls_node_port_rtp_sent_total").unwrap_or(0.0),
            })
        })
        .collect()
}

/// Latency by whether a packet crossed nodes: peers join node `peer % nodes`.
pub struct HopLatency {
    /// Each stream's publisher's node.
    node_of_stream: Vec<usize>,
    pub same: Histogram<u64>,
    pub cross: Histogram<u64>,
}

impl HopLatency {
    /// `stream_owner[s]`: the peer that publishes stream `s`.
    pub fn new(stream_owner: &[usize], nodes: usize) -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
        Self {
            node_of_stream: stream_owner.iter().map(|p| p % nodes).collect(),
            same: h(),
            cross: h(),
        }
    }

    /// A packet of `stamp` reached a subscriber on `node` at `rx_ns` (sent inside the
    /// window: the caller checks).
    pub fn record(&mut self, node: usize, stamp: &Stamp, rx_ns: u64) {
        let latency = rx_ns.saturating_sub(stamp.sent_ns).max(1);
        let crossed = self
            .node_of_stream
            .get(stamp.stream as usize)
            .is_some_and(|n| *n != node);
        let h = if crossed {
            &mut self.cross
        } else {
            &mut self.same
        };
        let _ = h.record(latency);
    }
}

/// What a hop cost over the window.
#[derive(Debug, Clone, Serialize)]
pub struct HopReport {
    pub nodes: usize,
    /// Packets that crossed between nodes, per second (one per packet per node pair).
    pub crossed_pps: f64,
    /// The node ports' CPU, all nodes together, per packet that crossed, µs.
    pub node_port_us_per_packet: Option<f64>,
    /// The node ports' CPU, as a share of one core.
    pub node_port_cores: f64,
    /// Latency of packets within a node and across nodes, ms: (p50, p99).
    pub same_node_ms: (f64, f64),
    pub cross_node_ms: (f64, f64),
}

impl HopReport {
    pub fn new(
        before: &[NodeSample],
        after: &[NodeSample],
        window: Duration,
        latency: &HopLatency,
    ) -> HopReport {
        let secs = window.as_secs_f64().max(1e-9);
        let crossed: f64 = before
            .iter()
            .zip(after)
            .map(|(b, a)| a.crossed - b.crossed)
            .sum();
        let cpu: Duration = before
            .iter()
            .zip(after)
            .flat_map(|(b, a)| procstat::thread_delta(&b.cpu, &a.cpu))
            .filter(|(name, _, _)| name == "node-port")
            .map(|(_, cpu, _)| cpu)
            .sum();
        let ms = |h: &Histogram<u64>, q| h.value_at_quantile(q) as f64 / 1e6;
        HopReport {
            nodes: before.len(),
            crossed_pps: crossed / secs,
            node_port_us_per_packet: (crossed > 0.0).then(|| cpu.as_secs_f64() * 1e6 / crossed),
            node_port_cores: cpu.as_secs_f64() / secs,
            same_node_ms: (ms(&latency.same, 0.5), ms(&latency.same, 0.99)),
            cross_node_ms: (ms(&latency.cross, 0.5), ms(&latency.cross, 0.99)),
        }
    }

    /// In words, for the report.
    pub fn table(&self) -> String {
        let per = self
            .node_port_us_per_packet
            .map_or("n/a (nothing crossed)".to_owned(), |us| {
                format!("{us:.2} µs")
            });
        let (s50, s99) = self.same_node_ms;
        let (c50, c99) = self.cross_node_ms;
        if s50 == 0.0 && s99 == 0.0 {
            return format!(
                "the cost of a hop ({} nodes on this machine)\n\
                 \x20 packets crossing nodes     {:.0}/s\n\
                 \x20 node port CPU per packet   {per} (sealing + opening, both nodes; {:.2} of a core)\n\
                 \x20 latency across nodes       p50 {c50:.2} ms, p99 {c99:.2} ms\n\
                 \x20 (no two members of a room on one node: rooms of more people than nodes compare)\n",
                self.nodes, self.crossed_pps, self.node_port_cores,
            );
        }
        format!(
            "the cost of a hop ({} nodes on this machine)\n\
             \x20 packets crossing nodes     {:.0}/s\n\
             \x20 node port CPU per packet   {per} (sealing + opening, both nodes; {:.2} of a core)\n\
             \x20 latency within a node      p50 {s50:.2} ms, p99 {s99:.2} ms\n\
             \x20 latency across nodes       p50 {c50:.2} ms, p99 {c99:.2} ms\n\
             \x20 added by the hop           p50 {:+.2} ms, p99 {:+.2} ms\n",
            self.nodes,
            self.crossed_pps,
            self.node_port_cores,
            c50 - s50,
            c99 - s99,
        )
    }
}

/// Where each peer connects: node `peer % nodes`.
pub fn node_of(peer: usize, addrs: &[SocketAddr]) -> SocketAddr {
    addrs[peer % addrs.len()]
}
