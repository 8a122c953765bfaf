//! One synthetic peer: the project's one client ([`client::Session`] around a
//! [`client::ClientPeer`]: real signalling, ICE, DTLS, SRTP), its own UDP socket (one
//! 5-tuple), and a non-blocking WebSocket. It does no waiting of its own: the
//! generator's event loop ([`crate::driver`]) calls it when its sockets are ready or its
//! time has come, so many peers share one thread.
//!
//! What it adds to the client is the load: it publishes (see [`crate::traffic`]),
//! subscribes to everyone else in its room, and checks what it receives (see
//! [`crate::check`]).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime};

use client::{ClientPeer, LocalTrack, PeerEvent, Session, SessionEvent};
use mio::net::{TcpStream as MioTcp, UdpSocket};
use mio::{Interest, Registry, Token};
use protocol::{ClientMessage, ErrorCode, Kind, ServerMessage, TileSize, TrackRef};
use str0m::format::CodecConfig;
use str0m::media::{MediaKind, Mid};
use tungstenite::handshake::MidHandshake;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::{HandshakeError, Message, WebSocket};

use crate::check::{Arrival, Receiver, Tally};
use crate::scenario::PeerPlan;
use crate::traffic::{LAYER_RIDS, Packet, Traffic, TrafficConfig};
use engine::io::batch::{BATCH, BatchSender, RecvBatch, enable_arrival_times, enable_gro};
use engine::shard::Datagram;

/// Keepalive, well inside the server's 30 s idle limit.
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// How often str0m reports receive statistics (NACKs sent); the tail lasts longer.
pub const STATS_INTERVAL: Duration = Duration::from_millis(500);
/// With simulcast, the speaker's tile (device pixels): its top layer.
const SPEAKER_TILE: (u32, u32) = (1280, 720);
/// With simulcast, everyone else's tile: their lowest layer.
const THUMBNAIL_TILE: (u32, u32) = (320, 180);
/// With simulcast, the next member of the room speaks after this long.
pub const SPEAKER_TURN: Duration = Duration::from_secs(5);
/// Socket buffers of each peer: a keyframe from every publisher of a room at once fits.
const SOCKET_BUFFER: usize = 1 << 20;

/// What the peers of one run share: the clock's epoch and the counters.
pub struct Shared {
    /// Every stamp counts from here.
    pub epoch: Instant,
    /// How publishers send.
    pub traffic: TrafficConfig,
    /// Receive-side counters of every subscriber.
    pub tally: Tally,
    /// Datagrams the generator could not send (its socket buffer was full).
    pub udp_send_dropped: u64,
    /// Packets the publishers handed to their peers.
    pub packets_sent: u64,
    /// Scratch space for outgoing media.
    pub packets: Vec<Packet>,
    /// Scratch space for PLI decisions.
    pub mids: Vec<Mid>,
    /// `--nodes`: latency by whether packets crossed nodes.
    pub hops: Option<crate::hop::HopLatency>,
}

enum Ws {
    Handshaking(MidHandshake<ClientHandshake<MioTcp>>),
    Open(WebSocket<MioTcp>),
    Closed,
}

