//! A small benchmark run as a test: the real `peer-calls` binary started by the bench as
//! its own process, three synthetic peers in one room for three seconds. It checks
//! correctness, never speed: every packet published after a subscriber's first one
//! reached it, and every field of the report is present and sane.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bench::scenario::Scenario;
use bench::traffic::TrafficConfig;
use bench::{BenchOptions, Target, floor, run_once};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_peer-calls"))
}

/// Runs `peer-calls bench <args> --json <json>`, asserts it succeeded, returns its stdout.
fn bench_cli(args: &[&str], json: &std::path::Path) -> String {
    let out = Command::new(bin())
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(json)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_small_meeting_delivers_every_packet_and_reports_sane_figures() {
    let started = Instant::now();
    let floor = floor::measure(640).expect("the floor");
    let opts = BenchOptions {
        scenario: Scenario::Meeting {
            rooms: 1,
            people: 3,
        },
        traffic: TrafficConfig {
            video_kbps: 1000,
            fps: 30,
            keyframe_interval: Duration::from_secs(2),
            simulcast: false,
        },
        target: Target::Start {
            bin: bin(),
            shards: 1,
            nodes: 1,
            shard_cpu: None,
        },
        join_rate: 50.0,
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(3),
        ready_timeout: Duration::from_secs(30),
        tail: Duration::from_secs(5),
        progress: false,
    };
    let r = run_once(&opts, &floor).expect("the run");
    eprintln!("{}", r.table());

    // Everyone in, everything subscribed.
    assert_eq!((r.peers, r.publishers, r.subscriptions), (3, 3, 12));
    assert!(r.problems.errors.is_empty(), "{:?}", r.problems.errors);
    assert_eq!(r.problems.unstamped, 0);
    assert_eq!(r.problems.generator_send_dropped, 0);

    // Every packet reached every subscriber: nothing lost once the tail drained.
    assert!(r.loss.tail_complete, "packets still missing after the tail");
    assert!(
        r.loss.expected > 1000,
        "{} packets expected",
        r.loss.expected
    );
    assert_eq!(r.loss.received, r.loss.expected);
    assert_eq!(r.loss.lost, 0);
    assert_eq!(r.loss.ratio, 0.0);
    // Late counts packets sent inside the window, against the deadline.
    assert_eq!(r.loss.late_after_ms, 200);
    assert!(r.loss.late <= r.latency.samples);
    assert!((0.0..=1.0).contains(&r.loss.late_ratio));
    // Each packet goes to the two other members (the window edges blur it a little).
    assert!(r.sent_pps > 100.0);
    let fanout = r.delivered_pps / r.sent_pps;
    assert!((1.5..=2.5).contains(&fanout), "fan-out {fanout}");
    assert!(r.video_share > 0.5 && r.video_share < 1.0);

    // The server's own accounting, against the floor.
    let cpu = r.server_cpu.as_ref().expect("the server's CPU is known");
    assert!(cpu.cpu_s > 0.0 && cpu.us_per_packet > 0.0 && cpu.us_per_packet.is_finite());
    assert!(cpu.floor_multiple > 0.0 && cpu.floor_multiple.is_finite());
    assert!(cpu.threads.iter().any(|t| t.name == "shard-0"));
    // The user/kernel split adds up to the whole.
    let split = cpu
        .split_us_per_packet
        .expect("the kernel's user/system split");
    assert!(split.user >= 0.0 && split.kernel >= 0.0);
    assert!(
        (split.user + split.kernel - cpu.us_per_packet).abs() < 1e-6 * cpu.us_per_packet.max(1.0)
    );
    assert!(r.floor_ns_per_packet > 0.0);
    assert!(r.generator_cpu.cpu_s > 0.0);
    assert!(r.cores.starts_with("shard-0 on CPU "), "{}", r.cores);

    // Latency, join, memory, feedback.
    let l = &r.latency;
    assert!(l.samples > 1000);
    assert!(l.p50_us > 0.0 && l.p50_us <= l.p99_us && l.p99_us <= l.max_us);
    assert!(l.max_us < 5_000_000.0, "a packet took {} µs", l.max_us);
    // Every packet carries the kernel's arrival stamp, and it arrived in the socket
    // before the generator read it (1 ms of slack for mapping the system clock onto
    // the monotonic one).
    let s = &r.socket_latency;
    assert_eq!(s.samples, l.samples, "a kernel stamp on every packet");
    assert!(s.p50_us > 0.0 && s.p50_us <= s.p99_us && s.p99_us <= s.max_us);
    assert!(s.p50_us <= l.p50_us + 1_000.0 && s.max_us <= l.max_us + 1_000.0);
    // The server's own figure, from its /metrics histogram: it counted the copies it
    // sent (its counters lag by up to half a second at each edge of the window).
    let own = r.server_latency.as_ref().expect("the server's own latency");
    let delivered = r.delivered_pps * r.window_s;
    assert!(
        own.datagrams as f64 > delivered / 2.0,
        "{} datagrams counted, {delivered} delivered",
        own.datagrams
    );
    assert!(own.mean_us > 0.0 && own.mean_us < 1e6, "{own:?}");
    assert!(own.p50_us.0 <= own.p99_us.0, "{own:?}");
    assert!(r.server_latency_unknown.is_none());
    assert_eq!(r.join.samples, 2, "the 2nd and 3rd members found media");
    assert!(r.join.p50_ms.is_some_and(|v| v > 0.0 && v < 10_000.0));
    assert!(r.join.p95_ms >= r.join.p50_ms);
    // 3 peers all ready after all_ready_ms (whole ms): their rate, and the rate asked for.
    let ms = r.join.all_ready_ms as f64;
    let rate = |ms: f64| 3.0 / (ms.max(1.0) / 1e3);
    assert!(
        r.join.per_second <= rate(ms) && r.join.per_second >= rate(ms + 1.0),
        "{:?}",
        r.join
    );
    assert_eq!(r.join.offered_per_second, 50.0);
    let per_peer = r.memory.per_peer_kib.expect("the server's memory is known");
    assert!(per_peer > 0.0 && per_peer < 100_000.0);
    assert!(r.feedback.nacks.is_some());
    assert!(r.feedback.keyframe_requests_received >= 1);

    // The JSON carries the same fields.
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "server_cpu",
        "delivered_pps",
        "latency",
        "socket_latency",
        "server_latency",
        "loss",
        "feedback",
        "join",
        "memory",
        "floor",
        "floor_ns_per_packet",
        "cores",
    ] {
        assert!(json.get(key).is_some(), "no {key} in the JSON");
    }
    assert_eq!(json["scenario"]["name"], "meeting");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn the_floor_command_writes_its_json() {
    let dir = std::env::temp_dir().join(format!("peer-calls-bench-{}", std::process::id()));
    let json = dir.join("floor.json");
    let text = bench_cli(&["floor", "--packets", "640"], &json);
    assert!(text.contains("floor"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["video"]["floor_ns"].as_f64().unwrap() > 0.0);
    assert!(v["audio"]["protect_aes256gcm_ns"].as_f64().unwrap() > 0.0);
    let _ = std::fs::remove_dir_all(dir);
}

/// `meeting --simulcast`: three layers from each publisher, the speaker's tile large and
/// the others thumbnails, the speaker changing after 5 s. Every packet of each layer's
/// stretch arrives across the switches, thumbnails get the lowest layer and the speaker
/// the top one, the layers no tile wants are paused at the publishers, and the server
/// counts the switches the speaker change made.
#[test]
fn a_simulcast_meeting_switches_layers_with_the_speaker_and_saves_uplink() {
    let dir = std::env::temp_dir().join(format!("peer-calls-simulcast-{}", std::process::id()));
    let json = dir.join("meeting.json");
    let args = [
        "meeting",
        "--rooms",
        "1",
        "--people",
        "3",
        "--simulcast",
        "--warmup",
        "0.5",
        "--duration",
        "7",
        "--floor-packets",
        "640",
        "--quiet",
    ];
    let text = bench_cli(&args, &json);
    assert!(text.contains("layer switches"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["loss"]["lost"], 0, "{text}");
    assert_eq!(v["loss"]["tail_complete"], true, "{text}");
    let s = &v["simulcast"];
    let mix = |k: &str| -> Vec<f64> {
        s[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    // Two thumbnails on q and one speaker on f for each subscriber: f carries most bytes
    // (h only on the way up: a subscriber starts on q and probes its way to f).
    for k in ["received_mix", "forwarded_mix"] {
        let m = mix(k);
        assert!(
            m[0] > 0.1 && m[2] > m[1] && m[2] > m[0],
            "{k}: {m:?}\n{text}"
        );
    }
    // The speaker change moves the old speaker's subscribers down and the new one's up
    // (some by way of the middle layer, which resumes with the top one): how many
    // switches that takes depends on which keyframe comes first, at least two.
    assert!(s["switches"].as_u64().unwrap() >= 2, "{text}");
    // Of 3 publishers, the two not speaking pause h and f: well over half is saved.
    let saved = s["saved"].as_f64().unwrap();
    assert!((0.4..0.9).contains(&saved), "{text}");
    assert!(
        s["publisher_kbps"].as_f64().unwrap() < s["publisher_all_layers_kbps"].as_f64().unwrap()
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `--ramp 2`: the scenario, then twice as large; each step's report, what stopped the
/// ramp and the load at the loss SLO reach the table and the JSON. (A small load on
/// loopback: nothing loses, so the two steps run and the ramp stops there.)
#[test]
fn the_ramp_doubles_the_scenario_and_reports_the_load_at_the_slo() {
    let dir = std::env::temp_dir().join(format!("peer-calls-ramp-{}", std::process::id()));
    let json = dir.join("ramp.json");
    let args =
        "audio --rooms 1 --people 2 --ramp 2 --duration 1 --warmup 0.5 --floor-packets 640 --quiet";
    let text = bench_cli(&args.split(' ').collect::<Vec<_>>(), &json);
    assert!(text.contains("at the SLO"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let runs = v["runs"].as_array().unwrap();
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(runs.len(), steps.len(), "every step ran: {steps:?}");
    for s in steps {
        let f = &s["outcome"]["ran"];
        assert!(f["delivered_pps"].as_f64().unwrap() > 0.0, "{s}");
        assert!(f["late"].as_f64().unwrap() >= 0.0, "{s}");
    }
    assert!(!runs.is_empty() && runs.len() <= 2);
    assert_eq!(runs[0]["scenario"]["rooms"], 1);
    if runs.len() == 2 {
        assert_eq!(runs[1]["scenario"]["rooms"], 2, "the second step doubles");
    }
    let limit = v["limit"].as_str().unwrap();
    assert!(
        ["loss", "late", "generator", "steps"].contains(&limit),
        "{limit}"
    );
    if limit == "steps" {
        assert_eq!(runs.len(), 2);
        assert!(v["capacity_pps"].as_f64().unwrap() > 0.0);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `--shard-cpu` against the kernel: each shard thread of a started server lands in its
/// own CPU cgroup with the quota asked for; dropping the cap, even while the server
/// still runs, takes the threads out and removes the groups. Needs what the flag needs (root, the cgroup v1 cpu controller); without
/// it the test says so and checks the clear error instead.
#[test]
fn shard_cpu_puts_each_shard_in_its_own_capped_group() {
    use bench::server::ServerProcess;
    use bench::shard_cpu::{CGROUP_CPU, ShardCpuCap};
    let root = std::path::Path::new(CGROUP_CPU);
    let server = ServerProcess::start(&bin(), 2, 10).expect("the server starts");
    let pid = server.pid();
    let writable = std::fs::create_dir(root.join(format!("peer-calls-probe-{pid}")))
        .and_then(|()| std::fs::remove_dir(root.join(format!("peer-calls-probe-{pid}"))))
        .is_ok();
    if !writable {
        let err = ShardCpuCap::apply(root, pid, 2, 0.3).unwrap_err();
        eprintln!("no writable cgroup v1 cpu controller here: {err}");
        assert!(!err.to_string().is_empty());
        return;
    }
    let cap = ShardCpuCap::apply(root, pid, 2, 0.3).expect("the cap applies");
    // Each thread's name and its cpu cgroup.
    let cpu_groups = || {
        let mut out = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let task = task.unwrap().path();
            let name = std::fs::read_to_string(task.join("comm")).unwrap();
            let cgroups = std::fs::read_to_string(task.join("cgroup")).unwrap();
            let cpu = cgroups
                .lines()
                .find_map(|l| {
                    let (_, rest) = l.split_once(':')?;
                    let (controllers, path) = rest.split_once(':')?;
                    controllers
                        .split(',')
                        .any(|c| c == "cpu")
                        .then(|| path.to_owned())
                })
                .expect("a cpu cgroup line");
            out.push((name.trim().to_owned(), cpu));
        }
        out
    };
    let mut groups = Vec::new();
    for (name, cpu) in cpu_groups() {
        if name.starts_with("shard-") {
            assert_eq!(cpu, format!("/peer-calls-bench-{pid}-{name}"));
            let group = root.join(cpu.trim_start_matches('/'));
            let read = |f: &str| std::fs::read_to_string(group.join(f)).unwrap();
            assert_eq!(read("cpu.cfs_period_us").trim(), "10000");
            assert_eq!(read("cpu.cfs_quota_us").trim(), "3000");
            groups.push(group);
        } else {
            assert!(!cpu.contains("peer-calls-bench"), "{name} is not capped");
        }
    }
    assert_eq!(groups.len(), 2, "one group per shard");
    // Dropped while the server runs: its shards leave the groups, which go.
    drop(cap);
    assert!(groups.iter().all(|g| !g.exists()), "the groups are removed");
    assert!(
        cpu_groups()
            .iter()
            .all(|(_, cpu)| !cpu.contains("peer-calls-bench")),
        "no thread is left capped"
    );
    server.stop();
}

/// The generator runs on the CPUs no shard runs on; with `--shard-cpu` the capped shards
/// are packed onto the fewest CPUs first. Against a started server's real threads and
/// the kernel's affinity masks; on a one-CPU machine nothing can be set apart, and the
/// test checks that nothing is pinned.
#[test]
fn the_generator_runs_on_cpus_of_its_own() {
    use bench::cores::{Placement, affinity};
    use bench::server::ServerProcess;
    let server = ServerProcess::start(&bin(), 2, 10).expect("the server starts");
    let pid = server.pid();
    let shard_cpus = move || {
        let threads = bench::procstat::shard_threads(pid, 2, Duration::from_secs(10)).unwrap();
        threads
            .iter()
            .map(|(_, tid)| affinity(*tid as i32).unwrap())
            .collect::<Vec<_>>()
    };
    // On a thread of its own, so the test's thread keeps its CPUs whatever happens.
    std::thread::spawn(move || {
        let all = affinity(0).unwrap();
        let placement = Placement::apply(pid, 2, Some(0.25)).expect("placed");
        eprintln!("{}", placement.summary);
        if all.len() >= 2 {
            // Two quarter-core shards fit on one CPU; the generator has the others.
            assert_eq!(shard_cpus(), vec![vec![all[0]], vec![all[0]]]);
            assert_eq!(affinity(0).unwrap(), all[1..].to_vec());
            assert!(placement.summary.ends_with(&format!(
                "the generator on CPU {}",
                all[1..].iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
            )));
        } else {
            assert_eq!(affinity(0).unwrap(), all);
            assert!(placement.summary.contains("the generator shares them"));
        }
        drop(placement);
        assert_eq!(
            affinity(0).unwrap(),
            all,
            "the generator may use every CPU again"
        );
    })
    .join()
    .unwrap();
    server.stop();
}

/// A server started by hand, as an operator would, with a metrics token.
struct HandStarted(std::process::Child);

impl Drop for HandStarted {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_server_given_by_url_is_measured_through_its_metrics_page() {
    use bench::probe::ServerProbe;
    use std::net::{SocketAddr, TcpListener, TcpStream};

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let token = "bench-smoke-token";
    let server = HandStarted(
        Command::new(bin())
            .args(["serve", "--bind", &addr.to_string(), "--udp-port", "0"])
            .args(["--shards", "1"])
            .env("PEERCALLS_METRICS_TOKEN", token)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the server starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the server never listened");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A wrong token is refused, and the reason says which flag fixes it.
    let wrong = ServerProbe {
        pid: None,
        addr,
        token: Some("wrong".into()),
    };
    let why = wrong.sample().unwrap_err();
    assert!(why.to_string().contains("--metrics-token"), "{why}");

    // The page and /proc agree on what the server is: its shard thread, its memory.
    let probe = ServerProbe {
        pid: None,
        addr,
        token: Some(token.into()),
    };
    let from_page = probe.sample().expect("the page");
    let from_proc = ServerProbe {
        pid: Some(server.0.id()),
        ..probe.clone()
    }
    .sample()
    .unwrap();
    let names = |s: &bench::procstat::ProcSample| {
        let mut n: Vec<(String, u32)> = s.threads.iter().map(|t| (t.name.clone(), t.tid)).collect();
        n.sort();
        n
    };
    assert_eq!(names(&from_page), names(&from_proc));
    assert!(from_page.rss_kib > 0);

    // A whole run against it, with no process id: the server's CPU and memory are known.
    let floor = floor::measure(640).expect("the floor");
    let opts = BenchOptions {
        scenario: Scenario::Meeting {
            rooms: 1,
            people: 2,
        },
        traffic: TrafficConfig {
            video_kbps: 500,
            fps: 30,
            keyframe_interval: Duration::from_secs(2),
            simulcast: false,
        },
        target: Target::Url { addr, probe },
        join_rate: 50.0,
        warmup: Duration::from_millis(300),
        duration: Duration::from_secs(2),
        ready_timeout: Duration::from_secs(30),
        tail: Duration::from_secs(3),
        progress: false,
    };
    let r = run_once(&opts, &floor).expect("the run");
    eprintln!("{}", r.table());
    assert_eq!(r.loss.lost, 0);
    let cpu = r
        .server_cpu
        .as_ref()
        .expect("the server's CPU, from its page");
    assert!(cpu.cpu_s > 0.0 && cpu.us_per_packet.is_finite());
    assert!(
        cpu.threads
            .iter()
            .any(|t| t.name == "shard-0" && t.cores > 0.0)
    );
    assert!(r.memory.per_peer_kib.is_some());
    assert!(r.server_unknown.is_none());
    assert!(r.server_latency.as_ref().is_some_and(|l| l.datagrams > 0));

    // With the wrong token the run still completes, and says why the CPU is unknown.
    let opts = BenchOptions {
        target: Target::Url { addr, probe: wrong },
        ..opts
    };
    let r = run_once(&opts, &floor).expect("the run");
    assert!(r.server_cpu.is_none());
    let why = r.server_unknown.as_deref().expect("why the CPU is unknown");
    assert!(why.to_string().contains("--metrics-token"), "{why}");
    assert!(r.table().contains("unknown: "), "{}", r.table());
    assert!(r.server_latency.is_none());
    let why = r
        .server_latency_unknown
        .as_deref()
        .expect("why the latency is unknown");
    assert!(why.to_string().contains("--metrics-token"), "{why}");
}
