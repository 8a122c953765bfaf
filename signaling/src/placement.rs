//! Which shard a new peer goes to.
//!
//! A small room stays on one shard: its packets never cross threads. Once a room has
//! `spread_after` members placed, each new member goes to the least-loaded shard, so
//! one large room can use every core.

use engine::msg::ShardId;

/// Peers per shard, as signalling placed them.
#[derive(Debug, Clone)]
pub struct Placement {
    loads: Vec<usize>,
    spread_after: usize,
}

impl Placement {
    /// `shards` shards; rooms spread once they have `spread_after` placed members.
    pub fn new(shards: usize, spread_after: usize) -> Self {
        Self {
            loads: vec![0; shards.max(1)],
            spread_after: spread_after.max(1),
        }
    }

    /// Chooses a shard for a new member of a room whose placed members are on
    /// `room_shards` (one entry per member), and counts the new peer there.
    pub fn place(&mut self, room_shards: &[ShardId]) -> ShardId {
        let shard = if room_shards.is_empty() || room_shards.len() >= self.spread_after {
            self.least_loaded()
        } else {
            self.home_of(room_shards)
        };
        self.loads[shard] += 1;
        shard
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
        let mut p = Placement::new(2, 4);
        let a = p.place(&[]);
        let a2 = p.place(&[a]);
        assert_eq!(a, a2, "a small room stays on its shard");
        let b = p.place(&[]);
        assert_ne!(a, b, "a new room goes to the least-loaded shard");
        assert_eq!(p.loads(), [2usize, 1]);
    }

    #[test]
    fn large_rooms_spread_over_every_shard() {
        let mut p = Placement::new(2, 3);
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
}
