//! Plain HTTP on the signalling port: reading one request, routing it, writing the response.
//!
//! Every connection carries one request and is then closed (`Connection: close`), or becomes a
//! WebSocket after `GET /ws`. The code here does no I/O: [`RequestReader`] collects bytes and
//! [`route`] turns a complete request into the bytes to send back.
//!
//! | file | concern |
//! |---|---|
//! | `request.rs` | collecting a request's bytes, finding its header, reading header fields |
//! | `response.rs` | the bytes of a response |
//! | `form.rs` | `POST /call`: the landing page's form, and random room names |
//! | `upgrade.rs` | `GET /ws`: checking the WebSocket upgrade |

mod form;
mod request;
mod response;
mod upgrade;

use crate::assets::asset;

pub(crate) use request::RequestReader;
pub(crate) use response::{CONTENT_SECURITY_POLICY, policy_with_nodes, response};

use form::post_call;
use request::{MAX_HEADERS, Request};
use response::{method_not_allowed, response_with_policy, text_response};
use upgrade::upgrade;

/// What to do with the bytes collected so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// The header is not complete yet: read more.
    NeedHeader,
    /// The header is complete, and the body is complete once this many bytes in all have arrived.
    NeedBody(usize),
    /// Send these bytes, then close the connection.
    Respond(Vec<u8>),
    /// Send the metrics page (`GET /metrics` from someone allowed to read it); with `head`,
    /// its header only.
    Metrics {
        /// A `HEAD` request.
        head: bool,
    },
    /// Send this `101 Switching Protocols` response; the connection is a WebSocket from now on.
    /// `leftover` holds bytes the client sent after its request (the first WebSocket frames).
    Upgrade {
        /// The complete `101` response.
        response: Vec<u8>,
        /// Bytes that followed the request.
        leftover: Vec<u8>,
        /// The request's `Cookie` header.
        cookie: Option<String>,
        /// The request's `X-Forwarded-For` header.
        forwarded_for: Option<String>,
    },
}

/// Who may read `/metrics`: with a token set, whoever presents it
/// (`Authorization: Bearer <token>`); without one, only clients on this host (loopback),
/// so that counters are never public by surprise.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MetricsAccess<'a> {
    /// The token the operator set, if any.
    pub(crate) token: Option<&'a str>,
    /// Whether the request comes from a loopback address.
    pub(crate) from_loopback: bool,
}

/// What routing a request depends on besides the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The largest request, header and body together.
    pub(crate) max_request: usize,
    /// The server has as many WebSockets as it may.
    pub(crate) ws_full: bool,
    /// Who may read `/metrics`.
    pub(crate) metrics: MetricsAccess<'a>,
    /// The port speaks TLS but this request came in plain text: it is redirected.
    pub(crate) plain_on_tls_port: bool,
    /// The path everything is served under behind a reverse proxy (`--base-path`), ""
    /// for the root; the probes (`/health`, `/ready`, `/metrics`) answer at the root too.
    pub(crate) base: &'a str,
    /// The page (`index.html` with its links under `base`).
    pub(crate) page: &'a [u8],
    /// The page's `Content-Security-Policy` (in a cluster, it may connect to the others).
    pub(crate) page_policy: &'a str,
    /// What `/health` and `/ready` say.
    pub(crate) health: &'a Health,
}

/// The server's health as the probes report it (set by the signalling thread every turn).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// A thread that has stopped turning, in words (`/health` and `/ready` answer 503).
    pub stalled: Option<String>,
    /// The server is draining (SIGTERM): it takes no new sessions (`/ready` answers 503).
    pub draining: bool,
}

static HEALTHY: Health = Health {
    stalled: None,
    draining: false,
};

impl Default for Context<'_> {
    fn default() -> Self {
        Context {
            max_request: 16 * 1024,
            ws_full: false,
            metrics: MetricsAccess::default(),
            plain_on_tls_port: false,
            base: "",
            page: asset("index.html").map_or(&[], |(_, body)| body),
            page_policy: CONTENT_SECURITY_POLICY,
            health: &HEALTHY,
        }
    }
}

/// Decides what to do with the request collected in `req`.
pub(crate) fn route(req: &RequestReader, ctx: &Context<'_>) -> Action {
    let max_request = ctx.max_request;
    let Some(end) = req.header_end else {
        if req.buf.len() >= max_request {
            return text_response(431, "the request header is too large", false);
        }
        // Anything but a request line (for example a TLS ClientHello where no TLS is
        // configured) is refused at once instead of waiting for the handshake timeout.
        if req.buf.first().is_some_and(|b| !b.is_ascii_uppercase()) {
            return text_response(
                400,
                "this port speaks plain HTTP and WebSocket (the server has no --tls-cert)",
                false,
            );
        }
        return Action::NeedHeader;
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(&req.buf[..end]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return text_response(400, "the request header is malformed", false);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return text_response(431, "the request has too many header fields", false);
        }
        Err(_) => return text_response(400, "the request header is malformed", false),
    }
    let request = Request {
        method: parsed.method.unwrap_or(""),
        target: parsed.path.unwrap_or(""),
        version: parsed.version.unwrap_or(0),
        headers: parsed.headers,
    };
    if ctx.plain_on_tls_port {
        return to_https(&request);
    }
    route_request(&request, &req.buf, end, ctx)
}

