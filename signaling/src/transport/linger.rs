//! A closed connection delivering its last bytes (see the module documentation,
//! *Linger*): its output written, its sending side shut, its input discarded until the
//! client closes too or [`LINGER`](super::LINGER) passes.

use std::io;
use std::time::Instant;

use tungstenite::WebSocket;

use super::ws::{self, Discard, Flush, Sock};
use super::{Conn, DISCARD_PER_TURN, LINGER, State, Transport, arm};

#[derive(Debug)]
pub(super) struct Linger {
    pub(super) io: LingerIo,
    /// All output is written and the sending side is shut down.
    pub(super) flushed: bool,
}

#[derive(Debug)]
pub(super) enum LingerIo {
    Raw(Sock),
    Ws(Box<WebSocket<Sock>>),
}

impl LingerIo {
    fn sock(&mut self) -> &mut Sock {
        match self {
            LingerIo::Raw(sock) => sock,
            LingerIo::Ws(ws) => ws.get_mut(),
        }
    }
}

/// What a lingering connection needs next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LingerStep {
    /// It is finished: drop it.
    Done,
    /// Wait for readiness.
    Wait,
    /// It has more input to discard than one turn allows: drive it again in the next `poll`.
    More,
}

/// Advances a lingering connection.
pub(super) fn drive_linger(linger: &mut Linger) -> LingerStep {
    if !linger.flushed {
        let flushed = match &mut linger.io {
            LingerIo::Raw(sock) => match sock.write_prefix() {
                Ok(()) => Flush::Done,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Flush::Blocked,
                Err(_) => return LingerStep::Done,
            },
            LingerIo::Ws(ws) => match ws::flush(ws) {
                // A closed WebSocket reports the end of the closing handshake as an error,
                // after writing everything.
                Flush::Done | Flush::Ended => Flush::Done,
                Flush::Blocked => Flush::Blocked,
            },
        };
        if flushed == Flush::Blocked {
            return LingerStep::Wait;
        }
        linger.io.sock().shutdown_write();
        linger.flushed = true;
    }
    match linger.io.sock().discard_input(DISCARD_PER_TURN) {
        Ok(Discard::Eof) | Err(_) => LingerStep::Done,
        Ok(Discard::Blocked) => LingerStep::Wait,
        Ok(Discard::Budget) => LingerStep::More,
    }
}

impl Transport {
    /// Lets a connection deliver its last bytes, or drops it at once when too many linger.
    pub(super) fn linger(&mut self, token: usize, io: LingerIo, now: Instant) {
        let mut linger = Linger { io, flushed: false };
        let step = drive_linger(&mut linger);
        if step == LingerStep::Done || self.lingering >= self.limits.max_pending {
            return; // dropping the socket closes it
        }
        if step == LingerStep::More {
            self.again.push(token);
        }
        self.lingering += 1;
        let mut conn = Conn {
            state: State::Linger(linger),
            deadline: None,
        };
        arm(&mut self.timers, &mut conn, token, now + LINGER);
        self.conns.insert(token, conn);
    }
}
