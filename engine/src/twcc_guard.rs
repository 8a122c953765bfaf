//! A guard, in front of str0m, against one RTP packet that makes str0m 0.25 allocate
//! without bound (found by the `shard_srtp` fuzz target; docs/fuzzing.md, "Findings").
//!
//! str0m extends each received transport-wide sequence number (the TWCC header
//! extension) to 64 bits against the highest one it has registered, `M`, choosing the
//! closest value. While `M < 32768`, a value `v >= M + 32768` is closest to `v - 65536`,
//! which is negative and wraps to just below 2^64. The next TWCC feedback then fills
//! the gap from `M` to that number with "missing" chunks of 8192: about 2^51 of them,
//! until the process runs out of memory and aborts — every room on the server, from
//! one participant's packet. (Once `M >= 32768` no value can extend below zero.)
//!
//! str0m's `M` is not visible, so the guard keeps a lower bound `L` of it and drops, in
//! the early phase (`L < 32768`), every RTP packet that carries a two-byte header
//! extension element of value `v >= L + 32768`. Those are the packets that could
//! underflow (`v >= M + 32768` implies `v >= L + 32768`); a sender counting its
//! sequence numbers up from wherever it starts never sends one. `L` is the larger of
//! the smallest two-byte element value of any packet let through (every value str0m
//! registered is at least that, so `M` is) and the transport-wide sequence numbers of
//! packets str0m has surely registered (it emitted them as media).
//!
//! Which extension id carries the sequence number is str0m's session map, which is not
//! public, and str0m reads the number from the first two bytes of an element of any
//! length of at least two, for ids 1–16. So every such id is a candidate, except those
//! str0m itself shows are something else: after each negotiation, the ids that a media's
//! negotiated map (`Media::remote_extmap`, which holds only pairs that agree with the
//! session map) gives to another extension ([`TwccGuard::renegotiated`]); and, when str0m
//! emits a packet whose header is the datagram just handled, each id whose element does
//! not hold the sequence number str0m read ([`TwccGuard::learn`]). A browser's
//! abs-send-time, audio level, mid and rid ids are ruled out by the first. Wrongly kept
//! candidates only make the guard stricter.
//!
//! Reading the clear-text header extension of an SRTP packet needs no keys; like
//! [`crate::media_check`], this never allocates and never panics, whatever the bytes.

/// The first value of the late phase: from here on no extension can go below zero.
const SAFE: u32 = 32_768;

/// The ids str0m's extension map can hold (`ExtensionMap`: 1–16); it parses no other.
const MAX_ID: u8 = 16;

/// A set of extension ids (0–255).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ids([u64; 4]);

impl Ids {
    const NONE: Ids = Ids([0; 4]);

    /// Every id str0m may map.
    fn mappable() -> Ids {
        let mut ids = Ids::NONE;
        for id in 1..=MAX_ID {
            ids.insert(id);
        }
        ids
    }

    fn contains(&self, id: u8) -> bool {
        self.0[usize::from(id / 64)] & (1 << (id % 64)) != 0
    }

    fn insert(&mut self, id: u8) {
        self.0[usize::from(id / 64)] |= 1 << (id % 64);
    }

    fn remove(&mut self, id: u8) {
        self.0[usize::from(id / 64)] &= !(1 << (id % 64));
    }

    fn remove_all(&mut self, other: Ids) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a &= !b;
        }
    }
}

/// One peer's guard.
#[derive(Debug, Clone, Copy)]
pub struct TwccGuard {
    /// Ids that may carry the transport-wide sequence number.
    candidates: Ids,
    /// Smallest candidate value of the packets let through.
    smallest_seen: Option<u16>,
    /// Largest transport-wide sequence number str0m surely registered.
    confirmed: Option<u16>,
    /// `L >= 32768` was reached: str0m's own `M` is past the danger for good.
    safe: bool,
}

impl Default for TwccGuard {
    fn default() -> Self {
        Self {
            candidates: Ids::mappable(),
            smallest_seen: None,
            confirmed: None,
            safe: false,
        }
    }
}

impl TwccGuard {
    /// Whether an RTP packet (SRTP: its header is clear text) may go to str0m. A
    /// packet let through updates the bound.
    pub fn admit(&mut self, packet: &[u8]) -> bool {
        if self.safe {
            return true;
        }
        let Some(lower) = self.lower_bound() else {
            // Nothing registered yet: str0m takes the first value as it is.
            self.note_elements(packet);
            return true;
        };
        if self
            .candidate_values(packet)
            .any(|v| u32::from(v) >= u32::from(lower) + SAFE)
        {
            return false;
        }
        self.note_elements(packet);
        true
    }

    /// Whether str0m is past the danger for good: nothing is dropped, nothing more to
    /// learn.
    pub fn is_safe(&self) -> bool {
        self.safe
    }

    /// str0m delivered a packet whose transport-wide sequence number was `seq`: it has
    /// registered it.
    pub fn confirm(&mut self, seq: u16) {
        if self.confirmed.is_none_or(|c| seq > c) {
            self.confirmed = Some(seq);
        }
        self.update_safe();
    }

