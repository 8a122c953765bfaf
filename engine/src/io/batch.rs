//! Batched UDP system calls: `recvmmsg` and `sendmmsg` (Linux). The engine's only
//! `unsafe` code lives here, each block with the invariant it relies on.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::{SockAddr, SockAddrStorage};

use crate::shard::Datagram;

/// Datagrams per system call.
pub(crate) const BATCH: usize = 32;
/// Receive buffer per datagram: anything longer than the engine's 1500-byte limit is
/// truncated, seen as too long and dropped, so 2048 is plenty.
const RECV_BUF: usize = 2048;

/// Reusable buffers for `recvmmsg`: no allocation per receive.
pub(crate) struct RecvBatch {
    bufs: Box<[[u8; RECV_BUF]; BATCH]>,
    addrs: Box<[libc::sockaddr_storage; BATCH]>,
    lens: [usize; BATCH],
    sources: [Option<SocketAddr>; BATCH],
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        Self {
            bufs: Box::new([[0; RECV_BUF]; BATCH]),
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            addrs: Box::new(unsafe { zeroed() }),
            lens: [0; BATCH],
            sources: [None; BATCH],
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking. `Ok(0)` when none is waiting.
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
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
        }
        Ok(n)
    }

    /// The `i`th datagram of the last `recv`: its source, and its bytes. A truncated
    /// datagram is reported as one byte longer than the buffer so the caller drops it.
    pub(crate) fn get(&self, i: usize) -> Option<(SocketAddr, &[u8], bool)> {
        let source = self.sources.get(i).copied().flatten()?;
        let len = self.lens[i];
        let too_long = len > RECV_BUF;
        Some((source, &self.bufs[i][..len.min(RECV_BUF)], too_long))
    }
}

/// Sends datagrams with as few `sendmmsg` calls as possible. Returns how many were
/// sent: fewer than `datagrams.len()` when the socket buffer is full.
pub(crate) fn send_batch(fd: RawFd, datagrams: &[Datagram]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < datagrams.len() {
        let chunk = &datagrams[sent..(sent + BATCH).min(datagrams.len())];
        let addrs: [Option<SockAddr>; BATCH] =
            std::array::from_fn(|i| chunk.get(i).map(|d| SockAddr::from(d.to)));
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        let mut hdrs: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        for (i, d) in chunk.iter().enumerate() {
            iovecs[i].write(libc::iovec {
                iov_base: d.data.as_ptr() as *mut libc::c_void,
                iov_len: d.data.len(),
            });
            // SAFETY: mmsghdr is plain old data; zero is valid for every field we do not set.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            let Some(addr) = &addrs[i] else { break };
            h.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_namelen = addr.len();
            h.msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
            h.msg_hdr.msg_iovlen = 1;
            hdrs[i].write(h);
        }
        // SAFETY: the first `chunk.len()` headers are initialised and point at the
        // datagrams' bytes and at `addrs`, which all outlive the call; the kernel only reads them.
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
                // A datagram the network refuses (no route, message too long) must not
                // stall the others: skip it.
                _ if sent < datagrams.len() => {
                    sent += 1;
                    continue;
                }
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
