//! Which shard a new peer goes to.
//!
//! A small room stays on one shard: its packets never cross threads. Once a room has
//! `spread_after` members placed and its shard is busy `spread_busy` of its time, each
//! new member goes to the least-loaded shard, so one large room can use every core. At
//! low load a room stays home whatever its size: a packet that crosses to another shard
//! costs a hand-off and a wake-up of that shard, more than forwarding it (`bench webinar
//! --subscribers 8 --compare-shards 1,2` with one subscriber on the second shard: 6.82
//! µs per packet against 5.45 on one shard).
//!
//! A shard that is saturated (busy at least `max_busy` of its time, as it reports) gets
//! no new peer while another shard is not: a new member then joins its room from another
//! shard. When every shard is saturated, signalling refuses new sessions
//! ([`Placement::saturated`]).
//!
//! A shard's busy share only shows the peers already connected: a peer placed a moment
//! ago is still in its handshake and sends nothing yet. So when many join at once (a
//! class at nine o'clock, a benchmark's ramp step), the shards look idle until all of
//! them are in, and are then far past their mark. Placement therefore judges a shard
//! by the load it is about to carry: its busy share scaled from its connected peers to
//! every peer placed on it, plus the newcomer ([`Placement::expected_busy`]).

use engine::msg::ShardId;

/// Below this many connected peers a shard's busy share says too little of what one
/// more costs (it is mostly timers and handshakes); it is then taken as it is.
const MIN_BASIS: usize = 4;

/// A saturated shard's figures (0 to 1: the share of its time it is busy).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Saturated {
    /// As it says now.
    pub busy: f64,
    /// With the peers placed on it and not yet connected, and one more.
    pub expected: f64,
}

/// Peers per shard, as signalling placed them, and how busy each shard says it is.
#[derive(Debug, Clone)]
pub struct Placement {
    loads: Vec<usize>,
    /// Of `loads`, the peers whose handshake is done: their media is in `busy`.
    connected: Vec<usize>,
    spread_after: usize,
    spread_busy: f64,
    busy: Vec<f64>,
    max_busy: f64,
}

