//! Plain HTTP on the signalling port: reading one request, routing it, writing the response.
//!
//! Every connection carries one request and is then closed (`Connection: close`), or becomes a
//! WebSocket after `GET /ws`. The code here does no I/O: [`RequestReader`] collects bytes and
//! [`route`] turns a complete request into the bytes to send back.

use std::fmt::Write as _;
use std::io;

use crate::assets::asset;

/// The most headers a request may have; more gets `431`.
const MAX_HEADERS: usize = 48;

/// The length of a room id that `POST /call` makes up when the form names no room.
pub(crate) const RANDOM_ROOM_LEN: usize = 12;

/// Returns whether `s` is a valid room name: 1 to 64 characters, each one of
/// `A-Z a-z 0-9 - _ .`.
///
/// This is the one definition of a valid room name; the HTTP form and the signalling
/// protocol's `join` both use it.
pub fn valid_room_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What the server tells someone whose room name was refused.
const ROOM_RULES: &str = "A room name is 1 to 64 characters, each a letter (A-Z, a-z), a digit (0-9), \
     '-', '_' or '.', and not only dots. Leave the field empty for a random room.";

/// Collects the bytes of one HTTP request and finds where its header ends.
///
/// The search for the end of the header resumes where it stopped, so a client that sends its
/// request a byte at a time costs linear time, not quadratic.
#[derive(Debug, Default)]
pub(crate) struct RequestReader {
    buf: Vec<u8>,
    /// Bytes before this offset hold no end of header.
    scanned: usize,
    /// The length of the header, including the blank line that ends it.
    header_end: Option<usize>,
}

impl RequestReader {
    /// Appends bytes read from the connection.
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.header_end.is_none() {
            self.header_end = scan_header_end(&self.buf, self.scanned);
            // A line feed at the very end may still start "\n\r\n" or "\n\n".
            self.scanned = self.buf.len().saturating_sub(2);
        }
    }

    /// How many bytes have been collected.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}

