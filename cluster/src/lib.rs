//! Multi-node coordination on Redis: which nodes are alive (the node registry), which
//! nodes hold members of a room (the room directory), and room events between nodes
//! (pub/sub). The embedded default needs none of it: a server without `--redis` is one
//! node and never starts this.
//!
//! Redis is reached with the `redis` crate's synchronous client on two threads of their
//! own (`coordinator.rs`: commands and periodic refreshes; `subscriber.rs`: pub/sub), so
//! no async runtime runs anywhere near the media shards. The rest of the server talks
//! to them through channels ([`Cluster`]) and never waits for Redis.
//!
//! | key or channel | type | written | expires |
//! |---|---|---|---|
//! | `peercalls:node:{id}` | string: the node's [`NodeInfo`] as JSON | every [`REFRESH`] by its node | [`NODE_TTL`] after the last write: a node whose key is gone is dead |
//! | `peercalls:room:{room}:nodes` | sorted set: node ids, scored by the unix time (ms) their entry lapses | every [`REFRESH`] by each node holding members there | entries lapse [`NODE_TTL`] after their last refresh (readers skip them); the key expires [`NODE_TTL`] after the last refresh by any node |
//! | `peercalls:room:{room}:members:{node}` | hash: the node's members of the room, member id → what the signalling layer says of it | by the node on each change, in full; kept alive every [`REFRESH`] | [`NODE_TTL`] after the last refresh |
//! | `peercalls:room:{room}:events` | pub/sub channel: [`RoomEvent`] JSON | on each room event | — |
//!
//! Rates, per node: one `SET`, and one `ZADD` and two `PEXPIRE`s per room it holds every
//! [`REFRESH`], one `SCAN` of the node keys and one `MGET` every [`REFRESH`]; one `DEL` and
//! one `HSET` per change of its members in a room; one `PUBLISH` per room event.
//!
//! Pub/sub loses what is published while a node is disconnected, so after Redis comes
//! back (or the node reconnects) the node re-registers, re-enters its rooms and gets
//! [`ClusterEvent::Reconnected`]: the time to re-read the room state it needs.

mod coordinator;
mod keys;
mod subscriber;

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};

/// How often a node refreshes its registry key and its room entries.
pub const REFRESH: Duration = Duration::from_secs(2);
/// How long a node's key and room entries live without a refresh: three refreshes.
pub const NODE_TTL: Duration = Duration::from_secs(6);

/// What a node tells the others about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Unique in the cluster (`--node-id`).
    pub id: String,
    /// Where clients reach it (`--node-address`): URLs of its page and signalling.
    pub addresses: Vec<String>,
    /// Where the other nodes reach its node port, the server-to-server transport
    /// (`ip:port`; `--node-port`).
    pub node_addr: String,
    /// Drawn at each start (hex, 16 bytes): the pair keys name it, so a restarted node
    /// is known by its new boot id.
    pub boot: String,
    /// How busy its busiest media shard is (0 to 1).
    pub load: f64,
}

/// A room event one node published for the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomEvent {
    pub room: String,
    /// The node that published it.
    pub from: String,
    /// What happened, as the signalling layer encodes it.
    pub body: String,
}

/// What the cluster tells its node.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterEvent {
    /// A node registered (or was seen for the first time).
    NodeUp(NodeInfo),
    /// A node's key expired or it left.
    NodeDown(String),
    /// Another node published an event in a room this node holds.
    Room(RoomEvent),
    /// This node now hears the room's events (it entered the room, or its pub/sub
    /// connection came back): what was published before is not heard, so this is the
    /// moment to read the room's state; every change after it comes as an event.
    Subscribed(String),
    /// Redis cannot be reached: calls go on, new cross-node work waits.
    Disconnected(String),
    /// Redis is reachable again (or for the first time): the node registered, re-entered
    /// its rooms and resubscribed. Events published in between are lost: re-read.
    Reconnected,
    /// The answer to [`Cluster::fetch_members`]: every live node's members of `room`
    /// (this node's too).
    Members {
        room: String,
        members: Result<Vec<Member>, ClusterError>,
    },
    /// The answer to [`Cluster::fetch_room_nodes`]: the nodes holding `room` (this one
    /// too, if it does).
    RoomNodes {
        room: String,
        nodes: Result<Vec<String>, ClusterError>,
    },
}

