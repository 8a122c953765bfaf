//! `--auth webhook` through the real server: the worked example of
//! `docs/permissions.md` (a tiny Python operator service) admits, fixes nicknames,
//! grants and denies; the question carries the room, the token, the cookie and the
//! address; answers are cached; a service that is down or slow denies with a sentence
//! that says which, and the server goes on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::Connection;
use protocol::{ErrorCode, ServerMessage, Source};
use signaling::app::AppConfig;
use signaling::server::RunningServer;
use signaling::transport::Limits;

use crate::permissions::refused;
use crate::support::{LOCALHOST, free_port, server};

fn webhook_server(url: &str, timeout: Duration, cache: Duration) -> RunningServer {
    let config = auth::WebhookConfig::new(url, timeout, cache).unwrap();
    server(
        1,
        AppConfig {
            auth: auth::Provider::Webhook(config),
            ..AppConfig::default()
        },
        Limits::default(),
    )
}

/// The worked example's service, on a free port; stopped when dropped.
struct ExampleService {
    child: Child,
    url: String,
}

impl ExampleService {
    fn start() -> ExampleService {
        let port = free_port();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/examples/permissions_service.py"
        );
        let mut child = Command::new("python3")
            .args([script, &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (scripts/setup.d/90-python.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("listening"), "{line}");
        ExampleService {
            child,
            url: format!("http://127.0.0.1:{port}/join"),
        }
    }
}

impl Drop for ExampleService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_worked_examples_service_admits_its_invitations_with_their_grants_and_denies_the_rest() {
    let service = ExampleService::start();
    let s = webhook_server(
        &service.url,
        Duration::from_secs(2),
        Duration::from_secs(10),
    );
    let at = s.http_addr;
    let with = |token: &str| client::Credentials {
        access_token: Some(token.into()),
        password: None,
    };
    // Nobody may start the call but its host.
    let (code, reason) = refused(Connection::join_with(
        at,
        "standup",
        "x",
        LOCALHOST,
        with("inv-bo"),
    ));
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(reason.contains("wait for its host"), "{reason}");
    let ada = Connection::join_with(
        at,
        "standup",
        "typed in the page",
        LOCALHOST,
        with("inv-ada"),
    )
    .expect("the host starts the call");
    assert_eq!(ada.nickname(), "Ada", "the service's name is the nickname");
    assert!(ada.allowed().moderate);
    let viewer = Connection::join_with(at, "standup", "Vi", LOCALHOST, with("inv-viewer")).unwrap();
    assert!(viewer.allowed().publish.is_empty() && !viewer.allowed().data);
    assert!(viewer.allowed().subscribe && !viewer.allowed().moderate);
    assert_eq!(
        viewer.nickname(),
        "Vi",
        "no name from the service: the page's stays"
    );
    let bo = Connection::join_with(at, "standup", "x", LOCALHOST, with("inv-bo")).unwrap();
    assert_eq!(bo.allowed().publish, Source::ALL.to_vec());
    let (_, reason) = refused(Connection::join_with(
        at,
        "standup",
        "x",
        LOCALHOST,
        with("forged"),
    ));
    assert_eq!(reason, "this link has no valid invitation");
    let (_, reason) = refused(Connection::join_with(
        at,
        "other",
        "x",
        LOCALHOST,
        with("inv-bo"),
    ));
    assert!(reason.contains("not for room other"), "{reason}");
    let (_, reason) = refused(Connection::join(at, "standup", "x", LOCALHOST));
    assert_eq!(reason, "this link has no valid invitation");
    drop((ada, viewer, bo));
}

/// A service written in the test: it records each question's body and answers `answer`
/// after `delay` (never, with `None`).
struct FakeService {
    url: String,
    questions: Arc<Mutex<Vec<serde_json::Value>>>,
}

fn service(answer: &'static str, delay: Option<Duration>) -> FakeService {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/join", listener.local_addr().unwrap());
    let questions = Arc::new(Mutex::new(Vec::new()));
    let seen = questions.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let seen = seen.clone();
            std::thread::spawn(move || serve_one(stream, answer, delay, &seen));
        }
    });
    FakeService { url, questions }
}

