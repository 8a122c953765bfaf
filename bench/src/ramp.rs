//! `--ramp STEPS`: the scenario at its given size, then twice as large, four times, …
//! until the server misses the SLO, the generator cannot offer more, or STEPS runs are
//! done. A step past the SLO is followed by up to [`REFINE_RUNS`] runs between it and
//! the last size within the SLO, halving the gap each time ([`between`]). What it finds
//! is the load the server forwards at the SLO (performance.md, metric 2), or that the
//! generator ran out first (on a 2-vCPU machine that shares the generator and the
//! server, often).
//!
//! The SLO: under 0.5% of the packets lost, and under 0.5% late (reaching the
//! subscriber's socket [`crate::check::LATE_AFTER`] or more after they were sent). Loss
//! alone misses a server that falls behind: its socket's buffer holds seconds of
//! packets, so a saturated shard delivers them ever later long before it drops any.
//! A step whose peers cannot all join is past the SLO too: a saturated shard drops
//! their handshakes along with the media.
//!
//! A busy shard is not a limit by itself: a shard at 0.9 cores still has room, because
//! each wake-up finds more packets as the load grows and a packet costs less (measured:
//! docs/benchmarks.md, `--ramp`).

use serde::Serialize;

use crate::report::{Report, render};
use crate::scenario::Scenario;

/// The share of packets a run may lose, and the share it may deliver late, and still
/// count: 0.5% (performance.md).
pub const LOSS_SLO: f64 = 0.005;
/// A step offers twice the previous step's load; delivering less than this many times
/// the previous step's packets means the generator could not offer it.
pub const MIN_GROWTH: f64 = 1.5;

/// Why the ramp stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// A step lost more than the SLO.
    Loss,
    /// A step delivered more than the SLO late: the server fell behind.
    Late,
    /// A step's peers could not all join.
    NotReady,
    /// The generator could not offer the next step's load: the server's capacity is
    /// above the last step, not measured.
    Generator,
    /// Every step ran within the SLO.
    Steps,
}

/// What one step's report says about saturation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepFigures {
    /// Delivered packets per second.
    pub delivered_pps: f64,
    /// Delivered loss ratio.
    pub loss: f64,
    /// Late ratio.
    pub late: f64,
    /// Latency p99 to the subscriber's read, ms.
    pub p99_ms: f64,
    /// The busiest shard thread's load, cores (unknown without the server's process).
    pub busiest_shard: Option<f64>,
    /// The server's cores busy, all threads.
    pub server_cores: Option<f64>,
    /// The generator's cores busy (it runs on one thread).
    pub generator_cores: f64,
    /// Share of frames the publishers skipped.
    pub skipped_share: f64,
}

impl StepFigures {
    /// The figures of a report.
    pub fn of(r: &Report) -> Self {
        let busiest = r.server_cpu.as_ref().and_then(|s| {
            s.threads
                .iter()
                .filter(|t| t.name.starts_with("shard-"))
                .map(|t| t.cores)
                .reduce(f64::max)
        });
        let p = &r.problems;
        Self {
            delivered_pps: r.delivered_pps,
            loss: r.loss.ratio,
            late: r.loss.late_ratio,
            p99_ms: r.latency.p99_us / 1e3,
            busiest_shard: busiest,
            server_cores: r.server_cpu.as_ref().map(|s| s.cores),
            generator_cores: r.generator_cpu.cores,
            skipped_share: if p.scheduled_frames > 0 {
                p.skipped_frames as f64 / p.scheduled_frames as f64
            } else {
                0.0
            },
        }
    }

    /// Within the SLO: neither lost nor late past it.
    pub fn within_slo(&self) -> bool {
        self.loss <= LOSS_SLO && self.late <= LOSS_SLO
    }
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It ran; its figures.
    Ran(StepFigures),
    /// Its peers could not all join; why.
    NotReady(String),
}

impl Outcome {
    /// The figures, if it ran.
    pub fn figures(&self) -> Option<&StepFigures> {
        match self {
            Outcome::Ran(f) => Some(f),
            Outcome::NotReady(_) => None,
        }
    }

