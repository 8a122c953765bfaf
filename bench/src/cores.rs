//! Which cores the shards and the generator run on during a run.
//!
//! The synthetic peers stand in for browsers on other machines, but here they share the
//! machine with the server. Left to the scheduler, the generator's thread, woken by a
//! shard's send, often runs on that shard's own core (the kernel wakes a thread near
//! its waker): it preempts the shard in the middle of a fan-out, and both wait for each
//! other while the other core may sit idle. So the generator runs on the cores no shard is
//! pinned to, when there are any; the server's own pinning stays as it is.
//!
//! With `--shard-cpu F` the shards are capped, so several fit on one core. The
//! benchmark then packs them, at most half a core's worth of caps on a core, onto the
//! fewest cores and gives the generator the rest. One shard and two shards then run
//! with the generator on the same cores of its own: the only difference left between
//! the two runs of `--compare-shards` is the number of shards. Two capped shards on one
//! core each still get their whole quota (their caps add up to half of it), and wait
//! for each other only when their bursts meet.

use std::io;

use anyhow::anyhow;

use crate::procstat;

/// Caps of shards sharing a core add up to at most this share of it.
pub const PACKED_SHARE: f64 = 0.5;

/// Where shards and the generator go, decided from the cores there are.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Per shard (in shard order): the core the benchmark moves it to, or `None` to
    /// leave it where the server pinned it.
    pub move_shards: Vec<Option<usize>>,
    /// The generator's cores; empty when no core is free of shards (then it is not
    /// pinned).
    pub generator: Vec<usize>,
}

/// The plan for shards currently allowed on `shard_cores` (one set per shard), on a
/// machine whose allowed cores are `cores`, with each shard capped at `cap` of a core.
pub fn plan(cores: &[usize], shard_cores: &[Vec<usize>], cap: Option<f64>) -> Plan {
    if let Some(fraction) = cap {
        let per_core = ((PACKED_SHARE / fraction + 1e-9).floor() as usize).max(1);
        let needed = shard_cores.len().div_ceil(per_core);
        if needed < cores.len() {
            return Plan {
                move_shards: (0..shard_cores.len())
                    .map(|k| Some(cores[k / per_core]))
                    .collect(),
                generator: cores[needed..].to_vec(),
            };
        }
    }
    let generator = cores
        .iter()
        .copied()
        .filter(|c| !shard_cores.iter().any(|s| s.contains(c)))
        .collect();
    Plan {
        move_shards: vec![None; shard_cores.len()],
        generator,
    }
}

/// The generator pinned for a run; dropping it lets the thread run anywhere it could
/// before.
#[derive(Debug)]
pub struct Placement {
    before: Vec<usize>,
    /// What the report says about it.
    pub summary: String,
}

impl Placement {
    /// Places the `shards` shard threads of process `pid` (0: whichever exist) and the
    /// calling thread, which runs the generator, after [`plan`].
    pub fn apply(pid: u32, shards: usize, cap: Option<f64>) -> anyhow::Result<Self> {
        let before = affinity(0).map_err(|e| anyhow!("this thread's cores: {e}"))?;
        let threads = procstat::shard_threads(pid, shards, procstat::SHARD_THREADS_TIMEOUT)?;
        let mut shard_cores = Vec::new();
        for (name, tid) in &threads {
            shard_cores.push(
                affinity(*tid as libc::pid_t).map_err(|e| anyhow!("the cores of {name}: {e}"))?,
            );
        }
        let plan = plan(&before, &shard_cores, cap);
        for ((name, tid), to) in threads.iter().zip(&plan.move_shards) {
            if let Some(core) = to {
                set_affinity(*tid as libc::pid_t, &[*core])
                    .map_err(|e| anyhow!("cannot move {name} to CPU {core}: {e}"))?;
            }
        }
        if !plan.generator.is_empty() {
            set_affinity(0, &plan.generator)
                .map_err(|e| anyhow!("cannot pin the generator: {e}"))?;
        }
        let placed: Vec<String> = threads
            .iter()
            .zip(&shard_cores)
            .zip(&plan.move_shards)
            .map(|(((name, _), was), to)| match to {
                Some(core) => format!("{name} on CPU {core}"),
                None => format!("{name} on CPU {}", list(was)),
            })
            .collect();
        let generator = if plan.generator.is_empty() {
            "the generator shares them (no CPU is free of shards)".to_owned()
        } else {
            format!("the generator on CPU {}", list(&plan.generator))
        };
        let summary = if placed.is_empty() {
            format!("no shard threads seen; {generator}")
        } else {
            format!("{}; {generator}", placed.join(", "))
        };
        Ok(Self { before, summary })
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        let _ = set_affinity(0, &self.before);
    }
}

