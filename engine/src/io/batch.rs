//! Batched UDP system calls: `recvmmsg` and `sendmmsg` (Linux), with UDP GSO for runs
//! of datagrams to one destination. The engine's only `unsafe` code lives here, each
//! block with the invariant it relies on. Public so that the load generator (`bench`)
//! moves its datagrams with the same code as the shards.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use socket2::{SockAddr, SockAddrStorage};

use crate::shard::Datagram;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram: anything longer than the engine's 1500-byte limit is
/// truncated, seen as too long and dropped, so 2048 is plenty.
const RECV_BUF: usize = 2048;
/// Control-message space per datagram, in `u64`s (aligned as `cmsghdr` needs): room for
/// one `SCM_TIMESTAMPNS` (`CMSG_SPACE(16)` = 32 bytes) with some to spare.
const CONTROL_WORDS: usize = 8;

/// Reusable buffers for `recvmmsg`: no allocation per receive.
pub struct RecvBatch {
    bufs: Box<[[u8; RECV_BUF]; BATCH]>,
    addrs: Box<[libc::sockaddr_storage; BATCH]>,
    controls: Box<[[u64; CONTROL_WORDS]; BATCH]>,
    lens: [usize; BATCH],
    sources: [Option<SocketAddr>; BATCH],
    arrivals: [Option<SystemTime>; BATCH],
}

/// Asks the kernel to stamp every datagram the socket receives with the time it
/// arrived (`SO_TIMESTAMPNS`, the system clock); [`RecvBatch::arrived`] reports it.
/// The load generator uses it to tell the network's and the server's latency from the
/// time a datagram waited in its own socket.
pub fn enable_arrival_times(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and the length passed is its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Empty buffers.
    pub fn new() -> Self {
        Self {
            bufs: Box::new([[0; RECV_BUF]; BATCH]),
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            addrs: Box::new(unsafe { zeroed() }),
            controls: Box::new([[0; CONTROL_WORDS]; BATCH]),
            lens: [0; BATCH],
            sources: [None; BATCH],
            arrivals: [None; BATCH],
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking. `Ok(0)` when none is waiting.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        let mut hdrs: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        for i in 0..BATCH {
            iovecs[i].write(libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: RECV_BUF,
            });
            // SAFETY: mmsghdr is plain old data; zero is valid for every field we do not set.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = size_of::<[u64; CONTROL_WORDS]>() as _;
            hdrs[i].write(h);
        }
        // SAFETY: every header points at a live buffer of RECV_BUF bytes, a live
        // sockaddr_storage and a live control buffer of the length it gives, all owned
        // by `self`, initialised above and outliving the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr().cast(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (i, hdr) in hdrs.iter().enumerate().take(n) {
            // SAFETY: the kernel initialised the first `n` headers.
            let h = unsafe { hdr.assume_init_ref() };
            let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.lens[i] = if truncated {
                RECV_BUF + 1
            } else {
                h.msg_len as usize
            };
            let mut storage = SockAddrStorage::zeroed();
            // SAFETY: both are sockaddr_storage; the view is the same size and alignment.
            unsafe { *storage.view_as::<libc::sockaddr_storage>() = self.addrs[i] };
            // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes.
            let addr = unsafe { SockAddr::new(storage, h.msg_hdr.msg_namelen) };
            self.sources[i] = addr.as_socket();
            self.arrivals[i] = arrival(&h.msg_hdr);
        }
        Ok(n)
    }

    /// When the `i`th datagram of the last `recv` arrived, by the kernel's stamp; `None`
    /// unless [`enable_arrival_times`] was called on the socket.
    pub fn arrived(&self, i: usize) -> Option<SystemTime> {
        self.arrivals.get(i).copied().flatten()
    }

    /// The `i`th datagram of the last `recv`: its source, and its bytes. A truncated
    /// datagram is reported as one byte longer than the buffer so the caller drops it.
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8], bool)> {
        let source = self.sources.get(i).copied().flatten()?;
        let len = self.lens[i];
        let too_long = len > RECV_BUF;
        Some((source, &self.bufs[i][..len.min(RECV_BUF)], too_long))
    }
}

