//! Writes the seed corpora under `fuzz/corpus/<target>/`: real datagrams and signalling
//! messages captured from the virtual-time harness (two str0m peers connected through a
//! real shard, and the signalling app driven by a str0m client), plus one seed per case
//! of `docs/bad-inputs.md` that a target can express.
//!
//! Ignored by default; regenerate with
//! `cargo test -p fuzz-targets --test capture -- --ignored` (files are named by a hash of
//! their content, so running it again only adds what is new).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use engine::msg::Notice;
use engine::shard::ShardCore;
use fuzz_targets::forge::{StunFlaws, rtp, rtp_header_len, stun_binding_request};
use fuzz_targets::peer::RawPeer;
use fuzz_targets::world::{CALM, HOSTILE, World, factory};
use protocol::{ClientMessage, Kind, ServerMessage, TrackRef};
use signaling::app::{App, AppConfig, Output};
use signaling::transport::ConnId;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::MediaKind;

fn corpus(target: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    dir
}

/// FNV-1a, 64 bits: a stable file name for a seed.
fn name(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn save(target: &str, label: &str, data: &[u8]) {
    let path = corpus(target).join(format!("{label}-{}", name(data)));
    std::fs::write(path, data).expect("write a seed");
}

/// One `(flags, bytes)` frame of the shard targets.
fn frame(flags: u8, bytes: &[u8]) -> Vec<u8> {
    let mut f = vec![flags];
    f.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    f.extend_from_slice(bytes);
    f
}

fn kind_of(d: &[u8]) -> &'static str {
    match d.first() {
        Some(0..=3) => "stun",
        Some(20..=63) => "dtls",
        Some(128..=191) if d.get(1).is_some_and(|b| (192..=223).contains(b)) => "srtcp",
        Some(128..=191) => "srtp",
        _ => "other",
    }
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn capture_corpora() {
    capture_datagrams();
    capture_plaintext_media();
    capture_signalling();
    capture_http();
}

/// Real datagrams of a session (STUN, DTLS, SRTP, SRTCP both ways), for `stun_demux` and
/// `shard_datagram`.
fn capture_datagrams() {
    let mut w = World::connected_tapped(true).expect("connects");
    for seq in 10..40 {
        w.send_media(HOSTILE, seq);
        w.send_media(CALM, seq);
        w.step(Duration::from_millis(20));
    }
    w.run_for(Duration::from_secs(3));
    let hostile = w.addr(HOSTILE);
    let tap = w.wiretap.take().unwrap_or_default();
    let mut per_kind = std::collections::HashMap::<&str, usize>::new();
    let mut from_hostile = Vec::new();
    for (from, _, d) in &tap {
        let kind = kind_of(d);
        let n = per_kind.entry(kind).or_default();
        *n += 1;
        if *n > 12 {
            continue;
        }
        save("stun_demux", kind, d);
        if *from == hostile {
            save("shard_datagram", kind, &frame(0, d));
            from_hostile.push(d.clone());
        }
    }
    // A run of the hostile peer's datagrams, and the same from an unknown address.
    let run: Vec<u8> = from_hostile
        .iter()
        .take(8)
        .flat_map(|d| frame(4, d))
        .collect();
    save("shard_datagram", "sequence", &run);
    let unknown: Vec<u8> = from_hostile
        .iter()
        .take(4)
        .flat_map(|d| frame(2, d))
        .collect();
    save("shard_datagram", "unknown-source", &unknown);
    // STUN a hostile peer might send (cases 16 and 18).
    let flaws = [
        ("stun-ok", StunFlaws::default()),
        (
            "stun-attr-past-end",
            StunFlaws {
                attr_past_end: true,
                ..StunFlaws::default()
            },
        ),
        (
            "stun-short-integrity",
            StunFlaws {
                integrity_len: Some(12),
                ..StunFlaws::default()
            },
        ),
        (
            "stun-bad-fingerprint",
            StunFlaws {
                bad_fingerprint: true,
                ..StunFlaws::default()
            },
        ),
        (
            "stun-bad-integrity",
            StunFlaws {
                bad_integrity: true,
                ..StunFlaws::default()
            },
        ),
    ];
    for (label, f) in flaws {
        let m = stun_binding_request("srvufrag:cli", "password", [7; 12], f);
        save("stun_demux", label, &m);
        save("shard_datagram", label, &frame(0, &m));
        save("shard_datagram", label, &frame(2, &m));
    }
    // Case 7: larger than any MTU.
    save("shard_datagram", "oversized", &frame(0, &[0x80; 1600]));
    // Case 1: short RTP, and an RTP-looking datagram whose version is not 2.
    save(
        "shard_datagram",
        "rtp-short",
        &frame(0, &[0x80, 96, 0, 1, 0, 0]),
    );
    save("shard_datagram", "rtp-version-3", &frame(0, &[0xc0; 40]));
    // Case 14: SRTP and SRTCP shorter than header plus tag.
    save(
        "shard_datagram",
        "srtp-no-tag",
        &frame(0, &rtp(96, 1, 1, 1, false, &[])),
    );
    save(
        "shard_datagram",
        "srtcp-no-tag",
        &frame(0, &[0x80, 201, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]),
    );
}

/// RTCP helpers: a header with count, type and length in 32-bit words minus one.
fn rtcp(count: u8, pt: u8, body: &[u8]) -> Vec<u8> {
    let words = (body.len() / 4) as u16;
    let mut p = vec![0x80 | (count & 0x1f), pt];
    p.extend_from_slice(&words.to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// Plaintext RTP and RTCP for `shard_srtp`: the hostile peer's real packets, decrypted
/// with its own keys, the server's reports to it, and one seed per media case of
/// `bad-inputs.md`.
fn capture_plaintext_media() {
    let mut w = World::connected_tapped(true).expect("connects");
    for seq in 10..60 {
        w.send_media(HOSTILE, seq);
        w.send_media(CALM, seq);
        w.step(Duration::from_millis(20));
    }
    w.run_for(Duration::from_secs(3));
    let hostile = w.addr(HOSTILE);
    let mut tx = w.clients[HOSTILE].forge().expect("keys");
    let mut rx = w.clients[HOSTILE].inbound_forge().expect("keys");
    let (mut n_rtp, mut n_rtcp) = (0, 0);
    for (from, to, d) in w.wiretap.take().unwrap_or_default() {
        let ours = from == hostile;
        if !ours && to != hostile {
            continue;
        }
        let forge = if ours { &mut tx } else { &mut rx };
        match kind_of(&d) {
            "srtp" if n_rtp < 12 => {
                let Some(h) = rtp_header_len(&d) else {
                    continue;
                };
                if let Some(p) = forge.unprotect_rtp(&d, h) {
                    n_rtp += 1;
                    // As captured, and with the fuzz world's own SSRC and next sequence number.
                    save("shard_srtp", "rtp", &frame(0, &p));
                    save("shard_srtp", "rtp", &frame(2 | 8, &p));
                }
            }
            "srtcp" if n_rtcp < 10 => {
                if let Some(p) = forge.unprotect_rtcp(&d) {
                    n_rtcp += 1;
                    save("shard_srtp", "rtcp", &frame(1 | 2, &p));
                    save("shard_srtp", "rtcp", &frame(1 | 2 | 4, &p));
                }
            }
            _ => {}
        }
    }
    assert!(
        n_rtp > 5 && n_rtcp > 2,
        "captured {n_rtp} RTP, {n_rtcp} RTCP"
    );

    let good = |seq: u16| {
        rtp(
            96,
            seq,
            3000,
            1,
            true,
            &[0x10, 0, 0, 0, 0x9d, 1, 0x2a, 0x40],
        )
    };
    let mut media = Vec::new();
    // Case 2: CSRC count larger than the packet holds.
    let mut p = good(1);
    p[0] |= 0x0f;
    media.push(("csrc-past-end", 2 | 8, p));
    // Case 3: header-extension length running past the end.
    let mut p = good(2);
    p[0] |= 0x10;
    p.splice(12..12, [0xbe, 0xde, 0x00, 0x40]);
    media.push(("ext-past-end", 2 | 8, p));
    // Case 4: one-byte extension elements longer than their block, id 0 and 15.
    for (label, elements) in [
        ("ext-element-long", [0x1f, 1, 2, 3]),
        ("ext-element-id15", [0xf3, 1, 2, 3]),
        ("ext-element-id0", [0x00, 0x31, 2, 3]),
    ] {
        let mut p = good(3);
        p[0] |= 0x10;
        let mut ext = vec![0xbe, 0xde, 0x00, 0x01];
        ext.extend_from_slice(&elements);
        p.splice(12..12, ext);
        media.push((label, 2 | 8, p));
    }
    // Two-byte extension elements (0x1000) running past their block.
    let mut p = good(4);
    p[0] |= 0x10;
    p.splice(12..12, [0x10, 0x00, 0x00, 0x01, 0x03, 0xff, 1, 2]);
    media.push(("ext-two-byte-long", 2 | 8, p));
    // Case 5: padding flag with pad length 0, longer than the payload, empty payload.
    for (label, payload) in [
        ("pad-zero", vec![1, 2, 3, 0]),
        ("pad-too-long", vec![1, 2, 3, 200]),
        ("pad-empty", vec![]),
    ] {
        let mut p = rtp(96, 5, 3000, 1, true, &payload);
        p[0] |= 0x20;
        media.push((label, 2 | 8, p));
    }
    // Case 6: RTX payload shorter than 2 bytes.
    media.push(("rtx-short", 2 | 4 | 8, rtp(97, 6, 3000, 1, false, &[7])));
    media.push(("rtx-empty", 2 | 4 | 8, rtp(97, 7, 3000, 1, false, &[])));
    for (label, flags, p) in media {
        save("shard_srtp", label, &frame(flags, &p));
    }

    let ssrc = [0, 0, 0, 1];
    let media_ssrc = [0, 0, 0, 2];
    let mut rtcps: Vec<(&str, Vec<u8>)> = Vec::new();
    // Case 8: a compound with a length of 0, a length past the datagram, a count that
    // does not match.
    let rr = rtcp(0, 201, &ssrc);
    let mut zero = rr.clone();
    zero.extend_from_slice(&[0x80, 202, 0, 0]);
    rtcps.push(("rtcp-len-zero", zero));
    let mut past = rr.clone();
    past.extend_from_slice(&[0x80, 200, 0x7f, 0xff, 0, 0, 0, 1]);
    rtcps.push(("rtcp-len-past-end", past));
    rtcps.push(("rtcp-count-mismatch", rtcp(5, 201, &ssrc)));
    // Case 9: SDES items running past the end; more chunks than the count says.
    let mut sdes = ssrc.to_vec();
    sdes.extend_from_slice(&[1, 200, b'a', b'b']);
    rtcps.push(("sdes-item-past-end", rtcp(1, 202, &sdes)));
    let mut chunks = Vec::new();
    for i in 0..8u8 {
        chunks.extend_from_slice(&[0, 0, 0, i, 1, 2, b'x', 0]);
    }
    rtcps.push(("sdes-extra-chunks", rtcp(2, 202, &chunks)));
    // Case 10: RR and SR with report count 31 and a short body.
    rtcps.push(("rr-count-31", rtcp(31, 201, &[0, 0, 0, 1, 0, 0, 0, 2])));
    let mut sr = ssrc.to_vec();
    sr.extend_from_slice(&[0; 20]);
    rtcps.push(("sr-count-31", rtcp(31, 200, &sr)));
    // Case 11: TWCC with a huge status count and overflowing deltas.
    let mut twcc = ssrc.to_vec();
    twcc.extend_from_slice(&media_ssrc);
    twcc.extend_from_slice(&[0x00, 0x01, 0xff, 0xff]); // base seq 1, status count 65535
    twcc.extend_from_slice(&[0x7f, 0xff, 0xff, 0x00]); // reference time, fb count
    twcc.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // run length / vectors
    twcc.extend_from_slice(&[0x7f, 0xff, 0x80, 0x00]); // large deltas
    rtcps.push(("twcc-huge", rtcp(15, 205, &twcc)));
    // Case 12: a NACK covering every sequence number (16 bits each in its bitmask).
    let mut nack = ssrc.to_vec();
    nack.extend_from_slice(&media_ssrc);
    for pid in (0u16..4096).step_by(17) {
        nack.extend_from_slice(&pid.to_be_bytes());
        nack.extend_from_slice(&[0xff, 0xff]);
    }
    rtcps.push(("nack-storm", rtcp(1, 205, &nack)));
    // Case 13: REMB with extreme exponent and mantissa.
    let mut remb = ssrc.to_vec();
    remb.extend_from_slice(&[0, 0, 0, 0]);
    remb.extend_from_slice(b"REMB");
    remb.extend_from_slice(&[1, 0xff, 0xff, 0xff]); // 1 SSRC, exp 63, mantissa max
    remb.extend_from_slice(&media_ssrc);
    rtcps.push(("remb-extreme", rtcp(15, 206, &remb)));
    // PLI and FIR, well formed.
    let mut pli = ssrc.to_vec();
    pli.extend_from_slice(&media_ssrc);
    rtcps.push(("pli", rtcp(1, 206, &pli)));
    let mut fir = ssrc.to_vec();
    fir.extend_from_slice(&[0; 4]);
    fir.extend_from_slice(&media_ssrc);
    fir.extend_from_slice(&[9, 0, 0, 0]);
    rtcps.push(("fir", rtcp(4, 206, &fir)));
    for (label, p) in rtcps {
        save("shard_srtp", label, &frame(1 | 2 | 4, &p));
    }
}

fn ws_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn client_messages() -> Vec<String> {
    let t = TrackRef::new("s", "s-video", Kind::Video);
    let msgs = [
        ClientMessage::Join {
            room: "r".into(),
            nickname: "n".into(),
            token: None,
            here: false,
            access_token: None,
            password: None,
        },
        ClientMessage::Join {
            room: "team-standup".into(),
            nickname: "Ada".into(),
            token: Some("q8T2vN0cZk4xWm1R".into()),
            here: true,
            access_token: None,
            password: None,
        },
        ClientMessage::Publish { track: t.clone() },
        ClientMessage::Unpublish { track: t.clone() },
        ClientMessage::Subscribe {
            tracks: vec![t.clone(), TrackRef::new("s", "s-audio", Kind::Audio)],
        },
        ClientMessage::Unsubscribe { tracks: vec![t] },
        ClientMessage::Message {
            data: serde_json::json!({"chat": "hello", "n": [1, 2.5, null, true]}),
            to: None,
        },
        ClientMessage::Message {
            data: serde_json::json!("x"),
            to: Some("2".into()),
        },
        ClientMessage::Ping,
        ClientMessage::Leave,
        ClientMessage::Answer { sdp: "v=0".into() },
        ClientMessage::Kick {
            peer_id: "2".into(),
            reason: Some("spam".into()),
        },
        ClientMessage::Mute {
            peer_id: "2".into(),
            source: protocol::Source::Microphone,
        },
        ClientMessage::LockRoom { locked: true },
        ClientMessage::EndRoom,
    ];
    let mut out: Vec<String> = msgs
        .iter()
        .map(|m| serde_json::to_string(m).expect("serialises"))
        .collect();
    // Case 21 and 22: malformed JSON, unknown type, missing fields, wrong types, bad
    // room and nickname.
    out.extend(
        [
            "{not json",
            "[1,2]",
            r#"{"type":"dance"}"#,
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","tracks":"all"}"#,
            r#"{"type":"offer","sdp":42}"#,
            r#"{"type":"join","room":"a b","nickname":"x"}"#,
            r#"{"type":"join","room":"r","nickname":"\u0007"}"#,
            r#"{"type":"message","data":{"a":{"b":{"c":[[[[[[[[1]]]]]]]]}}},"to":7}"#,
            r#"{"type":"publish","streamId":"","trackId":"x","kind":"video"}"#,
            r#"{"type":"ping","extra":{"ignored":true}}"#,
        ]
        .map(String::from),
    );
    out
}

/// Client messages, SDP offers and answers, for `client_message`, `app_messages` and
/// `app_sdp`.
fn capture_signalling() {
    let msgs = client_messages();
    for m in &msgs {
        save("client_message", "msg", m.as_bytes());
    }
    // Sequences, one message a line.
    let join = r#"{"type":"join","room":"r","nickname":"x"}"#;
    let sub =
        r#"{"type":"subscribe","tracks":[{"streamId":"s","trackId":"s-video","kind":"video"}]}"#;
    let seqs = [
        msgs.join("\n"),
        format!(
            "{sub}\n{sub}\n{}",
            r#"{"type":"unsubscribe","tracks":[{"streamId":"s","trackId":"s-video","kind":"video"}]}"#
        ),
        format!(
            "{join}\n{}",
            r#"{"type":"message","data":{"chat":"hi"},"to":"2"}"#
        ),
        r#"{"type":"publish","streamId":"s","trackId":"s-video","kind":"video"}"#.to_string(),
        r#"{"type":"leave"}
{"type":"ping"}"#
            .to_string(),
    ];
    for s in seqs {
        save("app_messages", "seq", s.as_bytes());
    }

    // Real offers: video and audio, audio only, three videos, a data channel only.
    let combos: [&[(MediaKind, &str, &str)]; 4] = [
        &[
            (MediaKind::Video, "a", "a-video"),
            (MediaKind::Audio, "a", "a-audio"),
        ],
        &[(MediaKind::Audio, "a", "a-audio")],
        &[
            (MediaKind::Video, "a", "v1"),
            (MediaKind::Video, "b", "v2"),
            (MediaKind::Video, "c", "v3"),
        ],
        &[],
    ];
    let now = Instant::now();
    for tracks in combos {
        let mut p = RawPeer::new(now, "127.0.0.1:5555".parse().expect("addr"));
        let sdp = p.offer(tracks).to_sdp_string();
        let mut seed = vec![0u8];
        seed.extend_from_slice(sdp.as_bytes());
        save("app_sdp", "offer", &seed);
    }
    // Case 23: SDP with no rtpmap, duplicate mids, unsupported codecs only.
    let offer = fuzz_targets::client_offer();
    let no_rtpmap: String = offer
        .lines()
        .filter(|l| !l.starts_with("a=rtpmap"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let mids: Vec<&str> = offer
        .lines()
        .filter_map(|l| l.strip_prefix("a=mid:"))
        .collect();
    let dup_mid = offer.replace(&format!("a=mid:{}", mids[1]), &format!("a=mid:{}", mids[0]));
    let unsupported = offer
        .replace("VP8/90000", "AV1X/90000")
        .replace("VP9/90000", "AV1Y/90000")
        .replace("H264/90000", "AV1Z/90000");
    for (label, sdp) in [
        ("no-rtpmap", no_rtpmap),
        ("dup-mid", dup_mid),
        ("unsupported", unsupported),
    ] {
        let mut seed = vec![0u8];
        seed.extend_from_slice(sdp.as_bytes());
        save("app_sdp", label, &seed);
    }
    // A real answer to a server offer (for a `publish`), through the app and a shard.
    let answer = answer_to_publish_offer();
    let mut seed = vec![1u8];
    seed.extend_from_slice(answer.as_bytes());
    save("app_sdp", "answer", &seed);
}

/// Runs a str0m client through the signalling app and a shard until the server offers a
/// publish slot, and returns the client's answer.
fn answer_to_publish_offer() -> String {
    let now = Instant::now();
    let addr: SocketAddr = "127.0.0.1:20000".parse().expect("addr");
    let mut app = App::new(AppConfig::default(), factory().clone(), vec![addr]);
    let mut shard = ShardCore::new(0, 1, addr, now);
    let mut peer = RawPeer::new(now, "127.0.0.1:5555".parse().expect("addr"));
    let me = ConnId(1);
    app.on_open(now, me);
    app.on_text(now, me, r#"{"type":"join","room":"r","nickname":"me"}"#);
    let offer = peer.offer(&[(MediaKind::Audio, "a", "a-audio")]);
    let text = serde_json::json!({"type": "offer", "sdp": offer.to_sdp_string()}).to_string();
    app.on_text(now, me, &text);
    let mut answer = None;
    for step in 0..6 {
        if step == 2 {
            app.on_text(
                now,
                me,
                r#"{"type":"publish","streamId":"x","trackId":"x-video","kind":"video"}"#,
            );
        }
        for out in app.take_output() {
            match out {
                Output::Control(_, c) => shard.handle_control(now, c),
                Output::Send(_, ServerMessage::Answer { sdp }) => {
                    let a = SdpAnswer::from_sdp_string(&sdp).expect("an answer");
                    peer.accept_answer(a).expect("accepted");
                }
                Output::Send(_, ServerMessage::Offer { sdp }) => {
                    let o = SdpOffer::from_sdp_string(&sdp).expect("an offer");
                    answer = Some(peer.accept_offer(o).expect("answered").to_sdp_string());
                }
                _ => {}
            }
        }
        for n in std::mem::take(&mut shard.out.notices) {
            if matches!(n, Notice::Offer { .. } | Notice::TrackPublished { .. }) {
                app.on_notice(now, n);
            }
        }
    }
    answer.expect("the server offered a publish slot")
}

/// HTTP requests and WebSocket frames, for `http_ws`.
fn capture_http() {
    let upgrade = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let mut frames = Vec::new();
    for m in client_messages().iter().take(6) {
        frames.extend(ws_frame(1, true, m.as_bytes()));
    }
    frames.extend(ws_frame(9, true, b"ping"));
    frames.extend(ws_frame(1, false, b"{\"type\":"));
    frames.extend(ws_frame(0, true, b"\"ping\"}"));
    frames.extend(ws_frame(8, true, &[0x03, 0xe8, b'b', b'y', b'e']));
    let big = "x".repeat(70_000);
    let requests: Vec<(u8, Vec<u8>)> = vec![
        (0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (14, b"GET /call/team-standup HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (0, b"HEAD /static/app.js HTTP/1.0\r\n\r\n".to_vec()),
        (
            6,
            b"POST /call HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 14\r\n\r\ncall=my%2Eroom"
                .to_vec(),
        ),
        (0, [upgrade.as_bytes(), &frames].concat()),
        (254, [upgrade.as_bytes(), &frames].concat()),
        (1, frames.clone()),
        (1, ws_frame(2, true, b"binary")),
        // Case 19: a frame over the size limit (the header says so; the body need not come).
        (1, ws_frame(1, true, big.as_bytes())[..20].to_vec()),
        (1, {
            let mut f = vec![0x81, 0xff];
            f.extend_from_slice(&u64::MAX.to_be_bytes());
            f
        }),
        (0, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec()),
    ];
    for (mode, r) in requests {
        let mut seed = vec![mode];
        seed.extend_from_slice(&r);
        save("http_ws", "req", &seed);
    }
}
