//! The VP8 payload descriptor's running numbers (RFC 7741 section 4.2), kept continuous
//! for a subscriber whose stream moves between simulcast layers: each layer counts its
//! own picture ids, TL0PICIDX and key indices, and a decoder that sees them jump takes
//! frames as lost. At a switch the subscriber's offsets are set so that the new layer's
//! numbers go on from the last ones it got; every packet is then patched in place (the
//! descriptor keeps its size, so nothing else moves).
//!
//! The payload is the publisher's: anything may be in it. A descriptor too short for
//! what its flags announce is left alone.

/// Where a packet's running numbers are, and what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// The picture id, its byte offset and whether it is 15 bits (else 7).
    pub picture_id: Option<(usize, u16, bool)>,
    /// TL0PICIDX and its byte offset.
    pub tl0: Option<(usize, u8)>,
    /// KEYIDX (5 bits) and the offset of its byte.
    pub key_index: Option<(usize, u8)>,
    /// The temporal layer (TID, 0 the base), when the publisher sends temporal layers.
    pub temporal: Option<u8>,
}

/// Reads the descriptor at the start of a VP8 payload; `None` when it is too short.
pub fn descriptor(p: &[u8]) -> Option<Descriptor> {
    let first = *p.first()?;
    let mut d = Descriptor::default();
    if first & 0x80 == 0 {
        return Some(d); // no extension: nothing to keep running
    }
    let ext = *p.get(1)?;
    let mut at = 2;
    if ext & 0x80 != 0 {
        let b = *p.get(at)?;
        if b & 0x80 != 0 {
            let low = *p.get(at + 1)?;
            d.picture_id = Some((at, u16::from(b & 0x7f) << 8 | u16::from(low), true));
            at += 2;
        } else {
            d.picture_id = Some((at, u16::from(b), false));
            at += 1;
        }
    }
    if ext & 0x40 != 0 {
        d.tl0 = Some((at, *p.get(at)?));
        at += 1;
    }
    if ext & 0x30 != 0 {
        let b = *p.get(at)?;
        if ext & 0x20 != 0 {
            d.temporal = Some(b >> 6);
        }
        if ext & 0x10 != 0 {
            d.key_index = Some((at, b & 0x1f));
        }
    }
    Some(d)
}

/// Whether a VP8 payload starts a frame (S set, partition 0).
pub fn starts_frame(p: &[u8]) -> bool {
    p.first().is_some_and(|b| b & 0x10 != 0 && b & 0x07 == 0)
}

/// What is added to a layer's numbers for one subscriber (wrapping in each field's
/// width).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offsets {
    pub picture_id: u16,
    pub tl0: u8,
    pub key_index: u8,
}

impl Offsets {
    /// Rewrites `payload`'s descriptor (a copy) by these offsets; false when it has
    /// nothing to change.
    pub fn apply(&self, payload: &mut [u8]) -> bool {
        if *self == Offsets::default() {
            return false;
        }
        let Some(d) = descriptor(payload) else {
            return false;
        };
        if let Some((at, id, wide)) = d.picture_id {
            if wide {
                let id = id.wrapping_add(self.picture_id) & 0x7fff;
                payload[at] = 0x80 | (id >> 8) as u8;
                payload[at + 1] = id as u8;
            } else {
                payload[at] = (id as u8).wrapping_add(self.picture_id as u8) & 0x7f;
            }
        }
        if let Some((at, tl0)) = d.tl0 {
            payload[at] = tl0.wrapping_add(self.tl0);
        }
        if let Some((at, key)) = d.key_index {
            payload[at] = (payload[at] & 0xe0) | (key.wrapping_add(self.key_index) & 0x1f);
        }
        true
    }
}

/// One subscriber's VP8 numbering: the offsets of the layer it gets now and the last
/// numbers it got.
#[derive(Debug, Clone, Copy, Default)]
pub struct Continuity {
    pub offsets: Offsets,
    last: Descriptor,
    /// The next packet starts a layer: its numbers go on from the last ones.
    rebase: bool,
}

impl Continuity {
    /// The stream moves to another layer: from its next packet on.
    pub fn switch(&mut self) {
        self.rebase = true;
    }

    /// A frame of a temporal layer the subscriber does not get was left out: the
    /// picture ids after it close the gap.
    pub fn drop_frame(&mut self) {
        self.offsets.picture_id = self.offsets.picture_id.wrapping_sub(1);
    }

