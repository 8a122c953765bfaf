//! Where a track's packets go on this shard: its local subscribers, and (on the
//! publisher's own shard) the other shards that have subscribers of it.

use std::time::Instant;

use str0m::media::{MediaKind, Mid};
use str0m::rtp::Ssrc;

use super::history::History;
use super::peer::{StreamStart, TimeMap};
use super::timers::Slot;
use crate::msg::ShardId;

/// One subscriber's send stream for a track, with the state that rewrites the
/// publisher's packets into it.
pub(crate) struct Sub {
    pub(crate) slot: Slot,
    pub(crate) ssrc: Ssrc,
    /// The subscriber's m-line it goes out on.
    pub(crate) mid: Mid,
    /// Added to the publisher's extended sequence number; fixed at the first packet so
    /// each subscriber's stream starts at `start.first_seq` (1, near the start of its
    /// SRTP rollover counter, or where its m-line's last stream left off).
    pub(crate) seq_delta: Option<i64>,
    pub(crate) start: StreamStart,
    /// How the publisher's timestamps map (an `After` becomes an `Offset` at the first
    /// packet).
    pub(crate) time: TimeMap,
    /// The last sequence number and timestamp sent, for a stream that goes on later.
    pub(crate) last_seq: u64,
    pub(crate) last_time: u32,
    /// Video waits for a keyframe before its first packet: `Some(when one was last
    /// asked for)` until then.
    pub(crate) awaiting_keyframe: Option<Instant>,
    /// Where its stream is among the subscriber's sent streams (`send.rs`).
    pub(crate) sent: Option<usize>,
}

impl Sub {
    /// A stream that starts now; `asked` is when a keyframe was asked for, for video.
    pub(crate) fn new(
        slot: Slot,
        (ssrc, mid): (Ssrc, Mid),
        start: StreamStart,
        asked: Option<Instant>,
    ) -> Self {
        Self {
            awaiting_keyframe: asked,
            sent: None,
            slot,
            ssrc,
            mid,
            seq_delta: None,
            start,
            time: start.time,
            last_seq: start.first_seq - 1,
            last_time: 0,
        }
    }

    /// Where the stream goes on after `now`: for the same track (its mapping kept),
    /// and for another track (timestamps after the last one sent).
    pub(crate) fn ended(&self, now: Instant) -> (StreamStart, StreamStart) {
        if self.seq_delta.is_none() {
            return (self.start, self.start); // nothing sent: as it would have started
        }
        let first_seq = self.last_seq + 1;
        let same = StreamStart {
            first_seq,
            time: self.time,
        };
        let other = StreamStart {
            first_seq,
            time: TimeMap::After {
                last: self.last_time,
                at: now,
            },
        };
        (same, other)
    }
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
    /// A video track's last packets, for its subscribers' NACKs.
    pub(crate) history: Option<History>,
}

impl Route {
    pub(crate) fn new(kind: MediaKind, origin: Option<Origin>) -> Self {
        Self {
            kind,
            origin,
            subs: Vec::new(),
            remote: Vec::new(),
            history: (kind == MediaKind::Video).then(History::new),
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
