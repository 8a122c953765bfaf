//! Cases 1–18 of `docs/bad-inputs.md` against the real server on loopback: a
//! hostile peer (with the SRTP keys of its own session, so that malformed RTP and RTCP
//! arrive *inside* valid SRTP) and raw UDP sockets send what no browser sends, while
//! bystanders in another room and in the attacked room must keep receiving every packet.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::support::{
    Got, Hostile, LOCALHOST, Observer, Pair, Scene, peers_and_flows, server, stats,
};
use fuzz_targets::forge::{StunFlaws, rtp, stun_binding_request};
use fuzz_targets::rtp_datagram;
use protocol::{Kind, ServerMessage, TrackRef};
use signaling::app::AppConfig;
use signaling::server::RunningServer;
use signaling::transport::Limits;
use str0m::format::Codec;

/// Two shards; bystanders in room `calm` and in room `attacked`; the hostile peer `evil`
/// in `attacked`, publishing video and audio; an observer subscribed to evil's video.
fn attacked() -> (RunningServer, Scene) {
    let server = server(2, AppConfig::default(), Limits::default());
    let mut scene = Scene::default();
    scene.pairs.push(Pair::start(&server, "calm", "calm"));
    scene.pairs.push(Pair::start(&server, "attacked", "near"));
    Hostile::join(&mut scene, server.http_addr, "attacked", "evil");
    let evil_video = TrackRef::new("evil", "evil-video", Kind::Video);
    scene
        .observers
        .push(Observer::join(&server, "attacked", evil_video));
    scene.pump_until(Duration::from_secs(10), "the observer subscribes", |s| {
        s.observers[0].subscribed
    });
    scene.pump(Duration::from_millis(300));
    (server, scene)
}

/// The hostile peer's video SSRC, its RTX SSRC, and the VP8 and RTX payload types.
fn evil_stream(scene: &mut Scene) -> (u32, u32, u8, u8) {
    let h = &mut scene.hostiles[0];
    let mid = h.peer.mid_of("evil-video").expect("a video m-line");
    let (ssrc, rtx) = h.peer.ssrcs(mid).expect("a stream");
    let (pt, rtx_pt) = h.peer.payload_type(Codec::Vp8).expect("VP8");
    (
        *ssrc,
        *rtx.expect("an RTX stream"),
        pt,
        rtx_pt.expect("an RTX payload type"),
    )
}

/// Sends forged, correctly protected RTP packets from the hostile peer.
fn send_forged(scene: &mut Scene, packets: &[Vec<u8>]) {
    let h = &scene.hostiles[0];
    let mut forge = h.forge();
    for p in packets {
        h.send_raw(&rtp_datagram(&mut forge, p));
    }
}

/// The hostile peer's session is still up: no `media_ended`, no close.
fn assert_hostile_alive(scene: &Scene) {
    let h = &scene.hostiles[0];
    assert!(h.peer.is_connected());
    assert!(!h.ws.is_closed(), "the hostile peer's socket stays open");
}

fn wait_counters(scene: &mut Scene) {
    // Shards publish their counters every 500 ms.
    scene.pump(Duration::from_millis(700));
}

#[test]
fn case_01_02_03_07_14_broken_framing_is_dropped_and_counted() {
    let (server, mut scene) = attacked();
    let (ssrc, _, pt, _) = evil_stream(&mut scene);
    wait_counters(&mut scene);
    let before = stats(&server);
    let good = rtp(pt, 500, 3000, ssrc, true, b"framing");
    let mut bad: Vec<Vec<u8>> = Vec::new();
    // 1: shorter than 12 bytes.
    bad.push(good[..8].to_vec());
    // 2: fifteen CSRCs in a packet that holds none.
    let mut p = good.clone();
    p[0] |= 0x0f;
    bad.push(p);
    // 3: a header extension whose length runs past the end.
    let mut p = good.clone();
    p[0] |= 0x10;
    p.splice(12..12, [0xbe, 0xde, 0x40, 0x00]);
    bad.push(p);
    // 14: an SRTP packet without room for a tag, and a short SRTCP one.
    bad.push(good[..14].to_vec());
    bad.push(vec![0x81, 201, 0, 1, 0, 0, 0, 1, 0x80, 0, 0, 1]);
    for _ in 0..5 {
        for b in &bad {
            scene.hostiles[0].send_raw(b);
        }
        scene.pump(Duration::from_millis(20));
    }
    // 1: version 3 (RFC 7983 classifies it as nothing the server speaks).
    scene.hostiles[0].send_raw(&[0xc0; 40]);
    // 7: larger than 1500 bytes.
    scene.hostiles[0].send_raw(&[0x80; 1600]);
    scene.pump_until(Duration::from_secs(3), "the counters", |_| {
        let now = stats(&server);
        now.rx_malformed >= before.rx_malformed + 25 && now.rx_dropped >= before.rx_dropped + 2
    });
    assert_eq!(
        stats(&server).rx_malformed,
        before.rx_malformed + 25,
        "every malformed datagram counted once"
    );
    assert!(
        !scene.observers[0]
            .payloads
            .iter()
            .any(|p| p.as_slice() == b"framing"),
        "nothing of it was forwarded"
    );
    assert_hostile_alive(&scene);
    scene.assert_bystanders_unbroken("broken framing");
    assert_eq!(stats(&server).peer_panics, 0);
}

