//! `peer-calls bench`: the synthetic-peer load generator and its reports.
//!
//! Every synthetic peer is a real WebRTC endpoint, the project's one client
//! ([`client::Session`] + [`client::ClientPeer`]) with its own UDP socket, driven with
//! many others by one event loop ([`driver`]). The server under test runs as its own
//! process ([`server`]) so its CPU is its own accounting. Each report carries the floor
//! of this machine ([`floor`]), measured in the same run.
//!
//! | module | concern |
//! |---|---|
//! | [`scenario`] | meeting, webinar, audio: who joins, publishes, subscribes |
//! | [`synthetic`] | one synthetic peer: `Session` + UDP socket + non-blocking WebSocket |
//! | [`driver`] | the event loop and the run's phases |
//! | [`traffic`] | video bursts, keyframes, PLI response, audio; the payload stamp |
//! | [`check`] | what subscribers check: loss, duplicates, latency, PLIs |
//! | [`procstat`] | the server's and the generator's CPU and memory |
//! | [`probe`] | the server's accounting: its process, or its `/metrics` page |
//! | [`floor`] | SRTP protect + batched loopback send |
//! | [`report`] | the table and the JSON |
//! | [`compare`] | `--compare-shards` |
//! | [`ramp`] | `--ramp`: growing load until the SLO or the generator stops it |
//! | [`shard_cpu`] | `--shard-cpu`: each shard of a started server capped at a share of a core |
//! | [`cores`] | the generator on the cores no shard runs on; capped shards packed |
//! | [`soak`] | `soak`: calls coming and going for minutes; memory, descriptors, threads flat |
//! | [`simulcast`] | `--simulcast`: the layer mix, switches, the publishers' uplink saved |

use anyhow::anyhow;
pub mod check;
pub mod compare;
pub mod cores;
pub mod driver;
pub mod floor;
pub mod hop;
pub mod probe;
pub use procstat;
pub mod ramp;
pub mod report;
pub mod scenario;
pub mod server;
pub mod shard_cpu;
pub mod simulcast;
pub mod soak;
pub mod synthetic;
pub mod traffic;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::compare::Comparison;
use crate::driver::{RunConfig, RunError};
use crate::floor::Floor;
use crate::probe::ServerProbe;
use crate::report::Report;
use crate::scenario::Scenario;
use crate::server::ServerProcess;
use crate::traffic::TrafficConfig;

