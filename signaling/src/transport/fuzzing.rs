//! Entry points for the fuzz targets in `fuzz/`: this transport's HTTP request reader and
//! router, and its reading of WebSocket frames, over bytes in memory instead of a socket.
//! Not an API: the functions may change with the fuzz targets.

use std::io::{self, Read, Write};
use std::time::Instant;

use tungstenite::WebSocket;
use tungstenite::protocol::Role;

use super::Limits;
use super::http::{self, Action, RequestReader};
use super::ws::{self, Step};

/// Messages read from one input at most (a frame can be two bytes long).
const MAX_STEPS: usize = 10_000;

/// Feeds `data` to the transport as one TCP connection would. The first byte chooses:
/// even — the rest is an HTTP request read in chunks of `first / 2 + 1` bytes, exactly as
/// the handshake reads it (and after a `101`, the bytes that follow are WebSocket
/// frames); odd — the rest is WebSocket frames on an already upgraded connection.
/// Panics only if the transport answers something that is not HTTP.
pub fn http_ws(data: &[u8]) {
    let limits = Limits::default();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        websocket(&limits, rest.to_vec());
        return;
    }
    let chunk = usize::from(mode >> 1) + 1;
    let mut reader = RequestReader::default();
    let mut need = 0;
    let mut fed = 0;
    let action = loop {
        if reader.len() >= need {
            let ctx = http::Context {
                max_request: limits.max_http_request,
                ..http::Context::default()
            };
            match http::route(&reader, &ctx) {
                Action::NeedHeader => {}
                Action::NeedBody(total) => need = total,
                done => break Some(done),
            }
        }
        if fed >= rest.len() {
            break None;
        }
        let room = limits
            .max_http_request
            .saturating_sub(reader.len())
            .clamp(1, chunk);
        let end = fed.saturating_add(room).min(rest.len());
        reader.push(&rest[fed..end]);
        fed = end;
    };
    match action {
        Some(Action::Upgrade {
            response,
            mut leftover,
            ..
        }) => {
            assert!(
                response.starts_with(b"HTTP/1.1 101 "),
                "an upgrade is a 101"
            );
            leftover.extend_from_slice(&rest[fed..]);
            websocket(&limits, leftover);
        }
        Some(Action::Respond(response)) => {
            assert!(response.starts_with(b"HTTP/1.1 "), "a response is HTTP");
        }
        _ => {}
    }
}

/// Reads WebSocket messages from `input` the way an open connection is read, until the
/// connection would block, breaks or is refused.
fn websocket(limits: &Limits, input: Vec<u8>) {
    let now = Instant::now();
    let mut socket = WebSocket::from_partially_read(
        Memory { input, at: 0 },
        Vec::new(),
        Role::Server,
        Some(ws::config(limits)),
    );
    let mut limiter = ws::RateLimiter::new(limits.messages_per_second, now);
    for _ in 0..MAX_STEPS {
        match ws::step(&mut socket) {
            Step::Text(text) => {
                let _ = limiter.admit(now);
                assert!(text.len() <= limits.max_message, "a message over the limit");
            }
            Step::Control => {
                let _ = limiter.admit(now);
            }
            Step::Refuse(code, reason) => {
                let _ = socket.close(Some(ws::close_frame(code.into(), reason)));
                let _ = ws::flush(&mut socket);
                return;
            }
            Step::Retry => continue,
            Step::PeerClosed | Step::WouldBlock | Step::Gone => return,
        }
        let _ = ws::flush(&mut socket);
    }
}

/// A connection whose input is a fixed buffer (then it would block) and whose output
/// goes nowhere.
#[derive(Debug)]
struct Memory {
    input: Vec<u8>,
    at: usize,
}

impl Read for Memory {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.input.get(self.at..).unwrap_or_default();
        if rest.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Memory {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
