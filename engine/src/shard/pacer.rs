//! The pacer: the video the engine forwards to one subscriber leaves at most at 1.5 times
//! what the subscriber's path has shown it carries (its bandwidth estimate, or the rate
//! it received where that is more: `send.rs`), so that a keyframe (ten frames' worth or
//! more, all at once) is not a burst that a narrow link's queue cuts short. A home router or a
//! `tc tbf` holds a few kilobytes; a keyframe that overflows it loses its tail, the
//! receiver asks for it again, and on a link that is already full the resends come late
//! or not at all: the picture freezes until the next keyframe, which meets the same fate.
//!
//! A token bucket: tokens (bytes) flow in at the pacing rate up to [`BURST`] of it, so
//! the frames of a stream that fits its link leave as they come; only what is bigger than
//! the bucket waits, in order. Audio and resends never wait (they are small, or late
//! already) but take their bytes from the bucket, so the video behind them waits for them.
//!
//! No packet waits longer than [`MAX_WAIT`]: one that has waited that long leaves,
//! tokens or not. The pacer spreads bursts; it does not hold back a stream the estimate
//! cannot carry (choosing what to send is the layers' job, `layers.rs`).
//!
//! Before the first estimate (and for a peer without congestion control feedback)
//! nothing waits.
//!
//! Sans-IO and generic over what it holds, so the tests below run it on a virtual clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The pacing rate over the estimate. Above one, so a stream the estimate carries never
/// builds a queue here, and a frame of average size never waits (the bucket refills
/// between frames); low enough that on a link the estimate fills, a burst leaves only a
/// third of itself in the link's queue (at twice, half; a router's queue of a few
/// kilobytes holds a third of a keyframe, not half).
pub(crate) const PACING_FACTOR: f64 = 1.5;

/// What may leave at once after a pause: 40 ms at the pacing rate (an average frame at
/// 30 frames a second fits, with room), and at least two full packets.
const BURST: Duration = Duration::from_millis(40);
const MIN_BURST_BYTES: f64 = 2.0 * 1_200.0;

/// The longest a packet waits here.
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(300);

pub(crate) struct Pacer<T> {
    /// What waits, with its size and since when, oldest first.
    queue: VecDeque<(T, usize, Instant)>,
    /// Bytes that may leave now (below zero: a debt that audio or resends ran up).
    tokens: f64,
    refilled: Instant,
    /// Bytes per second; none before the first estimate.
    rate: Option<f64>,
    /// When the shard is to wake this pacer (its heap entry; `core.rs`).
    pub(crate) scheduled: Option<Instant>,
}

