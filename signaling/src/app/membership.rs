//! Room membership as the members see it: who joins and leaves, which tracks are
//! published and unpublished, each announced to the rest of the room; and the
//! conversions between the engine's names for tracks and the protocol's.

use engine::codecs::CodecDesc;
use engine::msg::{Control, PeerId, ShardId, TrackId, TrackName};
use protocol::names::{MSID_RULE, valid_msid_part};
use protocol::{CodecInfo, ErrorCode, Kind, PeerInfo, ServerMessage, TrackInfo, TrackRef};
use str0m::media::MediaKind;

use super::{App, Output, Refusal, refuse};
use crate::rooms::RoomTrack;
use crate::transport::ConnId;

impl App {
    /// A new member enters `room`: the others hear of it first.
    /// A `hidden` member (its grant) is not announced.
    pub(super) fn enter_room(&mut self, room: &str, id: PeerId, nickname: &str, hidden: bool) {
        if !hidden {
            let info = PeerInfo {
                peer_id: peer_id_str(id),
                nickname: nickname.to_owned(),
            };
            self.tell_members(room, &ServerMessage::PeerJoined { peer: info });
        }
        self.rooms.join(room, id);
    }

    /// A member is gone: its tracks are unpublished and the others hear it left. The
    /// last one here takes the room's remote tracks with it (the node port forgets them).
    pub(super) fn leave_room(&mut self, room: &str, peer: PeerId, hidden: bool) {
        let gone = self.rooms.leave(room, peer);
        let members = self.members(room);
        for rt in &gone {
            if rt.origin.is_some() {
                self.unmap(rt.track);
            } else {
                self.announce_unpublished(&members, rt);
            }
        }
        if !hidden {
            let left = ServerMessage::PeerLeft {
                peer_id: peer_id_str(peer),
            };
            self.tell_members(room, &left);
        }
    }

    /// The shard published a track: it joins the room's list unless the room has one
    /// with the same ids already (then it is taken back and the publisher told why).
    pub(super) fn track_published(
        &mut self,
        peer: PeerId,
        track: TrackId,
        name: TrackName,
        codec: CodecDesc,
    ) {
        let Some(s) = self.sessions.get(&peer) else {
            return;
        };
        let (room_name, conn, shard) = (s.room.clone(), s.conn, s.shard);
        let source = protocol::Source::of(&track_ref(&name));
        if !s.grants.may_publish(source) {
            // Taken back, whatever the client's offer said; the rest of its session goes on.
            let why = format!(
                "your access does not allow publishing {source:?} (canPublish, canPublishSources); {}/{} is not forwarded",
                name.stream_id, name.track_id
            );
            return self.take_back(peer, track, (shard, conn), ErrorCode::Forbidden, why);
        }
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        let mine = room.tracks.iter().filter(|t| t.peer == peer).count();
        if mine >= self.config.max_tracks_per_member {
            let max = self.config.max_tracks_per_member;
            let why = format!(
                "a member may publish {max} tracks; {}/{} is not forwarded",
                name.stream_id, name.track_id
            );
            return self.take_back(peer, track, (shard, conn), ErrorCode::TooManyTracks, why);
        }
        if room.track_named(&name).is_some() {
            let why = format!(
                "a track {}/{} is already published in the room; yours is not forwarded",
                name.stream_id, name.track_id
            );
            return self.take_back(peer, track, (shard, conn), ErrorCode::TrackExists, why);
        }
        let rt = RoomTrack {
            track,
            peer,
            name,
            codec,
            origin: None,
        };
        let info = track_info(&rt);
        room.tracks.push(rt);
        self.tell_members(&room_name, &ServerMessage::TrackPublished { track: info });
    }

    /// A track the room does not take: its shard stops it, and its publisher hears why.
    fn take_back(
        &mut self,
        peer: PeerId,
        track: TrackId,
        (shard, conn): (Option<ShardId>, Option<ConnId>),
        code: ErrorCode,
        why: String,
    ) {
        if let Some(shard) = shard {
            self.out
                .push(Output::Control(shard, Control::Unpublish { peer, track }));
        }
        if let Some(conn) = conn {
            self.error(conn, None, code, why);
        }
    }

    /// The shard unpublished a track (the client stopped it, or it was taken back).
    pub(super) fn track_unpublished(&mut self, peer: PeerId, track: TrackId) {
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
        let members = self.members(&room_name);
        self.announce_unpublished(&members, &rt);
    }

    /// Tells the room a track is gone and ends every subscription to it. Every member's
    /// shard hears of it, subscribed or not: a member may keep the track's m-line parked
    /// from an earlier subscription, and it is free for another track now.
    pub(super) fn announce_unpublished(&mut self, members: &[PeerId], rt: &RoomTrack) {
        let msg = ServerMessage::TrackUnpublished {
            peer_id: peer_id_str(rt.peer),
            track: track_ref(&rt.name),
        };
        let mut conns = Vec::with_capacity(members.len());
        for p in members {
            let Some(s) = self.sessions.get(p) else {
                continue;
            };
            if let Some(shard) = s.shard.filter(|_| *p != rt.peer) {
                self.out.push(Output::Control(
                    shard,
                    Control::Unsubscribe {
                        peer: *p,
                        tracks: vec![rt.track],
                        gone: true,
                    },
                ));
            }
            conns.extend(s.conn);
        }
        self.out.push(Output::SendMany(conns, msg));
    }

    /// The members of `room` now (none when nobody is in it).
    pub(super) fn members(&self, room: &str) -> Vec<PeerId> {
        self.rooms
            .get(room)
            .map(|r| r.members.clone())
            .unwrap_or_default()
    }

    /// Sends `msg` to every member of `room` that has a connection now.
    pub(super) fn tell_members(&mut self, room: &str, msg: &ServerMessage) {
        let conns = self
            .members(room)
            .into_iter()
            .filter_map(|p| self.conn_of(p))
            .collect();
        self.out.push(Output::SendMany(conns, msg.clone()));
    }
}

/// Peer ids on the wire are strings.
pub fn peer_id_str(id: PeerId) -> String {
    id.0.to_string()
}

/// A client's name for a track, checked, as the engine names it.
pub(super) fn track_name(t: &TrackRef) -> Result<TrackName, Refusal> {
    if !valid_msid_part(&t.stream_id) || !valid_msid_part(&t.track_id) {
        return refuse(ErrorCode::InvalidMessage, MSID_RULE);
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

/// The engine's name for a track, as clients name it.
pub(super) fn track_ref(n: &TrackName) -> TrackRef {
    TrackRef {
        stream_id: n.stream_id.clone(),
        track_id: n.track_id.clone(),
        kind: match n.kind {
            MediaKind::Audio => Kind::Audio,
            MediaKind::Video => Kind::Video,
        },
    }
}

/// A room's track as `joined` and `track_published` list it.
pub(super) fn track_info(t: &RoomTrack) -> TrackInfo {
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