/// `peer-calls bench`: generate load with synthetic WebRTC peers and report what the
/// server did with it.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The scenario, or `floor`.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// R rooms of P people; everyone publishes audio + video and receives everyone else.
    Meeting {
        /// Rooms.
        #[arg(long, default_value_t = 2)]
        rooms: usize,
        /// People per room.
        #[arg(long, default_value_t = 4)]
        people: usize,
        /// Options of every scenario.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// One publisher (audio + video), N subscribers.
    Webinar {
        /// Subscribers.
        #[arg(long, default_value_t = 20)]
        subscribers: usize,
        /// Options of every scenario.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// R rooms of P audio-only people, everyone receiving everyone else.
    Audio {
        /// Rooms.
        #[arg(long, default_value_t = 10)]
        rooms: usize,
        /// People per room.
        #[arg(long, default_value_t = 5)]
        people: usize,
        /// Options of every scenario.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Calls that come and go for minutes on one started server: its RSS, file
    /// descriptors, threads and CPU per packet each minute; fails when the last minute's
    /// grew past the first's (memory +10% + 8 MiB, descriptors +8, threads +0).
    Soak {
        /// Minutes of churn (at least 2: the first is the baseline).
        #[arg(long, default_value_t = 30)]
        minutes: u32,
        /// Rooms in each churn cycle.
        #[arg(long, default_value_t = 4)]
        rooms: usize,
        /// People per room (everyone publishes audio + video, receives everyone else).
        #[arg(long, default_value_t = 4)]
        people: usize,
        /// Seconds of media in each cycle, between joining and leaving.
        #[arg(long, default_value_t = 8.0)]
        cycle: f64,
        /// Shards of the server.
        #[arg(long, default_value_t = 1)]
        shards: usize,
        /// The server binary to start (default: this executable).
        #[arg(long, env = "PEERCALLS_BENCH_SERVER_BIN")]
        server_bin: Option<PathBuf>,
        /// Where to write the JSON report.
        #[arg(long, default_value = "target/bench/soak.json")]
        json: PathBuf,
        /// No line per minute.
        #[arg(long)]
        quiet: bool,
    },
    /// Measure this machine's floor: SRTP protect + batched loopback send per packet.
    Floor {
        /// Packets per size and operation.
        #[arg(long, default_value_t = 20_000)]
        packets: usize,
        /// Where to write the JSON report.
        #[arg(long, default_value = "target/bench/floor.json")]
        json: PathBuf,
    },
}

/// Options of every scenario.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Shards of the server the benchmark starts.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Start a cluster of this many nodes on this machine (a redis-server and N servers
    /// of --shards each) and spread each room's members over them in turn: the report
    /// adds what a hop between nodes costs (the node ports' CPU per packet that crossed,
    /// and the latency it adds). Its other server figures are the first node's.
    #[arg(long, default_value_t = 1, conflicts_with_all = ["url", "compare_shards", "ramp", "shard_cpu"])]
    pub nodes: usize,
    /// Run the scenario on a started server with each of these shard counts (for example
    /// `1,2`) and print the ratios. With --ramp, a ramp on each, and the ratio of the
    /// loads they carry at the SLO.
    #[arg(long, value_delimiter = ',', conflicts_with = "url")]
    pub compare_shards: Vec<usize>,
    /// Run the scenario, then twice as large, four times, … (rooms or subscribers), at
    /// most this many steps, until over 0.5% of the packets are lost or late (200 ms) or
    /// the generator cannot offer more; past the SLO, up to 3 more runs narrow the gap;
    /// report the load at the SLO.
    #[arg(long)]
    pub ramp: Option<usize>,
    /// Cap each shard thread of the started server at this fraction of one core (0.1 to
    /// 1, for example 0.25), each in its own CPU cgroup: a small machine can then saturate
    /// shards while the generator keeps the rest. Needs the cgroup v1 cpu controller at
    /// /sys/fs/cgroup/cpu, writable (root). This is the only option that writes to the
    /// system: it creates one group per shard under /sys/fs/cgroup/cpu
    /// (peer-calls-bench-<pid>-shard-<k>) and removes them when the run ends; without it
    /// the benchmark touches no cgroup.
    #[arg(long, value_parser = shard_cpu::parse_fraction, conflicts_with = "url")]
    pub shard_cpu: Option<f64>,
    /// Load a running server at this address (for example `http://127.0.0.1:3000`)
    /// instead of starting one.
    #[arg(long)]
    pub url: Option<String>,
    /// With --url: the server's process id, to measure its CPU and memory from /proc.
    /// Without it, the benchmark reads them from the server's /metrics page.
    #[arg(long, requires = "url")]
    pub server_pid: Option<u32>,
    /// With --url: the token the server's /metrics page asks for (its --metrics-token),
    /// for its CPU and memory without --server-pid, and its forwarding latency. Not
    /// needed for a server on this host.
    #[arg(long, env = "PEERCALLS_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// The server binary to start (default: this executable).
    #[arg(long, env = "PEERCALLS_BENCH_SERVER_BIN")]
    pub server_bin: Option<PathBuf>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of traffic before the measured window.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Peers joining per second.
    #[arg(long, default_value_t = 50.0)]
    pub join_rate: f64,
    /// Video bitrate of normal frames, kbit/s.
    #[arg(long, default_value_t = 1500)]
    pub video_kbps: u32,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Seconds between periodic keyframes.
    #[arg(long, default_value_t = 2.5)]
    pub keyframe_interval: f64,
    /// Publish video in three simulcast layers (rids q, h, f at a tenth, a third and all
    /// of --video-kbps), as the web client does; subscribers show the speaker large
    /// (1280×720) and everyone else as thumbnails (320×180), and the room's members
    /// speak in turn, 5 s each. The report
    /// adds the layers received and forwarded, the switches, and the publishers' uplink
    /// saved by pausing the layers no tile wants. The server climbs a layer at most every
    /// 4 s: give it a --warmup of 10 s or more to measure the settled mix.
    #[arg(long)]
    pub simulcast: bool,
    /// Packets per size and operation for the floor.
    #[arg(long, default_value_t = 20_000)]
    pub floor_packets: usize,
    /// Where to write the JSON report (default `target/bench/<scenario>.json`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// Where the load goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start `bin serve` with this many shards.
    Start {
        /// The `peer-calls` binary.
        bin: PathBuf,
        /// Shards.
        shards: usize,
        /// Nodes of a cluster (`--nodes`), 1: one server.
        nodes: usize,
        /// Each shard capped at this fraction of a core (`--shard-cpu`).
        shard_cpu: Option<f64>,
    },
    /// A running server.
    Url {
        /// Its HTTP address.
        addr: SocketAddr,
        /// Where its CPU and memory are read.
        probe: ServerProbe,
    },
}

/// One benchmark run, fully specified.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The scenario.
    pub scenario: Scenario,
    /// How publishers send.
    pub traffic: TrafficConfig,
    /// Where the load goes.
    pub target: Target,
    /// Peers joining per second.
    pub join_rate: f64,
    /// Traffic before the window.
    pub warmup: Duration,
    /// The window.
    pub duration: Duration,
    /// How long joining may take.
    pub ready_timeout: Duration,
    /// How long to wait for packets in flight at the end.
    pub tail: Duration,
    /// Live progress line.
    pub progress: bool,
}

