//! Which simulcast layer, and how many of its VP8 temporal layers, each subscriber gets
//! (`docs/simulcast.md`), decided every [`ALLOCATION_INTERVAL`] on its shard:
//!
//! - Each layer's rate, and each of its temporal layers', is measured where it is
//!   forwarded; they make the track's [`Ladder`]: every layer at its full frame rate and,
//!   under the lowest, that layer at a quarter and at half its frame rate (its base
//!   temporal layer, then two of three) when the publisher sends temporal layers.
//! - A subscriber's budget is its bandwidth estimate (`crate::bwe`, from its congestion
//!   control feedback), or, while its path shows no congestion, what the path carried
//!   lately if that is more (after loss the estimate falls fast and climbs back slowly).
//!   It pays first for what has no layers (audio at [`AUDIO_BPS`], video without
//!   simulcast at its rate); the rest goes to its simulcast tracks, the largest tiles
//!   first (the speaker, a pinned tile: the highest caps), equal tiles equally, the
//!   smaller tiles' lowest layers kept paid for.
//! - A new subscriber starts on the lowest layer at its full frame rate: its path is not
//!   known yet. It takes a first look ([`FIRST_LOOK`]) before it probes.
//! - Up, at most every [`UP_TRIAL`], to the highest rung at or under its cap (the
//!   tile's size, `SetMaxLayer`) that its share shows fitting. The estimate cannot see
//!   much more than what flows now, so past that it **probes** first: each packet it is
//!   sent goes out again as a repair (RTX), one copy more every allocation while the path
//!   shows no congestion, up to what carries the next rung's rate; if the share then
//!   shows the next rung fitting, up. A probe ends at the first sign of congestion; a
//!   failed probe doubles the wait before the next (up to [`MAX_BACKOFF`]).
//! - Down at once when the path cannot carry the rung that flows (its rate over the
//!   share by more than a margin), or on congestion. Not for lack of share just after the
//!   rung rose (a larger tile: the share measured what flowed before), nor just after
//!   a failed probe (its congestion, not the media's).
//! - Under the lowest layer's full frame rate only while the path holds a queue (it
//!   grows, or it stands full): loss alone does not prove the link too narrow (a radio
//!   link loses packets at random, and fewer frames do not cure it).
//! - Without transport-wide feedback negotiated, the cap alone decides.
//!
//! The layer switch itself happens at the chosen layer's next keyframe; fewer temporal
//! layers from the next frame, more from the next base-layer frame (`forwarding.rs`).

use std::time::{Duration, Instant};

use str0m::media::MediaKind;

use super::core::ShardCore;
use super::peer::MAX_LAYERS;
use super::timers::Slot;
use crate::msg::{Control, Notice};

/// How often layers are chosen: the shard's housekeeping.
#[cfg(test)]
const ALLOCATION_INTERVAL: Duration = super::core::HOUSEKEEPING_INTERVAL;
/// What a subscriber's audio track is taken to cost.
pub(super) const AUDIO_BPS: u64 = 64_000;
/// The shortest wait between two steps up (and before the first probe).
pub(super) const UP_TRIAL: Duration = Duration::from_secs(4);
/// A new subscriber's first step up waits this long after its first decision: its
/// path's feedback has just begun.
const FIRST_LOOK: Duration = Duration::from_secs(2);
/// How long a probe lasts at most.
const PROBE: Duration = Duration::from_millis(2500);
/// After the rung rose, how long the share (which measured what flowed before) is not
/// heeded without congestion.
const RAISED: Duration = Duration::from_millis(1500);
/// After a probe the path carried, the wait before the next.
const AFTER_PROBE: Duration = Duration::from_secs(1);
/// After a probe the path did not carry, how long its congestion is left to clear.
const SETTLE: Duration = Duration::from_millis(1500);
/// The most copies of each packet a probe resends (4× the rung's rate).
const MAX_PROBE_COPIES: u64 = 3;
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(64);

