//! What the bad-input and isolation tests share: the real server in-process on loopback,
//! bystanders whose media must not skip a packet, raw WebSocket clients for hostile
//! signalling, and a hostile media peer that holds its own SRTP keys.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use client::{Connection, LocalTrack, PeerEvent, SessionEvent};
use engine::io::EngineConfig;
use engine::shard::Liveness;
use engine::stats::ShardStats;
use fuzz_targets::forge::SrtpForge;
use fuzz_targets::peer::RawPeer;
use protocol::{ErrorCode, Kind, ServerMessage, TrackRef};
use signaling::app::AppConfig;
use signaling::server::{RunningServer, ServerConfig, start};
use signaling::transport::Limits;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::MediaKind;
use tungstenite::protocol::CloseFrame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The real server on loopback, with `shards` shards.
pub fn server(shards: usize, app: AppConfig, limits: Limits) -> RunningServer {
    start(config(shards, app, limits)).expect("server starts")
}

/// The configuration [`server`] starts: loopback, system-chosen ports, no pinning.
pub fn config(shards: usize, app: AppConfig, limits: Limits) -> ServerConfig {
    ServerConfig {
        http: SocketAddr::new(LOCALHOST, 0),
        engine: EngineConfig {
            bind_ip: LOCALHOST,
            first_port: 0,
            shards,
            advertised_ip: None,
            pin_cores: false,
            liveness: Liveness::default(),
            tcp_first_port: None,
            node_port: None,
        },
        app,
        limits,
        metrics_token: None,
        tls: None,
        base_path: String::new(),
        cluster: None,
    }
}

/// The sum of every shard's latest counters (they are published twice a second).
pub fn stats(server: &RunningServer) -> ShardStats {
    let mut sum = ShardStats::default();
    for s in server.shards() {
        let t = s.snapshot().stats;
        sum.rx_datagrams += t.rx_datagrams;
        sum.rx_dropped += t.rx_dropped;
        sum.rx_rejected += t.rx_rejected;
        sum.rx_malformed += t.rx_malformed;
        sum.rtp_in += t.rtp_in;
        sum.rtp_forwarded += t.rtp_forwarded;
        sum.peer_panics += t.peer_panics;
        sum.tx_datagrams += t.tx_datagrams;
    }
    sum
}

/// Peers and routed addresses over all shards.
pub fn peers_and_flows(server: &RunningServer) -> (usize, usize) {
    server.shards().iter().fold((0, 0), |(p, f), s| {
        let snap = s.snapshot();
        (p + snap.peers, f + snap.flows)
    })
}

/// A publisher sending numbered VP8 packets and a subscriber that must get every one.
pub struct Pair {
    pub room: String,
    pub publisher: Connection,
    pub subscriber: Connection,
    stream: String,
    sent: u32,
    /// Packet numbers the subscriber received (with duplicates, in arrival order).
    pub received: Vec<u32>,
    /// Anything alarming either bystander saw: errors, closes.
    pub trouble: Vec<String>,
}

fn numbered(i: u32) -> Vec<u8> {
    let mut p = vec![0x5a; 300];
    // A keyframe's first packet: the subscriber's video starts at any of them.
    p[..4].copy_from_slice(&testkit::KEYFRAME_START);
    p[4..8].copy_from_slice(&i.to_be_bytes());
    p
}

impl Pair {
    /// Both join `room`; the publisher sends video, the subscriber subscribes to it.
    pub fn start(server: &RunningServer, room: &str, name: &str) -> Pair {
        Pair::start_at(&server.http_addr.into(), room, name)
    }

