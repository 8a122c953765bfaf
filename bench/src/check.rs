//! What a synthetic subscriber does with every packet it decrypts: read its stamp,
//! mark its sequence number (loss, duplicates), measure its latency, and ask for a
//! keyframe (PLI) when a video gap is not repaired in time.
//!
//! Loss is counted per (subscriber, stream) from the first packet the subscriber got on
//! that stream to the last packet the publisher sent: every packet in between must
//! arrive. Packets sent before the subscription was active never count.
//!
//! With simulcast each layer is a stream of its own, and an m-line carries one layer at
//! a time: when packets of another layer begin on it (the server switched, at a
//! keyframe), the layer it left is owed only up to the last packet it brought, and a
//! layer it comes back to is owed again from the packet it comes back with.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use str0m::media::Mid;

use crate::traffic::Stamp;

/// A video gap unrepaired (by NACK/RTX) for this long makes the subscriber send a PLI.
pub const GAP_PATIENCE: Duration = Duration::from_millis(250);
/// At most one PLI per stream per this interval.
const PLI_INTERVAL: Duration = Duration::from_secs(1);
/// A packet that reaches its subscriber's socket this long after it was sent is late: a
/// conversation's jitter buffer has played out without it (one-way delay past ~150 ms
/// is already noticeable, ITU-T G.114). Normal forwarding stays under ~20 ms even for a
/// webinar's keyframe, so only a server that falls behind (a queue that grows while a
/// saturated shard cannot keep up, which the socket's buffer hides from the loss count
/// for seconds) makes packets late.
pub const LATE_AFTER: Duration = Duration::from_millis(200);

/// When a packet reached its subscriber.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// The subscriber's loop read its datagram from the socket.
    pub read: Instant,
    /// The datagram arrived in the subscriber's socket, by the kernel's stamp: ns since
    /// the run's epoch.
    pub socket_ns: Option<u64>,
}

/// Counters over every subscriber of a run.
pub struct Tally {
    /// Latency (publisher send → subscriber receive), ns, of packets sent inside the
    /// measured window.
    pub latency: Histogram<u64>,
    /// Latency to the subscriber's socket (publisher send → the kernel's arrival stamp),
    /// ns: without the time a datagram waited for the generator's one thread to read it.
    pub socket_latency: Histogram<u64>,
    /// The measured window, ns since the epoch: `[start, end)`.
    window: Option<(u64, u64)>,
    /// Packets received inside the window (by receive time).
    pub window_packets: u64,
    /// Their payload bytes.
    pub window_bytes: u64,
    /// Of which video.
    pub window_video: u64,
    /// Packets received over the whole run, duplicates excluded.
    pub received: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Packets without a valid stamp.
    pub unstamped: u64,
    /// Packets older than the first one of their stream (not counted).
    pub before_first: u64,
    /// PLIs the subscribers sent.
    pub plis: u64,
    /// Packets sent inside the window that arrived [`LATE_AFTER`] or more after they
    /// were sent (by the kernel's stamp where there is one).
    pub late: u64,
    /// With simulcast: the layer of each stamp stream (`None`: not a video layer).
    pub stream_layers: Vec<Option<u8>>,
    /// Video payload bytes received inside the window, by simulcast layer.
    pub window_layer_bytes: [u64; 3],
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    /// Empty counters.
    pub fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            socket_latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            window: None,
            window_packets: 0,
            window_bytes: 0,
            window_video: 0,
            received: 0,
            duplicates: 0,
            unstamped: 0,
            before_first: 0,
            plis: 0,
            late: 0,
            stream_layers: Vec::new(),
            window_layer_bytes: [0; 3],
        }
    }

    /// Starts the measured window at `start_ns`.
    pub fn open_window(&mut self, start_ns: u64) {
        self.window = Some((start_ns, u64::MAX));
    }

    /// Ends the measured window at `end_ns`.
    pub fn close_window(&mut self, end_ns: u64) {
        if let Some(w) = self.window.as_mut() {
            w.1 = end_ns;
        }
    }

    /// Whether `ns` (since the epoch) falls in the measured window.
    pub fn in_window(&self, ns: u64) -> bool {
        self.window.is_some_and(|(s, e)| ns >= s && ns < e)
    }
}

