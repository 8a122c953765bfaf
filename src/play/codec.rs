//! Which codec `play` sends, how it offers it, and whether the server took it.
//!
//! The offer lists the requested codec first and str0m's other codecs after it: the
//! server names a track by the first codec of its m-line that it knows, and an answer
//! that drops the requested codec still tells which codecs the server does take, so the
//! error can list them.

use anyhow::anyhow;
use clap::ValueEnum;
use str0m::format::{Codec, CodecConfig, FormatParams, PayloadParams};
use str0m::media::MediaKind;

/// A video codec `--video-codec` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VideoCodec {
    /// VP8 (RFC 7741).
    Vp8,
    /// VP9 (RFC 9628), profile 0 unless `--video-fmtp profile-id=N`.
    Vp9,
    /// H264 (RFC 6184), constrained baseline with packetization mode 1 unless
    /// `--video-fmtp` says otherwise.
    H264,
    /// H265 (offered so that the server can say whether it takes it).
    H265,
    /// AV1 (offered so that the server can say whether it takes it).
    Av1,
}

/// An audio codec `--audio-codec` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AudioCodec {
    /// Opus (RFC 7587), 48 kHz.
    Opus,
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl VideoCodec {
    pub(crate) fn codec(self) -> Codec {
        match self {
            VideoCodec::Vp8 => Codec::Vp8,
            VideoCodec::Vp9 => Codec::Vp9,
            VideoCodec::H264 => Codec::H264,
            VideoCodec::H265 => Codec::H265,
            VideoCodec::Av1 => Codec::Av1,
        }
    }

    /// The fmtp used when `--video-fmtp` is not given.
    fn default_fmtp(self) -> &'static str {
        match self {
            VideoCodec::H264 => "profile-level-id=42e01f;packetization-mode=1",
            VideoCodec::Vp9 => "profile-id=0",
            _ => "",
        }
    }
}

impl AudioCodec {
    pub(crate) fn codec(self) -> Codec {
        match self {
            AudioCodec::Opus => Codec::Opus,
            AudioCodec::Pcmu => Codec::PCMU,
            AudioCodec::Pcma => Codec::PCMA,
        }
    }
}

/// The name `--video-codec`/`--audio-codec` uses for a codec.
pub(crate) fn cli_name(codec: Codec) -> String {
    codec.to_string().to_lowercase()
}

/// What to offer and which payload to send on each kind.
#[derive(Debug, Clone)]
pub(crate) struct CodecPlan {
    /// The whole offer, chosen codecs first.
    pub(crate) config: CodecConfig,
    /// The video payload chosen, if video is sent.
    pub(crate) video: Option<PayloadParams>,
    /// The audio payload chosen, if audio is sent.
    pub(crate) audio: Option<PayloadParams>,
}

impl CodecPlan {
    /// Chooses the payloads for the requested codecs and fmtp lines.
    pub(crate) fn new(
        video: Option<(VideoCodec, Option<&str>)>,
        audio: Option<(AudioCodec, Option<&str>)>,
    ) -> anyhow::Result<Self> {
        let mut all = CodecConfig::new_with_defaults();
        if let Some((AudioCodec::Pcmu, _)) = audio {
            all.enable_pcmu(true, false);
        }
        if let Some((AudioCodec::Pcma, _)) = audio {
            all.enable_pcma(true, false);
        }
        let params: Vec<PayloadParams> = all.params().to_vec();
        let video = video
            .map(|(c, fmtp)| choose(&params, c.codec(), fmtp.unwrap_or(c.default_fmtp())))
            .transpose()?;
        let audio = audio
            .map(|(c, fmtp)| choose(&params, c.codec(), fmtp.unwrap_or("")))
            .transpose()?;
        let chosen = |p: &PayloadParams| {
            Some(p.pt()) == video.map(|v| v.pt()) || Some(p.pt()) == audio.map(|a| a.pt())
        };
        let mut ordered: Vec<PayloadParams> =
            params.iter().filter(|p| chosen(p)).copied().collect();
        ordered.extend(params.iter().filter(|p| !chosen(p)).copied());
        Ok(Self {
            config: CodecConfig::new_from_payload_params(ordered),
            video,
            audio,
        })
    }

    /// The payload chosen for a kind.
    pub(crate) fn chosen(&self, kind: MediaKind) -> Option<PayloadParams> {
        match kind {
            MediaKind::Video => self.video,
            MediaKind::Audio => self.audio,
        }
    }
}

