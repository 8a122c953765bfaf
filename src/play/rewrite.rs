//! Continuity of a forwarded RTP source: the room sees one stream with steady sequence
//! numbers and timestamps even when the source restarts (a new SSRC, or a jump in its
//! sequence numbers or timestamps, as when ffmpeg is started again).
//!
//! Sans-IO: packets and their arrival time in, output numbering out. The SSRC and the
//! payload type are not kept at all: the peer sends on its own negotiated stream.

use std::time::{Duration, Instant};

/// A sequence number further than this from the highest seen means a new stream.
const MAX_SEQ_JUMP: i64 = 3000;
/// Timestamps running this many seconds ahead of the wall clock mean a new stream.
const MAX_TIME_AHEAD_SECS: i64 = 10;
/// Timestamps going back this many seconds while sequence numbers advance mean a new
/// stream.
const MAX_TIME_BACK_SECS: i64 = 1;
/// The first output sequence number: small, so the SRTP rollover counter starts at 0,
/// and not 0, so a few packets that arrive late from before the first one still fit.
const FIRST_SEQ: i64 = 100;
/// Wallclock estimates that fall this far behind arrival are re-anchored (the source's
/// clock drifts, or it paused).
const MAX_WALLCLOCK_LAG: Duration = Duration::from_millis(200);

/// Where one source packet goes in the output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rewritten {
    /// Extended output sequence number.
    pub(crate) seq: u64,
    /// Output RTP timestamp.
    pub(crate) time: u32,
    /// The wallclock instant of this media time (never after its arrival), for sender
    /// reports: a smoothed arrival time, so network jitter does not reach lip-sync.
    pub(crate) wallclock: Instant,
    /// The source restarted with this packet (and was re-based).
    pub(crate) restarted: bool,
}

