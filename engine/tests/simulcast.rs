//! Simulcast through the shard core, with real str0m peers on virtual time: a publisher
//! sends its camera in three layers (rids q, h, f) on one m-line; the room sees one
//! track; a subscriber receives one layer (the lowest at first: it probes its way up to
//! the highest its path carries), and moves between layers at keyframes with its
//! sequence numbers, timestamps (by the layers' sender reports) and VP8 picture ids going
//! on without a gap.

use std::time::Duration;

use engine::msg::{Control, TrackId};
use str0m::format::Codec;
use str0m::media::MediaKind;
use testkit::{Net, TestClient, video};

type Harness = Net<TestClient>;

const RIDS: [&str; 3] = ["q", "h", "f"];

/// Frame `i` of layer `layer`, one packet: a VP8 descriptor with a 15-bit picture id
/// that each layer counts on its own (from `layer × 10000`), a keyframe every tenth
/// frame; the layer in byte 5 and the frame number in bytes 6..10; more bytes the higher
/// the layer.
fn frame(layer: u8, i: u32) -> Vec<u8> {
    let mut p = vec![0u8; 100 + 300 * usize::from(layer)];
    let picture_id = (u32::from(layer) * 10_000 + i) as u16 & 0x7fff;
    p[..4].copy_from_slice(&[0x90, 0x80, 0x80 | (picture_id >> 8) as u8, picture_id as u8]);
    p[4] = u8::from(!i.is_multiple_of(10)); // the VP8 header's P bit: 0 in a keyframe
    p[5] = layer;
    p[6..10].copy_from_slice(&i.to_be_bytes());
    p
}

/// A simulcast publisher (client 0) and a subscriber of its camera (client 1), both on
/// shard 0 or on different shards.
fn setup(subscriber_shard: usize) -> (Harness, TrackId) {
    let mut h = Harness::new(2);
    let mut publisher = TestClient::new(h.now, Harness::client_addr(0));
    publisher.peer.set_simulcast("cam-video", &RIDS);
    let offer = publisher.peer.create_offer(&[video("cam")]).unwrap();
    h.add(0, publisher, &offer);
    h.join(subscriber_shard, &[]);
    assert!(h.run_until(Duration::from_secs(5), |h| h.all_connected()
        && h.published.len() == 1));
    let track = h.track(0, MediaKind::Video);
    h.subscribe(1, &[track]);
    assert!(
        h.run_until(Duration::from_secs(5), |h| h.clients[1].subscribed.len()
            == 1)
    );
    (h, track)
}

/// Each layer's RTP timestamps start from its own random-looking base, as a browser's do.
const TIME_BASE: [u32; 3] = [0, 7_000_000, 91_234_567];

/// The publisher sends `n` frames of every layer, 33 ms apart, from frame `from`.
fn send_frames(h: &mut Harness, from: u32, n: u32) {
    send_frames_spaced(h, from, n, &[33]);
}

/// [`send_frames`], frame `i` sent `gaps[i % gaps.len()]` ms after the one before: with
/// uneven gaps, the capture clock (in the timestamps and the sender reports) stays
/// regular and the arrival times do not.
fn send_frames_spaced(h: &mut Harness, from: u32, n: u32, gaps: &[u64]) {
    for i in from..from + n {
        send_frame(h, i, RIDS.len());
        h.run_for(Duration::from_millis(gaps[i as usize % gaps.len()]));
    }
}

/// The publisher sends frame `i` of its lowest `layers` layers.
fn send_frame(h: &mut Harness, i: u32, layers: usize) {
    send_made_frame(h, i, layers, (Codec::Vp8, frame));
}

/// The publisher sends frame `i` of its lowest `layers` layers in `codec`, each made by
/// `make(layer, i)`.
fn send_made_frame(h: &mut Harness, i: u32, layers: usize, (codec, make): Maker) {
    let now = h.now;
    let publisher = &mut h.clients[0].peer;
    let mid = publisher.mid_of("cam", "cam-video").unwrap();
    for (layer, rid) in RIDS.iter().enumerate().take(layers) {
        let time = TIME_BASE[layer].wrapping_add(i * 3000);
        let payload = make(layer as u8, i);
        publisher
            .send_rtp_layer(now, mid, rid, codec, time, true, &payload)
            .unwrap();
    }
}

