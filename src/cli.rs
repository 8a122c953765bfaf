//! The command line: every option also reads a `PEERCALLS_*` environment variable.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Parser, Subcommand};
use engine::io::EngineConfig;
use engine::shard::Liveness;
use signaling::app::AppConfig;
use signaling::ice::IceConfig;
use signaling::server::{ClusterConfig, ServerConfig, start};
use signaling::tls::TlsFiles;
use signaling::transport::Limits;

use crate::config::{Provenance, Source};

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
    /// Print the effective configuration of `serve` (flags, environment, --config file,
    /// defaults) as a configuration file, each value with where it came from.
    Config(ServeArgs),
    /// Join a room and publish media into it: RTP arriving on local UDP ports (for
    /// example from ffmpeg) or IVF/Ogg Opus files played in real time.
    Play(crate::play::PlayArgs),
    /// Generate load with synthetic WebRTC peers and report what the server does with it
    /// (`bench meeting|webinar|audio [flags]`, `bench floor`).
    Bench(bench::BenchArgs),
    /// Print an access token for a server with `--auth jwt` (on its last line), for
    /// testing and operations.
    Token(crate::token::TokenArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// A configuration file (TOML): every option below has a key of the same name in
    /// snake_case (--udp-port is udp_port). Flags and environment variables override it.
    /// `peer-calls config` shows the result; peer-calls.example.toml lists every key.
    #[arg(long, env = "PEERCALLS_CONFIG")]
    pub(crate) config: Option<PathBuf>,

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

    /// ICE over TCP, for clients whose UDP is blocked: shard k also listens on this TCP
    /// port + k (a passive candidate browsers use only when UDP fails). 0 lets the system
    /// choose each port. Without it: UDP only.
    #[arg(long, env = "PEERCALLS_TCP_PORT")]
    pub(crate) tcp_port: Option<u16>,

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

    /// A room keeps all members on one shard until it has this many (and that shard is
    /// `--spread-load` busy); then new members go to the least-loaded shard.
    #[arg(long, env = "PEERCALLS_ROOM_SPREAD", default_value_t = 8)]
    pub(crate) room_spread: usize,

    /// A room of `--room-spread` members spreads only once its shard is busy this share
    /// of its time (0 to 1; 0: on size alone). A packet that crosses to another shard
    /// costs a hand-off and a wake-up there, dearer than forwarding it at low load.
    #[arg(long, env = "PEERCALLS_SPREAD_LOAD", default_value_t = 0.25)]
    pub(crate) spread_load: f64,

    /// A media shard busy this share of its time or more (0.1 to 1) gets no new peers
    /// while another is less busy; when every shard is, new sessions are refused
    /// (`unavailable`, then close code 1013) instead of being admitted to time out. 1:
    /// never refuse.
    #[arg(long, env = "PEERCALLS_MAX_SHARD_LOAD", default_value_t = 0.9)]
    pub(crate) max_shard_load: f64,

    /// Members a room may have.
    #[arg(long, env = "PEERCALLS_MAX_ROOM_SIZE", default_value_t = 100)]
    pub(crate) max_room_size: usize,

    /// Tracks a member may publish (camera, microphone, screen, screen sound); beyond,
    /// `too_many_tracks`. With the room size it bounds the largest subscription, and the
    /// message limit grows to fit it.
    #[arg(long, env = "PEERCALLS_MAX_TRACKS_PER_MEMBER", default_value_t = 4)]
    pub(crate) max_tracks_per_member: usize,

    /// Rooms the server may hold.
    #[arg(long, env = "PEERCALLS_MAX_ROOMS", default_value_t = 10_000)]
    pub(crate) max_rooms: usize,

    /// The largest signalling message (WebSocket frame) a client may send, in bytes; a
    /// larger one closes its connection with code 1009. Default: what a client needs to
    /// answer an offer of every track of a full room (1.5 KiB × --max-room-size ×
    /// --max-tracks-per-member, 612 KiB with their defaults), at least 256 KiB; a smaller
    /// value is refused.
    #[arg(long, env = "PEERCALLS_MAX_MESSAGE")]
    pub(crate) max_message: Option<usize>,

    /// Signalling messages a second each connection may send on average (bursts of
    /// twice as many pass); over it a message gets `rate_limited`, and five times over
    /// it the connection is closed with 1008. 0: no limit.
    #[arg(long, env = "PEERCALLS_MESSAGES_PER_SECOND", default_value_t = 50)]
    pub(crate) messages_per_second: u32,

    /// Connections that may be in their HTTP/WebSocket handshake at once; a newcomer
    /// beyond it evicts the oldest unfinished one.
    #[arg(long, env = "PEERCALLS_MAX_PENDING_HANDSHAKES", default_value_t = 1024)]
    pub(crate) max_pending_handshakes: usize,

    /// Of those, how many may come from one address (IPv4, or IPv6 /64); a newcomer
    /// beyond it evicts that address's oldest. Behind a reverse proxy every client has
    /// the proxy's address: raise it.
    #[arg(long, env = "PEERCALLS_MAX_PENDING_PER_ADDRESS", default_value_t = 64)]
    pub(crate) max_pending_per_address: usize,

    /// Seconds a connection may take to send its HTTP request line and headers (or its
    /// WebSocket upgrade).
    #[arg(long, env = "PEERCALLS_HANDSHAKE_TIMEOUT", default_value_t = 5)]
    pub(crate) handshake_timeout: u64,

    /// WebSockets that may be open at once; an upgrade beyond it gets HTTP 503.
    #[arg(long, env = "PEERCALLS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub(crate) max_connections: usize,

    /// Lets other hosts read `/metrics` (Prometheus) by sending this token as
    /// `Authorization: Bearer <token>`. Without one, only clients on this host may read
    /// it. Prefer the environment variable: a command line is visible to other users.
    #[arg(long, env = "PEERCALLS_METRICS_TOKEN", hide_env_values = true)]
    pub(crate) metrics_token: Option<String>,

    /// Join a cluster of nodes coordinated on this Redis (`redis://host:port/`): the
    /// node registers itself and the rooms it holds there. Without it the server is one
    /// node and needs no Redis.
    #[arg(long, env = "PEERCALLS_REDIS", hide_env_values = true)]
    pub(crate) redis: Option<String>,

    /// This node's name in the cluster, unique among its nodes. Default: the host's name
    /// and the signalling port.
    #[arg(long, env = "PEERCALLS_NODE_ID")]
    pub(crate) node_id: Option<String>,

    /// Where clients reach this node (a URL of its page; repeat for several), told to
    /// the other nodes. Default: the --bind address.
    #[arg(long, env = "PEERCALLS_NODE_ADDRESS")]
    pub(crate) node_address: Vec<String>,

    /// The secret every node of the cluster shares (at least 16 characters): the keys
    /// that seal media between each pair of nodes are derived from it. Needed with
    /// --redis. Prefer the environment variable or the file: a command line is visible
    /// to other users.
    #[arg(long, env = "PEERCALLS_CLUSTER_SECRET", hide_env_values = true)]
    pub(crate) cluster_secret: Option<String>,

    /// Who may join: `open` (or `none`: anyone with a room's link, as without this
    /// option), `jwt` (an access token in the link, `…/call/ROOM?access_token=…`, naming
    /// the member's grants; needs --jwt-secret or --jwt-keys) or `webhook` (an operator's
    /// service says, per join; needs --auth-webhook). docs/permissions.md.
    #[arg(long, env = "PEERCALLS_AUTH", default_value = "open",
          value_parser = ["open", "none", "jwt", "webhook"])]
    pub(crate) auth: String,

    /// With --auth webhook: the URL (http:// or https://) each join is POSTed to, with
    /// the room, the access token, the cookie and the client's address; it answers with
    /// the grants. docs/permissions.md shows the request and the answer.
    #[arg(long, env = "PEERCALLS_AUTH_WEBHOOK")]
    pub(crate) auth_webhook: Option<String>,

    /// With --auth webhook: milliseconds a join waits for the service's answer; without
    /// one in time the join is refused (and the client says so).
    #[arg(long, env = "PEERCALLS_AUTH_WEBHOOK_TIMEOUT", default_value_t = 2000)]
    pub(crate) auth_webhook_timeout: u64,

    /// With --auth webhook: seconds an answer is reused for the same question (room,
    /// token, cookie, address); 0: ask every time.
    #[arg(long, env = "PEERCALLS_AUTH_WEBHOOK_CACHE", default_value_t = 10)]
    pub(crate) auth_webhook_cache: u64,

    /// With open rooms: every room needs this password (checked by the server; wrong
    /// guesses are limited per address). Without it, the first member of a room may set
    /// one in the page. Prefer the environment variable or the file: a command line is
    /// visible to other users.
    #[arg(long, env = "PEERCALLS_ROOM_PASSWORD", hide_env_values = true)]
    pub(crate) room_password: Option<String>,

    /// The address of a reverse proxy in front of the server (repeat for several): from
    /// it, a client's address is the last one its X-Forwarded-For header names. Used for
    /// the webhook's question and to limit password guesses per client.
    #[arg(long, env = "PEERCALLS_TRUSTED_PROXY", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub(crate) trusted_proxy: Vec<std::net::IpAddr>,

    /// With --auth jwt: a secret (32 bytes or more) tokens are signed with (HS256); as
    /// `KID=SECRET`, the key tokens naming that kid use (repeat for rotation). Prefer the
    /// environment variable or the file: a command line is visible to other users.
    #[arg(long, env = "PEERCALLS_JWT_SECRET", hide_env_values = true, action = clap::ArgAction::Append)]
    pub(crate) jwt_secret: Vec<String>,

    /// With --auth jwt: a JWKS file (`{"keys": [...]}`) of public keys tokens may be
    /// signed with: EC keys for ES256, RSA keys for RS256, each with its kid.
    #[arg(long, env = "PEERCALLS_JWT_KEYS")]
    pub(crate) jwt_keys: Option<PathBuf>,

    /// In a cluster, send a client joining a room that another node holds to that node
    /// (its media then need not cross between nodes). Turn it off when users are pointed
    /// at the node nearest to them (DNS per region): each stays where it is.
    #[arg(long, env = "PEERCALLS_ROOM_AFFINITY", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) room_affinity: bool,

    /// Direct calls: a room of at most this many members connects its browsers peer to
    /// peer (the server relays their signalling only), and moves to the server when one
    /// more joins. 0 (the default) or 1: always through the server. See
    /// docs/web-client.md, "Direct calls for two".
    #[arg(long, env = "PEERCALLS_MESH_MAX", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub(crate) mesh_max: u8,

    /// The UDP port of the server-to-server transport, on the media address (other
    /// nodes send this node media there; open it to them). 0: the system picks one,
    /// published in the node's registry entry.
    #[arg(long, env = "PEERCALLS_NODE_PORT", default_value_t = 0)]
    pub(crate) node_port: u16,

    /// Serve the page and the WebSocket over https/wss with this certificate: a PEM file,
    /// the server's certificate first, then its chain. Needs --tls-key. Read again on
    /// SIGHUP (for a renewed certificate) without dropping calls. Plain http on the port
    /// is redirected to https.
    #[arg(long, env = "PEERCALLS_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "PEERCALLS_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,

    /// Serve everything under this path, for a reverse proxy that forwards it (for
    /// example /calls: the page is at /calls/, the WebSocket at /calls/ws). The probes
    /// (/health, /ready, /metrics) answer at the root too.
    #[arg(long, env = "PEERCALLS_BASE_PATH", default_value = "")]
    pub(crate) base_path: String,

    /// A STUN or TURN server the browsers use (repeatable, or comma-separated in the
    /// variable): stun:host[:port], turn:host[:port][?transport=udp|tcp], turns:host[:port].
    /// TURN needs --turn-secret.
    #[arg(long = "ice-server", env = "PEERCALLS_ICE_SERVER", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub(crate) ice_server: Vec<String>,

    /// The secret this server shares with its TURN server (coturn: use-auth-secret and
    /// static-auth-secret): each session gets TURN credentials made with it, valid for
    /// --turn-ttl. Prefer the environment variable or the file: a command line is visible
    /// to other users.
    #[arg(long, env = "PEERCALLS_TURN_SECRET", hide_env_values = true)]
    pub(crate) turn_secret: Option<String>,

    /// Seconds a session's TURN credentials stay valid (a call relayed through TURN
    /// longer than this loses its relay when TURN refreshes the allocation).
    #[arg(long, env = "PEERCALLS_TURN_TTL", default_value_t = 21_600)]
    pub(crate) turn_ttl: u64,

    /// Seconds SIGTERM waits for the calls in progress to end: meanwhile the server takes
    /// no new sessions and /ready answers 503; at the end the clients still connected are
    /// told to reconnect. SIGINT (Ctrl-C) stops at once.
    #[arg(long, env = "PEERCALLS_DRAIN_TIMEOUT", default_value_t = 30)]
    pub(crate) drain_timeout: u64,

    /// Do not pin shard threads to cores.
    // Boolish: the variable may be 1/0, yes/no, on/off as well as true/false.
    #[arg(long, env = "PEERCALLS_NO_PIN", value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) no_pin: bool,
}

