//! A connection's bytes: plain TCP, or TLS over the same non-blocking TCP socket. Reads
//! and writes follow the socket's rules either way: `WouldBlock` means try again on the
//! next readiness event, so the transport's loops (read until `WouldBlock`, edge
//! triggered) work unchanged over TLS.
//!
//! A TLS connection's handshake runs inside the first reads: each read first writes what
//! rustls has to send, then reads and processes TLS records until there is plaintext.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

/// The first byte of a TLS record carrying a handshake message (a ClientHello).
pub(crate) const TLS_HANDSHAKE: u8 = 0x16;

/// See the module docs.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS (rustls) over TCP.
    Tls(Box<TlsStream>),
}

/// A server-side TLS connection over a non-blocking socket.
#[derive(Debug)]
pub(crate) struct TlsStream {
    conn: ServerConnection,
    tcp: TcpStream,
}

impl Stream {
    /// Turns a plain connection into a TLS one whose first bytes (`received`, a
    /// ClientHello's start) were already read from the socket.
    pub(crate) fn start_tls(
        tcp: TcpStream,
        config: Arc<ServerConfig>,
        received: &[u8],
    ) -> io::Result<Stream> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = TlsStream { conn, tcp };
        let mut received = received;
        while !received.is_empty() {
            tls.conn.read_tls(&mut received)?;
            tls.process()?;
        }
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// The TCP socket (for registration with the poll).
    pub(crate) fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &mut tls.tcp,
        }
    }

    /// Stops sending: a TLS close_notify first, then a FIN after the bytes already
    /// written. Errors are of no interest: the connection is being closed anyway.
    pub(crate) fn shutdown_write(&mut self) {
        if let Stream::Tls(tls) = self {
            tls.conn.send_close_notify();
            let _ = tls.write_pending();
        }
        let _ = self.tcp_mut().shutdown(Shutdown::Write);
    }
}

impl TlsStream {
    /// Processes the TLS records read so far; a protocol error is sent to the peer as an
    /// alert (best effort) and ends the connection.
    fn process(&mut self) -> io::Result<()> {
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.write_pending();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(())
    }

    /// Writes the TLS records rustls has queued. `WouldBlock` when the socket takes no
    /// more.
    fn write_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // Handshake replies and alerts go out before waiting for more input.
            match self.write_pending() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.conn.read_tls(&mut self.tcp)? == 0 {
                // The peer closed TCP; what rustls holds decides between a clean end
                // (after close_notify) and a truncated one.
                self.process()?;
                return match self.conn.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    other => other,
                };
            }
            self.process()?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        match self.write_pending() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => {}
            Err(e) => return Err(e),
        }
        if n == 0 && !buf.is_empty() {
            // rustls's buffer is full and the socket takes nothing: try again later.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.writer().flush()?;
        self.write_pending()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}
