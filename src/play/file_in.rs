//! A media file played in real time: frames are read one ahead, each is sent when its
//! time comes (relative to a start instant shared by all the files played, so audio
//! and video stay in sync), and `--loop` starts the file over with timestamps and
//! sequence numbers that carry on.

use std::time::{Duration, Instant};

use super::Packet;
use super::packetize::{MAX_PAYLOAD, Payloader};

/// Falling this far behind the schedule (the process was stopped, say) resets the
/// schedule instead of sending everything missed at once.
const MAX_LATE: Duration = Duration::from_secs(1);

/// One frame of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Presentation time in clock-rate ticks from the file's time origin.
    pub(crate) time: u64,
    /// How long it lasts, in ticks (for where a loop's next pass starts).
    pub(crate) duration: u64,
    /// The encoded frame.
    pub(crate) data: Vec<u8>,
}

/// A file's frames, in order.
pub(crate) trait Frames: std::fmt::Debug {
    /// RTP clock rate of the times.
    fn clock_rate(&self) -> u32;
    /// The next frame, or `None` at the end.
    fn next_frame(&mut self) -> anyhow::Result<Option<Frame>>;
    /// Back to the first frame.
    fn rewind(&mut self) -> anyhow::Result<()>;
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct FileInput {
    /// The file, for messages.
    pub(crate) name: String,
    frames: Box<dyn Frames>,
    payloader: Payloader,
    clock_rate: u32,
    looped: bool,
    /// When position 0 is due; `None` until playing starts.
    start: Option<Instant>,
    /// Ticks of the passes played before this one.
    offset: u64,
    /// Time of this pass's first frame.
    first: Option<u64>,
    /// End of this pass so far (ticks after its first frame).
    end: u64,
    next: Option<Frame>,
    next_seq: u64,
    time_base: u32,
    ended: bool,
    /// Passes started (for messages).
    pub(crate) passes: u64,
}

impl FileInput {
    /// A file input; `time_base` is its first RTP timestamp.
    pub(crate) fn new(
        name: String,
        frames: Box<dyn Frames>,
        payloader: Payloader,
        looped: bool,
        time_base: u32,
    ) -> Self {
        Self {
            name,
            clock_rate: frames.clock_rate(),
            frames,
            payloader,
            looped,
            start: None,
            offset: 0,
            first: None,
            end: 0,
            next: None,
            next_seq: 100,
            time_base,
            ended: false,
            passes: 1,
        }
    }

    /// Starts playing: the first frame is due at `at`.
    pub(crate) fn begin(&mut self, at: Instant) {
        self.start.get_or_insert(at);
    }

    /// The file ended (and does not loop).
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// When the next frame is due, if one is.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let start = self.start?;
        let frame = self.next.as_ref()?;
        Some(start + self.ticks_to_duration(self.position(frame)))
    }

    /// Sends every frame that is due by `now` into `out`.
    pub(crate) fn poll(&mut self, now: Instant, out: &mut Vec<Packet>) -> anyhow::Result<()> {
        let Some(mut start) = self.start else {
            return Ok(());
        };
        loop {
            if self.next.is_none() {
                self.next = self.read()?;
            }
            let Some(frame) = self.next.as_ref() else {
                return Ok(());
            };
            let position = self.position(frame);
            let mut due = start + self.ticks_to_duration(position);
            if due > now {
                return Ok(());
            }
            if now.duration_since(due) > MAX_LATE {
                tracing::debug!(file = %self.name, "behind schedule: catching up");
                start = now
                    .checked_sub(self.ticks_to_duration(position))
                    .unwrap_or(now);
                self.start = Some(start);
                due = now;
            }
            let frame = self.next.take().expect("checked above");
            let time = self.time_base.wrapping_add(position as u32);
            for p in self.payloader.payloads(&frame.data, MAX_PAYLOAD) {
                out.push(Packet {
                    seq: self.next_seq,
                    time,
                    wallclock: due,
                    marker: p.marker,
                    payload: p.data,
                });
                self.next_seq += 1;
            }
        }
    }

