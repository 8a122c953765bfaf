//! The two pieces of RTCP the engine's own send path reads and writes itself, on the
//! plaintext of a compound (RFC 3550 §6, RFC 4585): the generic NACKs a subscriber
//! sends about the streams the engine sends it, and the sender info of the reports
//! str0m writes for those streams (str0m never saw their packets, so the engine fills
//! in the RTP time and counts). Everything else in a compound is left to str0m.
//!
//! Bytes from the network: every length is checked, nothing panics (fuzzed through
//! `shard_srtp`, and directly by the tests below).

/// RTCP packet types.
const SR: u8 = 200;
const RTPFB: u8 = 205;
/// The generic NACK's feedback message type (RFC 4585 §6.2.1).
const NACK_FMT: u8 = 1;

/// The length of the RTCP packet at `at` in a compound, if it is a version 2 packet
/// that ends inside the compound.
fn packet_len(compound: &[u8], at: usize) -> Option<usize> {
    let head = compound.get(at..at + 4)?;
    let len = 4 + 4 * usize::from(u16::from_be_bytes([head[2], head[3]]));
    (head[0] >> 6 == 2 && at + len <= compound.len()).then_some(len)
}

/// The packets of a compound as `(start, length)`, up to the first broken one.
fn packets(compound: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = packet_len(compound, at)?;
        let start = at;
        at += len;
        Some((start, len))
    })
}

/// Calls `lost(media SSRC, sequence number)` for every packet a generic NACK in the
/// compound reports lost.
pub fn nacks(compound: &[u8], mut lost: impl FnMut(u32, u16)) {
    for (at, len) in packets(compound) {
        let p = &compound[at..at + len];
        if p[1] != RTPFB || p[0] & 0x1f != NACK_FMT || len < 12 {
            continue;
        }
        let media = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
        for fci in p[12..].chunks_exact(4) {
            let pid = u16::from_be_bytes([fci[0], fci[1]]);
            let blp = u16::from_be_bytes([fci[2], fci[3]]);
            lost(media, pid);
            for bit in 0..16 {
                if blp & (1 << bit) != 0 {
                    lost(media, pid.wrapping_add(bit + 1));
                }
            }
        }
    }
}

/// What a sender report says about its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// The stream's RTP time at the report's NTP time.
    pub rtp_time: u32,
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
}

/// Rewrites the sender info of every sender report in the compound for which
/// `info(SSRC)` has one. Returns how many it rewrote.
pub fn patch_sender_reports(
    compound: &mut [u8],
    mut info: impl FnMut(u32) -> Option<SenderInfo>,
) -> usize {
    let mut patched = 0;
    let mut at = 0;
    while let Some(len) = packet_len(compound, at) {
        let p = &mut compound[at..at + len];
        at += len;
        if p[1] != SR || len < 28 {
            continue;
        }
        let ssrc = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        if let Some(i) = info(ssrc) {
            p[16..20].copy_from_slice(&i.rtp_time.to_be_bytes());
            p[20..24].copy_from_slice(&i.packets.to_be_bytes());
            p[24..28].copy_from_slice(&i.octets.to_be_bytes());
            patched += 1;
        }
    }
    patched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nack(media: u32, fci: &[(u16, u16)]) -> Vec<u8> {
        let mut p = vec![0x80 | NACK_FMT, RTPFB, 0, (2 + fci.len()) as u8];
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&media.to_be_bytes());
        for (pid, blp) in fci {
            p.extend_from_slice(&pid.to_be_bytes());
            p.extend_from_slice(&blp.to_be_bytes());
        }
        p
    }

    fn sr(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, SR, 0, 6];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xaa; 20]);
        p
    }

    #[test]
    fn a_nack_names_its_pid_and_each_bit_of_its_bitmask() {
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        let compound = [&rr[..], &nack(7, &[(100, 0b101), (65535, 1)])].concat();
        let mut got = Vec::new();
        nacks(&compound, |ssrc, seq| got.push((ssrc, seq)));
        assert_eq!(got, [(7, 100), (7, 101), (7, 103), (7, 65535), (7, 0)]);
    }

    #[test]
    fn sender_reports_of_the_named_streams_are_rewritten_and_nothing_else() {
        let mut compound = [sr(1), sr(2), nack(1, &[(5, 0)])].concat();
        let before = compound.clone();
        let info = SenderInfo {
            rtp_time: 0x0102_0304,
            packets: 9,
            octets: 900,
        };
        let n = patch_sender_reports(&mut compound, |s| (s == 2).then_some(info));
        assert_eq!(n, 1);
        assert_eq!(compound[..28], before[..28], "stream 1 untouched");
        assert_eq!(
            compound[28 + 8..28 + 16],
            before[28 + 8..28 + 16],
            "NTP time kept"
        );
        assert_eq!(compound[28 + 16..28 + 20], [1, 2, 3, 4]);
        assert_eq!(compound[28 + 20..28 + 24], 9u32.to_be_bytes());
        assert_eq!(compound[56..], before[56..]);
    }

    #[test]
    fn truncated_and_garbage_compounds_are_read_as_far_as_they_go() {
        let whole = [nack(7, &[(1, 0)]), sr(3)].concat();
        for cut in 0..whole.len() {
            let mut part = whole[..cut].to_vec();
            nacks(&part, |_, _| {});
            patch_sender_reports(&mut part, |_| {
                Some(SenderInfo {
                    rtp_time: 0,
                    packets: 0,
                    octets: 0,
                })
            });
        }
        // A length field that claims more than is there stops the walk.
        let mut lying = nack(7, &[(1, 0)]);
        lying[3] = 200;
        let mut got = 0;
        nacks(&lying, |_, _| got += 1);
        assert_eq!(got, 0);
        // Version 0 is not RTCP.
        let mut v0 = nack(7, &[(1, 0)]);
        v0[0] &= 0x3f;
        nacks(&v0, |_, _| got += 1);
        assert_eq!(got, 0);
    }
}
