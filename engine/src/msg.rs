//! What crosses thread boundaries: commands into a shard ([`Control`]), forwarded media
//! between shards ([`MediaBatch`]), and what a shard reports to signalling ([`Notice`]).

use std::sync::Arc;
use std::time::Instant;

use str0m::Rtc;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{KeyframeRequestKind, MediaKind};

use crate::codecs::{CodecDesc, CodecIdx};
use crate::dtls_tap::KeySlot;

/// A peer, unique for the life of the process. Assigned by signalling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

/// A shard's index, `0..shards`.
pub type ShardId = usize;

/// A published track, unique for the life of the process: the publisher's shard in
/// the top 16 bits, a counter of that shard below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u64);

impl TrackId {
    /// The `counter`th track of `shard`. Signalling names remote tracks this way, as
    /// tracks of the node port (whose index follows the last shard's).
    pub fn new(shard: ShardId, counter: u64) -> Self {
        Self(((shard as u64) << 48) | (counter & ((1 << 48) - 1)))
    }

    /// The shard that owns the track's publisher.
    pub fn shard(self) -> ShardId {
        (self.0 >> 48) as ShardId
    }
}

/// How the room names a track: msid stream id, track id, kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackName {
    /// `a=msid` stream id.
    pub stream_id: String,
    /// `a=msid` track id.
    pub track_id: String,
    /// Audio or video.
    pub kind: MediaKind,
}

/// A track a subscriber wants: where it comes from and what to call it.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The published track.
    pub track: TrackId,
    /// Its ids, reused as the msid of the subscriber's m-line.
    pub name: TrackName,
}

