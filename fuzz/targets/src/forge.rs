//! Tools for a hostile peer: learning a session's SRTP keys, and building the packets a
//! well-behaved peer never sends.
//!
//! - [`tapped_config`] and [`build`]: an `Rtc` whose SRTP keys the test or fuzz target
//!   holds once DTLS is up (the engine's `dtls_tap`, as the server's own sessions).
//! - [`SrtpForge`]: protects (and unprotects) arbitrary RTP and RTCP bytes with those
//!   keys, the way the peer's own str0m would (RFC 3711, RFC 7714; the engine's `srtp`),
//!   so malformed RTP headers and RTCP compounds reach the server's parsers *inside*
//!   valid SRTP.
//! - [`stun_binding_request`], [`rtp`], [`crc32`]: packet builders.

use std::sync::Arc;
use std::time::Instant;

use engine::dtls_tap::{self, KeySlot};
use engine::srtp::{Srtp, SrtpKeys};
use str0m::{Rtc, RtcConfig};

/// The SRTP keying material of one DTLS session.
pub type Keys = SrtpKeys;

/// A client `RtcConfig` (RTP mode) whose SRTP keys [`build`] makes readable once DTLS
/// is up.
pub fn tapped_config() -> RtcConfig {
    Rtc::builder()
        .set_rtp_mode(true)
        .set_crypto_provider(Arc::new(dtls_tap::provider()))
}

/// Builds the `Rtc` of a [`tapped_config`], and the slot where its keys appear.
pub fn build(config: RtcConfig, now: Instant) -> (Rtc, KeySlot) {
    dtls_tap::build(config, now)
}

/// SRTP and SRTCP with one direction's keys of a session, the way its sender's str0m
/// does it (the engine's own [`Srtp`], rollover counter 0, SRTCP indexes counted from
/// 0), for packets a well-behaved peer never sends.
pub struct SrtpForge {
    srtp: Srtp,
    srtcp_index: u32,
}

impl std::fmt::Debug for SrtpForge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SrtpForge")
    }
}

impl SrtpForge {
    /// The context that protects what the side with `keys` *sends* (`sending`) or what it
    /// receives (`!sending`).
    pub fn new(keys: &Keys, sending: bool) -> Self {
        let srtp = Srtp::new(&dtls_tap::provider(), keys, sending)
            .expect("keying material that fits its profile");
        Self {
            srtp,
            srtcp_index: 0,
        }
    }

    /// Protects an RTP packet whose first `header_len` bytes are the header, with the
    /// SSRC and sequence number given (whatever the header says) and rollover counter 0.
    /// `header_len` is clamped to 12 bytes and the packet's length; a packet shorter than
    /// an RTP header cannot be protected and is returned as it is.
    pub fn protect_rtp(
        &mut self,
        packet: &[u8],
        header_len: usize,
        ssrc: u32,
        seq: u16,
    ) -> Vec<u8> {
        if packet.len() < 12 {
            return packet.to_vec();
        }
        let hlen = header_len.clamp(12, packet.len());
        self.srtp
            .protect_rtp(packet, hlen, ssrc, u64::from(seq))
            .expect("a packet with its header protects")
    }

    /// Protects an RTCP compound (at least 8 bytes: the first header and sender SSRC).
    pub fn protect_rtcp(&mut self, compound: &[u8]) -> Option<Vec<u8>> {
        let index = self.srtcp_index;
        let d = self.srtp.protect_rtcp(compound, index).ok()?;
        self.srtcp_index = (index + 1) & 0x7fff_ffff;
        Some(d)
    }

    /// The plaintext of an SRTP packet protected with these keys (rollover counter 0),
    /// whose header is `header_len` bytes long. `None` if it does not authenticate.
    pub fn unprotect_rtp(&mut self, srtp: &[u8], header_len: usize) -> Option<Vec<u8>> {
        let seq = u16::from_be_bytes([*srtp.get(2)?, *srtp.get(3)?]);
        self.srtp
            .unprotect_rtp(srtp, header_len, u64::from(seq))
            .ok()
    }

    /// The plaintext compound of an (encrypted) SRTCP packet protected with these keys.
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Option<Vec<u8>> {
        self.srtp.unprotect_rtcp(srtcp).ok().map(|(c, _)| c)
    }
}

