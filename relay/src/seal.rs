//! Sealing and opening one datagram (the format is in the crate docs).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};

use crate::replay::ReplayWindow;

pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 10;
pub const TAG_LEN: usize = 16;

/// The nonce: the first 4 bytes of the sender's boot id, then its counter. Unique per
/// key: a key belongs to one boot of one sender, whose counter never repeats.
fn nonce(boot: &[u8; 16], counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&boot[..4]);
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Seals what this node sends one other node.
pub struct Sealer {
    key: LessSafeKey,
    boot: [u8; 16],
    counter: u64,
}

impl Sealer {
    pub(crate) fn new(key: LessSafeKey, boot: [u8; 16]) -> Self {
        Self {
            key,
            boot,
            counter: 0,
        }
    }

    /// Appends to `out` a datagram of `kind` carrying `payload`.
    pub fn seal(&mut self, kind: u8, payload: &[u8], out: &mut Vec<u8>) {
        let counter = self.counter;
        self.counter += 1;
        let start = out.len();
        out.push(VERSION);
        out.push(kind);
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(payload);
        let (head, body) = out[start..].split_at_mut(HEADER_LEN);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(&self.boot, counter), Aad::from(&*head), body)
            .expect("AES-GCM seals any length a datagram can have");
        out.extend_from_slice(tag.as_ref());
    }
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than a header and a tag, or another version.
    Malformed,
    /// A counter taken already, or older than the replay window.
    Replayed,
    /// The tag does not match: another key, or the bytes were changed.
    Forged,
}

/// Opens what one other node sends this one.
pub struct Opener {
    key: LessSafeKey,
    boot: [u8; 16],
    window: ReplayWindow,
}

impl Opener {
    pub(crate) fn new(key: LessSafeKey, boot: [u8; 16]) -> Self {
        Self {
            key,
            boot,
            window: ReplayWindow::default(),
        }
    }

    /// Opens `datagram` in place: its kind and payload, or why it was dropped. Nothing
    /// of a dropped datagram is taken (a forged one does not move the replay window).
    pub fn open<'a>(&mut self, datagram: &'a mut [u8]) -> Result<(u8, &'a [u8]), OpenError> {
        if datagram.len() < HEADER_LEN + TAG_LEN || datagram[0] != VERSION {
            return Err(OpenError::Malformed);
        }
        let kind = datagram[1];
        let mut c = [0u8; 8];
        c.copy_from_slice(&datagram[2..10]);
        let counter = u64::from_be_bytes(c);
        if !self.window.is_fresh(counter) {
            return Err(OpenError::Replayed);
        }
        let (head, body) = datagram.split_at_mut(HEADER_LEN);
        let plain = self
            .key
            .open_in_place(nonce(&self.boot, counter), Aad::from(&*head), body)
            .map_err(|_| OpenError::Forged)?;
        self.window.take(counter);
        Ok((kind, plain))
    }
}

#[cfg(test)]
mod tests {
    use crate::keys::{NodeIdentity, pair};

    use super::*;

    fn nodes() -> (NodeIdentity, NodeIdentity) {
        (
            NodeIdentity::new("a").unwrap(),
            NodeIdentity::new("b").unwrap(),
        )
    }

    #[test]
    fn what_one_node_seals_the_other_opens_once() {
        let (a, b) = nodes();
        let (mut a_to_b, mut a_from_b) = pair(b"cluster secret", &a, &b);
        let (mut b_to_a, mut b_from_a) = pair(b"cluster secret", &b, &a);
        let mut d = Vec::new();
        a_to_b.seal(7, b"media", &mut d);
        assert_eq!(d.len(), HEADER_LEN + 5 + TAG_LEN);
        let copy = d.clone();
        assert_eq!(b_from_a.open(&mut d), Ok((7, &b"media"[..])));
        let mut again = copy;
        assert_eq!(b_from_a.open(&mut again), Err(OpenError::Replayed));
        // The other direction has a key of its own.
        let mut back = Vec::new();
        b_to_a.seal(1, b"reply", &mut back);
        assert_eq!(a_from_b.open(&mut back), Ok((1, &b"reply"[..])));
        let mut own = Vec::new();
        a_to_b.seal(7, b"from a", &mut own); // counter 1: not yet seen from b
        assert_eq!(
            a_from_b.open(&mut own),
            Err(OpenError::Forged),
            "a's own datagram is not b's"
        );
    }

    #[test]
    fn a_changed_byte_another_secret_or_a_new_boot_is_dropped() {
        let (a, b) = nodes();
        let (mut seal, _) = pair(b"secret", &a, &b);
        let mut d = Vec::new();
        seal.seal(2, b"some payload", &mut d);
        for i in 0..d.len() {
            let mut changed = d.clone();
            changed[i] ^= 0x01;
            let (_, mut open) = pair(b"secret", &b, &a);
            let r = open.open(&mut changed);
            assert!(r.is_err(), "byte {i} changed and still opened");
        }
        let (_, mut wrong) = pair(b"another secret", &b, &a);
        assert_eq!(wrong.open(&mut d.clone()), Err(OpenError::Forged));
        // a restarted: b, with a's new boot id, opens nothing a sent before.
        let a_again = NodeIdentity::new("a").unwrap();
        let (_, mut after_restart) = pair(b"secret", &b, &a_again);
        assert_eq!(after_restart.open(&mut d.clone()), Err(OpenError::Forged));
        // A forged datagram does not use up its counter: the real one still opens.
        let (_, mut open) = pair(b"secret", &b, &a);
        let mut forged = d.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(open.open(&mut forged), Err(OpenError::Forged));
        assert!(open.open(&mut d.clone()).is_ok());
    }

    #[test]
    fn short_and_foreign_datagrams_are_malformed() {
        let (a, b) = nodes();
        let (_, mut open) = pair(b"s", &b, &a);
        for len in 0..HEADER_LEN + TAG_LEN {
            assert_eq!(
                open.open(&mut vec![VERSION; len]),
                Err(OpenError::Malformed)
            );
        }
        let mut v2 = vec![2u8; 64];
        assert_eq!(open.open(&mut v2), Err(OpenError::Malformed));
    }
}
