//! Whether the path to a peer holds a standing queue: its one-way delay (the receiver's
//! clock less the sender's, whatever their offset) over the least it had in the last
//! minute or two. A full tail-drop queue (a home router's, `tc … tbf`) holds its delay
//! steady and loses what does not fit, so the delay detector's trend, which sees a
//! queue *grow*, goes quiet on it.

/// The least delay is kept for the current and the last bucket of this long (µs).
const BUCKET_US: i64 = 60_000_000;
/// Over the least delay by this much (ms, smoothed), the queue stands.
const STANDING_MS: f64 = 100.0;
/// The smoothing's time constant (µs of the receiver's clock).
const SMOOTHING_US: i64 = 500_000;
/// A delay this far over the least (µs) is a clock jump, not a queue: start over.
const MAX_QUEUE_US: i64 = 3_000_000;

#[derive(Default)]
pub(super) struct StandingQueue {
    /// When the current bucket began (the receiver's clock), and the last arrival.
    bucket_start: Option<i64>,
    last_arrival: i64,
    least_now: i64,
    least_before: i64,
    queue_ms: f64,
}

impl StandingQueue {
    /// A packet sent at `send_us` (the sender's clock) arrived at `arrival_us` (the
    /// receiver's).
    pub(super) fn packet(&mut self, send_us: i64, arrival_us: i64) {
        let delay = arrival_us - send_us;
        match self.bucket_start {
            Some(start) if arrival_us - start < BUCKET_US && arrival_us >= start => {
                self.least_now = self.least_now.min(delay);
            }
            Some(_) => {
                self.least_before = self.least_now;
                self.least_now = delay;
                self.bucket_start = Some(arrival_us);
            }
            None => {
                *self = Self {
                    bucket_start: Some(arrival_us),
                    last_arrival: arrival_us,
                    least_now: delay,
                    least_before: delay,
                    queue_ms: 0.0,
                };
            }
        }
        let queue = delay - self.least_now.min(self.least_before);
        if queue > MAX_QUEUE_US {
            *self = Self::default();
            return;
        }
        let dt = (arrival_us - self.last_arrival).clamp(0, SMOOTHING_US);
        self.last_arrival = arrival_us;
        let weight = dt as f64 / SMOOTHING_US as f64;
        self.queue_ms += (queue as f64 / 1000.0 - self.queue_ms) * weight;
    }

    /// Whether the queue stands now.
    pub(super) fn standing(&self) -> bool {
        self.queue_ms > STANDING_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets every 10 ms for `ms` from `from_ms`, each `delay(t)` µs on the way; whether
    /// the queue stood after the last.
    fn run(q: &mut StandingQueue, from_ms: i64, ms: i64, delay: impl Fn(i64) -> i64) -> bool {
        for t in (from_ms..from_ms + ms).step_by(10) {
            let send = t * 1000;
            q.packet(send, send + 7_000_000 + delay(send));
        }
        q.standing()
    }

    #[test]
    fn a_full_queue_stands_jitter_does_not_and_a_drained_one_is_gone() {
        let mut q = StandingQueue::default();
        // 30 ms of jitter for 10 s.
        assert!(!run(&mut q, 0, 10_000, |t| (t / 10_000 % 4) * 10_000));
        // A queue fills to 300 ms in a second and stays full.
        assert!(run(&mut q, 10_000, 3_000, |t| ((t - 10_000_000) * 3 / 10)
            .min(300_000)));
        // It drains: gone within a second.
        assert!(!run(&mut q, 13_000, 1_000, |_| 0));
        // A queue that stays past a bucket is still seen (the least is kept for two).
        assert!(run(&mut q, 14_000, 70_000, |_| 250_000));
        // A clock jump is not a queue.
        assert!(!run(&mut q, 84_000, 2_000, |_| 60_000_000));
    }
}