/// VP8 temporal layers told apart (L1T3: 0, the base, to 2).
pub(crate) const TEMPORAL: usize = 3;

/// Each layer's rate, bits per second, measured where the track is forwarded; and of
/// each of its temporal layers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LayerRates {
    bytes: [[u64; TEMPORAL]; MAX_LAYERS],
    temporal_bps: [[u64; TEMPORAL]; MAX_LAYERS],
    pub(crate) bps: [u64; MAX_LAYERS],
}

impl LayerRates {
    /// A packet of `layer` and temporal layer `tid` (0 without temporal layers) with
    /// `len` bytes of payload was forwarded.
    pub(crate) fn count(&mut self, layer: usize, tid: u8, len: usize) {
        let tid = usize::from(tid).min(TEMPORAL - 1);
        // With its RTP and SRTP overhead, roughly.
        self.bytes[layer.min(MAX_LAYERS - 1)][tid] += len as u64 + 40;
    }

    /// The bytes counted over `elapsed` become the rates (smoothed: half the new).
    fn roll(&mut self, elapsed: Duration) {
        let ms = elapsed.as_millis().max(1) as u64;
        for l in 0..MAX_LAYERS {
            for t in 0..TEMPORAL {
                let now = self.bytes[l][t] * 8 * 1000 / ms;
                let bps = &mut self.temporal_bps[l][t];
                *bps = if *bps == 0 { now } else { (*bps + now) / 2 };
                self.bytes[l][t] = 0;
            }
            self.bps[l] = self.temporal_bps[l].iter().sum();
        }
    }

    /// The rungs a subscriber climbs, lowest first, with their rates: every layer seen
    /// at its full frame rate; under the lowest, that layer with fewer of its temporal
    /// layers, where it has them.
    pub(crate) fn ladder(&self) -> Ladder {
        let mut ladder = Ladder::default();
        for l in (0..MAX_LAYERS).filter(|&l| self.bps[l] > 0) {
            if ladder.len == 0 {
                let t = self.temporal_bps[l];
                let mut sum = 0;
                for tid in 0..TEMPORAL - 1 {
                    sum += t[tid];
                    if t[tid + 1..].iter().any(|&b| b > 0) && t[0] > 0 {
                        ladder.push(Rung::new(l, tid), sum);
                    }
                }
            }
            ladder.push(Rung::full(l as u8), self.bps[l]);
        }
        ladder
    }
}

/// A step of the ladder: a simulcast layer and the highest of its temporal layers
/// (`TEMPORAL - 1`: all of them, or a layer without temporal layers). Rungs order by
/// layer, then temporal layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rung {
    pub(crate) layer: u8,
    pub(crate) temporal: u8,
}

impl Rung {
    fn new(layer: usize, temporal: usize) -> Self {
        Self {
            layer: layer as u8,
            temporal: temporal as u8,
        }
    }

    /// All of layer `layer`.
    pub(crate) fn full(layer: u8) -> Self {
        Self {
            layer,
            temporal: TEMPORAL as u8 - 1,
        }
    }
}

/// A track's rungs, lowest first, with their rates (bits per second); no allocation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ladder {
    rungs: [(Rung, u64); MAX_LAYERS + TEMPORAL - 1],
    len: usize,
}

impl Ladder {
    fn push(&mut self, rung: Rung, bps: u64) {
        self.rungs[self.len] = (rung, bps);
        self.len += 1;
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = (Rung, u64)> + '_ {
        self.rungs[..self.len].iter().copied()
    }

    /// The rate of the highest rung at or under `rung` (the lowest's when none is).
    pub(crate) fn rate(&self, rung: Rung) -> u64 {
        self.iter()
            .rev()
            .find(|(r, _)| *r <= rung)
            .or_else(|| self.iter().next())
            .map_or(0, |(_, b)| b)
    }

    /// The highest rung at or under `max` whose rate is at most `bps`, else `floor`.
    fn highest_within(&self, max: Rung, bps: u64, floor: Rung) -> Rung {
        self.iter()
            .rev()
            .find(|(r, b)| *r <= max && *b <= bps)
            .map_or(floor, |(r, _)| r.max(floor))
    }