/// A member of a room, as the node that holds it wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The node it is on.
    pub node: String,
    /// Its id on that node.
    pub id: String,
    /// What the signalling layer says of it (its name, for one).
    pub info: String,
}

/// Why a query failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterError {
    /// Redis is not reachable now.
    Unavailable(String),
    /// The coordinator thread is gone.
    Stopped,
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::Unavailable(why) => {
                write!(f, "the cluster's Redis is unavailable: {why}")
            }
            ClusterError::Stopped => write!(f, "the cluster coordinator has stopped"),
        }
    }
}

impl std::error::Error for ClusterError {}

impl NodeInfo {
    /// Whether `other` is the same node at the same addresses and boot (its load aside).
    pub fn same_node(&self, other: &NodeInfo) -> bool {
        (&self.id, &self.addresses, &self.node_addr, &self.boot)
            == (&other.id, &other.addresses, &other.node_addr, &other.boot)
    }
}

/// Where the cluster's threads put their events, waking the thread that reads them.
#[derive(Clone)]
pub(crate) struct EventSink {
    tx: Sender<ClusterEvent>,
    wake: std::sync::Arc<dyn Fn() + Send + Sync>,
}

impl EventSink {
    pub(crate) fn send(&self, event: ClusterEvent) -> Result<(), ()> {
        self.tx.send(event).map_err(drop)?;
        (self.wake)();
        Ok(())
    }
}

/// How a node leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// Deletes its key and room entries: the others see it go at once.
    Unregister,
    /// Stops without a word, as a crash would: the others see it go when its key
    /// expires.
    Vanish,
}

pub(crate) enum Command {
    SetLoad(f64),
    Enter(String),
    Exit(String),
    Publish { room: String, body: String },
    RoomNodes(String, Sender<Result<Vec<String>, ClusterError>>),
    SetMembers(String, Vec<(String, String)>),
    RoomMembers(String, Sender<Result<Vec<Member>, ClusterError>>),
    FetchMembers(String),
    FetchRoomNodes(String),
    Stop(Leave),
}

/// Whether `url` is a Redis URL this crate can use (`redis://host:port/`,
/// `redis+unix:///path`), with what is wrong if not.
pub fn check_url(url: &str) -> Result<(), String> {
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| format!("not a Redis URL such as redis://127.0.0.1:6379/ ({e})"))
}

/// This node's handle on the cluster.
pub struct Cluster {
    commands: Sender<Command>,
    events: Receiver<ClusterEvent>,
    threads: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Starts the coordinator and subscriber threads for `node` on the Redis at
    /// `redis_url`. Never waits for Redis: an unreachable one shows as
    /// [`ClusterEvent::Disconnected`] and is retried every second. Fails only on a URL
    /// that is not a Redis URL.
    pub fn start(redis_url: &str, node: NodeInfo) -> Result<Cluster, String> {
        Self::start_waking(redis_url, node, || {})
    }

