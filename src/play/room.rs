//! The room `play` publishes into: its URL, joining and publishing through the
//! signalling protocol like any client, the check that the server took the codecs
//! asked for, keepalive, resuming after a dropped WebSocket, and leaving.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use client::{ClientError, Connection, LocalTrack, PeerEvent, SessionEvent};
use protocol::{ClientMessage, ErrorCode, ServerMessage};
use str0m::format::PayloadParams;
use str0m::media::{MediaKind, Mid};
use str0m::rtp::RtpWrite;

use super::Packet;
use super::codec::{CodecPlan, check_negotiated};

/// How long joining and setting up media may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// The protocol asks for a `ping` every 10 s.
const PING_EVERY: Duration = Duration::from_secs(10);
/// Time between attempts to get the signalling connection back.
const RETRY_EVERY: Duration = Duration::from_secs(2);
/// How long leaving waits for the server to close the connection.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);
/// The first sequence number of each media session (small: the SRTP rollover counter
/// starts at 0 on both sides).
const FIRST_SEQ: u64 = 100;

/// A room's address as a browser opens it: `http://HOST[:PORT]/call/ROOM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomUrl {
    /// The URL as given, for messages.
    pub(crate) url: String,
    /// Host name or IP.
    pub(crate) host: String,
    /// Port (80 when the URL has none).
    pub(crate) port: u16,
    /// The room name, percent-decoded.
    pub(crate) room: String,
}

impl RoomUrl {
    /// Parses a room URL.
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        let example = "expected a room URL like http://127.0.0.1:3000/call/myroom";
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if let Some(r) = url.strip_prefix("ws://") {
            r
        } else if url.starts_with("https://") || url.starts_with("wss://") {
            return Err(anyhow!(
                "{url}: play connects over plain http only; give the server's http:// address"
            ));
        } else {
            return Err(anyhow!("{url}: {example}"));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| anyhow!("{url}: bad host or port; {example}"))?;
        let path = path.split(['?', '#']).next().unwrap_or("");
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let room = match segments.as_slice() {
            ["call", room] => percent_decode(room).ok_or_else(|| {
                anyhow!("{url}: the room name is not valid percent-encoded UTF-8")
            })?,
            _ => return Err(anyhow!("{url}: no room in it; {example}")),
        };
        if !protocol::names::valid_room_name(&room) {
            return Err(anyhow!(
                "{url}: {room:?} is not a room name the server takes: {}",
                protocol::names::ROOM_NAME_RULE
            ));
        }
        Ok(Self {
            url: url.to_string(),
            host,
            port,
            room,
        })
    }

    /// The server's address.
    pub(crate) fn resolve(&self) -> anyhow::Result<SocketAddr> {
        let mut addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| {
                anyhow!(
                    "cannot reach {}: cannot resolve {}: {e}",
                    self.url,
                    self.host
                )
            })?;
        addrs
            .next()
            .ok_or_else(|| anyhow!("cannot reach {}: {} has no address", self.url, self.host))
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 80,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (s, 80),
    };
    (!host.is_empty() && port != 0).then(|| (host.to_string(), port))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The local IP that routes to `server` (no packet is sent).
pub(crate) fn route_to(server: SocketAddr) -> anyhow::Result<IpAddr> {
    let any: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let s = UdpSocket::bind(any).map_err(|e| anyhow!("cannot open a UDP socket: {e}"))?;
    s.connect(server)
        .map_err(|e| anyhow!("no route to {server}: {e}"))?;
    s.local_addr()
        .map(|a| a.ip())
        .map_err(|e| anyhow!("no route to {server}: {e}"))
}

/// A sending m-line, once negotiated.
#[derive(Debug, Clone)]
struct Outgoing {
    kind: MediaKind,
    mid: Mid,
    codec: PayloadParams,
    /// The input's sequence number that became [`FIRST_SEQ`] in this media session.
    first_seq: Option<u64>,
}

/// What the room asks of the inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoomEvent {
    /// Someone needs a keyframe of this kind.
    KeyframeRequest(MediaKind),
}

/// Who and what to publish.
#[derive(Debug, Clone)]
pub(crate) struct Publish {
    pub(crate) url: RoomUrl,
    pub(crate) server: SocketAddr,
    pub(crate) nickname: String,
    pub(crate) media_ip: IpAddr,
    pub(crate) plan: CodecPlan,
    pub(crate) tracks: Vec<LocalTrack>,
}

