//! Where a track's packets go on this shard: its local subscribers, and (on the
//! publisher's own shard) the other shards that have subscribers of it.

use std::time::Instant;

use str0m::media::{MediaKind, Mid};
use str0m::rtp::Ssrc;

use super::timers::Slot;
use crate::msg::ShardId;

/// One subscriber's send stream for a track, with the state that rewrites the
/// publisher's packets into it.
pub(crate) struct Sub {
    pub(crate) slot: Slot,
    pub(crate) ssrc: Ssrc,
    /// Added to the publisher's extended sequence number; fixed at the first packet so
    /// each subscriber's stream starts at `first_seq` (1, near the start of its SRTP
    /// rollover counter, or where a parked m-line's stream left off).
    pub(crate) seq_delta: Option<i64>,
    pub(crate) first_seq: u64,
    /// The last sequence number sent, for a stream that is parked and resumed.
    pub(crate) last_seq: u64,
}

/// The publisher of a track, when it lives on this shard.
pub(crate) struct Origin {
    pub(crate) slot: Slot,
    /// The publisher's m-line; keyframe requests go to its receive stream.
    pub(crate) mid: Mid,
    pub(crate) last_keyframe_request: Option<Instant>,
    /// A request came in during the cooldown; send it when the cooldown ends.
    pub(crate) keyframe_pending: bool,
}

pub(crate) struct Route {
    pub(crate) kind: MediaKind,
    /// `Some` on the publisher's shard.
    pub(crate) origin: Option<Origin>,
    pub(crate) subs: Vec<Sub>,
    /// Other shards with subscribers, and how many each has.
    pub(crate) remote: Vec<(ShardId, u32)>,
}

impl Route {
    pub(crate) fn new(kind: MediaKind, origin: Option<Origin>) -> Self {
        Self {
            kind,
            origin,
            subs: Vec::new(),
            remote: Vec::new(),
        }
    }

    pub(crate) fn add_remote(&mut self, shard: ShardId) {
        match self.remote.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, n)) => *n += 1,
            None => self.remote.push((shard, 1)),
        }
    }

    pub(crate) fn remove_remote(&mut self, shard: ShardId) {
        if let Some(i) = self.remote.iter().position(|(s, _)| *s == shard) {
            self.remote[i].1 -= 1;
            if self.remote[i].1 == 0 {
                self.remote.swap_remove(i);
            }
        }
    }

    pub(crate) fn is_unused(&self) -> bool {
        self.origin.is_none() && self.subs.is_empty()
    }
}