impl Placement {
    /// `shards` shards; rooms spread once they have `spread_after` placed members and
    /// their shard is busy `spread_busy` of its time (0: on size alone); a shard busy
    /// `max_busy` of its time or more is saturated (1 or more: never).
    pub fn new(shards: usize, spread_after: usize, spread_busy: f64, max_busy: f64) -> Self {
        let shards = shards.max(1);
        Self {
            loads: vec![0; shards],
            connected: vec![0; shards],
            spread_after: spread_after.max(1),
            spread_busy,
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

    /// When every shard is saturated: the one with the most room left, with how busy
    /// it is and how busy it would be with the peers joining it now and one more
    /// ([`Placement::expected_busy`]).
    pub fn saturated(&self) -> Option<Saturated> {
        let shards = 0..self.loads.len();
        if !shards.clone().all(|k| self.is_saturated(k)) {
            return None;
        }
        shards
            .map(|k| Saturated {
                busy: self.busy[k],
                expected: self.expected_busy(k),
            })
            .min_by(|a, b| a.expected.total_cmp(&b.expected))
    }

    /// How busy `shard` will be once the peers placed on it and one more are connected,
    /// supposing each costs what its connected peers cost on average. Only from half the
    /// mark up, and with enough connected peers to go by: below that, the busy share as
    /// it is (a quiet shard's share is mostly fixed costs, which would scale to nonsense).
    pub fn expected_busy(&self, shard: ShardId) -> f64 {
        let busy = self.busy[shard];
        let connected = self.connected[shard];
        if busy < self.max_busy / 2.0 || connected < MIN_BASIS {
            return busy;
        }
        let coming = self.loads[shard].max(connected) + 1;
        busy * coming as f64 / connected as f64
    }

    /// Chooses a shard for a new member of a room whose placed members are on
    /// `room_shards` (one entry per member), and counts the new peer there.
    pub fn place(&mut self, room_shards: &[ShardId]) -> ShardId {
        let mut shard = if room_shards.is_empty() {
            self.least_loaded()
        } else {
            let home = self.home_of(room_shards);
            let spread = room_shards.len() >= self.spread_after
                && self.expected_busy(home) >= self.spread_busy;
            if spread { self.least_loaded() } else { home }
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
        self.max_busy < 1.0 && self.expected_busy(shard) >= self.max_busy
    }

    /// A peer placed on `shard` finished its handshake: its media now counts in the
    /// shard's busy share.
    pub fn connected(&mut self, shard: ShardId) {
        if let Some(c) = self.connected.get_mut(shard) {
            *c += 1;
        }
    }

    /// A peer placed on `shard` has gone; `was_connected` if [`Placement::connected`]
    /// was called for it.
    pub fn remove(&mut self, shard: ShardId, was_connected: bool) {
        if let Some(l) = self.loads.get_mut(shard) {
            *l = l.saturating_sub(1);
        }
        if was_connected && let Some(c) = self.connected.get_mut(shard) {
            *c = c.saturating_sub(1);
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
        let mut p = Placement::new(2, 4, 0.0, 1.0);
        let a = p.place(&[]);
        let a2 = p.place(&[a]);
        assert_eq!(a, a2, "a small room stays on its shard");
        let b = p.place(&[]);
        assert_ne!(a, b, "a new room goes to the least-loaded shard");
        assert_eq!(p.loads(), [2usize, 1]);
    }

    #[test]
    fn a_large_room_stays_home_until_its_shard_is_busy() {
        let mut p = Placement::new(2, 3, 0.25, 1.0);
        let mut room = Vec::new();
        for _ in 0..6 {
            let s = p.place(&room);
            room.push(s);
        }
        assert_eq!(room, [0; 6], "an idle shard keeps the room");
        p.set_busy(&[0.3, 0.0]);
        let next = p.place(&room);
        assert_eq!(next, 1, "a busy one lets it spread");
    }

    #[test]
    fn large_rooms_spread_over_every_shard() {
        let mut p = Placement::new(2, 3, 0.0, 1.0);
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
            p.remove(s, false);
        }
        assert_eq!(p.loads(), [0usize, 0]);
    }

    #[test]
    fn saturated_shards_get_no_new_peers_while_another_has_room() {
        let mut p = Placement::new(2, 8, 0.0, 0.9);
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
        assert_eq!(
            p.saturated(),
            Some(Saturated {
                busy: 0.93,
                expected: 0.93
            })
        );
        assert_eq!(p.place(&[a]), 0);
        // Busy again below the mark: the room goes home.
        p.set_busy(&[0.5, 0.93]);
        assert_eq!(p.place(&[a]), 0);
    }

    /// One shard with `placed` peers placed (and `connected` of them connected) since
    /// `p` was made; busy as given.
    fn one_shard(p: &mut Placement, placed: usize, connected: usize, busy: f64) {
        for _ in 0..placed {
            p.place(&[]);
        }
        (0..connected).for_each(|_| p.connected(0));
        p.set_busy(&[busy]);
    }

    #[test]
    fn a_burst_of_joins_is_judged_by_the_load_it_will_bring() {
        let mut p = Placement::new(1, 8, 0.0, 0.9);
        // Half of the 20 placed are connected and make the shard 50% busy: with the
        // other half and one more it will be 105% busy.
        one_shard(&mut p, 20, 10, 0.5);
        assert!((p.expected_busy(0) - 1.05).abs() < 1e-9);
        assert_eq!(
            p.saturated(),
            Some(Saturated {
                busy: 0.5,
                expected: p.expected_busy(0)
            })
        );
        // Once they are all connected, one more is expected to fit.
        one_shard(&mut p, 0, 10, 0.8);
        assert!((p.expected_busy(0) - 0.84).abs() < 1e-9);
        assert_eq!(p.saturated(), None);
        // Five leave and five others join: 15 connected, 20 placed.
        (0..5).for_each(|_| p.remove(0, true));
        one_shard(&mut p, 5, 0, 0.6);
        assert_eq!(p.loads(), [20usize]);
        assert!((p.expected_busy(0) - 0.6 * 21.0 / 15.0).abs() < 1e-9);
        // One of the newcomers never connects and goes.
        p.remove(0, false);
        assert!((p.expected_busy(0) - 0.6 * 20.0 / 15.0).abs() < 1e-9);
    }

    #[test]
    fn a_quiet_or_barely_connected_shard_is_taken_as_it_is() {
        // Below half the mark: timers and handshakes, not a cost per peer.
        let mut p = Placement::new(1, 8, 0.0, 0.9);
        one_shard(&mut p, 40, 4, 0.3);
        assert_eq!(p.expected_busy(0), 0.3);
        // Too few connected peers to go by.
        let mut q = Placement::new(1, 8, 0.0, 0.9);
        one_shard(&mut q, 40, 3, 0.6);
        assert_eq!(q.expected_busy(0), 0.6);
        assert_eq!(q.saturated(), None);
    }

    #[test]
    fn a_mark_of_one_never_saturates() {
        let mut p = Placement::new(2, 8, 0.0, 1.0);
        p.set_busy(&[1.0, 1.0]);
        assert_eq!(p.saturated(), None);
        assert_eq!(p.place(&[]), 0);
    }
}