    /// [`Cluster::start`], calling `wake` after each event it sends (to wake the thread
    /// that reads [`Cluster::events`] from its poll).
    pub fn start_waking(
        redis_url: &str,
        node: NodeInfo,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<Cluster, String> {
        check_url(redis_url)?;
        let client = redis::Client::open(redis_url).map_err(|e| e.to_string())?;
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let (tx, events) = crossbeam_channel::unbounded();
        let event_tx = EventSink {
            tx,
            wake: std::sync::Arc::new(wake),
        };
        let (subs_tx, subs_rx) = crossbeam_channel::unbounded();
        let sub =
            subscriber::Subscriber::new(client.clone(), node.id.clone(), subs_rx, event_tx.clone());
        let coord = coordinator::Coordinator::new(client, node, command_rx, event_tx, subs_tx);
        let threads = vec![
            std::thread::Builder::new()
                .name("cluster".into())
                .spawn(move || coord.run())
                .map_err(|e| e.to_string())?,
            std::thread::Builder::new()
                .name("cluster-sub".into())
                .spawn(move || sub.run())
                .map_err(|e| e.to_string())?,
        ];
        Ok(Cluster {
            commands,
            events,
            threads,
        })
    }

    /// What the cluster has to say, in order.
    pub fn events(&self) -> &Receiver<ClusterEvent> {
        &self.events
    }

    /// The node's load, sent with its next refresh.
    pub fn set_load(&self, load: f64) {
        let _ = self.commands.send(Command::SetLoad(load));
    }

    /// This node holds members of `room` now: it enters the room's directory and
    /// receives the room's events.
    pub fn enter(&self, room: &str) {
        let _ = self.commands.send(Command::Enter(room.to_owned()));
    }

    /// This node holds no member of `room` any more.
    pub fn exit(&self, room: &str) {
        let _ = self.commands.send(Command::Exit(room.to_owned()));
    }

    /// Tells the other nodes holding `room` what happened (lost if Redis is down).
    pub fn publish(&self, room: &str, body: String) {
        let _ = self.commands.send(Command::Publish {
            room: room.to_owned(),
            body,
        });
    }

    /// The nodes holding members of `room` now, this one included, waiting at most
    /// `timeout` for Redis.
    pub fn room_nodes(&self, room: &str, timeout: Duration) -> Result<Vec<String>, ClusterError> {
        self.ask(|tx| Command::RoomNodes(room.to_owned(), tx), timeout)
    }

    /// This node's members of `room` now, all of them: `(id, info)`. Kept in Redis
    /// while the node holds the room (and written again after Redis comes back).
    pub fn set_members(&self, room: &str, members: Vec<(String, String)>) {
        let _ = self
            .commands
            .send(Command::SetMembers(room.to_owned(), members));
    }

    /// Every member of `room` on every node holding it, this one included, waiting at
    /// most `timeout` for Redis: what a node re-reads when it enters a room or Redis
    /// comes back.
    /// Reads which nodes hold `room`, answering with [`ClusterEvent::RoomNodes`] on
    /// [`Cluster::events`]: for a thread that must not wait for Redis.
    pub fn fetch_room_nodes(&self, room: &str) {
        let _ = self.commands.send(Command::FetchRoomNodes(room.to_owned()));
    }

    /// Reads every node's members of `room`, answering with [`ClusterEvent::Members`]
    /// on [`Cluster::events`]: for a thread that must not wait for Redis.
    pub fn fetch_members(&self, room: &str) {
        let _ = self.commands.send(Command::FetchMembers(room.to_owned()));
    }

    pub fn room_members(&self, room: &str, timeout: Duration) -> Result<Vec<Member>, ClusterError> {
        self.ask(|tx| Command::RoomMembers(room.to_owned(), tx), timeout)
    }

    /// Sends the coordinator a query and waits at most `timeout` for its answer.
    fn ask<T>(
        &self,
        query: impl FnOnce(Sender<Result<T, ClusterError>>) -> Command,
        timeout: Duration,
    ) -> Result<T, ClusterError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.commands
            .send(query(tx))
            .map_err(|_| ClusterError::Stopped)?;
        rx.recv_timeout(timeout)
            .map_err(|_| ClusterError::Unavailable("no answer in time".into()))?
    }

    /// Stops both threads, leaving as `how` says.
    pub fn stop(mut self, how: Leave) {
        self.shutdown(how);
    }

    fn shutdown(&mut self, how: Leave) {
        let _ = self.commands.send(Command::Stop(how));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown(Leave::Unregister);
        }
    }
}
