//! The sans-IO shard: every peer of one shard, their routing, forwarding and timers.
//!
//! It does no I/O and reads no clock. Datagrams, commands, forwarded media and the
//! time come in as arguments; datagrams to send, notices for signalling and messages
//! for other shards accumulate in [`Outbox`] for the I/O layer (or a test) to take.
//!
//! # The run loop's contract
//!
//! - In: [`ShardCore::handle_datagram`] (one datagram from the socket),
//!   [`ShardCore::handle_control`] (a command from signalling or another shard),
//!   [`ShardCore::handle_media`] (packets another shard forwards here) and
//!   [`ShardCore::handle_timeout`] (time has reached [`ShardCore::poll_timeout`]).
//! - Out: [`ShardCore::out`], emptied by the caller after each call: datagrams first
//!   (in the order produced), then notices and messages for other shards.
//! - Order inside a call: the input mutates one peer's `Rtc`, whose output is drained to
//!   its next timeout at once (str0m's rule); the events it emitted are handled after
//!   (forwarding, publishing, keyframe requests), and peers that failed are removed last.
//!
//! A panic while handling one peer drops that peer only. The pieces live beside this
//! file, one concern each: `lifecycle.rs` (peers arrive, are found, leave),
//! `negotiation.rs` (the server's offers and the client's answers), `forwarding.rs`
//! (published tracks, routes, fan-out), `feedback.rs` (keyframe requests),
//! `twcc.rs` (the guard in front of str0m's TWCC register).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use str0m::format::CodecConfig;
use str0m::net::{Protocol, Receive};
use str0m::rtp::Ssrc;
use str0m::{Event, IceConnectionState, Input, Output, Rtc, RtcError};

use super::lifecycle::{Liveness, peer_in};
use super::peer::Peer;
use super::route::Route;
use super::send::{self, NotSent};
use super::timers::{Slot, Timers};
use super::wallclock::ClockAnchor;
use crate::codecs::server_codecs;
use crate::media_check;
use crate::msg::{Control, MediaBatch, Notice, PeerId, ShardId, TrackId};
use crate::srtp::SrtpKeys;
use crate::stats::ShardStats;
use crate::stun;

/// Largest datagram accepted; anything larger is not WebRTC from a sane peer.
pub const MAX_DATAGRAM: usize = 1500;
pub(super) const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(500);

/// A datagram to send from the shard's socket.
#[derive(Debug)]
pub struct Datagram {
    /// Where to.
    pub to: SocketAddr,
    /// What.
    pub data: Vec<u8>,
}

/// What the shard produced since the I/O layer last emptied it.
#[derive(Default)]
pub struct Outbox {
    /// Datagrams for the UDP socket.
    pub transmits: Vec<Datagram>,
    /// Frames for ICE-TCP connections (RFC 4571), by the remote address of the connection.
    pub tcp_transmits: Vec<Datagram>,
    /// For signalling.
    pub notices: Vec<Notice>,
    /// For other shards.
    pub control: Vec<(ShardId, Control)>,
    /// Media for other shards, indexed by shard (empty: nothing to send).
    pub media: Vec<MediaBatch>,
    /// Buffers of datagrams already sent, for the next ones (the I/O layer gives them
    /// back with [`Outbox::recycle`]): the send path allocates none in steady state.
    pub spare: Vec<Vec<u8>>,
    /// A payload rewritten for one subscriber (its VP8 numbers after a simulcast
    /// switch) before it is encrypted: reused, never one per packet.
    pub(crate) scratch: Vec<u8>,
}

/// Sent buffers kept for reuse, at most: two sends' worth of a large fan-out.
const MAX_SPARE: usize = 2048;

impl Outbox {
    /// Gives back the buffer of a datagram that was sent.
    pub fn recycle(&mut self, data: Vec<u8>) {
        if self.spare.len() < MAX_SPARE {
            self.spare.push(data);
        }
    }

    /// A buffer of `len` bytes to write a datagram into, reused where one was given
    /// back. What a reused buffer held is left in place (the writer overwrites what it
    /// keeps): zeroing every byte of every datagram was 2% of a busy shard.
    pub(super) fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        if b.len() >= len {
            b.truncate(len);
        } else {
            b.resize(len, 0);
        }
        b
    }
}