/// The `SCM_TIMESTAMPNS` control message of a received datagram, if the kernel wrote one.
fn arrival(msg: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: `msg` is a header the kernel filled in: its control pointer and length
    // (set to what the kernel wrote) describe initialised bytes of our control buffer,
    // and the CMSG_* macros stay within them. The timestamp is read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                let since_epoch = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
                return SystemTime::UNIX_EPOCH.checked_add(since_epoch);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

/// Datagrams (iovecs) per `sendmmsg` call when GSO packs several into one message.
const MAX_IOVECS: usize = 256;
/// The kernel's limit of segments per UDP GSO send (`UDP_MAX_SEGMENTS`).
const MAX_GSO_SEGMENTS: usize = 64;
/// Bytes per UDP GSO send: one IP datagram's worth, with room for the headers.
const MAX_GSO_BYTES: usize = 65_000;

/// UDP GSO (`UDP_SEGMENT`) is used until the kernel refuses it once, or never when the
/// environment sets `PEERCALLS_UDP_GSO=0`.
///
/// Optimisation (see docs/benchmarks.md): on loopback a `sendmmsg` costs ~3 µs per
/// datagram, almost all of it the kernel's per-datagram trip down the UDP/IP stack; a
/// GSO send makes that trip once for up to 64 datagrams to one destination and cuts
/// them at the end (~0.8 µs per datagram in the floor measurement).
static GSO: std::sync::LazyLock<AtomicBool> = std::sync::LazyLock::new(|| {
    AtomicBool::new(std::env::var("PEERCALLS_UDP_GSO").map_or(true, |v| v != "0"))
});

/// Whether [`send_batch`] still sends runs as UDP GSO (not turned off, not refused).
pub fn gso_enabled() -> bool {
    GSO.load(Ordering::Relaxed)
}

/// How many datagrams from the start of `d` can go as one message: a run to the same
/// destination, all of the first one's size except a last one that may be shorter.
fn gso_run(d: &[Datagram], gso: bool) -> usize {
    let Some(first) = d.first() else { return 0 };
    if !gso {
        return 1;
    }
    let size = first.data.len();
    let mut n = 1;
    let mut bytes = size;
    while n < d.len() && n < MAX_GSO_SEGMENTS {
        let next = &d[n];
        if next.to != first.to || next.data.len() > size || bytes + next.data.len() > MAX_GSO_BYTES
        {
            break;
        }
        n += 1;
        bytes += next.data.len();
        if next.data.len() < size {
            break; // a shorter segment can only be the last
        }
    }
    n
}

/// Sends datagrams with as few `sendmmsg` calls as possible; consecutive datagrams to
/// the same destination of the same size go as one UDP GSO message (see [`GSO`]).
/// Returns how many were sent, always a prefix of `datagrams`: fewer than
/// `datagrams.len()` when the socket buffer is full.
pub fn send_batch(fd: RawFd, datagrams: &[Datagram]) -> io::Result<usize> {
    send(fd, datagrams, true)
}

/// [`send_batch`] with one datagram per message, never GSO: what the floor of
/// `peer-calls bench` measures a batched send as.
pub fn send_batch_without_gso(fd: RawFd, datagrams: &[Datagram]) -> io::Result<usize> {
    send(fd, datagrams, false)
}

fn send(fd: RawFd, datagrams: &[Datagram], allow_gso: bool) -> io::Result<usize> {
    let mut sent = 0;
    while sent < datagrams.len() {
        let gso = allow_gso && GSO.load(Ordering::Relaxed);
        let rest = &datagrams[sent..];
        // Split the next datagrams into messages: (first datagram, datagrams).
        let mut msgs = [(0usize, 0usize); BATCH];
        let (mut nmsgs, mut niov) = (0, 0);
        while nmsgs < BATCH && niov < rest.len() {
            let run = gso_run(&rest[niov..], gso).min(MAX_IOVECS - niov);
            if run == 0 {
                break;
            }
            msgs[nmsgs] = (niov, run);
            nmsgs += 1;
            niov += run;
        }
        let addrs: [Option<SockAddr>; BATCH] =
            std::array::from_fn(|i| (i < nmsgs).then(|| SockAddr::from(rest[msgs[i].0].to)));
        let mut iovecs: [MaybeUninit<libc::iovec>; MAX_IOVECS] =
            [const { MaybeUninit::uninit() }; MAX_IOVECS];
        for (i, d) in rest[..niov].iter().enumerate() {
            iovecs[i].write(libc::iovec {
                iov_base: d.data.as_ptr() as *mut libc::c_void,
                iov_len: d.data.len(),
            });
        }
        // One control buffer per message, for its UDP_SEGMENT size (u64s: aligned).
        let mut controls = [[0u64; 4]; BATCH];
        let mut hdrs: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        for (i, &(first, count)) in msgs[..nmsgs].iter().enumerate() {
            // SAFETY: mmsghdr is plain old data; zero is valid for every field we do not set.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            let Some(addr) = &addrs[i] else { break };
            h.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_namelen = addr.len();
            h.msg_hdr.msg_iov = iovecs[first].as_mut_ptr();
            h.msg_hdr.msg_iovlen = count as _;
            if count > 1 {
                // SAFETY: CMSG_SPACE only computes a size (20 bytes for a u16 on
                // 64-bit Linux: within the 32-byte buffer).
                let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
                h.msg_hdr.msg_control = controls[i].as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = space as _;
                // SAFETY: the header points at a live, aligned buffer of `space` bytes,
                // so CMSG_FIRSTHDR is non-null and its data holds the u16 segment size.
                unsafe {
                    let c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
                    (*c).cmsg_level = libc::SOL_UDP;
                    (*c).cmsg_type = libc::UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                    let size = rest[first].data.len() as u16;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), size);
                }
            }
            hdrs[i].write(h);
        }
        // SAFETY: the first `nmsgs` headers are initialised and point at the datagrams'
        // bytes, `addrs`, `iovecs` and `controls`, which all outlive the call; the kernel
        // only reads them.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                hdrs.as_mut_ptr().cast(),
                nmsgs as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            let refused_gso = msgs[0].1 > 1
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
                );
            if refused_gso {
                // The kernel or the route cannot segment: send one by one from now on.
                tracing::warn!("UDP GSO refused ({e}); sending datagrams one by one");
                GSO.store(false, Ordering::Relaxed);
                continue;
            }
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(sent),
                io::ErrorKind::Interrupted => continue,
                // A datagram the network refuses (no route, message too long) must not
                // stall the others: skip it.
                _ if sent < datagrams.len() => {
                    sent += 1;
                    continue;
                }
                _ => Err(e),
            };
        }
        let n = n as usize;
        sent += msgs[..n].iter().map(|m| m.1).sum::<usize>();
        if n < nmsgs {
            return Ok(sent);
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

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
        assert_eq!(send_batch(a.as_raw_fd(), &datagrams).unwrap(), 40);
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while got.len() < 40 && std::time::Instant::now() < deadline {
            let n = batch.recv(b.as_raw_fd()).unwrap();
            for i in 0..n {
                let (from, data, too_long) = batch.get(i).unwrap();
                assert_eq!(from, a.local_addr().unwrap());
                assert!(!too_long);
                got.push(data.to_vec());
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
            assert_eq!(batch.get(0).unwrap().1, b"hello");
            match batch.arrived(0) {
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
                sent += send_batch(a.as_raw_fd(), &sorted[sent..end]).unwrap();
            }
            for (sock, got) in [(&b, &mut got_b), (&c, &mut got_c)] {
                let n = batch.recv(sock.as_raw_fd()).unwrap();
                for i in 0..n {
                    got.push(batch.get(i).unwrap().1.to_vec());
                }
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
        assert!(batch.get(0).unwrap().2);
    }
}