fn room_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("bench-{}-{nanos:x}", std::process::id())
}

/// Runs one scenario against one server, with the floor measured first.
pub fn run_once(opts: &BenchOptions, floor: &Floor) -> Result<Report, RunError> {
    let (server, probe, shards, label) = match &opts.target {
        Target::Start {
            bin, shards, nodes, ..
        } if *nodes > 1 => {
            let cluster = hop::Cluster::start(bin, *shards, opts.scenario.room_size(), *nodes)?;
            let probes = cluster.probes();
            let label = format!(
                "started as {nodes} nodes of {shards} shard(s) on one redis-server (server figures: the first node's)"
            );
            return run_on_cluster(opts, floor, cluster, probes, *shards, label);
        }
        Target::Start {
            bin,
            shards,
            shard_cpu,
            ..
        } => {
            let s = ServerProcess::start(bin, *shards, opts.scenario.room_size())?;
            let (addr, pid) = (s.http, s.pid());
            let mut label = format!("started with {shards} shard(s)");
            let cap = match shard_cpu {
                Some(f) => {
                    label += &format!(", each capped at {f} of a core (--shard-cpu)");
                    let root = Path::new(shard_cpu::CGROUP_CPU);
                    Some(shard_cpu::ShardCpuCap::apply(root, pid, *shards, *f)?)
                }
                None => None,
            };
            let probe = ServerProbe {
                pid: Some(pid),
                addr,
                token: None,
            };
            (Some((s, cap)), probe, Some(*shards), label)
        }
        Target::Url { addr, probe } => {
            let label = format!("running at http://{addr}");
            (None, probe.clone(), None, label)
        }
    };
    let cap = match &opts.target {
        Target::Start { shard_cpu, .. } => *shard_cpu,
        Target::Url { .. } => None,
    };
    // Dropped at the end of the run: the generator's thread may use every core again.
    let placement = match probe.pid {
        Some(pid) => Some(cores::Placement::apply(pid, shards.unwrap_or(0), cap)?),
        None => None,
    };
    let cores = placement.as_ref().map_or_else(
        || "not placed: the server's process is unknown".to_owned(),
        |p| p.summary.clone(),
    );
    let config = run_config(opts, probe, Vec::new())?;
    let measured = driver::run(&config);
    if let Some((s, cap)) = server {
        // The server first: its cgroups can only go once its threads have.
        s.stop();
        drop(cap);
    }
    let measured = measured?;
    Ok(Report::new(
        opts.scenario,
        opts.traffic,
        label,
        shards,
        cores,
        &measured,
        floor.clone(),
    ))
}

