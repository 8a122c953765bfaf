//! A shard: the sans-IO core ([`ShardCore`]) and its pieces, one concern a file.
//!
//! | file | concern |
//! |---|---|
//! | `core.rs` | the state and the run loop's contract: what comes in, what goes out |
//! | `lifecycle.rs` | peers arrive, are found (id, ufrag, address), time out, leave |
//! | `negotiation.rs` | the server's offers and the client's answers |
//! | `forwarding.rs` | published tracks, routes, fan-out to subscribers and shards |
//! | `send.rs` | the engine's own send path: header rewrite, SRTP, NACKs answered, sender reports filled in |
//! | `pacer.rs` | each subscriber's video leaves at a pace its bandwidth estimate sets |
//! | `history.rs` | the last packets of a video track, for resends |
//! | `feedback.rs` | keyframe requests, throttled per track and simulcast layer |
//! | `layers.rs` | which simulcast layer each subscriber gets: its tile's cap, its bandwidth |
//! | `twcc.rs` | what the TWCC guard learns from negotiation and from str0m |
//! | `peer.rs`, `route.rs`, `timers.rs`, `wallclock.rs` | the data they share |

mod core;
mod data;
mod feedback;
mod forwarding;
mod history;
mod layers;
mod left_out;
mod lifecycle;
mod negotiation;
mod pacer;
mod peer;
mod relabel;
mod route;
mod send;
mod timers;
mod twcc;
mod wallclock;

pub use core::{Datagram, MAX_DATAGRAM, Outbox, ShardCore};
pub use feedback::KEYFRAME_INTERVAL;
pub use history::KEEP as RTX_WINDOW;
pub use lifecycle::Liveness;
