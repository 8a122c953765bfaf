//! `peer-calls play` as a user runs it: the real binary publishes into a room on the
//! real server (in-process, loopback), fed by ffmpeg over RTP, by files ffmpeg wrote,
//! or by a hand-made RTP source; a str0m subscriber in the room checks what arrives.
//!
//! ffmpeg (Debian's package) is installed by `scripts/setup.d/20-ffmpeg.sh`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::{Connection, PeerEvent, ReceivedRtp, SessionEvent};
use protocol::{ServerMessage, TrackInfo};
use signaling::app::AppConfig;
use signaling::server::{RunningServer, ServerConfig, start};
use signaling::transport::Limits;
use str0m::format::{Codec, detect_h264_keyframe, detect_vp8_keyframe, detect_vp9_keyframe};
use str0m::media::{MediaKind, Mid};

use crate::support::LOCALHOST;

const BIN: &str = env!("CARGO_BIN_EXE_peer-calls");

fn server() -> RunningServer {
    server_at(SocketAddr::new(LOCALHOST, 0))
}

fn server_at(http: SocketAddr) -> RunningServer {
    start(ServerConfig {
        http,
        ..crate::support::config(2, AppConfig::default(), Limits::default())
    })
    .expect("server starts")
}

fn room_url(server: &RunningServer, room: &str) -> String {
    format!("http://{}/call/{room}", server.http_addr)
}

/// A UDP port `p` on loopback with `p + 1` free too (RTP and its RTCP).
fn free_rtp_port() -> u16 {
    for _ in 0..100 {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < u16::MAX && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free pair of UDP ports");
}

fn ffmpeg() -> Command {
    let found = Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "ffmpeg is not installed: scripts/test.sh installs it (scripts/setup.d/20-ffmpeg.sh)"
    );
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    c
}