fn route_request(req: &Request<'_>, buf: &[u8], header_end: usize, ctx: &Context<'_>) -> Action {
    let full = req.target.split(['?', '#']).next().unwrap_or("");
    let head = req.method == "HEAD";
    let get_or_head = req.method == "GET" || head;
    let path = match full.strip_prefix(ctx.base) {
        Some("") => "/",
        Some(p) if p.starts_with('/') => p,
        // Outside the base path only the probes answer.
        _ if matches!(full, "/health" | "/ready" | "/metrics") => full,
        _ => return text_response(404, "not found", head),
    };

    let file = match path {
        "/" => Some("index.html"),
        // Every file under web/ (exact match in the embedded table; anything else is 404).
        _ if path.starts_with("/static/") => Some(&path["/static/".len()..]),
        _ => match path.strip_prefix("/call/") {
            // The page itself explains a name that `join` would refuse, with a way back.
            Some(room) if !room.is_empty() && !room.contains('/') => Some("index.html"),
            _ => None,
        },
    };
    if let Some(file) = file {
        if !get_or_head {
            return method_not_allowed("GET, HEAD");
        }
        if file == "index.html" {
            let html = "text/html; charset=utf-8";
            let policy = ctx.page_policy;
            return Action::Respond(response_with_policy(200, &[], html, ctx.page, head, policy));
        }
        let Some((content_type, body)) = asset(file) else {
            return text_response(404, "not found", head);
        };
        return Action::Respond(response(200, &[], content_type, body, head));
    }

    match path {
        "/health" | "/ready" if get_or_head => probe(path == "/ready", ctx.health, head),
        "/health" | "/ready" => method_not_allowed("GET, HEAD"),
        "/metrics" if get_or_head => metrics_access(req, ctx.metrics, head),
        "/metrics" => method_not_allowed("GET, HEAD"),
        "/call" if req.method == "POST" => post_call(req, buf, header_end, ctx),
        "/call" => method_not_allowed("POST"),
        "/ws" if req.method == "GET" => upgrade(req, buf, header_end, ctx.ws_full),
        "/ws" => method_not_allowed("GET"),
        _ => text_response(404, "not found", head),
    }
}

/// `/health`: 200 while every thread turns, 503 naming the one that does not (a
/// supervisor restarts the process). `/ready` (`ready`): the same, and 503 while draining
/// (a load balancer sends no new calls).
fn probe(ready: bool, health: &Health, head: bool) -> Action {
    let text = "text/plain; charset=utf-8";
    if let Some(stalled) = &health.stalled {
        let body = format!("stalled: {stalled}\n");
        return Action::Respond(response(503, &[], text, body.as_bytes(), head));
    }
    if ready && health.draining {
        let body = b"draining: the server is shutting down and takes no new calls\n";
        return Action::Respond(response(503, &[], text, body, head));
    }
    let body: &[u8] = if ready { b"ready" } else { b"ok" };
    Action::Respond(response(200, &[], text, body, head))
}

/// A plain-text request on the TLS port: a GET or HEAD is redirected to the same URL over
/// https; anything else is told to use https.
fn to_https(req: &Request<'_>) -> Action {
    let head = req.method == "HEAD";
    let host = req
        .header("host")
        .and_then(|h| std::str::from_utf8(h).ok())
        .map(str::trim)
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()));
    match host {
        Some(host) if req.method == "GET" || head => {
            let location = format!("https://{host}{}", req.target);
            Action::Respond(response(
                308,
                &[("Location", &location)],
                "text/plain; charset=utf-8",
                format!("This server speaks https only: {location}\n").as_bytes(),
                head,
            ))
        }
        _ => text_response(400, "this server speaks https only; use https://", head),
    }
}

