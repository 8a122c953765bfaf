//! The signalling crate's integration tests, one binary: the protocol state machine
//! without sockets (`app`), and the transport over real sockets on loopback (`transport`).

// Helpers shared by the modules are not all used by each.
#![allow(dead_code, unreachable_pub)]

mod app;
mod transport;
