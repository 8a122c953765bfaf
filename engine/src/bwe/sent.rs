//! What the engine sent one peer, by transport-wide sequence number: when and how big,
//! kept for the last [`SLOTS`] packets, which is as long as their feedback can come
//! back (a browser reports every 50–100 ms; a peer receiving 30 video streams gets
//! about 3,000 packets a second).

use std::time::Instant;

/// Packets remembered.
pub(super) const SLOTS: usize = 1024;

/// One packet: its send time (microseconds since the log's epoch, wrapping every 71
/// minutes: read back against the last send, see [`SentLog::get`]), size and what its
/// feedback said so far.
#[derive(Clone, Copy, Default)]
struct Record {
    at_us: u32,
    size: u16,
    state: State,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    Unreported,
    ReportedLost,
    Received,
}

/// A packet looked up by its feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sent {
    /// Microseconds since the log's epoch.
    pub(super) at_us: i64,
    pub(super) size: u16,
    /// A feedback reported it lost before.
    pub(super) was_lost: bool,
}

pub(super) struct SentLog {
    epoch: Instant,
    /// The next transport-wide sequence number.
    next: u64,
    last_us: i64,
    records: Box<[Record]>,
}

impl SentLog {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            epoch: now,
            next: 0,
            last_us: 0,
            records: vec![Record::default(); SLOTS].into_boxed_slice(),
        }
    }

    /// The sequence number the next packet takes.
    pub(super) fn next_seq(&self) -> u16 {
        self.next as u16
    }

    /// Records a packet of `size` bytes sent at `now`; returns its sequence number.
    pub(super) fn push(&mut self, now: Instant, size: usize) -> u16 {
        let seq = self.next;
        self.next += 1;
        self.last_us = self.micros(now).max(self.last_us);
        self.records[seq as usize % SLOTS] = Record {
            at_us: self.last_us as u32,
            size: size.min(usize::from(u16::MAX)) as u16,
            state: State::Unreported,
        };
        seq as u16
    }

    /// Microseconds from the epoch to `t` (0 for a time before it).
    pub(super) fn micros(&self, t: Instant) -> i64 {
        t.saturating_duration_since(self.epoch).as_micros() as i64
    }

    /// The full sequence number of `seq` (the low 16 bits of one of the last [`SLOTS`]
    /// sent); None for one not sent lately.
    pub(super) fn extend(&self, seq: u16) -> Option<u64> {
        let last = self.next.checked_sub(1)?;
        // The newest number at or below `last` with these low bits.
        let back = (last as u16).wrapping_sub(seq);
        let full = last.checked_sub(u64::from(back))?;
        (last - full < SLOTS as u64).then_some(full)
    }

    /// The packet `seq` (the low 16 bits of one of the last [`SLOTS`] sent), marked as
    /// reported `received` or not. None for a sequence number not sent lately, and for a
    /// packet already reported received (feedback repeats itself).
    pub(super) fn report(&mut self, seq: u16, received: bool) -> Option<Sent> {
        let full = self.extend(seq)?;
        let r = &mut self.records[full as usize % SLOTS];
        let was_lost = match r.state {
            State::Received => return None,
            State::ReportedLost if !received => return None,
            State::ReportedLost => true,
            State::Unreported => false,
        };
        r.state = if received {
            State::Received
        } else {
            State::ReportedLost
        };
        // The wrapped send time, read as at most 71 minutes before the last send.
        let age = (self.last_us as u32).wrapping_sub(r.at_us);
        Some(Sent {
            at_us: self.last_us - i64::from(age),
            size: r.size,
            was_lost,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_packet_is_found_by_its_low_bits_once_and_only_while_kept() {
        let t0 = Instant::now();
        let mut log = SentLog::new(t0);
        for i in 0..70_000u64 {
            let seq = log.push(t0 + Duration::from_micros(i * 10), 1200);
            assert_eq!(seq, i as u16);
        }
        // The last one, sent at 699,990 µs.
        let last = log.report(69_999u64 as u16, true).unwrap();
        assert_eq!(
            (last.at_us, last.size, last.was_lost),
            (699_990, 1200, false)
        );
        assert_eq!(log.report(69_999u64 as u16, true), None, "reported once");
        // The oldest still kept, and the one before it.
        assert!(log.report((70_000 - SLOTS as u64) as u16, false).is_some());
        assert_eq!(log.report((70_000 - SLOTS as u64 - 1) as u16, true), None);
        // Lost, then received after all: counted back.
        let seq = 69_000u64 as u16;
        assert!(!log.report(seq, false).unwrap().was_lost);
        assert_eq!(log.report(seq, false), None, "lost once");
        assert!(log.report(seq, true).unwrap().was_lost);
    }

    #[test]
    fn nothing_sent_nothing_found() {
        let mut log = SentLog::new(Instant::now());
        assert_eq!(log.report(0, true), None);
        assert_eq!(log.report(65535, true), None);
    }
}