/// `GET /metrics`: the page, or why not.
fn metrics_access(req: &Request<'_>, access: MetricsAccess<'_>, head: bool) -> Action {
    let Some(token) = access.token else {
        if access.from_loopback {
            return Action::Metrics { head };
        }
        return text_response(
            403,
            "metrics are served to this host only; set a metrics token \
             (--metrics-token or PEERCALLS_METRICS_TOKEN) to read them from elsewhere",
            head,
        );
    };
    let presented = req
        .header("authorization")
        .and_then(|v| {
            v.strip_prefix(b"Bearer ")
                .or_else(|| v.strip_prefix(b"bearer "))
        })
        .map(<[u8]>::trim_ascii);
    if presented.is_some_and(|p| same_secret(p, token.as_bytes())) {
        return Action::Metrics { head };
    }
    Action::Respond(response(
        401,
        &[("WWW-Authenticate", "Bearer realm=\"metrics\"")],
        "text/plain; charset=utf-8",
        b"send the metrics token: Authorization: Bearer <token>\n",
        head,
    ))
}

/// Compares a presented secret with the real one in time that does not depend on where
/// they differ (only on the length).
fn same_secret(presented: &[u8], secret: &[u8]) -> bool {
    presented.len() == secret.len()
        && presented
            .iter()
            .zip(secret)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 16 * 1024;

    fn run(request: &[u8]) -> Action {
        let mut reader = RequestReader::default();
        reader.push(request);
        route(&reader, &Context::default())
    }

    fn respond(request: &[u8]) -> String {
        match run(request) {
            Action::Respond(bytes) => String::from_utf8(bytes).unwrap(),
            other => panic!("expected a response, got {other:?}"),
        }
    }

    #[test]
    fn routes() {
        let page = respond(b"GET /call/abc?x=1 HTTP/1.1\r\n\r\n");
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(page.contains("text/html; charset=utf-8"));
        let head = respond(b"HEAD /static/app.js HTTP/1.1\r\n\r\n");
        assert!(head.contains("text/javascript"));
        assert!(head.ends_with("\r\n\r\n"));
        assert!(respond(b"GET /call/ HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(respond(b"GET /call/a/b HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(respond(b"GET /static/../Cargo.toml HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(respond(b"DELETE / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(respond(b"GET /health HTTP/1.0\r\n\r\n").ends_with("\r\n\r\nok"));
        assert!(respond(b"\x16\x03\x01").starts_with("HTTP/1.1 400"));
        assert!(respond(b"GET / HTTP/1.1\r\nbad header\r\n\r\n").starts_with("HTTP/1.1 400"));
    }

    #[test]
    fn every_response_carries_the_security_headers() {
        for request in [
            &b"GET /call/abc HTTP/1.1\r\n\r\n"[..],
            b"GET /static/app.js HTTP/1.1\r\n\r\n",
            b"GET /nothing HTTP/1.1\r\n\r\n",
        ] {
            let r = respond(request);
            for header in [
                "\r\nContent-Security-Policy: default-src 'none'; script-src 'self';",
                "frame-ancestors 'none'\r\n",
                "\r\nX-Content-Type-Options: nosniff\r\n",
                "\r\nX-Frame-Options: DENY\r\n",
                "\r\nReferrer-Policy: no-referrer\r\n",
            ] {
                assert!(r.contains(header), "{header} missing from {r}");
            }
        }
    }

    /// The policy allows no inline script and no inline style: the page has none.
    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = String::from_utf8(crate::assets::index_page("")).unwrap();
        for (i, tag) in page.match_indices("<script").map(|(i, _)| (i, &page[i..])) {
            let open = &tag[..tag.find('>').unwrap()];
            assert!(
                open.contains(" src=\""),
                "inline script at byte {i}: {open}"
            );
        }
        assert!(!page.contains(" style=\""), "an inline style attribute");
        assert!(!page.contains("<style"), "an inline style sheet");
        for (i, _) in page.match_indices(" on") {
            let name: String = page[i + 3..]
                .chars()
                .take_while(char::is_ascii_lowercase)
                .collect();
            let handler = page[i + 3 + name.len()..].starts_with('=');
            assert!(!handler, "an inline event handler: on{name}");
        }
    }

    #[test]
    fn post_call() {
        let post = |body: &str| {
            format!(
                "POST /call HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        assert!(
            respond(post("call=my.room").as_bytes()).contains("\r\nLocation: /call/my.room\r\n")
        );
        assert!(respond(post("call=+x+").as_bytes()).contains("\r\nLocation: /call/x\r\n"));
        let random = respond(post("call=").as_bytes());
        assert!(random.starts_with("HTTP/1.1 302 Found\r\n"));
        for bad in [
            "call=a%20b",
            "call=..",
            "call=%ff",
            &format!("call={}", "x".repeat(65)),
        ] {
            let r = respond(post(bad).as_bytes());
            assert!(r.starts_with("HTTP/1.1 400"), "{bad}: {r}");
        }
        // The body has not arrived yet.
        let partial = "POST /call HTTP/1.1\r\nContent-Length: 8\r\n\r\ncall";
        assert_eq!(run(partial.as_bytes()), Action::NeedBody(partial.len() + 4));
        let huge = "POST /call HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n";
        assert!(respond(huge.as_bytes()).starts_with("HTTP/1.1 413"));
        let overflow = format!(
            "POST /call HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            usize::MAX
        );
        assert!(respond(overflow.as_bytes()).starts_with("HTTP/1.1 413"));
        let two = "POST /call HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
        assert!(respond(two.as_bytes()).starts_with("HTTP/1.1 400"));
        let json =
            "POST /call HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert!(respond(json.as_bytes()).starts_with("HTTP/1.1 415"));
        let chunked = "POST /call HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(respond(chunked.as_bytes()).starts_with("HTTP/1.1 411"));
    }

    #[test]
    fn websocket_upgrade() {
        let request = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
                       Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        match run(format!("{request}\u{81}").as_bytes()) {
            Action::Upgrade {
                response, leftover, ..
            } => {
                let response = String::from_utf8(response).unwrap();
                assert!(
                    response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")
                );
                assert_eq!(leftover, "\u{81}".as_bytes());
            }
            other => panic!("{other:?}"),
        }
        let mut reader = RequestReader::default();
        reader.push(request.as_bytes());
        let full = Context {
            ws_full: true,
            ..Context::default()
        };
        match route(&reader, &full) {
            Action::Respond(r) => assert!(r.starts_with(b"HTTP/1.1 503")),
            other => panic!("{other:?}"),
        }
        let no_key = request.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        assert!(respond(no_key.as_bytes()).starts_with("HTTP/1.1 400"));
        let old = request.replace("Version: 13", "Version: 8");
        assert!(respond(old.as_bytes()).contains("Sec-WebSocket-Version: 13\r\n"));
        let plain = request.replace("Upgrade: WebSocket\r\n", "");
        assert!(respond(plain.as_bytes()).starts_with("HTTP/1.1 400"));
        let http10 = request.replace("HTTP/1.1", "HTTP/1.0");
        assert!(respond(http10.as_bytes()).starts_with("HTTP/1.1 400"));
        let post = request.replace("GET", "POST");
        assert!(respond(post.as_bytes()).starts_with("HTTP/1.1 405"));
    }

    #[test]
    fn oversized_header() {
        let mut reader = RequestReader::default();
        reader.push(b"GET / HTTP/1.1\r\nX: ");
        reader.push(&vec![b'a'; MAX]);
        match route(&reader, &Context::default()) {
            Action::Respond(r) => assert!(r.starts_with(b"HTTP/1.1 431")),
            other => panic!("{other:?}"),
        }
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect();
        let request = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(respond(request.as_bytes()).starts_with("HTTP/1.1 431"));
    }

    fn metrics(request: &str, access: MetricsAccess<'_>) -> Result<bool, String> {
        let mut reader = RequestReader::default();
        reader.push(request.as_bytes());
        let ctx = Context {
            metrics: access,
            ..Context::default()
        };
        match route(&reader, &ctx) {
            Action::Metrics { head } => Ok(head),
            Action::Respond(r) => Err(String::from_utf8(r).unwrap()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn metrics_without_a_token_are_for_this_host_only() {
        let get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        let local = MetricsAccess {
            token: None,
            from_loopback: true,
        };
        assert_eq!(metrics(get, local), Ok(false));
        let head = get.replace("GET", "HEAD");
        assert_eq!(metrics(&head, local), Ok(true));
        let remote = MetricsAccess {
            token: None,
            from_loopback: false,
        };
        let refused = metrics(get, remote).unwrap_err();
        assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
        assert!(refused.contains("PEERCALLS_METRICS_TOKEN"), "{refused}");
        let post = get.replace("GET", "POST");
        assert!(
            metrics(&post, local)
                .unwrap_err()
                .starts_with("HTTP/1.1 405")
        );
    }

    #[test]
    fn metrics_with_a_token_ask_everyone_for_it() {
        let access = |from_loopback| MetricsAccess {
            token: Some("s3cret"),
            from_loopback,
        };
        let get = |auth: &str| format!("GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
        for from_loopback in [true, false] {
            let good = get("Authorization: Bearer s3cret\r\n");
            assert_eq!(metrics(&good, access(from_loopback)), Ok(false));
            for bad in [
                "",
                "Authorization: Bearer s3cre\r\n",
                "Authorization: Bearer s3cret2\r\n",
                "Authorization: Basic czNjcmV0\r\n",
                "Authorization: s3cret\r\n",
            ] {
                let refused = metrics(&get(bad), access(from_loopback)).unwrap_err();
                assert!(refused.starts_with("HTTP/1.1 401"), "{bad}: {refused}");
                assert!(refused.contains("WWW-Authenticate: Bearer"), "{refused}");
            }
        }
    }
}
