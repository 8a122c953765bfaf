//! The part of SRTP and SRTCP that can be checked without keys, checked before a
//! datagram from a known peer reaches str0m: the clear-text header must fit in the
//! datagram with room for the shortest authentication tag. A datagram that fails is
//! dropped and counted (`ShardStats::rx_malformed`); str0m still checks everything
//! else (authentication, the encrypted part of RTCP, padding).
//!
//! Like [`crate::stun`], it never allocates and never panics, whatever the bytes.

/// The shortest SRTP/SRTCP authentication tag (AES_CM_128_HMAC_SHA1_80; the GCM
/// profiles' tags are 16 bytes).
pub const MIN_TAG: usize = 10;
/// The E flag and SRTCP index that end every SRTCP packet (before its tag).
const SRTCP_INDEX: usize = 4;
/// RTP fixed header.
const RTP_HEADER: usize = 12;
/// RTCP header and sender SSRC, the clear-text start of an SRTCP packet.
const RTCP_HEADER: usize = 8;

/// Why a datagram's framing is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than its fixed header plus the trailer.
    TooShort,
    /// The CSRC count names more CSRCs than the packet holds.
    CsrcPastEnd,
    /// The header extension runs past the end.
    ExtensionPastEnd,
    /// The first RTCP packet's length runs past the compound.
    RtcpLengthPastEnd,
}

/// Whether a datagram of the RTP class of RFC 7983 is RTCP: its second byte is 192–223
/// (RFC 5761).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.get(1).is_some_and(|b| (192..=223).contains(b))
}

/// Checks a datagram of the RTP class of RFC 7983 (first byte 128–191): RTCP when its
/// second byte is 192–223 (RFC 5761), RTP otherwise.
pub fn check_srtp(datagram: &[u8]) -> Result<(), Malformed> {
    let [b0, b1, ..] = *datagram else {
        return Err(Malformed::TooShort);
    };
    if (192..=223).contains(&b1) {
        let compound = datagram
            .len()
            .checked_sub(SRTCP_INDEX + MIN_TAG)
            .filter(|&n| n >= RTCP_HEADER)
            .ok_or(Malformed::TooShort)?;
        let words = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
        if (words + 1) * 4 > compound {
            return Err(Malformed::RtcpLengthPastEnd);
        }
        return Ok(());
    }
    let body = datagram
        .len()
        .checked_sub(MIN_TAG)
        .filter(|&n| n >= RTP_HEADER)
        .ok_or(Malformed::TooShort)?;
    let mut len = RTP_HEADER + 4 * usize::from(b0 & 0x0f);
    if len > body {
        return Err(Malformed::CsrcPastEnd);
    }
    if b0 & 0x10 != 0 {
        let words = datagram
            .get(len + 2..len + 4)
            .filter(|_| len + 4 <= body)
            .ok_or(Malformed::ExtensionPastEnd)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
        if len > body {
            return Err(Malformed::ExtensionPastEnd);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(first: u8, extra: usize) -> Vec<u8> {
        let mut p = vec![first, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
        p.resize(RTP_HEADER + extra + MIN_TAG, 0);
        p
    }

    #[test]
    fn rtp_framing() {
        assert_eq!(check_srtp(&rtp(0x80, 0)), Ok(()));
        assert_eq!(check_srtp(&rtp(0x80, 0)[..20]), Err(Malformed::TooShort));
        assert_eq!(check_srtp(&[]), Err(Malformed::TooShort));
        assert_eq!(check_srtp(&[0x80]), Err(Malformed::TooShort));
        // Fifteen CSRCs need 60 bytes.
        assert_eq!(check_srtp(&rtp(0x8f, 56)), Err(Malformed::CsrcPastEnd));
        assert_eq!(check_srtp(&rtp(0x8f, 60)), Ok(()));
        // An extension header that is not there, or whose length runs past the end.
        assert_eq!(check_srtp(&rtp(0x90, 2)), Err(Malformed::ExtensionPastEnd));
        let mut ext = rtp(0x90, 8);
        ext[12..16].copy_from_slice(&[0xbe, 0xde, 0, 1]);
        assert_eq!(check_srtp(&ext), Ok(()));
        ext[15] = 2;
        assert_eq!(check_srtp(&ext), Err(Malformed::ExtensionPastEnd));
        ext[14] = 0xff;
        assert_eq!(check_srtp(&ext), Err(Malformed::ExtensionPastEnd));
    }

    #[test]
    fn rtcp_framing() {
        // A receiver report with no blocks: 8 bytes, length 1.
        let mut rr = vec![0x80, 201, 0, 1, 0, 0, 0, 7];
        rr.resize(RTCP_HEADER + SRTCP_INDEX + MIN_TAG, 0);
        assert_eq!(check_srtp(&rr), Ok(()));
        assert_eq!(check_srtp(&rr[..21]), Err(Malformed::TooShort));
        rr[3] = 2;
        assert_eq!(check_srtp(&rr), Err(Malformed::RtcpLengthPastEnd));
        rr[2] = 0xff;
        assert_eq!(check_srtp(&rr), Err(Malformed::RtcpLengthPastEnd));
    }
}
