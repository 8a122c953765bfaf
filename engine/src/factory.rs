//! Builds each peer's str0m `Rtc` the way the engine needs it, off the media threads:
//! RTP mode, ICE-lite, the process's one DTLS certificate (its SRTP keys tapped for the
//! engine's own send path, `dtls_tap`), the fixed codec set, and
//! the host candidates of the shard the peer will live on: its UDP port, and its ICE-TCP
//! port (a passive candidate, less preferred) when it has one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::net::TcpType;
use str0m::{Candidate, Rtc, RtcConfig};

use crate::dtls_tap::{self, KeySlot};

/// Bytes of app messages a peer's data channel holds for it before the next is dropped.
pub const DATA_CHANNEL_BUFFER: usize = 4 * 1024 * 1024;

/// Where a shard takes media: its UDP socket, and its ICE-TCP listener if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaAddrs {
    /// The advertised address of the UDP socket.
    pub udp: SocketAddr,
    /// The advertised address of the ICE-TCP listener.
    pub tcp: Option<SocketAddr>,
}

impl From<SocketAddr> for MediaAddrs {
    fn from(udp: SocketAddr) -> Self {
        MediaAddrs { udp, tcp: None }
    }
}

/// Makes `Rtc` instances that share one DTLS certificate (generating one costs
/// milliseconds; every peer of this server presents the same fingerprint).
#[derive(Clone)]
pub struct PeerFactory {
    cert: DtlsCert,
    /// str0m's crypto with the DTLS tap in front (each session's SRTP keys).
    crypto: Arc<CryptoProvider>,
}

/// A peer whose `Rtc` has accepted the client's first offer.
pub struct AcceptedPeer {
    /// Ready to be handed to its shard.
    pub rtc: Box<Rtc>,
    /// The server's answer, for the client.
    pub answer: SdpAnswer,
    /// The server's ICE ufrag for this peer, for routing STUN.
    pub ufrag: String,
    /// Where the session's SRTP keys appear once its DTLS handshake is done.
    pub keys: KeySlot,
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
        Self {
            cert,
            crypto: Arc::new(dtls_tap::provider()),
        }
    }

    /// The configuration every server-side `Rtc` uses.
    pub fn config(&self) -> RtcConfig {
        Rtc::builder()
            .set_rtp_mode(true)
            .set_ice_lite(true)
            .set_dtls_cert(self.cert.clone())
            .set_crypto_provider(self.crypto.clone())
            // What the data channel may hold for a receiver slower than the senders
            // (`shard/data.rs`): as much as its WebSocket's send buffer.
            .set_sctp_max_buffered_amount(DATA_CHANNEL_BUFFER)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_vp9(true)
            .enable_h264(true)
    }

    /// Builds an `Rtc` reachable at `media` (the advertised addresses of its shard) and
    /// accepts the client's first offer.
    pub fn accept_offer(
        &self,
        now: Instant,
        media: impl Into<MediaAddrs>,
        offer: SdpOffer,
    ) -> Result<AcceptedPeer, OfferError> {
        let media = media.into();
        let (mut rtc, keys) = dtls_tap::build(self.config(), now);
        let udp = media.udp;
        let candidate = Candidate::host(udp, "udp")
            .map_err(|e| OfferError(format!("bad media address {udp}: {e}")))?;
        rtc.add_local_candidate(candidate);
        if let Some(tcp) = media.tcp {
            // Passive: the client connects to it (RFC 6544). Its type preference is
            // below UDP's, so browsers use it only when UDP does not get through.
            let candidate = Candidate::builder()
                .tcp()
                .host(tcp)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(|e| OfferError(format!("bad ICE-TCP address {tcp}: {e}")))?;
            rtc.add_local_candidate(candidate);
        }
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
            keys,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> SdpOffer {
        let mut client = Rtc::builder().build(Instant::now());
        let mut api = client.sdp_api();
        api.add_channel("x".into());
        let (offer, _) = api.apply().expect("an offer");
        SdpOffer::from_sdp_string(&offer.to_sdp_string()).unwrap()
    }

    #[test]
    fn a_shard_with_ice_tcp_offers_a_passive_tcp_candidate_below_udp() {
        let factory = PeerFactory::new();
        let udp: SocketAddr = "192.0.2.7:50000".parse().unwrap();
        let tcp: SocketAddr = "192.0.2.7:50100".parse().unwrap();
        let answer = factory
            .accept_offer(
                Instant::now(),
                MediaAddrs {
                    udp,
                    tcp: Some(tcp),
                },
                offer(),
            )
            .unwrap()
            .answer
            .to_sdp_string();
        let candidates: Vec<&str> = answer
            .lines()
            .filter(|l| l.starts_with("a=candidate:"))
            .collect();
        let prio = |l: &str| l.split(' ').nth(3).unwrap().parse::<u64>().unwrap();
        let udp_line = candidates
            .iter()
            .find(|l| l.contains(" udp ") || l.contains(" UDP "))
            .unwrap();
        let tcp_line = candidates
            .iter()
            .find(|l| l.to_lowercase().contains(" tcp "))
            .expect("a TCP candidate");
        assert!(
            tcp_line.contains("192.0.2.7 50100 typ host tcptype passive"),
            "{tcp_line}"
        );
        assert!(prio(tcp_line) < prio(udp_line), "UDP is preferred");
        // Without ICE-TCP: the UDP candidate only.
        let answer = factory
            .accept_offer(Instant::now(), udp, offer())
            .unwrap()
            .answer
            .to_sdp_string();
        assert_eq!(answer.matches("a=candidate:").count(), 1);
    }
}