/// A child process that is killed (by its id) when the test ends, however it ends.
struct Proc {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the process starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Self { child, log }
    }

    fn play(args: &[&str]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.arg("play")
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        Self::spawn(cmd)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `play` to its end and returns its exit status and log.
fn play_fails(args: &[&str]) -> (ExitStatus, String) {
    let mut p = Proc::play(args);
    let status = p.wait(Duration::from_secs(20));
    (status, p.log())
}

/// A subscriber in the room: subscribes to every track of one publisher and keeps what
/// it receives.
struct Watcher {
    conn: Connection,
    /// The publisher's peer id and tracks, once seen.
    publisher: Option<String>,
    tracks: Vec<TrackInfo>,
    mids: Vec<(Mid, MediaKind)>,
    rtp: Vec<ReceivedRtp>,
    left: Vec<String>,
}

impl Watcher {
    fn join(server: &RunningServer, room: &str) -> Self {
        let mut conn = Connection::join(server.http_addr, room, "watcher", LOCALHOST).unwrap();
        conn.start_media(&[]).unwrap();
        Self {
            conn,
            publisher: None,
            tracks: Vec::new(),
            mids: Vec::new(),
            rtp: Vec::new(),
            left: Vec::new(),
        }
    }

    fn pump(&mut self, d: Duration) {
        let end = Instant::now() + d;
        loop {
            self.conn.poll(Duration::ZERO).expect("the watcher works");
            while let Some(e) = self.conn.next_event() {
                match e {
                    SessionEvent::Peer(PeerEvent::Rtp(p)) => self.rtp.push(p),
                    SessionEvent::Peer(PeerEvent::MediaAdded { mid, kind, .. }) => {
                        self.mids.push((mid, kind))
                    }
                    SessionEvent::Server(ServerMessage::PeerLeft { peer_id }) => {
                        self.left.push(peer_id)
                    }
                    _ => {}
                }
            }
            if Instant::now() >= end {
                return;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Pumps until `done`, at most `limit`; panics with `what` and the log of `play`.
    fn until(
        &mut self,
        limit: Duration,
        what: &str,
        play: &Proc,
        mut done: impl FnMut(&mut Self) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; play's log:\n{}",
                play.log()
            );
            self.pump(Duration::from_millis(5));
        }
    }

    /// Waits for `count` tracks of another member, then subscribes to them.
    fn subscribe_to_publisher(&mut self, count: usize, play: &Proc) {
        self.until(Duration::from_secs(20), "the tracks of play", play, |w| {
            let me = w.conn.peer_id().to_string();
            let theirs: Vec<TrackInfo> = w
                .conn
                .tracks()
                .iter()
                .filter(|t| t.peer_id != me)
                .cloned()
                .collect();
            if theirs.len() < count {
                return false;
            }
            w.publisher = Some(theirs[0].peer_id.clone());
            w.tracks = theirs;
            true
        });
        let refs = self.tracks.iter().map(|t| t.track.clone()).collect();
        self.conn.subscribe(refs).unwrap();
    }

    fn codec_of(&self, kind: &str) -> String {
        let t = self
            .tracks
            .iter()
            .find(|t| format!("{:?}", t.track.kind).eq_ignore_ascii_case(kind))
            .unwrap_or_else(|| panic!("a {kind} track in {:?}", self.tracks));
        t.codec.mime_type.clone()
    }

    fn received(&self, codec: Codec) -> Vec<&ReceivedRtp> {
        self.rtp.iter().filter(|p| p.codec == Some(codec)).collect()
    }

    fn request_keyframe(&mut self) {
        let video: Vec<Mid> = self
            .mids
            .iter()
            .filter(|(_, k)| *k == MediaKind::Video)
            .map(|(m, _)| *m)
            .collect();
        for mid in video {
            self.conn.peer().request_keyframe(mid).unwrap();
        }
    }

    /// SIGTERM or SIGINT (Ctrl-C) to play: it leaves (the room sees `peer_left`) and
    /// exits 0.
    fn stop_play(&mut self, mut play: Proc, signal: &str) {
        play.signal(signal);
        let status = play.wait(Duration::from_secs(10));
        assert!(
            status.success(),
            "exit status {status:?}; log:\n{}",
            play.log()
        );
        let publisher = self.publisher.clone().unwrap();
        self.until(Duration::from_secs(5), "peer_left of play", &play, |w| {
            w.left.contains(&publisher)
        });
        assert!(play.log().contains("left the room"), "{}", play.log());
    }
}

/// A PLI (RFC 4585) from `sock`, if one has arrived: its media SSRC.
fn pli_on(sock: &UdpSocket) -> Option<u32> {
    let mut buf = [0u8; 1500];
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        let p = &buf[..n];
        if n == 12 && p[0] == 0x81 && p[1] == 206 && p[2..4] == [0, 2] {
            return Some(u32::from_be_bytes([p[8], p[9], p[10], p[11]]));
        }
    }
    None
}

/// Checks a stream's timestamps: each advances by `step` per sequence number.
fn assert_steady(packets: &[&ReceivedRtp], step: u32, what: &str) {
    let mut by_seq: Vec<(u64, u32)> = packets.iter().map(|p| (p.seq, p.time)).collect();
    by_seq.sort_unstable();
    by_seq.dedup_by_key(|p| p.0);
    for w in by_seq.windows(2) {
        let (ds, dt) = (w[1].0 - w[0].0, w[1].1.wrapping_sub(w[0].1));
        assert_eq!(dt, step * ds as u32, "{what}: {:?} then {:?}", w[0], w[1]);
    }
}

/// The ffmpeg command the README gives to feed `play`, with its ports replaced by
/// `video` and `audio`, and a fixed SSRC and a 6 s limit added to each output.
fn readme_ffmpeg(video: &str, audio: &str, ssrcs: [u32; 2]) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("\nffmpeg -re ")
        .expect("the README shows an ffmpeg command that feeds play");
    let mut command = String::new();
    for line in readme[start + 1..].lines() {
        let (part, more) = match line.strip_suffix('\\') {
            Some(p) => (p, true),
            None => (line, false),
        };
        command.push_str(part);
        command.push(' ');
        if !more {
            break;
        }
    }
    let words: Vec<&str> = command.split_whitespace().skip(1).collect();
    let mut args = Vec::new();
    let mut outputs = 0;
    for (i, w) in words.iter().enumerate() {
        if *w == "-f" && words.get(i + 1) == Some(&"rtp") {
            args.extend(["-ssrc".to_string(), ssrcs[outputs.min(1)].to_string()]);
            args.extend(["-t".to_string(), "6".to_string()]);
            outputs += 1;
        }
        args.push(match *w {
            "rtp://127.0.0.1:5004" => video.to_string(),
            "rtp://127.0.0.1:5006" => audio.to_string(),
            other => other.to_string(),
        });
    }
    assert_eq!(outputs, 2, "two RTP outputs in {command}");
    assert!(
        args.iter().any(|a| a == video) && args.iter().any(|a| a == audio),
        "{command}"
    );
    args
}

