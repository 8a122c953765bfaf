//! A panic while handling one peer (injected with the engine's `fault-injection` feature,
//! which only test builds enable) drops that peer, is logged, and leaves the shard and
//! every other peer on it running.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::support::{LOCALHOST, Pair, Scene, server, stats};
use client::{Connection, LocalTrack, SessionEvent};
use engine::msg::{Control, PeerId};
use protocol::{ErrorCode, ServerMessage};
use signaling::app::AppConfig;
use signaling::transport::Limits;
use str0m::media::MediaKind;

/// Everything logged in this process.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_writer(move || Sink(sink.clone()))
            .with_ansi(false)
            .try_init();
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_panic_in_one_peer_drops_that_peer_only() {
    let log = log();
    // One shard: the victim and every bystander share it.
    let server = server(1, AppConfig::default(), Limits::default());
    let mut scene = Scene::default();
    scene.pairs.push(Pair::start(&server, "calm", "calm"));
    scene
        .pairs
        .push(Pair::start(&server, "victims-room", "near"));
    let mut victim =
        Connection::join(server.http_addr, "victims-room", "victim", LOCALHOST).expect("joins");
    victim
        .start_media(&[LocalTrack {
            stream_id: "victim".into(),
            track_id: "victim-video".into(),
            kind: MediaKind::Video,
        }])
        .expect("offers");
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !events
        .iter()
        .any(|e| matches!(e, SessionEvent::Peer(client::PeerEvent::Connected)))
    {
        assert!(std::time::Instant::now() < deadline, "the victim connects");
        victim.poll(Duration::from_millis(2)).expect("polls");
        while let Some(e) = victim.next_event() {
            events.push(e);
        }
        scene.pump(Duration::from_millis(3));
    }
    let peer = PeerId(victim.peer_id().parse().expect("a numeric peer id"));
    scene.pump(Duration::from_millis(700));
    let before = stats(&server);
    let peers_before = server.shards()[0].snapshot().peers;
    assert_eq!(peers_before, 5);

    server.shards()[0].send(Control::InjectPanic { peer });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !events.iter().any(|e| matches!(e, SessionEvent::Closed)) {
        assert!(std::time::Instant::now() < deadline, "the victim is told");
        victim.poll(Duration::from_millis(2)).ok();
        while let Some(e) = victim.next_event() {
            events.push(e);
        }
        scene.pump(Duration::from_millis(3));
    }
    assert!(
        events.iter().any(|e| matches!(
            e,
            SessionEvent::Server(ServerMessage::Error {
                code: ErrorCode::MediaEnded,
                ..
            })
        )),
        "the victim's client gets media_ended: {events:?}"
    );
    scene.pump(Duration::from_millis(700));
    let after = stats(&server);
    assert_eq!(after.peer_panics, before.peer_panics + 1);
    assert_eq!(server.shards()[0].snapshot().peers, peers_before - 1);
    let text = String::from_utf8_lossy(&log.lock().expect("the log")).to_string();
    assert!(
        text.contains("panic while handling peer") && text.contains(&format!("peer={}", peer.0)),
        "the panic is logged with the peer"
    );
    // Media went on flowing for everyone else on the shard, before, during and after.
    scene.pump(Duration::from_millis(500));
    scene.assert_bystanders_unbroken("a peer panicked");
}
