//! `--base-path` behind a real reverse proxy (Debian's nginx, started by the test): the
//! page and every link in it, the landing form, the WebSocket and a call, all through
//! the proxy under `/calls`; the probes answer at the root too.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use signaling::app::AppConfig;
use signaling::server::{ServerConfig, start};
use signaling::transport::Limits;

use crate::support::{Pair, Scene};

const BASE: &str = "/calls";

/// nginx forwarding `/calls/` (the path as it is) to the server, WebSocket upgrades
/// included; stopped when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Nginx {
    fn start(upstream: SocketAddr) -> Nginx {
        let found = Command::new("nginx")
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "nginx is not installed: scripts/test.sh installs it (scripts/setup.d/40-nginx.sh)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir = std::env::temp_dir().join(format!("peer-calls-nginx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen {addr};\n\
                 location {BASE}/ {{\n      proxy_pass http://{upstream};\n      proxy_http_version 1.1;\n\
                   proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection \"upgrade\";\n\
                   proxy_set_header Host $host;\n      proxy_read_timeout 60s;\n    }}\n  }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .args([
                "-c",
                conf_path.to_str().unwrap(),
                "-p",
                dir.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn request(addr: SocketAddr, text: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(text.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
}

/// Every `href`, `src` and `action` of a page.
fn links(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\"", "action=\""] {
        for (i, _) in page.match_indices(attr) {
            let rest = &page[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_owned());
            }
        }
    }
    out
}

#[test]
fn everything_is_served_under_the_base_path_through_nginx() {
    let server = start(ServerConfig {
        base_path: BASE.into(),
        ..crate::support::config(1, AppConfig::default(), Limits::default())
    })
    .expect("server starts");
    let nginx = Nginx::start(server.http_addr);
    let proxy = nginx.addr;

    // The page, through the proxy: every link it has is under the base and answers.
    let page = get(proxy, &format!("{BASE}/call/team"));
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(&format!(
        "<meta name=\"peer-calls-base\" content=\"{BASE}\">"
    )));
    let found = links(&page);
    let local: Vec<&String> = found.iter().filter(|l| l.starts_with('/')).collect();
    assert!(local.len() >= 4, "{found:?}");
    for link in local {
        assert!(
            link.starts_with(&format!("{BASE}/")),
            "{link} is under {BASE}"
        );
        if !link.ends_with("/call") {
            let r = get(proxy, link);
            assert!(r.starts_with("HTTP/1.1 200"), "{link}: {r}");
        }
    }
    // The landing form, through the proxy: a redirect under the base.
    let body = "call=team";
    let r = request(
        proxy,
        &format!(
            "POST {BASE}/call HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(
        r.contains(&format!("Location: {BASE}/call/team\r\n")),
        "{r}"
    );
    // Outside the base nothing is served, but the probes answer (directly, as a probe asks).
    assert!(get(server.http_addr, "/call/team").starts_with("HTTP/1.1 404"));
    assert!(get(server.http_addr, "/health").ends_with("ok"));

    // A call whose signalling goes through the proxy.
    let through = client::Server {
        base_path: BASE.into(),
        ..client::Server::from(proxy)
    };
    let mut scene = Scene::default();
    scene.pairs.push(Pair::start_at(&through, "team", "ann"));
    scene.pump_until(Duration::from_secs(10), "media", |s| {
        s.pairs[0].received.len() >= 20
    });
    scene.assert_bystanders_unbroken("through the proxy");
}