/// A codec and what makes frame `i` of a layer in it.
type Maker = (Codec, fn(u8, u32) -> Vec<u8>);

/// The publisher sends `n` frames of every layer, made by `maker`, 33 ms apart, from
/// frame `from`.
fn send_made_frames(h: &mut Harness, from: u32, n: u32, maker: Maker) {
    for i in from..from + n {
        send_made_frame(h, i, RIDS.len(), maker);
        h.run_for(Duration::from_millis(33));
    }
}

/// (layer, frame) of each video packet the subscriber got, with its sequence number,
/// timestamp and VP8 picture id.
fn got(h: &Harness) -> Vec<(u8, u32, u64, u32, u16)> {
    h.clients[1]
        .received
        .iter()
        .filter(|p| p.codec == Some(Codec::Vp8))
        .map(|p| {
            let b = &p.payload;
            let frame = u32::from_be_bytes([b[6], b[7], b[8], b[9]]);
            let picture_id = u16::from(b[2] & 0x7f) << 8 | u16::from(b[3]);
            (b[5], frame, p.seq, p.time, picture_id)
        })
        .collect()
}

/// The publisher sends frames until the subscriber gets the top layer: it starts on the
/// lowest and probes its way up (at most 10 s). Returns the frames sent.
fn climb(h: &mut Harness) -> u32 {
    let mut n = 0;
    while n < 300 && got(h).last().is_none_or(|p| p.0 < 2) {
        send_frames(h, n, 15);
        n += 15;
    }
    let all = got(h);
    // (The very first packet may be another layer's copy of frame 0, if that layer's
    // packet reached the shard before the lowest's: it forwards what flows.)
    let after_first = all.iter().find(|p| p.1 >= 1).map(|p| p.0);
    assert_eq!(after_first, Some(0), "it starts on the lowest layer");
    assert_eq!(all.last().map(|p| p.0), Some(2), "it climbs to the top one");
    n
}

/// The subscriber's tile asks for at most layer `max` of `track`.
fn cap(h: &mut Harness, track: TrackId, max: u8) {
    let (shard, peer) = (h.clients[1].shard, h.clients[1].id);
    h.control(shard, Control::SetMaxLayer { peer, track, max });
}

/// One stream for the subscriber: consecutive sequence numbers and picture ids,
/// timestamps that go forward, frames that never go back (a switch may bring the new
/// layer's copy of the last frame: a keyframe the decoder takes in its stead).
fn assert_continuous(got: &[(u8, u32, u64, u32, u16)]) {
    for w in got.windows(2) {
        assert_eq!(w[1].2, w[0].2 + 1, "a gap in sequence numbers: {w:?}");
        assert_eq!(w[1].4, (w[0].4 + 1) & 0x7fff, "a gap in picture ids: {w:?}");
        let step = w[1].3.wrapping_sub(w[0].3);
        assert!(
            step > 0 && step < u32::MAX / 2,
            "time did not go forward: {w:?}"
        );
        assert!(w[1].1 >= w[0].1, "a frame out of order: {w:?}");
    }
}

/// Where the subscriber's stream moved from one layer to another: (index, layer).
fn switches(got: &[(u8, u32, u64, u32, u16)]) -> Vec<(usize, u8)> {
    let mut out = vec![(0, got[0].0)];
    for (i, w) in got.windows(2).enumerate() {
        if w[1].0 != w[0].0 {
            out.push((i + 1, w[1].0));
        }
    }
    out
}

