//! One room across three nodes on one real `redis-server`: str0m members spread over the
//! nodes, each publishing audio and video and subscribing to everyone else, receive
//! everyone (their media crossing the node ports), chat reaches every node, and a member
//! who leaves is gone everywhere with its tracks.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use client::{Connection, LocalTrack, PeerEvent, SessionEvent};
use protocol::{ClientMessage, ServerMessage, TrackRef};
use signaling::app::AppConfig;
use signaling::server::{ClusterConfig, RunningServer, ServerConfig, start};
use signaling::transport::Limits;
use str0m::format::Codec;
use str0m::media::MediaKind;
use testkit::redis::RedisServer;

use crate::support::{LOCALHOST, config, get, metric, run};

const NODES: usize = 3;
const PER_NODE: usize = 2;
const MEMBERS: usize = NODES * PER_NODE;

fn node(redis: &RedisServer, id: &str, shards: usize) -> RunningServer {
    node_with(redis, id, shards, AppConfig::default())
}

fn node_with(redis: &RedisServer, id: &str, shards: usize, app: AppConfig) -> RunningServer {
    let addr = std::net::SocketAddr::new(LOCALHOST, crate::support::free_port());
    start(ServerConfig {
        http: addr,
        cluster: Some(ClusterConfig {
            redis_url: redis.url(),
            id: id.into(),
            addresses: vec![format!("http://{addr}")],
            secret: b"the test cluster's shared secret".to_vec(),
            node_port: 0,
        }),
        ..config(shards, app, Limits::default())
    })
    .expect("node starts")
}

