//! The signalling protocol's state machine, sans-IO: WebSocket events, shard notices
//! and the time come in; messages to send, connections to close and commands for the
//! shards come out (in [`App::take_output`]). `server.rs` wires it to sockets.
//!
//! This file holds the state and the dispatch; each concern has a file beside it:
//!
//! | file | concern |
//! |---|---|
//! | `sessions.rs` | join, admission, resume with a token, the reconnect grace, the end of a session |
//! | `membership.rs` | who is in a room and what it publishes, announced to the others |
//! | `negotiation.rs` | the client's first offer (and placement on a shard), answers, publish, unpublish |
//! | `subscriptions.rs` | subscribe and unsubscribe, and the shard's word that they took effect |
//! | `relay.rs` | chat and application data relayed to the room or to one member |
//! | `remote.rs` | members on other nodes (multi-node), their tracks and messages |
//! | `affinity.rs` | in a cluster, a join goes to the node that already holds its room |
//! | `gate.rs` | who gets in: the provider's grants (the webhook asked), a room's lock, bans and password |
//! | `moderation.rs` | what a `roomAdmin` may do: kick, mute, lock, end |

mod affinity;
mod files;
mod gate;
mod membership;
mod moderation;
mod negotiation;
mod relay;
mod remote;
mod sessions;
mod subscriptions;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use engine::factory::{MediaAddrs, PeerFactory};
use engine::msg::{Notice, PeerId, ShardId};
use protocol::{ClientMessage, ErrorCode, Request, RequestId, ServerMessage};

use crate::placement::Placement;
use crate::rooms::Rooms;
use crate::transport::ConnId;

pub use affinity::ASK_TIMEOUT;
pub use gate::{GUESS_WINDOW, GUESSES, Visitor};
pub use membership::peer_id_str;
pub use moderation::Moderation;
pub use remote::{MemberRecord, TrackRecord};
use sessions::Session;
pub use subscriptions::layer_for_tile;

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
    /// A moderator removed the member from the room.
    pub const KICKED: u16 = 4002;
    /// A moderator ended the call for everyone.
    pub const ROOM_ENDED: u16 = 4003;
    /// The server cannot take the client now (every media shard is saturated).
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The server is restarting: reconnect (to it, or another behind the same address).
    pub const SERVICE_RESTART: u16 = 1012;
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
    /// Tracks one member may publish: a camera, a microphone, a screen and its sound. It
    /// bounds the largest subscription (and so the largest SDP) a room can need.
    pub max_tracks_per_member: usize,
    /// A room spreads over the shards once it has this many members and its shard is
    /// busy `spread_load` of its time (0 to 1).
    pub spread_after: usize,
    pub spread_load: f64,
    /// A shard busy this share of its time or more (0 to 1) gets no new peer while
    /// another is less busy, and when every shard is, new sessions are refused
    /// (`unavailable`). 1: never.
    pub max_shard_load: f64,
    /// The STUN and TURN servers clients are told about (with TURN credentials).
    pub ice: crate::ice::IceConfig,
    /// In a cluster, a client joining a room another node holds is sent there
    /// (`app/affinity.rs`).
    pub room_affinity: bool,
    /// Who may join and what members may do (`--auth`): open rooms by default.
    pub auth: auth::Provider,
    /// Open rooms only: every room needs this password (`--room-password`). Without
    /// it, a room's creator may set one.
    pub room_password: Option<String>,
    /// Reverse proxies in front of the server (`--trusted-proxy`): behind them, a
    /// client's address is the one their `X-Forwarded-For` names (for the webhook and the
    /// count of password guesses).
    /// Rooms of at most this many members connect peer to peer (`--mesh-max`; 0: never):
    /// told to clients in `joined`, which do the rest over `message`.
    pub mesh_max: usize,
    /// App messages a second a member may send on its data channel (a token bucket,
    /// as the WebSocket's `--messages-per-second`): over it, one is dropped with a
    /// `rate_limited` error.
    pub data_messages_per_second: u32,
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl AppConfig {
    /// The largest signalling message a client may need to send: its answer to an offer
    /// of every track a full room can publish (plus its own and a data channel).
    pub fn largest_answer(&self) -> usize {
        let mlines = self.max_peers_per_room * self.max_tracks_per_member + 8;
        negotiation::ANSWER_BYTES_PER_MLINE * mlines
    }
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            reconnect_grace: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_peers_per_room: 100,
            max_rooms: 10_000,
            max_tracks_per_member: 4,
            spread_after: 8,
            spread_load: 0.25,
            max_shard_load: 0.9,
            ice: crate::ice::IceConfig::default(),
            room_affinity: false,
            auth: auth::Provider::Open,
            room_password: None,
            trusted_proxies: Vec::new(),
            data_messages_per_second: 50,
            mesh_max: 0,
        }
    }
}