/// One shard's state. See the module docs.
pub struct ShardCore {
    pub(super) id: ShardId,
    pub(super) local_addr: SocketAddr,
    /// The advertised address of the shard's ICE-TCP listener, when it has one.
    pub(super) local_tcp_addr: Option<SocketAddr>,
    pub(super) liveness: Liveness,
    pub(super) codecs: CodecConfig,
    /// The peer slab: a peer's key is its index; freed keys are reused.
    pub(super) peers: Vec<Option<Peer>>,
    pub(super) free: Vec<usize>,
    pub(super) by_id: HashMap<PeerId, usize>,
    pub(super) by_ufrag: HashMap<String, usize>,
    pub(super) by_addr: HashMap<SocketAddr, usize>,
    pub(super) routes: HashMap<TrackId, Route>,
    pub(super) timers: Timers,
    /// When peers' pacers may send what they hold (`pacer.rs`).
    pub(super) pacing: Timers,
    /// Keyframe requests held back by the per-track interval, and when they may go.
    pub(super) keyframe_waits: Vec<(Instant, TrackId, u8)>,
    /// Events drained from the peers, handled after the mutation that produced them.
    pub(super) events: VecDeque<(Slot, Event)>,
    /// Peers to remove, with the reason signalling is told.
    pub(super) doomed: Vec<(Slot, String)>,
    pub(super) next_track: u64,
    /// Scratch: the packets a NACK reports lost.
    pub(super) lost: Vec<(Ssrc, u16)>,
    next_housekeeping: Instant,
    /// When simulcast layers were last chosen (`layers.rs`).
    pub(super) last_allocation: Instant,
    pub(super) clock: ClockAnchor,
    /// Output for the I/O layer.
    pub out: Outbox,
    /// Counters, read by the I/O layer.
    pub stats: ShardStats,
    /// `Control::InjectSlowInput`: extra time taken over every datagram.
    #[cfg(feature = "fault-injection")]
    slow_input: std::time::Duration,
}

impl ShardCore {
    /// Shard `id` of an engine of `threads` (the shards, and the node port after them
    /// when there is one), whose socket is reached at `local_addr` (the address in the
    /// peers' ICE candidates).
    pub fn new(id: ShardId, threads: usize, local_addr: SocketAddr, now: Instant) -> Self {
        Self {
            id,
            local_addr,
            local_tcp_addr: None,
            liveness: Liveness::default(),
            codecs: server_codecs(),
            peers: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            routes: HashMap::new(),
            timers: Timers::default(),
            pacing: Timers::default(),
            keyframe_waits: Vec::new(),
            events: VecDeque::new(),
            doomed: Vec::new(),
            next_track: 1,
            lost: Vec::new(),
            next_housekeeping: now + HOUSEKEEPING_INTERVAL,
            last_allocation: now,
            clock: ClockAnchor::now(),
            out: Outbox {
                transmits: Vec::new(),
                tcp_transmits: Vec::new(),
                notices: Vec::new(),
                control: Vec::new(),
                media: (0..threads).map(|_| Vec::new()).collect(),
                spare: Vec::new(),
                scratch: Vec::new(),
            },
            #[cfg(feature = "fault-injection")]
            slow_input: std::time::Duration::ZERO,
            stats: ShardStats::default(),
        }
    }

