//! Keys per node pair and direction, from the cluster secret.

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};

use crate::seal::{Opener, Sealer};

/// A node as the keys name it: its cluster id and the boot id it drew when it started
/// (published with its registry entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub id: String,
    pub boot: [u8; 16],
}

impl NodeIdentity {
    /// `id` with a fresh random boot id.
    pub fn new(id: impl Into<String>) -> Result<NodeIdentity, String> {
        let mut boot = [0u8; 16];
        aws_lc_rs::rand::fill(&mut boot)
            .map_err(|_| "no random numbers for a boot id".to_owned())?;
        Ok(NodeIdentity {
            id: id.into(),
            boot,
        })
    }
}

/// The salt of every derivation: this protocol and its version.
const SALT: &[u8] = b"peer-calls server-to-server v1";

/// The key for what `from` sends `to`.
fn direction_key(secret: &[u8], from: &NodeIdentity, to: &NodeIdentity) -> LessSafeKey {
    // Lengths first, so no two (from, to) pairs give the same info.
    let from_len = (from.id.len() as u32).to_be_bytes();
    let to_len = (to.id.len() as u32).to_be_bytes();
    let info: [&[u8]; 7] = [
        b"from",
        &from_len,
        from.id.as_bytes(),
        &from.boot,
        &to_len,
        to.id.as_bytes(),
        &to.boot,
    ];
    let prk = Salt::new(HKDF_SHA256, SALT).extract(secret);
    let mut key = [0u8; 32];
    prk.expand(&info, &AES_256_GCM)
        .and_then(|okm| okm.fill(&mut key))
        .expect("32 bytes are a valid HKDF-SHA256 output length");
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte AES-256 key"))
}

/// What `local` needs to talk to `remote`: a sealer for what it sends and an opener
/// for what it receives. Both sides derive the same two keys from the same secret.
pub fn pair(secret: &[u8], local: &NodeIdentity, remote: &NodeIdentity) -> (Sealer, Opener) {
    (
        Sealer::new(direction_key(secret, local, remote), local.boot),
        Opener::new(direction_key(secret, remote, local), remote.boot),
    )
}