    /// Within the SLO (a step that did not run is not).
    pub fn within_slo(&self) -> bool {
        self.figures().is_some_and(StepFigures::within_slo)
    }
}

/// One run of the ramp.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Its scenario.
    pub scenario: Scenario,
    /// How it ended.
    pub outcome: Outcome,
}

/// Whether the ramp stops after `step` (which doubled `previous`, if any), and why.
pub fn stop_after(step: &Outcome, previous: Option<&StepFigures>) -> Option<Limit> {
    let step = match step {
        Outcome::NotReady(_) => return Some(Limit::NotReady),
        Outcome::Ran(f) => f,
    };
    if step.loss > LOSS_SLO {
        Some(Limit::Loss)
    } else if step.late > LOSS_SLO {
        Some(Limit::Late)
    } else if previous.is_some_and(|p| step.delivered_pps < p.delivered_pps * MIN_GROWTH) {
        Some(Limit::Generator)
    } else {
        None
    }
}

/// How large a scenario is: its rooms, or its subscribers.
pub fn units(s: Scenario) -> usize {
    match s {
        Scenario::Meeting { rooms, .. } | Scenario::Audio { rooms, .. } => rooms,
        Scenario::Webinar { subscribers } => subscribers,
    }
}

/// The scenario with `units` rooms (or subscribers), everything else the same.
pub fn sized(s: Scenario, units: usize) -> Scenario {
    match s {
        Scenario::Meeting { people, .. } => Scenario::Meeting {
            rooms: units,
            people,
        },
        Scenario::Webinar { .. } => Scenario::Webinar { subscribers: units },
        Scenario::Audio { people, .. } => Scenario::Audio {
            rooms: units,
            people,
        },
    }
}

/// The scenario `factor` times as large (rooms, or subscribers).
pub fn scaled(s: Scenario, factor: usize) -> Scenario {
    sized(s, units(s) * factor)
}

/// Runs the ramp adds after doubling past the SLO, halving the gap between the last
/// size within it and the first beyond it each time.
pub const REFINE_RUNS: usize = 3;

/// The size to try between `within` (a size that kept the SLO) and `beyond` (one that
/// did not), or `None` when they are too close to tell apart: less than an eighth of
/// `within` (the run-to-run noise) or nothing whole in between.
pub fn between(within: usize, beyond: usize) -> Option<usize> {
    let gap = beyond.checked_sub(within)?;
    (gap >= 2 && gap * 8 >= within).then_some(within + gap / 2)
}

/// Every step, what stopped the ramp, and the capacity at the SLO.
#[derive(Debug, Clone, Serialize)]
pub struct Ramp {
    /// The report of every step that ran, in the order they ran (doubling, then
    /// narrowing).
    pub runs: Vec<Report>,
    /// Every step, including those whose peers could not all join.
    pub steps: Vec<Step>,
    /// Why it stopped.
    pub limit: Limit,
    /// The most delivered pps of a step within the SLO (`null` if none was).
    pub capacity_pps: Option<f64>,
    /// That step's delivered pps per busy server core.
    pub capacity_pps_per_core: Option<f64>,
    /// The resolution: the largest size (rooms or subscribers) within the SLO, and the
    /// smallest larger one past it. The capacity lies between them.
    pub within_units: Option<usize>,
    /// See `within_units` (`null` when no step went past the SLO).
    pub beyond_units: Option<usize>,
}

impl Ramp {
    /// The verdict over the steps run.
    pub fn new(runs: Vec<Report>, steps: Vec<Step>, limit: Limit) -> Self {
        let best = steps
            .iter()
            .filter_map(|s| s.outcome.figures())
            .filter(|f| f.within_slo())
            .max_by(|a, b| a.delivered_pps.total_cmp(&b.delivered_pps));
        let within_units = steps
            .iter()
            .filter(|s| s.outcome.within_slo())
            .map(|s| units(s.scenario))
            .max();
        let beyond_units = steps
            .iter()
            .filter(|s| !s.outcome.within_slo())
            .map(|s| units(s.scenario))
            .filter(|&u| within_units.is_none_or(|w| u > w))
            .min();
        Self {
            within_units,
            beyond_units,
            capacity_pps: best.map(|s| s.delivered_pps),
            capacity_pps_per_core: best.and_then(|s| {
                s.server_cores
                    .filter(|c| *c > 0.0)
                    .map(|c| s.delivered_pps / c)
            }),
            runs,
            steps,
            limit,
        }
    }