#[test]
fn case_04_05_06_15_hostile_content_inside_srtp() {
    let (server, mut scene) = attacked();
    let (ssrc, rtx, pt, rtx_pt) = evil_stream(&mut scene);
    let mut seq = 100u16;
    let mut next = || {
        seq += 1;
        seq
    };
    let ok = |seq: u16| rtp(pt, seq, u32::from(seq) * 3000, ssrc, true, b"ok");
    // A keyframe's first packet opens the observers' video (they wait for one).
    let start = next();
    let mut packets = vec![rtp(
        pt,
        start,
        u32::from(start) * 3000,
        ssrc,
        true,
        &testkit::KEYFRAME_START,
    )];
    // 4: one-byte extension elements longer than their block, id 15, id 0; a two-byte
    // element running past its block.
    for elements in [[0x1f, 1, 2, 3], [0xf3, 1, 2, 3], [0x00, 0x31, 2, 3]] {
        let mut p = ok(next());
        p[0] |= 0x10;
        let mut ext = vec![0xbe, 0xde, 0, 1];
        ext.extend_from_slice(&elements);
        p.splice(12..12, ext);
        packets.push(p);
    }
    let mut p = ok(next());
    p[0] |= 0x10;
    p.splice(12..12, [0x10, 0x00, 0, 1, 3, 0xff, 1, 2]);
    packets.push(p);
    // 5: padding flag with pad length 0, longer than the payload, and an empty payload.
    for payload in [&b"pad\0"[..], &b"pad\xc8"[..], &[][..]] {
        let s = next();
        let mut p = rtp(pt, s, u32::from(s) * 3000, ssrc, true, payload);
        p[0] |= 0x20;
        packets.push(p);
    }
    // 6: RTX packets shorter than the 2-byte original sequence number.
    for payload in [&[7u8][..], &[][..]] {
        packets.push(rtp(rtx_pt, next(), 0, rtx, false, payload));
    }
    // A good packet after all of it.
    let last = next();
    packets.push(rtp(pt, last, 9, ssrc, true, b"after"));
    send_forged(&mut scene, &packets);
    scene.pump_until(Duration::from_secs(3), "the good packet", |s| {
        s.observers[0].count(b"after") == 1
    });
    // 5: a pad count longer than the payload, and a padding flag on an empty payload,
    // never reach a subscriber. (A pad count of 0 is invalid too, but str0m reads it as
    // "no padding" and the packet arrives with its last byte; see docs/fuzzing.md.)
    let forwarded = &scene.observers[0].payloads;
    assert_eq!(
        scene.observers[0].count(b"pad\xc8"),
        0,
        "a pad count past the payload is dropped"
    );
    assert!(
        !forwarded.iter().any(|p| p.is_empty()),
        "an empty padded payload is not forwarded"
    );
    // 15: the same packet replayed, and a packet from long ago, are dropped.
    let replay = rtp(pt, last + 1, 10, ssrc, true, b"replayed");
    // The sequence number of the first forged packet, long since received.
    let old = rtp(pt, 101, 11, ssrc, true, b"old");
    send_forged(&mut scene, &vec![replay; 20]);
    send_forged(&mut scene, &[old]);
    scene.pump(Duration::from_millis(500));
    assert_eq!(
        scene.observers[0].count(b"replayed"),
        1,
        "a replay is dropped"
    );
    assert_eq!(
        scene.observers[0].count(b"old"),
        0,
        "an old packet is dropped"
    );
    // SRTP with the wrong keys from the peer's own 5-tuple: dropped, session stays up.
    let mut wrong = vec![0x80, pt, 0x01, 0x00];
    wrong.extend_from_slice(&[0; 4]);
    wrong.extend_from_slice(&ssrc.to_be_bytes());
    wrong.extend_from_slice(b"wrong key, wrong tag......");
    scene.hostiles[0].send_raw(&wrong);
    scene.pump(Duration::from_millis(200));
    assert_hostile_alive(&scene);
    scene.assert_bystanders_unbroken("hostile RTP inside SRTP");
    assert_eq!(stats(&server).peer_panics, 0);
}

