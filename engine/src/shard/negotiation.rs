//! The server's side of SDP negotiation after the client's first offer: changes
//! (publish, subscribe, unsubscribe, unpublish) queue up per peer, the server makes one
//! offer at a time for all that waited (so there is no glare), and the client's answer
//! activates what the offer added.

use std::time::Instant;

use str0m::change::SdpAnswer;
use str0m::media::{Direction, KeyframeRequestKind};

use super::core::ShardCore;
use super::lifecycle::peer_in;
use super::peer::{Change, InFlight, OutTrack, Parked, Peer, StreamStart};
use super::relabel::relabel;
use super::timers::Slot;
use crate::codecs::PtMap;
use crate::msg::{Notice, PeerId, Subscription, TrackId, TrackName};

impl ShardCore {
    /// The client will publish one more track: offer it a receive slot.
    pub(super) fn request_publish(&mut self, now: Instant, peer: PeerId, name: TrackName) {
        self.queue(now, peer, [Change::Publish(name)]);
    }

    pub(super) fn request_unpublish(&mut self, now: Instant, peer: PeerId, track: TrackId) {
        self.queue(now, peer, [Change::Unpublish(track)]);
    }

    /// One request, one offer: every track of a `subscribe` goes into the same offer.
    pub(super) fn request_subscribe(
        &mut self,
        now: Instant,
        peer: PeerId,
        tracks: Vec<Subscription>,
    ) {
        self.queue(now, peer, tracks.into_iter().map(Change::Subscribe));
    }

    pub(super) fn request_unsubscribe(
        &mut self,
        now: Instant,
        peer: PeerId,
        tracks: Vec<TrackId>,
        gone: bool,
    ) {
        let changes = tracks
            .into_iter()
            .map(|track| Change::Unsubscribe { track, gone });
        self.queue(now, peer, changes);
    }

    /// Queues `changes` for the peer `id`, then makes an offer if none is outstanding.
    fn queue(&mut self, now: Instant, id: PeerId, changes: impl IntoIterator<Item = Change>) {
        let Some(slot) = self.slot_of(id) else {
            self.out.notices.push(Notice::UnknownPeer { peer: id });
            return;
        };
        for change in changes {
            self.enqueue(slot, change);
        }
        self.negotiate(now, slot);
    }

    fn enqueue(&mut self, slot: Slot, change: Change) {
        let id = slot.peer;
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        match &change {
            Change::Subscribe(s) if peer.is_receiving(s.track) => return,
            Change::Unsubscribe { track: t, gone } => {
                if *gone && let Some(p) = peer.parked.iter_mut().find(|p| p.track == *t) {
                    p.gone = true;
                }
                // Not yet offered: just forget it.
                let before = peer.queued.len();
                peer.queued
                    .retain(|c| !matches!(c, Change::Subscribe(s) if s.track == *t));
                if peer.queued.len() != before {
                    self.out.notices.push(Notice::Unsubscribed {
                        peer: id,
                        tracks: vec![*t],
                    });
                    return;
                }
            }
            _ => {}
        }
        peer.queued.push(change);
    }

