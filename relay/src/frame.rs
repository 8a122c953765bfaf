//! The frames inside a sealed datagram: a batch of them, each `type (1 byte), length (2
//! bytes, big-endian), body`. What one node tells another about media: an RTP packet of
//! one of its tracks, and the requests that go back (send me this track, stop, a
//! keyframe). Nodes of one cluster run the same build: a codec is an index into the
//! server's fixed codec table.
//!
//! Bytes from the network, though only after they opened under the pair's key: every
//! length is checked, nothing panics (fuzzed by `relay_open` through [`crate::link`]).

/// An RTP packet of a track, as the origin node forwards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpFrame<'a> {
    /// The track's id on its origin node.
    pub track: u64,
    /// Its simulcast layer (0 to 3; 0 without simulcast).
    pub layer: u8,
    /// The codec's index in the server's codec table.
    pub codec: u8,
    /// The publisher's extended sequence number (of its layer).
    pub seq: u64,
    pub time: u32,
    pub marker: bool,
    /// RFC 6464: the level (0 to -127 dBov) and voice activity, if the publisher sent them.
    pub audio_level: Option<(i8, bool)>,
    /// How long before the frame was sent its media was captured, microseconds (the
    /// receiver's capture time is its own clock minus this).
    pub age_us: u32,
    pub payload: &'a [u8],
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    Rtp(RtpFrame<'a>),
    /// Send me this track of yours: a member of mine subscribes to it.
    Subscribe {
        track: u64,
    },
    /// Stop sending me this track: none of my members subscribes any more.
    Unsubscribe {
        track: u64,
    },
    /// A member of mine needs a keyframe of this track of yours (`fir`: a full intra
    /// request, else a picture loss indication; `urgent`: a new subscriber, past the
    /// publisher's once-a-second throttle).
    KeyframeRequest {
        track: u64,
        /// Of this simulcast layer (0 to 3).
        layer: u8,
        fir: bool,
        urgent: bool,
    },
    /// I am here: sent every second to each known node, so each side of a pair knows
    /// whether the other still reaches it.
    Ping,
    /// Packets of this track of yours did not reach me: `first` (the publisher's
    /// extended sequence number) and each of the 16 after it whose bit is set in `more`
    /// (bit 0: `first + 1`), as RTCP's generic NACK names them.
    Nack {
        track: u64,
        /// The simulcast layer whose sequence numbers these are (0 to 3).
        layer: u8,
        first: u64,
        more: u16,
    },
}

const RTP: u8 = 1;
const SUBSCRIBE: u8 = 2;
const UNSUBSCRIBE: u8 = 3;
const KEYFRAME: u8 = 4;
const PING: u8 = 5;
const NACK: u8 = 6;

/// The fixed part of an RTP frame's body: track, codec, seq, time, flags, level, age.
const RTP_FIXED: usize = 8 + 1 + 8 + 4 + 1 + 1 + 4;

/// The bytes `frame` takes in a batch, its type and length included.
pub fn encoded_len(frame: &Frame<'_>) -> usize {
    3 + match frame {
        Frame::Rtp(r) => RTP_FIXED + r.payload.len(),
        Frame::Subscribe { .. } | Frame::Unsubscribe { .. } => 8,
        Frame::KeyframeRequest { .. } => 9,
        Frame::Ping => 0,
        Frame::Nack { .. } => 19,
    }
}