/// The driver's configuration for `opts` against the server `probe` reads (the first
/// of `nodes`, for a cluster).
fn run_config(
    opts: &BenchOptions,
    probe: ServerProbe,
    nodes: Vec<ServerProbe>,
) -> Result<RunConfig, RunError> {
    Ok(RunConfig {
        scenario: opts.scenario,
        traffic: opts.traffic,
        server: probe.addr,
        media_ip: media_ip_towards(probe.addr)?,
        nodes,
        probe,
        join_rate: opts.join_rate,
        warmup: opts.warmup,
        duration: opts.duration,
        ready_timeout: opts.ready_timeout,
        tail: opts.tail,
        progress: opts.progress,
        room_prefix: room_prefix(),
    })
}

/// [`run_once`] on a started cluster: peers spread over its nodes.
fn run_on_cluster(
    opts: &BenchOptions,
    floor: &Floor,
    cluster: hop::Cluster,
    probes: Vec<ServerProbe>,
    shards: usize,
    label: String,
) -> Result<Report, RunError> {
    let config = run_config(opts, probes[0].clone(), probes)?;
    let measured = driver::run(&config);
    drop(cluster);
    let measured = measured?;
    Ok(Report::new(
        opts.scenario,
        opts.traffic,
        label,
        Some(shards),
        "not placed: several server processes".to_owned(),
        &measured,
        floor.clone(),
    ))
}

/// The local address the synthetic peers' sockets bind to: the server's own loopback
/// address, or, for a server elsewhere, the address this machine sends to it from.
fn media_ip_towards(server: SocketAddr) -> anyhow::Result<IpAddr> {
    if server.ip().is_loopback() {
        return Ok(server.ip());
    }
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // Connecting a UDP socket sends nothing; it only asks the kernel for a route.
    let socket = std::net::UdpSocket::bind(any).map_err(|e| anyhow!("no UDP socket: {e}"))?;
    socket
        .connect(server)
        .and_then(|()| socket.local_addr())
        .map(|a| a.ip())
        .map_err(|e| anyhow!("no route to the server at {server}: {e}"))
}

