//! A shard whose input arrives faster than it can handle it (past its capacity, or
//! flooded) still sends: its loop reads a bounded number of batches per turn and then
//! drives its peers, and it stamps each batch with the time it was read, so no peer it
//! keeps hearing from looks silent. Before, the loop read the socket to empty: under
//! such input it never came back to its output, and a healthy publisher was ended as
//! silent once the read had lasted longer than the idle timeout (seen in a ramp of
//! `peer-calls bench`).
//!
//! A saturated shard also says so (its busy share), and signalling then refuses new
//! sessions with a reason and "try again later" instead of admitting them to time out.
//!
//! The shard is slowed down with the engine's `fault-injection` feature (every
//! datagram takes 200 µs, a capacity of a few thousand datagrams a second) and flooded
//! with garbage from an unknown address at ~20,000 a second.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Pair, Scene, Ws, server};
use engine::msg::Control;
use protocol::{ErrorCode, ServerMessage};
use signaling::app::AppConfig;
use signaling::app::close;
use signaling::transport::Limits;

#[test]
fn a_shard_slower_than_its_input_still_forwards_and_keeps_its_peers() {
    let server = server(1, AppConfig::default(), Limits::default());
    let mut scene = Scene::default();
    scene.pairs.push(Pair::start(&server, "calm", "calm"));
    scene.pump_until(Duration::from_secs(5), "media before the flood", |s| {
        s.pairs[0].received.len() >= 10
    });

    let shard = &server.shards()[0];
    shard.send(Control::InjectSlowInput {
        per_datagram: Duration::from_micros(200),
    });
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let flooding = flooding.clone();
        let to = server.media_addrs[0];
        std::thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("a socket");
            let garbage = [0x42u8; 64];
            // 100 datagrams every 5 ms: ~20,000 a second, four times what the slowed
            // shard handles, so its socket never runs dry.
            while flooding.load(Ordering::Relaxed) {
                for _ in 0..100 {
                    let _ = socket.send_to(&garbage, to);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // Let the socket fill, then watch the subscriber for three seconds of flood.
    scene.pump(Duration::from_millis(300));
    let before = scene.pairs[0].received.len();
    let rx0 = shard.snapshot().stats.rx_datagrams;
    scene.pump(Duration::from_secs(3));
    let during = scene.pairs[0].received.len() - before;
    // The counters a shard publishes once a turn (signalling reads them to place new
    // peers on the least-loaded shard) kept coming: its loop came back to the rest of
    // its work, timers and output, thousands of datagrams into the flood.
    let handled = shard.snapshot().stats.rx_datagrams - rx0;
    // ... and they say the shard is saturated (signalling refuses joins by this).
    let busy_in_flood = shard.snapshot().busy;
    // A newcomer is refused meanwhile: the only shard is saturated.
    scene.sockets.push(Ws::connect(server.http_addr));
    scene.sockets[0].send(r#"{"type":"join","room":"late","nickname":"late"}"#);
    scene.pump_until(Duration::from_secs(5), "a refusal", |s| {
        s.sockets[0].is_closed()
    });
    flooding.store(false, Ordering::Relaxed);
    flood.join().expect("the flood thread");
    shard.send(Control::InjectSlowInput {
        per_datagram: Duration::ZERO,
    });
    assert!(
        handled >= 1000,
        "the shard's loop did not come back during the flood: {handled} datagrams counted"
    );
    assert!(
        during >= 5,
        "the subscriber got {during} packets in 3 s of flood: the shard's output starved"
    );
    assert!(
        busy_in_flood >= 0.8,
        "a flooded shard said it was {busy_in_flood:.2} busy"
    );
    assert_eq!(scene.sockets[0].errors(), vec![ErrorCode::Unavailable]);
    assert_eq!(scene.sockets[0].close_code(), Some(close::TRY_AGAIN_LATER));

    // Afterwards: nobody was ended, and everything sent from now on arrives.
    scene.pump(Duration::from_secs(1));
    let busy_after = shard.snapshot().busy;
    assert!(
        busy_after < 0.5,
        "a quiet shard said it was {busy_after:.2} busy"
    );
    // ... and admits newcomers again (signalling reads the shards four times a second).
    scene.pump(Duration::from_millis(300));
    scene.sockets.push(Ws::connect(server.http_addr));
    scene.sockets[1].send(r#"{"type":"join","room":"late","nickname":"late"}"#);
    scene.pump_until(Duration::from_secs(5), "a join after the flood", |s| {
        s.sockets[1].count(|m| matches!(m, ServerMessage::Joined { .. })) == 1
    });
    assert!(scene.sockets[1].errors().is_empty());
    let pair = &scene.pairs[0];
    assert!(pair.trouble.is_empty(), "{:?}", pair.trouble);
    let newer = pair.received.iter().copied().max().map_or(0, |n| n + 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while scene.pairs[0]
        .received
        .iter()
        .filter(|&&n| n >= newer)
        .count()
        < 50
    {
        assert!(
            Instant::now() < deadline,
            "media flows again after the flood"
        );
        scene.pump(Duration::from_millis(20));
    }
    assert!(
        scene.pairs[0].trouble.is_empty(),
        "{:?}",
        scene.pairs[0].trouble
    );
}
