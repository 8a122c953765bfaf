//! The shard's timer queue: a min-heap of peer wake-ups, so a tick touches only the
//! peers that are due, never a scan of all of them.
//!
//! Each peer keeps at most one live entry: its earliest scheduled wake-up. A later
//! timeout from str0m is not pushed (the earlier entry fires first and reschedules);
//! entries that an earlier push superseded are recognised as stale and skipped.
//!
//! Beside the heap, a FIFO of peers to drive at once: a forwarded packet written to a
//! subscriber is released only by its next timeout round, so every write wakes the
//! subscriber now. In the heap that would be a push, a pop and a stale entry per
//! subscriber per packet (measured: `BinaryHeap::pop` alone 2.5% of an audio shard's
//! CPU); in the FIFO it is one push and one pop, and the heap entry of the subscriber's
//! own str0m timeout stays live.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use crate::msg::PeerId;

/// A key into the shard's peer slab plus the id that must still live there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Slot {
    pub(crate) key: usize,
    pub(crate) peer: PeerId,
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Slot)>>,
    /// Peers woken to be driven at once, with the time they were woken, oldest first.
    woken: VecDeque<(Instant, Slot)>,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, slot: Slot) {
        self.heap.push(Reverse((at, slot)));
    }

    /// Wakes a peer at `now`: it is driven before any heap entry. The caller keeps a
    /// peer in the queue at most once.
    pub(crate) fn wake(&mut self, now: Instant, slot: Slot) {
        self.woken.push_back((now, slot));
    }

    /// Takes the oldest peer woken at or before `now`.
    pub(crate) fn pop_woken(&mut self, now: Instant) -> Option<Slot> {
        match self.woken.front() {
            Some((at, _)) if *at <= now => self.woken.pop_front().map(|(_, slot)| slot),
            _ => None,
        }
    }

    /// The earliest wake-up, woken or scheduled, stale or not.
    pub(crate) fn next(&self) -> Option<Instant> {
        let woken = self.woken.front().map(|(at, _)| *at);
        let scheduled = self.heap.peek().map(|Reverse((at, _))| *at);
        woken.into_iter().chain(scheduled).min()
    }

    /// Pops one entry due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Slot)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn slot(key: usize) -> Slot {
        Slot {
            key,
            peer: PeerId(key as u64),
        }
    }

    #[test]
    fn pops_only_due_entries_in_order() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.push(t0 + Duration::from_millis(30), slot(3));
        t.push(t0 + Duration::from_millis(10), slot(1));
        t.push(t0 + Duration::from_millis(20), slot(2));
        assert_eq!(t.next(), Some(t0 + Duration::from_millis(10)));
        let now = t0 + Duration::from_millis(25);
        assert_eq!(t.pop_due(now).unwrap().1, slot(1));
        assert_eq!(t.pop_due(now).unwrap().1, slot(2));
        assert!(t.pop_due(now).is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn woken_peers_come_first_in_the_order_woken_and_leave_the_heap_alone() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.push(t0 + Duration::from_millis(50), slot(1));
        assert_eq!(t.next(), Some(t0 + Duration::from_millis(50)));
        let now = t0 + Duration::from_millis(5);
        t.wake(now, slot(2));
        t.wake(now, slot(1));
        assert_eq!(t.next(), Some(now), "a woken peer is due now");
        assert_eq!(t.pop_woken(t0), None, "not before it was woken");
        assert_eq!(t.pop_woken(now), Some(slot(2)));
        assert_eq!(t.pop_woken(now), Some(slot(1)));
        assert_eq!(t.pop_woken(now), None);
        assert_eq!(t.len(), 1, "the heap kept its one entry");
        assert_eq!(t.next(), Some(t0 + Duration::from_millis(50)));
    }
}
