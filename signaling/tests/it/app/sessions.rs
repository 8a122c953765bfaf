//! Sessions: resume with a token, replacement, the grace period, room and server limits.

use super::*;

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
