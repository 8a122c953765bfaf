//! One peer as its shard holds it: the str0m `Rtc`, what it publishes, what it
//! receives, and its SDP negotiation queue (the server makes every offer after the
//! client's first, one at a time).

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Rtc;
use str0m::change::SdpPendingOffer;
use str0m::media::{MediaKind, Mid, Rid, Rids};
use str0m::net::Protocol;
use str0m::rtp::Ssrc;

use super::send::SendPath;
use crate::codecs::PtMap;
use crate::dtls_tap::KeySlot;
use crate::msg::{PeerId, Subscription, TrackId, TrackName};
use crate::twcc_guard::TwccGuard;

/// A track this peer publishes.
pub(crate) struct InTrack {
    pub(crate) mid: Mid,
    pub(crate) track: TrackId,
    pub(crate) kind: MediaKind,
}

/// The simulcast layers one m-line may carry, lowest first (`docs/simulcast.md`).
pub(crate) const MAX_LAYERS: usize = 3;

/// Which layer a simulcast stream `rid` is among the m-line's `rids`, lowest first: the
/// customary names `q`, `h`, `f` (quarter, half, full) in that order whatever order the
/// SDP lists them in; other names in the SDP's order (browsers list encodings as the
/// page gave them, lowest first by custom). A stream without a rid is layer 0.
pub(crate) fn layer_of(rids: &Rids, rid: Option<Rid>) -> u8 {
    let (Rids::Specific(all), Some(rid)) = (rids, rid) else {
        return 0;
    };
    let rank = |r: &Rid| match &**r {
        "q" => Some(0),
        "h" => Some(1),
        "f" => Some(2),
        _ => None,
    };
    let layer = if all.iter().all(|r| rank(r).is_some()) {
        all.iter().filter(|r| rank(r) < rank(&rid)).count()
    } else {
        all.iter().position(|r| *r == rid).unwrap_or(0)
    };
    layer.min(MAX_LAYERS - 1) as u8
}

/// A track this peer receives.
pub(crate) struct OutTrack {
    pub(crate) track: TrackId,
    pub(crate) kind: MediaKind,
    pub(crate) mid: Mid,
    /// False while its m-line is still being negotiated.
    pub(crate) active: bool,
    /// Where its stream (SSRC) goes on: from the start on a new m-line, or where the
    /// m-line's last stream left off.
    pub(crate) start: StreamStart,
}

/// Where a subscriber's send stream starts: the sequence number of its first packet,
/// and how the publisher's RTP timestamps map into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamStart {
    pub(crate) first_seq: u64,
    pub(crate) time: TimeMap,
}

impl StreamStart {
    /// A new m-line's stream: sequence numbers from 1, timestamps as published.
    pub(crate) const NEW: Self = Self {
        first_seq: 1,
        time: TimeMap::Offset(0),
    };
}

/// How a subscriber's stream maps the publisher's RTP timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeMap {
    /// Add this (wrapping).
    Offset(u32),
    /// The stream carried another track until `at`, its last timestamp `last`: the
    /// offset is fixed at the first packet so the timestamps go on from there as the
    /// clock ran (a receiver takes a jump back as late packets and drops them).
    After { last: u32, at: Instant },
    /// The stream switched simulcast layer after a packet with timestamp `last`,
    /// captured at `captured`: the new layer's first packet takes `last` plus the capture
    /// time between the two (by the layers' sender reports), at least one tick.
    Switched { last: u32, captured: Instant },
}

/// The inactive m-line of a track the peer no longer receives. str0m cannot recycle a
/// stopped m-line, so none is stopped: the next subscription to the track resumes it,
/// and once the track is gone it carries the next track of its kind the peer receives.
pub(crate) struct Parked {
    pub(crate) track: TrackId,
    pub(crate) mid: Mid,
    pub(crate) kind: MediaKind,
    /// The track was unpublished: the m-line is free for another track.
    pub(crate) gone: bool,
    /// How the same track goes on here.
    pub(crate) resume: StreamStart,
    /// How another track goes on here.
    pub(crate) recycle: StreamStart,
}

/// A change to the peer's session that waits for the next offer.
pub(crate) enum Change {
    Publish(TrackName),
    Subscribe(Subscription),
    Unsubscribe { track: TrackId, gone: bool },
    Unpublish(TrackId),
}

/// What the outstanding offer does, to be finished when the answer comes.
pub(crate) enum InFlight {
    /// A receive slot for the client's new track; str0m emits no `MediaAdded` for
    /// m-lines we offered, so it is published when the answer arrives.
    Publish {
        mid: Mid,
    },
    Subscribe {
        track: TrackId,
        mid: Mid,
    },
}