    /// Makes the next offer, if none is outstanding and changes are waiting.
    fn negotiate(&mut self, now: Instant, slot: Slot) {
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        if peer.pending.is_some() || peer.queued.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut peer.queued);
        let mut unsubscribed = Vec::new();
        let mut unpublished = Vec::new();
        let mut in_flight = Vec::new();
        let Peer {
            rtc,
            receiving,
            parked,
            relabelled,
            unpublished: unpublished_mlines,
            published,
            ssrc_tracks,
            ..
        } = peer;
        let mut api = rtc.sdp_api();
        for change in changes {
            match change {
                Change::Publish(name) => {
                    // The m-line of a track the client stopped publishing, else a new one.
                    let mid = match unpublished_mlines.iter().position(|(_, k)| *k == name.kind) {
                        Some(i) => {
                            let (mid, _) = unpublished_mlines.remove(i);
                            api.set_direction(mid, Direction::RecvOnly);
                            relabelled.retain(|(m, _)| *m != mid);
                            relabelled.push((mid, name));
                            mid
                        }
                        None => api.add_media(
                            name.kind,
                            Direction::RecvOnly,
                            Some(name.stream_id),
                            Some(name.track_id),
                            None,
                        ),
                    };
                    in_flight.push(InFlight::Publish { mid });
                }
                Change::Subscribe(s) => {
                    if receiving.iter().any(|o| o.track == s.track) {
                        continue;
                    }
                    // The track's own parked m-line, else a free one of its kind (a gone
                    // track's), else a new one.
                    let own = parked.iter().position(|p| p.track == s.track && !p.gone);
                    let free = || parked.iter().position(|p| p.gone && p.kind == s.name.kind);
                    let (mid, start) = match own
                        .map(|i| (i, true))
                        .or_else(|| free().map(|i| (i, false)))
                    {
                        Some((i, same)) => {
                            let p = parked.remove(i);
                            api.set_direction(p.mid, Direction::SendOnly);
                            if same {
                                tracing::debug!(peer = slot.peer.0, track = ?s.track, mid = %p.mid, "resumed a parked m-line");
                                (p.mid, p.resume)
                            } else {
                                tracing::debug!(peer = slot.peer.0, track = ?s.track, mid = %p.mid, "recycled a gone track's m-line");
                                relabelled.retain(|(m, _)| *m != p.mid);
                                relabelled.push((p.mid, s.name.clone()));
                                (p.mid, p.recycle)
                            }
                        }
                        None => {
                            let mid = api.add_media(
                                s.name.kind,
                                Direction::SendOnly,
                                Some(s.name.stream_id),
                                Some(s.name.track_id),
                                None,
                            );
                            (mid, StreamStart::NEW)
                        }
                    };
                    receiving.push(OutTrack {
                        track: s.track,
                        kind: s.name.kind,
                        mid,
                        active: false,
                        start,
                    });
                    in_flight.push(InFlight::Subscribe {
                        track: s.track,
                        mid,
                    });
                }
                Change::Unsubscribe { track, gone } => {
                    if let Some(i) = receiving.iter().position(|o| o.track == track) {
                        // Inactive, not stopped: kept for this track or, once it is
                        // gone, for another (where it left off is known below).
                        let o = receiving.remove(i);
                        api.set_direction(o.mid, Direction::Inactive);
                        tracing::debug!(peer = slot.peer.0, track = ?track, mid = %o.mid, gone, "parked an m-line");
                        parked.push(Parked {
                            track,
                            mid: o.mid,
                            kind: o.kind,
                            gone,
                            resume: o.start,
                            recycle: o.start,
                        });
                        unsubscribed.push((track, o.active));
                    } else if gone && let Some(p) = parked.iter_mut().find(|p| p.track == track) {
                        p.gone = true;
                    }
                }
                Change::Unpublish(track) => {
                    if let Some(i) = published.iter().position(|t| t.track == track) {
                        let t = published.remove(i);
                        api.set_direction(t.mid, Direction::Inactive);
                        unpublished_mlines.push((t.mid, t.kind));
                        ssrc_tracks.clear();
                        unpublished.push(track);
                    }
                }
            }
        }
        if api.has_changes() {
            if let Some((offer, pending)) = api.apply() {
                let offer = relabel(offer, relabelled);
                peer.pending = Some(pending);
                peer.in_flight = in_flight;
                self.out.notices.push(Notice::Offer {
                    peer: slot.peer,
                    offer,
                });
            }
        } else {
            drop(api);
        }
        self.mutate(now, slot, |_| Ok(()));
        for (track, active) in &unsubscribed {
            if *active
                && let Some(sub) = self.remove_sub(*track, slot)
                && let Some(peer) = self.peer_mut(slot)
                && let Some(p) = peer.parked.iter_mut().find(|p| p.track == *track)
            {
                (p.resume, p.recycle) = sub.ended(now);
            }
        }
        if !unsubscribed.is_empty() {
            self.out.notices.push(Notice::Unsubscribed {
                peer: slot.peer,
                tracks: unsubscribed.into_iter().map(|(t, _)| t).collect(),
            });
        }
        for track in unpublished {
            self.routes.remove(&track);
            self.out.notices.push(Notice::TrackUnpublished {
                peer: slot.peer,
                track,
            });
        }
    }

    /// The client answered the outstanding offer: what it added becomes active (a
    /// published track, a subscription with a keyframe asked for at once), what it
    /// refused is reported, and the next offer goes out if changes waited.
    pub(super) fn accept_answer(&mut self, now: Instant, id: PeerId, answer: SdpAnswer) {
        let Some(slot) = self.slot_of(id) else {
            self.out.notices.push(Notice::UnknownPeer { peer: id });
            return;
        };
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        let Some(pending) = peer.pending.take() else {
            self.out.notices.push(Notice::BadAnswer {
                peer: id,
                reason: "no offer is outstanding".into(),
            });
            return;
        };
        let mut result = Ok(());
        self.mutate(now, slot, |rtc| {
            result = rtc.sdp_api().accept_answer(pending, answer);
            Ok(())
        });
        if let Err(e) = result {
            // str0m has consumed the offer; this session cannot go on.
            self.out.notices.push(Notice::BadAnswer {
                peer: id,
                reason: e.to_string(),
            });
            self.doomed.push((slot, format!("unusable answer: {e}")));
            return;
        }
        self.refresh_twcc_guard(slot, None);
        let Some(peer) = peer_in(&mut self.peers, slot) else {
            return;
        };
        peer.pt_map = PtMap::new(&self.codecs, peer.rtc.codec_config());
        let in_flight = std::mem::take(&mut peer.in_flight);
        let mut activated = Vec::new();
        let mut refused = Vec::new();
        for f in in_flight {
            let (track, mid) = match f {
                InFlight::Publish { mid } => {
                    self.publish_track(now, slot, mid);
                    continue;
                }
                InFlight::Subscribe { track, mid } => (track, mid),
            };
            let Some(peer) = self.peer_mut(slot) else {
                return;
            };
            let ssrc = peer
                .rtc
                .direct_api()
                .stream_tx_by_mid(mid, None)
                .map(|s| s.ssrc());
            let Some(out) = peer.receiving.iter_mut().find(|o| o.mid == mid) else {
                continue;
            };
            let start = out.start;
            let (Some(ssrc), Some(kind)) = (ssrc, peer.rtc.media(mid).map(|m| m.kind())) else {
                // The client rejected the m-line.
                peer.receiving.retain(|o| o.mid != mid);
                refused.push(track);
                continue;
            };
            out.active = true;
            self.add_sub(track, kind, slot, (ssrc, mid), start, now);
            activated.push(track);
        }
        if !activated.is_empty() {
            for &track in &activated {
                // Of the layer the new subscriber starts on (the lowest while none has
                // reached this shard yet).
                let layer = self.layer_sent(track, slot);
                let layer = self.routes.get(&track).map_or(0, |r| {
                    super::route::layer_for((&r.layer_seen, r.born), layer, now)
                });
                self.request_keyframe(now, (track, layer), KeyframeRequestKind::Pli, true);
            }
            self.out.notices.push(Notice::Subscribed {
                peer: id,
                tracks: activated,
            });
        }
        if !refused.is_empty() {
            self.out.notices.push(Notice::Unsubscribed {
                peer: id,
                tracks: refused,
            });
        }
        self.negotiate(now, slot);
    }
}
