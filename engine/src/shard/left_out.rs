//! The packets of a simulcast layer left out for one subscriber (VP8 temporal layers it
//! does not get), and how the numbers of those it gets close the gaps.
//!
//! Packets come out of order: a publisher's resend comes after newer packets, on a
//! lossy uplink many times a second. So a packet's sequence number and picture id are
//! not shifted by how many were left out before it came but by how many of those left
//! out are newer than it: a late packet lands in the slot it would have had in order,
//! never on another packet's number. Only a packet newer than any seen is left out
//! (a late one already has its slot, and fills it).

use std::collections::VecDeque;

use crate::vp8::Offsets;

/// Packets left out that are remembered: a few seconds of a temporal layer's frames.
/// A packet older than the oldest forgotten is too late to number, and is dropped.
const KEPT_PACKETS: usize = 128;
const KEPT_PICTURES: usize = 64;

/// One stretch of a subscriber's stream (one simulcast layer) as left out.
#[derive(Debug, Default)]
pub(crate) struct LeftOut {
    /// The publisher's sequence numbers left out, increasing.
    seqs: VecDeque<u64>,
    /// The publisher's VP8 picture ids (15 bits) of the frames left out, in order.
    pictures: VecDeque<u16>,
    /// The newest publisher sequence number seen in the stretch.
    newest: Option<u64>,
    /// Packets at or below this are too late to number.
    forgotten: Option<u64>,
}

/// What to do with a packet of the stretch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Send it, its sequence number raised by this many (packets left out after it).
    Send(u64),
    /// Leave it out: it was left out before (a resend of it), or it is too late.
    Drop,
}

