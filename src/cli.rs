//! The command line: every option also reads a `PEERCALLS_*` environment variable.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use engine::io::EngineConfig;
use engine::shard::Liveness;
use signaling::app::AppConfig;
use signaling::server::{ServerConfig, start};
use signaling::transport::Limits;

/// Web-first video conferencing: open a room's link and you are in the call.
#[derive(Debug, Parser)]
#[command(name = "peer-calls", version, args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Options of `serve`, the default command.
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// Address for HTTP and WebSocket (the page and signalling).
    #[arg(long, env = "PEERCALLS_BIND", default_value = "127.0.0.1:3000")]
    pub(crate) bind: SocketAddr,

    /// IP address the media (UDP) sockets bind to. Defaults to the IP of --bind.
    #[arg(long, env = "PEERCALLS_MEDIA_IP")]
    pub(crate) media_ip: Option<IpAddr>,

    /// First UDP port for media: shard k listens on this port + k. 0 lets the system
    /// choose each port.
    #[arg(long, env = "PEERCALLS_UDP_PORT", default_value_t = 50000)]
    pub(crate) udp_port: u16,

    /// Number of media shards (threads, each pinned to a core). Defaults to one per core.
    #[arg(long, env = "PEERCALLS_SHARDS")]
    pub(crate) shards: Option<usize>,

    /// The IP address put in ICE candidates, that browsers send media to. Needed when
    /// the media IP is 0.0.0.0 or the server is behind NAT.
    #[arg(long, env = "PEERCALLS_ADVERTISE_IP")]
    pub(crate) advertise_ip: Option<IpAddr>,

    /// Seconds a session survives a dropped WebSocket, waiting for the client to
    /// reconnect with its token.
    #[arg(long, env = "PEERCALLS_RECONNECT_GRACE", default_value_t = 10)]
    pub(crate) reconnect_grace: u64,

    /// A room keeps all members on one shard until it has this many; then new
    /// members go to the least-loaded shard.
    #[arg(long, env = "PEERCALLS_ROOM_SPREAD", default_value_t = 8)]
    pub(crate) room_spread: usize,

    /// Members a room may have.
    #[arg(long, env = "PEERCALLS_MAX_ROOM_SIZE", default_value_t = 100)]
    pub(crate) max_room_size: usize,

    /// Rooms the server may hold.
    #[arg(long, env = "PEERCALLS_MAX_ROOMS", default_value_t = 10_000)]
    pub(crate) max_rooms: usize,

    /// Do not pin shard threads to cores.
    #[arg(long, env = "PEERCALLS_NO_PIN")]
    pub(crate) no_pin: bool,
}

impl ServeArgs {
    pub(crate) fn config(&self) -> Result<ServerConfig, String> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = self.shards.unwrap_or(cores);
        if shards == 0 || shards > 1024 {
            return Err(format!("--shards must be between 1 and 1024, not {shards}"));
        }
        Ok(ServerConfig {
            http: self.bind,
            engine: EngineConfig {
                bind_ip: self.media_ip.unwrap_or(self.bind.ip()),
                first_port: self.udp_port,
                shards,
                advertised_ip: self.advertise_ip,
                pin_cores: !self.no_pin && shards <= cores,
                liveness: Liveness::default(),
            },
            app: AppConfig {
                reconnect_grace: Duration::from_secs(self.reconnect_grace),
                spread_after: self.room_spread,
                max_peers_per_room: self.max_room_size,
                max_rooms: self.max_rooms,
                ..AppConfig::default()
            },
            limits: Limits::default(),
        })
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub(crate) fn serve(args: ServeArgs) -> Result<(), String> {
    let config = args.config()?;
    let server = start(config).map_err(|e| format!("cannot start: {e}"))?;
    let stop = server.stop_handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            tracing::info!(signal = sig, "stopping");
            stop.stop();
        }
    });
    tracing::info!(
        "open http://{} in a browser; media on UDP {:?}",
        server.http_addr,
        server.media_addrs
    );
    server.wait();
    tracing::info!("stopped");
    Ok(())
}