/// What the app wants done.
#[derive(Debug)]
pub enum Output {
    /// Send a message on a connection.
    Send(ConnId, ServerMessage),
    /// Send one message on several connections: serialised once, its bytes shared (a file
    /// chunk relayed to a room of 100 is not made 99 times).
    SendMany(Vec<ConnId>, ServerMessage),
    /// Close a connection with a code and reason.
    Close(ConnId, u16, String),
    /// Send a command to a shard (or, at the index after the last shard, the node port).
    Control(ShardId, engine::msg::Control),
    /// Ask the cluster which nodes hold this room (answer: [`App::room_is_at`]).
    WhereIs(String),
    /// Ask the webhook provider about the join on this connection (answer:
    /// [`App::on_verdict`]).
    Ask {
        conn: ConnId,
        question: auth::Question,
    },
    /// Carry out a moderator's action on the room's members on other nodes.
    Moderate {
        room: String,
        /// The moderator's nickname.
        by: String,
        action: Moderation,
    },
    /// Send a member's message to the room's members on other nodes (all of them, or
    /// the one named `to`), through the cluster.
    ToNodes {
        room: String,
        from: String,
        to: Option<String>,
        data: serde_json::Value,
    },
}

struct Conn {
    peer: Option<PeerId>,
    visitor: Visitor,
    last_seen: Instant,
    /// Unusable SDPs sent; parsing one costs real time, so a client gets a few.
    bad_sdp: u32,
}

/// The state machine. See the module docs.
pub struct App {
    config: AppConfig,
    factory: PeerFactory,
    shard_addrs: Vec<MediaAddrs>,
    /// The node port's index: the number of shards.
    node_port: ShardId,
    /// The next remote track's counter (its id is a track id of the node port).
    next_proxy: u64,
    /// In a cluster, where clients reach the other nodes (told to each at `joined`).
    other_nodes: Vec<String>,
    /// Joins waiting to learn which node holds their room.
    pending_joins: Vec<affinity::PendingJoin>,
    /// Joins waiting for the webhook provider's verdict, by connection.
    asking: HashMap<ConnId, sessions::Joining>,
    /// Wrong room passwords, by address.
    guesses: gate::Guesses,
    placement: Placement,
    rooms: Rooms,
    sessions: HashMap<PeerId, Session>,
    tokens: HashMap<String, PeerId>,
    conns: HashMap<ConnId, Conn>,
    next_peer: u64,
    /// Shutting down: no new sessions (see [`App::set_draining`]).
    draining: bool,
    /// Out of file descriptors: no new sessions (see [`App::set_descriptors_low`]).
    descriptors_low: bool,
    out: Vec<Output>,
}

/// Why a request is refused: the error code and the sentence the client gets.
type Refusal = (ErrorCode, String);

fn refuse<T>(code: ErrorCode, reason: impl Into<String>) -> Result<T, Refusal> {
    Err((code, reason.into()))
}

