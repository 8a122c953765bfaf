//! A client connected to a server for real: a WebSocket for signalling, a UDP socket
//! for media, and a [`ClientPeer`] between them. It answers the server's offers by
//! itself and reports what happens as [`SessionEvent`]s.
//!
//! It is driven by calling [`Connection::poll`]; nothing runs in the background.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use protocol::{ClientMessage, PeerInfo, ServerMessage, TrackInfo, TrackRef};
use str0m::format::CodecConfig;
use tungstenite::{Message, WebSocket};

use crate::error::ClientError;
use crate::peer::{ClientPeer, LocalTrack};
use crate::session::{Session, SessionEvent};
use crate::wire::{Server, Wire};

/// How long connecting and joining may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A signalling + media connection. See the module docs.
pub struct Connection {
    server: Server,
    ws: Option<WebSocket<Wire>>,
    udp: UdpSocket,
    session: Session,
    room: String,
    nickname: String,
    buf: Vec<u8>,
    /// When the next keepalive `ping` is due (the server closes silent connections).
    next_ping: Instant,
    ping_interval: Duration,
    /// The server sent us to another node once; we join there whatever it says.
    redirected: bool,
    /// Sent with `join` to a server that asks for them.
    credentials: Credentials,
}

/// What a `join` carries to a server that admits members by more than the link.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// An access token (`--auth jwt`, or for the webhook provider).
    pub access_token: Option<String>,
    /// The room's password (`--room-password`, or the one its creator set).
    pub password: Option<String>,
}

/// How often a connection pings: the server closes connections silent for 30 s.
const PING_INTERVAL: Duration = Duration::from_secs(10);

impl Connection {
    /// Connects to the server at `server` (its HTTP address), joins `room` as
    /// `nickname`, and binds a UDP socket on `media_ip` for media.
    pub fn join(
        server: impl Into<Server>,
        room: &str,
        nickname: &str,
        media_ip: std::net::IpAddr,
    ) -> Result<Self, ClientError> {
        Self::join_with_codecs(
            server,
            room,
            nickname,
            media_ip,
            CodecConfig::new_with_defaults(),
        )
    }

    /// [`Connection::join`], with a peer that offers exactly `codecs`, in their order
    /// (see [`ClientPeer::with_codecs`]).
    pub fn join_with_codecs(
        server: impl Into<Server>,
        room: &str,
        nickname: &str,
        media_ip: std::net::IpAddr,
        codecs: CodecConfig,
    ) -> Result<Self, ClientError> {
        let credentials = Credentials::default();
        Self::connect(server.into(), room, nickname, media_ip, codecs, credentials)
    }

    /// [`Connection::join`] with an access token (a server with `--auth jwt`).
    pub fn join_with_access_token(
        server: impl Into<Server>,
        room: &str,
        nickname: &str,
        media_ip: std::net::IpAddr,
        access_token: &str,
    ) -> Result<Self, ClientError> {
        let credentials = Credentials {
            access_token: Some(access_token.to_owned()),
            password: None,
        };
        Self::join_with(server, room, nickname, media_ip, credentials)
    }

    /// [`Connection::join`] with an access token or a room password, or both.
    pub fn join_with(
        server: impl Into<Server>,
        room: &str,
        nickname: &str,
        media_ip: std::net::IpAddr,
        credentials: Credentials,
    ) -> Result<Self, ClientError> {
        let codecs = CodecConfig::new_with_defaults();
        Self::connect(server.into(), room, nickname, media_ip, codecs, credentials)
    }

    fn connect(
        server: Server,
        room: &str,
        nickname: &str,
        media_ip: std::net::IpAddr,
        codecs: CodecConfig,
        credentials: Credentials,
    ) -> Result<Self, ClientError> {
        let udp = UdpSocket::bind(SocketAddr::new(media_ip, 0))?;
        udp.set_nonblocking(true)?;
        let local = udp.local_addr()?;
        let mut c = Self {
            server,
            credentials,
            ws: None,
            udp,
            session: Session::new(ClientPeer::with_codecs(Instant::now(), local, codecs)),
            room: room.to_string(),
            nickname: nickname.to_string(),
            buf: vec![0; 2048],
            next_ping: Instant::now() + PING_INTERVAL,
            ping_interval: PING_INTERVAL,
            redirected: false,
        };
        c.open_and_join(None)?;
        Ok(c)
    }

