//! The sans-IO shard: every peer of one shard, their routing, forwarding and timers.
//!
//! It does no I/O and reads no clock. Datagrams, commands, forwarded media and the
//! time come in as arguments; datagrams to send, notices for signalling and messages
//! for other shards accumulate in [`Outbox`] for the I/O layer (or a test) to take.
//!
//! Every mutation of a peer's `Rtc` is followed by draining its output to the next
//! timeout, as str0m requires. A panic while handling one peer drops that peer only.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use str0m::format::CodecConfig;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionValues, RtpPacket, RtpWrite};
use str0m::{Event, IceConnectionState, Input, Output, Rtc, RtcError};

use super::peer::{Change, InFlight, InTrack, MAX_ADDRS, OutTrack, Peer};
use super::route::{Origin, Route, Sub};
use super::timers::{Slot, Timers};
use super::wallclock::ClockAnchor;
use crate::codecs::{CodecDesc, PtMap, server_codecs};
use crate::media_check;
use crate::msg::{Control, Forwarded, MediaBatch, Notice, PeerId, ShardId, TrackId, TrackName};
use crate::stats::ShardStats;
use crate::stun;

/// Largest datagram accepted; anything larger is not WebRTC from a sane peer.
pub const MAX_DATAGRAM: usize = 1500;
/// At most one keyframe request per track per this interval reaches a publisher.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(1);
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(500);
/// How long a forwarded video packet stays in a subscriber's resend (RTX) cache to
/// answer its NACKs. str0m keeps 3 s; a resend is useful within a few round trips
/// (libwebrtc keeps max(1 s, 3 × RTT)), so 1.5 s answers every NACK of a link up to a
/// 500 ms RTT and holds half the packets: the cache is most of a subscriber's memory.
pub const RTX_WINDOW: Duration = Duration::from_millis(1500);
/// Packets a subscriber's video resend cache may hold (str0m's default): 1.5 s of a
/// 6 Mbit/s stream of 1200-byte packets.
const RTX_PACKETS: usize = 1000;
/// str0m's default: queued resends are dropped while they would pass 15% of a stream's
/// bytes, so a lossy link is not flooded with retransmissions.
const RTX_RATIO_CAP: Option<f32> = Some(0.15);

/// Timeouts that end a peer the client cannot end itself.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    /// ICE + DTLS must be up this long after the peer arrives.
    pub connect_timeout: Duration,
    /// A connected peer that sends nothing for this long is gone.
    pub idle_timeout: Duration,
    /// After str0m reports ICE consent lost, wait this long for it to come back.
    pub disconnect_grace: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            disconnect_grace: Duration::from_secs(10),
        }
    }
}

/// A datagram to send from the shard's socket.
#[derive(Debug)]
pub struct Datagram {
    /// Where to.
    pub to: SocketAddr,
    /// What.
    pub data: Vec<u8>,
}

/// What the shard produced since the I/O layer last emptied it.
pub struct Outbox {
    /// Datagrams for the socket.
    pub transmits: Vec<Datagram>,
    /// For signalling.
    pub notices: Vec<Notice>,
    /// For other shards.
    pub control: Vec<(ShardId, Control)>,
    /// Media for other shards, indexed by shard (empty: nothing to send).
    pub media: Vec<MediaBatch>,
}

/// One shard's state. See the module docs.
pub struct ShardCore {
    id: ShardId,
    local_addr: SocketAddr,
    liveness: Liveness,
    codecs: CodecConfig,
    peers: Vec<Option<Peer>>,
    free: Vec<usize>,
    by_id: HashMap<PeerId, usize>,
    by_ufrag: HashMap<String, usize>,
    by_addr: HashMap<SocketAddr, usize>,
    routes: HashMap<TrackId, Route>,
    timers: Timers,
    keyframe_waits: Vec<(Instant, TrackId)>,
    events: VecDeque<(Slot, Event)>,
    doomed: Vec<(Slot, String)>,
    next_track: u64,
    next_housekeeping: Instant,
    clock: ClockAnchor,
    /// Output for the I/O layer.
    pub out: Outbox,
    /// Counters, read by the I/O layer.
    pub stats: ShardStats,
    /// `Control::InjectSlowInput`: extra time taken over every datagram.
    #[cfg(feature = "fault-injection")]
    slow_input: std::time::Duration,
}