/// The source stream being followed.
#[derive(Debug, Clone, Copy)]
struct Source {
    ssrc: u32,
    /// Highest extended source sequence number seen.
    highest: i64,
    /// Its timestamp.
    highest_time: u32,
    /// When it arrived.
    highest_arrival: Instant,
    /// output seq = source extended seq + this.
    seq_offset: i64,
    /// output time = source time + this (wrapping).
    time_offset: u32,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Rewriter {
    clock_rate: u32,
    source: Option<Source>,
    /// The next output sequence number after the highest sent.
    next_seq: i64,
    /// The output timestamp of the highest sequence number sent.
    last_time: u32,
    /// Wallclock anchor: this output time happened at this instant.
    anchor: Option<(Instant, u32)>,
}

impl Rewriter {
    /// A rewriter for a stream with this RTP clock rate.
    pub(crate) fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            source: None,
            next_seq: FIRST_SEQ,
            last_time: 0,
            anchor: None,
        }
    }

    /// The SSRC of the source now followed.
    pub(crate) fn source_ssrc(&self) -> Option<u32> {
        self.source.map(|s| s.ssrc)
    }

    /// Places one source packet in the output stream, or drops it (`None`: it belongs
    /// before the start of the output).
    pub(crate) fn rewrite(
        &mut self,
        ssrc: u32,
        seq: u16,
        time: u32,
        arrival: Instant,
    ) -> Option<Rewritten> {
        let mut restarted = false;
        let ext = match self.source {
            None => {
                self.start(ssrc, seq, time, arrival, false);
                i64::from(seq) + (1 << 16)
            }
            Some(s) => {
                let ext = extend(s.highest, seq);
                if s.ssrc != ssrc || self.jumped(&s, ext, time, arrival) {
                    restarted = true;
                    self.start(ssrc, seq, time, arrival, true);
                    i64::from(seq) + (1 << 16)
                } else {
                    ext
                }
            }
        };
        let source = self.source.as_mut().expect("a source was set above");
        let out_seq = ext + source.seq_offset;
        if out_seq < 1 {
            return None;
        }
        let out_time = time.wrapping_add(source.time_offset);
        if out_seq >= self.next_seq {
            self.next_seq = out_seq + 1;
            self.last_time = out_time;
            source.highest = ext;
            source.highest_time = time;
            source.highest_arrival = arrival;
        }
        let wallclock = self.wallclock(out_time, arrival);
        Some(Rewritten {
            seq: out_seq as u64,
            time: out_time,
            wallclock,
            restarted,
        })
    }

    /// Makes room for one more packet right after `seq`, the newest packet so far (a
    /// source packet split in two); later source packets move one on. `None` if `seq` is
    /// not the newest. A late packet from before the split is then numbered one off, which
    /// costs the receiver that packet, no more.
    pub(crate) fn insert_after(&mut self, seq: u64) -> Option<u64> {
        let source = self.source.as_mut()?;
        if seq as i64 + 1 != self.next_seq {
            return None;
        }
        source.seq_offset += 1;
        self.next_seq += 1;
        Some(seq + 1)
    }

    /// Whether a packet of the followed SSRC starts over (a jump in sequence number or
    /// timestamp).
    fn jumped(&self, s: &Source, ext: i64, time: u32, arrival: Instant) -> bool {
        let seq_delta = ext - s.highest;
        if seq_delta.abs() > MAX_SEQ_JUMP {
            return true;
        }
        if seq_delta <= 0 {
            // Late or repeated: its time belongs to the past, nothing to compare.
            return false;
        }
        let rate = i64::from(self.clock_rate);
        let time_delta = i64::from(time.wrapping_sub(s.highest_time) as i32);
        let elapsed = ticks(arrival.saturating_duration_since(s.highest_arrival), rate);
        time_delta < -MAX_TIME_BACK_SECS * rate || time_delta - elapsed > MAX_TIME_AHEAD_SECS * rate
    }

    /// Follows a new source: its first packet goes right after the last one sent, at an
    /// output time as far after the last one as the wall clock says.
    fn start(&mut self, ssrc: u32, seq: u16, time: u32, arrival: Instant, restart: bool) {
        let ext = i64::from(seq) + (1 << 16);
        let time_offset = match (restart, self.source) {
            (true, Some(prev)) => {
                let elapsed = ticks(
                    arrival.saturating_duration_since(prev.highest_arrival),
                    i64::from(self.clock_rate),
                )
                .max(1);
                self.last_time
                    .wrapping_add(elapsed as u32)
                    .wrapping_sub(time)
            }
            _ => 0,
        };
        self.source = Some(Source {
            ssrc,
            highest: ext,
            highest_time: time,
            highest_arrival: arrival,
            seq_offset: self.next_seq - ext,
            time_offset,
        });
    }

    fn wallclock(&mut self, out_time: u32, arrival: Instant) -> Instant {
        if let Some((at, anchor_time)) = self.anchor {
            let delta = out_time.wrapping_sub(anchor_time) as i32;
            let offset = Duration::from_secs_f64(
                f64::from(delta.unsigned_abs()) / f64::from(self.clock_rate),
            );
            let predicted = if delta >= 0 {
                at.checked_add(offset)
            } else {
                at.checked_sub(offset)
            };
            if let Some(p) = predicted
                && p <= arrival
                && arrival.duration_since(p) <= MAX_WALLCLOCK_LAG
            {
                return p;
            }
        }
        self.anchor = Some((arrival, out_time));
        arrival
    }
}

/// `d` in RTP ticks at `rate`.
fn ticks(d: Duration, rate: i64) -> i64 {
    (d.as_micros() as i64).saturating_mul(rate) / 1_000_000
}

