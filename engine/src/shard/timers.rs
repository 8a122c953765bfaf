//! The shard's timer queue: a min-heap of peer wake-ups, so a tick touches only the
//! peers that are due, never a scan of all of them.
//!
//! Each peer keeps at most one live entry: its earliest scheduled wake-up. A later
//! timeout from str0m is not pushed (the earlier entry fires first and reschedules);
//! entries that an earlier push superseded are recognised as stale and skipped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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
}

impl Timers {
    fn push(&mut self, at: Instant, slot: Slot) {
        self.heap.push(Reverse((at, slot)));
    }

    /// Wakes `slot` at `at`, unless the entry it keeps (`scheduled`) comes first: one live
    /// entry a peer, its earliest.
    pub(crate) fn wake(&mut self, scheduled: &mut Option<Instant>, at: Instant, slot: Slot) {
        if scheduled.is_none_or(|s| at < s) {
            self.push(at, slot);
            *scheduled = Some(at);
        }
    }

    /// Whether an entry popped at `at` is the one its peer keeps (`scheduled`), which it
    /// then keeps no more; an entry an earlier wake-up superseded is stale.
    pub(crate) fn claim(scheduled: &mut Option<Instant>, at: Instant) -> bool {
        let live = *scheduled == Some(at);
        if live {
            *scheduled = None;
        }
        live
    }

    /// The earliest wake-up, stale or not.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
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
}
