//! Which counters of one sender have been seen: the highest, and a bitmap of the
//! [`WINDOW`] before it. A counter at or below the window, or seen already, is a replay.

/// Counters remembered below the highest: datagrams reordered by up to this many are
/// still taken.
pub const WINDOW: u64 = 1024;

#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// The highest counter taken, plus one (0: none yet).
    top: u64,
    /// Bit `i` of word `i / 64`: counter `top - 1 - i` was taken.
    seen: [u64; (WINDOW / 64) as usize],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self {
            top: 0,
            seen: [0; (WINDOW / 64) as usize],
        }
    }
}

impl ReplayWindow {
    /// Whether `counter` would be taken (new and not too old), without taking it: a
    /// datagram is checked before it is opened, and taken only once it opened.
    pub fn is_fresh(&self, counter: u64) -> bool {
        if counter >= self.top {
            return true;
        }
        let back = self.top - 1 - counter;
        back < WINDOW && !self.bit(back)
    }

    /// Takes `counter` (which [`ReplayWindow::is_fresh`] said is new).
    pub fn take(&mut self, counter: u64) {
        if counter >= self.top {
            let shift = counter + 1 - self.top;
            self.shift(shift);
            self.top = counter + 1;
            self.set(0);
        } else {
            self.set(self.top - 1 - counter);
        }
    }

    fn bit(&self, back: u64) -> bool {
        self.seen[(back / 64) as usize] & (1 << (back % 64)) != 0
    }

    fn set(&mut self, back: u64) {
        self.seen[(back / 64) as usize] |= 1 << (back % 64);
    }

    /// Moves every bit `by` places back (older), dropping those past the window.
    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.seen = [0; (WINDOW / 64) as usize];
            return;
        }
        let (words, bits) = ((by / 64) as usize, (by % 64) as u32);
        let n = self.seen.len();
        for i in (0..n).rev() {
            let from = i.checked_sub(words);
            let hi = from.map_or(0, |f| self.seen[f]);
            let lo = from
                .and_then(|f| f.checked_sub(1))
                .map_or(0, |f| self.seen[f]);
            self.seen[i] = if bits == 0 {
                hi
            } else {
                (hi << bits) | (lo >> (64 - bits))
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(w: &mut ReplayWindow, c: u64) -> bool {
        let fresh = w.is_fresh(c);
        if fresh {
            w.take(c);
        }
        fresh
    }

    #[test]
    fn each_counter_is_taken_once_in_any_order_within_the_window() {
        let mut w = ReplayWindow::default();
        assert!(take(&mut w, 0));
        assert!(!take(&mut w, 0), "a replay");
        assert!(take(&mut w, 5));
        assert!(take(&mut w, 3), "late but new");
        assert!(!take(&mut w, 3));
        assert!(take(&mut w, 1));
        assert!(!take(&mut w, 5));
        assert!(take(&mut w, 5 + WINDOW), "far ahead");
        assert!(!take(&mut w, 5), "now past the window");
        assert!(take(&mut w, 6 + 63), "inside the window still");
        assert!(!take(&mut w, 5 + WINDOW));
    }

    #[test]
    fn a_window_of_shuffled_counters_matches_a_plain_set() {
        // A deterministic shuffle of 0..5000 with some repeats; the window's answers
        // against a set that remembers everything (inside the window they agree).
        let mut w = ReplayWindow::default();
        let mut seen = std::collections::BTreeSet::new();
        let mut x: u64 = 12345;
        let mut top = 0u64;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let c = top.saturating_sub(x % 900) + (x >> 60) % 3;
            let want = !seen.contains(&c) && c + WINDOW >= top;
            assert_eq!(take(&mut w, c), want, "counter {c}, top {top}");
            if want {
                seen.insert(c);
                top = top.max(c + 1);
            }
        }
    }
}
