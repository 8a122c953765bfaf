//! Feeding each peer's [`crate::twcc_guard::TwccGuard`] what it needs to know: which
//! header-extension ids are *not* transport-wide sequence numbers after each
//! negotiation, and what str0m read from the RTP datagrams it took.

use str0m::Event;
use str0m::media::Mid;
use str0m::rtp::Extension;

use super::core::ShardCore;
use super::lifecycle::peer_in;
use super::peer::InFlight;
use super::timers::Slot;

impl ShardCore {
    /// A negotiation ended: tells the peer's TWCC guard which extension ids str0m's
    /// negotiated maps give to other extensions (`mid` and every media the shard knows).
    pub(super) fn refresh_twcc_guard(&mut self, slot: Slot, mid: Option<Mid>) {
        let Some(peer) = peer_in(&mut self.peers, slot) else {
            return;
        };
        let mids = mid
            .into_iter()
            .chain(peer.published.iter().map(|t| t.mid))
            .chain(peer.receiving.iter().map(|t| t.mid))
            .chain(peer.in_flight.iter().map(|f| match f {
                InFlight::Publish { mid } | InFlight::Subscribe { mid, .. } => *mid,
            }));
        let rtc = &peer.rtc;
        let not_twcc = mids.filter_map(|mid| rtc.media(mid)).flat_map(|media| {
            media
                .remote_extmap()
                .iter()
                .filter(|(_, e)| **e != Extension::TransportSequenceNumber)
                .map(|(id, _)| id)
        });
        peer.twcc_guard.renegotiated(not_twcc);
    }

    /// Shows the peer's TWCC guard what str0m read from the RTP datagram it just took
    /// (the events it emitted for a packet with this datagram's SSRC and sequence number).
    pub(super) fn teach_twcc_guard(&mut self, slot: Slot, data: &[u8]) {
        let Some(peer) = peer_in(&mut self.peers, slot) else {
            return;
        };
        // Once past the danger (for a browser, after its first 32768 packets at most)
        // the media path skips the guard entirely.
        if peer.twcc_guard.is_safe() {
            return;
        }
        let (Some(ssrc), Some(seq)) = (
            data.get(8..12)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            data.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]])),
        ) else {
            return;
        };
        for (from, event) in &self.events {
            let (true, Event::RtpPacket(p)) = (*from == slot, event) else {
                continue;
            };
            if let Some(tcc) = p.header.ext_vals.transport_cc {
                peer.twcc_guard.confirm(tcc);
            }
            if *p.header.ssrc == ssrc && p.header.sequence_number == seq {
                peer.twcc_guard.learn(data, p.header.ext_vals.transport_cc);
            }
        }
    }
}