#[test]
fn a_subscriber_gets_the_top_layer_and_moves_down_and_up_at_keyframes() {
    for subscriber_shard in [0, 1] {
        let (mut h, track) = setup(subscriber_shard);
        let n = climb(&mut h);
        // Sent unevenly from here: the switches' timestamps follow the capture clock.
        let uneven = [20, 46];
        cap(&mut h, track, 0);
        send_frames_spaced(&mut h, n, 30, &uneven);
        cap(&mut h, track, 2);
        send_frames_spaced(&mut h, n + 30, 30, &uneven);
        let all = got(&h);
        assert_continuous(&all);
        let moves = switches(&all);
        let layers: Vec<u8> = moves.iter().map(|m| m.1).collect();
        assert!(
            layers.ends_with(&[2, 0, 2]),
            "top, down to 0, up again: {moves:?}"
        );
        for (at, _) in &moves {
            assert_eq!(
                all[*at].1 % 10,
                0,
                "each start and switch at a keyframe: {moves:?}"
            );
        }
        // Across the switches the sender reports have come for (all but the first),
        // the timestamps go on by the capture clock: 3000 a frame, whatever each layer's
        // base and however unevenly the packets arrived.
        for (at, _) in &moves[1..] {
            let (a, b) = (all[at - 1], all[*at]);
            if b.1 == a.1 {
                continue; // the new layer's copy of the same frame: one tick on
            }
            let frames = b.1 - a.1;
            let step = b.3.wrapping_sub(a.3);
            assert!(
                step.abs_diff(3000 * frames) <= 90,
                "a switch from {a:?} to {b:?} stepped the clock by {step}"
            );
        }
        let down = moves[moves.len() - 2].0;
        assert!(all[down].1 >= n, "down after it was asked: {moves:?}");
        let up = moves[moves.len() - 1].0;
        assert!(all[up].1 >= n + 30, "up after it was asked: {moves:?}");
    }
}

#[test]
fn a_layer_that_stops_is_not_waited_for() {
    let (mut h, _) = setup(0);
    let n = climb(&mut h);
    // The publisher's uplink no longer carries the top layer: only q and h go on.
    for i in n..n + 60 {
        send_frame(&mut h, i, 2);
        h.run_for(Duration::from_millis(33));
    }
    let all = got(&h);
    assert_eq!(
        all.last().unwrap().0,
        1,
        "the next layer down goes on: {all:?}"
    );
    assert_continuous(&all);
}

/// A subscriber whose link starts losing packets gets a lower layer; when the link
/// heals, it climbs back to the top one. Its stream stays one stream throughout.
#[test]
fn a_subscriber_whose_estimate_falls_then_rises_gets_low_then_high() {
    let (mut h, _) = setup(0);
    let mut frame = climb(&mut h);
    // 30% of what reaches the subscriber is lost (media only: its session stays up).
    let subscriber = Harness::client_addr(1);
    let mut n = 0u32;
    h.loss = Some(Box::new(move |_, to, data| {
        n += 1;
        to == subscriber && testkit::is_rtp(data) && n % 10 < 3
    }));
    let start = frame;
    let mut low_at = None;
    while low_at.is_none() && frame < start + 30 * 30 {
        send_frames(&mut h, frame, 15);
        frame += 15;
        if got(&h).last().unwrap().0 < 2 {
            low_at = Some(frame);
        }
    }
    let low_at = low_at.expect("a lower layer under loss");
    // Probes raised it before; going down on the lossy path, the top layer stopped at
    // once while the lower one's keyframe came.
    let stat = |h: &Harness, f: fn(&engine::stats::ShardStats) -> u64| {
        h.shards.iter().map(|s| f(&s.stats)).sum::<u64>()
    };
    assert!(stat(&h, |s| s.probe_packets) > 0, "it probed its way up");
    assert!(
        stat(&h, |s| s.rtp_held_for_congestion) > 0,
        "held at once going down"
    );
    h.loss = None;
    let mut high_at = None;
    while high_at.is_none() && frame < low_at + 30 * 120 {
        send_frames(&mut h, frame, 15);
        frame += 15;
        if got(&h).last().unwrap().0 == 2 && switches(&got(&h)).len() > 2 {
            high_at = Some(frame);
        }
    }
    let all = got(&h);
    assert!(
        high_at.is_some(),
        "back on the top layer once the loss stopped: {:?}",
        switches(&all)
            .iter()
            .map(|(i, l)| (all[*i].1, *l))
            .collect::<Vec<_>>()
    );
}

