//! A hostile client peer, sans-IO: a str0m `Rtc` like any browser's, plus the keys of
//! its own session ([`crate::forge`]), so it can also send what no browser sends.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, Ssrc};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcError};

use engine::dtls_tap::KeySlot;

use crate::forge::{Keys, SrtpForge, build, tapped_config};

/// One RTP packet the peer received.
#[derive(Debug, Clone)]
pub struct Got {
    /// Its m-line.
    pub mid: Mid,
    /// Extended sequence number.
    pub seq: u64,
    /// The payload.
    pub payload: Vec<u8>,
}

/// See the module docs.
pub struct RawPeer {
    rtc: Rtc,
    /// The peer's UDP address.
    pub addr: SocketAddr,
    keys: KeySlot,
    pending: Option<SdpPendingOffer>,
    sending: Vec<Mid>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    /// RTP packets received, in order.
    pub received: Vec<Got>,
    /// Keyframe requests received.
    pub keyframe_requests: usize,
    next_timeout: Instant,
    connected: bool,
    broken: bool,
}

impl RawPeer {
    /// A peer whose socket is at `addr`.
    pub fn new(now: Instant, addr: SocketAddr) -> Self {
        let (mut rtc, keys) = build(tapped_config(), now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("a host candidate"));
        let mut p = Self {
            rtc,
            addr,
            keys,
            pending: None,
            sending: Vec::new(),
            out: VecDeque::new(),
            received: Vec::new(),
            keyframe_requests: 0,
            next_timeout: now,
            connected: false,
            broken: false,
        };
        p.drain().expect("a fresh peer drains");
        p
    }

    /// The first offer: a sendonly m-line per `(kind, stream id, track id)`, or a data
    /// channel when there are none.
    pub fn offer(&mut self, tracks: &[(MediaKind, &str, &str)]) -> SdpOffer {
        let mut api = self.rtc.sdp_api();
        for (kind, stream, track) in tracks {
            let mid = api.add_media(
                *kind,
                Direction::SendOnly,
                Some((*stream).to_string()),
                Some((*track).to_string()),
                None,
            );
            self.sending.push(mid);
        }
        if tracks.is_empty() {
            api.add_channel("x".into());
        }
        let (offer, pending) = api.apply().expect("an offer");
        self.pending = Some(pending);
        let _ = self.drain();
        offer
    }

    /// Applies the answer to [`RawPeer::offer`].
    pub fn accept_answer(&mut self, answer: SdpAnswer) -> Result<(), RtcError> {
        let pending = self.pending.take().ok_or(RtcError::ChangesOutOfOrder)?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        self.drain()
    }

    /// Answers a server offer.
    pub fn accept_offer(&mut self, offer: SdpOffer) -> Result<SdpAnswer, RtcError> {
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        self.drain()?;
        Ok(answer)
    }

    /// A datagram arrived.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.addr,
                contents,
            },
        );
        if self.broken || !self.rtc.accepts(&input) {
            return;
        }
        self.guarded(|p| {
            if p.rtc.handle_input(input).is_ok() {
                let _ = p.drain();
            }
        });
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.broken || now < self.next_timeout {
            return;
        }
        self.guarded(|p| {
            if p.rtc.handle_input(Input::Timeout(now)).is_ok() {
                let _ = p.drain();
            }
        });
    }

    /// This peer's str0m panicked (see `guarded`); it does nothing any more.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Runs `f`; a panic in it (in *this client's* str0m: what the server sends it is
    /// not what is being tested) breaks the peer instead of the test. Under libFuzzer,
    /// whose panic hook aborts, it is reported like any other (see `crate::quiet_client_panics`).
    fn guarded(&mut self, f: impl FnOnce(&mut Self)) {
        crate::IN_CLIENT.with(|c| c.set(true));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        crate::IN_CLIENT.with(|c| c.set(false));
        if result.is_err() {
            self.broken = true;
            self.connected = false;
        }
    }

    /// When [`RawPeer::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_timeout
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The session's SRTP keys, once DTLS is up.
    pub fn keys(&self) -> Option<Keys> {
        self.keys.get().cloned()
    }

    /// A forge for what this peer sends (its outgoing SRTP context), once DTLS is up.
    pub fn forge(&self) -> Option<SrtpForge> {
        Some(SrtpForge::new(&self.keys()?, true))
    }

    /// A forge for what this peer receives (to read the server's packets).
    pub fn inbound_forge(&self) -> Option<SrtpForge> {
        Some(SrtpForge::new(&self.keys()?, false))
    }

    /// Our sending m-line for this track id.
    pub fn mid_of(&self, track_id: &str) -> Option<Mid> {
        self.sending.iter().copied().find(|m| {
            self.rtc
                .media(*m)
                .is_some_and(|media| media.track_id() == track_id)
        })
    }

    /// The SSRC (and RTX SSRC) we send on an m-line.
    pub fn ssrcs(&mut self, mid: Mid) -> Option<(Ssrc, Option<Ssrc>)> {
        let mut api = self.rtc.direct_api();
        let tx = api.stream_tx_by_mid(mid, None)?;
        Some((tx.ssrc(), tx.rtx()))
    }

    /// The payload type of a codec in this session, and its RTX payload type.
    pub fn payload_type(&self, codec: Codec) -> Option<(u8, Option<u8>)> {
        let p = self
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec)?;
        Some((*p.pt(), p.resend().map(|r| *r)))
    }

    /// The SSRCs the peer receives on (the server's streams toward it).
    pub fn receiving_ssrcs(&mut self) -> Vec<Ssrc> {
        let mids: Vec<Mid> = self
            .received
            .iter()
            .map(|g| g.mid)
            .fold(Vec::new(), |mut v, m| {
                if !v.contains(&m) {
                    v.push(m);
                }
                v
            });
        let mut api = self.rtc.direct_api();
        mids.into_iter()
            .filter_map(|m| api.stream_rx_by_mid(m, None).map(|s| s.ssrc()))
            .collect()
    }

    /// Sends an RTP packet the ordinary way (str0m builds and protects it).
    pub fn send_rtp(
        &mut self,
        now: Instant,
        mid: Mid,
        codec: Codec,
        seq: u64,
        payload: &[u8],
    ) -> Option<()> {
        let (pt, _) = self.payload_type(codec)?;
        let mut api = self.rtc.direct_api();
        let tx = api.stream_tx_by_mid(mid, None)?;
        tx.write_rtp(
            RtpWrite::new(
                pt.into(),
                seq.into(),
                (seq as u32).wrapping_mul(3000),
                now,
                payload.to_vec(),
            )
            .marker(true)
            .nackable(codec.is_video()),
        );
        self.drain().ok()
    }

    fn drain(&mut self) -> Result<(), RtcError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => {
                    self.next_timeout = t;
                    return Ok(());
                }
                Output::Transmit(t) => self.out.push_back((t.destination, t.contents.into())),
                Output::Event(e) => match e {
                    Event::Connected => self.connected = true,
                    Event::RtpPacket(p) => {
                        let mid = self
                            .rtc
                            .direct_api()
                            .stream_rx(&p.header.ssrc)
                            .map(|s| s.mid());
                        if let Some(mid) = mid {
                            self.received.push(Got {
                                mid,
                                seq: *p.seq_no,
                                payload: p.payload.to_vec(),
                            });
                        }
                    }
                    Event::KeyframeRequest(_) => self.keyframe_requests += 1,
                    _ => {}
                },
            }
        }
    }
}
