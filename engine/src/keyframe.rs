//! Where a decoder can start: the first RTP packet of a keyframe, read from the
//! payload's codec header. A new (or resumed) subscriber's video starts there; what
//! comes before it would only be frames the subscriber cannot decode.

use str0m::format::{Codec, detect_h264_nalu, detect_vp8_keyframe};

/// H264 NAL unit types: an IDR slice and a sequence parameter set.
const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;

/// Whether `payload`, an RTP payload of `codec`, is the first packet of a frame a
/// decoder can start from. Codecs this does not know are never held back.
pub fn starts_keyframe(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => detect_vp8_keyframe(payload),
        Codec::Vp9 => vp9_starts_keyframe(payload),
        // A keyframe's access unit opens with its parameter sets where the encoder
        // sends them in band (browsers, x264), before the IDR slice: start at
        // whichever of the two comes first.
        Codec::H264 => detect_h264_nalu(payload, H264_SPS) || detect_h264_nalu(payload, H264_IDR),
        _ => !codec.is_video(),
    }
}

/// VP9 (RFC 9628): the descriptor's first byte is `I|P|L|F|B|E|V|Z`. A keyframe's
/// first packet begins a frame (B) that predicts from nothing (P = 0), in the base
/// spatial layer when the descriptor names one.
fn vp9_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let (picture_id, inter, layers, begins) = (
        b0 & 0x80 != 0,
        b0 & 0x40 != 0,
        b0 & 0x20 != 0,
        b0 & 0x08 != 0,
    );
    if inter || !begins {
        return false;
    }
    if !layers {
        return true;
    }
    let mut at = 1;
    if picture_id {
        let Some(&pid) = payload.get(at) else {
            return false;
        };
        at += if pid & 0x80 != 0 { 2 } else { 1 };
    }
    // Layer index: TID(3) | U | SID(3) | D.
    payload.get(at).is_some_and(|l| (l >> 1) & 0x07 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_starts_at_the_first_packet_of_a_keyframe_only() {
        // Descriptor S=1 PID=0, then the frame tag's P bit (0 = key).
        assert!(starts_keyframe(Codec::Vp8, &[0x10, 0x00, 0x9d]));
        assert!(
            !starts_keyframe(Codec::Vp8, &[0x10, 0x01, 0x9d]),
            "an inter frame"
        );
        assert!(
            !starts_keyframe(Codec::Vp8, &[0x00, 0x00]),
            "a later packet"
        );
        // With an extension: picture id (15 bits), TL0PICIDX.
        assert!(starts_keyframe(
            Codec::Vp8,
            &[0x90, 0xc0, 0x81, 0x23, 0x05, 0x00]
        ));
        assert!(!starts_keyframe(Codec::Vp8, &[]));
        assert!(!starts_keyframe(Codec::Vp8, &[0x90]), "cut short");
    }

    #[test]
    fn vp9_starts_at_a_frame_begin_without_prediction_in_the_base_layer() {
        assert!(starts_keyframe(Codec::Vp9, &[0x08, 0x82]));
        assert!(!starts_keyframe(Codec::Vp9, &[0x48]), "predicted");
        assert!(
            !starts_keyframe(Codec::Vp9, &[0x00]),
            "not the frame's first packet"
        );
        // I, L, B with a 15-bit picture id, then the layer index: SID 0, then SID 1.
        assert!(starts_keyframe(Codec::Vp9, &[0xa8, 0x80, 0x01, 0x00]));
        assert!(!starts_keyframe(Codec::Vp9, &[0xa8, 0x80, 0x01, 0x02]));
        assert!(!starts_keyframe(Codec::Vp9, &[0xa8, 0x80]), "cut short");
        assert!(!starts_keyframe(Codec::Vp9, &[]));
    }

    #[test]
    fn h264_starts_at_the_parameter_sets_or_the_idr_slice() {
        assert!(starts_keyframe(Codec::H264, &[0x67, 0x42]), "SPS alone");
        assert!(starts_keyframe(Codec::H264, &[0x65, 0x88]), "IDR alone");
        // STAP-A holding SPS and PPS.
        assert!(starts_keyframe(
            Codec::H264,
            &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce]
        ));
        // FU-A: the IDR's first fragment, not a later one.
        assert!(starts_keyframe(Codec::H264, &[0x7c, 0x85, 0x00]));
        assert!(!starts_keyframe(Codec::H264, &[0x7c, 0x05, 0x00]));
        assert!(!starts_keyframe(Codec::H264, &[0x41, 0x9a]), "a P slice");
        assert!(!starts_keyframe(Codec::H264, &[]));
    }

    #[test]
    fn audio_is_never_held() {
        assert!(starts_keyframe(Codec::Opus, &[]));
        assert!(starts_keyframe(Codec::Opus, &[0xfc, 0x01]));
    }
}
