//! The shard core with real str0m peers over an in-memory network and virtual time:
//! publish, subscribe, subsets, unsubscribe, leave, keyframe throttling, cross-shard.

use std::time::Duration;

use str0m::format::Codec;
use str0m::media::MediaKind;
use testkit::{INTER_FRAME, KEYFRAME_START, Net, TestClient, audio, is_rtp, video};

type Harness = Net<TestClient>;

/// Packet `i` of a test stream: a keyframe's first packet (so a new subscriber starts
/// at any of them), numbered in bytes 4..8.
fn payload(i: u32) -> Vec<u8> {
    let mut p = vec![0u8; 200 + (i as usize % 800)];
    p[..4].copy_from_slice(&KEYFRAME_START);
    p[4..8].copy_from_slice(&i.to_be_bytes());
    p
}

/// Connects everyone, then has publisher 0 send `n` video and `n` audio packets.
fn publish_and_send(h: &mut Harness, n: u32) {
    for i in 0..n {
        h.send(0, "alice", "alice-video", Codec::Vp8, i, &payload(i));
        h.send(
            0,
            "alice",
            "alice-audio",
            Codec::Opus,
            i,
            &payload(i)[..100],
        );
        h.step(Duration::from_millis(10));
    }
    h.run_for(Duration::from_millis(200));
}

fn setup(shard_of_subscriber: usize) -> Harness {
    let mut h = Harness::new(2);
    h.join(0, &[video("alice"), audio("alice")]);
    h.join(shard_of_subscriber, &[]);
    assert!(h.run_until(Duration::from_secs(5), |h| h.all_connected()
        && h.published.len() == 2));
    h
}

/// Client 1 subscribes to `tracks` and the test waits until every one is confirmed.
fn subscribe_and_wait(h: &mut Harness, tracks: &[engine::msg::TrackId]) {
    h.subscribe(1, tracks);
    let n = tracks.len();
    assert!(
        h.run_until(Duration::from_secs(5), |h| h.clients[1].subscribed.len()
            == n)
    );
}

/// Client 1 subscribes to both of alice's tracks, and waits until they are confirmed.
fn subscribed_to_both(mut h: Harness) -> Harness {
    let tracks = [h.track(0, MediaKind::Video), h.track(0, MediaKind::Audio)];
    subscribe_and_wait(&mut h, &tracks);
    h
}

fn received(h: &Harness, client: usize, kind: MediaKind) -> Vec<Vec<u8>> {
    let c = &h.clients[client];
    c.received
        .iter()
        .filter(|p| {
            let is_video = matches!(p.codec, Some(Codec::Vp8));
            is_video == (kind == MediaKind::Video)
        })
        .map(|p| p.payload.to_vec())
        .collect()
}

#[test]
fn publish_then_subscribe_delivers_every_packet_in_order() {
    for subscriber_shard in [0, 1] {
        let mut h = subscribed_to_both(setup(subscriber_shard));
        publish_and_send(&mut h, 50);
        let expected: Vec<Vec<u8>> = (0..50).map(payload).collect();
        assert_eq!(
            received(&h, 1, MediaKind::Video),
            expected,
            "shard {subscriber_shard}"
        );
        let expected_audio: Vec<Vec<u8>> = (0..50).map(|i| payload(i)[..100].to_vec()).collect();
        assert_eq!(received(&h, 1, MediaKind::Audio), expected_audio);
        // Sequence numbers are consecutive for the subscriber.
        let seqs: Vec<u64> = h.clients[1]
            .received
            .iter()
            .filter(|p| p.codec == Some(Codec::Vp8))
            .map(|p| p.seq)
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }
}

#[test]
fn subscribing_to_a_subset_receives_only_that_subset() {
    let mut h = setup(1);
    let audio_track = h.track(0, MediaKind::Audio);
    h.join(0, &[]);
    assert!(h.run_until(Duration::from_secs(5), |h| h.all_connected()));
    h.subscribe(1, &[audio_track]);
    h.subscribe(2, &[h.track(0, MediaKind::Video)]);
    assert!(h.run_until(Duration::from_secs(5), |h| {
        h.clients[1].subscribed.len() == 1 && h.clients[2].subscribed.len() == 1
    }));
    publish_and_send(&mut h, 20);
    assert_eq!(received(&h, 1, MediaKind::Audio).len(), 20);
    assert!(received(&h, 1, MediaKind::Video).is_empty());
    assert_eq!(received(&h, 2, MediaKind::Video).len(), 20);
    assert!(received(&h, 2, MediaKind::Audio).is_empty());
}

