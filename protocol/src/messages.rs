//! The messages: every JSON object a client and the server exchange, tagged by `"type"`.

use serde::{Deserialize, Serialize};

/// The kind of a media track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// How a client names a track: the publisher's stream id and track id (the SDP `a=msid`)
/// plus its kind. Never an SSRC or a payload type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackRef {
    /// The publisher's stream id (`a=msid:<streamId> <trackId>`).
    pub stream_id: String,
    /// The publisher's track id.
    pub track_id: String,
    /// Audio or video.
    pub kind: Kind,
}

/// A codec described the way SDP does: MIME type, clock rate, channels and fmtp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodecInfo {
    /// For example `video/VP8` or `audio/opus`.
    pub mime_type: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels, if the codec states them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
    /// The `a=fmtp` parameters, `;`-separated, or empty.
    #[serde(default)]
    pub fmtp: String,
}

/// A track published in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    /// The peer that publishes it.
    pub peer_id: String,
    /// Stream id, track id and kind.
    #[serde(flatten)]
    pub track: TrackRef,
    /// The codec the publisher sends.
    pub codec: CodecInfo,
}

/// A STUN or TURN server as a browser's `RTCIceServer` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// For TURN: the user name (by the TURN REST scheme, `<expiry>:<peer id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// For TURN: the password (base64 of HMAC-SHA1 of the user name, keyed by the
    /// secret the server shares with the TURN server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    /// Server-assigned id, unique for the server's lifetime.
    pub peer_id: String,
    /// The name the member chose.
    pub nickname: String,
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ClientMessage {
    /// Enter a room. With the `token` of an earlier session (within the reconnect grace
    /// period) the client resumes that session: same peer, same tracks, no leave/join.
    Join {
        /// Room name: 1–64 of `A-Z a-z 0-9 - _ .`
        room: String,
        /// 1–64 characters, no control characters.
        nickname: String,
        /// The token from an earlier `joined`, to resume that session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// In a cluster: join on this node even when the room is on another (sent after
        /// following a `redirect`, so that a client is sent on at most once).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        here: bool,
        /// With `--auth jwt`: the access token naming the member's grants (the `token`
        /// field stays the resume token).
        #[serde(
            default,
            rename = "access_token",
            skip_serializing_if = "Option::is_none"
        )]
        access_token: Option<String>,
        /// A room password (`--room-password`, or one the room's creator set): needed
        /// when the room has one; the first member of an empty room sets it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    /// The client's first (and only) SDP offer, with the tracks it publishes from the start.
    Offer {
        /// SDP text.
        sdp: String,
    },
    /// The answer to an `offer` the server sent.
    Answer {
        /// SDP text.
        sdp: String,
    },
    /// Ask for a new slot to publish one more track; the server answers with an `offer`.
    Publish {
        /// The ids the new track will have in the room.
        #[serde(flatten)]
        track: TrackRef,
    },
    /// Stop publishing a track; the server renegotiates it away.
    Unpublish {
        /// The track to stop.
        #[serde(flatten)]
        track: TrackRef,
    },
    /// Receive these tracks of the room (in addition to those already received).
    Subscribe {
        /// The tracks.
        tracks: Vec<TrackRef>,
    },
    /// Stop receiving these tracks.
    Unsubscribe {
        /// The tracks.
        tracks: Vec<TrackRef>,
    },
    /// Chat or any application data, relayed to the rest of the room (or to one peer).
    Message {
        /// Any JSON value.
        data: serde_json::Value,
        /// Deliver to this peer only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Keepalive; answered by `pong`.
    Ping,
    /// Leave the room now, without a reconnect grace period.
    Leave,
    /// Moderation (`roomAdmin`): remove a member from the room; it is told `kicked`.
    Kick {
        /// Who.
        peer_id: String,
        /// Why, shown to the member.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Moderation (`roomAdmin`): stop forwarding a member's microphone, camera or screen;
    /// it is told `muted`.
    Mute {
        /// Who.
        peer_id: String,
        /// `microphone`, `camera`, `screen_share` or `screen_share_audio`.
        source: Source,
    },
    /// Moderation (`roomAdmin`): no new member may join while locked (moderators may).
    LockRoom {
        /// Lock or unlock.
        locked: bool,
    },
    /// Moderation (`roomAdmin`): end the call for everyone (each is told `room_ended`).
    EndRoom,
    /// How large the client shows the video tracks it receives (device pixels): each
    /// gets the simulcast layer that fills its tile, no larger.
    TileSizes {
        /// Tracks and their tiles' sizes.
        tiles: Vec<TileSize>,
    },
}

/// A received video track and the size of the tile that shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TileSize {
    /// The track.
    #[serde(flatten)]
    pub track: TrackRef,
    /// Device pixels.
    pub width: u32,
    pub height: u32,
}

