//! The packet engine: per-core shards that own their UDP sockets and their peers.
//!
//! - [`shard::ShardCore`] is the sans-IO heart: routing, forwarding, timers.
//! - [`io`] runs each core on a pinned thread with a mio loop and batched system calls.
//! - [`factory::PeerFactory`] builds each peer's str0m `Rtc` off the media threads.
//! - [`msg`] is everything that crosses threads.

pub mod bwe;
pub mod codecs;
pub mod dtls_tap;
pub mod factory;
pub mod io;
pub mod keyframe;
pub mod latency;
pub mod media_check;
pub mod msg;
pub mod node_port;
pub mod rtcp;
pub mod rtp_header;
pub mod shard;
pub mod srtp;
pub mod stats;
pub mod stun;
pub mod twcc_guard;
pub mod vp8;
