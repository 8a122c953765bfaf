//! The I/O side of the engine: sockets, batched system calls, shard threads.

pub mod batch;
mod engine;
mod shard_thread;

pub use engine::{Engine, EngineConfig, ShardHandle, ShardRemote};
pub use shard_thread::ShardSnapshot;
