//! Clients that are not browsers, as GStreamer's webrtcbin (libnice) behaves: after
//! connecting it keeps ICE up with binding indications, never a binding request. Its
//! session lives while its media arrives, and every session the server ends is one info
//! line with the peer, the room and why.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::shard::Liveness;
use protocol::{ErrorCode, Kind, ServerMessage, TrackRef};
use signaling::app::AppConfig;
use signaling::server::start;
use signaling::transport::Limits;
use str0m::format::Codec;
use tracing_subscriber::fmt::MakeWriter;

use crate::support::{Got, Hostile, Observer, Pair, Scene, config};

/// Everything the server logs, for the assertions on its info lines.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Log {
    type Writer = Log;
    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn a_client_that_keeps_ice_up_with_indications_stays_while_its_media_flows() {
    let log = Log::default();
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .with_writer(log.clone())
        .init();
    // str0m drops an ICE-lite pair 15 s after the last binding request; a short grace
    // after that, and a short idle timeout for the client that goes quiet.
    let mut cfg = config(1, AppConfig::default(), Limits::default());
    cfg.engine.liveness = Liveness {
        disconnect_grace: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(4),
        ..Liveness::default()
    };
    let server = start(cfg).expect("server starts");
    let mut scene = Scene::default();
    scene.pairs.push(Pair::start(&server, "gst", "browser"));
    // The libnice-like client publishes video and subscribes to the browser's.
    let h = Hostile::join(&mut scene, server.http_addr, "gst", "gst");
    scene.hostiles[h].indications_only = true;
    scene.observers.push(Observer::join(
        &server,
        "gst",
        TrackRef::new("gst", "gst-video", Kind::Video),
    ));
    let browser = TrackRef::new("browser", "browser-video", Kind::Video);
    let subscribe = serde_json::json!({"type": "subscribe", "tracks": [browser]});
    scene.hostiles[h].ws.send(&subscribe.to_string());
    // A client that connects, then goes quiet for good (nobody polls it any more): it is
    // ended, and logged.
    let quiet = Hostile::join(&mut scene, server.http_addr, "gst", "quiet");
    let _quiet = scene.hostiles.remove(quiet);

    let mid = scene.hostiles[h]
        .peer
        .mid_of("gst-video")
        .expect("its video");
    let started = Instant::now();
    let mut seq = 0u64;
    let mut last_check = (0, 0);
    while started.elapsed() < Duration::from_secs(22) {
        seq += 1;
        let mut payload = testkit::KEYFRAME_START.to_vec();
        payload.extend_from_slice(format!("gst-{seq}").as_bytes());
        scene.hostiles[h]
            .peer
            .send_rtp(Instant::now(), mid, Codec::Vp8, seq, &payload);
        scene.pump(Duration::from_millis(20));
        if started.elapsed() > Duration::from_secs(20) && last_check == (0, 0) {
            last_check = (
                scene.observers[0].payloads.len(),
                scene.hostiles[h].peer.received.len(),
            );
        }
    }
    let gst = &scene.hostiles[h];
    let ended = gst.ws.got.iter().any(|g| {
        matches!(
            g,
            Got::Msg(ServerMessage::Error {
                code: ErrorCode::MediaEnded,
                ..
            })
        )
    });
    assert!(
        !ended,
        "the libnice-like client was ended: {:?}",
        gst.ws.got
    );
    // Media still flows both ways at the end, past str0m's 15 s without a binding request.
    assert!(
        scene.observers[0].payloads.len() > last_check.0,
        "its video stopped reaching the room"
    );
    assert!(
        scene.hostiles[h].peer.received.len() > last_check.1,
        "the room's video stopped reaching it"
    );
    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains("session ended") && l.contains("room=gst"))
        .unwrap_or_else(|| panic!("no info line for the quiet client's end:\n{text}"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("peer="), "{line}");
    assert!(
        line.contains("media ended: no packets from the peer for too long"),
        "{line}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("session ended")).count(),
        1,
        "only the quiet client ended:\n{text}"
    );
}
