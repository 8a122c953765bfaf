//! The coordinator thread: registers the node and keeps its key alive, keeps the
//! node's entries in the room directory, publishes room events, answers directory
//! queries, and watches the registry for nodes coming and going. Any Redis error drops
//! the connection; it is made again every second, and everything the node holds is
//! written again then.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use redis::{Client, Connection, RedisResult};

use crate::EventSink;
use crate::subscriber::Subscription;
use crate::{
    ClusterError, ClusterEvent, Command, Leave, Member, NODE_TTL, NodeInfo, REFRESH, RoomEvent,
    keys,
};

/// How long a Redis call may take before the connection is counted as lost.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a lost connection is tried again.
const RETRY: Duration = Duration::from_secs(1);

pub(crate) struct Coordinator {
    client: Client,
    node: NodeInfo,
    commands: Receiver<Command>,
    events: EventSink,
    subscriptions: Sender<Subscription>,
    con: Option<Connection>,
    /// Rooms this node holds.
    rooms: BTreeSet<String>,
    /// This node's members of each room it holds: `(id, info)`.
    members: BTreeMap<String, Vec<(String, String)>>,
    /// The other nodes, as the registry showed them last.
    known: BTreeMap<String, NodeInfo>,
    /// Why the last connection failed, once said (said once per outage).
    down: Option<String>,
    next_refresh: Instant,
    next_retry: Instant,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Coordinator {
    pub(crate) fn new(
        client: Client,
        node: NodeInfo,
        commands: Receiver<Command>,
        events: EventSink,
        subscriptions: Sender<Subscription>,
    ) -> Self {
        let now = Instant::now();
        Self {
            client,
            node,
            commands,
            events,
            subscriptions,
            con: None,
            rooms: BTreeSet::new(),
            members: BTreeMap::new(),
            known: BTreeMap::new(),
            down: None,
            next_refresh: now,
            next_retry: now,
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            let now = Instant::now();
            if self.con.is_none() && now >= self.next_retry {
                self.connect();
            }
            if self.con.is_some() && now >= self.next_refresh {
                self.next_refresh = now + REFRESH;
                let refreshed = self.refresh();
                self.check(refreshed);
            }
            let wake = if self.con.is_some() {
                self.next_refresh
            } else {
                self.next_retry
            };
            match self
                .commands
                .recv_timeout(wake.saturating_duration_since(Instant::now()))
            {
                Ok(Command::Stop(how)) => {
                    self.leave(how);
                    let _ = self.subscriptions.send(Subscription::Stop);
                    return;
                }
                Ok(c) => self.command(c),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.leave(Leave::Unregister);
                    let _ = self.subscriptions.send(Subscription::Stop);
                    return;
                }
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::SetLoad(load) => self.node.load = load,
            Command::Enter(room) => {
                let _ = self.subscriptions.send(Subscription::Add(room.clone()));
                if self.rooms.insert(room.clone()) {
                    let r = self.enter_room(&room);
                    self.check(r);
                }
            }
            Command::Exit(room) => {
                let _ = self.subscriptions.send(Subscription::Remove(room.clone()));
                self.members.remove(&room);
                if self.rooms.remove(&room) {
                    let id = self.node.id.clone();
                    let r = self.with(|con| {
                        redis::pipe()
                            .cmd("ZREM")
                            .arg(keys::room_nodes(&room))
                            .arg(&id)
                            .ignore()
                            .cmd("DEL")
                            .arg(keys::room_members(&room, &id))
                            .ignore()
                            .query::<()>(con)
                    });
                    self.check(r);
                }
            }
            Command::SetMembers(room, members) => {
                self.members.insert(room.clone(), members);
                let r = self.write_members(&room);
                self.check(r);
            }
            Command::RoomMembers(room, reply) => {
                let r = self.read_members(&room);
                self.answer(r, &reply);
            }
            Command::FetchMembers(room) => {
                let r = self.read_members(&room);
                let members = self.checked(r);
                let _ = self.events.send(ClusterEvent::Members { room, members });
            }
            Command::Publish { room, body } => {
                let event = RoomEvent {
                    room: room.clone(),
                    from: self.node.id.clone(),
                    body,
                };
                let Ok(json) = serde_json::to_string(&event) else {
                    return;
                };
                let r = self.with(|con| {
                    redis::cmd("PUBLISH")
                        .arg(keys::room_events(&room))
                        .arg(json)
                        .query::<()>(con)
                });
                self.check(r);
            }
            Command::RoomNodes(room, reply) => {
                let r = self.read_room_nodes(&room);
                self.answer(r, &reply);
            }
            Command::FetchRoomNodes(room) => {
                let r = self.read_room_nodes(&room);
                let nodes = self.checked(r);
                let _ = self.events.send(ClusterEvent::RoomNodes { room, nodes });
            }
            Command::Stop(_) => {}
        }
    }

    /// Answers a query with what Redis said (an error: unavailable, and the connection
    /// counted as lost).
    fn answer<T>(&mut self, r: RedisResult<T>, reply: &Sender<Result<T, ClusterError>>) {
        match r {
            Ok(v) => {
                let _ = reply.send(Ok(v));
            }
            Err(e) => {
                let _ = reply.send(Err(ClusterError::Unavailable(e.to_string())));
                self.check::<()>(Err(e));
            }
        }
    }

    /// What Redis said, as the rest of the server hears it: an error is `Unavailable`
    /// (and the connection is dropped, as [`Coordinator::check`] does).
    fn checked<T>(&mut self, r: RedisResult<T>) -> Result<T, ClusterError> {
        r.map_err(|e| {
            let why = e.to_string();
            self.check::<()>(Err(e));
            ClusterError::Unavailable(why)
        })
    }

    /// Runs `f` on the connection; an error when there is none.
    fn with<T>(&mut self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> RedisResult<T> {
        match self.con.as_mut() {
            Some(con) => f(con),
            None => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "not connected",
                self.down.clone().unwrap_or_default(),
            ))),
        }
    }

    /// After a Redis call: an error means the connection is gone.
    fn check<T>(&mut self, r: RedisResult<T>) {
        if let Err(e) = r
            && self.con.is_some()
        {
            self.lost(e.to_string());
        }
    }

    fn lost(&mut self, why: String) {
        tracing::warn!("cluster: lost Redis: {why}");
        self.con = None;
        self.next_retry = Instant::now() + RETRY;
        if self.down.is_none() {
            let _ = self.events.send(ClusterEvent::Disconnected(why.clone()));
        }
        self.down = Some(why);
    }

    fn connect(&mut self) {
        let con = self
            .client
            .get_connection_with_timeout(IO_TIMEOUT)
            .and_then(|con| {
                con.set_read_timeout(Some(IO_TIMEOUT))?;
                con.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(con)
            });
        match con {
            Ok(con) => {
                self.con = Some(con);
                // Everything this node holds, written again: the registry key, every
                // room entry (and the subscriber resubscribes on its own). Then the
                // nodes it finds, after it said it is back.
                let r = self.write_all().and_then(|()| self.write_all_members());
                if r.is_ok() {
                    tracing::info!("cluster: registered as {} on Redis", self.node.id);
                    self.next_refresh = Instant::now() + REFRESH;
                    self.down = None;
                    let _ = self.events.send(ClusterEvent::Reconnected);
                    let r = self.watch_registry();
                    self.check(r);
                } else {
                    self.check(r);
                }
            }
            Err(e) => {
                self.next_retry = Instant::now() + RETRY;
                if self.down.is_none() {
                    let why = e.to_string();
                    let _ = self.events.send(ClusterEvent::Disconnected(why.clone()));
                    self.down = Some(why);
                }
            }
        }
    }

    fn enter_room(&mut self, room: &str) -> RedisResult<()> {
        let deadline = unix_ms() + NODE_TTL.as_millis() as u64;
        let id = self.node.id.clone();
        let ttl = NODE_TTL.as_millis() as u64;
        self.with(|con| {
            redis::pipe()
                .cmd("ZADD")
                .arg(keys::room_nodes(room))
                .arg(deadline)
                .arg(&id)
                .ignore()
                .cmd("PEXPIRE")
                .arg(keys::room_nodes(room))
                .arg(ttl)
                .ignore()
                .cmd("PEXPIRE")
                .arg(keys::room_members(room, &id))
                .arg(ttl)
                .ignore()
                .query(con)
        })
    }

    /// This node's members of `room`, written in full (replacing what was there).
    fn write_members(&mut self, room: &str) -> RedisResult<()> {
        let id = self.node.id.clone();
        let key = keys::room_members(room, &id);
        let members = self.members.get(room).cloned().unwrap_or_default();
        self.with(|con| {
            let mut p = redis::pipe();
            p.atomic().cmd("DEL").arg(&key).ignore();
            if !members.is_empty() {
                p.cmd("HSET").arg(&key);
                for (member, info) in &members {
                    p.arg(member).arg(info);
                }
                p.ignore();
                p.cmd("PEXPIRE")
                    .arg(&key)
                    .arg(NODE_TTL.as_millis() as u64)
                    .ignore();
            }
            p.query(con)
        })
    }

    /// Every member of `room` on the nodes whose directory entries are alive.
    /// The nodes whose entry in the room's directory has not lapsed.
    fn read_room_nodes(&mut self, room: &str) -> RedisResult<Vec<String>> {
        self.with(|con| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(keys::room_nodes(room))
                .arg(unix_ms())
                .arg("+inf")
                .query(con)
        })
    }

    fn read_members(&mut self, room: &str) -> RedisResult<Vec<Member>> {
        self.with(|con| {
            let nodes: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(keys::room_nodes(room))
                .arg(unix_ms())
                .arg("+inf")
                .query(con)?;
            if nodes.is_empty() {
                return Ok(Vec::new()); // an empty pipeline is an error to Redis
            }
            let mut p = redis::pipe();
            for node in &nodes {
                p.cmd("HGETALL").arg(keys::room_members(room, node));
            }
            let hashes: Vec<Vec<(String, String)>> = p.query(con)?;
            Ok(nodes
                .into_iter()
                .zip(hashes)
                .flat_map(|(node, members)| {
                    members.into_iter().map(move |(id, info)| Member {
                        node: node.clone(),
                        id,
                        info,
                    })
                })
                .collect())
        })
    }

    /// The node's key, its room entries, and a look at the registry.
    fn refresh(&mut self) -> RedisResult<()> {
        self.write_all()?;
        self.watch_registry()
    }

    /// The node's key and its room entries.
    fn write_all(&mut self) -> RedisResult<()> {
        let info = serde_json::to_string(&self.node).unwrap_or_default();
        let key = keys::node(&self.node.id);
        self.with(|con| {
            redis::cmd("SET")
                .arg(&key)
                .arg(info)
                .arg("PX")
                .arg(NODE_TTL.as_millis() as u64)
                .query::<()>(con)
        })?;
        let rooms: Vec<String> = self.rooms.iter().cloned().collect();
        for room in rooms {
            self.enter_room(&room)?;
        }
        Ok(())
    }

    /// After (re)connecting: every room's members in full, since Redis may have lost them.
    fn write_all_members(&mut self) -> RedisResult<()> {
        let rooms: Vec<String> = self.members.keys().cloned().collect();
        for room in rooms {
            self.write_members(&room)?;
        }
        Ok(())
    }

    /// Reads every node key and reports the nodes that came and went.
    fn watch_registry(&mut self) -> RedisResult<()> {
        let pattern = format!("{}*", keys::NODE_PREFIX);
        let found: Vec<Option<String>> = self.with(|con| {
            let names: Vec<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter(con)?
                .collect::<Result<_, _>>()?;
            if names.is_empty() {
                return Ok(Vec::new());
            }
            redis::cmd("MGET").arg(names).query(con)
        })?;
        let mut now: BTreeMap<String, NodeInfo> = found
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str::<NodeInfo>(&json).ok())
            .map(|n| (n.id.clone(), n))
            .collect();
        now.remove(&self.node.id);
        for (id, info) in &now {
            if self.known.get(id).is_none_or(|k| !k.same_node(info)) {
                let _ = self.events.send(ClusterEvent::NodeUp(info.clone()));
            }
        }
        for id in self.known.keys() {
            if !now.contains_key(id) {
                let _ = self.events.send(ClusterEvent::NodeDown(id.clone()));
            }
        }
        self.known = now;
        Ok(())
    }

    fn leave(&mut self, how: Leave) {
        if how == Leave::Vanish {
            return;
        }
        let id = self.node.id.clone();
        let rooms: Vec<String> = self.rooms.iter().cloned().collect();
        let _ = self.with(|con| {
            let mut p = redis::pipe();
            p.cmd("DEL").arg(keys::node(&id)).ignore();
            for room in &rooms {
                p.cmd("ZREM").arg(keys::room_nodes(room)).arg(&id).ignore();
                p.cmd("DEL").arg(keys::room_members(room, &id)).ignore();
            }
            p.query::<()>(con)
        });
    }
}
