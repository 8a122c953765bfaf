//! Room affinity (multi-node, `--room-affinity`): a room's members gather on the node
//! that already holds it, so its media need not cross between nodes. A `join` of a room
//! this node does not hold waits while the cluster says which nodes do (never long: a
//! read of the room directory); when another does, the client is sent there
//! (`redirect`) and joins with `here: true`, which is never sent on again. When none
//! does, or the cluster cannot say within [`ASK_TIMEOUT`], the join goes on here.
//!
//! Off, each client stays on the node it reached: what an operator who points users at
//! the node nearest to them (DNS per region) wants.

use std::time::{Duration, Instant};

use protocol::ServerMessage;

use super::sessions::Joining;
use super::{App, Output};
use crate::transport::ConnId;

/// How long a join waits for the cluster to say where its room is.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// A join waiting for the room directory.
pub(super) struct PendingJoin {
    conn: ConnId,
    join: Joining,
    since: Instant,
}

impl App {
    /// The `join` of a new session back, unless it waits to learn where its room is.
    pub(super) fn holds_back(&mut self, now: Instant, conn: ConnId, j: Joining) -> Option<Joining> {
        let held_here = self.rooms.get(&j.room).is_some();
        if !self.config.room_affinity || self.other_nodes.is_empty() || j.here || held_here {
            return Some(j);
        }
        if !self.pending_joins.iter().any(|p| p.join.room == j.room) {
            self.out.push(Output::WhereIs(j.room.clone()));
        }
        self.pending_joins.push(PendingJoin {
            conn,
            join: j,
            since: now,
        });
        None
    }

    /// The cluster says where `room` is: the addresses of the other nodes holding it
    /// (none: nowhere else, or the directory could not be read). The joins waiting for it
    /// are sent there, or go on here.
    pub fn room_is_at(&mut self, now: Instant, room: &str, nodes: &[String]) {
        let (waiting, rest) = std::mem::take(&mut self.pending_joins)
            .into_iter()
            .partition(|p| p.join.room == room);
        self.pending_joins = rest;
        for p in waiting {
            self.settle(now, p, nodes.first());
        }
    }

    /// Joins that waited too long go on here (the tick calls it).
    pub(super) fn expire_pending_joins(&mut self, now: Instant) {
        let (late, rest) = std::mem::take(&mut self.pending_joins)
            .into_iter()
            .partition(|p| now >= p.since + ASK_TIMEOUT);
        self.pending_joins = rest;
        for p in late {
            self.settle(now, p, None);
        }
    }

    /// A waiting join's connection closed.
    pub(super) fn forget_pending_join(&mut self, conn: ConnId) {
        self.pending_joins.retain(|p| p.conn != conn);
    }

    fn settle(&mut self, now: Instant, p: PendingJoin, elsewhere: Option<&String>) {
        if !self.conns.contains_key(&p.conn) {
            return;
        }
        // Someone may have joined here meanwhile: then the room is here.
        let held_here = self.rooms.get(&p.join.room).is_some();
        match elsewhere {
            Some(node) if !held_here => {
                tracing::debug!(room = %p.join.room, %node, "sending a joining client to the node with the room");
                self.send(p.conn, ServerMessage::Redirect { node: node.clone() });
            }
            _ => {
                let id = p.join.id;
                if let Err(refusal) = self.join_here(now, p.conn, p.join) {
                    self.refused(p.conn, id, false, refusal);
                }
            }
        }
    }
}
