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
}

impl History {
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| None).collect(),
        }
    }

    /// Keeps a forwarded packet (the publisher's sequence number is its place).
    pub(crate) fn keep(&mut self, now: Instant, fwd: &Forwarded) {
        self.slots[fwd.seq as usize % SLOTS] = Some((now, fwd.clone()));
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
}