/// One stream as one subscriber receives it.
struct RxStream {
    stream: u32,
    mid: Mid,
    video: bool,
    first: u64,
    highest: u64,
    /// Bit `i`: sequence number `first + i` arrived.
    bits: Vec<u64>,
    received: u64,
    /// A gap: since when, and the first sequence number missing.
    gap: Option<(Instant, u64)>,
    last_pli: Option<Instant>,
    /// Where the stretch it is owed from began (the m-line came to this stream).
    since: u64,
    /// Packets owed by stretches that ended (the m-line went to another stream).
    owed_before: u64,
    /// The m-line carries another stream now.
    left: bool,
}

impl RxStream {
    fn has(&self, seq: u64) -> bool {
        let i = (seq - self.first) as usize;
        self.bits
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Marks `seq`; false if it was already there.
    fn mark(&mut self, seq: u64) -> bool {
        let i = (seq - self.first) as usize;
        if self.bits.len() <= i / 64 {
            self.bits.resize(i / 64 + 1, 0);
        }
        let w = &mut self.bits[i / 64];
        let fresh = *w & (1 << (i % 64)) == 0;
        *w |= 1 << (i % 64);
        fresh
    }

    /// The first sequence number in `from..=highest` that has not arrived.
    fn first_missing(&self, from: u64) -> Option<u64> {
        (from..=self.highest).find(|&s| !self.has(s))
    }
}

/// Loss of one subscriber over its streams.
#[derive(Debug, Default, Clone, Copy)]
pub struct Loss {
    /// Packets that should have arrived.
    pub expected: u64,
    /// Packets that did (duplicates excluded).
    pub received: u64,
}

/// One subscriber's receive side. See the module docs.
#[derive(Default)]
pub struct Receiver {
    streams: Vec<RxStream>,
    /// Each m-line and the stream it carries now.
    carrying: Vec<(Mid, u32)>,
}

impl Receiver {
    /// Checks one received packet. Returns its stamp when it carried one.
    pub fn on_packet(
        &mut self,
        mid: Mid,
        video: bool,
        payload: &[u8],
        arrival: Arrival,
        epoch: Instant,
        tally: &mut Tally,
    ) -> Option<Stamp> {
        let Some(stamp) = Stamp::read(payload) else {
            tally.unstamped += 1;
            return None;
        };
        let received = arrival.read;
        let rx_ns = received.saturating_duration_since(epoch).as_nanos() as u64;
        let i = match self.streams.iter().position(|s| s.stream == stamp.stream) {
            Some(i) => i,
            None => {
                self.streams.push(RxStream {
                    stream: stamp.stream,
                    mid,
                    video,
                    first: stamp.seq,
                    highest: stamp.seq,
                    bits: Vec::new(),
                    received: 0,
                    gap: None,
                    last_pli: None,
                    since: stamp.seq,
                    owed_before: 0,
                    left: false,
                });
                self.streams.len() - 1
            }
        };
        self.switch_to(mid, i, stamp.seq);
        let s = &mut self.streams[i];
        if stamp.seq < s.first {
            tally.before_first += 1;
            return Some(stamp);
        }
        if !s.mark(stamp.seq) {
            tally.duplicates += 1;
            return Some(stamp);
        }
        s.received += 1;
        if stamp.seq > s.highest + 1 && s.gap.is_none() {
            s.gap = Some((received, s.highest + 1));
        }
        s.highest = s.highest.max(stamp.seq);
        tally.received += 1;
        if tally.in_window(rx_ns) {
            tally.window_packets += 1;
            tally.window_bytes += payload.len() as u64;
            if video {
                tally.window_video += 1;
                let layer = tally.stream_layers.get(stamp.stream as usize).copied();
                if let Some(Some(l)) = layer {
                    tally.window_layer_bytes[usize::from(l).min(2)] += payload.len() as u64;
                }
            }
        }
        if tally.in_window(stamp.sent_ns) {
            let latency = rx_ns.saturating_sub(stamp.sent_ns).max(1);
            let _ = tally.latency.record(latency);
            let mut to_socket = latency;
            if let Some(at) = arrival.socket_ns {
                to_socket = at.saturating_sub(stamp.sent_ns).max(1);
                let _ = tally.socket_latency.record(to_socket);
            }
            if to_socket >= LATE_AFTER.as_nanos() as u64 {
                tally.late += 1;
            }
        }
        Some(stamp)
    }

