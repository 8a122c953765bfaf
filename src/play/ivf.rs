//! IVF files (the container libvpx and ffmpeg write VP8 and VP9 into): a 32-byte file
//! header, then frames, each behind a 12-byte header (size, presentation time).

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::file_in::{Frame, Frames};

/// Frames larger than this are not believed (a corrupt size field).
const MAX_FRAME: usize = 16 << 20;
const FILE_HEADER: usize = 32;
const FRAME_HEADER: usize = 12;

/// The codec an IVF file says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IvfCodec {
    /// `VP80`.
    Vp8,
    /// `VP90`.
    Vp9,
}

/// An IVF file being read. See the module docs.
#[derive(Debug)]
pub(crate) struct IvfReader {
    path: PathBuf,
    file: BufReader<File>,
    /// The codec of its frames.
    pub(crate) codec: IvfCodec,
    /// Time base: a pts unit is `num / den` seconds.
    num: u64,
    den: u64,
    /// The last frame's pts, to give each frame a duration.
    last_pts: Option<u64>,
    /// The most recent gap between frames, in 90 kHz ticks.
    last_gap: u64,
    /// Where the first frame starts.
    data_start: u64,
}

impl IvfReader {
    /// Opens an IVF file and reads its header.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let name = path.display();
        let file = File::open(path).map_err(|e| anyhow!("cannot open {name}: {e}"))?;
        let mut file = BufReader::new(file);
        let mut h = [0u8; FILE_HEADER];
        file.read_exact(&mut h)
            .map_err(|_| anyhow!("{name} is not an IVF file (shorter than its header)"))?;
        if &h[0..4] != b"DKIF" {
            return Err(anyhow!("{name} is not an IVF file (no DKIF signature)"));
        }
        let header_len = usize::from(u16::from_le_bytes([h[6], h[7]]));
        let codec = match &h[8..12] {
            b"VP80" => IvfCodec::Vp8,
            b"VP90" => IvfCodec::Vp9,
            other => {
                return Err(anyhow!(
                    "{name} holds {}; play sends VP8 or VP9 from IVF files",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        let den = u64::from(u32::from_le_bytes([h[16], h[17], h[18], h[19]]));
        let num = u64::from(u32::from_le_bytes([h[20], h[21], h[22], h[23]]));
        if den == 0 || num == 0 {
            return Err(anyhow!("{name} has a zero time base"));
        }
        let data_start = header_len.max(FILE_HEADER) as u64;
        if data_start > FILE_HEADER as u64 {
            file.seek(SeekFrom::Start(data_start))
                .map_err(|e| anyhow!("cannot read {name}: {e}"))?;
        }
        // A frame rate of den/num frames a second is the usual frame gap.
        let gap = (90_000 * num / den).max(1);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            codec,
            num,
            den,
            last_pts: None,
            last_gap: gap,
            data_start,
        })
    }

    fn ticks(&self, pts: u64) -> u64 {
        (u128::from(pts) * 90_000 * u128::from(self.num) / u128::from(self.den)) as u64
    }
}

impl Frames for IvfReader {
    fn clock_rate(&self) -> u32 {
        90_000
    }

    fn next_frame(&mut self) -> anyhow::Result<Option<Frame>> {
        let name = self.path.display();
        let mut h = [0u8; FRAME_HEADER];
        match self.file.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(anyhow!("cannot read {name}: {e}")),
        }
        let size = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let pts = u64::from_le_bytes([h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11]]);
        if size > MAX_FRAME {
            return Err(anyhow!("{name} is corrupt: a frame of {size} bytes"));
        }
        let mut data = vec![0; size];
        match self.file.read_exact(&mut data) {
            Ok(()) => {}
            // A file cut short (still being written, or truncated): the last frame is lost.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(anyhow!("cannot read {name}: {e}")),
        }
        if let Some(last) = self.last_pts
            && pts > last
        {
            self.last_gap = self.ticks(pts) - self.ticks(last);
        }
        self.last_pts = Some(pts);
        Ok(Some(Frame {
            time: self.ticks(pts),
            duration: self.last_gap,
            data,
        }))
    }

    fn rewind(&mut self) -> anyhow::Result<()> {
        self.last_pts = None;
        self.file
            .seek(SeekFrom::Start(self.data_start))
            .map(|_| ())
            .map_err(|e| anyhow!("cannot rewind {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivf(fourcc: &[u8; 4], den: u32, num: u32, frames: &[(u64, &[u8])]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(b"DKIF");
        f.extend_from_slice(&0u16.to_le_bytes());
        f.extend_from_slice(&32u16.to_le_bytes());
        f.extend_from_slice(fourcc);
        f.extend_from_slice(&320u16.to_le_bytes());
        f.extend_from_slice(&240u16.to_le_bytes());
        f.extend_from_slice(&den.to_le_bytes());
        f.extend_from_slice(&num.to_le_bytes());
        f.extend_from_slice(&(frames.len() as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        for (pts, data) in frames {
            f.extend_from_slice(&(data.len() as u32).to_le_bytes());
            f.extend_from_slice(&pts.to_le_bytes());
            f.extend_from_slice(data);
        }
        f
    }

    fn write(name: &str, bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("play-ivf-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_frames_with_90khz_times_and_rewinds() {
        let path = write(
            "ok.ivf",
            &ivf(b"VP80", 30, 1, &[(0, &[1, 2]), (1, &[3]), (3, &[4, 5, 6])]),
        );
        let mut r = IvfReader::open(&path).unwrap();
        assert_eq!(r.codec, IvfCodec::Vp8);
        let frames: Vec<Frame> = std::iter::from_fn(|| r.next_frame().unwrap()).collect();
        let times: Vec<u64> = frames.iter().map(|f| f.time).collect();
        assert_eq!(times, [0, 3_000, 9_000]);
        assert_eq!(frames[2].data, [4, 5, 6]);
        assert_eq!(frames[2].duration, 6_000);
        r.rewind().unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap().data, [1, 2]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn refuses_what_it_cannot_play() {
        let path = write("av1.ivf", &ivf(b"AV01", 30, 1, &[]));
        let err = IvfReader::open(&path).unwrap_err();
        assert!(err.to_string().contains("AV01"), "{err}");
        let path2 = write(
            "junk.ivf",
            b"not an ivf file at all, really, no, not at all",
        );
        let err = IvfReader::open(&path2).unwrap_err();
        assert!(err.to_string().contains("not an IVF file"), "{err}");
        let mut corrupt = ivf(b"VP90", 30, 1, &[(0, &[1])]);
        corrupt[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        let path3 = write("corrupt.ivf", &corrupt);
        let mut r = IvfReader::open(&path3).unwrap();
        assert_eq!(r.codec, IvfCodec::Vp9);
        assert!(r.next_frame().unwrap_err().to_string().contains("corrupt"));
        for p in [path, path2, path3] {
            std::fs::remove_file(p).unwrap();
        }
    }
}
