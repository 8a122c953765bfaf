//! `peer-calls bench soak`: calls that come and go for minutes on one server, with its
//! memory, file descriptors, threads and CPU per packet read each minute. A server that
//! leaks grows in one of them; the run fails when it does.
//!
//! Each minute is a series of churn cycles: fresh rooms of synthetic peers join, send
//! media for a few seconds, and leave (with `leave`, so their sessions end at once). The
//! server is read between cycles, with nobody in it, so that every reading is of the same
//! idle server. The first minute settles allocator pools and caches; the last is compared
//! with it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde::Serialize;

use crate::driver::{self, RunConfig};
use crate::probe::ServerProbe;
use crate::scenario::Scenario;
use crate::server::ServerProcess;
use crate::traffic::TrafficConfig;

/// How the soak runs.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// The server binary.
    pub bin: PathBuf,
    /// Its shards.
    pub shards: usize,
    /// Minutes of churn.
    pub minutes: u32,
    /// Each cycle: rooms of `people`.
    pub rooms: usize,
    /// People per room.
    pub people: usize,
    /// Seconds of media in each cycle.
    pub cycle_secs: f64,
    /// No live progress line.
    pub quiet: bool,
}

/// One minute's reading of the idle server.
#[derive(Debug, Clone, Serialize)]
pub struct Minute {
    /// 1-based.
    pub minute: u32,
    /// Peers that joined and left during the minute.
    pub peers: usize,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: usize,
    /// Threads.
    pub threads: usize,
    /// The server's CPU per packet delivered during the minute's media windows, µs.
    pub us_per_packet: Option<f64>,
}

/// How much the last minute may exceed the first and still count as flat.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Tolerance {
    /// RSS: this share of the first minute's…
    pub rss_share: f64,
    /// …plus this much, KiB.
    pub rss_kib: u64,
    /// File descriptors more.
    pub fds: usize,
    /// Threads more.
    pub threads: usize,
}

/// The default: 10% + 8 MiB of memory (allocator pools breathe), 8 descriptors (sockets
/// in their last state), no thread.
pub const TOLERANCE: Tolerance = Tolerance {
    rss_share: 0.10,
    rss_kib: 8 * 1024,
    fds: 8,
    threads: 0,
};

/// The whole soak.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Each minute.
    pub minutes: Vec<Minute>,
    /// What counted as flat.
    pub tolerance: Tolerance,
    /// What grew, if anything (empty: flat).
    pub grew: Vec<String>,
}

impl SoakReport {
    /// The table printed at the end.
    pub fn table(&self) -> String {
        let mut t = String::from(Self::HEADER);
        for m in &self.minutes {
            t += &Self::row(m);
        }
        t
    }

    const HEADER: &str = "minute  peers   RSS MiB   fds  threads  µs/packet\n";

    /// One line of the table (also printed live, each minute).
    fn row(m: &Minute) -> String {
        format!(
            "{:>6} {:>6} {:>9.1} {:>5} {:>8} {:>10}\n",
            m.minute,
            m.peers,
            m.rss_kib as f64 / 1024.0,
            m.fds,
            m.threads,
            m.us_per_packet
                .map_or_else(|| "-".into(), |us| format!("{us:.2}")),
        )
    }
}

/// Compares the last minute with the first: what grew past the tolerance.
pub fn growth(minutes: &[Minute], tol: Tolerance) -> Vec<String> {
    let (Some(first), Some(last)) = (minutes.first(), minutes.last()) else {
        return Vec::new();
    };
    let mut grew = Vec::new();
    let rss_limit = (first.rss_kib as f64 * (1.0 + tol.rss_share)) as u64 + tol.rss_kib;
    if last.rss_kib > rss_limit {
        grew.push(format!(
            "memory: {} KiB after minute {}, {} KiB after minute 1 (limit {rss_limit})",
            last.rss_kib, last.minute, first.rss_kib
        ));
    }
    if last.fds > first.fds + tol.fds {
        grew.push(format!(
            "file descriptors: {} after minute {}, {} after minute 1",
            last.fds, last.minute, first.fds
        ));
    }
    if last.threads > first.threads + tol.threads {
        grew.push(format!(
            "threads: {} after minute {}, {} after minute 1",
            last.threads, last.minute, first.threads
        ));
    }
    grew
}

