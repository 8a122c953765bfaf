//! The signalling protocol's state machine, sans-IO: WebSocket events, shard notices
//! and the time come in; messages to send, connections to close and commands for the
//! shards come out (in [`App::take_output`]). `server.rs` wires it to sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::factory::PeerFactory;
use engine::msg::{Control, Notice, PeerId, ShardId, Subscription, TrackId, TrackName};
use protocol::{
    ClientMessage, CodecInfo, ErrorCode, Kind, PeerInfo, ServerMessage, TrackInfo, TrackRef,
};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::MediaKind;

use crate::names::{valid_msid_part, valid_nickname};
use crate::placement::Placement;
use crate::rooms::{RoomTrack, Rooms};
use crate::transport::{ConnId, valid_room_name};

/// WebSocket close codes the server uses.
pub mod close {
    /// The client left.
    pub const NORMAL: u16 = 1000;
    /// Nothing heard from the client for too long.
    pub const IDLE: u16 = 1001;
    /// The client broke a rule of the protocol too often.
    pub const POLICY: u16 = 1008;
    /// Another connection took over this session.
    pub const REPLACED: u16 = 4000;
    /// The server ended the client's media session.
    pub const MEDIA_ENDED: u16 = 4001;
    /// The server cannot take the client now (every media shard is saturated).
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Tunables of the signalling layer.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// How long a session outlives its WebSocket, waiting for a reconnect.
    pub reconnect_grace: Duration,
    /// A connection that sends nothing (not even `ping`) for this long is closed.
    pub idle_timeout: Duration,
    /// Members a room may have.
    pub max_peers_per_room: usize,
    /// Rooms the server may hold.
    pub max_rooms: usize,
    /// A room spreads over the shards once it has this many members.
    pub spread_after: usize,
    /// A shard busy this share of its time or more (0 to 1) gets no new peer while
    /// another is less busy, and when every shard is, new sessions are refused
    /// (`unavailable`). 1: never.
    pub max_shard_load: f64,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            reconnect_grace: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_peers_per_room: 100,
            max_rooms: 10_000,
            spread_after: 8,
            max_shard_load: 0.9,
        }
    }
}

/// What the app wants done.
#[derive(Debug)]
pub enum Output {
    /// Send a message on a connection.
    Send(ConnId, ServerMessage),
    /// Close a connection with a code and reason.
    Close(ConnId, u16, String),
    /// Send a command to a shard.
    Control(ShardId, Control),
}

struct Conn {
    peer: Option<PeerId>,
    last_seen: Instant,
    /// Unusable SDPs sent; parsing one costs real time, so a client gets a few.
    bad_sdp: u32,
}

/// Unusable SDPs a connection may send before it is closed.
const MAX_BAD_SDP: u32 = 5;
/// Lines in the client's first offer. A browser's offer for its few tracks is a few
/// hundred lines; parsing costs ~4 µs a line, so a cap keeps a hostile offer cheap.
const MAX_OFFER_LINES: usize = 2_000;
/// Lines in an answer: it grows with the m-lines the server offered (one per
/// subscribed track, ~60 lines each in a browser's answer).
const MAX_ANSWER_LINES: usize = 20_000;

struct Session {
    id: PeerId,
    room: String,
    nickname: String,
    token: String,
    conn: Option<ConnId>,
    detached_at: Option<Instant>,
    /// Set once the client's first offer is accepted.
    shard: Option<ShardId>,
    /// Its shard said ICE and DTLS are up: its media counts in the shard's busy share.
    connected: bool,
    /// The server's offer awaiting an answer (re-sent when the client resumes).
    pending_offer: Option<String>,
    subscribed: HashMap<TrackId, TrackRef>,
}

/// The state machine. See the module docs.
pub struct App {
    config: AppConfig,
    factory: PeerFactory,
    shard_addrs: Vec<SocketAddr>,
    placement: Placement,
    rooms: Rooms,
    sessions: HashMap<PeerId, Session>,
    tokens: HashMap<String, PeerId>,
    conns: HashMap<ConnId, Conn>,
    next_peer: u64,
    out: Vec<Output>,
}

type Refusal = (ErrorCode, String);

fn refuse<T>(code: ErrorCode, reason: impl Into<String>) -> Result<T, Refusal> {
    Err((code, reason.into()))
}