/// The joined room. See the module docs.
pub(crate) struct Room {
    publish: Publish,
    conn: Option<Connection>,
    out: Vec<Outgoing>,
    last_ping: Instant,
    /// The signalling connection is down: try again at this instant.
    retry_at: Option<Instant>,
    /// The session is gone on the server: join from scratch at the next try.
    rejoin: bool,
    ice_lost: bool,
}

impl Room {
    /// Joins, publishes and waits until the tracks are live. `Ok(None)` if `stop` was
    /// set meanwhile (the room was left).
    pub(crate) fn join(publish: Publish, stop: &AtomicBool) -> anyhow::Result<Option<Self>> {
        let Some((conn, out)) = establish(&publish, stop)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            publish,
            conn: Some(conn),
            out,
            last_ping: Instant::now(),
            retry_at: None,
            rejoin: false,
            ice_lost: false,
        }))
    }

    /// Whether media can be sent now.
    pub(crate) fn live(&self) -> bool {
        self.conn.is_some() && !self.out.is_empty()
    }

    /// Sends one packet of an input on the m-line of its kind.
    pub(crate) fn send(&mut self, kind: MediaKind, p: Packet) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let Some(o) = self.out.iter_mut().find(|o| o.kind == kind) else {
            return;
        };
        let first = *o.first_seq.get_or_insert(p.seq);
        let Some(seq) = (p.seq + FIRST_SEQ).checked_sub(first) else {
            return; // from before this media session began
        };
        let write = RtpWrite::new(o.codec.pt(), seq.into(), p.time, p.wallclock, p.payload)
            .marker(p.marker)
            .nackable(kind == MediaKind::Video);
        if let Err(e) = conn.peer().write_rtp(o.mid, write) {
            tracing::debug!("cannot send {kind:?}: {e}");
        }
    }

    /// Does the signalling and media work that is due; keyframe requests go to `events`.
    pub(crate) fn poll(
        &mut self,
        stop: &AtomicBool,
        events: &mut Vec<RoomEvent>,
    ) -> anyhow::Result<()> {
        let now = Instant::now();
        if let Some(at) = self.retry_at
            && now >= at
        {
            self.retry(stop)?;
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        if let Err(e) = conn.poll(Duration::ZERO) {
            tracing::warn!("the media session failed ({e}); joining the room again");
            // Leave at once rather than linger in the room for the grace period.
            let _ = conn.send(&ClientMessage::Leave);
            let _ = conn.poll(Duration::ZERO);
            self.lost(true);
            return Ok(());
        }
        let mut closed = false;
        while let Some(e) = conn.next_event() {
            match e {
                SessionEvent::Peer(PeerEvent::KeyframeRequest { mid, .. }) => {
                    if let Some(o) = self.out.iter().find(|o| o.mid == mid) {
                        events.push(RoomEvent::KeyframeRequest(o.kind));
                    }
                }
                SessionEvent::Peer(PeerEvent::Disconnected) => {
                    self.ice_lost = true;
                    tracing::warn!(
                        "lost the media connection to the server; waiting for it to come back"
                    );
                }
                SessionEvent::Peer(PeerEvent::Connected) if self.ice_lost => {
                    self.ice_lost = false;
                    tracing::info!("media connection to the server is back");
                }
                SessionEvent::Server(ServerMessage::PeerJoined { peer }) => {
                    tracing::info!("{} joined the room", peer.nickname);
                }
                SessionEvent::Server(ServerMessage::PeerLeft { peer_id }) => {
                    tracing::info!("peer {peer_id} left the room");
                }
                SessionEvent::Server(ServerMessage::Error { code, reason, .. }) => match code {
                    ErrorCode::MediaEnded => {
                        tracing::warn!(
                            "the server ended the media session ({reason}); joining the room again"
                        );
                        self.rejoin = true;
                    }
                    ErrorCode::Replaced => {
                        return Err(anyhow!(
                            "another connection took over this session ({reason}); stopping"
                        ));
                    }
                    _ => tracing::warn!("the server says {code:?}: {reason}"),
                },
                SessionEvent::Closed => closed = true,
                _ => {}
            }
        }
        if closed {
            let rejoin = self.rejoin;
            if !rejoin {
                tracing::warn!(
                    "lost the signalling connection to {}; reconnecting (media keeps flowing meanwhile)",
                    self.publish.url.url
                );
            }
            self.lost(rejoin);
            return Ok(());
        }
        if now.duration_since(self.last_ping) >= PING_EVERY {
            self.last_ping = now;
            if let Some(conn) = self.conn.as_mut() {
                let _ = conn.send(&ClientMessage::Ping);
            }
        }
        Ok(())
    }

    /// The signalling connection is gone; `rejoin`: so is the session.
    fn lost(&mut self, rejoin: bool) {
        self.rejoin = rejoin;
        if rejoin {
            self.conn = None;
            self.out.clear();
        }
        self.retry_at = Some(Instant::now() + if rejoin { Duration::ZERO } else { RETRY_EVERY });
    }

    fn retry(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        self.retry_at = None;
        if !self.rejoin
            && let Some(conn) = self.conn.as_mut()
        {
            match conn.reconnect() {
                Ok(()) => {
                    tracing::info!("signalling connection is back; the session carries on");
                    self.last_ping = Instant::now();
                    return Ok(());
                }
                Err(ClientError::Refused(code, reason)) => {
                    tracing::warn!(
                        "the session could not be resumed ({code:?}: {reason}); joining the room again"
                    );
                    self.rejoin = true;
                    self.conn = None;
                    self.out.clear();
                }
                Err(e) => {
                    tracing::debug!("reconnect failed: {e}");
                    self.retry_at = Some(Instant::now() + RETRY_EVERY);
                    return Ok(());
                }
            }
        }
        match establish(&self.publish, stop) {
            Ok(Some((conn, out))) => {
                tracing::info!("joined the room again");
                self.conn = Some(conn);
                self.out = out;
                self.rejoin = false;
                self.last_ping = Instant::now();
            }
            Ok(None) => {}
            Err(JoinError::Fatal(why)) => {
                return Err(anyhow!("{why}; trying again cannot help, so play stops"));
            }
            Err(JoinError::Transient(why)) => {
                tracing::warn!("{why}; trying again in {} s", RETRY_EVERY.as_secs());
                self.retry_at = Some(Instant::now() + RETRY_EVERY);
            }
        }
        Ok(())
    }

    /// Leaves the room: `leave`, then waits briefly for the server to close.
    pub(crate) fn leave(mut self) {
        if let Some(conn) = self.conn.as_mut() {
            leave(conn);
        }
    }
}

