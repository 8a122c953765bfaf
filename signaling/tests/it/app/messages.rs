//! Messages: malformed ones, ones out of order, names, request ids, pub/sub, relay.

use super::*;

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
    t.app.on_notice(t.now, vp8_track_published(a_peer, track));
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
    t.app
        .on_notice(t.now, vp8_track_published(b_peer, TrackId(8)));
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
    t.app.on_notice(
        t.now,
        Notice::Subscribed {
            peer: b_peer,
            tracks: vec![track],
        },
    );
    let out = t.app.take_output();
    assert!(
        matches!(sent_to(&out, b)[0], ServerMessage::Subscribed { tracks } if tracks[0] == TrackRef::new("s", "v", Kind::Video))
    );
    t.app.on_notice(
        t.now,
        Notice::TrackUnpublished {
            peer: a_peer,
            track,
        },
    );
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

/// The app messages sent to `peer` on its data channel (`SendData` to its shard).
fn on_channel(out: &[Output], peer: PeerId) -> Vec<serde_json::Value> {
    out.iter()
        .filter_map(|o| match o {
            Output::Control(_, Control::SendData { peer: p, text }) if *p == peer => {
                serde_json::from_str(text).ok()
            }
            _ => None,
        })
        .collect()
}

/// Chat and files go on a member's data channel once its shard says it is open, and on
/// its WebSocket otherwise; what comes in on a channel goes through the same checks, with
/// refusals answered on the socket.
#[test]
fn messages_take_the_data_channel_where_it_is_open() {
    let mut t = T::new(AppConfig::default());
    let (a, a_id, _) = t.join(1, "room", "ann");
    let (b, b_id, _) = t.join(2, "room", "bob");
    let (c, _, _) = t.join(3, "room", "cat");
    for conn in [a, b, c] {
        t.offer(conn, &[]);
    }
    let (a_peer, b_peer) = (PeerId(a_id.parse().unwrap()), PeerId(b_id.parse().unwrap()));
    t.app.on_notice(t.now, Notice::ChannelOpen { peer: b_peer });
    let out = t.text(a, r#"{"type":"message","data":{"chat":"hi"}}"#);
    let got = on_channel(&out, b_peer);
    assert_eq!(got.len(), 1, "bob gets it on his channel");
    assert_eq!(got[0]["type"], "message");
    assert_eq!(
        (got[0]["from"].as_str(), got[0]["data"]["chat"].as_str()),
        (Some(a_id.as_str()), Some("hi"))
    );
    assert!(sent_to(&out, b).is_empty(), "and not on his socket");
    assert_eq!(sent_to(&out, c).len(), 1, "cat has no channel: her socket");
    // From ann's channel: relayed the same way.
    t.app.on_notice(
        t.now,
        Notice::ChannelData {
            peer: a_peer,
            text: r#"{"type":"message","data":{"chat":"via channel"}}"#.into(),
        },
    );
    let out = t.app.take_output();
    assert_eq!(on_channel(&out, b_peer)[0]["data"]["chat"], "via channel");
    assert!(
        matches!(sent_to(&out, c)[..], [ServerMessage::Message { data, .. }] if data["chat"] == "via channel")
    );
    // Anything but a message, and bad JSON, are refused on ann's socket.
    for bad in [r#"{"type":"leave"}"#, "{", r#"{"type":"message"}"#] {
        t.app.on_notice(
            t.now,
            Notice::ChannelData {
                peer: a_peer,
                text: bad.into(),
            },
        );
        let out = t.app.take_output();
        assert_eq!(errors(&out, a).len(), 1, "{bad}");
        assert!(on_channel(&out, b_peer).is_empty() && sent_to(&out, c).is_empty());
    }
    // A file past its size, on either path, is refused before it reaches anyone.
    t.text(
        a,
        r#"{"type":"message","data":{"file":{"id":"f","name":"x","size":3,"chunks":1}}}"#,
    );
    t.app.on_notice(
        t.now,
        Notice::ChannelData {
            peer: a_peer,
            text:
                r#"{"type":"message","data":{"fileChunk":{"id":"f","index":0,"data":"QUJDREVG"}}}"#
                    .into(),
        },
    );
    let out = t.app.take_output();
    assert_eq!(errors(&out, a), vec![ErrorCode::InvalidMessage]);
    assert!(on_channel(&out, b_peer).is_empty() && sent_to(&out, c).is_empty());
    let over = serde_json::json!({"type": "message", "data": {"file": {"id": "g", "size": 16 * 1024 * 1024 + 1, "chunks": 342}}});
    assert_eq!(
        errors(&t.text(a, &over.to_string()), a),
        vec![ErrorCode::InvalidMessage]
    );
    // Bob's channel closes: his socket again.
    t.app
        .on_notice(t.now, Notice::ChannelClosed { peer: b_peer });
    let out = t.text(a, r#"{"type":"message","data":{"chat":"back"}}"#);
    assert!(on_channel(&out, b_peer).is_empty());
    assert_eq!(sent_to(&out, b).len(), 1);
}

/// A channel is held to the socket's rate: past its burst, a message is dropped with a
/// `rate_limited` error on the socket.
#[test]
fn the_data_channel_is_rate_limited_like_the_socket() {
    let mut t = T::new(AppConfig {
        data_messages_per_second: 5,
        ..AppConfig::default()
    });
    let (a, a_id, _) = t.join(1, "room", "ann");
    let (b, _, _) = t.join(2, "room", "bob");
    let a_peer = PeerId(a_id.parse().unwrap());
    let mut relayed = 0;
    let mut limited = 0;
    for _ in 0..20 {
        t.app.on_notice(
            t.now,
            Notice::ChannelData {
                peer: a_peer,
                text: r#"{"type":"message","data":{"chat":"x"}}"#.into(),
            },
        );
        let out = t.app.take_output();
        relayed += sent_to(&out, b).len();
        limited += errors(&out, a)
            .iter()
            .filter(|e| **e == ErrorCode::RateLimited)
            .count();
    }
    assert_eq!(
        (relayed, limited),
        (10, 10),
        "a burst of twice the rate, then dropped"
    );
    t.now += Duration::from_secs(1);
    t.app.on_notice(
        t.now,
        Notice::ChannelData {
            peer: a_peer,
            text: r#"{"type":"message","data":{"chat":"later"}}"#.into(),
        },
    );
    assert_eq!(
        sent_to(&t.app.take_output(), b).len(),
        1,
        "refilled at the rate"
    );
}

/// `--mesh-max 2` is told to clients in `joined` (they connect peer to peer while the
/// room fits); without it, nothing is said.
#[test]
fn joined_says_whether_calls_may_go_direct() {
    let mesh_max = |config: AppConfig| {
        let mut t = T::new(config);
        let c = t.open(1);
        let out = t.text(c, r#"{"type":"join","room":"r","nickname":"ann"}"#);
        out.iter()
            .find_map(|o| match o {
                Output::Send(_, ServerMessage::Joined { mesh_max, .. }) => Some(*mesh_max),
                _ => None,
            })
            .expect("joined")
    };
    assert_eq!(mesh_max(AppConfig::default()), None);
    assert_eq!(
        mesh_max(AppConfig {
            mesh_max: 2,
            ..AppConfig::default()
        }),
        Some(2)
    );
    assert_eq!(
        mesh_max(AppConfig {
            mesh_max: 1,
            ..AppConfig::default()
        }),
        None
    );
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

#[test]
fn a_member_publishes_at_most_its_track_cap() {
    let mut t = T::new(AppConfig {
        max_tracks_per_member: 2,
        ..AppConfig::default()
    });
    let (a, a_id, _) = t.join(1, "room", "ann");
    let (b, _, _) = t.join(2, "room", "bob");
    t.offer(a, &[]);
    t.offer(b, &[]);
    let a_peer = PeerId(a_id.parse().unwrap());
    let publish = |t: &mut T, n: u64| {
        t.app.on_notice(
            t.now,
            Notice::TrackPublished {
                peer: a_peer,
                track: TrackId(n),
                name: TrackName {
                    stream_id: "s".into(),
                    track_id: format!("t{n}"),
                    kind: MediaKind::Audio,
                },
                codec: engine::codecs::CodecDesc {
                    mime_type: "audio/opus".into(),
                    clock_rate: 48_000,
                    channels: Some(2),
                    fmtp: String::new(),
                },
            },
        );
        t.app.take_output()
    };
    for n in 1..=2 {
        let out = publish(&mut t, n);
        assert!(
            sent_to(&out, b)
                .iter()
                .any(|m| matches!(m, ServerMessage::TrackPublished { .. }))
        );
    }
    // A third (from its first offer, say) is not forwarded, and the member is told why.
    let out = publish(&mut t, 3);
    assert_eq!(errors(&out, a), vec![ErrorCode::TooManyTracks]);
    assert!(
        out.iter().any(|o| matches!(o, Output::Control(_, Control::Unpublish { track, .. }) if *track == TrackId(3)))
    );
    assert!(sent_to(&out, b).is_empty(), "the room heard of it");
    // Asking for one more with `publish` is refused at once.
    let msg = r#"{"type":"publish","streamId":"screen","trackId":"v","kind":"video"}"#;
    let out = t.text(a, msg);
    assert_eq!(errors(&out, a), vec![ErrorCode::TooManyTracks]);
    assert_eq!(controls(&out), 0);
}

/// `tile_sizes`: each received video track gets at most the simulcast layer that fills
/// its tile, at once when it is received, or once its subscription takes effect.
#[test]
fn tile_sizes_cap_each_track_at_the_layer_its_tile_needs() {
    let mut t = T::new(AppConfig::default());
    let (a, a_id, _) = t.join(1, "room", "ann");
    let (b, b_id, _) = t.join(2, "room", "bob");
    t.offer(a, &[]);
    t.offer(b, &[]);
    let (a_peer, b_peer) = (PeerId(a_id.parse().unwrap()), PeerId(b_id.parse().unwrap()));
    let track = TrackId(7);
    t.app.on_notice(t.now, vp8_track_published(a_peer, track));
    t.app.take_output();
    let sizes = |w: u32, h: u32| {
        serde_json::json!({"type": "tile_sizes", "tiles": [
            {"streamId": "s", "trackId": "v", "kind": "video", "width": w, "height": h}]})
        .to_string()
    };
    // Before the subscription takes effect: kept for it.
    assert_eq!(controls(&t.text(b, &sizes(300, 170))), 0);
    t.app.on_notice(
        t.now,
        Notice::Subscribed {
            peer: b_peer,
            tracks: vec![track],
        },
    );
    let out = t.app.take_output();
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Control(_, Control::SetMaxLayer { peer, track: TrackId(7), max: 0 }) if *peer == b_peer
    )));
    // A larger tile: the top layer, at once.
    let out = t.text(b, &sizes(1280, 720));
    assert!(matches!(
        &out[..],
        [Output::Control(_, Control::SetMaxLayer { max: 2, .. })]
    ));
    let out = t.text(b, &sizes(500, 280));
    assert!(matches!(
        &out[..],
        [Output::Control(_, Control::SetMaxLayer { max: 1, .. })]
    ));
    // Too many tiles in one message: refused, nothing changes.
    let tiles: Vec<serde_json::Value> = (0..65)
        .map(|i| serde_json::json!({"streamId": "s", "trackId": format!("v{i}"), "kind": "video", "width": 1, "height": 1}))
        .collect();
    let out = t.text(
        b,
        &serde_json::json!({"type": "tile_sizes", "tiles": tiles}).to_string(),
    );
    assert_eq!(errors(&out, b), vec![ErrorCode::InvalidMessage]);
    assert_eq!(controls(&out), 0);
}

/// The shard's word that `peer` publishes the VP8 track `track`, named `s`/`v`.
fn vp8_track_published(peer: PeerId, track: TrackId) -> Notice {
    Notice::TrackPublished {
        peer,
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
    }
}