impl App {
    /// An app whose shards are reached at `shard_addrs` (index = shard id).
    pub fn new(config: AppConfig, factory: PeerFactory, shard_addrs: Vec<SocketAddr>) -> Self {
        let placement = Placement::new(
            shard_addrs.len(),
            config.spread_after,
            config.max_shard_load,
        );
        Self {
            config,
            factory,
            shard_addrs,
            placement,
            rooms: Rooms::default(),
            sessions: HashMap::new(),
            tokens: HashMap::new(),
            conns: HashMap::new(),
            next_peer: 1,
            out: Vec::new(),
        }
    }

    /// Everything the app wants done since the last call.
    pub fn take_output(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// How busy each shard was lately (0 to 1, indexed by shard id), as the shards
    /// report it: new peers avoid saturated shards, and are refused when all are.
    pub fn set_shard_busy(&mut self, busy: &[f64]) {
        self.placement.set_busy(busy);
    }

    /// Number of rooms with someone in them.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Number of sessions (joined peers, connected or within their grace period).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// A WebSocket opened.
    pub fn on_open(&mut self, now: Instant, conn: ConnId) {
        self.conns.insert(
            conn,
            Conn {
                peer: None,
                last_seen: now,
                bad_sdp: 0,
            },
        );
    }

    /// A WebSocket closed. Its session, if any, waits out the reconnect grace period.
    pub fn on_closed(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(s) = c.peer.and_then(|p| self.sessions.get_mut(&p))
            && s.conn == Some(conn)
        {
            s.conn = None;
            s.detached_at = Some(now);
        }
    }

    /// The connection exceeded its message rate; the message was dropped.
    pub fn on_rate_limited(&mut self, conn: ConnId) {
        self.error(
            conn,
            ErrorCode::RateLimited,
            "too many messages; this one was dropped",
        );
    }

    /// A text message arrived.
    pub fn on_text(&mut self, now: Instant, conn: ConnId, text: &str) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.last_seen = now;
        let peer = c.peer;
        let msg = match parse(text) {
            Ok(m) => m,
            Err((code, reason)) => return self.error(conn, code, reason),
        };
        let result = match (peer, msg) {
            (_, ClientMessage::Ping) => {
                self.send(conn, ServerMessage::Pong);
                Ok(())
            }
            (
                None,
                ClientMessage::Join {
                    room,
                    nickname,
                    token,
                },
            ) => self.join(now, conn, room, nickname, token),
            (Some(_), ClientMessage::Join { .. }) => refuse(
                ErrorCode::AlreadyJoined,
                "this connection has already joined",
            ),
            (None, _) => refuse(ErrorCode::NotJoined, "send join first"),
            (Some(p), ClientMessage::Offer { sdp }) => self.offer(now, p, &sdp),
            (Some(p), ClientMessage::Answer { sdp }) => self.answer(p, &sdp),
            (Some(p), ClientMessage::Publish { track }) => self.publish(p, track),
            (Some(p), ClientMessage::Unpublish { track }) => self.unpublish(p, track),
            (Some(p), ClientMessage::Subscribe { tracks }) => self.subscribe(p, tracks),
            (Some(p), ClientMessage::Unsubscribe { tracks }) => self.unsubscribe(p, tracks),
            (Some(p), ClientMessage::Message { data, to }) => self.relay(p, data, to),
            (Some(p), ClientMessage::Leave) => {
                self.end_session(p);
                self.out
                    .push(Output::Close(conn, close::NORMAL, "left".into()));
                Ok(())
            }
        };
        if let Err((code, reason)) = result {
            self.error(conn, code, reason);
            match code {
                ErrorCode::BadSdp => self.count_bad_sdp(conn),
                ErrorCode::Unavailable => self.out.push(Output::Close(
                    conn,
                    close::TRY_AGAIN_LATER,
                    "at capacity".into(),
                )),
                _ => {}
            }
        }
    }

    fn count_bad_sdp(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.bad_sdp += 1;
        if c.bad_sdp >= MAX_BAD_SDP {
            self.out.push(Output::Close(
                conn,
                close::POLICY,
                "too many unusable SDPs".into(),
            ));
        }
    }