impl ShardCore {
    /// A shard `id` of `shards` whose socket is reached at `local_addr` (the address
    /// in the peers' ICE candidates).
    pub fn new(id: ShardId, shards: usize, local_addr: SocketAddr, now: Instant) -> Self {
        Self {
            id,
            local_addr,
            liveness: Liveness::default(),
            codecs: server_codecs(),
            peers: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            routes: HashMap::new(),
            timers: Timers::default(),
            keyframe_waits: Vec::new(),
            events: VecDeque::new(),
            doomed: Vec::new(),
            next_track: 1,
            next_housekeeping: now + HOUSEKEEPING_INTERVAL,
            clock: ClockAnchor::now(),
            out: Outbox {
                transmits: Vec::new(),
                notices: Vec::new(),
                control: Vec::new(),
                media: (0..shards).map(|_| Vec::new()).collect(),
            },
            #[cfg(feature = "fault-injection")]
            slow_input: std::time::Duration::ZERO,
            stats: ShardStats::default(),
        }
    }

    /// Replaces the liveness timeouts.
    pub fn set_liveness(&mut self, liveness: Liveness) {
        self.liveness = liveness;
    }

    /// This shard's index.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// Peers on this shard.
    pub fn peer_count(&self) -> usize {
        self.by_id.len()
    }

    /// Remote addresses routed to a peer (at most `MAX_ADDRS` per peer): what a flood
    /// from unknown addresses must not grow.
    pub fn flow_count(&self) -> usize {
        self.by_addr.len()
    }