#[test]
fn unsubscribe_stops_delivery() {
    let mut h = setup(1);
    let v = h.track(0, MediaKind::Video);
    h.subscribe(1, &[v]);
    assert!(
        h.run_until(Duration::from_secs(5), |h| h.clients[1].subscribed
            == vec![v])
    );
    publish_and_send(&mut h, 10);
    assert_eq!(received(&h, 1, MediaKind::Video).len(), 10);
    let (shard, peer) = (h.clients[1].shard, h.clients[1].id);
    h.control(
        shard,
        engine::msg::Control::Unsubscribe {
            peer,
            tracks: vec![v],
            gone: false,
        },
    );
    assert!(h.run_until(Duration::from_secs(5), |h| {
        h.clients[1].subscribed.is_empty()
    }));
    publish_and_send(&mut h, 10);
    assert_eq!(
        received(&h, 1, MediaKind::Video).len(),
        10,
        "nothing after unsubscribe"
    );
}

#[test]
fn resubscribing_reuses_the_parked_m_line_and_continues_its_stream() {
    let mut h = setup(1);
    let v = h.track(0, MediaKind::Video);
    let (shard, peer) = (h.clients[1].shard, h.clients[1].id);
    for round in 0..3 {
        subscribe_and_wait(&mut h, &[v]);
        publish_and_send(&mut h, 10);
        h.control(
            shard,
            engine::msg::Control::Unsubscribe {
                peer,
                tracks: vec![v],
                gone: false,
            },
        );
        assert!(
            h.run_until(Duration::from_secs(5), |h| h.clients[1]
                .subscribed
                .is_empty()),
            "round {round}"
        );
    }
    let got: Vec<_> = h.clients[1]
        .received
        .iter()
        .filter(|p| matches!(p.codec, Some(Codec::Vp8)))
        .map(|p| (p.mid, p.seq))
        .collect();
    assert_eq!(got.len(), 30, "{got:?}");
    // One m-line for the three subscriptions, and one stream whose numbers go on.
    assert!(got.iter().all(|(mid, _)| *mid == got[0].0), "{got:?}");
    let seqs: Vec<u64> = got.iter().map(|(_, s)| *s).collect();
    assert_eq!(seqs, (1..=30).collect::<Vec<u64>>());
}

#[test]
fn a_gone_tracks_m_line_carries_the_next_track_of_its_kind() {
    let mut h = setup(1);
    let (alice_video, alice_audio) = (h.track(0, MediaKind::Video), h.track(0, MediaKind::Audio));
    subscribe_and_wait(&mut h, &[alice_video, alice_audio]);
    publish_and_send(&mut h, 10);
    let first = h.clients[1].received.clone();
    // Alice stops her camera: the subscriber's video m-line goes inactive, not stopped.
    let (shard, alice) = (h.clients[0].shard, h.clients[0].id);
    h.control(
        shard,
        engine::msg::Control::Unpublish {
            peer: alice,
            track: alice_video,
        },
    );
    assert!(
        h.run_until(Duration::from_secs(5), |h| h.clients[1].subscribed.len()
            == 1)
    );
    h.run_for(Duration::from_millis(300));
    // Dave publishes video; the subscriber takes it on the m-line Alice's video left.
    let dave = h.join(0, &[video("dave")]);
    let dave_id = h.clients[dave].id;
    assert!(h.run_until(Duration::from_secs(5), |h| h.all_connected()
        && h.published.iter().any(|p| p.peer == dave_id)));
    let dave_video = h.track(dave, MediaKind::Video);
    h.subscribe(1, &[dave_video]);
    assert!(
        h.run_until(Duration::from_secs(5), |h| h.clients[1].subscribed.len()
            == 2)
    );
    for i in 0..10 {
        h.send(dave, "dave", "dave-video", Codec::Vp8, i, &payload(100 + i));
        h.step(Duration::from_millis(10));
    }
    h.run_for(Duration::from_millis(200));
    let alice_mid = first
        .iter()
        .find(|p| p.codec == Some(Codec::Vp8))
        .expect("alice's video")
        .mid;
    let last_alice = first.iter().rfind(|p| p.mid == alice_mid).unwrap().clone();
    let daves: Vec<_> = h.clients[1]
        .received
        .iter()
        .filter(|p| p.codec == Some(Codec::Vp8) && p.payload[4..8] >= 100u32.to_be_bytes()[..])
        .cloned()
        .collect();
    assert_eq!(daves.len(), 10, "dave's video arrives");
    // The same m-line and stream: its sequence numbers go on, its timestamps move
    // forward from Alice's last (a receiver would drop a jump back as late packets).
    assert!(daves.iter().all(|p| p.mid == alice_mid), "no new m-line");
    let seqs: Vec<u64> = daves.iter().map(|p| p.seq).collect();
    assert_eq!(
        seqs,
        (last_alice.seq + 1..=last_alice.seq + 10).collect::<Vec<_>>()
    );
    let ahead = daves[0].time.wrapping_sub(last_alice.time);
    assert!(
        (1..90_000 * 5).contains(&ahead),
        "{ahead} ticks after alice's last"
    );
    assert_eq!(
        daves[9].time.wrapping_sub(daves[0].time),
        9 * 3000,
        "dave's own spacing"
    );
    // The offer named the m-line's new track.
    assert_eq!(
        h.clients[1].peer.msid_of(alice_mid),
        Some(("dave".to_string(), "dave-video".to_string()))
    );
}

