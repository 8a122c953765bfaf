//! Simulcast over real links (#22): the `peer-calls` binary and a str0m publisher sending
//! its camera in three layers (150, 500 and 1500 kbit/s, each in three VP8 temporal
//! layers, L1T3) in one network namespace, and subscribers, each in a namespace of its
//! own behind a veth pair whose downlink the kernel caps with `tc … tbf`: 300 kbit/s,
//! 1 Mbit/s, no cap, and 120 kbit/s. Each must settle on what its link carries (the
//! lowest layer, the middle one, the top one, and the lowest one at half its frame rate)
//! and keep decoding: no freeze (no decodable frame) longer than 1 s once its first
//! frame is decoded.
//!
//! What "decoding" means here is a decoder's view of the packets: a frame is decoded when
//! its last packet arrives, nothing before it is missing and its picture id follows the
//! last one's; a hole not repaired (by NACK) within 500 ms, or a picture id that jumps,
//! breaks the picture until the next keyframe, which the subscriber asks for (PLI), as a
//! browser does.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use client::{Connection, LocalTrack, PeerEvent, SessionEvent};
use protocol::{Kind, ServerMessage, TrackRef};
use str0m::format::Codec;
use str0m::media::MediaKind;

use crate::support::run;

const ROOM: &str = "links";
/// The server's (and the publisher's) address, on the server namespace's loopback.
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
/// The publisher's layers, kbit/s, lowest first, as the web client sends a 720p camera.
const LAYER_KBPS: [u32; 3] = [150, 500, 1500];
const RIDS: [&str; 3] = ["q", "h", "f"];
const FPS: u32 = 30;
/// Each subscriber's downlink cap (`None`: none), the layer it should settle on, and
/// the frames a second it should get of it.
const LINKS: [(Option<&str>, u8, u32); 4] = [
    (Some("300kbit"), 0, 30),
    (Some("1mbit"), 1, 30),
    (None, 2, 30),
    (Some("120kbit"), 0, 15),
];
/// The temporal layer of each frame, by its number modulo 4 (L1T3).
const TEMPORAL_PATTERN: [u8; 4] = [0, 2, 1, 2];
/// How long media runs; the layers are judged over the last [`JUDGED`] of it.
const RUN: Duration = Duration::from_secs(24);
const JUDGED: Duration = Duration::from_secs(10);
/// The longest a subscriber may go without a decoded frame.
const MAX_FREEZE: Duration = Duration::from_secs(1);
/// A hole not repaired in this long breaks the picture until a keyframe.
const REPAIR_PATIENCE: Duration = Duration::from_millis(500);

/// The namespaces: the server's, and one per subscriber joined to it by a veth pair
/// (10.78.k.1 on the server's side, 10.78.k.2 on the subscriber's, its default route).
/// Removed when dropped.
struct Links {
    server: String,
    subscribers: Vec<String>,
}

