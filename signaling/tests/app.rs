//! The signalling state machine without sockets: protocol errors, joins, resumes,
//! limits, relaying. Offers come from the real str0m client peer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client::{ClientPeer, LocalTrack};
use engine::factory::PeerFactory;
use engine::msg::{Control, Notice, PeerId, TrackId, TrackName};
use protocol::{ErrorCode, Kind, ServerMessage, TrackRef};
use signaling::app::{App, AppConfig, Output, close};
use signaling::transport::ConnId;
use str0m::media::MediaKind;

struct T {
    app: App,
    now: Instant,
}

impl T {
    fn new(config: AppConfig) -> Self {
        let shards: Vec<SocketAddr> = vec![
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:40001".parse().unwrap(),
        ];
        Self {
            app: App::new(config, PeerFactory::new(), shards),
            now: Instant::now(),
        }
    }

    fn open(&mut self, conn: u64) -> ConnId {
        self.app.on_open(self.now, ConnId(conn));
        ConnId(conn)
    }

    fn text(&mut self, conn: ConnId, text: &str) -> Vec<Output> {
        self.app.on_text(self.now, conn, text);
        self.app.take_output()
    }

    fn join(&mut self, conn: u64, room: &str, nick: &str) -> (ConnId, String, String) {
        let c = self.open(conn);
        let out = self.text(
            c,
            &format!(r#"{{"type":"join","room":"{room}","nickname":"{nick}"}}"#),
        );
        let (peer_id, token) = out
            .iter()
            .find_map(|o| match o {
                Output::Send(to, ServerMessage::Joined { peer_id, token, .. }) if *to == c => {
                    Some((peer_id.clone(), token.clone()))
                }
                _ => None,
            })
            .expect("joined");
        (c, peer_id, token)
    }

    fn offer(&mut self, conn: ConnId, tracks: &[LocalTrack]) -> Vec<Output> {
        let mut peer = ClientPeer::new(self.now, "127.0.0.1:5555".parse().unwrap());
        let offer = peer.create_offer(tracks).unwrap();
        let msg = serde_json::json!({"type": "offer", "sdp": offer.to_sdp_string()});
        self.text(conn, &msg.to_string())
    }
}

fn errors(out: &[Output], conn: ConnId) -> Vec<ErrorCode> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(c, ServerMessage::Error { code, .. }) if *c == conn => Some(*code),
            _ => None,
        })
        .collect()
}

fn sent_to(out: &[Output], conn: ConnId) -> Vec<&ServerMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(c, m) if *c == conn => Some(m),
            _ => None,
        })
        .collect()
}

fn controls(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::Control(..)))
        .count()
}

