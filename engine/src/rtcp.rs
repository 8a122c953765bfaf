//! The pieces of RTCP the engine's own send path reads and writes itself, on the
//! plaintext of a compound (RFC 3550 §6, RFC 4585): the generic NACKs a subscriber
//! sends about the streams the engine sends it, its transport-wide congestion control
//! feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01) about every packet
//! the engine sent it, and the sender info of the reports str0m writes for those
//! streams (str0m never saw their packets, so the engine fills in the RTP time and
//! counts). Everything else in a compound is left to str0m.
//!
//! Bytes from the network: every length is checked, nothing panics (fuzzed through
//! `shard_srtp`, and directly by the tests below).

/// RTCP packet types.
const SR: u8 = 200;
const RTPFB: u8 = 205;
/// The generic NACK's feedback message type (RFC 4585 §6.2.1).
const NACK_FMT: u8 = 1;
/// Transport-wide congestion control feedback's message type.
const TWCC_FMT: u8 = 15;

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

/// One packet a TWCC feedback reports on: its transport-wide sequence number and, if it
/// arrived, when, in microseconds on the receiver's clock (whose zero is its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub seq: u16,
    pub at_us: Option<i64>,
}

/// Calls `each` for every packet each TWCC feedback in the compound reports on, in
/// sequence order; returns how many feedback packets it read. A feedback is read as
/// far as it is whole: a status with no delta left for it ends it (the packets before
/// it are reported).
pub fn twcc(compound: &[u8], mut each: impl FnMut(Arrival)) -> u64 {
    let mut feedbacks = 0;
    for (at, len) in packets(compound) {
        let p = &compound[at..at + len];
        if p[1] == RTPFB && p[0] & 0x1f == TWCC_FMT && len >= 20 {
            twcc_feedback(&p[12..], &mut each);
            feedbacks += 1;
        }
    }
    feedbacks
}

/// The statuses one chunk of a TWCC feedback holds: `(status of the i-th, count)`.
/// Statuses: 0 not received, 1 received with a one-byte delta, 2 with a two-byte delta,
/// 3 reserved.
fn chunk_statuses(chunk: u16) -> (impl Fn(u16) -> u8, u16) {
    let vector = chunk & 0x8000 != 0;
    let two_bits = chunk & 0x4000 != 0;
    let count = match (vector, two_bits) {
        (false, _) => chunk & 0x1fff,
        (true, false) => 14,
        (true, true) => 7,
    };
    let status = move |i: u16| match (vector, two_bits) {
        (false, _) => ((chunk >> 13) & 0b11) as u8,
        (true, false) => ((chunk >> (13 - i)) & 1) as u8,
        (true, true) => ((chunk >> (12 - 2 * i)) & 0b11) as u8,
    };
    (status, count)
}

