//! The signalling thread: the transport's events and the shards' notices go into the
//! [`App`]; its output goes back to sockets and shards.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use engine::factory::{MediaAddrs, PeerFactory};
use engine::io::heartbeat::{Heartbeat, panic_message};
use engine::io::{Engine, EngineConfig, NodePortConfig, ShardRemote};
use engine::msg::Notice;

use auth::Webhook;

use crate::app::{App, AppConfig, Output, Visitor};
use crate::cluster_link::{ClusterFigures, ClusterLink};
use crate::metrics;
use crate::tls::TlsFiles;
use crate::transport::{ConnId, Health, Limits, SharedText, Transport, TransportEvent};

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTP and WebSocket address.
    pub http: SocketAddr,
    /// The media engine.
    pub engine: EngineConfig,
    /// Signalling tunables.
    pub app: AppConfig,
    /// Transport limits.
    pub limits: Limits,
    /// Who may read `/metrics` from other hosts: those presenting this token
    /// (`Authorization: Bearer <token>`). Without one, only clients on this host may.
    pub metrics_token: Option<String>,
    /// Serve https and wss with this certificate (plain http is redirected); `None`: plain.
    pub tls: Option<Arc<TlsFiles>>,
    /// Serve everything under this path (behind a reverse proxy), "" for the root.
    pub base_path: String,
    /// Join a cluster of nodes; `None`: one node.
    pub cluster: Option<ClusterConfig>,
}

/// How this node joins a cluster (multi-node).
#[derive(Clone)]
pub struct ClusterConfig {
    /// The Redis the nodes coordinate on (`--redis`).
    pub redis_url: String,
    /// This node's id, unique in the cluster (`--node-id`).
    pub id: String,
    /// Where clients reach it (`--node-address`).
    pub addresses: Vec<String>,
    /// The secret the nodes share (`--cluster-secret`).
    pub secret: Vec<u8>,
    /// The node port's UDP port, on the media address; 0: any (`--node-port`).
    pub node_port: u16,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &self.redis_url)
            .field("id", &self.id)
            .field("addresses", &self.addresses)
            .field("node_port", &self.node_port)
            .finish_non_exhaustive()
    }
}

/// A running server.
pub struct RunningServer {
    /// Where HTTP and WebSocket listen.
    pub http_addr: SocketAddr,
    /// Each shard's media address.
    pub media_addrs: Vec<SocketAddr>,
    /// Each shard, for its counters (and commands, in tests).
    shards: Vec<ShardRemote>,
    lifecycle: Arc<Lifecycle>,
    waker: Arc<mio::Waker>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

/// What other threads tell the signalling thread about the server's life, and its
/// heartbeat for the watchdog in [`RunningServer::wait`].
#[derive(Debug)]
struct Lifecycle {
    /// Stop now.
    stop: AtomicBool,
    /// Drain until this instant (set once).
    drain_until: Mutex<Option<Instant>>,
    /// Beaten every turn of the signalling loop.
    heartbeat: Heartbeat,
    /// Test-only: the signalling loop sleeps this long once (`StopHandle::inject_stall`).
    #[cfg(feature = "fault-injection")]
    stall: Mutex<Option<Duration>>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            stop: AtomicBool::new(false),
            drain_until: Mutex::new(None),
            heartbeat: Heartbeat::new("signalling"),
            #[cfg(feature = "fault-injection")]
            stall: Mutex::new(None),
        }
    }
}

/// The signalling thread answers `/health` itself, so it cannot report its own stall: the
/// watchdog in [`RunningServer::wait`] ends the server when it has not turned for this
/// long (its loop turns at least every [`TICK`]), so that a supervisor restarts it.
pub const SIGNALLING_STALL: Duration = Duration::from_secs(10);

impl RunningServer {
    /// Asks the server to stop or drain (idempotent).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            lifecycle: self.lifecycle.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Each shard, indexed by shard id: its counters ([`ShardRemote::snapshot`]) and a
    /// way to send it commands.
    pub fn shards(&self) -> &[ShardRemote] {
        &self.shards
    }

    /// Stops the server and waits for its threads; as [`RunningServer::wait`].
    pub fn stop(self) -> Result<(), String> {
        self.stop_handle().stop();
        self.wait()
    }

