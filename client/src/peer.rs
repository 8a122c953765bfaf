//! A client-side WebRTC peer on str0m, sans-IO: datagrams and time in, datagrams and
//! events out. It publishes tracks, answers the server's offers and records what it
//! receives. The tests, `play` and the benchmark's synthetic peers all drive this one.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::{Codec, CodecConfig, PayloadParams};
use str0m::media::{
    Direction, KeyframeRequestKind, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::rtp::rtcp::SenderInfo;
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcError};

/// A track this client publishes or asks to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTrack {
    /// msid stream id.
    pub stream_id: String,
    /// msid track id.
    pub track_id: String,
    /// Audio or video.
    pub kind: MediaKind,
}

/// Something that happened to the peer.
#[derive(Debug)]
pub enum PeerEvent {
    /// ICE and DTLS are up.
    Connected,
    /// ICE lost the server.
    Disconnected,
    /// A new m-line was negotiated.
    MediaAdded {
        /// Its mid.
        mid: Mid,
        /// Audio or video.
        kind: MediaKind,
        /// From the client's side.
        direction: Direction,
        /// Its msid stream id.
        stream_id: String,
        /// Its msid track id.
        track_id: String,
    },
    /// An RTP packet arrived.
    Rtp(ReceivedRtp),
    /// The data channel opened (the server answered its SCTP association).
    ChannelOpen,
    /// A text message on the data channel.
    ChannelText(String),
    /// The server asks for a keyframe on one of our sending m-lines.
    KeyframeRequest {
        /// The m-line.
        mid: Mid,
        /// PLI or FIR.
        kind: KeyframeRequestKind,
        /// The simulcast layer it is for (`None` without simulcast).
        rid: Option<Rid>,
    },
}

/// One received RTP packet.
#[derive(Debug, Clone)]
pub struct ReceivedRtp {
    /// The m-line it arrived on.
    pub mid: Mid,
    /// Extended sequence number.
    pub seq: u64,
    /// RTP timestamp.
    pub time: u32,
    /// Marker bit.
    pub marker: bool,
    /// The codec its payload type stands for in this session.
    pub codec: Option<Codec>,
    /// The payload.
    pub payload: Arc<[u8]>,
    /// When it was handed to us.
    pub received: Instant,
    /// The last sender report for this stream (how the sender maps its RTP time to
    /// wallclock time), once one has arrived.
    pub sender_report: Option<SenderInfo>,
}

/// A client peer. See the module docs.
pub struct ClientPeer {
    rtc: Rtc,
    local_addr: SocketAddr,
    pending: Option<SdpPendingOffer>,
    /// Sending m-lines and the next sequence number of each.
    sending: Vec<(Mid, u64)>,
    /// Tracks to send as simulcast layers (track id, rids lowest first), and the next
    /// sequence number of each layer once sending.
    simulcast: Vec<(String, Vec<String>)>,
    layer_seqs: Vec<(Mid, Rid, u64)>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<PeerEvent>,
    next_timeout: Instant,
    connected: bool,
    /// Per receiving m-line: NACKs and PLIs sent so far (str0m's ingress statistics,
    /// only reported with a stats interval, see [`ClientPeer::with_stats`]).
    feedback: Vec<(Mid, u64, u64)>,
    /// The msid of each m-line as the server's last offer wrote it. str0m keeps the
    /// first one, but the server recycles m-lines of gone tracks for new ones.
    offered_msids: Vec<(Mid, (String, String))>,
    /// The data channel, once open.
    channel: Option<str0m::channel::ChannelId>,
}

impl ClientPeer {
    /// A peer whose UDP socket is at `local_addr`.
    pub fn new(now: Instant, local_addr: SocketAddr) -> Self {
        Self::with_codecs(now, local_addr, CodecConfig::new_with_defaults())
    }

    /// A peer that offers exactly `codecs`, in their order (the server takes the first
    /// codec of a published m-line that it knows as the track's codec).
    pub fn with_codecs(now: Instant, local_addr: SocketAddr, codecs: CodecConfig) -> Self {
        Self::with_stats(now, local_addr, codecs, None)
    }