/// Commands to a shard, from signalling or from another shard.
pub enum Control {
    /// Take over a peer whose `Rtc` has accepted the client's first offer.
    AddPeer {
        /// The peer.
        peer: PeerId,
        /// Its str0m instance, built and negotiated off the media threads.
        rtc: Box<Rtc>,
        /// The ICE ufrag in the server's answer, for routing STUN from new addresses.
        ufrag: String,
        /// Where its SRTP keys appear once DTLS is done.
        keys: KeySlot,
    },
    /// Drop a peer and everything it publishes or receives.
    RemovePeer {
        /// The peer.
        peer: PeerId,
    },
    /// Offer the peer a new m-line to publish one more track on.
    RequestPublish {
        /// The publishing peer.
        peer: PeerId,
        /// The ids the track will have.
        name: TrackName,
    },
    /// Stop a track the peer publishes.
    Unpublish {
        /// The publishing peer.
        peer: PeerId,
        /// The track.
        track: TrackId,
    },
    /// Start sending these tracks to the peer.
    Subscribe {
        /// The subscriber.
        peer: PeerId,
        /// The tracks.
        tracks: Vec<Subscription>,
    },
    /// Stop sending these tracks to the peer.
    Unsubscribe {
        /// The subscriber.
        peer: PeerId,
        /// The tracks.
        tracks: Vec<TrackId>,
        /// The tracks were unpublished: their m-lines stop for good. Otherwise they are
        /// kept, inactive, for the next subscription to the same track, so that a client
        /// that keeps changing what it watches does not grow its SDP.
        gone: bool,
    },
    /// The client's answer to the offer the shard sent last.
    Answer {
        /// The peer.
        peer: PeerId,
        /// The parsed answer.
        answer: SdpAnswer,
    },
    /// Shard to shard: `shard` has subscribers of `track` (count +1).
    AddRemoteSubscriber {
        /// The track, published on the receiving shard.
        track: TrackId,
        /// The subscribing shard.
        shard: ShardId,
    },
    /// Shard to shard: one subscriber fewer of `track` on `shard`.
    RemoveRemoteSubscriber {
        /// The track.
        track: TrackId,
        /// The subscribing shard.
        shard: ShardId,
    },
    /// Shard to shard: a subscriber asks the publisher of `track` for a keyframe.
    KeyframeRequest {
        /// The track.
        track: TrackId,
        /// Of this simulcast layer (0 without simulcast).
        layer: u8,
        /// PLI or FIR.
        kind: KeyframeRequestKind,
        /// Skip the once-per-second throttle: a new subscriber needs a keyframe now.
        urgent: bool,
    },
    /// The subscriber `peer` receives at most simulcast layer `max` of `track` (0 is
    /// the lowest): the size of its tile asks for no more. Takes effect at the next
    /// keyframe of the layer it then gets.
    SetMaxLayer {
        peer: PeerId,
        track: TrackId,
        max: u8,
    },
    /// Send `text` (a JSON message of the signalling protocol) to `peer` on its data
    /// channel. Not sent when the channel's buffer is full: a slow receiver does not
    /// hold the others up (counted as `data_dropped`).
    SendData { peer: PeerId, text: Arc<str> },
    /// Shard to the publisher's shard: the highest simulcast layer the tiles of
    /// `shard`'s subscribers of `track` ask for (`None`: it has none any more).
    LayerDemand {
        track: TrackId,
        shard: ShardId,
        max: Option<u8>,
    },
    /// For the node port's thread (multi-node); a shard ignores it.
    Node(NodeCommand),
    /// Stop the shard's thread.
    Shutdown,
    /// Test builds only: panic while handling this peer, as a bug in str0m or the shard
    /// would, to check that only this peer is lost.
    #[cfg(feature = "fault-injection")]
    InjectPanic {
        /// The peer.
        peer: PeerId,
    },
    /// Test builds only: take this long over every datagram from now on (zero: back
    /// to normal), as a shard past its capacity does, to check that input arriving
    /// faster than the shard handles it does not starve its output.
    #[cfg(feature = "fault-injection")]
    InjectSlowInput {
        /// Extra time per datagram.
        per_datagram: std::time::Duration,
    },
    /// Test builds only: the shard's thread stops turning for this long, as a thread
    /// stuck in a system call would, to check that `/health` names it.
    #[cfg(feature = "fault-injection")]
    InjectStall {
        /// How long.
        for_: std::time::Duration,
    },
    /// Test builds only: the shard's thread panics outside any peer's handling, as a bug
    /// in the I/O driver would, to check that the server stops with a failure.
    #[cfg(feature = "fault-injection")]
    InjectThreadPanic,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Control::AddPeer { peer, ufrag, .. } => write!(f, "AddPeer({peer:?}, {ufrag})"),
            Control::RemovePeer { peer } => write!(f, "RemovePeer({peer:?})"),
            Control::RequestPublish { peer, name } => {
                write!(f, "RequestPublish({peer:?}, {name:?})")
            }
            Control::Unpublish { peer, track } => write!(f, "Unpublish({peer:?}, {track:?})"),
            Control::Subscribe { peer, tracks } => write!(f, "Subscribe({peer:?}, {tracks:?})"),
            Control::Unsubscribe { peer, tracks, gone } => {
                write!(f, "Unsubscribe({peer:?}, {tracks:?}, gone: {gone})")
            }
            Control::Answer { peer, .. } => write!(f, "Answer({peer:?})"),
            Control::AddRemoteSubscriber { track, shard } => {
                write!(f, "AddRemoteSubscriber({track:?}, {shard})")
            }
            Control::RemoveRemoteSubscriber { track, shard } => {
                write!(f, "RemoveRemoteSubscriber({track:?}, {shard})")
            }
            Control::KeyframeRequest {
                track,
                layer,
                kind,
                urgent,
            } => {
                write!(
                    f,
                    "KeyframeRequest({track:?}, layer {layer}, {kind:?}, urgent={urgent})"
                )
            }
            Control::SetMaxLayer { peer, track, max } => {
                write!(f, "SetMaxLayer({peer:?}, {track:?}, {max})")
            }
            Control::LayerDemand { track, shard, max } => {
                write!(f, "LayerDemand({track:?}, {shard}, {max:?})")
            }
            Control::SendData { peer, text } => {
                write!(f, "SendData({peer:?}, {} bytes)", text.len())
            }
            Control::Node(c) => write!(f, "Node({c:?})"),
            Control::Shutdown => write!(f, "Shutdown"),
            #[cfg(feature = "fault-injection")]
            Control::InjectPanic { peer } => write!(f, "InjectPanic({peer:?})"),
            #[cfg(feature = "fault-injection")]
            Control::InjectSlowInput { per_datagram } => {
                write!(f, "InjectSlowInput({per_datagram:?})")
            }
            #[cfg(feature = "fault-injection")]
            Control::InjectStall { for_ } => write!(f, "InjectStall({for_:?})"),
            #[cfg(feature = "fault-injection")]
            Control::InjectThreadPanic => write!(f, "InjectThreadPanic"),
        }
    }
}

