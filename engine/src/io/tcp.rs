//! ICE over TCP for one shard: a passive candidate's listener (RFC 6544) and its
//! connections, each carrying STUN, DTLS and SRTP as RFC 4571 frames (a two-byte length,
//! then the packet). A client whose UDP is blocked still reaches the shard this way; the
//! core handles each frame as it would a datagram from the connection's remote address.
//!
//! Bounded like the rest of the shard: at most [`MAX_CONNECTIONS`] connections, a frame
//! longer than [`MAX_FRAME`] ends its connection (it is not WebRTC), unsent output beyond
//! [`MAX_BACKLOG`] is dropped as UDP would drop it, and a connection silent for
//! [`IDLE`] is closed (ICE consent checks keep a live one busy every few seconds).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::shard::{Datagram, ShardCore};

/// The listener's token; connection `i` has `Token(FIRST + i)`.
pub(crate) const LISTENER: Token = Token(2);
const FIRST: usize = 3;
/// Connections one shard keeps at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 1024;
/// The largest frame taken: the engine's datagram limit.
const MAX_FRAME: usize = crate::shard::MAX_DATAGRAM;
/// Unsent bytes a connection may hold; frames beyond are dropped.
const MAX_BACKLOG: usize = 256 * 1024;
/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(30);

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// Bytes of `tx` already written.
    tx_sent: usize,
    last_rx: Instant,
    /// Registered for WRITABLE too (while output waits).
    writable: bool,
}

/// The shard's ICE-TCP side. See the module docs.
pub(crate) struct TcpMedia {
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    by_peer: HashMap<SocketAddr, usize>,
    next_expiry: Instant,
}

impl TcpMedia {
    /// Registers the listener with the shard's poll.
    pub(crate) fn new(mut listener: TcpListener, registry: &Registry) -> io::Result<Self> {
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Self {
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            by_peer: HashMap::new(),
            next_expiry: Instant::now() + IDLE,
        })
    }

    /// Whether `token` is this side's.
    pub(crate) fn owns(token: Token) -> bool {
        token.0 >= LISTENER.0
    }

    /// A readiness event for `token`: accept, read (frames go to `core`), write.
    pub(crate) fn ready(
        &mut self,
        registry: &Registry,
        token: Token,
        readable: bool,
        writable: bool,
        core: &mut ShardCore,
    ) {
        if token == LISTENER {
            self.accept(registry);
            return;
        }
        let i = token.0 - FIRST;
        let ok = (!writable || self.write(registry, i).is_ok())
            && (!readable || self.read(i, core).is_ok());
        if !ok {
            self.close(registry, i);
        }
    }

    fn accept(&mut self, registry: &Registry) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("ICE-TCP accept failed: {e}");
                    return;
                }
            };
            if self.by_peer.len() >= MAX_CONNECTIONS {
                continue; // dropping it closes it
            }
            let i = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if registry
                .register(&mut stream, Token(FIRST + i), Interest::READABLE)
                .is_err()
            {
                self.free.push(i);
                continue;
            }
            let _ = stream.set_nodelay(true);
            // A reconnect from the same address replaces the old connection.
            if let Some(old) = self.by_peer.insert(peer, i) {
                self.drop_conn(registry, old);
            }
            self.conns[i] = Some(Conn {
                stream,
                peer,
                rx: Vec::new(),
                tx: Vec::new(),
                tx_sent: 0,
                last_rx: Instant::now(),
                writable: false,
            });
        }
    }

    /// Reads what the connection has and hands each complete frame to the core.
    fn read(&mut self, i: usize, core: &mut ShardCore) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return Ok(());
        };
        let mut chunk = [0u8; 4096];
        loop {
            match conn.stream.read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => conn.rx.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if conn.rx.len() > 2 + MAX_FRAME {
                // Hand over what is complete before reading on (bounded buffer).
                frames(conn, core)?;
            }
        }
        frames(conn, core)
    }

    /// Queues frames for their connections and writes what the sockets take.
    pub(crate) fn send(
        &mut self,
        registry: &Registry,
        out: &mut Vec<Datagram>,
        core: &mut ShardCore,
    ) {
        for d in out.drain(..) {
            let Some(&i) = self.by_peer.get(&d.to) else {
                core.stats.tx_dropped += 1; // the connection is gone
                continue;
            };
            let Some(conn) = self.conns[i].as_mut() else {
                continue;
            };
            let (Ok(len), true) = (
                u16::try_from(d.data.len()),
                conn.tx.len() - conn.tx_sent + d.data.len() + 2 <= MAX_BACKLOG,
            ) else {
                core.stats.tx_dropped += 1;
                continue;
            };
            conn.tx.extend_from_slice(&len.to_be_bytes());
            conn.tx.extend_from_slice(&d.data);
            core.stats.tx_datagrams += 1;
            if self.write(registry, i).is_err() {
                self.close(registry, i);
            }
        }
    }

    fn write(&mut self, registry: &Registry, i: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return Ok(());
        };
        while conn.tx_sent < conn.tx.len() {
            match conn.stream.write(&conn.tx[conn.tx_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => conn.tx_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if conn.tx_sent == conn.tx.len() {
            conn.tx.clear();
            conn.tx_sent = 0;
        }
        let waiting = !conn.tx.is_empty();
        if waiting != conn.writable {
            conn.writable = waiting;
            let interest = if waiting {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut conn.stream, Token(FIRST + i), interest)?;
        }
        Ok(())
    }

    /// Closes connections silent for [`IDLE`] (checked every few seconds).
    pub(crate) fn expire(&mut self, registry: &Registry, now: Instant) {
        if now < self.next_expiry {
            return;
        }
        self.next_expiry = now + IDLE / 4;
        let idle: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().filter(|c| now >= c.last_rx + IDLE).map(|_| i))
            .collect();
        for i in idle {
            self.close(registry, i);
        }
    }

    fn close(&mut self, registry: &Registry, i: usize) {
        if let Some(peer) = self.conns.get(i).and_then(Option::as_ref).map(|c| c.peer)
            && self.by_peer.get(&peer) == Some(&i)
        {
            self.by_peer.remove(&peer);
        }
        self.drop_conn(registry, i);
    }

    fn drop_conn(&mut self, registry: &Registry, i: usize) {
        if let Some(mut conn) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = registry.deregister(&mut conn.stream);
            self.free.push(i);
        }
    }

    /// Open connections (for tests and metrics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_peer.len()
    }
}

