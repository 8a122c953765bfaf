//! The datagrams of the server-to-server transport (multi-node, issue #20): what one
//! node sends another on its node port is sealed for that pair of nodes, and what
//! arrives is opened, checked against a replay window, or dropped and counted, never
//! parsed further.
//!
//! A datagram:
//!
//! | bytes | field | |
//! |---|---|---|
//! | 0 | version, 1 | clear, authenticated |
//! | 1 | kind (the sender's use: media batch, control…) | clear, authenticated |
//! | 2–9 | the sender's counter, big-endian | clear, authenticated; with the sender's boot id, the nonce |
//! | 10… | the payload | encrypted |
//! | last 16 | AES-256-GCM tag | |
//!
//! Keys ([`keys`]): one per direction of a node pair, HKDF-SHA256 over the cluster
//! secret, naming the sender (its id and a boot id drawn at each start) and the
//! receiver. A node that restarts gets new keys, so nothing sent before its restart can
//! be replayed into its new sessions; within one boot the counter never repeats and the
//! receiver's [`replay::ReplayWindow`] refuses a counter twice.

pub mod frame;
pub mod keys;
pub mod link;
pub mod replay;
pub mod seal;

pub use keys::{NodeIdentity, pair};
pub use seal::{HEADER_LEN, OpenError, Opener, Sealer, TAG_LEN, VERSION};
