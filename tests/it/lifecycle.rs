//! The server's life as a supervisor sees it: `/health` names a stalled shard, a dead
//! shard or a stuck signalling thread stops the server with a failure, SIGTERM's drain takes no new sessions (and
//! `/ready` says so) while the calls in progress go on, and ends when they do or when its
//! time is up, telling the clients still there to reconnect.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use engine::msg::Control;
use protocol::ErrorCode;
use signaling::app::AppConfig;
use signaling::transport::Limits;

use crate::support::{Scene, Ws, server};

fn probe(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_names_a_stalled_shard_and_recovers() {
    let server = server(2, AppConfig::default(), Limits::default());
    let addr = server.http_addr;
    assert_eq!(probe(addr, "/health"), (200, "ok".into()));
    assert_eq!(probe(addr, "/ready"), (200, "ready".into()));
    server.shards()[1].send(Control::InjectStall {
        for_: Duration::from_secs(4),
    });
    let mut stalled = String::new();
    wait_for(
        "/health to report the stall",
        Duration::from_secs(5),
        || {
            let (status, body) = probe(addr, "/health");
            stalled = body;
            status == 503
        },
    );
    assert!(
        stalled.starts_with("stalled: shard-1 has not run for"),
        "{stalled}"
    );
    assert_eq!(
        probe(addr, "/ready").0,
        503,
        "a stalled server is not ready either"
    );
    wait_for("the shard to run again", Duration::from_secs(5), || {
        probe(addr, "/health").0 == 200
    });
}

#[test]
fn a_dead_shard_stops_the_server_with_a_failure_and_clients_are_told_to_reconnect() {
    let server = server(2, AppConfig::default(), Limits::default());
    let mut scene = Scene::with_call(&server, "dying", "ann", 10);
    server.shards()[0].send(Control::InjectThreadPanic);
    let result = server.wait();
    let why = result.expect_err("the server fails");
    assert!(
        why.contains("shard-0 died: it panicked: injected fault in the shard's thread"),
        "{why}"
    );
    scene.pump(Duration::from_millis(300));
    assert!(
        scene.pairs[0].trouble.iter().any(|t| t.contains("closed")),
        "the clients' WebSockets were closed: {:?}",
        scene.pairs[0].trouble
    );
}

#[test]
fn a_stuck_signalling_thread_stops_the_server_with_a_failure() {
    let server = server(1, AppConfig::default(), Limits::default());
    let stop = server.stop_handle();
    let started = Instant::now();
    stop.inject_stall(signaling::server::SIGNALLING_STALL + Duration::from_secs(2));
    let why = server.wait().expect_err("the watchdog fails the server");
    assert!(
        why.starts_with("the signalling thread has not run for"),
        "{why}"
    );
    assert!(
        started.elapsed() >= signaling::server::SIGNALLING_STALL,
        "not before the stall is long enough to be one"
    );
}

#[test]
fn a_drain_refuses_new_sessions_keeps_calls_and_ends_with_the_last() {
    let server = server(1, AppConfig::default(), Limits::default());
    let addr = server.http_addr;
    let stop = server.stop_handle();
    let mut scene = Scene::with_call(&server, "draining", "ann", 10);
    stop.drain(Duration::from_secs(30));
    wait_for("/ready to say draining", Duration::from_secs(5), || {
        probe(addr, "/ready").0 == 503
    });
    let (_, body) = probe(addr, "/ready");
    assert!(body.starts_with("draining"), "{body}");
    assert_eq!(probe(addr, "/health").0, 200, "draining is healthy");
    // A newcomer is turned away with a reason it can act on (try again: another server).
    let mut ws = Ws::connect(addr);
    ws.send(r#"{"type":"join","room":"draining","nickname":"late"}"#);
    wait_for("the newcomer's answer", Duration::from_secs(5), || {
        ws.poll();
        ws.is_closed()
    });
    assert_eq!(ws.errors(), vec![ErrorCode::Unavailable]);
    assert_eq!(ws.close_code(), Some(1013));
    // The call in progress goes on.
    scene.pump(Duration::from_millis(500));
    scene.pairs[0].assert_unbroken("during the drain");
    // The last members leave: the server stops on its own, cleanly.
    let pair = scene.pairs.pop().unwrap();
    for mut c in [pair.publisher, pair.subscriber] {
        c.send(&protocol::ClientMessage::Leave).unwrap();
        c.poll(Duration::from_millis(20)).unwrap();
    }
    server.wait().expect("a drained server stops cleanly");
}

#[test]
fn a_drain_that_runs_out_tells_the_clients_to_reconnect() {
    let server = server(1, AppConfig::default(), Limits::default());
    let mut scene = Scene::with_call(&server, "overtime", "bob", 10);
    let mut ws = Ws::connect(server.http_addr);
    ws.send(r#"{"type":"join","room":"overtime","nickname":"watcher"}"#);
    scene.sockets.push(ws);
    scene.pump_until(Duration::from_secs(5), "the watcher's join", |s| {
        s.sockets[0].count(|m| matches!(m, protocol::ServerMessage::Joined { .. })) == 1
    });
    server.stop_handle().drain(Duration::from_millis(500));
    server.wait().expect("a drained server stops cleanly");
    scene.pump(Duration::from_millis(300));
    assert_eq!(
        scene.sockets[0].close_code(),
        Some(1012),
        "told to reconnect: {:?}",
        scene.sockets[0].got
    );
    let trouble = &scene.pairs[0].trouble;
    assert!(trouble.iter().any(|t| t.contains("closed")), "{trouble:?}");
}
