//! Moderation, for members whose grants include `roomAdmin`: kick a member (told why,
//! and with an access token, kept out while the room lasts), mute a member's microphone,
//! camera or screen (the server stops forwarding it and tells the member), lock the room
//! (nobody new but moderators), end the room for everyone.
//!
//! In a cluster an action also goes to the room's other nodes, which carry it out on
//! their members; they trust it because only nodes that share the cluster's secret and
//! Redis can send it, and the sending node checked the moderator's grants.

use engine::msg::{PeerId, TrackId};
use protocol::{ErrorCode, ServerMessage, Source};
use serde::{Deserialize, Serialize};

use super::membership::{peer_id_str, track_ref};
use super::{App, Output, Refusal, close, refuse};

/// What a moderator does, as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Moderation {
    Kick {
        peer_id: String,
        reason: Option<String>,
    },
    Mute {
        peer_id: String,
        source: Source,
    },
    Lock {
        locked: bool,
    },
    End,
}

impl App {
    /// The moderator's room and nickname, if its grants include `roomAdmin`.
    fn moderator(&self, peer: PeerId) -> Result<(String, String), Refusal> {
        let s = self.session(peer)?;
        if !s.grants.room_admin {
            return refuse(
                ErrorCode::Forbidden,
                "moderation needs roomAdmin in your access",
            );
        }
        Ok((s.room.clone(), s.nickname.clone()))
    }

    /// A member of `room` by its id on the wire: here (`Some`), or on another node
    /// (`None`).
    fn target(&self, room: &str, peer_id: &str) -> Result<Option<PeerId>, Refusal> {
        let r = self.rooms.get(room);
        let here = r.and_then(|r| r.members.iter().find(|p| peer_id_str(**p) == peer_id));
        if let Some(p) = here {
            return Ok(Some(*p));
        }
        if r.is_some_and(|r| r.remote.iter().any(|m| peer_id_str(m.peer) == peer_id)) {
            return Ok(None);
        }
        refuse(
            ErrorCode::InvalidMessage,
            format!("no member {peer_id} in the room"),
        )
    }