/// Waits until `/metrics` of every node shows `series` at `want`.
fn wait_metric(nodes: &[RunningServer], series: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for n in nodes {
        loop {
            let page = get(n.http_addr, "/metrics").unwrap_or_default();
            if metric(&page, series) == Some(want) {
                break;
            }
            assert!(Instant::now() < deadline, "{series} is not {want}:\n{page}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn tracks(name: &str) -> [LocalTrack; 2] {
    [MediaKind::Audio, MediaKind::Video].map(|kind| LocalTrack {
        stream_id: name.into(),
        track_id: format!("{name}-{kind}"),
        kind,
    })
}

fn refs(name: &str) -> Vec<TrackRef> {
    tracks(name)
        .iter()
        .map(|t| {
            let kind = match t.kind {
                MediaKind::Audio => protocol::Kind::Audio,
                MediaKind::Video => protocol::Kind::Video,
            };
            TrackRef::new(t.stream_id.clone(), t.track_id.clone(), kind)
        })
        .collect()
}

/// What the test learns from the members' events.
struct Room {
    connected: Vec<bool>,
    /// Members each member has been told of (by peer id), besides itself.
    peers: Vec<HashSet<String>>,
    asked: Vec<bool>,
    subscribed: Vec<usize>,
    /// What each member receives now, and when it last asked for more.
    receiving: Vec<HashSet<TrackRef>>,
    asked_at: Vec<Option<Instant>>,
    /// (receiver, sender, video?) seen.
    got: HashSet<(usize, usize, bool)>,
    /// (receiver, text) of chat received.
    chat: Vec<(usize, String)>,
    left: Vec<(usize, String)>,
    unpublished: Vec<(usize, TrackRef)>,
    errors: Vec<String>,
}

impl Room {
    fn new() -> Room {
        Room {
            connected: vec![false; MEMBERS],
            peers: vec![HashSet::new(); MEMBERS],
            asked: vec![false; MEMBERS],
            subscribed: vec![0; MEMBERS],
            receiving: vec![HashSet::new(); MEMBERS],
            asked_at: vec![None; MEMBERS],
            got: HashSet::new(),
            chat: Vec::new(),
            left: Vec::new(),
            unpublished: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn poll(&mut self, members: &mut [Connection]) {
        for (i, c) in members.iter_mut().enumerate() {
            if let Err(e) = c.poll(Duration::ZERO) {
                self.errors.push(format!("m{i}: {e}"));
                continue;
            }
            while let Some(e) = c.next_event() {
                match e {
                    SessionEvent::Peer(PeerEvent::Connected) => self.connected[i] = true,
                    SessionEvent::Peer(PeerEvent::Rtp(p)) if p.payload.len() >= 6 => {
                        let from = usize::from(u16::from_be_bytes([p.payload[4], p.payload[5]]));
                        self.got.insert((i, from, p.codec == Some(Codec::Vp8)));
                    }
                    SessionEvent::Server(ServerMessage::Subscribed { tracks }) => {
                        self.subscribed[i] += tracks.len();
                        self.receiving[i].extend(tracks);
                        self.asked_at[i] = None;
                    }
                    SessionEvent::Server(ServerMessage::Unsubscribed { tracks }) => {
                        for t in &tracks {
                            self.receiving[i].remove(t);
                        }
                    }
                    SessionEvent::Server(ServerMessage::Message { data, .. }) => {
                        self.chat.push((i, data.to_string()));
                    }
                    SessionEvent::Server(ServerMessage::PeerLeft { peer_id }) => {
                        self.left.push((i, peer_id));
                    }
                    SessionEvent::Server(ServerMessage::TrackUnpublished { track, .. }) => {
                        self.receiving[i].remove(&track);
                        self.unpublished.push((i, track));
                    }
                    SessionEvent::Server(ServerMessage::Error { code, reason, .. }) => {
                        self.errors.push(format!("m{i}: {code:?} {reason}"));
                    }
                    SessionEvent::Closed => self.errors.push(format!("m{i}: closed")),
                    _ => {}
                }
            }
            self.peers[i] = c.peers().iter().map(|p| p.peer_id.clone()).collect();
        }
    }

    /// Each connected member of the first `n` asks for the tracks of the others it does
    /// not receive yet (again after a second without an answer): tracks come and go as
    /// members move between nodes.
    fn subscribe_to_everyone(&mut self, members: &mut [Connection], n: usize) {
        for (i, c) in members.iter_mut().enumerate().take(n) {
            if !self.connected[i]
                || self.asked_at[i].is_some_and(|t| t.elapsed() < Duration::from_secs(1))
            {
                continue;
            }
            let lacking: Vec<TrackRef> = (0..n)
                .filter(|j| *j != i)
                .flat_map(|j| refs(&format!("m{j}")))
                .filter(|r| !self.receiving[i].contains(r))
                .filter(|r| c.tracks().iter().any(|t| t.track == *r))
                .collect();
            if !lacking.is_empty() {
                c.subscribe(lacking).expect("subscribes");
                self.asked_at[i] = Some(Instant::now());
            }
        }
    }

    /// Whether each of the first `n` members received audio and video from every other.
    fn everyone_hears_everyone(&self, n: usize) -> bool {
        (0..n).all(|i| {
            (0..n)
                .filter(|j| *j != i)
                .all(|j| self.got.contains(&(i, j, true)) && self.got.contains(&(i, j, false)))
        })
    }

    /// Polls and sends media for `d`, whatever happens.
    fn run_for(&mut self, members: &mut [Connection], d: Duration) {
        let until = Instant::now() + d;
        let mut round = 0;
        while Instant::now() < until {
            self.poll(members);
            round += 1;
            if round % 50 == 0 {
                send_round(members, round / 50);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Polls for `limit`, sending a round of media from every member every 50 ms, until
    /// `done`.
    fn run_until(
        &mut self,
        members: &mut [Connection],
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&mut Room, &mut [Connection]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        let mut round = 0u32;
        let mut next_round = Instant::now();
        loop {
            self.poll(members);
            if done(self, members) {
                return;
            }
            assert!(
                Instant::now() < deadline && self.errors.is_empty(),
                "{what}: errors {:?}, connected {:?}, tracks known {:?}, subscribed {:?}, got {} of {}",
                self.errors,
                self.connected,
                members.iter().map(|c| c.tracks().len()).collect::<Vec<_>>(),
                self.subscribed,
                self.got.len(),
                MEMBERS * (MEMBERS - 1) * 2
            );
            if Instant::now() >= next_round {
                next_round += Duration::from_millis(50);
                round += 1;
                send_round(members, round);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Every member sends one audio and one video packet, each a keyframe's start naming
/// its sender.
fn send_round(members: &mut [Connection], round: u32) {
    for (i, c) in members.iter_mut().enumerate() {
        let name = format!("m{i}");
        let p = c.peer();
        let (Some(audio), Some(video)) = (
            p.mid_of(&name, &format!("{name}-audio")),
            p.mid_of(&name, &format!("{name}-video")),
        ) else {
            continue;
        };
        let mut payload = vec![0u8; 200];
        payload[..4].copy_from_slice(&testkit::KEYFRAME_START);
        payload[4..6].copy_from_slice(&(i as u16).to_be_bytes());
        let now = Instant::now();
        let _ = p.send_rtp(now, audio, Codec::Opus, round * 960, false, &payload);
        let _ = p.send_rtp(now, video, Codec::Vp8, round * 4500, true, &payload);
    }
}

#[test]
fn a_room_across_three_nodes_sees_hears_and_chats_with_everyone() {
    let redis = RedisServer::start();
    // Node b has two shards: remote tracks reach subscribers on either.
    let nodes: Vec<RunningServer> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, id)| node(&redis, id, if i == 1 { 2 } else { 1 }))
        .collect();
    wait_metric(&nodes, "peercalls_cluster_nodes", NODES as f64);

    let mut members: Vec<Connection> = (0..MEMBERS)
        .map(|i| {
            let name = format!("m{i}");
            let at = nodes[i % NODES].http_addr;
            let mut c = Connection::join(at, "across", &name, LOCALHOST).expect("joins");
            c.start_media(&tracks(&name)).expect("offers");
            c
        })
        .collect();
    let mut room = Room::new();

    // Everyone learns of everyone, and subscribes to all their tracks.
    let everyone = 2 * (MEMBERS - 1);
    room.run_until(
        &mut members,
        "subscribing",
        Duration::from_secs(30),
        |room, members| {
            for (i, c) in members.iter_mut().enumerate() {
                if !room.asked[i] && room.connected[i] && c.tracks().len() >= everyone {
                    let wanted = (0..MEMBERS)
                        .filter(|j| *j != i)
                        .flat_map(|j| refs(&format!("m{j}")))
                        .collect();
                    c.subscribe(wanted).expect("subscribes");
                    room.asked[i] = true;
                }
            }
            room.subscribed.iter().all(|n| *n == everyone)
        },
    );
    for (i, c) in members.iter().enumerate() {
        assert_eq!(
            c.peers().len(),
            MEMBERS - 1,
            "m{i} knows every other member"
        );
    }

    // Everyone receives everyone's audio and video.
    room.run_until(&mut members, "media", Duration::from_secs(30), |room, _| {
        room.got.len() == MEMBERS * (MEMBERS - 1) * 2
    });
    for (i, j, _) in &room.got {
        assert_ne!(i, j, "nobody receives itself");
    }
    // The media crossed the node ports, and every node reaches the others (their
    // counters are published every half second).
    for n in &nodes {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let page = get(n.http_addr, "/metrics").unwrap_or_default();
            let figure = |series| metric(&page, series).unwrap_or(0.0);
            if figure("peercalls_node_port_rtp_sent_total") > 0.0
                && figure("peercalls_node_port_rtp_received_total") > 0.0
                && figure("peercalls_node_port_nodes_reachable") == (NODES - 1) as f64
            {
                break;
            }
            assert!(Instant::now() < deadline, "{page}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // Chat from a member on node a reaches every other member, on every node.
    let hello = serde_json::json!({"type": "chat", "text": "hello from a"});
    let hello_text = hello.to_string();
    members[0]
        .send(&ClientMessage::Message {
            data: hello.clone(),
            to: None,
        })
        .expect("sends");
    room.run_until(&mut members, "chat", Duration::from_secs(10), |room, _| {
        let got: HashSet<usize> = room.chat.iter().map(|(i, _)| *i).collect();
        got.len() == MEMBERS - 1
    });
    assert!(room.chat.iter().all(|(i, t)| *i != 0 && *t == hello_text));
    // To one member on another node (m1 is on node b): only it.
    room.chat.clear();
    let to = members[1].peer_id().to_owned();
    let direct = serde_json::json!({"type": "chat", "text": "just for m1"});
    members[0]
        .send(&ClientMessage::Message {
            data: direct.clone(),
            to: Some(to),
        })
        .expect("sends");
    room.run_until(
        &mut members,
        "a direct message",
        Duration::from_secs(10),
        |room, _| !room.chat.is_empty(),
    );
    std::thread::sleep(Duration::from_millis(300));
    room.poll(&mut members);
    assert_eq!(room.chat, [(1, direct.to_string())]);

    // m5 (on node c) leaves: everyone else hears it, and its tracks go.
    let gone = members[5].peer_id().to_owned();
    members[5].send(&ClientMessage::Leave).expect("sends");
    let mut leaver = members.pop().expect("m5");
    room.connected.pop();
    room.run_until(
        &mut members,
        "leaving",
        Duration::from_secs(10),
        |room, _| {
            room.left.iter().filter(|(_, p)| *p == gone).count() == MEMBERS - 1
                && room.unpublished.len() == 2 * (MEMBERS - 1)
        },
    );
    let _ = leaver.poll(Duration::ZERO);
}

#[test]
fn with_room_affinity_a_member_joining_another_node_is_sent_to_the_node_with_the_room() {
    let redis = RedisServer::start();
    let affinity = AppConfig {
        room_affinity: true,
        ..AppConfig::default()
    };
    let nodes: Vec<RunningServer> = ["a", "b"]
        .iter()
        .map(|id| node_with(&redis, id, 1, affinity.clone()))
        .collect();
    wait_metric(&nodes, "peercalls_cluster_nodes", 2.0);
    let mut m0 = Connection::join(nodes[0].http_addr, "gather", "m0", LOCALHOST).expect("joins");
    // Node a enters the room in the directory at its next tick.
    let mut con = redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("the test reads Redis");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let _ = m0.poll(Duration::from_millis(20));
        let holders: Vec<String> = redis::cmd("ZRANGE")
            .arg("peercalls:room:gather:nodes")
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .expect("ZRANGE");
        if holders == ["a"] {
            break;
        }
        assert!(Instant::now() < deadline, "holders {holders:?}");
    }
    let second = Connection::join(nodes[1].http_addr, "gather", "m1", LOCALHOST).expect("joins");
    assert_eq!(
        second.server_addr(),
        nodes[0].http_addr,
        "m1 asked node b and was sent to node a, which holds the room"
    );
    assert!(
        second.peers().iter().any(|p| p.nickname == "m0"),
        "and it is in the room with m0: {:?}",
        second.peers()
    );
    // Asked directly, node b keeps a member of a room nobody holds.
    let alone = Connection::join(nodes[1].http_addr, "elsewhere", "m2", LOCALHOST).expect("joins");
    assert_eq!(alone.server_addr(), nodes[1].http_addr);
}

/// A node as a process of its own, so that it can be killed.
struct NodeProcess {
    http: std::net::SocketAddr,
    child: std::process::Child,
}

impl NodeProcess {
    fn start(redis: &RedisServer, id: &str) -> NodeProcess {
        let http = std::net::SocketAddr::new(LOCALHOST, crate::support::free_port());
        NodeProcess::spawn(None, http, id, &redis.url())
    }

    /// `peer-calls serve` as node `id` at `http` on the Redis at `redis_url`, in the
    /// network namespace `netns` if one is named; waits until it answers.
    fn spawn(netns: Option<&str>, http: std::net::SocketAddr, id: &str, redis_url: &str) -> Self {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns, crate::support::BIN]);
                c
            }
            None => std::process::Command::new(crate::support::BIN),
        };
        let mut child = cmd
            .args(["serve", "--bind", &http.to_string(), "--udp-port", "0"])
            .args(["--shards", "1", "--no-pin", "--node-id", id])
            .args(["--node-address", &format!("http://{http}")])
            // Each member stays on the node the test sends it to.
            .args(["--room-affinity", "false"])
            .env("PEERCALLS_REDIS", redis_url)
            .env("PEERCALLS_METRICS_TOKEN", METRICS_TOKEN)
            .env(
                "PEERCALLS_CLUSTER_SECRET",
                "the test cluster's shared secret",
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the server binary starts");
        crate::support::wait_healthy(http, &mut child);
        NodeProcess { http, child }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn when_a_node_is_killed_its_members_go_on_at_another_and_the_others_see_its_tracks_go() {
    let redis = RedisServer::start();
    let mut nodes: Vec<NodeProcess> = ["a", "b", "c"]
        .iter()
        .map(|id| NodeProcess::start(&redis, id))
        .collect();
    let https: Vec<std::net::SocketAddr> = nodes.iter().map(|n| n.http).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    for n in &nodes {
        while metric(&site_metrics(n), "peercalls_cluster_nodes") != Some(NODES as f64) {
            assert!(Instant::now() < deadline, "the nodes never saw each other");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // One member a node: m0 on a, m1 on b, m2 on c.
    let mut members: Vec<Connection> = (0..NODES)
        .map(|i| {
            let name = format!("m{i}");
            let mut c = Connection::join(https[i], "failover", &name, LOCALHOST).expect("joins");
            c.start_media(&tracks(&name)).expect("offers");
            c
        })
        .collect();
    // And m3 on c, which will not go anywhere when c dies.
    let mut stayer = Connection::join(https[2], "failover", "m3", LOCALHOST).expect("joins");
    stayer.start_media(&tracks("m3")).expect("offers");
    let stayer_id = stayer.peer_id().to_owned();
    members.push(stayer);
    let mut room = Room::new();
    room.run_until(
        &mut members,
        "before the kill",
        Duration::from_secs(30),
        |room, members| {
            room.subscribe_to_everyone(members, NODES);
            room.everyone_hears_everyone(NODES)
        },
    );
    assert!(
        members[2]
            .nodes()
            .iter()
            .any(|n| n.contains(&https[0].to_string())),
        "a member learns where the other nodes are: {:?}",
        members[2].nodes()
    );

    room.run_until(
        &mut members,
        "m3 publishing",
        Duration::from_secs(10),
        |_, members| {
            members[..NODES]
                .iter()
                .all(|c| c.tracks().len() == 2 * (NODES + 1))
        },
    );
    let stayer = members.pop().expect("m3");

    // Node c dies. Its member m2 goes on at another node, keeping its peer id.
    let m2_id = members[2].peer_id().to_owned();
    nodes[2].child.kill().expect("SIGKILL");
    let killed = Instant::now();
    let elsewhere: Vec<String> = members[2].nodes().to_vec();
    let target = elsewhere
        .iter()
        .find_map(|url| {
            url.strip_prefix("http://")?
                .parse::<std::net::SocketAddr>()
                .ok()
        })
        .expect("another node's address");
    members[2].move_to(target, &tracks("m2")).expect("moves");
    assert_eq!(members[2].peer_id(), m2_id, "the same member, resumed");
    room.connected[2] = false;
    room.receiving[2].clear();
    room.asked_at[2] = None;
    room.got.clear();
    room.run_until(
        &mut members,
        "after the kill",
        Duration::from_secs(20),
        |room, members| {
            room.subscribe_to_everyone(members, NODES);
            room.everyone_hears_everyone(NODES)
        },
    );
    let back = killed.elapsed();
    assert!(
        back < Duration::from_secs(5),
        "everyone hears everyone again {back:?} after the kill"
    );
    // The member who stayed with c is gone for the others once c's registry key
    // expires (6 s, and up to 2 s until the others look), with its tracks.
    drop(stayer);
    room.run_until(
        &mut members,
        "the dead node's member leaving",
        Duration::from_secs(12),
        |room, _| {
            (0..2).all(|i| {
                room.left.contains(&(i, stayer_id.clone()))
                    && room
                        .unpublished
                        .iter()
                        .filter(|(r, t)| *r == i && t.stream_id == "m3")
                        .count()
                        == 2
            })
        },
    );
    let gone = killed.elapsed();
    assert!(
        members
            .iter()
            .all(|c| c.peers().iter().all(|p| p.peer_id != stayer_id)),
        "nobody lists the dead node's member"
    );
    eprintln!("back in media {back:?} after the kill; the dead node's member gone after {gone:?}");
}

/// Two nodes' network namespaces, `a` and `b`: each reaches the host (Redis, the
/// clients) over a veth pair of its own, and the other node over a veth pair between
/// them, the only way their node ports talk. Removed when dropped.
struct TwoSites {
    ns: [String; 2],
}

impl TwoSites {
    /// Each site's address, and the host's at its end of the site's veth pair.
    const NODE: [[u8; 4]; 2] = [[10, 77, 1, 2], [10, 77, 2, 2]];
    const HOST: [[u8; 4]; 2] = [[10, 77, 1, 1], [10, 77, 2, 1]];

    fn new() -> TwoSites {
        let id = std::process::id() % 100_000;
        let ns = [format!("pc{id}a"), format!("pc{id}b")];
        let sites = TwoSites { ns: ns.clone() };
        sites.remove();
        for (i, n) in ns.iter().enumerate() {
            let (inside, outside) = (format!("pc{id}{i}i"), format!("pc{id}{i}o"));
            let [node, host] =
                [Self::NODE[i], Self::HOST[i]].map(|a| std::net::Ipv4Addr::from(a).to_string());
            run(&["ip", "netns", "add", n]);
            run(&[
                "ip", "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ]);
            run(&["ip", "link", "set", &inside, "netns", n]);
            run(&["ip", "addr", "add", &format!("{host}/24"), "dev", &outside]);
            run(&["ip", "link", "set", &outside, "up"]);
            run(&[
                "ip",
                "-n",
                n,
                "addr",
                "add",
                &format!("{node}/24"),
                "dev",
                &inside,
            ]);
            run(&["ip", "-n", n, "link", "set", &inside, "up"]);
            run(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        // The link between the sites, and each node's route to the other over it.
        let (ab, ba) = (format!("pc{id}ab"), format!("pc{id}ba"));
        run(&[
            "ip", "link", "add", &ab, "netns", &ns[0], "type", "veth", "peer", "name", &ba,
            "netns", &ns[1],
        ]);
        run(&[
            "ip",
            "-n",
            &ns[0],
            "addr",
            "add",
            "10.77.3.1/30",
            "dev",
            &ab,
        ]);
        run(&[
            "ip",
            "-n",
            &ns[1],
            "addr",
            "add",
            "10.77.3.2/30",
            "dev",
            &ba,
        ]);
        run(&["ip", "-n", &ns[0], "link", "set", &ab, "up"]);
        run(&["ip", "-n", &ns[1], "link", "set", &ba, "up"]);
        run(&[
            "ip",
            "-n",
            &ns[0],
            "route",
            "add",
            "10.77.2.2/32",
            "via",
            "10.77.3.2",
        ]);
        run(&[
            "ip",
            "-n",
            &ns[1],
            "route",
            "add",
            "10.77.1.2/32",
            "via",
            "10.77.3.1",
        ]);
        sites
    }

    fn node_ip(i: usize) -> std::net::IpAddr {
        Self::NODE[i].into()
    }

    fn host_ip(i: usize) -> std::net::IpAddr {
        Self::HOST[i].into()
    }

    /// Drops everything on the link between the sites, both ways, with an nftables rule
    /// in site a (nothing else is touched).
    fn cut(&self) {
        self.drop_on_link("");
    }

    /// Drops one datagram in ten that site a sends the other over their link.
    fn lossy(&self) {
        self.drop_on_link("numgen random mod 100 < 10");
    }

    fn drop_on_link(&self, which: &str) {
        let rules = format!(
            "table inet peercalls_cut {{\n\
             chain out {{ type filter hook output priority 0; oifname \"{0}\" {which} drop; }}\n\
             chain in {{ type filter hook input priority 0; iifname \"{0}\" {which} drop; }}\n}}\n",
            format_args!("pc{}ab", std::process::id() % 100_000)
        );
        let path = std::env::temp_dir().join(format!("peercalls-cut-{}.nft", std::process::id()));
        std::fs::write(&path, rules).unwrap();
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns[0],
            "nft",
            "-f",
            path.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_file(path);
    }

    fn heal(&self) {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns[0],
            "nft",
            "delete",
            "table",
            "inet",
            "peercalls_cut",
        ]);
    }

    fn remove(&self) {
        for n in &self.ns {
            // Deleting a namespace deletes the veth ends in it, and so their peers.
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", n])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Drop for TwoSites {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A node in site `i`'s namespace.
fn node_in_site(sites: &TwoSites, i: usize, redis: &RedisServer) -> NodeProcess {
    let http = std::net::SocketAddr::new(TwoSites::node_ip(i), 8080);
    let redis_url = redis.url_at(TwoSites::host_ip(i));
    NodeProcess::spawn(Some(&sites.ns[i]), http, ["a", "b"][i], &redis_url)
}

/// Lets the test read `/metrics` of node processes (those in a site are reached from
/// another host).
const METRICS_TOKEN: &str = "the test reads the metrics";

/// `/metrics` of a node process, with the token.
fn site_metrics(node: &NodeProcess) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&node.http, Duration::from_millis(500))
    else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {METRICS_TOKEN}\r\nConnection: close\r\n\r\n"
    );
    let mut page = String::new();
    let _ = s.read_to_string(&mut page);
    page
}

/// Waits until every node's `/metrics` shows `series` at `want`.
fn wait_figure(
    nodes: &[&NodeProcess],
    series: &str,
    want: f64,
    within: Duration,
    room: &mut Room,
    members: &mut [Connection],
) {
    let deadline = Instant::now() + within;
    let mut last_look = Instant::now() - Duration::from_secs(1);
    loop {
        room.poll(members);
        if last_look.elapsed() >= Duration::from_millis(200) {
            last_look = Instant::now();
            let all = nodes
                .iter()
                .all(|n| metric(&site_metrics(n), series) == Some(want));
            if all {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{series} did not reach {want} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_cut_link_between_two_nodes_is_noticed_on_both_sides_and_media_resumes_when_it_heals() {
    let sites = TwoSites::new();
    let redis = RedisServer::also_on(&[TwoSites::host_ip(0), TwoSites::host_ip(1)]);
    let nodes = [
        node_in_site(&sites, 0, &redis),
        node_in_site(&sites, 1, &redis),
    ];
    let both = [&nodes[0], &nodes[1]];
    let mut members: Vec<Connection> = (0..2)
        .map(|i| {
            let name = format!("m{i}");
            let mut c = Connection::join(nodes[i].http, "sites", &name, TwoSites::host_ip(i))
                .expect("joins");
            c.start_media(&tracks(&name)).expect("offers");
            c
        })
        .collect();
    let mut room = Room::new();
    room.run_until(
        &mut members,
        "before the cut",
        Duration::from_secs(30),
        |room, members| {
            room.subscribe_to_everyone(members, 2);
            room.everyone_hears_everyone(2)
        },
    );
    wait_figure(
        &both,
        "peercalls_node_port_nodes_reachable",
        1.0,
        Duration::from_secs(5),
        &mut room,
        &mut members,
    );

    // The link is cut: each side sees the other fall silent (3 s without a ping).
    sites.cut();
    let cut = Instant::now();
    wait_figure(
        &both,
        "peercalls_node_port_nodes_reachable",
        0.0,
        Duration::from_secs(8),
        &mut room,
        &mut members,
    );
    eprintln!("both nodes noticed the cut after {:?}", cut.elapsed());
    room.got.clear();
    room.run_for(&mut members, Duration::from_secs(1));
    assert!(
        room.got.is_empty(),
        "media crossed a cut link: {:?}",
        room.got
    );

    // Healed: the nodes hear each other again and the media flows on, nobody asking.
    sites.heal();
    let healed = Instant::now();
    room.run_until(
        &mut members,
        "after healing",
        Duration::from_secs(10),
        |room, _| room.everyone_hears_everyone(2),
    );
    eprintln!(
        "media flowed again {:?} after the link healed",
        healed.elapsed()
    );
    wait_figure(
        &both,
        "peercalls_node_port_nodes_reachable",
        1.0,
        Duration::from_secs(5),
        &mut room,
        &mut members,
    );

    // A lossy link (10% dropped each way): the packets lost between the nodes are asked
    // for again and sent again.
    sites.lossy();
    room.run_for(&mut members, Duration::from_secs(3));
    sites.heal();
    std::thread::sleep(Duration::from_millis(600)); // the counters' next publication
    let figure = |n: &NodeProcess, series| metric(&site_metrics(n), series).unwrap_or(0.0);
    for n in &nodes {
        let (nacked, resent) = (
            figure(n, "peercalls_node_port_rtp_nacked_total"),
            figure(n, "peercalls_node_port_rtp_resent_total"),
        );
        eprintln!(
            "{}: {nacked} packets asked for again, {resent} sent again",
            n.http
        );
        assert!(
            nacked > 0.0 && resent > 0.0,
            "no repair over a lossy link at {}",
            n.http
        );
    }
}

#[test]
fn a_moderator_on_one_node_kicks_locks_and_ends_for_members_on_another() {
    use crate::permissions::{refused, token};
    let redis = RedisServer::start();
    let mut keys = auth::JwtKeys::default();
    keys.add_secret(None, b"the permissions test's secret, 32+ bytes")
        .unwrap();
    let app = AppConfig {
        auth: auth::Provider::Jwt(keys),
        ..AppConfig::default()
    };
    let nodes: Vec<RunningServer> = ["a", "b"]
        .iter()
        .map(|id| node_with(&redis, id, 1, app.clone()))
        .collect();
    wait_metric(&nodes, "peercalls_cluster_nodes", 2.0);
    let admin = token("mod", "Ada", serde_json::json!({"roomAdmin": true}));
    let member = |name: &str| token("mod", name, serde_json::json!({}));
    let mut ada =
        Connection::join_with_access_token(nodes[0].http_addr, "mod", "a", LOCALHOST, &admin)
            .unwrap();
    let mut bo = Connection::join_with_access_token(
        nodes[1].http_addr,
        "mod",
        "b",
        LOCALHOST,
        &member("Bo"),
    )
    .unwrap();
    let mut cy = Connection::join_with_access_token(
        nodes[1].http_addr,
        "mod",
        "c",
        LOCALHOST,
        &member("Cy"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ada.peers().len() < 2 {
        assert!(Instant::now() < deadline, "ada sees {:?}", ada.peers());
        for c in [&mut ada, &mut bo, &mut cy] {
            c.poll(Duration::from_millis(5)).unwrap();
            while c.next_event().is_some() {}
        }
    }
    let heard = |c: &mut Connection, f: &dyn Fn(&ServerMessage) -> bool| {
        c.wait_for(
            Duration::from_secs(10),
            |e| matches!(e, SessionEvent::Server(m) if f(m)),
        )
        .unwrap()
    };
    let bo_id = bo.peer_id().to_owned();
    ada.send(&ClientMessage::Kick {
        peer_id: bo_id,
        reason: Some("off topic".into()),
    })
    .unwrap();
    assert!(heard(
        &mut bo,
        &|m| matches!(m, ServerMessage::Kicked { by, .. } if by == "Ada")
    ));
    ada.send(&ClientMessage::LockRoom { locked: true }).unwrap();
    assert!(heard(&mut cy, &|m| matches!(
        m,
        ServerMessage::RoomLocked { locked: true, .. }
    )));
    let (_, reason) = refused(Connection::join_with_access_token(
        nodes[1].http_addr,
        "mod",
        "d",
        LOCALHOST,
        &member("Di"),
    ));
    assert!(reason.contains("locked"), "node b keeps the lock: {reason}");
    ada.send(&ClientMessage::EndRoom).unwrap();
    assert!(heard(
        &mut cy,
        &|m| matches!(m, ServerMessage::RoomEnded { by } if by == "Ada")
    ));
    assert!(heard(&mut ada, &|m| matches!(
        m,
        ServerMessage::RoomEnded { .. }
    )));
}