/// The publisher is told which layers some tile wants: none above the lowest while its
/// only subscriber shows it small, every one once the tile is large again, on the
/// subscriber's shard or another.
#[test]
fn the_publisher_hears_which_layers_the_tiles_want() {
    for subscriber_shard in [0, 1] {
        let (mut h, track) = setup(subscriber_shard);
        send_frames(&mut h, 0, 20);
        let publisher = h.clients[0].id;
        let told = |h: &Harness| {
            h.layers_wanted
                .iter()
                .filter(|(p, t, _)| *p == publisher && *t == track)
                .map(|(_, _, max)| *max)
                .next_back()
        };
        assert_eq!(told(&h), Some(2), "shard {subscriber_shard}: every layer");
        cap(&mut h, track, 0);
        send_frames(&mut h, 20, 40);
        assert_eq!(
            told(&h),
            Some(0),
            "shard {subscriber_shard}: the lowest only"
        );
        cap(&mut h, track, 2);
        let mut n = 60;
        while n < 400 && got(&h).last().is_none_or(|p| p.0 < 2) {
            send_frames(&mut h, n, 20);
            n += 20;
        }
        assert_eq!(told(&h), Some(2));
        assert_eq!(got(&h).last().unwrap().0, 2);
    }
}

/// Frame `i` of layer `layer` in H264, one packet: an IDR slice every tenth frame, else a
/// non-IDR slice; the layer in byte 5 and the frame number in bytes 6..10, as [`frame`].
fn h264_frame(layer: u8, i: u32) -> Vec<u8> {
    let mut p = vec![0u8; 100 + 300 * usize::from(layer)];
    p[0] = if i.is_multiple_of(10) { 0x65 } else { 0x41 };
    p[5] = layer;
    p[6..10].copy_from_slice(&i.to_be_bytes());
    p
}

/// H264 layers switch as VP8's do, at IDR frames, with one SSRC and consecutive sequence
/// numbers and timestamps that go forward (H264 has no picture ids to rewrite).
#[test]
fn h264_layers_switch_at_idr_frames_with_the_stream_continuous() {
    let (mut h, track) = setup(1);
    let got_h264 = |h: &Harness| -> Vec<(u8, u32, u64, u32)> {
        h.clients[1]
            .received
            .iter()
            .filter(|p| p.codec == Some(Codec::H264))
            .map(|p| {
                let b = &p.payload;
                (
                    b[5],
                    u32::from_be_bytes([b[6], b[7], b[8], b[9]]),
                    p.seq,
                    p.time,
                )
            })
            .collect()
    };
    let send = |h: &mut Harness, from: u32, n: u32| {
        send_made_frames(h, from, n, (Codec::H264, h264_frame));
    };
    let on_top = |h: &Harness| got_h264(h).last().is_some_and(|p| p.0 == 2);
    let mut n = 0;
    while n < 300 && !on_top(&h) {
        send(&mut h, n, 15);
        n += 15;
    }
    assert!(on_top(&h), "it climbs to the top layer");
    cap(&mut h, track, 0);
    send(&mut h, n, 30);
    cap(&mut h, track, 2);
    let mut m = n + 30;
    while m < n + 330 && got_h264(&h).last().is_some_and(|p| p.0 < 2) {
        send(&mut h, m, 15);
        m += 15;
    }
    let all = got_h264(&h);
    let mut layers = vec![all[0].0];
    for w in all.windows(2) {
        assert_eq!(w[1].2, w[0].2 + 1, "a gap in sequence numbers: {w:?}");
        let step = w[1].3.wrapping_sub(w[0].3);
        assert!(
            step > 0 && step < u32::MAX / 2,
            "time did not go forward: {w:?}"
        );
        if w[1].0 != w[0].0 {
            layers.push(w[1].0);
            assert_eq!(w[1].1 % 10, 0, "a switch at an IDR frame: {w:?}");
        }
    }
    assert!(
        layers.ends_with(&[2, 0, 2]),
        "top, down to 0, up again: {layers:?}"
    );
}

/// The temporal layer of frame `i` in VP8's L1T3 pattern: 0, 2, 1, 2, 0, …
fn tid(i: u32) -> u8 {
    [0, 2, 1, 2][i as usize % 4]
}

