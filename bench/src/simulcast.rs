//! `--simulcast`: what the layers did in the measured window: which layers the
//! subscribers received, how often the server switched them, and how much of the
//! publishers' uplink pausing the unwanted layers saved.

use serde::Serialize;

use crate::probe::{self, ServerProbe};
use crate::traffic::LAYER_RIDS;

/// The server's simulcast counters at one moment (its `/metrics`, every shard summed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerLayers {
    /// Subscribers' streams moved from one layer to another.
    pub switches: f64,
    /// Video payload bytes forwarded, by layer.
    pub bytes: [f64; 3],
}

impl ServerLayers {
    /// Reads them from the server's metrics page.
    pub fn read(server: &ServerProbe) -> anyhow::Result<ServerLayers> {
        Ok(Self::from_page(&server.page()?))
    }

    fn from_page(page: &str) -> ServerLayers {
        let sum = |name: &str| probe::counter_sum(page, &format!("peercalls_shard_{name}_total"));
        ServerLayers {
            switches: sum("simulcast_layer_switches"),
            bytes: [0, 1, 2].map(|l| sum(&format!("video_forwarded_bytes_layer_{l}"))),
        }
    }
}

/// What the driver counts at the window's two ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerCounts {
    /// The server's counters, if its metrics page could be read.
    pub server: Option<ServerLayers>,
    /// Video payload bytes the publishers sent.
    pub sent: u64,
    /// Video payload bytes of layers they had paused.
    pub paused: u64,
}

/// What the window saw of the layers.
#[derive(Debug, Clone, Serialize)]
pub struct SimulcastReport {
    /// Of the video bytes the subscribers received, the share of each layer (q, h, f).
    pub received_mix: [f64; 3],
    /// Of the video bytes the server forwarded, the share of each layer (its `/metrics`).
    pub forwarded_mix: Option<[f64; 3]>,
    /// Layer switches in the window (the server's count).
    pub switches: Option<u64>,
    /// The publishers' video, kbit/s of payload each, as sent.
    pub publisher_kbps: f64,
    /// What they would have sent with every layer on.
    pub publisher_all_layers_kbps: f64,
    /// The share of that saved by pausing the layers no tile wanted.
    pub saved: f64,
}

impl SimulcastReport {
    /// From the window's two ends, the bytes each layer brought the subscribers, the
    /// window's length and the publishers.
    pub fn new(
        start: &LayerCounts,
        end: &LayerCounts,
        received: [u64; 3],
        window_s: f64,
        publishers: usize,
    ) -> SimulcastReport {
        let shares = |b: [f64; 3]| {
            let total: f64 = b.iter().sum();
            b.map(|x| if total > 0.0 { x / total } else { 0.0 })
        };
        let server = match (start.server, end.server) {
            (Some(a), Some(b)) => Some((
                (b.switches - a.switches).max(0.0) as u64,
                shares([0, 1, 2].map(|l| (b.bytes[l] - a.bytes[l]).max(0.0))),
            )),
            _ => None,
        };
        let kbps =
            |bytes: u64| bytes as f64 * 8.0 / 1e3 / window_s.max(1e-9) / publishers.max(1) as f64;
        let sent = end.sent.saturating_sub(start.sent);
        let paused = end.paused.saturating_sub(start.paused);
        SimulcastReport {
            received_mix: shares(received.map(|b| b as f64)),
            forwarded_mix: server.map(|s| s.1),
            switches: server.map(|s| s.0),
            publisher_kbps: kbps(sent),
            publisher_all_layers_kbps: kbps(sent + paused),
            saved: if sent + paused > 0 {
                paused as f64 / (sent + paused) as f64
            } else {
                0.0
            },
        }
    }

    /// The report's rows.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mix = |m: &[f64; 3]| {
            LAYER_RIDS
                .iter()
                .zip(m)
                .map(|(rid, share)| format!("{rid} {:.0}%", share * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            (
                "layers received".into(),
                format!("{} of the video bytes", mix(&self.received_mix)),
            ),
            (
                "layers forwarded".into(),
                self.forwarded_mix
                    .as_ref()
                    .map_or("unknown (no /metrics)".into(), |m| {
                        format!("{} (the server's count)", mix(m))
                    }),
            ),
            (
                "layer switches".into(),
                self.switches.map_or("unknown (no /metrics)".into(), |s| {
                    format!("{s} in the window")
                }),
            ),
            (
                "publisher uplink".into(),
                format!(
                    "{:.0} kbit/s of video each, of {:.0} with every layer on: {:.0}% saved by pausing",
                    self.publisher_kbps,
                    self.publisher_all_layers_kbps,
                    self.saved * 100.0
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_the_difference_of_its_ends() {
        let page = |switches: u32, f: u32| {
            format!(
                "# TYPE peercalls_shard_simulcast_layer_switches_total counter\n\
                 peercalls_shard_simulcast_layer_switches_total{{shard=\"0\"}} {switches}\n\
                 peercalls_shard_simulcast_layer_switches_total{{shard=\"1\"}} 1\n\
                 peercalls_shard_video_forwarded_bytes_layer_0_total{{shard=\"0\"}} 100\n\
                 peercalls_shard_video_forwarded_bytes_layer_2_total{{shard=\"1\"}} {f}\n"
            )
        };
        let a = ServerLayers::from_page(&page(2, 0));
        assert_eq!(a.switches, 3.0);
        let start = LayerCounts {
            server: Some(a),
            sent: 1_000,
            paused: 0,
        };
        let end = LayerCounts {
            server: Some(ServerLayers::from_page(&page(6, 300))),
            sent: 1_000 + 250_000,
            paused: 750_000,
        };
        let r = SimulcastReport::new(&start, &end, [25, 0, 75], 10.0, 2);
        assert_eq!(r.switches, Some(4));
        assert_eq!(r.forwarded_mix, Some([0.0, 0.0, 1.0]));
        assert_eq!(r.received_mix, [0.25, 0.0, 0.75]);
        // 250 kB in 10 s from 2 publishers: 100 kbit/s each, of 400.
        assert!((r.publisher_kbps - 100.0).abs() < 1e-9);
        assert!((r.publisher_all_layers_kbps - 400.0).abs() < 1e-9);
        assert!((r.saved - 0.75).abs() < 1e-9);
        let rows = r.rows();
        assert_eq!(rows[0].1, "q 25%, h 0%, f 75% of the video bytes");
        // Without the page, the server's figures are unknown, the rest is not.
        let blind = LayerCounts {
            server: None,
            ..end
        };
        let r = SimulcastReport::new(&start, &blind, [1, 1, 2], 10.0, 2);
        assert_eq!(r.switches, None);
        assert!(r.rows()[2].1.starts_with("unknown"));
    }
}
