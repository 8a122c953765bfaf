//! Published tracks and where their packets go: a track is published when its m-line
//! is negotiated, each RTP packet of it is fanned out to the subscribers on this shard
//! and handed once to each other shard that has subscribers, and routes follow the
//! subscriptions.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rids};
use str0m::rtp::{RtpPacket, Ssrc};

use super::core::ShardCore;
use super::core::schedule_pacer;
use super::feedback::KEYFRAME_INTERVAL;
use super::left_out::Place;
use super::lifecycle::peer_in;
use super::peer::{InTrack, MAX_LAYERS, StreamStart, TimeMap};
use super::route::{Origin, Route, Sub, layer_for};
use super::send::{Header, NotSent, Send, Sent, resend, rtx_pt_of, send};
use super::timers::Slot;
use crate::codecs::{CodecDesc, PtMap};
use crate::keyframe::starts_keyframe;
use crate::msg::{Control, Forwarded, Notice, TrackId, TrackName};

impl ShardCore {
    /// The client sends on `mid`: it becomes a track of the room.
    pub(super) fn publish_track(&mut self, now: Instant, slot: Slot, mid: Mid) {
        let id = self.id;
        let track = TrackId::new(id, self.next_track);
        let Some(peer) = peer_in(&mut self.peers, slot) else {
            return;
        };
        if peer.published.iter().any(|t| t.mid == mid) {
            return;
        }
        let Some(media) = peer.rtc.media(mid) else {
            return;
        };
        let kind = media.kind();
        let layers = match media.rids_rx() {
            Rids::Specific(rids) => rids.len().clamp(1, MAX_LAYERS) as u8,
            _ => 1,
        };
        // A recycled m-line's track is the one its last offer named.
        let name = match peer.relabelled.iter().find(|(m, _)| *m == mid) {
            Some((_, name)) => name.clone(),
            None => TrackName {
                stream_id: media.stream_id().to_string(),
                track_id: media.track_id().to_string(),
                kind,
            },
        };
        let config = peer.rtc.codec_config();
        let codec = media
            .remote_pts()
            .iter()
            .find_map(|pt| config.params().iter().find(|p| p.pt() == *pt))
            .or_else(|| {
                config
                    .params()
                    .iter()
                    .find(|p| p.spec().codec.is_audio() == (kind == MediaKind::Audio))
            })
            .map(CodecDesc::of);
        let Some(codec) = codec else {
            return;
        };
        peer.pt_map = PtMap::new(&self.codecs, peer.rtc.codec_config());
        peer.published.push(InTrack { mid, track, kind });
        self.next_track += 1;
        self.routes.insert(
            track,
            Route::new(
                kind,
                Some(Origin {
                    slot,
                    mid,
                    layers,
                    last_keyframe_request: [None; MAX_LAYERS],
                    keyframe_pending: [false; MAX_LAYERS],
                }),
                now,
            ),
        );
        self.out.notices.push(Notice::TrackPublished {
            peer: slot.peer,
            track,
            name,
            codec,
        });
    }

    /// An RTP packet from a publisher: identify its track and codec, then fan it out.
    pub(super) fn on_rtp(&mut self, now: Instant, slot: Slot, packet: RtpPacket) {
        self.stats.rtp_in += 1;
        // Padding only (a probe, or a padding flag on an empty payload): nothing to
        // forward; subscribers' sessions make their own padding.
        if packet.payload.is_empty() {
            self.stats.rtp_empty += 1;
            return;
        }
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        peer.last_authentic_rx = now;
        let Some((i, layer)) = peer.track_of_ssrc(packet.header.ssrc) else {
            self.stats.rtp_unrouted += 1;
            return;
        };
        let track = peer.published[i].track;
        let Some(codec) = peer.pt_map.codec(packet.header.payload_type) else {
            self.stats.rtp_unrouted += 1;
            return;
        };
        let fwd = Forwarded {
            track,
            layer,
            codec,
            seq: *packet.seq_no,
            time: packet.header.timestamp,
            marker: packet.header.marker,
            wallclock: self
                .clock
                .wallclock(packet.last_sender_info.as_ref(), packet.time)
                .unwrap_or(packet.timestamp),
            audio_level: packet.header.ext_vals.audio_level,
            voice_activity: packet.header.ext_vals.voice_activity,
            payload: packet.payload,
        };
        self.fan_out(now, &fwd);
    }