// ---- packet builders ----

/// The length of an RTP header as RFC 3550 defines it (fixed part, CSRCs, extension
/// block), or `None` when the packet is too short to hold it.
pub fn rtp_header_len(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    let cc = usize::from(first & 0x0f);
    let mut len = 12 + 4 * cc;
    if first & 0x10 != 0 {
        let words = packet.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    (len <= packet.len()).then_some(len)
}

/// A plain RTP packet: version 2, no padding, no extension.
pub fn rtp(pt: u8, seq: u16, time: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push((pt & 0x7f) | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&time.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// CRC-32 (IEEE 802.3), as STUN's FINGERPRINT uses it (before its XOR).
pub fn crc32(data: &[u8]) -> u32 {
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

/// How to spoil a STUN binding request.
#[derive(Debug, Clone, Copy, Default)]
pub struct StunFlaws {
    /// Make the USERNAME attribute's length run past the message.
    pub attr_past_end: bool,
    /// A MESSAGE-INTEGRITY of this many bytes instead of 20.
    pub integrity_len: Option<usize>,
    /// Flip a bit of the FINGERPRINT.
    pub bad_fingerprint: bool,
    /// Flip a bit of the MESSAGE-INTEGRITY.
    pub bad_integrity: bool,
}

/// A STUN binding request as an ICE agent sends it: USERNAME `local:remote`,
/// PRIORITY, ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY keyed with `password`,
/// FINGERPRINT — spoilt as `flaws` says.
pub fn stun_binding_request(
    username: &str,
    password: &str,
    transaction: [u8; 12],
    flaws: StunFlaws,
) -> Vec<u8> {
    fn attr(m: &mut Vec<u8>, kind: u16, value: &[u8]) {
        m.extend_from_slice(&kind.to_be_bytes());
        m.extend_from_slice(&(value.len() as u16).to_be_bytes());
        m.extend_from_slice(value);
        while !m.len().is_multiple_of(4) {
            m.push(0);
        }
    }
    fn set_len(m: &mut [u8], len: usize) {
        m[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    }
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(&0x0001u16.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    m.extend_from_slice(&transaction);
    let user_at = m.len();
    attr(&mut m, 0x0006, username.as_bytes());
    attr(&mut m, 0x0024, &0x6e7f_1effu32.to_be_bytes()); // PRIORITY
    attr(&mut m, 0x802a, &[7; 8]); // ICE-CONTROLLING
    attr(&mut m, 0x0025, &[]); // USE-CANDIDATE
    // MESSAGE-INTEGRITY covers the message with the length field counting it.
    let mi_len = flaws.integrity_len.unwrap_or(20);
    let body = m.len() - 20;
    set_len(&mut m, body + 4 + mi_len);
    let mut mac = dtls_tap::provider()
        .sha1_hmac_provider
        .sha1_hmac(password.as_bytes(), &[&m])
        .to_vec();
    mac.resize(mi_len, 0);
    if flaws.bad_integrity && !mac.is_empty() {
        mac[0] ^= 1;
    }
    attr(&mut m, 0x0008, &mac);
    let body = m.len() - 20;
    set_len(&mut m, body + 8);
    let mut fp = crc32(&m) ^ 0x5354_554e;
    if flaws.bad_fingerprint {
        fp ^= 1;
    }
    attr(&mut m, 0x8028, &fp.to_be_bytes());
    if flaws.attr_past_end {
        m[user_at + 2..user_at + 4].copy_from_slice(&0x0400u16.to_be_bytes());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn rtp_header_len_counts_csrcs_and_extension() {
        let mut p = rtp(96, 1, 2, 3, false, &[0; 8]);
        assert_eq!(rtp_header_len(&p), Some(12));
        p[0] |= 0x12; // X, two CSRCs
        assert_eq!(rtp_header_len(&p), None);
        p.extend_from_slice(&[0; 16]);
        p[20..24].copy_from_slice(&[0xbe, 0xde, 0, 1]);
        assert_eq!(rtp_header_len(&p), Some(12 + 8 + 4 + 4));
    }
}