    /// Waits until the server stops: `Ok` after a stop or a drain, `Err` with why when a
    /// thread of the server died or the signalling thread has not turned for
    /// [`SIGNALLING_STALL`] (a supervisor should restart the process).
    pub fn wait(mut self) -> Result<(), String> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        while !thread.is_finished() {
            let silence = self.lifecycle.heartbeat.silence(Instant::now());
            if silence >= SIGNALLING_STALL {
                // Left behind, stuck: told to stop should it ever turn again.
                self.stop_handle().stop();
                let why = format!(
                    "the signalling thread has not run for {:.1} s",
                    silence.as_secs_f64()
                );
                tracing::error!("{why}; exiting with a failure so that the server is restarted");
                return Err(why);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        match thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(why),
            Err(panic) => Err(format!(
                "the signalling thread panicked: {}",
                panic_message(&*panic)
            )),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_handle().stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Stops or drains a running server from any thread (a signal handler's thread, a test).
#[derive(Clone)]
pub struct StopHandle {
    lifecycle: Arc<Lifecycle>,
    waker: Arc<mio::Waker>,
}

impl StopHandle {
    /// Stops the server now; connected clients are told to reconnect (close 1012).
    pub fn stop(&self) {
        self.lifecycle.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// Drains the server: no new sessions, `/ready` answers 503, and the server stops
    /// when its last session ends or `timeout` passes, when the clients still there are
    /// told to reconnect. A second call keeps the first deadline.
    pub fn drain(&self, timeout: Duration) {
        let mut until = self
            .lifecycle
            .drain_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        until.get_or_insert(Instant::now() + timeout);
        drop(until);
        let _ = self.waker.wake();
    }

    /// Test-only: the signalling loop sleeps for `duration`, once, as if stuck.
    #[cfg(feature = "fault-injection")]
    pub fn inject_stall(&self, duration: Duration) {
        *self
            .lifecycle
            .stall
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(duration);
        let _ = self.waker.wake();
    }
}

/// How often the app's timers (grace periods, idle connections) are checked.
const TICK: Duration = Duration::from_millis(250);

/// Binds every socket, starts the shards and the signalling thread.
pub fn start(config: ServerConfig) -> io::Result<RunningServer> {
    let mut transport = Transport::bind(config.http, config.limits.clone())?;
    transport.set_metrics_token(config.metrics_token.clone());
    transport.set_tls(config.tls.clone());
    transport.set_base_path(&config.base_path);
    let http_addr = transport.local_addr();
    let waker = transport.waker();
    let (notice_tx, notice_rx) = unbounded();
    let mut engine_config = config.engine.clone();
    let identity = match &config.cluster {
        Some(c) => {
            let identity = relay::NodeIdentity::new(c.id.clone()).map_err(io::Error::other)?;
            engine_config.node_port = Some(NodePortConfig {
                bind: SocketAddr::new(engine_config.bind_ip, c.node_port),
                identity: identity.clone(),
                secret: c.secret.clone(),
            });
            Some(identity)
        }
        None => None,
    };
    let engine = Engine::start(&engine_config, notice_tx, waker.clone())?;
    let media_addrs: Vec<SocketAddr> = engine.shards.iter().map(|s| s.media_addr).collect();
    let shards = engine.shards.iter().map(|s| s.remote()).collect();
    let shard_addrs = engine.shards.iter().map(|s| MediaAddrs {
        udp: s.media_addr,
        tcp: s.tcp_addr,
    });
    let mut app = App::new(config.app.clone(), PeerFactory::new(), shard_addrs);
    let cluster = match (&config.cluster, identity, &engine.node_port) {
        (Some(c), Some(identity), Some(port)) => {
            let ip = engine_config.advertised_ip.unwrap_or(port.addr.ip());
            let node = cluster::NodeInfo {
                id: c.id.clone(),
                addresses: c.addresses.clone(),
                node_addr: SocketAddr::new(ip, port.addr.port()).to_string(),
                boot: data_encoding::HEXLOWER.encode(&identity.boot),
                load: 0.0,
            };
            // Peer ids are unique in the cluster: each node counts from a random base
            // (2^56 ids apart at most, never near the JSON number limit; ids are strings).
            let mut base = [0u8; 4];
            getrandom::fill(&mut base).map_err(io::Error::other)?;
            app.set_first_peer_id(u64::from(u32::from_be_bytes(base) >> 8) << 32);
            let wake = waker.clone();
            let link = ClusterLink::start(&c.redis_url, node, move || {
                let _ = wake.wake();
            });
            Some(link.map_err(io::Error::other)?)
        }
        _ => None,
    };
    let webhook = match config.app.auth.webhook() {
        Some(c) => {
            let wake = waker.clone();
            Some(Webhook::start(c.clone(), move || {
                let _ = wake.wake();
            })?)
        }
        None => None,
    };
    let lifecycle = Arc::new(Lifecycle::default());
    let thread_lifecycle = lifecycle.clone();
    let thread = std::thread::Builder::new()
        .name("signaling".into())
        .spawn(move || {
            run(
                transport,
                engine,
                app,
                cluster,
                webhook,
                notice_rx,
                &thread_lifecycle,
            )
        })?;
    tracing::info!(%http_addr, "signalling listening");
    Ok(RunningServer {
        http_addr,
        media_addrs,
        shards,
        lifecycle,
        waker,
        thread: Some(thread),
    })
}

/// A shard that has not turned its loop for this long is stalled (`/health` says 503). A
/// healthy shard turns at least every 500 ms (its housekeeping timer).
const STALL: Duration = Duration::from_secs(2);

/// Why the signalling loop ends.
enum End {
    /// Stop now (SIGINT, a test, the process ending).
    Stop,
    /// The drain is over: no session left, or its deadline passed.
    Drained,
    /// A thread died: the server fails.
    Failed(String),
}

fn run(
    mut transport: Transport,
    mut engine: Engine,
    mut app: App,
    mut cluster: Option<ClusterLink>,
    mut webhook: Option<Webhook>,
    notices: Receiver<Notice>,
    lifecycle: &Lifecycle,
) -> Result<(), String> {
    let mut events = Vec::new();
    let mut next_tick = Instant::now() + TICK;
    let mut draining = false;
    let end = loop {
        lifecycle.heartbeat.beat();
        #[cfg(feature = "fault-injection")]
        if let Some(d) = lifecycle
            .stall
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            std::thread::sleep(d);
        }
        if lifecycle.stop.load(Ordering::SeqCst) {
            break End::Stop;
        }
        let mut beats = engine
            .shards
            .iter()
            .map(|s| s.heartbeat())
            .chain(engine.node_port.as_ref().map(|n| n.heartbeat()));
        if let Some(why) = beats.find_map(|h| Some(format!("{} died: {}", h.name(), h.death()?))) {
            break End::Failed(why);
        }
        let drain_until = *lifecycle
            .drain_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(until) = drain_until {
            if !draining {
                draining = true;
                app.set_draining(true);
                tracing::info!(
                    sessions = app.session_count(),
                    "draining: no new sessions; stopping when the last ends or in {:.0} s",
                    until
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64()
                );
            }
            if app.session_count() == 0 || Instant::now() >= until {
                break End::Drained;
            }
        }
        transport.set_health(health(&engine, draining));
        app.set_descriptors_low(transport.descriptors_low());
        let wait = next_tick.saturating_duration_since(Instant::now());
        let page = |t: &Transport| metrics_page(&app, &engine, cluster.as_ref(), t);
        if let Err(e) = transport.poll(Some(wait), &mut events, &page) {
            break End::Failed(format!("the signalling transport failed: {e}"));
        }
        let now = Instant::now();
        for e in events.drain(..) {
            match e {
                TransportEvent::Open {
                    conn,
                    remote,
                    cookie,
                    forwarded_for,
                } => {
                    let visitor = Visitor {
                        address: Some(remote.ip()),
                        cookie,
                        forwarded_for,
                    };
                    app.on_open_from(now, conn, visitor);
                }
                TransportEvent::Text { conn, text } => app.on_text(now, conn, &text),
                TransportEvent::RateLimited { conn } => app.on_rate_limited(conn),
                TransportEvent::Closed { conn } => app.on_closed(now, conn),
                TransportEvent::Woken => {}
            }
        }
        for n in notices.try_iter() {
            app.on_notice(now, n);
        }
        if let Some(w) = webhook.as_mut() {
            for (conn, verdict) in w.verdicts(now) {
                app.on_verdict(now, ConnId(conn), verdict);
            }
        }
        if let Some(c) = cluster.as_mut() {
            for command in c.drain_events(&mut app) {
                if let Some(port) = &engine.node_port {
                    port.send(engine::msg::Control::Node(command));
                }
            }
            if let Some(addresses) = c.address_change() {
                transport.set_other_nodes(&addresses);
            }
        }
        if now >= next_tick {
            next_tick = now + TICK;
            let busy: Vec<f64> = engine.shards.iter().map(|s| s.snapshot().busy).collect();
            app.set_shard_busy(&busy);
            app.tick(now);
            if let Some(c) = cluster.as_mut() {
                c.sync(&app, busy.iter().copied().fold(0.0, f64::max));
            }
        }
        deliver(
            &mut app,
            &mut transport,
            &engine,
            cluster.as_mut(),
            webhook.as_mut(),
        );
    };
    let reason = match &end {
        End::Failed(_) => "the server failed and is restarting",
        End::Stop | End::Drained => "the server is restarting",
    };
    if app.session_count() > 0 {
        tracing::info!(
            sessions = app.session_count(),
            "telling the clients still connected to reconnect"
        );
    }
    app.close_all(reason);
    deliver(&mut app, &mut transport, &engine, cluster.as_mut(), None);
    // Let the close frames go out.
    let deadline = Instant::now() + Duration::from_millis(300);
    let page = |_: &Transport| String::new();
    while transport.open_connections() > 0 && Instant::now() < deadline {
        if transport
            .poll(Some(Duration::from_millis(20)), &mut events, &page)
            .is_err()
        {
            break;
        }
        events.clear();
    }
    tracing::info!("signalling stopping");
    engine.shutdown();
    match end {
        End::Failed(why) => {
            tracing::error!("{why}; exiting with a failure so that the server is restarted");
            Err(why)
        }
        End::Stop | End::Drained => Ok(()),
    }
}

/// Hands the app's output to the sockets, the shards, the node port and the cluster.
fn deliver(
    app: &mut App,
    transport: &mut Transport,
    engine: &Engine,
    mut cluster: Option<&mut ClusterLink>,
    mut webhook: Option<&mut Webhook>,
) {
    for out in app.take_output() {
        match out {
            Output::Send(conn, msg) => match serde_json::to_string(&msg) {
                Ok(text) => transport.send(conn, &text),
                Err(e) => tracing::error!("cannot serialise {msg:?}: {e}"),
            },
            Output::SendMany(conns, msg) => match serde_json::to_string(&msg) {
                Ok(text) => {
                    let text = SharedText::from(text);
                    for conn in conns {
                        transport.send_shared(conn, &text);
                    }
                }
                Err(e) => tracing::error!("cannot serialise {msg:?}: {e}"),
            },
            Output::Close(conn, code, reason) => transport.close(conn, code, &reason),
            Output::Control(shard, control) => match engine.shards.get(shard) {
                Some(s) => s.send(control),
                None => {
                    if let Some(port) = &engine.node_port {
                        port.send(control);
                    }
                }
            },
            Output::WhereIs(room) => {
                // Only asked in a cluster; a join waiting without one goes on at its timeout.
                if let Some(c) = cluster.as_deref_mut() {
                    c.where_is(&room);
                }
            }
            Output::Ask { conn, question } => match webhook.as_deref_mut() {
                Some(w) => w.ask(conn.0, question, Instant::now()),
                // Asked only with the webhook provider, which always has its client.
                None => tracing::error!("a join asks the webhook, but none is configured"),
            },
            Output::Moderate { room, by, action } => {
                if let Some(c) = cluster.as_deref_mut() {
                    c.send_moderation(&room, by, action);
                }
            }
            Output::ToNodes {
                room,
                from,
                to,
                data,
            } => {
                if let Some(c) = cluster.as_deref_mut() {
                    c.send_message(&room, from, to, data);
                }
            }
        }
    }
}

/// What the probes say: the shards that have not turned for [`STALL`], and draining.
fn health(engine: &Engine, draining: bool) -> Health {
    let now = Instant::now();
    let stalled: Vec<String> = engine
        .shards
        .iter()
        .map(|s| s.heartbeat())
        .chain(engine.node_port.as_ref().map(|n| n.heartbeat()))
        .map(|h| (h.name(), h.silence(now)))
        .filter(|(_, silence)| *silence >= STALL)
        .map(|(name, silence)| format!("{name} has not run for {:.1} s", silence.as_secs_f64()))
        .collect();
    Health {
        stalled: (!stalled.is_empty()).then(|| stalled.join("; ")),
        draining,
    }
}

/// The `/metrics` page, from the app, the shards' published counters, the transport and
/// this process's accounting.
fn metrics_page(
    app: &App,
    engine: &Engine,
    cluster: Option<&ClusterLink>,
    transport: &Transport,
) -> String {
    let shards: Vec<_> = engine.shards.iter().map(|s| s.snapshot()).collect();
    let now = Instant::now();
    let silences: Vec<_> = engine
        .shards
        .iter()
        .map(|s| s.heartbeat().silence(now))
        .collect();
    let process = procstat::sample(std::process::id()).ok();
    metrics::render(&metrics::Figures {
        rooms: app.room_count(),
        sessions: app.session_count(),
        websockets: transport.open_connections(),
        shards: &shards,
        silences: &silences,
        process: process.as_ref(),
        cluster: cluster.map(|c| ClusterFigures {
            node_port: engine
                .node_port
                .as_ref()
                .map(|p| p.snapshot())
                .unwrap_or_default(),
            ..c.figures()
        }),
    })
}
