//! The engine's own send path for forwarded media: str0m negotiates, connects and
//! keeps the RTCP of every session, but the RTP a subscriber receives never goes
//! through str0m. Each forwarded packet gets its header written for that subscriber
//! (SSRC, payload type, sequence number, timestamp, the extensions it negotiated) and
//! is SRTP-protected with the session's own keys (`dtls_tap`) straight into the
//! datagram that goes to the socket.
//!
//! With that, the engine owns the duties str0m had for those streams:
//! - NACKs: the subscriber's SRTCP is read here too (str0m still gets every packet, for
//!   keyframe requests and reports); each lost packet is resent from the track's
//!   shared [`History`](super::history::History), as RTX where the subscriber
//!   negotiated it.
//! - Congestion control: every packet carries a transport-wide sequence number where
//!   the peer negotiated one; its TWCC feedback feeds the peer's bandwidth estimate
//!   ([`crate::bwe`]).
//! - Sender reports: str0m writes them for every stream it declared, but never saw
//!   these streams' packets; the engine rewrites their RTP time and counts in str0m's
//!   outgoing SRTCP (decrypted and protected again under the same SRTCP index, so no
//!   index is used twice).
//! - Pacing: video leaves at most at 1.5 times what the path has shown it carries (the
//!   estimate, or the rate the peer received where that is more); a burst over it (a
//!   keyframe) waits in the peer's [`Pacer`] and leaves when the shard wakes it.
//!
//! One owner per SSRC: str0m never sends RTP on these streams (nothing is written to
//! them) and the engine never sends RTCP of its own.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Rtc;
use str0m::media::Mid;
use str0m::net::Protocol;
use str0m::rtp::{Extension, Ssrc};

use super::core::{Datagram, Outbox, ShardCore};
use super::lifecycle::peer_in;
use super::pacer::Pacer;
use super::peer::Peer;
use super::timers::Slot;
use crate::bwe::Bwe;
use crate::dtls_tap;
use crate::msg::{Forwarded, TrackId};
use crate::rtcp::{self, SenderInfo};
use crate::rtp_header;
use crate::srtp::{MAX_RTP_OVERHEAD, OUTPUT_SLACK, Srtp};
use crate::vp8::Offsets;

/// Whether the server's codec `codec` is VP8 (whose payload descriptor numbers are kept
/// continuous across simulcast switches).
pub(crate) fn is_vp8(codecs: &str0m::format::CodecConfig, codec: crate::codecs::CodecIdx) -> bool {
    codecs
        .params()
        .get(usize::from(codec))
        .is_some_and(|p| p.spec().codec == str0m::format::Codec::Vp8)
}

const MAX_HEADER: usize = rtp_header::MAX_LEN;

/// One peer's send side: its SRTP contexts, where its media goes, its streams.
pub(crate) struct SendPath {
    /// Protects what the server sends this peer (and reads back str0m's SRTCP to it).
    srtp: Srtp,
    /// Reads what the peer sends (its SRTCP: NACKs).
    inbound: Srtp,
    pub(crate) streams: Vec<SentStream>,
    /// The peer's bandwidth estimate, once a stream negotiated transport-wide
    /// sequence numbers.
    pub(crate) bwe: Option<Bwe>,
    /// Video that waits to leave at a pace the estimate sets (`pacer.rs`).
    pub(crate) pacer: Pacer<Held>,
}

/// A forwarded packet the pacer holds: what [`send`] was to send, to send it as it would
/// have (its header and transport-wide sequence number are written when it leaves).
pub(crate) struct Held {
    stream: usize,
    ssrc: Ssrc,
    header: Header,
    fwd: Forwarded,
    vp8: Option<Offsets>,
}

/// The bytes the pacer counts for a packet: its payload and about what the headers, the
/// cipher's tag and IP and UDP add.
fn paced_size(fwd: &Forwarded) -> usize {
    fwd.payload.len() + 60
}

