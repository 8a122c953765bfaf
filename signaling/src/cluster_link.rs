//! Keeps the cluster (`cluster` crate, Redis) and this node in step, from the signalling
//! thread, which never waits for Redis:
//!
//! - out: the rooms this node holds enter and leave the room directory with their
//!   members and what they publish ([`MemberRecord`]), rewritten on each change (and
//!   the other nodes told to read them again); its load goes with its registry key;
//!   members' messages to other nodes are published in the room.
//! - in: the other nodes' members of each room held here are read again when one says
//!   they changed, when a node comes or goes, and when Redis is back, and handed to the
//!   [`App`]; messages from other nodes' members reach the members here; nodes that come
//!   and go are handed to the node port ([`NodeCommand`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use cluster::{Cluster, ClusterEvent, NodeInfo};
use engine::msg::NodeCommand;
use serde::{Deserialize, Serialize};

use crate::app::{App, MemberRecord, Moderation};

/// What the metrics page shows of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterFigures {
    /// Live nodes, this one included.
    pub nodes: usize,
    /// Whether Redis answers.
    pub redis_up: bool,
    /// Room events received from other nodes.
    pub room_events: u64,
    /// The node port's counters (filled in by the server, which owns the engine).
    pub node_port: engine::node_port::NodePortStats,
}

/// A room event's body, as nodes publish it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum RoomBody {
    /// The sender's members of the room changed: read them again.
    Members,
    /// A member's message to the room, or to one member.
    Message {
        from: String,
        to: Option<String>,
        data: serde_json::Value,
    },
    /// A moderator's action, for the members on each node.
    Moderation { by: String, action: Moderation },
}

pub struct ClusterLink {
    cluster: Cluster,
    id: String,
    /// The rooms held and their members, as last written.
    held: BTreeMap<String, Vec<MemberRecord>>,
    /// Rooms whose other nodes' members are to be read again.
    stale: BTreeSet<String>,
    /// Rooms whose last read failed (Redis away): read again when it is back.
    unread: BTreeSet<String>,
    others: BTreeMap<String, NodeInfo>,
    redis_up: bool,
    room_events: u64,
    /// The other nodes' addresses changed since [`ClusterLink::address_change`] said.
    addresses_changed: bool,
}

