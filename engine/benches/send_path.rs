//! What the engine's own send path costs per forwarded packet, stage by stage and
//! without the kernel: the RTP header written for a subscriber, the SRTP protect into a
//! pooled buffer, the datagram queued for the socket (and its buffer given back after a
//! send of 64). The system calls are the floor's (`peer-calls bench floor`).
//!
//! ```sh
//! cargo bench -p engine --bench send_path
//! ```

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use engine::rtp_header::{self, Fields};
use engine::shard::{Datagram, Outbox};
use engine::srtp::{MAX_RTP_OVERHEAD, OUTPUT_SLACK, Srtp, SrtpKeys};
use str0m::crypto::dtls::SrtpProfile;

/// Packets per round, and rounds (the median is reported).
const PACKETS: usize = 200_000;
const ROUNDS: usize = 5;
/// Datagrams queued before the I/O loop sends (`FLUSH_EVERY`).
const FLUSH_EVERY: usize = 64;

fn keys(profile: SrtpProfile) -> SrtpKeys {
    let (k, s) = match profile {
        SrtpProfile::AEAD_AES_256_GCM => (32, 12),
        SrtpProfile::AEAD_AES_128_GCM => (16, 12),
        _ => (16, 14),
    };
    SrtpKeys {
        material: (0..2 * (k + s)).map(|i| i as u8).collect(),
        profile,
        active: false,
    }
}

/// ns per packet of: header only; header + protect; header + protect + queue.
fn measure(profile: SrtpProfile, payload: usize) -> [f64; 3] {
    let crypto = str0m::crypto::from_feature_flags();
    let mut srtp = Srtp::new(&crypto, &keys(profile), true).expect("keys");
    let payload = vec![0x5au8; payload];
    let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut out = Outbox::default();
    let mut bwe = engine::bwe::Bwe::new(Instant::now());
    let mut stage = |stages: usize| -> f64 {
        let mut best = Vec::new();
        for _ in 0..ROUNDS {
            let start = Instant::now();
            for i in 0..PACKETS {
                let mut head = [0u8; rtp_header::MAX_LEN];
                let fields = Fields {
                    pt: 96,
                    seq: i as u64,
                    time: (i as u32).wrapping_mul(3000),
                    marker: i % 6 == 5,
                    ssrc: 0x1234_5678 + (i % 40) as u32,
                    mid: Some((4, b"3")),
                    audio_level: None,
                    transport_seq: Some((3, bwe.sent(start, 1200))),
                };
                let hlen = rtp_header::write(&mut head, &fields);
                if stages == 1 {
                    black_box(&head[..hlen]);
                    continue;
                }
                let mut buf = out.spare.pop().unwrap_or_default();
                buf.clear();
                buf.resize(hlen + payload.len() + MAX_RTP_OVERHEAD + OUTPUT_SLACK, 0);
                let n = srtp
                    .protect_rtp_into(&head[..hlen], &payload, fields.ssrc, fields.seq, &mut buf)
                    .expect("protects");
                buf.truncate(n);
                if stages == 2 {
                    out.recycle(black_box(buf));
                    continue;
                }
                out.transmits.push(Datagram { to, data: buf });
                if out.transmits.len() >= FLUSH_EVERY {
                    // What the I/O loop does after sendmmsg: sort, then give back.
                    out.transmits.sort_by_key(|d| d.to);
                    let mut sent = std::mem::take(&mut out.transmits);
                    for d in sent.drain(..) {
                        out.recycle(d.data);
                    }
                    out.transmits = sent;
                }
            }
            best.push(start.elapsed().as_nanos() as f64 / PACKETS as f64);
        }
        best.sort_by(f64::total_cmp);
        best[ROUNDS / 2]
    };
    [stage(1), stage(2), stage(3)]
}

fn main() {
    for (name, profile) in [
        ("AEAD-AES-256-GCM", SrtpProfile::AEAD_AES_256_GCM),
        ("AEAD-AES-128-GCM", SrtpProfile::AEAD_AES_128_GCM),
        ("AES-CM-HMAC-SHA1-80", SrtpProfile::AES128_CM_SHA1_80),
    ] {
        for size in [1042, 110] {
            let [header, protect, queue] = measure(profile, size);
            println!(
                "{name}, {size}-byte payload: header {header:.0} ns, + protect {protect:.0} ns, + queue {queue:.0} ns per packet"
            );
        }
    }
}
