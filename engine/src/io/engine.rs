//! Starting and stopping the shards.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Sender, bounded, unbounded};
use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use super::batch::{enable_arrival_times, enable_gro};
use super::heartbeat::{Heartbeat, panic_message};
use super::node_thread::NodeThread;
use super::shard_thread::{Link, ShardSnapshot, ShardThread, WAKE, advertised};
use super::tcp::TcpMedia;
use crate::latency::LatencyHistogram;
use crate::msg::{Control, Notice, ShardId};
use crate::node_port::{NodePortCore, NodePortStats};
use crate::shard::{Liveness, ShardCore};

/// Media batches that may wait in a shard's inbound channel; beyond that the sender
/// drops (and counts) rather than block a media thread.
const MEDIA_CHANNEL: usize = 4096;

/// How to start the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Address the UDP sockets bind to.
    pub bind_ip: IpAddr,
    /// Shard `k` binds `first_port + k`; 0 lets the system pick each port.
    pub first_port: u16,
    /// Number of shards (threads).
    pub shards: usize,
    /// The address put in ICE candidates, when it differs from `bind_ip` (NAT, or a
    /// socket bound to 0.0.0.0).
    pub advertised_ip: Option<IpAddr>,
    /// Pin shard `k` to core `k mod cores`.
    pub pin_cores: bool,
    /// Peer liveness timeouts.
    pub liveness: Liveness,
    /// ICE over TCP: shard `k` also listens on TCP `tcp_first_port + k` (0: the system
    /// picks each port); `None`: UDP only.
    pub tcp_first_port: Option<u16>,
    /// Multi-node: the node port (server-to-server transport); `None`: one node.
    pub node_port: Option<NodePortConfig>,
}

/// How to start the node port.
#[derive(Clone)]
pub struct NodePortConfig {
    /// The UDP address it binds (port 0: the system picks one).
    pub bind: SocketAddr,
    /// This node as the others know it: its cluster id and this start's boot id.
    pub identity: relay::NodeIdentity,
    /// The cluster secret the pair keys are derived from.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for NodePortConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePortConfig")
            .field("bind", &self.bind)
            .field("node", &self.identity.id)
            .finish_non_exhaustive()
    }
}

/// The running node port, as the rest of the process sees it.
pub struct NodePortHandle {
    /// The address it is bound to.
    pub addr: SocketAddr,
    control: Sender<Control>,
    waker: Arc<Waker>,
    snapshot: Arc<Mutex<NodePortStats>>,
    heartbeat: Arc<Heartbeat>,
    thread: Option<JoinHandle<()>>,
}

impl NodePortHandle {
    /// Sends a command to the node port and wakes it.
    pub fn send(&self, control: Control) {
        if self.control.send(control).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Its latest published counters (at most half a second old).
    pub fn snapshot(&self) -> NodePortStats {
        self.snapshot.lock().map(|s| *s).unwrap_or_default()
    }

    /// Its thread's heartbeat.
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }
}

/// A running shard, as the rest of the process sees it.
pub struct ShardHandle {
    /// Its index.
    pub id: ShardId,
    /// The address peers reach it at (advertised in ICE candidates).
    pub media_addr: SocketAddr,
    /// The advertised address of its ICE-TCP listener, when it has one.
    pub tcp_addr: Option<SocketAddr>,
    control: Sender<Control>,
    waker: Arc<Waker>,
    snapshot: Arc<Mutex<ShardSnapshot>>,
    heartbeat: Arc<Heartbeat>,
    thread: Option<JoinHandle<()>>,
}

