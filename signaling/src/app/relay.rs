//! Chat, files and any other application data: a member's `message` is relayed to the
//! rest of its room, or to one member, as the server's `message` with the sender's id;
//! the room's members on other nodes get it through the cluster.

use engine::msg::PeerId;
use protocol::{ErrorCode, ServerMessage};

use super::membership::peer_id_str;
use super::{App, Output, Refusal, refuse};

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
        let conns = targets
            .into_iter()
            .filter_map(|p| self.conn_of(p))
            .collect();
        self.out.push(Output::SendMany(conns, msg));
        Ok(())
    }
}
