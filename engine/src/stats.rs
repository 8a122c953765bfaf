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
    /// Packets for other shards dropped because their channel was full.
    pub cross_shard_dropped: u64,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests: u64,
    /// Peers dropped because handling them panicked.
    pub peer_panics: u64,
}
