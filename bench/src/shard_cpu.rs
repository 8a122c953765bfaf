//! `--shard-cpu F`: every shard thread of a server the benchmark started runs in its own
//! CPU cgroup, capped at F of one core by the kernel's CFS bandwidth control.
//!
//! Why: on a small machine the generator needs as much CPU as the server, so no shard can
//! be driven to saturation, let alone two. Capped, a shard behaves like one on a core of
//! F the speed: it saturates at F of its capacity while the generator keeps the rest of
//! the machine, and "2 shards against 1 at the same loss" becomes measurable. The cap is
//! a hard budget per period ([`PERIOD`]), so a capped shard also sees what a saturated
//! one does: its socket fills while it waits for its next slice.
//!
//! It needs the cgroup v1 `cpu` controller mounted writable at `/sys/fs/cgroup/cpu`
//! (cgroup v1 puts single threads in a group through `tasks`). Each shard gets
//! `peer-calls-bench-<pid>-shard-<k>`; the groups are removed when the cap is dropped,
//! after the server has exited.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;

use crate::procstat;

/// Where the cgroup v1 `cpu` controller is mounted.
pub const CGROUP_CPU: &str = "/sys/fs/cgroup/cpu";
/// The bandwidth period: short, so a capped shard is never stopped for long.
pub const PERIOD: Duration = Duration::from_millis(10);

/// Shard threads under a CPU cap; the groups go when this is dropped.
#[derive(Debug)]
pub struct ShardCpuCap {
    root: PathBuf,
    groups: Vec<PathBuf>,
}

/// Checks a `--shard-cpu` value: a fraction of one core, at least a tenth (the kernel's
/// smallest quota is 1 ms, a tenth of [`PERIOD`]).
pub fn parse_fraction(text: &str) -> anyhow::Result<f64> {
    let f: f64 = text
        .parse()
        .map_err(|_| anyhow!("{text:?} is not a number"))?;
    if (0.1..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(anyhow!("{text} is not a fraction of a core in 0.1..=1"))
    }
}

impl ShardCpuCap {
    /// Caps each of the `shards` shard threads (named `shard-<k>`) of process `pid` at
    /// `fraction` of a core, with the controller mounted at `root`.
    pub fn apply(root: &Path, pid: u32, shards: usize, fraction: f64) -> anyhow::Result<Self> {
        Self::apply_within(root, pid, shards, fraction, procstat::SHARD_THREADS_TIMEOUT)
    }

    fn apply_within(
        root: &Path,
        pid: u32,
        shards: usize,
        fraction: f64,
        threads_timeout: Duration,
    ) -> anyhow::Result<Self> {
        if !root.join("cpu.cfs_quota_us").exists() {
            return Err(anyhow!(
                "--shard-cpu needs the cgroup v1 cpu controller, writable, at {} (not found)",
                root.display()
            ));
        }
        let threads = procstat::shard_threads(pid, shards, threads_timeout)?;
        let mut cap = Self {
            root: root.to_owned(),
            groups: Vec::new(),
        };
        let period_us = PERIOD.as_micros() as u64;
        let quota_us = (period_us as f64 * fraction).round() as u64;
        for (name, tid) in threads {
            let group = root.join(format!("peer-calls-bench-{pid}-{name}"));
            let write = |file: &str, value: String| {
                fs::write(group.join(file), value)
                    .map_err(|e| anyhow!("{}: {e}", group.join(file).display()))
            };
            fs::create_dir(&group).map_err(|e| anyhow!("{}: {e}", group.display()))?;
            cap.groups.push(group.clone());
            write("cpu.cfs_period_us", period_us.to_string())?;
            write("cpu.cfs_quota_us", quota_us.to_string())?;
            write("tasks", tid.to_string())?;
        }
        Ok(cap)
    }
}

impl Drop for ShardCpuCap {
    fn drop(&mut self) {
        // A group can be removed only without threads: a shard still running (the cap
        // dropped before the server stopped, or a cap that failed half-way) goes back to
        // the root group first. A thread exiting right now may still need a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        for group in &self.groups {
            if let Ok(tasks) = fs::read_to_string(group.join("tasks")) {
                for tid in tasks.split_whitespace() {
                    let _ = fs::write(self.root.join("tasks"), tid);
                }
            }
            while fs::remove_dir(group).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn fractions_of_a_core() {
        assert_eq!(parse_fraction("0.25").unwrap(), 0.25);
        assert_eq!(parse_fraction("1").unwrap(), 1.0);
        assert_eq!(parse_fraction("0.1").unwrap(), 0.1);
        assert!(
            parse_fraction("0.05").is_err(),
            "under the kernel's 1 ms quota"
        );
        assert!(parse_fraction("0").is_err());
        assert!(parse_fraction("1.5").is_err());
        assert!(parse_fraction("half").is_err());
    }

    /// The cgroup files a cap writes, in a directory standing in for the controller's
    /// mount (the kernel's side is measured by the benchmark itself): one group per
    /// shard thread, with its period, its quota and its thread.
    #[test]
    fn each_shard_thread_gets_its_own_group_and_quota() {
        let root = std::env::temp_dir().join(format!("peer-calls-cgroup-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let pid = std::process::id();
        assert!(
            ShardCpuCap::apply(&root, pid, 1, 0.25)
                .unwrap_err()
                .to_string()
                .contains("cgroup v1 cpu controller")
        );
        fs::write(root.join("cpu.cfs_quota_us"), "-1").unwrap();

        // Two threads of this process named as the server names its shards.
        let (tids, seen) = mpsc::channel();
        let (stop, stopped) = mpsc::channel::<()>();
        let stopped = std::sync::Arc::new(std::sync::Mutex::new(stopped));
        let handles: Vec<_> = (0..2)
            .map(|k| {
                let (tids, stopped) = (tids.clone(), stopped.clone());
                std::thread::Builder::new()
                    .name(format!("shard-{k}"))
                    .spawn(move || {
                        // SAFETY: gettid has no preconditions.
                        tids.send((k, unsafe { libc::gettid() } as u32)).unwrap();
                        let _ = stopped.lock().unwrap().recv();
                    })
                    .unwrap()
            })
            .collect();
        let mut expected: Vec<(u32, u32)> = (0..2).map(|_| seen.recv().unwrap()).collect();
        expected.sort();

        let cap = ShardCpuCap::apply(&root, pid, 2, 0.25).unwrap();
        for (k, tid) in expected {
            let group = root.join(format!("peer-calls-bench-{pid}-shard-{k}"));
            let read = |f: &str| fs::read_to_string(group.join(f)).unwrap();
            assert_eq!(read("cpu.cfs_period_us"), "10000");
            assert_eq!(read("cpu.cfs_quota_us"), "2500");
            assert_eq!(read("tasks"), tid.to_string());
        }
        assert!(
            ShardCpuCap::apply_within(&root, pid, 3, 0.25, Duration::from_millis(100)).is_err(),
            "a third shard does not exist"
        );
        drop(stop);
        for h in handles {
            h.join().unwrap();
        }
        // The kernel removes a group with its files; here they go first. Dropping the
        // cap removes the groups.
        let groups: Vec<PathBuf> = (0..2)
            .map(|k| root.join(format!("peer-calls-bench-{pid}-shard-{k}")))
            .collect();
        for g in &groups {
            for f in ["cpu.cfs_period_us", "cpu.cfs_quota_us", "tasks"] {
                fs::remove_file(g.join(f)).unwrap();
            }
        }
        drop(cap);
        assert!(groups.iter().all(|g| !g.exists()));
        let _ = fs::remove_dir_all(&root);
    }
}
