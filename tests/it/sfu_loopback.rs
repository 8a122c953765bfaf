//! The real server (2 shards) on loopback, driven by str0m clients through the real
//! WebSocket and UDP sockets.

use std::time::{Duration, Instant};

use client::{Connection, LocalTrack, PeerEvent, SessionEvent};
use protocol::{Kind, ServerMessage, TrackRef};
use signaling::app::AppConfig;
use signaling::server::RunningServer;
use signaling::transport::Limits;
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid};

use crate::support::LOCALHOST;

fn server(room_spread: usize) -> RunningServer {
    let app = AppConfig {
        spread_after: room_spread,
        spread_load: 0.0,
        ..AppConfig::default()
    };
    crate::support::server(2, app, Limits::default())
}

fn track(stream: &str, kind: MediaKind) -> LocalTrack {
    LocalTrack {
        stream_id: stream.into(),
        track_id: format!("{stream}-{kind}"),
        kind,
    }
}

/// Polls every connection for `d`, collecting their events.
fn pump(conns: &mut [&mut Connection], logs: &mut [Vec<SessionEvent>], d: Duration) {
    let end = Instant::now() + d;
    loop {
        for (c, log) in conns.iter_mut().zip(logs.iter_mut()) {
            c.poll(Duration::ZERO).expect("connection works");
            while let Some(e) = c.next_event() {
                log.push(e);
            }
        }
        if Instant::now() >= end {
            return;
        }
        std::thread::sleep(Duration::from_micros(300));
    }
}

fn pump_until(
    conns: &mut [&mut Connection],
    logs: &mut [Vec<SessionEvent>],
    limit: Duration,
    mut done: impl FnMut(&[Vec<SessionEvent>]) -> bool,
) {
    let end = Instant::now() + limit;
    while !done(logs) {
        assert!(Instant::now() < end, "timed out");
        pump(conns, logs, Duration::from_millis(5));
    }
}

fn count(log: &[SessionEvent], f: impl Fn(&SessionEvent) -> bool) -> usize {
    log.iter().filter(|e| f(e)).count()
}

fn connected(log: &[SessionEvent]) -> bool {
    log.iter()
        .any(|e| matches!(e, SessionEvent::Peer(PeerEvent::Connected)))
}

fn subscribed(log: &[SessionEvent]) -> usize {
    log.iter()
        .map(|e| match e {
            SessionEvent::Server(ServerMessage::Subscribed { tracks }) => tracks.len(),
            _ => 0,
        })
        .sum()
}

/// Payloads received per codec, in arrival order.
fn received(log: &[SessionEvent], codec: Codec) -> Vec<Vec<u8>> {
    log.iter()
        .filter_map(|e| match e {
            SessionEvent::Peer(PeerEvent::Rtp(p)) if p.codec == Some(codec) => {
                Some(p.payload.to_vec())
            }
            _ => None,
        })
        .collect()
}

fn payload(i: u32, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|j| (j as u32 ^ i) as u8).collect();
    // A keyframe's first packet: a new subscriber's video starts at any of them.
    p[..4].copy_from_slice(&testkit::KEYFRAME_START);
    p[4..8].copy_from_slice(&i.to_be_bytes());
    p
}

fn send_burst(a: &mut Connection, video: Mid, audio: Mid, range: std::ops::Range<u32>) {
    for i in range {
        let now = Instant::now();
        a.peer()
            .send_rtp(now, video, Codec::Vp8, i * 3000, true, &payload(i, 900))
            .unwrap();
        a.peer()
            .send_rtp(now, audio, Codec::Opus, i * 960, false, &payload(i, 120))
            .unwrap();
    }
}