/// Finds the end of an HTTP header (a blank line: `\n\n` or `\n\r\n`) at or after `from`.
fn scan_header_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match (buf.get(i + 1), buf.get(i + 2)) {
                (Some(b'\n'), _) => return Some(i + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

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

/// Decides what to do with the request collected in `req`.
///
/// `max_request` bounds the header and body together; `ws_full` tells whether the server
/// already has as many WebSockets as it may; `metrics` who may read `/metrics`.
pub(crate) fn route(
    req: &RequestReader,
    max_request: usize,
    ws_full: bool,
    metrics: MetricsAccess<'_>,
) -> Action {
    let Some(end) = req.header_end else {
        if req.buf.len() >= max_request {
            return text_response(431, "the request header is too large", false);
        }
        // Anything but a request line (for example a TLS ClientHello) is refused at once
        // instead of waiting for the handshake timeout.
        if req.buf.first().is_some_and(|b| !b.is_ascii_uppercase()) {
            return text_response(400, "this port speaks HTTP and WebSocket only", false);
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
    route_request(&request, &req.buf, end, max_request, ws_full, metrics)
}

/// A parsed request header.
struct Request<'a> {
    method: &'a str,
    target: &'a str,
    /// The minor version: `1` for HTTP/1.1, `0` for HTTP/1.0.
    version: u8,
    headers: &'a [httparse::Header<'a>],
}

impl Request<'_> {
    /// The value of the first header field called `name` (compared without case).
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// All values of the header fields called `name`.
    fn headers<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Whether any comma-separated token in the `name` header fields equals `token`
    /// (compared without case).
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers(name).any(|value| {
            value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }
}

fn route_request(
    req: &Request<'_>,
    buf: &[u8],
    header_end: usize,
    max_request: usize,
    ws_full: bool,
    metrics: MetricsAccess<'_>,
) -> Action {
    let path = req.target.split(['?', '#']).next().unwrap_or("");
    let head = req.method == "HEAD";
    let get_or_head = req.method == "GET" || head;

    let file = match path {
        "/" => Some("index.html"),
        // Every file under web/ (exact match in the embedded table; anything else is 404).
        _ if path.starts_with("/static/") => Some(&path["/static/".len()..]),
        _ => match path.strip_prefix("/call/") {
            Some(room) if !room.is_empty() && !room.contains('/') => Some("index.html"),
            _ => None,
        },
    };
    if let Some(file) = file {
        if !get_or_head {
            return method_not_allowed("GET, HEAD");
        }
        let Some((content_type, body)) = asset(file) else {
            return text_response(404, "not found", head);
        };
        return Action::Respond(response(200, &[], content_type, body, head));
    }

    match path {
        "/health" if get_or_head => {
            Action::Respond(response(200, &[], "text/plain; charset=utf-8", b"ok", head))
        }
        "/health" => method_not_allowed("GET, HEAD"),
        "/metrics" if get_or_head => metrics_access(req, metrics, head),
        "/metrics" => method_not_allowed("GET, HEAD"),
        "/call" if req.method == "POST" => post_call(req, buf, header_end, max_request),
        "/call" => method_not_allowed("POST"),
        "/ws" if req.method == "GET" => upgrade(req, buf, header_end, ws_full),
        "/ws" => method_not_allowed("GET"),
        _ => text_response(404, "not found", head),
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

/// `POST /call`: the landing page's form. Redirects to the call page of the named room, or of a
/// new random room when the name is empty.
fn post_call(req: &Request<'_>, buf: &[u8], header_end: usize, max_request: usize) -> Action {
    if req.header("transfer-encoding").is_some() {
        return text_response(411, "send the form with a Content-Length", false);
    }
    let mut length = None;
    for value in req.headers("content-length") {
        let parsed = std::str::from_utf8(value)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<usize>().ok());
        match (parsed, length) {
            (None, _) => return text_response(400, "the Content-Length is not valid", false),
            (Some(n), Some(m)) if n != m => {
                return text_response(400, "the Content-Length is not valid", false);
            }
            (Some(n), _) => length = Some(n),
        }
    }
    let length = length.unwrap_or(0);
    let Some(total) = header_end
        .checked_add(length)
        .filter(|&total| total <= max_request)
    else {
        return text_response(413, "the form is too large", false);
    };
    if buf.len() < total {
        return Action::NeedBody(total);
    }
    if let Some(content_type) = req.header("content-type") {
        let essence = content_type.split(|&b| b == b';').next().unwrap_or(b"");
        if !essence
            .trim_ascii()
            .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
        {
            return text_response(
                415,
                "send the form as application/x-www-form-urlencoded",
                false,
            );
        }
    }
    let body = &buf[header_end..total];
    let name = match form_field(body, "call") {
        Ok(name) => name.unwrap_or_default(),
        Err(()) => {
            return text_response(
                400,
                "the form is not valid application/x-www-form-urlencoded",
                false,
            );
        }
    };
    let name = name.trim();
    let room = if name.is_empty() {
        match random_room_id() {
            Ok(id) => id,
            Err(e) => {
                tracing::error!("cannot read random bytes for a room id: {e}");
                return text_response(500, "could not make up a room name; try again", false);
            }
        }
    } else if valid_room_name(name) && !name.bytes().all(|b| b == b'.') {
        // A name of dots only would be a "." or ".." path segment, which browsers remove.
        name.to_owned()
    } else {
        return text_response(400, ROOM_RULES, false);
    };
    let location = format!("/call/{room}");
    Action::Respond(response(
        302,
        &[("Location", &location)],
        "text/plain; charset=utf-8",
        format!("Found: {location}\n").as_bytes(),
        false,
    ))
}

/// `GET /ws`: checks the WebSocket upgrade (RFC 6455 section 4.2.1) and answers `101`.
fn upgrade(req: &Request<'_>, buf: &[u8], header_end: usize, ws_full: bool) -> Action {
    if req.version != 1 {
        return text_response(400, "a WebSocket upgrade needs HTTP/1.1", false);
    }
    if !req.has_token("upgrade", "websocket") || !req.has_token("connection", "upgrade") {
        return text_response(
            400,
            "expected a WebSocket upgrade (Upgrade: websocket, Connection: Upgrade)",
            false,
        );
    }
    if req.header("sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13") {
        return Action::Respond(response(
            400,
            &[("Sec-WebSocket-Version", "13")],
            "text/plain; charset=utf-8",
            b"only WebSocket version 13 is supported\n",
            false,
        ));
    }
    let Some(key) = req
        .header("sec-websocket-key")
        .map(<[u8]>::trim_ascii)
        .filter(|key| valid_websocket_key(key))
    else {
        return text_response(400, "missing or invalid Sec-WebSocket-Key", false);
    };
    if ws_full {
        return Action::Respond(response(
            503,
            &[("Retry-After", "5")],
            "text/plain; charset=utf-8",
            b"the server has too many connections; try again later\n",
            false,
        ));
    }
    let accept = tungstenite::handshake::derive_accept_key(key);
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    Action::Upgrade {
        response: response.into_bytes(),
        leftover: buf[header_end..].to_vec(),
    }
}

/// A `Sec-WebSocket-Key` is 16 random bytes in base64: 22 characters and `==`.
fn valid_websocket_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Finds field `name` in an `application/x-www-form-urlencoded` body and decodes its value.
/// `Ok(None)`: no such field. `Err`: the body is not valid (bad percent escape, not UTF-8).
pub(crate) fn form_field(body: &[u8], name: &str) -> Result<Option<String>, ()> {
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if form_decode(key)? == name {
            return form_decode(value).map(Some);
        }
    }
    Ok(None)
}

/// Decodes one form component: `+` is a space, `%XY` a byte; the result must be UTF-8.
fn form_decode(raw: &[u8]) -> Result<String, ()> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or(())?;
                let hi = (hex[0] as char).to_digit(16).ok_or(())?;
                let lo = (hex[1] as char).to_digit(16).ok_or(())?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ())
}

