//! Unguessable identifiers (session tokens, random room names) from the OS generator.

use std::io::Read;

/// `len` characters of `alphabet`, chosen uniformly from the OS random source.
pub fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    let mut file = std::fs::File::open("/dev/urandom").expect("/dev/urandom is readable");
    // Rejection sampling keeps the choice uniform.
    let limit = 256 - (256 % alphabet.len());
    while out.len() < len {
        file.read_exact(&mut buf)
            .expect("/dev/urandom yields bytes");
        for &b in &buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// A 128-bit-plus session token.
pub fn token() -> String {
    random_string(
        32,
        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    )
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