fn rtcp(count: u8, pt: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80 | (count & 0x1f), pt];
    p.extend_from_slice(&((body.len() / 4) as u16).to_be_bytes());
    p.extend_from_slice(body);
    p
}

#[test]
fn case_08_to_13_hostile_rtcp_is_bounded() {
    let (server, mut scene) = attacked();
    let (ssrc, ..) = evil_stream(&mut scene);
    let me = ssrc.to_be_bytes();
    // The server's streams toward the hostile peer do not exist yet (it subscribes to
    // nothing); any SSRC serves as the reported media source.
    let media = [0, 0, 0, 9];
    let mut compounds: Vec<Vec<u8>> = Vec::new();
    let rr = rtcp(0, 201, &me);
    // 8: a length of 0, a length past the datagram, a count that does not match.
    compounds.push([rr.clone(), vec![0x80, 202, 0, 0]].concat());
    compounds.push([rr.clone(), vec![0x80, 200, 0x7f, 0xff, 0, 0, 0, 1]].concat());
    compounds.push(rtcp(5, 201, &me));
    // 9: SDES items running past the end; more chunks than the count allows.
    compounds.push([rr.clone(), rtcp(1, 202, &[0, 0, 0, 1, 1, 200, b'a', b'b'])].concat());
    let chunks: Vec<u8> = (0..8u8).flat_map(|i| [0, 0, 0, i, 1, 2, b'x', 0]).collect();
    compounds.push([rr.clone(), rtcp(2, 202, &chunks)].concat());
    // 10: RR and SR with report count 31 and a short body.
    compounds.push(rtcp(31, 201, &[me, media].concat()));
    compounds.push(rtcp(31, 200, &[&me[..], &[0; 20]].concat()));
    // 11: TWCC with a huge status count and overflowing deltas.
    let twcc = [
        &me[..],
        &media,
        &[0x00, 0x01, 0xff, 0xff, 0x7f, 0xff, 0xff, 0x00],
        &[0xff; 8],
        &[0x7f, 0xff, 0x80, 0x00],
    ]
    .concat();
    compounds.push([rr.clone(), rtcp(15, 205, &twcc)].concat());
    // 13: REMB with the largest exponent and mantissa.
    let remb = [&me[..], &[0; 4], b"REMB", &[1, 0xff, 0xff, 0xff], &media].concat();
    compounds.push([rr.clone(), rtcp(15, 206, &remb)].concat());
    let mut forge = scene.hostiles[0].forge();
    for round in 0..10 {
        for c in &compounds {
            let d = forge.protect_rtcp(c).expect("a compound");
            scene.hostiles[0].send_raw(&d);
        }
        if round % 2 == 0 {
            scene.pump(Duration::from_millis(50));
        }
    }
    scene.pump(Duration::from_millis(300));
    assert_hostile_alive(&scene);
    scene.assert_bystanders_unbroken("hostile RTCP");
    assert_eq!(stats(&server).peer_panics, 0);
}