#[test]
fn a_track_published_again_takes_the_m_line_the_last_one_left() {
    let mut h = setup(1);
    let (shard, alice) = (h.clients[0].shard, h.clients[0].id);
    let share = |n: u32| engine::msg::TrackName {
        stream_id: format!("screen-{n}"),
        track_id: format!("screen-{n}-video"),
        kind: MediaKind::Video,
    };
    let mut mids = Vec::new();
    for n in 0..3 {
        // Alice shares her screen, the subscriber watches it, she stops sharing.
        let name = share(n);
        h.control(
            shard,
            engine::msg::Control::RequestPublish {
                peer: alice,
                name: name.clone(),
            },
        );
        assert!(
            h.run_until(Duration::from_secs(5), |h| h
                .published
                .iter()
                .any(|p| p.name == name)),
            "share {n}"
        );
        let track = h.published.iter().find(|p| p.name == name).unwrap().track;
        let mid = h.clients[0]
            .peer
            .mid_of(&name.stream_id, &name.track_id)
            .expect("a sending m-line");
        mids.push(mid);
        h.subscribe(1, &[track]);
        assert!(h.run_until(Duration::from_secs(5), |h| {
            h.clients[1].subscribed.contains(&track)
        }));
        let before = h.clients[1].received.len();
        for i in 0..5 {
            h.send(
                0,
                &name.stream_id,
                &name.track_id,
                Codec::Vp8,
                i,
                &payload(i),
            );
            h.step(Duration::from_millis(10));
        }
        h.run_for(Duration::from_millis(200));
        assert_eq!(
            h.clients[1].received.len() - before,
            5,
            "share {n} is forwarded"
        );
        h.control(
            shard,
            engine::msg::Control::Unpublish { peer: alice, track },
        );
        assert!(h.run_until(Duration::from_secs(5), |h| {
            !h.published.iter().any(|p| p.track == track) && h.clients[1].subscribed.is_empty()
        }));
    }
    assert!(
        mids.iter().all(|m| *m == mids[0]),
        "one m-line for every share: {mids:?}"
    );
}

#[test]
fn leaving_unpublishes_and_frees_subscriptions() {
    let mut h = setup(1);
    let v = h.track(0, MediaKind::Video);
    subscribe_and_wait(&mut h, &[v]);
    let (shard, peer) = (h.clients[0].shard, h.clients[0].id);
    h.control(shard, engine::msg::Control::RemovePeer { peer });
    h.vanish(0);
    assert!(
        h.run_until(Duration::from_secs(5), |h| h.published.is_empty()
            && h.clients[1].subscribed.is_empty())
    );
    assert_eq!(h.shards[0].peer_count(), 0);
    assert_eq!(h.shards[1].peer_count(), 1);
}

