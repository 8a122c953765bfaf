//! Admission: shards at their load mark refuse new sessions.

use super::*;

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
            t.app.on_notice(t.now, Notice::Connected { peer });
            // Said again (an ICE restart): counted once.
            t.app.on_notice(t.now, Notice::Connected { peer });
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
