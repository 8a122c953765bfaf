//! Moderation through the real server with the str0m client: a `roomAdmin` kicks (the
//! member hears why and its token is kept out), mutes a camera (no longer forwarded, its
//! publisher told), locks the room and ends it; a member without the grant can do none
//! of it. And room passwords, the simple mode without a provider.

use std::time::Duration;

use client::{Connection, Credentials, SessionEvent};
use protocol::{ClientMessage, ErrorCode, ServerMessage, Source};
use signaling::app::{AppConfig, GUESSES};
use signaling::transport::Limits;

use crate::permissions::{jwt_server, refused, token, video};
use crate::support::{LOCALHOST, server};

const WAIT: Duration = Duration::from_secs(10);

fn admin(room: &str, name: &str) -> String {
    token(room, name, serde_json::json!({"roomAdmin": true}))
}

fn member(room: &str, name: &str) -> String {
    token(room, name, serde_json::json!({}))
}

fn sees(c: &mut Connection, f: impl Fn(&ServerMessage) -> bool) -> bool {
    c.wait_for(WAIT, |e| matches!(e, SessionEvent::Server(m) if f(m)))
        .unwrap()
}

/// Whether `c` hears a message `f` accepts while `other` keeps its media going.
fn sees_beside(
    c: &mut Connection,
    other: &mut Connection,
    f: impl Fn(&ServerMessage) -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        other.poll(Duration::from_millis(1)).unwrap();
        while other.next_event().is_some() {}
        if c.wait_for(
            Duration::from_millis(5),
            |e| matches!(e, SessionEvent::Server(m) if f(m)),
        )
        .unwrap()
        {
            return true;
        }
    }
    false
}

fn closed(c: &mut Connection) -> bool {
    c.wait_for(WAIT, |e| matches!(e, SessionEvent::Closed))
        .unwrap()
}

#[test]
fn an_admin_kicks_a_member_who_hears_why_and_may_not_come_back_with_that_token() {
    let s = jwt_server();
    let at = s.http_addr;
    let mut ada =
        Connection::join_with_access_token(at, "m", "a", LOCALHOST, &admin("m", "Ada")).unwrap();
    let bo_token = member("m", "Bo");
    let mut bo = Connection::join_with_access_token(at, "m", "b", LOCALHOST, &bo_token).unwrap();
    let mut cy =
        Connection::join_with_access_token(at, "m", "c", LOCALHOST, &member("m", "Cy")).unwrap();
    assert!(ada.allowed().moderate && !bo.allowed().moderate);

    // Without roomAdmin, nothing happens but a refusal.
    let ada_id = ada.peer_id().to_owned();
    bo.send(&ClientMessage::Kick {
        peer_id: ada_id.clone(),
        reason: None,
    })
    .unwrap();
    assert!(sees(
        &mut bo,
        |m| matches!(m, ServerMessage::Error { code: ErrorCode::Forbidden, reason, .. } if reason.contains("roomAdmin"))
    ));
    for refused_action in [
        ClientMessage::LockRoom { locked: true },
        ClientMessage::EndRoom,
        ClientMessage::Mute {
            peer_id: ada_id,
            source: Source::Microphone,
        },
    ] {
        cy.send(&refused_action).unwrap();
        assert!(sees(&mut cy, |m| matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                ..
            }
        )));
    }

    // The admin kicks Bo.
    let bo_id = bo.peer_id().to_owned();
    ada.send(&ClientMessage::Kick {
        peer_id: bo_id.clone(),
        reason: Some("spam in the chat".into()),
    })
    .unwrap();
    assert!(sees(
        &mut bo,
        |m| matches!(m, ServerMessage::Kicked { by, reason } if by == "Ada" && reason.as_deref() == Some("spam in the chat"))
    ));
    assert!(closed(&mut bo), "the kicked member's connection closes");
    assert!(sees(
        &mut cy,
        |m| matches!(m, ServerMessage::PeerLeft { peer_id } if *peer_id == bo_id)
    ));
    let (code, reason) = refused(Connection::join_with_access_token(
        at, "m", "b", LOCALHOST, &bo_token,
    ));
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(reason.contains("removed you"), "{reason}");
    // Kicking someone who is not there is an error, not a crash.
    ada.send(&ClientMessage::Kick {
        peer_id: "12345".into(),
        reason: None,
    })
    .unwrap();
    assert!(sees(&mut ada, |m| matches!(
        m,
        ServerMessage::Error {
            code: ErrorCode::InvalidMessage,
            ..
        }
    )));
    // The call goes on for the others.
    assert!(cy.peers().iter().any(|p| p.nickname == "Ada"));
}