fn serve_one(
    mut stream: TcpStream,
    answer: &str,
    delay: Option<Duration>,
    seen: &Mutex<Vec<serde_json::Value>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    seen.lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    let Some(delay) = delay else {
        std::thread::sleep(Duration::from_secs(30));
        return;
    };
    std::thread::sleep(delay);
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

#[test]
fn the_question_names_room_token_cookie_and_address_and_answers_are_cached() {
    let svc = service(
        r#"{"allow":true,"video":{"canPublishData":false}}"#,
        Some(Duration::ZERO),
    );
    let s = webhook_server(&svc.url, Duration::from_secs(2), Duration::from_secs(60));
    let creds = client::Credentials {
        access_token: Some("opaque-123".into()),
        password: None,
    };
    let a = Connection::join_with(s.http_addr, "q", "a", LOCALHOST, creds.clone()).unwrap();
    assert!(!a.allowed().data);
    let b = Connection::join_with(s.http_addr, "q", "b", LOCALHOST, creds).unwrap();
    assert!(!b.allowed().data, "the cached answer grants the same");
    {
        let q = svc.questions.lock().unwrap();
        assert_eq!(
            q.len(),
            2,
            "the room is not empty for the second: another question {q:?}"
        );
        assert_eq!(q[0]["room"], "q");
        assert_eq!(q[0]["accessToken"], "opaque-123");
        assert_eq!(q[0]["address"], "127.0.0.1");
        assert_eq!(q[0]["creating"], true);
        assert_eq!(q[1]["creating"], false);
    }
    // The same question again within the cache's time is not asked again.
    let c = Connection::join_with(
        s.http_addr,
        "q",
        "c",
        LOCALHOST,
        client::Credentials {
            access_token: Some("opaque-123".into()),
            password: None,
        },
    )
    .unwrap();
    assert_eq!(
        svc.questions.lock().unwrap().len(),
        2,
        "answered from the cache"
    );
    // A page's cookie goes with the question.
    let headers = [("Cookie", "session=abc; theme=dark")];
    let mut ws = raw_join(s.http_addr, "q", &headers);
    let joined = read_until(&mut ws, |m| matches!(m, ServerMessage::Joined { .. }));
    assert!(joined, "the cookie holder joins");
    {
        let q = svc.questions.lock().unwrap();
        assert_eq!(q.last().unwrap()["cookie"], "session=abc; theme=dark");
    }
    // Behind a trusted proxy, the client's address is the one the proxy saw; from anyone
    // else, X-Forwarded-For is not believed.
    let config =
        auth::WebhookConfig::new(&svc.url, Duration::from_secs(2), Duration::ZERO).unwrap();
    let proxied = server(
        1,
        AppConfig {
            auth: auth::Provider::Webhook(config),
            trusted_proxies: vec![LOCALHOST],
            ..AppConfig::default()
        },
        Limits::default(),
    );
    let forwarded = [("X-Forwarded-For", "198.51.100.9, 203.0.113.50")];
    let mut ws = raw_join(proxied.http_addr, "p", &forwarded);
    assert!(read_until(&mut ws, |m| matches!(
        m,
        ServerMessage::Joined { .. }
    )));
    assert_eq!(
        svc.questions.lock().unwrap().last().unwrap()["address"],
        "203.0.113.50"
    );
    let mut ws = raw_join(s.http_addr, "p", &forwarded);
    assert!(read_until(&mut ws, |m| matches!(
        m,
        ServerMessage::Joined { .. }
    )));
    assert_eq!(
        svc.questions.lock().unwrap().last().unwrap()["address"],
        "127.0.0.1"
    );
    drop((a, b, c));
}

type Ws = tungstenite::WebSocket<TcpStream>;

/// A raw WebSocket whose upgrade request carries `headers`, joined to `room`.
fn raw_join(http: SocketAddr, room: &str, headers: &[(&'static str, &str)]) -> Ws {
    use tungstenite::client::IntoClientRequest;
    let stream = TcpStream::connect(http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut request = format!("ws://{http}/ws").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    let (mut ws, _) = tungstenite::client::client(request, stream).unwrap();
    let join = serde_json::json!({"type": "join", "room": room, "nickname": "raw"});
    ws.send(tungstenite::Message::text(join.to_string()))
        .unwrap();
    ws
}

fn read_until(ws: &mut Ws, f: impl Fn(&ServerMessage) -> bool) -> bool {
    while let Ok(m) = ws.read() {
        if let tungstenite::Message::Text(t) = m
            && let Ok(m) = serde_json::from_str::<ServerMessage>(t.as_str())
            && f(&m)
        {
            return true;
        }
    }
    false
}

#[test]
fn a_service_down_slow_or_answering_nonsense_denies_with_why_and_the_server_goes_on() {
    // Down: nothing listens on its port.
    let down = format!("http://127.0.0.1:{}/join", free_port());
    let s = webhook_server(&down, Duration::from_secs(2), Duration::from_secs(10));
    let (code, reason) = refused(Connection::join(s.http_addr, "r", "x", LOCALHOST));
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(reason.contains("cannot be reached"), "{reason}");
    drop(s);

    // Slow: it never answers; the join is refused after the timeout, and a second join
    // meanwhile is refused the same way (not queued behind the first).
    let slow = service("{}", None);
    let s = webhook_server(
        &slow.url,
        Duration::from_millis(300),
        Duration::from_secs(10),
    );
    let at = s.http_addr;
    let second = std::thread::spawn(move || refused(Connection::join(at, "r", "y", LOCALHOST)));
    let (_, reason) = refused(Connection::join(at, "r", "x", LOCALHOST));
    assert!(reason.contains("did not answer in time"), "{reason}");
    assert!(second.join().unwrap().1.contains("did not answer in time"));
    // A failure is not cached: the next join asks again.
    let before = slow.questions.lock().unwrap().len();
    let _ = refused(Connection::join(at, "r", "x", LOCALHOST));
    assert_eq!(slow.questions.lock().unwrap().len(), before + 1);
    drop(s);

    // Nonsense: an answer that is not the webhook's JSON.
    let nonsense = service("<html>maintenance</html>", Some(Duration::ZERO));
    let s = webhook_server(
        &nonsense.url,
        Duration::from_secs(2),
        Duration::from_secs(10),
    );
    let (_, reason) = refused(Connection::join(s.http_addr, "r", "x", LOCALHOST));
    assert!(
        reason.contains("not one this server understands"),
        "{reason}"
    );
    // The server is fine: /health answers.
    assert!(crate::support::get(s.http_addr, "/health").is_some());
}
