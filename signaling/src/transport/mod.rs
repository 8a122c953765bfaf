//! The signalling thread's HTTP + WebSocket server: one thread, non-blocking sockets, `mio`.
//!
//! [`Transport`] knows nothing about rooms. It serves the web page and `POST /call` itself,
//! turns WebSocket connections on `/ws` into [`TransportEvent`]s, and sends the text it is
//! given. Everything a client can do to it is bounded by [`Limits`]: request and message
//! sizes, message rate, unfinished handshakes, open connections and unsent output.
//!
//! # Connection life
//!
//! ```text
//! accept ─► handshake (reading one HTTP request, at most `handshake_timeout`)
//!              ├─ plain request ─► response ─► linger ─► gone
//!              └─ GET /ws ─► 101 ─► open WebSocket (Open … Text … Closed) ─► linger ─► gone
//! ```
//!
//! *Linger*: after the last bytes (a response, or a close frame) are queued, the server writes
//! them out, shuts down its sending side and reads and discards whatever the client still
//! sends until the client closes too, for at most [`LINGER`]. Dropping a socket with unread
//! input would make the kernel send a reset, which can destroy the response or close frame
//! before the client reads it.
//!
//! # Timers
//!
//! Every connection has at most one live deadline in a binary heap (handshake timeout, end of
//! linger); `poll` sleeps until the earliest one and handles only the due
//! ones. A connection whose deadline changed leaves a stale heap entry behind, which is
//! recognised and skipped when it comes up.

mod admission;
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod http;
mod linger;
mod open;
mod stream;
mod ws;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;

use admission::{Descriptors, Handshakes};
use handshake::Handshake;
pub use http::Health;
use linger::{Linger, LingerIo, LingerStep, drive_linger};
use open::OpenWs;
use stream::Stream;
use ws::Sock;
pub(crate) use ws::{Admit, RateLimiter};

use crate::tls::TlsFiles;

/// A text message to send on several connections (see [`Transport::send_shared`]).
#[derive(Debug, Clone)]
pub struct SharedText(tungstenite::Utf8Bytes);

impl From<String> for SharedText {
    fn from(text: String) -> Self {
        SharedText(text.into())
    }
}

/// Identifies one WebSocket connection for the life of the process (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Something that happened on the transport, reported by [`Transport::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A WebSocket handshake completed on /ws.
    Open {
        /// The new connection.
        conn: ConnId,
        /// The client's address, as the TCP connection shows it.
        remote: SocketAddr,
        /// The upgrade request's `Cookie` header, if it had one.
        cookie: Option<String>,
        /// The upgrade request's `X-Forwarded-For` header, if it had one (believed only
        /// from a trusted proxy).
        forwarded_for: Option<String>,
    },
    /// One complete text message (binary frames are refused: close 1003).
    Text {
        /// The connection it arrived on.
        conn: ConnId,
        /// The message.
        text: String,
    },
    /// The connection sent more messages than its rate allows; this message was dropped.
    RateLimited {
        /// The connection whose message was dropped.
        conn: ConnId,
    },
    /// The connection is gone (closed by the client, by `close`, by a limit, or an I/O error).
    /// Sent exactly once per opened conn.
    Closed {
        /// The connection that is gone. Its id is never used again.
        conn: ConnId,
    },
    /// Someone called `wake()` on the waker (another thread has work for the signalling thread).
    Woken,
}

