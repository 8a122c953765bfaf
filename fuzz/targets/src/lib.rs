//! The bodies of the fuzz targets. Each takes arbitrary bytes and feeds them to one of the
//! server's parsers the way network input reaches it; each must return for every input
//! without a panic. The libFuzzer binaries in `fuzz/fuzz_targets/` call them, and
//! `tests/replay.rs` replays every file of `fuzz/corpus/<target>/` through them on
//! stable as an ordinary test. `docs/fuzzing.md` tells how to run them.
//!
//! The hostile-peer toolkit they use ([`forge`], [`peer`], [`world`]) also serves the
//! bad-input tests.

pub mod forge;
pub mod peer;
pub mod world;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use engine::bwe::Bwe;
use engine::codecs::CodecDesc;
use engine::msg::{Notice, PeerId, TrackId, TrackName};
use engine::rtcp::{self, SenderInfo};
use engine::shard::ShardCore;
use engine::{media_check, stun};
use protocol::ClientMessage;
use signaling::app::{App, AppConfig, Output};
use signaling::transport::ConnId;
use str0m::format::Codec;
use str0m::media::MediaKind;

use crate::forge::{SrtpForge, rtp_header_len};
use crate::peer::RawPeer;
use crate::world::{CALM, HOSTILE, World, factory};

/// A fuzz target: a name (its folder under `fuzz/corpus/`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("stun_demux", stun_demux),
    ("shard_datagram", shard_datagram),
    ("shard_srtp", shard_srtp),
    ("client_message", client_message),
    ("app_messages", app_messages),
    ("app_sdp", app_sdp),
    ("http_ws", http_ws),
    ("rtcp_feedback", rtcp_feedback),
    ("relay_open", relay_open),
];

/// The engine's own parsers of network bytes: RFC 7983 demux, the STUN username used to
/// route a datagram from a new address, and the SRTP/SRTCP framing check.
pub fn stun_demux(data: &[u8]) {
    let kind = stun::demux(data);
    if let Some(ufrag) = stun::local_ufrag(data) {
        assert_eq!(kind, stun::Demux::Stun);
        assert!(!ufrag.is_empty() && !ufrag.contains(&b':'));
        // The ufrag is a slice of the datagram, after the header and attribute header.
        let start = ufrag.as_ptr() as usize - data.as_ptr() as usize;
        assert!(start >= 24 && start + ufrag.len() <= data.len());
    }
    if stun::fingerprint_ok(data) {
        // Passing means the attributes fit the declared length, inside the datagram.
        let len = data.get(2..4).map_or(usize::MAX, |l| {
            usize::from(u16::from_be_bytes([l[0], l[1]]))
        });
        assert!(len.saturating_add(20) <= data.len());
    }
    if kind == stun::Demux::Rtp && media_check::check_srtp(data).is_ok() && !is_rtcp(data) {
        let header = rtp_header_len(data).expect("a checked RTP header fits");
        assert!(header + media_check::MIN_TAG <= data.len());
    }
}

/// RTCP rather than RTP, by the second byte (RFC 5761).
fn is_rtcp(data: &[u8]) -> bool {
    data.get(1).is_some_and(|b| (192..=223).contains(b))
}

/// Splits fuzz input into `(flags, bytes)` frames: a flag byte, a big-endian `u16`
/// length (cut to what is left) and that many bytes.
fn frames(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&flags, rest) = data.split_first()?;
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
            _ => (rest.len(), &[][..]),
        };
        let (frame, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        Some((flags, frame))
    })
}

fn connected_world() -> World {
    World::connected().expect("two peers connect in virtual time")
}

static REUSE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set while a harness client's str0m runs (see `peer::RawPeer`).
    pub(crate) static IN_CLIENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Keeps libFuzzer's panic hook (which aborts) from firing for a panic in a harness
/// *client's* str0m: the client only plays the peer, and such a panic breaks that client
/// (the world is rebuilt) instead of ending the run. Panics anywhere else, the server's
/// included, still abort. Called by the libFuzzer binaries of the shard targets.
pub fn quiet_client_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CLIENT.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Inputs one connected world serves when worlds are reused.
const WORLD_USES: u32 = 100;

/// Lets the shard targets keep one connected world for up to [`WORLD_USES`] inputs, as
/// long as both its peers are healthy: many times faster (building a world costs two
/// DTLS handshakes), at the price of inputs that may depend on state left by the ones
/// before. The libFuzzer binaries call it unless `FUZZ_FRESH_WORLD` is set in the
/// environment; the replay test calls it too, but gives every regression input a fresh
/// world.
pub fn reuse_worlds() {
    if std::env::var_os("FUZZ_FRESH_WORLD").is_none() {
        REUSE.store(true, Ordering::Relaxed);
    }
}

