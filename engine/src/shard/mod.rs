//! A shard: the sans-IO core ([`ShardCore`]) and its pieces.

mod core;
mod peer;
mod route;
mod timers;
mod wallclock;

pub use core::{
    Datagram, KEYFRAME_INTERVAL, Liveness, MAX_DATAGRAM, Outbox, RTX_WINDOW, ShardCore,
};
