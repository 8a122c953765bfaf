//! The node port (multi-node, issue #20), sans-IO: this node's end of the
//! server-to-server transport, run on a thread of its own beside the shards
//! (`io::node_thread`), with the index after the last shard's.
//!
//! To the shards it is one more shard:
//!
//! - A track of another node has a local id of the node port (signalling maps it with
//!   [`NodeCommand::MapTrack`]). A shard with the first subscriber of it sends the node
//!   port `AddRemoteSubscriber`, as it would the publisher's shard; the node port asks
//!   the origin node for the track (`Subscribe`), and hands each packet that arrives to
//!   every shard with subscribers, as the publisher's shard would.
//! - A track of this node that another node asks for becomes `AddRemoteSubscriber`
//!   from the node port to the publisher's shard, which then hands the node port each
//!   packet once; the node port seals it once for each node that asked.
//! - Keyframe requests for a remote track go to its origin node, and from there to the
//!   publisher's shard.
//!
//! Datagrams get lost: every second each node repeats what it asks for and pings every
//! node it knows, and an origin that gets packets nobody asked for (any more) is told to
//! stop. A packet of a remote track lost between the nodes (a gap in its sequence
//! numbers) is asked for again at once (`Nack`); the origin keeps each track's last
//! [`RESEND_WINDOW`] packets to answer. A node not heard from for [`LINK_TIMEOUT`] is unreachable (logged, counted);
//! when it is heard again its tracks flow again without anyone asking twice.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay::NodeIdentity;
use relay::frame::{Frame, RtpFrame};
use relay::link::{LinkStats, NodeLink};
use str0m::media::KeyframeRequestKind;

use crate::msg::{Control, Forwarded, MediaBatch, NodeCommand, ShardId, TrackId};
use crate::shard::Datagram;

/// How often each node repeats its subscriptions and pings the others.
pub const TICK: Duration = Duration::from_secs(1);
/// A node not heard from for this long is unreachable.
pub const LINK_TIMEOUT: Duration = Duration::from_secs(3);
/// Packets of each track sent to other nodes that are kept for their NACKs (about 2 s of
/// a 2.5 Mbit/s video).
pub const RESEND_WINDOW: usize = 512;
/// A larger gap is not asked for again (the origin restarted the track, or the link was
/// cut: a keyframe request is what helps then).
const MAX_GAP: u64 = 64;

/// What the node port counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodePortStats {
    /// The sealed datagrams' own counters (sent, received, refused by kind).
    pub link: LinkStats,
    /// RTP packets sealed for other nodes (one per packet per node that asked).
    pub rtp_sent: u64,
    /// RTP packets received from other nodes.
    pub rtp_received: u64,
    /// Received for a track nobody here subscribes to (any more).
    pub rtp_unrouted: u64,
    /// Packets asked for again from their origin (gaps between nodes).
    pub rtp_nacked: u64,
    /// Packets sent again to a node that asked.
    pub rtp_resent: u64,
    /// Other nodes known, and of them those heard from within [`LINK_TIMEOUT`].
    pub nodes: usize,
    pub nodes_reachable: usize,
}

/// Another node, as far as the link's health goes.
struct Remote {
    id: String,
    heard: Option<Instant>,
    reachable: bool,
}

/// A track of another node that shards here may subscribe to.
struct Proxy {
    node: String,
    origin: u64,
    /// Shards with subscribers, and how many each has.
    shards: Vec<(ShardId, u32)>,
    /// The highest sequence number received of each simulcast layer, to see gaps.
    last_seq: [Option<u64>; 4],
}

/// What the node port produced for the shards since the I/O layer last emptied it.
pub struct NodeOutbox {
    /// Commands, by shard.
    pub control: Vec<(ShardId, Control)>,
    /// Packets of remote tracks, indexed by shard.
    pub media: Vec<MediaBatch>,
}