    /// [`Pair::start`] at a server reached as `at` says (its base path, TLS).
    pub fn start_at(at: &client::Server, room: &str, name: &str) -> Pair {
        let http = at.clone();
        let mut publisher =
            Connection::join(http.clone(), room, &format!("{name}-pub"), LOCALHOST).expect("joins");
        publisher
            .start_media(&[LocalTrack {
                stream_id: name.into(),
                track_id: format!("{name}-video"),
                kind: MediaKind::Video,
            }])
            .expect("offers");
        let mut subscriber =
            Connection::join(http, room, &format!("{name}-sub"), LOCALHOST).expect("joins");
        subscriber.start_media(&[]).expect("offers");
        let mut pair = Pair {
            room: room.into(),
            publisher,
            subscriber,
            stream: name.into(),
            sent: 0,
            received: Vec::new(),
            trouble: Vec::new(),
        };
        let track = TrackRef::new(name, format!("{name}-video"), Kind::Video);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut connected = [false, false];
        let mut asked = false;
        let mut subscribed = false;
        while !(subscribed && connected[0] && connected[1]) {
            assert!(Instant::now() < deadline, "bystanders {name} did not start");
            for (i, c) in [&mut pair.publisher, &mut pair.subscriber]
                .into_iter()
                .enumerate()
            {
                c.poll(Duration::from_millis(2)).expect("polls");
                while let Some(e) = c.next_event() {
                    match e {
                        SessionEvent::Peer(PeerEvent::Connected) => connected[i] = true,
                        SessionEvent::Server(ServerMessage::Subscribed { .. }) => {
                            subscribed = true;
                        }
                        _ => {}
                    }
                }
            }
            if !asked && pair.subscriber.tracks().iter().any(|t| t.track == track) {
                pair.subscriber
                    .subscribe(vec![track.clone()])
                    .expect("subscribes");
                asked = true;
            }
        }
        pair
    }

    fn send_one(&mut self) {
        let i = self.sent;
        let video = format!("{}-video", self.stream);
        let peer = self.publisher.peer();
        let mid = peer.mid_of(&self.stream, &video).expect("a video m-line");
        peer.send_rtp(
            Instant::now(),
            mid,
            Codec::Vp8,
            i * 3000,
            true,
            &numbered(i),
        )
        .expect("sends");
        self.sent += 1;
    }

    fn poll(&mut self) {
        for (who, c) in [
            ("publisher", &mut self.publisher),
            ("subscriber", &mut self.subscriber),
        ] {
            if let Err(e) = c.poll(Duration::ZERO) {
                self.trouble.push(format!("{who}: {e}"));
            }
            while let Some(e) = c.next_event() {
                match e {
                    SessionEvent::Peer(PeerEvent::Rtp(p)) if p.payload.len() >= 8 => {
                        let n = u32::from_be_bytes([
                            p.payload[4],
                            p.payload[5],
                            p.payload[6],
                            p.payload[7],
                        ]);
                        self.received.push(n);
                    }
                    SessionEvent::Server(ServerMessage::Error { code, reason, .. }) => {
                        self.trouble.push(format!("{who}: {code:?} {reason}"));
                    }
                    SessionEvent::Closed => self.trouble.push(format!("{who}: closed")),
                    _ => {}
                }
            }
        }
    }

    /// Every packet sent so far arrived (NACK/RTX repairs a rare loopback loss), none
    /// twice as a gap would show, and neither bystander saw an error or a close.
    pub fn assert_unbroken(&self, what: &str) {
        let mut got = self.received.clone();
        got.sort_unstable();
        got.dedup();
        let want: Vec<u32> = (0..self.sent).collect();
        let missing: Vec<u32> = want
            .iter()
            .copied()
            .filter(|n| got.binary_search(n).is_err())
            .collect();
        assert!(
            missing.is_empty(),
            "{what}: bystanders in {} missed packets {missing:?} of {}",
            self.room,
            self.sent
        );
        assert!(self.trouble.is_empty(), "{what}: {:?}", self.trouble);
    }
}

/// Things the test drives in one loop: bystander pairs, raw WebSockets, hostile peers.
#[derive(Default)]
pub struct Scene {
    pub pairs: Vec<Pair>,
    pub sockets: Vec<Ws>,
    pub hostiles: Vec<Hostile>,
    pub observers: Vec<Observer>,
    next_send: Option<Instant>,
}

/// A client that subscribes to one track and keeps every payload it receives.
pub struct Observer {
    pub conn: Connection,
    track: TrackRef,
    asked: bool,
    pub subscribed: bool,
    pub payloads: Vec<Vec<u8>>,
    pub events: Vec<SessionEvent>,
}

impl Observer {
    /// Joins `room` and subscribes to `track` as soon as it is published.
    pub fn join(server: &RunningServer, room: &str, track: TrackRef) -> Observer {
        let mut conn =
            Connection::join(server.http_addr, room, "observer", LOCALHOST).expect("joins");
        conn.start_media(&[]).expect("offers");
        Observer {
            conn,
            track,
            asked: false,
            subscribed: false,
            payloads: Vec::new(),
            events: Vec::new(),
        }
    }

