//! The in-memory room registry: who is in which room and what they publish. A room
//! exists while someone is in it here; in a cluster, it also lists the members other
//! nodes hold and their tracks (`app/remote.rs`).

use std::collections::HashMap;

use engine::codecs::CodecDesc;
use engine::msg::{PeerId, TrackId, TrackName};

/// A track published in a room.
#[derive(Debug, Clone)]
pub struct RoomTrack {
    /// Engine id.
    pub track: TrackId,
    /// Publisher.
    pub peer: PeerId,
    /// msid and kind.
    pub name: TrackName,
    /// What it sends.
    pub codec: CodecDesc,
    /// A track of another node: that node's id and the track's id there (`track` is
    /// then a track of the node port).
    pub origin: Option<(String, u64)>,
}

/// A member of the room on another node.
#[derive(Debug, Clone)]
pub struct RemoteMember {
    /// The node it is on.
    pub node: String,
    /// Its id, unique in the cluster.
    pub peer: PeerId,
    pub nickname: String,
    /// The SHA-256 of its session token (hex): a node it moves to checks the token.
    pub resume: String,
}

/// One room.
#[derive(Debug, Default)]
pub struct Room {
    /// Members on this node, in order of joining.
    pub members: Vec<PeerId>,
    /// Members on other nodes.
    pub remote: Vec<RemoteMember>,
    /// Published tracks, here and on other nodes.
    pub tracks: Vec<RoomTrack>,
    /// A moderator locked it: nobody new joins but moderators.
    pub locked: bool,
    /// The SHA-256 (hex) of the access tokens of members a moderator kicked: they may
    /// not come back while the room lasts.
    pub banned: Vec<String>,
    /// The password its creator set (open rooms, without `--room-password`).
    pub password: Option<String>,
}

impl Room {
    /// The track with these ids.
    pub fn track_named(&self, name: &TrackName) -> Option<&RoomTrack> {
        self.tracks.iter().find(|t| t.name == *name)
    }

    /// The track with this engine id.
    pub fn track(&self, id: TrackId) -> Option<&RoomTrack> {
        self.tracks.iter().find(|t| t.track == id)
    }
}

/// Every room of this server.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: HashMap<String, Room>,
}

impl Rooms {
    /// The room, if anyone is in it.
    pub fn get(&self, name: &str) -> Option<&Room> {
        self.rooms.get(name)
    }

    /// The room, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Room> {
        self.rooms.get_mut(name)
    }

    /// Every room, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Room)> {
        self.rooms.iter().map(|(n, r)| (n.as_str(), r))
    }

    /// The names of the rooms with someone in them.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str)
    }

    /// Number of rooms with someone in them.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// True when no room exists.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Adds a member, creating the room.
    pub fn join(&mut self, name: &str, peer: PeerId) {
        self.rooms
            .entry(name.to_string())
            .or_default()
            .members
            .push(peer);
    }

    /// Removes a member and the tracks it published. When nobody is left here, the room
    /// goes, and with it what it knew of other nodes' members. Returns the removed
    /// tracks, the member's and (if the room went) the other nodes'.
    pub fn leave(&mut self, name: &str, peer: PeerId) -> Vec<RoomTrack> {
        let Some(room) = self.rooms.get_mut(name) else {
            return Vec::new();
        };
        room.members.retain(|p| *p != peer);
        let last = room.members.is_empty();
        let (gone, kept) = std::mem::take(&mut room.tracks)
            .into_iter()
            .partition(|t| t.peer == peer || last);
        room.tracks = kept;
        if last {
            self.rooms.remove(name);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_exists_while_someone_is_in_it() {
        let mut r = Rooms::default();
        r.join("a", PeerId(1));
        r.join("a", PeerId(2));
        assert_eq!(r.len(), 1);
        r.leave("a", PeerId(1));
        assert!(r.get("a").is_some());
        r.leave("a", PeerId(2));
        assert!(r.get("a").is_none());
        assert!(r.is_empty());
    }
}
