//! From what the feedback shows to one number: the rate the path to a peer can carry.
//!
//! - The acked rate: what the peer received, over windows of [`ACKED_WINDOW`] of its
//!   arrival clock.
//! - Loss: the share of packets the feedback reports lost, over windows of at least
//!   [`LOSS_PACKETS`] packets and [`LOSS_WINDOW`].
//! - The estimate, AIMD as in Google congestion control: on overuse (or loss over
//!   10%) down to 85% of the acked rate (or by half the loss), at once; while normal
//!   and loss under 2%, up by 8% a second, but never past 1.5× the acked rate. The
//!   engine forwards what publishers send and does not probe, so the estimate says
//!   "at least what goes now, and this much more": choosing layers upwards needs
//!   probing (simulcast's work).

use std::time::{Duration, Instant};

use super::delay::Signal;

/// The lowest and highest estimates, bits per second.
pub(super) const MIN_BPS: f64 = 30_000.0;
pub(super) const MAX_BPS: f64 = 100_000_000.0;

const ACKED_WINDOW: i64 = 500_000;
const LOSS_PACKETS: u32 = 50;
const LOSS_WINDOW: Duration = Duration::from_millis(500);
/// Decreases at most this often: a decrease shows in the feedback a round trip later.
const DECREASE_EVERY: Duration = Duration::from_millis(200);
const BACKOFF: f64 = 0.85;
const INCREASE_PER_SECOND: f64 = 1.08;
const HIGH_LOSS: f64 = 0.10;
pub(super) const LOW_LOSS: f64 = 0.02;

/// What the peer received, bits per second.
#[derive(Default)]
pub(super) struct AckedRate {
    start_us: Option<i64>,
    bytes: u64,
    rate: Option<f64>,
}

impl AckedRate {
    pub(super) fn received(&mut self, arrival_us: i64, size: u16) {
        let start = *self.start_us.get_or_insert(arrival_us);
        self.bytes += u64::from(size);
        let span = arrival_us - start;
        if span >= ACKED_WINDOW {
            let sample = self.bytes as f64 * 8.0 * 1e6 / span as f64;
            self.rate = Some(self.rate.map_or(sample, |r| 0.5 * r + 0.5 * sample));
            (self.start_us, self.bytes) = (Some(arrival_us), 0);
        } else if span < 0 {
            // The receiver's clock went back: start the window again.
            (self.start_us, self.bytes) = (Some(arrival_us), 0);
        }
    }

    pub(super) fn rate(&self) -> Option<f64> {
        self.rate
    }
}

/// The share of packets lost.
pub(super) struct Loss {
    since: Instant,
    received: u32,
    lost: u32,
    ratio: f64,
}

impl Loss {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            since: now,
            received: 0,
            lost: 0,
            ratio: 0.0,
        }
    }

    pub(super) fn received(&mut self, was_lost: bool) {
        self.received += 1;
        // Reported lost before, received after all.
        if was_lost {
            self.lost = self.lost.saturating_sub(1);
        }
    }

    pub(super) fn lost(&mut self) {
        self.lost += 1;
    }

    /// Closes the window once it holds enough.
    pub(super) fn update(&mut self, now: Instant) {
        let total = self.received + self.lost;
        if total >= LOSS_PACKETS && now.saturating_duration_since(self.since) >= LOSS_WINDOW {
            self.ratio = f64::from(self.lost) / f64::from(total);
            (self.since, self.received, self.lost) = (now, 0, 0);
        }
    }

    pub(super) fn ratio(&self) -> f64 {
        self.ratio
    }
}

/// The estimate itself.
pub(super) struct RateControl {
    estimate: Option<f64>,
    last_update: Instant,
    last_decrease: Option<Instant>,
}