    fn poll(&mut self) {
        let _ = self.conn.poll(Duration::ZERO);
        if !self.asked && self.conn.tracks().iter().any(|t| t.track == self.track) {
            let _ = self.conn.subscribe(vec![self.track.clone()]);
            self.asked = true;
        }
        while let Some(e) = self.conn.next_event() {
            match e {
                SessionEvent::Peer(PeerEvent::Rtp(p)) => self.payloads.push(p.payload.to_vec()),
                SessionEvent::Server(ServerMessage::Subscribed { .. }) => self.subscribed = true,
                e => self.events.push(e),
            }
        }
    }

    /// How many received payloads equal `p`.
    pub fn count(&self, p: &[u8]) -> usize {
        self.payloads.iter().filter(|q| q.as_slice() == p).count()
    }
}

/// Bystanders send a packet this often.
const MEDIA_INTERVAL: Duration = Duration::from_millis(20);
/// How long the end of [`Scene::pump`] only delivers, for the packets still on their way.
const SETTLE: Duration = Duration::from_millis(60);

impl Scene {
    /// Polls everything for `d`; the bystander publishers send a packet every 20 ms.
    pub fn pump(&mut self, d: Duration) {
        let end = Instant::now() + d;
        // The last part of the time only delivers: what was sent has arrived when the
        // pump returns, so a check after it sees every packet sent.
        let last_send = end - SETTLE.min(d / 2);
        loop {
            let now = Instant::now();
            if now < last_send && self.next_send.is_none_or(|t| now >= t) {
                self.next_send = Some(now + MEDIA_INTERVAL);
                for p in &mut self.pairs {
                    p.send_one();
                }
            }
            for p in &mut self.pairs {
                p.poll();
            }
            for s in &mut self.sockets {
                s.poll();
            }
            for h in &mut self.hostiles {
                h.poll();
            }
            for o in &mut self.observers {
                o.poll();
            }
            if Instant::now() >= end {
                return;
            }
            std::thread::sleep(Duration::from_micros(300));
        }
    }

    /// A scene with one call (a [`Pair`] in `room`), once `packets` of its media arrived.
    pub fn with_call(server: &RunningServer, room: &str, name: &str, packets: usize) -> Scene {
        let mut scene = Scene::default();
        scene.pairs.push(Pair::start(server, room, name));
        scene.pump_until(
            Duration::from_secs(10),
            &format!("{packets} packets delivered"),
            |s| s.pairs[0].received.len() >= packets,
        );
        scene
    }

    /// Pumps until `done` holds; panics after `limit`.
    pub fn pump_until(
        &mut self,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Scene) -> bool,
    ) {
        let end = Instant::now() + limit;
        while !done(self) {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            self.pump(Duration::from_millis(5));
        }
    }

    /// Lets the last packets arrive, then checks every pair.
    pub fn assert_bystanders_unbroken(&mut self, what: &str) {
        // At least a second of media, whatever the test did.
        while self.pairs.iter().any(|p| p.sent < 50) {
            self.pump(Duration::from_millis(20));
        }
        // Stop sending, let retransmissions finish.
        let end = Instant::now() + Duration::from_millis(600);
        while Instant::now() < end {
            for p in &mut self.pairs {
                p.poll();
            }
            for h in &mut self.hostiles {
                h.poll();
            }
            for o in &mut self.observers {
                o.poll();
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        self.next_send = None;
        for p in &self.pairs {
            p.assert_unbroken(what);
        }
    }
}

/// What a raw WebSocket client got.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Msg(ServerMessage),
    Text(String),
    Close(Option<(u16, String)>),
}

/// A WebSocket client that sends whatever it is told to.
pub struct Ws {
    ws: Option<WebSocket<MaybeTlsStream<TcpStream>>>,
    pub got: Vec<Got>,
}

