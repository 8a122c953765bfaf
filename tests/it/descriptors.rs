//! The binary at its file-descriptor limit: started with a low `RLIMIT_NOFILE` and filled
//! with idle connections, it refuses joins with `unavailable` (a reason the page can show
//! and retry on), never panics, keeps the call already running, and takes joins again once
//! descriptors are free.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protocol::{ErrorCode, ServerMessage};

use crate::support::{BIN, Pair, Scene, Ws, free_port, get, wait_exit, wait_healthy};

/// The descriptor limit the server runs with (soft and hard, so it cannot raise it).
const LIMIT: u64 = 160;

/// Opens a WebSocket and joins `room`: `Ok(ws)` once joined, `Err(code)` when refused.
fn join(http: SocketAddr, room: &str, name: &str, scene: &mut Scene) -> Result<Ws, ErrorCode> {
    let mut ws = Ws::connect(http);
    ws.send(&format!(
        r#"{{"type":"join","room":"{room}","nickname":"{name}"}}"#
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        scene.pump(Duration::from_millis(5));
        ws.poll();
        if ws.count(|m| matches!(m, ServerMessage::Joined { .. })) > 0 {
            return Ok(ws);
        }
        if let Some(code) = ws.errors().first() {
            return Err(*code);
        }
        assert!(Instant::now() < deadline, "{name}: no answer to join");
    }
}

#[test]
fn at_the_descriptor_limit_joins_are_refused_until_descriptors_free_up() {
    let port = free_port();
    let http = SocketAddr::from(([127, 0, 0, 1], port));
    let mut command = Command::new(BIN);
    command
        .args([
            "--bind",
            &http.to_string(),
            "--udp-port",
            "0",
            "--shards",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let rl = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = command.spawn().unwrap();
    wait_healthy(http, &mut child);

    // A call in progress, whose media must not notice any of this.
    let mut scene = Scene::default();
    scene
        .pairs
        .push(Pair::start_at(&http.into(), "bystanders", "by"));
    scene.pump_until(Duration::from_secs(10), "the bystanders' media", |s| {
        s.pairs[0].received.len() >= 20
    });

    // Idle members until the server says it has no room for more.
    let mut idle = Vec::new();
    let refused = loop {
        assert!(idle.len() < LIMIT as usize, "never refused");
        // A room each: the room size limit must not be what stops them.
        let n = idle.len();
        match join(http, &format!("crowd-{n}"), &format!("idle{n}"), &mut scene) {
            Ok(ws) => idle.push(ws),
            Err(code) => break code,
        }
    };
    assert_eq!(
        refused,
        ErrorCode::Unavailable,
        "after {} members",
        idle.len()
    );
    assert!(
        idle.len() > 50,
        "refused too early: after {} members",
        idle.len()
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server died at its descriptor limit"
    );
    assert!(get(http, "/health").is_some_and(|r| r.starts_with("HTTP/1.1 200")));

    // The idle members leave: joins work again.
    let crowd = idle.len();
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    let back = loop {
        if let Ok(ws) = join(http, "back", "back", &mut scene) {
            break ws;
        }
        assert!(Instant::now() < deadline, "joins never came back");
        scene.pump(Duration::from_millis(200));
    };
    drop(back);
    scene.assert_bystanders_unbroken(&format!("{crowd} idle members and a refusal"));

    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = wait_exit(&mut child);
    let mut log = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut log);
    assert!(status.success(), "{status}: {log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.contains("file descriptors are running out"),
        "the operator was not told: {log}"
    );
}
