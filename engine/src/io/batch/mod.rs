//! Batched UDP system calls: `recvmmsg` and `sendmmsg` (Linux), with UDP GSO for runs
//! of datagrams to one destination and UDP GRO for runs from one source. The engine's
//! only `unsafe` code lives here (`recv.rs`, `send.rs`), each block with the invariant it
//! relies on. Public so that the load generator (`bench`) moves its datagrams with the
//! same code as the shards.

mod recv;
mod send;

pub use recv::{BATCH, Message, RecvBatch, enable_arrival_times, enable_gro};
pub use send::BatchSender;

#[cfg(test)]
mod tests {
    use super::send::gso_run;
    use super::*;
    use crate::shard::Datagram;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime};

    /// Every datagram of the first `n` messages: source, bytes, too long.
    fn received(batch: &RecvBatch, n: usize) -> Vec<(SocketAddr, Vec<u8>, bool)> {
        (0..n)
            .flat_map(|i| {
                let m = batch.message(i).unwrap();
                m.datagrams()
                    .map(move |(d, too_long)| (m.source, d.to_vec(), too_long))
            })
            .collect()
    }

    #[test]
    fn batches_round_trip_over_loopback() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let to = b.local_addr().unwrap();
        let datagrams: Vec<Datagram> = (0..40u8)
            .map(|i| Datagram {
                to,
                data: vec![i; 10 + i as usize],
            })
            .collect();
        assert_eq!(
            BatchSender::new().send(a.as_raw_fd(), &datagrams).unwrap(),
            40
        );
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while got.len() < 40 && std::time::Instant::now() < deadline {
            let n = batch.recv(b.as_raw_fd()).unwrap();
            for (from, data, too_long) in received(&batch, n) {
                assert_eq!(from, a.local_addr().unwrap());
                assert!(!too_long);
                got.push(data);
            }
        }
        let expected: Vec<Vec<u8>> = datagrams.into_iter().map(|d| d.data).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn arrival_times_are_reported_only_when_asked_for() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stamped = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_arrival_times(stamped.as_raw_fd()).unwrap();
        let before = SystemTime::now();
        for s in [&plain, &stamped] {
            a.send_to(b"hello", s.local_addr().unwrap()).unwrap();
        }
        let after = SystemTime::now();
        let mut batch = RecvBatch::new();
        for (s, want_stamp) in [(&plain, false), (&stamped, true)] {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            // Block until the datagram is there, then take it with recvmmsg.
            let mut peek = [0u8; 8];
            s.peek_from(&mut peek).unwrap();
            assert_eq!(batch.recv(s.as_raw_fd()).unwrap(), 1);
            assert_eq!(received(&batch, 1)[0].1, b"hello");
            match batch.message(0).unwrap().arrived {
                Some(t) => {
                    assert!(want_stamp, "a stamp nobody asked for");
                    // The kernel's clock may be a little coarser than ours.
                    let slack = Duration::from_millis(10);
                    assert!(t + slack >= before && t <= after + slack, "{t:?}");
                }
                None => assert!(!want_stamp, "no stamp on the socket that asked"),
            }
        }
    }

    #[test]
    fn runs_to_one_destination_go_as_gso_and_arrive_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&b, &c] {
            s.set_nonblocking(true).unwrap();
            // Room for the whole burst: a drop here would be the receiver's, not ours.
            let _ = socket2::SockRef::from(s).set_recv_buffer_size(4 << 20);
        }
        let (tb, tc) = (b.local_addr().unwrap(), c.local_addr().unwrap());
        // b: runs of equal sizes with shorter tails and a size change; c: odd sizes.
        let mut datagrams = Vec::new();
        for i in 0..150u8 {
            let len = if i % 7 == 6 { 300 } else { 1000 };
            datagrams.push(Datagram {
                to: tb,
                data: vec![i; len],
            });
            if i % 3 == 0 {
                datagrams.push(Datagram {
                    to: tc,
                    data: vec![i; 50 + i as usize],
                });
            }
        }
        let runs: Vec<usize> = {
            let mut r = Vec::new();
            let mut at = 0;
            while at < datagrams.len() {
                let n = gso_run(&datagrams[at..], true);
                r.push(n);
                at += n;
            }
            r
        };
        assert_eq!(runs.iter().sum::<usize>(), datagrams.len());
        assert_eq!(gso_run(&datagrams, false), 1);
        // Sorted by destination, as the shard's flush does, b's datagrams form runs.
        let mut sorted = datagrams;
        sorted.sort_by_key(|d| d.to);
        let at = sorted.iter().position(|d| d.to == tb).unwrap();
        assert!(gso_run(&sorted[at..], true) > 1);
        let mut sender = BatchSender::new();
        let mut sent = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut batch = RecvBatch::new();
        let mut got_b = Vec::new();
        let mut got_c = Vec::new();
        while (got_b.len() < 150 || got_c.len() < 50) && std::time::Instant::now() < deadline {
            // A few at a time between reads: the kernel may cap the receive buffer below
            // what was asked (rmem_max), and a loaded machine reads late.
            if sent < sorted.len() {
                let end = (sent + 32).min(sorted.len());
                sent += sender.send(a.as_raw_fd(), &sorted[sent..end]).unwrap();
            }
            for (sock, got) in [(&b, &mut got_b), (&c, &mut got_c)] {
                let n = batch.recv(sock.as_raw_fd()).unwrap();
                got.extend(received(&batch, n).into_iter().map(|d| d.1));
            }
        }
        let want = |to| {
            sorted
                .iter()
                .filter(|d| d.to == to)
                .map(|d| d.data.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(got_b, want(tb), "b: every datagram, in order, intact");
        assert_eq!(got_c, want(tc));
    }

    #[test]
    fn oversized_datagram_is_flagged() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(&[1u8; 3000], b.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            if batch.recv(b.as_raw_fd()).unwrap() == 1 {
                break;
            }
            assert!(std::time::Instant::now() < deadline);
        }
        assert_eq!(
            received(&batch, 1),
            vec![(a.local_addr().unwrap(), vec![1u8; 3000], true)]
        );
    }

    #[test]
    fn a_gso_run_arrives_as_one_gro_message_and_is_cut_back_into_its_datagrams() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        enable_gro(b.as_raw_fd()).expect("UDP_GRO (Linux 5.0+)");
        let to = b.local_addr().unwrap();
        // Two runs: 10 of 1200 bytes with a 700-byte tail, then 3 of 100.
        let mut datagrams: Vec<Datagram> = (0..11u8)
            .map(|i| Datagram {
                to,
                data: vec![i; if i == 10 { 700 } else { 1200 }],
            })
            .collect();
        datagrams.extend((0..3u8).map(|i| Datagram {
            to,
            data: vec![100 + i; 100],
        }));
        let mut sender = BatchSender::new();
        let mut sent = 0;
        while sent < datagrams.len() {
            sent += sender.send(a.as_raw_fd(), &datagrams[sent..]).unwrap();
        }
        let mut batch = RecvBatch::new();
        let (mut got, mut messages) = (Vec::new(), 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while got.len() < datagrams.len() && std::time::Instant::now() < deadline {
            let n = batch.recv(b.as_raw_fd()).unwrap();
            messages += n;
            got.extend(received(&batch, n));
        }
        let want: Vec<_> = datagrams
            .iter()
            .map(|d| (a.local_addr().unwrap(), d.data.clone(), false))
            .collect();
        assert_eq!(got, want, "every datagram, in order, intact");
        if sender.gso() {
            // On loopback a GSO send is never cut on the way: each run is one message.
            assert_eq!(messages, 2, "two runs, two messages");
        }
    }

    #[test]
    fn a_datagram_the_network_refuses_is_skipped_and_the_rest_go_on() {
        let a = UdpSocket::bind("0.0.0.0:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let to = b.local_addr().unwrap();
        // 255.255.255.255 without SO_BROADCAST: the kernel refuses it (EACCES).
        let refused: SocketAddr = "255.255.255.255:9".parse().unwrap();
        let datagrams = vec![
            Datagram {
                to: refused,
                data: vec![1; 10],
            },
            Datagram {
                to,
                data: vec![2; 10],
            },
        ];
        let mut sender = BatchSender::new();
        assert_eq!(sender.send(a.as_raw_fd(), &datagrams).unwrap(), 2);
        let mut batch = RecvBatch::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let mut got = Vec::new();
        while got.is_empty() && std::time::Instant::now() < deadline {
            let n = batch.recv(b.as_raw_fd()).unwrap();
            got.extend(received(&batch, n).into_iter().map(|d| d.1));
        }
        assert_eq!(got, vec![vec![2; 10]]);
        // A closed descriptor is the socket's fault: an error, not a skip.
        assert!(sender.send(-1, &datagrams[1..]).is_err());
    }
}
