//! Batched UDP system calls: `recvmmsg` and `sendmmsg` (Linux), with UDP GSO for runs
//! of datagrams to one destination and UDP GRO for runs from one source. The engine's
//! only `unsafe` code lives here, each block with the invariant it relies on. Public so
//! that the load generator (`bench`) moves its datagrams with the same code as the shards.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, SystemTime};

use socket2::{SockAddr, SockAddrStorage};

use crate::shard::Datagram;

/// Messages per system call.
pub const BATCH: usize = 32;
/// Receive buffer per message: a UDP GRO message (up to 64 segments of one flow) is at
/// most 65,535 bytes.
const SLOT: usize = 1 << 16;
/// A received datagram longer than this is reported as too long: the engine's limit is
/// 1500 bytes, so anything past 2048 is not worth looking at.
const MAX_RECEIVED: usize = 2048;
/// Control-message space per message, in `u64`s (aligned as `cmsghdr` needs): room for
/// one `SCM_TIMESTAMPNS` (`CMSG_SPACE(16)` = 32 bytes) and one `UDP_GRO`
/// (`CMSG_SPACE(4)` = 24 bytes).
const CONTROL_WORDS: usize = 8;

/// Reusable buffers for `recvmmsg`: no allocation per receive.
pub struct RecvBatch {
    /// `BATCH` slots of `SLOT` bytes (on the heap, and touched only as far as used).
    bufs: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage; BATCH]>,
    controls: Box<[[u64; CONTROL_WORDS]; BATCH]>,
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    segment_sizes: [usize; BATCH],
    sources: [Option<SocketAddr>; BATCH],
    arrivals: [Option<SystemTime>; BATCH],
}

/// Asks the kernel to stamp every datagram the socket receives with the time it
/// arrived (`SO_TIMESTAMPNS`, the system clock); [`Message::arrived`] reports it.
/// The load generator uses it to tell the network's and the server's latency from the
/// time a datagram waited in its own socket.
pub fn enable_arrival_times(fd: RawFd) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// Lets the kernel hand over a run of same-sized datagrams from one source as one
/// message (`UDP_GRO`): one socket enqueue, one wake-up and one `recvmmsg` slot for a
/// video frame's burst, and on loopback a sender's GSO run arrives without ever being
/// cut into datagrams. [`Message::datagrams`] cuts it. Fails on kernels before 5.0.
///
/// Optimisation (see docs/benchmarks.md, optimisation 5).
pub fn enable_gro(fd: RawFd) -> io::Result<()> {
    set_int_option(fd, libc::SOL_UDP, libc::UDP_GRO, 1)
}

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length passed is its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
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

/// One received message: a datagram, or with [`enable_gro`] a run of datagrams from one
/// source.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Where it came from.
    pub source: SocketAddr,
    /// When it arrived, by the kernel's stamp; `None` unless [`enable_arrival_times`]
    /// was called on the socket.
    pub arrived: Option<SystemTime>,
    bytes: &'a [u8],
    segment_size: usize,
    truncated: bool,
}

impl<'a> Message<'a> {
    /// Its datagrams in the order they were sent, each with whether it is too long
    /// (over 2048 bytes, `MAX_RECEIVED`) to be looked at. A message the buffer could not
    /// hold is one datagram, too long.
    pub fn datagrams(&self) -> impl Iterator<Item = (&'a [u8], bool)> + use<'a> {
        let (bytes, truncated) = (self.bytes, self.truncated);
        // Without a segment size (or when truncated, or empty) it is one datagram.
        let size = if truncated || self.segment_size == 0 || bytes.is_empty() {
            bytes.len().max(1)
        } else {
            self.segment_size
        };
        let empty = bytes.is_empty().then_some(bytes);
        bytes
            .chunks(size)
            .chain(empty)
            .map(move |d| (d, truncated || d.len() > MAX_RECEIVED))
    }
}

impl RecvBatch {
    /// Empty buffers.
    pub fn new() -> Self {
        Self {
            bufs: vec![0; BATCH * SLOT].into_boxed_slice(),
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            addrs: Box::new(unsafe { zeroed() }),
            controls: Box::new([[0; CONTROL_WORDS]; BATCH]),
            lens: [0; BATCH],
            truncated: [false; BATCH],
            segment_sizes: [0; BATCH],
            sources: [None; BATCH],
            arrivals: [None; BATCH],
        }
    }

