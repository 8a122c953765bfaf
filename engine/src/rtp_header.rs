//! Writing the RTP header (RFC 3550) of a packet the engine sends, with the one-byte
//! header extensions (RFC 8285) a subscriber's browser uses: its m-line's MID, the
//! audio level (RFC 6464) and the transport-wide sequence number (for congestion
//! control feedback).

/// Longest header [`write`] makes: 12 bytes, and an extension block with a MID of at
/// most 16 bytes, the audio level and the transport-wide sequence number, padded to a
/// word.
pub const MAX_LEN: usize = 12 + 4 + (1 + 16) + 2 + 3 + 2;

/// What goes in a header.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub pt: u8,
    /// The extended sequence number (its low 16 bits are written).
    pub seq: u64,
    pub time: u32,
    pub marker: bool,
    pub ssrc: u32,
    /// The MID extension's id and value.
    pub mid: Option<(u8, &'a [u8])>,
    /// The audio level extension's id, the level (0 to -127 dBov) and voice activity.
    pub audio_level: Option<(u8, i8, bool)>,
    /// The transport-wide sequence number extension's id and value.
    pub transport_seq: Option<(u8, u16)>,
}

/// Writes the header into the start of `buf` (at least [`MAX_LEN`] bytes); returns its
/// length. A MID longer than 16 bytes is cut (RFC 8285 allows no more in one byte).
pub fn write(buf: &mut [u8], f: &Fields<'_>) -> usize {
    buf[0] = 0x80;
    buf[1] = (f.pt & 0x7f) | if f.marker { 0x80 } else { 0 };
    buf[2..4].copy_from_slice(&(f.seq as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&f.time.to_be_bytes());
    buf[8..12].copy_from_slice(&f.ssrc.to_be_bytes());
    let mut at = 16;
    if let Some((id, mid)) = f.mid {
        let m = &mid[..mid.len().min(16)];
        if !m.is_empty() {
            buf[at] = (id << 4) | (m.len() as u8 - 1);
            buf[at + 1..at + 1 + m.len()].copy_from_slice(m);
            at += 1 + m.len();
        }
    }
    if let Some((id, level, voice)) = f.audio_level {
        buf[at] = id << 4;
        buf[at + 1] = if voice { 0x80 } else { 0 } | (-i16::from(level)).clamp(0, 127) as u8;
        at += 2;
    }
    if let Some((id, seq)) = f.transport_seq {
        buf[at] = (id << 4) | 1;
        buf[at + 1..at + 3].copy_from_slice(&seq.to_be_bytes());
        at += 3;
    }
    if at == 16 {
        return 12; // no extension
    }
    while (at - 16) % 4 != 0 {
        buf[at] = 0;
        at += 1;
    }
    buf[0] |= 0x10;
    buf[12..14].copy_from_slice(&[0xbe, 0xde]);
    buf[14..16].copy_from_slice(&(((at - 16) / 4) as u16).to_be_bytes());
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields<'static> {
        Fields {
            pt: 96,
            seq: 0x1_0002,
            time: 0x0a0b_0c0d,
            marker: true,
            ssrc: 0x1122_3344,
            mid: None,
            audio_level: None,
            transport_seq: None,
        }
    }

    #[test]
    fn a_plain_header_is_twelve_bytes() {
        let mut buf = [0u8; MAX_LEN];
        let n = write(&mut buf, &fields());
        assert_eq!(
            buf[..n],
            [
                0x80, 0xe0, 0, 2, 0x0a, 0x0b, 0x0c, 0x0d, 0x11, 0x22, 0x33, 0x44
            ]
        );
    }

    #[test]
    fn extensions_are_one_byte_elements_padded_to_a_word() {
        let mut buf = [0u8; MAX_LEN];
        let f = Fields {
            mid: Some((4, b"1")),
            audio_level: Some((1, -30, true)),
            ..fields()
        };
        let n = write(&mut buf, &f);
        assert_eq!(buf[0], 0x90, "X set");
        assert_eq!(buf[12..16], [0xbe, 0xde, 0, 1], "one word of elements");
        assert_eq!(buf[16..n], [0x40, b'1', 0x10, 0x80 | 30]);
        // A MID of two bytes leaves a byte of padding.
        let f = Fields {
            mid: Some((4, b"12")),
            ..f
        };
        let n = write(&mut buf, &f);
        assert_eq!(
            buf[12..n],
            [0xbe, 0xde, 0, 2, 0x41, b'1', b'2', 0x10, 0x80 | 30, 0, 0, 0]
        );
    }

    #[test]
    fn the_longest_mid_fits_and_a_longer_one_is_cut() {
        let mut buf = [0u8; MAX_LEN];
        let long = [b'm'; 20];
        let f = Fields {
            mid: Some((4, &long)),
            audio_level: Some((1, -127, false)),
            transport_seq: Some((3, 0xfffe)),
            ..fields()
        };
        let n = write(&mut buf, &f);
        assert_eq!(n, MAX_LEN);
        assert_eq!(buf[16], 0x4f, "16 bytes of MID");
    }

    #[test]
    fn the_transport_wide_sequence_number_is_a_two_byte_element() {
        let mut buf = [0u8; MAX_LEN];
        let f = Fields {
            transport_seq: Some((3, 0x0102)),
            ..fields()
        };
        let n = write(&mut buf, &f);
        assert_eq!(buf[12..n], [0xbe, 0xde, 0, 1, 0x31, 1, 2, 0]);
    }
}