    /// Changes how often the connection sends its keepalive `ping` (default 10 s).
    pub fn set_ping_interval(&mut self, every: Duration) {
        self.ping_interval = every;
        self.next_ping = Instant::now() + every;
    }

    /// The server we are connected to (another node than we asked for, after a redirect).
    pub fn server_addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// Our peer id.
    pub fn peer_id(&self) -> &str {
        &self.session.peer_id
    }

    /// Our nickname in the room, as the server said at `joined` (an access token may
    /// fix it).
    pub fn nickname(&self) -> &str {
        &self.session.nickname
    }

    /// What we may do in the room, as the server said at `joined`.
    pub fn allowed(&self) -> &protocol::Allowed {
        &self.session.allowed
    }

    /// Other members, as the server last told us.
    pub fn peers(&self) -> &[PeerInfo] {
        &self.session.peers
    }

    /// Tracks published in the room, as the server last told us.
    pub fn tracks(&self) -> &[TrackInfo] {
        &self.session.tracks
    }

    /// Opens a new WebSocket and resumes the session with its token, as a browser does
    /// after a network blip. Media keeps flowing meanwhile.
    pub fn reconnect(&mut self) -> Result<(), ClientError> {
        if let Some(mut ws) = self.ws.take() {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        let token = self.session.token.clone();
        self.open_and_join(Some(token))
    }

    /// In a cluster, where the other nodes are, as the server said at `joined`.
    pub fn nodes(&self) -> &[String] {
        &self.session.nodes
    }

    /// Goes on at another node of the cluster when ours is gone: joins it with the
    /// session's token (the node takes the session over) and starts media there afresh,
    /// publishing `tracks`. Subscriptions are to be made again.
    pub fn move_to(
        &mut self,
        server: impl Into<Server>,
        tracks: &[LocalTrack],
    ) -> Result<(), ClientError> {
        self.ws = None;
        let token = self.session.token.clone();
        let local = self.udp.local_addr()?;
        self.session = Session::new(ClientPeer::new(Instant::now(), local));
        self.server = server.into();
        self.open_and_join(Some(token))?;
        self.start_media(tracks)
    }

    /// Drops the WebSocket without a word (the session waits out its grace period).
    pub fn drop_websocket(&mut self) {
        self.ws = None;
    }

    fn open_and_join(&mut self, token: Option<String>) -> Result<(), ClientError> {
        let stream = self.server.connect(JOIN_TIMEOUT)?;
        let url = self.server.ws_url();
        let (ws, _) = tungstenite::client::client(url.as_str(), stream)
            .map_err(|e| ClientError::Io(io::Error::other(e.to_string())))?;
        ws.get_ref().set_nonblocking()?;
        self.ws = Some(ws);
        self.send(&ClientMessage::Join {
            room: self.room.clone(),
            nickname: self.nickname.clone(),
            token: token.clone(),
            here: self.redirected,
            access_token: self.credentials.access_token.clone(),
            password: self.credentials.password.clone(),
        })?;
        let deadline = Instant::now() + JOIN_TIMEOUT;
        loop {
            self.poll(Duration::from_millis(5))?;
            while let Some(e) = self.session.poll_event() {
                match e {
                    SessionEvent::Server(ServerMessage::Joined { .. }) => return Ok(()),
                    SessionEvent::Server(ServerMessage::Redirect { node }) if !self.redirected => {
                        // The room is on another node of the cluster: join there, once.
                        self.server = Server::from_url(&node).ok_or_else(|| {
                            ClientError::Io(io::Error::other(format!(
                                "sent on to {node}, which is not an http:// address"
                            )))
                        })?;
                        self.redirected = true;
                        self.ws = None;
                        return self.open_and_join(token);
                    }
                    SessionEvent::Server(ServerMessage::Error { code, reason, .. }) => {
                        return Err(ClientError::Refused(code, reason));
                    }
                    SessionEvent::Closed => {
                        return Err(ClientError::Timeout("joined (socket closed)"));
                    }
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                return Err(ClientError::Timeout("joined"));
            }
        }
    }

    /// Starts media: sends the first offer, publishing `tracks` (possibly none).
    pub fn start_media(&mut self, tracks: &[LocalTrack]) -> Result<(), ClientError> {
        self.session.start_media(tracks)?;
        self.flush_outgoing()
    }

    /// The server's media address for this client (from the ICE candidate of its
    /// answer): which shard the client landed on.
    pub fn server_media_addr(&self) -> Option<SocketAddr> {
        self.session.server_media
    }

    /// Sends any protocol message.
    pub fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let text = serde_json::to_string(msg).expect("client messages serialise");
        let Some(ws) = self.ws.as_mut() else {
            return Err(ClientError::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "no websocket",
            )));
        };
        match ws.send(Message::text(text)) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Asks to receive these tracks.
    pub fn subscribe(&mut self, tracks: Vec<TrackRef>) -> Result<(), ClientError> {
        self.send(&ClientMessage::Subscribe { tracks })
    }