    /// A shard reported something.
    pub fn on_notice(&mut self, notice: Notice) {
        match notice {
            Notice::Connected { peer } => {
                if let Some(s) = self.sessions.get_mut(&peer)
                    && let Some(shard) = s.shard
                    && !s.connected
                {
                    s.connected = true;
                    self.placement.connected(shard);
                }
            }
            Notice::UnknownPeer { .. } => {}
            Notice::TrackPublished {
                peer,
                track,
                name,
                codec,
            } => self.track_published(peer, track, name, codec),
            Notice::TrackUnpublished { peer, track } => self.track_unpublished(peer, track),
            Notice::Offer { peer, offer } => {
                let Some(s) = self.sessions.get_mut(&peer) else {
                    return;
                };
                let sdp = offer.to_sdp_string();
                s.pending_offer = Some(sdp.clone());
                if let Some(conn) = s.conn {
                    self.send(conn, ServerMessage::Offer { sdp });
                }
            }
            Notice::Subscribed { peer, tracks } => {
                let Some(s) = self.sessions.get_mut(&peer) else {
                    return;
                };
                let room = self.rooms.get(&s.room);
                let mut refs = Vec::new();
                for t in tracks {
                    if let Some(rt) = room.and_then(|r| r.track(t)) {
                        let r = track_ref(&rt.name);
                        s.subscribed.insert(t, r.clone());
                        refs.push(r);
                    }
                }
                if let (Some(conn), false) = (s.conn, refs.is_empty()) {
                    self.send(conn, ServerMessage::Subscribed { tracks: refs });
                }
            }
            Notice::Unsubscribed { peer, tracks } => {
                let Some(s) = self.sessions.get_mut(&peer) else {
                    return;
                };
                let refs: Vec<TrackRef> = tracks
                    .iter()
                    .filter_map(|t| s.subscribed.remove(t))
                    .collect();
                if let (Some(conn), false) = (s.conn, refs.is_empty()) {
                    self.send(conn, ServerMessage::Unsubscribed { tracks: refs });
                }
            }
            Notice::BadAnswer { peer, reason } => {
                if let Some(conn) = self.sessions.get(&peer).and_then(|s| s.conn) {
                    self.error(
                        conn,
                        ErrorCode::BadSdp,
                        format!("the answer could not be used: {reason}"),
                    );
                    self.count_bad_sdp(conn);
                }
            }
            Notice::PeerGone { peer, reason } => {
                let conn = self.sessions.get(&peer).and_then(|s| s.conn);
                // The shard has already dropped the peer: count it out here, and keep
                // end_session from telling the shard again.
                if let Some(s) = self.sessions.get_mut(&peer)
                    && let Some(k) = s.shard.take()
                {
                    self.placement.remove(k, s.connected);
                }
                self.end_session(peer);
                if let Some(conn) = conn {
                    let reason = format!("your media session ended: {reason}");
                    self.error(conn, ErrorCode::MediaEnded, reason.clone());
                    self.out
                        .push(Output::Close(conn, close::MEDIA_ENDED, reason));
                }
            }
        }
    }