/// What one client may cost the server. Every limit protects the server and the other clients
/// from one client that is broken or hostile.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest WebSocket message (and frame) a client may send, in bytes; a larger one
    /// closes the connection with code 1009. Default 640 KiB: the answer to an offer of every
    /// track of a full room (100 members × 4 tracks, ~1.1 KB of SDP each), with room to spare.
    pub max_message: usize,
    /// Messages a second each connection may send on average (a token bucket that holds
    /// `2 × messages_per_second`, so short bursts pass). A message over the rate is dropped
    /// with a [`TransportEvent::RateLimited`]. When more than `4 × messages_per_second`
    /// messages are dropped within one (fixed, one-second) window, the connection is closed
    /// with code 1008 "rate limit". Pings and pongs count against the rate too but are never
    /// reported. 0 means no limit. Default 50.
    pub messages_per_second: u32,
    /// A TCP connection that has not sent its whole HTTP request (request line, headers, the
    /// small body of `POST /call`) or WebSocket upgrade this long after it was accepted is
    /// closed. Default 5 s.
    pub handshake_timeout: Duration,
    /// How many connections may be in their handshake at once; a newcomer beyond that
    /// evicts the oldest of them (it is not refused). Also bounds how many closed
    /// connections may linger (see the module documentation). Default 1024.
    pub max_pending: usize,
    /// How many of those may come from one client address (an IPv4 address, an IPv6 /64);
    /// a newcomer beyond that evicts that address's own oldest. Behind a reverse proxy every
    /// client has the proxy's address: raise it there. Default 64.
    pub max_pending_per_address: usize,
    /// How many WebSockets may be open at once; beyond that, an upgrade gets HTTP 503.
    /// Default 10 000.
    pub max_connections: usize,
    /// The largest plain HTTP request (header and body) in bytes; a larger header gets 431,
    /// a larger body 413. Also bounds the upgrade request's header. Default 16 KiB.
    pub max_http_request: usize,
    /// Outgoing bytes a connection may have queued that the socket has not taken yet; beyond
    /// that, the connection is closed (a client that does not read must not grow the server's
    /// memory). Default 4 MiB.
    pub send_backlog: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message: 640 * 1024,
            messages_per_second: 50,
            handshake_timeout: Duration::from_secs(5),
            max_pending: 1024,
            max_pending_per_address: 64,
            max_connections: 10_000,
            max_http_request: 16 * 1024,
            send_backlog: 4 * 1024 * 1024,
        }
    }
}

/// How long a closed connection may linger to deliver its last bytes (see the module
/// documentation).
pub const LINGER: Duration = Duration::from_secs(2);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;
/// Bytes read from a connection in its handshake at a time.
const READ_CHUNK: usize = 4096;
/// Messages read from one WebSocket before the others get their turn; the rest is read in
/// the next `poll`.
const MESSAGES_PER_TURN: usize = 64;
/// Bytes a lingering connection may make the server read and discard per turn.
const DISCARD_PER_TURN: usize = 64 * 1024;
/// How long to wait before accepting again after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// One accepted TCP connection.
#[derive(Debug)]
struct Conn {
    state: State,
    /// The connection's live deadline (heap entries with another time are stale).
    deadline: Option<Instant>,
}

#[derive(Debug)]
enum State {
    /// Reading the HTTP request.
    Handshake(Handshake),
    /// An open WebSocket.
    Open(Box<OpenWs>),
    /// Delivering the last bytes before the socket is dropped.
    Linger(Linger),
}

/// The signalling thread's HTTP + WebSocket server (see the module documentation).
#[derive(Debug)]
pub struct Transport {
    poll: Poll,
    mio_events: Events,
    listener: TcpListener,
    local_addr: SocketAddr,
    waker: Arc<Waker>,
    limits: Limits,
    ws_config: WebSocketConfig,
    conns: HashMap<usize, Conn>,
    next_token: usize,
    /// Connections in `State::Handshake`, by address and age.
    handshakes: Handshakes,
    /// How many file descriptors are left.
    descriptors: Descriptors,
    /// Connections in `State::Open`.
    open: usize,
    /// Connections in `State::Linger`.
    lingering: usize,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Open connections with queued output to flush at the start of the next `poll`.
    dirty: Vec<usize>,
    /// Open connections that may have more input (their turn ended before `WouldBlock`).
    again: Vec<usize>,
    /// Open connections to close at the start of the next `poll` (see `OpenWs::closing`).
    closing: Vec<usize>,
    /// Events that arose outside `poll` (in `send` and `close`).
    queued: Vec<TransportEvent>,
    /// Scratch list of connections with readiness events.
    ready: Vec<usize>,
    /// When accepting failed for want of resources: when to try again.
    accept_retry: Option<Instant>,
    /// Who may read `/metrics` from elsewhere (see [`http::MetricsAccess`]).
    metrics_token: Option<String>,
    /// `GET /metrics` requests routed during this `poll`, answered at its end: the
    /// connection, its socket, and whether the request was a `HEAD`.
    page_requests: Vec<(usize, Stream, bool)>,
    /// TLS for this port, when the server has a certificate (see [`crate::tls`]).
    tls: Option<Arc<TlsFiles>>,
    /// The path everything is served under (`--base-path`), "" for the root.
    base: String,
    /// The page, its links under `base`.
    page: Vec<u8>,
    /// The page's `Content-Security-Policy`.
    page_policy: String,
    /// What the probes say.
    health: http::Health,
}