/// Makes up a room id: [`RANDOM_ROOM_LEN`] lowercase letters and digits from the kernel's
/// random number generator (about 62 bits, so ids cannot be guessed).
pub(crate) fn random_room_id() -> io::Result<String> {
    crate::random::random_string(RANDOM_ROOM_LEN, b"abcdefghijklmnopqrstuvwxyz0123456789")
}

fn method_not_allowed(allow: &str) -> Action {
    Action::Respond(response(
        405,
        &[("Allow", allow)],
        "text/plain; charset=utf-8",
        b"method not allowed\n",
        false,
    ))
}

/// A response with a short plain-text body (the body ends with a line feed).
fn text_response(status: u16, message: &str, head: bool) -> Action {
    let body = format!("{message}\n");
    Action::Respond(response(
        status,
        &[],
        "text/plain; charset=utf-8",
        body.as_bytes(),
        head,
    ))
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A complete `Connection: close` response. With `head`, the body is left out (the
/// `Content-Length` still gives its length).
pub(crate) fn response(
    status: u16,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    head: bool,
) -> Vec<u8> {
    let mut header = String::with_capacity(256);
    let _ = write!(
        header,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
        reason_phrase(status),
        body.len(),
    );
    for (name, value) in extra {
        let _ = write!(header, "{name}: {value}\r\n");
    }
    header.push_str("\r\n");
    let mut out = header.into_bytes();
    if !head {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 16 * 1024;

    fn run(request: &[u8]) -> Action {
        let mut reader = RequestReader::default();
        reader.push(request);
        route(&reader, MAX, false, MetricsAccess::default())
    }

    fn respond(request: &[u8]) -> String {
        match run(request) {
            Action::Respond(bytes) => String::from_utf8(bytes).unwrap(),
            other => panic!("expected a response, got {other:?}"),
        }
    }

    #[test]
    fn room_names() {
        assert!(valid_room_name("team-standup"));
        assert!(valid_room_name("A.b_c-9"));
        assert!(valid_room_name(&"x".repeat(64)));
        assert!(!valid_room_name(""));
        assert!(!valid_room_name(&"x".repeat(65)));
        for bad in ["a b", "a/b", "ä", "a%20", "a\n", "<script>"] {
            assert!(!valid_room_name(bad), "{bad}");
        }
    }

    #[test]
    fn header_end_is_found_across_pushes() {
        let mut reader = RequestReader::default();
        for &b in b"GET / HTTP/1.1\r\nHost: x\r\n\r" {
            reader.push(&[b]);
            assert_eq!(reader.header_end, None);
        }
        reader.push(b"\nextra");
        assert_eq!(reader.header_end, Some(27));
        let mut lf = RequestReader::default();
        lf.push(b"GET / HTTP/1.1\nHost: x\n");
        lf.push(b"\n");
        assert_eq!(lf.header_end, Some(24));
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_field(b"call=abc", "call"), Ok(Some("abc".into())));
        assert_eq!(
            form_field(b"x=1&call=a+b%2Dc", "call"),
            Ok(Some("a b-c".into()))
        );
        assert_eq!(form_field(b"call=", "call"), Ok(Some(String::new())));
        assert_eq!(form_field(b"call", "call"), Ok(Some(String::new())));
        assert_eq!(form_field(b"other=1", "call"), Ok(None));
        assert_eq!(form_field(b"", "call"), Ok(None));
        assert_eq!(form_field(b"call=%4", "call"), Err(()));
        assert_eq!(form_field(b"call=%zz", "call"), Err(()));
        assert_eq!(form_field(b"call=%ff", "call"), Err(()));
    }

    #[test]
    fn random_ids() {
        let a = random_room_id().unwrap();
        let b = random_room_id().unwrap();
        assert_eq!(a.len(), RANDOM_ROOM_LEN);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert!(valid_room_name(&a));
        assert_ne!(a, b);
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
            Action::Upgrade { response, leftover } => {
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
        match route(&reader, MAX, true, MetricsAccess::default()) {
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
        match route(&reader, MAX, false, MetricsAccess::default()) {
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
        match route(&reader, MAX, false, access) {
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