#[test]
fn vanished_client_is_removed_after_consent_expires() {
    let mut h = setup(0);
    h.vanish(0);
    assert!(h.run_until(Duration::from_secs(31), |h| !h.gone.is_empty()));
    assert!(h.published.is_empty(), "its tracks are unpublished");
    assert_eq!(h.gone[0].0, h.clients[0].id);
}

#[test]
fn keyframe_requests_are_throttled_to_one_per_second_per_track() {
    let mut h = setup(1);
    let v = h.track(0, MediaKind::Video);
    subscribe_and_wait(&mut h, &[v]);
    publish_and_send(&mut h, 5);
    // The new subscriber's urgent request has reached the publisher.
    assert!(
        h.run_until(Duration::from_secs(1), |h| h.clients[0].keyframe_requests
            >= 1)
    );
    let before = h.clients[0].keyframe_requests;
    // The subscriber asks 30 times over 3 seconds.
    let mid = h.clients[1].received[0].mid;
    for _ in 0..30 {
        h.clients[1].peer.request_keyframe(mid).unwrap();
        h.run_for(Duration::from_millis(100));
    }
    h.run_for(Duration::from_millis(1100));
    let got = h.clients[0].keyframe_requests - before;
    assert!((3..=4).contains(&got), "{got} keyframe requests in ~3 s");
}

/// Packet `i` of a test stream that is not a keyframe's first packet.
fn inter(i: u32) -> Vec<u8> {
    let mut p = payload(i);
    p[..4].copy_from_slice(&INTER_FRAME);
    p
}

#[test]
fn a_new_subscribers_video_starts_at_a_keyframe_and_audio_at_once() {
    for shard in [0, 1] {
        let mut h = subscribed_to_both(setup(shard));
        // 1.5 s of frames a decoder cannot start from: none reaches the subscriber,
        // its audio does, and the server asks for a keyframe at once and again later.
        for i in 0..150 {
            h.send(0, "alice", "alice-video", Codec::Vp8, i, &inter(i));
            h.send(
                0,
                "alice",
                "alice-audio",
                Codec::Opus,
                i,
                &payload(i)[..100],
            );
            h.run_for(Duration::from_millis(10));
        }
        h.run_for(Duration::from_millis(200));
        assert!(
            received(&h, 1, MediaKind::Video).is_empty(),
            "shard {shard}"
        );
        assert_eq!(received(&h, 1, MediaKind::Audio).len(), 150);
        let asked = h.clients[0].keyframe_requests;
        assert!(asked >= 2, "{asked} keyframe requests in 1.5 s of waiting");
        // The keyframe, then what follows it: all of it, in order, its first packet
        // first, with no gap in the sequence numbers the subscriber sees.
        h.send(0, "alice", "alice-video", Codec::Vp8, 150, &payload(150));
        for i in 151..160 {
            h.send(0, "alice", "alice-video", Codec::Vp8, i, &inter(i));
            h.run_for(Duration::from_millis(10));
        }
        h.run_for(Duration::from_millis(200));
        let mut want = vec![payload(150)];
        want.extend((151..160).map(inter));
        assert_eq!(received(&h, 1, MediaKind::Video), want, "shard {shard}");
        let seqs: Vec<u64> = h.clients[1]
            .received
            .iter()
            .filter(|p| p.codec == Some(Codec::Vp8))
            .map(|p| p.seq)
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        // Once started, the stream is not held again.
        let held = h
            .shards
            .iter()
            .map(|s| s.stats.rtp_awaiting_keyframe)
            .sum::<u64>();
        assert_eq!(held, 150, "shard {shard}");
    }
}

#[test]
fn every_codec_is_forwarded_as_itself() {
    let mut h = subscribed_to_both(setup(1));
    let sequence = [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Vp8];
    for (i, codec) in sequence.iter().enumerate() {
        h.send(
            0,
            "alice",
            "alice-video",
            *codec,
            i as u32,
            &payload(i as u32),
        );
        h.step(Duration::from_millis(10));
    }
    h.send(0, "alice", "alice-audio", Codec::Opus, 9, &payload(9)[..80]);
    h.run_for(Duration::from_millis(200));
    let got: Vec<Option<Codec>> = h.clients[1].received.iter().map(|p| p.codec).collect();
    let mut want: Vec<Option<Codec>> = sequence.iter().map(|c| Some(*c)).collect();
    want.push(Some(Codec::Opus));
    assert_eq!(got, want);
}

