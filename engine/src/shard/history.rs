//! The last packets of a published video track on this shard, shared by all its
//! subscribers here: a subscriber's NACK is answered from it, rewritten for that
//! subscriber on resend. One ring per track and shard, not a copy per subscriber: the
//! payloads are the `Arc`s the fan-out already holds.

use std::time::{Duration, Instant};

use crate::msg::Forwarded;

/// Slots in the ring: about 3 s of 1.5 Mbit/s video, more than [`KEEP`] at browsers'
/// rates, so age decides before the ring wraps.
const SLOTS: usize = 512;
/// A packet older than this is not resent: by then the receiver has asked for a
/// keyframe, and a late copy only adds to the congestion that lost it.
pub const KEEP: Duration = Duration::from_millis(1500);

pub(crate) struct History {
    slots: Box<[Option<(Instant, Forwarded)>]>,
    /// The oldest sequence number that may still be held: packets from here on that
    /// have aged past [`KEEP`] are let go as new ones come, so the ring holds about
    /// [`KEEP`] of payloads, not [`SLOTS`] of them (at 120 packets a second, 4 s).
    oldest: u64,
}

impl History {
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| None).collect(),
            oldest: 0,
        }
    }

    /// Keeps a forwarded packet (the publisher's sequence number is its place), and
    /// lets go of the packets that aged past [`KEEP`].
    pub(crate) fn keep(&mut self, now: Instant, fwd: &Forwarded) {
        self.slots[fwd.seq as usize % SLOTS] = Some((now, fwd.clone()));
        // At most a ring's worth per call, however far the sequence jumped.
        self.oldest = self.oldest.max(fwd.seq.saturating_sub(SLOTS as u64 - 1));
        while self.oldest < fwd.seq {
            let slot = &mut self.slots[self.oldest as usize % SLOTS];
            match slot {
                Some((at, old)) if old.seq == self.oldest => {
                    if now.saturating_duration_since(*at) <= KEEP {
                        break;
                    }
                    *slot = None;
                }
                // Lost on the way in, or its slot reused: nothing to let go.
                _ => {}
            }
            self.oldest += 1;
        }
    }

    /// Packets held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// The packet with the publisher's sequence number `seq`, if it is still here and
    /// younger than [`KEEP`].
    pub(crate) fn get(&self, now: Instant, seq: u64) -> Option<&Forwarded> {
        match &self.slots[seq as usize % SLOTS] {
            Some((at, fwd)) if fwd.seq == seq && now.saturating_duration_since(*at) <= KEEP => {
                Some(fwd)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::TrackId;

    fn packet(seq: u64) -> Forwarded {
        Forwarded {
            track: TrackId::new(0, 1),
            layer: 0,
            codec: 0,
            seq,
            time: 0,
            marker: false,
            wallclock: Instant::now(),
            audio_level: None,
            voice_activity: None,
            payload: vec![seq as u8; 4].into(),
        }
    }

    #[test]
    fn a_packet_is_found_by_its_sequence_number_until_it_ages_or_is_overwritten() {
        let t0 = Instant::now();
        let mut h = History::new();
        for seq in 1000..1100 {
            h.keep(t0, &packet(seq));
        }
        assert_eq!(h.get(t0, 1050).map(|f| f.seq), Some(1050));
        assert!(h.get(t0, 999).is_none(), "never kept");
        assert!(h.get(t0, 1050 + SLOTS as u64).is_none(), "not yet sent");
        assert!(h.get(t0 + KEEP + Duration::from_millis(1), 1050).is_none());
        h.keep(t0, &packet(1050 + SLOTS as u64));
        assert!(h.get(t0, 1050).is_none(), "its slot was taken");
    }

    #[test]
    fn packets_older_than_the_window_are_let_go_as_new_ones_come() {
        let t0 = Instant::now();
        let mut h = History::new();
        // 100 packets a second for 5 s: about 1.5 s of them stay, not the ring's 512.
        for i in 0..500u64 {
            h.keep(t0 + Duration::from_millis(10 * i), &packet(i));
        }
        let held = h.held();
        assert!((150..=152).contains(&held), "{held} held");
        let now = t0 + Duration::from_millis(4990);
        assert!(h.get(now, 499).is_some() && h.get(now, 350).is_some());
        assert!(h.get(now, 300).is_none());
        // A jump far ahead keeps the walk bounded and the new packet.
        h.keep(now, &packet(1_000_000));
        assert!(h.get(now, 1_000_000).is_some());
    }
}
