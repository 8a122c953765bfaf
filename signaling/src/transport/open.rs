//! An open WebSocket: its messages read within a per-turn budget and the rate limit,
//! its output flushed, and its end (closed by either side, or aborted).

use std::time::Instant;

use tungstenite::WebSocket;
use tungstenite::protocol::CloseFrame;

use super::linger::LingerIo;
use super::ws::{self, Admit, Flush, RateLimiter, Sock, Step};
use super::{Conn, ConnId, MESSAGES_PER_TURN, State, Transport, TransportEvent};

#[derive(Debug)]
pub(super) struct OpenWs {
    pub(super) ws: WebSocket<Sock>,
    pub(super) limiter: RateLimiter,
    /// Queued in `Transport::dirty` for a flush.
    pub(super) dirty: bool,
    /// The connection broke a limit and is closed with this frame at the start of the next
    /// `poll`, so that replies to the messages that came before still go out first. Nothing
    /// more is read from it.
    pub(super) closing: Option<CloseFrame>,
}

/// How an open WebSocket ends.
#[derive(Debug)]
pub(super) enum End {
    /// Send this close frame, then linger.
    Close(CloseFrame),
    /// The client closed; tungstenite has queued the reply: linger.
    PeerClosed,
    /// Drop the socket now.
    Abort,
}

impl Transport {
    /// Reads and writes an open WebSocket. `Some` when the connection has to end.
    pub(super) fn drive_open(
        &mut self,
        token: usize,
        open: &mut OpenWs,
        now: Instant,
        events: &mut Vec<TransportEvent>,
    ) -> Option<End> {
        let conn = ConnId(token as u64);
        if ws::flush(&mut open.ws) == Flush::Ended {
            return Some(End::Abort);
        }
        if open.closing.is_some() {
            return None;
        }
        let mut budget = MESSAGES_PER_TURN;
        loop {
            if budget == 0 {
                self.again.push(token);
                break;
            }
            let admit = match ws::step(&mut open.ws) {
                Step::Text(text) => {
                    budget -= 1;
                    let admit = open.limiter.admit(now);
                    match admit {
                        Admit::Pass => events.push(TransportEvent::Text {
                            conn,
                            text: text.as_str().to_owned(),
                        }),
                        Admit::Drop | Admit::Flood => {
                            events.push(TransportEvent::RateLimited { conn });
                        }
                    }
                    admit
                }
                Step::Control => {
                    budget -= 1;
                    open.limiter.admit(now)
                }
                Step::Refuse(code, reason) => {
                    tracing::debug!(conn = conn.0, "closing: {reason}");
                    open.closing = Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    });
                    self.closing.push(token);
                    break;
                }
                Step::PeerClosed => return Some(End::PeerClosed),
                Step::WouldBlock => break,
                Step::Retry => continue,
                Step::Gone => return Some(End::Abort),
            };
            if admit == Admit::Flood {
                tracing::debug!(conn = conn.0, "message flood; closing");
                open.closing = Some(ws::close_frame(1008, "rate limit"));
                self.closing.push(token);
                break;
            }
        }
        // Pongs that the reads queued.
        if ws::flush(&mut open.ws) == Flush::Ended {
            return Some(End::Abort);
        }
        None
    }

    /// Ends an open WebSocket (removed from `conns` already) and reports `Closed`.
    pub(super) fn end_open(
        &mut self,
        token: usize,
        mut ws: WebSocket<Sock>,
        end: End,
        events: &mut Vec<TransportEvent>,
    ) {
        self.open -= 1;
        events.push(TransportEvent::Closed {
            conn: ConnId(token as u64),
        });
        match end {
            End::Abort => {}
            End::PeerClosed => self.linger(token, LingerIo::Ws(Box::new(ws)), Instant::now()),
            End::Close(frame) => {
                // Queues the close frame (and tries to write it); a WouldBlock leaves it queued.
                let _ = ws.close(Some(frame));
                self.linger(token, LingerIo::Ws(Box::new(ws)), Instant::now());
            }
        }
    }

    /// Closes the open WebSocket `token` with `frame` (after the output already queued).
    pub(super) fn close_open(
        &mut self,
        token: usize,
        frame: CloseFrame,
        events: &mut Vec<TransportEvent>,
    ) {
        if let Some(Conn {
            state: State::Open(open),
            ..
        }) = self.conns.remove(&token)
        {
            self.end_open(token, open.ws, End::Close(frame), events);
        }
    }

    /// Drops an open WebSocket at once (broken, or its backlog is full); `Closed` is queued.
    pub(super) fn abort(&mut self, token: usize) {
        if let Some(Conn {
            state: State::Open(open),
            ..
        }) = self.conns.remove(&token)
        {
            let mut queued = std::mem::take(&mut self.queued);
            self.end_open(token, open.ws, End::Abort, &mut queued);
            self.queued = queued;
        }
    }

    /// Writes the output that `send` queued.
    pub(super) fn flush_dirty(&mut self, events: &mut Vec<TransportEvent>) {
        let dirty = std::mem::take(&mut self.dirty);
        for &token in &dirty {
            let Some(Conn {
                state: State::Open(open),
                ..
            }) = self.conns.get_mut(&token)
            else {
                continue;
            };
            open.dirty = false;
            if ws::flush(&mut open.ws) == Flush::Ended
                && let Some(Conn {
                    state: State::Open(open),
                    ..
                }) = self.conns.remove(&token)
            {
                self.end_open(token, open.ws, End::Abort, events);
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }
}
