//! The signalling transport over real sockets on 127.0.0.1: HTTP routes, WebSocket echo, and
//! every limit a client can run into.
//!
//! Each test runs its own `Transport` on a background thread (an echo server) and talks to it
//! with plain `std::net::TcpStream`s and tungstenite clients. Waits are bounded loops with
//! deadlines of a few seconds; no sleep is an assertion.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use signaling::transport::{ConnId, Limits, Transport, TransportEvent};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// How long any single wait in these tests may take before the test fails.
const WAIT: Duration = Duration::from_secs(5);

/// Instructions from a test to the server thread.
enum Command {
    Close(ConnId, u16, String),
    /// Send `count` messages of `size` bytes to the connection.
    Flood {
        conn: ConnId,
        size: usize,
        count: usize,
    },
    /// Report `open_connections()`.
    Count(mpsc::Sender<usize>),
}

/// An echo server: every text message goes back to its sender; every event is also passed to
/// the test through a channel.
struct Server {
    addr: SocketAddr,
    events: mpsc::Receiver<TransportEvent>,
    commands: mpsc::Sender<Command>,
    waker: Arc<mio::Waker>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(limits: Limits) -> Server {
        let mut transport = Transport::bind("127.0.0.1:0".parse().unwrap(), limits).unwrap();
        let addr = transport.local_addr();
        let waker = transport.waker();
        let stop = Arc::new(AtomicBool::new(false));
        let (event_tx, events) = mpsc::channel();
        let (commands, command_rx) = mpsc::channel::<Command>();
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut batch = Vec::new();
            while !thread_stop.load(Ordering::Relaxed) {
                transport
                    .poll(Some(Duration::from_millis(100)), &mut batch, &|_| {
                        String::new()
                    })
                    .unwrap();
                for event in batch.drain(..) {
                    if let TransportEvent::Text { conn, text } = &event {
                        transport.send(*conn, text);
                    }
                    let _ = event_tx.send(event);
                }
                while let Ok(command) = command_rx.try_recv() {
                    match command {
                        Command::Close(conn, code, reason) => transport.close(conn, code, &reason),
                        Command::Flood { conn, size, count } => {
                            let text = "x".repeat(size);
                            for _ in 0..count {
                                transport.send(conn, &text);
                            }
                        }
                        Command::Count(reply) => {
                            let _ = reply.send(transport.open_connections());
                        }
                    }
                }
            }
        });
        Server {
            addr,
            events,
            commands,
            waker,
            stop,
            thread: Some(thread),
        }
    }

    fn command(&self, command: Command) {
        self.commands.send(command).unwrap();
        self.waker.wake().unwrap();
    }

    fn open_connections(&self) -> usize {
        let (tx, rx) = mpsc::channel();
        self.command(Command::Count(tx));
        rx.recv_timeout(WAIT).unwrap()
    }

    /// Waits for the first event that `pred` accepts (skipping the others).
    fn wait_for(&self, what: &str, pred: impl Fn(&TransportEvent) -> bool) -> TransportEvent {
        self.collect_until(what, pred).pop().unwrap()
    }

    /// Collects events up to and including the first one that `pred` accepts.
    fn collect_until(
        &self,
        what: &str,
        pred: impl Fn(&TransportEvent) -> bool,
    ) -> Vec<TransportEvent> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    let done = pred(&event);
                    seen.push(event);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no {what} event within {WAIT:?}"),
            }
        }
    }

    fn wait_open(&self) -> ConnId {
        match self.wait_for("Open", |e| matches!(e, TransportEvent::Open { .. })) {
            TransportEvent::Open { conn, remote } => {
                assert!(remote.ip().is_loopback());
                conn
            }
            _ => unreachable!(),
        }
    }

    fn wait_closed(&self, conn: ConnId) {
        self.wait_for("Closed", |e| *e == TransportEvent::Closed { conn });
    }

    /// All events that have arrived so far.
    fn drain_events(&self) -> Vec<TransportEvent> {
        self.events.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.set_write_timeout(Some(WAIT)).unwrap();
    tcp
}

