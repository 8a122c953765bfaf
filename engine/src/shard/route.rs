//! Where a track's packets go on this shard: its local subscribers, and (on the
//! publisher's own shard) the other shards that have subscribers of it.

use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid};
use str0m::rtp::Ssrc;

use super::history::History;
use super::layers::{Choice, LayerRates, TEMPORAL};
use super::left_out::LeftOut;
use super::peer::{MAX_LAYERS, StreamStart, TimeMap};
use super::timers::Slot;
use crate::msg::{Forwarded, ShardId};
use crate::vp8::{Continuity, Offsets};

/// A simulcast layer without a packet for this long is taken as stopped.
pub(crate) const LAYER_GONE: Duration = Duration::from_millis(1500);

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
    /// The simulcast layer it forwards now (`None` before its first packet).
    pub(crate) layer: Option<u8>,
    /// Which layer it should forward (`layers.rs`: its tile's cap, its bandwidth):
    /// switched to at that layer's next keyframe.
    pub(crate) choice: Choice,
    /// When the media of its last packet was captured (`Forwarded::wallclock`, by the
    /// publisher's sender reports): the timestamps after a layer switch go on from
    /// there by the new layer's capture times.
    pub(crate) last_captured: Option<Instant>,
    /// The stream before the last layer switch, for NACKs of its last packets.
    pub(crate) before: Option<Segment>,
    /// The highest VP8 temporal layer it gets now (2: all): lowered at any frame,
    /// raised at a base-layer frame.
    pub(crate) temporal: u8,
    /// The packets of the layer it forwards now that were left out (temporal layers
    /// it does not get).
    pub(crate) left: LeftOut,
    /// VP8's picture ids and indices, continuous across layer switches.
    pub(crate) vp8: Continuity,
}

/// A stretch of a subscriber's stream that carried one simulcast layer: how its
/// sequence numbers and timestamps map the layer's.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) layer: u8,
    /// The subscriber's sequence numbers below this one are of the segment.
    pub(crate) until_seq: u64,
    pub(crate) seq_delta: i64,
    pub(crate) time_offset: u32,
    pub(crate) vp8: Offsets,
    pub(crate) left: LeftOut,
}

/// How one packet the subscriber was sent maps the publisher's (for a NACK).
pub(crate) struct Mapping<'a> {
    pub(crate) layer: u8,
    /// The publisher's sequence number of the packet.
    pub(crate) publisher_seq: u64,
    pub(crate) time_offset: u32,
    vp8: Offsets,
    left: &'a LeftOut,
}

impl<'a> Mapping<'a> {
    fn new(
        seq: u64,
        layer: u8,
        delta: i64,
        time_offset: u32,
        vp8: Offsets,
        left: &'a LeftOut,
    ) -> Self {
        let shifted = (seq as i64 - delta).max(0) as u64;
        Self {
            layer,
            publisher_seq: left.publisher_seq(shifted),
            time_offset,
            vp8,
            left,
        }
    }

    /// The VP8 offsets of the packet with `payload`: its picture id goes up by the
    /// frames left out after it.
    pub(crate) fn vp8_offsets(&self, payload: &[u8]) -> Offsets {
        self.left.offsets_of(self.vp8, payload)
    }
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
            layer: None,
            choice: Choice::default(),
            last_captured: None,
            before: None,
            temporal: TEMPORAL as u8 - 1,
            left: LeftOut::default(),
            vp8: Continuity::default(),
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

    /// Goes on with simulcast layer `layer` from its packet `fwd` (a keyframe): its
    /// sequence numbers right after the last sent, its timestamps on from the last by the
    /// capture times the layers' sender reports give (the layers' own timestamps are
    /// unrelated). The stretch before is kept for NACKs.
    pub(crate) fn switch_to(&mut self, layer: u8, fwd: &Forwarded) {
        if let (Some(old), Some(delta), TimeMap::Offset(offset)) =
            (self.layer, self.seq_delta, self.time)
        {
            let until_seq = self.last_seq + 1;
            // The new stretch reuses the memory of the one before last.
            let mut left = self.before.take().map(|b| b.left).unwrap_or_default();
            left.clear();
            std::mem::swap(&mut left, &mut self.left);
            self.before = Some(Segment {
                layer: old,
                until_seq,
                seq_delta: delta,
                time_offset: offset,
                vp8: self.vp8.offsets,
                left,
            });
            self.vp8.switch();
            self.seq_delta = Some(until_seq as i64 - fwd.seq as i64);
            self.time = TimeMap::Switched {
                last: self.last_time,
                captured: self.last_captured.unwrap_or(fwd.wallclock),
            };
        }
        self.layer = Some(layer);
        // All of its temporal layers until its first base-layer frame says otherwise (a
        // layer without them has nothing to leave out).
        self.temporal = TEMPORAL as u8 - 1;
    }

    /// The subscriber's sequence numbers from here on are of its current stretch.
    pub(crate) fn stretch_start(&self) -> u64 {
        self.before
            .as_ref()
            .map_or(self.start.first_seq, |b| b.until_seq)
    }

