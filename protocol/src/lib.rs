//! The signalling protocol: every message a client and the server exchange over the
//! WebSocket, as JSON objects tagged by `"type"`. `docs/protocol.md` shows an example of each.
//!
//! Both the server (`signaling`) and the Rust clients (`client`) use these types, so the
//! wire format has exactly one definition, and so do the rules for names that travel in
//! it (room names, nicknames, stream and track ids).
//!
//! - [`messages`]: the messages.
//! - [`request`]: a client message with its request id, and how the server reads one.
//! - [`names`]: what a room name, a nickname and a stream or track id may look like.

pub mod messages;
pub mod names;
pub mod request;

pub use messages::*;
pub use request::{ParseError, Request, RequestId};
