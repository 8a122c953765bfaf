//! Which simulcast layer each subscriber gets (`docs/simulcast.md`), decided every
//! [`ALLOCATION_INTERVAL`] on its shard:
//!
//! - Each layer's rate is measured where it is forwarded (bits per second, smoothed).
//! - A subscriber's bandwidth estimate (`crate::bwe`, from its congestion control
//!   feedback) pays first for what it receives that has no layers (audio at
//!   [`AUDIO_BPS`], video without simulcast at its rate); the rest goes to its
//!   simulcast tracks, the largest tiles first (the speaker, a pinned tile: the highest
//!   caps), equal tiles equally, the smaller tiles' lowest layers kept paid for.
//! - For each, the highest layer at or under its cap (the tile's size, `SetMaxLayer`)
//!   whose rate fits its share. Down at once. Up at most every [`UP_TRIAL`]: straight
//!   to a layer the share shows fitting (a tile that grew, a link with room); beyond
//!   that one layer at a time, since the estimate cannot see more than the path carries
//!   now (it stays under 1.5× what was received): a trial of the next layer itself; a
//!   trial the path cannot carry (it comes down again within [`UP_TRIAL`]) doubles the
//!   wait before the next, up to [`MAX_BACKOFF`].
//! - Without an estimate (no transport-wide feedback), the cap alone decides.
//!
//! The switch itself happens at the chosen layer's next keyframe (`forwarding.rs`).

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
/// The first wait before a trial of a higher layer, and how long a trial must hold.
pub(super) const UP_TRIAL: Duration = Duration::from_secs(4);
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(64);

/// Each layer's rate, bits per second, measured where the track is forwarded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LayerRates {
    bytes: [u64; MAX_LAYERS],
    pub(crate) bps: [u64; MAX_LAYERS],
}

impl LayerRates {
    /// A packet of `layer` with `len` bytes of payload was forwarded.
    pub(crate) fn count(&mut self, layer: usize, len: usize) {
        // With its RTP and SRTP overhead, roughly.
        self.bytes[layer.min(MAX_LAYERS - 1)] += len as u64 + 40;
    }

    /// The bytes counted over `elapsed` become the rates (smoothed: half the new).
    fn roll(&mut self, elapsed: Duration) {
        let ms = elapsed.as_millis().max(1) as u64;
        for (bytes, bps) in self.bytes.iter_mut().zip(self.bps.iter_mut()) {
            let now = *bytes * 8 * 1000 / ms;
            *bps = if *bps == 0 { now } else { (*bps + now) / 2 };
            *bytes = 0;
        }
    }
}

/// A subscriber's state of the choice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Choice {
    /// The most its tile asks for (`SetMaxLayer`).
    pub(crate) cap: u8,
    /// The most its bandwidth allows.
    pub(crate) fit: u8,
    /// No trial of a higher layer before this.
    up_at: Option<Instant>,
    /// The wait after a failed trial.
    backoff: Duration,
    /// When the last trial began.
    tried_at: Option<Instant>,
}

impl Default for Choice {
    fn default() -> Self {
        Self {
            cap: MAX_LAYERS as u8 - 1,
            fit: MAX_LAYERS as u8 - 1,
            up_at: None,
            backoff: UP_TRIAL,
            tried_at: None,
        }
    }
}

impl Choice {
    /// The layer it should get.
    pub(crate) fn target(&self) -> u8 {
        self.cap.min(self.fit)
    }