impl LeftOut {
    /// Starts a new stretch, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.seqs.clear();
        self.pictures.clear();
        self.newest = None;
        self.forgotten = None;
    }

    /// Whether the publisher's packet `seq` is newer than any seen in the stretch
    /// (it is then noted as seen).
    pub(crate) fn is_new(&mut self, seq: u64) -> bool {
        if self.newest.is_some_and(|n| seq <= n) {
            return false;
        }
        self.newest = Some(seq);
        true
    }

    /// Leaves out the new packet `seq` of the frame with picture id `picture`; true
    /// when it is the first of its frame left out.
    pub(crate) fn leave_out(&mut self, seq: u64, picture: Option<u16>) -> bool {
        if self.seqs.len() == KEPT_PACKETS {
            self.forgotten = self.seqs.pop_front();
        }
        self.seqs.push_back(seq);
        if let Some(id) = picture
            && self.pictures.back() != Some(&id)
        {
            if self.pictures.len() == KEPT_PICTURES {
                self.pictures.pop_front();
            }
            self.pictures.push_back(id);
            return true;
        }
        false
    }

    /// Where the publisher's packet `seq`, of the frame with picture id `picture`,
    /// goes.
    pub(crate) fn place(&self, seq: u64, picture: Option<u16>) -> Place {
        // The newest packet (the common case) has nothing left out after it, unless it
        // was left out itself (and this is a resend of it).
        if self.newest == Some(seq) && self.seqs.back() != Some(&seq) {
            return Place::Send(0);
        }
        if self.forgotten.is_some_and(|f| seq <= f) {
            return Place::Drop;
        }
        let newer = self.seqs.partition_point(|&q| q <= seq);
        if newer > 0 && self.seqs[newer - 1] == seq {
            return Place::Drop;
        }
        if picture.is_some_and(|id| self.pictures.contains(&id)) {
            // A late packet of a frame left out: the rest of its frame is not sent.
            return Place::Drop;
        }
        Place::Send((self.seqs.len() - newer) as u64)
    }

    /// How many frames left out are newer than picture id `id` (15 bits when `wide`,
    /// else 7): what its picture id is raised by, over the stretch's offset.
    pub(crate) fn pictures_after(&self, id: u16, wide: bool) -> u16 {
        let mask = if wide { 0x7fff } else { 0x7f };
        self.pictures
            .iter()
            .filter(|&&q| {
                let ahead = q.wrapping_sub(id) & mask;
                ahead != 0 && ahead <= mask / 2
            })
            .count() as u16
    }

    /// The VP8 offsets of the packet with `payload`, from the stretch's `offsets`: its
    /// picture id goes up by the frames left out after it.
    pub(crate) fn offsets_of(&self, mut offsets: Offsets, payload: &[u8]) -> Offsets {
        if let Some((_, id, wide)) = crate::vp8::descriptor(payload).and_then(|d| d.picture_id) {
            offsets.picture_id = offsets
                .picture_id
                .wrapping_add(self.pictures_after(id, wide));
        }
        offsets
    }

    /// The publisher's sequence number of the subscriber's packet that `seq` (the
    /// publisher's numbers shifted by the newest packets' delta) names: below it by
    /// as many packets left out as there are at or above it.
    pub(crate) fn publisher_seq(&self, shifted: u64) -> u64 {
        let mut seq = shifted;
        for &q in self.seqs.iter().rev() {
            if q < seq {
                break;
            }
            seq = seq.saturating_sub(1);
        }
        seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets 100..=110 of a publisher, the odd ones of frames left out.
    #[test]
    fn late_packets_take_their_own_slots_and_nacks_find_them() {
        let mut left = LeftOut::default();
        let mut out = Vec::new();
        // 100 sent; 101 left out; 102 lost on the way; 103 left out; 104 sent.
        for seq in [100, 101, 103, 104] {
            assert!(left.is_new(seq));
            if seq % 2 == 1 {
                left.leave_out(seq, Some(seq as u16));
            } else {
                out.push(seq);
            }
        }
        // Newest delta: -2 (two left out). Each packet's number is seq - 2 + after.
        let number = |left: &LeftOut, seq: u64| match left.place(seq, Some(seq as u16)) {
            Place::Send(after) => Some(seq - 2 + after),
            Place::Drop => None,
        };
        assert_eq!(number(&left, 100), Some(100));
        assert_eq!(number(&left, 104), Some(102));
        // 102 comes late (a resend): it fills the hole between 100 and 104, whatever
        // its temporal layer.
        assert!(!left.is_new(102));
        assert_eq!(number(&left, 102), Some(101));
        // A resend of 103, left out, stays out.
        assert_eq!(number(&left, 103), None);
        // NACKs of the subscriber's 100, 101, 102 name the publisher's 100, 102, 104.
        for (sub, publisher) in [(100, 100), (101, 102), (102, 104)] {
            assert_eq!(left.publisher_seq(sub + 2), publisher);
        }
        // Picture ids: 101 and 103 left out, so 100 goes up by two, 102 by one.
        assert_eq!(left.pictures_after(100, true), 2);
        assert_eq!(left.pictures_after(102, true), 1);
        assert_eq!(left.pictures_after(104, true), 0);
        // A late packet of a frame left out (a packet of it never seen before) is not
        // sent either.
        assert_eq!(left.place(99, Some(103)), Place::Drop);
        // The newest packet goes at once; a resend of the newest, left out, stays out.
        assert!(left.is_new(105));
        assert_eq!(left.place(105, Some(105)), Place::Send(0));
        assert!(left.is_new(106));
        left.leave_out(106, Some(106));
        assert_eq!(left.place(106, Some(106)), Place::Drop);
    }

    #[test]
    fn picture_ids_wrap_and_memory_is_bounded() {
        let mut left = LeftOut::default();
        left.leave_out(1, Some(0x7ffe));
        left.leave_out(2, Some(0x7ffe)); // the same frame: counted once
        left.leave_out(3, Some(0));
        assert_eq!(left.pictures_after(0x7ffd, true), 2);
        assert_eq!(left.pictures_after(0x7fff, true), 1);
        assert_eq!(left.pictures_after(1, true), 0);
        for seq in 4..1000 {
            left.leave_out(seq, Some(seq as u16));
        }
        assert_eq!(
            (left.seqs.len(), left.pictures.len()),
            (KEPT_PACKETS, KEPT_PICTURES)
        );
        // What is older than the memory is too late.
        assert_eq!(left.place(500, None), Place::Drop);
        assert_eq!(left.place(1000, None), Place::Send(0));
        left.clear();
        assert!(left.is_new(3) && !left.is_new(2));
    }
}
