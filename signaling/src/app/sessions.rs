//! A session's life: `join` (checked against the room and server limits and the shards'
//! load), resumed with its token after a dropped WebSocket, kept through the reconnect
//! grace period, and ended by `leave`, by the grace running out, or by its shard.

use std::collections::HashMap;
use std::time::Instant;

use engine::msg::{Control, PeerId, ShardId, TrackId};
use protocol::names::{NICKNAME_RULE, ROOM_NAME_RULE, valid_nickname, valid_room_name};
use protocol::{ErrorCode, PeerInfo, RequestId, ServerMessage, TrackRef};

use super::gate::Verdict;
use super::membership::{peer_id_str, track_info};
use super::remote::resume_key;
use super::{App, Output, Refusal, close, refuse};
use crate::transport::ConnId;

/// One member of a room, with or without a connection at the moment.
pub(super) struct Session {
    pub(super) id: PeerId,
    pub(super) room: String,
    pub(super) nickname: String,
    pub(super) token: String,
    pub(super) conn: Option<ConnId>,
    pub(super) detached_at: Option<Instant>,
    /// Set once the client's first offer is accepted.
    pub(super) shard: Option<ShardId>,
    /// Its shard said ICE and DTLS are up: its media counts in the shard's busy share.
    pub(super) connected: bool,
    /// The server's offer awaiting an answer (re-sent when the client resumes).
    pub(super) pending_offer: Option<String>,
    pub(super) subscribed: HashMap<TrackId, TrackRef>,
    /// When the session came to this node (unix ms): in a cluster, the newest node to
    /// hold a member is the one it is on.
    pub(super) since: u64,
    /// What the member may do (`--auth`).
    pub(super) grants: auth::Grants,
    /// The SHA-256 of its access token, if it had one: what a kick bans.
    pub(super) access: Option<String>,
    /// The simulcast layer each video track's tile asks for (`tile_sizes`).
    pub(super) tile_layers: Vec<(TrackRef, u8)>,
    /// Its data channel is open: app messages to it go there (`relay.rs`).
    pub(super) channel: bool,
    /// App messages on its data channel, at the WebSocket's rate (from its first).
    pub(super) channel_limiter: Option<crate::transport::RateLimiter>,
    /// Its file transfers, held to their sizes (`files.rs`).
    pub(super) files: super::files::Transfers,
}

/// Who a new session is for.
pub(super) struct Member {
    pub(super) id: PeerId,
    pub(super) room: String,
    pub(super) nickname: String,
    pub(super) token: String,
    pub(super) grants: auth::Grants,
    /// The SHA-256 of its access token, if it had one: what a kick bans.
    pub(super) access: Option<String>,
}

/// A client's `join`, as it came, and what the provider said of it once asked.
pub(super) struct Joining {
    /// The request's id, for the answer that may come later.
    pub(super) id: Option<RequestId>,
    pub(super) room: String,
    pub(super) nickname: String,
    /// Resume this session.
    pub(super) token: Option<String>,
    /// Never sent on to another node.
    pub(super) here: bool,
    pub(super) access_token: Option<String>,
    pub(super) password: Option<String>,
    /// The webhook provider's verdict, once it came.
    pub(super) verdict: Option<Verdict>,
}

impl App {
    pub(super) fn join(&mut self, now: Instant, conn: ConnId, j: Joining) -> Result<(), Refusal> {
        if !valid_room_name(&j.room) {
            return refuse(ErrorCode::InvalidRoom, ROOM_NAME_RULE);
        }
        if !valid_nickname(&j.nickname) {
            return refuse(ErrorCode::InvalidNickname, NICKNAME_RULE);
        }
        if self.asking.contains_key(&conn) {
            return refuse(
                ErrorCode::AlreadyJoined,
                "this connection's join is being checked already",
            );
        }
        if let Some(token) = &j.token
            && self.tokens.contains_key(token)
        {
            let token = token.clone();
            return self.resume(now, conn, &j.room, &token);
        }
        // A new session, or one moving here from a node that is gone: the provider's word
        // first.
        let Some(j) = self.asks_provider(conn, j) else {
            return Ok(()); // until the webhook answers
        };
        if j.token.is_some() {
            return self.take_over(now, conn, j);
        }
        let Some(j) = self.holds_back(now, conn, j) else {
            return Ok(()); // until the cluster says where the room is
        };
        self.join_here(now, conn, j)
    }

