//! Ogg Opus files (RFC 7845): the `ogg` crate reads the pages (RFC 3533, CRC checked) and
//! joins the packets of the logical streams; the first two packets of the Opus stream are
//! the `OpusHead` and `OpusTags` headers and every later one is an Opus packet, sent as
//! one RTP payload. Its duration comes from its TOC byte, at 48 kHz.

use std::fs::File;
use std::io::{BufReader, ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use ogg::{OggReadError, PacketReader};

use super::file_in::{Frame, Frames};
use super::packetize::opus_samples;

/// An Ogg Opus file being read. See the module docs.
pub(crate) struct OggReader {
    path: PathBuf,
    packets: PacketReader<BufReader<File>>,
    /// The serial number of the Opus stream (the first stream of the file).
    serial: Option<u32>,
    /// Samples of the packets returned so far.
    samples: u64,
    /// Channels, from `OpusHead`.
    pub(crate) channels: u8,
}

impl std::fmt::Debug for OggReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggReader")
            .field("path", &self.path)
            .field("samples", &self.samples)
            .finish()
    }
}

impl OggReader {
    /// Opens an Ogg file and reads its Opus headers.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let name = path.display();
        let file = File::open(path).map_err(|e| anyhow!("cannot open {name}: {e}"))?;
        let mut r = Self {
            path: path.to_path_buf(),
            packets: PacketReader::new(BufReader::new(file)),
            serial: None,
            samples: 0,
            channels: 0,
        };
        r.read_headers()?;
        Ok(r)
    }

    fn read_headers(&mut self) -> anyhow::Result<()> {
        let name = self.path.display().to_string();
        let head = self
            .next_packet()?
            .ok_or_else(|| anyhow!("{name} is not an Ogg file (no packet in it)"))?;
        if head.len() < 19 || &head[..8] != b"OpusHead" {
            return Err(anyhow!(
                "{name} is not an Ogg Opus file (its first stream is not Opus)"
            ));
        }
        self.channels = head[9];
        let tags = self
            .next_packet()?
            .ok_or_else(|| anyhow!("{name} ends after its OpusHead"))?;
        if tags.len() < 8 || &tags[..8] != b"OpusTags" {
            return Err(anyhow!("{name} is not an Ogg Opus file (no OpusTags)"));
        }
        Ok(())
    }

    /// The next packet of the Opus stream, headers included; `None` at the end of the
    /// file (or where a file cut short ends).
    fn next_packet(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            let packet = match self.packets.read_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(OggReadError::ReadError(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(OggReadError::ReadError(e)) => {
                    return Err(anyhow!("cannot read {}: {e}", self.path.display()));
                }
                Err(e) => {
                    return Err(anyhow!(
                        "{} is not a valid Ogg file: {e}",
                        self.path.display()
                    ));
                }
            };
            let serial = *self.serial.get_or_insert(packet.stream_serial());
            // Another logical stream (a video stream muxed in, say) is not ours.
            if packet.stream_serial() == serial {
                return Ok(Some(packet.data));
            }
        }
    }
}

impl Frames for OggReader {
    fn clock_rate(&self) -> u32 {
        48_000
    }

    fn next_frame(&mut self) -> anyhow::Result<Option<Frame>> {
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

    fn rewind(&mut self) -> anyhow::Result<()> {
        self.packets
            .seek_bytes(SeekFrom::Start(0))
            .map_err(|e| anyhow!("cannot rewind {}: {e}", self.path.display()))?;
        self.serial = None;
        self.samples = 0;
        self.read_headers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ogg::{PacketWriteEndInfo, PacketWriter};

    fn head() -> Vec<u8> {
        let mut h = b"OpusHead".to_vec();
        h.extend_from_slice(&[1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        h
    }

    /// A file of `(serial, packet, end of page)`, pages and CRCs written by the crate.
    fn file(packets: &[(u32, &[u8], bool)]) -> Vec<u8> {
        let mut w = PacketWriter::new(Vec::new());
        for (serial, p, end) in packets {
            let end = if *end {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            w.write_packet(p.to_vec(), *serial, end, 0).unwrap();
        }
        w.into_inner()
    }

    #[test]
    fn reads_opus_packets_across_pages_and_streams() {
        let big: Vec<u8> = std::iter::once(0xfc)
            .chain(std::iter::repeat_n(7, 599))
            .collect();
        let tags = b"OpusTags\0\0\0\0\0\0\0\0";
        let bytes = file(&[
            (9, &head(), true),
            (9, tags, true),
            (4, b"other stream", true),
            (9, &[0xfc, 1], false),
            (9, &big, true),
            (9, &[0xf9, 2, 3], true),
        ]);
        let path = std::env::temp_dir().join(format!("play-ogg-{}.ogg", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();

        let mut r = OggReader::open(&path).unwrap();
        assert_eq!(r.channels, 2);
        let frames: Vec<Frame> = std::iter::from_fn(|| r.next_frame().unwrap()).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].data, [0xfc, 1]);
        assert_eq!(frames[1].data, big, "a packet of several segments");
        assert_eq!(
            frames
                .iter()
                .map(|f| (f.time, f.duration))
                .collect::<Vec<_>>(),
            [(0, 960), (960, 960), (1920, 1920)]
        );
        r.rewind().unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap().data, [0xfc, 1]);

        // Cut short in the middle of a page: the file ends there.
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let mut r = OggReader::open(&path).unwrap();
        let n = std::iter::from_fn(|| r.next_frame().unwrap()).count();
        assert_eq!(n, 2);

        // A damaged page fails its CRC: a clear error, not garbage.
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let mut r = OggReader::open(&path).unwrap();
        let err = std::iter::from_fn(|| r.next_frame().transpose())
            .find_map(Result::err)
            .expect("an error");
        assert!(err.to_string().contains("not a valid Ogg file"), "{err}");

        std::fs::write(&path, file(&[(1, b"\x80theora", true)])).unwrap();
        let err = OggReader::open(&path).unwrap_err();
        assert!(err.to_string().contains("not an Ogg Opus file"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
