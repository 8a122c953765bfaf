//! Where the benchmark reads the server's own accounting: its process on this machine
//! (`/proc`), or, for a server given by URL without its process id (one on another
//! machine, say), its `/metrics` page, which carries the same figures from the server's
//! reading of itself. The server's forwarding-latency histogram is only on the page.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::anyhow;
use engine::latency::{BOUNDS_US, LatencyHistogram};
use procstat::{ProcSample, ThreadCpu};

/// How long reading the metrics page may take.
const PAGE_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest metrics page read (a server with thousands of shards stays far below).
const MAX_PAGE: u64 = 4 * 1024 * 1024;

/// Where the server's CPU time, memory and forwarding latency come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerProbe {
    /// The server's process, when it runs on this machine and is known: its CPU and
    /// memory are read from /proc.
    pub pid: Option<u32>,
    /// The server's HTTP address, for its `/metrics` page.
    pub addr: SocketAddr,
    /// Sent as `Authorization: Bearer <token>` with the page's request.
    pub token: Option<String>,
}

impl ServerProbe {
    /// One reading of the server's CPU time (per thread) and memory.
    pub fn sample(&self) -> anyhow::Result<ProcSample> {
        match self.pid {
            Some(pid) => procstat::sample(pid).map_err(|e| anyhow!("reading process {pid}: {e}")),
            None => from_page(&self.page()?).map_err(|e| anyhow!("{}: {e}", self.url())),
        }
    }

    /// The server's forwarding latency so far, all shards together.
    pub fn latency(&self) -> anyhow::Result<LatencyHistogram> {
        latency_from_page(&self.page()?).map_err(|e| anyhow!("{}: {e}", self.url()))
    }

    fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// The server's `/metrics` page.
    pub fn page(&self) -> anyhow::Result<String> {
        fetch_page(self.addr, self.token.as_deref())
            .map_err(|e| anyhow!("reading {}: {e}", self.url()))
    }
}