#[test]
fn an_admin_mutes_a_camera_which_is_no_longer_forwarded_and_its_publisher_is_told() {
    let s = jwt_server();
    let at = s.http_addr;
    let mut ada =
        Connection::join_with_access_token(at, "mute", "a", LOCALHOST, &admin("mute", "Ada"))
            .unwrap();
    let mut bo =
        Connection::join_with_access_token(at, "mute", "b", LOCALHOST, &member("mute", "Bo"))
            .unwrap();
    bo.start_media(&[video("bo")]).unwrap();
    let bo_id = bo.peer_id().to_owned();
    assert!(sees_beside(
        &mut ada,
        &mut bo,
        |m| matches!(m, ServerMessage::TrackPublished { track } if track.peer_id == bo_id)
    ));
    // A microphone Bo does not publish: a clear error.
    ada.send(&ClientMessage::Mute {
        peer_id: bo_id.clone(),
        source: Source::Microphone,
    })
    .unwrap();
    assert!(sees(
        &mut ada,
        |m| matches!(m, ServerMessage::Error { code: ErrorCode::TrackNotFound, reason, .. } if reason.contains("microphone"))
    ));
    ada.send(&ClientMessage::Mute {
        peer_id: bo_id.clone(),
        source: Source::Camera,
    })
    .unwrap();
    assert!(sees(
        &mut bo,
        |m| matches!(m, ServerMessage::Muted { source: Source::Camera, by } if by == "Ada")
    ));
    assert!(sees_beside(
        &mut ada,
        &mut bo,
        |m| matches!(m, ServerMessage::TrackUnpublished { peer_id, .. } if *peer_id == bo_id)
    ));
    assert!(
        ada.tracks().iter().all(|t| t.peer_id != bo_id),
        "no track of Bo's is offered any more"
    );
}

#[test]
fn a_locked_room_lets_in_moderators_only_and_an_ended_room_closes_for_everyone() {
    let s = jwt_server();
    let at = s.http_addr;
    let mut ada =
        Connection::join_with_access_token(at, "l", "a", LOCALHOST, &admin("l", "Ada")).unwrap();
    let mut bo =
        Connection::join_with_access_token(at, "l", "b", LOCALHOST, &member("l", "Bo")).unwrap();
    ada.send(&ClientMessage::LockRoom { locked: true }).unwrap();
    assert!(sees(
        &mut bo,
        |m| matches!(m, ServerMessage::RoomLocked { locked: true, by } if by == "Ada")
    ));
    let (code, reason) = refused(Connection::join_with_access_token(
        at,
        "l",
        "c",
        LOCALHOST,
        &member("l", "Cy"),
    ));
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(reason.contains("locked"), "{reason}");
    let mut di = Connection::join_with_access_token(at, "l", "d", LOCALHOST, &admin("l", "Di"))
        .expect("a moderator joins a locked room");
    // Bo's session resumes after a dropped connection: it is a member already.
    bo.reconnect().expect("a member resumes in a locked room");
    ada.send(&ClientMessage::LockRoom { locked: false })
        .unwrap();
    assert!(sees(&mut di, |m| matches!(
        m,
        ServerMessage::RoomLocked { locked: false, .. }
    )));
    let cy = Connection::join_with_access_token(at, "l", "c", LOCALHOST, &member("l", "Cy"))
        .expect("unlocked, anyone with a token joins");
    drop(cy);

    di.send(&ClientMessage::EndRoom).unwrap();
    for c in [&mut ada, &mut bo] {
        assert!(sees(
            c,
            |m| matches!(m, ServerMessage::RoomEnded { by } if by == "Di")
        ));
        assert!(closed(c));
    }
    // The room is gone: its next member starts it afresh, unlocked.
    let again =
        Connection::join_with_access_token(at, "l", "b", LOCALHOST, &member("l", "Bo")).unwrap();
    assert!(again.peers().is_empty());
}

fn with_password(p: Option<&str>) -> Credentials {
    Credentials {
        access_token: None,
        password: p.map(str::to_owned),
    }
}

#[test]
fn a_room_password_is_needed_checked_and_guessing_it_is_limited() {
    let s = server(
        1,
        AppConfig {
            room_password: Some("open sesame".into()),
            ..AppConfig::default()
        },
        Limits::default(),
    );
    let at = s.http_addr;
    let (code, reason) = refused(Connection::join(at, "r", "a", LOCALHOST));
    assert_eq!(code, ErrorCode::PasswordRequired);
    assert!(reason.contains("needs a password"), "{reason}");
    let a = Connection::join_with(at, "r", "a", LOCALHOST, with_password(Some("open sesame")))
        .expect("the password admits");
    for _ in 0..GUESSES {
        let (code, reason) = refused(Connection::join_with(
            at,
            "r",
            "b",
            LOCALHOST,
            with_password(Some("guess")),
        ));
        assert_eq!(code, ErrorCode::PasswordRequired);
        assert!(reason.contains("not the password"), "{reason}");
    }
    let (code, reason) = refused(Connection::join_with(
        at,
        "r",
        "b",
        LOCALHOST,
        with_password(Some("open sesame")),
    ));
    assert_eq!(
        code,
        ErrorCode::RateLimited,
        "after {GUESSES} wrong guesses: {reason}"
    );
    assert!(reason.contains("too many wrong passwords"), "{reason}");
    drop(a);
}

#[test]
fn the_first_member_of_an_open_room_may_set_its_password() {
    let s = server(1, AppConfig::default(), Limits::default());
    let at = s.http_addr;
    let a = Connection::join_with(
        at,
        "private",
        "a",
        LOCALHOST,
        with_password(Some("hunter2")),
    )
    .unwrap();
    let (code, _) = refused(Connection::join(at, "private", "b", LOCALHOST));
    assert_eq!(code, ErrorCode::PasswordRequired);
    let b = Connection::join_with(
        at,
        "private",
        "b",
        LOCALHOST,
        with_password(Some("hunter2")),
    )
    .expect("the creator's password admits");
    let c = Connection::join(at, "public", "c", LOCALHOST).expect("other rooms stay open");
    drop((a, b, c));
}