impl Links {
    fn new() -> Links {
        let id = std::process::id() % 100_000;
        let links = Links {
            server: format!("pcs{id}"),
            subscribers: (0..LINKS.len()).map(|k| format!("pcs{id}s{k}")).collect(),
        };
        links.remove();
        let s = links.server.as_str();
        run(&["ip", "netns", "add", s]);
        run(&["ip", "-n", s, "link", "set", "lo", "up"]);
        run(&[
            "ip",
            "-n",
            s,
            "addr",
            "add",
            &format!("{SERVER_IP}/32"),
            "dev",
            "lo",
        ]);
        for (k, (ns, (rate, ..))) in links.subscribers.iter().zip(LINKS).enumerate() {
            let (here, there) = (format!("pcs{id}v{k}"), format!("pcs{id}w{k}"));
            run(&["ip", "netns", "add", ns]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&[
                "ip", "-n", s, "link", "add", &here, "type", "veth", "peer", "name", &there,
                "netns", ns,
            ]);
            let net = format!("10.78.{}", k + 1);
            run(&[
                "ip",
                "-n",
                s,
                "addr",
                "add",
                &format!("{net}.1/24"),
                "dev",
                &here,
            ]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{net}.2/24"),
                "dev",
                &there,
            ]);
            run(&["ip", "-n", s, "link", "set", &here, "up"]);
            run(&["ip", "-n", ns, "link", "set", &there, "up"]);
            run(&[
                "ip",
                "-n",
                ns,
                "route",
                "add",
                "default",
                "via",
                &format!("{net}.1"),
            ]);
            if let Some(rate) = rate {
                // The server's side sends the subscriber's downlink: capped there, with a
                // queue of 300 ms at the rate, as a home router's.
                run(&[
                    "ip", "netns", "exec", s, "tc", "qdisc", "add", "dev", &here, "root", "tbf",
                    "rate", rate, "burst", "8kb", "latency", "300ms",
                ]);
            }
        }
        links
    }

    fn subscriber_ip(k: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 78, k as u8 + 1, 2))
    }

    fn remove(&self) {
        for ns in self.subscribers.iter().chain([&self.server]) {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Runs `f` on a thread of its own inside network namespace `ns`: the sockets it opens
/// live there.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a namespace file this thread opened; it changes this thread's
        // network namespace only.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// `peer-calls serve` in the server's namespace; waits until it answers there.
fn start_server(links: &Links, http: SocketAddr) -> Child {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &links.server, crate::support::BIN])
        .args(["serve", "--bind", &http.to_string(), "--udp-port", "0"])
        .args(["--shards", "1", "--no-pin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    let healthy = in_netns(&links.server, move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if crate::support::get(http, "/health").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    });
    if !healthy.join().unwrap() {
        let _ = child.kill();
        panic!("the server did not answer /health in its namespace");
    }
    child
}

/// The publisher: three layers of synthetic VP8 (frames of packets, a keyframe when the
/// server asks for one, the layers it says no one wants paused) until `stop`.
fn publish(server: SocketAddr, stop: Arc<AtomicBool>) -> u64 {
    let mut c = Connection::join(server, ROOM, "alice", IpAddr::V4(SERVER_IP)).unwrap();
    c.peer().set_simulcast("alice-video", &RIDS);
    let video = LocalTrack {
        stream_id: "alice".into(),
        track_id: "alice-video".into(),
        kind: MediaKind::Video,
    };
    c.start_media(&[video]).unwrap();
    let mut keyframe = [true; 3];
    let mut max_wanted = 2u8;
    let mut mid = None;
    let mut frames = 0u64;
    let mut tl0 = 0u8;
    let mut next_frame = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        c.poll(Duration::from_millis(2)).unwrap();
        while let Some(e) = c.next_event() {
            match e {
                SessionEvent::Peer(PeerEvent::KeyframeRequest { rid, .. }) => {
                    for (k, r) in RIDS.iter().enumerate() {
                        keyframe[k] |= rid.as_deref().is_none_or(|x| x == *r);
                    }
                }
                SessionEvent::Server(ServerMessage::Layers { max, .. }) => {
                    for (k, key) in keyframe.iter_mut().enumerate() {
                        // A layer that resumes starts with a keyframe.
                        *key |= k as u8 > max_wanted && k as u8 <= max;
                    }
                    max_wanted = max;
                }
                _ => {}
            }
        }
        if mid.is_none() {
            mid = c.peer().mid_of("alice", "alice-video");
        }
        let Some(mid) = mid else { continue };
        let now = Instant::now();
        if now < next_frame {
            continue;
        }
        next_frame += Duration::from_secs(1) / FPS;
        let rtp_time = (frames * 90_000 / u64::from(FPS)) as u32;
        let tid = TEMPORAL_PATTERN[(frames % 4) as usize];
        if tid == 0 {
            tl0 = tl0.wrapping_add(1);
        }
        let picture_id = (frames & 0x7fff) as u16;
        for layer in 0..=usize::from(max_wanted).min(2) {
            // A keyframe only on the base temporal layer, as an encoder makes one.
            let key = tid == 0 && std::mem::take(&mut keyframe[layer]);
            // Every frame the same size, whatever its temporal layer (a browser's base
            // frames are larger: the climb to the top layer then takes longer, the
            // probes' bursts showing congestion sooner).
            let frame = (LAYER_KBPS[layer] * 1000 / 8 / FPS) as usize;
            let bytes = if key { frame * 5 } else { frame };
            let n = bytes.div_ceil(1100);
            for i in 0..n {
                let mut payload = vec![0x55u8; bytes.div_ceil(n).max(8)];
                // The VP8 payload descriptor: X, and S on the frame's first packet; I, L,
                // T; a 15-bit picture id, TL0PICIDX, the TID. Then the VP8 header's first
                // byte (its P bit 0 in a keyframe), then the layer.
                payload[..6].copy_from_slice(&[
                    if i == 0 { 0x90 } else { 0x80 },
                    0xe0,
                    0x80 | (picture_id >> 8) as u8,
                    picture_id as u8,
                    tl0,
                    tid << 6,
                ]);
                payload[6] = u8::from(!key);
                payload[7] = layer as u8;
                c.peer()
                    .send_rtp_layer(
                        now,
                        mid,
                        RIDS[layer],
                        Codec::Vp8,
                        rtp_time,
                        i + 1 == n,
                        &payload,
                    )
                    .unwrap();
            }
        }
        frames += 1;
    }
    frames
}

/// A decoder's view of one subscriber's video. See the module docs.
#[derive(Default)]
struct Decoder {
    next_seq: Option<u64>,
    /// Sequence numbers missing, and since when.
    holes: BTreeMap<u64, Instant>,
    /// Waiting for a keyframe.
    broken: bool,
    /// Since when it has been broken, and whether a keyframe was asked for since.
    asked: Option<Instant>,
    first_frame: Option<Instant>,
    last_frame: Option<Instant>,
    longest_freeze: Duration,
    /// Each decoded frame: when, and its layer.
    frames: Vec<(Instant, u8)>,
    /// The picture id of the last frame that began.
    last_picture: Option<u16>,
}

impl Decoder {
    fn on_packet(&mut self, now: Instant, seq: u64, marker: bool, payload: &[u8]) {
        let next = self.next_seq.unwrap_or(seq);
        let in_order = seq >= next;
        // The next packet, nothing missing before it: its frame's picture id must follow.
        let contiguous = seq == next;
        if in_order {
            for s in next..seq {
                self.holes.insert(s, now);
            }
            self.next_seq = Some(seq + 1);
        } else {
            self.holes.remove(&seq);
        }
        if payload.len() < 8 {
            return;
        }
        let frame_start = payload[0] & 0x10 != 0;
        let keyframe_start = frame_start && payload[6] & 1 == 0;
        if frame_start && in_order {
            // A picture id that does not follow the last one with no packet missing in
            // between: a frame was left out without its number being closed up.
            let picture_id = u16::from(payload[2] & 0x7f) << 8 | u16::from(payload[3]);
            let follows = self
                .last_picture
                .is_none_or(|l| (l + 1) & 0x7fff == picture_id);
            if !follows && contiguous && !keyframe_start {
                self.broken = true;
            }
            self.last_picture = Some(picture_id);
        }
        if keyframe_start {
            // A keyframe needs nothing before it.
            self.holes.retain(|&s, _| s > seq);
            self.broken = false;
            self.asked = None;
        }
        if self
            .holes
            .values()
            .any(|&since| now >= since + REPAIR_PATIENCE)
        {
            self.broken = true;
            self.holes.clear();
        }
        if marker && !self.broken && self.holes.is_empty() {
            if let Some(last) = self.last_frame {
                self.longest_freeze = self.longest_freeze.max(now - last);
            }
            self.first_frame.get_or_insert(now);
            self.last_frame = Some(now);
            self.frames.push((now, payload[7]));
        }
    }

    /// Whether to ask for a keyframe now (broken, and not asked for in the last second).
    fn wants_keyframe(&mut self, now: Instant) -> bool {
        if !self.broken || self.asked.is_some_and(|t| now < t + Duration::from_secs(1)) {
            return false;
        }
        self.asked = Some(now);
        true
    }
}

/// One subscriber: joins, subscribes to alice's video, decodes until `until`.
fn subscribe(server: SocketAddr, k: usize, until: Instant) -> Decoder {
    let name = format!("sub{k}");
    let mut c = Connection::join(server, ROOM, &name, Links::subscriber_ip(k)).unwrap();
    c.start_media(&[]).unwrap();
    let want = TrackRef::new("alice", "alice-video", Kind::Video);
    let mut subscribed = false;
    let mut decoder = Decoder::default();
    let mut mid = None;
    while Instant::now() < until {
        c.poll(Duration::from_millis(2)).unwrap();
        if !subscribed && c.tracks().iter().any(|t| t.track == want) {
            c.subscribe(vec![want.clone()]).unwrap();
            subscribed = true;
        }
        while let Some(e) = c.next_event() {
            if let SessionEvent::Peer(PeerEvent::Rtp(p)) = e {
                mid = Some(p.mid);
                decoder.on_packet(p.received, p.seq, p.marker, &p.payload);
            }
        }
        if let Some(mid) = mid
            && decoder.wants_keyframe(Instant::now())
        {
            let _ = c.peer().request_keyframe(mid);
        }
    }
    decoder
}

#[test]
fn each_subscriber_gets_the_layer_its_link_carries_and_never_freezes() {
    let links = Links::new();
    let http = SocketAddr::new(IpAddr::V4(SERVER_IP), crate::support::free_port());
    let mut server = start_server(&links, http);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = in_netns(&links.server, {
        let stop = stop.clone();
        move || publish(http, stop)
    });
    let started = Instant::now();
    let until = started + RUN;
    let subscribers: Vec<JoinHandle<Decoder>> = links
        .subscribers
        .iter()
        .enumerate()
        .map(|(k, ns)| in_netns(ns, move || subscribe(http, k, until)))
        .collect();
    let decoders: Vec<Decoder> = subscribers.into_iter().map(|s| s.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let frames = publisher.join().unwrap();
    let _ = server.kill();
    let _ = server.wait();

    let judged_from = until - JUDGED;
    let mut report = Vec::new();
    for (k, d) in decoders.iter().enumerate() {
        let mut mix = [0usize; 3];
        for (_, layer) in d.frames.iter().filter(|(t, _)| *t >= judged_from) {
            mix[usize::from(*layer).min(2)] += 1;
        }
        report.push(format!(
            "subscriber {k} ({}): first frame after {:?}, longest freeze {:?}, frames by layer over the last {JUDGED:?} {mix:?}",
            LINKS[k].0.unwrap_or("no cap"),
            d.first_frame.map(|t| t - started),
            d.longest_freeze,
        ));
    }
    let report = report.join("\n");
    eprintln!("{frames} frames published\n{report}");
    for (k, d) in decoders.iter().enumerate() {
        let (_, want, fps) = LINKS[k];
        let judged: Vec<u8> = d
            .frames
            .iter()
            .filter(|(t, _)| *t >= judged_from)
            .map(|(_, l)| *l)
            .collect();
        // Decoding all along: most of its frame rate, and at half the frame rate not
        // many more.
        let per_second = judged.len() as u32 / JUDGED.as_secs() as u32;
        assert!(per_second >= fps * 8 / 10, "subscriber {k}: {report}");
        assert!(per_second <= fps * 11 / 10, "subscriber {k}: {report}");
        let on_its_layer = judged.iter().filter(|&&l| l == want).count();
        assert!(
            on_its_layer * 10 >= judged.len() * 9,
            "subscriber {k}: {report}"
        );
        assert!(d.longest_freeze <= MAX_FREEZE, "subscriber {k}: {report}");
    }
}