/// `GET /metrics`, the body of a `200`; any other status is an error that says why.
fn fetch_page(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<String> {
    let mut tcp = TcpStream::connect_timeout(&addr, PAGE_TIMEOUT)?;
    tcp.set_read_timeout(Some(PAGE_TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(PAGE_TIMEOUT)))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    tcp.take(MAX_PAGE).read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("the response has no header"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("the response has no status"))?;
    match status {
        "200" => Ok(body.to_owned()),
        "401" => Err(anyhow!(
            "the server asks for its metrics token (--metrics-token)"
        )),
        "403" => Err(anyhow!(
            "the server shows its metrics to its own host only: {}",
            body.trim()
        )),
        "404" => Err(anyhow!("the server has no metrics page")),
        other => Err(anyhow!("HTTP {other}: {}", body.trim())),
    }
}

/// The server's accounting from its metrics page (see `signaling::metrics`): the
/// process's user and kernel time, its resident memory, and every thread's CPU time and
/// CPU wait. Errors when the page lacks the process figures.
pub fn from_page(page: &str) -> anyhow::Result<ProcSample> {
    let mut user = None;
    let mut system = None;
    let mut rss = None;
    let mut threads: Vec<ThreadCpu> = Vec::new();
    for (name, labels, value, _) in samples(page) {
        let seconds = || Duration::try_from_secs_f64(value).unwrap_or_default();
        match name {
            "peercalls_cpu_seconds_total" => match label(labels, "mode") {
                Some("user") => user = Some(seconds()),
                Some("system") => system = Some(seconds()),
                _ => {}
            },
            "process_resident_memory_bytes" => rss = Some((value / 1024.0) as u64),
            "peercalls_thread_cpu_seconds_total" | "peercalls_thread_cpu_wait_seconds_total" => {
                let (Some(thread), Some(tid)) = (
                    label(labels, "thread"),
                    label(labels, "tid").and_then(|t| t.parse().ok()),
                ) else {
                    continue;
                };
                let i = match threads.iter().position(|t| t.tid == tid) {
                    Some(i) => i,
                    None => {
                        threads.push(ThreadCpu {
                            tid,
                            name: thread.to_owned(),
                            cpu: Duration::ZERO,
                            waited: Duration::ZERO,
                        });
                        threads.len() - 1
                    }
                };
                if name.ends_with("_wait_seconds_total") {
                    threads[i].waited = seconds();
                } else {
                    threads[i].cpu = seconds();
                }
            }
            _ => {}
        }
    }
    let (Some(user), Some(system), Some(rss_kib)) = (user, system, rss) else {
        return Err(anyhow!("the page has no process CPU and memory figures"));
    };
    threads.sort_by_key(|t| t.tid);
    // The threads' times on the page are the server's reading of the kernel's
    // nanosecond accounting.
    Ok(ProcSample::new(user, system, rss_kib, threads, true))
}

/// The forwarding-latency histograms of a metrics page
/// (`peercalls_shard_forwarding_latency_seconds`), every shard's added up.
pub fn latency_from_page(page: &str) -> anyhow::Result<LatencyHistogram> {
    const BUCKET: &str = "peercalls_shard_forwarding_latency_seconds_bucket";
    const SUM: &str = "peercalls_shard_forwarding_latency_seconds_sum";
    // Per shard: cumulative counts by bucket, and the sum.
    let mut shards: Vec<(String, [u64; BOUNDS_US.len() + 1], u64)> = Vec::new();
    let mut found = false;
    for (name, labels, value, line) in samples(page) {
        if name != BUCKET && name != SUM {
            continue;
        }
        let Some(shard) = label(labels, "shard") else {
            continue;
        };
        let i = match shards.iter().position(|s| s.0 == shard) {
            Some(i) => i,
            None => {
                shards.push((shard.to_owned(), [0; BOUNDS_US.len() + 1], 0));
                shards.len() - 1
            }
        };
        if name == SUM {
            shards[i].2 = (value * 1e9) as u64;
            continue;
        }
        let bucket = match label(labels, "le") {
            Some("+Inf") => Some(BOUNDS_US.len()),
            Some(le) => le.parse::<f64>().ok().and_then(|le| {
                BOUNDS_US
                    .iter()
                    .position(|&us| (us as f64 / 1e6 - le).abs() < 1e-9)
            }),
            None => None,
        };
        let Some(b) = bucket else {
            return Err(anyhow!(
                "a latency bucket this benchmark does not know: {line}"
            ));
        };
        shards[i].1[b] = value as u64;
        found = true;
    }
    if !found {
        return Err(anyhow!("the page has no forwarding-latency histogram"));
    }
    let mut total = LatencyHistogram::default();
    for (_, cumulative, sum_ns) in shards {
        let mut h = LatencyHistogram {
            sum_ns,
            ..LatencyHistogram::default()
        };
        let mut below = 0;
        for (b, c) in h.buckets.iter_mut().zip(cumulative) {
            *b = c.saturating_sub(below);
            below = below.max(c);
        }
        total.add(&h);
    }
    Ok(total)
}

/// The sum of every sample of counter `name` on a metrics page (0 when it has none).
pub fn counter_sum(page: &str, name: &str) -> f64 {
    samples(page)
        .filter(|(n, ..)| *n == name)
        .map(|(_, _, v, _)| v)
        .sum()
}

/// The samples of a metrics page: (name, labels, value, the whole line), comments and
/// lines that are not samples left out.
fn samples(page: &str) -> impl Iterator<Item = (&str, &str, f64, &str)> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value = value.parse::<f64>().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.strip_suffix('}').unwrap_or(l)),
                None => (series, ""),
            };
            Some((name, labels, value, line))
        })
}

