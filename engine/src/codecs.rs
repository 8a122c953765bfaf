//! The server's fixed codec set, and the per-peer maps between payload types and it.
//!
//! Codecs are identified by MIME type, clock rate, channels and fmtp, never by payload
//! type number: two peers may use different numbers for the same codec. After every
//! negotiation a peer gets a [`PtMap`], so rewriting the payload type of a forwarded
//! packet costs two array lookups.

use str0m::format::{CodecConfig, PayloadParams};
use str0m::media::Pt;

/// Index into the server codec table. Stable for the life of the process.
pub type CodecIdx = u8;

/// Marks a payload type that maps to no codec of the table.
const NONE: u8 = u8::MAX;

/// The codecs the server negotiates: Opus, VP8, VP9 and H264 (str0m's profiles of each).
pub fn server_codecs() -> CodecConfig {
    let mut c = CodecConfig::empty();
    c.enable_opus(true, false);
    c.enable_vp8(true);
    c.enable_vp9(true);
    c.enable_h264(true);
    c
}

/// The table entry for `params`, matched by MIME type and format parameters.
pub fn codec_index(table: &CodecConfig, params: &PayloadParams) -> Option<CodecIdx> {
    let matched = table.match_params(*params)?;
    table
        .params()
        .iter()
        .position(|p| p.pt() == matched.pt())
        .and_then(|i| CodecIdx::try_from(i).ok())
}

/// Payload type ↔ codec table index for one peer's negotiated session.
#[derive(Clone)]
pub struct PtMap {
    pt_to_codec: [u8; 128],
    codec_to_pt: Vec<Option<Pt>>,
}

impl PtMap {
    /// Builds the maps for a peer whose negotiated payload parameters are `negotiated`.
    pub fn new(table: &CodecConfig, negotiated: &CodecConfig) -> Self {
        let mut pt_to_codec = [NONE; 128];
        let mut codec_to_pt = vec![None; table.params().len()];
        for p in negotiated.params() {
            if let Some(idx) = codec_index(table, p) {
                let pt = *p.pt() as usize;
                if pt < 128 {
                    pt_to_codec[pt] = idx;
                }
                codec_to_pt[idx as usize].get_or_insert(p.pt());
            }
        }
        Self {
            pt_to_codec,
            codec_to_pt,
        }
    }

    /// The codec a payload type of this peer carries.
    #[inline]
    pub fn codec(&self, pt: Pt) -> Option<CodecIdx> {
        match self.pt_to_codec.get(*pt as usize) {
            Some(&NONE) | None => None,
            Some(&c) => Some(c),
        }
    }

    /// This peer's payload type for a codec, if it negotiated it.
    #[inline]
    pub fn pt(&self, codec: CodecIdx) -> Option<Pt> {
        self.codec_to_pt.get(codec as usize).copied().flatten()
    }
}

/// A codec described for people and for the signalling protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecDesc {
    /// `audio/opus`, `video/VP8`, …
    pub mime_type: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels, if stated.
    pub channels: Option<u8>,
    /// The fmtp line's parameters.
    pub fmtp: String,
}

impl CodecDesc {
    /// Describes a negotiated payload.
    pub fn of(params: &PayloadParams) -> Self {
        let spec = params.spec();
        let kind = if spec.codec.is_audio() {
            "audio"
        } else {
            "video"
        };
        Self {
            mime_type: format!("{kind}/{}", spec.codec),
            clock_rate: spec.clock_rate.get(),
            channels: spec.channels,
            fmtp: spec.format.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::format::Codec;

    #[test]
    fn same_codec_under_different_payload_types_maps_to_one_index() {
        let table = server_codecs();
        let vp8 = table.find(|p| p.spec().codec == Codec::Vp8).unwrap();
        let other_pt = PayloadParams::new(120.into(), None, vp8.spec());
        let mut negotiated = CodecConfig::empty();
        negotiated.add_config(
            other_pt.pt(),
            None,
            other_pt.spec().codec,
            other_pt.spec().clock_rate,
            other_pt.spec().channels,
            other_pt.spec().format,
        );
        let map = PtMap::new(&table, &negotiated);
        let idx = map.codec(120.into()).expect("vp8 under pt 120");
        assert_eq!(Some(idx), codec_index(&table, vp8));
        assert_eq!(map.pt(idx), Some(120.into()));
        assert_eq!(map.codec(96.into()), None);
    }

    #[test]
    fn describes_codecs_by_mime_type() {
        let table = server_codecs();
        let opus = table.find(|p| p.spec().codec == Codec::Opus).unwrap();
        let d = CodecDesc::of(opus);
        assert_eq!(d.mime_type.to_lowercase(), "audio/opus");
        assert_eq!(d.clock_rate, 48_000);
    }
}