/// The node port's state. See the module docs.
pub struct NodePortCore {
    /// Its index among the engine's threads (the number of shards).
    index: ShardId,
    link: NodeLink,
    remotes: Vec<Remote>,
    proxies: HashMap<TrackId, Proxy>,
    /// Remote tracks by origin node and their id there.
    by_origin: HashMap<String, HashMap<u64, TrackId>>,
    /// This node's tracks other nodes asked for, and how many nodes each.
    exported: HashMap<TrackId, u32>,
    /// Their last packets, for NACKs.
    sent: HashMap<TrackId, VecDeque<Forwarded>>,
    /// Scratch: packets of tracks nobody here wants, by origin.
    unwanted: Vec<(String, u64)>,
    /// Scratch: NACKs to send (origin node, its track, layer, first, more).
    nacks: Vec<(String, u64, u8, u64, u16)>,
    /// Scratch: packets to send again (node, track, layer, sequence number).
    resends: Vec<(String, TrackId, u8, u64)>,
    next_tick: Instant,
    /// Output for the I/O layer.
    pub out: NodeOutbox,
    /// Counters, read by the I/O layer.
    pub stats: NodePortStats,
}

impl NodePortCore {
    /// The node port of a node with `shards` shards, known to the others as `local`,
    /// sealing with keys from the cluster's `secret`.
    pub fn new(shards: usize, local: NodeIdentity, secret: &[u8], now: Instant) -> Self {
        Self {
            index: shards,
            link: NodeLink::new(local, secret),
            remotes: Vec::new(),
            proxies: HashMap::new(),
            by_origin: HashMap::new(),
            exported: HashMap::new(),
            sent: HashMap::new(),
            unwanted: Vec::new(),
            nacks: Vec::new(),
            resends: Vec::new(),
            next_tick: now,
            out: NodeOutbox {
                control: Vec::new(),
                media: (0..shards).map(|_| Vec::new()).collect(),
            },
            stats: NodePortStats::default(),
        }
    }