/// Where a published track comes from, as grants and moderation name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Camera,
    Microphone,
    ScreenShare,
    ScreenShareAudio,
}

impl Source {
    /// Every source, in the order the page shows them.
    pub const ALL: [Source; 4] = [
        Source::Camera,
        Source::Microphone,
        Source::ScreenShare,
        Source::ScreenShareAudio,
    ];

    /// The source of a track, by its kind and whether its stream is a screen share
    /// (the web client names screen streams `screen-…`).
    pub fn of(track: &TrackRef) -> Source {
        match (track.stream_id.starts_with("screen-"), track.kind) {
            (false, Kind::Video) => Source::Camera,
            (false, Kind::Audio) => Source::Microphone,
            (true, Kind::Video) => Source::ScreenShare,
            (true, Kind::Audio) => Source::ScreenShareAudio,
        }
    }
}

/// What a member may do in its room, as the page needs to know it (which controls to
/// show): its grants, read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allowed {
    /// The sources it may publish (none: a receive-only member).
    pub publish: Vec<Source>,
    /// It may receive the others' tracks.
    pub subscribe: bool,
    /// It may send chat and files.
    pub data: bool,
    /// It may kick, mute, lock and end (`roomAdmin`).
    pub moderate: bool,
}

impl Default for Allowed {
    /// An open room's member.
    fn default() -> Self {
        Self {
            publish: Source::ALL.to_vec(),
            subscribe: true,
            data: true,
            moderate: false,
        }
    }
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    /// The answer to `join`: who you are and what the room holds now.
    Joined {
        /// Room name.
        room: String,
        /// Your peer id.
        peer_id: String,
        /// Present this token in a later `join` to resume this session.
        token: String,
        /// True when an earlier session was resumed.
        resumed: bool,
        /// Everyone else in the room.
        peers: Vec<PeerInfo>,
        /// Every track published in the room.
        tracks: Vec<TrackInfo>,
        /// STUN and TURN servers for the client's peer connection (`RTCIceServer`s), TURN
        /// with credentials for this session. Absent when the server names none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
        /// In a cluster, where the other nodes are reached (URLs of their pages): when
        /// this server is gone, join one of them with the token to go on. Absent for one
        /// node.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nodes: Vec<String>,
        /// Your nickname in the room: the one you sent, or the one your access token
        /// fixes.
        nickname: String,
        /// What you may do here.
        #[serde(default)]
        allowed: Allowed,
        /// The room is locked: nobody new may join but moderators.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        locked: bool,
        /// Direct calls (`--mesh-max`): while the room has at most this many members,
        /// they connect peer to peer, signalling through `message`. Absent: never.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mesh_max: Option<u8>,
    },
    /// Someone entered the room.
    PeerJoined {
        /// Who.
        peer: PeerInfo,
    },
    /// Someone left the room (hung up, or was gone longer than the grace period).
    PeerLeft {
        /// Who.
        peer_id: String,
    },
    /// A track can now be subscribed to.
    TrackPublished {
        /// The track.
        track: TrackInfo,
    },
    /// A track is gone; subscriptions to it have ended.
    TrackUnpublished {
        /// Its publisher.
        peer_id: String,
        /// The track.
        #[serde(flatten)]
        track: TrackRef,
    },
    /// An SDP offer from the server; reply with `answer`.
    Offer {
        /// SDP text.
        sdp: String,
    },
    /// The answer to the client's first `offer`.
    Answer {
        /// SDP text.
        sdp: String,
    },
    /// These tracks are now being sent to you (their m-lines carry the same msid).
    Subscribed {
        /// The tracks.
        tracks: Vec<TrackRef>,
    },
    /// These tracks are no longer sent to you.
    Unsubscribed {
        /// The tracks.
        tracks: Vec<TrackRef>,
    },
    /// Chat or application data from another member.
    Message {
        /// The sender's peer id.
        from: String,
        /// What they sent.
        data: serde_json::Value,
    },
    /// Reply to `ping`.
    Pong,
    /// In a cluster, the reply to a `join` of a room this node does not hold while
    /// another node does: join there (with `here: true`). Nodes that prefer the node
    /// already holding a room (`--room-affinity`) send it.
    Redirect {
        /// The other node's address (a URL of its page).
        node: String,
    },
    /// A moderator removed you from the room; the connection closes (4002).
    Kicked {
        /// The moderator's nickname.
        by: String,
        /// Why, if they said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A moderator ended the call for everyone; the connection closes (4003).
    RoomEnded {
        /// The moderator's nickname.
        by: String,
    },
    /// A moderator muted your track from `source`: the server stopped forwarding it
    /// (and announced it unpublished). Publishing it again is up to you.
    Muted {
        /// What was muted.
        source: Source,
        /// The moderator's nickname.
        by: String,
    },
    /// Your simulcast track's layers above `max` (0 is the lowest) are wanted by no
    /// one: pause them (`active: false` on those encodings) and keep the others on.
    Layers {
        /// The track.
        #[serde(flatten)]
        track: TrackRef,
        max: u8,
    },
    /// A moderator locked or unlocked the room.
    RoomLocked {
        /// Locked now.
        locked: bool,
        /// The moderator's nickname.
        by: String,
    },
    /// Something the client sent was refused; nothing else changed.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable explanation.
        reason: String,
        /// The `id` of the request that was refused, when it had one (see
        /// [`crate::Request`]); absent for errors no request caused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<crate::RequestId>,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a JSON object.
    BadJson,
    /// `type` names no message of this protocol.
    UnknownType,
    /// A field is missing or has the wrong type or value.
    InvalidMessage,
    /// The room name is empty, too long or has characters outside `A-Z a-z 0-9 - _ .`
    InvalidRoom,
    /// The nickname is empty, too long or has control characters.
    InvalidNickname,
    /// The message needs a joined session first.
    NotJoined,
    /// This connection has already joined.
    AlreadyJoined,
    /// The token names no session that can be resumed.
    SessionExpired,
    /// The SDP could not be used; the peer's state is unchanged.
    BadSdp,
    /// An offer from the client was not expected (the server makes every offer after the first).
    UnexpectedOffer,
    /// An answer arrived but the server had no offer outstanding.
    UnexpectedAnswer,
    /// No such track in the room.
    TrackNotFound,
    /// A track with these ids is already published in the room.
    TrackExists,
    /// The member already publishes as many tracks as a member may (its first offer, or a
    /// `publish`, asked for more).
    TooManyTracks,
    /// The room has as many members as it may.
    RoomFull,
    /// The server has as many rooms as it may.
    ServerFull,
    /// Too many messages; slow down.
    RateLimited,
    /// Another connection took over this session; this one is closed.
    Replaced,
    /// The server ended this client's media session (ICE consent lost, a DTLS or
    /// media error); the connection is closed and the client may join again.
    MediaEnded,
    /// The server could not do it right now (for example while shutting down).
    Unavailable,
    /// The member's grants do not allow it (`--auth`): `reason` says which rule.
    Forbidden,
    /// The room needs a password, and the join had none or a wrong one; join again
    /// with `password`.
    PasswordRequired,
}

impl ClientMessage {
    /// The value of `"type"` of every message a client may send: the one list of them.
    /// [`ClientMessage::type_name`] maps each variant to its entry, and a test checks
    /// that the two agree with serde's tags.
    pub const TYPES: [&'static str; 15] = [
        "join",
        "offer",
        "answer",
        "publish",
        "unpublish",
        "subscribe",
        "unsubscribe",
        "message",
        "ping",
        "leave",
        "kick",
        "mute",
        "lock_room",
        "end_room",
        "tile_sizes",
    ];

