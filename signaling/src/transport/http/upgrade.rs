//! `GET /ws`: the WebSocket upgrade (RFC 6455 section 4.2.1).

use super::Action;
use super::request::Request;
use super::response::{response, text_response};

/// `GET /ws`: checks the WebSocket upgrade (RFC 6455 section 4.2.1) and answers `101`.
pub(super) fn upgrade(req: &Request<'_>, buf: &[u8], header_end: usize, ws_full: bool) -> Action {
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
    // The cookie goes to the webhook permissions provider, whole (it may hold the
    // operator's session); a cookie that is not text is left out.
    let cookie = req
        .header("cookie")
        .and_then(|c| std::str::from_utf8(c).ok())
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    // Behind a reverse proxy, the client's address as the proxy saw it (trusted only
    // from the proxies the operator names: `--trusted-proxy`).
    let forwarded_for = req
        .header("x-forwarded-for")
        .and_then(|c| std::str::from_utf8(c).ok())
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    Action::Upgrade {
        response: response.into_bytes(),
        leftover: buf[header_end..].to_vec(),
        cookie,
        forwarded_for,
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