pub(crate) struct Peer {
    pub(crate) id: PeerId,
    pub(crate) rtc: Rtc,
    pub(crate) ufrag: String,
    /// Remote addresses routed to this peer (bounded; see `MAX_ADDRS`).
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) pt_map: PtMap,
    pub(crate) published: Vec<InTrack>,
    /// SSRC → index into `published` and simulcast layer, learnt from the first packet
    /// of each stream.
    pub(crate) ssrc_tracks: Vec<(Ssrc, usize, u8)>,
    pub(crate) receiving: Vec<OutTrack>,
    pub(crate) parked: Vec<Parked>,
    /// The msid each recycled m-line carries now; str0m keeps writing the first one, so
    /// every offer is corrected (see `relabel`).
    pub(crate) relabelled: Vec<(Mid, TrackName)>,
    /// Inactive m-lines of tracks the client stopped publishing, each free for its next
    /// track of the kind (a screen shared again takes the last share's m-lines).
    pub(crate) unpublished: Vec<(Mid, MediaKind)>,
    pub(crate) queued: Vec<Change>,
    pub(crate) pending: Option<SdpPendingOffer>,
    pub(crate) in_flight: Vec<InFlight>,
    /// The earliest wake-up this peer has in the timer heap.
    pub(crate) scheduled: Option<Instant>,
    pub(crate) next_timeout: Instant,
    pub(crate) created: Instant,
    pub(crate) last_rx: Instant,
    /// When the peer last sent something only it could have sent: RTP or a keyframe
    /// request that str0m authenticated (SRTP), data channel data (DTLS). Proof of life
    /// for clients that keep ICE up with indications, not binding requests (libnice).
    pub(crate) last_authentic_rx: Instant,
    pub(crate) connected: bool,
    /// Why str0m last refused a datagram before the session connected: the reason a
    /// connect timeout gives (a DTLS handshake that failed, say).
    pub(crate) handshake_failure: Option<String>,
    pub(crate) disconnected_since: Option<Instant>,
    /// Keeps str0m's TWCC register from the packet that would blow it up.
    pub(crate) twcc_guard: TwccGuard,
    /// The session's SRTP keys, once its DTLS handshake is done.
    pub(crate) keys: KeySlot,
    /// The engine's own send side (made once the keys are known).
    pub(crate) send: Option<SendPath>,
    /// Where str0m sends this peer's media (its selected candidate pair), learnt from
    /// its datagrams that are not STUN.
    pub(crate) media_to: Option<(Protocol, SocketAddr)>,
    /// The data channel app messages go on (`data.rs`), once it is open.
    pub(crate) channel: Option<str0m::channel::ChannelId>,
}

/// A peer may be reached at this many addresses at once (NAT rebinding, interface
/// changes); the oldest is forgotten first.
pub(crate) const MAX_ADDRS: usize = 4;

impl Peer {
    pub(crate) fn new(
        id: PeerId,
        rtc: Rtc,
        ufrag: String,
        pt_map: PtMap,
        keys: KeySlot,
        now: Instant,
    ) -> Self {
        Self {
            id,
            rtc,
            ufrag,
            addrs: Vec::new(),
            pt_map,
            published: Vec::new(),
            ssrc_tracks: Vec::new(),
            receiving: Vec::new(),
            parked: Vec::new(),
            relabelled: Vec::new(),
            unpublished: Vec::new(),
            queued: Vec::new(),
            pending: None,
            in_flight: Vec::new(),
            scheduled: None,
            next_timeout: now,
            created: now,
            last_rx: now,
            last_authentic_rx: now,
            connected: false,
            handshake_failure: None,
            disconnected_since: None,
            twcc_guard: TwccGuard::default(),
            channel: None,
            keys,
            send: None,
            media_to: None,
        }
    }

    /// The published track an RTP stream belongs to, and its simulcast layer.
    pub(crate) fn track_of_ssrc(&mut self, ssrc: Ssrc) -> Option<(usize, u8)> {
        if let Some((_, i, layer)) = self.ssrc_tracks.iter().find(|(s, _, _)| *s == ssrc) {
            return Some((*i, *layer));
        }
        let (mid, rid) = {
            let mut api = self.rtc.direct_api();
            let stream = api.stream_rx(&ssrc)?;
            (stream.mid(), stream.rid())
        };
        let i = self.published.iter().position(|t| t.mid == mid)?;
        let layer = self
            .rtc
            .media(mid)
            .map_or(0, |m| layer_of(m.rids_rx(), rid));
        if self.ssrc_tracks.len() < 16 {
            self.ssrc_tracks.push((ssrc, i, layer));
        }
        Some((i, layer))
    }

    pub(crate) fn is_receiving(&self, track: TrackId) -> bool {
        self.receiving.iter().any(|o| o.track == track)
            || self
                .queued
                .iter()
                .any(|c| matches!(c, Change::Subscribe(s) if s.track == track))
    }
}
