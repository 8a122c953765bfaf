//! `sendmmsg` of a socket's datagrams, as UDP GSO runs where the socket takes them.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::os::fd::RawFd;

use socket2::SockAddr;

use super::recv::BATCH;
use crate::shard::Datagram;

/// Datagrams (iovecs) per `sendmmsg` call when GSO packs several into one message.
const MAX_IOVECS: usize = 256;
/// The kernel's limit of segments per UDP GSO send (`UDP_MAX_SEGMENTS`).
const MAX_GSO_SEGMENTS: usize = 64;
/// Bytes per UDP GSO send: one IP datagram's worth, with room for the headers.
const MAX_GSO_BYTES: usize = 65_000;

/// How many datagrams from the start of `d` can go as one message: a run to the same
/// destination, all of the first one's size except a last one that may be shorter.
pub(super) fn gso_run(d: &[Datagram], gso: bool) -> usize {
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