    /// Sends one packet to every subscriber of its track on this shard, and (from the
    /// publisher's shard) once to each other shard that has subscribers.
    ///
    /// Optimisation (docs/benchmarks.md): str0m sends a written packet only after a
    /// timeout has stamped it, so a write is not drained at once: the subscriber is
    /// due now in the timer heap, and [`ShardCore::handle_timeout`] drives it once
    /// for every packet written to it since, rather than one `poll_output` round per
    /// packet.
    pub(super) fn fan_out(&mut self, now: Instant, fwd: &Forwarded) {
        let Some(route) = self.routes.get_mut(&fwd.track) else {
            return;
        };
        for (shard, _) in &route.remote {
            self.out.media[*shard].push(fwd.clone());
        }
        let params = self.codecs.params().get(usize::from(fwd.codec));
        let vp8 = params.is_some_and(|p| p.spec().codec == Codec::Vp8);
        // VP8 temporal layers: which one the packet is of, whether it begins a frame, and
        // the frame's picture id.
        let descriptor = vp8.then(|| crate::vp8::descriptor(&fwd.payload)).flatten();
        let temporal = descriptor.and_then(|d| d.temporal);
        let picture = descriptor.and_then(|d| d.picture_id).map(|p| p.1);
        let frame_start = temporal.is_some() && crate::vp8::starts_frame(&fwd.payload);
        let layer = usize::from(fwd.layer).min(MAX_LAYERS - 1);
        route.layer_seen[layer] = Some(now);
        route
            .rates
            .count(layer, temporal.unwrap_or(0), fwd.payload.len());
        if route.subs.is_empty() {
            return;
        }
        route.keep(now, fwd);
        let clock_rate = params.map_or(90_000, |p| p.spec().clock_rate.get());
        // Read once per packet, and only while a subscriber waits for it.
        let mut keyframe: Option<bool> = None;
        let audio = route.kind == MediaKind::Audio;
        // Simulcast layers that subscribers wait for a keyframe of.
        let mut ask = [false; MAX_LAYERS];
        let seen = (route.layer_seen, route.born);
        for sub in &mut route.subs {
            let Some(peer) = peer_in(&mut self.peers, sub.slot) else {
                continue;
            };
            if peer.media_to.is_none() || peer.keys.get().is_none() {
                // DTLS is not done: nothing can reach it yet (and its stream has not
                // started, so it still waits for a keyframe).
                self.stats.rtp_not_ready += 1;
                continue;
            }
            // The layer it should forward: it starts, and switches, at that layer's
            // next keyframe, and forwards the one it has until then.
            let want = layer_for((&seen.0, seen.1), sub.choice.target().layer, now);
            if sub.layer != Some(want) {
                if fwd.layer == want {
                    let starts = audio
                        || *keyframe.get_or_insert_with(|| {
                            params.is_none_or(|p| starts_keyframe(p.spec().codec, &fwd.payload))
                        });
                    if starts {
                        if sub.layer.is_some() {
                            self.stats.layer_switches += 1;
                        }
                        sub.switch_to(want, fwd);
                        sub.awaiting_keyframe = None;
                    }
                }
                if sub.layer != Some(want) {
                    // The request (or the keyframe) was lost, or the publisher cannot
                    // make one on request (`play` of a file): ask again now and then.
                    match sub.awaiting_keyframe {
                        Some(asked) if now < asked + KEYFRAME_INTERVAL => {}
                        _ => {
                            sub.awaiting_keyframe = Some(now);
                            ask[usize::from(want)] = true;
                        }
                    }
                    if sub.layer.is_none() {
                        self.stats.rtp_awaiting_keyframe += 1;
                    }
                }
            }
            if sub.layer != Some(fwd.layer) {
                continue;
            }
            // Going down on a congested path: the layer it has stops at once (the
            // picture holds until the lower layer's keyframe) rather than flood the queue
            // meanwhile; the sequence numbers go on from the last sent at the switch.
            if want < fwd.layer && congested(peer) {
                self.stats.rtp_held_for_congestion += 1;
                continue;
            }
            // VP8 temporal layers: it gets those up to its choice. Fewer from any frame
            // on (no frame it gets refers to one above it); more from a base-layer frame
            // (the frames above refer to the base frame before them). A packet is left
            // out when it comes in order; one that comes late (a resend) has its slot
            // among those sent, and fills it.
            if frame_start {
                let target = sub.choice.target().temporal;
                if temporal == Some(0) || target < sub.temporal {
                    sub.temporal = target;
                }
            }
            let new = sub.left.is_new(fwd.seq);
            if new
                && temporal.is_some_and(|t| t > sub.temporal)
                && let Some(delta) = sub.seq_delta.as_mut()
            {
                *delta -= 1;
                if sub.left.leave_out(fwd.seq, picture) {
                    sub.vp8.drop_frame();
                }
                self.stats.rtp_temporal_left_out += 1;
                continue;
            }
            let after = match sub.left.place(fwd.seq, picture) {
                Place::Send(after) => after,
                Place::Drop => {
                    self.stats.rtp_temporal_left_out += 1;
                    continue;
                }
            };
            let Some(pt) = peer.pt_map.pt(fwd.codec) else {
                self.stats.rtp_no_codec += 1;
                continue;
            };
            let delta = *sub
                .seq_delta
                .get_or_insert(sub.start.first_seq as i64 - fwd.seq as i64);
            let seq = fwd.seq as i64 + delta + after as i64;
            let segment_start = sub.stretch_start();
            if seq < segment_start as i64 {
                continue; // older than the first packet of this layer it got
            }
            let offset = match sub.time {
                TimeMap::Offset(offset) => offset,
                TimeMap::After { last, at } => {
                    // A recycled m-line's first packet of this track.
                    let rate = u64::from(clock_rate);
                    let ticks = now.saturating_duration_since(at).as_millis() as u64 * rate / 1000;
                    let next = last.wrapping_add(ticks.clamp(1, u64::from(u32::MAX / 4)) as u32);
                    let offset = next.wrapping_sub(fwd.time);
                    sub.time = TimeMap::Offset(offset);
                    offset
                }
                TimeMap::Switched { last, captured } => {
                    let between = fwd.wallclock.saturating_duration_since(captured);
                    let ticks = between.as_micros() as u64 * u64::from(clock_rate) / 1_000_000;
                    let next = last.wrapping_add(ticks.clamp(1, u64::from(u32::MAX / 4)) as u32);
                    let offset = next.wrapping_sub(fwd.time);
                    sub.time = TimeMap::Offset(offset);
                    offset
                }
            };
            let time = fwd.time.wrapping_add(offset);
            if seq as u64 > sub.last_seq {
                sub.last_seq = seq as u64;
                sub.last_time = time;
                sub.last_captured = Some(fwd.wallclock);
            }
            let header = Header {
                pt: *pt,
                seq: seq as u64,
                time,
                marker: fwd.marker,
            };
            // A late packet's picture id goes up by the frames left out after it.
            let vp8_offsets = vp8.then(|| match new {
                true => sub.vp8.next(&fwd.payload),
                false => sub.left.offsets_of(sub.vp8.offsets, &fwd.payload),
            });
            let packet = Send {
                ssrc: sub.ssrc,
                mid: sub.mid,
                header,
                clock_rate,
                fwd,
                hint: &mut sub.sent,
                vp8: vp8_offsets,
                audio,
            };
            let out = &mut self.out;
            let sent = catch_unwind(AssertUnwindSafe(|| send(peer, out, now, packet)));
            match sent {
                Ok(Ok(sent)) => {
                    self.stats.rtp_forwarded += 1;
                    if sent == Sent::Paced {
                        self.stats.rtp_paced += 1;
                        schedule_pacer(&mut self.pacing, peer, sub.slot, now);
                    }
                    // Probing for a higher layer: copies of this packet, as repairs,
                    // until the path shows congestion (or sends all it may already:
                    // its pacer holds video back).
                    let mut copies = sub.choice.probe_copies(now);
                    if copies > 0 && (congested(peer) || paced(peer)) {
                        copies = 0;
                    }
                    for _ in 0..copies {
                        let header = Header {
                            pt: *pt,
                            seq: seq as u64,
                            time,
                            marker: fwd.marker,
                        };
                        let rtx_pt = rtx_pt_of(peer, *pt);
                        let copy = (fwd, vp8_offsets);
                        if resend(peer, out, now, sub.ssrc, header, rtx_pt, copy).is_ok() {
                            self.stats.probe_packets += 1;
                        }
                    }
                    if !audio {
                        let bytes = fwd.payload.len() as u64;
                        match fwd.layer {
                            0 => self.stats.layer0_bytes += bytes,
                            1 => self.stats.layer1_bytes += bytes,
                            _ => self.stats.layer2_bytes += bytes,
                        }
                    }
                }
                Ok(Err(NotSent::NotReady)) => self.stats.rtp_not_ready += 1,
                Ok(Err(NotSent::OverBudget)) => {} // resends only
                Ok(Err(NotSent::Failed)) => {
                    self.doomed.push((sub.slot, "SRTP failed".into()));
                }
                Err(_) => {
                    self.stats.peer_panics += 1;
                    self.doomed.push((sub.slot, "internal error".into()));
                }
            }
        }
        for layer in (0..MAX_LAYERS).filter(|l| ask[*l]) {
            let track = (fwd.track, layer as u8);
            self.request_keyframe(now, track, KeyframeRequestKind::Pli, false);
        }
    }

