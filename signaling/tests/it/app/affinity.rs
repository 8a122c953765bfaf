//! Room affinity in a cluster: a join of a room another node holds is sent there, once.

use std::time::Duration;

use protocol::ServerMessage;
use signaling::app::{AppConfig, Output};

use super::T;

fn clustered() -> T {
    let mut t = T::new(AppConfig {
        room_affinity: true,
        ..AppConfig::default()
    });
    t.app.set_other_nodes(vec!["http://node-b.test".into()]);
    t
}

fn joined(out: &[Output]) -> bool {
    out.iter()
        .any(|o| matches!(o, Output::Send(_, ServerMessage::Joined { .. })))
}

fn join_text(room: &str, here: bool) -> String {
    format!(r#"{{"type":"join","room":"{room}","nickname":"n","here":{here}}}"#)
}

#[test]
fn a_join_of_a_room_another_node_holds_is_sent_there() {
    let mut t = clustered();
    let c = t.open(1);
    let out = t.text(c, &join_text("r", false));
    assert!(!joined(&out), "it waits for the directory");
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::WhereIs(r) if r == "r")),
        "{out:?}"
    );
    t.app.room_is_at(t.now, "r", &["http://node-b.test".into()]);
    let out = t.app.take_output();
    assert!(
        out.iter().any(|o| matches!(o,
            Output::Send(to, ServerMessage::Redirect { node }) if *to == c && node == "http://node-b.test")),
        "{out:?}"
    );
    assert_eq!(t.app.session_count(), 0);
}

#[test]
fn a_room_held_nowhere_else_or_unknown_in_time_is_joined_here() {
    let mut t = clustered();
    let c = t.open(1);
    t.text(c, &join_text("fresh", false));
    t.app.room_is_at(t.now, "fresh", &[]);
    assert!(joined(&t.app.take_output()), "nobody else holds it");

    // Held here now: the next joins stay, without asking.
    let d = t.open(2);
    let out = t.text(d, &join_text("fresh", false));
    assert!(joined(&out));

    // The directory does not answer: the join goes on here after the wait.
    let e = t.open(3);
    t.text(e, &join_text("slow", false));
    t.now += signaling::app::ASK_TIMEOUT + Duration::from_millis(1);
    t.app.tick(t.now);
    assert!(joined(&t.app.take_output()));
}

#[test]
fn a_client_sent_on_once_stays_and_one_node_never_asks() {
    let mut t = clustered();
    let c = t.open(1);
    assert!(
        joined(&t.text(c, &join_text("r", true))),
        "here: true stays"
    );

    let mut single = T::new(AppConfig {
        room_affinity: true,
        ..AppConfig::default()
    });
    let c = single.open(1);
    assert!(
        joined(&single.text(c, &join_text("r", false))),
        "one node: nothing to ask"
    );
}