    /// Time passes: expire sessions past their grace period and silent connections.
    pub fn tick(&mut self, now: Instant) {
        let grace = self.config.reconnect_grace;
        let expired: Vec<PeerId> = self
            .sessions
            .values()
            .filter(|s| s.detached_at.is_some_and(|t| now >= t + grace))
            .map(|s| s.id)
            .collect();
        for p in expired {
            self.end_session(p);
        }
        let idle = self.config.idle_timeout;
        let silent: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| now >= c.last_seen + idle)
            .map(|(id, _)| *id)
            .collect();
        for conn in silent {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.last_seen = now; // close once
            }
            self.out.push(Output::Close(
                conn,
                close::IDLE,
                "nothing received for too long".into(),
            ));
        }
    }

    // ---- requests ----

    fn join(
        &mut self,
        now: Instant,
        conn: ConnId,
        room: String,
        nickname: String,
        token: Option<String>,
    ) -> Result<(), Refusal> {
        if !valid_room_name(&room) {
            return refuse(
                ErrorCode::InvalidRoom,
                "room names are 1-64 characters of A-Z a-z 0-9 - _ .",
            );
        }
        if !valid_nickname(&nickname) {
            return refuse(
                ErrorCode::InvalidNickname,
                "nicknames are 1-64 characters without control characters",
            );
        }
        if let Some(token) = token {
            return self.resume(now, conn, &room, &nickname, &token);
        }
        let size = self.rooms.get(&room).map_or(0, |r| r.members.len());
        if size == 0 && self.rooms.len() >= self.config.max_rooms {
            return refuse(
                ErrorCode::ServerFull,
                "this server holds as many rooms as it may",
            );
        }
        if size >= self.config.max_peers_per_room {
            return refuse(
                ErrorCode::RoomFull,
                format!("room {room} has {size} members, the most it may have"),
            );
        }
        if let Some(least) = self.placement.saturated() {
            // Admitting more would hurt the calls the shards already carry, and the
            // newcomer's own handshake would wait behind their media and time out.
            let pct = |x: f64| (x * 100.0).round();
            let joining = if least.expected > least.busy {
                format!(
                    " and will be at {}% once the peers joining it now are in",
                    pct(least.expected)
                )
            } else {
                String::new()
            };
            return refuse(
                ErrorCode::Unavailable,
                format!(
                    "the server is at capacity: the least busy media shard is at {}%{joining} \
                     (the most this server admits to is {}%); try again in a minute",
                    pct(least.busy),
                    pct(self.config.max_shard_load),
                ),
            );
        }
        let id = PeerId(self.next_peer);
        self.next_peer += 1;
        let token = crate::random::token();
        let info = PeerInfo {
            peer_id: peer_id_str(id),
            nickname: nickname.clone(),
        };
        let others: Vec<PeerId> = self
            .rooms
            .get(&room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for p in &others {
            if let Some(c) = self.sessions.get(p).and_then(|s| s.conn) {
                self.send(c, ServerMessage::PeerJoined { peer: info.clone() });
            }
        }
        self.rooms.join(&room, id);
        self.tokens.insert(token.clone(), id);
        self.sessions.insert(
            id,
            Session {
                id,
                room: room.clone(),
                nickname,
                token: token.clone(),
                conn: Some(conn),
                detached_at: None,
                shard: None,
                connected: false,
                pending_offer: None,
                subscribed: HashMap::new(),
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(id);
        }
        let joined = self.joined_message(id, false);
        self.send(conn, joined);
        Ok(())
    }

    fn resume(
        &mut self,
        _now: Instant,
        conn: ConnId,
        room: &str,
        nickname: &str,
        token: &str,
    ) -> Result<(), Refusal> {
        let Some(&id) = self.tokens.get(token) else {
            return refuse(
                ErrorCode::SessionExpired,
                "no session with this token; join without one",
            );
        };
        let Some(s) = self.sessions.get_mut(&id) else {
            return refuse(
                ErrorCode::SessionExpired,
                "the session has ended; join without a token",
            );
        };
        if s.room != room || s.nickname != nickname {
            return refuse(
                ErrorCode::SessionExpired,
                "the token belongs to another room or nickname",
            );
        }
        if let Some(old) = s.conn.replace(conn) {
            self.conns.remove(&old);
            let reason = "another connection resumed this session";
            self.out.push(Output::Send(
                old,
                ServerMessage::Error {
                    code: ErrorCode::Replaced,
                    reason: reason.into(),
                },
            ));
            self.out
                .push(Output::Close(old, close::REPLACED, reason.into()));
        }
        s.detached_at = None;
        let pending = s.pending_offer.clone();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(id);
        }
        let joined = self.joined_message(id, true);
        self.send(conn, joined);
        if let Some(sdp) = pending {
            self.send(conn, ServerMessage::Offer { sdp });
        }
        Ok(())
    }

    fn offer(&mut self, now: Instant, peer: PeerId, sdp: &str) -> Result<(), Refusal> {
        let s = self.session(peer)?;
        if s.shard.is_some() {
            return refuse(
                ErrorCode::UnexpectedOffer,
                "the server makes every offer after the first; answer them, or ask with publish",
            );
        }
        check_lines(sdp, MAX_OFFER_LINES, "offer")?;
        let offer = SdpOffer::from_sdp_string(sdp)
            .map_err(|_| (ErrorCode::BadSdp, "the offer is not valid SDP".to_string()))?;
        let room_shards: Vec<ShardId> = self
            .rooms
            .get(&s.room)
            .map(|r| {
                r.members
                    .iter()
                    .filter_map(|p| self.sessions.get(p)?.shard)
                    .collect()
            })
            .unwrap_or_default();
        let shard = self.placement.place(&room_shards);
        let accepted = match self
            .factory
            .accept_offer(now, self.shard_addrs[shard], offer)
        {
            Ok(a) => a,
            Err(e) => {
                self.placement.remove(shard, false);
                return refuse(ErrorCode::BadSdp, format!("the offer cannot be used: {e}"));
            }
        };
        let s = self.sessions.get_mut(&peer).expect("checked above");
        s.shard = Some(shard);
        let conn = s.conn;
        self.out.push(Output::Control(
            shard,
            Control::AddPeer {
                peer,
                rtc: accepted.rtc,
                ufrag: accepted.ufrag,
            },
        ));
        if let Some(conn) = conn {
            self.send(
                conn,
                ServerMessage::Answer {
                    sdp: accepted.answer.to_sdp_string(),
                },
            );
        }
        Ok(())
    }

    fn answer(&mut self, peer: PeerId, sdp: &str) -> Result<(), Refusal> {
        let s = self.session(peer)?;
        let (Some(shard), Some(_)) = (s.shard, &s.pending_offer) else {
            return refuse(
                ErrorCode::UnexpectedAnswer,
                "no offer from the server is waiting for an answer",
            );
        };
        check_lines(sdp, MAX_ANSWER_LINES, "answer")?;
        let answer = SdpAnswer::from_sdp_string(sdp)
            .map_err(|_| (ErrorCode::BadSdp, "the answer is not valid SDP".to_string()))?;
        if let Some(s) = self.sessions.get_mut(&peer) {
            s.pending_offer = None;
        }
        self.out
            .push(Output::Control(shard, Control::Answer { peer, answer }));
        Ok(())
    }

    fn publish(&mut self, peer: PeerId, track: TrackRef) -> Result<(), Refusal> {
        let shard = self.media_shard(peer)?;
        let name = track_name(&track)?;
        let s = self.session(peer)?;
        if self
            .rooms
            .get(&s.room)
            .and_then(|r| r.track_named(&name))
            .is_some()
        {
            return refuse(
                ErrorCode::TrackExists,
                "a track with these ids is already published in the room",
            );
        }
        self.out.push(Output::Control(
            shard,
            Control::RequestPublish { peer, name },
        ));
        Ok(())
    }

    fn unpublish(&mut self, peer: PeerId, track: TrackRef) -> Result<(), Refusal> {
        let shard = self.media_shard(peer)?;
        let name = track_name(&track)?;
        let s = self.session(peer)?;
        let Some(t) = self
            .rooms
            .get(&s.room)
            .and_then(|r| r.track_named(&name))
            .filter(|t| t.peer == peer)
        else {
            return refuse(
                ErrorCode::TrackNotFound,
                "you publish no track with these ids",
            );
        };
        self.out.push(Output::Control(
            shard,
            Control::Unpublish {
                peer,
                track: t.track,
            },
        ));
        Ok(())
    }

    fn subscribe(&mut self, peer: PeerId, tracks: Vec<TrackRef>) -> Result<(), Refusal> {
        let shard = self.media_shard(peer)?;
        let s = self.session(peer)?;
        let room = self.rooms.get(&s.room);
        let mut subs = Vec::with_capacity(tracks.len());
        for t in &tracks {
            let name = track_name(t)?;
            let Some(rt) = room.and_then(|r| r.track_named(&name)) else {
                return refuse(
                    ErrorCode::TrackNotFound,
                    format!(
                        "no track {}/{} ({:?}) in this room",
                        t.stream_id, t.track_id, t.kind
                    ),
                );
            };
            subs.push(Subscription {
                track: rt.track,
                name,
            });
        }
        if !subs.is_empty() {
            self.out.push(Output::Control(
                shard,
                Control::Subscribe { peer, tracks: subs },
            ));
        }
        Ok(())
    }

    fn unsubscribe(&mut self, peer: PeerId, tracks: Vec<TrackRef>) -> Result<(), Refusal> {
        let shard = self.media_shard(peer)?;
        let s = self.session(peer)?;
        let mut ids = Vec::with_capacity(tracks.len());
        for t in &tracks {
            let Some((&id, _)) = s.subscribed.iter().find(|(_, r)| *r == t) else {
                return refuse(
                    ErrorCode::TrackNotFound,
                    format!(
                        "you are not subscribed to {}/{} ({:?})",
                        t.stream_id, t.track_id, t.kind
                    ),
                );
            };
            ids.push(id);
        }
        if !ids.is_empty() {
            self.out.push(Output::Control(
                shard,
                Control::Unsubscribe { peer, tracks: ids },
            ));
        }
        Ok(())
    }

    fn relay(
        &mut self,
        peer: PeerId,
        data: serde_json::Value,
        to: Option<String>,
    ) -> Result<(), Refusal> {
        let s = self.session(peer)?;
        let members = self
            .rooms
            .get(&s.room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        let targets: Vec<PeerId> = match to {
            Some(to) => {
                let Some(p) = members.iter().copied().find(|p| peer_id_str(*p) == to) else {
                    return refuse(
                        ErrorCode::InvalidMessage,
                        format!("no peer {to} in this room"),
                    );
                };
                vec![p]
            }
            None => members.into_iter().filter(|p| *p != peer).collect(),
        };
        let msg = ServerMessage::Message {
            from: peer_id_str(peer),
            data,
        };
        for p in targets {
            if let Some(c) = self.sessions.get(&p).and_then(|s| s.conn) {
                self.send(c, msg.clone());
            }
        }
        Ok(())
    }

    // ---- shard notices ----

    fn track_published(
        &mut self,
        peer: PeerId,
        track: TrackId,
        name: TrackName,
        codec: engine::codecs::CodecDesc,
    ) {
        let Some(s) = self.sessions.get(&peer) else {
            return;
        };
        let (room_name, conn, shard) = (s.room.clone(), s.conn, s.shard);
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        if room.track_named(&name).is_some() {
            if let Some(shard) = shard {
                self.out
                    .push(Output::Control(shard, Control::Unpublish { peer, track }));
            }
            if let Some(conn) = conn {
                self.error(
                    conn,
                    ErrorCode::TrackExists,
                    format!(
                        "a track {}/{} is already published in the room; yours is not forwarded",
                        name.stream_id, name.track_id
                    ),
                );
            }
            return;
        }
        let rt = RoomTrack {
            track,
            peer,
            name,
            codec,
        };
        let info = track_info(&rt);
        room.tracks.push(rt);
        let members = room.members.clone();
        for p in members {
            if let Some(c) = self.sessions.get(&p).and_then(|s| s.conn) {
                self.send(
                    c,
                    ServerMessage::TrackPublished {
                        track: info.clone(),
                    },
                );
            }
        }
    }

    fn track_unpublished(&mut self, peer: PeerId, track: TrackId) {
        let Some(s) = self.sessions.get(&peer) else {
            return;
        };
        let room_name = s.room.clone();
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        let Some(i) = room.tracks.iter().position(|t| t.track == track) else {
            return;
        };
        let rt = room.tracks.remove(i);
        let members = room.members.clone();
        self.announce_unpublished(&members, &rt);
    }

    /// Tells the room a track is gone and ends every subscription to it.
    fn announce_unpublished(&mut self, members: &[PeerId], rt: &RoomTrack) {
        let msg = ServerMessage::TrackUnpublished {
            peer_id: peer_id_str(rt.peer),
            track: track_ref(&rt.name),
        };
        for p in members {
            let Some(s) = self.sessions.get(p) else {
                continue;
            };
            if let (Some(shard), true) = (s.shard, s.subscribed.contains_key(&rt.track)) {
                self.out.push(Output::Control(
                    shard,
                    Control::Unsubscribe {
                        peer: *p,
                        tracks: vec![rt.track],
                    },
                ));
            }
            if let Some(c) = s.conn {
                self.send(c, msg.clone());
            }
        }
    }

    /// Removes a session for good: its peer, its tracks, its room membership.
    fn end_session(&mut self, peer: PeerId) {
        let Some(s) = self.sessions.remove(&peer) else {
            return;
        };
        self.tokens.remove(&s.token);
        if let Some(c) = s.conn.and_then(|c| self.conns.get_mut(&c)) {
            c.peer = None;
        }
        if let Some(shard) = s.shard {
            self.placement.remove(shard, s.connected);
            self.out
                .push(Output::Control(shard, Control::RemovePeer { peer }));
        }
        let gone = self.rooms.leave(&s.room, peer);
        let members = self
            .rooms
            .get(&s.room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for rt in &gone {
            self.announce_unpublished(&members, rt);
        }
        for p in &members {
            if let Some(c) = self.sessions.get(p).and_then(|s| s.conn) {
                self.send(
                    c,
                    ServerMessage::PeerLeft {
                        peer_id: peer_id_str(peer),
                    },
                );
            }
        }
    }

    // ---- helpers ----

    fn session(&self, peer: PeerId) -> Result<&Session, Refusal> {
        self.sessions
            .get(&peer)
            .ok_or((ErrorCode::NotJoined, "the session has ended".to_string()))
    }

    fn media_shard(&self, peer: PeerId) -> Result<ShardId, Refusal> {
        self.session(peer)?.shard.ok_or((
            ErrorCode::InvalidMessage,
            "send your offer first".to_string(),
        ))
    }

    fn joined_message(&self, id: PeerId, resumed: bool) -> ServerMessage {
        let s = &self.sessions[&id];
        let room = self.rooms.get(&s.room);
        let peers = room
            .map(|r| {
                r.members
                    .iter()
                    .filter(|p| **p != id)
                    .filter_map(|p| self.sessions.get(p))
                    .map(|o| PeerInfo {
                        peer_id: peer_id_str(o.id),
                        nickname: o.nickname.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let tracks = room
            .map(|r| r.tracks.iter().map(track_info).collect())
            .unwrap_or_default();
        ServerMessage::Joined {
            room: s.room.clone(),
            peer_id: peer_id_str(id),
            token: s.token.clone(),
            resumed,
            peers,
            tracks,
        }
    }

    fn send(&mut self, conn: ConnId, msg: ServerMessage) {
        self.out.push(Output::Send(conn, msg));
    }

    fn error(&mut self, conn: ConnId, code: ErrorCode, reason: impl Into<String>) {
        self.send(
            conn,
            ServerMessage::Error {
                code,
                reason: reason.into(),
            },
        );
    }
}

/// Parses a client message, telling malformed JSON, an unknown type and bad fields apart.
fn parse(text: &str) -> Result<ClientMessage, Refusal> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| (ErrorCode::BadJson, format!("not JSON: {e}")))?;
    let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    else {
        return refuse(
            ErrorCode::InvalidMessage,
            "a message is a JSON object with a string field \"type\"",
        );
    };
    const TYPES: [&str; 10] = [
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
    ];
    if !TYPES.contains(&kind.as_str()) {
        let kind: String = kind.chars().take(32).collect();
        return refuse(
            ErrorCode::UnknownType,
            format!("unknown message type {kind:?}"),
        );
    }
    serde_json::from_value(value).map_err(|e| {
        (
            ErrorCode::InvalidMessage,
            format!("bad {kind} message: {e}"),
        )
    })
}

fn check_lines(sdp: &str, max: usize, what: &str) -> Result<(), Refusal> {
    let lines = sdp.bytes().filter(|&b| b == b'\n').count();
    if lines > max {
        return refuse(
            ErrorCode::BadSdp,
            format!("the {what} has {lines} lines; at most {max} are accepted"),
        );
    }
    Ok(())
}

/// Peer ids on the wire are strings.
pub fn peer_id_str(id: PeerId) -> String {
    id.0.to_string()
}

fn track_name(t: &TrackRef) -> Result<TrackName, Refusal> {
    if !valid_msid_part(&t.stream_id) || !valid_msid_part(&t.track_id) {
        return refuse(
            ErrorCode::InvalidMessage,
            "stream and track ids are 1-64 characters of letters, digits and !#$%&'*+-.^_`{|}~",
        );
    }
    Ok(TrackName {
        stream_id: t.stream_id.clone(),
        track_id: t.track_id.clone(),
        kind: match t.kind {
            Kind::Audio => MediaKind::Audio,
            Kind::Video => MediaKind::Video,
        },
    })
}

fn track_ref(n: &TrackName) -> TrackRef {
    TrackRef {
        stream_id: n.stream_id.clone(),
        track_id: n.track_id.clone(),
        kind: match n.kind {
            MediaKind::Audio => Kind::Audio,
            MediaKind::Video => Kind::Video,
        },
    }
}

fn track_info(t: &RoomTrack) -> TrackInfo {
    TrackInfo {
        peer_id: peer_id_str(t.peer),
        track: track_ref(&t.name),
        codec: CodecInfo {
            mime_type: t.codec.mime_type.clone(),
            clock_rate: t.codec.clock_rate,
            channels: t.codec.channels,
            fmtp: t.codec.fmtp.clone(),
        },
    }
}
