//! Files relayed as app messages (docs/web-client.md): the server holds each of a
//! member's transfers to the size it announced and to 16 MiB, as the page does, so that
//! a client that skips the page's checks cannot push more through the room.
//!
//!   {"file": {"id", "name", "mime", "size", "chunks"}}   then
//!   {"fileChunk": {"id", "index", "data": "<base64>"}}   until `size` bytes, or
//!   {"fileAbort": {"id"}}
//!
//! The one-message form `{"file": {"name", "mime", "base64"}}` is held to 16 MiB too.

use serde_json::Value;

/// The largest file a member may send.
pub(super) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Transfers one member may have open at once; a new one past this ends the oldest
/// (its later parts are then refused).
const MAX_OPEN: usize = 8;

#[derive(Debug, Default)]
pub(super) struct Transfers {
    /// (id, announced size, bytes relayed), oldest first.
    open: Vec<(String, u64, u64)>,
}

impl Transfers {
    /// Checks a message's file parts before it is relayed: `Err` says why it is refused.
    pub(super) fn check(&mut self, data: &Value) -> Result<(), String> {
        if let Some(file) = data.get("file") {
            if let Some(b64) = file.get("base64").and_then(Value::as_str) {
                if decoded_len(b64) > MAX_FILE_BYTES {
                    return Err("files are at most 16 MiB".into());
                }
            } else {
                let id = file.get("id").and_then(Value::as_str);
                let size = file.get("size").and_then(Value::as_u64);
                let (Some(id), Some(size)) = (id, size) else {
                    return Err("a file needs an id and a size".into());
                };
                if size > MAX_FILE_BYTES {
                    return Err("files are at most 16 MiB".into());
                }
                self.open.retain(|t| t.0 != id);
                if self.open.len() == MAX_OPEN {
                    self.open.remove(0);
                }
                self.open.push((id.to_owned(), size, 0));
            }
        }
        if let Some(chunk) = data.get("fileChunk") {
            let id = chunk.get("id").and_then(Value::as_str).unwrap_or_default();
            let bytes = chunk
                .get("data")
                .and_then(Value::as_str)
                .map_or(0, decoded_len);
            let Some(at) = self.open.iter().position(|t| t.0 == id) else {
                return Err(format!(
                    "a part of file {id:?}, which was not announced (or has ended)"
                ));
            };
            let t = &mut self.open[at];
            t.2 += bytes;
            if t.2 > t.1 {
                self.open.remove(at);
                return Err(format!("file {id:?} is larger than its announced size"));
            }
            if t.2 == t.1 {
                self.open.remove(at); // complete
            }
        }
        if let Some(id) = data
            .get("fileAbort")
            .and_then(|a| a.get("id"))
            .and_then(Value::as_str)
        {
            self.open.retain(|t| t.0 != id);
        }
        Ok(())
    }
}

/// The bytes a base64 text decodes to (padding and all; malformed text is taken at its
/// length's worth, which only ever over-counts).
fn decoded_len(b64: &str) -> u64 {
    let padding = b64.bytes().rev().take_while(|b| *b == b'=').count().min(2);
    (b64.len() as u64 * 3 / 4).saturating_sub(padding as u64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chunk(id: &str, bytes: usize) -> Value {
        let data = "A".repeat(bytes.div_ceil(3) * 4);
        json!({"fileChunk": {"id": id, "index": 0, "data": data}})
    }

    #[test]
    fn a_transfer_is_held_to_its_announced_size_and_16_mib() {
        let mut t = Transfers::default();
        assert!(t.check(&json!({"chat": "hi"})).is_ok());
        let over =
            json!({"file": {"id": "big", "name": "x", "size": MAX_FILE_BYTES + 1, "chunks": 342}});
        assert_eq!(t.check(&over).unwrap_err(), "files are at most 16 MiB");
        assert!(t.check(&chunk("big", 3)).is_err(), "its parts are refused");
        let ok = json!({"file": {"id": "f", "name": "x", "size": 6, "chunks": 2}});
        t.check(&ok).unwrap();
        t.check(&chunk("f", 3)).unwrap();
        t.check(&chunk("f", 3)).unwrap();
        assert!(t.check(&chunk("f", 3)).is_err(), "complete: nothing more");
        t.check(&ok).unwrap();
        t.check(&chunk("f", 3)).unwrap();
        assert!(
            t.check(&chunk("f", 6))
                .unwrap_err()
                .contains("larger than its announced size")
        );
        assert_eq!(decoded_len("aGVsbG8="), 5);
    }

    #[test]
    fn aborted_and_old_transfers_end_and_the_one_message_form_is_held_too() {
        let mut t = Transfers::default();
        for k in 0..=MAX_OPEN {
            t.check(&json!({"file": {"id": format!("f{k}"), "size": 10}}))
                .unwrap();
        }
        assert!(t.check(&chunk("f0", 3)).is_err(), "the oldest was ended");
        t.check(&chunk("f1", 3)).unwrap();
        t.check(&json!({"fileAbort": {"id": "f1"}})).unwrap();
        assert!(t.check(&chunk("f1", 3)).is_err());
        assert!(
            t.check(&json!({"file": {"name": "x"}})).is_err(),
            "no id or size"
        );
        let small = json!({"file": {"name": "a", "mime": "text/plain", "base64": "aGVsbG8="}});
        t.check(&small).unwrap();
    }
}
