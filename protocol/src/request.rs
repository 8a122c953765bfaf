//! A client message as it travels: the message itself plus an optional request `id` the
//! client chooses. The server echoes the id in the `error` a request causes, so a client
//! knows which of its requests was refused without counting replies.
//!
//! ```json
//! {"type":"subscribe","id":7,"tracks":[{"streamId":"s","trackId":"t","kind":"video"}]}
//! {"type":"error","code":"track_not_found","reason":"no track s/t (video) in this room","id":7}
//! ```

use serde::Serialize;

use crate::messages::{ClientMessage, ErrorCode};

/// A request id: any whole number from 0 to 2^53 - 1 (what a JavaScript number holds
/// exactly), chosen by the client.
pub type RequestId = u64;

/// The largest request id (2^53 - 1).
pub const MAX_REQUEST_ID: RequestId = (1 << 53) - 1;

/// A client message with its request id. Serialised, the id is one more field of the
/// message object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    /// Echoed in the `error` this request causes, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The message.
    #[serde(flatten)]
    pub message: ClientMessage,
}

impl From<ClientMessage> for Request {
    fn from(message: ClientMessage) -> Self {
        Request { id: None, message }
    }
}

/// Why a text is not a client message, as the server answers it: the error code, a
/// sentence for a human, and the request id when the text had a readable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// `bad_json`, `unknown_type` or `invalid_message`.
    pub code: ErrorCode,
    /// What is wrong.
    pub reason: String,
    /// The request's id, if it had a valid one.
    pub id: Option<RequestId>,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ParseError {}

impl Request {
    /// Reads a client message, telling malformed JSON, an unknown type and bad fields
    /// apart (see [`ParseError`]).
    pub fn parse(text: &str) -> Result<Request, ParseError> {
        let fail = |code, reason: String, id| Err(ParseError { code, reason, id });
        let mut value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return fail(ErrorCode::BadJson, format!("not JSON: {e}"), None),
        };
        let Some(object) = value.as_object_mut() else {
            return fail(
                ErrorCode::InvalidMessage,
                "a message is a JSON object with a string field \"type\"".into(),
                None,
            );
        };
        let id = match object.remove("id") {
            None => None,
            Some(v) => match v.as_u64().filter(|&n| n <= MAX_REQUEST_ID) {
                Some(n) => Some(n),
                None => {
                    return fail(
                        ErrorCode::InvalidMessage,
                        "a request id is a whole number from 0 to 2^53 - 1".into(),
                        None,
                    );
                }
            },
        };
        let Some(kind) = object.get("type").and_then(|t| t.as_str()) else {
            return fail(
                ErrorCode::InvalidMessage,
                "a message is a JSON object with a string field \"type\"".into(),
                id,
            );
        };
        let Some(&kind) = ClientMessage::TYPES.iter().find(|t| **t == kind) else {
            let kind: String = kind.chars().take(32).collect();
            return fail(
                ErrorCode::UnknownType,
                format!("unknown message type {kind:?}"),
                id,
            );
        };
        match serde_json::from_value(value) {
            Ok(message) => Ok(Request { id, message }),
            Err(e) => fail(
                ErrorCode::InvalidMessage,
                format!("bad {kind} message: {e}"),
                id,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Kind, TrackRef};

    #[test]
    fn the_id_is_one_more_field_both_ways() {
        let r = Request {
            id: Some(7),
            message: ClientMessage::Unsubscribe {
                tracks: vec![TrackRef::new("s", "t", Kind::Video)],
            },
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"id":7,"type":"unsubscribe","tracks":[{"streamId":"s","trackId":"t","kind":"video"}]}"#
        );
        assert_eq!(Request::parse(&json).unwrap(), r);
        let ping = serde_json::to_string(&Request::from(ClientMessage::Ping)).unwrap();
        assert_eq!(ping, r#"{"type":"ping"}"#);
        assert_eq!(Request::parse(&ping).unwrap().id, None);
    }

    #[test]
    fn each_fault_has_its_code_and_keeps_the_id_it_could_read() {
        let code = |text: &str| Request::parse(text).map(|_| ()).map_err(|e| (e.code, e.id));
        assert_eq!(code("{"), Err((ErrorCode::BadJson, None)));
        assert_eq!(code("[1]"), Err((ErrorCode::InvalidMessage, None)));
        assert_eq!(
            code(r#"{"id":3}"#),
            Err((ErrorCode::InvalidMessage, Some(3)))
        );
        assert_eq!(
            code(r#"{"id":3,"type":"nope"}"#),
            Err((ErrorCode::UnknownType, Some(3)))
        );
        assert_eq!(
            code(r#"{"id":4,"type":"join","room":"a"}"#),
            Err((ErrorCode::InvalidMessage, Some(4)))
        );
        for bad_id in [r#""x""#, "-1", "1.5", "9007199254740992"] {
            assert_eq!(
                code(&format!(r#"{{"id":{bad_id},"type":"ping"}}"#)),
                Err((ErrorCode::InvalidMessage, None)),
                "{bad_id}"
            );
        }
        assert_eq!(code(r#"{"id":9007199254740991,"type":"ping"}"#), Ok(()));
    }
}