#[test]
fn nack_and_rtx_recover_losses_on_both_legs() {
    let mut h = setup(1);
    let v = h.track(0, MediaKind::Video);
    subscribe_and_wait(&mut h, &[v]);
    // Every 7th RTP datagram is lost on each leg: publisher to server, server to subscriber.
    let publisher = h.clients[0].addr;
    let lost = std::rc::Rc::new(std::cell::Cell::new([0usize; 2]));
    let mut sent = [0usize; 2];
    let counter = lost.clone();
    h.loss = Some(Box::new(move |from, _, d| {
        if !is_rtp(d) {
            return false;
        }
        let leg = usize::from(from != publisher);
        sent[leg] += 1;
        let drop = sent[leg] % 7 == 0;
        let mut l = counter.get();
        l[leg] += usize::from(drop);
        counter.set(l);
        drop
    }));
    for i in 0..100 {
        h.send(0, "alice", "alice-video", Codec::Vp8, i, &payload(i));
        h.step(Duration::from_millis(10));
    }
    h.loss = None;
    h.run_for(Duration::from_secs(2));
    let lost = lost.get();
    assert!(
        lost[0] >= 10 && lost[1] >= 10,
        "each leg lost packets: {lost:?}"
    );
    let mut got = received(&h, 1, MediaKind::Video);
    got.sort();
    got.dedup();
    let mut want: Vec<Vec<u8>> = (0..100).map(payload).collect();
    want.sort();
    assert_eq!(got.len(), 100, "every lost packet was retransmitted");
    assert_eq!(got, want);
    // The server's leg was repaired from the track's history on the subscriber's shard.
    let resent: u64 = h.shards.iter().map(|s| s.stats.rtp_resent).sum();
    assert!(
        resent >= lost[1] as u64,
        "{resent} resent for {} lost",
        lost[1]
    );
}

/// One owner per SSRC: str0m sends the RTCP of a subscriber's session, the engine its
/// RTP (and RTX), and the engine rewrites str0m's sender reports in place. No (SSRC,
/// SRTP index) and no (SSRC, SRTCP index) goes out twice under the session's keys,
/// resends and rewritten reports included.
#[test]
fn no_srtp_or_srtcp_index_is_sent_twice_for_one_ssrc() {
    let mut h = subscribed_to_both(setup(0));
    let subscriber = h.clients[1].addr;
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    let mut sent = 0;
    h.loss = Some(Box::new(move |_, to, d| {
        if to != subscriber || d.len() < 12 || !(128..=191).contains(&d[0]) {
            return false;
        }
        let rtcp = (192..=223).contains(&d[1]);
        let (ssrc, index) = if rtcp {
            // AEAD: E flag and index are the last 4 bytes.
            let e = &d[d.len() - 4..];
            (
                &d[4..8],
                u32::from_be_bytes([e[0], e[1], e[2], e[3]]) & 0x7fff_ffff,
            )
        } else {
            (&d[8..12], u32::from(u16::from_be_bytes([d[2], d[3]])))
        };
        let ssrc = u32::from_be_bytes([ssrc[0], ssrc[1], ssrc[2], ssrc[3]]);
        log.borrow_mut().push((rtcp, ssrc, index));
        // Every 9th RTP datagram lost: resends go out too.
        sent += usize::from(!rtcp);
        !rtcp && sent % 9 == 0
    }));
    for i in 0..150 {
        h.send(0, "alice", "alice-video", Codec::Vp8, i, &payload(i));
        h.send(0, "alice", "alice-audio", Codec::Opus, i, &payload(i)[..80]);
        h.run_for(Duration::from_millis(20));
    }
    h.loss = None;
    h.run_for(Duration::from_secs(1));
    let mut all = seen.borrow().clone();
    let (rtcp, rtp) = (
        all.iter().filter(|p| p.0).count(),
        all.iter().filter(|p| !p.0).count(),
    );
    assert!(
        rtcp >= 4 && rtp >= 300,
        "{rtcp} SRTCP, {rtp} SRTP datagrams seen"
    );
    let resent: u64 = h.shards.iter().map(|s| s.stats.rtp_resent).sum();
    assert!(resent > 0, "resends were part of it");
    all.sort_unstable();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "an (SSRC, index) pair went out twice");
}

