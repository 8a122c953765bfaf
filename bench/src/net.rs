//! Batched UDP system calls (Linux `sendmmsg` / `recvmmsg`) for the generator's peers
//! and for the floor: one system call moves up to [`BATCH`] datagrams, and the buffers
//! are reused, so the generator spends as little CPU as it can on its own sockets.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram (WebRTC datagrams stay below 1500 bytes).
const RECV_BUF: usize = 2048;

/// A socket address in the kernel's layout.
fn to_raw(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The socket address the kernel wrote.
fn from_raw(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Sets a socket's send and receive buffer sizes (best effort: the kernel caps them).
pub fn set_buffers(fd: RawFd, bytes: usize) {
    let v = bytes as libc::c_int;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: `v` is a live c_int and its size is passed; the kernel only reads it.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Sends `packets` (destination, bytes) with as few `sendmmsg` calls as possible.
/// Returns how many were sent: fewer when the socket buffer is full.
pub fn send_batch<B: AsRef<[u8]>>(fd: RawFd, packets: &[(SocketAddr, B)]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < packets.len() {
        let chunk = &packets[sent..(sent + BATCH).min(packets.len())];
        let mut addrs: [MaybeUninit<(libc::sockaddr_storage, libc::socklen_t)>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        let mut hdrs: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        for (i, (to, data)) in chunk.iter().enumerate() {
            let data = data.as_ref();
            let addr = addrs[i].write(to_raw(*to));
            let iov = iovecs[i].write(libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            });
            // SAFETY: mmsghdr is plain old data; zero is valid for every field we do not set.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (&mut addr.0 as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = addr.1;
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            hdrs[i].write(h);
        }
        // SAFETY: the first `chunk.len()` headers are initialised and point at the
        // packets' bytes and at `addrs`/`iovecs`, which all outlive the call; the kernel
        // only reads them.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                hdrs.as_mut_ptr().cast(),
                chunk.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(sent),
                io::ErrorKind::Interrupted => continue,
                _ => Err(e),
            };
        }
        sent += n as usize;
        if (n as usize) < chunk.len() {
            return Ok(sent);
        }
    }
    Ok(sent)
}

/// Sends `segments` (all `segments[0].len()` bytes, the last possibly shorter) to `to`
/// as one UDP GSO send: one system call, one trip down the stack, the kernel cuts it
/// into datagrams (`UDP_SEGMENT`). At most 64 segments.
pub fn send_gso(fd: RawFd, to: SocketAddr, segments: &[&[u8]]) -> io::Result<()> {
    let Some(first) = segments.first() else {
        return Ok(());
    };
    let (mut addr, addr_len) = to_raw(to);
    let mut iovecs: Vec<libc::iovec> = segments
        .iter()
        .map(|s| libc::iovec {
            iov_base: s.as_ptr() as *mut libc::c_void,
            iov_len: s.len(),
        })
        .collect();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain old data; zero is valid for every field we do not set.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = addr_len;
    msg.msg_iov = iovecs.as_mut_ptr();
    msg.msg_iovlen = iovecs.len() as _;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points at a control buffer of `space` bytes (64 available), so the
    // first header fits; its data is a u16 as UDP_SEGMENT expects.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), first.len() as u16);
    }
    // SAFETY: every pointer in `msg` refers to live memory that outlives the call; the
    // kernel only reads it.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reusable buffers for `recvmmsg`: no allocation per receive.
pub struct RecvBatch {
    bufs: Box<[[u8; RECV_BUF]; BATCH]>,
    addrs: Box<[libc::sockaddr_storage; BATCH]>,
    lens: [usize; BATCH],
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
            lens: [0; BATCH],
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking; `Ok(0)` when none waits.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        let mut hdrs: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        for i in 0..BATCH {
            let iov = iovecs[i].write(libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: RECV_BUF,
            });
            // SAFETY: mmsghdr is plain old data; zero is valid for every field we do not set.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            hdrs[i].write(h);
        }
        // SAFETY: every header points at a live buffer of RECV_BUF bytes and a live
        // sockaddr_storage owned by `self`, all initialised above and outliving the call.
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
            self.lens[i] = (h.msg_len as usize).min(RECV_BUF);
        }
        Ok(n)
    }

    /// The `i`th datagram of the last [`RecvBatch::recv`]: its source and its bytes.
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let source = from_raw(self.addrs.get(i)?)?;
        Some((source, &self.bufs[i][..self.lens[i]]))
    }
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
        let packets: Vec<(SocketAddr, Vec<u8>)> =
            (0..40u8).map(|i| (to, vec![i; 10 + i as usize])).collect();
        assert_eq!(send_batch(a.as_raw_fd(), &packets).unwrap(), 40);
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while got.len() < 40 && std::time::Instant::now() < deadline {
            let n = batch.recv(b.as_raw_fd()).unwrap();
            for i in 0..n {
                let (from, data) = batch.get(i).unwrap();
                assert_eq!(from, a.local_addr().unwrap());
                got.push(data.to_vec());
            }
        }
        let want: Vec<Vec<u8>> = packets.into_iter().map(|p| p.1).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn gso_arrives_as_separate_datagrams() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let segs: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; if i < 4 { 100 } else { 40 }])
            .collect();
        let refs: Vec<&[u8]> = segs.iter().map(|s| &s[..]).collect();
        if send_gso(a.as_raw_fd(), b.local_addr().unwrap(), &refs).is_err() {
            return; // a kernel without UDP GSO
        }
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while got.len() < 5 && std::time::Instant::now() < deadline {
            let n = batch.recv(b.as_raw_fd()).unwrap();
            got.extend((0..n).map(|i| batch.get(i).unwrap().1.to_vec()));
        }
        assert_eq!(got, segs);
    }

    #[test]
    fn addresses_convert_both_ways() {
        for a in ["127.0.0.1:5000", "[::1]:6000"] {
            let addr: SocketAddr = a.parse().unwrap();
            assert_eq!(from_raw(&to_raw(addr).0), Some(addr));
        }
    }
}