    /// The shard also takes ICE over TCP, reached at `addr` (its passive candidate).
    pub fn set_tcp_addr(&mut self, addr: SocketAddr) {
        self.local_tcp_addr = Some(addr);
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

    /// A peer's SRTP keys, once its DTLS handshake is done.
    pub fn srtp_keys(&self, peer: PeerId) -> Option<SrtpKeys> {
        let key = *self.by_id.get(&peer)?;
        self.peers.get(key)?.as_ref()?.keys.get().cloned()
    }

    /// A peer's bandwidth estimator, once it has one.
    /// The peer's sending streams are set up without transport-wide congestion control
    /// feedback (it did not negotiate it): no estimate will come.
    pub(super) fn without_feedback(&self, peer: PeerId) -> bool {
        let Some(key) = self.by_id.get(&peer) else {
            return false;
        };
        let path = self.peers.get(*key).and_then(|p| p.as_ref()?.send.as_ref());
        path.is_some_and(|p| !p.streams.is_empty() && p.bwe.is_none())
    }

    fn bwe(&self, peer: PeerId) -> Option<&crate::bwe::Bwe> {
        let key = *self.by_id.get(&peer)?;
        self.peers.get(key)?.as_ref()?.send.as_ref()?.bwe.as_ref()
    }

    /// The bandwidth estimate of the path to a peer, bits per second, once its
    /// congestion control feedback has shown one (`crate::bwe`).
    pub fn bandwidth_estimate(&self, peer: PeerId) -> Option<u64> {
        self.bwe(peer)?.estimate()
    }

    /// What a peer received lately by its congestion control feedback, bits per second.
    pub fn acked_rate(&self, peer: PeerId) -> Option<u64> {
        self.bwe(peer)?.acked()
    }

    /// Whether the path to a peer shows congestion now (see [`crate::bwe::Bwe::congested`]).
    pub fn congested(&self, peer: PeerId) -> bool {
        self.bwe(peer).is_some_and(|b| b.congested())
    }

    /// Whether the path to a peer holds a queue now ([`crate::bwe::Bwe::queued`]).
    pub fn queued(&self, peer: PeerId) -> bool {
        self.bwe(peer).is_some_and(|b| b.queued())
    }

    /// The peers' bandwidth estimates, counted by band (`crate::bwe::BAND_BOUNDS_BPS`).
    pub fn estimate_bands(&self) -> crate::bwe::Bands {
        let mut bands = crate::bwe::Bands::default();
        let estimates = self
            .peers
            .iter()
            .flatten()
            .filter_map(|p| p.send.as_ref()?.bwe.as_ref()?.estimate());
        for e in estimates {
            crate::bwe::count_in_band(&mut bands, e);
        }
        bands
    }

    /// Remote addresses routed to a peer (at most `MAX_ADDRS` per peer): what a flood
    /// from unknown addresses must not grow.
    pub fn flow_count(&self) -> usize {
        self.by_addr.len()
    }

    /// When the shard next needs [`ShardCore::handle_timeout`].
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_housekeeping;
        for timer in [self.timers.next(), self.pacing.next()]
            .into_iter()
            .flatten()
        {
            t = t.min(timer);
        }
        for (at, _, _) in &self.keyframe_waits {
            t = t.min(*at);
        }
        t
    }