thread_local! {
    static WORLD: RefCell<Option<(World, u32)>> = const { RefCell::new(None) };
}

/// Forgets the world kept by [`reuse_worlds`]: the next input gets a fresh one.
pub fn fresh_world() {
    WORLD.with(|c| c.borrow_mut().take());
}

fn with_world(f: impl FnOnce(&mut World)) {
    if !REUSE.load(Ordering::Relaxed) {
        f(&mut connected_world());
        return;
    }
    let (mut w, uses) = match WORLD.with(|c| c.borrow_mut().take()) {
        Some((w, uses)) if uses < WORLD_USES => (w, uses),
        _ => (connected_world(), 0),
    };
    f(&mut w);
    if w.gone.is_empty()
        && w.shards[0].peer_count() == 2
        && !w.clients.iter().any(|c| c.is_broken())
    {
        WORLD.with(|c| *c.borrow_mut() = Some((w, uses + 1)));
    }
}

/// A panic inside one peer's handling is caught by the shard (and the peer dropped);
/// for a fuzz target it is still a bug.
fn assert_no_panics(shard: &ShardCore) {
    assert_eq!(shard.stats.peer_panics, 0, "handling a peer panicked");
}

/// Datagrams into a shard with two connected peers, exactly as the I/O loop hands them
/// to `ShardCore::handle_datagram`. Each frame's flags choose the source: `0` the hostile
/// peer's 5-tuple, `1` the bystander's (spoofed), `2` an unknown address, `3` the hostile
/// peer's IP on another port; bit 2 lets 20 ms of virtual time pass after it.
pub fn shard_datagram(data: &[u8]) {
    with_world(|w| shard_datagram_in(w, data));
}

fn shard_datagram_in(w: &mut World, data: &[u8]) {
    let unknown: SocketAddr = "10.9.9.9:999".parse().expect("an address");
    for (flags, bytes) in frames(data).take(64) {
        let source = match flags & 3 {
            0 => w.addr(HOSTILE),
            1 => w.addr(CALM),
            2 => unknown,
            _ => SocketAddr::new(w.addr(HOSTILE).ip(), 1),
        };
        w.deliver(source, bytes);
        if flags & 4 != 0 {
            w.step(Duration::from_millis(20));
        }
    }
    w.run_for(Duration::from_millis(100));
    assert_no_panics(&w.shards[0]);
}

/// Plaintext RTP and RTCP from the hostile peer, protected with its session's real SRTP
/// keys, so that str0m's RTP header parser, RTCP compound parser and feedback handling,
/// and the shard's forwarding see arbitrary content inside valid SRTP. Frame flags: bit 0
/// RTCP (else RTP); bit 1 put the peer's real video SSRC and VP8 payload type (RTP) or its
/// SSRC as sender (RTCP) in; bit 2 use the RTX SSRC and payload type (RTP) or name the
/// server's stream to the peer as media source (RTCP); bit 3 give the RTP packet the next
/// sequence number; bit 4 lets 20 ms pass after it.
pub fn shard_srtp(data: &[u8]) {
    with_world(|w| shard_srtp_in(w, data));
}

fn shard_srtp_in(w: &mut World, data: &[u8]) {
    let mut forge = w.clients[HOSTILE].forge().expect("DTLS exported keys");
    let hostile = &mut w.clients[HOSTILE];
    let mid = hostile.mid_of("hostile-video").expect("a video m-line");
    let (ssrc, rtx) = hostile.ssrcs(mid).expect("a video stream");
    let (pt, rtx_pt) = hostile.payload_type(Codec::Vp8).expect("VP8");
    let toward = hostile.receiving_ssrcs().first().map_or(0, |s| **s);
    for (flags, bytes) in frames(data).take(64) {
        let mut p = bytes.to_vec();
        let datagram = if flags & 1 == 0 {
            if p.len() >= 12 {
                if flags & 2 != 0 {
                    let (s, t) = match (flags & 4 != 0, rtx, rtx_pt) {
                        (true, Some(s), Some(t)) => (*s, t),
                        _ => (*ssrc, pt),
                    };
                    p[8..12].copy_from_slice(&s.to_be_bytes());
                    p[1] = (p[1] & 0x80) | (t & 0x7f);
                }
                if flags & 8 != 0 {
                    w.next_seq = w.next_seq.wrapping_add(1);
                    p[2..4].copy_from_slice(&w.next_seq.to_be_bytes());
                }
            }
            rtp_datagram(&mut forge, &p)
        } else {
            if p.len() >= 8 && flags & 2 != 0 {
                p[4..8].copy_from_slice(&ssrc.to_be_bytes());
            }
            if p.len() >= 12 && flags & 4 != 0 {
                p[8..12].copy_from_slice(&toward.to_be_bytes());
            }
            match forge.protect_rtcp(&p) {
                Some(d) => d,
                None => p,
            }
        };
        let source = w.addr(HOSTILE);
        w.deliver(source, &datagram);
        if flags & 16 != 0 {
            w.step(Duration::from_millis(20));
        }
    }
    w.run_for(Duration::from_millis(200));
    assert_no_panics(&w.shards[0]);
}