/// What signalling tells the node port (see [`crate::node_port`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCommand {
    /// The node `id`, started as `boot`, listens at `addr` (new, moved or restarted).
    SetNode {
        /// Its cluster id.
        id: String,
        /// Its boot id (from its registry entry).
        boot: [u8; 16],
        /// Its node port.
        addr: std::net::SocketAddr,
    },
    /// The node `id` is gone.
    RemoveNode {
        /// Its cluster id.
        id: String,
    },
    /// `track`, a track id of the node port, stands for the track `origin` of the node
    /// `node`: shards subscribe to it as to a track of another shard.
    MapTrack {
        /// The local id.
        track: TrackId,
        /// The origin node's id.
        node: String,
        /// The track's id on its origin node.
        origin: u64,
    },
    /// The remote track is gone.
    UnmapTrack {
        /// The local id.
        track: TrackId,
    },
}

/// One RTP packet on its way from a publisher to subscribers, stripped of everything
/// that belongs to the publisher's session (SSRC, payload type number, sequence base).
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The published track.
    pub track: TrackId,
    /// Its simulcast layer, lowest 0 (0 without simulcast); each layer has its own
    /// sequence numbers and timestamps.
    pub layer: u8,
    /// The codec, as an index into the server codec table.
    pub codec: CodecIdx,
    /// The publisher's extended sequence number.
    pub seq: u64,
    /// The RTP timestamp.
    pub time: u32,
    /// The RTP marker bit (end of a video frame).
    pub marker: bool,
    /// When its media was captured, on the publisher's clock mapped to ours (from its
    /// sender reports), or when it reached the server before the first report.
    pub wallclock: Instant,
    /// The RFC 6464 audio level, if the publisher sent it.
    pub audio_level: Option<i8>,
    /// The RFC 6464 voice activity flag.
    pub voice_activity: Option<bool>,
    /// The payload, shared by every subscriber.
    pub payload: Arc<[u8]>,
}

/// Packets from one shard to another, sent once per receive batch.
pub type MediaBatch = Vec<Forwarded>;

/// What a shard tells signalling.
#[derive(Debug)]
pub enum Notice {
    /// ICE and DTLS are up.
    Connected {
        /// The peer.
        peer: PeerId,
    },
    /// The peer publishes a new track.
    TrackPublished {
        /// The publisher.
        peer: PeerId,
        /// Assigned by the shard.
        track: TrackId,
        /// msid and kind.
        name: TrackName,
        /// The codec it sends (its first negotiated one).
        codec: CodecDesc,
    },
    /// A track is gone (unpublished, or its m-line stopped).
    TrackUnpublished {
        /// The publisher.
        peer: PeerId,
        /// The track.
        track: TrackId,
    },
    /// The simulcast layers of `track` above `max` are wanted by no subscriber's tile:
    /// the publisher may pause them (and must resume the others).
    LayersWanted {
        /// The publisher.
        peer: PeerId,
        track: TrackId,
        max: u8,
    },
    /// Send this offer to the client.
    Offer {
        /// The peer.
        peer: PeerId,
        /// The offer.
        offer: SdpOffer,
    },
    /// These subscriptions are negotiated and media flows.
    Subscribed {
        /// The subscriber.
        peer: PeerId,
        /// The tracks.
        tracks: Vec<TrackId>,
    },
    /// These subscriptions have ended.
    Unsubscribed {
        /// The subscriber.
        peer: PeerId,
        /// The tracks.
        tracks: Vec<TrackId>,
    },
    /// The client's answer could not be used.
    BadAnswer {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// A command named a peer this shard does not have (it already left).
    UnknownPeer {
        /// The peer.
        peer: PeerId,
    },
    /// The shard dropped the peer: ICE consent lost, DTLS failure, a str0m error or a
    /// panic while handling it. Its tracks are gone (a `TrackUnpublished` each precedes this).
    PeerGone {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The peer's data channel opened: app messages to it may go there.
    ChannelOpen { peer: PeerId },
    /// The peer's data channel closed (the peer goes on, without it).
    ChannelClosed { peer: PeerId },
    /// A text message on the peer's data channel: a message of the signalling protocol.
    ChannelData { peer: PeerId, text: String },
}