    /// str0m parsed `packet` (this very datagram) and read `seq` as its transport-wide
    /// sequence number (`None`: it read none). Ids whose elements hold something else
    /// are not the sequence number's.
    pub fn learn(&mut self, packet: &[u8], seq: Option<u16>) {
        let (mut seen, mut matched) = (Ids::NONE, Ids::NONE);
        for (id, value) in elements(packet) {
            seen.insert(id);
            if Some(value) == seq {
                matched.insert(id);
            }
        }
        seen.remove_all(matched);
        self.candidates.remove_all(seen);
    }

    /// A negotiation ended: the mapping may have changed. Every id is a candidate
    /// again, except `not_twcc`, the ids str0m's negotiated maps give to other
    /// extensions.
    pub fn renegotiated(&mut self, not_twcc: impl IntoIterator<Item = u8>) {
        self.candidates = Ids::mappable();
        for id in not_twcc {
            self.candidates.remove(id);
        }
    }

    fn candidate_values<'a>(&'a self, packet: &'a [u8]) -> impl Iterator<Item = u16> + 'a {
        elements(packet)
            .filter(|(id, _)| self.candidates.contains(*id))
            .map(|(_, v)| v)
    }

    fn note_elements(&mut self, packet: &[u8]) {
        if let Some(min) = self.candidate_values(packet).min() {
            self.smallest_seen = Some(self.smallest_seen.map_or(min, |s| s.min(min)));
        }
        self.update_safe();
    }

    fn lower_bound(&self) -> Option<u16> {
        match (self.smallest_seen, self.confirmed) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    fn update_safe(&mut self) {
        self.safe = self.lower_bound().is_some_and(|l| u32::from(l) >= SAFE);
    }
}

/// The header extension elements of at least two bytes, as (id, first two bytes): what
/// str0m would read as a transport-wide sequence number if the id were mapped to it. Both
/// the one-byte (RFC 8285 0xBEDE) and the two-byte (0x100X) forms; the walk ends where
/// str0m's does (id 15 in the one-byte form, an element past the end). Nothing when the
/// packet has no extension or its block does not fit.
pub fn elements(packet: &[u8]) -> impl Iterator<Item = (u8, u16)> + '_ {
    let (profile, mut body) = extension_block(packet).unwrap_or((0, &[]));
    let one_byte = profile == 0xBEDE;
    let two_byte = profile & 0xFFF0 == 0x1000;
    std::iter::from_fn(move || {
        loop {
            let (&first, rest) = body.split_first()?;
            if first == 0 {
                body = rest; // padding
                continue;
            }
            let (id, len, header) = if one_byte {
                if first >> 4 == 15 {
                    return None; // id 15: stop parsing (RFC 8285)
                }
                (first >> 4, usize::from(first & 0x0f) + 1, 1)
            } else if two_byte {
                let (&len, _) = rest.split_first()?;
                (first, usize::from(len), 2)
            } else {
                return None;
            };
            let value = body.get(header..header + len)?;
            body = &body[header + len..];
            if let [a, b, ..] = *value {
                return Some((id, u16::from_be_bytes([a, b])));
            }
        }
    })
}

