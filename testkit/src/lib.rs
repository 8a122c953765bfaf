//! Test-only: one deterministic harness for the sans-IO shard core.
//!
//! [`Net`] joins real [`ShardCore`](engine::shard::ShardCore)s and client peers by an
//! in-memory network with a virtual clock, and plays signalling's part (building each
//! peer's `Rtc`, relaying offers and answers, carrying messages between shards). No
//! sockets, no sleeps: [`Net::step`] moves everything in flight and advances the clock to
//! the next timeout.
//!
//! The clients are anything that is an [`Endpoint`]: the project's own client
//! ([`TestClient`], around `client::ClientPeer`) for the engine's tests and its
//! forwarding benchmark, and the fuzz targets' hostile peer.

mod endpoint;
mod net;

pub use endpoint::{Endpoint, TestClient, audio, video};
pub use net::{LossRule, Member, Net, Published, ShardMeter, factory, is_rtp, metered_shard_call};