/// The value of label `key` in a series' labels (`a="x",b="y"`). Thread names are the
/// server's own; a name with a quote in it is simply not matched.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.strip_prefix('"')?.strip_suffix('"'))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "\
# HELP peercalls_rooms Rooms with someone in them.
# TYPE peercalls_rooms gauge
peercalls_rooms 1
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 2.5
# TYPE peercalls_cpu_seconds_total counter
peercalls_cpu_seconds_total{mode=\"user\"} 2
peercalls_cpu_seconds_total{mode=\"system\"} 0.5
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2097152
# TYPE peercalls_thread_cpu_seconds_total counter
peercalls_thread_cpu_seconds_total{thread=\"shard-0\",tid=\"11\"} 2.25
peercalls_thread_cpu_seconds_total{thread=\"signaling\",tid=\"9\"} 0.3
# TYPE peercalls_thread_cpu_wait_seconds_total counter
peercalls_thread_cpu_wait_seconds_total{thread=\"shard-0\",tid=\"11\"} 0.02
peercalls_thread_cpu_wait_seconds_total{thread=\"signaling\",tid=\"9\"} 0.01
";

    #[test]
    fn a_page_becomes_a_sample() {
        let s = from_page(PAGE).unwrap();
        assert_eq!(s.user, Duration::from_secs(2));
        assert_eq!(s.system, Duration::from_millis(500));
        assert_eq!(s.rss_kib, 2048);
        assert_eq!(s.cpu, Duration::from_millis(2550));
        assert_eq!(s.waited, Duration::from_millis(30));
        let names: Vec<(&str, u32)> = s.threads.iter().map(|t| (t.name.as_str(), t.tid)).collect();
        assert_eq!(names, [("signaling", 9), ("shard-0", 11)]);
        assert_eq!(s.threads[1].cpu, Duration::from_millis(2250));
        assert_eq!(s.threads[1].waited, Duration::from_millis(20));
    }

    #[test]
    fn a_page_without_process_figures_is_an_error() {
        let e = from_page("peercalls_rooms 1\n").unwrap_err();
        assert!(e.to_string().contains("no process CPU"), "{e}");
    }

    #[test]
    fn latency_histograms_of_every_shard_add_up() {
        let h = "peercalls_shard_forwarding_latency_seconds";
        let mut page = String::new();
        for (shard, at_300us, at_2ms) in [(0, 4, 5), (1, 1, 1)] {
            for &us in &BOUNDS_US {
                let cumulative = if us < 300 {
                    0
                } else if us < 2_000 {
                    at_300us
                } else {
                    at_2ms
                };
                let le = us as f64 / 1e6;
                page += &format!("{h}_bucket{{shard=\"{shard}\",le=\"{le}\"}} {cumulative}\n");
            }
            page += &format!("{h}_bucket{{shard=\"{shard}\",le=\"+Inf\"}} {at_2ms}\n");
            page += &format!("{h}_sum{{shard=\"{shard}\"}} 0.5\n");
            page += &format!("{h}_count{{shard=\"{shard}\"}} {at_2ms}\n");
        }
        let total = latency_from_page(&page).unwrap();
        assert_eq!(total.count(), 6);
        let i300 = BOUNDS_US.iter().position(|&b| b == 300).unwrap();
        let i2ms = BOUNDS_US.iter().position(|&b| b == 2_000).unwrap();
        assert_eq!(total.buckets[i300], 5);
        assert_eq!(total.buckets[i2ms], 1);
        assert_eq!(total.sum_ns, 1_000_000_000);
        assert!(latency_from_page(PAGE).is_err(), "no histogram on the page");
    }

    #[test]
    fn labels_are_found_by_name() {
        assert_eq!(label("thread=\"shard-0\",tid=\"11\"", "tid"), Some("11"));
        assert_eq!(
            label("thread=\"shard-0\",tid=\"11\"", "thread"),
            Some("shard-0")
        );
        assert_eq!(label("mode=\"user\"", "tid"), None);
        assert_eq!(label("", "tid"), None);
    }
}
