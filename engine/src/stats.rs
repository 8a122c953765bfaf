//! Counters a shard keeps about its own work. Plain integers owned by the shard; the
//! I/O layer publishes a copy for metrics, so the media path touches no shared memory.

/// One shard's counters since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Datagrams received.
    pub rx_datagrams: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Datagrams dropped before reaching a peer: oversized, unknown source, not STUN
    /// for a known ufrag.
    pub rx_dropped: u64,
    /// Datagrams a peer's str0m refused (a malformed DTLS record, for example).
    pub rx_rejected: u64,
    /// Datagrams for a peer dropped before str0m because what can be checked without
    /// keys is broken: SRTP/SRTCP shorter than a header and tag, CSRCs or header
    /// extension past the end, first RTCP length past the compound (`media_check`); STUN
    /// with a wrong FINGERPRINT (`stun::fingerprint_ok`).
    pub rx_malformed: u64,
    /// RTP packets dropped before str0m because str0m 0.25 would extend their
    /// transport-wide sequence number below zero and then allocate without bound
    /// (`twcc_guard`).
    pub rx_twcc_guarded: u64,
    /// Datagrams sent.
    pub tx_datagrams: u64,
    /// Datagrams not sent: for an ICE-TCP connection that is gone or whose unsent
    /// output is full.
    pub tx_dropped: u64,
    /// RTP packets received from publishers (after SRTP).
    pub rtp_in: u64,
    /// RTP packets that matched no published track or codec.
    pub rtp_unrouted: u64,
    /// RTP packets from publishers with no payload (padding only), not forwarded.
    pub rtp_empty: u64,
    /// RTP packets written to subscribers.
    pub rtp_forwarded: u64,
    /// Packets not forwarded because the subscriber did not negotiate their codec.
    pub rtp_no_codec: u64,
    /// Video packets held back from a subscriber whose stream waits for a keyframe.
    pub rtp_awaiting_keyframe: u64,
    /// Packets not sent to a subscriber whose session has no keys yet (DTLS not done).
    pub rtp_not_ready: u64,
    /// Packets resent to answer subscribers' NACKs.
    pub rtp_resent: u64,
    /// Packets subscribers NACKed that were not resent: no longer held (older than
    /// `RTX_WINDOW`), or past the stream's resend budget (half what it sent).
    pub nack_unanswered: u64,
    /// Transport-wide congestion control feedback packets read from subscribers (each
    /// updates the subscriber's bandwidth estimate, `crate::bwe`).
    pub twcc_feedback: u64,
    /// Packets for other shards dropped because their channel was full.
    pub cross_shard_dropped: u64,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests: u64,
    /// Peers dropped because handling them panicked.
    pub peer_panics: u64,
    /// Subscribers' streams moved from one simulcast layer to another.
    pub layer_switches: u64,
    pub probe_packets: u64,
    pub rtp_held_for_congestion: u64,
    pub rtp_temporal_left_out: u64,
    /// Video packets that waited in a subscriber's pacer before they left.
    pub rtp_paced: u64,
    /// App messages on data channels: received from clients, sent to them, and not sent
    /// because the receiver's channel was full (a slow receiver) or the message was bad.
    pub data_received: u64,
    pub data_sent: u64,
    pub data_dropped: u64,
    /// Video payload bytes forwarded to subscribers, by simulcast layer (a track
    /// without simulcast is layer 0): their rates are the layers' bitrates.
    pub layer0_bytes: u64,
    pub layer1_bytes: u64,
    pub layer2_bytes: u64,
}

