//! A process's accounting from the kernel: its CPU time per thread
//! (`/proc/<pid>/task/*/schedstat`: nanoseconds on a CPU and waiting for one; where that
//! file is missing, utime + stime of `/proc/<pid>/stat`, in clock ticks), its resident
//! memory (`/proc/<pid>/status` VmRSS), and this process's own CPU (`getrusage` where
//! /proc is unreadable).
//!
//! Two users: the benchmark reads the server's process (its own accounting, never mixed
//! with the generator's), and the server reads itself for its `/metrics` page.

use std::fs;
use std::io;
use std::time::{Duration, Instant};

/// CPU time of one thread.
#[derive(Debug, Clone)]
pub struct ThreadCpu {
    /// Its thread id.
    pub tid: u32,
    /// Its name (`comm`), for example `shard-0` or `signaling`.
    pub name: String,
    /// User + system time.
    pub cpu: Duration,
    /// Time it was runnable but waited for a CPU (zero when unknown).
    pub waited: Duration,
}

/// One reading of a process.
#[derive(Debug, Clone)]
pub struct ProcSample {
    /// User + system time of every thread of the process.
    pub cpu: Duration,
    /// Time its threads were runnable but waited for a CPU (zero when unknown).
    pub waited: Duration,
    /// Of its CPU time, the part in user space and the part in the kernel, all threads
    /// together: the kernel's split, sampled at its clock tick (a few per cent apart
    /// over a second of CPU), so they give proportions rather than exact times.
    pub user: Duration,
    /// See `user`.
    pub system: Duration,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Per thread.
    pub threads: Vec<ThreadCpu>,
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// The `comm` field, utime and stime from the text of a `stat` file.
fn parse_stat(text: &str) -> Option<(String, Duration, Duration)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_string();
    // After ")": state is field 3; utime and stime are fields 14 and 15.
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    let ticks = clock_ticks();
    let time = |t: u64| Duration::from_nanos(t * 1_000_000_000 / ticks);
    Some((name, time(utime), time(stime)))
}

/// Time on a CPU and time waiting for one, from a `schedstat` file.
fn parse_schedstat(text: &str) -> Option<(Duration, Duration)> {
    let mut f = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    let run = f.next()??;
    let wait = f.next()??;
    Some((Duration::from_nanos(run), Duration::from_nanos(wait)))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("cannot parse {what}"))
}

/// Reads the CPU time, RSS and per-thread CPU of process `pid`.
pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (_, user, system) = parse_stat(&stat).ok_or_else(|| bad("stat"))?;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut threads = Vec::new();
    let mut precise = true;
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) {
        for entry in dir.flatten() {
            let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(text) = fs::read_to_string(entry.path().join("stat")) else {
                continue; // the thread ended meanwhile
            };
            let Some((name, user, system)) = parse_stat(&text) else {
                continue;
            };
            let ticks = user + system;
            let sched = fs::read_to_string(entry.path().join("schedstat"))
                .ok()
                .and_then(|t| parse_schedstat(&t));
            precise &= sched.is_some();
            let (cpu, waited) = sched.unwrap_or((ticks, Duration::ZERO));
            threads.push(ThreadCpu {
                tid,
                name,
                cpu,
                waited,
            });
        }
    }
    threads.sort_by_key(|t| t.tid);
    Ok(ProcSample::new(user, system, rss_kib, threads, precise))
}

impl ProcSample {
    /// A reading from its parts. Its total CPU and wait are the threads' when their times
    /// are the kernel's nanosecond accounting (`threads_precise`; threads do not come and
    /// go during a run), the process's tick-based user + system (and no wait) otherwise.
    pub fn new(
        user: Duration,
        system: Duration,
        rss_kib: u64,
        threads: Vec<ThreadCpu>,
        threads_precise: bool,
    ) -> ProcSample {
        let (cpu, waited) = if threads_precise && !threads.is_empty() {
            (
                threads.iter().map(|t| t.cpu).sum(),
                threads.iter().map(|t| t.waited).sum(),
            )
        } else {
            (user + system, Duration::ZERO)
        };
        ProcSample {
            cpu,
            waited,
            user,
            system,
            rss_kib,
            threads,
        }
    }
}

/// The generator's own CPU time and time waited for a CPU (all its threads), with the
/// same accounting as the server's; `getrusage` (and no wait) when /proc is unreadable.
pub fn self_cpu() -> (Duration, Duration) {
    match sample(std::process::id()) {
        Ok(s) => (s.cpu, s.waited),
        Err(_) => (rusage_cpu(), Duration::ZERO),
    }
}

fn rusage_cpu() -> Duration {
    // SAFETY: rusage is plain old data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU used and time waited for a CPU per thread between two samples of the same
/// process, sorted by thread name.
pub fn thread_delta(before: &ProcSample, after: &ProcSample) -> Vec<(String, Duration, Duration)> {
    let mut out: Vec<(String, Duration, Duration)> = after
        .threads
        .iter()
        .map(|t| {
            let (cpu, waited) = before
                .threads
                .iter()
                .find(|b| b.tid == t.tid)
                .map_or((Duration::ZERO, Duration::ZERO), |b| (b.cpu, b.waited));
            (
                t.name.clone(),
                t.cpu.saturating_sub(cpu),
                t.waited.saturating_sub(waited),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// How long [`shard_threads`] callers wait for a started server's shard threads.
pub const SHARD_THREADS_TIMEOUT: Duration = Duration::from_secs(10);

/// The `shard-<k>` threads of `pid` as (name, thread id), once all `shards` exist.
pub fn shard_threads(pid: u32, shards: usize, timeout: Duration) -> io::Result<Vec<(String, u32)>> {
    let deadline = Instant::now() + timeout;
    loop {
        let dir = format!("/proc/{pid}/task");
        let in_dir = |e: io::Error| io::Error::new(e.kind(), format!("{dir}: {e}"));
        let mut found = Vec::new();
        for entry in fs::read_dir(&dir).map_err(in_dir)? {
            let path = entry.map_err(in_dir)?.path();
            let Some(tid) = path.file_name().and_then(|n| n.to_str()?.parse().ok()) else {
                continue;
            };
            let name = fs::read_to_string(path.join("comm")).unwrap_or_default();
            let name = name.trim();
            if name.starts_with("shard-") {
                found.push((name.to_owned(), tid));
            }
        }
        if found.len() >= shards {
            found.sort();
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "process {pid} has {} shard threads, not {shards}",
                    found.len()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_in_the_name() {
        let line = "1234 (shard 0) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        let (name, user, system) = parse_stat(line).unwrap();
        assert_eq!(name, "shard 0");
        let ticks = |t: u64| Duration::from_nanos(t * 1_000_000_000 / clock_ticks());
        assert_eq!((user, system), (ticks(250), ticks(50)));
    }

    #[test]
    fn reads_this_process() {
        assert_eq!(
            parse_schedstat("2000 500 3\n"),
            Some((Duration::from_nanos(2000), Duration::from_nanos(500)))
        );
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
        assert!(!s.threads.is_empty());
        let _ = self_cpu();
    }
}
