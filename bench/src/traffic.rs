//! What a synthetic publisher sends, and the stamp every payload carries.
//!
//! - Video: 30 frames a second (configurable), each frame a burst of packets of at most
//!   [`MAX_PACKET`] bytes sent at the frame boundary, sized from the bitrate; a keyframe
//!   ([`KEYFRAME_FACTOR`] × a frame) every keyframe interval and at the next frame after
//!   each PLI/FIR. The marker bit closes each frame; RTP time advances 90 kHz / fps.
//! - Audio: Opus-sized packets (60–160 bytes) every 20 ms, 50 a second.
//! - Simulcast (`--simulcast`): the video goes out as three layers, rids `q`, `h`, `f`,
//!   at a tenth, a third and all of the bitrate (150, 500 and 1500 kbit/s by default,
//!   as the web client sends a 720p camera), each with its own stamps and keyframes
//!   (periodic ones on every layer at once). A layer the server says no tile wants
//!   (`layers`) is paused, as a browser pauses an encoding, and counted as saved; it
//!   resumes with a keyframe.
//!
//! Every payload starts with two bytes of codec header, then a [`Stamp`]: which
//! published stream, its own sequence number (consecutive per stream, independent of
//! RTP's) and the send time, so a subscriber can check every packet and measure latency
//! on the same clock. For video the two bytes are what a VP8 packetizer writes (the
//! payload descriptor, then the frame tag's first byte), so the server sees where each
//! frame and each keyframe begins, as it does with a browser's video.

use std::time::{Duration, Instant};

use str0m::format::Codec;
use str0m::media::Mid;

/// Largest video payload, like a browser's packetizer keeps under the MTU.
pub const MAX_PACKET: usize = 1200;
/// A keyframe is this many times a normal frame.
pub const KEYFRAME_FACTOR: usize = 6;
/// Bytes of codec header before the stamp.
pub const HEADER_LEN: usize = 2;
/// Bytes of codec header and stamp at the start of every payload.
pub const STAMP_LEN: usize = HEADER_LEN + 24;
const MAGIC: u32 = 0xBE4C_0001;
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);

