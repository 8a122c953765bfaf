//! Splits an RTP payload that is too large for one datagram to the server into smaller
//! payloads of the same codec: VP8 (RFC 7741 §4.2: the descriptor again, S cleared),
//! VP9 (RFC 9628 §4.2: B on the first, E on the last, the scalability structure only
//! on the first) and H264 (RFC 6184 §5.8: a single NAL unit or a fragment becomes
//! FU-A fragments). ffmpeg's default RTP packets (1460-byte payloads) are a few bytes
//! too large once str0m's header extensions and the SRTP tag are added.

use str0m::format::Codec;

/// One payload of a split packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// The marker bit (only the last part carries the original's).
    pub(crate) marker: bool,
    /// The payload.
    pub(crate) data: Vec<u8>,
}

/// Splits `payload` into parts of at most `max` bytes, or `None` if this codec or
/// payload cannot be split (Opus, an H264 aggregation packet, a malformed descriptor).
pub(crate) fn split(codec: Codec, payload: &[u8], marker: bool, max: usize) -> Option<Vec<Part>> {
    match codec {
        Codec::Vp8 => split_vp8(payload, marker, max),
        Codec::Vp9 => split_vp9(payload, marker, max),
        Codec::H264 => split_h264(payload, marker, max),
        _ => None,
    }
}

/// Cuts `data` into chunks so that each fits `max` with its header, and builds each part
/// with `header(first, last)`.
fn cut(
    data: &[u8],
    marker: bool,
    max: usize,
    longest_header: usize,
    header: impl Fn(bool, bool) -> Vec<u8>,
) -> Option<Vec<Part>> {
    let room = max.checked_sub(longest_header).filter(|r| *r > 0)?;
    if data.is_empty() {
        return None;
    }
    let count = data.len().div_ceil(room);
    // Even parts: no tiny last packet.
    let size = data.len().div_ceil(count);
    Some(
        data.chunks(size)
            .enumerate()
            .map(|(i, chunk)| {
                let (first, last) = (i == 0, i + 1 == count);
                let mut out = header(first, last);
                out.extend_from_slice(chunk);
                Part {
                    marker: marker && last,
                    data: out,
                }
            })
            .collect(),
    )
}

