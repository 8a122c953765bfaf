//! A full room: 100 members each publishing audio and video, and one of them subscribing
//! to everyone's audio and 25 videos in one request. Its offer and answer (124 new
//! m-lines) fit the signalling limits, and media arrives on every one of them.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use client::{Connection, LocalTrack, PeerEvent, SessionEvent};
use protocol::{Kind, ServerMessage, TrackRef};
use signaling::app::AppConfig;
use signaling::transport::Limits;
use str0m::format::Codec;
use str0m::media::MediaKind;

use crate::support::{LOCALHOST, server};

const MEMBERS: usize = 100;
const VIDEOS: usize = 25;

fn tracks(name: &str) -> [LocalTrack; 2] {
    [MediaKind::Audio, MediaKind::Video].map(|kind| LocalTrack {
        stream_id: name.into(),
        track_id: format!("{name}-{kind}"),
        kind,
    })
}

/// What the test learns from the members' events.
#[derive(Default)]
struct Room {
    connected: Vec<bool>,
    /// Tracks member 0 was told it is subscribed to.
    subscribed: usize,
    /// What member 0 received: (publisher, video?).
    got: HashSet<(usize, bool)>,
    errors: Vec<String>,
}

impl Room {
    fn poll(&mut self, members: &mut [Connection]) {
        for (i, c) in members.iter_mut().enumerate() {
            c.poll(Duration::ZERO).expect("connection works");
            while let Some(e) = c.next_event() {
                match e {
                    SessionEvent::Peer(PeerEvent::Connected) => self.connected[i] = true,
                    SessionEvent::Peer(PeerEvent::Rtp(p)) if i == 0 => {
                        let from = usize::from(u16::from_be_bytes([p.payload[4], p.payload[5]]));
                        self.got.insert((from, p.codec == Some(Codec::Vp8)));
                    }
                    SessionEvent::Server(ServerMessage::Subscribed { tracks }) if i == 0 => {
                        self.subscribed += tracks.len();
                    }
                    SessionEvent::Server(ServerMessage::Error { code, reason, .. }) => {
                        self.errors.push(format!("m{i}: {code:?} {reason}"));
                    }
                    SessionEvent::Closed => self.errors.push(format!("m{i}: closed")),
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn a_member_of_a_room_of_100_subscribes_to_124_tracks_and_receives_them_all() {
    let server = server(2, AppConfig::default(), Limits::default());
    let mut members: Vec<Connection> = (0..MEMBERS)
        .map(|i| {
            let name = format!("m{i}");
            let mut c =
                Connection::join(server.http_addr, "full", &name, LOCALHOST).expect("joins");
            c.start_media(&tracks(&name)).expect("offers");
            c
        })
        .collect();
    let mut room = Room {
        connected: vec![false; MEMBERS],
        ..Room::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while room.connected.iter().any(|c| !c) || members[0].tracks().len() < 2 * (MEMBERS - 1) {
        assert!(Instant::now() < deadline, "the room never filled");
        room.poll(&mut members);
        std::thread::sleep(Duration::from_millis(1));
    }
    // Everyone's audio, and the first 25 videos: one request.
    let wanted: Vec<TrackRef> = (1..MEMBERS)
        .map(|i| TrackRef::new(format!("m{i}"), format!("m{i}-audio"), Kind::Audio))
        .chain(
            (1..=VIDEOS)
                .map(|i| TrackRef::new(format!("m{i}"), format!("m{i}-video"), Kind::Video)),
        )
        .collect();
    let count = wanted.len();
    members[0].subscribe(wanted).expect("subscribes");
    let deadline = Instant::now() + Duration::from_secs(30);
    while room.subscribed < count {
        assert!(
            Instant::now() < deadline && room.errors.is_empty(),
            "subscribed to {} of {count}: {:?}",
            room.subscribed,
            room.errors
        );
        room.poll(&mut members);
        std::thread::sleep(Duration::from_millis(1));
    }
    // Everyone talks and shows video, ten packets a second.
    let mids: Vec<_> = (0..MEMBERS)
        .map(|i| {
            let name = format!("m{i}");
            let p = members[i].peer();
            (
                p.mid_of(&name, &format!("{name}-audio")).expect("audio"),
                p.mid_of(&name, &format!("{name}-video")).expect("video"),
            )
        })
        .collect();
    let want = (MEMBERS - 1) + VIDEOS;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0u32;
    while room.got.len() < want {
        assert!(
            Instant::now() < deadline && room.errors.is_empty(),
            "member 0 received {} of {want} tracks: {:?}",
            room.got.len(),
            room.errors
        );
        round += 1;
        for (i, c) in members.iter_mut().enumerate().skip(1) {
            // A keyframe's first packet (every subscriber starts at one), then the sender.
            let mut payload = vec![0u8; 100];
            payload[..4].copy_from_slice(&testkit::KEYFRAME_START);
            payload[4..6].copy_from_slice(&(i as u16).to_be_bytes());
            let now = Instant::now();
            let (audio, video) = mids[i];
            let _ = c
                .peer()
                .send_rtp(now, audio, Codec::Opus, round * 960, false, &payload);
            let _ = c
                .peer()
                .send_rtp(now, video, Codec::Vp8, round * 9000, true, &payload);
        }
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            room.poll(&mut members);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Exactly what was asked for: every audio, and video only from the first 25.
    assert!(
        room.got
            .iter()
            .all(|&(from, video)| !video || (1..=VIDEOS).contains(&from))
    );
    assert!(room.errors.is_empty(), "{:?}", room.errors);
}