/// Writes the JSON to `given`, or to `target/bench/<default_name>.json`, and says where.
fn save_json(
    given: Option<PathBuf>,
    default_name: &str,
    value: &impl serde::Serialize,
) -> anyhow::Result<()> {
    let path = given.unwrap_or_else(|| PathBuf::from(format!("target/bench/{default_name}.json")));
    write_json(&path, value)?;
    println!("\nJSON: {}", path.display());
    Ok(())
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Runs `peer-calls bench …`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (scenario, common) = match args.command {
        BenchCommand::Floor { packets, json } => {
            let floor = floor::measure(packets)?;
            println!("The floor of this machine (per packet):\n");
            print!("{}", report::floor_table(&floor));
            return save_json(Some(json), "floor", &floor);
        }
        BenchCommand::Soak {
            minutes,
            rooms,
            people,
            cycle,
            shards,
            server_bin,
            json,
            quiet,
        } => {
            if rooms == 0 || people < 2 || shards == 0 || cycle.is_nan() || cycle <= 0.0 {
                return Err(anyhow!(
                    "a soak needs rooms of at least 2 people, a shard and a cycle over 0 s"
                ));
            }
            let bin = match server_bin {
                Some(b) => b,
                None => std::env::current_exe()
                    .map_err(|e| anyhow!("cannot find this executable: {e}"))?,
            };
            let report = soak::run(&soak::SoakOptions {
                bin,
                shards,
                minutes,
                rooms,
                people,
                cycle_secs: cycle,
                quiet,
            })?;
            println!(
                "
peer-calls bench soak
"
            );
            print!("{}", report.table());
            save_json(Some(json), "soak", &report)?;
            if !report.grew.is_empty() {
                return Err(anyhow!("the server grew: {}", report.grew.join("; ")));
            }
            println!("flat: nothing grew past the tolerance");
            return Ok(());
        }
        BenchCommand::Meeting {
            rooms,
            people,
            common,
        } => (Scenario::Meeting { rooms, people }, common),
        BenchCommand::Webinar {
            subscribers,
            common,
        } => (Scenario::Webinar { subscribers }, common),
        BenchCommand::Audio {
            rooms,
            people,
            common,
        } => (Scenario::Audio { rooms, people }, common),
    };
    let c = &common;
    let bad = |what: &str| Err(anyhow!("{what} must be positive"));
    match scenario {
        Scenario::Meeting { rooms, people } | Scenario::Audio { rooms, people }
            if rooms == 0 || people < 2 =>
        {
            return Err(anyhow!("a meeting needs at least 1 room of 2 people"));
        }
        Scenario::Webinar { subscribers: 0 } => return bad("--subscribers"),
        Scenario::Audio { .. } if c.simulcast => {
            return Err(anyhow!(
                "--simulcast needs video: run a meeting or a webinar"
            ));
        }
        _ => {}
    }
    if c.duration.is_nan() || c.duration <= 0.0 || c.duration > 600.0 {
        return Err(anyhow!("--duration must be in (0, 600] seconds"));
    }
    if c.fps == 0 || c.video_kbps == 0 || c.keyframe_interval.is_nan() || c.keyframe_interval <= 0.0
    {
        return bad("--fps, --video-kbps and --keyframe-interval");
    }
    let bin = match &c.server_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|e| anyhow!("cannot find this executable: {e}"))?,
    };
    let mut opts = BenchOptions {
        scenario,
        traffic: TrafficConfig {
            video_kbps: c.video_kbps,
            fps: c.fps,
            keyframe_interval: Duration::from_secs_f64(c.keyframe_interval),
            simulcast: c.simulcast,
        },
        target: match &c.url {
            Some(url) => {
                let addr = server::parse_url(url)?;
                let probe = ServerProbe {
                    pid: c.server_pid,
                    addr,
                    token: c.metrics_token.clone().filter(|t| !t.is_empty()),
                };
                Target::Url { addr, probe }
            }
            None => Target::Start {
                bin: bin.clone(),
                shards: c.shards,
                nodes: c.nodes,
                shard_cpu: c.shard_cpu,
            },
        },
        join_rate: c.join_rate,
        warmup: Duration::from_secs_f64(c.warmup.max(0.0)),
        duration: Duration::from_secs_f64(c.duration),
        ready_timeout: Duration::from_secs(60),
        tail: Duration::from_secs(3),
        progress: !c.quiet,
    };
    if c.ramp == Some(0) {
        return bad("--ramp");
    }
    if c.nodes == 0 {
        return bad("--nodes");
    }
    eprintln!("measuring the floor…");
    let floor = floor::measure(c.floor_packets)?;
    // `--compare-shards`: a server started with each shard count.
    let started = |shards| Target::Start {
        bin: bin.clone(),
        shards,
        nodes: 1,
        shard_cpu: c.shard_cpu,
    };
    match (c.ramp, c.compare_shards.is_empty()) {
        (Some(max_steps), true) => return run_ramp(&mut opts, &floor, max_steps, c.json.clone()),
        (Some(max_steps), false) => {
            let targets = c.compare_shards.iter().map(|&n| (n, started(n))).collect();
            return compare_ramps(&mut opts, &floor, max_steps, targets, c.json.clone());
        }
        (None, _) => {}
    }
    if c.compare_shards.is_empty() {
        let report = run_once(&opts, &floor)?;
        println!("\npeer-calls bench {}\n", scenario.name());
        print!("{}", report.table());
        return save_json(c.json.clone(), scenario.name(), &report);
    }
    let mut runs = Vec::new();
    for &shards in &c.compare_shards {
        eprintln!("{} on {shards} shard(s)…", scenario.name());
        opts.target = started(shards);
        runs.push(run_once(&opts, &floor)?);
    }
    let cmp = Comparison::new(runs);
    for r in &cmp.runs {
        println!(
            "\npeer-calls bench {} — {} shard(s)\n",
            scenario.name(),
            r.shards.unwrap_or(0)
        );
        print!("{}", r.table());
    }
    println!("\nscaling\n");
    print!("{}", cmp.table());
    save_json(
        c.json.clone(),
        &format!("{}-compare", scenario.name()),
        &cmp,
    )
}

