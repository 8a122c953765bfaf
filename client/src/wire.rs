//! Where a client finds the server's signalling, and the stream it talks over: plain TCP,
//! or TLS (rustls) for a server with a certificate (`wss://`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// The server: its address, the path it serves under, and TLS.
#[derive(Debug, Clone)]
pub struct Server {
    /// Its HTTP address.
    pub addr: SocketAddr,
    /// The path it serves everything under (its `--base-path`), "" for the root.
    pub base_path: String,
    /// `Some` for a server with a certificate: the name it is checked against (a DNS
    /// name or an IP address) and the client's TLS configuration (its trusted roots).
    pub tls: Option<(String, Arc<ClientConfig>)>,
}

impl Server {
    /// A plain `http://host:port[/base]` address as a node names itself; `None` for
    /// anything else (TLS needs the caller's trust settings).
    pub fn from_url(url: &str) -> Option<Server> {
        let rest = url.strip_prefix("http://")?;
        let (host, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        Some(Server {
            addr: std::net::ToSocketAddrs::to_socket_addrs(host)
                .ok()?
                .next()?,
            base_path: base.to_owned(),
            tls: None,
        })
    }
}

impl From<SocketAddr> for Server {
    fn from(addr: SocketAddr) -> Self {
        Server {
            addr,
            base_path: String::new(),
            tls: None,
        }
    }
}

impl Server {
    /// The WebSocket URL.
    pub(crate) fn ws_url(&self) -> String {
        let (scheme, host) = match &self.tls {
            Some((name, _)) => ("wss", format!("{name}:{}", self.addr.port())),
            None => ("ws", self.addr.to_string()),
        };
        format!("{scheme}://{host}{}/ws", self.base_path)
    }

    /// A connected stream, with TLS when the server has it (the handshake happens on
    /// first use, inside the WebSocket handshake).
    pub(crate) fn connect(&self, timeout: std::time::Duration) -> io::Result<Wire> {
        let tcp = TcpStream::connect_timeout(&self.addr, timeout)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(timeout))?;
        let Some((name, config)) = &self.tls else {
            return Ok(Wire::Plain(tcp));
        };
        let name = ServerName::try_from(name.clone()).map_err(io::Error::other)?;
        let conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
        Ok(Wire::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }
}

/// A client's stream to the server.
#[derive(Debug)]
pub enum Wire {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Wire {
    /// Switches the socket to non-blocking (after the WebSocket handshake).
    pub(crate) fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Wire::Plain(tcp) => tcp.set_nonblocking(true),
            Wire::Tls(tls) => tls.sock.set_nonblocking(true),
        }
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(tcp) => tcp.read(buf),
            Wire::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(tcp) => tcp.write(buf),
            Wire::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Plain(tcp) => tcp.flush(),
            Wire::Tls(tls) => tls.flush(),
        }
    }
}
