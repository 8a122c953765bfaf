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
const ATTR_FINGERPRINT: u16 = 0x8028;
const FINGERPRINT_XOR: u32 = 0x5354_554e;
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

/// Whether a STUN message's FINGERPRINT (RFC 8489 §14.7), if it has one, is sound: the
/// last attribute, four bytes, equal to the CRC-32 of everything before it XOR
/// `0x5354554e`. str0m checks MESSAGE-INTEGRITY but not FINGERPRINT, so the shard checks
/// it before handing STUN over. A message without a FINGERPRINT passes; one whose
/// attributes do not fit its declared length does not.
pub fn fingerprint_ok(datagram: &[u8]) -> bool {
    let Some(len) = datagram
        .get(2..4)
        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
    else {
        return false;
    };
    let Some(body) = datagram.get(HEADER_LEN..HEADER_LEN + len) else {
        return false;
    };
    let mut at = 0;
    while at < body.len() {
        let Some(head) = body.get(at..at + 4) else {
            return false;
        };
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let attr_len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        if kind == ATTR_FINGERPRINT {
            let Some(value) = body.get(at + 4..at + 8) else {
                return false;
            };
            let end = HEADER_LEN + at;
            let want = crc32(&datagram[..end]) ^ FINGERPRINT_XOR;
            return attr_len == 4
                && at + 8 == body.len()
                && u32::from_be_bytes([value[0], value[1], value[2], value[3]]) == want;
        }
        at += 4 + ((attr_len + 3) & !3);
    }
    at == body.len()
}

/// CRC-32 (IEEE 802.3), bit by bit: STUN messages are few and short.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
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
    fn fingerprint_is_checked_when_present() {
        let mut m = request(&[(ATTR_USERNAME, b"srv1:cli2")]);
        assert!(fingerprint_ok(&m), "no fingerprint: passes");
        // Append a FINGERPRINT over the message with its length counting it.
        let len = u16::from_be_bytes([m[2], m[3]]) + 8;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        let fp = crc32(&m) ^ FINGERPRINT_XOR;
        m.extend_from_slice(&ATTR_FINGERPRINT.to_be_bytes());
        m.extend_from_slice(&4u16.to_be_bytes());
        m.extend_from_slice(&fp.to_be_bytes());
        assert!(fingerprint_ok(&m));
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let mut bad = m.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(!fingerprint_ok(&bad));
        for n in 0..m.len() {
            assert!(!fingerprint_ok(&m[..n]), "truncated at {n}");
        }
        // An attribute running past the declared length.
        let mut past = request(&[(ATTR_USERNAME, b"srv1:cli2")]);
        past[HEADER_LEN + 3] = 200;
        assert!(!fingerprint_ok(&past));
    }

    #[test]
    fn demux_by_first_byte() {
        assert_eq!(demux(&[]), Demux::Other);
        assert_eq!(demux(&[22]), Demux::Dtls);
        assert_eq!(demux(&[0x80]), Demux::Rtp);
        assert_eq!(demux(&[64]), Demux::Other);
    }
}