    /// The offsets for this packet (of the layer the subscriber gets now); it is
    /// remembered as the last one sent.
    pub fn next(&mut self, payload: &[u8]) -> Offsets {
        let Some(d) = descriptor(payload) else {
            return self.offsets;
        };
        if std::mem::take(&mut self.rebase) {
            if let (Some((_, id, wide)), Some((_, last, _))) = (d.picture_id, self.last.picture_id)
            {
                let mask = if wide { 0x7fff } else { 0x7f };
                self.offsets.picture_id = last.wrapping_add(1).wrapping_sub(id) & mask;
            }
            if let (Some((_, tl0)), Some((_, last))) = (d.tl0, self.last.tl0) {
                self.offsets.tl0 = last.wrapping_add(1).wrapping_sub(tl0);
            }
            if let (Some((_, key)), Some((_, last))) = (d.key_index, self.last.key_index) {
                self.offsets.key_index = last.wrapping_add(1).wrapping_sub(key) & 0x1f;
            }
        }
        // The numbers as sent.
        let o = self.offsets;
        self.last = Descriptor {
            picture_id: d.picture_id.map(|(at, id, wide)| {
                let mask = if wide { 0x7fff } else { 0x7f };
                (at, id.wrapping_add(o.picture_id) & mask, wide)
            }),
            tl0: d.tl0.map(|(at, t)| (at, t.wrapping_add(o.tl0))),
            key_index: d
                .key_index
                .map(|(at, k)| (at, k.wrapping_add(o.key_index) & 0x1f)),
            temporal: d.temporal,
        };
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload with X, I (15-bit picture id), L and K set, then a frame byte.
    fn packet(picture_id: u16, tl0: u8, key: u8) -> Vec<u8> {
        vec![
            0x90,
            0xd0,
            0x80 | (picture_id >> 8) as u8,
            picture_id as u8,
            tl0,
            0x20 | key,
            0x9d,
        ]
    }

    #[test]
    fn reads_every_field_and_refuses_what_is_too_short() {
        let d = descriptor(&packet(0x1234, 7, 3)).unwrap();
        assert_eq!(d.picture_id, Some((2, 0x1234, true)));
        assert_eq!(d.tl0, Some((4, 7)));
        assert_eq!(d.key_index, Some((5, 3)));
        assert_eq!(d.temporal, None, "no T bit");
        let mut t2 = packet(0x1234, 7, 3);
        t2[1] = 0xf0; // I, L, T, K
        t2[5] = 0x80 | 0x20 | 3; // TID 2, Y, KEYIDX 3
        let d = descriptor(&t2).unwrap();
        assert_eq!((d.temporal, d.key_index), (Some(2), Some((5, 3))));
        assert!(starts_frame(&[0x90]) && !starts_frame(&[0x80]) && !starts_frame(&[0x91]));
        let short = descriptor(&[0x90, 0x80, 0x5]).unwrap();
        assert_eq!(short.picture_id, Some((2, 5, false)));
        assert_eq!(descriptor(&[0x10]), Some(Descriptor::default()));
        for cut in 1..6 {
            assert!(descriptor(&packet(0x1234, 7, 3)[..cut]).is_none(), "{cut}");
        }
        assert!(descriptor(&[]).is_none());
    }

    #[test]
    fn a_switch_continues_the_numbers_and_wraps_in_each_width() {
        let mut c = Continuity::default();
        // Layer A: picture ids 0x7ffe, 0x7fff.
        for id in [0x7ffe, 0x7fff] {
            let mut p = packet(id, 250, 31);
            let o = c.next(&p);
            assert!(!o.apply(&mut p), "nothing to change before a switch");
        }
        // Layer B starts at picture id 100, TL0 9, key index 2.
        c.switch();
        let mut p = packet(100, 9, 2);
        let o = c.next(&p);
        assert!(o.apply(&mut p));
        let d = descriptor(&p).unwrap();
        assert_eq!(d.picture_id.unwrap().1, 0, "0x7fff + 1 wraps to 0");
        assert_eq!(d.tl0.unwrap().1, 251);
        assert_eq!(d.key_index.unwrap().1, 0, "31 + 1 wraps to 0");
        assert_eq!(p[6], 0x9d, "the frame is untouched");
        // The next frame of layer B follows.
        let mut p = packet(101, 9, 2);
        c.next(&p).apply(&mut p);
        assert_eq!(descriptor(&p).unwrap().picture_id.unwrap().1, 1);
    }

    #[test]
    fn a_dropped_frame_closes_the_picture_id_gap() {
        let mut c = Continuity::default();
        let mut p = packet(10, 1, 0);
        c.next(&p).apply(&mut p);
        c.drop_frame(); // picture id 11 left out
        let mut p = packet(12, 1, 0);
        assert!(c.next(&p).apply(&mut p));
        assert_eq!(descriptor(&p).unwrap().picture_id.unwrap().1, 11);
        // Across the 15-bit wrap.
        let mut c = Continuity::default();
        c.drop_frame();
        let mut p = packet(0, 1, 0);
        c.next(&p).apply(&mut p);
        assert_eq!(descriptor(&p).unwrap().picture_id.unwrap().1, 0x7fff);
    }

    #[test]
    fn garbage_never_panics() {
        let mut c = Continuity::default();
        for seed in 0u32..2000 {
            let len = (seed % 9) as usize;
            let mut p: Vec<u8> = (0..len)
                .map(|i| (seed.wrapping_mul(2654435761) >> (i * 3)) as u8)
                .collect();
            if seed % 7 == 0 {
                c.switch();
            }
            let o = c.next(&p);
            o.apply(&mut p);
        }
    }
}