/// The payload of `codec` whose format parameters match every parameter `fmtp` sets.
fn choose(params: &[PayloadParams], codec: Codec, fmtp: &str) -> anyhow::Result<PayloadParams> {
    let wanted = FormatParams::parse_line(fmtp);
    let of_codec: Vec<&PayloadParams> = params.iter().filter(|p| p.spec().codec == codec).collect();
    if of_codec.is_empty() {
        return Err(anyhow!("{codec} cannot be offered by this client"));
    }
    of_codec
        .iter()
        .find(|p| matches(&p.spec().format, &wanted))
        .map(|p| **p)
        .ok_or_else(|| {
            let known: Vec<String> = of_codec
                .iter()
                .map(|p| format!("\"{}\"", p.spec().format))
                .collect();
            anyhow!(
                "no {codec} variant matches the fmtp \"{fmtp}\"; known: {}",
                known.join(", ")
            )
        })
}

/// Whether `have` agrees with every parameter set in `wanted` that tells payloads of one
/// codec apart.
fn matches(have: &FormatParams, wanted: &FormatParams) -> bool {
    fn agrees<T: PartialEq>(have: Option<T>, wanted: Option<T>) -> bool {
        wanted.is_none() || have == wanted
    }
    let mode = |m: Option<u8>| Some(m.unwrap_or(0));
    agrees(have.profile_level_id, wanted.profile_level_id)
        && (wanted.packetization_mode.is_none()
            || mode(have.packetization_mode) == mode(wanted.packetization_mode))
        && agrees(have.profile_id, wanted.profile_id)
        && agrees(have.profile, wanted.profile)
}

/// Checks the server's answer: the chosen payload must be among the ones it accepted on
/// the m-line.
pub(crate) fn check_negotiated(
    chosen: &PayloadParams,
    negotiated: &[PayloadParams],
) -> anyhow::Result<()> {
    if negotiated.iter().any(|p| p.pt() == chosen.pt()) {
        return Ok(());
    }
    let spec = chosen.spec();
    let kind = if spec.codec.is_audio() {
        "audio"
    } else {
        "video"
    };
    let mut offered: Vec<String> = Vec::new();
    for p in negotiated {
        let name = cli_name(p.spec().codec);
        if !offered.contains(&name) {
            offered.push(name);
        }
    }
    let same_codec: Vec<String> = negotiated
        .iter()
        .filter(|p| p.spec().codec == spec.codec)
        .map(|p| format!("\"{}\"", p.spec().format))
        .collect();
    if !same_codec.is_empty() {
        return Err(anyhow!(
            "the server does not offer {} with fmtp \"{}\"; it offers {} with {}: set --{kind}-fmtp",
            spec.codec,
            spec.format,
            spec.codec,
            same_codec.join(" or ")
        ));
    }
    if offered.is_empty() {
        return Err(anyhow!(
            "the server accepted no {kind} codec at all for this track"
        ));
    }
    Err(anyhow!(
        "the server does not offer {}; choose {} (--{kind}-codec)",
        spec.codec,
        or_list(&offered)
    ))
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_codecs_come_first() {
        let plan = CodecPlan::new(
            Some((VideoCodec::Vp9, None)),
            Some((AudioCodec::Opus, None)),
        )
        .unwrap();
        let first_video = plan
            .config
            .params()
            .iter()
            .find(|p| p.spec().codec.is_video())
            .unwrap();
        assert_eq!(first_video.spec().codec, Codec::Vp9);
        assert_eq!(first_video.spec().format.profile_id, Some(0));
        assert_eq!(plan.video.unwrap().pt(), first_video.pt());
        assert_eq!(plan.audio.unwrap().spec().codec, Codec::Opus);
    }

    #[test]
    fn h264_is_chosen_by_its_fmtp() {
        let plan = CodecPlan::new(Some((VideoCodec::H264, None)), None).unwrap();
        let f = plan.video.unwrap().spec().format;
        assert_eq!(
            (f.profile_level_id, f.packetization_mode),
            (Some(0x42e01f), Some(1))
        );
        let plan = CodecPlan::new(
            Some((
                VideoCodec::H264,
                Some("profile-level-id=4d001f;packetization-mode=1"),
            )),
            None,
        )
        .unwrap();
        assert_eq!(
            plan.video.unwrap().spec().format.profile_level_id,
            Some(0x4d001f)
        );
        let err = CodecPlan::new(
            Some((VideoCodec::H264, Some("profile-level-id=640034"))),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no H264 variant matches"), "{err}");
    }

    #[test]
    fn a_codec_the_server_dropped_is_named_with_the_alternatives() {
        let plan = CodecPlan::new(Some((VideoCodec::H265, None)), None).unwrap();
        let server: Vec<PayloadParams> = plan
            .config
            .params()
            .iter()
            .filter(|p| matches!(p.spec().codec, Codec::Vp8 | Codec::Vp9 | Codec::H264))
            .copied()
            .collect();
        let err = check_negotiated(&plan.video.unwrap(), &server).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the server does not offer H265; choose vp8, h264 or vp9 (--video-codec)"
        );
        assert!(check_negotiated(&server[0], &server).is_ok());
    }
}
