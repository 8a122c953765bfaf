//! Whether the path to a peer holds a standing queue: its one-way delay (the receiver's
//! clock less the sender's, whatever their offset) stays over the least it had in the
//! last minute or two, every packet of the last [`WINDOW_US`] and more. A full tail-drop
//! queue (a home router's, `tc … tbf`) holds its delay steady and loses what does not
//! fit, so the delay detector's trend, which sees a queue *grow*, goes quiet on it. The
//! least of each window, not the mean, is compared: jitter delays some packets, a queue
//! delays every one.

/// The least delay is kept for the current and the last bucket of this long (µs).
const BUCKET_US: i64 = 60_000_000;
/// Packets are judged by windows of this long (µs of the receiver's clock).
const WINDOW_US: i64 = 250_000;
/// Every packet of a window this much (µs) over the least delay: the queue stands.
const STANDING_US: i64 = 30_000;
/// A delay this far over the least (µs) is a clock jump, not a queue: start over.
const MAX_QUEUE_US: i64 = 3_000_000;

#[derive(Default)]
pub(super) struct StandingQueue {
    /// When the current bucket began (the receiver's clock), and its least delay and
    /// the last one's.
    bucket_start: Option<i64>,
    least_now: i64,
    least_before: i64,
    /// When the current window began, the least queueing delay in it, and in the last
    /// whole window.
    window_start: i64,
    window_least: i64,
    last_window_least: Option<i64>,
}

impl StandingQueue {
    /// A packet sent at `send_us` (the sender's clock) arrived at `arrival_us` (the
    /// receiver's).
    pub(super) fn packet(&mut self, send_us: i64, arrival_us: i64) {
        let delay = arrival_us - send_us;
        match self.bucket_start {
            Some(start) if (start..start + BUCKET_US).contains(&arrival_us) => {
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
                    least_now: delay,
                    least_before: delay,
                    window_start: arrival_us,
                    window_least: 0,
                    last_window_least: None,
                };
            }
        }
        let queue = delay - self.least_now.min(self.least_before);
        if queue > MAX_QUEUE_US {
            *self = Self::default();
            return;
        }
        if (self.window_start..self.window_start + WINDOW_US).contains(&arrival_us) {
            self.window_least = self.window_least.min(queue);
        } else {
            self.last_window_least = Some(self.window_least);
            self.window_start = arrival_us;
            self.window_least = queue;
        }
    }

    /// Whether the queue stands now: every packet of the last whole window and of this
    /// one so far waited in it.
    pub(super) fn standing(&self) -> bool {
        self.last_window_least.is_some_and(|q| q > STANDING_US) && self.window_least > STANDING_US
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
        // Up to 150 ms of jitter for 10 s: some packets come through at once.
        assert!(!run(&mut q, 0, 10_000, |t| (t / 10_000 % 6) * 30_000));
        // A queue fills to 50 ms in a second and stays full.
        assert!(run(&mut q, 10_000, 3_000, |t| ((t - 10_000_000) / 20)
            .min(50_000)));
        // It drains: gone at once.
        assert!(!run(&mut q, 13_000, 100, |_| 0));
        // A queue that stays past a bucket is still seen (the least is kept for two).
        assert!(run(&mut q, 14_000, 70_000, |_| 250_000));
        // A clock jump is not a queue.
        assert!(!run(&mut q, 84_000, 2_000, |_| 60_000_000));
    }
}