impl RateControl {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            estimate: None,
            last_update: now,
            last_decrease: None,
        }
    }

    pub(super) fn estimate(&self) -> Option<f64> {
        self.estimate
    }

    pub(super) fn update(&mut self, now: Instant, signal: Signal, acked: Option<f64>, loss: f64) {
        let Some(acked) = acked else {
            return; // nothing known yet
        };
        let ceiling = 1.5 * acked + 10_000.0;
        let estimate = *self.estimate.get_or_insert(ceiling);
        let dt = now
            .saturating_duration_since(self.last_update)
            .min(Duration::from_secs(1));
        self.last_update = now;
        let may_decrease = self
            .last_decrease
            .is_none_or(|t| now.saturating_duration_since(t) >= DECREASE_EVERY);
        let next = if signal == Signal::Overuse || loss > HIGH_LOSS {
            if !may_decrease {
                return;
            }
            self.last_decrease = Some(now);
            let by_delay = if signal == Signal::Overuse {
                BACKOFF * acked
            } else {
                f64::MAX
            };
            let by_loss = if loss > HIGH_LOSS {
                acked * (1.0 - 0.5 * loss)
            } else {
                f64::MAX
            };
            estimate.min(by_delay).min(by_loss)
        } else if signal == Signal::Normal && loss < LOW_LOSS {
            let grown = estimate * INCREASE_PER_SECOND.powf(dt.as_secs_f64());
            // Growth stops at the ceiling; it does not pull an estimate down to it.
            grown.min(ceiling.max(estimate))
        } else {
            estimate // underuse (a queue draining) or some loss: hold
        };
        self.estimate = Some(next.clamp(MIN_BPS, MAX_BPS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acked_rate_is_bytes_over_the_receivers_time() {
        let mut a = AckedRate::default();
        // 1000 bytes every 10 ms: 800 kbit/s.
        for i in 0..=100 {
            a.received(i * 10_000, 1000);
        }
        let r = a.rate().unwrap();
        assert!((r - 800_000.0).abs() < 20_000.0, "{r}");
    }

    #[test]
    fn loss_is_measured_over_enough_packets() {
        let t0 = Instant::now();
        let mut l = Loss::new(t0);
        for i in 0..100 {
            if i % 10 == 0 {
                l.lost()
            } else {
                l.received(false)
            }
        }
        l.update(t0 + Duration::from_millis(100));
        assert_eq!(l.ratio(), 0.0, "not yet half a second");
        l.update(t0 + Duration::from_millis(600));
        assert!((l.ratio() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn down_at_once_on_overuse_and_heavy_loss_up_slowly_otherwise() {
        let t0 = Instant::now();
        let mut c = RateControl::new(t0);
        c.update(t0, Signal::Normal, None, 0.0);
        assert_eq!(c.estimate(), None, "nothing acked, nothing known");
        c.update(t0, Signal::Normal, Some(1e6), 0.0);
        assert_eq!(c.estimate(), Some(1.51e6), "starts at 1.5× what arrives");
        let ms = |n| t0 + Duration::from_millis(n);
        c.update(ms(100), Signal::Overuse, Some(1e6), 0.0);
        assert_eq!(c.estimate(), Some(0.85e6));
        c.update(ms(150), Signal::Overuse, Some(0.5e6), 0.0);
        assert_eq!(c.estimate(), Some(0.85e6), "one decrease per 200 ms");
        c.update(ms(1_150), Signal::Normal, Some(0.8e6), 0.0);
        let e = c.estimate().unwrap();
        assert!((e - 0.85e6 * 1.08).abs() < 1.0, "{e}");
        c.update(ms(1_400), Signal::Normal, Some(0.8e6), 0.25);
        assert_eq!(
            c.estimate(),
            Some(0.8e6 * 0.875),
            "25% loss: acked × (1 - 0.125)"
        );
        let held = c.estimate();
        c.update(ms(2_400), Signal::Normal, Some(0.8e6), 0.05);
        assert_eq!(c.estimate(), held, "5% loss holds");
        c.update(ms(3_400), Signal::Underuse, Some(0.8e6), 0.0);
        assert_eq!(c.estimate(), held, "a queue draining holds");
        for s in 4..60 {
            c.update(ms(s * 1000), Signal::Normal, Some(0.8e6), 0.0);
        }
        assert_eq!(
            c.estimate(),
            Some(1.5 * 0.8e6 + 10_000.0),
            "up to 1.5× acked"
        );
    }
}