impl<T> Pacer<T> {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            queue: VecDeque::new(),
            tokens: MIN_BURST_BYTES,
            refilled: now,
            rate: None,
            scheduled: None,
        }
    }

    /// What the path carries changed (bits per second).
    pub(crate) fn set_estimate(&mut self, now: Instant, bps: Option<u64>) {
        self.refill(now);
        self.rate = bps.map(|b| b as f64 / 8.0 * PACING_FACTOR);
    }

    fn burst(&self, rate: f64) -> f64 {
        (rate * BURST.as_secs_f64()).max(MIN_BURST_BYTES)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = self.refilled.max(now);
        if let Some(rate) = self.rate {
            self.tokens = (self.tokens + elapsed * rate).min(self.burst(rate));
        }
    }

    /// Takes a packet's bytes from the bucket. A debt deeper than one burst is forgiven:
    /// audio over the estimate, or a packet that waited too long, must not hold the
    /// video back for long.
    fn take(&mut self, bytes: usize) {
        if let Some(rate) = self.rate {
            self.tokens = (self.tokens - bytes as f64).max(-self.burst(rate));
        }
    }

    /// Whether a packet of `bytes` may leave now (its bytes are then taken). One that
    /// may not is to be [`Pacer::hold`]: nothing overtakes what waits.
    pub(crate) fn admit(&mut self, now: Instant, bytes: usize) -> bool {
        if self.rate.is_none() {
            return true;
        }
        self.refill(now);
        if !self.queue.is_empty() || self.tokens < 0.0 {
            return false;
        }
        self.take(bytes);
        true
    }

    /// A packet that does not wait (audio, a resend) left: its bytes come from the bucket.
    pub(crate) fn charge(&mut self, now: Instant, bytes: usize) {
        self.refill(now);
        self.take(bytes);
    }

    /// Holds a packet of `bytes` that may not leave yet.
    pub(crate) fn hold(&mut self, now: Instant, item: T, bytes: usize) {
        self.refill(now);
        self.queue.push_back((item, bytes, now));
    }

    /// The oldest packet held, if it may leave at `now`: there are tokens, or it has
    /// waited [`MAX_WAIT`].
    pub(crate) fn pop(&mut self, now: Instant) -> Option<T> {
        self.refill(now);
        let (_, _, since) = self.queue.front()?;
        let overdue = now.saturating_duration_since(*since) >= MAX_WAIT;
        if self.rate.is_some() && self.tokens < 0.0 && !overdue {
            return None;
        }
        let (item, bytes, _) = self.queue.pop_front()?;
        self.take(bytes);
        Some(item)
    }

    /// When the oldest packet held may leave (none: nothing is held).
    pub(crate) fn next_departure(&self, now: Instant) -> Option<Instant> {
        let (_, _, since) = self.queue.front()?;
        let Some(rate) = self.rate else {
            return Some(now);
        };
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        let missing = -(self.tokens + elapsed * rate);
        if missing <= 0.0 {
            return Some(now);
        }
        // Rounded up, and at least a microsecond on: a wake-up at `now` that finds the
        // bucket a rounding error short would be scheduled again at `now`, for ever.
        let wait = Duration::from_nanos((missing / rate * 1e9).ceil() as u64)
            .max(Duration::from_micros(1));
        Some((now + wait).min(*since + MAX_WAIT))
    }

    /// Whether anything waits.
    pub(crate) fn holds(&self) -> bool {
        !self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Runs `pacer` from `t0` until it holds nothing, waking when it says; the departure
    /// time of each packet.
    fn drain(pacer: &mut Pacer<u32>, mut now: Instant) -> Vec<(u32, Instant)> {
        let mut left = Vec::new();
        while let Some(at) = pacer.next_departure(now) {
            now = at.max(now);
            while let Some(p) = pacer.pop(now) {
                left.push((p, now));
            }
            now += Duration::from_micros(1);
        }
        left
    }

    #[test]
    fn nothing_waits_before_an_estimate() {
        let t0 = Instant::now();
        let mut p: Pacer<u32> = Pacer::new(t0);
        for _ in 0..100 {
            assert!(p.admit(t0, 1_200));
        }
        assert!(!p.holds());
    }

    #[test]
    fn a_stream_that_fits_its_estimate_leaves_as_it_comes() {
        let t0 = Instant::now();
        let mut p: Pacer<u32> = Pacer::new(t0);
        p.set_estimate(t0, Some(1_000_000));
        // 30 frames a second of 3 packets of 1,000 bytes: 720 kbit/s.
        for frame in 0..300u32 {
            let now = t0 + 33 * MS * frame;
            for _ in 0..3 {
                assert!(p.admit(now, 1_000), "frame {frame} waited");
            }
        }
    }

    #[test]
    fn a_keyframe_spreads_at_one_and_a_half_times_the_estimate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0);
        // 200 kbit/s: paced at 300 kbit/s, 37,500 bytes a second; the bucket holds 2,400.
        p.set_estimate(t0, Some(200_000));
        let t1 = t0 + Duration::from_secs(1);
        let mut held = 0;
        for i in 0..10u32 {
            if !p.admit(t1, 1_000) {
                p.hold(t1, i, 1_000);
                held += 1;
            }
        }
        assert_eq!(
            held, 7,
            "the bucket lets three through (the third on credit)"
        );
        let left = drain(&mut p, t1);
        assert_eq!(
            left.iter().map(|l| l.0).collect::<Vec<_>>(),
            (3..10).collect::<Vec<_>>()
        );
        // The first when the third's debt of 600 bytes is paid, 16 ms; then one every
        // 26.7 ms (1,000 bytes at 37,500 a second).
        let took: Vec<Duration> = left.iter().map(|l| l.1 - t1).collect();
        assert!((16 * MS..17 * MS).contains(&took[0]), "{took:?}");
        assert!((176 * MS..177 * MS).contains(&took[6]), "{took:?}");
    }

    #[test]
    fn nothing_overtakes_what_waits_and_audio_takes_its_bytes() {
        let t0 = Instant::now();
        // 80 kbit/s, paced at 15,000 bytes a second; the bucket spent, one packet waiting.
        let stalled = || {
            let mut p = Pacer::new(t0);
            p.set_estimate(t0, Some(80_000));
            while p.admit(t0, 1_000) {}
            p.hold(t0, 1, 1_000);
            p
        };
        // Audio goes at once; the waiting video leaves later for it.
        let without = stalled().next_departure(t0).unwrap();
        let mut p = stalled();
        p.charge(t0, 500);
        let with = p.next_departure(t0).unwrap();
        let later_by = (with - without).as_secs_f64();
        assert!(
            (later_by - 0.5 / 15.0).abs() < 1e-5,
            "500 bytes at 15,000 a second: {later_by}"
        );
        // Tokens are back, but a packet waits: the next one waits behind it.
        assert!(!p.admit(t0 + 200 * MS, 100));
        assert_eq!(p.pop(t0 + 200 * MS), Some(1));
    }

    #[test]
    fn no_packet_waits_longer_than_the_limit() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0);
        // 50 kbit/s and a 100 kB burst: at the pacing rate it would take 8 s. Each packet
        // leaves by the time it has waited the limit.
        p.set_estimate(t0, Some(50_000));
        for i in 0..100u32 {
            if !p.admit(t0, 1_000) {
                p.hold(t0, i, 1_000);
            }
        }
        let left = drain(&mut p, t0);
        assert_eq!(left.len(), 97);
        let took = left.last().unwrap().1 - t0;
        assert!((MAX_WAIT..MAX_WAIT + MS).contains(&took), "{took:?}");
        // After that, the bucket is at most one burst in debt.
        assert!(p.admit(t0 + MAX_WAIT + 400 * MS, 100));
    }

    #[test]
    fn a_debt_is_forgiven_after_a_burst() {
        let t0 = Instant::now();
        let mut p: Pacer<u32> = Pacer::new(t0);
        p.set_estimate(t0, Some(80_000)); // 15,000 bytes a second, a 2,400 byte bucket
        p.charge(t0, 100_000);
        // At most one bucket of debt: paid back within 160 ms.
        assert!(p.admit(t0 + 240 * MS, 100));
    }
}