/// A value that parses but cannot be used: its option's key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{}: {message}", key.replace('_', "-"))]
pub(crate) struct ArgError {
    /// The option's key (its id, snake_case).
    pub(crate) key: &'static str,
    /// What is wrong with its value.
    pub(crate) message: String,
}

impl ArgError {
    fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }

    /// The error, named by where the value came from (a file's line, a variable).
    pub(crate) fn located(&self, provenance: &Provenance) -> String {
        match provenance.source(self.key) {
            Source::Flag | Source::Default => self.to_string(),
            _ => provenance.locate(self.key, &self.message),
        }
    }
}

impl ServeArgs {
    /// The Redis, this node's registry entry and the node port, with `--redis`.
    fn cluster(&self, tls: bool) -> Result<Option<ClusterConfig>, ArgError> {
        let Some(url) = self.redis.clone().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        cluster::check_url(&url).map_err(|e| ArgError::new("redis", e))?;
        let secret = match self.cluster_secret.as_deref() {
            None | Some("") => {
                return Err(ArgError::new(
                    "cluster_secret",
                    "a cluster (--redis) needs the secret its nodes share",
                ));
            }
            Some(s) if s.len() < 16 => {
                return Err(ArgError::new(
                    "cluster_secret",
                    "must be at least 16 characters",
                ));
            }
            Some(s) => s.as_bytes().to_vec(),
        };
        let id = self.node_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "node".into());
            format!("{host}:{}", self.bind.port())
        });
        let addresses = if self.node_address.is_empty() {
            let scheme = if tls { "https" } else { "http" };
            vec![format!("{scheme}://{}", self.bind)]
        } else {
            self.node_address.clone()
        };
        Ok(Some(ClusterConfig {
            redis_url: url,
            id,
            addresses,
            secret,
            node_port: self.node_port,
        }))
    }

    /// The `--auth` provider with its keys.
    fn auth_provider(&self) -> Result<auth::Provider, ArgError> {
        let open = matches!(self.auth.as_str(), "open" | "none");
        if self.room_password.is_some() && !open {
            return Err(ArgError::new(
                "room_password",
                "a room password is for open rooms; with --auth jwt or webhook, the provider decides who joins",
            ));
        }
        if self.mesh_max >= 2 && !open {
            // Both members of a direct call signal it with app messages and send both
            // their camera and microphone; with a provider, a member may lack either, and
            // the other would wait for a call that never connects.
            return Err(ArgError::new(
                "mesh_max",
                "direct calls are for open rooms; with --auth jwt or webhook, members' grants differ and calls go through the server",
            ));
        }
        if self.room_password.as_deref() == Some("") {
            return Err(ArgError::new("room_password", "the room password is empty"));
        }
        if open {
            return Ok(auth::Provider::Open);
        }
        if self.auth == "webhook" {
            let url = self.auth_webhook.as_deref().ok_or_else(|| {
                ArgError::new("auth", "webhook needs the service's URL: --auth-webhook")
            })?;
            let config = auth::WebhookConfig::new(
                url,
                Duration::from_millis(self.auth_webhook_timeout),
                Duration::from_secs(self.auth_webhook_cache),
            )
            .map_err(|e| ArgError::new("auth_webhook", e))?;
            return Ok(auth::Provider::Webhook(config));
        }
        let mut keys = auth::JwtKeys::default();
        for s in &self.jwt_secret {
            let (kid, secret) = split_kid(s);
            keys.add_secret(kid, secret.as_bytes())
                .map_err(|e| ArgError::new("jwt_secret", e))?;
        }
        if let Some(path) = &self.jwt_keys {
            let json = std::fs::read_to_string(path)
                .map_err(|e| ArgError::new("jwt_keys", format!("{}: {e}", path.display())))?;
            keys.add_jwks(&json)
                .map_err(|e| ArgError::new("jwt_keys", format!("{}: {e}", path.display())))?;
        }
        if keys.is_empty() {
            return Err(ArgError::new(
                "auth",
                "jwt needs the keys tokens are signed with: --jwt-secret or --jwt-keys",
            ));
        }
        Ok(auth::Provider::Jwt(keys))
    }

    pub(crate) fn config(&self) -> Result<ServerConfig, ArgError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = self.shards.unwrap_or(cores);
        if shards == 0 || shards > 1024 {
            return Err(ArgError::new(
                "shards",
                format!("must be between 1 and 1024, not {shards}"),
            ));
        }
        if !(0.0..=1.0).contains(&self.spread_load) {
            return Err(ArgError::new(
                "spread_load",
                format!("must be between 0 and 1, not {}", self.spread_load),
            ));
        }
        if !(0.1..=1.0).contains(&self.max_shard_load) {
            return Err(ArgError::new(
                "max_shard_load",
                format!("must be between 0.1 and 1, not {}", self.max_shard_load),
            ));
        }
        let room = AppConfig {
            max_peers_per_room: self.max_room_size,
            max_tracks_per_member: self.max_tracks_per_member,
            ..AppConfig::default()
        };
        let needed = room.largest_answer();
        let max_message = match self.max_message {
            None => needed.max(256 * 1024),
            Some(m) if m < needed => {
                return Err(ArgError::new(
                    "max_message",
                    format!(
                        "{m} bytes cannot carry the answer to a full room's subscription \
                         ({needed} bytes with {} members of {} tracks): raise it, or lower \
                         max_room_size or max_tracks_per_member",
                        self.max_room_size, self.max_tracks_per_member
                    ),
                ));
            }
            Some(m) => m,
        };
        if self.max_pending_handshakes == 0 {
            return Err(ArgError::new(
                "max_pending_handshakes",
                "must be at least 1",
            ));
        }
        if self.max_pending_per_address == 0 {
            return Err(ArgError::new(
                "max_pending_per_address",
                "must be at least 1",
            ));
        }
        if self.max_tracks_per_member == 0 {
            return Err(ArgError::new("max_tracks_per_member", "must be at least 1"));
        }
        if self.handshake_timeout == 0 {
            return Err(ArgError::new("handshake_timeout", "must be at least 1"));
        }
        let base_path = base_path(&self.base_path)?;
        let ice = IceConfig {
            urls: self.ice_server.clone(),
            turn_secret: self.turn_secret.clone().filter(|s| !s.is_empty()),
            turn_ttl: Duration::from_secs(self.turn_ttl),
        };
        ice.check()
            .map_err(|e| ArgError::new("ice_server", e.to_string()))?;
        if self.turn_ttl < 60 {
            return Err(ArgError::new("turn_ttl", "must be at least 60 seconds"));
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(
                TlsFiles::load(cert, key).map_err(|e| ArgError::new("tls_cert", e.to_string()))?,
            ),
            _ => None,
        };
        Ok(ServerConfig {
            http: self.bind,
            engine: EngineConfig {
                bind_ip: self.media_ip.unwrap_or(self.bind.ip()),
                first_port: self.udp_port,
                shards,
                advertised_ip: self.advertise_ip,
                pin_cores: !self.no_pin && shards <= cores,
                liveness: Liveness::default(),
                tcp_first_port: self.tcp_port,
                node_port: None,
            },
            app: AppConfig {
                reconnect_grace: Duration::from_secs(self.reconnect_grace),
                spread_after: self.room_spread,
                spread_load: self.spread_load,
                max_shard_load: self.max_shard_load,
                max_peers_per_room: self.max_room_size,
                max_tracks_per_member: self.max_tracks_per_member,
                max_rooms: self.max_rooms,
                ice,
                room_affinity: self.room_affinity,
                mesh_max: usize::from(self.mesh_max),
                auth: self.auth_provider()?,
                room_password: self.room_password.clone(),
                trusted_proxies: self.trusted_proxy.clone(),
                data_messages_per_second: self.messages_per_second,
                ..AppConfig::default()
            },
            limits: Limits {
                max_message,
                messages_per_second: self.messages_per_second,
                max_pending: self.max_pending_handshakes,
                max_pending_per_address: self.max_pending_per_address,
                handshake_timeout: Duration::from_secs(self.handshake_timeout),
                max_connections: self.max_connections,
                ..Limits::default()
            },
            metrics_token: self.metrics_token.clone(),
            cluster: self.cluster(tls.is_some())?,
            tls,
            base_path,
        })
    }
}

