//! The node port's thread: one UDP socket, one mio loop around a [`NodePortCore`], and
//! the same channels to the shards as a shard has (it is one more shard to them).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TrySendError};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::batch::{BATCH, BatchSender, RecvBatch};
use super::heartbeat::Heartbeat;
use super::shard_thread::{Link, MediaHop};
use crate::msg::Control;
use crate::node_port::{NodePortCore, NodePortStats};
use crate::shard::Datagram;

const SOCKET: Token = Token(0);
/// Messages taken from each channel per loop turn, so one source cannot starve another.
const CHANNEL_BUDGET: usize = 1024;
const STATS_INTERVAL: Duration = Duration::from_millis(500);

pub(crate) struct NodeThread {
    pub(crate) core: NodePortCore,
    pub(crate) poll: Poll,
    pub(crate) socket: UdpSocket,
    pub(crate) control: Receiver<Control>,
    pub(crate) media: Receiver<MediaHop>,
    /// The shards, by index.
    pub(crate) links: Vec<Link>,
    pub(crate) snapshot: Arc<Mutex<NodePortStats>>,
    pub(crate) heartbeat: Arc<Heartbeat>,
}

impl NodeThread {
    pub(crate) fn run(mut self) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut self.socket, SOCKET, Interest::READABLE)?;
        let fd = self.socket.as_raw_fd();
        let mut events = Events::with_capacity(64);
        let mut batch = RecvBatch::new();
        let mut sender = BatchSender::new();
        let mut sends: Vec<Datagram> = Vec::new();
        // A datagram is opened in place: each is copied here first.
        let mut scratch = vec![0u8; 1 << 16];
        let mut next_stats = Instant::now();
        let mut woken = vec![false; self.links.len()];
        let mut more_pending = false;
        loop {
            // Woken for the core's timer, and to publish the counters.
            let wait = if more_pending {
                Duration::ZERO
            } else {
                self.core
                    .poll_timeout()
                    .min(next_stats)
                    .saturating_duration_since(Instant::now())
            };
            more_pending = false;
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            self.heartbeat.beat();
            let now = Instant::now();
            loop {
                let n = batch.recv(fd)?;
                for message in (0..n).filter_map(|i| batch.message(i)) {
                    for (data, too_long) in message.datagrams() {
                        if too_long || data.len() > scratch.len() {
                            continue;
                        }
                        let d = &mut scratch[..data.len()];
                        d.copy_from_slice(data);
                        self.core.handle_datagram(now, message.source, d);
                    }
                }
                if n < BATCH {
                    break;
                }
            }
            let mut taken = 0;
            for c in self.control.try_iter().take(CHANNEL_BUDGET) {
                if matches!(c, Control::Shutdown) {
                    return Ok(());
                }
                self.core.handle_control(c);
                taken += 1;
            }
            more_pending |= taken == CHANNEL_BUDGET;
            taken = 0;
            while taken < CHANNEL_BUDGET {
                let Ok(hop) = self.media.try_recv() else {
                    break;
                };
                self.core.handle_media(now, hop.batch);
                taken += 1;
            }
            more_pending |= taken == CHANNEL_BUDGET;
            self.core.handle_timeout(now);
            self.core.flush();
            sends.extend(std::iter::from_fn(|| self.core.poll_transmit()));
            if !sends.is_empty() {
                // Datagrams the socket has no room for are dropped: media is late
                // anyway by the time there is room, and requests are repeated.
                sender.send(fd, &sends)?;
                sends.clear();
            }
            self.hand_over(&mut woken);
            if now >= next_stats {
                next_stats = now + STATS_INTERVAL;
                if let Ok(mut s) = self.snapshot.lock() {
                    *s = self.core.stats;
                }
            }
        }
    }

    /// Sends the shards what the core produced for them, and wakes those that got some.
    fn hand_over(&mut self, woken: &mut [bool]) {
        woken.fill(false);
        let out = &mut self.core.out;
        for (shard, control) in out.control.drain(..) {
            if let Some(link) = self.links.get(shard)
                && link.control.send(control).is_ok()
            {
                woken[shard] = true;
            }
        }
        for (shard, batch) in out.media.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let hop = MediaHop {
                arrived: None,
                batch: std::mem::take(batch),
            };
            match self.links[shard].media.try_send(hop) {
                Ok(()) => woken[shard] = true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
            }
        }
        for (link, _) in self.links.iter().zip(woken.iter()).filter(|(_, w)| **w) {
            let _ = link.waker.wake();
        }
    }
}