/// Frame `i` of layer `layer` in three temporal layers, one packet: a VP8 descriptor with
/// a 15-bit picture id, TL0PICIDX (one up each base frame) and TID; a keyframe every
/// 40th frame (a base frame); the layer in byte 7 and the frame number in bytes 8..12.
/// 300 bytes in the lowest layer (about 90 kbit/s at 30 frames a second).
fn temporal_frame(layer: u8, i: u32) -> Vec<u8> {
    let mut p = vec![0u8; 300 + 300 * usize::from(layer)];
    let picture_id = (u32::from(layer) * 10_000 + i) as u16 & 0x7fff;
    p[..6].copy_from_slice(&[
        0x90,
        0xe0, // I, L, T
        0x80 | (picture_id >> 8) as u8,
        picture_id as u8,
        (i / 4) as u8,
        tid(i) << 6,
    ]);
    p[6] = u8::from(!i.is_multiple_of(40)); // the VP8 header's P bit: 0 in a keyframe
    p[7] = layer;
    p[8..12].copy_from_slice(&i.to_be_bytes());
    p
}

/// A subscriber whose link carries less than the lowest layer (its queue grows) gets
/// that layer at a lower frame rate: frames of the upper temporal layers are left out,
/// and its stream stays one stream (consecutive sequence numbers and picture ids,
/// TL0PICIDX one up each base frame). Once the link has room, it climbs back to the full
/// frame rate and on to the top layer.
#[test]
fn a_link_under_the_lowest_layer_gets_fewer_frames_not_a_frozen_picture() {
    let (mut h, _) = setup(0);
    // The subscriber's downlink carries 60 kbit/s, with a queue of 300 ms at that rate.
    let subscriber = Harness::client_addr(1);
    h.cap_link(subscriber, Some((60_000, Duration::from_millis(300))));
    // (layer, frame, sequence number, picture id, TL0PICIDX, TID) of each video packet,
    // in sequence order, each once.
    let got = |h: &Harness| -> Vec<(u8, u32, u64, u16, u8, u8)> {
        let mut got: Vec<_> = h.clients[1]
            .received
            .iter()
            .filter(|p| p.codec == Some(Codec::Vp8))
            .map(|p| {
                let b = &p.payload;
                let picture_id = u16::from(b[2] & 0x7f) << 8 | u16::from(b[3]);
                let frame = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
                (b[7], frame, p.seq, picture_id, b[4], b[5] >> 6)
            })
            .collect();
        got.sort_by_key(|p| p.2);
        got.dedup_by_key(|p| p.2);
        got
    };
    let send = |h: &mut Harness, from: u32, n: u32| {
        send_made_frames(h, from, n, (Codec::Vp8, temporal_frame));
    };
    // 20 s on the narrow link; judged over the last 8.
    send(&mut h, 0, 360);
    let judged_from = 360;
    send(&mut h, judged_from, 240);
    let all = got(&h);
    let judged: Vec<_> = all.iter().filter(|p| p.1 >= judged_from).collect();
    let frames = judged.len();
    assert!(
        judged.iter().all(|p| p.0 == 0 && p.5 < 2),
        "the lowest layer, without its top temporal layer: {:?}",
        judged.iter().map(|p| (p.0, p.5)).collect::<Vec<_>>()
    );
    assert!(
        (50..=130).contains(&frames),
        "a quarter or half of 240 frames: {frames}"
    );
    for w in judged.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert_eq!(b.2, a.2 + 1, "a gap in sequence numbers: {w:?}");
        assert_eq!(b.3, (a.3 + 1) & 0x7fff, "a gap in picture ids: {w:?}");
        let base_frame = u8::from(b.5 == 0);
        assert_eq!(b.4, a.4.wrapping_add(base_frame), "TL0PICIDX: {w:?}");
    }
    let stat = |h: &Harness| {
        h.shards
            .iter()
            .map(|s| s.stats.rtp_temporal_left_out)
            .sum::<u64>()
    };
    assert!(stat(&h) > 0);
    // The link has room again: back to every frame, and up to the top layer (after the
    // failed probes' backoff, at most a minute).
    h.cap_link(subscriber, None);
    let mut n = 600;
    while n < 600 + 30 * 150 && got(&h).last().is_none_or(|p| p.0 < 2) {
        send(&mut h, n, 30);
        n += 30;
    }
    let all = got(&h);
    let last = all.last().unwrap();
    assert_eq!(last.0, 2, "on the top layer again");
    let top: Vec<u8> = all.iter().rev().take(8).map(|p| p.5).collect();
    assert!(top.contains(&2), "with every frame: {top:?}");
}
