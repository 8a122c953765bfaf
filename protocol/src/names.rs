//! What a name sent by a client may look like: the one definition of each rule, used by
//! the server's HTTP form and `join`, by the web page's checks (which say the same) and
//! by `peer-calls play`.

/// A room name is 1 to 64 characters of `A-Z a-z 0-9 - _ .`, and not only dots.
///
/// Only those characters, so a name appears in a link (`/call/NAME`) exactly as it is;
/// not only dots, because `.` and `..` are path segments that browsers remove.
pub fn valid_room_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !s.bytes().all(|b| b == b'.')
}

/// [`valid_room_name`] in words, for whoever gave a name it refuses.
pub const ROOM_NAME_RULE: &str = "a room name is 1 to 64 characters, each a letter (A-Z, a-z), \
     a digit (0-9), '-', '_' or '.', and not only dots";

/// Nicknames: 1–64 characters, no control characters.
pub fn valid_nickname(s: &str) -> bool {
    let n = s.chars().count();
    (1..=64).contains(&n) && !s.chars().any(char::is_control)
}

/// [`valid_nickname`] in words.
pub const NICKNAME_RULE: &str = "a nickname is 1 to 64 characters without control characters";

/// Stream and track ids: 1–64 SDP token characters (RFC 4566), so they appear in
/// `a=msid` exactly as the client sent them.
pub fn valid_msid_part(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(is_token_char)
}

/// [`valid_msid_part`] in words.
pub const MSID_RULE: &str =
    "stream and track ids are 1-64 characters of letters, digits and !#$%&'*+-.^_`{|}~";

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert!(valid_room_name("team-standup"));
        assert!(valid_room_name("A.b_c-9"));
        assert!(valid_room_name("a..b"));
        assert!(valid_room_name(&"x".repeat(64)));
        assert!(!valid_room_name(""));
        assert!(!valid_room_name(&"x".repeat(65)));
        for bad in [
            "a b", "a/b", "ä", "a%20", "a\n", "<script>", ".", "..", "...",
        ] {
            assert!(!valid_room_name(bad), "{bad}");
        }
    }

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
