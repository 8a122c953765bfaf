//! Pub/sub: a member subscribes to tracks of its room by name and unsubscribes from
//! them; the shard renegotiates and says when each took effect (`subscribed`,
//! `unsubscribed`), which is when the member is told.

use engine::msg::{Control, PeerId, Subscription, TrackId};
use protocol::{ErrorCode, ServerMessage, TileSize, TrackRef};

use super::membership::{track_name, track_ref};
use super::{App, Output, Refusal, refuse};

/// Tiles one `tile_sizes` may name, and a member's sizes kept.
const MAX_TILES: usize = 64;

/// The simulcast layer that fills a tile of `width` × `height` device pixels, on the
/// ladder the web client publishes (a quarter, a half and the whole of 1280×720): the
/// lowest for a tile up to 320 pixels on its longer side, the middle one up to 640,
/// else the top one.
pub fn layer_for_tile(width: u32, height: u32) -> u8 {
    match width.max(height) {
        0..=320 => 0,
        321..=640 => 1,
        _ => 2,
    }
}

impl App {
    /// Every named track must exist in the room, or none is subscribed.
    pub(super) fn subscribe(&mut self, peer: PeerId, tracks: Vec<TrackRef>) -> Result<(), Refusal> {
        let shard = self.media_shard(peer)?;
        let s = self.session(peer)?;
        if !s.grants.may_subscribe() {
            return refuse(
                ErrorCode::Forbidden,
                "your access does not allow receiving others' tracks (canSubscribe)",
            );
        }
        let room = self.rooms.get(&s.room);
        let mut subs = Vec::with_capacity(tracks.len());
        for t in &tracks {
            let name = track_name(t)?;
            let Some(rt) = room.and_then(|r| r.track_named(&name)) else {
                return refuse(
                    ErrorCode::TrackNotFound,
                    format!(
                        "no track {}/{} ({:?}) in this room",
                        t.stream_id, t.track_id, t.kind
                    ),
                );
            };
            subs.push(Subscription {
                track: rt.track,
                name,
            });
        }
        if !subs.is_empty() {
            self.out.push(Output::Control(
                shard,
                Control::Subscribe { peer, tracks: subs },
            ));
        }
        Ok(())
    }

    /// The sizes of the tiles the member shows tracks in: each track it receives gets
    /// at most the simulcast layer that fills its tile; a size for a track whose
    /// subscription is still on its way applies once it is.
    pub(super) fn tile_sizes(&mut self, peer: PeerId, tiles: Vec<TileSize>) -> Result<(), Refusal> {
        if tiles.len() > MAX_TILES {
            return refuse(
                ErrorCode::InvalidMessage,
                format!("at most {MAX_TILES} tiles in one tile_sizes"),
            );
        }
        let shard = self.media_shard(peer)?;
        let Some(s) = self.sessions.get_mut(&peer) else {
            return Ok(());
        };
        for t in tiles {
            let max = layer_for_tile(t.width, t.height);
            s.tile_layers.retain(|(r, _)| *r != t.track);
            if s.tile_layers.len() < MAX_TILES {
                s.tile_layers.push((t.track.clone(), max));
            }
            if let Some((&track, _)) = s.subscribed.iter().find(|(_, r)| **r == t.track) {
                let set = Control::SetMaxLayer { peer, track, max };
                self.out.push(Output::Control(shard, set));
            }
        }
        Ok(())
    }

    /// Every named track must be one the member receives, or none is unsubscribed.
    pub(super) fn unsubscribe(
        &mut self,
        peer: PeerId,
        tracks: Vec<TrackRef>,
    ) -> Result<(), Refusal> {
        let shard = self.media_shard(peer)?;
        let s = self.session(peer)?;
        let mut ids = Vec::with_capacity(tracks.len());
        for t in &tracks {
            let Some((&id, _)) = s.subscribed.iter().find(|(_, r)| *r == t) else {
                return refuse(
                    ErrorCode::TrackNotFound,
                    format!(
                        "you are not subscribed to {}/{} ({:?})",
                        t.stream_id, t.track_id, t.kind
                    ),
                );
            };
            ids.push(id);
        }
        if !ids.is_empty() {
            self.out.push(Output::Control(
                shard,
                Control::Unsubscribe {
                    peer,
                    tracks: ids,
                    gone: false,
                },
            ));
        }
        Ok(())
    }

    /// The shard activated these subscriptions (the client answered their offer).
    pub(super) fn subscribed(&mut self, peer: PeerId, tracks: Vec<TrackId>) {
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        let room = self.rooms.get(&s.room);
        let mut refs = Vec::new();
        let mut caps = Vec::new();
        for t in tracks {
            if let Some(rt) = room.and_then(|r| r.track(t)) {
                let r = track_ref(&rt.name);
                if let Some((_, max)) = s.tile_layers.iter().find(|(tr, _)| *tr == r) {
                    caps.push((t, *max));
                }
                s.subscribed.insert(t, r.clone());
                refs.push(r);
            }
        }
        if let Some(shard) = s.shard {
            for (track, max) in caps {
                let set = Control::SetMaxLayer { peer, track, max };
                self.out.push(Output::Control(shard, set));
            }
        }
        if let (Some(conn), false) = (s.conn, refs.is_empty()) {
            self.send(conn, ServerMessage::Subscribed { tracks: refs });
        }
    }

    /// No subscriber's tile wants the layers of `track` above `max`: its publisher is
    /// told, to pause them.
    pub(super) fn layers_wanted(&mut self, peer: PeerId, track: TrackId, max: u8) {
        let Some(s) = self.sessions.get(&peer) else {
            return;
        };
        let Some(rt) = self.rooms.get(&s.room).and_then(|r| r.track(track)) else {
            return;
        };
        let msg = ServerMessage::Layers {
            track: track_ref(&rt.name),
            max,
        };
        if let Some(conn) = s.conn {
            self.send(conn, msg);
        }
    }

    /// The shard ended these subscriptions (asked for, refused by the client, or the
    /// track went away).
    pub(super) fn unsubscribed(&mut self, peer: PeerId, tracks: Vec<TrackId>) {
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        let refs: Vec<TrackRef> = tracks
            .iter()
            .filter_map(|t| s.subscribed.remove(t))
            .collect();
        if let (Some(conn), false) = (s.conn, refs.is_empty()) {
            self.send(conn, ServerMessage::Unsubscribed { tracks: refs });
        }
    }
}