impl ShardHandle {
    /// Sends a command to the shard and wakes it.
    pub fn send(&self, control: Control) {
        if self.control.send(control).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// The shard's latest published counters (at most half a second old).
    pub fn snapshot(&self) -> ShardSnapshot {
        self.snapshot.lock().map(|s| *s).unwrap_or_default()
    }

    /// The shard thread's heartbeat: when it last turned, and why it died if it did.
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// A handle that other threads can keep: commands and counters, not the thread.
    pub fn remote(&self) -> ShardRemote {
        ShardRemote {
            control: self.control.clone(),
            waker: self.waker.clone(),
            snapshot: self.snapshot.clone(),
        }
    }
}

/// A shard as seen from another thread (metrics, tests): it can be sent commands and
/// its counters read; it does not own the shard's thread.
#[derive(Clone)]
pub struct ShardRemote {
    control: Sender<Control>,
    waker: Arc<Waker>,
    snapshot: Arc<Mutex<ShardSnapshot>>,
}

impl ShardRemote {
    /// Sends a command to the shard and wakes it.
    pub fn send(&self, control: Control) {
        if self.control.send(control).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// The shard's latest published counters (at most half a second old).
    pub fn snapshot(&self) -> ShardSnapshot {
        self.snapshot.lock().map(|s| *s).unwrap_or_default()
    }
}

/// The running shards, and the node port when there is one.
pub struct Engine {
    /// One per shard, indexed by shard id.
    pub shards: Vec<ShardHandle>,
    /// The node port, index `shards.len()` to the shards.
    pub node_port: Option<NodePortHandle>,
}

impl Engine {
    /// Binds every shard's socket and starts its thread. Notices from all shards go to
    /// `notices`, and `notice_waker` is woken whenever some are sent.
    pub fn start(
        config: &EngineConfig,
        notices: Sender<Notice>,
        notice_waker: Arc<Waker>,
    ) -> io::Result<Engine> {
        if config.shards == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "at least one shard is needed",
            ));
        }
        if config.bind_ip.is_unspecified() && config.advertised_ip.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "media bound to an unspecified address needs an advertised IP (--advertise-ip)",
            ));
        }
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let mut parts = Vec::new();
        for k in 0..config.shards {
            let port = if config.first_port == 0 {
                0
            } else {
                config.first_port.checked_add(k as u16).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "UDP port range overflows 65535",
                    )
                })?
            };
            let socket = bind_udp(SocketAddr::new(config.bind_ip, port))?;
            let tcp = match config.tcp_first_port {
                None => None,
                Some(first) => {
                    let port = if first == 0 {
                        0
                    } else {
                        first.checked_add(k as u16).ok_or_else(|| {
                            io::Error::new(
                                io::ErrorKind::InvalidInput,
                                "TCP port range overflows 65535",
                            )
                        })?
                    };
                    let addr = SocketAddr::new(config.bind_ip, port);
                    Some(mio::net::TcpListener::bind(addr).map_err(|e| {
                        io::Error::new(e.kind(), format!("binding ICE-TCP {addr}: {e}"))
                    })?)
                }
            };
            let local = socket.local_addr()?;
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
            let (control_tx, control_rx) = unbounded();
            let (media_tx, media_rx) = bounded(MEDIA_CHANNEL);
            parts.push((
                socket, local, poll, waker, control_tx, control_rx, media_tx, media_rx, tcp,
            ));
        }
        let mut links: Vec<Link> = parts
            .iter()
            .map(|p| Link {
                control: p.4.clone(),
                media: p.6.clone(),
                waker: p.3.clone(),
            })
            .collect();
        let shard_links = links.clone();
        let node_port = match &config.node_port {
            None => None,
            Some(c) => {
                let (handle, link) = start_node_port(c, shard_links, config.shards)?;
                links.push(link);
                Some(handle)
            }
        };
        let mut shards = Vec::new();
        for (k, (socket, local, poll, waker, control_tx, control_rx, _media_tx, media_rx, tcp)) in
            parts.into_iter().enumerate()
        {
            let media_addr = advertised(local, config.advertised_ip);
            let mut core = ShardCore::new(k, links.len(), media_addr, Instant::now());
            core.set_liveness(config.liveness);
            let tcp_addr = match &tcp {
                Some(listener) => Some(advertised(listener.local_addr()?, config.advertised_ip)),
                None => None,
            };
            if let Some(addr) = tcp_addr {
                core.set_tcp_addr(addr);
            }
            let tcp = match tcp {
                Some(listener) => Some(TcpMedia::new(listener, poll.registry())?),
                None => None,
            };
            let snapshot = Arc::new(Mutex::new(ShardSnapshot::default()));
            let heartbeat = Arc::new(Heartbeat::new(format!("shard-{k}")));
            let thread = ShardThread {
                core,
                poll,
                socket: mio::net::UdpSocket::from_std(socket),
                control: control_rx,
                media: media_rx,
                links: links.clone(),
                notices: notices.clone(),
                notice_waker: notice_waker.clone(),
                snapshot: snapshot.clone(),
                woken: Vec::with_capacity(config.shards),
                latency: LatencyHistogram::default(),
                oldest_input: None,
                heartbeat: heartbeat.clone(),
                tcp,
            };
            let core_id = (config.pin_cores && !cores.is_empty()).then(|| cores[k % cores.len()]);
            let (beat, woken) = (heartbeat.clone(), notice_waker.clone());
            let handle = std::thread::Builder::new()
                .name(format!("shard-{k}"))
                .spawn(move || {
                    if let Some(id) = core_id
                        && !core_affinity::set_for_current(id)
                    {
                        tracing::warn!(shard = k, "could not pin to core {}", id.id);
                    }
                    // A peer's panic is caught inside the core; one here is the thread's
                    // own, and the thread is gone: say why, and wake signalling, which
                    // stops the server with a failure.
                    let why = match catch_unwind(AssertUnwindSafe(|| thread.run())) {
                        Ok(Ok(())) => return,
                        Ok(Err(e)) => format!("its socket failed: {e}"),
                        Err(panic) => format!("it panicked: {}", panic_message(&*panic)),
                    };
                    tracing::error!("shard-{k} died: {why}");
                    beat.die(why);
                    let _ = woken.wake();
                })?;
            tracing::info!(shard = k, %media_addr, ?tcp_addr, "shard started");
            shards.push(ShardHandle {
                id: k,
                media_addr,
                tcp_addr,
                control: control_tx,
                waker,
                snapshot,
                heartbeat,
                thread: Some(handle),
            });
        }
        Ok(Engine { shards, node_port })
    }

    /// Stops every shard and the node port, and waits for their threads.
    pub fn shutdown(&mut self) {
        for s in &self.shards {
            s.send(Control::Shutdown);
        }
        if let Some(n) = &self.node_port {
            n.send(Control::Shutdown);
        }
        for s in &mut self.shards {
            if let Some(t) = s.thread.take() {
                let _ = t.join();
            }
        }
        if let Some(t) = self.node_port.as_mut().and_then(|n| n.thread.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds the node port and starts its thread; returns its handle and how the shards
/// reach it.
fn start_node_port(
    config: &NodePortConfig,
    shards: Vec<Link>,
    shard_count: usize,
) -> io::Result<(NodePortHandle, Link)> {
    let socket = bind_udp(config.bind)
        .map_err(|e| io::Error::new(e.kind(), format!("the node port: {e}")))?;
    let addr = socket.local_addr()?;
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let (control_tx, control_rx) = unbounded();
    let (media_tx, media_rx) = bounded(MEDIA_CHANNEL);
    let snapshot = Arc::new(Mutex::new(NodePortStats::default()));
    let heartbeat = Arc::new(Heartbeat::new("node-port"));
    let core = NodePortCore::new(
        shard_count,
        config.identity.clone(),
        &config.secret,
        Instant::now(),
    );
    let thread = NodeThread {
        core,
        poll,
        socket: mio::net::UdpSocket::from_std(socket),
        control: control_rx,
        media: media_rx,
        links: shards,
        snapshot: snapshot.clone(),
        heartbeat: heartbeat.clone(),
    };
    let beat = heartbeat.clone();
    let handle = std::thread::Builder::new()
        .name("node-port".into())
        .spawn(move || {
            let why = match catch_unwind(AssertUnwindSafe(|| thread.run())) {
                Ok(Ok(())) => return,
                Ok(Err(e)) => format!("its socket failed: {e}"),
                Err(panic) => format!("it panicked: {}", panic_message(&*panic)),
            };
            tracing::error!("the node port died: {why}");
            beat.die(why);
        })?;
    tracing::info!(%addr, node = %config.identity.id, "node port started");
    let link = Link {
        control: control_tx.clone(),
        media: media_tx,
        waker: waker.clone(),
    };
    let handle = NodePortHandle {
        addr,
        control: control_tx,
        waker,
        snapshot,
        heartbeat,
        thread: Some(handle),
    };
    Ok((handle, link))
}

fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    // Large buffers absorb bursts (a keyframe to many subscribers) between loop turns.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    // A publisher's burst arrives as one message where the kernel can coalesce it
    // (optimisation 5, docs/benchmarks.md); without it, one datagram per message.
    if let Err(e) = enable_gro(socket.as_raw_fd()) {
        tracing::debug!("UDP GRO unavailable ({e}); receiving one datagram per message");
    }
    // The kernel's arrival stamps, for the shard's forwarding latency (crate::latency).
    if let Err(e) = enable_arrival_times(socket.as_raw_fd()) {
        tracing::debug!("no arrival stamps ({e}); the forwarding latency is not measured");
    }
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("binding UDP {addr}: {e}")))?;
    Ok(socket.into())
}
