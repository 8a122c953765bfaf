//! Chat, files and any other application data: a member's `message` is relayed to the
//! rest of its room, or to one member, as the server's `message` with the sender's id.

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
        let members = self.members(&s.room);
        let targets: Vec<PeerId> = match to {
            Some(to) => {
                let Some(p) = members.iter().copied().find(|p| peer_id_str(*p) == to) else {
                    return refuse(
                        ErrorCode::InvalidMessage,
                        format!("no peer {to} in this room"),
                    );
                };
                vec![p]
            }
            None => members.into_iter().filter(|p| *p != peer).collect(),
        };
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