impl ShardStats {
    /// Every counter with the name and meaning it has on the metrics page (Prometheus
    /// counters, `peercalls_shard_<name>_total`). A counter added to the struct belongs
    /// here too; the test below keeps the two the same size.
    pub fn counters(&self) -> [(&'static str, &'static str, u64); 32] {
        [
            ("rx_datagrams", "Datagrams received.", self.rx_datagrams),
            ("rx_bytes", "Bytes received.", self.rx_bytes),
            (
                "rx_dropped",
                "Datagrams dropped before reaching a peer (oversized, unknown source, not STUN for a known ufrag).",
                self.rx_dropped,
            ),
            (
                "rx_rejected",
                "Datagrams a peer's WebRTC stack refused.",
                self.rx_rejected,
            ),
            (
                "rx_malformed",
                "Datagrams for a peer dropped because they are broken in ways checked before decryption.",
                self.rx_malformed,
            ),
            (
                "rx_twcc_guarded",
                "RTP packets dropped whose transport-wide sequence number would go below zero.",
                self.rx_twcc_guarded,
            ),
            ("tx_datagrams", "Datagrams sent.", self.tx_datagrams),
            (
                "tx_dropped",
                "Datagrams not sent: an ICE-TCP connection gone or full.",
                self.tx_dropped,
            ),
            (
                "rtp_received",
                "RTP packets received from publishers.",
                self.rtp_in,
            ),
            (
                "rtp_unrouted",
                "RTP packets that matched no published track or codec.",
                self.rtp_unrouted,
            ),
            (
                "rtp_empty",
                "RTP packets without payload (padding), not forwarded.",
                self.rtp_empty,
            ),
            (
                "rtp_forwarded",
                "RTP packets written to subscribers.",
                self.rtp_forwarded,
            ),
            (
                "rtp_no_codec",
                "RTP packets not forwarded because the subscriber did not negotiate their codec.",
                self.rtp_no_codec,
            ),
            (
                "rtp_awaiting_keyframe",
                "Video packets held back from a subscriber until its stream starts at a keyframe.",
                self.rtp_awaiting_keyframe,
            ),
            (
                "rtp_not_ready",
                "RTP packets not sent to a subscriber whose session had no keys yet.",
                self.rtp_not_ready,
            ),
            (
                "rtp_resent",
                "RTP packets resent to answer subscribers' NACKs.",
                self.rtp_resent,
            ),
            (
                "nack_unanswered",
                "Packets subscribers NACKed that were not resent (no longer held, or past the stream's resend budget).",
                self.nack_unanswered,
            ),
            (
                "twcc_feedback",
                "Congestion control feedback packets read from subscribers.",
                self.twcc_feedback,
            ),
            (
                "cross_shard_dropped",
                "Packets for other shards dropped because their channel was full.",
                self.cross_shard_dropped,
            ),
            (
                "keyframe_requests",
                "Keyframe requests sent to publishers.",
                self.keyframe_requests,
            ),
            (
                "peer_panics",
                "Peers dropped because handling them panicked.",
                self.peer_panics,
            ),
            (
                "simulcast_layer_switches",
                "Subscribers' streams moved from one simulcast layer to another.",
                self.layer_switches,
            ),
            (
                "simulcast_probe_packets",
                "Packets resent to probe a subscriber's path before a higher simulcast layer.",
                self.probe_packets,
            ),
            (
                "simulcast_held_for_congestion",
                "Packets of a simulcast layer not sent to a subscriber going down on a congested path, until the lower layer's keyframe.",
                self.rtp_held_for_congestion,
            ),
            (
                "simulcast_temporal_left_out",
                "VP8 packets of a temporal layer not sent to a subscriber whose share carries less of the frame rate.",
                self.rtp_temporal_left_out,
            ),
            (
                "rtp_paced",
                "Video packets that waited in a subscriber's pacer (a burst over 1.5 times its bandwidth estimate) before they left.",
                self.rtp_paced,
            ),
            (
                "data_messages_received",
                "App messages (chat, files) received on clients' data channels.",
                self.data_received,
            ),
            (
                "data_messages_sent",
                "App messages sent on clients' data channels.",
                self.data_sent,
            ),
            (
                "data_messages_dropped",
                "App messages not sent on a data channel (the receiver's buffer was full) or not taken from one (binary, too large, not UTF-8).",
                self.data_dropped,
            ),
            (
                "video_forwarded_bytes_layer_0",
                "Video payload bytes forwarded of simulcast layer 0, the lowest (and of video without simulcast).",
                self.layer0_bytes,
            ),
            (
                "video_forwarded_bytes_layer_1",
                "Video payload bytes forwarded of simulcast layer 1.",
                self.layer1_bytes,
            ),
            (
                "video_forwarded_bytes_layer_2",
                "Video payload bytes forwarded of simulcast layer 2, the highest.",
                self.layer2_bytes,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::ShardStats;

    #[test]
    fn every_counter_is_listed_once() {
        // Every field is a u64: the struct's size counts its fields.
        let fields = std::mem::size_of::<ShardStats>() / std::mem::size_of::<u64>();
        let stats = ShardStats::default();
        let counters = stats.counters();
        assert_eq!(counters.len(), fields);
        let mut names: Vec<&str> = counters.iter().map(|c| c.0).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), fields);
    }

    #[test]
    fn every_field_reaches_its_counter() {
        // A distinct value in every field: a field listed twice, or not at all, shows.
        let stats = ShardStats {
            rx_datagrams: 1,
            rx_bytes: 2,
            rx_dropped: 3,
            rx_rejected: 4,
            rx_malformed: 5,
            rx_twcc_guarded: 6,
            tx_datagrams: 7,
            rtp_in: 8,
            rtp_unrouted: 9,
            rtp_empty: 10,
            rtp_forwarded: 11,
            rtp_no_codec: 12,
            cross_shard_dropped: 13,
            keyframe_requests: 14,
            peer_panics: 15,
            tx_dropped: 16,
            rtp_awaiting_keyframe: 17,
            rtp_not_ready: 18,
            rtp_resent: 19,
            nack_unanswered: 20,
            twcc_feedback: 21,
            layer_switches: 22,
            layer0_bytes: 23,
            layer1_bytes: 24,
            layer2_bytes: 25,
            probe_packets: 26,
            rtp_held_for_congestion: 27,
            rtp_temporal_left_out: 28,
            data_received: 29,
            data_sent: 30,
            data_dropped: 31,
            rtp_paced: 32,
        };
        let mut values: Vec<u64> = stats.counters().iter().map(|c| c.2).collect();
        values.sort();
        assert_eq!(values, (1..=32).collect::<Vec<u64>>());
        let value = |name: &str| stats.counters().iter().find(|c| c.0 == name).unwrap().2;
        assert_eq!(value("rtp_forwarded"), 11);
        assert_eq!(value("rtp_received"), 8);
    }
}