/// One stream the engine sends a peer (an m-line's SSRC), whatever track it carries.
pub(crate) struct SentStream {
    pub(crate) ssrc: Ssrc,
    /// The track it carries now.
    pub(crate) track: TrackId,
    /// For its sender reports: the RTP time and capture time of the last packet sent,
    /// and the clock rate.
    last_time: u32,
    last_wallclock: Instant,
    clock_rate: u32,
    packets: u32,
    octets: u32,
    /// The repair stream (RTX) and the index of its next packet.
    rtx: Option<(Ssrc, u64)>,
    /// How much of it may be resent: see [`ResendBudget`].
    budget: ResendBudget,
    /// Header extension ids the peer negotiated on this m-line.
    mid_ext: Option<(u8, Mid)>,
    audio_level_ext: Option<u8>,
    twcc_ext: Option<u8>,
}

/// Resends of one stream, at most half as many as it sent in the last second (and
/// [`MIN_RESENDS`] a second whatever it sent): a real receiver on a link losing 20% asks
/// for far less, and a peer that NACKs the same packets over and over (each NACK costs
/// it 16 bytes and the server a kilobyte or more per packet named) gets no more.
struct ResendBudget {
    window: Instant,
    sent: u32,
    resent: u32,
    allowed: u32,
}

/// Resends a second a stream may always have, however little it sent.
const MIN_RESENDS: u32 = 30;

impl ResendBudget {
    fn new(now: Instant) -> Self {
        Self {
            window: now,
            sent: 0,
            resent: 0,
            allowed: MIN_RESENDS,
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.window) >= std::time::Duration::from_secs(1) {
            self.allowed = (self.sent / 2).max(MIN_RESENDS);
            (self.window, self.sent, self.resent) = (now, 0, 0);
        }
    }

    fn sent(&mut self, now: Instant) {
        self.roll(now);
        self.sent += 1;
    }

    /// Takes one resend from the budget, if it has one.
    fn take(&mut self, now: Instant) -> bool {
        self.roll(now);
        let ok = self.resent < self.allowed;
        self.resent += u32::from(ok);
        ok
    }
}

/// What the header of one packet to a subscriber says.
#[derive(Clone, Copy)]
pub(crate) struct Header {
    pub(crate) pt: u8,
    pub(crate) seq: u64,
    pub(crate) time: u32,
    pub(crate) marker: bool,
}

impl SendPath {
    /// The send side of a peer whose keys are known.
    fn new(peer: &Peer, now: Instant) -> Option<Self> {
        let keys = peer.keys.get()?;
        let crypto = dtls_tap::provider();
        let srtp = Srtp::new(&crypto, keys, true).ok()?;
        let inbound = Srtp::new(&crypto, keys, false).ok()?;
        Some(Self {
            srtp,
            inbound,
            streams: Vec::new(),
            bwe: None,
            pacer: Pacer::new(now),
        })
    }
}

/// Makes the peer's send side once its DTLS handshake has given the keys.
fn send_path(peer: &mut Peer, now: Instant) {
    if peer.send.is_none() {
        peer.send = SendPath::new(peer, now);
    }
}