#[test]
fn media_crosses_shards_intact_and_survives_a_websocket_reconnect() {
    // room_spread 1: every member goes to the least-loaded shard, so the publisher
    // lands on shard 0 and the subscriber on shard 1.
    let server = server(1);
    let http = server.http_addr;
    let mut a = Connection::join(http, "loop", "alice", LOCALHOST).unwrap();
    a.start_media(&[
        track("alice", MediaKind::Video),
        track("alice", MediaKind::Audio),
    ])
    .unwrap();
    let mut b = Connection::join(http, "loop", "bob", LOCALHOST).unwrap();
    b.start_media(&[]).unwrap();
    let mut c = Connection::join(http, "loop", "carol", LOCALHOST).unwrap();
    c.start_media(&[]).unwrap();
    let mut logs = vec![Vec::new(), Vec::new(), Vec::new()];

    pump_until(
        &mut [&mut a, &mut b, &mut c],
        &mut logs,
        Duration::from_secs(10),
        |l| l.iter().all(|log| connected(log)),
    );
    assert_eq!(
        a.server_media_addr(),
        Some(server.media_addrs[0]),
        "publisher on shard 0"
    );
    assert_eq!(
        b.server_media_addr(),
        Some(server.media_addrs[1]),
        "subscriber on shard 1"
    );

    // b has been told of alice's two tracks.
    pump_until(
        &mut [&mut a, &mut b, &mut c],
        &mut logs,
        Duration::from_secs(5),
        |_| true,
    );
    let video = TrackRef::new("alice", "alice-video", Kind::Video);
    let audio = TrackRef::new("alice", "alice-audio", Kind::Audio);
    let published = |conn: &Connection| {
        conn.tracks()
            .iter()
            .filter(|t| t.track.stream_id == "alice")
            .count()
    };
    let end = Instant::now() + Duration::from_secs(5);
    while published(&b) < 2 || published(&c) < 2 {
        assert!(Instant::now() < end, "tracks announced");
        pump(
            &mut [&mut a, &mut b, &mut c],
            &mut logs,
            Duration::from_millis(5),
        );
    }
    let codec = &b.tracks().iter().find(|t| t.track == video).unwrap().codec;
    assert_eq!(codec.mime_type, "video/VP8");

    let offers = |log: &[SessionEvent]| {
        count(log, |e| {
            matches!(e, SessionEvent::Server(ServerMessage::Offer { .. }))
        })
    };
    let subscribeds = |log: &[SessionEvent]| {
        count(log, |e| {
            matches!(e, SessionEvent::Server(ServerMessage::Subscribed { .. }))
        })
    };
    let before = (offers(&logs[1]), subscribeds(&logs[1]));
    b.subscribe(vec![video.clone(), audio.clone()]).unwrap();
    c.subscribe(vec![audio.clone()]).unwrap();
    pump_until(
        &mut [&mut a, &mut b, &mut c],
        &mut logs,
        Duration::from_secs(5),
        |l| subscribed(&l[1]) == 2 && subscribed(&l[2]) == 1,
    );
    // One subscribe naming two tracks: one offer, one `subscribed` (as protocol.md says).
    pump(
        &mut [&mut a, &mut b, &mut c],
        &mut logs,
        Duration::from_millis(300),
    );
    assert_eq!(
        (
            offers(&logs[1]) - before.0,
            subscribeds(&logs[1]) - before.1
        ),
        (1, 1),
        "offers and `subscribed` messages for one subscribe of two tracks"
    );

    let video_mid = a.peer().mid_of("alice", "alice-video").unwrap();
    let audio_mid = a.peer().mid_of("alice", "alice-audio").unwrap();
    for chunk in 0..10 {
        send_burst(&mut a, video_mid, audio_mid, chunk * 10..chunk * 10 + 10);
        pump(
            &mut [&mut a, &mut b, &mut c],
            &mut logs,
            Duration::from_millis(20),
        );
    }
    pump_until(
        &mut [&mut a, &mut b, &mut c],
        &mut logs,
        Duration::from_secs(5),
        |l| received(&l[1], Codec::Vp8).len() >= 100 && received(&l[2], Codec::Opus).len() >= 100,
    );
    pump(
        &mut [&mut a, &mut b, &mut c],
        &mut logs,
        Duration::from_millis(200),
    );

    let want_video: Vec<Vec<u8>> = (0..100).map(|i| payload(i, 900)).collect();
    let want_audio: Vec<Vec<u8>> = (0..100).map(|i| payload(i, 120)).collect();
    assert_eq!(
        received(&logs[1], Codec::Vp8),
        want_video,
        "every video payload, intact, in order"
    );
    assert_eq!(
        received(&logs[1], Codec::Opus),
        want_audio,
        "every audio payload, intact, in order"
    );
    assert_eq!(
        received(&logs[2], Codec::Opus),
        want_audio,
        "the audio-only subscriber gets audio"
    );
    assert!(received(&logs[2], Codec::Vp8).is_empty(), "and no video");
    // The new subscriber's keyframe request reached the publisher.
    assert!(
        count(&logs[0], |e| matches!(
            e,
            SessionEvent::Peer(PeerEvent::KeyframeRequest { .. })
        )) >= 1
    );

    // b's WebSocket drops; it resumes with its token while media keeps flowing.
    b.reconnect().unwrap();
    logs[1].clear();
    send_burst(&mut a, video_mid, audio_mid, 100..150);
    pump_until(
        &mut [&mut a, &mut b, &mut c],
        &mut logs,
        Duration::from_secs(5),
        |l| received(&l[1], Codec::Vp8).len() >= 50,
    );
    let want: Vec<Vec<u8>> = (100..150).map(|i| payload(i, 900)).collect();
    assert_eq!(received(&logs[1], Codec::Vp8), want);
    let membership_changes = |log: &[SessionEvent]| {
        count(log, |e| {
            matches!(
                e,
                SessionEvent::Server(
                    ServerMessage::PeerLeft { .. } | ServerMessage::PeerJoined { .. }
                )
            )
        })
    };
    // a and c saw bob and carol join at the start, and nothing since.
    let joins_seen_by_a = membership_changes(&logs[0]);
    assert_eq!(
        joins_seen_by_a, 2,
        "a saw two joins and no leave/join flicker"
    );
    assert_eq!(
        membership_changes(&logs[2]),
        0,
        "c saw no leave/join flicker"
    );
    server.stop().expect("the server stops cleanly");
}
