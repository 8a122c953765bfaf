//! What a packet costs on the server-to-server transport, without the kernel: framing
//! an RTP packet into a node's batch and sealing the batch (the sending node), then
//! opening it and reading its frames (the receiving node), per packet.
//!
//! ```sh
//! cargo bench -p relay --bench node_link
//! ```

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use relay::NodeIdentity;
use relay::frame::{Frame, RtpFrame};
use relay::link::NodeLink;

const PACKETS: u64 = 100_000;
const ROUNDS: usize = 5;

/// ns per packet: (send side, receive side).
fn measure(payload: usize) -> (f64, f64) {
    let ia = NodeIdentity::new("a").expect("a boot id");
    let ib = NodeIdentity::new("b").expect("a boot id");
    let (at_a, at_b) = (
        SocketAddr::from(([127, 0, 0, 1], 1)),
        SocketAddr::from(([127, 0, 0, 2], 1)),
    );
    let mut a = NodeLink::new(ia.clone(), b"bench secret");
    let mut b = NodeLink::new(ib.clone(), b"bench secret");
    a.set_peer("b", ib.boot, at_b);
    b.set_peer("a", ia.boot, at_a);
    b.send_to("a", &Frame::Subscribe { track: 1 });
    b.flush();
    while let Some((_, mut d)) = b.poll_transmit() {
        a.handle_datagram(at_b, &mut d, |_, _| {});
    }
    let body = vec![0x5au8; payload];
    let (mut send, mut recv) = (Vec::new(), Vec::new());
    let mut seq = 0;
    for _ in 0..ROUNDS {
        // In chunks of 64 packets, each side timed on its own: the datagrams of a chunk
        // are opened before the next is sealed, as on a live link (no memory piles up).
        let mut wire = Vec::with_capacity(64);
        let (mut sending, mut receiving) = (0u128, 0u128);
        let mut frames = 0u64;
        for _ in 0..PACKETS / 64 {
            let start = Instant::now();
            for _ in 0..64 {
                seq += 1;
                a.send_rtp(RtpFrame {
                    track: 1,
                    layer: 0,
                    codec: 1,
                    seq,
                    time: seq as u32 * 3000,
                    marker: false,
                    audio_level: None,
                    age_us: 0,
                    payload: &body,
                });
                // A batch per receive batch of the origin shard: about one frame each
                // for video at this size, several for audio.
                if seq % 4 == 0 {
                    a.flush();
                }
            }
            a.flush();
            while let Some((_, d)) = a.poll_transmit() {
                wire.push(d);
            }
            sending += start.elapsed().as_nanos();
            let start = Instant::now();
            for mut d in wire.drain(..) {
                b.handle_datagram(at_a, &mut d, |_, f| {
                    black_box(f);
                    frames += 1;
                });
            }
            receiving += start.elapsed().as_nanos();
        }
        let n = PACKETS / 64 * 64;
        assert_eq!(frames, n, "every packet arrived");
        send.push(sending as f64 / n as f64);
        recv.push(receiving as f64 / n as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut send), median(&mut recv))
}

fn main() {
    for payload in [1_200, 100] {
        let (send, recv) = measure(payload);
        println!(
            "{payload}-byte payload: send (frame + seal) {send:.0} ns, receive (open + frames) {recv:.0} ns per packet"
        );
    }
}