    /// This message's `"type"`.
    pub fn type_name(&self) -> &'static str {
        let i = match self {
            ClientMessage::Join { .. } => 0,
            ClientMessage::Offer { .. } => 1,
            ClientMessage::Answer { .. } => 2,
            ClientMessage::Publish { .. } => 3,
            ClientMessage::Unpublish { .. } => 4,
            ClientMessage::Subscribe { .. } => 5,
            ClientMessage::Unsubscribe { .. } => 6,
            ClientMessage::Message { .. } => 7,
            ClientMessage::Ping => 8,
            ClientMessage::Leave => 9,
            ClientMessage::Kick { .. } => 10,
            ClientMessage::Mute { .. } => 11,
            ClientMessage::LockRoom { .. } => 12,
            ClientMessage::EndRoom => 13,
            ClientMessage::TileSizes { .. } => 14,
        };
        Self::TYPES[i]
    }
}

impl TrackRef {
    /// Shorthand constructor.
    pub fn new(stream_id: impl Into<String>, track_id: impl Into<String>, kind: Kind) -> Self {
        Self {
            stream_id: stream_id.into(),
            track_id: track_id.into(),
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_use_type_tag_and_camel_case() {
        let m = ClientMessage::Subscribe {
            tracks: vec![TrackRef::new("s", "t", Kind::Video)],
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"type":"subscribe","tracks":[{"streamId":"s","trackId":"t","kind":"video"}]}"#
        );
        assert_eq!(serde_json::from_str::<ClientMessage>(&json).unwrap(), m);
    }

    #[test]
    fn flattened_track_fields() {
        let json = r#"{"type":"publish","streamId":"s","trackId":"t","kind":"audio"}"#;
        let m: ClientMessage = serde_json::from_str(json).unwrap();
        assert_eq!(
            m,
            ClientMessage::Publish {
                track: TrackRef::new("s", "t", Kind::Audio)
            }
        );
    }

    #[test]
    fn error_codes_are_snake_case() {
        let m = ServerMessage::Error {
            code: ErrorCode::TrackNotFound,
            reason: "x".into(),
            id: None,
        };
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""code":"track_not_found""#), "{json}");
    }

    #[test]
    fn the_list_of_types_is_serdes_tags() {
        let t = || TrackRef::new("s", "t", Kind::Audio);
        let every = [
            ClientMessage::Join {
                room: "r".into(),
                nickname: "n".into(),
                token: None,
                here: false,
                access_token: None,
                password: None,
            },
            ClientMessage::Offer { sdp: "v=0".into() },
            ClientMessage::Answer { sdp: "v=0".into() },
            ClientMessage::Publish { track: t() },
            ClientMessage::Unpublish { track: t() },
            ClientMessage::Subscribe { tracks: vec![t()] },
            ClientMessage::Unsubscribe { tracks: vec![t()] },
            ClientMessage::Message {
                data: serde_json::json!("hi"),
                to: None,
            },
            ClientMessage::Ping,
            ClientMessage::Leave,
            ClientMessage::Kick {
                peer_id: "p".into(),
                reason: None,
            },
            ClientMessage::Mute {
                peer_id: "p".into(),
                source: Source::Microphone,
            },
            ClientMessage::LockRoom { locked: true },
            ClientMessage::EndRoom,
            ClientMessage::TileSizes {
                tiles: vec![TileSize {
                    track: TrackRef::new("s", "t", Kind::Video),
                    width: 320,
                    height: 180,
                }],
            },
        ];
        let names: Vec<&str> = every.iter().map(ClientMessage::type_name).collect();
        assert_eq!(names, ClientMessage::TYPES, "one sample per type, in order");
        for m in &every {
            let json = serde_json::to_value(m).unwrap();
            assert_eq!(json["type"], m.type_name());
        }
    }

    #[test]
    fn missing_field_and_wrong_type_are_errors() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"join","room":"a"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"offer","sdp":5}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"nope"}"#).is_err());
    }
}
