//! The `peer-calls` binary as an operator runs it: help, configuration from the
//! environment, the health probe, and a clean stop on SIGTERM.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};

use crate::support::{BIN, free_port, get, wait_exit, wait_healthy};

#[test]
fn help_explains_every_option_and_its_environment_variable() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--bind", "PEERCALLS_BIND"),
        ("--udp-port", "PEERCALLS_UDP_PORT"),
        ("--shards", "PEERCALLS_SHARDS"),
        ("--advertise-ip", "PEERCALLS_ADVERTISE_IP"),
        ("--media-ip", "PEERCALLS_MEDIA_IP"),
        ("--reconnect-grace", "PEERCALLS_RECONNECT_GRACE"),
    ] {
        assert!(
            help.contains(flag) && help.contains(env),
            "{flag} / {env} in:\n{help}"
        );
    }
    assert!(help.contains("serve"), "{help}");
}

#[test]
fn serves_from_environment_configuration_and_stops_on_sigterm() {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = Command::new(BIN)
        .env("PEERCALLS_BIND", addr.to_string())
        .env("PEERCALLS_UDP_PORT", "0")
        .env("PEERCALLS_SHARDS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_healthy(addr, &mut child);
    let page = get(addr, "/").unwrap();
    assert!(page.contains("text/html"), "{page}");
    // SIGTERM: a clean stop with exit status 0.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_exit(&mut child);
    assert!(status.success(), "exit status {status:?}");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("shard started") && log.contains("stopped"),
        "{log:?}"
    );
}

#[test]
fn serve_subcommand_and_a_clear_error_for_a_taken_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--bind",
            &taken.local_addr().unwrap().to_string(),
            "--udp-port",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot start"), "{err}");
}

#[test]
fn a_config_file_serves_and_config_shows_where_each_value_came_from() {
    let dir = std::env::temp_dir().join(format!("peer-calls-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("peer-calls.toml");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        &file,
        format!("bind = \"{addr}\"\nudp_port = 0\nshards = 1\nmax_rooms = 7\n"),
    )
    .unwrap();
    // Precedence: flag > environment > file > default.
    let out = Command::new(BIN)
        .args([
            "config",
            "--config",
            file.to_str().unwrap(),
            "--max-rooms",
            "9",
        ])
        .env("PEERCALLS_SHARDS", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8(out.stdout).unwrap();
    let path = file.display();
    for line in [
        format!("bind = \"{addr}\"    # {path}:1"),
        format!("udp_port = 0    # {path}:2"),
        "shards = 2    # environment PEERCALLS_SHARDS".to_owned(),
        "max_rooms = 9    # command line".to_owned(),
        "max_room_size = 100    # default".to_owned(),
    ] {
        assert!(shown.lines().any(|l| l == line), "{line:?} in:\n{shown}");
    }
    // The server starts from the file alone.
    let mut child = Command::new(BIN)
        .args(["--config", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_healthy(addr, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    // A bad value: the server does not start, and says which file, line and key.
    std::fs::write(&file, "udp_port = 0\nmax_shard_load = 2.5\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{path}:2: max_shard_load: must be between 0.1 and 1"
        )),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