/// Where the stream `ssrc` of `peer` is in its streams, now carrying `track` (set up
/// at its first packet). `hint` is where the caller found it last time (a peer's
/// streams are never removed), so a packet costs no search.
#[allow(clippy::too_many_arguments)]
fn stream(
    path: &mut SendPath,
    rtc: &mut Rtc,
    ssrc: Ssrc,
    mid: Mid,
    track: TrackId,
    clock_rate: u32,
    now: Instant,
    hint: &mut Option<usize>,
) -> usize {
    if let Some(i) = *hint
        && path.streams.get(i).is_some_and(|s| s.ssrc == ssrc)
    {
        let s = &mut path.streams[i];
        s.track = track;
        s.clock_rate = clock_rate;
        return i;
    }
    let i = match path.streams.iter().position(|s| s.ssrc == ssrc) {
        Some(i) => i,
        None => {
            let rtx = rtc
                .direct_api()
                .stream_tx(&ssrc)
                .and_then(|s| s.rtx())
                .map(|r| (r, 1));
            let exts = rtc.media(mid).map(|m| m.remote_extmap());
            let mid_ext = exts
                .and_then(|e| e.id_of(Extension::RtpMid))
                .map(|id| (id, mid));
            let audio_level_ext = exts.and_then(|e| e.id_of(Extension::AudioLevel));
            let twcc_ext = exts.and_then(|e| e.id_of(Extension::TransportSequenceNumber));
            if twcc_ext.is_some() && path.bwe.is_none() {
                path.bwe = Some(Bwe::new(now));
            }
            path.streams.push(SentStream {
                ssrc,
                track,
                last_time: 0,
                last_wallclock: now,
                clock_rate,
                packets: 0,
                octets: 0,
                rtx,
                budget: ResendBudget::new(now),
                mid_ext,
                audio_level_ext,
                twcc_ext,
            });
            path.streams.len() - 1
        }
    };
    *hint = Some(i);
    let s = &mut path.streams[i];
    s.track = track;
    s.clock_rate = clock_rate;
    i
}

/// Writes an RTP header for `stream` into `buf`; returns its length. The packet takes
/// the peer's next transport-wide sequence number where the stream has the extension.
fn write_header(
    buf: &mut [u8],
    stream: &SentStream,
    bwe: Option<&mut Bwe>,
    now: Instant,
    ssrc: Ssrc,
    h: &Header,
    fwd: &Forwarded,
) -> usize {
    let audio_level = stream
        .audio_level_ext
        .zip(fwd.audio_level)
        .map(|(id, level)| (id, level, fwd.voice_activity == Some(true)));
    let fields = rtp_header::Fields {
        pt: h.pt,
        seq: h.seq,
        time: h.time,
        marker: h.marker,
        ssrc: *ssrc,
        mid: stream
            .mid_ext
            .as_ref()
            .map(|(id, mid)| (*id, mid.as_bytes())),
        audio_level,
        transport_seq: None,
    };
    let Some((id, bwe)) = stream.twcc_ext.zip(bwe) else {
        return rtp_header::write(buf, &fields);
    };
    let fields = rtp_header::Fields {
        transport_seq: Some((id, bwe.next_seq())),
        ..fields
    };
    let len = rtp_header::write(buf, &fields);
    // The size the estimate counts: the datagram, with the cipher's tag at most.
    bwe.sent(now, len + fwd.payload.len() + MAX_RTP_OVERHEAD);
    len
}

/// Where str0m sends this peer's media now: the destination of its last datagram that
/// was not STUN (DTLS and SRTCP go to the selected candidate pair).
pub(crate) fn note_destination(peer: &mut Peer, proto: Protocol, to: SocketAddr, data: &[u8]) {
    if data.first().is_some_and(|b| *b > 3) {
        peer.media_to = Some((proto, to));
    }
}

/// Everything one forwarded packet needs to go to one subscriber.
pub(crate) struct Send<'a> {
    pub(crate) ssrc: Ssrc,
    pub(crate) mid: Mid,
    pub(crate) header: Header,
    pub(crate) clock_rate: u32,
    pub(crate) fwd: &'a Forwarded,
    /// Where the subscriber's stream was found in the peer's last time.
    pub(crate) hint: &'a mut Option<usize>,
    /// How this subscriber's VP8 numbers differ from the layer's (after a switch).
    pub(crate) vp8: Option<Offsets>,
    /// Audio never waits in the pacer.
    pub(crate) audio: bool,
}

/// How a packet that was not refused went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Into the outbox.
    Now,
    /// Into the peer's pacer: the shard is to wake it ([`Pacer::next_departure`]).
    Paced,
}

