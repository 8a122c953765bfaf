//! WebSockets: the upgrade, messages both ways, closing.

use super::*;

#[test]
fn websocket_echo_round_trip() {
    let server = Server::start(Limits::default());
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    assert_eq!(server.open_connections(), 1);

    send_text(&mut ws, r#"{"type":"ping"}"#);
    assert_eq!(read_text(&mut ws), r#"{"type":"ping"}"#);
    let text = server.wait_for("Text", |e| matches!(e, TransportEvent::Text { .. }));
    assert_eq!(
        text,
        TransportEvent::Text {
            conn,
            text: r#"{"type":"ping"}"#.into()
        }
    );
    // A message split over several frames arrives whole; unicode survives.
    ws.write(Message::Frame(
        tungstenite::protocol::frame::Frame::message(
            "héllo ".as_bytes().to_vec(),
            tungstenite::protocol::frame::coding::OpCode::Data(
                tungstenite::protocol::frame::coding::Data::Text,
            ),
            false,
        ),
    ))
    .unwrap();
    ws.write(Message::Frame(
        tungstenite::protocol::frame::Frame::message(
            "wörld".as_bytes().to_vec(),
            tungstenite::protocol::frame::coding::OpCode::Data(
                tungstenite::protocol::frame::coding::Data::Continue,
            ),
            true,
        ),
    ))
    .unwrap();
    ws.flush().unwrap();
    assert_eq!(read_text(&mut ws), "héllo wörld");

    // WebSocket pings are answered.
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match ws.read().unwrap() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }

    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
    server.wait_closed(conn);
    assert_eq!(server.open_connections(), 0);
    let closed = server
        .drain_events()
        .into_iter()
        .filter(|e| *e == TransportEvent::Closed { conn })
        .count();
    assert_eq!(closed, 0, "Closed is reported once");
}

#[test]
fn frames_sent_with_the_upgrade_request_are_read() {
    let server = Server::start(Limits::default());
    let mut tcp = connect(server.addr);
    let mut request = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec();
    // A masked text frame "hi" in the same write.
    let mask = [1u8, 2, 3, 4];
    request.extend_from_slice(&[0x81, 0x82]);
    request.extend_from_slice(&mask);
    request.extend(b"hi".iter().zip(mask).map(|(b, m)| b ^ m));
    tcp.write_all(&request).unwrap();

    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    let expected_frame = [0x81, 0x02, b'h', b'i'];
    while !raw.ends_with(&expected_frame) {
        let n = tcp.read(&mut buf).unwrap();
        assert_ne!(n, 0, "closed early: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
}

#[test]
fn invalid_upgrade_is_400() {
    let server = Server::start(Limits::default());
    assert_eq!(get(server.addr, "/ws").status, 400);
    let no_key = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(http(server.addr, no_key.as_bytes()).status, 400);
    let old = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let r = http(server.addr, old.as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    assert_eq!(server.drain_events(), []);
}

#[test]
fn close_delivers_code_and_reason() {
    let server = Server::start(Limits::default());
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    server.command(Command::Close(
        conn,
        4000,
        "replaced by another connection".into(),
    ));
    let (frame, _) = read_close(&mut ws);
    assert_eq!(u16::from(frame.code), 4000);
    assert_eq!(frame.reason.as_str(), "replaced by another connection");
    server.wait_closed(conn);
    assert_eq!(server.open_connections(), 0);
    // The client finishes the closing handshake cleanly.
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

#[test]
fn many_messages_in_one_batch_are_all_delivered() {
    let server = Server::start(Limits::default());
    let mut ws = ws_connect(server.addr);
    let conn = server.wait_open();
    server.command(Command::Flood {
        conn,
        size: 1000,
        count: 500,
    });
    for _ in 0..500 {
        assert_eq!(read_text(&mut ws).len(), 1000);
    }
}