    /// The rung above `rung`, at or under `max`.
    fn next_above(&self, rung: Rung, max: Rung) -> Option<(Rung, u64)> {
        self.iter().find(|(r, _)| *r > rung && *r <= max)
    }

    /// The lowest rung (the lowest layer at full frame rate when there is none).
    fn lowest(&self) -> Rung {
        self.iter().next().map_or(Rung::full(0), |(r, _)| r)
    }
}

/// What the subscriber's congestion control feedback shows of its path now.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PathNow {
    /// Its queue grows, or it loses more than a little.
    pub(crate) congested: bool,
    /// It holds a queue: growing, or standing full.
    pub(crate) queued: bool,
}

/// A probe of the path for the next rung up: the subscriber's packets go out again as
/// repairs, a copy each more every allocation while the path shows no congestion, up to
/// what carries the next rung's rate.
#[derive(Debug, Clone, Copy)]
struct Probe {
    until: Instant,
    copies: u8,
    need: u8,
}

/// A subscriber's state of the choice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Choice {
    /// The most its tile asks for (`SetMaxLayer`).
    pub(crate) cap: u8,
    /// The most its bandwidth allows.
    pub(crate) fit: Rung,
    /// No probe of a higher rung before this.
    up_at: Option<Instant>,
    /// The wait after a probe the path did not carry.
    backoff: Duration,
    probe: Option<Probe>,
    /// After a probe the path did not carry, the estimate is not heeded before this: it
    /// fell with the probe's congestion, not with the media's.
    settle_until: Option<Instant>,
    /// The rung it was to get at the last decision, and, after it rose (a larger
    /// tile, a step up), until when only congestion takes it down: the share measured
    /// what flowed before.
    last_target: Rung,
    raised_until: Option<Instant>,
}

impl Default for Choice {
    fn default() -> Self {
        Self {
            cap: MAX_LAYERS as u8 - 1,
            // A new subscriber starts on the lowest layer: its path is not known yet,
            // and a layer the path cannot carry freezes its picture until it comes down.
            // It probes its way up after a first look.
            fit: Rung::full(0),
            up_at: None,
            backoff: UP_TRIAL,
            probe: None,
            settle_until: None,
            last_target: Rung::full(0),
            raised_until: None,
        }
    }
}

impl Choice {
    /// The rung it should get: its fit under its tile's cap.
    pub(crate) fn target(&self) -> Rung {
        self.fit.min(Rung::full(self.cap))
    }

    /// While probing, how many copies of each forwarded packet to resend.
    pub(crate) fn probe_copies(&self, now: Instant) -> u8 {
        match self.probe {
            Some(p) if now < p.until => p.copies,
            _ => 0,
        }
    }