/// SRTP-protects a plaintext RTP packet, taking its SSRC and sequence number (and the
/// length of its header) from the packet itself.
pub fn rtp_datagram(forge: &mut SrtpForge, p: &[u8]) -> Vec<u8> {
    let (ssrc, seq) = if p.len() >= 12 {
        (
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    } else {
        (0, 0)
    };
    let hlen = rtp_header_len(p).unwrap_or(p.len().min(12));
    forge.protect_rtp(p, hlen, ssrc, seq)
}

/// The signalling protocol's message type, as serde reads it from a client's frame.
pub fn client_message(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(msg) = serde_json::from_str::<ClientMessage>(text)
    {
        let _ = serde_json::to_string(&msg).expect("a parsed message serialises");
    }
}

const SHARD_ADDR: &str = "127.0.0.1:20000";

fn app() -> App {
    let addr: std::net::SocketAddr = SHARD_ADDR.parse().expect("an address");
    App::new(AppConfig::default(), factory().clone(), vec![addr])
}

/// A first offer as a browser-like str0m client makes it: video, audio.
pub fn client_offer() -> &'static str {
    static OFFER: OnceLock<String> = OnceLock::new();
    OFFER.get_or_init(|| {
        let mut p = RawPeer::new(Instant::now(), "127.0.0.1:5555".parse().expect("addr"));
        p.offer(&[
            (MediaKind::Video, "s", "s-video"),
            (MediaKind::Audio, "s", "s-audio"),
        ])
        .to_sdp_string()
    })
}

fn json_text(kind: &str, sdp: &str) -> String {
    serde_json::json!({ "type": kind, "sdp": sdp }).to_string()
}

