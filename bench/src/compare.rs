//! `--compare-shards 1,2`: the same scenario on a server with each shard count, one
//! after the other, and the ratios against the first.
//!
//! With `--ramp`, a ramp on each shard count ([`RampComparison`]): the ratio of the
//! loads they deliver at the SLO is the measured scaling (performance.md, metric 7),
//! where the machine can saturate the shards (`--shard-cpu` on a small one).
//!
//! At the same offered load below saturation, every shard count delivers the same
//! packets, so the ratio that says how the engine scales is the projected capacity
//! (delivered pps ÷ the busiest shard's load) and the CPU per packet; the delivered
//! ratio says whether the load was the same.

use serde::Serialize;

use crate::ramp::Ramp;
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

/// A ramp on each shard count, and the ratio of their capacities at the SLO.
#[derive(Debug, Clone, Serialize)]
pub struct RampComparison {
    /// `(shards, its ramp)`, in the order given.
    pub ramps: Vec<(usize, Ramp)>,
    /// Each later shard count against the first (`null` where one of them has no
    /// capacity, or a ramp stopped before reaching the SLO: then it is a lower bound at
    /// best and not given).
    pub ratios: Vec<(usize, Option<Scaling>)>,
}

/// One shard count's capacity at the SLO against the baseline's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scaling {
    /// Delivered pps at the SLO ÷ the baseline's.
    pub ratio: f64,
    /// The ratio the ramps' resolution allows, lowest and highest: each capacity lies
    /// between its largest size within the SLO and its smallest size past it, and a
    /// scenario's packets grow with its size.
    pub range: (f64, f64),
}

impl RampComparison {
    /// Compares the ramps' capacities against the first.
    pub fn new(ramps: Vec<(usize, Ramp)>) -> Self {
        // A capacity counts only where the ramp went past the SLO: otherwise the server
        // could have carried more.
        let measured = |r: &Ramp| {
            if !r.limit.past_slo() {
                return None;
            }
            Some((
                r.capacity_pps?,
                r.within_units? as f64,
                r.beyond_units? as f64,
            ))
        };
        let base = ramps.first().and_then(|(_, r)| measured(r));
        let ratios = ramps
            .iter()
            .skip(1)
            .map(|(shards, r)| {
                let scaling = match (measured(r), base) {
                    (Some((a, a_in, a_out)), Some((b, b_in, b_out))) if b > 0.0 => Some(Scaling {
                        ratio: a / b,
                        range: (a_in / b_out, a_out / b_in),
                    }),
                    _ => None,
                };
                (*shards, scaling)
            })
            .collect();
        Self { ramps, ratios }
    }

    /// Each ramp's verdict, then the ratios.
    pub fn table(&self) -> String {
        let mut rows = Vec::new();
        for (shards, r) in &self.ramps {
            rows.push((
                format!("{shards} shard(s)"),
                format!(
                    "{}; stopped: {}",
                    r.capacity_pps
                        .map_or("no step within the SLO".into(), |c| format!(
                            "{c:.0} pps at the SLO"
                        )),
                    r.limit.explain()
                ),
            ));
        }
        let base = self.ramps.first().map_or(0, |(s, _)| *s);
        for (shards, ratio) in &self.ratios {
            rows.push((
                format!("{shards} vs {base} shard(s)"),
                ratio.map_or("not measured: a ramp did not reach the SLO".into(), |x| {
                    format!(
                        "{:.2}× the packets at the SLO (between {:.2}× and {:.2}× at the ramps' resolution)",
                        x.ratio, x.range.0, x.range.1
                    )
                }),
            ));
        }
        render(&rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ramp::{Limit, Outcome, Step, StepFigures};
    use crate::scenario::Scenario;

    fn ramp(capacity: f64, subscribers: usize, limit: Limit) -> Ramp {
        let figures = StepFigures {
            delivered_pps: capacity,
            loss: 0.0,
            late: 0.0,
            p99_ms: 1.0,
            busiest_shard: Some(0.9),
            server_cores: Some(1.0),
            generator_cores: 0.5,
            skipped_share: 0.0,
        };
        let within = Step {
            scenario: Scenario::Webinar { subscribers },
            outcome: Outcome::Ran(figures),
        };
        let beyond = Step {
            scenario: Scenario::Webinar {
                subscribers: subscribers + subscribers / 4,
            },
            outcome: Outcome::NotReady("not ready".into()),
        };
        Ramp::new(Vec::new(), vec![within, beyond], limit)
    }

    #[test]
    fn the_ratio_is_of_capacities_at_the_slo_only() {
        let c = RampComparison::new(vec![
            (1, ramp(30_000.0, 80, Limit::Late)),
            (2, ramp(57_000.0, 160, Limit::Loss)),
            (3, ramp(80_000.0, 240, Limit::Generator)),
        ]);
        assert_eq!(c.ratios[0].0, 2);
        let x = c.ratios[0].1.unwrap();
        assert!((x.ratio - 1.9).abs() < 1e-9);
        // 160..200 subscribers against 80..100.
        assert_eq!(x.range, (1.6, 2.5));
        assert_eq!(
            c.ratios[1],
            (3, None),
            "the generator stopped it: not a capacity"
        );
        let table = c.table();
        assert!(
            table.contains("1.90× the packets at the SLO (between 1.60× and 2.50×"),
            "{table}"
        );
        assert!(table.contains("not measured"), "{table}");
    }
}