/// Reads one feedback's FCI: base sequence number, status count, reference time,
/// feedback count, the chunks, then the receive deltas.
fn twcc_feedback(fci: &[u8], each: &mut impl FnMut(Arrival)) {
    let base = u16::from_be_bytes([fci[0], fci[1]]);
    let total = u16::from_be_bytes([fci[2], fci[3]]);
    // 24 bits, in multiples of 64 ms.
    let reference = i64::from(u32::from_be_bytes([0, fci[4], fci[5], fci[6]])) * 64_000;
    // Where the chunks end and the deltas start: chunks until `total` statuses.
    let mut chunks_end = 8;
    let mut covered = 0u32;
    while covered < u32::from(total) {
        let Some(c) = fci.get(chunks_end..chunks_end + 2) else {
            return;
        };
        covered += u32::from(chunk_statuses(u16::from_be_bytes([c[0], c[1]])).1);
        chunks_end += 2;
    }
    let mut deltas = &fci[chunks_end..];
    let mut at_us = reference;
    let mut n = 0u16;
    for c in fci[8..chunks_end].chunks_exact(2) {
        let (status, count) = chunk_statuses(u16::from_be_bytes([c[0], c[1]]));
        for i in 0..count {
            if n == total {
                return;
            }
            let seq = base.wrapping_add(n);
            n += 1;
            let delta = match status(i) {
                1 => deltas.split_first().map(|(d, rest)| (i64::from(*d), rest)),
                2 => deltas
                    .split_first_chunk::<2>()
                    .map(|(d, rest)| (i64::from(i16::from_be_bytes(*d)), rest)),
                _ => {
                    each(Arrival { seq, at_us: None });
                    continue;
                }
            };
            let Some((delta, rest)) = delta else {
                return;
            };
            deltas = rest;
            at_us += delta * 250;
            each(Arrival {
                seq,
                at_us: Some(at_us),
            });
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
// TWCC chunks are written grouped by field (type, symbol size, statuses), not by nibble.
#[allow(clippy::unusual_byte_groupings)]
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

    /// A TWCC feedback packet: base sequence number, status count, reference time
    /// (64 ms units), then the chunks and deltas as given (padded to a word).
    fn twcc_packet(
        base: u16,
        count: u16,
        reference: u32,
        chunks: &[u16],
        deltas: &[u8],
    ) -> Vec<u8> {
        let mut p = vec![0x80 | TWCC_FMT, RTPFB, 0, 0];
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&2u32.to_be_bytes());
        p.extend_from_slice(&base.to_be_bytes());
        p.extend_from_slice(&count.to_be_bytes());
        p.extend_from_slice(&reference.to_be_bytes()[1..]);
        p.push(0); // feedback count
        for c in chunks {
            p.extend_from_slice(&c.to_be_bytes());
        }
        p.extend_from_slice(deltas);
        while p.len() % 4 != 0 {
            p.push(0);
        }
        p[3] = (p.len() / 4 - 1) as u8;
        p
    }

    fn arrivals(compound: &[u8]) -> Vec<(u16, Option<i64>)> {
        let mut got = Vec::new();
        twcc(compound, |a| got.push((a.seq, a.at_us)));
        got
    }

    #[test]
    fn twcc_feedback_reads_runs_and_both_status_vectors() {
        let run_small = 0b0_01_0_0000_0000_0011; // 3 received, small deltas
        let run_lost = 0b0_00_0_0000_0000_0010; // 2 not received
        let one_bit = 0b1_0_10_1000_0000_0000; // 14 statuses: received, lost, received, rest lost
        let two_bit = 0b1_1_10_01_00_00_00_00_00; // large, small, then 5 not received
        let deltas = [
            4, 0, 8, // the run: +1 ms, +0, +2 ms
            1, 2, // the one-bit vector's two
            0xff, 0xfc, // the large one: -1 ms
            4,    // and a small one: +1 ms
        ];
        let compound = [
            nack(9, &[(1, 0)]),
            twcc_packet(
                65534,
                3 + 2 + 14 + 7,
                2,
                &[run_small, run_lost, one_bit, two_bit],
                &deltas,
            ),
        ]
        .concat();
        let got = arrivals(&compound);
        let reference = 128_000;
        let mut want = vec![
            (65534, Some(reference + 1000)),
            (65535, Some(reference + 1000)),
            (0, Some(reference + 3000)),
            (1, None),
            (2, None),
            (3, Some(reference + 3250)),
            (4, None),
            (5, Some(reference + 3750)),
        ];
        want.extend((6..17).map(|s| (s, None)));
        want.push((17, Some(reference + 2750)));
        want.push((18, Some(reference + 3750)));
        want.extend((19..24).map(|s| (s, None)));
        assert_eq!(got, want);
    }

    #[test]
    fn a_twcc_feedback_ends_where_its_status_count_or_its_deltas_do() {
        // A run of 100 received, but a count of 2: two packets.
        let run = 0b0_01_0_0000_0110_0100;
        assert_eq!(arrivals(&twcc_packet(7, 2, 0, &[run], &[4, 4])).len(), 2);
        // A count of 5 with deltas for 2 (the padding reads as a third): the rest is
        // not reported.
        let p = twcc_packet(7, 5, 0, &[run], &[4, 4]);
        let got = arrivals(&p);
        assert!(got.len() < 5, "{got:?}");
        assert_eq!(got[..2], [(7, Some(1000)), (8, Some(2000))]);
        // Chunks that never reach the count: nothing.
        assert!(arrivals(&twcc_packet(7, 500, 0, &[run], &[])).is_empty());
    }

    #[test]
    fn truncated_and_garbage_compounds_are_read_as_far_as_they_go() {
        let run = 0b0_01_0_0000_0000_0011;
        let whole = [
            nack(7, &[(1, 0)]),
            sr(3),
            twcc_packet(1, 3, 5, &[run], &[1, 2, 3]),
        ]
        .concat();
        for cut in 0..whole.len() {
            let mut part = whole[..cut].to_vec();
            nacks(&part, |_, _| {});
            twcc(&part, |_| {});
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
