//! Members on other nodes (multi-node): what the cluster says each other node holds of
//! a room becomes members and tracks of the room here, announced to the local members
//! as local ones are. A remote track gets a local id of the node port (a proxy), which
//! members subscribe to like any other track; the node port fetches it from its origin
//! node. Chat and files to members elsewhere go out through the cluster
//! ([`Output::ToNodes`]) and come in with [`App::remote_message`].
//!
//! The cluster keeps each node's members of a room, with what they publish, as
//! [`MemberRecord`]s; a node rewrites its own on every change and the others read them
//! again ([`App::set_remote_members`]), so a lost event is healed by the next read.
//!
//! When a node dies, its clients join another node with their session token: the
//! record's `resume` (the token's SHA-256) lets that node take the session over, with
//! the same peer id and nickname ([`App::take_over`]); its media starts afresh there. For
//! a few seconds the dead node's record of the member lingers beside the new one: the
//! newer (`since`) wins.

use std::time::Instant;

use engine::codecs::CodecDesc;
use engine::msg::{Control, NodeCommand, PeerId, TrackId};
use protocol::{PeerInfo, ServerMessage, TrackInfo};
use serde::{Deserialize, Serialize};

use super::membership::{peer_id_str, track_info, track_name};
use super::sessions::Joining;
use super::{App, Output, Refusal, refuse};
use crate::rooms::{RemoteMember, RoomTrack};
use crate::transport::ConnId;
use protocol::ErrorCode;

/// A member as its node writes it in the cluster: who, and what it publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRecord {
    pub peer_id: String,
    pub nickname: String,
    #[serde(default)]
    pub tracks: Vec<TrackRecord>,
    /// When the session came to its node (unix ms).
    #[serde(default)]
    pub since: u64,
    /// The SHA-256 of the session token (hex), for the node it moves to.
    #[serde(default)]
    pub resume: String,
}

/// What a node keeps of a token for a takeover: its SHA-256, hex.
pub(super) fn resume_key(token: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    data_encoding::HEXLOWER.encode(d.as_ref())
}

/// A published track as its node writes it: the track and its id on that node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackRecord {
    /// The engine's id of the track on its node.
    pub id: u64,
    #[serde(flatten)]
    pub info: TrackInfo,
}

impl App {
    /// This node's members of `room` as the cluster keeps them.
    pub(super) fn member_records(&self, room: &str) -> Vec<MemberRecord> {
        let Some(r) = self.rooms.get(room) else {
            return Vec::new();
        };
        r.members
            .iter()
            .filter_map(|p| self.sessions.get(p))
            // A hidden member is not announced on other nodes either.
            .filter(|s| !s.grants.hidden)
            .map(|s| MemberRecord {
                peer_id: peer_id_str(s.id),
                nickname: s.nickname.clone(),
                tracks: r
                    .tracks
                    .iter()
                    .filter(|t| t.peer == s.id && t.origin.is_none())
                    .map(|t| TrackRecord {
                        id: t.track.0,
                        info: track_info(t),
                    })
                    .collect(),
                since: s.since,
                resume: resume_key(&s.token),
            })
            .collect()
    }

    /// What the other nodes hold of `room` now, by node: members that appeared join, those
    /// that vanished leave, and their tracks are published and unpublished to match.
    pub fn set_remote_members(&mut self, room: &str, members: Vec<(String, MemberRecord)>) {
        let Some(r) = self.rooms.get(room) else {
            return; // nobody here any more
        };
        let mut members: Vec<(String, PeerId, MemberRecord)> = members
            .into_iter()
            .filter_map(|(node, m)| Some((node, PeerId(m.peer_id.parse().ok()?), m)))
            .filter(|(_, p, _)| !self.sessions.contains_key(p))
            .collect();
        // A member that moved is on two nodes until the old one's record lapses: the
        // newer holds it.
        members.sort_by(|a, b| (a.1, b.2.since).cmp(&(b.1, a.2.since)));
        members.dedup_by_key(|m| m.1);
        let gone: Vec<PeerId> = r
            .remote
            .iter()
            .filter(|m| !members.iter().any(|(_, p, _)| *p == m.peer))
            .map(|m| m.peer)
            .collect();
        for peer in gone {
            self.remote_left(room, peer);
        }
        for (node, peer, record) in members {
            self.remote_member(room, node, peer, record);
        }
    }

    /// Every member of the node `node` is gone (the node died or left).
    pub fn remote_node_gone(&mut self, node: &str) {
        let gone: Vec<(String, PeerId)> = self
            .rooms
            .iter()
            .flat_map(|(name, r)| {
                r.remote
                    .iter()
                    .filter(|m| m.node == node)
                    .map(|m| (name.to_owned(), m.peer))
            })
            .collect();
        for (room, peer) in gone {
            self.remote_left(&room, peer);
        }
    }

