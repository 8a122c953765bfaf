//! Just enough STUN to route a datagram from a new address: is it a STUN binding
//! request, and which of our ICE usernames (ufrags) does it name?
//!
//! Everything else about STUN (integrity, fingerprint, the reply) is str0m's job; this
//! parser only picks the peer to hand the datagram to. It never allocates and never
//! panics, whatever the bytes.

const HEADER_LEN: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const ATTR_USERNAME: u16 = 0x0006;
/// RFC 8489: USERNAME is at most 509 bytes.
const MAX_USERNAME: usize = 513;

/// The kind of a datagram on a WebRTC 5-tuple, by its first byte (RFC 7983).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demux {
    /// First byte 0–3.
    Stun,
    /// First byte 20–63.
    Dtls,
    /// First byte 128–191.
    Rtp,
    /// Anything else, or empty.
    Other,
}

/// Classifies a datagram by its first byte.
pub fn demux(datagram: &[u8]) -> Demux {
    match datagram.first() {
        Some(0..=3) => Demux::Stun,
        Some(20..=63) => Demux::Dtls,
        Some(128..=191) => Demux::Rtp,
        _ => Demux::Other,
    }
}

/// For a STUN binding request, the local (first) part of its `USERNAME` attribute,
/// `local:remote`. That is the ufrag the server put in its SDP answer for this peer.
/// `None` for anything that is not a well-formed binding request with a username.
pub fn local_ufrag(datagram: &[u8]) -> Option<&[u8]> {
    if datagram.len() < HEADER_LEN {
        return None;
    }
    let msg_type = u16::from_be_bytes([datagram[0], datagram[1]]);
    let msg_len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    if msg_type != BINDING_REQUEST || datagram[4..8] != MAGIC_COOKIE || !msg_len.is_multiple_of(4) {
        return None;
    }
    let body = datagram.get(HEADER_LEN..HEADER_LEN + msg_len)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let attr_type = u16::from_be_bytes([rest[0], rest[1]]);
        let attr_len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let value = rest.get(4..4 + attr_len)?;
        if attr_type == ATTR_USERNAME {
            if attr_len > MAX_USERNAME {
                return None;
            }
            let colon = value.iter().position(|&b| b == b':')?;
            let ufrag = &value[..colon];
            return (!ufrag.is_empty()).then_some(ufrag);
        }
        let padded = (attr_len + 3) & !3;
        rest = rest.get(4 + padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (t, v) in attrs {
            body.extend_from_slice(&t.to_be_bytes());
            body.extend_from_slice(&(v.len() as u16).to_be_bytes());
            body.extend_from_slice(v);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut m = Vec::new();
        m.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn finds_local_ufrag_after_other_attributes() {
        let m = request(&[(0x8022, b"soft"), (ATTR_USERNAME, b"srv1:cli2")]);
        assert_eq!(local_ufrag(&m), Some(&b"srv1"[..]));
        assert_eq!(demux(&m), Demux::Stun);
    }

    #[test]
    fn rejects_truncated_and_malformed() {
        let m = request(&[(ATTR_USERNAME, b"srv1:cli2")]);
        for n in 0..m.len() {
            assert_eq!(local_ufrag(&m[..n]), None, "truncated at {n}");
        }
        // Attribute length running past the message.
        let mut bad = m.clone();
        bad[HEADER_LEN + 3] = 200;
        assert_eq!(local_ufrag(&bad), None);
        // No colon, empty local part, wrong cookie, not a request.
        assert_eq!(local_ufrag(&request(&[(ATTR_USERNAME, b"nocolon")])), None);
        assert_eq!(local_ufrag(&request(&[(ATTR_USERNAME, b":x")])), None);
        let mut cookie = m.clone();
        cookie[4] = 0;
        assert_eq!(local_ufrag(&cookie), None);
        let mut response = m;
        response[1] = 0x01;
        response[0] = 0x01;
        assert_eq!(local_ufrag(&response), None);
    }

    #[test]
    fn demux_by_first_byte() {
        assert_eq!(demux(&[]), Demux::Other);
        assert_eq!(demux(&[22]), Demux::Dtls);
        assert_eq!(demux(&[0x80]), Demux::Rtp);
        assert_eq!(demux(&[64]), Demux::Other);
    }
}
