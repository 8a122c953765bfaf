//! Chat, files and any other application data: a member's `message` is relayed to the
//! rest of its room, or to one member, as the server's `message` with the sender's id;
//! the room's members on other nodes get it through the cluster.
//!
//! A member whose data channel is open (its shard said so) sends and gets these on it
//! rather than on the WebSocket: media's path, without the signalling connection's
//! head-of-line blocking. The channel's messages are the same JSON, through the same
//! checks (grants, the rate, files held to their sizes).

use std::sync::Arc;
use std::time::Instant;

use engine::msg::{Control, PeerId};
use protocol::{ClientMessage, ErrorCode, Request, ServerMessage};

use super::membership::peer_id_str;
use super::{App, Output, Refusal, refuse};
use crate::transport::{Admit, RateLimiter};

impl App {
    pub(super) fn relay(
        &mut self,
        peer: PeerId,
        data: serde_json::Value,
        to: Option<String>,
    ) -> Result<(), Refusal> {
        let s = self.session(peer)?;
        if !s.grants.may_send_data() {
            return refuse(
                ErrorCode::Forbidden,
                "your access does not allow sending chat or files (canPublishData)",
            );
        }
        let room = s.room.clone();
        let members = self.members(&room);
        let remote = self.rooms.get(&room).map_or(&[][..], |r| &r.remote[..]);
        let (targets, elsewhere): (Vec<PeerId>, bool) = match &to {
            Some(to) => match members.iter().copied().find(|p| peer_id_str(*p) == *to) {
                Some(p) => (vec![p], false),
                None if remote.iter().any(|m| peer_id_str(m.peer) == *to) => (Vec::new(), true),
                None => {
                    return refuse(
                        ErrorCode::InvalidMessage,
                        format!("no peer {to} in this room"),
                    );
                }
            },
            None => (
                members.into_iter().filter(|p| *p != peer).collect(),
                !remote.is_empty(),
            ),
        };
        if let Some(s) = self.sessions.get_mut(&peer) {
            s.files
                .check(&data)
                .or_else(|reason| refuse(ErrorCode::InvalidMessage, reason))?;
        }
        if elsewhere {
            self.out.push(Output::ToNodes {
                room,
                from: peer_id_str(peer),
                to,
                data: data.clone(),
            });
        }
        let msg = ServerMessage::Message {
            from: peer_id_str(peer),
            data,
        };
        self.deliver(targets, msg);
        Ok(())
    }

    /// Sends `msg` to each of `targets`: on its data channel when it is open, else on its
    /// WebSocket. Serialised once for all channels, as `SendMany` does for sockets.
    pub(super) fn deliver(&mut self, targets: Vec<PeerId>, msg: ServerMessage) {
        let mut conns = Vec::new();
        let mut channels = Vec::new();
        for p in targets {
            let Some(s) = self.sessions.get(&p) else {
                continue;
            };
            match (s.channel, s.shard) {
                (true, Some(shard)) => channels.push((p, shard)),
                _ => conns.extend(s.conn),
            }
        }
        if !channels.is_empty() {
            match serde_json::to_string(&msg) {
                Ok(text) => {
                    let text: Arc<str> = text.into();
                    for (peer, shard) in channels {
                        let text = text.clone();
                        self.out
                            .push(Output::Control(shard, Control::SendData { peer, text }));
                    }
                }
                Err(e) => tracing::error!(error = %e, "a message could not be serialised"),
            }
        }
        if !conns.is_empty() {
            self.out.push(Output::SendMany(conns, msg));
        }
    }

    /// The member's data channel opened or closed.
    pub(super) fn set_channel(&mut self, peer: PeerId, open: bool) {
        if let Some(s) = self.sessions.get_mut(&peer) {
            s.channel = open;
        }
    }

    /// A text message on a member's data channel: a `message` (or a `ping`), at the
    /// WebSocket's rate. Refusals are answered on the WebSocket, where errors go.
    pub(super) fn on_channel_text(&mut self, now: Instant, peer: PeerId, text: &str) {
        let rate = self.config.data_messages_per_second;
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        let conn = s.conn;
        let limiter = s
            .channel_limiter
            .get_or_insert_with(|| RateLimiter::new(rate, now));
        if limiter.admit(now) != Admit::Pass {
            if let Some(conn) = conn {
                self.error(
                    conn,
                    None,
                    ErrorCode::RateLimited,
                    "too many messages on the data channel; this one was dropped",
                );
            }
            return;
        }
        let result = match Request::parse(text) {
            Ok(Request {
                id,
                message: ClientMessage::Message { data, to },
            }) => self.relay(peer, data, to).map_err(|r| (id, r)),
            Ok(Request {
                message: ClientMessage::Ping,
                ..
            }) => Ok(()),
            Ok(Request { id, .. }) => Err((
                id,
                (
                    ErrorCode::InvalidMessage,
                    "only `message` goes on the data channel".to_owned(),
                ),
            )),
            Err(e) => Err((e.id, (e.code, e.reason))),
        };
        if let (Err((id, (code, reason))), Some(conn)) = (result, conn) {
            self.error(conn, id, code, reason);
        }
    }
}
