//! WebSocket pieces: the socket wrapper tungstenite writes through, reading one step of a
//! connection, and the per-connection rate limiter.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Error, Message, Utf8Bytes, WebSocket};

use super::Limits;
use super::stream::Stream;

/// A connection's stream (TCP or TLS) with bytes that must go out before anything else (the HTTP response, or the
/// `101 Switching Protocols` that precedes the WebSocket frames).
///
/// `write` sends the prefix first and reports `WouldBlock` while any of it is left, so the
/// WebSocket's own buffered frames always follow it.
#[derive(Debug)]
pub(crate) struct Sock {
    pub(crate) stream: Stream,
    prefix: Vec<u8>,
    prefix_sent: usize,
}

impl Sock {
    pub(crate) fn new(stream: Stream, prefix: Vec<u8>) -> Sock {
        Sock {
            stream,
            prefix,
            prefix_sent: 0,
        }
    }

    /// Writes what is left of the prefix. `Ok` once all of it is out (on the wire, for
    /// TLS: the records are written too).
    pub(crate) fn write_prefix(&mut self) -> io::Result<()> {
        while self.prefix_sent < self.prefix.len() {
            match self.stream.write(&self.prefix[self.prefix_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.prefix_sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.prefix.is_empty() {
            self.prefix = Vec::new();
            self.prefix_sent = 0;
        }
        self.stream.flush()
    }

    /// Stops sending (a TLS close_notify, then a FIN, follow the bytes already written);
    /// errors are of no interest because the connection is being closed anyway.
    pub(crate) fn shutdown_write(&mut self) {
        self.stream.shutdown_write();
    }

    /// Reads and throws away at most `budget` bytes of what the peer sends.
    pub(crate) fn discard_input(&mut self, budget: usize) -> io::Result<Discard> {
        let mut scratch = [0u8; 4096];
        let mut read = 0;
        while read < budget {
            match self.stream.read(&mut scratch) {
                Ok(0) => return Ok(Discard::Eof),
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Discard::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Discard::Budget)
    }
}

/// How far [`Sock::discard_input`] got.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Discard {
    /// The peer has closed its side.
    Eof,
    /// Nothing more to read now.
    Blocked,
    /// The budget is used up; there may be more.
    Budget,
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_prefix()?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_prefix()
    }
}

/// Bytes tungstenite reads from the socket at a time. Small, because it is allocated for
/// every connection up front; a larger message grows the buffer only while it arrives.
const READ_BUFFER: usize = 4 * 1024;
/// Outgoing frames are collected up to this size before a write is forced; `flush` (at the
/// start of every `poll`) sends the rest.
const WRITE_BUFFER: usize = 64 * 1024;

/// The tungstenite configuration for the given limits.
pub(crate) fn config(limits: &Limits) -> WebSocketConfig {
    let max_message = limits.max_message.max(1);
    let write_buffer = WRITE_BUFFER.min(limits.send_backlog / 2);
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(write_buffer)
        // tungstenite requires the maximum to be larger than the write threshold.
        .max_write_buffer_size(limits.send_backlog.max(write_buffer + 1))
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// The result of one attempt to read a message.
#[derive(Debug)]
pub(crate) enum Step {
    /// A complete text message.
    Text(Utf8Bytes),
    /// A ping or pong (tungstenite has queued the pong for a ping).
    Control,
    /// The client broke a rule: close the connection with this code and reason.
    Refuse(CloseCode, &'static str),
    /// The client sent a close frame; tungstenite has queued the reply.
    PeerClosed,
    /// Nothing more to read now.
    WouldBlock,
    /// Interrupted by a signal: try again.
    Retry,
    /// The connection is broken or already closed.
    Gone,
}

/// Reads at most one message from `ws`.
pub(crate) fn step<S: Read + Write>(ws: &mut WebSocket<S>) -> Step {
    match ws.read() {
        Ok(Message::Text(text)) => Step::Text(text),
        Ok(Message::Binary(_)) => {
            Step::Refuse(CloseCode::Unsupported, "binary messages are not supported")
        }
        Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Step::Control,
        Ok(Message::Close(_)) => Step::PeerClosed,
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Step::WouldBlock,
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => Step::Retry,
        Err(Error::Capacity(_)) => Step::Refuse(CloseCode::Size, "message too big"),
        Err(Error::Utf8(_)) => Step::Refuse(CloseCode::Invalid, "text message is not UTF-8"),
        Err(Error::Protocol(e)) => {
            tracing::debug!("websocket protocol error: {e}");
            Step::Refuse(CloseCode::Protocol, "protocol error")
        }
        Err(_) => Step::Gone,
    }
}

/// The state of a flush.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Everything queued is written.
    Done,
    /// The socket takes no more now; the rest goes out when it is writable again.
    Blocked,
    /// The connection is broken, or the closing handshake is over and nothing is left to send.
    Ended,
}

/// Writes out what `ws` has queued.
pub(crate) fn flush<S: Read + Write>(ws: &mut WebSocket<S>) -> Flush {
    loop {
        return match ws.flush() {
            Ok(()) => Flush::Done,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Flush::Blocked,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => Flush::Ended,
        };
    }
}

/// A close frame; the reason is cut to fit a control frame (at most 123 bytes), and codes
/// that must not be sent become 1000.
pub(crate) fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut code = CloseCode::from(code);
    if !code.is_allowed() {
        code = CloseCode::Normal;
    }
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }
}

/// What the rate limiter says about one incoming message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Within the rate.
    Pass,
    /// Over the rate: drop the message.
    Drop,
    /// Over the rate for long: close the connection.
    Flood,
}

