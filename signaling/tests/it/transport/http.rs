//! Plain HTTP on the signalling port: pages, static files, routes, the form.

use super::*;

#[test]
fn landing_and_call_pages_are_html() {
    let server = Server::start(Limits::default());
    // web/index.html with the base path ("" here) written in.
    let index = signaling::assets::index_page("");
    for path in ["/", "/call/team-standup", "/call/x?from=link"] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.body, index);
        assert!(
            r.header("content-security-policy")
                .is_some_and(|csp| csp.contains("script-src 'self';")),
            "{path}: no Content-Security-Policy"
        );
    }
    let head = http(server.addr, b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(index.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    let health = get(server.addr, "/health");
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok"[..]));
}

#[test]
fn static_files_have_their_content_types() {
    let server = Server::start(Limits::default());
    let js = get(server.addr, "/static/app.js");
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.body, signaling::assets::asset("app.js").unwrap().1);
    let css = get(server.addr, "/static/style.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(css.header("cache-control"), Some("no-cache"));
}

#[test]
fn unknown_paths_are_404() {
    let server = Server::start(Limits::default());
    for path in [
        "/nope",
        "/static/",
        "/static/../Cargo.toml",
        "/call/",
        "/call/a/b",
    ] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.body.is_empty());
    }
    let r = http(server.addr, b"DELETE / HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 405);
}

#[test]
fn post_call_redirects_to_the_room() {
    let server = Server::start(Limits::default());
    let named = post_form(server.addr, "call=team-standup");
    assert_eq!(named.status, 302);
    assert_eq!(named.header("location"), Some("/call/team-standup"));
    let decoded = post_form(server.addr, "x=1&call=Room%2E1_a");
    assert_eq!(decoded.header("location"), Some("/call/Room.1_a"));

    let mut seen = Vec::new();
    for body in ["call=", "", "other=1"] {
        let random = post_form(server.addr, body);
        assert_eq!(random.status, 302, "{body:?}");
        let location = random.header("location").unwrap();
        let room = location.strip_prefix("/call/").unwrap();
        assert_eq!(room.len(), 12, "{room}");
        assert!(
            room.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert!(!seen.contains(&room.to_owned()));
        seen.push(room.to_owned());
    }

    let too_long = format!("call={}", "a".repeat(65));
    for body in [
        "call=a+b",
        "call=a%2Fb",
        "call=%3Cscript%3E",
        "call=..",
        too_long.as_str(),
    ] {
        let bad = post_form(server.addr, body);
        assert_eq!(bad.status, 400, "{body}");
        let text = String::from_utf8(bad.body).unwrap();
        assert!(text.contains("A-Z") && text.contains("1 to 64"), "{text}");
    }
}

#[test]
fn oversized_requests_are_refused() {
    let limits = Limits {
        max_http_request: 4096,
        ..Limits::default()
    };
    let server = Server::start(limits);
    let big_header = format!("GET / HTTP/1.1\r\nX-Filler: {}\r\n\r\n", "a".repeat(8192));
    assert_eq!(http(server.addr, big_header.as_bytes()).status, 431);
    let big_body = "POST /call HTTP/1.1\r\nContent-Length: 1000000\r\n\r\ncall=x";
    assert_eq!(http(server.addr, big_body.as_bytes()).status, 413);
    // The server is still fine.
    assert_eq!(get(server.addr, "/health").status, 200);
}