    /// Decides with a `share` of the subscriber's bandwidth, the track's layer `rates`
    /// (0: a layer not seen), and `on`, the layer it gets now.
    pub(crate) fn decide(&mut self, now: Instant, share: u64, rates: &[u64; MAX_LAYERS], on: u8) {
        let fits = (0..=self.cap)
            .rev()
            .find(|l| rates[usize::from(*l)] > 0 && rates[usize::from(*l)] <= share)
            .unwrap_or(0);
        let current = self.fit.min(self.cap);
        if fits < current {
            // Down at once; a trial that did not hold makes the next wait longer.
            if self.tried_at.is_some_and(|t| now < t + UP_TRIAL) {
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
            self.tried_at = None;
            self.fit = fits;
            self.up_at = Some(now + self.backoff);
            return;
        }
        if self.tried_at.is_some_and(|t| now >= t + UP_TRIAL) {
            self.tried_at = None; // it held
            self.backoff = UP_TRIAL;
        }
        // Up, once the layer it has is actually flowing to it: straight to the highest
        // layer its share shows fitting (its tile grew, or the link has room), or else a
        // trial of the next layer.
        let higher = (current + 1..=self.cap).find(|l| rates[usize::from(*l)] > 0);
        if let Some(next) = higher
            && on == current
            && self.up_at.is_none_or(|t| now >= t)
        {
            if fits > current {
                self.fit = fits;
            } else {
                self.tried_at = Some(now);
                self.fit = next;
            }
            self.up_at = Some(now + UP_TRIAL);
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
            let Some(estimate) = self.bandwidth_estimate(slot.peer) else {
                continue; // no feedback: the cap alone decides
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
                let rates = route.rates.bps;
                let Some(sub) = route.subs.iter_mut().find(|s| s.slot == slot) else {
                    return 0;
                };
                let on = sub.layer.unwrap_or(0);
                sub.choice.decide(now, share, &rates, on);
                rates[usize::from(sub.choice.target())].max(tracks[i].2)
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

    #[test]
    fn down_at_once_to_what_fits_and_never_below_the_lowest() {
        let t0 = Instant::now();
        let mut c = Choice::default();
        c.decide(t0, 600_000, &RATES, 2);
        assert_eq!(c.target(), 1);
        c.decide(t0, 10_000, &RATES, 1);
        assert_eq!(c.target(), 0, "the lowest layer whatever the share");
    }

    #[test]
    fn up_one_layer_at_a_time_with_trials_that_back_off_when_they_fail() {
        let t0 = Instant::now();
        let mut c = Choice::default();
        c.decide(t0, 200_000, &RATES, 2);
        assert_eq!(c.target(), 0);
        // The path carries 1.5× what it gets: never enough to see the next layer fit.
        let mut t = t0;
        let mut tried = Vec::new();
        for _ in 0..200 {
            t += ALLOCATION_INTERVAL;
            let on = c.target();
            let share = RATES[usize::from(on)] * 3 / 2;
            c.decide(t, share.min(400_000), &RATES, on);
            if c.target() > on {
                tried.push(t - t0);
            }
        }
        // Every trial fails (the path carries 400 kbit/s); each waits twice as long.
        assert!(tried.len() >= 3, "{tried:?}");
        let gaps: Vec<Duration> = tried.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
        assert!(gaps.last().unwrap() > &(UP_TRIAL * 3), "{gaps:?}");
    }

    #[test]
    fn a_share_with_room_goes_straight_to_the_layer_it_fits() {
        let t0 = Instant::now();
        let mut c = Choice::default();
        c.decide(t0, 200_000, &RATES, 2);
        assert_eq!(c.target(), 0);
        // The link has room for the top layer: after the wait, there at once.
        c.decide(t0 + UP_TRIAL, 2_000_000, &RATES, 0);
        assert_eq!(c.target(), 2);
    }

    #[test]
    fn a_trial_that_holds_climbs_on_to_the_cap() {
        let t0 = Instant::now();
        let mut c = Choice {
            cap: 1,
            ..Choice::default()
        };
        c.decide(t0, 100_000, &RATES, 2);
        assert_eq!(c.target(), 0);
        let mut t = t0;
        for _ in 0..40 {
            t += ALLOCATION_INTERVAL;
            let on = c.target();
            c.decide(t, 5_000_000, &RATES, on);
        }
        assert_eq!(c.target(), 1, "up to the cap, not past it");
    }

    #[test]
    fn layers_not_seen_are_skipped() {
        let t0 = Instant::now();
        let mut c = Choice::default();
        c.decide(t0, 5_000_000, &[150_000, 0, 1_500_000], 0);
        assert_eq!(c.target(), 2);
        let mut c = Choice::default();
        c.decide(t0, 400_000, &[150_000, 0, 1_500_000], 2);
        assert_eq!(c.target(), 0);
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

    #[test]
    fn rates_are_measured_and_smoothed() {
        let mut r = LayerRates::default();
        for _ in 0..50 {
            r.count(1, 960);
        }
        r.roll(Duration::from_secs(1));
        assert_eq!(r.bps[1], 50 * 1000 * 8);
        r.roll(Duration::from_secs(1));
        assert_eq!(r.bps[1], 50 * 1000 * 4, "half the last, half nothing");
        assert_eq!(r.bps[0], 0);
    }
}