fn count_entries(dir: &Path) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| anyhow!("{}: {e}", dir.display()))?
        .count())
}

/// Runs the soak: starts the server, churns for `minutes`, reads it each minute.
pub fn run(opts: &SoakOptions) -> anyhow::Result<SoakReport> {
    if opts.minutes < 2 {
        return Err(anyhow!(
            "--minutes must be at least 2 (the first is the baseline)"
        ));
    }
    let scenario = Scenario::Meeting {
        rooms: opts.rooms,
        people: opts.people,
    };
    let server = ServerProcess::start(&opts.bin, opts.shards, opts.people)?;
    let pid = server.pid();
    let probe = ServerProbe {
        pid: Some(pid),
        addr: server.http,
        token: None,
    };
    let mut minutes = Vec::new();
    let started = Instant::now();
    let mut cycle = 0u32;
    if !opts.quiet {
        eprint!("{}", SoakReport::HEADER);
    }
    for minute in 1..=opts.minutes {
        let end = started + Duration::from_secs(60 * u64::from(minute));
        let (mut peers, mut cpu, mut packets) = (0usize, Duration::ZERO, 0u64);
        while Instant::now() < end {
            cycle += 1;
            let config = RunConfig {
                scenario,
                traffic: TrafficConfig {
                    video_kbps: 500,
                    fps: 15,
                    keyframe_interval: Duration::from_secs(2),
                    simulcast: false,
                },
                server: server.http,
                nodes: Vec::new(),
                probe: probe.clone(),
                media_ip: server.http.ip(),
                join_rate: 50.0,
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs_f64(opts.cycle_secs),
                ready_timeout: Duration::from_secs(30),
                tail: Duration::from_millis(500),
                progress: false,
                room_prefix: format!("soak-{}-{cycle}", std::process::id()),
            };
            let measured = driver::run(&config).map_err(|e| anyhow!("cycle {cycle}: {e}"))?;
            peers += measured.peers;
            if let Some(c) = measured.server_cpu {
                cpu += c;
                packets += measured.tally.window_packets;
            }
        }
        // The peers have left; let the server finish what their leaving started.
        std::thread::sleep(Duration::from_secs(1));
        let sample = procstat::sample(pid).map_err(|e| anyhow!("reading the server: {e}"))?;
        let m = Minute {
            minute,
            peers,
            rss_kib: sample.rss_kib,
            fds: count_entries(Path::new(&format!("/proc/{pid}/fd")))?,
            threads: count_entries(Path::new(&format!("/proc/{pid}/task")))?,
            us_per_packet: (packets > 0).then(|| cpu.as_secs_f64() * 1e6 / packets as f64),
        };
        if !opts.quiet {
            eprint!("{}", SoakReport::row(&m));
        }
        minutes.push(m);
    }
    server.stop();
    let grew = growth(&minutes, TOLERANCE);
    Ok(SoakReport {
        minutes,
        tolerance: TOLERANCE,
        grew,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(minute: u32, rss_kib: u64, fds: usize, threads: usize) -> Minute {
        Minute {
            minute,
            peers: 100,
            rss_kib,
            fds,
            threads,
            us_per_packet: Some(6.0),
        }
    }

    #[test]
    fn flat_readings_pass_and_each_kind_of_growth_is_named() {
        let flat = [minute(1, 50_000, 20, 6), minute(30, 54_000, 22, 6)];
        assert!(growth(&flat, TOLERANCE).is_empty());
        let leaky = [minute(1, 50_000, 20, 6), minute(30, 80_000, 40, 7)];
        let grew = growth(&leaky, TOLERANCE);
        assert_eq!(grew.len(), 3, "{grew:?}");
        assert!(grew[0].starts_with("memory"));
        assert!(grew[1].starts_with("file descriptors"));
        assert!(grew[2].starts_with("threads"));
    }
}
