//! The files an operator deploys with: the systemd unit passes `systemd-analyze verify`
//! (with this build's binary in place of the installed one), and the Dockerfile is well
//! formed and builds and starts what the README says. (No Docker engine runs here to
//! build the image; its instructions are checked instead.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_peer-calls");

#[test]
fn the_systemd_unit_verifies_and_runs_the_server_with_its_configuration() {
    let unit = include_str!("../../deploy/peer-calls.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    assert!(
        exec.starts_with("/usr/local/bin/peer-calls serve --config "),
        "{exec}"
    );
    assert!(
        unit.contains("ExecReload=/bin/kill -HUP $MAINPID"),
        "reload is SIGHUP"
    );
    assert!(unit.contains("KillSignal=SIGTERM"), "stop drains");
    let dir = std::env::temp_dir().join(format!("peer-calls-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("peer-calls.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/peer-calls", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd) runs");
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    // What the unit runs parses as a command line.
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    let help = Command::new(BIN)
        .args(&args[..1])
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_dockerfile_is_well_formed_and_runs_the_binary_it_builds() {
    const INSTRUCTIONS: [&str; 18] = [
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
        "MAINTAINER",
    ];
    let text = include_str!("../../deploy/Dockerfile");
    let mut stages = Vec::new();
    let mut instructions = Vec::new();
    let mut continued = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if continued {
            continued = line.ends_with('\\');
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        assert!(
            INSTRUCTIONS.contains(&word),
            "line {}: unknown instruction {word}",
            n + 1
        );
        if instructions.is_empty() {
            assert_eq!(word, "FROM", "the first instruction is FROM");
        }
        if word == "FROM" {
            stages.push(rest.split(" AS ").nth(1).map(str::to_owned));
        }
        if word == "COPY" && rest.starts_with("--from=") {
            let stage = rest["--from=".len()..].split(' ').next().unwrap();
            assert!(
                stages.iter().flatten().any(|s| s == stage),
                "line {}: COPY --from={stage} names no stage before it",
                n + 1
            );
        }
        if matches!(word, "ENTRYPOINT" | "CMD") {
            let parsed: Vec<String> = serde_json::from_str(rest)
                .unwrap_or_else(|e| panic!("line {}: {word} is not a JSON array: {e}", n + 1));
            assert!(!parsed.is_empty());
        }
        continued = line.ends_with('\\');
        instructions.push((word, rest.to_owned()));
    }
    let arg = |w: &str| -> Vec<String> {
        let (_, rest) = instructions.iter().rev().find(|(i, _)| *i == w).unwrap();
        serde_json::from_str(rest).unwrap()
    };
    let entrypoint = arg("ENTRYPOINT");
    assert_eq!(entrypoint, ["/usr/local/bin/peer-calls"]);
    let built = instructions.iter().any(|(w, r)| {
        *w == "COPY" && r.ends_with("/src/target/release/peer-calls /usr/local/bin/peer-calls")
    });
    assert!(built, "the image holds the binary the build stage made");
    assert!(
        instructions
            .iter()
            .any(|(w, r)| *w == "RUN" && r.contains("cargo build --release --locked")),
        "the build stage builds it"
    );
    // The default command is one the binary takes.
    let cmd = arg("CMD");
    let out = Command::new(BIN)
        .args(&cmd)
        .arg("--udp-port")
        .arg("0")
        .env("PEERCALLS_BIND", "127.0.0.1:0")
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