    /// The media peer, to send RTP or look up m-lines.
    pub fn peer(&mut self) -> &mut ClientPeer {
        self.session.peer()
    }

    /// The next event.
    pub fn next_event(&mut self) -> Option<SessionEvent> {
        self.session.poll_event()
    }

    fn flush_outgoing(&mut self) -> Result<(), ClientError> {
        while let Some(m) = self.session.poll_outgoing() {
            self.send(&m)?;
        }
        Ok(())
    }

    /// Does all pending work, waiting up to `wait` for something to arrive.
    pub fn poll(&mut self, wait: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + wait;
        loop {
            let mut busy = self.read_ws()?;
            busy |= self.read_udp()?;
            let now = Instant::now();
            if now >= self.next_ping && self.ws.is_some() {
                self.next_ping = now + self.ping_interval;
                self.session.send(ClientMessage::Ping);
            }
            self.session
                .peer()
                .handle_timeout(now)
                .map_err(|e| ClientError::Media(e.to_string()))?;
            self.flush_udp()?;
            while let Some(e) = self.session.peer().poll_event() {
                self.session.push_event(SessionEvent::Peer(e));
            }
            self.flush_outgoing()?;
            if let Some(ws) = self.ws.as_mut() {
                match ws.flush() {
                    Ok(()) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            if !busy {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }

    fn read_ws(&mut self) -> Result<bool, ClientError> {
        let mut busy = false;
        loop {
            let Some(ws) = self.ws.as_mut() else {
                return Ok(busy);
            };
            match ws.read() {
                Ok(Message::Text(text)) => {
                    busy = true;
                    let msg: ServerMessage = match serde_json::from_str(text.as_str()) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!("unparseable server message: {e}");
                            continue;
                        }
                    };
                    self.session.handle_server_message(msg)?;
                    self.flush_outgoing()?;
                }
                Ok(Message::Close(_))
                | Err(tungstenite::Error::ConnectionClosed)
                | Err(tungstenite::Error::AlreadyClosed) => {
                    self.ws = None;
                    self.session.push_event(SessionEvent::Closed);
                    return Ok(true);
                }
                Ok(_) => busy = true,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(busy);
                }
                Err(_) => {
                    self.ws = None;
                    self.session.push_event(SessionEvent::Closed);
                    return Ok(true);
                }
            }
        }
    }

    fn read_udp(&mut self) -> Result<bool, ClientError> {
        let mut busy = false;
        loop {
            match self.udp.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    busy = true;
                    let now = Instant::now();
                    self.session
                        .peer()
                        .handle_datagram(now, from, &self.buf[..n])
                        .map_err(|e| ClientError::Media(e.to_string()))?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(busy),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush_udp(&mut self) -> Result<(), ClientError> {
        while let Some((to, data)) = self.session.peer().poll_transmit() {
            match self.udp.send_to(&data, to) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Polls until `done` returns true for an event (consumed) or `limit` passes.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&SessionEvent) -> bool,
    ) -> Result<bool, ClientError> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            self.poll(Duration::from_millis(2))?;
            while let Some(e) = self.session.poll_event() {
                if done(&e) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}
