//! Keyframe requests: a subscriber's PLI/FIR (or a new subscription) reaches the
//! publisher's shard and becomes one request to the publisher, at most one per track per
//! [`KEYFRAME_INTERVAL`]; a request inside the interval is held and sent when it ends.
//!
//! A subscriber's NACKs are answered on its own shard, from the track's history
//! (`send.rs`); str0m keeps each session's reports.

use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, MediaKind, Mid};

use super::core::ShardCore;
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
        self.request_keyframe(now, track, kind, false);
    }

    /// Asks the publisher of `track` for a keyframe, through its shard when it lives on
    /// another. `urgent` (a new subscriber) skips the interval.
    pub(super) fn request_keyframe(
        &mut self,
        now: Instant,
        track: TrackId,
        kind: KeyframeRequestKind,
        urgent: bool,
    ) {
        if track.shard() != self.id {
            self.out.control.push((
                track.shard(),
                Control::KeyframeRequest {
                    track,
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
        if let Some(last) = origin.last_keyframe_request
            && !urgent
            && now < last + KEYFRAME_INTERVAL
        {
            if !origin.keyframe_pending {
                origin.keyframe_pending = true;
                self.keyframe_waits.push((last + KEYFRAME_INTERVAL, track));
            }
            return;
        }
        origin.last_keyframe_request = Some(now);
        origin.keyframe_pending = false;
        let (slot, mid) = (origin.slot, origin.mid);
        self.stats.keyframe_requests += 1;
        self.mutate(now, slot, |rtc| {
            if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, None) {
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
                let (_, track) = self.keyframe_waits.swap_remove(i);
                self.send_pending_keyframe_request(now, track);
            } else {
                i += 1;
            }
        }
    }

    fn send_pending_keyframe_request(&mut self, now: Instant, track: TrackId) {
        let pending = self
            .routes
            .get(&track)
            .and_then(|r| r.origin.as_ref())
            .is_some_and(|o| o.keyframe_pending);
        if pending {
            self.request_keyframe(now, track, KeyframeRequestKind::Pli, false);
        }
    }
}