/// What a payload tells its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Which published stream (an index over the whole run).
    pub stream: u32,
    /// Consecutive per stream, from 0.
    pub seq: u64,
    /// Nanoseconds since the run's epoch when it was sent.
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the stamp into the first [`STAMP_LEN`] bytes of `buf`, after the codec
    /// header.
    pub fn write(&self, buf: &mut [u8]) {
        let buf = &mut buf[HEADER_LEN..];
        buf[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        // 4 bytes: the stream index. The sequence number and send time take 8 each.
        buf[4..8].copy_from_slice(&self.stream.to_be_bytes());
        buf[8..16].copy_from_slice(&self.seq.to_be_bytes());
        buf[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads a stamp, if `buf` carries one.
    pub fn read(buf: &[u8]) -> Option<Stamp> {
        if buf.len() < STAMP_LEN {
            return None;
        }
        let buf = &buf[HEADER_LEN..];
        if buf[0..4] != MAGIC.to_be_bytes() {
            return None;
        }
        let u64_at = |i: usize| u64::from_be_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
        Some(Stamp {
            stream: u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes")),
            seq: u64_at(8),
            sent_ns: u64_at(16),
        })
    }
}

/// The simulcast layers' rids, lowest first, as the web client names them.
pub const LAYER_RIDS: [&str; 3] = ["q", "h", "f"];
/// Each layer's bitrate is the video bitrate divided by this (a tenth, a third, all).
const LAYER_DIVISORS: [u32; 3] = [10, 3, 1];

/// How publishers send.
#[derive(Debug, Clone, Copy)]
pub struct TrafficConfig {
    /// Video bitrate of normal frames, kbit/s (of the top layer with simulcast).
    pub video_kbps: u32,
    /// Video frames per second.
    pub fps: u32,
    /// A keyframe at least this often.
    pub keyframe_interval: Duration,
    /// Video in three simulcast layers.
    pub simulcast: bool,
}

impl TrafficConfig {
    /// Stamp streams one published video takes: one per layer.
    pub fn video_streams(&self) -> u32 {
        if self.simulcast {
            LAYER_RIDS.len() as u32
        } else {
            1
        }
    }

    /// The bitrate of video layer `layer` (the only one without simulcast), kbit/s.
    fn layer_kbps(&self, layer: usize) -> u32 {
        if self.simulcast {
            self.video_kbps / LAYER_DIVISORS[layer]
        } else {
            self.video_kbps
        }
    }
}

/// One packet to send now.
#[derive(Debug)]
pub struct Packet {
    /// The sending m-line.
    pub mid: Mid,
    /// Its codec.
    pub codec: Codec,
    /// RTP time.
    pub rtp_time: u32,
    /// Marker bit.
    pub marker: bool,
    /// Its simulcast layer's rid (`None` without simulcast).
    pub rid: Option<&'static str>,
    /// The payload, stamped.
    pub payload: Vec<u8>,
}

/// A small deterministic generator (xorshift), so runs are repeatable.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// One outgoing stream (a published track).
#[derive(Debug)]
struct Source {
    mid: Mid,
    stream: u32,
    /// The next payload sequence number (= packets sent so far).
    seq: u64,
    /// Frames (video) or packets (audio) sent so far, for the schedule and RTP time.
    ticks: u64,
    start: Instant,
    period: Duration,
    /// Video: its simulcast layer (0 without simulcast), and whether it is paused.
    layer: usize,
    paused: bool,
    /// Video: its next frame is a keyframe.
    keyframe_requested: bool,
}

impl Source {
    fn next_due(&self) -> Instant {
        self.start + self.period * self.ticks as u32
    }

    /// Moves past ticks missed by more than one period (a real encoder does not catch
    /// up on frames it never captured). Returns how many were skipped.
    fn skip_missed(&mut self, now: Instant) -> u64 {
        let mut skipped = 0;
        while self.next_due() + self.period <= now {
            self.ticks += 1;
            skipped += 1;
        }
        skipped
    }
}

/// Everything one publisher sends: its video (one source per layer) and audio sources.
/// See the module docs.
#[derive(Debug)]
pub struct Traffic {
    config: TrafficConfig,
    video: Vec<Source>,
    audio: Option<Source>,
    next_keyframe: Instant,
    rng: Rng,
    epoch: Instant,
    /// Keyframes sent.
    pub keyframes: u64,
    /// Keyframes sent because of a PLI/FIR.
    pub keyframes_on_request: u64,
    /// Frames or audio packets skipped because the loop was late.
    pub skipped: u64,
    /// Video payload bytes sent.
    pub video_bytes: u64,
    /// Video payload bytes of paused layers' frames: not sent, saved.
    pub paused_bytes: u64,
    stopped: bool,
}

impl Traffic {
    /// A publisher of `video` and/or `audio` (mid, stream index), starting at `start`
    /// (spread the starts so bursts do not line up). Stamps count from `epoch`. Video
    /// layer `k` stamps stream `video.1 + k`.
    pub fn new(
        config: TrafficConfig,
        video: Option<(Mid, u32)>,
        audio: Option<(Mid, u32)>,
        start: Instant,
        epoch: Instant,
        seed: u64,
    ) -> Self {
        let fps = config.fps.max(1);
        Self {
            config,
            video: video.map_or_else(Vec::new, |(mid, stream)| {
                (0..config.video_streams() as usize)
                    .map(|layer| Source {
                        mid,
                        stream: stream + layer as u32,
                        seq: 0,
                        ticks: 0,
                        start,
                        period: Duration::from_secs(1) / fps,
                        layer,
                        paused: false,
                        keyframe_requested: false,
                    })
                    .collect()
            }),
            audio: audio.map(|(mid, stream)| Source {
                mid,
                stream,
                seq: 0,
                ticks: 0,
                // Audio rides 7 ms behind video so the two do not always coincide.
                start: start + Duration::from_millis(7),
                period: AUDIO_INTERVAL,
                layer: 0,
                paused: false,
                keyframe_requested: false,
            }),
            // The first frame is a keyframe.
            next_keyframe: start,
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            epoch,
            keyframes: 0,
            keyframes_on_request: 0,
            skipped: 0,
            video_bytes: 0,
            paused_bytes: 0,
            stopped: false,
        }
    }

    /// When something is next due, if anything is.
    pub fn next_due(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        // The layers of a video share one schedule.
        let v = self.video.first().map(Source::next_due);
        let a = self.audio.as_ref().map(Source::next_due);
        match (v, a) {
            (Some(v), Some(a)) => Some(v.min(a)),
            (v, a) => v.or(a),
        }
    }

    /// A PLI or FIR arrived, for the layer `rid` names (`None`: every layer): its next
    /// frame is a keyframe.
    pub fn request_keyframe(&mut self, rid: Option<&str>) {
        for v in &mut self.video {
            if rid.is_none_or(|r| LAYER_RIDS.get(v.layer) == Some(&r)) {
                v.keyframe_requested = true;
            }
        }
    }

    /// The server says no tile wants the layers above `max`: they pause, the others
    /// send (a layer that resumes starts with a keyframe, as an encoder does).
    pub fn pause_above(&mut self, max: u8) {
        for v in &mut self.video {
            let paused = v.layer > usize::from(max);
            if v.paused && !paused {
                v.keyframe_requested = true;
            }
            v.paused = paused;
        }
    }

    /// Stops sending for good.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Frames and audio packets due so far, sent or skipped.
    pub fn scheduled(&self) -> u64 {
        // A video's layers share their frames.
        self.video
            .first()
            .into_iter()
            .chain(&self.audio)
            .map(|s| s.ticks)
            .sum()
    }

    /// Packets sent so far on `stream` (its next sequence number).
    pub fn sent(&self, stream: u32) -> u64 {
        self.video
            .iter()
            .chain(&self.audio)
            .find(|s| s.stream == stream)
            .map_or(0, |s| s.seq)
    }

    fn stamp(&self, stream: u32, seq: u64, now: Instant, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len.max(STAMP_LEN)];
        // Filler that is not all zeros, so nothing compresses or special-cases it.
        for (i, b) in p.iter_mut().enumerate().skip(STAMP_LEN) {
            *b = (i as u8).wrapping_mul(31) ^ (seq as u8);
        }
        Stamp {
            stream,
            seq,
            sent_ns: now.saturating_duration_since(self.epoch).as_nanos() as u64,
        }
        .write(&mut p);
        p
    }

    /// Appends to `out` everything due at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Packet>) {
        if self.stopped {
            return;
        }
        if self.video.first().is_some_and(|v| v.next_due() <= now) {
            let periodic = now >= self.next_keyframe;
            if periodic {
                self.next_keyframe = now + self.config.keyframe_interval;
            }
            let fps = self.config.fps.max(1);
            for k in 0..self.video.len() {
                let v = &mut self.video[k];
                let skipped = v.skip_missed(now);
                if k == 0 {
                    self.skipped += skipped; // the layers' frames are one frame
                }
                let requested = v.keyframe_requested;
                let keyframe = requested || periodic;
                let frame = (self.config.layer_kbps(v.layer) as usize * 1000 / 8 / fps as usize)
                    .max(STAMP_LEN);
                let bytes = if keyframe {
                    frame * KEYFRAME_FACTOR
                } else {
                    frame
                };
                let rtp_time = (v.ticks * 90_000 / fps as u64) as u32;
                v.ticks += 1;
                if v.paused {
                    self.paused_bytes += bytes as u64;
                    continue;
                }
                v.keyframe_requested = false;
                if keyframe {
                    self.keyframes += 1;
                    self.keyframes_on_request += u64::from(requested);
                }
                self.video_bytes += bytes as u64;
                let n = bytes.div_ceil(MAX_PACKET);
                let each = bytes.div_ceil(n);
                let (mid, stream, first_seq, layer) = (v.mid, v.stream, v.seq, v.layer);
                v.seq += n as u64;
                let rid = self.config.simulcast.then_some(LAYER_RIDS[layer]);
                for i in 0..n {
                    let mut payload = self.stamp(stream, first_seq + i as u64, now, each);
                    if i == 0 {
                        // VP8: S=1, partition 0 opens the frame; the tag's P bit is 0
                        // for a keyframe. Later packets of the frame continue it (S=0).
                        payload[0] = 0x10;
                        payload[1] = if keyframe { 0x00 } else { 0x01 };
                    }
                    out.push(Packet {
                        mid,
                        codec: Codec::Vp8,
                        rtp_time,
                        marker: i + 1 == n,
                        rid,
                        payload,
                    });
                }
            }
        }
        if let Some(a) = self.audio.as_mut()
            && a.next_due() <= now
        {
            self.skipped += a.skip_missed(now);
            let rtp_time = (a.ticks * 960) as u32;
            let (mid, stream, seq) = (a.mid, a.stream, a.seq);
            a.ticks += 1;
            a.seq += 1;
            let len = 60 + (self.rng.next() % 101) as usize;
            let payload = self.stamp(stream, seq, now, len);
            out.push(Packet {
                mid,
                codec: Codec::Opus,
                rtp_time,
                marker: false,
                rid: None,
                payload,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TrafficConfig {
        TrafficConfig {
            video_kbps: 1500,
            fps: 30,
            keyframe_interval: Duration::from_millis(2500),
            simulcast: false,
        }
    }

    #[test]
    fn stamps_round_trip() {
        let s = Stamp {
            stream: 7,
            seq: 123_456,
            sent_ns: 9_876_543_210,
        };
        let mut buf = [0u8; 40];
        s.write(&mut buf);
        assert_eq!(Stamp::read(&buf), Some(s));
        assert_eq!(Stamp::read(&buf[..10]), None);
        assert_eq!(Stamp::read(&[0u8; 40]), None);
    }

    #[test]
    fn one_second_of_video_and_audio() {
        let t0 = Instant::now();
        let mut t = Traffic::new(
            config(),
            Some((Mid::from("0"), 0)),
            Some((Mid::from("1"), 1)),
            t0,
            t0,
            1,
        );
        let mut out = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_millis(990) {
            t.poll(now, &mut out);
            now = t.next_due().unwrap();
        }
        let video: Vec<&Packet> = out.iter().filter(|p| p.codec == Codec::Vp8).collect();
        let audio: Vec<&Packet> = out.iter().filter(|p| p.codec == Codec::Opus).collect();
        assert_eq!(audio.len(), 50);
        assert!(audio.iter().all(|p| (60..=160).contains(&p.payload.len())));
        // 30 frames: one keyframe (6 × 6250 B = 32 packets) and 29 frames of 6 packets.
        assert_eq!(video.iter().filter(|p| p.marker).count(), 30);
        assert_eq!(video.len(), 32 + 29 * 6);
        assert!(video.iter().all(|p| p.payload.len() <= MAX_PACKET));
        assert_eq!(t.sent(0), video.len() as u64);
        assert_eq!(t.sent(1), 50);
        // Sequence numbers are consecutive from 0.
        for (i, p) in video.iter().enumerate() {
            assert_eq!(Stamp::read(&p.payload).unwrap().seq, i as u64);
        }
        // The server sees one keyframe begin, at the first packet, as it would in a
        // browser's VP8; the first packet of every other frame begins a frame.
        let starts: Vec<usize> = (0..video.len())
            .filter(|&i| engine::keyframe::starts_keyframe(Codec::Vp8, &video[i].payload))
            .collect();
        assert_eq!(starts, [0]);
        let frames = video.iter().filter(|p| p.payload[0] == 0x10).count();
        assert_eq!(frames, 30);
        // A PLI turns the next frame into a keyframe.
        t.request_keyframe(None);
        let before = out.len();
        for _ in 0..10 {
            if t.keyframes_on_request == 1 {
                break;
            }
            now = t.next_due().unwrap();
            t.poll(now, &mut out);
        }
        assert_eq!(t.keyframes_on_request, 1);
        assert!(out.len() - before >= 32);
        t.stop();
        assert_eq!(t.next_due(), None);
    }

    #[test]
    fn simulcast_sends_three_layers_and_pauses_the_unwanted() {
        let t0 = Instant::now();
        let config = TrafficConfig {
            simulcast: true,
            ..config()
        };
        let mut t = Traffic::new(config, Some((Mid::from("0"), 4)), None, t0, t0, 1);
        let second = |t: &mut Traffic, from: Instant| {
            let mut out = Vec::new();
            let mut now = from;
            while now < from + Duration::from_millis(990) {
                t.poll(now, &mut out);
                now = t.next_due().unwrap();
            }
            (out, now)
        };
        let (out, now) = second(&mut t, t0);
        let bytes = |rid: &str| -> usize {
            out.iter()
                .filter(|p| p.rid == Some(rid))
                .map(|p| p.payload.len())
                .sum()
        };
        // 30 frames of each layer, the first a keyframe; 150, 500 and 1500 kbit/s.
        for (rid, kbps, stream) in [("q", 150, 4), ("h", 500, 5), ("f", 1500, 6)] {
            let frames = out
                .iter()
                .filter(|p| p.rid == Some(rid) && p.marker)
                .count();
            assert_eq!(frames, 30, "{rid}");
            let frame = kbps * 1000 / 8 / 30;
            let want = frame * (29 + KEYFRAME_FACTOR);
            assert!(bytes(rid).abs_diff(want) < 30 * 8, "{rid}: {}", bytes(rid));
            let first = out.iter().find(|p| p.rid == Some(rid)).unwrap();
            assert_eq!(Stamp::read(&first.payload).unwrap().stream, stream);
            assert!(engine::keyframe::starts_keyframe(
                Codec::Vp8,
                &first.payload
            ));
        }
        assert_eq!(t.keyframes, 3);
        assert_eq!(t.paused_bytes, 0);
        // No tile wants more than the lowest: h and f pause, and count as saved.
        t.pause_above(0);
        let sent_f = t.sent(6);
        let (out, now) = second(&mut t, now);
        assert!(out.iter().all(|p| p.rid == Some("q")));
        assert_eq!(t.sent(6), sent_f, "nothing more of f");
        assert!(t.paused_bytes > (500 + 1500) * 1000 / 8 * 9 / 10);
        // h is wanted again: it resumes with a keyframe; f stays paused.
        t.pause_above(1);
        let mut now = t.next_due().unwrap().max(now);
        let mut frame = |t: &mut Traffic| {
            let mut out = Vec::new();
            t.poll(now, &mut out);
            now = t.next_due().unwrap();
            let key = |rid: &str| {
                out.iter()
                    .find(|p| p.rid == Some(rid))
                    .map(|p| engine::keyframe::starts_keyframe(Codec::Vp8, &p.payload))
            };
            [key("q"), key("h"), key("f")]
        };
        assert_eq!(frame(&mut t), [Some(false), Some(true), None]);
        // A keyframe request names its layer.
        t.request_keyframe(Some("q"));
        assert_eq!(frame(&mut t), [Some(true), Some(false), None]);
        assert_eq!(frame(&mut t), [Some(false), Some(false), None]);
    }
}
