//! A real `redis-server` for the tests of multi-node coordination (installed by
//! `./scripts/test.sh`), on a loopback port of its own, stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    /// On a free port.
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        RedisServer::on(port)
    }

    /// On `port` (to bring one back where it was), empty: nothing is saved.
    pub fn on(port: u16) -> RedisServer {
        RedisServer::listening(port, "127.0.0.1")
    }

    /// On a free port of loopback and of these addresses too (for nodes in network
    /// namespaces, which reach the host at its end of their veth pair).
    pub fn also_on(ips: &[std::net::IpAddr]) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut bind = String::from("127.0.0.1");
        for ip in ips {
            bind.push(' ');
            bind.push_str(&ip.to_string());
        }
        RedisServer::listening(port, &bind)
    }

    fn listening(port: u16, bind: &str) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--bind", bind, "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server; ./scripts/test.sh does)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        RedisServer { port, child }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its URL at `ip` (one of [`RedisServer::also_on`]'s addresses).
    pub fn url_at(&self, ip: std::net::IpAddr) -> String {
        format!("redis://{ip}:{}/", self.port)
    }

    /// Kills it (SIGKILL: nothing saved, nothing said); returns its port.
    pub fn kill(mut self) -> u16 {
        self.stop();
        self.port
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