/// A subscriber's NACK is answered while the lost packet is within the resend window
/// (`RTX_WINDOW`, 1.5 s: half of str0m's 3 s) and not after it. Everything the
/// subscriber sends (its NACKs among it) is held back for a while, then delivered in
/// order.
#[test]
fn a_nack_is_answered_within_the_rtx_window_and_not_after_it() {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    assert_eq!(engine::shard::RTX_WINDOW, Duration::from_millis(1500));
    for (hold, answered) in [
        (Duration::from_millis(500), true),
        (Duration::from_millis(1000), true),
        (Duration::from_millis(2500), false),
    ] {
        let mut h = setup(0);
        let v = h.track(0, MediaKind::Video);
        subscribe_and_wait(&mut h, &[v]);
        let subscriber = h.clients[1].addr;
        let held = Rc::new(RefCell::new(Vec::new()));
        let holding = Rc::new(Cell::new(true));
        let (keep, on) = (held.clone(), holding.clone());
        let mut forwarded = 0;
        h.loss = Some(Box::new(move |from, to, d| {
            if from == subscriber && on.get() {
                keep.borrow_mut().push((from, to, d.to_vec()));
                return true;
            }
            if to == subscriber && is_rtp(d) {
                forwarded += 1;
                return forwarded == 3; // the one packet lost
            }
            false
        }));
        // 10 packets a second: the lost one stays within the subscriber's reorder
        // window (100 packets) however long its NACKs are held.
        let start = h.now;
        let mut i = 0;
        while h.now < start + hold {
            h.send(0, "alice", "alice-video", Codec::Vp8, i, &payload(i));
            i += 1;
            h.run_for(Duration::from_millis(100));
        }
        holding.set(false);
        let late = held.take();
        assert!(
            !late.is_empty(),
            "the subscriber sent something (its NACKs)"
        );
        for (from, to, d) in late {
            h.inject(from, to, d);
        }
        h.send(0, "alice", "alice-video", Codec::Vp8, i, &payload(i));
        h.run_for(Duration::from_secs(1));
        let got = received(&h, 1, MediaKind::Video);
        assert!(got.contains(&payload(i)), "delivery goes on after {hold:?}");
        assert_eq!(
            got.contains(&payload(2)),
            answered,
            "the packet lost {hold:?} before its NACKs arrived"
        );
    }
}

#[test]
fn forwarded_streams_carry_sender_reports() {
    let mut h = subscribed_to_both(setup(1));
    // Three seconds of media: sender reports go out about once a second per stream.
    for i in 0..150 {
        h.send(0, "alice", "alice-video", Codec::Vp8, i, &payload(i));
        h.send(0, "alice", "alice-audio", Codec::Opus, i, &payload(i)[..80]);
        h.run_for(Duration::from_millis(20));
    }
    for (codec, rate) in [(Codec::Vp8, 90_000i64), (Codec::Opus, 48_000)] {
        let stream: Vec<_> = h.clients[1]
            .received
            .iter()
            .filter(|p| p.codec == Some(codec))
            .collect();
        let last = stream.last().expect("packets");
        let sr = last
            .sender_report
            .as_ref()
            .unwrap_or_else(|| panic!("the server sends SRs on the {codec} it forwards"));
        // The server filled in what str0m could not know: the packets it had sent,
        // and the RTP time at the report's NTP time, which follows the last of those
        // packets by the time that passed since (under a second's worth of its clock).
        let count = sr.sender_packet_count as usize;
        assert!(
            count > 0 && count <= stream.len(),
            "{codec}: {count} packets"
        );
        let before = stream[count - 1].time;
        let after = i64::from((sr.rtp_time.numer() as u32).wrapping_sub(before) as i32);
        assert!(
            (0..=rate).contains(&after),
            "{codec}: SR {after} ticks after the packet before it"
        );
        assert_eq!(
            sr.sender_octet_count as usize,
            stream[..count]
                .iter()
                .map(|p| p.payload.len())
                .sum::<usize>()
        );
    }
}

