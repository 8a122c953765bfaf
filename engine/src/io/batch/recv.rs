//! `recvmmsg` into reusable buffers: datagrams (or UDP GRO runs of them) with their
//! source and, when asked for, the kernel's arrival stamp.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, SystemTime};

use socket2::{SockAddr, SockAddrStorage};

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

#[cfg(test)]
mod tests {
    use super::*;

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
