//! Every limit a client can run into: sizes, rates, handshakes, connections, backlogs.

use super::*;

#[test]
fn message_over_the_limit_closes_with_1009() {
    let limits = Limits {
        max_message: 1024,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    let fits = "a".repeat(1024);
    send_text(&mut ws, &fits);
    assert_eq!(read_text(&mut ws), fits);
    send_text(&mut ws, &"b".repeat(1025));
    let (frame, _) = read_close(&mut ws);
    assert_eq!(frame.code, CloseCode::Size);
    server.wait_closed(conn);

    // The same limit holds for a message split into small frames.
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    let part = |fin: bool, first: bool| {
        let opcode = if first {
            tungstenite::protocol::frame::coding::Data::Text
        } else {
            tungstenite::protocol::frame::coding::Data::Continue
        };
        Message::Frame(tungstenite::protocol::frame::Frame::message(
            vec![b'c'; 600],
            tungstenite::protocol::frame::coding::OpCode::Data(opcode),
            fin,
        ))
    };
    ws.write(part(false, true)).unwrap();
    ws.write(part(true, false)).unwrap();
    ws.flush().unwrap();
    let (frame, _) = read_close(&mut ws);
    assert_eq!(frame.code, CloseCode::Size);
    server.wait_closed(conn);
}

#[test]
fn binary_message_closes_with_1003() {
    let server = Server::start(Limits::default());
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    let (frame, _) = read_close(&mut ws);
    assert_eq!(frame.code, CloseCode::Unsupported);
    server.wait_closed(conn);
}

#[test]
fn flood_is_rate_limited_then_closed_while_others_still_echo() {
    let limits = Limits {
        messages_per_second: 10,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let mut calm = ws_connect(server.addr);
    let calm_conn = server.wait_open();
    let mut flooder = ws_connect(server.addr);
    let flood_conn = server.wait_open();

    // Burst 20 passes, then 40 are dropped, and the 41st drop closes the connection.
    for i in 0..100 {
        flooder.write(Message::text(format!("m{i}"))).unwrap();
    }
    flooder.flush().unwrap();
    let (frame, echoed) = read_close(&mut flooder);
    assert_eq!(frame.code, CloseCode::Policy);
    assert_eq!(frame.reason.as_str(), "rate limit");
    assert!((20..=22).contains(&echoed), "{echoed} messages were echoed");
    let events = server.collect_until("Closed", |e| {
        *e == TransportEvent::Closed { conn: flood_conn }
    });
    send_text(&mut calm, "still here");
    assert_eq!(read_text(&mut calm), "still here");
    let limited = events
        .iter()
        .filter(|e| **e == TransportEvent::RateLimited { conn: flood_conn })
        .count();
    assert!(limited >= 40, "{limited} RateLimited events");
    assert!(!events.contains(&TransportEvent::RateLimited { conn: calm_conn }));
}

#[test]
fn silent_connections_are_closed_after_the_handshake_timeout() {
    let limits = Limits {
        handshake_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = Server::start(limits);
    let started = Instant::now();
    let mut silent = connect(server.addr);
    let mut partial = connect(server.addr);
    partial.write_all(b"GET / HTTP/1.1\r\nHost: slow").unwrap();
    assert!(closed_within(&mut silent, WAIT));
    assert!(closed_within(&mut partial, WAIT));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(290),
        "closed after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");
    // No WebSocket was opened, so nothing was reported.
    assert_eq!(server.drain_events(), []);
}

#[test]
fn beyond_max_pending_the_oldest_unfinished_handshake_makes_room_for_a_newcomer() {
    let limits = Limits {
        max_pending: 4,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let mut good = ws_connect(server.addr);
    server.wait_open();

    // Four half-open connections fill the handshakes, each from its own address.
    let mut old: Vec<TcpStream> = (0..4).map(|i| connect_from(server.addr, i + 10)).collect();
    std::thread::sleep(Duration::from_millis(50));
    // Each newcomer evicts the oldest of them, in order, and is kept itself.
    let mut new: Vec<TcpStream> = Vec::new();
    for (i, tcp) in old.iter_mut().enumerate() {
        new.push(connect_from(server.addr, i as u8 + 20));
        assert!(
            closed_within(tcp, Duration::from_secs(2)),
            "the oldest unfinished handshake ({i}) was not evicted"
        );
    }
    for tcp in &mut new {
        assert!(still_open(tcp), "a newcomer was refused");
    }
    // A visitor who sends a whole request is served at once, pile or not.
    let mut fresh = ws_connect(server.addr);
    server.wait_open();
    send_text(&mut fresh, "during the pile");
    assert_eq!(read_text(&mut fresh), "during the pile");
    // An open WebSocket is not affected.
    send_text(&mut good, "still here");
    assert_eq!(read_text(&mut good), "still here");
}

#[test]
fn one_address_at_its_cap_churns_only_its_own_handshakes() {
    let limits = Limits {
        max_pending_per_address: 3,
        ..Limits::default()
    };
    let server = Server::start(limits);
    // A slow but honest client from another address, mid-request.
    let mut honest = connect_from(server.addr, 3);
    honest.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
    // The flood's first three, then three more: each newcomer evicts the flood's oldest.
    let mut first: Vec<TcpStream> = (0..3).map(|_| connect_from(server.addr, 2)).collect();
    std::thread::sleep(Duration::from_millis(50));
    let mut second: Vec<TcpStream> = (0..3).map(|_| connect_from(server.addr, 2)).collect();
    for tcp in &mut first {
        assert!(
            closed_within(tcp, Duration::from_secs(2)),
            "the address kept more than its cap"
        );
    }
    for tcp in &mut second {
        assert!(still_open(tcp), "the address's newest were evicted");
    }
    // The honest client finishes its request and gets its answer.
    honest.write_all(b"Host: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    honest.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn upgrade_beyond_max_connections_gets_503() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let mut first = ws_connect(server.addr);
    let first_conn = server.wait_open();
    match tungstenite::client(format!("ws://{}/ws", server.addr), connect(server.addr)) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 503);
        }
        Ok(_) => panic!("a second WebSocket was accepted"),
        Err(e) => panic!("unexpected error: {e}"),
    }
    first.close(None).unwrap();
    server.wait_closed(first_conn);
    let mut second = ws_connect(server.addr);
    server.wait_open();
    send_text(&mut second, "room for me");
    assert_eq!(read_text(&mut second), "room for me");
}

#[test]
fn client_that_does_not_read_is_closed_at_the_send_backlog() {
    let limits = Limits {
        send_backlog: 256 * 1024,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let _ws = ws_connect(server.addr); // never reads
    let conn = server.wait_open();
    // Far more than the kernel's socket buffers and the backlog together.
    server.command(Command::Flood {
        conn,
        size: 64 * 1024,
        count: 600,
    });
    server.wait_closed(conn);
    assert_eq!(server.open_connections(), 0);
}
