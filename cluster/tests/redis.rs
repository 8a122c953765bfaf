//! The cluster's coordination against a real `redis-server` (installed by
//! `./scripts/test.sh`), started by each test on a loopback port of its own.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use cluster::{Cluster, ClusterError, ClusterEvent, Leave, NodeInfo, RoomEvent};
use testkit::redis::RedisServer as Redis;

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        addresses: vec![format!("https://{id}.example:3000")],
        node_addr: "192.0.2.1:4000".into(),
        boot: "00112233445566778899aabbccddeeff".into(),
        load: 0.1,
    }
}

/// Waits up to `within` for an event `want` picks; the ones before it are dropped.
fn wait_for<T>(
    c: &Cluster,
    within: Duration,
    mut want: impl FnMut(ClusterEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = c
            .events()
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no such event within {within:?}"));
        if let Some(t) = want(e) {
            return t;
        }
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Polls `read` until it gives `want`, for at most 10 s.
fn wait_until<T: PartialEq + std::fmt::Debug>(what: &str, want: T, mut read: impl FnMut() -> T) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = read();
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {got:?}, not {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the room's directory shows `want`.
fn wait_room(c: &Cluster, room: &str, want: &[&str]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    wait_until(&format!("room {room}"), Ok(want), || {
        c.room_nodes(room, Duration::from_secs(2)).map(sorted)
    });
}

#[test]
fn nodes_see_each_other_share_a_room_and_its_events() {
    let redis = Redis::start();
    let a = Cluster::start(&redis.url(), node("a")).unwrap();
    let b = Cluster::start(&redis.url(), node("b")).unwrap();
    for c in [&a, &b] {
        wait_for(c, Duration::from_secs(3), |e| {
            (e == ClusterEvent::Reconnected).then_some(())
        });
    }
    let seen = wait_for(&b, Duration::from_secs(5), |e| match e {
        ClusterEvent::NodeUp(n) => Some(n),
        _ => None,
    });
    assert_eq!(
        seen,
        node("a"),
        "b sees a with its addresses, port and load"
    );

    a.enter("room-1");
    b.enter("room-1");
    wait_room(&a, "room-1", &["a", "b"]);
    // Subscriptions settle within a read of the subscriber.
    std::thread::sleep(Duration::from_millis(300));
    a.publish("room-1", "hello from a".into());
    let got = wait_for(&b, Duration::from_secs(3), |e| match e {
        ClusterEvent::Room(r) => Some(r),
        _ => None,
    });
    assert_eq!(
        got,
        RoomEvent {
            room: "room-1".into(),
            from: "a".into(),
            body: "hello from a".into()
        }
    );
    // A node does not hear itself, and one that left the room hears it no more.
    b.exit("room-1");
    wait_room(&a, "room-1", &["a"]);
    std::thread::sleep(Duration::from_millis(300));
    a.publish("room-1", "after b left".into());
    std::thread::sleep(Duration::from_millis(500));
    let rooms = |c: &Cluster| {
        c.events()
            .try_iter()
            .filter(|e| matches!(e, ClusterEvent::Room(_)))
            .count()
    };
    assert_eq!(rooms(&a), 0, "a does not hear itself");
    assert_eq!(rooms(&b), 0, "b left the room");

    // Leaving on purpose: the others know at their next look at the registry.
    let started = Instant::now();
    a.stop(Leave::Unregister);
    wait_for(&b, Duration::from_secs(3), |e| {
        (e == ClusterEvent::NodeDown("a".into())).then_some(())
    });
    assert!(started.elapsed() < Duration::from_secs(3));
    wait_room(&b, "room-1", &[]);
}

#[test]
fn a_node_that_vanishes_is_dead_once_its_key_expires() {
    let redis = Redis::start();
    let a = Cluster::start(&redis.url(), node("a")).unwrap();
    let b = Cluster::start(&redis.url(), node("b")).unwrap();
    a.enter("r");
    wait_for(&b, Duration::from_secs(5), |e| {
        matches!(e, ClusterEvent::NodeUp(_)).then_some(())
    });
    wait_room(&b, "r", &["a"]);
    let started = Instant::now();
    a.stop(Leave::Vanish);
    wait_for(&b, Duration::from_secs(10), |e| {
        (e == ClusterEvent::NodeDown("a".into())).then_some(())
    });
    let after = started.elapsed();
    assert!(
        after >= Duration::from_secs(3) && after <= Duration::from_secs(9),
        "dead after its key's 6 s and a refresh of 2 s at most: {after:?}"
    );
    // Its room entry lapses with it (written a moment after its key, so a moment later).
    wait_room(&b, "r", &[]);
}

#[test]
fn after_redis_restarts_nodes_register_again_and_events_flow() {
    let redis = Redis::start();
    let a = Cluster::start(&redis.url(), node("a")).unwrap();
    let b = Cluster::start(&redis.url(), node("b")).unwrap();
    a.enter("r");
    b.enter("r");
    wait_room(&a, "r", &["a", "b"]);

    let port = redis.kill();
    for c in [&a, &b] {
        wait_for(c, Duration::from_secs(5), |e| {
            matches!(e, ClusterEvent::Disconnected(_)).then_some(())
        });
    }
    // While Redis is down a query says so, at once.
    assert!(matches!(
        a.room_nodes("r", Duration::from_secs(2)),
        Err(ClusterError::Unavailable(_))
    ));

    // Back, empty (nothing was saved): each node writes what it holds again.
    let _redis = Redis::on(port);
    for c in [&a, &b] {
        wait_for(c, Duration::from_secs(5), |e| {
            (e == ClusterEvent::Reconnected).then_some(())
        });
    }
    wait_room(&b, "r", &["a", "b"]);
    // The subscriber resubscribed: events flow again.
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        a.publish("r", "again".into());
        if let Ok(ClusterEvent::Room(r)) = b.events().recv_timeout(Duration::from_millis(300)) {
            break r;
        }
        assert!(Instant::now() < deadline, "no event after the restart");
    };
    assert_eq!(got.body, "again");
}

#[test]
fn an_unreachable_redis_is_said_and_queries_fail_clearly() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = Cluster::start(&format!("redis://127.0.0.1:{port}/"), node("a")).unwrap();
    let why = wait_for(&a, Duration::from_secs(3), |e| match e {
        ClusterEvent::Disconnected(why) => Some(why),
        _ => None,
    });
    assert!(!why.is_empty());
    let err = a.room_nodes("r", Duration::from_secs(2)).unwrap_err();
    assert!(err.to_string().contains("unavailable"), "{err}");
    assert!(
        Cluster::start("http://not-redis", node("b")).is_err(),
        "not a Redis URL"
    );
}

/// Waits until every node's members of `room`, as `c` reads them, are `want`:
/// `(node, id, info)`, sorted.
fn wait_members(c: &Cluster, room: &str, want: &[(&str, &str, &str)]) {
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(n, i, f)| (n.to_string(), i.to_string(), f.to_string()))
        .collect();
    wait_until(&format!("members of {room}"), Ok(want), || {
        c.room_members(room, Duration::from_secs(2)).map(|ms| {
            let mut v: Vec<_> = ms.into_iter().map(|m| (m.node, m.id, m.info)).collect();
            v.sort();
            v
        })
    });
}