impl Transport {
    /// Listens on `addr` (port 0 picks a free port; see [`Transport::local_addr`]).
    pub fn bind(addr: SocketAddr, limits: Limits) -> io::Result<Transport> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let local_addr = listener.local_addr()?;
        Ok(Transport {
            poll,
            mio_events: Events::with_capacity(1024),
            listener,
            local_addr,
            waker,
            ws_config: ws::config(&limits),
            limits,
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            handshakes: Handshakes::default(),
            descriptors: Descriptors::new(),
            open: 0,
            lingering: 0,
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            again: Vec::new(),
            closing: Vec::new(),
            queued: Vec::new(),
            ready: Vec::new(),
            accept_retry: None,
            metrics_token: None,
            page_requests: Vec::new(),
            tls: None,
            base: String::new(),
            page: crate::assets::index_page(""),
            page_policy: http::CONTENT_SECURITY_POLICY.to_owned(),
            health: http::Health::default(),
        })
    }

    /// Lets whoever presents `token` (`Authorization: Bearer <token>`) read `/metrics`;
    /// without a token only clients on this host may.
    pub fn set_metrics_token(&mut self, token: Option<String>) {
        self.metrics_token = token.filter(|t| !t.is_empty());
    }

    /// Serves https and wss with these files' certificate (plain http on the port is
    /// then redirected); `None`: plain http and ws.
    pub fn set_tls(&mut self, tls: Option<Arc<TlsFiles>>) {
        self.tls = tls;
    }

    /// In a cluster, the page may also connect to the other nodes (their page URLs),
    /// where it goes on when this node dies.
    pub fn set_other_nodes(&mut self, urls: &[String]) {
        let origins: Vec<String> = urls.iter().filter_map(|u| origin_of(u)).collect();
        self.page_policy = http::policy_with_nodes(&origins);
    }

    /// Serves everything under `base` (for example `/calls`, behind a reverse proxy that
    /// forwards that prefix); "" for the root.
    pub fn set_base_path(&mut self, base: &str) {
        self.base = base.trim_end_matches('/').to_owned();
        self.page = crate::assets::index_page(&self.base);
    }

    /// What `/health` and `/ready` answer from now on.
    pub fn set_health(&mut self, health: Health) {
        self.health = health;
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A waker other threads use to interrupt `poll` (produces `TransportEvent::Woken`).
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// How many WebSockets are open (handshakes in progress and closed connections that are
    /// still lingering do not count).
    pub fn open_connections(&self) -> usize {
        self.open
    }

    /// How many connections are in their handshake.
    pub fn pending_handshakes(&self) -> usize {
        self.handshakes.count()
    }

    /// Whether the process is running out of file descriptors: new joins should be refused
    /// (`unavailable`) until it is not.
    pub fn descriptors_low(&self) -> bool {
        self.descriptors.low()
    }

    /// Waits up to `timeout` (None = forever) for socket activity, handles it, and appends
    /// events. Never panics on anything from the network.
    ///
    /// Output queued with [`Transport::send`] is written at the start of the call. A
    /// connection that broke a limit while being read (a message too big, a binary message, a
    /// protocol error, a flood) is closed at the start of the *next* call, after the output
    /// queued for it in between, so replies to the messages it sent before still reach it;
    /// nothing more is read from it meanwhile. The call
    /// returns early, without waiting, when it already has events to report (for example a
    /// `Closed` from [`Transport::close`]) or a connection has unread input left from its
    /// last turn; it also wakes for the earliest connection deadline, so it may return with
    /// no events. Errors are those of the poll itself; errors on single connections only
    /// close those connections.
    ///
    /// `metrics_page` renders the `/metrics` page (Prometheus text format) when someone
    /// allowed to read it asks; it is given the transport for its own figures.
    pub fn poll(
        &mut self,
        timeout: Option<Duration>,
        events: &mut Vec<TransportEvent>,
        metrics_page: &dyn Fn(&Transport) -> String,
    ) -> io::Result<()> {
        let reported = events.len();
        events.append(&mut self.queued);
        for token in std::mem::take(&mut self.closing) {
            if let Some(Conn {
                state: State::Open(open),
                ..
            }) = self.conns.get_mut(&token)
                && let Some(frame) = open.closing.take()
            {
                self.close_open(token, frame, events);
            }
        }
        self.flush_dirty(events);

        let now = Instant::now();
        let mut timeout = timeout;
        if events.len() > reported || !self.again.is_empty() {
            timeout = Some(Duration::ZERO);
        }
        let next_deadline = match (self.timers.peek(), self.accept_retry) {
            (Some(Reverse((at, _))), Some(retry)) => Some((*at).min(retry)),
            (Some(Reverse((at, _))), None) => Some(*at),
            (None, retry) => retry,
        };
        if let Some(at) = next_deadline {
            let until = at.saturating_duration_since(now);
            timeout = Some(timeout.map_or(until, |t| t.min(until)));
        }

        match self.poll.poll(&mut self.mio_events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }

        let mut ready = std::mem::take(&mut self.ready);
        let mut accept = false;
        let mut woken = false;
        for event in &self.mio_events {
            match event.token() {
                LISTENER => accept = true,
                WAKER => woken = true,
                Token(token) => ready.push(token),
            }
        }
        if woken {
            events.push(TransportEvent::Woken);
        }
        let now = Instant::now();
        if self.accept_retry.is_some_and(|at| at <= now) {
            self.accept_retry = None;
            accept = true;
        }
        if accept {
            self.accept_all(now);
        }
        // Connections that still had input from their last turn go first, then the new ones;
        // a connection in both lists finds nothing to read the second time, which is harmless.
        let again = std::mem::take(&mut self.again);
        for &token in again.iter().chain(ready.iter()) {
            self.drive(token, now, events);
        }
        ready.clear();
        self.ready = ready;
        for (token, stream, head) in std::mem::take(&mut self.page_requests) {
            let page = metrics_page(self);
            let response = http::response(
                200,
                &[],
                crate::metrics::CONTENT_TYPE,
                page.as_bytes(),
                head,
            );
            self.linger(token, LingerIo::Raw(Sock::new(stream, response)), now);
        }
        self.expire(Instant::now());
        // Replies that tungstenite queued while reading (pongs, close replies) were flushed in
        // `drive`; output from `send` waits for the next `poll`.
        Ok(())
    }

    /// Queues a text message (sent as soon as the socket takes it). Unknown/closed conn: ignored.
    ///
    /// The bytes are written at the start of the next [`Transport::poll`] (so several
    /// messages to one connection go out in one write). A connection whose unsent output
    /// would exceed [`Limits::send_backlog`] is closed; its `Closed` event comes with the
    /// next `poll`.
    pub fn send(&mut self, conn: ConnId, text: &str) {
        self.send_message(conn, Message::text(text));
    }

    /// [`Transport::send`] for text shared by many connections: each gets a reference, not
    /// a copy, until its frame is written.
    pub fn send_shared(&mut self, conn: ConnId, text: &SharedText) {
        self.send_message(conn, Message::Text(text.0.clone()));
    }

    fn send_message(&mut self, conn: ConnId, message: Message) {
        let Some(token) = token_of(conn) else { return };
        let Some(Conn {
            state: State::Open(open),
            ..
        }) = self.conns.get_mut(&token)
        else {
            return;
        };
        match open.ws.write(message) {
            Ok(()) => {}
            // The frame is queued; the socket takes it later.
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(tungstenite::Error::WriteBufferFull(_)) => {
                tracing::debug!(conn = conn.0, "send backlog exceeded; closing");
                self.abort(token);
                return;
            }
            Err(e) => {
                tracing::debug!(conn = conn.0, "send failed: {e}");
                self.abort(token);
                return;
            }
        }
        if !open.dirty {
            open.dirty = true;
            self.dirty.push(token);
        }
    }

    /// Sends a close frame with this code and reason, flushes what it can, then drops the
    /// connection; a `Closed` event follows.
    ///
    /// The `Closed` event comes with the next [`Transport::poll`], and the connection no
    /// longer counts as open. Codes that must not be sent (such as 1005, 1006 or 1015, or
    /// ones outside 1000–4999) become 1000; the reason is cut to 123 bytes.
    pub fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        let Some(token) = token_of(conn) else { return };
        if !matches!(
            self.conns.get(&token),
            Some(Conn {
                state: State::Open(_),
                ..
            })
        ) {
            return;
        }
        let mut queued = std::mem::take(&mut self.queued);
        self.close_open(token, ws::close_frame(code, reason), &mut queued);
        self.queued = queued;
    }

    /// Handles whatever the connection `token` has to do: read, write, change state.
    fn drive(&mut self, token: usize, now: Instant, events: &mut Vec<TransportEvent>) {
        let Some(conn) = self.conns.remove(&token) else {
            return; // a stale readiness event for a connection that is gone
        };
        let deadline = conn.deadline;
        match conn.state {
            State::Handshake(handshake) => {
                self.drive_handshake(token, deadline, handshake, now, events);
            }
            State::Open(mut open) => match self.drive_open(token, &mut open, now, events) {
                None => {
                    self.conns.insert(
                        token,
                        Conn {
                            state: State::Open(open),
                            deadline,
                        },
                    );
                }
                Some(end) => self.end_open(token, open.ws, end, events),
            },
            State::Linger(mut linger) => match drive_linger(&mut linger) {
                LingerStep::Done => self.lingering -= 1,
                step => {
                    if step == LingerStep::More {
                        self.again.push(token);
                    }
                    self.conns.insert(
                        token,
                        Conn {
                            state: State::Linger(linger),
                            deadline,
                        },
                    );
                }
            },
        }
    }

    /// Handles the deadlines that are due.
    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((at, token))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            if conn.deadline != Some(at) {
                continue; // stale: the connection has a newer deadline
            }
            conn.deadline = None;
            match &conn.state {
                State::Handshake(hs) => {
                    tracing::debug!(remote = %hs.remote, "handshake timeout");
                    self.handshakes.end(hs.addr);
                    self.conns.remove(&token);
                }
                State::Linger(_) => {
                    self.conns.remove(&token);
                    self.lingering -= 1;
                }
                // Open connections have no deadline here: idle connections are the
                // application's business (it sees every message).
                State::Open(_) => {}
            }
        }
    }
}