#[test]
fn malformed_messages_get_a_clear_error_and_change_nothing() {
    let mut t = T::new(AppConfig::default());
    let (c, _, _) = t.join(1, "r", "ann");
    let cases = [
        ("{not json", ErrorCode::BadJson),
        ("[1,2]", ErrorCode::InvalidMessage),
        (r#"{"type":"dance"}"#, ErrorCode::UnknownType),
        (r#"{"type":"subscribe"}"#, ErrorCode::InvalidMessage),
        (r#"{"type":"offer","sdp":42}"#, ErrorCode::InvalidMessage),
        (r#"{"type":"offer","sdp":"v=0 garbage"}"#, ErrorCode::BadSdp),
        (
            r#"{"type":"answer","sdp":"v=0"}"#,
            ErrorCode::UnexpectedAnswer,
        ),
        (
            r#"{"type":"join","room":"r","nickname":"x"}"#,
            ErrorCode::AlreadyJoined,
        ),
    ];
    for (text, code) in cases {
        let out = t.text(c, text);
        assert_eq!(errors(&out, c), vec![code], "{text}");
        assert_eq!(controls(&out), 0, "{text} changed nothing");
        assert_eq!(out.len(), 1, "{text}: only the error");
    }
    assert_eq!(t.app.session_count(), 1);
}

#[test]
fn messages_before_join_are_refused_but_ping_works() {
    let mut t = T::new(AppConfig::default());
    let c = t.open(1);
    assert_eq!(
        sent_to(&t.text(c, r#"{"type":"ping"}"#), c),
        vec![&ServerMessage::Pong]
    );
    let out = t.text(c, r#"{"type":"subscribe","tracks":[]}"#);
    assert_eq!(errors(&out, c), vec![ErrorCode::NotJoined]);
}

#[test]
fn bad_room_names_and_nicknames_are_rejected() {
    let mut t = T::new(AppConfig::default());
    let c = t.open(1);
    let long = "x".repeat(65);
    for (room, nick, code) in [
        ("a b", "ann", ErrorCode::InvalidRoom),
        (long.as_str(), "ann", ErrorCode::InvalidRoom),
        ("", "ann", ErrorCode::InvalidRoom),
        // What the landing page's form and a link refuse, join refuses too.
        ("..", "ann", ErrorCode::InvalidRoom),
        (".", "ann", ErrorCode::InvalidRoom),
        ("ok", "", ErrorCode::InvalidNickname),
        ("ok", long.as_str(), ErrorCode::InvalidNickname),
    ] {
        let msg = serde_json::json!({"type": "join", "room": room, "nickname": nick});
        assert_eq!(
            errors(&t.text(c, &msg.to_string()), c),
            vec![code],
            "{room:?} {nick:?}"
        );
    }
    let msg = serde_json::json!({"type": "join", "room": "ok", "nickname": "tab\there"});
    assert_eq!(
        errors(&t.text(c, &msg.to_string()), c),
        vec![ErrorCode::InvalidNickname]
    );
    assert_eq!(t.app.room_count(), 0);
}

#[test]
fn join_announces_and_first_offer_is_answered_once() {
    let mut t = T::new(AppConfig::default());
    let (a, a_id, _) = t.join(1, "room", "ann");
    let b = t.open(2);
    let out = t.text(b, r#"{"type":"join","room":"room","nickname":"bob"}"#);
    let to_a = sent_to(&out, a);
    assert!(matches!(to_a[0], ServerMessage::PeerJoined { peer } if peer.nickname == "bob"));
    let joined = sent_to(&out, b);
    assert!(matches!(joined[0], ServerMessage::Joined { peers, .. } if peers[0].peer_id == a_id));

    let out = t.offer(a, &[]);
    assert!(matches!(sent_to(&out, a)[0], ServerMessage::Answer { .. }));
    assert!(matches!(
        out.iter().find(|o| matches!(o, Output::Control(..))),
        Some(Output::Control(_, Control::AddPeer { .. }))
    ));
    let out = t.offer(a, &[]);
    assert_eq!(errors(&out, a), vec![ErrorCode::UnexpectedOffer]);
    assert_eq!(controls(&out), 0);
}

#[test]
fn subscribing_to_a_missing_track_changes_nothing() {
    let mut t = T::new(AppConfig::default());
    let (a, _, _) = t.join(1, "room", "ann");
    t.offer(a, &[]);
    let msg = serde_json::json!({"type": "subscribe", "tracks": [{"streamId": "s", "trackId": "t", "kind": "video"}]});
    let out = t.text(a, &msg.to_string());
    assert_eq!(errors(&out, a), vec![ErrorCode::TrackNotFound]);
    assert_eq!(controls(&out), 0);
    let msg = serde_json::json!({"type": "unsubscribe", "tracks": [{"streamId": "s", "trackId": "t", "kind": "video"}]});
    assert_eq!(
        errors(&t.text(a, &msg.to_string()), a),
        vec![ErrorCode::TrackNotFound]
    );
}

#[test]
fn an_error_carries_the_id_of_the_request_it_refuses() {
    let mut t = T::new(AppConfig::default());
    let (a, _, _) = t.join(1, "room", "ann");
    t.offer(a, &[]);
    let missing = r#"[{"streamId": "s", "trackId": "t", "kind": "video"}]"#;
    // Two requests in a row, the second refused: the error names the second.
    let pong = t.text(a, r#"{"type":"ping","id":1}"#);
    assert_eq!(sent_to(&pong, a), vec![&ServerMessage::Pong]);
    let out = t.text(
        a,
        &format!(r#"{{"type":"unsubscribe","id":2,"tracks":{missing}}}"#),
    );
    let ids: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send(_, ServerMessage::Error { code, id, .. }) => Some((*code, *id)),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![(ErrorCode::TrackNotFound, Some(2))]);
    // Without an id, the error has none; an unreadable message keeps the id it had.
    let out = t.text(a, &format!(r#"{{"type":"subscribe","tracks":{missing}}}"#));
    assert!(matches!(
        sent_to(&out, a)[..],
        [ServerMessage::Error { id: None, .. }]
    ));
    let out = t.text(a, r#"{"type":"subscribe","id":9}"#);
    assert!(matches!(
        sent_to(&out, a)[..],
        [ServerMessage::Error {
            code: ErrorCode::InvalidMessage,
            id: Some(9),
            ..
        }]
    ));
}

#[test]
fn published_tracks_are_announced_and_subscribable_then_unpublished() {
    let mut t = T::new(AppConfig::default());
    let (a, a_id, _) = t.join(1, "room", "ann");
    let (b, _, _) = t.join(2, "room", "bob");
    t.offer(a, &[]);
    t.offer(b, &[]);
    let a_peer = PeerId(a_id.parse().unwrap());
    let track = TrackId(7);
    t.app.on_notice(Notice::TrackPublished {
        peer: a_peer,
        track,
        name: TrackName {
            stream_id: "s".into(),
            track_id: "v".into(),
            kind: MediaKind::Video,
        },
        codec: engine::codecs::CodecDesc {
            mime_type: "video/VP8".into(),
            clock_rate: 90_000,
            channels: None,
            fmtp: String::new(),
        },
    });
    let out = t.app.take_output();
    assert!(
        matches!(sent_to(&out, b)[0], ServerMessage::TrackPublished { track } if track.codec.mime_type == "video/VP8")
    );
    let msg = serde_json::json!({"type": "subscribe", "tracks": [{"streamId": "s", "trackId": "v", "kind": "video"}]});
    let out = t.text(b, &msg.to_string());
    assert!(
        matches!(&out[..], [Output::Control(_, Control::Subscribe { tracks, .. })] if tracks[0].track == track)
    );
    // A second track with the same ids from someone else is refused.
    let b_peer = PeerId(a_peer.0 + 1);
    t.app.on_notice(Notice::TrackPublished {
        peer: b_peer,
        track: TrackId(8),
        name: TrackName {
            stream_id: "s".into(),
            track_id: "v".into(),
            kind: MediaKind::Video,
        },
        codec: engine::codecs::CodecDesc {
            mime_type: "video/VP8".into(),
            clock_rate: 90_000,
            channels: None,
            fmtp: String::new(),
        },
    });
    let out = t.app.take_output();
    assert_eq!(errors(&out, b), vec![ErrorCode::TrackExists]);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Control(
            _,
            Control::Unpublish {
                track: TrackId(8),
                ..
            }
        )
    )));
    // The subscription becomes active, then the track goes away.
    t.app.on_notice(Notice::Subscribed {
        peer: b_peer,
        tracks: vec![track],
    });
    let out = t.app.take_output();
    assert!(
        matches!(sent_to(&out, b)[0], ServerMessage::Subscribed { tracks } if tracks[0] == TrackRef::new("s", "v", Kind::Video))
    );
    t.app.on_notice(Notice::TrackUnpublished {
        peer: a_peer,
        track,
    });
    let out = t.app.take_output();
    assert!(matches!(
        sent_to(&out, b)[0],
        ServerMessage::TrackUnpublished { .. }
    ));
    assert!(out.iter().any(
        |o| matches!(o, Output::Control(_, Control::Unsubscribe { peer, .. }) if *peer == b_peer)
    ));
}

#[test]
fn a_session_resumes_within_the_grace_period_without_leave_or_join() {
    let mut t = T::new(AppConfig::default());
    let (a, _, _) = t.join(1, "room", "ann");
    let (b, b_id, token) = t.join(2, "room", "bob");
    t.app.take_output();
    t.app.on_closed(t.now, b);
    t.now += Duration::from_secs(5);
    t.app.tick(t.now);
    let c = t.open(3);
    let msg =
        serde_json::json!({"type": "join", "room": "room", "nickname": "bob", "token": token});
    let out = t.text(c, &msg.to_string());
    assert!(
        matches!(sent_to(&out, c)[0], ServerMessage::Joined { resumed: true, peer_id, .. } if *peer_id == b_id)
    );
    assert!(sent_to(&out, a).is_empty(), "the room sees nothing");
    // A wrong token, or the right one for another room, is refused.
    let d = t.open(4);
    let msg =
        serde_json::json!({"type": "join", "room": "room", "nickname": "bob", "token": "nope"});
    assert_eq!(
        errors(&t.text(d, &msg.to_string()), d),
        vec![ErrorCode::SessionExpired]
    );
    let msg =
        serde_json::json!({"type": "join", "room": "other", "nickname": "bob", "token": token});
    assert_eq!(
        errors(&t.text(d, &msg.to_string()), d),
        vec![ErrorCode::SessionExpired]
    );
}

#[test]
fn a_second_connection_with_the_token_replaces_the_first() {
    let mut t = T::new(AppConfig::default());
    let (b, _, token) = t.join(1, "room", "bob");
    let c = t.open(2);
    let msg =
        serde_json::json!({"type": "join", "room": "room", "nickname": "bob", "token": token});
    let out = t.text(c, &msg.to_string());
    assert_eq!(errors(&out, b), vec![ErrorCode::Replaced]);
    assert!(out.iter().any(
        |o| matches!(o, Output::Close(conn, code, _) if *conn == b && *code == close::REPLACED)
    ));
    assert!(matches!(
        sent_to(&out, c)[0],
        ServerMessage::Joined { resumed: true, .. }
    ));
}

#[test]
fn a_session_ends_after_the_grace_period() {
    let mut t = T::new(AppConfig::default());
    let (a, _, _) = t.join(1, "room", "ann");
    let (b, b_id, _) = t.join(2, "room", "bob");
    t.offer(b, &[]);
    t.app.take_output();
    t.app.on_closed(t.now, b);
    t.now += Duration::from_secs(11);
    t.app.tick(t.now);
    let out = t.app.take_output();
    assert!(
        matches!(sent_to(&out, a)[..], [ServerMessage::PeerLeft { peer_id }] if *peer_id == b_id)
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Control(_, Control::RemovePeer { .. })))
    );
    assert_eq!(t.app.session_count(), 1);
}

#[test]
fn room_and_server_limits() {
    let mut t = T::new(AppConfig {
        max_peers_per_room: 2,
        max_rooms: 1,
        ..AppConfig::default()
    });
    t.join(1, "room", "a");
    t.join(2, "room", "b");
    let c = t.open(3);
    assert_eq!(
        errors(
            &t.text(c, r#"{"type":"join","room":"room","nickname":"c"}"#),
            c
        ),
        vec![ErrorCode::RoomFull]
    );
    assert_eq!(
        errors(
            &t.text(c, r#"{"type":"join","room":"other","nickname":"c"}"#),
            c
        ),
        vec![ErrorCode::ServerFull]
    );
}

#[test]
fn messages_are_relayed_to_the_room_or_one_peer() {
    let mut t = T::new(AppConfig::default());
    let (a, a_id, _) = t.join(1, "room", "ann");
    let (b, b_id, _) = t.join(2, "room", "bob");
    let (c, _, _) = t.join(3, "room", "cat");
    let (elsewhere, _, _) = t.join(4, "other", "dan");
    let out = t.text(a, r#"{"type":"message","data":{"chat":"hi"}}"#);
    for conn in [b, c] {
        assert!(
            matches!(sent_to(&out, conn)[..], [ServerMessage::Message { from, data }] if *from == a_id && data["chat"] == "hi")
        );
    }
    assert!(sent_to(&out, a).is_empty() && sent_to(&out, elsewhere).is_empty());
    let msg = serde_json::json!({"type": "message", "data": 1, "to": b_id});
    let out = t.text(a, &msg.to_string());
    assert_eq!(sent_to(&out, b).len(), 1);
    assert!(sent_to(&out, c).is_empty());
    let out = t.text(a, r#"{"type":"message","data":1,"to":"999"}"#);
    assert_eq!(errors(&out, a), vec![ErrorCode::InvalidMessage]);
}

#[test]
fn silent_connections_are_closed() {
    let mut t = T::new(AppConfig::default());
    let (a, _, _) = t.join(1, "room", "ann");
    t.now += Duration::from_secs(31);
    t.app.tick(t.now);
    let out = t.app.take_output();
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Close(c, close::IDLE, _) if *c == a))
    );
}

/// A real client offer with one audio m-line.
fn audio_offer(t: &T) -> String {
    let mut peer = ClientPeer::new(t.now, "127.0.0.1:5555".parse().unwrap());
    let track = LocalTrack {
        stream_id: "s".into(),
        track_id: "a".into(),
        kind: MediaKind::Audio,
    };
    peer.create_offer(&[track]).unwrap().to_sdp_string()
}

#[test]
fn hostile_sdp_gets_a_bounded_time_error_and_changes_nothing() {
    let mut t = T::new(AppConfig::default());
    let base = audio_offer(&t);
    let no_rtpmap: String = base
        .lines()
        .filter(|l| !l.starts_with("a=rtpmap"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let unsupported_only = base.replace("opus/48000/2", "PCMU/8000");
    let mut duplicate_mids = base.clone();
    let section = base[base.find("m=audio").unwrap()..].to_string();
    duplicate_mids.push_str(&section);
    let mut thousands_of_lines = base.clone();
    for i in 0..5000 {
        thousands_of_lines.push_str(&format!("a=x-junk:{i}\r\n"));
    }
    let cases = [
        ("no rtpmap", no_rtpmap),
        ("unsupported codecs only", unsupported_only),
        ("duplicate mids", duplicate_mids),
        ("thousands of lines", thousands_of_lines),
        ("not sdp", "hello".to_string()),
    ];
    for (i, (name, sdp)) in cases.into_iter().enumerate() {
        // A fresh connection each time: five unusable SDPs close a connection.
        let (c, _, _) = t.join(100 + i as u64, "room", "ann");
        let msg = serde_json::json!({"type": "offer", "sdp": sdp});
        let started = Instant::now();
        let out = t.text(c, &msg.to_string());
        assert_eq!(errors(&out, c), vec![ErrorCode::BadSdp], "{name}");
        assert_eq!(controls(&out), 0, "{name}: no peer was created");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name} took {:?}",
            started.elapsed()
        );
    }
    // The same session can still start media with a good offer afterwards.
    let (c, _, _) = t.join(200, "room", "bob");
    let out = t.offer(c, &[]);
    assert!(matches!(sent_to(&out, c)[0], ServerMessage::Answer { .. }));
}

#[test]
fn unsupported_codecs_are_named_in_the_error() {
    let mut t = T::new(AppConfig::default());
    let (c, _, _) = t.join(1, "room", "ann");
    let sdp = audio_offer(&t).replace("opus/48000/2", "PCMU/8000");
    let msg = serde_json::json!({"type": "offer", "sdp": sdp});
    let out = t.text(c, &msg.to_string());
    let reason = out
        .iter()
        .find_map(|o| match o {
            Output::Send(_, ServerMessage::Error { reason, .. }) => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        reason.contains("opus") && reason.contains("VP8"),
        "{reason}"
    );
}

#[test]
fn five_unusable_sdps_close_the_connection() {
    let mut t = T::new(AppConfig::default());
    let (c, _, _) = t.join(1, "room", "ann");
    let mut closed = false;
    for i in 0..5 {
        let out = t.text(c, r#"{"type":"offer","sdp":"garbage"}"#);
        assert_eq!(errors(&out, c), vec![ErrorCode::BadSdp]);
        closed = out
            .iter()
            .any(|o| matches!(o, Output::Close(conn, close::POLICY, _) if *conn == c));
        assert_eq!(closed, i == 4, "closed after the fifth, not before");
    }
    assert!(closed);
}

/// The shard a first offer's peer was handed to.
fn placed_on(out: &[Output]) -> usize {
    out.iter()
        .find_map(|o| match o {
            Output::Control(shard, Control::AddPeer { .. }) => Some(*shard),
            _ => None,
        })
        .expect("the peer was handed to a shard")
}

/// Sends a join on `conn`, checks it is refused as `unavailable`, and returns what was
/// sent and the reason.
fn refused_as_unavailable(t: &mut T, conn: ConnId, room: &str) -> (Vec<Output>, String) {
    let out = t.text(
        conn,
        &format!(r#"{{"type":"join","room":"{room}","nickname":"late"}}"#),
    );
    assert_eq!(errors(&out, conn), vec![ErrorCode::Unavailable]);
    let reason = sent_to(&out, conn)
        .iter()
        .find_map(|m| match m {
            ServerMessage::Error { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .expect("a reason");
    (out, reason)
}

#[test]
fn new_sessions_are_refused_while_every_shard_is_saturated() {
    let mut t = T::new(AppConfig::default());
    let (ann, _, _) = t.join(1, "room", "ann");
    assert_eq!(placed_on(&t.offer(ann, &[])), 0);

    t.app.set_shard_busy(&[0.95, 0.97]);
    let bob = t.open(2);
    let (out, reason) = refused_as_unavailable(&mut t, bob, "room");
    assert!(
        reason.contains("at capacity") && reason.contains("95%"),
        "{reason}"
    );
    // The connection is closed with "try again later"; nobody else heard of bob.
    assert!(out.iter().any(
        |o| matches!(o, Output::Close(c, code, _) if *c == bob && *code == close::TRY_AGAIN_LATER)
    ));
    assert!(sent_to(&out, ann).is_empty());
    assert_eq!(t.app.session_count(), 1);

    // One shard has room again: bob is admitted, and joins his room from that shard,
    // not from the saturated one the room is on.
    t.app.set_shard_busy(&[0.95, 0.3]);
    let (bob, _, _) = t.join(3, "room", "bob");
    assert_eq!(placed_on(&t.offer(bob, &[])), 1);
    // Both quiet: the room's next member goes home to its shard.
    t.app.set_shard_busy(&[0.1, 0.1]);
    let (cat, _, _) = t.join(4, "room", "cat");
    assert_eq!(placed_on(&t.offer(cat, &[])), 0);
}

#[test]
fn a_burst_of_joins_is_refused_by_the_load_it_will_bring_not_the_load_of_now() {
    let mut t = T::new(AppConfig::default());
    // Twenty people join at once, each in a room of their own, ten per shard; five on
    // each shard have finished their handshake.
    let mut peers = Vec::new();
    for k in 0..20 {
        let (conn, _, _) = t.join(100 + k, &format!("room{k}"), &format!("p{k}"));
        let out = t.offer(conn, &[]);
        let peer = out
            .iter()
            .find_map(|o| match o {
                Output::Control(_, Control::AddPeer { peer, .. }) => Some(*peer),
                _ => None,
            })
            .expect("handed to a shard");
        peers.push((placed_on(&out), peer, conn));
    }
    let connect = |t: &mut T, shard: usize, n: usize| {
        for &(_, peer, _) in peers.iter().filter(|p| p.0 == shard).take(n) {
            t.app.on_notice(Notice::Connected { peer });
            // Said again (an ICE restart): counted once.
            t.app.on_notice(Notice::Connected { peer });
        }
    };
    connect(&mut t, 0, 5);
    connect(&mut t, 1, 5);
    // Someone who joined before, and lost their connection.
    let (back, _, back_token) = t.join(2, "back", "back");
    t.app.on_closed(t.now, back);

    // Half of them make the shards 50% busy: the other half will bring them to 100%.
    t.app.set_shard_busy(&[0.5, 0.5]);
    let late = t.open(1);
    let (_, reason) = refused_as_unavailable(&mut t, late, "late");
    assert!(
        reason.contains("at 50%")
            && reason.contains("at 110% once the peers joining it now are in")
            && reason.contains("90%"),
        "{reason}"
    );
    // A member coming back is not a newcomer: resuming is never refused.
    let again = t.open(3);
    let out = t.text(
        again,
        &format!(r#"{{"type":"join","room":"back","nickname":"back","token":"{back_token}"}}"#),
    );
    assert!(errors(&out, again).is_empty());

    // All connected at that load: one more fits.
    connect(&mut t, 0, 10);
    connect(&mut t, 1, 10);
    let (late, _, _) = t.join(4, "late", "late");
    assert!(errors(&t.offer(late, &[]), late).is_empty());

    // Five connected peers leave shard 0: its busy share is then judged by the five
    // connected peers left, with the newcomer still in its handshake (70% × 7 / 5 = 98%,
    // where counting the five gone would say 70% × 11 / 10 = 77%).
    for &(_, _, conn) in peers.iter().filter(|p| p.0 == 0).take(5) {
        t.text(conn, r#"{"type":"leave"}"#);
    }
    t.app.set_shard_busy(&[0.7, 1.0]);
    let next = t.open(5);
    let (_, reason) = refused_as_unavailable(&mut t, next, "next");
    assert!(reason.contains("at 70% and will be at 98%"), "{reason}");
}

#[test]
fn a_load_mark_of_one_never_refuses() {
    let mut t = T::new(AppConfig {
        max_shard_load: 1.0,
        ..AppConfig::default()
    });
    t.app.set_shard_busy(&[1.0, 1.0]);
    let (ann, _, _) = t.join(1, "room", "ann");
    assert!(errors(&t.offer(ann, &[]), ann).is_empty());
}