/// The payload as `vp8` rewrites it for one subscriber, in `scratch` (or as it is).
fn patched<'a>(payload: &'a [u8], vp8: Option<Offsets>, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let Some(offsets) = vp8.filter(|o| *o != Offsets::default()) else {
        return payload;
    };
    scratch.clear();
    scratch.extend_from_slice(payload);
    if offsets.apply(scratch) {
        scratch
    } else {
        payload
    }
}

/// Why a packet was not sent.
pub(crate) enum NotSent {
    /// The session has no keys or no address yet (DTLS is not done).
    NotReady,
    /// The cipher refused (never expected).
    Failed,
    /// The stream's resend budget is spent.
    OverBudget,
}

/// Sends one forwarded packet to `peer` (counted in its sender reports when it leaves),
/// or holds it in the peer's pacer.
pub(crate) fn send(
    peer: &mut Peer,
    out: &mut Outbox,
    now: Instant,
    s: Send<'_>,
) -> Result<Sent, NotSent> {
    let Some(to) = peer.media_to else {
        return Err(NotSent::NotReady);
    };
    send_path(peer, now);
    let (Some(path), rtc) = (peer.send.as_mut(), &mut peer.rtc) else {
        return Err(NotSent::NotReady);
    };
    let i = stream(
        path,
        rtc,
        s.ssrc,
        s.mid,
        s.fwd.track,
        s.clock_rate,
        now,
        s.hint,
    );
    let bytes = paced_size(s.fwd);
    if s.audio {
        path.pacer.charge(now, bytes);
    } else if !path.pacer.admit(now, bytes) {
        let held = Held {
            stream: i,
            ssrc: s.ssrc,
            header: s.header,
            fwd: s.fwd.clone(),
            vp8: s.vp8,
        };
        path.pacer.hold(now, held, bytes);
        return Ok(Sent::Paced);
    }
    transmit(path, out, now, to, (i, s.ssrc, &s.header, s.fwd, s.vp8))?;
    Ok(Sent::Now)
}

/// Sends what `peer`'s pacer lets leave at `now`.
pub(crate) fn pace(peer: &mut Peer, out: &mut Outbox, now: Instant) -> Result<(), NotSent> {
    let (Some(to), Some(path)) = (peer.media_to, peer.send.as_mut()) else {
        return Err(NotSent::NotReady);
    };
    while let Some(h) = path.pacer.pop(now) {
        transmit(
            path,
            out,
            now,
            to,
            (h.stream, h.ssrc, &h.header, &h.fwd, h.vp8),
        )?;
    }
    Ok(())
}

/// Writes a packet of the stream `i` (its header, the payload as `vp8` rewrites it),
/// protects it and puts it in the outbox, counted in the stream's sender reports.
fn transmit(
    path: &mut SendPath,
    out: &mut Outbox,
    now: Instant,
    (proto, to): (Protocol, SocketAddr),
    (i, ssrc, header, fwd, vp8): (usize, Ssrc, &Header, &Forwarded, Option<Offsets>),
) -> Result<(), NotSent> {
    let stream = &mut path.streams[i];
    let mut buf = out.buffer(MAX_HEADER + fwd.payload.len() + MAX_RTP_OVERHEAD + OUTPUT_SLACK);
    let mut head = [0u8; MAX_HEADER];
    let hlen = write_header(&mut head, stream, path.bwe.as_mut(), now, ssrc, header, fwd);
    stream.last_time = header.time;
    stream.last_wallclock = fwd.wallclock;
    stream.packets = stream.packets.wrapping_add(1);
    stream.octets = stream.octets.wrapping_add(fwd.payload.len() as u32);
    stream.budget.sent(now);
    let payload = patched(&fwd.payload, vp8, &mut out.scratch);
    let n = path
        .srtp
        .protect_rtp_into(&head[..hlen], payload, *ssrc, header.seq, &mut buf)
        .map_err(|_| NotSent::Failed)?;
    buf.truncate(n);
    push(out, proto, to, buf);
    Ok(())
}