    /// [`ClientPeer::with_codecs`], with str0m's statistics every `stats_interval`, so
    /// that [`ClientPeer::feedback_sent`] counts NACKs and PLIs (the benchmark uses it).
    pub fn with_stats(
        now: Instant,
        local_addr: SocketAddr,
        codecs: CodecConfig,
        stats_interval: Option<std::time::Duration>,
    ) -> Self {
        let mut config = Rtc::builder()
            .set_rtp_mode(true)
            .set_stats_interval(stats_interval);
        *config.codec_config() = codecs;
        let mut rtc = config.build(now);
        let candidate = Candidate::host(local_addr, "udp").expect("a valid host candidate");
        rtc.add_local_candidate(candidate);
        let mut peer = Self {
            rtc,
            local_addr,
            pending: None,
            sending: Vec::new(),
            simulcast: Vec::new(),
            layer_seqs: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_timeout: now,
            connected: false,
            feedback: Vec::new(),
            offered_msids: Vec::new(),
            channel: None,
        };
        peer.drain().expect("a fresh peer drains");
        peer
    }

    /// Sends the track `track_id` as simulcast layers `rids` (lowest first) when the
    /// next offer publishes it; its packets go out with
    /// [`ClientPeer::send_rtp_layer`].
    pub fn set_simulcast(&mut self, track_id: &str, rids: &[&str]) {
        let rids = rids.iter().map(|r| r.to_string()).collect();
        self.simulcast.push((track_id.to_owned(), rids));
    }

    /// The first offer: one sendonly m-line per track, or only a data channel when
    /// there are none (an offer needs at least one m-line).
    pub fn create_offer(&mut self, tracks: &[LocalTrack]) -> Result<SdpOffer, RtcError> {
        let mut api = self.rtc.sdp_api();
        for t in tracks {
            let simulcast =
                self.simulcast
                    .iter()
                    .find(|(id, _)| *id == t.track_id)
                    .map(|(_, rids)| {
                        let mut s = Simulcast::new();
                        for rid in rids {
                            s.add_send_layer(SimulcastLayer::new(rid));
                        }
                        s
                    });
            // str0m announces `MediaAdded` only for m-lines the remote offered, so our
            // own sending m-lines are remembered here.
            let mid = api.add_media(
                t.kind,
                Direction::SendOnly,
                Some(t.stream_id.clone()),
                Some(t.track_id.clone()),
                simulcast,
            );
            self.sending.push((mid, 1));
        }
        if tracks.is_empty() {
            api.add_channel("peer-calls".into());
        }
        let (offer, pending) = api.apply().expect("an offer with changes");
        self.pending = Some(pending);
        self.drain()?;
        Ok(offer)
    }

    /// Applies the server's answer to our first offer.
    pub fn accept_answer(&mut self, answer: SdpAnswer) -> Result<(), RtcError> {
        let pending = self.pending.take().ok_or(RtcError::ChangesOutOfOrder)?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        self.drain()
    }

    /// Answers an offer from the server. New m-lines the server wants to receive on
    /// (a granted `publish`) become sending m-lines of ours.
    /// An m-line that now carries another track (a new msid, recycled by the server)
    /// is announced with `MediaAdded` again.
    pub fn accept_offer(&mut self, offer: SdpOffer) -> Result<SdpAnswer, RtcError> {
        let msids = offered_msids(&offer.to_sdp_string());
        let relabelled: Vec<Mid> = msids
            .iter()
            .filter(|(mid, msid)| {
                self.offered_msids
                    .iter()
                    .any(|(m, old)| m == mid && old != msid)
            })
            .map(|(mid, _)| *mid)
            .collect();
        self.offered_msids = msids;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        self.drain()?;
        for mid in relabelled {
            let Some(media) = self.rtc.media(mid) else {
                continue;
            };
            let (kind, direction) = (media.kind(), media.direction());
            let (stream_id, track_id) = self.msid_of(mid).unwrap_or_default();
            self.events.push_back(PeerEvent::MediaAdded {
                mid,
                kind,
                direction,
                stream_id,
                track_id,
            });
        }
        Ok(answer)
    }