/// Every forwarded packet carries a transport-wide sequence number; the subscriber's
/// str0m reports their arrival (TWCC) and the engine's estimate of the path follows:
/// at least what arrives on a clean leg, cut below it when the leg loses a third.
#[test]
fn twcc_feedback_gives_each_subscriber_a_bandwidth_estimate() {
    let mut h = subscribed_to_both(setup(1));
    let sub = (h.clients[1].shard, h.clients[1].id);
    // Sends for `secs` (50 video and 50 audio packets a second of the clients' clock):
    // the bits per second of the last second, with about 40 bytes of header,
    // extensions and SRTP tag a packet.
    let mut i = 0;
    let mut send_for = |h: &mut Harness, secs: u32| {
        let mut last_second = (h.now, 0);
        for n in 0..secs * 50 {
            if n == (secs - 1) * 50 {
                last_second = (h.now, 0);
            }
            h.send(0, "alice", "alice-video", Codec::Vp8, i, &payload(i));
            h.send(0, "alice", "alice-audio", Codec::Opus, i, &payload(i)[..80]);
            last_second.1 += (payload(i).len() + 80 + 2 * 40) as u64 * 8;
            h.run_for(Duration::from_millis(20));
            i += 1;
        }
        let elapsed = h.now.duration_since(last_second.0).as_secs_f64();
        (last_second.1 as f64 / elapsed) as u64
    };
    let sent = send_for(&mut h, 3);
    let feedback: u64 = h.shards.iter().map(|s| s.stats.twcc_feedback).sum();
    assert!(feedback >= 20, "feedback every 50 ms: {feedback} in 3 s");
    let shard = &h.shards[sub.0];
    let acked = shard.acked_rate(sub.1).expect("an acked rate");
    assert!(
        acked * 10 >= sent * 8 && acked * 10 <= sent * 12,
        "acked {acked} for about {sent} sent"
    );
    let clean = shard.bandwidth_estimate(sub.1).expect("an estimate");
    assert!(clean >= acked, "estimate {clean} under acked {acked}");

    // A third of what goes to the subscriber is lost.
    let subscriber = h.clients[1].addr;
    let mut n = 0;
    h.loss = Some(Box::new(move |_, to, d| {
        n += 1;
        to == subscriber && is_rtp(d) && n % 3 == 0
    }));
    send_for(&mut h, 3);
    let lossy = h.shards[sub.0]
        .bandwidth_estimate(sub.1)
        .expect("an estimate");
    let acked = h.shards[sub.0].acked_rate(sub.1).expect("an acked rate");
    assert!(
        lossy < acked,
        "estimate {lossy} not under acked {acked} at 33% loss"
    );
}

/// A keyframe is ten times a frame and more. Sent to a narrow link as one burst, it
/// overflows the link's queue, every keyframe, and the subscriber asks again for what
/// was cut, on a link with little room for resends. Paced (at 1.5 times the subscriber's
/// bandwidth estimate), it arrives whole: the link drops nothing.
#[test]
fn keyframes_are_paced_into_a_narrow_link_not_cut_short() {
    let mut h = subscribed_to_both(setup(0));
    // The subscriber's downlink: 250 kbit/s with a queue of 250 ms (7.8 kB), as a small
    // router holds; the stream uses about 200 kbit/s of it.
    let subscriber = h.clients[1].addr;
    h.cap_link(subscriber, Some((250_000, Duration::from_millis(250))));
    let packet = |i: u32, len: usize, start: [u8; 4]| {
        let mut p = vec![0u8; len];
        p[..4].copy_from_slice(&start);
        p[4..8].copy_from_slice(&i.to_be_bytes());
        p
    };
    // 25 frames a second: every 2 s a keyframe of 12 packets of 1,000 bytes, else a frame
    // of one packet of 400; 50 audio packets a second of 80. Returns the video packets sent.
    let mut seq = 0;
    let mut send_for = |h: &mut Harness, secs: u32| {
        let first = seq;
        for frame in 0..secs * 25 {
            let (packets, len, start) = if frame % 50 == 0 {
                (12, 1_000, KEYFRAME_START)
            } else {
                (1, 400, INTER_FRAME)
            };
            for _ in 0..packets {
                let payload = packet(seq, len, start);
                h.send(0, "alice", "alice-video", Codec::Vp8, seq, &payload);
                seq += 1;
            }
            for half in 0..2 {
                h.send(
                    0,
                    "alice",
                    "alice-audio",
                    Codec::Opus,
                    frame * 2 + half,
                    &[0x80; 80],
                );
                h.run_for(Duration::from_millis(20));
            }
        }
        first..seq
    };
    // Time for an estimate, then 16 s (eight keyframes) judged.
    send_for(&mut h, 4);
    let lost_before = h.lost;
    let judged = send_for(&mut h, 16);
    h.run_for(Duration::from_millis(500));
    assert_eq!(
        h.lost - lost_before,
        0,
        "datagrams the link's queue dropped"
    );
    let got: Vec<u32> = received(&h, 1, MediaKind::Video)
        .iter()
        .map(|p| u32::from_be_bytes([p[4], p[5], p[6], p[7]]))
        .filter(|i| judged.contains(i))
        .collect();
    assert_eq!(
        got,
        judged.collect::<Vec<_>>(),
        "every video packet, in order, once"
    );
    let paced: u64 = h.shards.iter().map(|s| s.stats.rtp_paced).sum();
    assert!(
        paced >= 8 * 6,
        "most of each keyframe waited in the pacer: {paced}"
    );
}