    /// Decides with a `share` of the subscriber's bandwidth, what its `path` shows now,
    /// the track's `ladder`, and `on`, the rung it gets now.
    pub(crate) fn decide(
        &mut self,
        now: Instant,
        share: u64,
        path: PathNow,
        ladder: &Ladder,
        on: Rung,
    ) {
        self.up_at.get_or_insert(now + FIRST_LOOK);
        let max = Rung::full(self.cap);
        let lowest = ladder.lowest();
        let fits = ladder.highest_within(max, share, lowest);
        let current = self.target();
        if current > self.last_target {
            self.raised_until = Some(now + RAISED);
        }
        self.last_target = current;
        if let Some(p) = self.probe.as_mut() {
            if fits > current {
                // The path carried the probe: up, and the next rung may be probed soon.
                self.probe = None;
                self.backoff = UP_TRIAL;
                self.fit = fits;
                self.up_at = Some(now + AFTER_PROBE);
                return;
            }
            if path.congested || now >= p.until {
                // It did not: the next probe waits twice as long, and the estimate
                // the probe's congestion brought down is not heeded for a while.
                self.probe = None;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                self.up_at = Some(now + self.backoff);
                self.settle_until = Some(now + SETTLE);
                return;
            }
            p.copies = (p.copies + 1).min(p.need);
            return;
        }
        if self.settle_until.is_some_and(|t| now < t) {
            return;
        }
        self.settle_until = None;
        // Down at once when the path shows it cannot carry what flows now: the highest
        // rung within a margin of the share (what flows is what the share measured,
        // give or take). A rung it does not get now (its tile was smaller a moment
        // ago) the estimate cannot know of: it is given up on congestion only. Under
        // the lowest layer's full frame rate only while the path holds a queue.
        let floor = if path.queued {
            lowest
        } else {
            Rung::full(lowest.layer).min(current)
        };
        let holds = ladder.highest_within(max, share * 115 / 100, floor);
        let raised = self.raised_until.is_some_and(|t| now < t);
        if holds < current && (path.congested || (on > holds && !raised)) {
            self.fit = holds;
            self.up_at = Some(now + self.backoff);
            return;
        }
        // Up, once the rung it has is actually flowing to it: straight to the highest
        // rung its share shows fitting (its tile grew, or the link has room), or else
        // a probe of the next rung first.
        if let Some((_, want)) = ladder.next_above(current, max)
            && on == current
            && self.up_at.is_none_or(|t| now >= t)
        {
            if fits > current {
                self.fit = fits;
                self.up_at = Some(now + UP_TRIAL);
            } else if !path.congested {
                // Copies enough to carry a tenth more than the next rung's rate.
                let have = ladder.rate(current).max(1);
                let need = (want * 11 / 10).div_ceil(have).saturating_sub(1);
                self.probe = Some(Probe {
                    until: now + PROBE,
                    copies: 1,
                    need: need.clamp(1, MAX_PROBE_COPIES) as u8,
                });
            }
        }
    }
}

