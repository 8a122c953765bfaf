//! The bandwidth estimate of the path from the server to one subscriber, from the
//! transport-wide congestion control feedback it sends (every packet the engine sends
//! it carries a transport-wide sequence number; the feedback says when each arrived).
//! Simulcast (issue #22) is to choose each subscriber's layers with it.
//!
//! | file | what |
//! |---|---|
//! | `sent.rs` | what was sent, by transport-wide sequence number |
//! | `delay.rs` | whether the path is queueing (trendline, overuse detector) |
//! | `standing.rs` | whether a queue stands on the path (delay over its least) |
//! | `rate.rs` | acked rate, loss and the AIMD estimate |
//!
//! Sans-IO: times come in as arguments; the tests below run a simulated bottleneck on
//! a virtual clock.

mod delay;
mod rate;
mod sent;
mod standing;

use std::time::Instant;

use crate::rtcp::Arrival;
use delay::DelayDetector;
pub use delay::Signal;
use rate::{AckedRate, Loss, RateControl};
use sent::SentLog;
use standing::StandingQueue;

/// Upper bounds (bits per second) of the bands the metrics page counts subscribers'
/// estimates in; the last band is everything above.
pub const BAND_BOUNDS_BPS: [u64; 5] = [100_000, 300_000, 1_000_000, 3_000_000, 10_000_000];

/// How many estimates fall in each band of [`BAND_BOUNDS_BPS`] (and above the last).
pub type Bands = [u32; BAND_BOUNDS_BPS.len() + 1];

/// Counts `estimate` in its band.
pub fn count_in_band(bands: &mut Bands, estimate: u64) {
    let i = BAND_BOUNDS_BPS
        .iter()
        .position(|b| estimate <= *b)
        .unwrap_or(BAND_BOUNDS_BPS.len());
    bands[i] += 1;
}

pub struct Bwe {
    sent: SentLog,
    delay: DelayDetector,
    standing: StandingQueue,
    acked: AckedRate,
    loss: Loss,
    rate: RateControl,
    /// The newest packet a feedback has reported on (its full sequence number).
    reported_to: Option<u64>,
}

impl Bwe {
    pub fn new(now: Instant) -> Self {
        Self {
            sent: SentLog::new(now),
            delay: DelayDetector::default(),
            standing: StandingQueue::default(),
            acked: AckedRate::default(),
            loss: Loss::new(now),
            rate: RateControl::new(now),
            reported_to: None,
        }
    }

    /// The transport-wide sequence number the next packet [`Bwe::sent`] takes.
    pub fn next_seq(&self) -> u16 {
        self.sent.next_seq()
    }

    /// A packet of `size` bytes goes out at `now`: its transport-wide sequence number.
    pub fn sent(&mut self, now: Instant, size: usize) -> u16 {
        self.sent.push(now, size)
    }

    /// One packet a feedback reports on. Call [`Bwe::feedback_done`] after the last.
    pub fn arrival(&mut self, a: Arrival) {
        // A receiver that starts a feedback past where its last one ended (str0m's
        // starts at the next packet it received) never saw the packets between: lost.
        // (A browser's feedback goes on from the last one's end.) One reported
        // received later is counted back.
        if let Some(seq) = self.sent.extend(a.seq) {
            // (At most the packets still remembered: a feedback after a long silence.)
            let from = self.reported_to.map_or(seq, |r| r + 1);
            let from = from.max(seq.saturating_sub(sent::SLOTS as u64));
            for skipped in from..seq {
                if self.sent.report(skipped as u16, false).is_some() {
                    self.loss.lost();
                }
            }
            self.reported_to = Some(self.reported_to.map_or(seq, |r| r.max(seq)));
        }
        let Some(sent) = self.sent.report(a.seq, a.at_us.is_some()) else {
            return;
        };
        match a.at_us {
            Some(at) => {
                self.loss.received(sent.was_lost);
                self.acked.received(at, sent.size);
                self.delay.packet(sent.at_us, at);
                self.standing.packet(sent.at_us, at);
            }
            None => self.loss.lost(),
        }
    }

