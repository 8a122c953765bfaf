//! One node's side of the server-to-server transport, sans-IO: the other nodes it
//! talks to (their addresses and this pair's keys), which of its tracks each wants, and
//! the batches it seals for each. The caller moves the datagrams
//! ([`NodeLink::handle_datagram`], [`NodeLink::poll_transmit`]) and acts on the frames.
//!
//! An RTP packet goes once to each node that asked for its track, however many members
//! there watch it; frames for one node are packed into datagrams of at most
//! [`MAX_DATAGRAM`] bytes until [`NodeLink::flush`].

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;

use crate::frame::{self, Frame, RtpFrame};
use crate::keys::{NodeIdentity, pair};
use crate::seal::{HEADER_LEN, OpenError, Opener, Sealer, TAG_LEN};

/// The largest datagram a batch fills (a frame too large for it goes alone).
pub const MAX_DATAGRAM: usize = 1400;
/// The kind of a datagram of frames.
const FRAMES: u8 = 1;

/// What a link counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    /// From an address that is no known node's.
    pub unknown_source: u64,
    pub malformed: u64,
    pub replayed: u64,
    /// Did not open under the pair's key.
    pub forged: u64,
}

struct Peer {
    id: String,
    addr: SocketAddr,
    boot: [u8; 16],
    sealer: Sealer,
    opener: Opener,
    /// Tracks of this node the peer asked for.
    wants: HashSet<u64>,
    /// Frames not yet sealed.
    batch: Vec<u8>,
}

pub struct NodeLink {
    local: NodeIdentity,
    secret: Vec<u8>,
    peers: Vec<Peer>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    pub stats: LinkStats,
}

impl NodeLink {
    pub fn new(local: NodeIdentity, secret: &[u8]) -> Self {
        Self {
            local,
            secret: secret.to_vec(),
            peers: Vec::new(),
            out: VecDeque::new(),
            stats: LinkStats::default(),
        }
    }

    /// Adds the node `id` (booted as `boot`) at `addr`, or updates it. A new boot id is
    /// a restarted node: new keys, and nothing it asked for before (returned: the tracks
    /// it no longer gets).
    pub fn set_peer(&mut self, id: &str, boot: [u8; 16], addr: SocketAddr) -> Vec<u64> {
        if let Some(p) = self.peers.iter_mut().find(|p| p.id == id) {
            p.addr = addr;
            if p.boot == boot {
                return Vec::new();
            }
        }
        let dropped = self.remove_peer(id);
        let remote = NodeIdentity {
            id: id.to_owned(),
            boot,
        };
        let (sealer, opener) = pair(&self.secret, &self.local, &remote);
        self.peers.push(Peer {
            id: id.to_owned(),
            addr,
            boot,
            sealer,
            opener,
            wants: HashSet::new(),
            batch: Vec::new(),
        });
        dropped
    }

    /// Forgets the node `id`; returns the tracks it had asked for.
    pub fn remove_peer(&mut self, id: &str) -> Vec<u64> {
        let Some(i) = self.peers.iter().position(|p| p.id == id) else {
            return Vec::new();
        };
        self.peers.swap_remove(i).wants.into_iter().collect()
    }

    /// The nodes known, by id.
    pub fn peers(&self) -> impl Iterator<Item = &str> {
        self.peers.iter().map(|p| p.id.as_str())
    }

    /// Opens a datagram from `from` and hands each of its frames to `each` with the
    /// sending node's id. A node's subscriptions are kept here too: a `Subscribe` or
    /// `Unsubscribe` reaches `each` only when it changes them (nodes repeat theirs, as
    /// datagrams get lost). What does not open is counted and dropped.
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        data: &mut [u8],
        mut each: impl FnMut(&str, Frame<'_>),
    ) {
        let Some(peer) = self.peers.iter_mut().find(|p| p.addr == from) else {
            self.stats.unknown_source += 1;
            return;
        };
        let payload = match peer.opener.open(data) {
            Ok((FRAMES, payload)) => payload,
            Ok(_) => {
                self.stats.malformed += 1;
                return;
            }
            Err(e) => {
                match e {
                    OpenError::Malformed => self.stats.malformed += 1,
                    OpenError::Replayed => self.stats.replayed += 1,
                    OpenError::Forged => self.stats.forged += 1,
                }
                return;
            }
        };
        self.stats.datagrams_received += 1;
        for f in frame::frames(payload) {
            let changed = match f {
                Frame::Subscribe { track } => peer.wants.insert(track),
                Frame::Unsubscribe { track } => peer.wants.remove(&track),
                _ => true,
            };
            if changed {
                each(&peer.id, f);
            }
        }
    }

