//! Whether the path to a peer is queueing: the delay-based half of the estimate, after
//! the trendline filter and adaptive-threshold overuse detector of Google congestion
//! control (draft-ietf-rmcat-gcc-02, and libwebrtc's later trendline variant).
//!
//! Packets sent within [`GROUP`] of each other form a group. Between consecutive
//! groups, the change in one-way delay is `(arrival difference) − (send difference)`:
//! positive while a queue grows. Accumulated and smoothed, its slope over the last
//! [`WINDOW`] groups is the trend; a trend above the adaptive threshold for long enough
//! is overuse, below its negative is underuse (a queue draining).

/// Packets sent this close together (µs) are one group.
const GROUP: i64 = 5_000;
/// Groups in the trend's regression.
const WINDOW: usize = 20;
/// Smoothing of the accumulated delay.
const SMOOTHING: f64 = 0.9;
/// Gain applied to the slope before comparing it to the threshold.
const GAIN: f64 = 4.0;
/// How long (ms) the trend must stay over the threshold to be overuse.
const OVERUSE_TIME_MS: f64 = 10.0;
/// The threshold's adaptation rates: up (slowly) while the trend is above it, down
/// (faster) while below, so it follows the path's normal jitter.
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// A trend this far above the threshold is a spike, not jitter: no adaptation.
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
/// A delay change beyond this (µs) is a clock jump or a reset path: start over.
const MAX_DELAY_CHANGE: i64 = 3_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Normal,
    Overuse,
    Underuse,
}

#[derive(Clone, Copy)]
struct Group {
    first_send: i64,
    last_send: i64,
    last_arrival: i64,
}

pub(super) struct DelayDetector {
    group: Option<Group>,
    prev: Option<Group>,
    first_arrival: i64,
    accumulated_ms: f64,
    smoothed_ms: f64,
    /// `(arrival ms since the first group, smoothed delay ms)`, a ring.
    window: [(f64, f64); WINDOW],
    samples: usize,
    threshold_ms: f64,
    last_adapt_ms: Option<f64>,
    overuse_ms: f64,
    overuse_count: u32,
    prev_trend: f64,
    signal: Signal,
}

impl Default for DelayDetector {
    fn default() -> Self {
        Self {
            group: None,
            prev: None,
            first_arrival: 0,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            window: [(0.0, 0.0); WINDOW],
            samples: 0,
            threshold_ms: 12.5,
            last_adapt_ms: None,
            overuse_ms: -1.0,
            overuse_count: 0,
            prev_trend: 0.0,
            signal: Signal::Normal,
        }
    }
}

impl DelayDetector {
    pub(super) fn signal(&self) -> Signal {
        self.signal
    }

    /// A packet sent at `send_us` (the sender's clock) arrived at `arrival_us` (the
    /// receiver's); packets come in the order they were sent.
    pub(super) fn packet(&mut self, send_us: i64, arrival_us: i64) {
        let Some(g) = self.group.as_mut() else {
            self.group = Some(Group {
                first_send: send_us,
                last_send: send_us,
                last_arrival: arrival_us,
            });
            self.first_arrival = arrival_us;
            return;
        };
        if send_us - g.first_send <= GROUP {
            g.last_send = g.last_send.max(send_us);
            g.last_arrival = g.last_arrival.max(arrival_us);
            return;
        }
        let done = *g;
        *g = Group {
            first_send: send_us,
            last_send: send_us,
            last_arrival: arrival_us,
        };
        if let Some(prev) = self.prev.replace(done) {
            let send_delta = done.last_send - prev.last_send;
            let arrival_delta = done.last_arrival - prev.last_arrival;
            let change = arrival_delta - send_delta;
            if change.abs() > MAX_DELAY_CHANGE {
                *self = Self::default();
                return;
            }
            self.delay_change(
                change as f64 / 1000.0,
                send_delta as f64 / 1000.0,
                (done.last_arrival - self.first_arrival) as f64 / 1000.0,
            );
        }
    }

