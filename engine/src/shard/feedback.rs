//! Keyframe requests: a subscriber's PLI/FIR (or a new subscription) reaches the
//! publisher's shard and becomes one request to the publisher, at most one per track
//! (and simulcast layer) per [`KEYFRAME_INTERVAL`]; a request inside the interval is held
//! and sent when it ends.
//!
//! A subscriber's NACKs are answered on its own shard, from the track's history
//! (`send.rs`); str0m keeps each session's reports.

use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rids};

use super::core::ShardCore;
use super::peer::{MAX_LAYERS, layer_of};
use super::timers::Slot;
use crate::msg::{Control, TrackId};

/// At most one keyframe request per track per this interval reaches a publisher.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(1);

impl ShardCore {
    /// A subscriber asked for a keyframe on the m-line `mid` it receives.
    pub(super) fn on_keyframe_request(
        &mut self,
        now: Instant,
        slot: Slot,
        mid: Mid,
        kind: KeyframeRequestKind,
    ) {
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        peer.last_authentic_rx = now;
        let Some(out) = peer.receiving.iter().find(|o| o.mid == mid && o.active) else {
            return;
        };
        let track = out.track;
        let layer = self.layer_sent(track, slot);
        self.request_keyframe(now, (track, layer), kind, false);
    }

    /// The simulcast layer `slot` receives of `track` now (0 without simulcast).
    pub(super) fn layer_sent(&self, track: TrackId, slot: Slot) -> u8 {
        self.routes
            .get(&track)
            .and_then(|r| r.subs.iter().find(|s| s.slot == slot))
            .map_or(0, |s| s.layer.unwrap_or(s.choice.target().layer))
    }

    /// Asks the publisher of `track` for a keyframe of one simulcast layer, through its
    /// shard when it lives on another. `urgent` (a new subscriber) skips the interval.
    pub(super) fn request_keyframe(
        &mut self,
        now: Instant,
        (track, layer): (TrackId, u8),
        kind: KeyframeRequestKind,
        urgent: bool,
    ) {
        let layer = layer.min(MAX_LAYERS as u8 - 1);
        if track.shard() != self.id {
            self.out.control.push((
                track.shard(),
                Control::KeyframeRequest {
                    track,
                    layer,
                    kind,
                    urgent,
                },
            ));
            return;
        }
        let Some(route) = self.routes.get_mut(&track) else {
            return;
        };
        if route.kind != MediaKind::Video {
            return;
        }
        let Some(origin) = route.origin.as_mut() else {
            return;
        };
        // A track without simulcast has its one stream.
        let layer = layer.min(origin.layers - 1);
        let l = usize::from(layer);
        if let Some(last) = origin.last_keyframe_request[l]
            && !urgent
            && now < last + KEYFRAME_INTERVAL
        {
            if !origin.keyframe_pending[l] {
                origin.keyframe_pending[l] = true;
                self.keyframe_waits
                    .push((last + KEYFRAME_INTERVAL, track, layer));
            }
            return;
        }
        origin.last_keyframe_request[l] = Some(now);
        origin.keyframe_pending[l] = false;
        let (slot, mid) = (origin.slot, origin.mid);
        self.stats.keyframe_requests += 1;
        self.mutate(now, slot, |rtc| {
            // The layer's stream: by its rid with simulcast, the m-line's only one without.
            let rid = rtc.media(mid).and_then(|m| match m.rids_rx() {
                rids @ Rids::Specific(all) => all
                    .iter()
                    .copied()
                    .find(|r| layer_of(rids, Some(*r)) == layer),
                _ => None,
            });
            if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, rid) {
                rx.request_keyframe(kind);
            }
            Ok(())
        });
    }

    /// Sends the held requests whose interval has ended.
    pub(super) fn send_due_keyframe_requests(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.keyframe_waits.len() {
            if self.keyframe_waits[i].0 <= now {
                let (_, track, layer) = self.keyframe_waits.swap_remove(i);
                self.send_pending_keyframe_request(now, track, layer);
            } else {
                i += 1;
            }
        }
    }

    fn send_pending_keyframe_request(&mut self, now: Instant, track: TrackId, layer: u8) {
        let pending = self
            .routes
            .get(&track)
            .and_then(|r| r.origin.as_ref())
            .is_some_and(|o| o.keyframe_pending[usize::from(layer)]);
        if pending {
            self.request_keyframe(now, (track, layer), KeyframeRequestKind::Pli, false);
        }
    }
}