    /// A datagram arrived from `source` on the UDP socket.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.handle_input(now, Protocol::Udp, source, data);
    }

    /// A frame (RFC 4571) arrived on the ICE-TCP connection from `source`: the same as a
    /// datagram, on another transport.
    pub fn handle_tcp_frame(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.handle_input(now, Protocol::Tcp, source, data);
    }

    fn handle_input(&mut self, now: Instant, proto: Protocol, source: SocketAddr, data: &[u8]) {
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
        let destination = match proto {
            Protocol::Udp => self.local_addr,
            _ => match self.local_tcp_addr {
                Some(addr) => addr,
                None => return,
            },
        };
        let input = Input::Receive(
            now,
            Receive {
                proto,
                source,
                destination,
                contents,
            },
        );
        let replies = |out: &Outbox| match proto {
            Protocol::Udp => out.transmits.len(),
            _ => out.tcp_transmits.len(),
        };
        let mark = replies(&self.out);
        let Some(slot) = self.slot(key) else { return };
        if let Some(peer) = self.peers[key].as_mut() {
            peer.last_rx = now;
        }
        // A datagram str0m cannot use (a bad DTLS record, say) is the sender's problem,
        // not a reason to end the session: count it and go on. A session that really
        // broke ends through the liveness checks.
        // The subscriber's NACKs about the streams the engine sends it are answered
        // here, and its TWCC feedback read; str0m gets the compound too (keyframe
        // requests, reports).
        let mut lost = std::mem::take(&mut self.lost);
        if kind == stun::Demux::Rtp
            && !rtp
            && let Some(peer) = self.peers[key].as_mut()
        {
            self.stats.twcc_feedback += send::read_feedback(peer, now, data, &mut lost);
        }
        let mut rejected = None;
        self.mutate(now, slot, |rtc| {
            rejected = rtc.handle_input(input).err();
            Ok(())
        });
        self.answer_nacks(now, slot, &mut lost);
        self.lost = lost;
        if let Some(e) = rejected {
            self.stats.rx_rejected += 1;
            // Before the session connects, a refused datagram is most likely the
            // handshake failing: kept, so the connect timeout can say why.
            if let Some(peer) = self.peer_mut(slot).filter(|p| !p.connected) {
                tracing::debug!(peer = slot.peer.0, "refused during the handshake: {e}");
                peer.handshake_failure = Some(e.to_string());
            }
        }
        // A reply to this source means str0m accepted the STUN request (its integrity
        // held), so the address is this peer's from now on.
        let sent = match proto {
            Protocol::Udp => &self.out.transmits,
            _ => &self.out.tcp_transmits,
        };
        if learn && sent[mark..].iter().any(|d| d.to == source) {
            self.learn_addr(key, source);
        }
        if rtp {
            self.teach_twcc_guard(slot, data);
        }
        self.process_events(now);
    }

    /// A command from signalling or another shard.
    pub fn handle_control(&mut self, now: Instant, control: Control) {
        match control {
            Control::AddPeer {
                peer,
                rtc,
                ufrag,
                keys,
            } => self.add_peer(now, peer, *rtc, ufrag, keys),
            Control::RemovePeer { peer } => {
                if let Some(slot) = self.slot_of(peer) {
                    self.remove_peer(slot, None);
                }
            }
            Control::RequestPublish { peer, name } => self.request_publish(now, peer, name),
            Control::Unpublish { peer, track } => self.request_unpublish(now, peer, track),
            Control::Subscribe { peer, tracks } => self.request_subscribe(now, peer, tracks),
            Control::Unsubscribe { peer, tracks, gone } => {
                self.request_unsubscribe(now, peer, tracks, gone)
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
                layer,
                kind,
                urgent,
            } => self.request_keyframe(now, (track, layer), kind, urgent),
            Control::LayerDemand { track, shard, max } => {
                if let Some(route) = self.routes.get_mut(&track) {
                    route.demand.retain(|(s, _)| *s != shard);
                    if let Some(max) = max {
                        route.demand.push((shard, max));
                    }
                }
            }
            Control::SetMaxLayer { peer, track, max } => {
                if let Some(slot) = self.slot_of(peer) {
                    self.set_max_layer(track, slot, max);
                }
            }
            Control::SendData { peer, text } => self.send_data(now, peer, text),
            Control::Shutdown | Control::Node(_) => {}
            #[cfg(feature = "fault-injection")]
            Control::InjectPanic { peer } => {
                if let Some(slot) = self.slot_of(peer) {
                    self.mutate(now, slot, |_| panic!("injected fault in peer {}", peer.0));
                }
            }
            #[cfg(feature = "fault-injection")]
            Control::InjectSlowInput { per_datagram } => self.slow_input = per_datagram,
            // The thread's own faults, taken by the shard thread before the core.
            #[cfg(feature = "fault-injection")]
            Control::InjectStall { .. } | Control::InjectThreadPanic => {}
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
        self.pace(now);
        let mut more = false;
        while !more {
            let Some(slot) = self.next_due(now) else {
                break;
            };
            self.mutate(now, slot, |rtc| rtc.handle_input(Input::Timeout(now)));
            more = self.out.transmits.len() >= max_transmits;
        }
        self.send_due_keyframe_requests(now);
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING_INTERVAL;
            self.housekeeping(now);
            self.allocate_layers(now);
        }
        self.process_events(now);
        more
    }

    /// The next peer whose str0m timeout is due at `now`.
    fn next_due(&mut self, now: Instant) -> Option<Slot> {
        loop {
            let (at, slot) = self.timers.pop_due(now)?;
            let Some(peer) = peer_in(&mut self.peers, slot) else {
                continue;
            };
            if !Timers::claim(&mut peer.scheduled, at) {
                continue;
            }
            if peer.next_timeout > now {
                let next = peer.next_timeout;
                schedule(&mut self.timers, peer, slot, next);
                continue;
            }
            return Some(slot);
        }
    }

    /// Sends what the pacers due at `now` let leave.
    fn pace(&mut self, now: Instant) {
        while let Some((at, slot)) = self.pacing.pop_due(now) {
            let Some(peer) = peer_in(&mut self.peers, slot) else {
                continue;
            };
            let Some(path) = peer.send.as_mut() else {
                continue;
            };
            if !Timers::claim(&mut path.pacer.scheduled, at) {
                continue;
            }
            let out = &mut self.out;
            // Woken again only after it sent what it could: a pacer that cannot send
            // (never expected: it holds packets only for a peer with keys and an
            // address) would be due again at once, for ever.
            match catch_unwind(AssertUnwindSafe(|| send::pace(peer, out, now))) {
                Ok(Ok(())) => schedule_pacer(&mut self.pacing, peer, slot, now),
                Ok(Err(NotSent::NotReady | NotSent::OverBudget)) => {}
                Ok(Err(NotSent::Failed)) => self.doomed.push((slot, "SRTP failed".into())),
                Err(_) => {
                    self.stats.peer_panics += 1;
                    self.doomed.push((slot, "internal error".into()));
                }
            }
        }
    }

    /// Applies one mutation to a peer's `Rtc` and drains its output, catching a panic
    /// or an error so that only this peer is lost.
    pub(super) fn mutate(
        &mut self,
        now: Instant,
        slot: Slot,
        f: impl FnOnce(&mut Rtc) -> Result<(), RtcError>,
    ) {
        let Some(peer) = peer_in(&mut self.peers, slot) else {
            return;
        };
        let timers = &mut self.timers;
        let out = &mut self.out;
        let events = &mut self.events;
        let result = catch_unwind(AssertUnwindSafe(|| {
            f(&mut peer.rtc)?;
            drain(now, peer, slot, timers, out, events)
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

    /// Handles the events the last mutations emitted, then removes the peers that
    /// failed (which may emit more).
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
                    self.publish_track(now, slot, m.mid);
                }
            }
            Event::RtpPacket(packet) => self.on_rtp(now, slot, packet),
            Event::KeyframeRequest(req) => self.on_keyframe_request(now, slot, req.mid, req.kind),
            // The data channel (DTLS): the client is alive, whatever it carries.
            Event::ChannelOpen(id, _) => self.channel_opened(now, slot, id),
            Event::ChannelData(data) => self.channel_data(now, slot, data),
            Event::ChannelClose(id) => self.channel_closed(slot, id),
            _ => {}
        }
    }
}