    /// When the shard next needs [`ShardCore::handle_timeout`].
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_housekeeping;
        if let Some(timer) = self.timers.next() {
            t = t.min(timer);
        }
        for (at, _) in &self.keyframe_waits {
            t = t.min(*at);
        }
        t
    }

    /// A datagram arrived from `source`.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        #[cfg(feature = "fault-injection")]
        if !self.slow_input.is_zero() {
            std::thread::sleep(self.slow_input);
        }
        self.stats.rx_datagrams += 1;
        self.stats.rx_bytes += data.len() as u64;
        if data.len() > MAX_DATAGRAM {
            self.stats.rx_dropped += 1;
            return;
        }
        // STUN binding requests are routed by the ufrag they name, never by address:
        // a reused address cannot capture another peer's checks, and a peer that moves
        // (NAT rebinding, ICE restart) is found again. Everything else needs a known
        // 5-tuple.
        let kind = stun::demux(data);
        let by_ufrag = match kind {
            stun::Demux::Stun => self.key_for_stun(data),
            _ => None,
        };
        let (key, learn) = match (by_ufrag, self.by_addr.get(&source)) {
            (Some(key), _) => (key, true),
            (None, Some(&key)) => (key, false),
            (None, None) => {
                self.stats.rx_dropped += 1;
                return;
            }
        };
        // What can be checked without keys is checked before str0m: the framing of
        // SRTP/SRTCP, and STUN's FINGERPRINT (str0m checks only MESSAGE-INTEGRITY).
        let malformed = match kind {
            stun::Demux::Rtp => media_check::check_srtp(data).is_err(),
            stun::Demux::Stun => !stun::fingerprint_ok(data),
            _ => false,
        };
        if malformed {
            self.stats.rx_malformed += 1;
            return;
        }
        let rtp = kind == stun::Demux::Rtp && !media_check::is_rtcp(data);
        if rtp
            && let Some(peer) = self.peers[key].as_mut()
            && !peer.twcc_guard.admit(data)
        {
            self.stats.rx_twcc_guarded += 1;
            return;
        }
        let Ok(contents) = data.try_into() else {
            self.stats.rx_dropped += 1;
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local_addr,
                contents,
            },
        );
        let mark = self.out.transmits.len();
        let Some(slot) = self.slot(key) else { return };
        if let Some(peer) = self.peers[key].as_mut() {
            peer.last_rx = now;
        }
        // A datagram str0m cannot use (a bad DTLS record, say) is the sender's problem,
        // not a reason to end the session: count it and go on. A session that really
        // broke ends through the liveness checks.
        let mut rejected = false;
        self.mutate(slot, |rtc| {
            rejected = rtc.handle_input(input).is_err();
            Ok(())
        });
        if rejected {
            self.stats.rx_rejected += 1;
        }
        // A reply to this source means str0m accepted the STUN request (its integrity
        // held), so the address is this peer's from now on.
        if learn && self.out.transmits[mark..].iter().any(|d| d.to == source) {
            self.learn_addr(key, source);
        }
        if rtp {
            self.teach_twcc_guard(slot, data);
        }
        self.process_events(now);
    }

    /// A negotiation ended: tells the peer's TWCC guard which extension ids str0m's
    /// negotiated maps give to other extensions (`mid` and every media the shard knows).
    fn refresh_twcc_guard(&mut self, slot: Slot, mid: Option<Mid>) {
        let Some(peer) = peer_in(&mut self.peers, slot) else {
            return;
        };
        let mids = mid
            .into_iter()
            .chain(peer.published.iter().map(|t| t.mid))
            .chain(peer.receiving.iter().map(|t| t.mid))
            .chain(peer.in_flight.iter().map(|f| match f {
                InFlight::Publish { mid } | InFlight::Subscribe { mid, .. } => *mid,
            }));
        let rtc = &peer.rtc;
        let not_twcc = mids.filter_map(|mid| rtc.media(mid)).flat_map(|media| {
            media
                .remote_extmap()
                .iter()
                .filter(|(_, e)| **e != Extension::TransportSequenceNumber)
                .map(|(id, _)| id)
        });
        peer.twcc_guard.renegotiated(not_twcc);
    }

    /// Shows the peer's TWCC guard what str0m read from the RTP datagram it just took
    /// (the events it emitted for a packet with this datagram's SSRC and sequence number).
    fn teach_twcc_guard(&mut self, slot: Slot, data: &[u8]) {
        let Some(peer) = peer_in(&mut self.peers, slot) else {
            return;
        };
        // Once past the danger (for a browser, after its first 32768 packets at most)
        // the media path skips the guard entirely.
        if peer.twcc_guard.is_safe() {
            return;
        }
        let (Some(ssrc), Some(seq)) = (
            data.get(8..12)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            data.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]])),
        ) else {
            return;
        };
        for (from, event) in &self.events {
            let (true, Event::RtpPacket(p)) = (*from == slot, event) else {
                continue;
            };
            if let Some(tcc) = p.header.ext_vals.transport_cc {
                peer.twcc_guard.confirm(tcc);
            }
            if *p.header.ssrc == ssrc && p.header.sequence_number == seq {
                peer.twcc_guard.learn(data, p.header.ext_vals.transport_cc);
            }
        }
    }

    /// A command from signalling or another shard.
    pub fn handle_control(&mut self, now: Instant, control: Control) {
        match control {
            Control::AddPeer { peer, rtc, ufrag } => self.add_peer(now, peer, *rtc, ufrag),
            Control::RemovePeer { peer } => {
                if let Some(slot) = self.slot_of(peer) {
                    self.remove_peer(slot, None);
                }
            }
            Control::RequestPublish { peer, name } => self.queue(peer, Change::Publish(name)),
            Control::Unpublish { peer, track } => self.queue(peer, Change::Unpublish(track)),
            Control::Subscribe { peer, tracks } => {
                for s in tracks {
                    self.queue(peer, Change::Subscribe(s));
                }
            }
            Control::Unsubscribe { peer, tracks } => {
                for t in tracks {
                    self.queue(peer, Change::Unsubscribe(t));
                }
            }
            Control::Answer { peer, answer } => self.accept_answer(now, peer, answer),
            Control::AddRemoteSubscriber { track, shard } => {
                if let Some(route) = self.routes.get_mut(&track) {
                    route.add_remote(shard);
                }
            }
            Control::RemoveRemoteSubscriber { track, shard } => {
                if let Some(route) = self.routes.get_mut(&track) {
                    route.remove_remote(shard);
                }
            }
            Control::KeyframeRequest {
                track,
                kind,
                urgent,
            } => self.request_keyframe(now, track, kind, urgent),
            Control::Shutdown => {}
            #[cfg(feature = "fault-injection")]
            Control::InjectPanic { peer } => {
                if let Some(slot) = self.slot_of(peer) {
                    self.mutate(slot, |_| panic!("injected fault in peer {}", peer.0));
                }
            }
            #[cfg(feature = "fault-injection")]
            Control::InjectSlowInput { per_datagram } => self.slow_input = per_datagram,
        }
        self.process_events(now);
    }

    /// Packets another shard forwards to this shard's subscribers.
    pub fn handle_media(&mut self, now: Instant, batch: MediaBatch) {
        for fwd in batch {
            self.fan_out(now, &fwd);
        }
        self.process_events(now);
    }

    /// Time has reached `now`: drive the peers that are due, and housekeeping.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.handle_timeout_until(now, usize::MAX) {}
    }

    /// [`ShardCore::handle_timeout`] in parts: stops driving due peers once the outbox
    /// holds `max_transmits` datagrams, so the caller can send them before the rest of a
    /// large fan-out is encrypted (the first subscribers of 60 need not wait for the
    /// last). Returns whether due peers remain; call again (after sending) until not.
    pub fn handle_timeout_until(&mut self, now: Instant, max_transmits: usize) -> bool {
        let mut more = false;
        while !more {
            // Subscribers a packet was written to first, then str0m's own timeouts.
            let slot = if let Some(slot) = self.timers.pop_woken(now) {
                let Some(peer) = peer_in(&mut self.peers, slot) else {
                    continue;
                };
                peer.woken = false;
                slot
            } else if let Some((at, slot)) = self.timers.pop_due(now) {
                let Some(peer) = peer_in(&mut self.peers, slot) else {
                    continue;
                };
                if peer.scheduled != Some(at) {
                    continue; // superseded by an earlier wake-up
                }
                peer.scheduled = None;
                if peer.next_timeout > now {
                    let next = peer.next_timeout;
                    Self::schedule(&mut self.timers, peer, slot, next);
                    continue;
                }
                slot
            } else {
                break;
            };
            self.mutate(slot, |rtc| rtc.handle_input(Input::Timeout(now)));
            more = self.out.transmits.len() >= max_transmits;
        }
        let mut i = 0;
        while i < self.keyframe_waits.len() {
            if self.keyframe_waits[i].0 <= now {
                let (_, track) = self.keyframe_waits.swap_remove(i);
                self.send_pending_keyframe_request(now, track);
            } else {
                i += 1;
            }
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING_INTERVAL;
            self.housekeeping(now);
        }
        self.process_events(now);
        more
    }

    // ---- peers ----

    fn add_peer(&mut self, now: Instant, id: PeerId, rtc: Rtc, ufrag: String) {
        if self.by_id.contains_key(&id) {
            return;
        }
        let pt_map = PtMap::new(&self.codecs, rtc.codec_config());
        let peer = Peer::new(id, rtc, ufrag.clone(), pt_map, now);
        let key = match self.free.pop() {
            Some(key) => {
                self.peers[key] = Some(peer);
                key
            }
            None => {
                self.peers.push(Some(peer));
                self.peers.len() - 1
            }
        };
        self.by_id.insert(id, key);
        self.by_ufrag.insert(ufrag, key);
        // Accepting the offer was a mutation off this thread; drain it here.
        self.mutate(Slot { key, peer: id }, |_| Ok(()));
    }

    fn remove_peer(&mut self, slot: Slot, reason: Option<String>) {
        if self.peer_mut(slot).is_none() {
            return;
        }
        let Some(peer) = self.peers[slot.key].take() else {
            return;
        };
        self.free.push(slot.key);
        self.by_id.remove(&peer.id);
        self.by_ufrag.remove(&peer.ufrag);
        for addr in &peer.addrs {
            self.by_addr.remove(addr);
        }
        for t in &peer.published {
            self.routes.remove(&t.track);
            self.out.notices.push(Notice::TrackUnpublished {
                peer: peer.id,
                track: t.track,
            });
        }
        for o in peer.receiving.iter().filter(|o| o.active) {
            self.remove_sub(o.track, slot);
        }
        if let Some(reason) = reason {
            self.out.notices.push(Notice::PeerGone {
                peer: peer.id,
                reason,
            });
        }
    }

    fn key_for_stun(&self, data: &[u8]) -> Option<usize> {
        let ufrag = stun::local_ufrag(data)?;
        let ufrag = std::str::from_utf8(ufrag).ok()?;
        self.by_ufrag.get(ufrag).copied()
    }

    fn learn_addr(&mut self, key: usize, addr: SocketAddr) {
        let Some(peer) = self.peers[key].as_mut() else {
            return;
        };
        if peer.addrs.contains(&addr) {
            return;
        }
        if peer.addrs.len() >= MAX_ADDRS {
            let old = peer.addrs.remove(0);
            self.by_addr.remove(&old);
        }
        peer.addrs.push(addr);
        if let Some(previous) = self.by_addr.insert(addr, key)
            && previous != key
            && let Some(p) = self.peers[previous].as_mut()
        {
            p.addrs.retain(|a| *a != addr);
        }
    }

    fn slot(&self, key: usize) -> Option<Slot> {
        let peer = self.peers.get(key)?.as_ref()?;
        Some(Slot { key, peer: peer.id })
    }

    fn slot_of(&self, id: PeerId) -> Option<Slot> {
        let key = *self.by_id.get(&id)?;
        Some(Slot { key, peer: id })
    }

    fn peer_mut(&mut self, slot: Slot) -> Option<&mut Peer> {
        peer_in(&mut self.peers, slot)
    }

    fn schedule(timers: &mut Timers, peer: &mut Peer, slot: Slot, at: Instant) {
        peer.next_timeout = at;
        if peer.scheduled.is_none_or(|s| at < s) {
            timers.push(at, slot);
            peer.scheduled = Some(at);
        }
    }

    /// Applies one mutation to a peer's `Rtc` and drains its output, catching a panic
    /// or an error so that only this peer is lost.
    fn mutate(&mut self, slot: Slot, f: impl FnOnce(&mut Rtc) -> Result<(), RtcError>) {
        let Some(peer) = self.peers.get_mut(slot.key).and_then(|p| p.as_mut()) else {
            return;
        };
        if peer.id != slot.peer {
            return;
        }
        let timers = &mut self.timers;
        let out = &mut self.out;
        let events = &mut self.events;
        let result = catch_unwind(AssertUnwindSafe(|| {
            f(&mut peer.rtc)?;
            drain(peer, slot, timers, out, events)
        }));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self
                .doomed
                .push((slot, format!("media session error: {e}"))),
            Err(_) => {
                self.stats.peer_panics += 1;
                tracing::error!(peer = slot.peer.0, "panic while handling peer; dropping it");
                self.doomed.push((slot, "internal error".into()));
            }
        }
    }

    fn process_events(&mut self, now: Instant) {
        loop {
            while let Some((slot, event)) = self.events.pop_front() {
                self.handle_event(now, slot, event);
            }
            if self.doomed.is_empty() {
                break;
            }
            for (slot, reason) in std::mem::take(&mut self.doomed) {
                self.remove_peer(slot, Some(reason));
            }
        }
    }

    fn handle_event(&mut self, now: Instant, slot: Slot, event: Event) {
        match event {
            Event::Connected => {
                if let Some(peer) = self.peer_mut(slot) {
                    peer.connected = true;
                    self.out.notices.push(Notice::Connected { peer: slot.peer });
                }
            }
            Event::IceConnectionStateChange(state) => {
                if let Some(peer) = self.peer_mut(slot) {
                    if state == IceConnectionState::Disconnected {
                        peer.disconnected_since.get_or_insert(now);
                    } else {
                        peer.disconnected_since = None;
                    }
                }
            }
            Event::MediaAdded(m) => {
                self.refresh_twcc_guard(slot, Some(m.mid));
                if m.direction.is_receiving() {
                    self.publish_track(slot, m.mid);
                }
            }
            Event::RtpPacket(packet) => self.on_rtp(now, slot, packet),
            Event::KeyframeRequest(req) => {
                let Some(peer) = self.peer_mut(slot) else {
                    return;
                };
                let Some(out) = peer.receiving.iter().find(|o| o.mid == req.mid && o.active) else {
                    return;
                };
                let track = out.track;
                self.request_keyframe(now, track, req.kind, false);
            }
            _ => {}
        }
    }

    // ---- publishing and forwarding ----

    fn publish_track(&mut self, slot: Slot, mid: Mid) {
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
        let name = TrackName {
            stream_id: media.stream_id().to_string(),
            track_id: media.track_id().to_string(),
            kind,
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
        peer.published.push(InTrack { mid, track });
        self.next_track += 1;
        self.routes.insert(
            track,
            Route::new(
                kind,
                Some(Origin {
                    slot,
                    mid,
                    last_keyframe_request: None,
                    keyframe_pending: false,
                }),
            ),
        );
        self.out.notices.push(Notice::TrackPublished {
            peer: slot.peer,
            track,
            name,
            codec,
        });
    }

    fn on_rtp(&mut self, now: Instant, slot: Slot, packet: RtpPacket) {
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
        let Some(i) = peer.track_of_ssrc(packet.header.ssrc) else {
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
    fn fan_out(&mut self, now: Instant, fwd: &Forwarded) {
        let Some(route) = self.routes.get_mut(&fwd.track) else {
            return;
        };
        for (shard, _) in &route.remote {
            self.out.media[*shard].push(fwd.clone());
        }
        let video = route.kind == MediaKind::Video;
        for sub in &mut route.subs {
            let Some(peer) = self
                .peers
                .get_mut(sub.slot.key)
                .and_then(|p| p.as_mut())
                .filter(|p| p.id == sub.slot.peer)
            else {
                continue;
            };
            let Some(pt) = peer.pt_map.pt(fwd.codec) else {
                self.stats.rtp_no_codec += 1;
                continue;
            };
            let delta = *sub.seq_delta.get_or_insert(1 - fwd.seq as i64);
            let seq = fwd.seq as i64 + delta;
            if seq < 1 {
                continue; // older than the first packet this subscriber got
            }
            let ext = ExtensionValues {
                audio_level: fwd.audio_level,
                voice_activity: fwd.voice_activity,
                ..Default::default()
            };
            let write = RtpWrite::new(
                pt,
                (seq as u64).into(),
                fwd.time,
                fwd.wallclock,
                fwd.payload.clone(),
            )
            .marker(fwd.marker)
            .nackable(video)
            .ext_vals(ext);
            let slot = sub.slot;
            let ssrc = sub.ssrc;
            let result = catch_unwind(AssertUnwindSafe(|| {
                if let Some(tx) = peer.rtc.direct_api().stream_tx(&ssrc) {
                    tx.write_rtp(write);
                }
            }));
            match result {
                Ok(()) => {
                    self.stats.rtp_forwarded += 1;
                    // str0m releases the packet at the subscriber's next timeout round.
                    if !peer.woken {
                        peer.woken = true;
                        self.timers.wake(now, slot);
                    }
                }
                Err(_) => {
                    self.stats.peer_panics += 1;
                    self.doomed.push((slot, "internal error".into()));
                }
            }
        }
    }

    fn request_keyframe(
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
        self.mutate(slot, |rtc| {
            if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_keyframe(kind);
            }
            Ok(())
        });
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

    // ---- negotiation ----

    fn queue(&mut self, id: PeerId, change: Change) {
        let Some(slot) = self.slot_of(id) else {
            self.out.notices.push(Notice::UnknownPeer { peer: id });
            return;
        };
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        match &change {
            Change::Subscribe(s) if peer.is_receiving(s.track) => return,
            Change::Unsubscribe(t) => {
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
        self.negotiate(slot);
    }

    /// Makes the next offer, if none is outstanding and changes are waiting.
    fn negotiate(&mut self, slot: Slot) {
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
            published,
            ssrc_tracks,
            ..
        } = peer;
        let mut api = rtc.sdp_api();
        for change in changes {
            match change {
                Change::Publish(name) => {
                    let mid = api.add_media(
                        name.kind,
                        Direction::RecvOnly,
                        Some(name.stream_id),
                        Some(name.track_id),
                        None,
                    );
                    in_flight.push(InFlight::Publish { mid });
                }
                Change::Subscribe(s) => {
                    if receiving.iter().any(|o| o.track == s.track) {
                        continue;
                    }
                    let mid = api.add_media(
                        s.name.kind,
                        Direction::SendOnly,
                        Some(s.name.stream_id),
                        Some(s.name.track_id),
                        None,
                    );
                    receiving.push(OutTrack {
                        track: s.track,
                        mid,
                        active: false,
                    });
                    in_flight.push(InFlight::Subscribe {
                        track: s.track,
                        mid,
                    });
                }
                Change::Unsubscribe(track) => {
                    if let Some(i) = receiving.iter().position(|o| o.track == track) {
                        let o = receiving.remove(i);
                        api.stop_media(o.mid);
                        unsubscribed.push((track, o.active));
                    }
                }
                Change::Unpublish(track) => {
                    if let Some(i) = published.iter().position(|t| t.track == track) {
                        let t = published.remove(i);
                        api.stop_media(t.mid);
                        ssrc_tracks.clear();
                        unpublished.push(track);
                    }
                }
            }
        }
        if api.has_changes() {
            if let Some((offer, pending)) = api.apply() {
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
        self.mutate(slot, |_| Ok(()));
        for (track, active) in &unsubscribed {
            if *active {
                self.remove_sub(*track, slot);
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

    fn accept_answer(&mut self, now: Instant, id: PeerId, answer: str0m::change::SdpAnswer) {
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
        self.mutate(slot, |rtc| {
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
                    self.publish_track(slot, mid);
                    continue;
                }
                InFlight::Subscribe { track, mid } => (track, mid),
            };
            let Some(peer) = self.peer_mut(slot) else {
                return;
            };
            let ssrc = peer.rtc.direct_api().stream_tx_by_mid(mid, None).map(|s| {
                // A new subscription: its cache is empty (or the last subscription's
                // on this m-line, whose packets must not be resent), so replacing it
                // loses nothing.
                s.set_rtx_cache(RTX_PACKETS, RTX_WINDOW, RTX_RATIO_CAP);
                s.ssrc()
            });
            let Some(out) = peer.receiving.iter_mut().find(|o| o.mid == mid) else {
                continue;
            };
            let (Some(ssrc), Some(kind)) = (ssrc, peer.rtc.media(mid).map(|m| m.kind())) else {
                // The client rejected the m-line.
                peer.receiving.retain(|o| o.mid != mid);
                refused.push(track);
                continue;
            };
            out.active = true;
            self.add_sub(track, kind, slot, ssrc);
            activated.push(track);
        }
        if !activated.is_empty() {
            for &track in &activated {
                self.request_keyframe(now, track, KeyframeRequestKind::Pli, true);
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
        self.negotiate(slot);
    }

    fn add_sub(&mut self, track: TrackId, kind: MediaKind, slot: Slot, ssrc: str0m::rtp::Ssrc) {
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
            Route::new(kind, None)
        });
        route.subs.push(Sub {
            slot,
            ssrc,
            seq_delta: None,
        });
    }

    fn remove_sub(&mut self, track: TrackId, slot: Slot) {
        let Some(route) = self.routes.get_mut(&track) else {
            return;
        };
        route.subs.retain(|s| s.slot != slot);
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
    }

    fn housekeeping(&mut self, now: Instant) {
        let l = self.liveness;
        for (key, peer) in self.peers.iter().enumerate() {
            let Some(peer) = peer else { continue };
            let reason = if !peer.rtc.is_alive() {
                Some("media session closed")
            } else if !peer.connected && now > peer.created + l.connect_timeout {
                Some("ICE/DTLS did not connect in time")
            } else if peer.connected && now > peer.last_rx + l.idle_timeout {
                Some("no packets from the peer for too long")
            } else if peer
                .disconnected_since
                .is_some_and(|t| now > t + l.disconnect_grace)
            {
                Some("ICE consent lost")
            } else {
                None
            };
            if let Some(reason) = reason {
                let slot = Slot { key, peer: peer.id };
                self.doomed.push((slot, reason.into()));
            }
        }
    }
}

/// The peer in `slot`, if it is still the same peer.
fn peer_in(peers: &mut [Option<Peer>], slot: Slot) -> Option<&mut Peer> {
    peers
        .get_mut(slot.key)?
        .as_mut()
        .filter(|p| p.id == slot.peer)
}

/// Drains a peer's output to its next timeout: datagrams to the outbox, events to the
/// queue, the timeout to the timer heap.
fn drain(
    peer: &mut Peer,
    slot: Slot,
    timers: &mut Timers,
    out: &mut Outbox,
    events: &mut VecDeque<(Slot, Event)>,
) -> Result<(), RtcError> {
    loop {
        match peer.rtc.poll_output()? {
            Output::Timeout(at) => {
                ShardCore::schedule(timers, peer, slot, at);
                return Ok(());
            }
            Output::Transmit(t) => out.transmits.push(Datagram {
                to: t.destination,
                data: t.contents.into(),
            }),
            Output::Event(e) => events.push_back((slot, e)),
        }
    }
}