/// The RTP header extension's profile and its data, if the packet has one that fits.
fn extension_block(packet: &[u8]) -> Option<(u16, &[u8])> {
    let &b0 = packet.first()?;
    if b0 & 0x10 == 0 {
        return None;
    }
    let start = 12 + 4 * usize::from(b0 & 0x0f);
    let head = packet.get(start..start + 4)?;
    let profile = u16::from_be_bytes([head[0], head[1]]);
    let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let data = packet.get(start + 4..start + 4 + 4 * words)?;
    Some((profile, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTP header with a one-byte-form extension holding `elements` (id, bytes).
    fn rtp_with(elements: &[(u8, &[u8])]) -> Vec<u8> {
        let mut ext = Vec::new();
        for (id, data) in elements {
            ext.push((id << 4) | (data.len() as u8 - 1));
            ext.extend_from_slice(data);
        }
        while ext.len() % 4 != 0 {
            ext.push(0);
        }
        let mut p = vec![0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xBE, 0xDE];
        p.extend_from_slice(&((ext.len() / 4) as u16).to_be_bytes());
        p.extend_from_slice(&ext);
        p.extend_from_slice(b"payload and tag");
        p
    }

    fn twcc(seq: u16) -> Vec<u8> {
        rtp_with(&[(1, &[0x7f]), (3, &seq.to_be_bytes()), (4, b"0")])
    }

    #[test]
    fn finds_elements_of_two_bytes_or_more_in_both_forms() {
        let p = rtp_with(&[(1, &[1]), (3, &[0x12, 0x34]), (5, b"hi"), (6, b"abc")]);
        assert_eq!(
            elements(&p).collect::<Vec<_>>(),
            [
                (3, 0x1234),
                (5, u16::from_be_bytes(*b"hi")),
                (6, u16::from_be_bytes(*b"ab"))
            ]
        );
        // Two-byte form: 0x1000, then id, length, data.
        let mut q = vec![0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 0x00, 0, 2];
        q.extend_from_slice(&[200, 2, 0xab, 0xcd, 0, 7, 1, 9]);
        assert_eq!(elements(&q).collect::<Vec<_>>(), [(200, 0xabcd)]);
    }

    #[test]
    fn broken_or_missing_extensions_yield_nothing() {
        let mut p = twcc(5);
        p[15] = 200; // the extension claims more words than the packet has
        assert_eq!(elements(&p).count(), 0);
        assert_eq!(elements(&[0x80, 96, 0, 1]).count(), 0);
        assert_eq!(elements(&[]).count(), 0);
        // An element running past the block ends the walk.
        let q = [
            0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xBE, 0xDE, 0, 1, 0x3f, 1, 2, 3,
        ];
        assert_eq!(elements(&q).count(), 0);
    }

    #[test]
    fn a_sequence_counting_up_always_passes() {
        for start in [0u16, 1, 20_000, 40_000, 65_000] {
            let mut g = TwccGuard::default();
            for i in 0..70_000u32 {
                let seq = start.wrapping_add(i as u16);
                assert!(g.admit(&twcc(seq)), "start {start}, packet {i}");
                if i % 3 == 0 {
                    g.confirm(seq);
                }
            }
        }
    }

    #[test]
    fn a_value_that_str0m_would_extend_below_zero_is_dropped() {
        let mut g = TwccGuard::default();
        assert!(g.admit(&twcc(5)));
        g.confirm(5);
        // str0m's M is 5: 40000 is closest to 40000 - 65536.
        assert!(!g.admit(&twcc(40_000)));
        assert!(!g.admit(&twcc(32_773)));
        assert!(g.admit(&twcc(32_772)));
        assert!(g.admit(&twcc(6)));
    }

    #[test]
    fn unregistered_packets_never_raise_the_bound() {
        // Packets str0m refuses (say, an unknown SSRC) pass the guard but are never
        // confirmed: the bound stays at the smallest value seen, below str0m's M.
        let mut g = TwccGuard::default();
        assert!(g.admit(&twcc(5)));
        assert!(g.admit(&twcc(30_000)));
        assert!(!g.admit(&twcc(40_000)));
    }

    #[test]
    fn past_32768_nothing_is_dropped() {
        let mut g = TwccGuard::default();
        assert!(g.admit(&twcc(40_000)));
        g.confirm(40_000);
        assert!(g.admit(&twcc(5)));
        assert!(g.admit(&twcc(65_535)));
    }

    /// A packet as a browser sends it: audio level, abs-send-time (3 bytes, any value),
    /// the transport-wide sequence number, the mid.
    fn browser(seq: u16, send_time: [u8; 3]) -> Vec<u8> {
        rtp_with(&[
            (1, &[0x7f]),
            (2, &send_time),
            (3, &seq.to_be_bytes()),
            (4, b"0"),
        ])
    }

    #[test]
    fn learnt_ids_stop_other_extensions_from_being_mistaken_for_the_sequence() {
        let mut g = TwccGuard::default();
        assert!(g.admit(&browser(1, [0x01, 0, 0])));
        g.confirm(1);
        // Before str0m has shown which id is which, abs-send-time is a candidate.
        assert!(!g.admit(&browser(2, [0xf0, 0, 0])));
        g.learn(&browser(1, [0x01, 0, 0]), Some(1));
        assert!(g.admit(&browser(2, [0xf0, 0, 0])));
        assert!(!g.admit(&browser(40_000, [0x01, 0, 0])));
        // A renegotiation may have moved the mapping.
        g.renegotiated([]);
        assert!(!g.admit(&browser(3, [0xf0, 0, 0])));
        // ... unless the negotiated maps say which id is abs-send-time.
        g.renegotiated([1, 2, 4]);
        assert!(g.admit(&browser(3, [0xf0, 0, 0])));
        assert!(!g.admit(&browser(40_000, [0x01, 0, 0])));
    }

    #[test]
    fn ids_str0m_cannot_map_are_never_candidates() {
        // Two-byte form, id 200: str0m's map ends at 16.
        let mut g = TwccGuard::default();
        let mut q = vec![0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 0x00, 0, 2];
        q.extend_from_slice(&[3, 2, 0, 5, 200, 2, 0xff, 0xff]);
        assert!(g.admit(&q));
        g.confirm(5);
        q[18] = 0xff; // id 3 now holds 0xff05
        assert!(!g.admit(&q));
    }

    #[test]
    fn a_packet_without_a_sequence_number_rules_out_all_its_ids() {
        let mut g = TwccGuard::default();
        assert!(g.admit(&twcc(1)));
        g.learn(&twcc(1), None);
        // Nothing is a candidate: a jump is let through, as str0m reads no number.
        assert!(g.admit(&twcc(50_000)));
    }
}