/// `KID=SECRET` as (kid, secret); anything else is a secret for tokens that name no kid.
pub(crate) fn split_kid(s: &str) -> (Option<&str>, &str) {
    match s.split_once('=') {
        Some((kid, secret))
            if !kid.is_empty()
                && kid.len() <= 64
                && kid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            (Some(kid), secret)
        }
        _ => (None, s),
    }
}

/// `--base-path`, normalised: "" or `/segment[/segment…]`, no trailing slash, only
/// characters a URL path keeps as they are.
fn base_path(raw: &str) -> Result<String, ArgError> {
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let ok = trimmed.starts_with('/')
        && !trimmed.contains("//")
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
        && !trimmed.split('/').any(|seg| seg == "." || seg == "..");
    if !ok {
        return Err(ArgError::new(
            "base_path",
            format!(
                "{raw:?} is not a path prefix: use /name or /name/name with letters, digits, '-', '.', '_', '~'"
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Every connection is a file descriptor: the soft limit (often 1024) goes up to the hard
/// one, as the Go runtime and nginx's `worker_rlimit_nofile` do. Past what remains, joins are
/// refused with `unavailable` (see the transport's admission).
fn raise_descriptor_limit() {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct they are given, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return;
        }
        if rl.rlim_cur < rl.rlim_max {
            let was = rl.rlim_cur;
            rl.rlim_cur = rl.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                rl.rlim_cur = was;
            }
        }
    }
    tracing::info!(limit = rl.rlim_cur, "file descriptors");
}

/// Runs the server until SIGINT or SIGTERM.
pub(crate) fn serve(args: ServeArgs, provenance: &Provenance) -> anyhow::Result<()> {
    let config = args
        .config()
        .map_err(|e| anyhow!("{}", e.located(provenance)))?;
    let tls = config.tls.clone();
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = config.base_path.clone();
    raise_descriptor_limit();
    let server = start(config).map_err(|e| anyhow!("cannot start: {e}"))?;
    let stop = server.stop_handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| anyhow!("cannot install signal handlers: {e}"))?;
    std::thread::spawn(move || {
        let mut draining = false;
        for sig in signals.forever() {
            if sig == signal_hook::consts::SIGHUP {
                // A renewed certificate: new connections get it, open ones keep theirs.
                match &tls {
                    Some(tls) => match tls.reload() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate and key read again"),
                        Err(e) => tracing::error!(
                            "SIGHUP: the new TLS certificate cannot be used, the old one stays: {e}"
                        ),
                    },
                    None => tracing::info!("SIGHUP: nothing to reload (no --tls-cert)"),
                }
                continue;
            }
            if sig == signal_hook::consts::SIGTERM && !draining {
                // A supervisor stopping the service: finish the calls first.
                draining = true;
                tracing::info!("SIGTERM: draining (a second SIGTERM or SIGINT stops at once)");
                stop.drain(drain_timeout);
                continue;
            }
            tracing::info!(signal = sig, "stopping");
            stop.stop();
            break;
        }
    });
    tracing::info!(
        "open {scheme}://{}{base}/ in a browser; media on UDP {:?}",
        server.http_addr,
        server.media_addrs
    );
    server.wait().map_err(|why| anyhow!("{why}"))?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod limit_flags {
    use super::*;

    fn config(args: &[&str]) -> anyhow::Result<ServerConfig> {
        let cli = Cli::try_parse_from(std::iter::once("peer-calls").chain(args.iter().copied()))?;
        Ok(cli.serve.config()?)
    }

    #[test]
    fn a_cluster_needs_a_shared_secret_of_16_characters() {
        let redis = ["--redis", "redis://127.0.0.1:6379/"];
        let err = |extra: &[&str]| {
            let args: Vec<&str> = redis.iter().chain(extra).copied().collect();
            config(&args).unwrap_err().to_string()
        };
        assert!(
            err(&[]).contains("--cluster-secret: a cluster (--redis) needs"),
            "{}",
            err(&[])
        );
        assert!(err(&["--cluster-secret", "short"]).contains("at least 16 characters"));
        let c = config(&[
            "--redis",
            "redis://127.0.0.1:6379/",
            "--cluster-secret",
            "sixteen chars ok",
            "--node-id",
            "n1",
            "--node-port",
            "7100",
        ])
        .unwrap()
        .cluster
        .expect("a cluster");
        assert_eq!((c.id.as_str(), c.node_port), ("n1", 7100));
        assert_eq!(c.secret, b"sixteen chars ok");
        assert!(
            config(&[]).unwrap().cluster.is_none(),
            "one node by default"
        );
    }

    #[test]
    fn direct_calls_are_for_open_rooms_and_off_by_default() {
        assert_eq!(config(&[]).unwrap().app.mesh_max, 0);
        assert_eq!(config(&["--mesh-max", "2"]).unwrap().app.mesh_max, 2);
        let err = config(&[
            "--mesh-max",
            "2",
            "--auth",
            "webhook",
            "--auth-webhook",
            "http://127.0.0.1:9/",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("direct calls are for open rooms"), "{err}");
        assert!(config(&["--mesh-max", "3"]).is_err(), "at most two");
    }

    #[test]
    fn limits_default_to_the_transport_defaults() {
        let c = config(&[]).unwrap();
        let d = Limits::default();
        // The message limit fits a full room's subscription, as the transport's does.
        assert_eq!(c.limits.max_message, AppConfig::default().largest_answer());
        assert!(d.max_message >= c.limits.max_message);
        assert_eq!(c.limits.messages_per_second, d.messages_per_second);
        assert_eq!(c.limits.max_pending, d.max_pending);
        assert_eq!(c.limits.max_pending_per_address, d.max_pending_per_address);
        assert_eq!(c.limits.handshake_timeout, d.handshake_timeout);
        assert_eq!(c.limits.max_connections, d.max_connections);
        assert_eq!(c.app.max_peers_per_room, 100);
        assert_eq!(c.app.max_rooms, 10_000);
    }

    #[test]
    fn every_limit_is_a_flag() {
        let c = config(&[
            "--max-message",
            "65536",
            "--messages-per-second",
            "5",
            "--max-pending-handshakes",
            "7",
            "--max-pending-per-address",
            "6",
            "--handshake-timeout",
            "3",
            "--max-connections",
            "9",
            "--max-room-size",
            "4",
            "--max-rooms",
            "2",
        ])
        .unwrap();
        assert_eq!(c.limits.max_message, 65536);
        assert_eq!(c.limits.messages_per_second, 5);
        assert_eq!(c.limits.max_pending, 7);
        assert_eq!(c.limits.max_pending_per_address, 6);
        assert_eq!(c.limits.handshake_timeout, Duration::from_secs(3));
        assert_eq!(c.limits.max_connections, 9);
        assert_eq!(c.app.max_peers_per_room, 4);
        assert_eq!(c.app.max_rooms, 2);
        assert!(config(&["--max-message", "10"]).is_err());
        // Too small for a full room of the default size: refused, with the way out.
        let e = config(&["--max-message", "262144"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("full room's subscription"), "{e}");
        assert!(config(&["--max-message", "262144", "--max-room-size", "40"]).is_ok());
        assert!(config(&["--handshake-timeout", "0"]).is_err());
    }
}