fn list(cores: &[usize]) -> String {
    let names: Vec<String> = cores.iter().map(usize::to_string).collect();
    names.join(",")
}

/// The cores thread `tid` (0: the calling thread) may run on.
pub fn affinity(tid: libc::pid_t) -> io::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity writes at most its
    // size into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sched_getaffinity(tid, size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: CPU_ISSET reads the set within its size.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Lets thread `tid` (0: the calling thread) run on `cores` only.
pub fn set_affinity(tid: libc::pid_t, cores: &[usize]) -> io::Result<()> {
    // SAFETY: as in `affinity`; CPU_SET ignores cores past the set's size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cores {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    let r = unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_takes_the_cores_no_shard_is_pinned_to() {
        let one = plan(&[0, 1], &[vec![0]], None);
        assert_eq!(one.move_shards, vec![None]);
        assert_eq!(one.generator, vec![1]);
        let bigger = plan(&[0, 1, 2, 3], &[vec![0], vec![1]], None);
        assert_eq!(bigger.generator, vec![2, 3]);
    }

    #[test]
    fn without_a_free_core_nothing_is_pinned() {
        let both = plan(&[0, 1], &[vec![0], vec![1]], None);
        assert_eq!(both.move_shards, vec![None, None]);
        assert!(both.generator.is_empty());
        let unpinned = plan(&[0, 1], &[vec![0, 1]], None);
        assert!(unpinned.generator.is_empty());
    }

    #[test]
    fn capped_shards_share_cores_up_to_half_of_each() {
        let quarter = plan(&[0, 1], &[vec![0], vec![1]], Some(0.25));
        assert_eq!(quarter.move_shards, vec![Some(0), Some(0)]);
        assert_eq!(quarter.generator, vec![1]);
        let one = plan(&[0, 1], &[vec![0]], Some(0.25));
        assert_eq!(one.move_shards, vec![Some(0)]);
        assert_eq!(one.generator, vec![1]);
        let three = plan(&[0, 1, 2, 3], &[vec![0], vec![1], vec![2]], Some(0.2));
        assert_eq!(three.move_shards, vec![Some(0), Some(0), Some(1)]);
        assert_eq!(three.generator, vec![2, 3]);
    }

    #[test]
    fn capped_shards_that_fill_the_machine_stay_where_the_server_put_them() {
        let half = plan(&[0, 1], &[vec![0], vec![1]], Some(0.5));
        assert_eq!(half.move_shards, vec![None, None]);
        assert!(half.generator.is_empty());
        let single = plan(&[0], &[vec![0]], Some(0.25));
        assert_eq!(single.move_shards, vec![None]);
        assert!(single.generator.is_empty());
    }

    #[test]
    fn this_threads_affinity_round_trips() {
        let all = affinity(0).unwrap();
        assert!(!all.is_empty());
        std::thread::spawn(move || {
            set_affinity(0, &all[..1]).unwrap();
            assert_eq!(affinity(0).unwrap(), all[..1].to_vec());
            set_affinity(0, &all).unwrap();
            assert_eq!(affinity(0).unwrap(), all);
        })
        .join()
        .unwrap();
    }
}