    /// Receives up to [`BATCH`] messages without blocking, and says how many; `Ok(0)`
    /// when none is waiting. Fewer than [`BATCH`] means the socket is empty.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        let mut hdrs: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        for (i, slot) in self.bufs.chunks_exact_mut(SLOT).enumerate() {
            iovecs[i].write(libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: SLOT,
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
        // SAFETY: every header points at a live slot of SLOT bytes, a live
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
            self.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.lens[i] = (h.msg_len as usize).min(SLOT);
            let mut storage = SockAddrStorage::zeroed();
            // SAFETY: both are sockaddr_storage; the view is the same size and alignment.
            unsafe { *storage.view_as::<libc::sockaddr_storage>() = self.addrs[i] };
            // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes.
            let addr = unsafe { SockAddr::new(storage, h.msg_hdr.msg_namelen) };
            self.sources[i] = addr.as_socket();
            let control = read_control(&h.msg_hdr);
            self.arrivals[i] = control.arrived;
            self.segment_sizes[i] = control.segment_size;
        }
        Ok(n)
    }

    /// The `i`th message of the last `recv`.
    pub fn message(&self, i: usize) -> Option<Message<'_>> {
        let source = self.sources.get(i).copied().flatten()?;
        let start = i * SLOT;
        Some(Message {
            source,
            arrived: self.arrivals[i],
            bytes: &self.bufs[start..start + self.lens[i]],
            segment_size: self.segment_sizes[i],
            truncated: self.truncated[i],
        })
    }
}

/// What a received message's control messages say.
struct Control {
    /// `SCM_TIMESTAMPNS`, if asked for.
    arrived: Option<SystemTime>,
    /// `UDP_GRO`: the size of each datagram (the last may be shorter); 0 if none.
    segment_size: usize,
}

fn read_control(msg: &libc::msghdr) -> Control {
    let mut control = Control {
        arrived: None,
        segment_size: 0,
    };
    // SAFETY: `msg` is a header the kernel filled in: its control pointer and length
    // (set to what the kernel wrote) describe initialised bytes of our control buffer,
    // and the CMSG_* macros stay within them. The values are read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    let since_epoch = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
                    control.arrived = SystemTime::UNIX_EPOCH.checked_add(since_epoch);
                }
                (libc::SOL_UDP, libc::UDP_GRO) => {
                    let size: libc::c_int = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    control.segment_size = size.max(0) as usize;
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    control
}

/// Datagrams (iovecs) per `sendmmsg` call when GSO packs several into one message.
const MAX_IOVECS: usize = 256;
/// The kernel's limit of segments per UDP GSO send (`UDP_MAX_SEGMENTS`).
const MAX_GSO_SEGMENTS: usize = 64;
/// Bytes per UDP GSO send: one IP datagram's worth, with room for the headers.
const MAX_GSO_BYTES: usize = 65_000;

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

/// Sends a socket's datagrams with as few `sendmmsg` calls as possible, and remembers
/// whether the kernel takes UDP GSO (`UDP_SEGMENT`) on that socket: runs of datagrams to
/// one destination go as one GSO message until the kernel refuses it once for this socket
/// (an old kernel, a route or device that cannot segment), and never when the environment
/// sets `PEERCALLS_UDP_GSO=0`. One sender per socket: what one socket's route refuses,
/// another's may take.
///
/// Optimisation (see docs/benchmarks.md): on loopback a `sendmmsg` costs ~3 µs per
/// datagram, almost all of it the kernel's per-datagram trip down the UDP/IP stack; a
/// GSO send makes that trip once for up to 64 datagrams to one destination and cuts
/// them at the end (~0.8 µs per datagram in the floor measurement).
#[derive(Debug)]
pub struct BatchSender {
    gso: bool,
}

