//! The floor: what forwarding one packet cannot cost less than on this machine, measured
//! in the same run. For each packet size: SRTP protection with str0m's own crypto
//! provider (the profile str0m negotiates between two str0m peers, AEAD-AES-256-GCM,
//! plus the other two profiles for reference), then `sendmmsg` batches of those same
//! protected packets to a loopback socket. A forwarded packet needs at least one
//! protect and one send; every report divides the server's cost by this.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde::Serialize;
use str0m::crypto::from_feature_flags;

use engine::io::batch::{BATCH, BatchSender, RecvBatch};
use engine::shard::Datagram;

/// Video packets: the largest payload plus the RTP header and the AEAD tag.
pub const VIDEO_SIZE: usize = 1200;
/// Opus-sized audio packets.
pub const AUDIO_SIZE: usize = 110;
const RTP_HEADER: usize = 12;
const GCM_TAG: usize = 16;

/// The floor for one packet size, nanoseconds per packet.
#[derive(Debug, Clone, Serialize)]
pub struct SizeFloor {
    /// RTP payload bytes.
    pub payload_bytes: usize,
    /// SRTP AEAD-AES-256-GCM protect (the negotiated profile).
    pub protect_aes256gcm_ns: f64,
    /// SRTP AEAD-AES-128-GCM protect, for reference.
    pub protect_aes128gcm_ns: f64,
    /// SRTP AES-CM + HMAC-SHA1-80 protect, for reference.
    pub protect_aescm_sha1_ns: f64,
    /// One packet's share of a `sendmmsg` of 32 to a loopback socket.
    pub send_batched_ns: f64,
    /// One packet's `send_to` alone, for reference.
    pub send_single_ns: f64,
    /// One packet's share of a UDP GSO send of 16 segments to one destination, for
    /// reference (`null` where the kernel lacks UDP GSO).
    pub send_gso16_ns: Option<f64>,
    /// The floor: negotiated protect + batched send.
    pub floor_ns: f64,
}

/// The floor of this machine. See the module docs.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    /// Video-sized packets.
    pub video: SizeFloor,
    /// Audio-sized packets.
    pub audio: SizeFloor,
    /// Packets measured per size and operation.
    pub packets: usize,
}

impl Floor {
    /// The floor for a mix of forwarded packets (`video_share` of them video), ns.
    pub fn mixed_ns(&self, video_share: f64) -> f64 {
        let v = video_share.clamp(0.0, 1.0);
        v * self.video.floor_ns + (1.0 - v) * self.audio.floor_ns
    }
}

fn per_packet(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n.max(1) as f64
}

/// Runs `f` over `rounds` rounds and returns the fastest round: the least disturbed
/// by the other work on a shared machine.
fn best_of(rounds: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..rounds).map(|_| f()).min().unwrap_or_default()
}