/// A parsed HTTP response.
struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (compared without case).
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` on a new connection and reads the response until the server closes.
fn http(addr: SocketAddr, request: &[u8]) -> Response {
    let mut tcp = connect(addr);
    tcp.write_all(request).unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response header");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Response {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Response {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

fn post_form(addr: SocketAddr, body: &str) -> Response {
    let request = format!(
        "POST /call HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    http(addr, request.as_bytes())
}

type Client = WebSocket<TcpStream>;

fn ws_connect(addr: SocketAddr) -> Client {
    let (ws, response) = tungstenite::client(format!("ws://{addr}/ws"), connect(addr)).unwrap();
    assert_eq!(response.status(), 101);
    ws
}

fn send_text(ws: &mut Client, text: &str) {
    ws.send(Message::text(text)).unwrap();
}

fn read_text(ws: &mut Client) -> String {
    loop {
        match ws.read().unwrap() {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame; returns it and how many text messages came before.
fn read_close(ws: &mut Client) -> (CloseFrame, usize) {
    let mut texts = 0;
    loop {
        match ws.read() {
            Ok(Message::Text(_)) => texts += 1,
            Ok(Message::Close(Some(frame))) => return (frame, texts),
            Ok(Message::Close(None)) => panic!("close frame without a code"),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

/// Whether the peer has closed `tcp` (end of stream or reset) within `within`.
fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    tcp.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    match tcp.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected {n} bytes from the server"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(_) => true, // reset
    }
}

/// Whether `tcp` is still open right now (nothing to read and no end of stream).
fn still_open(tcp: &mut TcpStream) -> bool {
    tcp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let open = matches!(tcp.read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    tcp.set_nonblocking(false).unwrap();
    open
}

#[test]
fn landing_and_call_pages_are_html() {
    let server = Server::start(Limits::default());
    let index = signaling::assets::asset("index.html").unwrap().1;
    for path in ["/", "/call/team-standup", "/call/x?from=link"] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.body, index);
    }
    let head = http(server.addr, b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(index.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    let health = get(server.addr, "/health");
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok"[..]));
}

#[test]
fn static_files_have_their_content_types() {
    let server = Server::start(Limits::default());
    let js = get(server.addr, "/static/app.js");
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.body, signaling::assets::asset("app.js").unwrap().1);
    let css = get(server.addr, "/static/style.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(css.header("cache-control"), Some("no-cache"));
}

#[test]
fn unknown_paths_are_404() {
    let server = Server::start(Limits::default());
    for path in [
        "/nope",
        "/static/",
        "/static/../Cargo.toml",
        "/call/",
        "/call/a/b",
    ] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.body.is_empty());
    }
    let r = http(server.addr, b"DELETE / HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 405);
}

#[test]
fn post_call_redirects_to_the_room() {
    let server = Server::start(Limits::default());
    let named = post_form(server.addr, "call=team-standup");
    assert_eq!(named.status, 302);
    assert_eq!(named.header("location"), Some("/call/team-standup"));
    let decoded = post_form(server.addr, "x=1&call=Room%2E1_a");
    assert_eq!(decoded.header("location"), Some("/call/Room.1_a"));

    let mut seen = Vec::new();
    for body in ["call=", "", "other=1"] {
        let random = post_form(server.addr, body);
        assert_eq!(random.status, 302, "{body:?}");
        let location = random.header("location").unwrap();
        let room = location.strip_prefix("/call/").unwrap();
        assert_eq!(room.len(), 12, "{room}");
        assert!(
            room.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert!(!seen.contains(&room.to_owned()));
        seen.push(room.to_owned());
    }

    let too_long = format!("call={}", "a".repeat(65));
    for body in [
        "call=a+b",
        "call=a%2Fb",
        "call=%3Cscript%3E",
        "call=..",
        too_long.as_str(),
    ] {
        let bad = post_form(server.addr, body);
        assert_eq!(bad.status, 400, "{body}");
        let text = String::from_utf8(bad.body).unwrap();
        assert!(text.contains("A-Z") && text.contains("1 to 64"), "{text}");
    }
}

#[test]
fn oversized_requests_are_refused() {
    let limits = Limits {
        max_http_request: 4096,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let big_header = format!("GET / HTTP/1.1\r\nX-Filler: {}\r\n\r\n", "a".repeat(8192));
    assert_eq!(http(server.addr, big_header.as_bytes()).status, 431);
    let big_body = "POST /call HTTP/1.1\r\nContent-Length: 1000000\r\n\r\ncall=x";
    assert_eq!(http(server.addr, big_body.as_bytes()).status, 413);
    // The server is still fine.
    assert_eq!(get(server.addr, "/health").status, 200);
}

#[test]
fn websocket_echo_round_trip() {
    let server = Server::start(Limits::default());
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    assert_eq!(server.open_connections(), 1);

    send_text(&mut ws, r#"{"type":"ping"}"#);
    assert_eq!(read_text(&mut ws), r#"{"type":"ping"}"#);
    let text = server.wait_for("Text", |e| matches!(e, TransportEvent::Text { .. }));
    assert_eq!(
        text,
        TransportEvent::Text {
            conn,
            text: r#"{"type":"ping"}"#.into()
        }
    );
    // A message split over several frames arrives whole; unicode survives.
    ws.write(Message::Frame(
        tungstenite::protocol::frame::Frame::message(
            "héllo ".as_bytes().to_vec(),
            tungstenite::protocol::frame::coding::OpCode::Data(
                tungstenite::protocol::frame::coding::Data::Text,
            ),
            false,
        ),
    ))
    .unwrap();
    ws.write(Message::Frame(
        tungstenite::protocol::frame::Frame::message(
            "wörld".as_bytes().to_vec(),
            tungstenite::protocol::frame::coding::OpCode::Data(
                tungstenite::protocol::frame::coding::Data::Continue,
            ),
            true,
        ),
    ))
    .unwrap();
    ws.flush().unwrap();
    assert_eq!(read_text(&mut ws), "héllo wörld");

    // WebSocket pings are answered.
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match ws.read().unwrap() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }

    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
    server.wait_closed(conn);
    assert_eq!(server.open_connections(), 0);
    let closed = server
        .drain_events()
        .into_iter()
        .filter(|e| *e == TransportEvent::Closed { conn })
        .count();
    assert_eq!(closed, 0, "Closed is reported once");
}

#[test]
fn frames_sent_with_the_upgrade_request_are_read() {
    let server = Server::start(Limits::default());
    let mut tcp = connect(server.addr);
    let mut request = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec();
    // A masked text frame "hi" in the same write.
    let mask = [1u8, 2, 3, 4];
    request.extend_from_slice(&[0x81, 0x82]);
    request.extend_from_slice(&mask);
    request.extend(b"hi".iter().zip(mask).map(|(b, m)| b ^ m));
    tcp.write_all(&request).unwrap();

    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    let expected_frame = [0x81, 0x02, b'h', b'i'];
    while !raw.ends_with(&expected_frame) {
        let n = tcp.read(&mut buf).unwrap();
        assert_ne!(n, 0, "closed early: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
}

#[test]
fn invalid_upgrade_is_400() {
    let server = Server::start(Limits::default());
    assert_eq!(get(server.addr, "/ws").status, 400);
    let no_key = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(http(server.addr, no_key.as_bytes()).status, 400);
    let old = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let r = http(server.addr, old.as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    assert_eq!(server.drain_events(), []);
}

#[test]
fn message_over_the_limit_closes_with_1009() {
    let limits = Limits {
        max_message: 1024,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    let fits = "a".repeat(1024);
    send_text(&mut ws, &fits);
    assert_eq!(read_text(&mut ws), fits);
    send_text(&mut ws, &"b".repeat(1025));
    let (frame, _) = read_close(&mut ws);
    assert_eq!(frame.code, CloseCode::Size);
    server.wait_closed(conn);

    // The same limit holds for a message split into small frames.
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    let part = |fin: bool, first: bool| {
        let opcode = if first {
            tungstenite::protocol::frame::coding::Data::Text
        } else {
            tungstenite::protocol::frame::coding::Data::Continue
        };
        Message::Frame(tungstenite::protocol::frame::Frame::message(
            vec![b'c'; 600],
            tungstenite::protocol::frame::coding::OpCode::Data(opcode),
            fin,
        ))
    };
    ws.write(part(false, true)).unwrap();
    ws.write(part(true, false)).unwrap();
    ws.flush().unwrap();
    let (frame, _) = read_close(&mut ws);
    assert_eq!(frame.code, CloseCode::Size);
    server.wait_closed(conn);
}

#[test]
fn binary_message_closes_with_1003() {
    let server = Server::start(Limits::default());
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    let (frame, _) = read_close(&mut ws);
    assert_eq!(frame.code, CloseCode::Unsupported);
    server.wait_closed(conn);
}

#[test]
fn flood_is_rate_limited_then_closed_while_others_still_echo() {
    let limits = Limits {
        messages_per_second: 10,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let mut calm = ws_connect(server.addr);
    let calm_conn = server.wait_open();
    let mut flooder = ws_connect(server.addr);
    let flood_conn = server.wait_open();

    // Burst 20 passes, then 40 are dropped, and the 41st drop closes the connection.
    for i in 0..100 {
        flooder.write(Message::text(format!("m{i}"))).unwrap();
    }
    flooder.flush().unwrap();
    let (frame, echoed) = read_close(&mut flooder);
    assert_eq!(frame.code, CloseCode::Policy);
    assert_eq!(frame.reason.as_str(), "rate limit");
    assert!((20..=22).contains(&echoed), "{echoed} messages were echoed");
    let events = server.collect_until("Closed", |e| {
        *e == TransportEvent::Closed { conn: flood_conn }
    });
    send_text(&mut calm, "still here");
    assert_eq!(read_text(&mut calm), "still here");
    let limited = events
        .iter()
        .filter(|e| **e == TransportEvent::RateLimited { conn: flood_conn })
        .count();
    assert!(limited >= 40, "{limited} RateLimited events");
    assert!(!events.contains(&TransportEvent::RateLimited { conn: calm_conn }));
}

#[test]
fn silent_connections_are_closed_after_the_handshake_timeout() {
    let limits = Limits {
        handshake_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = Server::start(limits);
    let started = Instant::now();
    let mut silent = connect(server.addr);
    let mut partial = connect(server.addr);
    partial.write_all(b"GET / HTTP/1.1\r\nHost: slow").unwrap();
    assert!(closed_within(&mut silent, WAIT));
    assert!(closed_within(&mut partial, WAIT));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(290),
        "closed after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");
    // No WebSocket was opened, so nothing was reported.
    assert_eq!(server.drain_events(), []);
}

#[test]
fn handshakes_beyond_max_pending_are_refused_while_good_clients_work() {
    let limits = Limits {
        handshake_timeout: Duration::from_millis(1500),
        max_pending: 4,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let mut good = ws_connect(server.addr);
    server.wait_open();

    let piled_at = Instant::now();
    let mut pending: Vec<TcpStream> = (0..4).map(|_| connect(server.addr)).collect();
    let mut extra: Vec<TcpStream> = (0..4).map(|_| connect(server.addr)).collect();
    for tcp in &mut extra {
        assert!(
            closed_within(tcp, Duration::from_secs(1)),
            "an extra connection was kept"
        );
    }
    assert!(
        piled_at.elapsed() < Duration::from_millis(1400),
        "too slow to tell"
    );
    for tcp in &mut pending {
        assert!(
            still_open(tcp),
            "a pending connection was closed before its timeout"
        );
    }
    // An open WebSocket is not affected.
    send_text(&mut good, "during the pile");
    assert_eq!(read_text(&mut good), "during the pile");

    for tcp in &mut pending {
        assert!(
            closed_within(tcp, WAIT),
            "a pending connection was never closed"
        );
    }
    // The pile has timed out: new clients get in again.
    let mut fresh = ws_connect(server.addr);
    server.wait_open();
    send_text(&mut fresh, "after the pile");
    assert_eq!(read_text(&mut fresh), "after the pile");
}

#[test]
fn close_delivers_code_and_reason() {
    let server = Server::start(Limits::default());
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    server.command(Command::Close(
        conn,
        4000,
        "replaced by another connection".into(),
    ));
    let (frame, _) = read_close(&mut ws);
    assert_eq!(u16::from(frame.code), 4000);
    assert_eq!(frame.reason.as_str(), "replaced by another connection");
    server.wait_closed(conn);
    assert_eq!(server.open_connections(), 0);
    // The client finishes the closing handshake cleanly.
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

#[test]
fn upgrade_beyond_max_connections_gets_503() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let mut first = ws_connect(server.addr);
    let first_conn = server.wait_open();
    match tungstenite::client(format!("ws://{}/ws", server.addr), connect(server.addr)) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 503);
        }
        Ok(_) => panic!("a second WebSocket was accepted"),
        Err(e) => panic!("unexpected error: {e}"),
    }
    first.close(None).unwrap();
    server.wait_closed(first_conn);
    let mut second = ws_connect(server.addr);
    server.wait_open();
    send_text(&mut second, "room for me");
    assert_eq!(read_text(&mut second), "room for me");
}

#[test]
fn client_that_does_not_read_is_closed_at_the_send_backlog() {
    let limits = Limits {
        send_backlog: 256 * 1024,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let _ws = ws_connect(server.addr); // never reads
    let conn = server.wait_open();
    // Far more than the kernel's socket buffers and the backlog together.
    server.command(Command::Flood {
        conn,
        size: 64 * 1024,
        count: 600,
    });
    server.wait_closed(conn);
    assert_eq!(server.open_connections(), 0);
}

#[test]
fn many_messages_in_one_batch_are_all_delivered() {
    let server = Server::start(Limits::default());
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    server.command(Command::Flood {
        conn,
        size: 1000,
        count: 500,
    });
    for _ in 0..500 {
        assert_eq!(read_text(&mut ws).len(), 1000);
    }
}