/// Appends `frame` to `out`. A body longer than 65,535 bytes cannot be framed: false.
pub fn encode(frame: &Frame<'_>, out: &mut Vec<u8>) -> bool {
    let body = encoded_len(frame) - 3;
    let Ok(len) = u16::try_from(body) else {
        return false;
    };
    match frame {
        Frame::Rtp(r) => {
            out.push(RTP);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&r.track.to_be_bytes());
            out.push(r.codec);
            out.extend_from_slice(&r.seq.to_be_bytes());
            out.extend_from_slice(&r.time.to_be_bytes());
            let (level, voice) = r.audio_level.unwrap_or((0, false));
            let flags = u8::from(r.marker)
                | (u8::from(r.audio_level.is_some()) << 1)
                | (u8::from(voice) << 2)
                | ((r.layer & 3) << 3);
            out.push(flags);
            out.push(level as u8);
            out.extend_from_slice(&r.age_us.to_be_bytes());
            out.extend_from_slice(r.payload);
        }
        Frame::Subscribe { track } | Frame::Unsubscribe { track } => {
            out.push(if matches!(frame, Frame::Subscribe { .. }) {
                SUBSCRIBE
            } else {
                UNSUBSCRIBE
            });
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&track.to_be_bytes());
        }
        Frame::KeyframeRequest {
            track,
            layer,
            fir,
            urgent,
        } => {
            out.push(KEYFRAME);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&track.to_be_bytes());
            out.push(u8::from(*fir) | (u8::from(*urgent) << 1) | ((layer & 3) << 2));
        }
        Frame::Ping => {
            out.push(PING);
            out.extend_from_slice(&len.to_be_bytes());
        }
        Frame::Nack {
            track,
            layer,
            first,
            more,
        } => {
            out.push(NACK);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&track.to_be_bytes());
            out.extend_from_slice(&first.to_be_bytes());
            out.extend_from_slice(&more.to_be_bytes());
            out.push(layer & 3);
        }
    }
    true
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads one frame's body of type `kind`: None when it is too short or of an unknown
/// type (a newer peer's frame: skipped).
fn decode(kind: u8, b: &[u8]) -> Option<Frame<'_>> {
    match kind {
        RTP if b.len() >= RTP_FIXED => {
            let flags = b[21];
            Some(Frame::Rtp(RtpFrame {
                track: u64_at(b, 0),
                layer: (flags >> 3) & 3,
                codec: b[8],
                seq: u64_at(b, 9),
                time: u32_at(b, 17),
                marker: flags & 1 != 0,
                audio_level: (flags & 2 != 0).then_some((b[22] as i8, flags & 4 != 0)),
                age_us: u32_at(b, 23),
                payload: &b[RTP_FIXED..],
            }))
        }
        SUBSCRIBE if b.len() >= 8 => Some(Frame::Subscribe {
            track: u64_at(b, 0),
        }),
        UNSUBSCRIBE if b.len() >= 8 => Some(Frame::Unsubscribe {
            track: u64_at(b, 0),
        }),
        KEYFRAME if b.len() >= 9 => Some(Frame::KeyframeRequest {
            track: u64_at(b, 0),
            layer: (b[8] >> 2) & 3,
            fir: b[8] & 1 != 0,
            urgent: b[8] & 2 != 0,
        }),
        PING => Some(Frame::Ping),
        NACK if b.len() >= 18 => Some(Frame::Nack {
            track: u64_at(b, 0),
            // A node from before simulcast sent no layer: 0.
            layer: b.get(18).map_or(0, |l| l & 3),
            first: u64_at(b, 8),
            more: u16::from_be_bytes([b[16], b[17]]),
        }),
        _ => None,
    }
}

/// The frames of a batch, up to the first whose length runs past the end; frames of
/// unknown types or too short for their type are skipped.
pub fn frames(mut batch: &[u8]) -> impl Iterator<Item = Frame<'_>> {
    std::iter::from_fn(move || {
        loop {
            if batch.len() < 3 {
                return None;
            }
            let kind = batch[0];
            let len = usize::from(u16::from_be_bytes([batch[1], batch[2]]));
            let body = batch.get(3..3 + len)?;
            batch = &batch[3 + len..];
            if let Some(f) = decode(kind, body) {
                return Some(f);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Frame<'static>> {
        vec![
            Frame::Rtp(RtpFrame {
                track: 0x0001_0000_0000_0007,
                layer: 2,
                codec: 3,
                seq: 70_000,
                time: 0xdead_beef,
                marker: true,
                audio_level: Some((-42, true)),
                age_us: 1_500,
                payload: b"vp8 payload",
            }),
            Frame::Rtp(RtpFrame {
                track: 9,
                layer: 0,
                codec: 0,
                seq: 1,
                time: 2,
                marker: false,
                audio_level: None,
                age_us: 0,
                payload: b"",
            }),
            Frame::Subscribe { track: 5 },
            Frame::Unsubscribe { track: 6 },
            Frame::KeyframeRequest {
                track: 7,
                layer: 0,
                fir: true,
                urgent: false,
            },
            Frame::KeyframeRequest {
                track: 8,
                layer: 2,
                fir: false,
                urgent: true,
            },
            Frame::Ping,
            Frame::Nack {
                track: 9,
                layer: 1,
                first: 70_001,
                more: 0b1010,
            },
        ]
    }

    #[test]
    fn every_frame_reads_back_as_written() {
        let mut batch = Vec::new();
        for f in all() {
            let before = batch.len();
            assert!(encode(&f, &mut batch));
            assert_eq!(batch.len() - before, encoded_len(&f));
        }
        assert_eq!(frames(&batch).collect::<Vec<_>>(), all());
    }

    #[test]
    fn unknown_and_short_frames_are_skipped_and_a_cut_batch_ends() {
        let mut batch = vec![99, 0, 2, 1, 2]; // a frame of a type from the future
        batch.extend_from_slice(&[SUBSCRIBE, 0, 3, 1, 2, 3]); // too short for its type
        encode(&Frame::Subscribe { track: 1 }, &mut batch);
        assert_eq!(
            frames(&batch).collect::<Vec<_>>(),
            [Frame::Subscribe { track: 1 }]
        );
        let mut whole = Vec::new();
        for f in all() {
            encode(&f, &mut whole);
        }
        for cut in 0..whole.len() {
            let n = frames(&whole[..cut]).count();
            assert!(n < all().len(), "cut at {cut}");
        }
    }

    #[test]
    fn a_body_over_64_kib_is_not_framed() {
        let big = vec![0u8; 70_000];
        let f = Frame::Rtp(RtpFrame {
            track: 1,
            layer: 0,
            codec: 0,
            seq: 0,
            time: 0,
            marker: false,
            audio_level: None,
            age_us: 0,
            payload: &big,
        });
        let mut out = Vec::new();
        assert!(!encode(&f, &mut out));
        assert!(out.is_empty());
    }
}