#[test]
fn case_12_nack_storm_does_capped_work() {
    let (server, mut scene) = attacked();
    // The hostile peer subscribes to the bystander's video in its room, so that NACKs
    // name a stream the server really sends it.
    let near = TrackRef::new("near", "near-video", Kind::Video);
    scene.hostiles[0]
        .ws
        .send(&serde_json::json!({"type": "subscribe", "tracks": [near]}).to_string());
    scene.pump_until(Duration::from_secs(5), "the subscription", |s| {
        s.hostiles[0]
            .ws
            .count(|m| matches!(m, ServerMessage::Subscribed { .. }))
            == 1
    });
    scene.pump_until(Duration::from_secs(5), "media to the hostile peer", |s| {
        s.hostiles[0].peer.received.len() >= 30
    });
    let media = scene.hostiles[0].peer.receiving_ssrcs()[0];
    let (ssrc, ..) = evil_stream(&mut scene);
    // Every NACK names all 65 536 sequence numbers: 4096 entries of 16.
    let mut fci = Vec::new();
    for pid in (0u32..65_536).step_by(17) {
        fci.extend_from_slice(&(pid as u16).to_be_bytes());
        fci.extend_from_slice(&[0xff, 0xff]);
    }
    // RTCP lengths are 16 bits of words: a few NACKs of 1024 entries each.
    let mut forge = scene.hostiles[0].forge();
    scene.pump(Duration::from_millis(100));
    let inbound_before = scene.hostiles[0].inbound.len();
    let sent_before = scene.pairs[1].received.len();
    let mut nacks = 0;
    for chunk in fci.chunks(4 * 200) {
        let body = [&ssrc.to_be_bytes()[..], &media.to_be_bytes(), chunk].concat();
        let compound = [rtcp(0, 201, &ssrc.to_be_bytes()), rtcp(1, 205, &body)].concat();
        let d = forge.protect_rtcp(&compound).expect("a compound");
        for _ in 0..5 {
            scene.hostiles[0].send_raw(&d);
            nacks += 1;
        }
    }
    scene.pump(Duration::from_secs(1));
    let resent = scene.hostiles[0].inbound.len() - inbound_before;
    let delivered = scene.pairs[1].received.len() - sent_before;
    // Only what the server still has can be resent, and each packet a bounded number of
    // times: the storm costs a small multiple of the stream, not 65 536 × its NACKs.
    eprintln!("{nacks} NACKs: {resent} datagrams to the hostile peer in a second");
    assert!(
        resent < 1_000,
        "{nacks} NACKs of the whole sequence space made the server send {resent} datagrams"
    );
    assert!(delivered > 0);
    assert_hostile_alive(&scene);
    scene.assert_bystanders_unbroken("NACK storm");
    assert_eq!(stats(&server).peer_panics, 0);
}

fn socket() -> UdpSocket {
    let s = UdpSocket::bind(SocketAddr::new(LOCALHOST, 0)).expect("binds");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("a timeout");
    s
}

/// A reply to `request` on `s`, if one comes within 300 ms.
fn reply(s: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    s.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
}

#[test]
fn case_16_bad_stun_is_ignored_and_never_amplified() {
    let (server, mut scene) = attacked();
    let (server_ufrag, server_pwd) = scene.hostiles[0].server_ice.clone().expect("ICE");
    let local = scene.hostiles[0].local_ufrag.clone().expect("ICE");
    let to = scene.hostiles[0].server_media.expect("media address");
    let user = format!("{server_ufrag}:{local}");
    wait_counters(&mut scene);
    let (peers, flows) = peers_and_flows(&server);
    let flawed = [
        StunFlaws {
            attr_past_end: true,
            ..StunFlaws::default()
        },
        StunFlaws {
            integrity_len: Some(12),
            ..StunFlaws::default()
        },
        StunFlaws {
            bad_fingerprint: true,
            ..StunFlaws::default()
        },
        StunFlaws {
            bad_integrity: true,
            ..StunFlaws::default()
        },
    ];
    let s = socket();
    for (i, f) in flawed.iter().enumerate() {
        let req = stun_binding_request(&user, &server_pwd, [i as u8 + 1; 12], *f);
        s.send_to(&req, to).expect("sends");
        // And the same from the hostile peer's own 5-tuple.
        scene.hostiles[0].send_raw(&req);
        scene.pump(Duration::from_millis(30));
        assert_eq!(reply(&s), None, "no reply to a request with {f:?}");
    }
    // The wrong ufrag, and a wrong password.
    let wrong_user = stun_binding_request(
        &format!("nosuchufrag:{local}"),
        &server_pwd,
        [9; 12],
        StunFlaws::default(),
    );
    let wrong_pwd = stun_binding_request(&user, "not-the-password", [10; 12], StunFlaws::default());
    for req in [&wrong_user, &wrong_pwd] {
        s.send_to(req, to).expect("sends");
        scene.pump(Duration::from_millis(30));
        assert_eq!(reply(&s), None);
    }
    // None of it was answered on the peer's own 5-tuple either.
    let answered: Vec<&Vec<u8>> = scene.hostiles[0]
        .inbound
        .iter()
        .filter(|d| {
            d.len() >= 20
                && d[0] == 0x01
                && (1..=10).contains(&d[8])
                && d[8..20].iter().all(|b| *b == d[8])
        })
        .collect();
    assert!(answered.is_empty(), "a flawed request was answered");
    wait_counters(&mut scene);
    assert_eq!(
        peers_and_flows(&server),
        (peers, flows),
        "no peer and no address was learnt"
    );
    // A sound request is answered, with no more bytes than it had.
    let good = stun_binding_request(&user, &server_pwd, [11; 12], StunFlaws::default());
    s.send_to(&good, to).expect("sends");
    scene.pump(Duration::from_millis(30));
    let answer = reply(&s).expect("a sound request is answered");
    assert!(
        answer.len() <= good.len(),
        "{} > {}",
        answer.len(),
        good.len()
    );
    assert_hostile_alive(&scene);
    scene.assert_bystanders_unbroken("bad STUN");
}

