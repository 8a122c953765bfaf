//! Signalling: the HTTP + WebSocket server, rooms, and the signalling protocol.
//!
//! - [`transport`]: sockets to events (HTTP routes, WebSocket frames, limits), on mio.
//! - [`app`]: the protocol state machine, sans-IO: rooms, sessions, placement, and the
//!   commands it sends to the engine's shards.
//! - [`server`]: one thread that wires the two to the engine.
//! - [`metrics`]: the `/metrics` page (Prometheus text format).

pub mod app;
pub mod assets;
pub mod cluster_link;
pub mod ice;
pub mod metrics;
pub mod placement;
pub mod random;
pub mod rooms;
pub mod server;
pub mod tls;
pub mod transport;