    /// Queues an RTP packet of one of this node's tracks for every node that asked for
    /// the track; returns how many.
    pub fn send_rtp(&mut self, rtp: RtpFrame<'_>) -> usize {
        let track = rtp.track;
        let f = Frame::Rtp(rtp);
        let mut n = 0;
        for i in 0..self.peers.len() {
            if self.peers[i].wants.contains(&track) {
                self.queue(i, &f);
                n += 1;
            }
        }
        n
    }

    /// Queues a frame for the node `id`; false if it is not known.
    pub fn send_to(&mut self, id: &str, f: &Frame<'_>) -> bool {
        let Some(i) = self.peers.iter().position(|p| p.id == id) else {
            return false;
        };
        self.queue(i, f);
        true
    }

    /// Whether the node `id` asked for `track`.
    pub fn wants(&self, id: &str, track: u64) -> bool {
        self.peers
            .iter()
            .any(|p| p.id == id && p.wants.contains(&track))
    }

    fn queue(&mut self, i: usize, f: &Frame<'_>) {
        let room = MAX_DATAGRAM - HEADER_LEN - TAG_LEN;
        if !self.peers[i].batch.is_empty()
            && self.peers[i].batch.len() + frame::encoded_len(f) > room
        {
            self.seal(i);
        }
        frame::encode(f, &mut self.peers[i].batch);
    }

    fn seal(&mut self, i: usize) {
        let p = &mut self.peers[i];
        let mut d = Vec::with_capacity(HEADER_LEN + p.batch.len() + TAG_LEN);
        p.sealer.seal(FRAMES, &p.batch, &mut d);
        p.batch.clear();
        self.out.push_back((p.addr, d));
        self.stats.datagrams_sent += 1;
    }

