//! The signalling thread: the transport's events and the shards' notices go into the
//! [`App`]; its output goes back to sockets and shards.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use engine::factory::PeerFactory;
use engine::io::{Engine, EngineConfig, ShardRemote};
use engine::msg::Notice;

use crate::app::{App, AppConfig, Output};
use crate::metrics;
use crate::tls::TlsFiles;
use crate::transport::{Limits, Transport, TransportEvent};

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
}

/// A running server.
pub struct RunningServer {
    /// Where HTTP and WebSocket listen.
    pub http_addr: SocketAddr,
    /// Each shard's media address.
    pub media_addrs: Vec<SocketAddr>,
    /// Each shard, for its counters (and commands, in tests).
    shards: Vec<ShardRemote>,
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Asks the server to stop (idempotent).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stop: self.stop.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Each shard, indexed by shard id: its counters ([`ShardRemote::snapshot`]) and a
    /// way to send it commands.
    pub fn shards(&self) -> &[ShardRemote] {
        &self.shards
    }

    /// Stops the server and waits for its threads.
    pub fn stop(mut self) {
        self.stop_handle().stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Waits until the server stops (after a [`StopHandle::stop`]).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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

/// Stops a running server from any thread (a signal handler's thread, a test).
#[derive(Clone)]
pub struct StopHandle {
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
}

impl StopHandle {
    /// Stops the server.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
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
    let engine = Engine::start(&config.engine, notice_tx, waker.clone())?;
    let media_addrs: Vec<SocketAddr> = engine.shards.iter().map(|s| s.media_addr).collect();
    let shards = engine.shards.iter().map(|s| s.remote()).collect();
    let app = App::new(config.app.clone(), PeerFactory::new(), media_addrs.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("signaling".into())
        .spawn(move || run(transport, engine, app, notice_rx, thread_stop))?;
    tracing::info!(%http_addr, "signalling listening");
    Ok(RunningServer {
        http_addr,
        media_addrs,
        shards,
        stop,
        waker,
        thread: Some(thread),
    })
}

fn run(
    mut transport: Transport,
    mut engine: Engine,
    mut app: App,
    notices: Receiver<Notice>,
    stop: Arc<AtomicBool>,
) {
    let mut events = Vec::new();
    let mut next_tick = Instant::now() + TICK;
    while !stop.load(Ordering::SeqCst) {
        let wait = next_tick.saturating_duration_since(Instant::now());
        let page = |t: &Transport| metrics_page(&app, &engine, t);
        if let Err(e) = transport.poll(Some(wait), &mut events, &page) {
            tracing::error!("signalling transport failed: {e}");
            break;
        }
        let now = Instant::now();
        for e in events.drain(..) {
            match e {
                TransportEvent::Open { conn, .. } => app.on_open(now, conn),
                TransportEvent::Text { conn, text } => app.on_text(now, conn, &text),
                TransportEvent::RateLimited { conn } => app.on_rate_limited(conn),
                TransportEvent::Closed { conn } => app.on_closed(now, conn),
                TransportEvent::Woken => {}
            }
        }
        for n in notices.try_iter() {
            app.on_notice(n);
        }
        if now >= next_tick {
            next_tick = now + TICK;
            let busy: Vec<f64> = engine.shards.iter().map(|s| s.snapshot().busy).collect();
            app.set_shard_busy(&busy);
            app.tick(now);
        }
        for out in app.take_output() {
            match out {
                Output::Send(conn, msg) => match serde_json::to_string(&msg) {
                    Ok(text) => transport.send(conn, &text),
                    Err(e) => tracing::error!("cannot serialise {msg:?}: {e}"),
                },
                Output::Close(conn, code, reason) => transport.close(conn, code, &reason),
                Output::Control(shard, control) => {
                    if let Some(s) = engine.shards.get(shard) {
                        s.send(control);
                    }
                }
            }
        }
    }
    tracing::info!("signalling stopping");
    engine.shutdown();
}

/// The `/metrics` page, from the app, the shards' published counters, the transport and
/// this process's accounting.
fn metrics_page(app: &App, engine: &Engine, transport: &Transport) -> String {
    let shards: Vec<_> = engine.shards.iter().map(|s| s.snapshot()).collect();
    let process = procstat::sample(std::process::id()).ok();
    metrics::render(&metrics::Figures {
        rooms: app.room_count(),
        sessions: app.session_count(),
        websockets: transport.open_connections(),
        shards: &shards,
        process: process.as_ref(),
    })
}