impl ClusterLink {
    /// Joins the cluster on the Redis at `redis_url` as `node`; `wake` wakes the
    /// signalling thread when the cluster has something to say.
    pub fn start(
        redis_url: &str,
        node: NodeInfo,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<ClusterLink, String> {
        tracing::info!(node = %node.id, node_port = %node.node_addr, "joining the cluster on {redis_url}");
        let id = node.id.clone();
        Ok(ClusterLink {
            cluster: Cluster::start_waking(redis_url, node, wake)?,
            id,
            held: BTreeMap::new(),
            stale: BTreeSet::new(),
            unread: BTreeSet::new(),
            others: BTreeMap::new(),
            redis_up: false,
            room_events: 0,
            addresses_changed: false,
        })
    }

    /// Brings the directory in line with the rooms this node holds now and their
    /// members, sends its load (the busiest shard's busy share), and asks for the other
    /// nodes' members of the rooms that need reading again.
    pub fn sync(&mut self, app: &App, load: f64) {
        let now: BTreeMap<String, Vec<MemberRecord>> = app
            .rooms_and_members()
            .map(|(r, m)| (r.to_owned(), m))
            .collect();
        for gone in self.held.keys().filter(|r| !now.contains_key(*r)) {
            self.cluster.exit(gone);
        }
        for (room, members) in &now {
            match self.held.get(room) {
                None => self.cluster.enter(room),
                Some(before) if before == members => continue,
                Some(_) => {}
            }
            let entries = members
                .iter()
                .map(|m| {
                    let info = serde_json::to_string(m).unwrap_or_default();
                    (m.peer_id.clone(), info)
                })
                .collect();
            self.cluster.set_members(room, entries);
            self.publish(room, &RoomBody::Members);
        }
        self.held = now;
        self.cluster.set_load(load);
        for room in std::mem::take(&mut self.stale) {
            if self.held.contains_key(&room) {
                self.cluster.fetch_members(&room);
            }
        }
    }

    /// A member's message for the room's members on other nodes.
    pub fn send_message(
        &mut self,
        room: &str,
        from: String,
        to: Option<String>,
        data: serde_json::Value,
    ) {
        self.publish(room, &RoomBody::Message { from, to, data });
    }

    /// A moderator's action for the room's members on other nodes.
    pub fn send_moderation(&mut self, room: &str, by: String, action: Moderation) {
        self.publish(room, &RoomBody::Moderation { by, action });
    }

    /// Asks which nodes hold `room`; the answer goes to [`App::room_is_at`].
    pub fn where_is(&self, room: &str) {
        self.cluster.fetch_room_nodes(room);
    }

    fn publish(&self, room: &str, body: &RoomBody) {
        match serde_json::to_string(body) {
            Ok(json) => self.cluster.publish(room, json),
            Err(e) => tracing::error!("cannot serialise a room event: {e}"),
        }
    }

    /// Takes in what the cluster said since the last call: the app hears of other nodes'
    /// members and messages; the commands returned are for the node port.
    pub fn drain_events(&mut self, app: &mut App) -> Vec<NodeCommand> {
        let mut commands = Vec::new();
        let events: Vec<ClusterEvent> = self.cluster.events().try_iter().collect();
        for e in events {
            match e {
                ClusterEvent::NodeUp(n) => {
                    tracing::info!(node = %n.id, addresses = ?n.addresses, node_port = %n.node_addr, "a node joined the cluster");
                    match node_command(&n) {
                        Some(c) => commands.push(c),
                        None => {
                            tracing::warn!(node = %n.id, "its node port {:?} or boot id {:?} cannot be read; no media with it", n.node_addr, n.boot)
                        }
                    }
                    self.others.insert(n.id.clone(), n);
                    self.tell_addresses(app);
                    self.read_all_again();
                }
                ClusterEvent::NodeDown(id) => {
                    tracing::warn!(node = %id, "a node left the cluster");
                    self.others.remove(&id);
                    self.tell_addresses(app);
                    app.remote_node_gone(&id);
                    commands.push(NodeCommand::RemoveNode { id });
                }
                ClusterEvent::Disconnected(why) => {
                    tracing::warn!("the cluster's Redis is unreachable ({why}); calls go on");
                    self.redis_up = false;
                }
                ClusterEvent::Reconnected => {
                    // The coordinator has written this node's members again (a restarted
                    // Redis is empty): the others read them again, as this node does what
                    // it could not read meanwhile.
                    tracing::info!("registered with the cluster's Redis");
                    self.redis_up = true;
                    for room in self.held.keys() {
                        self.publish(room, &RoomBody::Members);
                    }
                    self.stale.append(&mut self.unread);
                }
                ClusterEvent::Subscribed(room) => {
                    self.stale.insert(room);
                }
                ClusterEvent::Room(r) => {
                    self.room_events += 1;
                    match serde_json::from_str::<RoomBody>(&r.body) {
                        Ok(RoomBody::Members) => {
                            self.stale.insert(r.room);
                        }
                        Ok(RoomBody::Message { from, to, data }) => {
                            app.remote_message(&r.room, &from, to.as_deref(), data);
                        }
                        Ok(RoomBody::Moderation { by, action }) => {
                            app.remote_moderation(&r.room, &by, action);
                        }
                        Err(e) => {
                            tracing::debug!(room = %r.room, from = %r.from, "an unreadable room event: {e}");
                        }
                    }
                }
                ClusterEvent::RoomNodes { room, nodes } => {
                    // Live nodes other than this one, by their first address.
                    let at: Vec<String> = nodes
                        .unwrap_or_default()
                        .iter()
                        .filter(|n| **n != self.id)
                        .filter_map(|n| self.others.get(n)?.addresses.first().cloned())
                        .collect();
                    app.room_is_at(std::time::Instant::now(), &room, &at);
                }
                ClusterEvent::Members { room, members } => match members {
                    Ok(members) => {
                        let remote = members
                            .into_iter()
                            // Members of nodes not (yet, or any more) known to be alive
                            // wait for the node's NodeUp, which reads the room again.
                            .filter(|m| m.node != self.id && self.others.contains_key(&m.node))
                            .filter_map(|m| Some((m.node, serde_json::from_str(&m.info).ok()?)))
                            .collect();
                        app.set_remote_members(&room, remote);
                    }
                    Err(e) => {
                        tracing::debug!(room, "the room's members cannot be read: {e}");
                        self.unread.insert(room);
                    }
                },
            }
        }
        commands
    }

    /// Clients learn where the other nodes are, to go there if this one dies.
    fn tell_addresses(&mut self, app: &mut App) {
        app.set_other_nodes(self.other_addresses());
        self.addresses_changed = true;
    }

    fn other_addresses(&self) -> Vec<String> {
        let addresses = self.others.values().flat_map(|n| n.addresses.clone());
        addresses.collect()
    }

    /// The other nodes' addresses, when they changed since the last call (the page's
    /// security policy lets it connect to them).
    pub fn address_change(&mut self) -> Option<Vec<String>> {
        std::mem::take(&mut self.addresses_changed).then(|| self.other_addresses())
    }

    fn read_all_again(&mut self) {
        self.stale.extend(self.held.keys().cloned());
    }

    pub fn figures(&self) -> ClusterFigures {
        ClusterFigures {
            nodes: self.others.len() + 1,
            redis_up: self.redis_up,
            room_events: self.room_events,
            node_port: Default::default(),
        }
    }
}

/// The node port's word for a node of the registry, if its entry can be read.
fn node_command(n: &NodeInfo) -> Option<NodeCommand> {
    let addr: SocketAddr = n.node_addr.parse().ok()?;
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(n.boot.as_bytes())
        .ok()?;
    Some(NodeCommand::SetNode {
        id: n.id.clone(),
        boot: bytes.try_into().ok()?,
        addr,
    })
}