    /// Packet `seq` of stream `i` arrived on `mid`. A stream that is not the one `mid`
    /// carries takes over (a simulcast switch), unless the packet is a late one of a
    /// stretch already ended (a retransmission from before the switch).
    fn switch_to(&mut self, mid: Mid, i: usize, seq: u64) {
        let stream = self.streams[i].stream;
        let current = match self.carrying.iter_mut().find(|(m, _)| *m == mid) {
            Some((_, s)) => s,
            None => {
                self.carrying.push((mid, stream));
                return;
            }
        };
        if *current == stream {
            return;
        }
        let s = &self.streams[i];
        if s.left && seq <= s.highest {
            return; // late, from before it was left
        }
        let old = *current;
        *current = stream;
        if let Some(o) = self.streams.iter_mut().find(|o| o.stream == old) {
            o.owed_before += o.highest + 1 - o.since;
            o.left = true;
            o.gap = None;
        }
        let s = &mut self.streams[i];
        if s.left {
            s.left = false;
            s.since = seq;
            s.highest = seq;
        }
    }

    /// Video m-lines whose gap has lasted past [`GAP_PATIENCE`]: send them a PLI.
    pub fn keyframes_needed(&mut self, now: Instant, out: &mut Vec<Mid>) {
        for s in self.streams.iter_mut().filter(|s| s.video) {
            let Some((since, from)) = s.gap else { continue };
            let Some(missing) = s.first_missing(from) else {
                s.gap = None;
                continue;
            };
            if missing != from {
                s.gap = Some((since, missing));
            }
            if now < since + GAP_PATIENCE {
                continue;
            }
            // Given up on; a later hole starts a new wait.
            s.gap = s.first_missing(missing + 1).map(|m| (now, m));
            if s.last_pli.is_none_or(|t| now >= t + PLI_INTERVAL) {
                s.last_pli = Some(now);
                out.push(s.mid);
            }
        }
    }