#[test]
fn case_17_dtls_from_an_unvalidated_address_is_ignored() {
    let server = server(2, AppConfig::default(), Limits::default());
    let mut scene = Scene::default();
    scene.pairs.push(Pair::start(&server, "calm", "calm"));
    scene.pump(Duration::from_millis(700));
    let before = stats(&server);
    // The hostile peer's ClientHello goes out first from another socket, which ICE has
    // not validated; the real handshake must still complete.
    let decoy = socket();
    Hostile::join_with(
        &mut scene,
        server.http_addr,
        "attacked",
        "evil",
        Some(decoy),
    );
    assert!(scene.hostiles[0].dtls_decoy.is_none(), "the decoy was sent");
    scene.pump_until(Duration::from_secs(3), "the counters", |_| {
        stats(&server).rx_dropped > before.rx_dropped
    });
    assert_hostile_alive(&scene);
    scene.assert_bystanders_unbroken("DTLS from an unvalidated address");
}

#[test]
fn case_18_unknown_sources_are_dropped_without_state() {
    let (server, mut scene) = attacked();
    let to = scene.hostiles[0].server_media.expect("media address");
    let (server_ufrag, _) = scene.hostiles[0].server_ice.clone().expect("ICE");
    wait_counters(&mut scene);
    let (peers, flows) = peers_and_flows(&server);
    let before = stats(&server);
    let sockets: Vec<UdpSocket> = (0..20).map(|_| socket()).collect();
    let mut sent = 0;
    for round in 0..10u8 {
        for s in &sockets {
            let payloads: [Vec<u8>; 5] = [
                vec![round; 100],
                rtp(96, u16::from(round), 0, 1, false, &[0; 60]),
                vec![0x81, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                stun_binding_request("nosuchufrag:x", "pw", [round; 12], StunFlaws::default()),
                // STUN for a real ufrag with garbage integrity: str0m refuses it.
                stun_binding_request(
                    &format!("{server_ufrag}:x"),
                    "not-the-password",
                    [round; 12],
                    StunFlaws::default(),
                ),
            ];
            for p in &payloads {
                s.send_to(p, to).expect("sends");
                sent += 1;
            }
        }
        scene.pump(Duration::from_millis(20));
    }
    scene.pump_until(Duration::from_secs(3), "the counters", |_| {
        stats(&server).rx_dropped >= before.rx_dropped + 800
    });
    for s in &sockets {
        assert_eq!(reply(s), None, "nothing is sent to an unknown source");
    }
    assert_eq!(
        peers_and_flows(&server),
        (peers, flows),
        "{sent} datagrams from 20 unknown addresses left no state"
    );
    // The hostile peer's own plain garbage is refused by its str0m, not by a crash.
    for _ in 0..20 {
        scene.hostiles[0].send_raw(&[0x17, 0xfe, 0xfd, 0, 1, 2, 3]);
        scene.hostiles[0].send_raw(&[0x00, 0x01, 0, 0, 1, 2]);
    }
    scene.pump(Duration::from_millis(200));
    assert_hostile_alive(&scene);
    scene.assert_bystanders_unbroken("unknown sources");
    assert_eq!(stats(&server).peer_panics, 0);
    let got_ws: Vec<&Got> = scene.hostiles[0].ws.got.iter().collect();
    assert!(
        !got_ws
            .iter()
            .any(|g| matches!(g, Got::Msg(ServerMessage::Error { .. }))),
        "{got_ws:?}"
    );
}