/// A token bucket: `rate` messages a second on average, bursts of up to `2 × rate`.
///
/// Flooding: when more than `4 × rate` messages are dropped within one fixed one-second window
/// (that is, the client sends at least five times its rate), the connection is to be closed.
/// A rate of 0 means no limit.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    window_start: Instant,
    dropped: u32,
    max_dropped: u32,
}

impl RateLimiter {
    pub(crate) fn new(messages_per_second: u32, now: Instant) -> RateLimiter {
        let rate = f64::from(messages_per_second);
        RateLimiter {
            rate,
            burst: 2.0 * rate,
            tokens: 2.0 * rate,
            last: now,
            window_start: now,
            dropped: 0,
            max_dropped: messages_per_second.saturating_mul(4),
        }
    }

    /// Counts one message arriving at `now`.
    pub(crate) fn admit(&mut self, now: Instant) -> Admit {
        if self.rate == 0.0 {
            return Admit::Pass;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Pass;
        }
        if now.saturating_duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.dropped = 0;
        }
        self.dropped += 1;
        if self.dropped > self.max_dropped {
            Admit::Flood
        } else {
            Admit::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(10, t0);
        for _ in 0..20 {
            assert_eq!(limiter.admit(t0), Admit::Pass);
        }
        assert_eq!(limiter.admit(t0), Admit::Drop);
        // 100 ms later one more token is there.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(limiter.admit(t1), Admit::Pass);
        assert_eq!(limiter.admit(t1), Admit::Drop);
    }

    #[test]
    fn flooding_is_detected() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(10, t0);
        let verdicts: Vec<Admit> = (0..61).map(|_| limiter.admit(t0)).collect();
        assert_eq!(verdicts[19], Admit::Pass);
        assert_eq!(verdicts[20], Admit::Drop);
        assert_eq!(verdicts[59], Admit::Drop);
        assert_eq!(verdicts[60], Admit::Flood);
        // The drop count starts over in the next window.
        let mut slow = RateLimiter::new(10, t0);
        for i in 0..200u64 {
            let now = t0 + Duration::from_millis(i * 50);
            assert_ne!(slow.admit(now), Admit::Flood);
        }
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(0, t0);
        assert!((0..10_000).all(|_| limiter.admit(t0) == Admit::Pass));
    }

    #[test]
    fn close_frames_are_sendable() {
        assert_eq!(close_frame(1005, "x").code, CloseCode::Normal);
        assert_eq!(close_frame(1008, "x").code, CloseCode::Policy);
        assert_eq!(u16::from(close_frame(4000, "x").code), 4000);
        assert_eq!(close_frame(2000, "x").code, CloseCode::Normal);
        let long = "é".repeat(100);
        let frame = close_frame(1000, &long);
        assert!(frame.reason.len() <= 123);
    }
}