/// Takes one resend from the budget of `peer`'s stream `ssrc` (NACKs get at most half
/// of what the stream sends, [`ResendBudget`]).
pub(crate) fn take_resend_budget(peer: &mut Peer, ssrc: Ssrc, now: Instant) -> Result<(), NotSent> {
    let stream = peer
        .send
        .as_mut()
        .and_then(|path| path.streams.iter_mut().find(|s| s.ssrc == ssrc));
    let Some(stream) = stream else {
        return Err(NotSent::NotReady);
    };
    if stream.budget.take(now) {
        Ok(())
    } else {
        Err(NotSent::OverBudget)
    }
}

/// Resends `fwd` to `peer` on the stream `ssrc` as the packet `header` describes: as
/// RTX (the original sequence number first in the payload, RFC 4588) when the peer
/// negotiated a repair stream and `rtx_pt`, else as the packet itself. Answers a NACK
/// (after [`take_resend_budget`]) or probes the path for a higher simulcast layer.
pub(crate) fn resend(
    peer: &mut Peer,
    out: &mut Outbox,
    now: Instant,
    ssrc: Ssrc,
    header: Header,
    rtx_pt: Option<u8>,
    (fwd, vp8): (&Forwarded, Option<Offsets>),
) -> Result<(), NotSent> {
    let Some((proto, to)) = peer.media_to else {
        return Err(NotSent::NotReady);
    };
    let Some(path) = peer.send.as_mut() else {
        return Err(NotSent::NotReady);
    };
    let Some(stream) = path.streams.iter_mut().find(|s| s.ssrc == ssrc) else {
        return Err(NotSent::NotReady);
    };
    let mut head = [0u8; MAX_HEADER];
    let mut buf = out.buffer(MAX_HEADER + 2 + fwd.payload.len() + MAX_RTP_OVERHEAD + OUTPUT_SLACK);
    let n = match (stream.rtx.as_mut(), rtx_pt) {
        (Some((rtx_ssrc, next)), Some(pt)) => {
            let rtx_ssrc = *rtx_ssrc;
            let index = *next;
            *next += 1;
            let h = Header {
                pt,
                seq: index,
                time: header.time,
                marker: header.marker,
            };
            let hlen = write_header(&mut head, stream, path.bwe.as_mut(), now, rtx_ssrc, &h, fwd);
            let original = patched(&fwd.payload, vp8, &mut out.scratch);
            let mut payload = Vec::with_capacity(2 + original.len());
            payload.extend_from_slice(&(header.seq as u16).to_be_bytes());
            payload.extend_from_slice(original);
            path.srtp
                .protect_rtp_into(&head[..hlen], &payload, *rtx_ssrc, index, &mut buf)
        }
        _ => {
            let hlen = write_header(
                &mut head,
                stream,
                path.bwe.as_mut(),
                now,
                ssrc,
                &header,
                fwd,
            );
            let payload = patched(&fwd.payload, vp8, &mut out.scratch);
            path.srtp
                .protect_rtp_into(&head[..hlen], payload, *ssrc, header.seq, &mut buf)
        }
    }
    .map_err(|_| NotSent::Failed)?;
    buf.truncate(n);
    push(out, proto, to, buf);
    Ok(())
}

/// The payload type of the repair stream (RTX) `peer` negotiated for payload type `pt`.
pub(crate) fn rtx_pt_of(peer: &Peer, pt: u8) -> Option<u8> {
    peer.rtc
        .codec_config()
        .params()
        .iter()
        .find(|p| *p.pt() == pt)
        .and_then(|p| p.resend())
        .map(|p| *p)
}

fn push(out: &mut Outbox, proto: Protocol, to: SocketAddr, data: Vec<u8>) {
    let queue = match proto {
        Protocol::Udp => &mut out.transmits,
        _ => &mut out.tcp_transmits,
    };
    queue.push(Datagram { to, data });
}

