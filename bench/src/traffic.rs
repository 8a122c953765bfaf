//! What a synthetic publisher sends, and the stamp every payload carries.
//!
//! - Video: 30 frames a second (configurable), each frame a burst of packets of at most
//!   [`MAX_PACKET`] bytes sent at the frame boundary, sized from the bitrate; a keyframe
//!   ([`KEYFRAME_FACTOR`] × a frame) every keyframe interval and at the next frame after
//!   each PLI/FIR. The marker bit closes each frame; RTP time advances 90 kHz / fps.
//! - Audio: Opus-sized packets (60–160 bytes) every 20 ms, 50 a second.
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

/// How publishers send.
#[derive(Debug, Clone, Copy)]
pub struct TrafficConfig {
    /// Video bitrate of normal frames, kbit/s.
    pub video_kbps: u32,
    /// Video frames per second.
    pub fps: u32,
    /// A keyframe at least this often.
    pub keyframe_interval: Duration,
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

/// Everything one publisher sends: its video and audio sources. See the module docs.
#[derive(Debug)]
pub struct Traffic {
    config: TrafficConfig,
    video: Option<Source>,
    audio: Option<Source>,
    next_keyframe: Instant,
    keyframe_requested: bool,
    rng: Rng,
    epoch: Instant,
    /// Keyframes sent.
    pub keyframes: u64,
    /// Keyframes sent because of a PLI/FIR.
    pub keyframes_on_request: u64,
    /// Frames or audio packets skipped because the loop was late.
    pub skipped: u64,
    stopped: bool,
}

impl Traffic {
    /// A publisher of `video` and/or `audio` (mid, stream index), starting at `start`
    /// (spread the starts so bursts do not line up). Stamps count from `epoch`.
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
            video: video.map(|(mid, stream)| Source {
                mid,
                stream,
                seq: 0,
                ticks: 0,
                start,
                period: Duration::from_secs(1) / fps,
            }),
            audio: audio.map(|(mid, stream)| Source {
                mid,
                stream,
                seq: 0,
                ticks: 0,
                // Audio rides 7 ms behind video so the two do not always coincide.
                start: start + Duration::from_millis(7),
                period: AUDIO_INTERVAL,
            }),
            // The first frame is a keyframe.
            next_keyframe: start,
            keyframe_requested: false,
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            epoch,
            keyframes: 0,
            keyframes_on_request: 0,
            skipped: 0,
            stopped: false,
        }
    }

    /// When something is next due, if anything is.
    pub fn next_due(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let v = self.video.as_ref().map(Source::next_due);
        let a = self.audio.as_ref().map(Source::next_due);
        match (v, a) {
            (Some(v), Some(a)) => Some(v.min(a)),
            (v, a) => v.or(a),
        }
    }

    /// A PLI or FIR arrived: the next frame is a keyframe.
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// Stops sending for good.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Frames and audio packets due so far, sent or skipped.
    pub fn scheduled(&self) -> u64 {
        [&self.video, &self.audio]
            .into_iter()
            .flatten()
            .map(|s| s.ticks)
            .sum()
    }

    /// Packets sent so far on `stream` (its next sequence number).
    pub fn sent(&self, stream: u32) -> u64 {
        [&self.video, &self.audio]
            .into_iter()
            .flatten()
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
        if let Some(v) = self.video.as_mut()
            && v.next_due() <= now
        {
            self.skipped += v.skip_missed(now);
            let keyframe = self.keyframe_requested || now >= self.next_keyframe;
            if keyframe {
                if self.keyframe_requested {
                    self.keyframes_on_request += 1;
                }
                self.keyframes += 1;
                self.keyframe_requested = false;
                self.next_keyframe = now + self.config.keyframe_interval;
            }
            let frame =
                (self.config.video_kbps as usize * 1000 / 8 / self.config.fps.max(1) as usize)
                    .max(STAMP_LEN);
            let bytes = if keyframe {
                frame * KEYFRAME_FACTOR
            } else {
                frame
            };
            let n = bytes.div_ceil(MAX_PACKET);
            let each = bytes.div_ceil(n);
            let rtp_time = (v.ticks * 90_000 / self.config.fps.max(1) as u64) as u32;
            let (mid, stream) = (v.mid, v.stream);
            v.ticks += 1;
            let first_seq = v.seq;
            v.seq += n as u64;
            for i in 0..n {
                let mut payload = self.stamp(stream, first_seq + i as u64, now, each);
                if i == 0 {
                    // VP8: S=1, partition 0 opens the frame; the tag's P bit is 0 for a
                    // keyframe. Later packets of the frame continue it (S=0).
                    payload[0] = 0x10;
                    payload[1] = if keyframe { 0x00 } else { 0x01 };
                }
                out.push(Packet {
                    mid,
                    codec: Codec::Vp8,
                    rtp_time,
                    marker: i + 1 == n,
                    payload,
                });
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
        t.request_keyframe();
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
}