    /// Ticks from the start of playing to `frame`.
    fn position(&self, frame: &Frame) -> u64 {
        self.offset + frame.time.saturating_sub(self.first.unwrap_or(frame.time))
    }

    fn ticks_to_duration(&self, ticks: u64) -> Duration {
        Duration::from_micros(
            (u128::from(ticks) * 1_000_000 / u128::from(self.clock_rate.max(1))) as u64,
        )
    }

    /// The next frame, starting the file over at its end when looping.
    fn read(&mut self) -> anyhow::Result<Option<Frame>> {
        if self.ended {
            return Ok(None);
        }
        let frame = match self.frames.next_frame()? {
            Some(f) => Some(f),
            None if self.looped && self.end > 0 => {
                self.offset += self.end;
                self.first = None;
                self.end = 0;
                self.frames.rewind()?;
                self.passes += 1;
                tracing::debug!(file = %self.name, pass = self.passes, "playing again from the start");
                self.frames.next_frame()?
            }
            None => None,
        };
        let Some(frame) = frame else {
            self.ended = true;
            return Ok(None);
        };
        let first = *self.first.get_or_insert(frame.time);
        self.end = self
            .end
            .max(frame.time.saturating_sub(first) + frame.duration);
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three 20 ms Opus frames, starting at time 312 (a pre-skip, say).
    #[derive(Debug)]
    struct Three {
        at: usize,
    }

    impl Frames for Three {
        fn clock_rate(&self) -> u32 {
            48_000
        }
        fn next_frame(&mut self) -> anyhow::Result<Option<Frame>> {
            if self.at == 3 {
                return Ok(None);
            }
            self.at += 1;
            Ok(Some(Frame {
                time: 312 + 960 * (self.at as u64 - 1),
                duration: 960,
                data: vec![0xfc, self.at as u8],
            }))
        }
        fn rewind(&mut self) -> anyhow::Result<()> {
            self.at = 0;
            Ok(())
        }
    }

    fn input(looped: bool) -> FileInput {
        FileInput::new(
            "three.ogg".into(),
            Box::new(Three { at: 0 }),
            Payloader::opus(),
            looped,
            u32::MAX - 1_000,
        )
    }

    #[test]
    fn frames_are_sent_when_due() {
        let t0 = Instant::now();
        let mut f = input(false);
        let mut out = Vec::new();
        f.poll(t0, &mut out).unwrap();
        assert!(out.is_empty(), "not started");
        f.begin(t0);
        f.poll(t0, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(f.next_due(), Some(t0 + Duration::from_millis(20)));
        f.poll(t0 + Duration::from_millis(19), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        f.poll(t0 + Duration::from_millis(45), &mut out).unwrap();
        assert_eq!(out.len(), 3);
        assert!(out[0].marker && !out[1].marker);
        assert_eq!(out[2].wallclock, t0 + Duration::from_millis(40));
        f.poll(t0 + Duration::from_secs(1), &mut out).unwrap();
        assert!(f.ended());
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn a_loop_carries_on_with_time_and_sequence() {
        let t0 = Instant::now();
        let mut f = input(true);
        f.begin(t0);
        let mut out = Vec::new();
        f.poll(t0 + Duration::from_millis(150), &mut out).unwrap();
        assert_eq!(out.len(), 8, "frames due at 0, 20, … 140 ms");
        let seqs: Vec<u64> = out.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, (100..108).collect::<Vec<_>>());
        for pair in out.windows(2) {
            assert_eq!(pair[1].time.wrapping_sub(pair[0].time), 960);
        }
        assert_eq!(out[3].payload, [0xfc, 1], "the second pass");
        assert!(!f.ended());
        assert_eq!(f.passes, 3);
    }
}