    /// A feedback was read: the estimate follows.
    pub fn feedback_done(&mut self, now: Instant) {
        self.loss.update(now);
        // A standing queue says the path carries less than it is sent as plainly as a
        // growing one: the estimate backs off to under what arrives, for both.
        let signal = if self.standing.standing() {
            Signal::Overuse
        } else {
            self.delay.signal()
        };
        self.rate
            .update(now, signal, self.acked.rate(), self.loss.ratio());
    }

    /// Bits per second the path carries, once feedback has shown anything.
    pub fn estimate(&self) -> Option<u64> {
        self.rate.estimate().map(|e| e as u64)
    }

    /// What the peer received lately, bits per second.
    pub fn acked(&self) -> Option<u64> {
        self.acked.rate().map(|e| e as u64)
    }

    /// The path shows congestion now: it holds a queue, or it loses more than a little.
    pub fn congested(&self) -> bool {
        self.queued() || self.loss.ratio() > rate::LOW_LOSS
    }

    /// The path holds a queue: it grows now, or it stands (a full queue that loses
    /// what does not fit). Sent more than it carries, unlike a path that only loses
    /// packets (a radio link's loss, which sending less does not cure).
    pub fn queued(&self) -> bool {
        self.delay.signal() == Signal::Overuse || self.standing.standing()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use super::*;

    /// A bottleneck of `capacity` bits per second with a queue of at most `queue`,
    /// 20 ms of propagation, and a receiver that reports every 50 ms.
    struct Path {
        capacity: f64,
        queue: Duration,
        free_at: Instant,
        /// `(seq, arrival or lost, sent)` not yet reported.
        pending: VecDeque<(u16, Option<Instant>)>,
        epoch: Instant,
    }

    impl Path {
        fn send(&mut self, now: Instant, seq: u16, size: usize) {
            let start = self.free_at.max(now);
            if start.saturating_duration_since(now) > self.queue {
                self.pending.push_back((seq, None)); // tail drop
                return;
            }
            let serialise = Duration::from_secs_f64(size as f64 * 8.0 / self.capacity);
            self.free_at = start + serialise;
            self.pending
                .push_back((seq, Some(self.free_at + Duration::from_millis(20))));
        }

        /// A feedback for everything that arrived (or was lost) by `now`.
        fn report(&mut self, now: Instant, bwe: &mut Bwe) {
            let mut any = false;
            while let Some((seq, arrival)) = self.pending.front().copied() {
                if arrival.is_some_and(|a| a > now) {
                    break;
                }
                self.pending.pop_front();
                let at_us = arrival.map(|a| a.duration_since(self.epoch).as_micros() as i64);
                bwe.arrival(Arrival { seq, at_us });
                any = true;
            }
            if any {
                bwe.feedback_done(now);
            }
        }
    }

    /// Sends `rate` bits per second in 1,000-byte packets through `path` for `secs`
    /// (feedback every 50 ms); the estimate after each second.
    fn run(bwe: &mut Bwe, path: &mut Path, now: &mut Instant, rate: f64, secs: u32) -> Vec<u64> {
        let gap = Duration::from_secs_f64(8_000.0 / rate);
        let mut next_report = *now + Duration::from_millis(50);
        let mut estimates = Vec::new();
        let end = *now + Duration::from_secs(u64::from(secs));
        let mut next_second = *now + Duration::from_secs(1);
        while *now < end {
            let seq = bwe.sent(*now, 1000);
            path.send(*now, seq, 1000);
            *now += gap;
            if *now >= next_report {
                path.report(*now, bwe);
                next_report += Duration::from_millis(50);
            }
            if *now >= next_second {
                estimates.push(bwe.estimate().unwrap_or(0));
                next_second += Duration::from_secs(1);
            }
        }
        estimates
    }

    fn path(now: Instant, capacity: f64) -> Path {
        Path {
            capacity,
            queue: Duration::from_millis(300),
            free_at: now,
            pending: VecDeque::new(),
            epoch: now - Duration::from_secs(1000),
        }
    }

    #[test]
    fn on_a_wide_path_the_estimate_stays_above_what_is_sent() {
        let mut now = Instant::now();
        let mut bwe = Bwe::new(now);
        let mut p = path(now, 100e6);
        let e = run(&mut bwe, &mut p, &mut now, 1e6, 10);
        assert!(e.iter().skip(1).all(|e| *e >= 1_000_000), "{e:?}");
        assert!(*e.last().unwrap() <= 1_600_000, "{e:?}");
    }

    #[test]
    fn a_narrow_path_brings_the_estimate_down_to_it_and_a_wider_one_back_up() {
        let mut now = Instant::now();
        let mut bwe = Bwe::new(now);
        let mut p = path(now, 100e6);
        run(&mut bwe, &mut p, &mut now, 1e6, 5);
        // The path narrows to 500 kbit/s while 1 Mbit/s goes on.
        p.capacity = 500e3;
        let narrow = run(&mut bwe, &mut p, &mut now, 1e6, 10);
        assert!(
            narrow[1..].iter().all(|e| *e <= 600_000),
            "down to the path within 2 s: {narrow:?}"
        );
        assert!(
            narrow.iter().all(|e| *e >= 200_000),
            "not far below it: {narrow:?}"
        );
        // The sender adapts (as simulcast will) and the path widens again.
        p.capacity = 100e6;
        run(&mut bwe, &mut p, &mut now, 400e3, 3);
        // Without probing it grows 8% a second: past what is sent in about 10 s.
        let wide = run(&mut bwe, &mut p, &mut now, 1e6, 15);
        assert!(wide.windows(2).all(|w| w[1] >= w[0]), "{wide:?}");
        assert!(*wide.last().unwrap() >= 1_000_000, "{wide:?}");
    }

    #[test]
    fn a_queue_is_seen_before_it_overflows() {
        // 1.2 Mbit/s into 1 Mbit/s with a deep queue (no loss for 15 s): only delay
        // shows it.
        let mut now = Instant::now();
        let mut bwe = Bwe::new(now);
        let mut p = path(now, 100e6);
        p.queue = Duration::from_secs(10);
        run(&mut bwe, &mut p, &mut now, 1.2e6, 3);
        p.capacity = 1e6;
        let e = run(&mut bwe, &mut p, &mut now, 1.2e6, 3);
        assert!(e[1..].iter().all(|e| *e <= 1_000_000), "{e:?}");
    }

    #[test]
    fn estimates_are_counted_in_the_band_they_are_at_most() {
        let mut bands = Bands::default();
        for e in [0, 100_000, 100_001, 2_000_000, 10_000_000, 50_000_000] {
            count_in_band(&mut bands, e);
        }
        assert_eq!(bands, [2, 1, 0, 1, 1, 1]);
    }

    #[test]
    fn feedback_for_packets_never_sent_changes_nothing() {
        let now = Instant::now();
        let mut bwe = Bwe::new(now);
        for seq in 0..=u16::MAX {
            bwe.arrival(Arrival {
                seq,
                at_us: Some(i64::from(seq)),
            });
        }
        bwe.feedback_done(now);
        assert_eq!(bwe.estimate(), None);
    }

    /// A receiver whose feedback starts past where its last one ended (str0m's, at the
    /// next packet it got) reports nothing of the packets between: they count as lost
    /// (one reported received after all counts back: `sent.rs`).
    #[test]
    fn packets_a_feedback_skips_are_lost() {
        let t0 = Instant::now();
        let mut bwe = Bwe::new(t0);
        for i in 0..400u64 {
            bwe.sent(t0 + Duration::from_millis(i * 5), 1000);
        }
        // Ten feedbacks, each of the 20 packets after 20 it never got.
        for f in 0..10u16 {
            for seq in f * 40 + 20..f * 40 + 40 {
                let at_us = Some(i64::from(seq) * 5000 + 20_000);
                bwe.arrival(Arrival { seq, at_us });
            }
            bwe.feedback_done(t0 + Duration::from_millis(u64::from(f) * 200 + 220));
        }
        assert!(
            (bwe.loss.ratio() - 0.5).abs() < 0.01,
            "{}",
            bwe.loss.ratio()
        );
        assert!(bwe.congested() && !bwe.queued(), "loss, no queue");
    }
}
