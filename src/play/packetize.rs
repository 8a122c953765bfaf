//! RTP payloads from the frames of a file: VP8 (RFC 7741), VP9 (RFC 9628, non-flexible
//! mode) and Opus (RFC 7587: one packet per payload), and the duration of an Opus
//! packet (RFC 6716 §3.1).

/// The largest RTP payload made here: with the RTP header, str0m's header extensions,
/// the SRTP tag and an RTX header it stays well within a 1500-byte datagram.
pub(crate) const MAX_PAYLOAD: usize = 1200;

/// One RTP payload of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    /// The RTP marker bit.
    pub(crate) marker: bool,
    /// The payload, descriptor included.
    pub(crate) data: Vec<u8>,
}

/// Splits frames into RTP payloads.
#[derive(Debug)]
pub(crate) enum Payloader {
    /// VP8 with a 15-bit picture id.
    Vp8 {
        /// Picture id of the next frame.
        picture_id: u16,
    },
    /// VP9, one spatial and temporal layer, non-flexible mode.
    Vp9 {
        /// Picture id of the next frame.
        picture_id: u16,
        /// Temporal layer 0 index of the next frame.
        tl0: u8,
    },
    /// Opus: a packet is a payload; the marker starts a talkspurt (the first packet).
    Opus {
        /// The next packet is the first.
        first: bool,
    },
}

impl Payloader {
    /// A VP8 payloader starting at picture id `start`.
    pub(crate) fn vp8(start: u16) -> Self {
        Payloader::Vp8 {
            picture_id: start & 0x7fff,
        }
    }

    /// A VP9 payloader starting at picture id `start`.
    pub(crate) fn vp9(start: u16) -> Self {
        Payloader::Vp9 {
            picture_id: start & 0x7fff,
            tl0: 0,
        }
    }

    /// An Opus payloader.
    pub(crate) fn opus() -> Self {
        Payloader::Opus { first: true }
    }

    /// The payloads of one frame, each at most `max` bytes.
    pub(crate) fn payloads(&mut self, frame: &[u8], max: usize) -> Vec<Payload> {
        if frame.is_empty() {
            return Vec::new();
        }
        match self {
            Payloader::Vp8 { picture_id } => {
                let id = *picture_id;
                *picture_id = (id + 1) & 0x7fff;
                // X=1, S on the first; I=1; M=1 and a 15-bit picture id.
                let descriptor = |first: bool| {
                    [
                        0x80 | if first { 0x10 } else { 0 },
                        0x80,
                        0x80 | (id >> 8) as u8,
                        id as u8,
                    ]
                };
                fragment(frame, max, descriptor)
            }
            Payloader::Vp9 { picture_id, tl0 } => {
                let id = *picture_id;
                *picture_id = (id + 1) & 0x7fff;
                let idx = *tl0;
                *tl0 = tl0.wrapping_add(1);
                let key = vp9_is_keyframe(frame);
                let chunk = max.saturating_sub(6).max(1);
                let count = frame.len().div_ceil(chunk);
                frame
                    .chunks(chunk)
                    .enumerate()
                    .map(|(i, part)| {
                        let (first, last) = (i == 0, i + 1 == count);
                        // I|P|L|F|B|E|V|Z
                        let mut flags = 0xa0;
                        if !key {
                            flags |= 0x40;
                        }
                        if first {
                            flags |= 0x08;
                        }
                        if last {
                            flags |= 0x04;
                        }
                        if key && first {
                            flags |= 0x02;
                        }
                        let mut data = Vec::with_capacity(part.len() + 6);
                        data.extend_from_slice(&[flags, 0x80 | (id >> 8) as u8, id as u8]);
                        // TID 0, U=1 (switching up point), SID 0, D 0; then TL0PICIDX.
                        data.extend_from_slice(&[0x10, idx]);
                        if key && first {
                            // Scalability structure: one spatial layer, no sizes, no group.
                            data.push(0x00);
                        }
                        data.extend_from_slice(part);
                        Payload { marker: last, data }
                    })
                    .collect()
            }
            Payloader::Opus { first } => {
                let marker = std::mem::replace(first, false);
                vec![Payload {
                    marker,
                    data: frame.to_vec(),
                }]
            }
        }
    }
}

/// Splits `frame` into payloads of at most `max` bytes, each behind the descriptor
/// `descriptor(first)`; the marker is on the last.
fn fragment<const N: usize>(
    frame: &[u8],
    max: usize,
    descriptor: impl Fn(bool) -> [u8; N],
) -> Vec<Payload> {
    let chunk = max.saturating_sub(N).max(1);
    let count = frame.len().div_ceil(chunk);
    frame
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let mut data = Vec::with_capacity(N + part.len());
            data.extend_from_slice(&descriptor(i == 0));
            data.extend_from_slice(part);
            Payload {
                marker: i + 1 == count,
                data,
            }
        })
        .collect()
}