/// Sets the connection's deadline.
fn arm(
    timers: &mut BinaryHeap<Reverse<(Instant, usize)>>,
    conn: &mut Conn,
    token: usize,
    at: Instant,
) {
    conn.deadline = Some(at);
    timers.push(Reverse((at, token)));
}

fn token_of(conn: ConnId) -> Option<usize> {
    usize::try_from(conn.0).ok().filter(|&t| t >= FIRST_CONN)
}

/// `scheme://host[:port]` of an http(s) URL; `None` for anything else (nothing that could
/// break out of the policy header: no spaces, semicolons or quotes).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split('/').next()?;
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod origin_tests {
    use super::origin_of;

    #[test]
    fn only_a_plain_http_origin_goes_into_the_policy() {
        assert_eq!(
            origin_of("https://node-2.example.com/calls/"),
            Some("https://node-2.example.com".into())
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080".into())
        );
        assert_eq!(
            origin_of("http://[::1]:80/x"),
            Some("http://[::1]:80".into())
        );
        for bad in [
            "ftp://x",
            "https://a.example; script-src *",
            "https://a b",
            "https://'self'",
            "https://",
            "node-2",
        ] {
            assert_eq!(origin_of(bad), None, "{bad}");
        }
        let p = super::http::policy_with_nodes(&["https://n2.example".into()]);
        assert!(
            p.contains("connect-src 'self' https://n2.example wss://n2.example;"),
            "{p}"
        );
    }
}
