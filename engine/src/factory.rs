//! Builds each peer's str0m `Rtc` the way the engine needs it, off the media threads:
//! RTP mode, ICE-lite, the process's one DTLS certificate, the fixed codec set, and
//! one host candidate (the UDP port of the shard the peer will live on).

use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::DtlsCert;
use str0m::{Candidate, Rtc, RtcConfig};

/// Makes `Rtc` instances that share one DTLS certificate (generating one costs
/// milliseconds; every peer of this server presents the same fingerprint).
#[derive(Clone)]
pub struct PeerFactory {
    cert: DtlsCert,
}

/// A peer whose `Rtc` has accepted the client's first offer.
pub struct AcceptedPeer {
    /// Ready to be handed to its shard.
    pub rtc: Box<Rtc>,
    /// The server's answer, for the client.
    pub answer: SdpAnswer,
    /// The server's ICE ufrag for this peer, for routing STUN.
    pub ufrag: String,
}

/// Why a client's first offer could not be accepted.
#[derive(Debug)]
pub struct OfferError(pub String);

impl std::fmt::Display for OfferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OfferError {}

impl PeerFactory {
    /// Installs the crypto backend for the process and generates the certificate.
    pub fn new() -> Self {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .expect("the crypto backend generates a DTLS certificate");
        provider.install_process_default();
        Self { cert }
    }

    /// The configuration every server-side `Rtc` uses.
    pub fn config(&self) -> RtcConfig {
        Rtc::builder()
            .set_rtp_mode(true)
            .set_ice_lite(true)
            .set_dtls_cert(self.cert.clone())
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_vp9(true)
            .enable_h264(true)
    }

    /// Builds an `Rtc` reachable at `media_addr` (the advertised address of its shard's
    /// socket) and accepts the client's first offer.
    pub fn accept_offer(
        &self,
        now: Instant,
        media_addr: SocketAddr,
        offer: SdpOffer,
    ) -> Result<AcceptedPeer, OfferError> {
        let mut rtc = self.config().build(now);
        let candidate = Candidate::host(media_addr, "udp")
            .map_err(|e| OfferError(format!("bad media address {media_addr}: {e}")))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| OfferError(e.to_string()))?;
        // str0m rejects (port 0) an m-line with no codec in common instead of failing;
        // the client deserves to know why its camera or microphone goes nowhere.
        let sdp = answer.to_sdp_string();
        if let Some(kind) = rejected_media(&sdp) {
            return Err(OfferError(format!(
                "an {kind} m-line offers no codec this server forwards (audio: opus; video: VP8, VP9, H264)"
            )));
        }
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        Ok(AcceptedPeer {
            rtc: Box::new(rtc),
            answer,
            ufrag,
        })
    }
}

/// The kind of the first audio or video m-line an answer rejects (port 0).
fn rejected_media(answer: &str) -> Option<&str> {
    answer.lines().find_map(|l| {
        let mut f = l.strip_prefix("m=")?.split_whitespace();
        let kind = f.next()?;
        let port = f.next()?;
        ((kind == "audio" || kind == "video") && port == "0").then_some(kind)
    })
}

impl Default for PeerFactory {
    fn default() -> Self {
        Self::new()
    }
}
