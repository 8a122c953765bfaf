//! A client whose DTLS certificate is RSA, as GStreamer's webrtcbin before 1.28 makes by
//! default, played by the real `openssl s_client`: the test does the signalling and the
//! ICE check (a STUN binding request from the port OpenSSL then binds), OpenSSL does the
//! DTLS handshake with an RSA-2048 certificate. The server's DTLS (dimpl) takes ECDSA
//! certificates only: the handshake fails, and the client is told why in words.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engine::shard::Liveness;
use protocol::{ErrorCode, ServerMessage};
use signaling::app::AppConfig;
use signaling::server::start;
use signaling::transport::Limits;

use crate::support::{Got, Ws, config};

const CLIENT_UFRAG: &str = "gstu";
const CLIENT_PWD: &str = "gstpasswordgstpassword12";

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An RSA-2048 certificate and key in `dir`; its SHA-256 fingerprint as SDP writes it.
fn rsa_certificate(dir: &Path) -> String {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=gst",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    let fp = openssl(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    fp.trim()
        .split_once('=')
        .expect("a fingerprint")
        .1
        .to_string()
}

fn offer(fingerprint: &str) -> String {
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS gst",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        &format!("a=ice-ufrag:{CLIENT_UFRAG}"),
        &format!("a=ice-pwd:{CLIENT_PWD}"),
        &format!("a=fingerprint:sha-256 {fingerprint}"),
        "a=setup:actpass",
        "a=mid:0",
        "a=sendonly",
        "a=msid:gst gst-audio",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=ssrc:1001 cname:gst",
        "",
    ]
    .join("\r\n")
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A STUN Binding Request as a controlling ICE agent nominating the pair (RFC 8445).
fn binding_request(server_ufrag: &str, server_pwd: &str) -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(b"rsa-dtls-txn");
    let attr = |m: &mut Vec<u8>, kind: u16, value: &[u8]| {
        m.extend_from_slice(&kind.to_be_bytes());
        m.extend_from_slice(&(value.len() as u16).to_be_bytes());
        m.extend_from_slice(value);
        while !m.len().is_multiple_of(4) {
            m.push(0);
        }
    };
    let set_len = |m: &mut Vec<u8>, extra: usize| {
        let len = (m.len() - 20 + extra) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
    };
    attr(
        &mut m,
        0x0006,
        format!("{server_ufrag}:{CLIENT_UFRAG}").as_bytes(),
    );
    attr(&mut m, 0x0024, &0x6e7f_1eff_u32.to_be_bytes());
    attr(&mut m, 0x802a, &7u64.to_be_bytes());
    attr(&mut m, 0x0025, &[]);
    set_len(&mut m, 24);
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        server_pwd.as_bytes(),
    );
    let tag = aws_lc_rs::hmac::sign(&key, &m);
    attr(&mut m, 0x0008, tag.as_ref());
    set_len(&mut m, 8);
    let crc = crc32(&m) ^ 0x5354_554e;
    attr(&mut m, 0x8028, &crc.to_be_bytes());
    m
}

fn sdp_attr(sdp: &str, name: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix(&format!("a={name}:")))
        .unwrap_or_else(|| panic!("no a={name} in {sdp}"))
        .trim()
        .to_string()
}

#[test]
fn a_client_with_an_rsa_dtls_certificate_is_told_why_it_cannot_connect() {
    let dir = std::env::temp_dir().join(format!("peer-calls-rsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fingerprint = rsa_certificate(&dir);
    let mut cfg = config(1, AppConfig::default(), Limits::default());
    cfg.engine.liveness = Liveness {
        connect_timeout: Duration::from_secs(4),
        ..Liveness::default()
    };
    let server = start(cfg).expect("server starts");
    let mut ws = Ws::connect(server.http_addr);
    ws.send(r#"{"type":"join","room":"gst","nickname":"gst"}"#);
    ws.send(&serde_json::json!({"type": "offer", "sdp": offer(&fingerprint)}).to_string());
    let deadline = Instant::now() + Duration::from_secs(5);
    let answer = loop {
        ws.poll();
        if let Some(sdp) = ws.got.iter().find_map(|g| match g {
            Got::Msg(ServerMessage::Answer { sdp }) => Some(sdp.clone()),
            _ => None,
        }) {
            break sdp;
        }
        assert!(Instant::now() < deadline, "no answer: {:?}", ws.got);
        std::thread::sleep(Duration::from_millis(10));
    };
    let candidate = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=candidate:"))
        .expect("a candidate");
    let f: Vec<&str> = candidate.split(' ').collect();
    let media: SocketAddr = format!("{}:{}", f[4], f[5]).parse().unwrap();
    // ICE: a nominating binding request, from the port OpenSSL will use.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = udp.local_addr().unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let request = binding_request(
        &sdp_attr(&answer, "ice-ufrag"),
        &sdp_attr(&answer, "ice-pwd"),
    );
    udp.send_to(&request, media).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = udp.recv_from(&mut buf).expect("a binding response");
    assert_eq!(
        &buf[..2],
        &[0x01, 0x01],
        "not a binding success: {:?}",
        &buf[..n]
    );
    drop(udp);
    // DTLS with the RSA certificate.
    let out = Command::new("timeout")
        .args([
            "10",
            "openssl",
            "s_client",
            "-dtls1_2",
            "-quiet",
            "-no_ign_eof",
        ])
        .args(["-bind", &local.to_string(), "-connect", &media.to_string()])
        .args(["-cert", dir.join("cert.pem").to_str().unwrap()])
        .args(["-key", dir.join("key.pem").to_str().unwrap()])
        .args(["-use_srtp", "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client runs");
    let dtls = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the handshake succeeded: {dtls}");
    // The session ends, and the client reads why.
    let deadline = Instant::now() + Duration::from_secs(15);
    let reason = loop {
        ws.poll();
        if let Some(reason) = ws.got.iter().find_map(|g| match g {
            Got::Msg(ServerMessage::Error {
                code: ErrorCode::MediaEnded,
                reason,
                ..
            }) => Some(reason.clone()),
            _ => None,
        }) {
            break reason;
        }
        assert!(
            Instant::now() < deadline,
            "never ended: {:?}\nopenssl: {dtls}",
            ws.got
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("openssl: {dtls}\nreason: {reason}");
    assert!(reason.contains("ECDSA"), "{reason}\nopenssl: {dtls}");
}