    fn delay_change(&mut self, change_ms: f64, send_delta_ms: f64, arrival_ms: f64) {
        self.accumulated_ms += change_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        self.window[self.samples % WINDOW] = (arrival_ms, self.smoothed_ms);
        self.samples += 1;
        if self.samples >= WINDOW {
            let trend = slope(&self.window);
            self.detect(trend, send_delta_ms, arrival_ms);
        }
    }

    fn detect(&mut self, trend: f64, send_delta_ms: f64, now_ms: f64) {
        let modified = (self.samples.min(60) as f64) * trend * GAIN;
        if modified > self.threshold_ms {
            if self.overuse_ms < 0.0 {
                self.overuse_ms = send_delta_ms / 2.0;
            } else {
                self.overuse_ms += send_delta_ms;
            }
            self.overuse_count += 1;
            if self.overuse_ms > OVERUSE_TIME_MS
                && self.overuse_count > 1
                && trend >= self.prev_trend
            {
                self.overuse_ms = 0.0;
                self.overuse_count = 0;
                self.signal = Signal::Overuse;
            }
        } else {
            self.overuse_ms = -1.0;
            self.overuse_count = 0;
            self.signal = if modified < -self.threshold_ms {
                Signal::Underuse
            } else {
                Signal::Normal
            };
        }
        self.prev_trend = trend;
        self.adapt_threshold(modified, now_ms);
    }

    fn adapt_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = *self.last_adapt_ms.get_or_insert(now_ms);
        self.last_adapt_ms = Some(now_ms);
        if modified.abs() > self.threshold_ms + MAX_ADAPT_OFFSET_MS {
            return;
        }
        let k = if modified.abs() < self.threshold_ms {
            K_DOWN
        } else {
            K_UP
        };
        let dt = (now_ms - last).clamp(0.0, 100.0);
        self.threshold_ms += k * (modified.abs() - self.threshold_ms) * dt;
        self.threshold_ms = self.threshold_ms.clamp(6.0, 600.0);
    }
}

/// The least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets every 5 ms for `ms`, each arriving `delay(t)` µs after it was sent;
    /// the signals seen.
    fn run(
        d: &mut DelayDetector,
        from_ms: i64,
        ms: i64,
        delay: impl Fn(i64) -> i64,
    ) -> Vec<Signal> {
        let mut seen = Vec::new();
        for t in (from_ms..from_ms + ms).step_by(5) {
            let send = t * 1000;
            d.packet(send, send + delay(send) + 40_000);
            seen.push(d.signal());
        }
        seen
    }

    #[test]
    fn a_steady_path_is_normal_with_jitter_and_a_growing_queue_is_overuse() {
        let mut d = DelayDetector::default();
        // ±2 ms of jitter for 5 s.
        let steady = run(&mut d, 0, 5_000, |t| ((t / 5_000) % 3 - 1) * 2_000);
        assert!(steady.iter().all(|s| *s == Signal::Normal), "{steady:?}");
        // Then a queue grows by 10 ms every 100 ms (sending at 1.1× the link).
        let growing = run(&mut d, 5_000, 1_000, |t| (t - 5_000_000) / 10);
        let first = growing.iter().position(|s| *s == Signal::Overuse);
        assert!(
            first.is_some_and(|i| i * 5 < 500),
            "overuse within 0.5 s: {first:?}"
        );
        // It drains: underuse, then normal again once it is empty.
        let draining = run(&mut d, 6_000, 500, |t| {
            (100_000 - (t - 6_000_000) / 5).max(0)
        });
        assert!(draining.contains(&Signal::Underuse), "{draining:?}");
        let after = run(&mut d, 6_500, 3_000, |_| 0);
        assert_eq!(after.last(), Some(&Signal::Normal));
    }

    #[test]
    fn a_clock_jump_starts_over() {
        let mut d = DelayDetector::default();
        run(&mut d, 0, 1_000, |_| 0);
        let jumped = run(&mut d, 1_000, 2_000, |t| {
            if t > 1_500_000 { 10_000_000 } else { 0 }
        });
        assert_eq!(jumped.last(), Some(&Signal::Normal));
    }
}