#[test]
fn ffmpeg_rtp_is_published_and_keyframe_requests_reach_the_source() {
    let server = server();
    let room = "ffmpeg";
    let mut watcher = Watcher::join(&server, room);
    let (video, audio) = (free_rtp_port(), free_rtp_port());
    let rtcp_listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    rtcp_listener.set_nonblocking(true).unwrap();
    let video_rtp = format!("rtp://127.0.0.1:{video}");
    let audio_rtp = format!("rtp://127.0.0.1:{audio}");
    let pli_to = rtcp_listener.local_addr().unwrap().to_string();
    let play = Proc::play(&[
        "--room",
        &room_url(&server, room),
        "--nickname",
        "ffmpeg feed",
        "--video",
        &video_rtp,
        "--audio",
        &audio_rtp,
        "--video-rtcp",
        &pli_to,
        "--input-timeout",
        "1",
    ]);
    watcher.subscribe_to_publisher(2, &play);
    assert_eq!(watcher.codec_of("video"), "video/VP8");
    assert_eq!(watcher.codec_of("audio"), "audio/opus");

    // The README's command, on these ports, for a few seconds, with fixed SSRCs.
    let mut ff = ffmpeg();
    ff.args(readme_ffmpeg(
        &video_rtp,
        &audio_rtp,
        [287454020, 1432778632],
    ));
    let mut source = Proc::spawn(ff);

    let mut pli = None;
    let mut asked = Instant::now();
    watcher.until(
        Duration::from_secs(20),
        "a VP8 keyframe, Opus and a PLI at the source",
        &play,
        |w| {
            if pli.is_none() {
                pli = pli_on(&rtcp_listener);
                if asked.elapsed() > Duration::from_millis(1100)
                    && !w.received(Codec::Vp8).is_empty()
                {
                    w.request_keyframe();
                    asked = Instant::now();
                }
            }
            pli.is_some()
                && w.received(Codec::Vp8)
                    .iter()
                    .any(|p| detect_vp8_keyframe(&p.payload))
                && w.received(Codec::Opus).len() >= 50
        },
    );
    assert_eq!(pli, Some(287454020), "a PLI for ffmpeg's video SSRC");
    assert_steady(&watcher.received(Codec::Opus), 960, "opus");

    // The source stops: play says so and stays in the room.
    let status = source.wait(Duration::from_secs(20));
    assert!(status.success(), "ffmpeg: {}", source.log());
    watcher.until(
        Duration::from_secs(10),
        "play to notice the source stopped",
        &play,
        |_| play.log().contains("still in the room"),
    );
    watcher.pump(Duration::from_millis(200));
    assert!(watcher.left.is_empty(), "play stays in the room");
    watcher.stop_play(play, "-TERM");
    server.stop().expect("the server stops cleanly");
}

/// ffmpeg encodes a test pattern with `encoder` (its arguments) to RTP; play publishes
/// it as `--video-codec codec`; the watcher gets a keyframe as `detect` sees one.
fn ffmpeg_video_as(codec: &str, mime: &str, encoder: &[&str], detect: fn(&[u8]) -> bool) {
    let server = server();
    let mut watcher = Watcher::join(&server, codec);
    let video_rtp = format!("rtp://127.0.0.1:{}", free_rtp_port());
    let play = Proc::play(&[
        "--room",
        &room_url(&server, codec),
        "--video",
        &video_rtp,
        "--video-codec",
        codec,
    ]);
    watcher.subscribe_to_publisher(1, &play);
    assert_eq!(watcher.codec_of("video"), mime);
    let mut ff = ffmpeg();
    ff.args([
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=30",
        "-t",
        "5",
    ])
    .args(encoder)
    .args(["-g", "30", "-f", "rtp", &video_rtp]);
    let _source = Proc::spawn(ff);
    watcher.until(Duration::from_secs(20), "a keyframe", &play, |w| {
        w.rtp
            .iter()
            .any(|p| p.codec.is_some_and(|x| mime.ends_with(&x.to_string())) && detect(&p.payload))
    });
    watcher.stop_play(play, "-TERM");
    server.stop().expect("the server stops cleanly");
}