    /// When [`NodePortCore::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_tick
    }

    /// A command from signalling or a shard.
    pub fn handle_control(&mut self, control: Control) {
        match control {
            Control::AddRemoteSubscriber { track, shard } => {
                let Some(p) = self.proxies.get_mut(&track) else {
                    return;
                };
                let first = p.shards.is_empty();
                match p.shards.iter_mut().find(|(s, _)| *s == shard) {
                    Some((_, n)) => *n += 1,
                    None => p.shards.push((shard, 1)),
                }
                if first {
                    let f = Frame::Subscribe { track: p.origin };
                    self.link.send_to(&p.node, &f);
                }
            }
            Control::RemoveRemoteSubscriber { track, shard } => {
                let Some(p) = self.proxies.get_mut(&track) else {
                    return;
                };
                if let Some(i) = p.shards.iter().position(|(s, _)| *s == shard) {
                    p.shards[i].1 -= 1;
                    if p.shards[i].1 == 0 {
                        p.shards.swap_remove(i);
                    }
                    if p.shards.is_empty() {
                        let f = Frame::Unsubscribe { track: p.origin };
                        self.link.send_to(&p.node, &f);
                    }
                }
            }
            Control::KeyframeRequest {
                track,
                layer,
                kind,
                urgent,
            } => {
                if let Some(p) = self.proxies.get(&track) {
                    let f = Frame::KeyframeRequest {
                        track: p.origin,
                        layer,
                        fir: kind == KeyframeRequestKind::Fir,
                        urgent,
                    };
                    self.link.send_to(&p.node, &f);
                }
            }
            Control::Node(command) => self.handle_command(command),
            _ => {}
        }
    }

    fn handle_command(&mut self, command: NodeCommand) {
        match command {
            NodeCommand::SetNode { id, boot, addr } => {
                for track in self.link.set_peer(&id, boot, addr) {
                    unexport(
                        &mut self.exported,
                        &mut self.sent,
                        &mut self.out,
                        self.index,
                        track,
                    );
                }
                if !self.remotes.iter().any(|r| r.id == id) {
                    tracing::info!(node = %id, %addr, "node port: a node to talk to");
                    self.remotes.push(Remote {
                        id,
                        heard: None,
                        reachable: false,
                    });
                }
            }
            NodeCommand::RemoveNode { id } => {
                for track in self.link.remove_peer(&id) {
                    unexport(
                        &mut self.exported,
                        &mut self.sent,
                        &mut self.out,
                        self.index,
                        track,
                    );
                }
                self.remotes.retain(|r| r.id != id);
            }
            NodeCommand::MapTrack {
                track,
                node,
                origin,
            } => {
                self.by_origin
                    .entry(node.clone())
                    .or_default()
                    .insert(origin, track);
                self.proxies.insert(
                    track,
                    Proxy {
                        node,
                        origin,
                        shards: Vec::new(),
                        last_seq: [None; 4],
                    },
                );
            }
            NodeCommand::UnmapTrack { track } => {
                let Some(p) = self.proxies.remove(&track) else {
                    return;
                };
                if let Some(m) = self.by_origin.get_mut(&p.node) {
                    m.remove(&p.origin);
                    if m.is_empty() {
                        self.by_origin.remove(&p.node);
                    }
                }
                if !p.shards.is_empty() {
                    self.link
                        .send_to(&p.node, &Frame::Unsubscribe { track: p.origin });
                }
            }
        }
    }

    /// Packets of this node's tracks from their publishers' shards: each is sealed once
    /// for every node that asked for its track.
    pub fn handle_media(&mut self, now: Instant, batch: MediaBatch) {
        for fwd in batch {
            self.stats.rtp_sent += self.link.send_rtp(rtp_frame(now, &fwd)) as u64;
            if !self.exported.contains_key(&fwd.track) {
                continue; // in flight when the last node stopped asking
            }
            let history = self.sent.entry(fwd.track).or_default();
            if history.len() == RESEND_WINDOW {
                history.pop_front();
            }
            history.push_back(fwd);
        }
    }

    /// A datagram on the node port.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        let Self {
            index,
            link,
            remotes,
            proxies,
            by_origin,
            exported,
            sent,
            unwanted,
            nacks,
            resends,
            out,
            stats,
            ..
        } = self;
        let index = *index;
        link.handle_datagram(from, data, |node, frame| {
            if let Some(r) = remotes.iter_mut().find(|r| r.id == node) {
                r.heard = Some(now);
            }
            match frame {
                Frame::Rtp(rtp) => {
                    stats.rtp_received += 1;
                    let proxy = by_origin
                        .get(node)
                        .and_then(|m| m.get(&rtp.track))
                        .and_then(|t| proxies.get_mut(t).map(|p| (*t, p)));
                    let Some((track, p)) = proxy.filter(|(_, p)| !p.shards.is_empty()) else {
                        stats.rtp_unrouted += 1;
                        if !unwanted.iter().any(|(n, t)| n == node && *t == rtp.track) {
                            unwanted.push((node.to_owned(), rtp.track));
                        }
                        return;
                    };
                    let age = Duration::from_micros(u64::from(rtp.age_us));
                    let fwd = Forwarded {
                        track,
                        layer: rtp.layer,
                        codec: rtp.codec,
                        seq: rtp.seq,
                        time: rtp.time,
                        marker: rtp.marker,
                        wallclock: now.checked_sub(age).unwrap_or(now),
                        audio_level: rtp.audio_level.map(|(l, _)| l),
                        voice_activity: rtp.audio_level.map(|(_, v)| v),
                        payload: Arc::from(rtp.payload),
                    };
                    for (shard, _) in &p.shards {
                        out.media[*shard].push(fwd.clone());
                    }
                    let last_seq = &mut p.last_seq[usize::from(rtp.layer & 3)];
                    if let Some(last) = *last_seq
                        && rtp.seq > last + 1
                        && rtp.seq - last - 1 <= MAX_GAP
                    {
                        let mut first = last + 1;
                        while first < rtp.seq {
                            let more = (1..=16u64)
                                .filter(|i| first + i < rtp.seq)
                                .fold(0u16, |m, i| m | (1 << (i - 1)));
                            nacks.push((node.to_owned(), rtp.track, rtp.layer, first, more));
                            stats.rtp_nacked += 1 + u64::from(more.count_ones());
                            first += 17;
                        }
                    }
                    *last_seq = Some(last_seq.map_or(rtp.seq, |l| l.max(rtp.seq)));
                }
                Frame::Subscribe { track } => {
                    let id = TrackId(track);
                    if id.shard() < index {
                        let n = exported.entry(id).or_insert(0);
                        *n += 1;
                        if *n == 1 {
                            out.control.push((
                                id.shard(),
                                Control::AddRemoteSubscriber {
                                    track: id,
                                    shard: index,
                                },
                            ));
                        }
                    }
                }
                Frame::Unsubscribe { track } => unexport(exported, sent, out, index, track),
                Frame::Nack {
                    track,
                    layer,
                    first,
                    more,
                } => {
                    let wanted = (0..=16u64)
                        .filter(|i| *i == 0 || more & (1 << (i - 1)) != 0)
                        .map(|i| first + i);
                    for seq in wanted {
                        resends.push((node.to_owned(), TrackId(track), layer, seq));
                    }
                }
                Frame::KeyframeRequest {
                    track,
                    layer,
                    fir,
                    urgent,
                } => {
                    let id = TrackId(track);
                    if id.shard() < index {
                        let kind = if fir {
                            KeyframeRequestKind::Fir
                        } else {
                            KeyframeRequestKind::Pli
                        };
                        out.control.push((
                            id.shard(),
                            Control::KeyframeRequest {
                                track: id,
                                layer,
                                kind,
                                urgent,
                            },
                        ));
                    }
                }
                Frame::Ping => {}
            }
        });
        for (node, track) in self.unwanted.drain(..) {
            self.link.send_to(&node, &Frame::Unsubscribe { track });
        }
        for (node, track, layer, first, more) in self.nacks.drain(..) {
            let nack = Frame::Nack {
                track,
                layer,
                first,
                more,
            };
            self.link.send_to(&node, &nack);
        }
        for (node, track, layer, seq) in self.resends.drain(..) {
            let Some(fwd) = self
                .sent
                .get(&track)
                .and_then(|h| h.iter().rev().find(|f| f.seq == seq && f.layer == layer))
            else {
                continue;
            };
            if self.link.send_to(&node, &Frame::Rtp(rtp_frame(now, fwd))) {
                self.stats.rtp_resent += 1;
            }
        }
    }

    /// Time passes: once a [`TICK`], ping every node, repeat every subscription, and see
    /// which nodes still answer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        for r in &mut self.remotes {
            self.link.send_to(&r.id, &Frame::Ping);
            let reachable = r.heard.is_some_and(|h| now < h + LINK_TIMEOUT);
            if reachable != r.reachable {
                r.reachable = reachable;
                if reachable {
                    tracing::info!(node = %r.id, "node port: the node answers");
                } else {
                    tracing::warn!(node = %r.id, "node port: nothing heard from the node for 3 s");
                }
            }
        }
        for p in self.proxies.values().filter(|p| !p.shards.is_empty()) {
            self.link
                .send_to(&p.node, &Frame::Subscribe { track: p.origin });
        }
        self.stats.nodes = self.remotes.len();
        self.stats.nodes_reachable = self.remotes.iter().filter(|r| r.reachable).count();
    }

    /// Seals what waits for each node; call at the end of every turn.
    pub fn flush(&mut self) {
        self.link.flush();
        self.stats.link = self.link.stats;
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.link
            .poll_transmit()
            .map(|(to, data)| Datagram { to, data })
    }
}