    /// The subscriber `slot` receives at most simulcast layer `max` of `track`.
    pub(super) fn set_max_layer(&mut self, track: TrackId, slot: Slot, max: u8) {
        let Some(sub) = self
            .routes
            .get_mut(&track)
            .and_then(|r| r.subs.iter_mut().find(|s| s.slot == slot))
        else {
            return;
        };
        sub.choice.cap = max.min(MAX_LAYERS as u8 - 1);
    }

    /// A subscription became active: the subscriber's send stream joins the track's
    /// route (telling the publisher's shard the first time this shard has one).
    pub(super) fn add_sub(
        &mut self,
        track: TrackId,
        kind: MediaKind,
        slot: Slot,
        (ssrc, mid): (Ssrc, Mid),
        start: StreamStart,
        now: Instant,
    ) {
        let home = track.shard();
        let route = self.routes.entry(track).or_insert_with(|| {
            if home != self.id {
                self.out.control.push((
                    home,
                    Control::AddRemoteSubscriber {
                        track,
                        shard: self.id,
                    },
                ));
            }
            Route::new(kind, None, now)
        });
        let asked = (kind == MediaKind::Video).then_some(now);
        route.subs.push(Sub::new(slot, (ssrc, mid), start, asked));
    }

    /// A subscription ended; a route nobody uses any more goes, and the publisher's
    /// shard is told when it was this shard's last subscriber. Returns the subscriber's
    /// stream, to say where it goes on.
    pub(super) fn remove_sub(&mut self, track: TrackId, slot: Slot) -> Option<Sub> {
        let route = self.routes.get_mut(&track)?;
        let i = route.subs.iter().position(|s| s.slot == slot)?;
        let sub = route.subs.remove(i);
        if route.is_unused() {
            self.routes.remove(&track);
            if track.shard() != self.id {
                self.out.control.push((
                    track.shard(),
                    Control::RemoveRemoteSubscriber {
                        track,
                        shard: self.id,
                    },
                ));
            }
        }
        Some(sub)
    }
}

/// Whether `peer`'s pacer holds video back now.
fn paced(peer: &super::peer::Peer) -> bool {
    peer.send.as_ref().is_some_and(|p| p.pacer.holds())
}

/// Whether the path to `peer` shows congestion now (its congestion control feedback).
fn congested(peer: &super::peer::Peer) -> bool {
    peer.send
        .as_ref()
        .and_then(|p| p.bwe.as_ref())
        .is_some_and(|b| b.congested())
}
