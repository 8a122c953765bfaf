//! https and wss: the page, the probes and a call over TLS with a self-signed certificate;
//! plain http on the same port is redirected; a certificate replaced on disk and reloaded
//! reaches new connections while calls already running go on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use signaling::app::AppConfig;
use signaling::server::{ServerConfig, start};
use signaling::tls::TlsFiles;
use signaling::transport::Limits;

use crate::support::{Pair, Scene};

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
struct TestCert {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl TestCert {
    fn new() -> TestCert {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(names).expect("a certificate");
        TestCert {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: signing_key.serialize_pem(),
        }
    }

    fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }

    /// A client that trusts this certificate only.
    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peer-calls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An https GET with a client trusting `config`; the response and the certificate the
/// server presented.
fn https_get(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path: &str,
) -> (String, CertificateDer<'static>) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config, name).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let presented = tls.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    (String::from_utf8_lossy(&out).into_owned(), presented)
}

fn plain_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: calls.example:8443\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_call_over_wss_and_a_renewed_certificate_without_a_dropped_call() {
    let dir = temp_dir("tls");
    let first = TestCert::new();
    let (cert, key) = first.write(&dir);
    let tls = TlsFiles::load(&cert, &key).expect("the certificate loads");
    let server = start(ServerConfig {
        tls: Some(Arc::clone(&tls)),
        ..crate::support::config(2, AppConfig::default(), Limits::default())
    })
    .expect("server starts");
    let addr = server.http_addr;

    // The page and the probes over https.
    let (page, presented) = https_get(addr, first.client_config(), "/call/secure");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("text/html"), "{page}");
    assert_eq!(presented, first.der);
    let (health, _) = https_get(addr, first.client_config(), "/health");
    assert!(health.ends_with("ok"), "{health}");

    // Plain http on the TLS port: a clear redirect, not garbage.
    let plain = plain_get(addr, "/call/secure?x=1");
    assert!(plain.starts_with("HTTP/1.1 308"), "{plain}");
    assert!(
        plain.contains("\r\nLocation: https://calls.example:8443/call/secure?x=1\r\n"),
        "{plain}"
    );

    // A call over wss: media decodes both ways through the server.
    let wss = client::Server {
        tls: Some(("localhost".into(), first.client_config())),
        ..client::Server::from(addr)
    };
    let mut scene = Scene::default();
    scene.pairs.push(Pair::start_at(&wss, "secure", "alice"));
    scene.pump_until(Duration::from_secs(10), "media over wss", |s| {
        s.pairs[0].received.len() >= 20
    });

    // The certificate is renewed on disk and reloaded (what SIGHUP does): new
    // connections get it, the call already running goes on.
    let second = TestCert::new();
    second.write(&dir);
    tls.reload().expect("the new certificate loads");
    let (_, presented) = https_get(addr, second.client_config(), "/health");
    assert_eq!(
        presented, second.der,
        "a new connection gets the new certificate"
    );
    scene.pump(Duration::from_millis(500));
    for p in &mut scene.pairs {
        // Its WebSocket (with the old certificate) still works: pings are answered.
        p.publisher.send(&protocol::ClientMessage::Ping).unwrap();
    }
    scene.assert_bystanders_unbroken("across the certificate reload");

    // A broken file on reload: the certificate in use stays.
    std::fs::write(dir.join("cert.pem"), "not a certificate").unwrap();
    let e = tls.reload().unwrap_err().to_string();
    assert!(e.contains("cert.pem"), "{e}");
    let (_, presented) = https_get(addr, second.client_config(), "/health");
    assert_eq!(presented, second.der);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_key_that_does_not_match_or_a_missing_file_is_a_clear_error() {
    let dir = temp_dir("tls-bad");
    let (a, b) = (TestCert::new(), TestCert::new());
    let (cert, _) = a.write(&dir);
    let other_key = dir.join("other-key.pem");
    std::fs::write(&other_key, &b.key_pem).unwrap();
    let e = TlsFiles::load(&cert, &other_key).unwrap_err().to_string();
    assert!(e.contains("cannot be used together"), "{e}");
    let e = TlsFiles::load(&dir.join("missing.pem"), &other_key)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing.pem") && e.contains("cannot read"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_binary_serves_https_and_reloads_its_certificate_on_sighup() {
    let dir = temp_dir("tls-binary");
    let first = TestCert::new();
    let (cert, key) = first.write(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_peer-calls"))
        .args([
            "--bind",
            &addr.to_string(),
            "--udp-port",
            "0",
            "--shards",
            "1",
        ])
        .args([
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, presented) = https_get(addr, first.client_config(), "/health");
    assert_eq!(presented, first.der);
    let second = TestCert::new();
    second.write(&dir);
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The reload happens on the signal thread: wait for a new connection to see it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let config = second.client_config();
        let tcp = TcpStream::connect(addr).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = StreamOwned::new(ClientConnection::new(config, name).unwrap(), tcp);
        if write!(
            tls,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .is_ok()
        {
            break; // the handshake verified the second certificate
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP does not stop the server"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