#[test]
fn a_rooms_members_are_read_from_every_node_survive_a_redis_restart_and_go_with_their_node() {
    let redis = Redis::start();
    let a = Cluster::start(&redis.url(), node("a")).unwrap();
    let b = Cluster::start(&redis.url(), node("b")).unwrap();
    a.enter("r");
    a.set_members("r", vec![("1".into(), "alice".into())]);
    b.enter("r");
    b.set_members("r", vec![("7".into(), "bob".into())]);
    wait_members(&a, "r", &[("a", "1", "alice"), ("b", "7", "bob")]);
    a.set_members(
        "r",
        vec![("1".into(), "alice".into()), ("2".into(), "carol".into())],
    );
    wait_members(
        &b,
        "r",
        &[("a", "1", "alice"), ("a", "2", "carol"), ("b", "7", "bob")],
    );
    a.set_members("r", vec![("2".into(), "carol".into())]);
    wait_members(&b, "r", &[("a", "2", "carol"), ("b", "7", "bob")]);

    // Redis restarts empty: each node writes its members again.
    let port = redis.kill();
    let _redis = Redis::on(port);
    for c in [&a, &b] {
        wait_for(c, Duration::from_secs(5), |e| {
            (e == ClusterEvent::Reconnected).then_some(())
        });
    }
    wait_members(&a, "r", &[("a", "2", "carol"), ("b", "7", "bob")]);

    // A node that leaves the room takes its members with it at once; one that vanishes,
    // when its entries lapse.
    a.exit("r");
    wait_members(&b, "r", &[("b", "7", "bob")]);
    a.enter("r");
    a.set_members("r", vec![("3".into(), "dave".into())]);
    wait_members(&a, "r", &[("a", "3", "dave"), ("b", "7", "bob")]);
    b.stop(Leave::Vanish);
    wait_members(&a, "r", &[("a", "3", "dave")]);
}

#[test]
fn members_are_fetched_without_waiting_and_a_restarted_node_is_seen_again() {
    let redis = Redis::start();
    let a = Cluster::start(&redis.url(), node("a")).unwrap();
    let b = Cluster::start(&redis.url(), node("b")).unwrap();
    wait_for(&a, Duration::from_secs(5), |e| match e {
        ClusterEvent::NodeUp(n) if n.id == "b" => Some(()),
        _ => None,
    });
    b.enter("r");
    b.set_members("r", vec![("7".into(), "bob".into())]);
    wait_until(
        "b's member fetched",
        vec![("b".to_string(), "7".to_string())],
        || {
            a.fetch_members("r");
            wait_for(&a, Duration::from_secs(3), |e| match e {
                ClusterEvent::Members { room, members } if room == "r" => Some(
                    members
                        .unwrap()
                        .into_iter()
                        .map(|m| (m.node, m.id))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
        },
    );
    // b restarts under the same id before its key expires: a new boot id, seen as up again.
    b.stop(Leave::Vanish);
    let restarted = NodeInfo {
        boot: "ffeeddccbbaa99887766554433221100".into(),
        ..node("b")
    };
    let _b2 = Cluster::start(&redis.url(), restarted.clone()).unwrap();
    let seen = wait_for(&a, Duration::from_secs(5), |e| match e {
        ClusterEvent::NodeUp(n) if n.id == "b" => Some(n),
        _ => None,
    });
    assert_eq!(seen.boot, restarted.boot);
}