/// Records a peer's next str0m timeout, pushing a heap entry only when it is earlier
/// than the one the peer already has.
pub(super) fn schedule(timers: &mut Timers, peer: &mut Peer, slot: Slot, at: Instant) {
    peer.next_timeout = at;
    timers.wake(&mut peer.scheduled, at, slot);
}

/// Wakes `peer`'s pacer when the oldest packet it holds may leave, pushing a heap entry
/// only when that is earlier than the one it has.
pub(super) fn schedule_pacer(pacing: &mut Timers, peer: &mut Peer, slot: Slot, now: Instant) {
    let Some(pacer) = peer.send.as_mut().map(|p| &mut p.pacer) else {
        return;
    };
    let Some(at) = pacer.next_departure(now) else {
        return;
    };
    pacing.wake(&mut pacer.scheduled, at, slot);
}

/// Drains a peer's output to its next timeout: datagrams to the outbox, events to the
/// queue, the timeout to the timer heap. Its datagrams say where its media goes, and
/// its sender reports for the streams the engine sends get their figures (`send.rs`).
fn drain(
    now: Instant,
    peer: &mut Peer,
    slot: Slot,
    timers: &mut Timers,
    out: &mut Outbox,
    events: &mut VecDeque<(Slot, Event)>,
) -> Result<(), RtcError> {
    loop {
        match peer.rtc.poll_output()? {
            Output::Timeout(at) => {
                schedule(timers, peer, slot, at);
                return Ok(());
            }
            Output::Transmit(t) => {
                let to = match t.proto {
                    Protocol::Udp => &mut out.transmits,
                    _ => &mut out.tcp_transmits,
                };
                let mut data: Vec<u8> = t.contents.into();
                send::note_destination(peer, t.proto, t.destination, &data);
                send::patch_reports(peer, now, &mut data);
                to.push(Datagram {
                    to: t.destination,
                    data,
                });
            }
            Output::Event(e) => events.push_back((slot, e)),
        }
    }
}
