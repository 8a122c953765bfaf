//! Keeps the cluster (`cluster` crate, Redis) in step with this node, from the
//! signalling thread: the rooms it holds enter and leave the room directory with their
//! members (id and nickname), its load goes with its registry key, and what the cluster
//! says (nodes up and down, Redis lost and back, room events) is logged and counted for
//! `/metrics`.
//!
//! Rooms that span nodes (members on one node seeing those on another) build on this:
//! the room events are received here, not yet acted on.

use std::collections::BTreeMap;

use cluster::{Cluster, ClusterEvent, NodeInfo};
use protocol::PeerInfo;

/// What the metrics page shows of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterFigures {
    /// Live nodes, this one included.
    pub nodes: usize,
    /// Whether Redis answers.
    pub redis_up: bool,
    /// Room events received from other nodes.
    pub room_events: u64,
}

pub struct ClusterLink {
    cluster: Cluster,
    /// The rooms held and their members, as last written.
    held: BTreeMap<String, Vec<PeerInfo>>,
    others: BTreeMap<String, NodeInfo>,
    redis_up: bool,
    room_events: u64,
}

impl ClusterLink {
    /// Joins the cluster on the Redis at `redis_url` as `node`.
    pub fn start(redis_url: &str, node: NodeInfo) -> Result<ClusterLink, String> {
        tracing::info!(node = %node.id, "joining the cluster on {redis_url}");
        Ok(ClusterLink {
            cluster: Cluster::start(redis_url, node)?,
            held: BTreeMap::new(),
            others: BTreeMap::new(),
            redis_up: false,
            room_events: 0,
        })
    }

    /// Brings the directory in line with the rooms this node holds now and their
    /// members, and sends its load (the busiest shard's busy share).
    pub fn sync<'a>(&mut self, rooms: impl Iterator<Item = (&'a str, Vec<PeerInfo>)>, load: f64) {
        let now: BTreeMap<String, Vec<PeerInfo>> = rooms.map(|(r, m)| (r.to_owned(), m)).collect();
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
        }
        self.held = now;
        self.cluster.set_load(load);
    }

    /// Takes in what the cluster said since the last call.
    pub fn drain_events(&mut self) {
        for e in self.cluster.events().try_iter() {
            match e {
                ClusterEvent::NodeUp(n) => {
                    tracing::info!(node = %n.id, addresses = ?n.addresses, "a node joined the cluster");
                    self.others.insert(n.id.clone(), n);
                }
                ClusterEvent::NodeDown(id) => {
                    tracing::warn!(node = %id, "a node left the cluster");
                    self.others.remove(&id);
                }
                ClusterEvent::Disconnected(why) => {
                    tracing::warn!("the cluster's Redis is unreachable ({why}); calls go on");
                    self.redis_up = false;
                }
                ClusterEvent::Reconnected => {
                    tracing::info!("registered with the cluster's Redis");
                    self.redis_up = true;
                }
                ClusterEvent::Room(r) => {
                    tracing::debug!(room = %r.room, from = %r.from, "a room event from another node");
                    self.room_events += 1;
                }
            }
        }
    }

    pub fn figures(&self) -> ClusterFigures {
        ClusterFigures {
            nodes: self.others.len() + 1,
            redis_up: self.redis_up,
            room_events: self.room_events,
        }
    }
}