/// Reads a peer's SRTCP (with its own keys) for what the engine answers itself: the
/// lost packets its NACKs report, `(stream, sequence number)`, into `lost`, and its
/// TWCC feedback, into its bandwidth estimate. Returns how many TWCC feedback packets
/// it held. Nothing when it is not SRTCP for streams the engine sends.
pub(crate) fn read_feedback(
    peer: &mut Peer,
    now: Instant,
    srtcp: &[u8],
    lost: &mut Vec<(Ssrc, u16)>,
) -> u64 {
    let Some(path) = peer.send.as_mut() else {
        return 0;
    };
    if path.streams.is_empty() {
        return 0;
    }
    let Ok((compound, _)) = path.inbound.unprotect_rtcp(srtcp) else {
        return 0;
    };
    let streams = &path.streams;
    rtcp::nacks(&compound, |media, seq| {
        if streams.iter().any(|s| *s.ssrc == media) {
            lost.push((media.into(), seq));
        }
    });
    let Some(bwe) = path.bwe.as_mut() else {
        return 0;
    };
    let feedbacks = rtcp::twcc(&compound, |a| bwe.arrival(a));
    if feedbacks > 0 {
        bwe.feedback_done(now);
        // What the path has shown it carries: the estimate, or what the peer received
        // lately where that is more (a probe that carried a higher simulcast layer
        // shows there first; the estimate climbs 8% a second).
        let carried = bwe.estimate().map(|e| e.max(bwe.acked().unwrap_or(0)));
        path.pacer.set_estimate(now, carried);
    }
    feedbacks
}

/// Fills in the sender reports str0m wrote at `now` for the streams the engine sends
/// (`data` is str0m's SRTCP to this peer), protecting the compound again under the
/// index str0m gave it.
pub(crate) fn patch_reports(peer: &mut Peer, now: Instant, data: &mut Vec<u8>) {
    let Some(path) = peer.send.as_mut() else {
        return;
    };
    let srtcp = data.first().is_some_and(|b| (128..=191).contains(b));
    if path.streams.is_empty() || !srtcp || !crate::media_check::is_rtcp(data) {
        return;
    }
    let Ok((mut compound, index)) = path.srtp.unprotect_rtcp(data) else {
        return;
    };
    let streams = &path.streams;
    let patched = rtcp::patch_sender_reports(&mut compound, |ssrc| {
        let s = streams.iter().find(|s| *s.ssrc == ssrc)?;
        Some(SenderInfo {
            rtp_time: rtp_time_at(s.last_time, s.last_wallclock, s.clock_rate, now),
            packets: s.packets,
            octets: s.octets,
        })
    });
    if patched > 0
        && let Ok(again) = path.srtp.protect_rtcp(&compound, index)
    {
        *data = again;
    }
}