impl App {
    /// An app whose shards are reached at `shard_addrs` (index = shard id): their UDP
    /// addresses, or [`MediaAddrs`] with ICE-TCP too.
    pub fn new(
        config: AppConfig,
        factory: PeerFactory,
        shard_addrs: impl IntoIterator<Item = impl Into<MediaAddrs>>,
    ) -> Self {
        let shard_addrs: Vec<MediaAddrs> = shard_addrs.into_iter().map(Into::into).collect();
        let placement = Placement::new(
            shard_addrs.len(),
            config.spread_after,
            config.spread_load,
            config.max_shard_load,
        );
        Self {
            config,
            factory,
            node_port: shard_addrs.len(),
            next_proxy: 1,
            other_nodes: Vec::new(),
            pending_joins: Vec::new(),
            asking: HashMap::new(),
            guesses: gate::Guesses::default(),
            shard_addrs,
            placement,
            rooms: Rooms::default(),
            sessions: HashMap::new(),
            tokens: HashMap::new(),
            conns: HashMap::new(),
            next_peer: 1,
            draining: false,
            descriptors_low: false,
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

    /// While draining, new sessions are refused (`unavailable`, so clients try again
    /// shortly, when a restarted or another server takes them); sessions already here
    /// go on, and resume after a dropped connection as usual.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// While the process runs out of file descriptors, new sessions are refused
    /// (`unavailable`: try again in a moment); those already here go on.
    pub fn set_descriptors_low(&mut self, low: bool) {
        self.descriptors_low = low;
    }

    /// Ends every session, telling each connected client to reconnect (close code 1012):
    /// the server is going away now.
    pub fn close_all(&mut self, reason: &str) {
        let ids: Vec<PeerId> = self.sessions.keys().copied().collect();
        for id in ids {
            if let Some(conn) = self.conn_of(id) {
                self.out
                    .push(Output::Close(conn, close::SERVICE_RESTART, reason.into()));
            }
            self.end_session(id, "the server is stopping");
        }
    }

    /// Every room with someone in it here, and who, with what they publish: what the
    /// cluster keeps of this node's rooms.
    pub fn rooms_and_members(&self) -> impl Iterator<Item = (&str, Vec<MemberRecord>)> {
        self.rooms
            .names()
            .map(|room| (room, self.member_records(room)))
    }

    /// In a cluster, where clients reach the other nodes now: each client is told at
    /// `joined`, to go on there when this node is gone.
    pub fn set_other_nodes(&mut self, addresses: Vec<String>) {
        self.other_nodes = addresses;
    }

    /// In a cluster, peer ids count up from `first` (a random base per node, so that
    /// members of one room on different nodes never share an id).
    pub fn set_first_peer_id(&mut self, first: u64) {
        self.next_peer = first.max(1);
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
        self.on_open_from(now, conn, Visitor::default());
    }

    /// A WebSocket opened by `visitor` (its address and cookie, for the webhook
    /// provider and the count of password guesses).
    pub fn on_open_from(&mut self, now: Instant, conn: ConnId, visitor: Visitor) {
        self.conns.insert(
            conn,
            Conn {
                peer: None,
                visitor,
                last_seen: now,
                bad_sdp: 0,
            },
        );
    }

    /// A WebSocket closed. Its session, if any, waits out the reconnect grace period.
    pub fn on_closed(&mut self, now: Instant, conn: ConnId) {
        self.forget_pending_join(conn);
        self.asking.remove(&conn);
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
            None,
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
        let Request { id, message } = match Request::parse(text) {
            Ok(r) => r,
            Err(e) => return self.error(conn, e.id, e.code, e.reason),
        };
        let result = match (peer, message) {
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
                    here,
                    access_token,
                    password,
                },
            ) => {
                let joining = sessions::Joining {
                    id,
                    room,
                    nickname,
                    token,
                    here,
                    access_token,
                    password,
                    verdict: None,
                };
                self.join(now, conn, joining)
            }
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
                self.end_session(p, "left");
                self.out
                    .push(Output::Close(conn, close::NORMAL, "left".into()));
                Ok(())
            }
            (Some(p), ClientMessage::Kick { peer_id, reason }) => self.kick(p, &peer_id, reason),
            (Some(p), ClientMessage::Mute { peer_id, source }) => self.mute(p, &peer_id, source),
            (Some(p), ClientMessage::LockRoom { locked }) => self.lock_room(p, locked),
            (Some(p), ClientMessage::EndRoom) => self.end_room(p),
            (Some(p), ClientMessage::TileSizes { tiles }) => self.tile_sizes(p, tiles),
        };
        if let Err(refusal) = result {
            self.refused(conn, id, peer.is_some(), refusal);
        }
    }

    /// Tells the client why its request was refused; a refused join of a visitor the
    /// provider does not admit, and a server at capacity, close the connection too.
    fn refused(&mut self, conn: ConnId, id: Option<RequestId>, joined: bool, refusal: Refusal) {
        let (code, reason) = refusal;
        self.error(conn, id, code, reason);
        match code {
            ErrorCode::BadSdp => self.count_bad_sdp(conn),
            ErrorCode::Unavailable => self.out.push(Output::Close(
                conn,
                close::TRY_AGAIN_LATER,
                "at capacity".into(),
            )),
            ErrorCode::Forbidden if !joined => {
                self.out
                    .push(Output::Close(conn, close::POLICY, "not admitted".into()));
            }
            _ => {}
        }
    }

    /// A shard reported something.
    pub fn on_notice(&mut self, now: Instant, notice: Notice) {
        match notice {
            Notice::Connected { peer } => self.media_connected(peer),
            Notice::UnknownPeer { .. } => {}
            Notice::TrackPublished {
                peer,
                track,
                name,
                codec,
            } => self.track_published(peer, track, name, codec),
            Notice::TrackUnpublished { peer, track } => self.track_unpublished(peer, track),
            Notice::LayersWanted { peer, track, max } => self.layers_wanted(peer, track, max),
            Notice::Offer { peer, offer } => self.server_offer(peer, offer),
            Notice::Subscribed { peer, tracks } => self.subscribed(peer, tracks),
            Notice::Unsubscribed { peer, tracks } => self.unsubscribed(peer, tracks),
            Notice::BadAnswer { peer, reason } => self.bad_answer(peer, reason),
            Notice::PeerGone { peer, reason } => self.media_ended(peer, reason),
            Notice::ChannelOpen { peer } => self.set_channel(peer, true),
            Notice::ChannelClosed { peer } => self.set_channel(peer, false),
            Notice::ChannelData { peer, text } => self.on_channel_text(now, peer, &text),
        }
    }

    /// Time passes: expire sessions past their grace period and silent connections.
    pub fn tick(&mut self, now: Instant) {
        self.expire_detached(now);
        self.guesses.forget_old(now);
        self.expire_pending_joins(now);
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

    // ---- helpers the concerns share ----

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

    /// The connection of a member, if it has one now.
    fn conn_of(&self, peer: PeerId) -> Option<ConnId> {
        self.sessions.get(&peer).and_then(|s| s.conn)
    }

    fn send(&mut self, conn: ConnId, msg: ServerMessage) {
        self.out.push(Output::Send(conn, msg));
    }

    /// Sends `error`; `id` is the request's, when a request caused it.
    fn error(
        &mut self,
        conn: ConnId,
        id: Option<RequestId>,
        code: ErrorCode,
        reason: impl Into<String>,
    ) {
        self.send(
            conn,
            ServerMessage::Error {
                code,
                reason: reason.into(),
                id,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::AppConfig;

    /// The message limit (256 KiB by default) must never be what stops a full room's
    /// subscription: 100 members × 4 tracks, ~1.1 KB of a browser's answer each.
    #[test]
    fn the_largest_answer_fits_a_full_room() {
        let c = AppConfig::default();
        let needed = (c.max_peers_per_room * c.max_tracks_per_member) * 1100;
        assert!(c.largest_answer() > needed);
        assert!(c.largest_answer() > 256 * 1024);
    }
}
