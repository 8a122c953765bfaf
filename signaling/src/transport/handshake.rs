//! A connection in its handshake: accepted, read until its HTTP request is complete
//! (bounded in size and time), then routed: a response, the metrics page, or the
//! upgrade to a WebSocket.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::Interest;
use mio::Token;
use tungstenite::WebSocket;
use tungstenite::protocol::Role;

use super::admission::{AddrKey, Room};
use super::linger::LingerIo;
use super::open::OpenWs;
use super::stream::{Stream, TLS_HANDSHAKE};
use super::ws::{RateLimiter, Sock};
use super::{
    ACCEPT_BACKOFF, Conn, ConnId, READ_CHUNK, State, Transport, TransportEvent, arm, http,
};

#[derive(Debug)]
pub(super) struct Handshake {
    pub(super) stream: Stream,
    pub(super) remote: SocketAddr,
    /// What its address counts under (see [`AddrKey`]).
    pub(super) addr: AddrKey,
    pub(super) request: http::RequestReader,
    /// For a request with a body: the total length to wait for.
    pub(super) need: usize,
}

impl Transport {
    /// Accepts every waiting TCP connection.
    pub(super) fn accept_all(&mut self, now: Instant) {
        loop {
            let (mut tcp, remote) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue;
                }
                Err(e) if out_of_descriptors(&e) && self.descriptors.release_spare() => {
                    // With the spare descriptor given up, take one waiting connection and close
                    // it: its client learns now instead of waiting in the backlog.
                    if let Ok((tcp, remote)) = self.listener.accept() {
                        tracing::debug!(%remote, "out of file descriptors; closing");
                        drop(tcp);
                    }
                    self.descriptors.restore_spare();
                    self.accept_retry = Some(now + ACCEPT_BACKOFF);
                    return;
                }
                Err(e) => {
                    // The waiting connections stay in the backlog and no new readiness event
                    // may come for them, so retry soon.
                    tracing::warn!("accept failed: {e}");
                    self.accept_retry = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            };
            self.descriptors.accepted(tcp.as_raw_fd());
            let addr = AddrKey::of(remote.ip());
            let conns = &self.conns;
            let live = |t: usize| {
                matches!(
                    conns.get(&t),
                    Some(Conn {
                        state: State::Handshake(_),
                        ..
                    })
                )
            };
            let room = self.handshakes.room_for(
                addr,
                self.limits.max_pending_per_address,
                self.limits.max_pending,
                live,
            );
            if let Room::Evict(old) = room
                && let Some(Conn {
                    state: State::Handshake(hs),
                    ..
                }) = self.conns.remove(&old)
            {
                tracing::debug!(remote = %hs.remote, "unfinished handshake evicted for a newcomer");
                self.handshakes.end(hs.addr);
            }
            let token = self.next_token;
            self.next_token += 1;
            if let Err(e) = self.poll.registry().register(
                &mut tcp,
                Token(token),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!("cannot register a connection: {e}");
                continue;
            }
            let _ = tcp.set_nodelay(true);
            self.handshakes.start(token, addr);
            let mut conn = Conn {
                state: State::Handshake(Handshake {
                    stream: Stream::Plain(tcp),
                    remote,
                    addr,
                    request: http::RequestReader::default(),
                    need: 0,
                }),
                deadline: None,
            };
            arm(
                &mut self.timers,
                &mut conn,
                token,
                now + self.limits.handshake_timeout,
            );
            self.conns.insert(token, conn);
            // Data may have arrived with the connection; edge-triggered readiness will report
            // it, so there is nothing to read here yet.
        }
    }

    pub(super) fn drive_handshake(
        &mut self,
        token: usize,
        deadline: Option<Instant>,
        mut hs: Handshake,
        now: Instant,
        events: &mut Vec<TransportEvent>,
    ) {
        let max = self.limits.max_http_request;
        let action = loop {
            if hs.request.len() >= hs.need {
                let metrics = http::MetricsAccess {
                    token: self.metrics_token.as_deref(),
                    from_loopback: hs.remote.ip().to_canonical().is_loopback(),
                };
                let context = http::Context {
                    max_request: max,
                    ws_full: self.open >= self.limits.max_connections,
                    metrics,
                    plain_on_tls_port: self.tls.is_some() && matches!(hs.stream, Stream::Plain(_)),
                    base: &self.base,
                    page: &self.page,
                    page_policy: &self.page_policy,
                    health: &self.health,
                };
                match http::route(&hs.request, &context) {
                    http::Action::NeedHeader => {}
                    http::Action::NeedBody(total) => hs.need = total,
                    done => break done,
                }
            }
            let mut chunk = [0u8; READ_CHUNK];
            let room = max.saturating_sub(hs.request.len()).clamp(1, READ_CHUNK);
            match io::Read::read(&mut hs.stream, &mut chunk[..room]) {
                Ok(0) => {
                    // The client gave up before its request was complete.
                    self.handshakes.end(hs.addr);
                    return;
                }
                // A ClientHello on a port that speaks TLS: the rest of the connection is
                // TLS, and its first bytes are the ClientHello's.
                Ok(n)
                    if hs.request.len() == 0 && chunk[0] == TLS_HANDSHAKE && self.tls.is_some() =>
                {
                    let (Stream::Plain(tcp), Some(tls)) = (hs.stream, self.tls.as_ref()) else {
                        self.handshakes.end(hs.addr);
                        return; // a TLS record inside TLS: not HTTP
                    };
                    match Stream::start_tls(tcp, tls.config(), &chunk[..n]) {
                        Ok(stream) => hs.stream = stream,
                        Err(e) => {
                            tracing::debug!(remote = %hs.remote, "TLS handshake failed: {e}");
                            self.handshakes.end(hs.addr);
                            return;
                        }
                    }
                }
                Ok(n) => hs.request.push(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.conns.insert(
                        token,
                        Conn {
                            state: State::Handshake(hs),
                            deadline,
                        },
                    );
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.handshakes.end(hs.addr);
                    return;
                }
            }
        };
        self.handshakes.end(hs.addr);
        match action {
            http::Action::Upgrade {
                response,
                leftover,
                cookie,
                forwarded_for,
            } => {
                let ws = WebSocket::from_partially_read(
                    Sock::new(hs.stream, response),
                    leftover,
                    Role::Server,
                    Some(self.ws_config),
                );
                self.open += 1;
                let conn_id = ConnId(token as u64);
                tracing::debug!(conn = conn_id.0, remote = %hs.remote, "websocket open");
                events.push(TransportEvent::Open {
                    conn: conn_id,
                    remote: hs.remote,
                    cookie,
                    forwarded_for,
                });
                let conn = Conn {
                    state: State::Open(Box::new(OpenWs {
                        ws,
                        limiter: RateLimiter::new(self.limits.messages_per_second, now),
                        dirty: false,
                        closing: None,
                    })),
                    deadline: None,
                };
                self.conns.insert(token, conn);
                // The client may have sent frames right after its request.
                self.drive(token, now, events);
            }
            http::Action::Respond(response) => {
                self.linger(token, LingerIo::Raw(Sock::new(hs.stream, response)), now);
            }
            http::Action::Metrics { head } => self.page_requests.push((token, hs.stream, head)),
            // The loop above ends with a response or an upgrade only.
            http::Action::NeedHeader | http::Action::NeedBody(_) => {}
        }
    }
}

/// EMFILE (this process) or ENFILE (the whole system).
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