/// The extended sequence number nearest to `highest` whose low 16 bits are `seq`.
fn extend(highest: i64, seq: u16) -> i64 {
    let base = highest & !0xffff;
    [base - (1 << 16), base, base + (1 << 16)]
        .into_iter()
        .map(|b| b + i64::from(seq))
        .min_by_key(|c| (c - highest).abs())
        .expect("three candidates")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn numbers_start_small_and_follow_the_source_across_wraps() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000);
        let mut seqs = Vec::new();
        for i in 0..10u16 {
            let seq = 65_530u16.wrapping_add(i);
            let time = (u32::MAX - 5_000).wrapping_add(u32::from(i) * 3_000);
            let out = r
                .rewrite(7, seq, time, t0 + MS * 33 * u32::from(i))
                .unwrap();
            assert_eq!(out.time, time, "time kept while the source runs");
            assert!(!out.restarted);
            seqs.push(out.seq);
        }
        assert_eq!(seqs, (100..110).collect::<Vec<u64>>());
    }

    #[test]
    fn gaps_and_reordering_are_kept() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(48_000);
        let a = r.rewrite(1, 10, 0, t0).unwrap();
        let c = r.rewrite(1, 12, 1920, t0 + MS * 40).unwrap();
        let b = r.rewrite(1, 11, 960, t0 + MS * 41).unwrap();
        assert_eq!((a.seq, b.seq, c.seq), (100, 101, 102));
        assert_eq!(b.time, 960);
        // A packet from before the first one, still mapped.
        assert_eq!(r.rewrite(1, 9, 0, t0 + MS * 42).unwrap().seq, 99);
    }

    #[test]
    fn a_new_ssrc_continues_the_output() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000);
        for i in 0..30u32 {
            r.rewrite(
                0xaaaa,
                500 + i as u16,
                1_000_000 + i * 3_000,
                t0 + MS * 33 * i,
            );
        }
        // ffmpeg started again 2 s after its last packet: new SSRC, new numbers.
        let last_arrival = t0 + MS * 33 * 29;
        let out = r
            .rewrite(0xbbbb, 17, 42, last_arrival + Duration::from_secs(2))
            .unwrap();
        assert!(out.restarted);
        assert_eq!(out.seq, 130, "right after the last one");
        let expected = 1_000_000 + 29 * 3_000 + 180_000;
        assert!(
            (i64::from(out.time) - expected).abs() < 100,
            "time advanced by the 2 s that passed: {} vs {expected}",
            out.time
        );
        let next = r
            .rewrite(
                0xbbbb,
                18,
                3_042,
                last_arrival + Duration::from_secs(2) + MS * 33,
            )
            .unwrap();
        assert_eq!(next.seq, 131);
        assert_eq!(next.time, out.time.wrapping_add(3_000));
        assert!(!next.restarted);
        assert_eq!(r.source_ssrc(), Some(0xbbbb));
    }

    #[test]
    fn a_jump_in_sequence_or_time_on_the_same_ssrc_is_a_restart() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(48_000);
        r.rewrite(5, 100, 0, t0);
        let out = r.rewrite(5, 30_000, 960, t0 + MS * 20).unwrap();
        assert!(out.restarted);
        assert_eq!(out.seq, 101);
        let out = r.rewrite(5, 30_001, 48_000 * 60, t0 + MS * 40).unwrap();
        assert!(out.restarted, "a minute ahead in 20 ms");
        assert_eq!(out.seq, 102);
        let out = r
            .rewrite(5, 30_002, 48_000 * 60 + 960, t0 + MS * 60)
            .unwrap();
        assert!(!out.restarted);
        assert_eq!(out.seq, 103);
    }

    #[test]
    fn wallclock_is_smooth_and_never_after_arrival() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000);
        let first = r.rewrite(1, 1, 0, t0).unwrap();
        assert_eq!(first.wallclock, t0);
        // Arrives 5 ms late: the wallclock stays on the media clock.
        let late = r.rewrite(1, 2, 3_000, t0 + MS * 38).unwrap();
        assert!(late.wallclock <= t0 + MS * 38);
        assert!(late.wallclock.duration_since(t0) >= MS * 33);
        assert!(late.wallclock.duration_since(t0) < MS * 34);
        // Arrives early: re-anchored at its arrival.
        let early = r.rewrite(1, 3, 6_000, t0 + MS * 60).unwrap();
        assert_eq!(early.wallclock, t0 + MS * 60);
    }

    #[test]
    fn a_split_packet_moves_the_later_ones_on() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000);
        let a = r.rewrite(1, 7, 0, t0).unwrap();
        assert_eq!(r.insert_after(a.seq), Some(101));
        assert_eq!(r.insert_after(101), Some(102));
        assert_eq!(r.rewrite(1, 8, 3_000, t0 + MS * 33).unwrap().seq, 103);
        assert_eq!(r.insert_after(a.seq), None, "not the newest");
    }

    #[test]
    fn extends_sequence_numbers_to_the_nearest() {
        assert_eq!(extend(65_535 + (1 << 16), 0), 2 * (1 << 16));
        assert_eq!(extend(2 * (1 << 16), 65_535), 2 * (1 << 16) - 1);
        assert_eq!(extend(70_000, 4_465), 70_001);
    }
}