#[test]
fn garbage_from_a_peers_own_address_is_counted_not_fatal() {
    let mut h = setup(1);
    let v = h.track(0, MediaKind::Video);
    subscribe_and_wait(&mut h, &[v]);
    let (addr, shard, now) = (h.clients[1].addr, h.clients[1].shard, h.now);
    let before = h.shards[shard].stats;
    // A DTLS record with a bogus type and length, and unencrypted RTP-looking bytes.
    let garbage_dtls = [
        22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0xff, 0xff, 1, 2, 3,
    ];
    let garbage_rtp = [0x80u8, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9, 9, 9];
    h.shards[shard].handle_datagram(now, addr, &garbage_dtls);
    h.shards[shard].handle_datagram(now, addr, &garbage_rtp);
    let after = h.shards[shard].stats;
    assert_eq!(
        after.rx_datagrams,
        before.rx_datagrams + 2,
        "both reached the peer's str0m"
    );
    assert_eq!(after.rx_dropped, before.rx_dropped);
    assert!(h.gone.is_empty(), "no peer was dropped");
    publish_and_send(&mut h, 10);
    assert_eq!(
        received(&h, 1, MediaKind::Video).len(),
        10,
        "media still flows"
    );
}

/// A forwarded packet leaves with the datagram that brought it: the engine writes,
/// protects and queues it for every subscriber while handling the publisher's datagram,
/// with no timeout round in between (the I/O loop sends whenever the queue is long).
#[test]
fn a_fan_out_is_sent_while_the_publishers_datagram_is_handled() {
    let mut h = Harness::new(1);
    h.join(0, &[video("alice"), audio("alice")]);
    for _ in 0..6 {
        h.join(0, &[]);
    }
    assert!(h.run_until(Duration::from_secs(5), |h| h.all_connected()
        && h.published.len() == 2));
    let v = h.track(0, MediaKind::Video);
    for c in 1..7 {
        h.subscribe(c, &[v]);
    }
    assert!(h.run_until(Duration::from_secs(5), |h| {
        h.clients[1..].iter().all(|c| c.subscribed.len() == 1)
    }));
    h.run_for(Duration::from_millis(300));

    h.send(0, "alice", "alice-video", Codec::Vp8, 0, &payload(0));
    let now = h.now;
    h.clients[0].peer.handle_timeout(now).unwrap();
    let publisher = h.clients[0].addr;
    h.shards[0].out.transmits.clear();
    while let Some((_, data)) = h.clients[0].peer.poll_transmit() {
        h.shards[0].handle_datagram(now, publisher, &data);
    }
    let subscribers: Vec<_> = h.clients[1..].iter().map(|c| c.addr).collect();
    let mut got: Vec<_> = h.shards[0]
        .out
        .transmits
        .iter()
        .filter(|d| is_rtp(&d.data) && subscribers.contains(&d.to))
        .map(|d| d.to)
        .collect();
    got.sort();
    let mut want = subscribers.clone();
    want.sort();
    assert_eq!(got, want, "each subscriber's copy is queued once");
    // And each decrypts to the packet that was sent.
    h.run_for(Duration::from_millis(100));
    for c in 1..7 {
        assert_eq!(received(&h, c, MediaKind::Video), vec![payload(0)]);
    }
}