impl Ws {
    pub fn connect(http: SocketAddr) -> Ws {
        let tcp = TcpStream::connect_timeout(&http, Duration::from_secs(5)).expect("connects");
        tcp.set_nodelay(true).expect("nodelay");
        let url = format!("ws://{http}/ws");
        let (ws, _) = tungstenite::client::client(url.as_str(), MaybeTlsStream::Plain(tcp))
            .expect("upgrades");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_nonblocking(true).expect("nonblocking");
        }
        Ws {
            ws: Some(ws),
            got: Vec::new(),
        }
    }

    pub fn send(&mut self, text: &str) {
        let Some(ws) = self.ws.as_mut() else { return };
        match ws.send(Message::text(text)) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => {}
        }
    }

    pub fn is_closed(&self) -> bool {
        self.got.iter().any(|g| matches!(g, Got::Close(_)))
    }

    pub fn close_code(&self) -> Option<u16> {
        self.got.iter().find_map(|g| match g {
            Got::Close(Some((code, _))) => Some(*code),
            _ => None,
        })
    }

    pub fn errors(&self) -> Vec<ErrorCode> {
        self.got
            .iter()
            .filter_map(|g| match g {
                Got::Msg(ServerMessage::Error { code, .. }) => Some(*code),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self, f: impl Fn(&ServerMessage) -> bool) -> usize {
        self.got
            .iter()
            .filter(|g| matches!(g, Got::Msg(m) if f(m)))
            .count()
    }

    pub fn poll(&mut self) {
        loop {
            let Some(ws) = self.ws.as_mut() else { return };
            match ws.read() {
                Ok(Message::Text(t)) => match serde_json::from_str(t.as_str()) {
                    Ok(m) => self.got.push(Got::Msg(m)),
                    Err(_) => self.got.push(Got::Text(t.as_str().into())),
                },
                Ok(Message::Close(frame)) => {
                    let frame = frame.map(|CloseFrame { code, reason }| {
                        (u16::from(code), reason.as_str().to_string())
                    });
                    self.got.push(Got::Close(frame));
                    let _ = ws.flush();
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    let _ = ws.flush();
                    return;
                }
                Err(_) => {
                    if !self.is_closed() {
                        self.got.push(Got::Close(None));
                    }
                    self.ws = None;
                    return;
                }
            }
        }
    }
}

/// A hostile media client on the real server: its own signalling, UDP socket and str0m
/// peer, with the keys of its SRTP session, so it can send anything from its 5-tuple.
pub struct Hostile {
    pub ws: Ws,
    pub udp: UdpSocket,
    pub peer: RawPeer,
    pub server_media: Option<SocketAddr>,
    /// The server's ICE ufrag and password for this peer (from its answer).
    pub server_ice: Option<(String, String)>,
    /// Our ICE ufrag.
    pub local_ufrag: Option<String>,
    /// Every datagram the server sent us.
    pub inbound: Vec<Vec<u8>>,
    /// Before the peer's first DTLS datagram goes out, this socket sends a copy of it.
    pub dtls_decoy: Option<UdpSocket>,
    /// Once connected, keep ICE up as libnice does by default: no binding requests, a
    /// binding indication every 2 s instead.
    pub indications_only: bool,
    last_indication: Option<Instant>,
    /// Messages of `ws.got` acted on.
    handled: usize,
}

fn sdp_attr(sdp: &str, name: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.strip_prefix(&format!("a={name}:")))
        .map(|v| v.trim().to_string())
}

impl Hostile {
    /// Joins `room` and offers to publish a video and an audio track named `name`.
    pub fn join(scene: &mut Scene, http: SocketAddr, room: &str, name: &str) -> usize {
        Self::join_with(scene, http, room, name, None)
    }

    /// [`Hostile::join`], with a decoy socket (see [`Hostile::dtls_decoy`]).
    pub fn join_with(
        scene: &mut Scene,
        http: SocketAddr,
        room: &str,
        name: &str,
        dtls_decoy: Option<UdpSocket>,
    ) -> usize {
        let udp = UdpSocket::bind(SocketAddr::new(LOCALHOST, 0)).expect("binds");
        udp.set_nonblocking(true).expect("nonblocking");
        let addr = udp.local_addr().expect("an address");
        let mut peer = RawPeer::new(Instant::now(), addr);
        let mut ws = Ws::connect(http);
        ws.send(&serde_json::json!({"type": "join", "room": room, "nickname": name}).to_string());
        let video = format!("{name}-video");
        let audio = format!("{name}-audio");
        let offer = peer.offer(&[
            (MediaKind::Video, name, &video),
            (MediaKind::Audio, name, &audio),
        ]);
        let local_ufrag = sdp_attr(&offer.to_sdp_string(), "ice-ufrag");
        ws.send(&serde_json::json!({"type": "offer", "sdp": offer.to_sdp_string()}).to_string());
        scene.hostiles.push(Hostile {
            ws,
            udp,
            peer,
            server_media: None,
            server_ice: None,
            local_ufrag,
            inbound: Vec::new(),
            dtls_decoy,
            indications_only: false,
            last_indication: None,
            handled: 0,
        });
        let i = scene.hostiles.len() - 1;
        scene.pump_until(Duration::from_secs(10), "the hostile peer connects", |s| {
            s.hostiles[i].peer.is_connected()
        });
        i
    }

