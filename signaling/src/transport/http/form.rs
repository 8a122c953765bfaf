//! `POST /call`, the landing page's form: the room it names, or a new random room.

use protocol::names::{ROOM_NAME_RULE, valid_room_name};

use super::request::Request;
use super::response::{response, text_response};
use super::{Action, Context};

/// The length of a room id that `POST /call` makes up when the form names no room.
pub(crate) const RANDOM_ROOM_LEN: usize = 12;

/// `POST /call`: the landing page's form. Redirects to the call page of the named room, or of a
/// new random room when the name is empty.
pub(super) fn post_call(
    req: &Request<'_>,
    buf: &[u8],
    header_end: usize,
    ctx: &Context<'_>,
) -> Action {
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
        .filter(|&total| total <= ctx.max_request)
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
    } else if valid_room_name(name) {
        name.to_owned()
    } else {
        return text_response(400, &room_rule_sentence(), false);
    };
    let location = format!("{}/call/{room}", ctx.base);
    Action::Respond(response(
        302,
        &[("Location", &location)],
        "text/plain; charset=utf-8",
        format!("Found: {location}\n").as_bytes(),
        false,
    ))
}

/// Finds field `name` in an `application/x-www-form-urlencoded` body and decodes its value.
/// `Ok(None)`: no such field. `Err`: the body is not valid (bad percent escape, not UTF-8).
pub(super) fn form_field(body: &[u8], name: &str) -> Result<Option<String>, ()> {
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
pub(super) fn random_room_id() -> Result<String, getrandom::Error> {
    crate::random::random_string(RANDOM_ROOM_LEN, b"abcdefghijklmnopqrstuvwxyz0123456789")
}

/// What someone whose room name was refused reads.
fn room_rule_sentence() -> String {
    let mut rule = ROOM_NAME_RULE.to_owned();
    rule[..1].make_ascii_uppercase();
    format!("{rule}. Leave the field empty for a random room.")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
