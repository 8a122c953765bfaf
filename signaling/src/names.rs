//! What a name sent by a client may look like.

/// Nicknames: 1–64 characters, no control characters.
pub fn valid_nickname(s: &str) -> bool {
    let n = s.chars().count();
    (1..=64).contains(&n) && !s.chars().any(char::is_control)
}

/// Stream and track ids: 1–64 SDP token characters (RFC 4566), so they appear in
/// `a=msid` exactly as the client sent them.
pub fn valid_msid_part(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(is_token_char)
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames() {
        assert!(valid_nickname("Ann"));
        assert!(valid_nickname("Zoë 🎥"));
        assert!(!valid_nickname(""));
        assert!(!valid_nickname("a\nb"));
        assert!(!valid_nickname(&"x".repeat(65)));
    }

    #[test]
    fn msid_parts() {
        assert!(valid_msid_part("3f2a-b_c.d"));
        assert!(!valid_msid_part("with space"));
        assert!(!valid_msid_part(""));
        assert!(!valid_msid_part(&"x".repeat(65)));
    }
}