impl ShardCore {
    /// Resends what a subscriber's NACKs reported lost, from the tracks' histories
    /// (`lost` is emptied).
    pub(super) fn answer_nacks(&mut self, now: Instant, slot: Slot, lost: &mut Vec<(Ssrc, u16)>) {
        for (ssrc, seq) in lost.drain(..) {
            let Some(peer) = peer_in(&mut self.peers, slot) else {
                return;
            };
            let Some(track) = peer
                .send
                .as_ref()
                .and_then(|p| p.streams.iter().find(|s| s.ssrc == ssrc))
                .map(|s| s.track)
            else {
                continue;
            };
            let Some(route) = self.routes.get(&track) else {
                continue;
            };
            let Some(sub) = route.subs.iter().find(|s| s.slot == slot && s.ssrc == ssrc) else {
                continue;
            };
            let seq = extend(sub.last_seq, seq);
            if seq < sub.start.first_seq || seq > sub.last_seq {
                continue; // not a packet of this subscriber's stream
            }
            // The stretch it was sent in: which layer, how its numbers mapped.
            let Some(mapping) = sub.mapping_of(seq) else {
                continue;
            };
            let history = route.history.get(usize::from(mapping.layer));
            let Some(fwd) = history.and_then(|h| h.get(now, mapping.publisher_seq)) else {
                self.stats.nack_unanswered += 1;
                continue;
            };
            let Some(pt) = peer.pt_map.pt(fwd.codec) else {
                continue;
            };
            let rtx_pt = rtx_pt_of(peer, *pt);
            let header = Header {
                pt: *pt,
                seq,
                time: fwd.time.wrapping_add(mapping.time_offset),
                marker: fwd.marker,
            };
            let vp8 = is_vp8(&self.codecs, fwd.codec).then(|| mapping.vp8_offsets(&fwd.payload));
            let sent = take_resend_budget(peer, ssrc, now)
                .and_then(|()| resend(peer, &mut self.out, now, ssrc, header, rtx_pt, (fwd, vp8)));
            match sent {
                Ok(()) => {
                    self.stats.rtp_resent += 1;
                    // It went ahead of any video that waits, which waits for it.
                    if let Some(path) = peer.send.as_mut() {
                        path.pacer.charge(now, paced_size(fwd));
                    }
                }
                Err(NotSent::OverBudget) => self.stats.nack_unanswered += 1,
                Err(_) => {}
            }
        }
    }
}

/// A stream's RTP time at `now`, from its last packet's RTP time and capture time.
/// The capture time comes from the publisher's sender reports and may be anything: the
/// clock runs on (and wraps) however far it is.
fn rtp_time_at(last_time: u32, last_wallclock: Instant, clock_rate: u32, now: Instant) -> u32 {
    let elapsed = now.saturating_duration_since(last_wallclock).as_nanos();
    let ticks = elapsed * u128::from(clock_rate) / 1_000_000_000;
    last_time.wrapping_add(ticks as u32)
}

/// The extended sequence number nearest `last` whose low 16 bits are `seq`.
fn extend(last: u64, seq: u16) -> u64 {
    let candidate = (last & !0xffff) | u64::from(seq);
    if candidate > last + 0x8000 && candidate >= 0x1_0000 {
        candidate - 0x1_0000
    } else if candidate + 0x8000 < last {
        candidate + 0x1_0000
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{extend, rtp_time_at};

    #[test]
    fn the_rtp_clock_runs_on_from_the_last_packet_however_long_ago() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(500);
        assert_eq!(rtp_time_at(1000, t0, 90_000, later), 1000 + 45_000);
        assert_eq!(
            rtp_time_at(u32::MAX, t0, 48_000, t0 + Duration::from_millis(1)),
            47
        );
        assert_eq!(
            rtp_time_at(7, later, 90_000, t0),
            7,
            "a capture time after now"
        );
        // A publisher's report can put the capture time years away (the fuzzer found
        // an overflow here): the clock wraps instead.
        let ages = [Duration::from_secs(86_400 * 365 * 30), Duration::MAX];
        for age in ages {
            if let Some(then) = t0.checked_sub(age) {
                rtp_time_at(0, then, 90_000, t0);
            }
        }
        rtp_time_at(
            0,
            t0,
            u32::MAX,
            t0 + Duration::from_secs(86_400 * 365 * 100),
        );
    }

    #[test]
    fn a_sequence_number_extends_to_the_nearest_of_its_cycles() {
        assert_eq!(extend(10, 5), 5);
        assert_eq!(extend(0x1_0005, 0xfffe), 0xfffe, "just before the wrap");
        assert_eq!(extend(0xfffe, 3), 0x1_0003, "just after it");
        assert_eq!(extend(0x2_0000, 0x8001), 0x1_8001);
        assert_eq!(extend(3, 0xffff), 0xffff, "nothing below zero");
    }
}
