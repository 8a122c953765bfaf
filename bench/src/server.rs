//! The server under test: either one the benchmark starts as its own process (the same
//! `peer-calls` binary, or `--server-bin`), so that its CPU and memory come from its own
//! process accounting, or a running one given by URL.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::anyhow;

/// How long a started server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A server process the benchmark started.
pub struct ServerProcess {
    child: Option<Child>,
    /// Its HTTP and WebSocket address.
    pub http: SocketAddr,
}

impl ServerProcess {
    /// Starts `bin serve` on a free loopback port with `shards` shards (media ports
    /// chosen by the system) and waits until it accepts connections.
    pub fn start(bin: &Path, shards: usize, max_room_size: usize) -> anyhow::Result<Self> {
        Self::start_with(bin, shards, max_room_size, &[])
    }

    /// [`ServerProcess::start`] with these environment variables too (a cluster's).
    pub fn start_with(
        bin: &Path,
        shards: usize,
        max_room_size: usize,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| anyhow!("no free port: {e}"))?
            .port();
        let http = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(bin)
            .args([
                "serve",
                "--bind",
                &http.to_string(),
                "--udp-port",
                "0",
                "--shards",
                &shards.to_string(),
                "--max-room-size",
                &max_room_size.max(100).to_string(),
            ])
            .env(
                "RUST_LOG",
                std::env::var("PEERCALLS_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| anyhow!("cannot start {}: {e}", bin.display()))?;
        let mut server = Self {
            child: Some(child),
            http,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&http, Duration::from_millis(200)).is_ok() {
                return Ok(server);
            }
            if let Some(Ok(Some(status))) = server.child.as_mut().map(|c| c.try_wait()) {
                return Err(anyhow!("the server exited at start: {status}"));
            }
            if Instant::now() > deadline {
                return Err(anyhow!("the server did not listen on {http} in time"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Stops it (SIGTERM, then SIGKILL after 5 s) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The HTTP address in a URL such as `http://127.0.0.1:3000` (or `host:port`).
pub fn parse_url(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .unwrap_or(url);
    if url.starts_with("https://") || url.starts_with("wss://") {
        return Err(anyhow!(
            "TLS is not supported; give the server's plain http:// address"
        ));
    }
    let hostport = rest.split('/').next().unwrap_or(rest);
    hostport
        .to_socket_addrs()
        .map_err(|e| anyhow!("bad server address {url:?}: {e}"))?
        .next()
        .ok_or_else(|| anyhow!("{url:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let a: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        assert_eq!(parse_url("http://127.0.0.1:3000").unwrap(), a);
        assert_eq!(parse_url("http://127.0.0.1:3000/call/x").unwrap(), a);
        assert_eq!(parse_url("127.0.0.1:3000").unwrap(), a);
        assert!(parse_url("https://127.0.0.1:3000").is_err());
    }
}
