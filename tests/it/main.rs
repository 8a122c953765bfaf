//! The integration tests: the real server (in-process or the binary) on loopback, driven
//! by real WebRTC peers, one module per behaviour. One test binary, so a change links the
//! server and its dependencies once, not once per file.
//!
//! | module | behaviour |
//! |---|---|
//! | `sfu_loopback` | publish, subscribe, forward across shards, leave |
//! | `keepalive` | sessions kept alive by pings and media; silence ends them |
//! | `bad_media` | hostile datagrams: dropped, counted, harmless to bystanders |
//! | `bad_signaling` | hostile WebSocket and HTTP input: clear errors, bounded cost |
//! | `isolation` | a panic inside one peer drops that peer alone |
//! | `overload` | a shard slower than its input keeps forwarding |
//! | `metrics` | `/metrics`: the server's counters and latency |
//! | `binary` | the `peer-calls` binary: flags, a configuration file, signals, exit codes |
//! | `play` | `peer-calls play`: ffmpeg RTP and media files into a room |
//! | `bench_smoke` | `peer-calls bench`: a short run of each scenario and its report |
//! | `tls` | https and wss, the redirect of plain http, a certificate reloaded |
//! | `base_path` | `--base-path` behind a real nginx |
//! | `lifecycle` | `/health` and `/ready`, a dead shard fails the server, SIGTERM's drain |
//! | `deploy` | the systemd unit and the Dockerfile |
//! | `cluster` | servers on one Redis: the registry and the room directory |
//! | `multi_node` | one room across three nodes: media, chat and leaving cross the node ports |
//! | `permissions` | `--auth jwt`: grants allowed and denied, bad tokens, `peer-calls token` |
//! | `webhook` | `--auth webhook`: the worked example's service, the question, the cache, a service down or slow |
//! | `moderation` | kick, mute, lock, end for `roomAdmin`; room passwords |
//! | `simulcast_links` | subscribers behind `tc tbf` links in namespaces each keep the layer their link carries |
//! | `support` | what the tests share: a server, bystanders, hostile clients |

// Not every module uses every helper of `support`.
#![allow(dead_code, unreachable_pub)]

mod support;

mod bad_media;
mod bad_signaling;
mod base_path;
mod bench_smoke;
mod binary;
mod cluster;
mod deploy;
mod descriptors;
mod isolation;
mod keepalive;
mod large_room;
mod lifecycle;
mod metrics;
mod moderation;
mod multi_node;
mod non_browser;
mod overload;
mod permissions;
mod play;
mod rsa_dtls;
mod sfu_loopback;
mod simulcast_links;
mod tls;
mod webhook;
