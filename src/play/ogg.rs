//! Ogg Opus files (RFC 7845): Ogg pages (RFC 3533) carry the packets of a logical
//! stream; the first two packets are the `OpusHead` and `OpusTags` headers and every
//! later one is an Opus packet, sent as one RTP payload. Its duration comes from its TOC
//! byte, at 48 kHz.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::file_in::{Frame, Frames};
use super::packetize::opus_samples;

const PAGE_HEADER: usize = 27;
/// Packets larger than this are not believed (RFC 7845 recommends at most 61 440 bytes
/// for a page; an Opus packet is far smaller).
const MAX_PACKET: usize = 1 << 16;

/// An Ogg Opus file being read. See the module docs.
#[derive(Debug)]
pub(crate) struct OggReader {
    path: PathBuf,
    file: BufReader<File>,
    /// The serial number of the Opus stream (the first stream of the file).
    serial: Option<u32>,
    /// A packet continued on the next page.
    partial: Vec<u8>,
    /// Whole packets read and not yet returned.
    ready: VecDeque<Vec<u8>>,
    /// Samples of the packets returned so far.
    samples: u64,
    /// Channels, from `OpusHead`.
    pub(crate) channels: u8,
}

impl OggReader {
    /// Opens an Ogg file and reads its Opus headers.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let name = path.display();
        let file = File::open(path).map_err(|e| format!("cannot open {name}: {e}"))?;
        let mut r = Self {
            path: path.to_path_buf(),
            file: BufReader::new(file),
            serial: None,
            partial: Vec::new(),
            ready: VecDeque::new(),
            samples: 0,
            channels: 0,
        };
        r.read_headers()?;
        Ok(r)
    }

    fn read_headers(&mut self) -> Result<(), String> {
        let name = self.path.display().to_string();
        let head = self
            .next_packet()?
            .ok_or_else(|| format!("{name} is not an Ogg file (no packet in it)"))?;
        if head.len() < 19 || &head[..8] != b"OpusHead" {
            return Err(format!(
                "{name} is not an Ogg Opus file (its first stream is not Opus)"
            ));
        }
        self.channels = head[9];
        let tags = self
            .next_packet()?
            .ok_or_else(|| format!("{name} ends after its OpusHead"))?;
        if tags.len() < 8 || &tags[..8] != b"OpusTags" {
            return Err(format!("{name} is not an Ogg Opus file (no OpusTags)"));
        }
        Ok(())
    }

    /// The next packet of the stream, headers included.
    fn next_packet(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(Some(p));
            }
            if !self.read_page()? {
                return Ok(None);
            }
        }
    }

    /// Reads one page; `false` at the end of the file.
    fn read_page(&mut self) -> Result<bool, String> {
        let name = self.path.display();
        let mut h = [0u8; PAGE_HEADER];
        match self.file.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(format!("cannot read {name}: {e}")),
        }
        if &h[0..4] != b"OggS" || h[4] != 0 {
            return Err(format!("{name} is not an Ogg file (bad page header)"));
        }
        let continued = h[5] & 0x01 != 0;
        let serial = u32::from_le_bytes([h[14], h[15], h[16], h[17]]);
        let segments = usize::from(h[26]);
        let mut lacing = vec![0u8; segments];
        let mut body = Vec::new();
        let ok = self.file.read_exact(&mut lacing).is_ok() && {
            let len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
            body.resize(len, 0);
            self.file.read_exact(&mut body).is_ok()
        };
        if !ok {
            // Cut short: the end of the file.
            return Ok(false);
        }
        let serial_of_stream = *self.serial.get_or_insert(serial);
        if serial != serial_of_stream {
            // Another logical stream (a video stream muxed in, say): not ours.
            return Ok(true);
        }
        if !continued {
            self.partial.clear();
        }
        let mut at = 0;
        for &l in &lacing {
            let l = usize::from(l);
            self.partial.extend_from_slice(&body[at..at + l]);
            at += l;
            if self.partial.len() > MAX_PACKET {
                return Err(format!(
                    "{name} is corrupt: a packet over {MAX_PACKET} bytes"
                ));
            }
            if l < 255 {
                self.ready.push_back(std::mem::take(&mut self.partial));
            }
        }
        Ok(true)
    }
}

impl Frames for OggReader {
    fn clock_rate(&self) -> u32 {
        48_000
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        loop {
            let Some(data) = self.next_packet()? else {
                return Ok(None);
            };
            // An empty or unparseable packet carries nothing to play.
            let Some(samples) = opus_samples(&data) else {
                continue;
            };
            let time = self.samples;
            self.samples += u64::from(samples);
            return Ok(Some(Frame {
                time,
                duration: u64::from(samples),
                data,
            }));
        }
    }

    fn rewind(&mut self) -> Result<(), String> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| format!("cannot rewind {}: {e}", self.path.display()))?;
        self.serial = None;
        self.partial.clear();
        self.ready.clear();
        self.samples = 0;
        self.read_headers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One Ogg page holding `packets` (CRC left zero: the reader does not check it).
    fn page(serial: u32, flags: u8, packets: &[&[u8]], last_open: bool) -> Vec<u8> {
        let mut lacing = Vec::new();
        let mut body = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let mut n = p.len();
            while n >= 255 {
                lacing.push(255);
                n -= 255;
            }
            if !(last_open && i + 1 == packets.len()) {
                lacing.push(n as u8);
            }
            body.extend_from_slice(p);
        }
        let mut out = b"OggS".to_vec();
        out.push(0);
        out.push(flags);
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&serial.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.push(lacing.len() as u8);
        out.extend_from_slice(&lacing);
        out.extend_from_slice(&body);
        out
    }

    fn head() -> Vec<u8> {
        let mut h = b"OpusHead".to_vec();
        h.extend_from_slice(&[1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        h
    }

    #[test]
    fn reads_opus_packets_across_pages_and_streams() {
        let big: Vec<u8> = std::iter::once(0xfc)
            .chain(std::iter::repeat_n(7, 599))
            .collect();
        let mut file = page(9, 0x02, &[&head()], false);
        file.extend(page(9, 0, &[b"OpusTags\0\0\0\0\0\0\0\0"], false));
        file.extend(page(4, 0x02, &[b"other stream"], false));
        file.extend(page(9, 0, &[&[0xfc, 1], &big[..255]], true));
        file.extend(page(9, 0x01, &[&big[255..]], false));
        file.extend(page(9, 0x04, &[&[0xf9, 2, 3]], false));
        let path = std::env::temp_dir().join(format!("play-ogg-{}.ogg", std::process::id()));
        std::fs::write(&path, &file).unwrap();

        let mut r = OggReader::open(&path).unwrap();
        assert_eq!(r.channels, 2);
        let frames: Vec<Frame> = std::iter::from_fn(|| r.next_frame().unwrap()).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].data, [0xfc, 1]);
        assert_eq!(frames[1].data, big, "a packet continued on the next page");
        assert_eq!(
            frames
                .iter()
                .map(|f| (f.time, f.duration))
                .collect::<Vec<_>>(),
            [(0, 960), (960, 960), (1920, 1920)]
        );
        r.rewind().unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap().data, [0xfc, 1]);
        std::fs::remove_file(&path).unwrap();

        std::fs::write(&path, page(1, 2, &[b"\x80theora"], false)).unwrap();
        let err = OggReader::open(&path).unwrap_err();
        assert!(err.contains("not an Ogg Opus file"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
