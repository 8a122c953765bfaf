//! The bytes of a response: every response closes its connection and carries the same
//! security headers.

use std::fmt::Write as _;

use super::Action;

pub(super) fn method_not_allowed(allow: &str) -> Action {
    Action::Respond(response(
        405,
        &[("Allow", allow)],
        "text/plain; charset=utf-8",
        b"method not allowed\n",
        false,
    ))
}

/// A response with a short plain-text body (the body ends with a line feed).
pub(super) fn text_response(status: u16, message: &str, head: bool) -> Action {
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
        308 => "Permanent Redirect",
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

/// What the page may load and run: only its own scripts and styles (no inline script, no
/// eval), media from its own streams, connections (fetch, WebSocket) to this server only; it
/// may not be framed (clickjacking). 'self' covers ws: and wss: to the same host (CSP 3).
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// [`CONTENT_SECURITY_POLICY`] for the page of a node of a cluster: it may also connect
/// to the other nodes (`origins`, such as `https://node-2.example.com`), where it goes on
/// when its own node dies.
pub(crate) fn policy_with_nodes(origins: &[String]) -> String {
    let mut sources = String::from("connect-src 'self'");
    for o in origins {
        sources.push(' ');
        sources.push_str(o);
        // A WebSocket's URL has its own scheme: name it too.
        if let Some(rest) = o.strip_prefix("https://") {
            sources.push_str(" wss://");
            sources.push_str(rest);
        } else if let Some(rest) = o.strip_prefix("http://") {
            sources.push_str(" ws://");
            sources.push_str(rest);
        }
    }
    CONTENT_SECURITY_POLICY.replace("connect-src 'self'", &sources)
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
    response_with_policy(
        status,
        extra,
        content_type,
        body,
        head,
        CONTENT_SECURITY_POLICY,
    )
}

/// [`response`] with its own `Content-Security-Policy`.
pub(crate) fn response_with_policy(
    status: u16,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    head: bool,
    policy: &str,
) -> Vec<u8> {
    let mut header = String::with_capacity(256);
    let _ = write!(
        header,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: {policy}\r\nX-Frame-Options: DENY\r\n\
         Referrer-Policy: no-referrer\r\nConnection: close\r\n",
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
