//! `--auth jwt` through the real server and the str0m client: each grant allowed and
//! denied, each bad token refused with its reason, a publisher without the grant has its
//! tracks refused while the rest of its session works, and `peer-calls token` mints
//! tokens the server takes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use client::{ClientError, Connection, LocalTrack, PeerEvent, SessionEvent};
use protocol::{ClientMessage, ErrorCode, Kind, ServerMessage, TrackRef};
use signaling::app::AppConfig;
use signaling::server::RunningServer;
use signaling::transport::Limits;
use str0m::format::Codec;
use str0m::media::MediaKind;

use crate::support::{BIN, LOCALHOST, server};

const SECRET: &[u8] = b"the permissions test's secret, 32+ bytes";

pub fn jwt_server() -> RunningServer {
    let mut keys = auth::JwtKeys::default();
    keys.add_secret(None, SECRET).unwrap();
    server(
        1,
        AppConfig {
            auth: auth::Provider::Jwt(keys),
            ..AppConfig::default()
        },
        Limits::default(),
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token for `room`, named `name`, with these grants over roomJoin and roomCreate.
pub fn token(room: &str, name: &str, grants: serde_json::Value) -> String {
    let mut video = serde_json::json!({"room": room, "roomJoin": true, "roomCreate": true});
    for (k, v) in grants.as_object().unwrap() {
        video[k] = v.clone();
    }
    let claims = auth::Claims {
        exp: now() + 600,
        nbf: None,
        name: Some(name.into()),
        video: serde_json::from_value(video).unwrap(),
    };
    auth::mint(SECRET, None, &claims).unwrap()
}

pub fn refused(r: Result<Connection, ClientError>) -> (ErrorCode, String) {
    match r {
        Err(ClientError::Refused(code, reason)) => (code, reason),
        Err(e) => panic!("refused otherwise: {e}"),
        Ok(_) => panic!("admitted"),
    }
}

pub fn video(name: &str) -> LocalTrack {
    LocalTrack {
        stream_id: name.into(),
        track_id: format!("{name}-video"),
        kind: MediaKind::Video,
    }
}

#[test]
fn without_a_good_token_nobody_joins_and_each_refusal_says_why() {
    let s = jwt_server();
    let at = s.http_addr;
    let (code, reason) = refused(Connection::join(at, "r", "x", LOCALHOST));
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(reason.contains("access token only"), "{reason}");
    let other = token("elsewhere", "Ada", serde_json::json!({}));
    let (_, reason) = refused(Connection::join_with_access_token(
        at, "r", "x", LOCALHOST, &other,
    ));
    assert!(reason.contains("for room elsewhere, not r"), "{reason}");
    let expired = auth::mint(
        SECRET,
        None,
        &auth::Claims {
            exp: now() - 5,
            nbf: None,
            name: None,
            video: serde_json::from_value(
                serde_json::json!({"roomJoin": true, "roomCreate": true}),
            )
            .unwrap(),
        },
    )
    .unwrap();
    let (_, reason) = refused(Connection::join_with_access_token(
        at, "r", "x", LOCALHOST, &expired,
    ));
    assert!(reason.contains("expired"), "{reason}");
    let forged = auth::mint(
        b"not the server's secret but 32+ bytes long",
        None,
        &auth::Claims {
            exp: now() + 60,
            nbf: None,
            name: None,
            video: auth::Grants::open(),
        },
    )
    .unwrap();
    let (_, reason) = refused(Connection::join_with_access_token(
        at, "r", "x", LOCALHOST, &forged,
    ));
    assert!(reason.contains("signature"), "{reason}");
    // Only roomJoin: may not start the room, may join it once it has someone.
    let join_only = token("r", "Bo", serde_json::json!({"roomCreate": false}));
    let (_, reason) = refused(Connection::join_with_access_token(
        at, "r", "Bo", LOCALHOST, &join_only,
    ));
    assert!(reason.contains("roomCreate"), "{reason}");
    let first = token("r", "Ada", serde_json::json!({}));
    let ada = Connection::join_with_access_token(at, "r", "chosen by the page", LOCALHOST, &first)
        .expect("a good token joins");
    let bo = Connection::join_with_access_token(at, "r", "Bo", LOCALHOST, &join_only)
        .expect("roomJoin joins a room with someone in it");
    assert!(
        bo.peers().iter().any(|p| p.nickname == "Ada"),
        "the token's name is the nickname: {:?}",
        bo.peers()
    );
    drop(ada);
}

#[test]
fn a_viewer_without_publish_data_or_subscribe_grants_is_held_to_them_and_the_rest_works() {
    let s = jwt_server();
    let at = s.http_addr;
    let mut alice = Connection::join_with_access_token(
        at,
        "webinar",
        "alice",
        LOCALHOST,
        &token("webinar", "alice", serde_json::json!({})),
    )
    .unwrap();
    alice.start_media(&[video("alice")]).unwrap();
    // The viewer's client offers a camera anyway (a hostile or careless client).
    let viewer_grants = serde_json::json!({"canPublish": false, "canPublishData": false});
    let mut viewer = Connection::join_with_access_token(
        at,
        "webinar",
        "viewer",
        LOCALHOST,
        &token("webinar", "viewer", viewer_grants),
    )
    .unwrap();
    viewer.start_media(&[video("viewer")]).unwrap();
    let alice_video = TrackRef::new("alice", "alice-video", Kind::Video);
    let (mut forbidden, mut subscribed, mut got) = (Vec::new(), false, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut asked = false;
    let mut round = 0u32;
    while got < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "viewer: forbidden {forbidden:?}, subscribed {subscribed}, got {got}"
        );
        for c in [&mut alice, &mut viewer] {
            c.poll(Duration::from_millis(2)).unwrap();
        }
        while let Some(e) = alice.next_event() {
            if let SessionEvent::Server(ServerMessage::TrackPublished { track }) = e {
                assert_ne!(
                    track.peer_id,
                    viewer.peer_id(),
                    "the viewer's camera is never announced"
                );
            }
        }
        while let Some(e) = viewer.next_event() {
            match e {
                SessionEvent::Server(ServerMessage::Error { code, reason, .. }) => {
                    assert_eq!(code, ErrorCode::Forbidden, "{reason}");
                    forbidden.push(reason);
                }
                SessionEvent::Server(ServerMessage::Subscribed { .. }) => subscribed = true,
                SessionEvent::Peer(PeerEvent::Rtp(_)) => got += 1,
                _ => {}
            }
        }
        if !asked && viewer.tracks().iter().any(|t| t.track == alice_video) {
            viewer.subscribe(vec![alice_video.clone()]).unwrap();
            viewer
                .send(&ClientMessage::Message {
                    data: serde_json::json!("hello?"),
                    to: None,
                })
                .unwrap();
            asked = true;
        }
        round += 1;
        if round.is_multiple_of(20) {
            let p = alice.peer();
            if let Some(mid) = p.mid_of("alice", "alice-video") {
                let mut payload = vec![0u8; 100];
                payload[..4].copy_from_slice(&testkit::KEYFRAME_START);
                let _ = p.send_rtp(
                    std::time::Instant::now(),
                    mid,
                    Codec::Vp8,
                    round * 90,
                    true,
                    &payload,
                );
            }
        }
    }
    assert!(subscribed, "the viewer receives alice");
    assert!(
        forbidden
            .iter()
            .any(|r| r.contains("Camera") && r.contains("canPublish")),
        "its camera was refused: {forbidden:?}"
    );
    assert!(
        forbidden.iter().any(|r| r.contains("canPublishData")),
        "its chat was refused: {forbidden:?}"
    );

    // A member without canSubscribe cannot receive.
    let mut deaf = Connection::join_with_access_token(
        at,
        "webinar",
        "deaf",
        LOCALHOST,
        &token(
            "webinar",
            "deaf",
            serde_json::json!({"canSubscribe": false}),
        ),
    )
    .unwrap();
    deaf.start_media(&[]).unwrap();
    let ok = deaf
        .wait_for(Duration::from_secs(10), |e| {
            matches!(e, SessionEvent::Peer(PeerEvent::Connected))
        })
        .unwrap();
    assert!(ok);
    deaf.subscribe(vec![alice_video]).unwrap();
    let refused = deaf
        .wait_for(Duration::from_secs(5), |e| {
            matches!(e, SessionEvent::Server(ServerMessage::Error { code: ErrorCode::Forbidden, reason, .. }) if reason.contains("canSubscribe"))
        })
        .unwrap();
    assert!(refused, "subscribing without canSubscribe is refused");
}

#[test]
fn peer_calls_token_mints_what_the_server_takes() {
    let out = std::process::Command::new(BIN)
        .args([
            "token",
            "--room",
            "minted",
            "--name",
            "Cy",
            "--grant",
            "canPublish=false",
            "--ttl",
            "10m",
        ])
        .env("PEERCALLS_JWT_SECRET", std::str::from_utf8(SECRET).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let minted = text.lines().last().unwrap();
    let s = jwt_server();
    let c =
        Connection::join_with_access_token(s.http_addr, "minted", "whatever", LOCALHOST, minted)
            .expect("the minted token joins");
    assert!(!c.peer_id().is_empty());
    let bad = std::process::Command::new(BIN)
        .args(["token", "--room", "r", "--grant", "canFly=true"])
        .env("PEERCALLS_JWT_SECRET", std::str::from_utf8(SECRET).unwrap())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a grant"));
}

/// An identity service signs with its private key (ES256); the binary, given the public
/// key as a JWKS file (`--jwt-keys`), admits its tokens and refuses an HS256 token that
/// names the same key.
#[test]
fn the_binary_admits_an_es256_token_of_its_jwks_file() {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use data_encoding::BASE64URL_NOPAD;
    use std::process::{Command, Stdio};

    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref(); // 0x04 || X || Y
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "idp-2026",
        "x": BASE64URL_NOPAD.encode(&public[1..33]),
        "y": BASE64URL_NOPAD.encode(&public[33..65]),
    }]});
    let dir = std::env::temp_dir().join(format!("peercalls-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(&file, jwks.to_string()).unwrap();

    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", crate::support::free_port())
        .parse()
        .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--bind",
            &addr.to_string(),
            "--udp-port",
            "0",
            "--shards",
            "1",
        ])
        .args(["--auth", "jwt", "--jwt-keys"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_healthy(addr, &mut child);

    let claims = serde_json::json!({
        "exp": now() + 600, "name": "Ada",
        "video": {"room": "idp", "roomJoin": true, "roomCreate": true},
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("idp-2026".into());
    let key = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
    let es256 = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let ada = Connection::join_with_access_token(addr, "idp", "x", LOCALHOST, &es256);
    let outcome = ada.as_ref().map(|c| c.nickname().to_owned());
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some("idp-2026".into());
    let forged = jsonwebtoken::encode(
        &hs,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"guessing that the public key is a secret")
            .unwrap(),
    )
    .unwrap();
    let refusal = refused(Connection::join_with_access_token(
        addr, "idp", "y", LOCALHOST, &forged,
    ));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        outcome.as_deref().ok(),
        Some("Ada"),
        "the ES256 token joins: {outcome:?}"
    );
    assert!(refusal.1.contains("its key is for ES256"), "{refusal:?}");
}

/// `hidden`: a member the room is not told of (a recorder, a support engineer); and
/// `canPublishSources`: a member who may speak but not show video has its camera refused
/// and its microphone forwarded.
#[test]
fn a_hidden_member_is_not_announced_and_publish_sources_are_held_per_source() {
    let s = jwt_server();
    let at = s.http_addr;
    let mut ada = Connection::join_with_access_token(
        at,
        "h",
        "a",
        LOCALHOST,
        &token("h", "Ada", serde_json::json!({})),
    )
    .unwrap();
    let ghost = Connection::join_with_access_token(
        at,
        "h",
        "g",
        LOCALHOST,
        &token("h", "Ghost", serde_json::json!({"hidden": true})),
    )
    .unwrap();
    assert!(
        ghost.peers().iter().any(|p| p.nickname == "Ada"),
        "the hidden member sees the room"
    );
    let voice_only = serde_json::json!({"canPublishSources": ["microphone"]});
    let mut bo =
        Connection::join_with_access_token(at, "h", "b", LOCALHOST, &token("h", "Bo", voice_only))
            .unwrap();
    assert!(
        bo.peers().iter().all(|p| p.nickname != "Ghost"),
        "a newcomer is not told of the hidden member: {:?}",
        bo.peers()
    );
    let bo_id = bo.peer_id().to_owned();
    bo.start_media(&[
        video("bo"),
        LocalTrack {
            stream_id: "bo".into(),
            track_id: "bo-audio".into(),
            kind: MediaKind::Audio,
        },
    ])
    .unwrap();
    let (mut camera_refused, mut mic_published, mut ghost_announced) = (false, false, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(camera_refused && mic_published) && std::time::Instant::now() < deadline {
        for c in [&mut ada, &mut bo] {
            c.poll(Duration::from_millis(2)).unwrap();
        }
        while let Some(e) = ada.next_event() {
            match e {
                SessionEvent::Server(ServerMessage::PeerJoined { peer })
                    if peer.nickname == "Ghost" =>
                {
                    ghost_announced = true;
                }
                SessionEvent::Server(ServerMessage::TrackPublished { track })
                    if track.peer_id == bo_id =>
                {
                    assert_eq!(
                        track.track.kind,
                        Kind::Audio,
                        "only Bo's microphone is published"
                    );
                    mic_published = true;
                }
                _ => {}
            }
        }
        while let Some(e) = bo.next_event() {
            if let SessionEvent::Server(ServerMessage::Error {
                code: ErrorCode::Forbidden,
                reason,
                ..
            }) = e
            {
                assert!(reason.contains("Camera"), "{reason}");
                camera_refused = true;
            }
        }
    }
    assert!(
        camera_refused && mic_published,
        "camera refused {camera_refused}, microphone published {mic_published}"
    );
    assert!(!ghost_announced, "the hidden member was never announced");
    assert!(ada.peers().iter().all(|p| p.nickname != "Ghost"));
    drop(ghost);
}