/// `--ramp`: the scenario at 1×, 2×, 4×, … its size until a limit; see [`ramp`].
fn ramp(opts: &mut BenchOptions, floor: &Floor, max_steps: usize) -> anyhow::Result<ramp::Ramp> {
    let base = opts.scenario;
    let mut runs = Vec::new();
    let mut steps = Vec::new();
    let mut limit = ramp::Limit::Steps;
    let mut run_step = |scenario, label: String| -> anyhow::Result<ramp::Outcome> {
        opts.scenario = scenario;
        eprintln!("{label}: {}…", opts.scenario.describe());
        let outcome = match run_once(opts, floor) {
            Ok(report) => {
                let figures = ramp::StepFigures::of(&report);
                runs.push(report);
                ramp::Outcome::Ran(figures)
            }
            Err(RunError::NotReady(why)) => ramp::Outcome::NotReady(why),
            Err(e) => return Err(e.into()),
        };
        steps.push(ramp::Step {
            scenario,
            outcome: outcome.clone(),
        });
        Ok(outcome)
    };
    let mut last: Option<(usize, ramp::StepFigures)> = None;
    for step in 0..max_steps {
        let scenario = ramp::scaled(base, 1 << step);
        let outcome = run_step(scenario, format!("ramp step {}", step + 1))?;
        if let Some(l) = ramp::stop_after(&outcome, last.as_ref().map(|l| &l.1)) {
            limit = l;
            // Past the SLO: look between the last size within it and this one.
            if let (true, Some((mut lo, _))) = (l.past_slo(), last) {
                let mut hi = ramp::units(scenario);
                for k in 0..ramp::REFINE_RUNS {
                    let Some(mid) = ramp::between(lo, hi) else {
                        break;
                    };
                    let outcome =
                        run_step(ramp::sized(base, mid), format!("ramp refinement {}", k + 1))?;
                    if outcome.within_slo() {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
            }
            break;
        }
        if let ramp::Outcome::Ran(figures) = outcome {
            last = Some((ramp::units(scenario), figures));
        }
    }
    opts.scenario = base;
    Ok(ramp::Ramp::new(runs, steps, limit))
}

/// `--compare-shards … --ramp N`: a ramp on each `(shards, started server)`.
fn compare_ramps(
    opts: &mut BenchOptions,
    floor: &Floor,
    max_steps: usize,
    targets: Vec<(usize, Target)>,
    json: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut ramps = Vec::new();
    for (shards, target) in targets {
        eprintln!("{} on {shards} shard(s), ramp…", opts.scenario.name());
        opts.target = target;
        ramps.push((shards, ramp(opts, floor, max_steps)?));
    }
    let cmp = compare::RampComparison::new(ramps);
    for (shards, r) in &cmp.ramps {
        println!(
            "\npeer-calls bench {} --ramp — {shards} shard(s)\n",
            opts.scenario.name()
        );
        print!("{}", r.table());
    }
    println!("\nscaling at the SLO\n");
    print!("{}", cmp.table());
    save_json(
        json,
        &format!("{}-compare-ramp", opts.scenario.name()),
        &cmp,
    )
}

fn run_ramp(
    opts: &mut BenchOptions,
    floor: &Floor,
    max_steps: usize,
    json: Option<PathBuf>,
) -> anyhow::Result<()> {
    let base = opts.scenario;
    let result = ramp(opts, floor, max_steps)?;
    println!("\npeer-calls bench {} --ramp\n", base.name());
    print!("{}", result.table());
    save_json(json, &format!("{}-ramp", base.name()), &result)
}