/// Hands every complete frame in the connection's buffer to the core; a frame over
/// [`MAX_FRAME`] is an error (the connection is not WebRTC).
fn frames(conn: &mut Conn, core: &mut ShardCore) -> io::Result<()> {
    let mut at = 0;
    let now = Instant::now();
    while conn.rx.len() - at >= 2 {
        let len = usize::from(u16::from_be_bytes([conn.rx[at], conn.rx[at + 1]]));
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an ICE-TCP frame longer than a datagram",
            ));
        }
        if conn.rx.len() - at < 2 + len {
            break;
        }
        conn.last_rx = now;
        core.handle_tcp_frame(now, conn.peer, &conn.rx[at + 2..at + 2 + len]);
        at += 2 + len;
    }
    conn.rx.drain(..at);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    /// A shard core and its ICE-TCP side on loopback, and a client connected to it.
    struct Rig {
        poll: Poll,
        tcp: TcpMedia,
        core: ShardCore,
        client: std::net::TcpStream,
    }

    impl Rig {
        fn new() -> Rig {
            let poll = Poll::new().unwrap();
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.local_addr().unwrap();
            let tcp = TcpMedia::new(listener, poll.registry()).unwrap();
            let mut core = ShardCore::new(0, 1, "127.0.0.1:9".parse().unwrap(), Instant::now());
            core.set_tcp_addr(addr);
            let client = std::net::TcpStream::connect(addr).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut rig = Rig {
                poll,
                tcp,
                core,
                client,
            };
            rig.turn();
            assert_eq!(rig.tcp.len(), 1, "accepted");
            rig
        }

        /// One poll's worth of readiness handled.
        fn turn(&mut self) {
            let mut events = Events::with_capacity(16);
            for _ in 0..20 {
                self.poll
                    .poll(&mut events, Some(Duration::from_millis(20)))
                    .unwrap();
                for e in events.iter() {
                    let readable = e.is_readable() || e.is_read_closed();
                    self.tcp.ready(
                        self.poll.registry(),
                        e.token(),
                        readable,
                        e.is_writable(),
                        &mut self.core,
                    );
                }
                if !events.is_empty() {
                    return;
                }
            }
        }
    }

    #[test]
    fn frames_reach_the_core_and_output_goes_back_framed() {
        let mut rig = Rig::new();
        // Two frames in one write, the second split across writes.
        let mut bytes = vec![0, 3, 1, 2, 3, 0, 4, 9];
        rig.client.write_all(&bytes).unwrap();
        rig.turn();
        bytes = vec![9, 9, 9];
        rig.client.write_all(&bytes).unwrap();
        rig.turn();
        // From an address no peer has: each frame is counted and dropped without state.
        assert_eq!(rig.core.stats.rx_datagrams, 2);
        assert_eq!(rig.core.stats.rx_dropped, 2);
        // Output for the connection's address goes out framed.
        let peer = rig.client.local_addr().unwrap();
        let mut out = vec![Datagram {
            to: peer,
            data: vec![7; 5],
        }];
        let registry = rig.poll.registry();
        rig.tcp.send(registry, &mut out, &mut rig.core);
        let mut got = [0u8; 7];
        rig.client.read_exact(&mut got).unwrap();
        assert_eq!(got, [0, 5, 7, 7, 7, 7, 7]);
        // For an address with no connection: dropped and counted.
        let mut out = vec![Datagram {
            to: "127.0.0.1:1".parse().unwrap(),
            data: vec![1],
        }];
        rig.tcp.send(rig.poll.registry(), &mut out, &mut rig.core);
        assert_eq!(rig.core.stats.tx_dropped, 1);
    }

    #[test]
    fn a_frame_longer_than_a_datagram_ends_the_connection() {
        let mut rig = Rig::new();
        let mut bytes = vec![0x06, 0x00]; // 1536 bytes announced
        bytes.extend(vec![0u8; 1536]);
        rig.client.write_all(&bytes).unwrap();
        rig.turn();
        assert_eq!(rig.tcp.len(), 0);
        let mut buf = [0u8; 1];
        assert!(
            matches!(rig.client.read(&mut buf), Ok(0) | Err(_)),
            "closed"
        );
        assert_eq!(rig.core.stats.rx_datagrams, 0);
    }
}
