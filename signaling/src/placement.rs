//! Which shard a new peer goes to.
//!
//! A small room stays on one shard: its packets never cross threads. Once a room has
//! `spread_after` members placed, each new member goes to the least-loaded shard, so
//! one large room can use every core.
//!
//! A shard that is saturated (busy at least `max_busy` of its time, as it reports) gets
//! no new peer while another shard is not: a new member then joins its room from another
//! shard. When every shard is saturated, signalling refuses new sessions
//! ([`Placement::saturated`]).

use engine::msg::ShardId;

/// Peers per shard, as signalling placed them, and how busy each shard says it is.
#[derive(Debug, Clone)]
pub struct Placement {
    loads: Vec<usize>,
    spread_after: usize,
    busy: Vec<f64>,
    max_busy: f64,
}

impl Placement {
    /// `shards` shards; rooms spread once they have `spread_after` placed members; a
    /// shard busy `max_busy` of its time or more is saturated (1 or more: never).
    pub fn new(shards: usize, spread_after: usize, max_busy: f64) -> Self {
        let shards = shards.max(1);
        Self {
            loads: vec![0; shards],
            spread_after: spread_after.max(1),
            busy: vec![0.0; shards],
            max_busy,
        }
    }

    /// How busy each shard was lately (0 to 1, indexed by shard id).
    pub fn set_busy(&mut self, busy: &[f64]) {
        for (b, &n) in self.busy.iter_mut().zip(busy) {
            *b = n;
        }
    }

    /// When every shard is saturated: how busy the least busy one is.
    pub fn saturated(&self) -> Option<f64> {
        let least = self.busy.iter().copied().fold(f64::INFINITY, f64::min);
        (self.max_busy < 1.0 && least >= self.max_busy).then_some(least)
    }

    /// Chooses a shard for a new member of a room whose placed members are on
    /// `room_shards` (one entry per member), and counts the new peer there.
    pub fn place(&mut self, room_shards: &[ShardId]) -> ShardId {
        let mut shard = if room_shards.is_empty() || room_shards.len() >= self.spread_after {
            self.least_loaded()
        } else {
            self.home_of(room_shards)
        };
        if self.is_saturated(shard)
            && let Some(other) = (0..self.loads.len())
                .filter(|&k| !self.is_saturated(k))
                .min_by_key(|&k| (self.loads[k], k))
        {
            shard = other;
        }
        self.loads[shard] += 1;
        shard
    }

    fn is_saturated(&self, shard: ShardId) -> bool {
        self.max_busy < 1.0 && self.busy[shard] >= self.max_busy
    }

    /// A peer placed on `shard` has gone.
    pub fn remove(&mut self, shard: ShardId) {
        if let Some(l) = self.loads.get_mut(shard) {
            *l = l.saturating_sub(1);
        }
    }

    /// Peers per shard.
    pub fn loads(&self) -> &[usize] {
        &self.loads
    }

    fn least_loaded(&self) -> ShardId {
        (0..self.loads.len())
            .min_by_key(|&k| (self.loads[k], k))
            .unwrap_or(0)
    }

    /// The shard that holds most of the room (ties: the lower id).
    fn home_of(&self, room_shards: &[ShardId]) -> ShardId {
        let mut counts = vec![0usize; self.loads.len()];
        for &s in room_shards {
            if let Some(c) = counts.get_mut(s) {
                *c += 1;
            }
        }
        (0..counts.len())
            .max_by_key(|&k| (counts[k], std::cmp::Reverse(k)))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_rooms_stay_together_and_new_rooms_balance() {
        let mut p = Placement::new(2, 4, 1.0);
        let a = p.place(&[]);
        let a2 = p.place(&[a]);
        assert_eq!(a, a2, "a small room stays on its shard");
        let b = p.place(&[]);
        assert_ne!(a, b, "a new room goes to the least-loaded shard");
        assert_eq!(p.loads(), [2usize, 1]);
    }

    #[test]
    fn large_rooms_spread_over_every_shard() {
        let mut p = Placement::new(2, 3, 1.0);
        let mut room = Vec::new();
        for _ in 0..10 {
            let s = p.place(&room);
            room.push(s);
        }
        assert_eq!(&room[..3], &[0, 0, 0]);
        let on = |k| room.iter().filter(|&&s| s == k).count();
        assert_eq!(on(0), 5);
        assert_eq!(
            on(1),
            5,
            "after the threshold new members balance the shards"
        );
        for s in room {
            p.remove(s);
        }
        assert_eq!(p.loads(), [0usize, 0]);
    }

    #[test]
    fn saturated_shards_get_no_new_peers_while_another_has_room() {
        let mut p = Placement::new(2, 8, 0.9);
        let a = p.place(&[]);
        assert_eq!(a, 0);
        // The room's shard is saturated: its next member joins from the other one.
        p.set_busy(&[0.95, 0.2]);
        assert_eq!(p.saturated(), None);
        assert_eq!(p.place(&[a]), 1);
        // A new room avoids it too, though it has fewer peers.
        assert_eq!(p.place(&[]), 1);
        // Every shard saturated: reported, and placement falls back to the usual choice.
        p.set_busy(&[0.95, 0.93]);
        assert_eq!(p.saturated(), Some(0.93));
        assert_eq!(p.place(&[a]), 0);
        // Busy again below the mark: the room goes home.
        p.set_busy(&[0.5, 0.93]);
        assert_eq!(p.place(&[a]), 0);
    }

    #[test]
    fn a_mark_of_one_never_saturates() {
        let mut p = Placement::new(2, 8, 1.0);
        p.set_busy(&[1.0, 1.0]);
        assert_eq!(p.saturated(), None);
        assert_eq!(p.place(&[]), 0);
    }
}