    /// A datagram for us arrived from `source`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: &[u8],
    ) -> Result<(), RtcError> {
        let Ok(contents) = data.try_into() else {
            return Ok(());
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
        if !self.rtc.accepts(&input) {
            return Ok(());
        }
        self.rtc.handle_input(input)?;
        self.drain()
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), RtcError> {
        if now >= self.next_timeout {
            self.rtc.handle_input(Input::Timeout(now))?;
            self.drain()?;
        }
        Ok(())
    }

    /// When [`ClientPeer::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_timeout
    }

    /// The next datagram to send, and where to.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// NACKs and PLIs this peer has sent on its receiving m-lines, as of str0m's last
    /// statistics (always zero without a stats interval).
    pub fn feedback_sent(&self) -> (u64, u64) {
        self.feedback
            .iter()
            .fold((0, 0), |(n, p), f| (n + f.1, p + f.2))
    }

    /// ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Our sending m-line for a published track, once negotiated.
    pub fn mid_of(&self, stream_id: &str, track_id: &str) -> Option<Mid> {
        // The msid the server's latest offer gave it: an m-line can carry a second track.
        self.sending.iter().map(|(m, _)| *m).find(|m| {
            self.msid_of(*m)
                .is_some_and(|(s, t)| s == stream_id && t == track_id)
        })
    }

    /// The msid of an m-line: `(stream id, track id)`.
    pub fn msid_of(&self, mid: Mid) -> Option<(String, String)> {
        if let Some((_, msid)) = self.offered_msids.iter().find(|(m, _)| *m == mid) {
            return Some(msid.clone());
        }
        let m = self.rtc.media(mid)?;
        Some((m.stream_id().to_string(), m.track_id().to_string()))
    }

    /// Sends one RTP packet of `codec` on a sending m-line. Sequence numbers are
    /// assigned here, consecutively per m-line.
    pub fn send_rtp(
        &mut self,
        now: Instant,
        mid: Mid,
        codec: Codec,
        time: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<(), SendError> {
        let pt = self.pt_of(codec)?;
        let entry = self
            .sending
            .iter_mut()
            .find(|(m, _)| *m == mid)
            .ok_or(SendError::NotSending(mid))?;
        let seq: SeqNo = entry.1.into();
        entry.1 += 1;
        let packet = RtpWrite::new(pt, seq, time, now, payload.to_vec())
            .marker(marker)
            .nackable(codec.is_video());
        self.write_on(mid, None, packet)
    }

    /// The payload type `codec` has in this session.
    fn pt_of(&self, codec: Codec) -> Result<Pt, SendError> {
        self.rtc
            .codec_config()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
            .ok_or(SendError::CodecNotNegotiated(codec))
    }

    /// Writes `packet` on the stream of `mid` (and simulcast layer `rid`).
    fn write_on(&mut self, mid: Mid, rid: Option<Rid>, packet: RtpWrite) -> Result<(), SendError> {
        let mut api = self.rtc.direct_api();
        let tx = api
            .stream_tx_by_mid(mid, rid)
            .ok_or(SendError::NotSending(mid))?;
        tx.write_rtp(packet);
        self.drain().map_err(SendError::Rtc)
    }

    /// Sends one RTP packet of simulcast layer `rid` on a sending m-line set up with
    /// [`ClientPeer::set_simulcast`]; each layer has its own sequence numbers.
    #[allow(clippy::too_many_arguments)]
    pub fn send_rtp_layer(
        &mut self,
        now: Instant,
        mid: Mid,
        rid: &str,
        codec: Codec,
        time: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<(), SendError> {
        let pt = self.pt_of(codec)?;
        if !self.sending.iter().any(|(m, _)| *m == mid) {
            return Err(SendError::NotSending(mid));
        }
        let rid = Rid::from(rid);
        let i = match self
            .layer_seqs
            .iter()
            .position(|(m, r, _)| *m == mid && *r == rid)
        {
            Some(i) => i,
            None => {
                self.layer_seqs.push((mid, rid, 1));
                self.layer_seqs.len() - 1
            }
        };
        let seq: SeqNo = self.layer_seqs[i].2.into();
        self.layer_seqs[i].2 += 1;
        let packet = RtpWrite::new(pt, seq, time, now, payload.to_vec())
            .marker(marker)
            .nackable(codec.is_video());
        self.write_on(mid, Some(rid), packet)
    }

    /// The codecs the remote accepted on an m-line, in the remote's order of preference.
    pub fn negotiated_codecs(&self, mid: Mid) -> Vec<PayloadParams> {
        let Some(media) = self.rtc.media(mid) else {
            return Vec::new();
        };
        let config = self.rtc.codec_config();
        media
            .remote_pts()
            .iter()
            .filter_map(|pt| config.params().iter().find(|p| p.pt() == *pt))
            .copied()
            .collect()
    }

    /// Writes one RTP packet, built by the caller (payload type, sequence number, time,
    /// wallclock, marker), on a sending m-line. For callers that keep their own sequence
    /// numbers: do not mix with [`ClientPeer::send_rtp`] on the same m-line.
    pub fn write_rtp(&mut self, mid: Mid, packet: RtpWrite) -> Result<(), SendError> {
        if !self.sending.iter().any(|(m, _)| *m == mid) {
            return Err(SendError::NotSending(mid));
        }
        self.write_on(mid, None, packet)
    }

    /// Sends `text` on the data channel: false when it is not open or its buffer is full.
    pub fn send_text(&mut self, text: &str) -> Result<bool, RtcError> {
        let Some(id) = self.channel else {
            return Ok(false);
        };
        let sent = match self.rtc.channel(id) {
            Some(mut channel) => channel.write(false, text.as_bytes())?,
            None => false,
        };
        self.drain()?;
        Ok(sent)
    }

    /// Asks the server for a keyframe on a receiving m-line.
    pub fn request_keyframe(&mut self, mid: Mid) -> Result<(), RtcError> {
        if let Some(rx) = self.rtc.direct_api().stream_rx_by_mid(mid, None) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
        }
        self.drain()
    }

    fn drain(&mut self) -> Result<(), RtcError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => {
                    self.next_timeout = t;
                    return Ok(());
                }
                Output::Transmit(t) => self.transmits.push_back((t.destination, t.contents.into())),
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                self.connected = true;
                self.events.push_back(PeerEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.events.push_back(PeerEvent::Disconnected);
            }
            Event::MediaAdded(m) => {
                if m.direction.is_sending() && !self.sending.iter().any(|(mid, _)| *mid == m.mid) {
                    // Start at 1: the server rebases anyway, and a small start keeps the
                    // SRTP rollover counter at 0.
                    self.sending.push((m.mid, 1));
                }
                let (stream_id, track_id) = self.msid_of(m.mid).unwrap_or_default();
                self.events.push_back(PeerEvent::MediaAdded {
                    mid: m.mid,
                    kind: m.kind,
                    direction: m.direction,
                    stream_id,
                    track_id,
                });
            }
            Event::RtpPacket(p) => {
                let mid = self
                    .rtc
                    .direct_api()
                    .stream_rx(&p.header.ssrc)
                    .map(|s| s.mid());
                let Some(mid) = mid else { return };
                let codec = self
                    .rtc
                    .codec_config()
                    .params()
                    .iter()
                    .find(|c| c.pt() == p.header.payload_type)
                    .map(|c| c.spec().codec);
                self.events.push_back(PeerEvent::Rtp(ReceivedRtp {
                    mid,
                    seq: *p.seq_no,
                    time: p.header.timestamp,
                    marker: p.header.marker,
                    codec,
                    sender_report: p.last_sender_info,
                    payload: p.payload,
                    received: p.timestamp,
                }));
            }
            Event::KeyframeRequest(r) => self.events.push_back(PeerEvent::KeyframeRequest {
                mid: r.mid,
                kind: r.kind,
                rid: r.rid,
            }),
            Event::ChannelOpen(id, _) => {
                self.channel.get_or_insert(id);
                self.events.push_back(PeerEvent::ChannelOpen);
            }
            Event::ChannelData(d) if Some(d.id) == self.channel && !d.binary => {
                if let Ok(text) = String::from_utf8(d.data) {
                    self.events.push_back(PeerEvent::ChannelText(text));
                }
            }
            Event::MediaIngressStats(st) => {
                match self.feedback.iter_mut().find(|f| f.0 == st.mid) {
                    Some(f) => (f.1, f.2) = (st.nacks, st.plis),
                    None => self.feedback.push((st.mid, st.nacks, st.plis)),
                }
            }
            _ => {}
        }
    }
}

/// Why [`ClientPeer::send_rtp`] could not send.
#[derive(Debug)]
pub enum SendError {
    /// The session did not negotiate this codec.
    CodecNotNegotiated(Codec),
    /// No sending m-line with this mid.
    NotSending(Mid),
    /// str0m refused.
    Rtc(RtcError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::CodecNotNegotiated(c) => write!(f, "codec {c} was not negotiated"),
            SendError::NotSending(m) => write!(f, "no sending m-line {m}"),
            SendError::Rtc(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Each media section's mid and msid in an SDP.
fn offered_msids(sdp: &str) -> Vec<(Mid, (String, String))> {
    let mut out = Vec::new();
    for section in sdp.split("\r\nm=").skip(1) {
        let attr = |name: &str| section.lines().find_map(|l| l.strip_prefix(name));
        if let (Some(mid), Some(msid)) = (attr("a=mid:"), attr("a=msid:"))
            && let Some((stream, track)) = msid.trim().split_once(' ')
        {
            out.push((
                Mid::from(mid.trim()),
                (stream.to_string(), track.to_string()),
            ));
        }
    }
    out
}