    /// SRTP for what we send, with our session's keys.
    pub fn forge(&self) -> SrtpForge {
        self.peer.forge().expect("DTLS exported keys")
    }

    /// Sends raw bytes to the server from our 5-tuple.
    pub fn send_raw(&self, data: &[u8]) {
        let to = self.server_media.expect("the server's media address");
        let _ = self.udp.send_to(data, to);
    }

    pub fn poll(&mut self) {
        self.ws.poll();
        let new: Vec<ServerMessage> = self.ws.got[self.handled..]
            .iter()
            .filter_map(|g| match g {
                Got::Msg(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        self.handled = self.ws.got.len();
        for m in new {
            match &m {
                ServerMessage::Answer { sdp } => {
                    self.server_media = sdp.lines().find_map(|l| {
                        let f: Vec<&str> = l.strip_prefix("a=candidate:")?.split(' ').collect();
                        format!("{}:{}", f.get(4)?, f.get(5)?).parse().ok()
                    });
                    self.server_ice = sdp_attr(sdp, "ice-ufrag").zip(sdp_attr(sdp, "ice-pwd"));
                    let answer = SdpAnswer::from_sdp_string(sdp).expect("an answer");
                    self.peer.accept_answer(answer).expect("accepted");
                }
                ServerMessage::Offer { sdp } => {
                    let offer = SdpOffer::from_sdp_string(sdp).expect("an offer");
                    let answer = self.peer.accept_offer(offer).expect("answered");
                    self.ws.send(
                        &serde_json::json!({"type": "answer", "sdp": answer.to_sdp_string()})
                            .to_string(),
                    );
                }
                _ => {}
            }
        }
        let mut buf = [0u8; 2048];
        loop {
            match self.udp.recv_from(&mut buf) {
                Ok((n, from)) => {
                    self.inbound.push(buf[..n].to_vec());
                    self.peer.handle_datagram(Instant::now(), from, &buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
        self.peer.handle_timeout(Instant::now());
        let libnice = self.indications_only && self.peer.is_connected();
        while let Some((to, data)) = self.peer.poll_transmit() {
            if (20..=63).contains(&data[0])
                && let Some(decoy) = self.dtls_decoy.take()
            {
                let _ = decoy.send_to(&data, to);
            }
            // A STUN Binding Request: 0x0001, then the magic cookie.
            let request = data.len() >= 8
                && data[..2] == [0x00, 0x01]
                && data[4..8] == [0x21, 0x12, 0xa4, 0x42];
            if libnice && request {
                continue;
            }
            let _ = self.udp.send_to(&data, to);
        }
        if libnice
            && let Some(to) = self.server_media
            && self
                .last_indication
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            // A Binding Indication (0x0011), no attributes.
            let mut indication = vec![0x00, 0x11, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
            indication.extend_from_slice(&rand_bytes_12());
            let _ = self.udp.send_to(&indication, to);
            self.last_indication = Some(Instant::now());
        }
    }
}

/// Twelve bytes for a STUN transaction id, different each time.
fn rand_bytes_12() -> [u8; 12] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut id = [0u8; 12];
    id.copy_from_slice(&nanos.to_be_bytes()[4..16]);
    id
}

// ---- the binary as a child process

/// The server binary this test build made.
pub const BIN: &str = env!("CARGO_BIN_EXE_peer-calls");

/// A TCP port free on loopback right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain `GET` on a fresh connection; `None` when nothing answers.
pub fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Waits until the server `child` answers `/health` (panics if it exits first).
pub fn wait_healthy(addr: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = get(addr, "/health") {
            assert!(r.starts_with("HTTP/1.1 200"), "{r}");
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the server exited early"
        );
        assert!(
            Instant::now() < deadline,
            "the server did not answer /health"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (10 s at most) for `child` to exit.
pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of one sample on a `/metrics` page, by its series (name and labels).
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Runs a command (`ip`, `tc`, …), panicking with its output if it fails.
pub fn run(cmd: &[&str]) {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", cmd.join(" ")));
    assert!(
        out.status.success(),
        "{}: {}",
        cmd.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
