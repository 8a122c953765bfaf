//! Replays every file of `fuzz/corpus/<target>/` through its target, on stable, as an
//! ordinary test: the seeds, everything the fuzzers found worth keeping, and the
//! regression inputs (`regression-*`) of every crash that was fixed. A file that panics
//! fails the test and names itself.

use std::path::PathBuf;

fn replay(target: &str) {
    let (_, run) = fuzz_targets::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no seeds", dir.display());
    // Seeds share connected worlds (building one costs two DTLS handshakes); the input
    // of a fixed crash gets a world of its own, as when it was found.
    fuzz_targets::reuse_worlds();
    for file in &files {
        let data = std::fs::read(file).expect("a readable seed");
        let regression = file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("regression-"));
        if regression {
            fuzz_targets::fresh_world();
        }
        eprintln!("{target}: {}", file.display());
        run(&data);
    }
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn every_target_has_a_test() {
    let names: Vec<&str> = fuzz_targets::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "stun_demux",
            "shard_datagram",
            "shard_srtp",
            "client_message",
            "app_messages",
            "app_sdp",
            "http_ws",
            "rtcp_feedback",
            "relay_open"
        ]
    );
}

#[test]
fn stun_demux() {
    replay("stun_demux");
}

#[test]
fn shard_datagram() {
    replay("shard_datagram");
}

#[test]
fn shard_srtp() {
    replay("shard_srtp");
}

#[test]
fn client_message() {
    replay("client_message");
}

#[test]
fn app_messages() {
    replay("app_messages");
}

#[test]
fn app_sdp() {
    replay("app_sdp");
}

#[test]
fn http_ws() {
    replay("http_ws");
}

#[test]
fn rtcp_feedback() {
    replay("rtcp_feedback");
}

#[test]
fn relay_open() {
    replay("relay_open");
}
