//! Unguessable identifiers (session tokens, random room names) from the operating
//! system's generator, through `getrandom`: one system call, no file descriptor (a
//! server out of descriptors still makes tokens) and no panic.

/// `len` characters of `alphabet` (at most 256 symbols), each chosen uniformly.
pub fn random_string(len: usize, alphabet: &[u8]) -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    // Rejecting bytes at or above the largest multiple of the alphabet's size keeps
    // every character equally likely.
    let limit = 256 - (256 % alphabet.len());
    while out.len() < len {
        getrandom::fill(&mut buf)?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

/// A session token: 32 characters of 62 symbols, about 190 bits.
pub fn token() -> Result<String, getrandom::Error> {
    random_string(
        32,
        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_differ_and_use_the_alphabet() {
        let a = super::token().unwrap();
        let b = super::token().unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn every_symbol_is_used() {
        let s = super::random_string(4000, b"ab").unwrap();
        let a = s.bytes().filter(|&c| c == b'a').count();
        assert!((1500..2500).contains(&a), "{a} of 4000");
    }
}
