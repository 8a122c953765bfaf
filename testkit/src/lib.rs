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
pub mod redis;

pub use endpoint::{Endpoint, TestClient, audio, video};
pub use net::{LossRule, Member, Net, Published, ShardMeter, factory, is_rtp, metered_shard_call};

/// What opens every test video payload: read as VP8, VP9 or H264 alike, the first
/// packet of a keyframe (VP8: S=1 then a key frame tag; VP9: B=1, P=0; H264: a STAP-A
/// holding an SPS). The shard starts a subscriber's video at a keyframe, so test
/// streams made only of such packets are forwarded from their first packet on.
pub const KEYFRAME_START: [u8; 4] = [0x18, 0x00, 0x01, 0x67];

/// What opens a test video payload that is not the start of a keyframe in any of the
/// three codecs (VP8: S=0; VP9: P=1, B=0; H264: a non-IDR slice).
pub const INTER_FRAME: [u8; 4] = [0x41, 0x01, 0x00, 0x00];