    /// A new session in `room` on this node.
    pub(super) fn join_here(
        &mut self,
        now: Instant,
        conn: ConnId,
        j: Joining,
    ) -> Result<(), Refusal> {
        let (grants, nickname) = self.authorize(now, conn, &j)?;
        let room = j.room;
        self.admit(&room, false)?;
        let token = crate::random::token().map_err(|e| {
            tracing::error!("no random bytes for a session token: {e}");
            (
                ErrorCode::Unavailable,
                "the server cannot make a session token right now; try again in a minute"
                    .to_string(),
            )
        })?;
        let id = PeerId(self.next_peer);
        self.next_peer += 1;
        self.enter_room(&room, id, &nickname, grants.hidden);
        self.set_room_password(&room, j.password.as_deref());
        let member = Member {
            id,
            room,
            nickname,
            token,
            grants,
            access: j.access_token.as_deref().map(resume_key),
        };
        self.start_session(conn, member, false);
        Ok(())
    }

    /// A session for `member`, already in its room, on `conn`; it is told `joined`.
    pub(super) fn start_session(&mut self, conn: ConnId, member: Member, resumed: bool) {
        let Member {
            id,
            room,
            nickname,
            token,
            grants,
            access,
        } = member;
        self.tokens.insert(token.clone(), id);
        self.sessions.insert(
            id,
            Session {
                id,
                room,
                nickname,
                token,
                conn: Some(conn),
                detached_at: None,
                shard: None,
                connected: false,
                pending_offer: None,
                subscribed: HashMap::new(),
                since: unix_ms(),
                grants,
                access,
                tile_layers: Vec::new(),
                channel: false,
                channel_limiter: None,
                files: super::files::Transfers::default(),
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(id);
        }
        let joined = self.joined_message(id, resumed);
        self.send(conn, joined);
    }

    /// Whether a new session may join `room`: the room and the server have space, and
    /// the shards can carry one more. A member `moving` here from another node is
    /// already counted in the room.
    pub(super) fn admit(&self, room: &str, moving: bool) -> Result<(), Refusal> {
        if self.draining {
            return refuse(
                ErrorCode::Unavailable,
                "the server is shutting down; try again in a moment",
            );
        }
        if self.descriptors_low {
            return refuse(
                ErrorCode::Unavailable,
                "the server has too many connections open; try again in a moment",
            );
        }
        let size = self
            .rooms
            .get(room)
            .map_or(0, |r| r.members.len() + r.remote.len())
            .saturating_sub(usize::from(moving));
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
        Ok(())
    }

    fn resume(
        &mut self,
        _now: Instant,
        conn: ConnId,
        room: &str,
        token: &str,
    ) -> Result<(), Refusal> {
        let Some(&id) = self.tokens.get(token) else {
            return refuse(
                ErrorCode::SessionExpired,
                "the session has ended; join without a token",
            );
        };
        let Some(s) = self.sessions.get_mut(&id) else {
            return refuse(
                ErrorCode::SessionExpired,
                "the session has ended; join without a token",
            );
        };
        // The token is the session's secret; the nickname is not checked (an access
        // token may have fixed it to another than the page sends).
        if s.room != room {
            return refuse(
                ErrorCode::SessionExpired,
                "the token belongs to another room",
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
                    id: None,
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

    /// Ends the sessions whose connection stayed away past the reconnect grace.
    pub(super) fn expire_detached(&mut self, now: Instant) {
        let grace = self.config.reconnect_grace;
        let expired: Vec<PeerId> = self
            .sessions
            .values()
            .filter(|s| s.detached_at.is_some_and(|t| now >= t + grace))
            .map(|s| s.id)
            .collect();
        for p in expired {
            self.end_session(p, "its connection stayed away past the reconnect grace");
        }
    }

    /// The shard says the peer's ICE and DTLS are up.
    pub(super) fn media_connected(&mut self, peer: PeerId) {
        if let Some(s) = self.sessions.get_mut(&peer)
            && let Some(shard) = s.shard
            && !s.connected
        {
            s.connected = true;
            self.placement.connected(shard);
        }
    }

    /// The shard dropped the peer: the session ends and the client is told why.
    pub(super) fn media_ended(&mut self, peer: PeerId, reason: String) {
        let conn = self.conn_of(peer);
        // The shard has already dropped the peer: count it out here, and keep
        // end_session from telling the shard again.
        if let Some(s) = self.sessions.get_mut(&peer)
            && let Some(k) = s.shard.take()
        {
            self.placement.remove(k, s.connected);
        }
        self.end_session(peer, &format!("media ended: {reason}"));
        if let Some(conn) = conn {
            let reason = format!("your media session ended: {reason}");
            self.error(conn, None, ErrorCode::MediaEnded, reason.clone());
            self.out
                .push(Output::Close(conn, close::MEDIA_ENDED, reason));
        }
    }

    /// Removes a session for good: its peer, its tracks, its room membership. `why` goes
    /// into the one info line every ended session gets.
    pub(super) fn end_session(&mut self, peer: PeerId, why: &str) {
        let Some(s) = self.sessions.remove(&peer) else {
            return;
        };
        tracing::info!(peer = peer.0, room = %s.room, "session ended: {why}");
        self.tokens.remove(&s.token);
        if let Some(c) = s.conn.and_then(|c| self.conns.get_mut(&c)) {
            c.peer = None;
        }
        if let Some(shard) = s.shard {
            self.placement.remove(shard, s.connected);
            self.out
                .push(Output::Control(shard, Control::RemovePeer { peer }));
        }
        self.leave_room(&s.room, peer, s.grants.hidden);
    }

    /// The answer to `join`: who the client is and what the room holds now.
    fn joined_message(&self, id: PeerId, resumed: bool) -> ServerMessage {
        let s = &self.sessions[&id];
        let room = self.rooms.get(&s.room);
        let peers = room
            .map(|r| {
                r.members
                    .iter()
                    .filter(|p| **p != id)
                    .filter_map(|p| self.sessions.get(p))
                    .filter(|o| !o.grants.hidden)
                    .map(|o| PeerInfo {
                        peer_id: peer_id_str(o.id),
                        nickname: o.nickname.clone(),
                    })
                    .chain(r.remote.iter().map(|m| PeerInfo {
                        peer_id: peer_id_str(m.peer),
                        nickname: m.nickname.clone(),
                    }))
                    .collect()
            })
            .unwrap_or_default();
        let tracks = room
            .map(|r| r.tracks.iter().map(track_info).collect())
            .unwrap_or_default();
        // TURN credentials need the wall clock (their expiry is Unix time).
        let ice_servers = self
            .config
            .ice
            .for_session(&peer_id_str(id), std::time::SystemTime::now());
        ServerMessage::Joined {
            room: s.room.clone(),
            peer_id: peer_id_str(id),
            token: s.token.clone(),
            resumed,
            peers,
            tracks,
            ice_servers,
            nodes: self.other_nodes.clone(),
            nickname: s.nickname.clone(),
            allowed: s.grants.allowed(),
            locked: room.is_some_and(|r| r.locked),
            mesh_max: (self.config.mesh_max >= 2).then(|| self.config.mesh_max.min(2) as u8),
        }
    }
}

/// Now, in milliseconds since the Unix epoch.
pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
