//! The `/metrics` page of a running server: what a call in progress shows on it, and who
//! may read it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{Scene, metric};
use signaling::app::AppConfig;
use signaling::server::{ServerConfig, start};
use signaling::transport::Limits;

/// Sends one request for `/metrics` and returns the status code and the body.
fn get(http: SocketAddr, method: &str, auth: Option<&str>) -> (u16, String) {
    let mut tcp = TcpStream::connect(http).expect("connects");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(tcp, "{method} /metrics HTTP/1.1\r\nHost: x\r\n{auth}\r\n").unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response)
        .expect("reads the response");
    let status = response[9..12].parse().expect("a status code");
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// The value of the sample `series` (name and labels as written on the page).

#[test]
fn the_page_shows_a_call_in_progress() {
    let server = crate::support::server(1, AppConfig::default(), Limits::default());
    let mut scene = Scene::with_call(&server, "metrics-room", "metrics", 50);
    // Shards publish their counters twice a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let (status, page) = get(server.http_addr, "GET", None);
        assert_eq!(status, 200, "{page}");
        let forwarded = metric(&page, "peercalls_shard_rtp_forwarded_total{shard=\"0\"}");
        if forwarded.is_some_and(|n| n >= 50.0) {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "forwarded packets never showed:\n{page}"
        );
        scene.pump(Duration::from_millis(100));
    };
    assert_eq!(metric(&page, "peercalls_rooms"), Some(1.0), "{page}");
    assert_eq!(metric(&page, "peercalls_sessions"), Some(2.0), "{page}");
    assert_eq!(metric(&page, "peercalls_websockets"), Some(2.0), "{page}");
    assert_eq!(metric(&page, "peercalls_shards"), Some(1.0), "{page}");
    assert_eq!(
        metric(&page, "peercalls_shard_peers{shard=\"0\"}"),
        Some(2.0),
        "{page}"
    );
    let received = metric(&page, "peercalls_shard_rtp_received_total{shard=\"0\"}").unwrap();
    assert!(received >= 50.0, "{page}");
    assert!(
        metric(&page, "process_cpu_seconds_total").is_some(),
        "{page}"
    );
    assert!(metric(&page, "process_resident_memory_bytes").unwrap() > 0.0);
    // The shard's thread, by name, with its CPU time.
    let shard_cpu = page
        .lines()
        .find(|l| l.starts_with("peercalls_thread_cpu_seconds_total{thread=\"shard-0\""))
        .unwrap_or_else(|| panic!("no shard-0 thread on the page:\n{page}"));
    let seconds: f64 = shard_cpu.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(seconds > 0.0, "{shard_cpu}");
    // The shard's forwarding latency: every forwarded copy was counted, in some bucket.
    let h = "peercalls_shard_forwarding_latency_seconds";
    let count = metric(&page, &format!("{h}_count{{shard=\"0\"}}")).unwrap();
    let all = metric(&page, &format!("{h}_bucket{{le=\"+Inf\",shard=\"0\"}}")).unwrap();
    assert!(count >= 50.0 && all == count, "{page}");
    let sum = metric(&page, &format!("{h}_sum{{shard=\"0\"}}")).unwrap();
    assert!(sum > 0.0 && sum / count < 1.0, "mean {} s", sum / count);
    scene.assert_bystanders_unbroken("while the page was read");
}

#[test]
fn with_a_token_the_page_asks_for_it() {
    let server = start(ServerConfig {
        metrics_token: Some("t0ken-with-some-length".into()),
        ..crate::support::config(1, AppConfig::default(), Limits::default())
    })
    .expect("server starts");
    let http = server.http_addr;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer t0ken-with-some-lengt"),
        Some("Basic dDBrZW4="),
    ] {
        let (status, body) = get(http, "GET", auth);
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(!body.contains("peercalls_"), "{auth:?}: {body}");
    }
    let (status, page) = get(http, "GET", Some("Bearer t0ken-with-some-length"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(metric(&page, "peercalls_shards"), Some(1.0), "{page}");
    let (status, body) = get(http, "HEAD", Some("Bearer t0ken-with-some-length"));
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, _) = get(http, "POST", Some("Bearer t0ken-with-some-length"));
    assert_eq!(status, 405);
}

#[test]
fn copies_made_on_another_shard_count_the_whole_way() {
    // Every member to the least-loaded shard: the publisher on one, the subscriber on
    // the other, so every forwarded packet crosses shards.
    let app = AppConfig {
        spread_after: 1,
        spread_load: 0.0,
        ..AppConfig::default()
    };
    let server = crate::support::server(2, app, Limits::default());
    let mut scene = Scene::with_call(&server, "spread-room", "spread", 100);
    scene.pump(Duration::from_millis(600)); // a fresh snapshot from each shard
    let snaps: Vec<_> = server.shards().iter().map(|s| s.snapshot()).collect();
    let sub = snaps
        .iter()
        .position(|s| s.stats.rtp_forwarded >= 100)
        .expect("the subscriber's shard forwarded the packets");
    let pubs = 1 - sub;
    assert_eq!(
        snaps[pubs].stats.rtp_forwarded, 0,
        "the publisher's shard has no subscriber"
    );
    // The subscriber's shard read almost nothing from its socket: its copies are
    // counted with the stamp the publisher's shard passed along.
    let forwarded = snaps[sub].stats.rtp_forwarded as f64;
    let counted = snaps[sub].latency.count() as f64;
    assert!(
        counted >= 0.9 * forwarded,
        "{counted} sends counted on the subscriber's shard for {forwarded} forwarded"
    );
    scene.assert_bystanders_unbroken("across shards");
}
