//! Who gets a connection slot: the handshakes in progress (bounded overall and per client
//! address, the oldest evicted rather than the newcomer refused) and the process's file
//! descriptors (joins are refused with a reason while they run low).
//!
//! Half-open connections are the cheapest attack on a server: open thousands, send half a
//! request, wait. Refusing newcomers once a cap is reached hands the attacker the door;
//! evicting the oldest half-open connection instead means a fresh visitor always gets in, and
//! the per-address cap means one address churns only its own slots, never a slow but honest
//! client's (a phone finishing its TLS handshake).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::RawFd;

/// The key a client's handshakes are counted under: its IPv4 address, or its IPv6 /64 (one
/// subscriber usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct AddrKey(IpAddr);

impl AddrKey {
    pub(super) fn of(ip: IpAddr) -> AddrKey {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                AddrKey(IpAddr::V6(Ipv6Addr::new(
                    s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                )))
            }
            v4 => AddrKey(v4),
        }
    }
}

/// The handshakes in progress, by address and in the order they began.
#[derive(Debug, Default)]
pub(super) struct Handshakes {
    count: usize,
    by_addr: HashMap<AddrKey, usize>,
    /// Oldest first. Entries of handshakes that ended stay until they come up (tokens are
    /// never reused) or until a compaction, so ending one costs nothing here.
    order: VecDeque<(usize, AddrKey)>,
    /// The next `room_for` drops the ended entries first.
    compact: bool,
}

/// Which handshake to drop to make room for a newcomer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Room {
    /// There is room.
    Free,
    /// Drop this one (the token of a connection still in its handshake) first.
    Evict(usize),
}

impl Handshakes {
    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// A handshake began.
    pub(super) fn start(&mut self, token: usize, addr: AddrKey) {
        self.count += 1;
        *self.by_addr.entry(addr).or_default() += 1;
        self.order.push_back((token, addr));
    }

    /// A handshake ended (completed, failed, timed out or evicted).
    pub(super) fn end(&mut self, addr: AddrKey) {
        self.count = self.count.saturating_sub(1);
        if let Entry::Occupied(mut e) = self.by_addr.entry(addr) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        // Drop ended entries once they outnumber the live ones, so the queue stays
        // proportional to the handshakes in progress.
        if self.order.len() > 2 * self.count + 64 {
            self.compact = true;
        }
    }

    /// Makes room for a handshake from `addr`: with the address at `per_addr`, its own
    /// oldest handshake goes; with `total` reached, the oldest of all. `live(token)` says
    /// whether a token is still in its handshake.
    pub(super) fn room_for(
        &mut self,
        addr: AddrKey,
        per_addr: usize,
        total: usize,
        live: impl Fn(usize) -> bool,
    ) -> Room {
        if std::mem::take(&mut self.compact) {
            self.order.retain(|&(token, _)| live(token));
        }
        let mine = self.by_addr.get(&addr).copied().unwrap_or(0);
        let from = if mine >= per_addr {
            Some(addr)
        } else if self.count >= total {
            None
        } else {
            return Room::Free;
        };
        let at = self
            .order
            .iter()
            .position(|&(token, a)| from.is_none_or(|f| f == a) && live(token));
        match at.and_then(|i| self.order.remove(i)) {
            Some((token, _)) => Room::Evict(token),
            // Counted but not found: cannot happen; let the newcomer in rather than lock out.
            None => Room::Free,
        }
    }
}

/// The process's file descriptors, as the signalling thread sees them.
///
/// Descriptors are handed out lowest first, so an accepted socket numbered `n` means at
/// least `n` are in use: past `limit - reserve`, joins are refused (`unavailable`) until an
/// accept comes back lower. When accepting fails for want of descriptors, a spare one is
/// given up to accept and close the waiting connection, so clients learn at once instead
/// of waiting in the backlog.
#[derive(Debug)]
pub(super) struct Descriptors {
    /// Past this descriptor number joins are refused.
    low_from: u64,
    low: bool,
    spare: Option<File>,
}