fn split_vp8(p: &[u8], marker: bool, max: usize) -> Option<Vec<Part>> {
    let b0 = *p.first()?;
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(at)?;
        at += 1;
        if x & 0x80 != 0 {
            let m = *p.get(at)?;
            at += if m & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    let head = p.get(..at)?;
    let data = &p[at..];
    let start = b0 & 0x10 != 0;
    cut(data, marker, max, head.len(), |first, _| {
        let mut h = head.to_vec();
        if !(first && start) {
            h[0] &= !0x10;
        }
        h
    })
}

fn split_vp9(p: &[u8], marker: bool, max: usize) -> Option<Vec<Part>> {
    let b0 = *p.first()?;
    let (i, pbit, l, f, v) = (
        b0 & 0x80 != 0,
        b0 & 0x40 != 0,
        b0 & 0x20 != 0,
        b0 & 0x10 != 0,
        b0 & 0x02 != 0,
    );
    let (begins, ends) = (b0 & 0x08 != 0, b0 & 0x04 != 0);
    let mut at = 1;
    if i {
        at += if *p.get(at)? & 0x80 != 0 { 2 } else { 1 };
    }
    if l {
        at += if f { 1 } else { 2 };
    }
    if f && pbit {
        // Up to three reference indices, each saying whether another follows (N).
        for _ in 0..3 {
            let d = *p.get(at)?;
            at += 1;
            if d & 0x01 == 0 {
                break;
            }
        }
    }
    let ss_start = at;
    if v {
        let ss = *p.get(at)?;
        at += 1;
        let layers = usize::from(ss >> 5) + 1;
        if ss & 0x10 != 0 {
            at += 4 * layers;
        }
        if ss & 0x08 != 0 {
            let groups = *p.get(at)?;
            at += 1;
            for _ in 0..groups {
                let g = *p.get(at)?;
                at += 1 + usize::from((g >> 2) & 0x03);
            }
        }
    }
    let head = p.get(..at)?;
    let data = &p[at..];
    cut(data, marker, max, head.len(), |first, last| {
        let mut h = if first {
            head.to_vec()
        } else {
            head[..ss_start].to_vec()
        };
        h[0] &= !0x0e;
        if first && begins {
            h[0] |= 0x08;
        }
        if last && ends {
            h[0] |= 0x04;
        }
        if first && v {
            h[0] |= 0x02;
        }
        h
    })
}

fn split_h264(p: &[u8], marker: bool, max: usize) -> Option<Vec<Part>> {
    let b0 = *p.first()?;
    match b0 & 0x1f {
        1..=23 => {
            let indicator = (b0 & 0xe0) | 28;
            let kind = b0 & 0x1f;
            cut(&p[1..], marker, max, 2, |first, last| {
                let mut header = kind;
                if first {
                    header |= 0x80;
                }
                if last {
                    header |= 0x40;
                }
                vec![indicator, header]
            })
        }
        28 => {
            let fu = *p.get(1)?;
            let (starts, ends) = (fu & 0x80 != 0, fu & 0x40 != 0);
            cut(&p[2..], marker, max, 2, |first, last| {
                let mut header = fu & 0x1f;
                if first && starts {
                    header |= 0x80;
                }
                if last && ends {
                    header |= 0x40;
                }
                vec![b0, header]
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7) as u8).collect()
    }

    #[test]
    fn vp8_parts_repeat_the_descriptor_without_the_start_bit() {
        // ffmpeg's descriptor: X, S; I with a 15-bit picture id.
        let mut p = vec![0x90, 0x80, 0x81, 0x23];
        p.extend(body(1456));
        let parts = split(Codec::Vp8, &p, true, 1200).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[0].data[..4], &[0x90, 0x80, 0x81, 0x23]);
        assert_eq!(&parts[1].data[..4], &[0x80, 0x80, 0x81, 0x23]);
        assert_eq!((parts[0].marker, parts[1].marker), (false, true));
        assert!(parts.iter().all(|x| x.data.len() <= 1200));
        let joined: Vec<u8> = parts.iter().flat_map(|x| x.data[4..].to_vec()).collect();
        assert_eq!(joined, body(1456));
        // A middle packet (no S) stays without S; no marker stays without marker.
        let mut mid = vec![0x00];
        mid.extend(body(1500));
        let parts = split(Codec::Vp8, &mid, false, 1200).unwrap();
        assert!(parts.iter().all(|x| x.data[0] == 0 && !x.marker));
    }

    #[test]
    fn vp9_parts_carry_begin_end_and_the_scalability_structure_once() {
        // I (7-bit id), B, E, V; SS: one layer with its size, no group.
        let mut p = vec![0x8e, 0x05, 0x10, 0x01, 0x40, 0x00, 0xf0];
        p.extend(body(1460));
        let parts = split(Codec::Vp9, &p, true, 1200).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            &parts[0].data[..7],
            &[0x8a, 0x05, 0x10, 0x01, 0x40, 0x00, 0xf0]
        );
        assert_eq!(&parts[1].data[..2], &[0x84, 0x05]);
        let joined: Vec<u8> = [&parts[0].data[7..], &parts[1].data[2..]].concat();
        assert_eq!(joined, body(1460));
        assert!(
            split(Codec::Vp9, &[0x82], true, 1200).is_none(),
            "SS cut short"
        );
    }

    #[test]
    fn h264_nal_units_become_fu_a_fragments() {
        let mut nal = vec![0x65];
        nal.extend(body(3000));
        let parts = split(Codec::H264, &nal, true, 1200).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(&parts[0].data[..2], &[0x7c, 0x85]);
        assert_eq!(&parts[1].data[..2], &[0x7c, 0x05]);
        assert_eq!(&parts[2].data[..2], &[0x7c, 0x45]);
        let joined: Vec<u8> = parts.iter().flat_map(|x| x.data[2..].to_vec()).collect();
        assert_eq!(joined, body(3000));
        // A first FU-A fragment split again: S stays on the first, E on none.
        let mut fu = vec![0x7c, 0x85];
        fu.extend(body(1400));
        let parts = split(Codec::H264, &fu, false, 1200).unwrap();
        assert_eq!(
            parts.iter().map(|x| x.data[1]).collect::<Vec<_>>(),
            [0x85, 0x05]
        );
        assert!(
            split(Codec::H264, &[0x78, 0, 2, 0x67, 0x42], true, 1200).is_none(),
            "STAP-A"
        );
        assert!(split(Codec::Opus, &body(1500), true, 1200).is_none());
    }
}
