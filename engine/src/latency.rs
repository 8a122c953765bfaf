//! How long datagrams stay in the server: from the kernel's arrival stamp on what a
//! shard read to the send of what it produced, as a histogram with fixed buckets (cheap
//! to update on the media path, and what a Prometheus histogram needs).
//!
//! The shard stamps each send with the age of the oldest datagram it read in the same
//! turn, so a figure is an upper bound for every datagram of that send: exact for a
//! burst that arrived at once (a keyframe fanned out to many subscribers), pessimistic
//! for a turn that read several publishers' packets. Packets handed to another shard
//! carry their turn's stamp, so that shard's copies count the whole way through the
//! server. Sends in turns that read nothing (timers) are not counted.

use std::time::Duration;

/// Upper bounds of the buckets, in microseconds; a last bucket holds the rest.
pub const BOUNDS_US: [u64; 18] = [
    50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 20_000, 50_000,
    100_000, 200_000, 500_000, 1_000_000,
];

/// Datagrams counted by how long they were in the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// `buckets[i]`: datagrams with a latency at most `BOUNDS_US[i]` µs and above the
    /// bound before; the last one, those above every bound. Not cumulative.
    pub buckets: [u64; BOUNDS_US.len() + 1],
    /// The sum of every counted latency, in nanoseconds.
    pub sum_ns: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            buckets: [0; BOUNDS_US.len() + 1],
            sum_ns: 0,
        }
    }
}

impl LatencyHistogram {
    /// Counts `datagrams` that were in the shard for `latency`.
    pub fn record(&mut self, latency: Duration, datagrams: u64) {
        let us = latency.as_micros();
        let i = BOUNDS_US.partition_point(|&b| u128::from(b) < us);
        self.buckets[i] += datagrams;
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns = self.sum_ns.saturating_add(ns.saturating_mul(datagrams));
    }

    /// Datagrams counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// What was counted since `earlier` (a reading of the same histogram).
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        let mut d = *self;
        for (b, e) in d.buckets.iter_mut().zip(earlier.buckets) {
            *b = b.saturating_sub(e);
        }
        d.sum_ns = d.sum_ns.saturating_sub(earlier.sum_ns);
        d
    }

    /// Adds another histogram's counts (another shard's, say).
    pub fn add(&mut self, other: &LatencyHistogram) {
        for (b, o) in self.buckets.iter_mut().zip(other.buckets) {
            *b += o;
        }
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }

    /// The bucket that holds quantile `q` (0 to 1) as (lower, upper) bounds in µs; the
    /// upper bound is `None` for the last bucket. `None` when nothing was counted.
    pub fn quantile_bucket(&self, q: f64) -> Option<(u64, Option<u64>)> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The rank of the quantile, at least the first datagram.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let lower = if i == 0 { 0 } else { BOUNDS_US[i - 1] };
                return Some((lower, BOUNDS_US.get(i).copied()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_buckets() {
        let mut h = LatencyHistogram::default();
        h.record(Duration::from_micros(50), 1); // on a bound: that bucket
        h.record(Duration::from_micros(51), 2);
        h.record(Duration::from_micros(1_800), 3);
        h.record(Duration::from_secs(3), 4);
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 2);
        assert_eq!(h.buckets[8], 3); // 1.5 ms < x <= 2 ms
        assert_eq!(h.buckets[BOUNDS_US.len()], 4);
        assert_eq!(h.count(), 10);
        assert_eq!(
            h.sum_ns,
            50_000 + 2 * 51_000 + 3 * 1_800_000 + 4 * 3_000_000_000
        );
    }

    #[test]
    fn quantiles_are_found_by_rank() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile_bucket(0.5), None);
        h.record(Duration::from_micros(400), 98);
        h.record(Duration::from_micros(1_700), 1);
        h.record(Duration::from_secs(2), 1);
        assert_eq!(h.quantile_bucket(0.5), Some((300, Some(500))));
        assert_eq!(h.quantile_bucket(0.98), Some((300, Some(500))));
        assert_eq!(h.quantile_bucket(0.99), Some((1_500, Some(2_000))));
        assert_eq!(h.quantile_bucket(1.0), Some((1_000_000, None)));
        assert_eq!(h.quantile_bucket(0.0), Some((300, Some(500))));
    }

    #[test]
    fn differences_and_sums_of_readings() {
        let mut a = LatencyHistogram::default();
        a.record(Duration::from_micros(80), 5);
        let mut b = a;
        b.record(Duration::from_micros(900), 2);
        let d = b.since(&a);
        assert_eq!(d.count(), 2);
        assert_eq!(d.buckets[6], 2);
        assert_eq!(d.sum_ns, 2 * 900_000);
        let mut total = a;
        total.add(&d);
        assert_eq!(total, b);
    }
}