/// Client messages (one per line) through the signalling state machine, on a
/// connection that has joined a room where another member publishes a track.
pub fn app_messages(data: &[u8]) {
    let mut now = Instant::now();
    let mut app = app();
    let (me, other) = (ConnId(1), ConnId(2));
    app.on_open(now, me);
    app.on_open(now, other);
    app.on_text(now, me, r#"{"type":"join","room":"r","nickname":"me"}"#);
    app.on_text(
        now,
        other,
        r#"{"type":"join","room":"r","nickname":"other"}"#,
    );
    app.on_text(now, other, &json_text("offer", client_offer()));
    app.on_notice(now, Notice::ChannelOpen { peer: PeerId(1) });
    app.on_notice(
        now,
        Notice::TrackPublished {
            peer: PeerId(2),
            track: TrackId(1),
            name: TrackName {
                stream_id: "s".into(),
                track_id: "s-video".into(),
                kind: MediaKind::Video,
            },
            codec: CodecDesc {
                mime_type: "video/VP8".into(),
                clock_rate: 90_000,
                channels: None,
                fmtp: String::new(),
            },
        },
    );
    drop(app.take_output());
    // Every other line comes on the member's data channel instead of its WebSocket.
    for (k, line) in data.split(|&b| b == b'\n').take(256).enumerate() {
        let text = String::from_utf8_lossy(line);
        if k % 2 == 0 {
            app.on_text(now, me, &text);
        } else {
            let text = text.into_owned();
            app.on_notice(
                now,
                Notice::ChannelData {
                    peer: PeerId(1),
                    text,
                },
            );
        }
        for out in app.take_output() {
            if let Output::Send(_, msg) | Output::SendMany(_, msg) = out {
                serde_json::to_string(&msg).expect("a server message serialises");
            }
        }
        now += Duration::from_millis(1);
    }
    app.on_closed(now, me);
    app.tick(now + Duration::from_secs(60));
    drop(app.take_output());
}

/// Runs the app's commands through a shard and the shard's notices back into the app,
/// until both are quiet.
fn settle(now: Instant, app: &mut App, shard: &mut ShardCore) {
    for _ in 0..16 {
        let outs = app.take_output();
        let notices = std::mem::take(&mut shard.out.notices);
        if outs.is_empty() && notices.is_empty() {
            return;
        }
        for out in outs {
            if let Output::Control(_, c) = out {
                shard.handle_control(now, c);
            }
        }
        for n in notices {
            app.on_notice(now, n);
        }
        shard.out.transmits.clear();
    }
}

/// SDP as the signalling app receives it. The first byte chooses: even — the rest is the
/// client's first `offer`; odd — the rest is the `answer` to a server offer (made for a
/// `publish`), which the app hands to the shard, where str0m applies it.
pub fn app_sdp(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sdp = String::from_utf8_lossy(rest);
    let now = Instant::now();
    let mut app = app();
    let addr = SHARD_ADDR.parse().expect("an address");
    let mut shard = ShardCore::new(0, 1, addr, now);
    let me = ConnId(1);
    app.on_open(now, me);
    app.on_text(now, me, r#"{"type":"join","room":"r","nickname":"me"}"#);
    if mode & 1 == 0 {
        app.on_text(now, me, &json_text("offer", &sdp));
        settle(now, &mut app, &mut shard);
    } else {
        app.on_text(now, me, &json_text("offer", client_offer()));
        settle(now, &mut app, &mut shard);
        app.on_text(
            now,
            me,
            r#"{"type":"publish","streamId":"x","trackId":"x-video","kind":"video"}"#,
        );
        settle(now, &mut app, &mut shard);
        app.on_text(now, me, &json_text("answer", &sdp));
        settle(now, &mut app, &mut shard);
    }
    shard.handle_timeout(now + Duration::from_secs(1));
    assert_no_panics(&shard);
}

/// The signalling port's HTTP request parsing and WebSocket frame reading.
pub fn http_ws(data: &[u8]) {
    signaling::transport::fuzzing::http_ws(data);
}

/// The engine's own RTCP readers and writer on a plaintext compound, as a subscriber's
/// decrypted SRTCP reaches them: its NACKs, its TWCC feedback (read twice, as feedback
/// repeats itself) into a bandwidth estimate that has sent 2,000 packets, and the
/// sender-report rewrite. The estimate stays within its bounds whatever the feedback.
pub fn rtcp_feedback(data: &[u8]) {
    rtcp::nacks(data, |_, _| {});
    let t0 = Instant::now();
    let mut bwe = Bwe::new(t0);
    for i in 0..2_000 {
        bwe.sent(t0 + Duration::from_micros(i * 500), 1_200);
    }
    for round in 1..=2 {
        rtcp::twcc(data, |a| bwe.arrival(a));
        bwe.feedback_done(t0 + Duration::from_secs(round));
    }
    if let Some(e) = bwe.estimate() {
        assert!((30_000..=100_000_000).contains(&e), "estimate {e}");
    }
    let mut copy = data.to_vec();
    let info = SenderInfo {
        rtp_time: 1,
        packets: 2,
        octets: 3,
    };
    rtcp::patch_sender_reports(&mut copy, |_| Some(info));
    assert_eq!(copy.len(), data.len());
}

/// Datagrams on a node port, as another node (or anyone) sends them: opened by the
/// receiving side of a node pair. Each frame is one datagram; flag bit 0 makes it a real
/// datagram the peer node sealed with the frame as payload, then changed at the byte the
/// frame's first byte names (bit 1 leaves it unchanged). Nothing but real, unchanged,
/// first-seen datagrams may open, and what opens is read as a batch of frames.
pub fn relay_open(data: &[u8]) {
    use std::sync::OnceLock;
    static NODES: OnceLock<(relay::NodeIdentity, relay::NodeIdentity)> = OnceLock::new();
    let (a, b) = NODES.get_or_init(|| {
        (
            relay::NodeIdentity::new("a").expect("a boot id"),
            relay::NodeIdentity::new("b").expect("a boot id"),
        )
    });
    let (mut seal, _) = relay::pair(b"fuzz secret", a, b);
    let (_, mut open) = relay::pair(b"fuzz secret", b, a);
    for (flags, bytes) in frames(data) {
        let mut datagram = bytes.to_vec();
        let real = flags & 1 == 1;
        let changed = real && flags & 2 == 0 && !bytes.is_empty();
        if real {
            datagram.clear();
            seal.seal(flags, bytes, &mut datagram);
            if changed {
                let at = usize::from(bytes[0]) % datagram.len();
                datagram[at] ^= 0x80;
            }
        }
        let opened = match open.open(&mut datagram) {
            Ok((_, payload)) => {
                // What opened is read as the batch of frames it would be.
                for f in relay::frame::frames(payload) {
                    std::hint::black_box(f);
                }
                true
            }
            Err(_) => false,
        };
        assert!(
            !opened || (real && !changed),
            "opened a datagram that is not real"
        );
    }
}
