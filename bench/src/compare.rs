//! `--compare-shards 1,2`: the same scenario on a server with each shard count, one
//! after the other, and the ratios against the first.
//!
//! At the same offered load below saturation, every shard count delivers the same
//! packets, so the ratio that says how the engine scales is the projected capacity
//! (delivered pps ÷ the busiest shard's load) and the CPU per packet; the delivered
//! ratio says whether the load was the same.

use serde::Serialize;

use crate::report::{Report, render};

/// One shard count against the first.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Shards of this run.
    pub shards: usize,
    /// Shards of the baseline.
    pub baseline_shards: usize,
    /// Delivered pps ÷ the baseline's.
    pub delivered: f64,
    /// Projected capacity ÷ the baseline's (`null` without per-thread figures).
    pub capacity: Option<f64>,
    /// Server CPU per packet ÷ the baseline's.
    pub cpu_per_packet: Option<f64>,
    /// Loss ratio of this run and of the baseline.
    pub loss: (f64, f64),
}

/// Every run and the ratios.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// One report per shard count, in the order given.
    pub runs: Vec<Report>,
    /// Each later run against the first.
    pub ratios: Vec<Ratio>,
}

impl Comparison {
    /// Compares the runs against the first.
    pub fn new(runs: Vec<Report>) -> Self {
        let mut ratios = Vec::new();
        if let Some(base) = runs.first() {
            for r in &runs[1..] {
                let div = |a: f64, b: f64| (b > 0.0).then(|| a / b);
                let cap = |x: &Report| x.server_cpu.as_ref().and_then(|s| s.projected_capacity_pps);
                let us = |x: &Report| x.server_cpu.as_ref().map(|s| s.us_per_packet);
                ratios.push(Ratio {
                    shards: r.shards.unwrap_or(0),
                    baseline_shards: base.shards.unwrap_or(0),
                    delivered: div(r.delivered_pps, base.delivered_pps).unwrap_or(0.0),
                    capacity: match (cap(r), cap(base)) {
                        (Some(a), Some(b)) => div(a, b),
                        _ => None,
                    },
                    cpu_per_packet: match (us(r), us(base)) {
                        (Some(a), Some(b)) => div(a, b),
                        _ => None,
                    },
                    loss: (r.loss.ratio, base.loss.ratio),
                });
            }
        }
        Self { runs, ratios }
    }

    /// Side by side, then the ratios.
    pub fn table(&self) -> String {
        let mut rows = Vec::new();
        for r in &self.runs {
            let shards = r.shards.unwrap_or(0);
            let (us, cores, cap) = match &r.server_cpu {
                Some(s) => (
                    format!("{:.2} µs/packet", s.us_per_packet),
                    format!("{:.2} cores", s.cores),
                    s.projected_capacity_pps
                        .map_or("?".into(), |c| format!("{c:.0} pps capacity")),
                ),
                None => ("?".into(), "?".into(), "?".into()),
            };
            rows.push((
                format!("{shards} shard(s)"),
                format!(
                    "{:.0} pps delivered, loss {:.4}%, p99 {:.0} µs ({:.0} to the socket); server {us}, {cores}, {cap}; generator {:.2} cores",
                    r.delivered_pps,
                    r.loss.ratio * 100.0,
                    r.latency.p99_us,
                    r.socket_latency.p99_us,
                    r.generator_cpu.cores
                ),
            ));
        }
        for x in &self.ratios {
            let f = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.2}×"));
            rows.push((
                format!("{} vs {} shard(s)", x.shards, x.baseline_shards),
                format!(
                    "delivered {:.2}×, projected capacity {}, CPU per packet {}",
                    x.delivered,
                    f(x.capacity),
                    f(x.cpu_per_packet)
                ),
            ));
        }
        render(&rows)
    }
}