    /// Streams this subscriber has received from.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Loss over every stream, given how many packets each stream's publisher sent.
    pub fn loss(&self, sent: impl Fn(u32) -> u64) -> Loss {
        let mut l = Loss::default();
        for s in &self.streams {
            l.expected += s.owed_before;
            if !s.left {
                l.expected += sent(s.stream).saturating_sub(s.since);
            }
            l.received += s.received;
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(stream: u32, seq: u64, sent_ns: u64) -> Vec<u8> {
        let mut p = vec![0u8; 100];
        Stamp {
            stream,
            seq,
            sent_ns,
        }
        .write(&mut p);
        p
    }

    /// Read at `at`, with no kernel stamp.
    fn unstamped(at: Instant) -> Arrival {
        Arrival {
            read: at,
            socket_ns: None,
        }
    }

    #[test]
    fn counts_loss_duplicates_and_latency() {
        let epoch = Instant::now();
        let mut tally = Tally::new();
        tally.open_window(0);
        let mut rx = Receiver::default();
        let mid = Mid::from("1");
        let at = |ms: u64| epoch + Duration::from_millis(ms);
        // Read at 1 ms; in the socket since 0.4 ms.
        let read = Arrival {
            read: at(1),
            socket_ns: Some(400_000),
        };
        for seq in [5u64, 6, 8, 8, 9] {
            rx.on_packet(mid, true, &packet(0, seq, 0), read, epoch, &mut tally);
        }
        rx.on_packet(mid, true, &packet(0, 4, 0), read, epoch, &mut tally);
        assert_eq!(tally.duplicates, 1);
        assert_eq!(tally.before_first, 1);
        assert_eq!(tally.received, 4);
        // The publisher sent 0..=10: 5..=10 expected, 7 and 10 missing.
        let loss = rx.loss(|_| 11);
        assert_eq!((loss.expected, loss.received), (6, 4));
        assert_eq!(tally.latency.len(), 4);
        assert_eq!(
            tally.latency.max(),
            tally.latency.highest_equivalent(1_000_000)
        );
        assert_eq!(tally.socket_latency.len(), 4);
        assert_eq!(
            tally.socket_latency.max(),
            tally.socket_latency.highest_equivalent(400_000)
        );

        // The gap at 7 is not repaired: one PLI after the patience, not before.
        let mut plis = Vec::new();
        rx.keyframes_needed(at(100), &mut plis);
        assert!(plis.is_empty());
        rx.keyframes_needed(at(400), &mut plis);
        assert_eq!(plis, vec![mid]);
        // A repaired gap asks for nothing.
        let mut rx = Receiver::default();
        for (seq, ms) in [(0, 1), (2, 1), (1, 2)] {
            let read = unstamped(at(ms));
            rx.on_packet(mid, true, &packet(1, seq, 0), read, epoch, &mut tally);
        }
        let mut plis = Vec::new();
        rx.keyframes_needed(at(400), &mut plis);
        assert!(plis.is_empty());
        assert_eq!(rx.loss(|_| 3).expected, rx.loss(|_| 3).received);
    }

    #[test]
    fn the_window_bounds_what_is_counted() {
        let epoch = Instant::now();
        let mut tally = Tally::new();
        let mut rx = Receiver::default();
        let mid = Mid::from("1");
        rx.on_packet(
            mid,
            false,
            &packet(0, 0, 0),
            unstamped(epoch),
            epoch,
            &mut tally,
        );
        tally.open_window(1_000);
        let later = epoch + Duration::from_micros(5);
        rx.on_packet(
            mid,
            false,
            &packet(0, 1, 2_000),
            unstamped(later),
            epoch,
            &mut tally,
        );
        tally.close_window(10_000);
        let much_later = epoch + Duration::from_micros(20);
        rx.on_packet(
            mid,
            false,
            &packet(0, 2, 3_000),
            unstamped(much_later),
            epoch,
            &mut tally,
        );
        assert_eq!(tally.window_packets, 1);
        assert_eq!(tally.latency.len(), 2, "sent inside the window");
        assert_eq!(tally.socket_latency.len(), 0, "no kernel stamps");
        assert_eq!(tally.received, 3);
    }

    #[test]
    fn a_packet_is_late_by_its_socket_arrival_when_the_kernel_stamped_it() {
        let epoch = Instant::now();
        let mut tally = Tally::new();
        tally.open_window(0);
        let mut rx = Receiver::default();
        let mid = Mid::from("1");
        let late_ns = LATE_AFTER.as_nanos() as u64;
        let arrivals = [
            // In the socket in time, read late (the generator's delay): on time.
            Arrival {
                read: epoch + LATE_AFTER * 2,
                socket_ns: Some(late_ns - 1),
            },
            // In the socket late: late, however soon it was read.
            Arrival {
                read: epoch + LATE_AFTER,
                socket_ns: Some(late_ns),
            },
            // No kernel stamp: read late is late.
            unstamped(epoch + LATE_AFTER),
            unstamped(epoch + LATE_AFTER - Duration::from_nanos(1)),
        ];
        for (seq, arrival) in arrivals.into_iter().enumerate() {
            rx.on_packet(
                mid,
                true,
                &packet(0, seq as u64, 0),
                arrival,
                epoch,
                &mut tally,
            );
        }
        assert_eq!(tally.late, 2);
        // Sent before the window: never counted, however late.
        let mut tally = Tally::new();
        tally.open_window(1);
        rx.on_packet(
            mid,
            true,
            &packet(0, 9, 0),
            unstamped(epoch + LATE_AFTER * 3),
            epoch,
            &mut tally,
        );
        assert_eq!(tally.late, 0);
    }

    #[test]
    fn a_simulcast_switch_owes_each_layer_only_its_stretch() {
        let epoch = Instant::now();
        let mut tally = Tally::new();
        tally.open_window(0);
        tally.stream_layers = vec![Some(0), Some(1), Some(2)];
        let mut rx = Receiver::default();
        let mid = Mid::from("1");
        let at = unstamped(epoch);
        let mut got = |rx: &mut Receiver, stream: u32, seqs: std::ops::Range<u64>| {
            for seq in seqs {
                let p = packet(stream, seq, 0);
                rx.on_packet(mid, true, &p, at, epoch, &mut tally);
            }
        };
        // Layer 2 from 10 to 19, then the server switches to layer 0 (its 40 to 59),
        // a late retransmission of layer 2's 15 arrives, and back to layer 2 at 70.
        got(&mut rx, 2, 10..20);
        got(&mut rx, 0, 40..60);
        got(&mut rx, 2, 15..16);
        got(&mut rx, 2, 70..75);
        assert_eq!(tally.duplicates, 1, "the retransmission was had");
        // The publisher sent 80 of layer 2 and 90 of layer 0: layer 2 owes 10..=19 and
        // 70..80, layer 0 only its stretch 40..=59.
        let sent = |s: u32| if s == 2 { 80 } else { 90 };
        let loss = rx.loss(sent);
        assert_eq!(loss.expected, 10 + 20 + 10);
        assert_eq!(loss.received, 10 + 20 + 5);
        // A gap in a layer that was left asks for no keyframe.
        let mut plis = Vec::new();
        rx.keyframes_needed(epoch + Duration::from_secs(1), &mut plis);
        assert!(plis.is_empty());
        assert_eq!(tally.window_layer_bytes[1], 0);
        assert_eq!(tally.window_layer_bytes[0], 20 * 100);
        assert_eq!(tally.window_layer_bytes[2], 15 * 100);
    }
}