/// One synthetic peer. See the module docs.
pub struct SyntheticPeer {
    /// Its part in the scenario.
    pub plan: PeerPlan,
    /// `--nodes`: the node it joined (0 on one server).
    pub node: usize,
    session: Session,
    udp: UdpSocket,
    /// Sends on `udp` (GSO while its route takes it).
    sender: BatchSender,
    ws: Ws,
    /// When its WebSocket was opened.
    pub opened: Instant,
    /// `joined` arrived.
    pub joined: bool,
    /// The answer to its first offer arrived.
    pub answered: bool,
    /// ICE + DTLS are up.
    pub connected: bool,
    /// Tracks the server confirmed with `subscribed`.
    pub subscribed: usize,
    requested: Vec<TrackRef>,
    /// `joined` listed tracks of others: its join time counts (see [`SyntheticPeer::join_time`]).
    pub had_tracks_at_join: bool,
    /// The first media packet it received.
    pub first_media: Option<Instant>,
    /// What it publishes, once connected.
    pub traffic: Option<Traffic>,
    /// Stream indexes of its video and audio, if it publishes them.
    pub streams: (Option<u32>, Option<u32>),
    /// What it received.
    pub rx: Receiver,
    /// PLIs/FIRs the server sent it (as a publisher).
    pub keyframe_requests: u64,
    /// With simulcast: the highest of its layers the server last said a tile wants.
    layers_wanted: Option<u8>,
    /// With simulcast: whose turn it is to speak (an index into its plan's speakers).
    speaker_turn: usize,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// It failed because str0m gave up waiting (ICE or the DTLS handshake timed out),
    /// because the server refused it at capacity (`unavailable`), or because the server
    /// ended its session before it connected (`media_ended`: the server's connect
    /// timeout): what a peer sees from a saturated server.
    pub timed_out: bool,
    next_ping: Instant,
    transmits: Vec<Datagram>,
    /// The time its next [`SyntheticPeer::on_timer`] is scheduled for.
    pub scheduled: Option<Instant>,
    seed: u64,
}

