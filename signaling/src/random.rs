//! Unguessable identifiers (session tokens, random room names) from the OS generator.

use std::io::{self, Read};

/// `len` characters of `alphabet` (at most 256 symbols), each chosen uniformly from
/// the kernel's random source.
pub fn random_string(len: usize, alphabet: &[u8]) -> io::Result<String> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    let mut file = std::fs::File::open("/dev/urandom")?;
    // Rejecting bytes at or above the largest multiple of the alphabet's size keeps
    // every character equally likely.
    let limit = 256 - (256 % alphabet.len());
    while out.len() < len {
        file.read_exact(&mut buf)?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

/// A session token: 32 characters of 62 symbols, about 190 bits.
pub fn token() -> String {
    random_string(
        32,
        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    )
    .expect("the kernel's random source is readable")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_differ_and_use_the_alphabet() {
        let a = super::token();
        let b = super::token();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