    pub(super) fn kick(
        &mut self,
        by: PeerId,
        peer_id: &str,
        reason: Option<String>,
    ) -> Result<(), Refusal> {
        let (room, nickname) = self.moderator(by)?;
        if peer_id == peer_id_str(by) {
            return refuse(
                ErrorCode::InvalidMessage,
                "leave instead of kicking yourself",
            );
        }
        let reason = reason.filter(|r| !r.trim().is_empty());
        if reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
            return refuse(
                ErrorCode::InvalidMessage,
                "a reason is 200 characters at most",
            );
        }
        let action = Moderation::Kick {
            peer_id: peer_id.to_owned(),
            reason,
        };
        match self.target(&room, peer_id)? {
            Some(_) => self.carry_out(&room, &nickname, &action),
            None => self.moderate_elsewhere(&room, &nickname, action),
        }
        Ok(())
    }

    pub(super) fn mute(
        &mut self,
        by: PeerId,
        peer_id: &str,
        source: Source,
    ) -> Result<(), Refusal> {
        let (room, nickname) = self.moderator(by)?;
        let action = Moderation::Mute {
            peer_id: peer_id.to_owned(),
            source,
        };
        match self.target(&room, peer_id)? {
            Some(target) => {
                if self.tracks_from(&room, target, source).is_empty() {
                    return refuse(
                        ErrorCode::TrackNotFound,
                        format!("member {peer_id} publishes no {}", source_name(source)),
                    );
                }
                self.carry_out(&room, &nickname, &action);
            }
            None => self.moderate_elsewhere(&room, &nickname, action),
        }
        Ok(())
    }

    pub(super) fn lock_room(&mut self, by: PeerId, locked: bool) -> Result<(), Refusal> {
        let (room, nickname) = self.moderator(by)?;
        let action = Moderation::Lock { locked };
        self.carry_out(&room, &nickname, &action);
        self.moderate_elsewhere(&room, &nickname, action);
        Ok(())
    }

    pub(super) fn end_room(&mut self, by: PeerId) -> Result<(), Refusal> {
        let (room, nickname) = self.moderator(by)?;
        self.moderate_elsewhere(&room, &nickname, Moderation::End);
        self.carry_out(&room, &nickname, &Moderation::End);
        Ok(())
    }

    /// A moderator on another node did `action` in `room`: carried out on the members
    /// here.
    pub fn remote_moderation(&mut self, room: &str, by: &str, action: Moderation) {
        if self.rooms.get(room).is_some() {
            self.carry_out(room, by, &action);
        }
    }

    fn moderate_elsewhere(&mut self, room: &str, by: &str, action: Moderation) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        if !r.remote.is_empty() {
            self.out.push(Output::Moderate {
                room: room.to_owned(),
                by: by.to_owned(),
                action,
            });
        }
    }

    /// Does `action` to the members of `room` here (a target elsewhere is left to its
    /// node).
    fn carry_out(&mut self, room: &str, by: &str, action: &Moderation) {
        let local = |app: &Self, peer_id: &str| {
            app.rooms
                .get(room)
                .and_then(|r| r.members.iter().find(|p| peer_id_str(**p) == peer_id))
                .copied()
        };
        match action {
            Moderation::Kick { peer_id, reason } => {
                let Some(target) = local(self, peer_id) else {
                    return;
                };
                tracing::info!(
                    room,
                    peer = target.0,
                    by,
                    ?reason,
                    "a moderator kicks a member"
                );
                let access = self.sessions.get(&target).and_then(|s| s.access.clone());
                if let (Some(access), Some(r)) = (access, self.rooms.get_mut(room)) {
                    r.banned.push(access);
                }
                let msg = ServerMessage::Kicked {
                    by: by.to_owned(),
                    reason: reason.clone(),
                };
                self.remove(target, msg, close::KICKED, "kicked by a moderator");
            }
            Moderation::Mute { peer_id, source } => {
                let Some(target) = local(self, peer_id) else {
                    return;
                };
                let tracks = self.tracks_from(room, target, *source);
                let Some(s) = self.sessions.get(&target) else {
                    return;
                };
                tracing::info!(
                    room,
                    peer = target.0,
                    by,
                    ?source,
                    "a moderator mutes a member"
                );
                let (shard, conn) = (s.shard, s.conn);
                for track in tracks {
                    if let Some(shard) = shard {
                        let unpublish = engine::msg::Control::Unpublish {
                            peer: target,
                            track,
                        };
                        self.out.push(Output::Control(shard, unpublish));
                    }
                }
                if let Some(conn) = conn {
                    let msg = ServerMessage::Muted {
                        source: *source,
                        by: by.to_owned(),
                    };
                    self.send(conn, msg);
                }
            }
            Moderation::Lock { locked } => {
                let Some(r) = self.rooms.get_mut(room) else {
                    return;
                };
                r.locked = *locked;
                tracing::info!(room, by, locked, "a moderator locks or unlocks the room");
                let msg = ServerMessage::RoomLocked {
                    locked: *locked,
                    by: by.to_owned(),
                };
                self.tell_members(room, &msg);
            }
            Moderation::End => {
                tracing::info!(room, by, "a moderator ends the room");
                for member in self.members(room) {
                    let msg = ServerMessage::RoomEnded { by: by.to_owned() };
                    self.remove(member, msg, close::ROOM_ENDED, "the room ended");
                }
            }
        }
    }

    /// Tells a member why it goes, closes its connection and ends its session (no
    /// reconnect grace: the session is gone, its token with it).
    fn remove(&mut self, peer: PeerId, msg: ServerMessage, code: u16, why: &str) {
        if let Some(conn) = self.conn_of(peer) {
            self.send(conn, msg);
            self.out.push(Output::Close(conn, code, why.into()));
        }
        self.end_session(peer, why);
    }

    /// The tracks `peer` publishes in `room` from `source`.
    fn tracks_from(&self, room: &str, peer: PeerId, source: Source) -> Vec<TrackId> {
        self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.tracks
                .iter()
                .filter(|t| t.peer == peer && Source::of(&track_ref(&t.name)) == source)
                .map(|t| t.track)
                .collect()
        })
    }
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Camera => "camera",
        Source::Microphone => "microphone",
        Source::ScreenShare => "screen share",
        Source::ScreenShareAudio => "screen share sound",
    }
}
