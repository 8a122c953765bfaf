//! The I/O side of the engine: sockets, batched system calls, shard threads.

pub mod batch;
mod engine;
pub mod heartbeat;
mod node_thread;
mod shard_thread;
mod tcp;

pub use engine::{Engine, EngineConfig, NodePortConfig, NodePortHandle, ShardHandle, ShardRemote};
pub use heartbeat::Heartbeat;
pub use shard_thread::ShardSnapshot;