impl Descriptors {
    /// For the soft `RLIMIT_NOFILE` of this process.
    pub(super) fn new() -> Descriptors {
        let limit = nofile_limit();
        Descriptors {
            low_from: limit.saturating_sub(reserve(limit)),
            low: false,
            spare: File::open("/dev/null").ok(),
        }
    }

    /// A connection was accepted on descriptor `fd`.
    pub(super) fn accepted(&mut self, fd: RawFd) {
        let was = self.low;
        self.low = u64::try_from(fd).unwrap_or(0) >= self.low_from;
        if self.low != was {
            if self.low {
                tracing::warn!(
                    descriptor = fd,
                    "file descriptors are running out: new calls are refused until some close"
                );
            } else {
                tracing::info!("file descriptors are available again");
            }
        }
    }

    /// Whether joins should be refused for want of descriptors.
    pub(super) fn low(&self) -> bool {
        self.low
    }

    /// Accepting failed for want of descriptors: gives up the spare so one waiting connection
    /// can be accepted (and closed). Returns false when there is no spare left.
    pub(super) fn release_spare(&mut self) -> bool {
        if !self.low {
            tracing::warn!("out of file descriptors: new calls are refused until some close");
        }
        self.low = true;
        self.spare.take().is_some()
    }

    /// Takes the spare descriptor back (after the connection it made room for is closed).
    pub(super) fn restore_spare(&mut self) {
        if self.spare.is_none() {
            self.spare = File::open("/dev/null").ok();
        }
    }
}

/// Descriptors kept for everything else the process opens (media sockets, ICE-TCP
/// connections, /proc for the metrics, a certificate being reloaded): a twentieth of the
/// limit, at least 32.
fn reserve(limit: u64) -> u64 {
    (limit / 20).max(32)
}

fn nofile_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0
        || rl.rlim_cur == libc::RLIM_INFINITY
    {
        return u64::MAX;
    }
    rl.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> AddrKey {
        AddrKey::of(s.parse().unwrap())
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
    }

    #[test]
    fn an_address_at_its_cap_gives_up_its_own_oldest() {
        let mut h = Handshakes::default();
        let (a, b) = (key("192.0.2.1"), key("192.0.2.2"));
        h.start(10, b);
        h.start(11, a);
        h.start(12, a);
        assert_eq!(h.room_for(b, 2, 100, |_| true), Room::Free);
        assert_eq!(h.room_for(a, 2, 100, |_| true), Room::Evict(11));
        h.end(a);
        h.start(13, a);
        // 11 is gone: 12 is a's oldest now; b's older handshake is never touched.
        assert_eq!(h.room_for(a, 2, 100, |t| t != 11), Room::Evict(12));
    }

    #[test]
    fn at_the_total_cap_the_oldest_of_all_goes() {
        let mut h = Handshakes::default();
        for (token, a) in [(1, "192.0.2.1"), (2, "192.0.2.2"), (3, "192.0.2.3")] {
            h.start(token, key(a));
        }
        // 1 completed its handshake meanwhile (not live): 2 is the oldest half-open one.
        h.end(key("192.0.2.1"));
        assert_eq!(
            h.room_for(key("192.0.2.9"), 8, 2, |t| t != 1),
            Room::Evict(2)
        );
        assert_eq!(
            h.count(),
            2,
            "eviction is counted when the connection is dropped"
        );
    }

    #[test]
    fn ended_entries_do_not_pile_up() {
        let mut h = Handshakes::default();
        let a = key("192.0.2.1");
        for token in 0..10_000 {
            h.start(token, a);
            h.end(a);
            let _ = h.room_for(a, 8, 100, |_| false);
        }
        assert!(h.order.len() <= 64 + 1, "{} entries kept", h.order.len());
    }
}