/// Whether a VP9 frame (or the first frame of a superframe) is a keyframe: its
/// uncompressed header says `frame_type` 0 and it does not show an existing frame.
pub(crate) fn vp9_is_keyframe(frame: &[u8]) -> bool {
    let Some(&b) = frame.first() else {
        return false;
    };
    if b & 0xc0 != 0x80 {
        return false;
    }
    let profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1);
    // Profile 3 has a reserved zero bit before show_existing_frame.
    let shift = if profile == 3 { 2 } else { 3 };
    let show_existing = (b >> shift) & 1;
    let frame_type = (b >> (shift - 1)) & 1;
    show_existing == 0 && frame_type == 0
}

/// Samples (at 48 kHz) in an Opus packet, from its TOC byte and frame count.
pub(crate) fn opus_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame length in units of 2.5 ms (120 samples at 48 kHz).
    let units: u32 = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)],
        12..=15 => [4, 8][usize::from(config % 2)],
        _ => [1, 2, 4, 8][usize::from(config % 4)],
    };
    let frames: u32 = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let samples = units * 120 * frames;
    // RFC 6716: at most 120 ms in a packet.
    (samples > 0 && samples <= 5760).then_some(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_frames_are_split_behind_a_descriptor_with_the_start_bit_first() {
        let mut p = Payloader::vp8(0x7ffe);
        let frame: Vec<u8> = (0..2500u32).map(|i| i as u8 & 0xfe).collect();
        let out = p.payloads(&frame, 1200);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|o| o.data.len() <= 1200));
        assert_eq!(&out[0].data[..4], &[0x90, 0x80, 0xff, 0xfe]);
        assert_eq!(&out[1].data[..4], &[0x80, 0x80, 0xff, 0xfe]);
        assert_eq!(
            out.iter().map(|o| o.marker).collect::<Vec<_>>(),
            [false, false, true]
        );
        let joined: Vec<u8> = out.iter().flat_map(|o| o.data[4..].to_vec()).collect();
        assert_eq!(joined, frame);
        assert!(str0m::format::detect_vp8_keyframe(&out[0].data));
        // The picture id wraps at 15 bits.
        let next = p.payloads(&[1, 2, 3], 1200);
        assert_eq!(&next[0].data[..4], &[0x90, 0x80, 0xff, 0xff]);
        assert_eq!(
            &p.payloads(&[1], 1200)[0].data[..4],
            &[0x90, 0x80, 0x80, 0x00]
        );
        assert!(!str0m::format::detect_vp8_keyframe(&next[0].data));
    }

    #[test]
    fn vp9_descriptors_mark_keyframes_and_frame_boundaries() {
        let mut p = Payloader::vp9(5);
        // Profile 0 keyframe: frame marker 10, profile 00, show_existing 0, type 0.
        let mut key = vec![0x80u8; 2000];
        key[0] = 0x80;
        let out = p.payloads(&key, 1200);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data[0], 0xaa, "I L B V");
        assert_eq!(&out[0].data[1..6], &[0x80, 5, 0x10, 0, 0]);
        assert_eq!(out[1].data[0], 0xa4, "I L E");
        assert!(str0m::format::detect_vp9_keyframe(&out[0].data));
        let joined: Vec<u8> = [&out[0].data[6..], &out[1].data[5..]].concat();
        assert_eq!(joined, key);
        // Inter frame: type 1.
        let inter = p.payloads(&[0x84, 1, 2], 1200);
        assert_eq!(inter[0].data[0], 0xec, "I P L B E");
        assert_eq!(inter[0].data[4], 1, "TL0PICIDX advances");
        assert!(inter[0].marker);
    }

    #[test]
    fn keyframes_are_recognised() {
        assert!(vp9_is_keyframe(&[0x82]));
        assert!(!vp9_is_keyframe(&[0x86]));
        assert!(!vp9_is_keyframe(&[0x88]), "show_existing_frame");
        assert!(vp9_is_keyframe(&[0xb0]), "profile 3");
    }

    #[test]
    fn opus_durations_follow_the_toc() {
        assert_eq!(opus_samples(&[0x78]), Some(960), "hybrid FB 20 ms");
        assert_eq!(opus_samples(&[0xfc]), Some(960), "CELT FB 20 ms");
        assert_eq!(opus_samples(&[0xf8 | 1]), Some(1920), "two frames");
        assert_eq!(
            opus_samples(&[0x08 | 3, 3]),
            Some(2880),
            "SILK 20 ms, three frames"
        );
        assert_eq!(opus_samples(&[]), None);
        assert_eq!(opus_samples(&[0x03, 0]), None, "no frames");
    }
}