fn leave(conn: &mut Connection) {
    if conn.send(&ClientMessage::Leave).is_err() {
        return;
    }
    let _ = conn.wait_for(LEAVE_TIMEOUT, |e| matches!(e, SessionEvent::Closed));
}

/// Joins, offers the tracks, checks the codecs and waits until they are published and
/// media is connected. `Ok(None)` when stopped meanwhile.
fn establish(
    p: &Publish,
    stop: &AtomicBool,
) -> Result<Option<(Connection, Vec<Outgoing>)>, JoinError> {
    let url = &p.url.url;
    let mut conn = Connection::join_with_codecs(
        p.server,
        &p.url.room,
        &p.nickname,
        p.media_ip,
        p.plan.config.clone(),
    )
    .map_err(|e| JoinError::from_client(url, &p.url.room, e))?;
    tracing::info!(
        "joined room {:?} at {url} as {:?} ({} other member(s))",
        p.url.room,
        p.nickname,
        conn.peers().len()
    );
    conn.start_media(&p.tracks)
        .map_err(|e| JoinError::Fatal(format!("cannot start media: {e}")))?;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let mut out: Vec<Outgoing> = Vec::new();
    let mut answered = false;
    let mut connected = false;
    let mut published = 0;
    while !(answered && connected && published == p.tracks.len()) {
        if stop.load(Ordering::Relaxed) {
            leave(&mut conn);
            return Ok(None);
        }
        if Instant::now() > deadline {
            leave(&mut conn);
            return Err(JoinError::Transient(if !answered {
                format!(
                    "{url} did not answer the media offer within {} s",
                    SETUP_TIMEOUT.as_secs()
                )
            } else if !connected {
                format!(
                    "media to the server did not connect within {} s: is UDP to {} blocked?",
                    SETUP_TIMEOUT.as_secs(),
                    conn.server_media_addr()
                        .map_or("its media port".into(), |a| a.to_string())
                )
            } else {
                format!(
                    "the server did not publish the tracks within {} s",
                    SETUP_TIMEOUT.as_secs()
                )
            }));
        }
        conn.poll(Duration::from_millis(5))
            .map_err(|e| JoinError::Transient(format!("media setup failed: {e}")))?;
        while let Some(e) = conn.next_event() {
            match e {
                SessionEvent::Server(ServerMessage::Answer { .. }) => {
                    answered = true;
                    for t in &p.tracks {
                        let chosen = p.plan.chosen(t.kind).expect("a codec for each track");
                        let mid = conn.peer().mid_of(&t.stream_id, &t.track_id);
                        let negotiated = mid
                            .map(|m| conn.peer().negotiated_codecs(m))
                            .unwrap_or_default();
                        if let Err(e) = check_negotiated(&chosen, &negotiated) {
                            leave(&mut conn);
                            return Err(JoinError::Fatal(format!("{e:#}")));
                        }
                        out.push(Outgoing {
                            kind: t.kind,
                            mid: mid.expect("negotiated above"),
                            codec: chosen,
                            first_seq: None,
                        });
                    }
                }
                SessionEvent::Server(ServerMessage::TrackPublished { track })
                    if p.tracks.iter().any(|t| {
                        t.stream_id == track.track.stream_id && t.track_id == track.track.track_id
                    }) =>
                {
                    published += 1;
                    tracing::info!(
                        "publishing {} as {} ({} Hz{})",
                        format!("{:?}", track.track.kind).to_lowercase(),
                        track.codec.mime_type,
                        track.codec.clock_rate,
                        if track.codec.fmtp.is_empty() {
                            String::new()
                        } else {
                            format!(", {}", track.codec.fmtp)
                        }
                    );
                }
                SessionEvent::Peer(PeerEvent::Connected) => connected = true,
                SessionEvent::Server(ServerMessage::Error { code, reason, .. }) => {
                    leave(&mut conn);
                    let why = format!("the server refused to publish ({code:?}): {reason}");
                    return Err(match code {
                        ErrorCode::BadSdp => JoinError::Fatal(why),
                        _ => JoinError::Transient(why),
                    });
                }
                SessionEvent::Closed => {
                    return Err(JoinError::Transient(format!(
                        "{url} closed the connection while media was being set up"
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(Some((conn, out)))
}

/// A message for a failed join.
/// Why joining the room (or joining it again) failed. After a lost session, `play`
/// tries a transient failure again and stops on a fatal one, whose cause trying again
/// cannot change.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JoinError {
    /// The server is unreachable, busy or slow: worth trying again.
    #[error("{0}")]
    Transient(String),
    /// The server refused for a reason that stays (the room name, the codecs): stop.
    #[error("{0}")]
    Fatal(String),
}

impl JoinError {
    fn from_client(url: &str, room: &str, e: ClientError) -> Self {
        use std::io::ErrorKind;
        match e {
            ClientError::Io(e) => JoinError::Transient(match e.kind() {
                ErrorKind::ConnectionRefused => format!("cannot reach {url}: connection refused"),
                ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                    format!("cannot reach {url}: no answer (timed out)")
                }
                ErrorKind::Other => format!(
                    "{url} did not accept a Peer Calls signalling connection (WebSocket at /ws): {e}"
                ),
                _ => format!("cannot reach {url}: {e}"),
            }),
            ClientError::Refused(code, reason) => {
                let why = format!("the server refused to join room {room:?} ({code:?}): {reason}");
                match code {
                    ErrorCode::InvalidRoom | ErrorCode::InvalidNickname => JoinError::Fatal(why),
                    _ => JoinError::Transient(why),
                }
            }
            ClientError::Timeout(what) => JoinError::Transient(format!(
                "{url} did not answer: timed out waiting for {what}"
            )),
            other => JoinError::Transient(format!("cannot join {url}: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_room_urls() {
        let u = RoomUrl::parse("http://127.0.0.1:3000/call/my%2Droom").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.room.as_str()),
            ("127.0.0.1", 3000, "my-room")
        );
        let u = RoomUrl::parse("http://example.org/call/standup/?x=1#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.room.as_str()),
            ("example.org", 80, "standup")
        );
        let u = RoomUrl::parse("http://[::1]:8080/call/r").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8080));
        for bad in [
            "127.0.0.1:3000/call/x",
            "http://127.0.0.1:3000/",
            "http://127.0.0.1:3000/call/",
            "http://127.0.0.1:3000/room/x",
            "http://127.0.0.1:99999/call/x",
            "http://127.0.0.1:3000/call/%ff",
            // The server's one rule for room names.
            "http://127.0.0.1:3000/call/my%20room",
            "http://127.0.0.1:3000/call/..",
        ] {
            assert!(RoomUrl::parse(bad).is_err(), "{bad}");
        }
        let err = RoomUrl::parse("https://example.org/call/x").unwrap_err();
        assert!(err.to_string().contains("plain http"), "{err}");
    }

    #[test]
    fn the_route_to_loopback_is_loopback() {
        assert_eq!(
            route_to("127.0.0.1:3000".parse().unwrap()).unwrap(),
            IpAddr::from([127, 0, 0, 1])
        );
    }
}