fn measure_size(payload_bytes: usize, packets: usize) -> anyhow::Result<SizeFloor> {
    let provider = from_feature_flags();
    let srtp = provider.srtp_provider;
    let payload: Vec<u8> = (0..payload_bytes).map(|i| i as u8).collect();
    let header: [u8; RTP_HEADER] = [0x80, 96, 0, 1, 0, 0, 0, 1, 0x12, 0x34, 0x56, 0x78];
    let mut out = vec![vec![0u8; RTP_HEADER + payload_bytes + GCM_TAG]; BATCH];
    let rounds = 5;
    let per_round = packets / rounds;

    let mut gcm256 = srtp.aead_aes_256_gcm().create_cipher([7; 32], true);
    let protect256 = best_of(rounds, || {
        let t = Instant::now();
        for i in 0..per_round {
            let buf = &mut out[i % BATCH];
            buf[..RTP_HEADER].copy_from_slice(&header);
            let mut iv = [0x5a; 12];
            iv[10..12].copy_from_slice(&(i as u16).to_be_bytes());
            let (h, body) = buf.split_at_mut(RTP_HEADER);
            let _ = gcm256.encrypt(&iv, h, &payload, body);
        }
        t.elapsed()
    });
    let mut gcm128 = srtp.aead_aes_128_gcm().create_cipher([7; 16], true);
    let protect128 = best_of(rounds, || {
        let t = Instant::now();
        for i in 0..per_round {
            let buf = &mut out[i % BATCH];
            buf[..RTP_HEADER].copy_from_slice(&header);
            let mut iv = [0x5a; 12];
            iv[10..12].copy_from_slice(&(i as u16).to_be_bytes());
            let (h, body) = buf.split_at_mut(RTP_HEADER);
            let _ = gcm128.encrypt(&iv, h, &payload, body);
        }
        t.elapsed()
    });
    let mut cm = srtp.aes_128_cm_sha1_80().create_cipher([7; 16], true);
    let hmac = provider.sha1_hmac_provider;
    let protect_cm = best_of(rounds, || {
        let t = Instant::now();
        for i in 0..per_round {
            let buf = &mut out[i % BATCH];
            buf[..RTP_HEADER].copy_from_slice(&header);
            let mut iv = [0x5a; 16];
            iv[12..14].copy_from_slice(&(i as u16).to_be_bytes());
            let end = RTP_HEADER + payload_bytes;
            let _ = cm.encrypt(&iv, &payload, &mut buf[RTP_HEADER..end]);
            let roc = 0u32.to_be_bytes();
            let tag = hmac.sha1_hmac(&[9; 20], &[&buf[..end], &roc]);
            buf[end..end + 10].copy_from_slice(&tag[..10]);
        }
        t.elapsed()
    });

    // The protected packets, sent in batches to a loopback socket that is drained
    // between batches (outside the timing).
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    rx.set_nonblocking(true)?;
    for s in [&rx, &tx] {
        let s = socket2::SockRef::from(s);
        // Best effort: the kernel caps them.
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
    }
    let to = rx.local_addr()?;
    let batch: Vec<Datagram> = out
        .iter()
        .map(|b| Datagram {
            to,
            data: b.clone(),
        })
        .collect();
    let mut drain = RecvBatch::new();
    let mut drain_rx = || while drain.recv(rx.as_raw_fd()).unwrap_or(0) > 0 {};
    let batches = (per_round / BATCH).max(1);
    let mut failed = None;
    let mut plain = BatchSender::without_gso();
    let send_batched = best_of(rounds, || {
        let mut spent = Duration::ZERO;
        for _ in 0..batches {
            let t = Instant::now();
            if let Err(e) = plain.send(tx.as_raw_fd(), &batch) {
                failed = Some(e);
            }
            spent += t.elapsed();
            drain_rx();
        }
        spent
    });
    let send_single = best_of(rounds, || {
        let mut spent = Duration::ZERO;
        for _ in 0..batches {
            let t = Instant::now();
            for d in &batch {
                let _ = tx.send_to(&d.data, d.to);
            }
            spent += t.elapsed();
            drain_rx();
        }
        spent
    });
    let gso_segments = &batch[..batch.len().min(16)];
    let mut gso_ok = true;
    let mut gso = BatchSender::new();
    let send_gso = best_of(rounds, || {
        let mut spent = Duration::ZERO;
        for _ in 0..batches {
            let t = Instant::now();
            // One GSO message each (the run is one destination, equal sizes).
            gso_ok &= gso
                .send(tx.as_raw_fd(), gso_segments)
                .is_ok_and(|n| n == 16);
            gso_ok &= gso
                .send(tx.as_raw_fd(), gso_segments)
                .is_ok_and(|n| n == 16);
            spent += t.elapsed();
            drain_rx();
        }
        spent
    });
    if let Some(e) = failed {
        return Err(anyhow!("loopback send failed: {e}"));
    }
    let sent = batches * BATCH;
    let protect = per_packet(protect256, per_round);
    let send = per_packet(send_batched, sent);
    Ok(SizeFloor {
        payload_bytes,
        protect_aes256gcm_ns: protect,
        protect_aes128gcm_ns: per_packet(protect128, per_round),
        protect_aescm_sha1_ns: per_packet(protect_cm, per_round),
        send_batched_ns: send,
        send_single_ns: per_packet(send_single, sent),
        send_gso16_ns: (gso_ok && gso.gso()).then(|| per_packet(send_gso, batches * 32)),
        floor_ns: protect + send,
    })
}

/// Measures the floor with `packets` packets per size and operation.
pub fn measure(packets: usize) -> anyhow::Result<Floor> {
    let packets = packets.max(5 * BATCH);
    Ok(Floor {
        video: measure_size(VIDEO_SIZE, packets)?,
        audio: measure_size(AUDIO_SIZE, packets)?,
        packets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_something_plausible() {
        let f = measure(320).unwrap();
        for s in [&f.video, &f.audio] {
            assert!(s.protect_aes256gcm_ns > 0.0 && s.send_batched_ns > 0.0);
            assert!((s.floor_ns - s.protect_aes256gcm_ns - s.send_batched_ns).abs() < 1e-6);
        }
        let mixed = f.mixed_ns(0.5);
        assert!(mixed >= f.video.floor_ns.min(f.audio.floor_ns));
        assert!(mixed <= f.video.floor_ns.max(f.audio.floor_ns));
    }
}