impl Default for BatchSender {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchSender {
    /// A sender that tries GSO unless `PEERCALLS_UDP_GSO=0`.
    pub fn new() -> Self {
        Self {
            gso: std::env::var("PEERCALLS_UDP_GSO").map_or(true, |v| v != "0"),
        }
    }

    /// A sender with one datagram per message, never GSO: what the floor of
    /// `peer-calls bench` measures a batched send as.
    pub fn without_gso() -> Self {
        Self { gso: false }
    }

    /// Whether runs still go as UDP GSO on this sender's socket.
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// Sends `datagrams` on the socket `fd`. Returns how many were sent, always a prefix
    /// of `datagrams`: fewer than `datagrams.len()` when the socket buffer is full. A
    /// datagram the network refuses (no route, too long, a firewall) is skipped, so it
    /// cannot stall the others; an error of the socket itself is returned.
    pub fn send(&mut self, fd: RawFd, datagrams: &[Datagram]) -> io::Result<usize> {
        send(fd, datagrams, &mut self.gso)
    }
}

fn send(fd: RawFd, datagrams: &[Datagram], gso_ok: &mut bool) -> io::Result<usize> {
    let mut sent = 0;
    while sent < datagrams.len() {
        let gso = *gso_ok;
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
                // The kernel or the route cannot segment: this socket sends one by one
                // from now on.
                tracing::warn!("UDP GSO refused ({e}); this socket sends datagrams one by one");
                *gso_ok = false;
                continue;
            }
            match e.kind() {
                io::ErrorKind::WouldBlock => return Ok(sent),
                io::ErrorKind::Interrupted => continue,
                _ if refused_by_network(&e) => {
                    // The first message's destination cannot be reached (or the datagram
                    // is too long for its route): skip that message, not the batch.
                    sent += msgs[0].1;
                    continue;
                }
                _ => return Err(e),
            }
        }
        let n = n as usize;
        sent += msgs[..n].iter().map(|m| m.1).sum::<usize>();
        if n < nmsgs {
            return Ok(sent);
        }
    }
    Ok(sent)
}

/// Whether a send failed for the destination's sake (its route, a firewall, its size)
/// rather than the socket's: such a datagram is dropped and the rest go on.
fn refused_by_network(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::ENETDOWN
                | libc::EHOSTDOWN
                | libc::EMSGSIZE
                | libc::EACCES
                | libc::EPERM
                | libc::EADDRNOTAVAIL
                | libc::ENOBUFS
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

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

    #[test]
    fn a_message_is_cut_by_its_segment_size_and_long_or_truncated_ones_are_flagged() {
        let source: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let message = |len: usize, segment_size, truncated| Message {
            source,
            arrived: None,
            bytes: &bytes[..len],
            segment_size,
            truncated,
        };
        let cut = |m: Message<'_>| -> Vec<(usize, bool)> {
            m.datagrams().map(|(d, long)| (d.len(), long)).collect()
        };
        // No segment size: one datagram, however long.
        assert_eq!(cut(message(300, 0, false)), [(300, false)]);
        assert_eq!(cut(message(3000, 0, false)), [(3000, true)]);
        // Segments of 1200 with a shorter last; the bytes are the message's, in order.
        assert_eq!(
            cut(message(4000, 1200, false)),
            [(1200, false), (1200, false), (1200, false), (400, false)]
        );
        let m = message(4000, 1200, false);
        let joined: Vec<u8> = m.datagrams().flat_map(|(d, _)| d.to_vec()).collect();
        assert_eq!(joined, &bytes[..4000]);
        // Segments over the limit are each too long; a truncated message is one, too long.
        assert_eq!(
            cut(message(5000, 2500, false)),
            [(2500, true), (2500, true)]
        );
        assert_eq!(cut(message(5000, 1200, true)), [(5000, true)]);
        // An empty datagram is still one datagram.
        assert_eq!(cut(message(0, 0, false)), [(0, false)]);
    }
}
