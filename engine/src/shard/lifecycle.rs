//! A peer's life on its shard: it arrives with its `Rtc`, is found by id, ufrag or
//! address, is checked for liveness, and leaves (by signalling's word or the shard's).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::Rtc;

use super::core::ShardCore;
use super::peer::{MAX_ADDRS, Peer};
use super::timers::Slot;
use crate::codecs::PtMap;
use crate::dtls_tap::KeySlot;
use crate::msg::{Notice, PeerId};
use crate::stun;

/// Timeouts that end a peer the client cannot end itself.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    /// ICE + DTLS must be up this long after the peer arrives.
    pub connect_timeout: Duration,
    /// A connected peer that sends nothing for this long is gone.
    pub idle_timeout: Duration,
    /// After str0m reports ICE consent lost, wait this long for it to come back.
    pub disconnect_grace: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            disconnect_grace: Duration::from_secs(10),
        }
    }
}

/// The peer in `slot`, if it is still the same peer. Inlined: the fan-out asks it once
/// per subscriber per packet, from another module (codegen unit) than this one.
#[inline]
pub(super) fn peer_in(peers: &mut [Option<Peer>], slot: Slot) -> Option<&mut Peer> {
    peers
        .get_mut(slot.key)?
        .as_mut()
        .filter(|p| p.id == slot.peer)
}

impl ShardCore {
    pub(super) fn add_peer(
        &mut self,
        now: Instant,
        id: PeerId,
        rtc: Rtc,
        ufrag: String,
        keys: KeySlot,
    ) {
        if self.by_id.contains_key(&id) {
            return;
        }
        let pt_map = PtMap::new(&self.codecs, rtc.codec_config());
        let peer = Peer::new(id, rtc, ufrag.clone(), pt_map, keys, now);
        let key = match self.free.pop() {
            Some(key) => {
                self.peers[key] = Some(peer);
                key
            }
            None => {
                self.peers.push(Some(peer));
                self.peers.len() - 1
            }
        };
        self.by_id.insert(id, key);
        self.by_ufrag.insert(ufrag, key);
        // Accepting the offer was a mutation off this thread; drain it here.
        self.mutate(now, Slot { key, peer: id }, |_| Ok(()));
    }

    /// Removes a peer with everything it published and received. With a `reason`, the
    /// shard ended it and signalling is told why; without, signalling asked.
    pub(super) fn remove_peer(&mut self, slot: Slot, reason: Option<String>) {
        if self.peer_mut(slot).is_none() {
            return;
        }
        let Some(peer) = self.peers[slot.key].take() else {
            return;
        };
        self.free.push(slot.key);
        self.by_id.remove(&peer.id);
        self.by_ufrag.remove(&peer.ufrag);
        for addr in &peer.addrs {
            self.by_addr.remove(addr);
        }
        for t in &peer.published {
            self.routes.remove(&t.track);
            self.out.notices.push(Notice::TrackUnpublished {
                peer: peer.id,
                track: t.track,
            });
        }
        for o in peer.receiving.iter().filter(|o| o.active) {
            self.remove_sub(o.track, slot);
        }
        if let Some(reason) = reason {
            self.out.notices.push(Notice::PeerGone {
                peer: peer.id,
                reason,
            });
        }
    }

    /// The peer a STUN binding request is for, by the local ufrag it names.
    pub(super) fn key_for_stun(&self, data: &[u8]) -> Option<usize> {
        let ufrag = stun::local_ufrag(data)?;
        let ufrag = std::str::from_utf8(ufrag).ok()?;
        self.by_ufrag.get(ufrag).copied()
    }

    /// Routes `addr` to the peer `key` from now on (its oldest address goes when it
    /// has [`MAX_ADDRS`]; another peer that had `addr` loses it).
    pub(super) fn learn_addr(&mut self, key: usize, addr: SocketAddr) {
        let Some(peer) = self.peers[key].as_mut() else {
            return;
        };
        if peer.addrs.contains(&addr) {
            return;
        }
        if peer.addrs.len() >= MAX_ADDRS {
            let old = peer.addrs.remove(0);
            self.by_addr.remove(&old);
        }
        peer.addrs.push(addr);
        if let Some(previous) = self.by_addr.insert(addr, key)
            && previous != key
            && let Some(p) = self.peers[previous].as_mut()
        {
            p.addrs.retain(|a| *a != addr);
        }
    }

    pub(super) fn slot(&self, key: usize) -> Option<Slot> {
        let peer = self.peers.get(key)?.as_ref()?;
        Some(Slot { key, peer: peer.id })
    }

    pub(super) fn slot_of(&self, id: PeerId) -> Option<Slot> {
        let key = *self.by_id.get(&id)?;
        Some(Slot { key, peer: id })
    }

    #[inline]
    pub(super) fn peer_mut(&mut self, slot: Slot) -> Option<&mut Peer> {
        peer_in(&mut self.peers, slot)
    }

    /// Dooms the peers the client can no longer end itself (see [`Liveness`]).
    pub(super) fn housekeeping(&mut self, now: Instant) {
        let l = self.liveness;
        for (key, peer) in self.peers.iter().enumerate() {
            let Some(peer) = peer else { continue };
            let reason = if !peer.rtc.is_alive() {
                Some("media session closed".to_string())
            } else if !peer.connected && now > peer.created + l.connect_timeout {
                Some(not_connected(peer.handshake_failure.as_deref()))
            } else if peer.connected && now > peer.last_rx + l.idle_timeout {
                Some("no packets from the peer for too long".to_string())
            } else if peer
                .disconnected_since
                .is_some_and(|t| now > t + l.disconnect_grace)
                && now > peer.last_authentic_rx + l.disconnect_grace
            {
                // str0m, ICE-lite, counts only binding requests as consent; a client that
                // keeps ICE up with indications (libnice) but whose media still arrives,
                // authenticated, has not gone away. str0m keeps sending to it meanwhile.
                Some("ICE consent lost".to_string())
            } else {
                None
            };
            if let Some(reason) = reason {
                let slot = Slot { key, peer: peer.id };
                self.doomed.push((slot, reason));
            }
        }
    }
}

/// Why a session did not connect, in words the client can act on.
fn not_connected(handshake_failure: Option<&str>) -> String {
    match handshake_failure {
        None => "ICE/DTLS did not connect in time".into(),
        // dimpl takes ECDSA certificates only; an RSA one fails at the certificate step.
        Some(e) if e.contains("certificate") => format!(
            "the DTLS handshake failed ({e}): this server accepts ECDSA DTLS certificates \
             only; a client with an RSA certificate (GStreamer's webrtcbin before 1.28 makes \
             one by default) cannot connect"
        ),
        Some(e) => format!("the DTLS handshake failed ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::not_connected;

    #[test]
    fn a_failed_certificate_step_names_the_certificate_the_server_accepts() {
        assert_eq!(not_connected(None), "ICE/DTLS did not connect in time");
        let why = not_connected(Some(
            "DTLS error: certificate error: no client certificate received",
        ));
        assert!(
            why.contains("ECDSA") && why.contains("no client certificate received"),
            "{why}"
        );
        let why = not_connected(Some("DTLS error: unexpected message"));
        assert_eq!(
            why,
            "the DTLS handshake failed (DTLS error: unexpected message)"
        );
    }
}