    /// A line per step, then the verdict.
    pub fn table(&self) -> String {
        let mut rows = Vec::new();
        for step in &self.steps {
            let opt = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.2}"));
            let line = match &step.outcome {
                Outcome::Ran(s) => format!(
                    "{:.0} pps delivered, loss {:.3}%, late {:.3}%, p99 {:.1} ms; server {} cores (busiest shard {}), generator {:.2} cores, {:.1}% frames skipped",
                    s.delivered_pps,
                    s.loss * 100.0,
                    s.late * 100.0,
                    s.p99_ms,
                    opt(s.server_cores),
                    opt(s.busiest_shard),
                    s.generator_cores,
                    s.skipped_share * 100.0
                ),
                Outcome::NotReady(why) => format!("the peers could not all join: {why}"),
            };
            rows.push((step.scenario.describe(), line));
        }
        rows.push(("stopped".into(), self.limit.explain().into()));
        rows.push((
            "at the SLO".into(),
            match (self.capacity_pps, self.capacity_pps_per_core) {
                (Some(pps), Some(per_core)) => {
                    format!("{pps:.0} pps delivered, {per_core:.0} pps per busy server core")
                }
                (Some(pps), None) => format!("{pps:.0} pps delivered"),
                _ => "no step was within the SLO".into(),
            },
        ));
        render(&rows)
    }
}

impl Limit {
    /// The ramp went past the SLO (rather than running out of steps or of generator):
    /// its capacity is measured, and the gap below it worth narrowing.
    pub fn past_slo(self) -> bool {
        matches!(self, Limit::Loss | Limit::Late | Limit::NotReady)
    }