#[test]
fn ffmpeg_h264_rtp_is_published_as_h264() {
    let x264 = [
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx264",
        "-profile:v",
        "baseline",
    ];
    ffmpeg_video_as(
        "h264",
        "video/H264",
        &[&x264[..], &["-tune", "zerolatency"]].concat(),
        detect_h264_keyframe,
    );
}

#[test]
fn ffmpeg_vp9_rtp_is_published_as_vp9() {
    // ffmpeg's VP9 RTP packetizer is marked experimental.
    ffmpeg_video_as(
        "vp9",
        "video/VP9",
        &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-b:v",
            "500k",
            "-strict",
            "experimental",
        ],
        |p| detect_vp9_keyframe(p) && p[0] & 0x08 != 0,
    );
}

/// A fresh directory for the media a test writes, removed when the test ends, however
/// it ends.
struct MediaDir(PathBuf);

impl std::ops::Deref for MediaDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for MediaDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn media_dir(name: &str) -> MediaDir {
    let dir = std::env::temp_dir().join(format!("peer-calls-play-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    MediaDir(dir)
}

fn encode(dir: &Path, file: &str, args: &[&str]) -> String {
    let path = dir.join(file);
    let out = ffmpeg().args(args).arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path.to_str().unwrap().to_string()
}

/// A VP8 test pattern of `seconds` in an IVF file, a keyframe every `gop` frames.
fn vp8_pattern(dir: &Path, file: &str, seconds: u32, gop: u32) -> String {
    let (seconds, gop) = (seconds.to_string(), gop.to_string());
    encode(
        dir,
        file,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=30",
            "-t",
            &seconds,
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-b:v",
            "300k",
            "-g",
            &gop,
        ],
    )
}

#[test]
fn ivf_and_ogg_files_play_in_a_loop_with_continuous_timestamps() {
    let dir = media_dir("vp8");
    let ivf = vp8_pattern(&dir, "pattern.ivf", 1, 10);
    let ogg = encode(
        &dir,
        "tone.ogg",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "48k",
        ],
    );
    let server = server();
    let room = "files";
    let mut watcher = Watcher::join(&server, room);
    let play = Proc::play(&[
        "--room",
        &room_url(&server, room),
        "--video",
        &ivf,
        "--audio",
        &ogg,
        "--loop",
    ]);
    watcher.subscribe_to_publisher(2, &play);
    assert_eq!(watcher.codec_of("video"), "video/VP8");
    assert_eq!(watcher.codec_of("audio"), "audio/opus");
    // One second of media, played well past its first loop.
    watcher.until(
        Duration::from_secs(20),
        "a keyframe and 1.6 s of audio",
        &play,
        |w| {
            w.received(Codec::Vp8)
                .iter()
                .any(|p| detect_vp8_keyframe(&p.payload))
                && w.received(Codec::Opus).len() >= 80
        },
    );
    assert_steady(&watcher.received(Codec::Opus), 960, "opus across the loop");
    // Video: the first packet of each frame (S bit), 1/30 s apart, across the loop too.
    let mut starts: Vec<(u64, u32)> = watcher
        .received(Codec::Vp8)
        .iter()
        .filter(|p| p.payload[0] & 0x10 != 0)
        .map(|p| (p.seq, p.time))
        .collect();
    starts.sort_unstable();
    assert!(
        starts.len() > 30,
        "more than one pass of video: {}",
        starts.len()
    );
    for w in starts.windows(2) {
        assert_eq!(
            w[1].1.wrapping_sub(w[0].1),
            3000,
            "video frames {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    watcher.stop_play(play, "-INT");
    server.stop().expect("the server stops cleanly");
}

#[test]
fn a_subscriber_of_a_file_starts_at_its_next_keyframe() {
    // One keyframe every 3 s, at the start of each pass: the watcher subscribes a
    // moment after play starts, in the middle of the first group of pictures, and
    // `play` cannot make a keyframe on request.
    let dir = media_dir("gop");
    let ivf = vp8_pattern(&dir, "long-gop.ivf", 3, 90);
    let server = server();
    let room = "long-gop";
    let mut watcher = Watcher::join(&server, room);
    let play = Proc::play(&[
        "--room",
        &room_url(&server, room),
        "--video",
        &ivf,
        "--loop",
    ]);
    watcher.subscribe_to_publisher(1, &play);
    watcher.until(Duration::from_secs(20), "30 packets of video", &play, |w| {
        w.received(Codec::Vp8).len() >= 30
    });
    // Nothing it could not decode came first: its video opens with a keyframe and
    // goes on from there without a gap.
    let mut video = watcher.received(Codec::Vp8);
    video.sort_unstable_by_key(|p| p.seq);
    assert!(
        detect_vp8_keyframe(&video[0].payload),
        "the first packet starts a keyframe"
    );
    assert!(video.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    watcher.stop_play(play, "-INT");
    server.stop().expect("the server stops cleanly");
}

#[test]
fn a_vp9_ivf_file_is_published_as_vp9() {
    let dir = media_dir("vp9");
    let ivf = encode(
        &dir,
        "pattern.ivf",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=30",
            "-t",
            "1",
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-b:v",
            "300k",
            "-g",
            "10",
        ],
    );
    let server = server();
    let room = "vp9";
    let mut watcher = Watcher::join(&server, room);
    let play = Proc::play(&["--room", &room_url(&server, room), "--video", &ivf]);
    watcher.subscribe_to_publisher(1, &play);
    assert_eq!(watcher.codec_of("video"), "video/VP9");
    watcher.until(Duration::from_secs(20), "a VP9 keyframe", &play, |w| {
        w.received(Codec::Vp9)
            .iter()
            .any(|p| detect_vp9_keyframe(&p.payload) && p.payload[0] & 0x08 != 0)
    });
    // Without --loop the file ends and play stays in the room.
    watcher.until(
        Duration::from_secs(10),
        "the end of the file",
        &play,
        |_| play.log().contains("ended; still in the room"),
    );
    assert!(watcher.left.is_empty());
    watcher.stop_play(play, "-TERM");
    server.stop().expect("the server stops cleanly");
}

/// A hand-made VP8 RTP source: `frames` frames of stream `ssrc` from `seq`/`time`, one
/// every 20 ms (the watcher pumping meanwhile). The first frame is a keyframe of 1460
/// bytes (split by play); the others are 200 bytes.
#[allow(clippy::too_many_arguments)]
fn send_vp8(
    from: &UdpSocket,
    to: SocketAddr,
    ssrc: u32,
    seq: u16,
    time: u32,
    frames: u16,
    watcher: &mut Watcher,
    sent: &mut Vec<Vec<u8>>,
) {
    for n in 0..frames {
        let len = if n == 0 { 1460 } else { 200 };
        let mut payload: Vec<u8> = (0..len).map(|i| (i as u16 ^ n) as u8).collect();
        payload[0] = 0x10; // VP8 descriptor: S, partition 0
        payload[1] = if n == 0 { 0x00 } else { 0x01 }; // frame tag: keyframe or not
        let mut p = vec![0x80, 0x80 | 96];
        p.extend_from_slice(&seq.wrapping_add(n).to_be_bytes());
        p.extend_from_slice(&time.wrapping_add(u32::from(n) * 3000).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&payload);
        from.send_to(&p, to).unwrap();
        sent.push(payload);
        watcher.pump(Duration::from_millis(20));
    }
}

#[test]
fn a_restarted_source_keeps_the_stream_continuous_and_pli_goes_to_its_rtcp_port() {
    let server = server();
    let room = "restart";
    let mut watcher = Watcher::join(&server, room);
    let port = free_rtp_port();
    let source_port = free_rtp_port();
    let source = UdpSocket::bind(("127.0.0.1", source_port)).unwrap();
    let source_rtcp = UdpSocket::bind(("127.0.0.1", source_port + 1)).unwrap();
    source_rtcp.set_nonblocking(true).unwrap();
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let play = Proc::play(&[
        "--room",
        &room_url(&server, room),
        "--video",
        &format!("rtp://{to}"),
        "--input-timeout",
        "1",
    ]);
    watcher.subscribe_to_publisher(1, &play);
    watcher.until(Duration::from_secs(10), "the subscription", &play, |w| {
        !w.mids.is_empty()
    });
    watcher.pump(Duration::from_millis(300));

    let mut sent = Vec::new();
    // Stream A wraps its sequence numbers and timestamps.
    send_vp8(
        &source,
        to,
        0xaaaa_0001,
        65_520,
        u32::MAX - 30_000,
        30,
        &mut watcher,
        &mut sent,
    );
    // It stops for longer than --input-timeout; play says so and stays.
    watcher.until(
        Duration::from_secs(10),
        "play to notice the pause",
        &play,
        |_| play.log().contains("still in the room"),
    );
    let pause = Instant::now();
    watcher.pump(Duration::from_millis(300));
    // Stream B: a new SSRC, unrelated numbers.
    send_vp8(
        &source,
        to,
        0xbbbb_0002,
        17,
        12_345,
        30,
        &mut watcher,
        &mut sent,
    );
    let paused = pause.elapsed();

    watcher.until(Duration::from_secs(10), "every packet", &play, |w| {
        let mut seqs: Vec<u64> = w.received(Codec::Vp8).iter().map(|p| p.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs.len() >= 62
    });
    // In sequence order (a retransmission may arrive late), once each.
    let mut got = watcher.received(Codec::Vp8);
    got.sort_by_key(|p| p.seq);
    got.dedup_by_key(|p| p.seq);
    assert_eq!(got.len(), 62, "60 frames, two of them split in two");
    for w in got.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1, "consecutive sequence numbers");
    }
    // Frame times: 3000 apart within each stream; across the restart, about the pause.
    let starts: Vec<u32> = got
        .iter()
        .filter(|p| p.payload[0] & 0x10 != 0)
        .map(|p| p.time)
        .collect();
    assert_eq!(starts.len(), 60);
    for (i, w) in starts.windows(2).enumerate() {
        let d = w[1].wrapping_sub(w[0]);
        if i == 29 {
            let ticks = (paused.as_secs_f64() * 90_000.0) as u32;
            assert!(
                d > 90_000 && d < ticks + 90_000,
                "across the restart: {d} ticks, paused {paused:?}"
            );
        } else {
            assert_eq!(d, 3000, "frame {i}");
        }
    }
    // The split keyframes arrive whole: the descriptor again without S, the marker last.
    for first in [0, 31] {
        let (a, b) = (&got[first], &got[first + 1]);
        assert_eq!(a.time, b.time);
        assert!(!a.marker && b.marker);
        assert_eq!((a.payload[0], b.payload[0]), (0x10, 0x00));
        let whole = [&a.payload[..], &b.payload[1..]].concat();
        assert_eq!(whole, sent[if first == 0 { 0 } else { 30 }]);
        assert!(detect_vp8_keyframe(&a.payload));
    }
    assert!(play.log().contains("started over"), "{}", play.log());
    assert!(play.log().contains("again"), "{}", play.log());

    // A keyframe request reaches the source's RTCP port (its RTP port + 1).
    let mut pli = None;
    let mut asked = Instant::now() - Duration::from_secs(2);
    watcher.until(Duration::from_secs(10), "a PLI at the source", &play, |w| {
        pli = pli_on(&source_rtcp);
        if pli.is_none() && asked.elapsed() > Duration::from_millis(1100) {
            w.request_keyframe();
            asked = Instant::now();
        }
        pli.is_some()
    });
    assert_eq!(pli, Some(0xbbbb_0002), "for the source's current SSRC");
    watcher.stop_play(play, "-TERM");
    server.stop().expect("the server stops cleanly");
}

#[test]
fn unreachable_rooms_taken_ports_and_bad_arguments_are_named() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/call/nowhere");
    // An IVF file with no frames: an input that takes no port another test could take.
    let dir = media_dir("errors");
    let empty_ivf = dir.join("empty.ivf");
    let mut header = b"DKIF\0\0\x20\0VP80".to_vec();
    header.extend_from_slice(&[
        0x40, 1, 0xf0, 0, 30, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    std::fs::write(&empty_ivf, header).unwrap();
    let (status, log) = play_fails(&["--room", &url, "--video", empty_ivf.to_str().unwrap()]);
    assert!(!status.success());
    assert!(
        log.contains(&format!("cannot reach {url}: connection refused")),
        "{log}"
    );

    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (status, log) = play_fails(&[
        "--room",
        &url,
        "--video",
        &format!("rtp://127.0.0.1:{port}"),
    ]);
    assert!(!status.success());
    assert!(log.contains(&format!("UDP port {port} is taken")), "{log}");

    // Checked before any port is bound.
    let (status, log) = play_fails(&[
        "--room",
        &url,
        "--video",
        "rtp://127.0.0.1:5004",
        "--audio",
        "rtp://127.0.0.1:5005",
    ]);
    assert!(!status.success());
    assert!(log.contains("share a port"), "{log}");

    for (args, expected) in [
        (
            vec![
                "--room",
                "http://127.0.0.1:3000/",
                "--audio",
                "rtp://127.0.0.1:5004",
            ],
            "no room in it",
        ),
        (vec!["--room", &url], "nothing to play"),
        (
            vec!["--room", &url, "--video", "/no/such/file.ivf"],
            "cannot open /no/such/file.ivf",
        ),
        (
            vec!["--room", &url, "--video", "rtp://localhost:5004"],
            "numeric IP",
        ),
    ] {
        let (status, log) = play_fails(&args);
        assert!(!status.success(), "{args:?}");
        assert!(log.contains(expected), "{args:?}: {log}");
    }
}

#[test]
fn a_codec_the_server_does_not_offer_is_refused_with_the_choices() {
    let server = server();
    let room = "codecs";
    let mut watcher = Watcher::join(&server, room);
    let port = free_rtp_port();
    let (status, log) = play_fails(&[
        "--room",
        &room_url(&server, room),
        "--video",
        &format!("rtp://127.0.0.1:{port}"),
        "--video-codec",
        "h265",
    ]);
    assert!(!status.success());
    let choice = log
        .lines()
        .find(|l| l.contains("the server does not offer H265; choose "))
        .unwrap_or_else(|| panic!("{log}"));
    for offered in ["vp8", "vp9", "h264", "(--video-codec)"] {
        assert!(choice.contains(offered), "{choice}");
    }
    // It left: the room is empty again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !watcher.conn.peers().is_empty() || watcher.left.is_empty() {
        assert!(Instant::now() < deadline, "play left the room");
        watcher.pump(Duration::from_millis(10));
    }
    server.stop().expect("the server stops cleanly");
}

#[test]
fn play_joins_again_after_the_server_restarts() {
    let dir = media_dir("again");
    let ivf = vp8_pattern(&dir, "pattern.ivf", 1, 10);
    let first = server();
    let addr = first.http_addr;
    let room = "again";
    let mut watcher = Watcher::join(&first, room);
    let play = Proc::play(&["--room", &room_url(&first, room), "--video", &ivf, "--loop"]);
    watcher.subscribe_to_publisher(1, &play);
    watcher.until(Duration::from_secs(10), "video", &play, |w| {
        !w.received(Codec::Vp8).is_empty()
    });
    drop(watcher);
    first.stop().expect("the server stops cleanly");

    // A new server on the same address: play joins again and publishes again.
    let second = server_at(addr);
    let mut watcher = Watcher::join(&second, room);
    watcher.subscribe_to_publisher(1, &play);
    watcher.until(
        Duration::from_secs(15),
        "a keyframe after the restart",
        &play,
        |w| {
            w.received(Codec::Vp8)
                .iter()
                .any(|p| detect_vp8_keyframe(&p.payload))
        },
    );
    assert!(
        play.log().contains("joined the room again"),
        "{}",
        play.log()
    );
    watcher.stop_play(play, "-TERM");
    second.stop().expect("the server stops cleanly");
}
