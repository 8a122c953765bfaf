//! The signalling state machine without sockets: protocol errors, joins, resumes,
//! limits, relaying. Offers come from the real str0m client peer.

mod admission;
mod affinity;
mod messages;
mod sdp;
mod sessions;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client::{ClientPeer, LocalTrack};
use engine::factory::PeerFactory;
use engine::msg::{Control, Notice, PeerId, TrackId, TrackName};
use protocol::{ErrorCode, Kind, ServerMessage, TrackRef};
use signaling::app::{App, AppConfig, Output, close};
use signaling::transport::ConnId;
use str0m::media::MediaKind;

struct T {
    app: App,
    now: Instant,
}

impl T {
    fn new(config: AppConfig) -> Self {
        let shards: Vec<SocketAddr> = vec![
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:40001".parse().unwrap(),
        ];
        Self {
            app: App::new(config, PeerFactory::new(), shards),
            now: Instant::now(),
        }
    }

    fn open(&mut self, conn: u64) -> ConnId {
        self.app.on_open(self.now, ConnId(conn));
        ConnId(conn)
    }

    fn text(&mut self, conn: ConnId, text: &str) -> Vec<Output> {
        self.app.on_text(self.now, conn, text);
        self.app.take_output()
    }

    fn join(&mut self, conn: u64, room: &str, nick: &str) -> (ConnId, String, String) {
        let c = self.open(conn);
        let out = self.text(
            c,
            &format!(r#"{{"type":"join","room":"{room}","nickname":"{nick}"}}"#),
        );
        let (peer_id, token) = out
            .iter()
            .find_map(|o| match o {
                Output::Send(to, ServerMessage::Joined { peer_id, token, .. }) if *to == c => {
                    Some((peer_id.clone(), token.clone()))
                }
                _ => None,
            })
            .expect("joined");
        (c, peer_id, token)
    }

    fn offer(&mut self, conn: ConnId, tracks: &[LocalTrack]) -> Vec<Output> {
        let mut peer = ClientPeer::new(self.now, "127.0.0.1:5555".parse().unwrap());
        let offer = peer.create_offer(tracks).unwrap();
        let msg = serde_json::json!({"type": "offer", "sdp": offer.to_sdp_string()});
        self.text(conn, &msg.to_string())
    }
}

fn errors(out: &[Output], conn: ConnId) -> Vec<ErrorCode> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(c, ServerMessage::Error { code, .. }) if *c == conn => Some(*code),
            _ => None,
        })
        .collect()
}

fn sent_to(out: &[Output], conn: ConnId) -> Vec<&ServerMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(c, m) if *c == conn => Some(m),
            Output::SendMany(cs, m) if cs.contains(&conn) => Some(m),
            _ => None,
        })
        .collect()
}

fn controls(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::Control(..)))
        .count()
}