    /// How the subscriber's packet `seq` mapped the publisher's.
    pub(crate) fn mapping_of(&self, seq: u64) -> Option<Mapping<'_>> {
        if let Some(b) = self.before.as_ref().filter(|b| seq < b.until_seq) {
            return Some(Mapping::new(
                seq,
                b.layer,
                b.seq_delta,
                b.time_offset,
                b.vp8,
                &b.left,
            ));
        }
        match (self.layer, self.seq_delta, self.time) {
            (Some(l), Some(d), TimeMap::Offset(o)) => {
                Some(Mapping::new(seq, l, d, o, self.vp8.offsets, &self.left))
            }
            _ => None,
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

/// The layer a subscriber that wants `target` gets now, from when each layer was last
/// `seen` on a route `born` then: the highest that flows at or below it, else the lowest
/// that flows (a publisher may send only its upper layers: a browser drops those its
/// capture is too small for), else 0.
///
/// A layer not seen yet flows until [`LAYER_GONE`] after the route began: a publisher's
/// layers reach a new route in any order (str0m tells a stream apart by its rid only once
/// a packet carries one), and a subscriber that started on the first layer to come could
/// get a keyframe of the top one on a link made for the lowest.
pub(crate) fn layer_for(
    (seen, born): (&[Option<Instant>; MAX_LAYERS], Instant),
    target: u8,
    now: Instant,
) -> u8 {
    let flows = |l: &u8| match seen[usize::from(*l)] {
        Some(t) => now < t + LAYER_GONE,
        None => now < born + LAYER_GONE,
    };
    (0..=target.min(MAX_LAYERS as u8 - 1))
        .rev()
        .find(flows)
        .or_else(|| (0..MAX_LAYERS as u8).find(flows))
        .unwrap_or(0)
}

/// The publisher of a track, when it lives on this shard.
pub(crate) struct Origin {
    pub(crate) slot: Slot,
    /// The publisher's m-line; keyframe requests go to its receive stream.
    pub(crate) mid: Mid,
    /// Its simulcast layers (1 without simulcast).
    pub(crate) layers: u8,
    /// When each simulcast layer was last asked for a keyframe.
    pub(crate) last_keyframe_request: [Option<Instant>; MAX_LAYERS],
    /// A request came in during a layer's cooldown; send it when the cooldown ends.
    pub(crate) keyframe_pending: [bool; MAX_LAYERS],
}

pub(crate) struct Route {
    pub(crate) kind: MediaKind,
    /// `Some` on the publisher's shard.
    pub(crate) origin: Option<Origin>,
    pub(crate) subs: Vec<Sub>,
    /// Other shards with subscribers, and how many each has.
    pub(crate) remote: Vec<(ShardId, u32)>,
    /// A video track's last packets, for its subscribers' NACKs: one ring per
    /// simulcast layer (each has its own sequence numbers).
    pub(crate) history: Vec<History>,
    /// When each simulcast layer last had a packet here: a layer that stops (the
    /// publisher's uplink cannot carry it, or it was paused) is not waited for.
    pub(crate) layer_seen: [Option<Instant>; MAX_LAYERS],
    /// When the route began: a layer not seen yet may still come until [`LAYER_GONE`]
    /// after it.
    pub(crate) born: Instant,
    /// Each layer's rate here.
    pub(crate) rates: LayerRates,
    /// On the publisher's shard: the highest layer each other shard's tiles ask for.
    pub(crate) demand: Vec<(ShardId, u8)>,
    /// What was last said of the layers wanted: to the publisher (on its shard), or to
    /// the publisher's shard (elsewhere).
    pub(crate) told: Option<Option<u8>>,
}

impl Route {
    pub(crate) fn new(kind: MediaKind, origin: Option<Origin>, now: Instant) -> Self {
        Self {
            kind,
            origin,
            subs: Vec::new(),
            remote: Vec::new(),
            history: Vec::new(),
            layer_seen: [None; MAX_LAYERS],
            born: now,
            rates: LayerRates::default(),
            demand: Vec::new(),
            told: None,
        }
    }

    /// Keeps a video packet for NACKs, in its layer's ring.
    pub(crate) fn keep(&mut self, now: Instant, fwd: &Forwarded) {
        if self.kind != MediaKind::Video {
            return;
        }
        let layer = usize::from(fwd.layer).min(MAX_LAYERS - 1);
        while self.history.len() <= layer {
            self.history.push(History::new());
        }
        self.history[layer].keep(now, fwd);
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
                self.demand.retain(|(s, _)| *s != shard);
            }
        }
    }

    pub(crate) fn is_unused(&self) -> bool {
        self.origin.is_none() && self.subs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_for_a_target_is_the_highest_flowing_under_it_else_the_lowest_flowing() {
        let born = Instant::now();
        let now = born + LAYER_GONE;
        let all = [Some(now); MAX_LAYERS];
        assert_eq!(layer_for((&all, born), 1, now), 1);
        let upper = [None, Some(now), Some(now)];
        assert_eq!(
            layer_for((&upper, born), 0, now),
            1,
            "no layer 0: the lowest there is"
        );
        let stale = [Some(now - LAYER_GONE), Some(now), None];
        assert_eq!(layer_for((&stale, born), 2, now), 1);
        assert_eq!(layer_for((&[None; MAX_LAYERS], born), 2, now), 0);
    }

    #[test]
    fn a_new_route_waits_for_the_target_layer_before_it_takes_another() {
        let born = Instant::now();
        // The top layer came first: a subscriber for the lowest waits for it.
        let top_first = [None, None, Some(born)];
        assert_eq!(layer_for((&top_first, born), 0, born), 0);
        let later = born + LAYER_GONE / 2;
        assert_eq!(layer_for((&top_first, born), 0, later), 0);
        // It never came: the lowest layer there is.
        let gone = born + LAYER_GONE;
        let top_only = [None, None, Some(gone)];
        assert_eq!(layer_for((&top_only, born), 0, gone), 2);
    }
}