    /// Seals every batch that holds frames.
    pub fn flush(&mut self) {
        for i in 0..self.peers.len() {
            if !self.peers[i].batch.is_empty() {
                self.seal(i);
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"cluster secret";

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, n], 7000))
    }

    /// Nodes a (at .1) and b (at .2) that know each other.
    fn two() -> (NodeLink, NodeLink) {
        let ia = NodeIdentity::new("a").unwrap();
        let ib = NodeIdentity::new("b").unwrap();
        let mut a = NodeLink::new(ia.clone(), SECRET);
        let mut b = NodeLink::new(ib.clone(), SECRET);
        a.set_peer("b", ib.boot, addr(2));
        b.set_peer("a", ia.boot, addr(1));
        (a, b)
    }

    /// Flushes `from` and delivers everything it sends to `to` (sent from `at`); the
    /// frames `to` got, as owned descriptions, and the datagrams.
    fn deliver(
        from: &mut NodeLink,
        at: SocketAddr,
        to: &mut NodeLink,
    ) -> (Vec<String>, Vec<Vec<u8>>) {
        from.flush();
        let mut got = Vec::new();
        let mut wire = Vec::new();
        while let Some((_, d)) = from.poll_transmit() {
            wire.push(d.clone());
            let mut d = d;
            to.handle_datagram(at, &mut d, |node, f| got.push(format!("{node}: {f:?}")));
        }
        (got, wire)
    }

    fn rtp(track: u64, seq: u64, payload: &[u8]) -> RtpFrame<'_> {
        RtpFrame {
            track,
            layer: 0,
            codec: 1,
            seq,
            time: 0,
            marker: false,
            audio_level: None,
            age_us: 0,
            payload,
        }
    }

    #[test]
    fn a_track_goes_only_to_the_nodes_that_asked_for_it() {
        let (mut a, mut b) = two();
        assert_eq!(a.send_rtp(rtp(7, 0, b"x")), 0, "nobody asked yet");
        b.send_to("a", &Frame::Subscribe { track: 7 });
        let (got, _) = deliver(&mut b, addr(2), &mut a);
        assert_eq!(got, ["b: Subscribe { track: 7 }"]);
        assert!(a.wants("b", 7));
        b.send_to("a", &Frame::Subscribe { track: 7 });
        let (got, _) = deliver(&mut b, addr(2), &mut a);
        assert!(got.is_empty(), "a repeated subscription changes nothing");
        assert_eq!(a.send_rtp(rtp(7, 1, b"frame")), 1);
        assert_eq!(a.send_rtp(rtp(8, 1, b"other track")), 0);
        let (got, _) = deliver(&mut a, addr(1), &mut b);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("a: Rtp(RtpFrame { track: 7, layer: 0, codec: 1, seq: 1"),
            "{got:?}"
        );
        b.send_to("a", &Frame::Unsubscribe { track: 7 });
        deliver(&mut b, addr(2), &mut a);
        assert_eq!(a.send_rtp(rtp(7, 2, b"frame")), 0);
        b.send_to("a", &Frame::Subscribe { track: 9 });
        deliver(&mut b, addr(2), &mut a);
        assert_eq!(
            a.remove_peer("b"),
            [9],
            "what a forgotten node had asked for"
        );
    }

    #[test]
    fn small_frames_share_a_datagram_and_none_is_larger_than_the_limit() {
        let (mut a, mut b) = two();
        b.send_to("a", &Frame::Subscribe { track: 1 });
        deliver(&mut b, addr(2), &mut a);
        for seq in 0..20 {
            a.send_rtp(rtp(1, seq, &[0u8; 80])); // audio-sized
        }
        let (got, wire) = deliver(&mut a, addr(1), &mut b);
        assert_eq!(got.len(), 20);
        assert_eq!(
            wire.len(),
            2,
            "20 × 110 bytes in two datagrams of at most 1,400"
        );
        for seq in 0..5 {
            a.send_rtp(rtp(1, seq, &[0u8; 1200])); // video-sized
        }
        let (got, wire) = deliver(&mut a, addr(1), &mut b);
        assert_eq!((got.len(), wire.len()), (5, 5));
        assert!(wire.iter().all(|d| d.len() <= MAX_DATAGRAM));
    }

    #[test]
    fn strangers_forgeries_and_replays_are_counted_and_dropped() {
        let (mut a, mut b) = two();
        b.send_to("a", &Frame::Subscribe { track: 1 });
        b.flush();
        let (_, d) = b.poll_transmit().unwrap();
        let mut stranger = d.clone();
        a.handle_datagram(addr(9), &mut stranger, |_, _| panic!("from a stranger"));
        let mut forged = d.clone();
        forged[12] ^= 1;
        a.handle_datagram(addr(2), &mut forged, |_, _| panic!("forged"));
        let mut real = d.clone();
        let mut n = 0;
        a.handle_datagram(addr(2), &mut real, |_, _| n += 1);
        let mut again = d;
        a.handle_datagram(addr(2), &mut again, |_, _| panic!("replayed"));
        assert_eq!(n, 1);
        let s = a.stats;
        assert_eq!(
            (s.unknown_source, s.forged, s.replayed, s.datagrams_received),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn a_restarted_node_gets_new_keys_and_starts_over() {
        let (mut a, mut b) = two();
        b.send_to("a", &Frame::Subscribe { track: 1 });
        deliver(&mut b, addr(2), &mut a);
        // b restarts: a new boot id, announced through the registry.
        let ib2 = NodeIdentity::new("b").unwrap();
        let mut b2 = NodeLink::new(ib2.clone(), SECRET);
        b2.set_peer("a", a.local.boot, addr(1));
        a.set_peer("b", ib2.boot, addr(2));
        assert!(!a.wants("b", 1), "what the old b asked for is gone");
        // Something the old b sealed does not open any more.
        b.send_to("a", &Frame::Subscribe { track: 2 });
        let (got, _) = deliver(&mut b, addr(2), &mut a);
        assert!(got.is_empty());
        assert_eq!(a.stats.forged, 1);
        b2.send_to("a", &Frame::Subscribe { track: 3 });
        let (got, _) = deliver(&mut b2, addr(2), &mut a);
        assert_eq!(got, ["b: Subscribe { track: 3 }"]);
    }
}