    /// Why the ramp stopped, in words.
    pub fn explain(self) -> &'static str {
        match self {
            Limit::Loss => "the loss passed the SLO (0.5%)",
            Limit::Late => {
                "more than 0.5% of the packets were late (the server fell behind the load)"
            }
            Limit::NotReady => "the peers could not all join (the server did not admit the load)",
            Limit::Generator => {
                "the generator could not offer more (twice the load, under 1.5× the packets): the server's capacity is above this, not measured"
            }
            Limit::Steps => "every step ran within the SLO",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(loss: f64, shard: f64, generator: f64, skipped: f64) -> StepFigures {
        StepFigures {
            delivered_pps: 1000.0,
            loss,
            late: 0.0,
            p99_ms: 1.0,
            busiest_shard: Some(shard),
            server_cores: Some(shard),
            generator_cores: generator,
            skipped_share: skipped,
        }
    }

    #[test]
    fn the_ramp_stops_on_loss_lateness_or_when_the_load_stops_growing() {
        let first = step(0.0, 0.3, 0.3, 0.0);
        let doubled = |pps: f64, loss: f64, shard: f64| {
            Outcome::Ran(StepFigures {
                delivered_pps: pps,
                ..step(loss, shard, 0.5, 0.0)
            })
        };
        let late = |late: f64| {
            Outcome::Ran(StepFigures {
                delivered_pps: 2000.0,
                late,
                ..step(0.0, 0.6, 0.5, 0.0)
            })
        };
        assert_eq!(stop_after(&Outcome::Ran(first), None), None);
        assert_eq!(stop_after(&doubled(2000.0, 0.0, 0.6), Some(&first)), None);
        assert_eq!(stop_after(&doubled(2000.0, 0.004, 0.6), Some(&first)), None);
        assert_eq!(
            stop_after(&doubled(2000.0, 0.006, 0.6), Some(&first)),
            Some(Limit::Loss)
        );
        // Nothing lost, but the server fell behind.
        assert_eq!(stop_after(&late(0.004), Some(&first)), None);
        assert_eq!(stop_after(&late(0.006), Some(&first)), Some(Limit::Late));
        // Peers that cannot join stop it, first step or not.
        let not_ready = Outcome::NotReady("not ready".into());
        assert_eq!(stop_after(&not_ready, None), Some(Limit::NotReady));
        assert!(!not_ready.within_slo());
        // A busy shard is not a limit; loss is.
        assert_eq!(stop_after(&doubled(2000.0, 0.0, 0.99), Some(&first)), None);
        // Twice the load offered, under 1.5x delivered: the generator ran out.
        assert_eq!(
            stop_after(&doubled(1400.0, 0.0, 0.6), Some(&first)),
            Some(Limit::Generator)
        );
        // Loss is the SLO itself: it wins.
        assert_eq!(
            stop_after(&doubled(1400.0, 0.01, 0.6), Some(&first)),
            Some(Limit::Loss)
        );
        let unknown_server = StepFigures {
            busiest_shard: None,
            server_cores: None,
            ..first
        };
        assert_eq!(stop_after(&Outcome::Ran(unknown_server), None), None);
    }

    #[test]
    fn the_capacity_is_the_best_step_within_the_slo() {
        let meeting = |rooms| Scenario::Meeting { rooms, people: 5 };
        // A step of `rooms` that delivered `pps` with this loss and lateness, its shard
        // at `shard` cores.
        let ran = |rooms, pps, loss, late, shard| Step {
            scenario: meeting(rooms),
            outcome: Outcome::Ran(StepFigures {
                delivered_pps: pps,
                late,
                ..step(loss, shard, shard, 0.0)
            }),
        };
        let steps = vec![
            ran(1, 10_000.0, 0.0, 0.0, 0.2),
            ran(2, 20_000.0, 0.001, 0.0, 0.4),
            // More delivered, nothing lost, but late: not within the SLO.
            ran(3, 28_000.0, 0.0, 0.2, 0.7),
            ran(4, 35_000.0, 0.03, 0.0, 0.9),
            Step {
                scenario: meeting(8),
                outcome: Outcome::NotReady("not ready".into()),
            },
        ];
        let ramp = Ramp::new(Vec::new(), steps, Limit::NotReady);
        assert_eq!(ramp.capacity_pps, Some(20_000.0));
        assert_eq!((ramp.within_units, ramp.beyond_units), (Some(2), Some(3)));
        assert_eq!(ramp.capacity_pps_per_core, Some(50_000.0));
        let table = ramp.table();
        assert!(table.contains("late 20.000%"), "{table}");
        assert!(table.contains("could not all join: not ready"), "{table}");
        let none = Ramp::new(
            Vec::new(),
            vec![ran(1, 1000.0, 0.02, 0.0, 0.2)],
            Limit::Loss,
        );
        assert_eq!(none.capacity_pps, None);
    }

    #[test]
    fn refinement_halves_the_gap_until_it_is_within_the_noise() {
        assert_eq!(between(16, 32), Some(24));
        assert_eq!(between(24, 32), Some(28));
        assert_eq!(between(28, 32), Some(30));
        assert_eq!(between(30, 32), None, "2 is under an eighth of 30");
        assert_eq!(between(1, 2), None, "nothing whole in between");
        assert_eq!(between(1, 3), Some(2));
        assert_eq!(between(60, 120), Some(90));
        assert_eq!(between(32, 16), None, "upside down");
        assert_eq!(between(5, 5), None);
    }

    #[test]
    fn scenarios_grow_by_rooms_or_subscribers() {
        let meeting = Scenario::Meeting {
            rooms: 2,
            people: 5,
        };
        assert_eq!(units(meeting), 2);
        assert_eq!(
            sized(meeting, 3),
            Scenario::Meeting {
                rooms: 3,
                people: 5
            }
        );
        assert_eq!(units(Scenario::Webinar { subscribers: 7 }), 7);
        assert_eq!(
            scaled(
                Scenario::Meeting {
                    rooms: 2,
                    people: 5
                },
                4
            ),
            Scenario::Meeting {
                rooms: 8,
                people: 5
            }
        );
        assert_eq!(
            scaled(Scenario::Webinar { subscribers: 20 }, 2),
            Scenario::Webinar { subscribers: 40 }
        );
        assert_eq!(
            scaled(
                Scenario::Audio {
                    rooms: 10,
                    people: 5
                },
                2
            ),
            Scenario::Audio {
                rooms: 20,
                people: 5
            }
        );
    }
}
