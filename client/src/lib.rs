//! The one Rust client of Peer Calls.
//!
//! - [`peer::ClientPeer`]: a sans-IO str0m peer (publish, answer the server's offers,
//!   send and receive RTP).
//! - [`session::Session`]: the signalling protocol around that peer, sans-IO.
//! - [`connection::Connection`]: that session with a real WebSocket and UDP socket, speaking
//!   the signalling protocol.
//!
//! The integration tests, `peer-calls play` and the benchmark's synthetic peers all use
//! it, so there is one client implementation to keep correct.

pub mod connection;
pub mod error;
pub mod peer;
pub mod session;
pub mod wire;

pub use connection::{Connection, Credentials};
pub use error::ClientError;
pub use peer::{ClientPeer, LocalTrack, PeerEvent, ReceivedRtp, SendError};
pub use session::{Session, SessionEvent};
pub use wire::Server;
