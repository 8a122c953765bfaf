//! The client keeps its signalling connection alive with `ping`; the server closes
//! connections that stay silent past its idle timeout.

use std::time::{Duration, Instant};

use client::{Connection, SessionEvent};
use signaling::app::AppConfig;
use signaling::server::RunningServer;
use signaling::transport::Limits;

use crate::support::LOCALHOST;

fn server_with_idle_timeout(idle: Duration) -> RunningServer {
    let app = AppConfig {
        idle_timeout: idle,
        ..AppConfig::default()
    };
    crate::support::server(1, app, Limits::default())
}

/// Polls for `d`; true if the server closed the connection meanwhile.
fn closed_within(c: &mut Connection, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        c.poll(Duration::from_millis(10)).unwrap();
        while let Some(e) = c.next_event() {
            if matches!(e, SessionEvent::Closed) {
                return true;
            }
        }
    }
    false
}

#[test]
fn a_pinging_client_stays_connected_and_a_silent_one_is_closed() {
    let server = server_with_idle_timeout(Duration::from_secs(1));
    let mut pinging = Connection::join(server.http_addr, "keep", "ann", LOCALHOST).unwrap();
    pinging.set_ping_interval(Duration::from_millis(300));
    let mut silent = Connection::join(server.http_addr, "keep", "bob", LOCALHOST).unwrap();
    silent.set_ping_interval(Duration::from_secs(3600));
    let end = Instant::now() + Duration::from_secs(3);
    let mut silent_closed = false;
    while Instant::now() < end {
        assert!(
            !closed_within(&mut pinging, Duration::from_millis(50)),
            "the pinging client was closed"
        );
        silent_closed |= closed_within(&mut silent, Duration::from_millis(50));
    }
    assert!(
        silent_closed,
        "the silent client was closed after the idle timeout"
    );
    server.stop().expect("the server stops cleanly");
}