impl ShardCore {
    /// Which layers of each simulcast track some tile asks for: told to the publisher's
    /// shard, and from there to the publisher (`Notice::LayersWanted`), so that it pauses
    /// the layers above (the lower ones stay: a subscriber whose link falls goes down
    /// at once). Another node's subscribers (the node port) ask for every layer.
    pub(super) fn tell_layer_demand(&mut self) {
        for (track, route) in &mut self.routes {
            if route.kind != MediaKind::Video {
                continue;
            }
            let local = route.subs.iter().map(|s| s.choice.cap).max();
            match &route.origin {
                None => {
                    if route.told != Some(local) {
                        route.told = Some(local);
                        let demand = Control::LayerDemand {
                            track: *track,
                            shard: self.id,
                            max: local,
                        };
                        self.out.control.push((track.shard(), demand));
                    }
                }
                Some(origin) if origin.layers > 1 => {
                    let elsewhere = route.remote.iter().map(|(shard, _)| {
                        route
                            .demand
                            .iter()
                            .find(|(s, _)| s == shard)
                            .map_or(MAX_LAYERS as u8 - 1, |(_, max)| *max)
                    });
                    let max = local.into_iter().chain(elsewhere).max().unwrap_or(0);
                    if route.told != Some(Some(max)) {
                        route.told = Some(Some(max));
                        self.out.notices.push(Notice::LayersWanted {
                            peer: origin.slot.peer,
                            track: *track,
                            max,
                        });
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Chooses every subscriber's layers (the shard's housekeeping).
    pub(super) fn allocate_layers(&mut self, now: Instant) {
        self.tell_layer_demand();
        let elapsed = now.saturating_duration_since(self.last_allocation);
        self.last_allocation = now;
        // What each subscriber receives: (subscriber, track, simulcast, its rate now).
        let mut wants: Vec<(Slot, crate::msg::TrackId, bool, u64)> = Vec::new();
        for (track, route) in &mut self.routes {
            route.rates.roll(elapsed);
            let simulcast = route.layer_seen.iter().filter(|t| t.is_some()).count() > 1;
            let rate = match route.kind {
                MediaKind::Audio => AUDIO_BPS,
                MediaKind::Video => route.rates.bps.iter().copied().max().unwrap_or(0),
            };
            for sub in &route.subs {
                let rate = match sub.layer {
                    Some(l) if route.kind == MediaKind::Video => route.rates.bps[usize::from(l)],
                    _ => rate,
                };
                wants.push((sub.slot, *track, simulcast, rate));
            }
        }
        wants.sort_by_key(|w| w.0.key);
        for group in wants.chunk_by(|a, b| a.0 == b.0) {
            let slot = group[0].0;
            if self.without_feedback(slot.peer) {
                // No congestion control feedback negotiated: the cap alone decides.
                for w in group.iter().filter(|w| w.2) {
                    if let Some(sub) = self
                        .routes
                        .get_mut(&w.1)
                        .and_then(|r| r.subs.iter_mut().find(|s| s.slot == slot))
                    {
                        sub.choice.fit = Rung::full(MAX_LAYERS as u8 - 1);
                    }
                }
                continue;
            }
            let Some(estimate) = self.bandwidth_estimate(slot.peer) else {
                continue; // no feedback yet: it stays where it started
            };
            // Without congestion now, what the path carried lately fits, whatever the
            // estimate says: after loss (a burst, a probe the path could not carry) the
            // estimate falls by half the loss every 200 ms and climbs back only by 8% a
            // second. With congestion, the estimate rules.
            let path = PathNow {
                congested: self.congested(slot.peer),
                queued: self.queued(slot.peer),
            };
            let estimate = match self.acked_rate(slot.peer) {
                Some(carried) if !path.congested => estimate.max(carried),
                _ => estimate,
            };
            let fixed: u64 = group.iter().filter(|w| !w.2).map(|w| w.3).sum();
            if !group.iter().any(|w| w.2) {
                continue;
            }
            // Its simulcast tracks: (track, its tile's cap, its lowest layer's rate).
            let tracks: Vec<(crate::msg::TrackId, u8, u64)> = group
                .iter()
                .filter(|w| w.2)
                .filter_map(|w| {
                    let route = self.routes.get(&w.1)?;
                    let sub = route.subs.iter().find(|s| s.slot == slot)?;
                    Some((w.1, sub.choice.cap, lowest_rate(&route.rates.bps)))
                })
                .collect();
            let tiles: Vec<(u8, u64)> = tracks.iter().map(|t| (t.1, t.2)).collect();
            share_out(estimate.saturating_sub(fixed), &tiles, |i, share| {
                let Some(route) = self.routes.get_mut(&tracks[i].0) else {
                    return 0;
                };
                let ladder = route.rates.ladder();
                let Some(sub) = route.subs.iter_mut().find(|s| s.slot == slot) else {
                    return 0;
                };
                let on = Rung {
                    layer: sub.layer.unwrap_or(0),
                    temporal: sub.temporal,
                };
                sub.choice.decide(now, share, path, &ladder, on);
                ladder.rate(sub.choice.target())
            });
        }
    }
}

/// Shares a subscriber's `budget` among its simulcast tracks, `(cap, lowest layer's
/// rate)` each: the largest tiles (the highest caps: the speaker, a pinned tile) first,
/// equal tiles equally, and what the smaller tiles' lowest layers cost kept back for
/// them. `take(i, share)` decides track `i` with its share and returns what it will cost.
fn share_out(budget: u64, tracks: &[(u8, u64)], mut take: impl FnMut(usize, u64) -> u64) {
    let mut order: Vec<usize> = (0..tracks.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tracks[i].0));
    let mut left = budget;
    for (k, &i) in order.iter().enumerate() {
        let cap = tracks[i].0;
        let rest = &order[k..];
        let equals = rest.iter().take_while(|&&j| tracks[j].0 == cap).count() as u64;
        let smaller: u64 = rest
            .iter()
            .skip_while(|&&j| tracks[j].0 == cap)
            .map(|&j| tracks[j].1)
            .sum();
        let share = left.saturating_sub(smaller) / equals;
        left = left.saturating_sub(take(i, share));
    }
}

/// The rate of a track's lowest layer that is sent (0 when none is).
fn lowest_rate(rates: &[u64; MAX_LAYERS]) -> u64 {
    rates.iter().copied().find(|&r| r > 0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: [u64; 3] = [150_000, 500_000, 1_500_000];

    const CLEAR: PathNow = PathNow {
        congested: false,
        queued: false,
    };
    const LOSSY: PathNow = PathNow {
        congested: true,
        queued: false,
    };

    /// Layers at these rates (0: not seen), each a rung at its full frame rate.
    fn ladder(rates: [u64; 3]) -> Ladder {
        let mut ladder = Ladder::default();
        for (l, &bps) in rates.iter().enumerate().filter(|r| *r.1 > 0) {
            ladder.push(Rung::full(l as u8), bps);
        }
        ladder
    }

    /// A subscriber on the top layer.
    fn top() -> Choice {
        Choice {
            fit: Rung::full(2),
            last_target: Rung::full(2),
            ..Choice::default()
        }
    }

    #[test]
    fn down_at_once_to_what_fits_and_never_below_the_lowest() {
        let t0 = Instant::now();
        let mut c = top();
        c.decide(t0, 600_000, CLEAR, &ladder(RATES), Rung::full(2));
        assert_eq!(c.target().layer, 1);
        c.decide(t0, 10_000, CLEAR, &ladder(RATES), Rung::full(1));
        assert_eq!(c.target().layer, 0, "the lowest layer whatever the share");
    }

    #[test]
    fn probes_before_going_up_and_backs_off_when_the_path_cannot_carry_them() {
        let t0 = Instant::now();
        let mut c = top();
        c.decide(t0, 200_000, CLEAR, &ladder(RATES), Rung::full(2));
        assert_eq!(c.target().layer, 0);
        // The path carries 400 kbit/s: every probe of the middle layer shows no room.
        let mut t = t0;
        let mut probes = Vec::new();
        for _ in 0..200 {
            t += ALLOCATION_INTERVAL;
            let probing = c.probe_copies(t) > 0;
            c.decide(t, 400_000, CLEAR, &ladder(RATES), c.target());
            assert_eq!(c.target().layer, 0, "never up without room");
            if !probing && c.probe_copies(t) > 0 {
                probes.push(t - t0);
                // One copy of each packet first, one more each time the path is not
                // congested, up to what carries a tenth more than 500 kbit/s: 3.
                let mut copies = Vec::new();
                let mut c2 = c;
                for k in 0..4u32 {
                    copies.push(c2.probe_copies(t + ALLOCATION_INTERVAL * k));
                    c2.decide(
                        t + ALLOCATION_INTERVAL * (k + 1),
                        200_000,
                        CLEAR,
                        &ladder(RATES),
                        Rung::full(0),
                    );
                }
                assert_eq!(copies, [1, 2, 3, 3]);
            }
        }
        assert!(probes.len() >= 3, "{probes:?}");
        let gaps: Vec<Duration> = probes.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
        assert!(gaps.last().unwrap() > &(UP_TRIAL * 3), "{gaps:?}");
        // A probe ends at once when the path shows congestion.
        let mut c = top();
        c.decide(t0, 200_000, CLEAR, &ladder(RATES), Rung::full(2));
        c.decide(t0 + UP_TRIAL, 200_000, CLEAR, &ladder(RATES), Rung::full(0));
        assert!(c.probe_copies(t0 + UP_TRIAL) > 0);
        c.decide(
            t0 + UP_TRIAL + ALLOCATION_INTERVAL,
            200_000,
            LOSSY,
            &ladder(RATES),
            Rung::full(0),
        );
        assert_eq!(c.probe_copies(t0 + UP_TRIAL + ALLOCATION_INTERVAL), 0);
        // A probe the path carries (the share grows with it) goes up.
        let mut c = top();
        c.decide(t0, 200_000, CLEAR, &ladder(RATES), Rung::full(2));
        c.decide(t0 + UP_TRIAL, 200_000, CLEAR, &ladder(RATES), Rung::full(0));
        c.decide(
            t0 + UP_TRIAL + ALLOCATION_INTERVAL,
            600_000,
            CLEAR,
            &ladder(RATES),
            Rung::full(0),
        );
        assert_eq!(c.target().layer, 1);
        assert_eq!(c.probe_copies(t0 + UP_TRIAL + ALLOCATION_INTERVAL), 0);
    }

    #[test]
    fn a_share_with_room_goes_straight_to_the_layer_it_fits() {
        let t0 = Instant::now();
        let mut c = top();
        c.decide(t0, 200_000, CLEAR, &ladder(RATES), Rung::full(2));
        assert_eq!(c.target().layer, 0);
        // The link has room for the top layer: after the wait, there at once.
        c.decide(
            t0 + UP_TRIAL,
            2_000_000,
            CLEAR,
            &ladder(RATES),
            Rung::full(0),
        );
        assert_eq!(c.target().layer, 2);
    }

    #[test]
    fn a_trial_that_holds_climbs_on_to_the_cap() {
        let t0 = Instant::now();
        let mut c = Choice { cap: 1, ..top() };
        c.decide(t0, 100_000, CLEAR, &ladder(RATES), Rung::full(2));
        assert_eq!(c.target().layer, 0);
        let mut t = t0;
        for _ in 0..40 {
            t += ALLOCATION_INTERVAL;
            let on = c.target();
            c.decide(t, 5_000_000, CLEAR, &ladder(RATES), on);
        }
        assert_eq!(c.target().layer, 1, "up to the cap, not past it");
    }

    #[test]
    fn layers_not_seen_are_skipped() {
        let t0 = Instant::now();
        let mut c = Choice::default();
        c.decide(t0, 0, CLEAR, &ladder(RATES), Rung::full(0));
        assert_eq!(c.target().layer, 0, "a first look before any step up");
        c.decide(
            t0 + FIRST_LOOK,
            5_000_000,
            CLEAR,
            &ladder([150_000, 0, 1_500_000]),
            Rung::full(0),
        );
        assert_eq!(c.target().layer, 2);
        let mut c = top();
        c.decide(
            t0,
            400_000,
            CLEAR,
            &ladder([150_000, 0, 1_500_000]),
            Rung::full(2),
        );
        assert_eq!(c.target().layer, 0);
    }

    #[test]
    fn the_largest_tiles_are_paid_first_and_equal_tiles_equally() {
        // Decides as `Choice` would with no history: the highest layer that fits.
        let cost = |cap: u8, share: u64| {
            (0..=cap)
                .rev()
                .map(|l| RATES[usize::from(l)])
                .find(|&r| r <= share)
                .unwrap_or(RATES[0])
        };
        let run = |budget: u64, caps: &[u8]| {
            let tracks: Vec<(u8, u64)> = caps.iter().map(|&c| (c, RATES[0])).collect();
            let mut got = vec![0; caps.len()];
            share_out(budget, &tracks, |i, share| {
                got[i] = cost(caps[i], share);
                got[i]
            });
            got
        };
        // The speaker's tile (cap 2) among three thumbnails (cap 0): 2 Mbit/s pays its
        // top layer and every thumbnail's lowest, wherever it is in the list.
        assert_eq!(
            run(2_000_000, &[0, 0, 2, 0]),
            [150_000, 150_000, 1_500_000, 150_000]
        );
        // 1.2 Mbit/s: the speaker gets the middle layer, not the thumbnails' share.
        assert_eq!(run(1_200_000, &[0, 2, 0]), [150_000, 500_000, 150_000]);
        // Two large tiles share equally: 1.3 Mbit/s is a middle layer each, not a top
        // layer for the first and the lowest for the second.
        assert_eq!(run(1_300_000, &[2, 2]), [500_000, 500_000]);
        // Nothing to share: every track its lowest layer.
        assert_eq!(run(0, &[2, 1]), [150_000, 150_000]);
    }

    /// q at 150 kbit/s in three temporal layers (T0 60, T1 30, T2 60), h at 500 kbit/s
    /// in three too, f at 1.5 Mbit/s without.
    fn temporal_rates() -> LayerRates {
        let mut r = LayerRates::default();
        for (layer, tid, bytes) in [(0, 0, 60), (0, 1, 30), (0, 2, 60), (1, 0, 200)] {
            r.count(layer, tid, bytes * 125 - 40);
        }
        r.count(1, 1, 100 * 125 - 40);
        r.count(1, 2, 200 * 125 - 40);
        r.count(2, 0, 1500 * 125 - 40);
        r.roll(Duration::from_secs(1));
        r
    }

    #[test]
    fn the_ladder_has_temporal_rungs_under_the_lowest_layer_only() {
        let rungs: Vec<(Rung, u64)> = temporal_rates().ladder().iter().collect();
        assert_eq!(
            rungs,
            [
                (Rung::new(0, 0), 60_000),
                (Rung::new(0, 1), 90_000),
                (Rung::full(0), 150_000),
                (Rung::full(1), 500_000),
                (Rung::full(2), 1_500_000),
            ]
        );
        // Without temporal layers, a rung a layer.
        let rungs: Vec<Rung> = ladder(RATES).iter().map(|r| r.0).collect();
        assert_eq!(rungs, [Rung::full(0), Rung::full(1), Rung::full(2)]);
    }

    #[test]
    fn under_the_lowest_layer_only_while_a_queue_holds_and_back_by_probing() {
        let ladder = temporal_rates().ladder();
        let t0 = Instant::now();
        let mut c = Choice::default();
        // Loss alone, the share under the lowest layer: it keeps its frame rate.
        c.decide(t0, 70_000, LOSSY, &ladder, Rung::full(0));
        assert_eq!(c.target(), Rung::full(0));
        // A queue holds: down to the rung the share carries, a quarter of the frames.
        let queued = PathNow {
            congested: true,
            queued: true,
        };
        c.decide(t0, 70_000, queued, &ladder, Rung::full(0));
        assert_eq!(c.target(), Rung::new(0, 0));
        // The queue drained: it stays while the share says so, then probes the rungs
        // back one by one (two of three frames, then all).
        let mut t = t0;
        let mut seen = vec![c.target()];
        for _ in 0..400 {
            t += ALLOCATION_INTERVAL;
            let on = c.target();
            let share = ladder.rate(on) * (1 + u64::from(c.probe_copies(t)));
            c.decide(t, share, CLEAR, &ladder, on);
            if seen.last() != Some(&c.target()) {
                seen.push(c.target());
            }
            if c.target() == Rung::full(0) {
                break;
            }
        }
        assert_eq!(seen, [Rung::new(0, 0), Rung::new(0, 1), Rung::full(0)]);
        assert!(
            t - t0 >= UP_TRIAL + AFTER_PROBE,
            "each step up waits: {:?}",
            t - t0
        );
        // From a higher layer, a queue with a share under the lowest layer
        // goes straight to the rung the share carries.
        let mut c = top();
        c.decide(t, 100_000, queued, &ladder, Rung::full(2));
        assert_eq!(c.target(), Rung::new(0, 1));
    }

    #[test]
    fn rates_are_measured_and_smoothed() {
        let mut r = LayerRates::default();
        for _ in 0..50 {
            r.count(1, 0, 960);
        }
        r.roll(Duration::from_secs(1));
        assert_eq!(r.bps[1], 50 * 1000 * 8);
        r.roll(Duration::from_secs(1));
        assert_eq!(r.bps[1], 50 * 1000 * 4, "half the last, half nothing");
        assert_eq!(r.bps[0], 0);
    }
}