    /// A message a member on another node sent to the room, or to one member here.
    pub fn remote_message(
        &mut self,
        room: &str,
        from: &str,
        to: Option<&str>,
        data: serde_json::Value,
    ) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        if !r.remote.iter().any(|m| peer_id_str(m.peer) == from) {
            return; // not a member of the room as this node knows it (yet)
        }
        let targets = r
            .members
            .iter()
            .copied()
            .filter(|p| to.is_none_or(|to| peer_id_str(*p) == to))
            .collect();
        let msg = ServerMessage::Message {
            from: from.to_owned(),
            data,
        };
        self.deliver(targets, msg);
    }

    /// A member on another node, as its node describes it now.
    fn remote_member(&mut self, room: &str, node: String, peer: PeerId, record: MemberRecord) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(m) = r.remote.iter_mut().find(|m| m.peer == peer) {
            m.node.clone_from(&node); // it moved
            m.resume.clone_from(&record.resume);
        } else {
            r.remote.push(RemoteMember {
                node: node.clone(),
                peer,
                nickname: record.nickname.clone(),
                resume: record.resume.clone(),
            });
            let joined = ServerMessage::PeerJoined {
                peer: PeerInfo {
                    peer_id: record.peer_id.clone(),
                    nickname: record.nickname.clone(),
                },
            };
            self.tell_members(room, &joined);
        }
        // Its tracks that went (or stayed on the node it left).
        let stale: Vec<TrackId> = self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.tracks
                .iter()
                .filter(|t| t.peer == peer)
                .filter(|t| {
                    !record.tracks.iter().any(|n| {
                        t.origin
                            .as_ref()
                            .is_some_and(|(o, id)| *o == node && *id == n.id)
                    })
                })
                .map(|t| t.track)
                .collect()
        });
        for track in stale {
            self.remote_unpublished(room, track);
        }
        // Its tracks that are new.
        for t in record.tracks {
            let Ok(name) = track_name(&t.info.track) else {
                continue;
            };
            let Some(r) = self.rooms.get_mut(room) else {
                return;
            };
            let known = r.tracks.iter().any(|k| {
                k.origin
                    .as_ref()
                    .is_some_and(|(n, id)| *n == node && *id == t.id)
            });
            if known {
                continue;
            }
            if r.track_named(&name).is_some() {
                tracing::warn!(room, node, "a remote track's name is taken here; not shown");
                continue;
            }
            let track = TrackId::new(self.node_port, self.next_proxy);
            self.next_proxy += 1;
            let c = t.info.codec;
            let rt = RoomTrack {
                track,
                peer,
                name,
                codec: CodecDesc {
                    mime_type: c.mime_type,
                    clock_rate: c.clock_rate,
                    channels: c.channels,
                    fmtp: c.fmtp,
                },
                origin: Some((node.clone(), t.id)),
            };
            let info = track_info(&rt);
            r.tracks.push(rt);
            self.out.push(Output::Control(
                self.node_port,
                Control::Node(NodeCommand::MapTrack {
                    track,
                    node: node.clone(),
                    origin: t.id,
                }),
            ));
            self.tell_members(room, &ServerMessage::TrackPublished { track: info });
        }
    }

    /// A client whose node is gone joins here with its token: if a member of the room
    /// on another node has that token (and nickname), this node takes the session over,
    /// with the member's peer id; its tracks there are gone, and it starts media here.
    pub(super) fn take_over(
        &mut self,
        now: Instant,
        conn: ConnId,
        j: Joining,
    ) -> Result<(), Refusal> {
        let (room, nickname) = (j.room.as_str(), j.nickname.as_str());
        let token = j.token.as_deref().unwrap_or_default();
        let key = resume_key(token);
        let found = self
            .rooms
            .get(room)
            .and_then(|r| r.remote.iter().find(|m| m.resume == key).map(|m| m.peer));
        let Some(peer) = found else {
            return refuse(
                ErrorCode::SessionExpired,
                "no session with this token; join without one",
            );
        };
        let (grants, _) = self.authorize(now, conn, &j)?;
        self.admit(room, true)?;
        tracing::info!(peer = peer.0, room, "a member moves here from another node");
        let tracks: Vec<TrackId> = self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.tracks
                .iter()
                .filter(|t| t.peer == peer)
                .map(|t| t.track)
                .collect()
        });
        for track in tracks {
            self.remote_unpublished(room, track);
        }
        if let Some(r) = self.rooms.get_mut(room) {
            r.remote.retain(|m| m.peer != peer);
            r.members.push(peer);
        }
        let member = super::sessions::Member {
            id: peer,
            room: room.to_owned(),
            nickname: nickname.to_owned(),
            token: token.to_owned(),
            grants,
            access: j.access_token.as_deref().map(resume_key),
        };
        self.start_session(conn, member, true);
        Ok(())
    }

    /// A member on another node left: its tracks go, and the room hears it left.
    fn remote_left(&mut self, room: &str, peer: PeerId) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.remote.retain(|m| m.peer != peer);
        let tracks: Vec<TrackId> = r
            .tracks
            .iter()
            .filter(|t| t.peer == peer)
            .map(|t| t.track)
            .collect();
        for track in tracks {
            self.remote_unpublished(room, track);
        }
        let left = ServerMessage::PeerLeft {
            peer_id: peer_id_str(peer),
        };
        self.tell_members(room, &left);
    }

    fn remote_unpublished(&mut self, room: &str, track: TrackId) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(i) = r.tracks.iter().position(|t| t.track == track) else {
            return;
        };
        let rt = r.tracks.remove(i);
        let members = self.members(room);
        self.announce_unpublished(&members, &rt);
        self.unmap(track);
    }

    /// The node port forgets a remote track.
    pub(super) fn unmap(&mut self, track: TrackId) {
        self.out.push(Output::Control(
            self.node_port,
            Control::Node(NodeCommand::UnmapTrack { track }),
        ));
    }
}
