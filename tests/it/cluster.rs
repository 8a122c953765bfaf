//! Servers joining one cluster on a real `redis-server` (`--redis`): each registers
//! itself, sees the others, and enters the rooms it holds in the room directory with
//! their members.

use std::time::{Duration, Instant};

use crate::support::{Scene, config, get, metric};
use signaling::app::AppConfig;
use signaling::server::{ClusterConfig, RunningServer, ServerConfig, start};
use signaling::transport::Limits;
use testkit::redis::RedisServer;

fn node(redis: &RedisServer, id: &str) -> RunningServer {
    start(ServerConfig {
        cluster: Some(ClusterConfig {
            redis_url: redis.url(),
            id: id.into(),
            addresses: vec![format!("https://{id}.example")],
            secret: b"a secret the test nodes share".to_vec(),
            node_port: 0,
        }),
        ..config(1, AppConfig::default(), Limits::default())
    })
    .expect("server starts")
}

/// Waits until `/metrics` of `server` shows `series` at `want`.
fn wait_metric(server: &RunningServer, series: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = get(server.http_addr, "/metrics").unwrap_or_default();
        if metric(&page, series) == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{series} is not {want}:\n{page}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn servers_on_one_redis_see_each_other_and_their_rooms() {
    let redis = RedisServer::start();
    let a = node(&redis, "node-a");
    let b = node(&redis, "node-b");
    for s in [&a, &b] {
        wait_metric(s, "peercalls_cluster_redis_up", 1.0);
        wait_metric(s, "peercalls_cluster_nodes", 2.0);
    }

    // A call on node a: the room directory shows a holds it.
    let mut scene = Scene::with_call(&a, "shared", "alice", 20);
    let mut con = redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("the test reads Redis");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        scene.pump(Duration::from_millis(100));
        let holders: Vec<String> = redis::cmd("ZRANGE")
            .arg("peercalls:room:shared:nodes")
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .expect("ZRANGE");
        if holders == ["node-a"] {
            break;
        }
        assert!(Instant::now() < deadline, "holders {holders:?}");
    }
    // With its members: the publisher and the subscriber of the call, by nickname.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        scene.pump(Duration::from_millis(100));
        let members: Vec<String> = redis::cmd("HVALS")
            .arg("peercalls:room:shared:members:node-a")
            .query(&mut con)
            .expect("HVALS");
        let mut names: Vec<String> = members
            .iter()
            .filter_map(|m| serde_json::from_str::<protocol::PeerInfo>(m).ok())
            .map(|p| p.nickname)
            .collect();
        names.sort();
        if names == ["alice-pub", "alice-sub"] {
            break;
        }
        assert!(Instant::now() < deadline, "members {members:?}");
    }
    let info: String = redis::cmd("GET")
        .arg("peercalls:node:node-a")
        .query(&mut con)
        .expect("node a's key");
    assert!(info.contains("https://node-a.example"), "{info}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg("peercalls:node:node-a")
        .query(&mut con)
        .unwrap();
    assert!(
        (1..=6_000).contains(&ttl),
        "its key lives 6 s at most: {ttl} ms"
    );

    // Node b stops: a counts one node again once b's key is gone.
    drop(b);
    wait_metric(&a, "peercalls_cluster_nodes", 1.0);
    // Redis goes: a says so, and its call goes on.
    drop(redis);
    wait_metric(&a, "peercalls_cluster_redis_up", 0.0);
    scene.assert_bystanders_unbroken("without Redis");
}