impl SyntheticPeer {
    /// Opens the WebSocket and the UDP socket and registers both (tokens `udp_token`,
    /// `ws_token`). The join goes out once the WebSocket handshake is done.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        plan: PeerPlan,
        server: SocketAddr,
        media_ip: IpAddr,
        streams: (Option<u32>, Option<u32>),
        registry: &Registry,
        udp_token: Token,
        ws_token: Token,
        seed: u64,
    ) -> io::Result<Self> {
        let opened = Instant::now();
        let std_udp = std::net::UdpSocket::bind(SocketAddr::new(media_ip, 0))?;
        std_udp.set_nonblocking(true)?;
        let sock = socket2::SockRef::from(&std_udp);
        // Best effort: the kernel caps them.
        let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
        enable_arrival_times(std_udp.as_raw_fd())?;
        // The server's GSO runs arrive whole, as from a NIC that segments them and a
        // receiver whose kernel coalesces them again: the loopback's per-datagram
        // delivery is no longer charged to the server's send (docs/benchmarks.md,
        // optimisation 5). Best effort, as on the server.
        let _ = enable_gro(std_udp.as_raw_fd());
        let local = std_udp.local_addr()?;
        let mut udp = UdpSocket::from_std(std_udp);
        registry.register(&mut udp, udp_token, Interest::READABLE)?;

        // A loopback connect completes at once; the WebSocket handshake does not block.
        let tcp = TcpStream::connect_timeout(&server, Duration::from_secs(5))?;
        tcp.set_nodelay(true)?;
        tcp.set_nonblocking(true)?;
        let mut tcp = MioTcp::from_std(tcp);
        registry.register(&mut tcp, ws_token, Interest::READABLE | Interest::WRITABLE)?;
        let url = format!("ws://{server}/ws");
        let ws = match tungstenite::client::client(url.as_str(), tcp) {
            Ok((ws, _)) => Ws::Open(ws),
            Err(HandshakeError::Interrupted(mid)) => Ws::Handshaking(mid),
            Err(HandshakeError::Failure(e)) => return Err(io::Error::other(e.to_string())),
        };
        let mut peer = Self {
            plan,
            node: 0,
            session: Session::new(ClientPeer::with_stats(
                opened,
                local,
                CodecConfig::new_with_defaults(),
                Some(STATS_INTERVAL),
            )),
            udp,
            sender: BatchSender::new(),
            ws,
            opened,
            joined: false,
            answered: false,
            connected: false,
            subscribed: 0,
            requested: Vec::new(),
            had_tracks_at_join: false,
            first_media: None,
            traffic: None,
            streams,
            rx: Receiver::default(),
            keyframe_requests: 0,
            layers_wanted: None,
            speaker_turn: 0,
            error: None,
            timed_out: false,
            next_ping: opened + PING_INTERVAL,
            transmits: Vec::new(),
            scheduled: None,
            seed,
        };
        if matches!(peer.ws, Ws::Open(_)) {
            peer.send_join();
        }
        Ok(peer)
    }

    /// Everything it subscribes to has been confirmed, and it is connected.
    pub fn ready(&self) -> bool {
        self.connected
            && self.subscribed >= self.plan.expected_tracks
            && (self.traffic.is_some() || !(self.plan.audio || self.plan.video))
    }

    /// WebSocket open → first media packet, for peers that found tracks to receive when
    /// they joined (the first member of a room waits for others, which is not join time).
    pub fn join_time(&self) -> Option<Duration> {
        if !self.had_tracks_at_join {
            return None;
        }
        Some(self.first_media?.saturating_duration_since(self.opened))
    }

    /// When [`SyntheticPeer::on_timer`] is next due.
    pub fn next_wake(&mut self) -> Instant {
        let mut t = self.session.peer().poll_timeout().min(self.next_ping);
        if let Some(due) = self.traffic.as_ref().and_then(Traffic::next_due) {
            t = t.min(due);
        }
        t
    }

    /// Records the peer's first failure. The run reports the first five failures (in the
    /// error that stops a join, or in the report's problems), so the log line is only for
    /// debugging: a ramp step past capacity would print one per refused peer.
    fn fail(&mut self, why: String) {
        if self.error.is_none() {
            tracing::debug!(peer = %self.plan.nickname, "{why}");
            self.error = Some(why);
        }
    }

    fn send_join(&mut self) {
        self.session.send(ClientMessage::Join {
            room: self.plan.room.clone(),
            nickname: self.plan.nickname.clone(),
            token: None,
            // The benchmark places its peers (`--nodes`): never sent on.
            here: true,
            access_token: None,
            password: None,
        });
        self.flush_ws();
    }

    /// Writes queued protocol messages and flushes the WebSocket.
    fn flush_ws(&mut self) {
        let Ws::Open(ws) = &mut self.ws else { return };
        while let Some(m) = self.session.poll_outgoing() {
            let text = serde_json::to_string(&m).expect("client messages serialise");
            match ws.write(Message::text(text)) {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.ws = Ws::Closed;
                    self.fail(format!("websocket write: {e}"));
                    return;
                }
            }
        }
        match ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                self.ws = Ws::Closed;
                self.fail(format!("websocket flush: {e}"));
            }
        }
    }

    /// The WebSocket is readable or writable.
    pub fn on_ws(&mut self, shared: &mut Shared) {
        if let Ws::Handshaking(_) = self.ws {
            let Ws::Handshaking(mid) = std::mem::replace(&mut self.ws, Ws::Closed) else {
                unreachable!()
            };
            match mid.handshake() {
                Ok((ws, _)) => {
                    self.ws = Ws::Open(ws);
                    self.send_join();
                }
                Err(HandshakeError::Interrupted(mid)) => {
                    self.ws = Ws::Handshaking(mid);
                    return;
                }
                Err(HandshakeError::Failure(e)) => {
                    self.fail(format!("websocket handshake: {e}"));
                    return;
                }
            }
        }
        loop {
            let Ws::Open(ws) = &mut self.ws else { return };
            match ws.read() {
                Ok(Message::Text(text)) => {
                    match serde_json::from_str::<ServerMessage>(text.as_str()) {
                        Ok(msg) => self.on_server_message(msg, shared),
                        Err(e) => self.fail(format!("unparseable server message: {e}")),
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.ws = Ws::Closed;
                    if !matches!(
                        e,
                        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed
                    ) {
                        self.fail(format!("websocket read: {e}"));
                    }
                    return;
                }
            }
        }
        self.flush_ws();
    }

    fn on_server_message(&mut self, msg: ServerMessage, shared: &mut Shared) {
        if let Err(e) = self.session.handle_server_message(msg) {
            self.fail(format!("session: {e}"));
            return;
        }
        while let Some(event) = self.session.poll_event() {
            let SessionEvent::Server(msg) = event else {
                continue;
            };
            match msg {
                ServerMessage::Joined { tracks, .. } => {
                    self.joined = true;
                    self.had_tracks_at_join = self.plan.subscribes && !tracks.is_empty();
                    let mut local = Vec::new();
                    let nick = &self.plan.nickname;
                    for (on, kind) in [
                        (self.plan.video, MediaKind::Video),
                        (self.plan.audio, MediaKind::Audio),
                    ] {
                        if on {
                            local.push(LocalTrack {
                                stream_id: nick.clone(),
                                track_id: format!("{nick}-{kind}"),
                                kind,
                            });
                        }
                    }
                    if shared.traffic.simulcast && self.plan.video {
                        let track = format!("{nick}-{}", MediaKind::Video);
                        self.session.peer().set_simulcast(&track, &LAYER_RIDS);
                    }
                    if let Err(e) = self.session.start_media(&local) {
                        self.fail(format!("first offer: {e}"));
                    }
                }
                ServerMessage::Answer { .. } => {
                    self.answered = true;
                    self.subscribe_to_new_tracks(shared);
                }
                ServerMessage::TrackPublished { .. } => self.subscribe_to_new_tracks(shared),
                ServerMessage::Layers { max, .. } => {
                    // Before its traffic starts, kept for it.
                    self.layers_wanted = Some(max);
                    if let Some(t) = self.traffic.as_mut() {
                        t.pause_above(max);
                    }
                }
                ServerMessage::Subscribed { tracks } => self.subscribed += tracks.len(),
                ServerMessage::Error { code, reason, .. } => {
                    // Refused at capacity, or its handshake not done before the server's
                    // connect timeout: the server is saturated, as a timeout would say.
                    let saturated = code == ErrorCode::Unavailable
                        || (code == ErrorCode::MediaEnded && !self.connected);
                    self.timed_out |= saturated && self.error.is_none();
                    self.fail(format!("server refused ({code:?}): {reason}"));
                }
                _ => {}
            }
        }
        // Answers to offers, the first offer, subscriptions.
        self.flush_ws();
        // Applying an answer or an offer may have produced datagrams.
        self.flush_udp(shared);
    }

    fn subscribe_to_new_tracks(&mut self, shared: &Shared) {
        if !self.plan.subscribes || !self.answered {
            return;
        }
        let me = &self.session.peer_id;
        let new: Vec<TrackRef> = self
            .session
            .tracks
            .iter()
            .filter(|t| t.peer_id != *me && !self.requested.contains(&t.track))
            .map(|t| t.track.clone())
            .collect();
        if new.is_empty() {
            return;
        }
        self.requested.extend(new.iter().cloned());
        self.session.send(ClientMessage::Subscribe { tracks: new });
        if shared.traffic.simulcast {
            self.send_tile_sizes();
        }
    }

    /// With simulcast, the tiles of a meeting in speaker view: whoever speaks now large,
    /// everyone else a thumbnail, as the web client reports them.
    fn send_tile_sizes(&mut self) {
        let Some(speaker) = self
            .plan
            .speakers
            .get(self.speaker_turn % self.plan.speakers.len().max(1))
        else {
            return;
        };
        let tiles = self
            .requested
            .iter()
            .filter(|t| t.kind == Kind::Video)
            .map(|t| {
                let (width, height) = if t.stream_id == *speaker {
                    SPEAKER_TILE
                } else {
                    THUMBNAIL_TILE
                };
                TileSize {
                    track: t.clone(),
                    width,
                    height,
                }
            })
            .collect();
        self.session.send(ClientMessage::TileSizes { tiles });
    }

    /// The UDP socket is readable.
    pub fn on_udp(&mut self, recv: &mut RecvBatch, shared: &mut Shared) {
        let fd = self.udp.as_raw_fd();
        loop {
            let n = match recv.recv(fd) {
                Ok(n) => n,
                Err(e) => {
                    self.fail(format!("udp receive: {e}"));
                    return;
                }
            };
            let now = Instant::now();
            let wall_now = SystemTime::now();
            let read_ns = now.saturating_duration_since(shared.epoch).as_nanos() as u64;
            for i in 0..n {
                let Some(message) = recv.message(i) else {
                    continue;
                };
                // The kernel stamps with the system clock, which NTP may step or slew
                // during a run: take the datagram's age against the system clock read
                // just now, and place it before the monotonic read.
                let arrived = message.arrived.map(|t| {
                    let age = wall_now.duration_since(t).unwrap_or_default();
                    read_ns.saturating_sub(age.as_nanos() as u64)
                });
                for (data, _too_long) in message.datagrams() {
                    if let Err(e) = self
                        .session
                        .peer()
                        .handle_datagram(now, message.source, data)
                    {
                        self.fail(format!("media: {e}"));
                    }
                    // str0m hands over a packet while handling its datagram (RTP mode
                    // holds nothing back), so what comes out now arrived with this one.
                    self.media_events(shared, arrived);
                }
            }
            if n < BATCH {
                break;
            }
        }
        self.flush_udp(shared);
    }

    /// Its time has come: str0m's timeout, media due, a ping.
    pub fn on_timer(&mut self, now: Instant, shared: &mut Shared) {
        if let Err(e) = self.session.peer().handle_timeout(now) {
            self.timed_out |= self.error.is_none();
            self.fail(format!("media timeout: {e}"));
        }
        // With simulcast, the speaker changes every turn: the tiles change with it.
        let turn = (now.saturating_duration_since(shared.epoch).as_millis()
            / SPEAKER_TURN.as_millis()) as usize;
        if shared.traffic.simulcast && turn != self.speaker_turn {
            self.speaker_turn = turn;
            if !self.requested.is_empty() && matches!(self.ws, Ws::Open(_)) {
                self.send_tile_sizes();
                self.flush_ws();
            }
        }
        if now >= self.next_ping {
            self.next_ping = now + PING_INTERVAL;
            if matches!(self.ws, Ws::Open(_)) {
                self.session.send(ClientMessage::Ping);
                self.flush_ws();
            }
        }
        if let Some(traffic) = self.traffic.as_mut() {
            let mut packets = std::mem::take(&mut shared.packets);
            traffic.poll(now, &mut packets);
            shared.packets_sent += packets.len() as u64;
            for p in packets.drain(..) {
                let peer = self.session.peer();
                let r = match p.rid {
                    Some(rid) => peer
                        .send_rtp_layer(now, p.mid, rid, p.codec, p.rtp_time, p.marker, &p.payload),
                    None => peer.send_rtp(now, p.mid, p.codec, p.rtp_time, p.marker, &p.payload),
                };
                if let Err(e) = r {
                    self.fail(format!("send: {e}"));
                    break;
                }
            }
            shared.packets = packets;
        }
        self.media_events(shared, None);
        self.flush_udp(shared);
    }

    /// Asks for keyframes on video streams with unrepaired gaps.
    pub fn check_gaps(&mut self, now: Instant, shared: &mut Shared) {
        let mut mids = std::mem::take(&mut shared.mids);
        self.rx.keyframes_needed(now, &mut mids);
        for mid in mids.drain(..) {
            shared.tally.plis += 1;
            if let Err(e) = self.session.peer().request_keyframe(mid) {
                self.fail(format!("keyframe request: {e}"));
            }
        }
        shared.mids = mids;
        self.flush_udp(shared);
    }

    /// Stops publishing.
    pub fn stop_media(&mut self) {
        if let Some(t) = self.traffic.as_mut() {
            t.stop();
        }
    }

    /// Says goodbye (best effort).
    pub fn leave(&mut self) {
        if matches!(self.ws, Ws::Open(_)) {
            self.session.send(ClientMessage::Leave);
            self.flush_ws();
        }
    }

    /// Handles what the peer has to say; `arrived` is when the datagram it just handled
    /// reached its socket (ns since the epoch, by the kernel's stamp), if it did.
    fn media_events(&mut self, shared: &mut Shared, arrived: Option<u64>) {
        while let Some(e) = self.session.peer().poll_event() {
            match e {
                PeerEvent::Connected => {
                    self.connected = true;
                    self.start_traffic(shared);
                }
                PeerEvent::Rtp(p) => {
                    let video = p.codec.is_some_and(|c| c.is_video());
                    let arrival = Arrival {
                        read: p.received,
                        socket_ns: arrived,
                    };
                    let stamp = self.rx.on_packet(
                        p.mid,
                        video,
                        &p.payload,
                        arrival,
                        shared.epoch,
                        &mut shared.tally,
                    );
                    if let (Some(stamp), Some(hops)) = (&stamp, shared.hops.as_mut())
                        && shared.tally.in_window(stamp.sent_ns)
                    {
                        let rx = p.received.saturating_duration_since(shared.epoch);
                        hops.record(self.node, stamp, rx.as_nanos() as u64);
                    }
                    if stamp.is_some() && self.first_media.is_none() {
                        self.first_media = Some(p.received);
                    }
                }
                PeerEvent::KeyframeRequest { rid, .. } => {
                    self.keyframe_requests += 1;
                    if let Some(t) = self.traffic.as_mut() {
                        t.request_keyframe(rid.as_deref());
                    }
                }
                _ => {}
            }
        }
    }

    fn start_traffic(&mut self, shared: &Shared) {
        if self.traffic.is_some() || !(self.plan.audio || self.plan.video) {
            return;
        }
        let nick = self.plan.nickname.clone();
        let peer = self.session.peer();
        let video = self
            .streams
            .0
            .and_then(|s| Some((peer.mid_of(&nick, &format!("{nick}-video"))?, s)));
        let audio = self
            .streams
            .1
            .and_then(|s| Some((peer.mid_of(&nick, &format!("{nick}-audio"))?, s)));
        if video.is_none() && audio.is_none() {
            self.fail("connected before its m-lines were negotiated".into());
            return;
        }
        // Spread the publishers' frame boundaries over a frame interval.
        let fps = shared.traffic.fps.max(1);
        let phase = Duration::from_micros(self.seed.wrapping_mul(7919) % (1_000_000 / fps as u64));
        let mut traffic = Traffic::new(
            shared.traffic,
            video,
            audio,
            Instant::now() + phase,
            shared.epoch,
            self.seed,
        );
        if let Some(max) = self.layers_wanted {
            traffic.pause_above(max);
        }
        self.traffic = Some(traffic);
    }

    /// Sends what the peer produced, in `sendmmsg` batches (runs of equal-sized
    /// datagrams as UDP GSO, like the server).
    fn flush_udp(&mut self, shared: &mut Shared) {
        while let Some((to, data)) = self.session.peer().poll_transmit() {
            self.transmits.push(Datagram { to, data });
        }
        if self.transmits.is_empty() {
            return;
        }
        match self.sender.send(self.udp.as_raw_fd(), &self.transmits) {
            Ok(n) => shared.udp_send_dropped += (self.transmits.len() - n) as u64,
            Err(e) => {
                shared.udp_send_dropped += self.transmits.len() as u64;
                self.fail(format!("udp send: {e}"));
            }
        }
        self.transmits.clear();
    }

    /// NACKs it has sent, as of str0m's last statistics.
    pub fn nacks_sent(&mut self) -> u64 {
        self.session.peer().feedback_sent().0
    }

    /// Packets sent so far on one of its streams.
    pub fn sent(&self, stream: u32) -> u64 {
        self.traffic.as_ref().map_or(0, |t| t.sent(stream))
    }
}