/// A packet as the node port seals it.
fn rtp_frame(now: Instant, fwd: &Forwarded) -> RtpFrame<'_> {
    let age = now.saturating_duration_since(fwd.wallclock).as_micros();
    RtpFrame {
        track: fwd.track.0,
        layer: fwd.layer,
        codec: fwd.codec,
        seq: fwd.seq,
        time: fwd.time,
        marker: fwd.marker,
        audio_level: fwd
            .audio_level
            .map(|l| (l, fwd.voice_activity.unwrap_or(false))),
        age_us: u32::try_from(age).unwrap_or(u32::MAX),
        payload: &fwd.payload,
    }
}

/// One node fewer wants this node's `track`: the last one gone, its shard stops
/// handing it over.
fn unexport(
    exported: &mut HashMap<TrackId, u32>,
    sent: &mut HashMap<TrackId, VecDeque<Forwarded>>,
    out: &mut NodeOutbox,
    index: ShardId,
    track: u64,
) {
    let id = TrackId(track);
    let Some(n) = exported.get_mut(&id) else {
        return;
    };
    *n -= 1;
    if *n == 0 {
        exported.remove(&id);
        sent.remove(&id);
        out.control.push((
            id.shard(),
            Control::RemoveRemoteSubscriber {
                track: id,
                shard: index,
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"cluster secret";

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, n], 7000))
    }

    /// Node "a" (two shards, at .1) and node "b" (one shard, at .2), knowing each other.
    fn two(now: Instant) -> (NodePortCore, NodePortCore) {
        let ia = NodeIdentity::new("a").unwrap();
        let ib = NodeIdentity::new("b").unwrap();
        let mut a = NodePortCore::new(2, ia.clone(), SECRET, now);
        let mut b = NodePortCore::new(1, ib.clone(), SECRET, now);
        a.handle_control(Control::Node(NodeCommand::SetNode {
            id: "b".into(),
            boot: ib.boot,
            addr: addr(2),
        }));
        b.handle_control(Control::Node(NodeCommand::SetNode {
            id: "a".into(),
            boot: ia.boot,
            addr: addr(1),
        }));
        (a, b)
    }

    /// Flushes `from` and hands what it sends to `to`; how many datagrams.
    fn deliver(
        now: Instant,
        from: &mut NodePortCore,
        at: SocketAddr,
        to: &mut NodePortCore,
    ) -> usize {
        from.flush();
        let mut n = 0;
        while let Some(mut d) = from.poll_transmit() {
            to.handle_datagram(now, at, &mut d.data);
            n += 1;
        }
        n
    }

    /// b maps `proxy` to a's `origin` and a shard of b subscribes; a hears of it.
    fn subscribed(
        now: Instant,
        a: &mut NodePortCore,
        b: &mut NodePortCore,
        origin: TrackId,
        proxy: TrackId,
    ) {
        b.handle_control(Control::Node(NodeCommand::MapTrack {
            track: proxy,
            node: "a".into(),
            origin: origin.0,
        }));
        b.handle_control(Control::AddRemoteSubscriber {
            track: proxy,
            shard: 0,
        });
        deliver(now, b, addr(2), a);
    }

    fn packet(track: TrackId, seq: u64, now: Instant) -> Forwarded {
        Forwarded {
            track,
            layer: 0,
            codec: 2,
            seq,
            time: 90 * seq as u32,
            marker: true,
            wallclock: now - Duration::from_millis(5),
            audio_level: Some(-30),
            voice_activity: Some(true),
            payload: Arc::from(&b"a frame"[..]),
        }
    }

    fn controls(core: &mut NodePortCore) -> Vec<String> {
        core.out
            .control
            .drain(..)
            .map(|(s, c)| format!("{s}: {c:?}"))
            .collect()
    }

    #[test]
    fn a_remote_track_flows_once_subscribed_and_stops_after() {
        let now = Instant::now();
        let (mut a, mut b) = two(now);
        let origin = TrackId::new(1, 7); // on a's shard 1
        let proxy = TrackId::new(1, 1); // b's node port is index 1
        subscribed(now, &mut a, &mut b, origin, proxy);
        assert_eq!(
            controls(&mut a),
            [format!("1: AddRemoteSubscriber({origin:?}, 2)")],
            "the publisher's shard hands its packets to a's node port"
        );
        a.handle_media(now, vec![packet(origin, 41, now), packet(origin, 42, now)]);
        deliver(now, &mut a, addr(1), &mut b);
        let got = std::mem::take(&mut b.out.media[0]);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].track, got[0].seq, got[1].seq), (proxy, 41, 42));
        assert_eq!(
            (got[0].codec, got[0].time, got[0].marker),
            (2, 90 * 41, true)
        );
        assert_eq!(
            (got[0].audio_level, got[0].voice_activity),
            (Some(-30), Some(true))
        );
        assert_eq!(&*got[0].payload, b"a frame");
        assert!(now.duration_since(got[0].wallclock) >= Duration::from_millis(5));

        b.handle_control(Control::KeyframeRequest {
            track: proxy,
            layer: 2,
            kind: KeyframeRequestKind::Pli,
            urgent: true,
        });
        deliver(now, &mut b, addr(2), &mut a);
        assert_eq!(
            controls(&mut a),
            [format!(
                "1: KeyframeRequest({origin:?}, layer 2, Pli, urgent=true)"
            )]
        );

        b.handle_control(Control::RemoveRemoteSubscriber {
            track: proxy,
            shard: 0,
        });
        deliver(now, &mut b, addr(2), &mut a);
        assert_eq!(
            controls(&mut a),
            [format!("1: RemoveRemoteSubscriber({origin:?}, 2)")]
        );
        a.handle_media(now, vec![packet(origin, 43, now)]);
        assert_eq!(
            deliver(now, &mut a, addr(1), &mut b),
            0,
            "nobody asks any more"
        );
    }

    #[test]
    fn a_lost_subscription_is_repeated_and_unwanted_packets_are_stopped() {
        let now = Instant::now();
        let (mut a, mut b) = two(now);
        let origin = TrackId::new(0, 3);
        let proxy = TrackId::new(1, 1);
        b.handle_control(Control::Node(NodeCommand::MapTrack {
            track: proxy,
            node: "a".into(),
            origin: origin.0,
        }));
        b.handle_control(Control::AddRemoteSubscriber {
            track: proxy,
            shard: 0,
        });
        b.flush();
        while b.poll_transmit().is_some() {} // lost on the way
        b.handle_timeout(now);
        deliver(now, &mut b, addr(2), &mut a);
        assert_eq!(
            controls(&mut a),
            [format!("0: AddRemoteSubscriber({origin:?}, 2)")],
            "asked again at the next tick"
        );
        // b forgets the track without a's hearing of it: a's next packet is refused.
        b.handle_control(Control::Node(NodeCommand::UnmapTrack { track: proxy }));
        b.flush();
        while b.poll_transmit().is_some() {} // its unsubscribe lost too
        a.handle_media(now, vec![packet(origin, 1, now)]);
        deliver(now, &mut a, addr(1), &mut b);
        assert_eq!(b.stats.rtp_unrouted, 1);
        assert!(b.out.media[0].is_empty());
        deliver(now, &mut b, addr(2), &mut a);
        assert_eq!(
            controls(&mut a),
            [format!("0: RemoveRemoteSubscriber({origin:?}, 2)")]
        );
    }

    #[test]
    fn a_packet_lost_between_the_nodes_is_asked_for_and_sent_again() {
        let now = Instant::now();
        let (mut a, mut b) = two(now);
        let origin = TrackId::new(0, 3);
        let proxy = TrackId::new(1, 1);
        subscribed(now, &mut a, &mut b, origin, proxy);
        a.handle_media(now, vec![packet(origin, 10, now)]);
        deliver(now, &mut a, addr(1), &mut b);
        // 11 and 12 are lost on the way; 13 arrives.
        for seq in [11, 12] {
            a.handle_media(now, vec![packet(origin, seq, now)]);
            a.flush();
            while a.poll_transmit().is_some() {}
        }
        a.handle_media(now, vec![packet(origin, 13, now)]);
        deliver(now, &mut a, addr(1), &mut b);
        assert_eq!(b.stats.rtp_nacked, 2);
        deliver(now, &mut b, addr(2), &mut a); // the NACK
        assert_eq!(a.stats.rtp_resent, 2);
        deliver(now, &mut a, addr(1), &mut b); // the resends
        let seqs: Vec<u64> = b.out.media[0].iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [10, 13, 11, 12]);
        assert_eq!(b.stats.rtp_nacked, 2, "late packets are no new gap");
    }

    #[test]
    fn nodes_that_answer_are_reachable_and_a_silent_one_is_not() {
        let t0 = Instant::now();
        let (mut a, mut b) = two(t0);
        a.handle_timeout(t0);
        b.handle_timeout(t0);
        deliver(t0, &mut a, addr(1), &mut b);
        deliver(t0, &mut b, addr(2), &mut a);
        let t1 = t0 + TICK;
        a.handle_timeout(t1);
        assert_eq!((a.stats.nodes, a.stats.nodes_reachable), (1, 1));
        // The link is cut: a hears nothing more.
        let t2 = t0 + LINK_TIMEOUT + TICK;
        a.handle_timeout(t2);
        assert_eq!((a.stats.nodes, a.stats.nodes_reachable), (1, 0));
        // Healed.
        b.handle_timeout(t2);
        deliver(t2, &mut b, addr(2), &mut a);
        a.handle_timeout(t2 + TICK);
        assert_eq!(a.stats.nodes_reachable, 1);
    }

    #[test]
    fn a_node_that_restarts_or_goes_stops_getting_what_it_asked_for() {
        let now = Instant::now();
        let (mut a, mut b) = two(now);
        let origin = TrackId::new(0, 3);
        let proxy = TrackId::new(1, 1);
        subscribed(now, &mut a, &mut b, origin, proxy);
        controls(&mut a);
        let restarted = NodeIdentity::new("b").unwrap();
        a.handle_control(Control::Node(NodeCommand::SetNode {
            id: "b".into(),
            boot: restarted.boot,
            addr: addr(2),
        }));
        assert_eq!(
            controls(&mut a),
            [format!("0: RemoveRemoteSubscriber({origin:?}, 2)")]
        );
        a.handle_control(Control::Node(NodeCommand::RemoveNode { id: "b".into() }));
        assert!(controls(&mut a).is_empty(), "nothing more to stop");
    }
}
