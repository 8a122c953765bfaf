//! The signalling transport over real sockets on 127.0.0.1: HTTP routes, WebSocket echo, and
//! every limit a client can run into.
//!
//! Each test runs its own `Transport` on a background thread (an echo server) and talks to it
//! with plain `std::net::TcpStream`s and tungstenite clients. Waits are bounded loops with
//! deadlines of a few seconds; no sleep is an assertion.

mod http;
mod limits;
mod websocket;

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
            TransportEvent::Open { conn, remote, .. } => {
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

/// A TCP connection from 127.0.0.`host` (all of 127/8 is this machine), so that tests can
/// play several client addresses.
fn connect_from(addr: SocketAddr, host: u8) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from = SocketAddr::from(([127, 0, 0, host], 0));
    socket.bind(&from.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let tcp = TcpStream::from(socket);
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.set_write_timeout(Some(WAIT)).unwrap();
    tcp
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
