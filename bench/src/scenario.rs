//! The scenarios: who joins which room, what each peer publishes and whom it receives.
//!
//! - `meeting`: R rooms of P people; everyone publishes audio + video and subscribes to
//!   everyone else in the room.
//! - `webinar`: one room, one publisher (audio + video), N subscribers.
//! - `audio`: R rooms of P people, audio only, everyone subscribes to everyone else.

use serde::Serialize;

/// A scenario and its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Scenario {
    /// R rooms of P people, everyone publishing audio + video to everyone.
    Meeting {
        /// Rooms.
        rooms: usize,
        /// People per room.
        people: usize,
    },
    /// One publisher, N subscribers.
    Webinar {
        /// Subscribers.
        subscribers: usize,
    },
    /// R rooms of P audio-only people.
    Audio {
        /// Rooms.
        rooms: usize,
        /// People per room.
        people: usize,
    },
}

/// One synthetic peer's part in a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPlan {
    /// Its room.
    pub room: String,
    /// Its nickname, also its msid stream id (unique in the room).
    pub nickname: String,
    /// Publishes video.
    pub video: bool,
    /// Publishes audio.
    pub audio: bool,
    /// Subscribes to every track of the others in its room.
    pub subscribes: bool,
    /// How many tracks it will receive once the room is complete.
    pub expected_tracks: usize,
    /// Who speaks in its room, in turn (its members, in joining order): with simulcast,
    /// the speaker's tile is shown large.
    pub speakers: Vec<String>,
}

impl Scenario {
    /// Its name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Meeting { .. } => "meeting",
            Scenario::Webinar { .. } => "webinar",
            Scenario::Audio { .. } => "audio",
        }
    }

    /// Sizes in a few words, for the report.
    pub fn describe(&self) -> String {
        match *self {
            Scenario::Meeting { rooms, people } => {
                format!("{rooms} room(s) × {people} people, audio + video, all to all")
            }
            Scenario::Webinar { subscribers } => {
                format!("1 publisher (audio + video) → {subscribers} subscribers")
            }
            Scenario::Audio { rooms, people } => {
                format!("{rooms} room(s) × {people} people, audio only, all to all")
            }
        }
    }

    /// The largest room.
    pub fn room_size(&self) -> usize {
        match *self {
            Scenario::Meeting { people, .. } | Scenario::Audio { people, .. } => people,
            Scenario::Webinar { subscribers } => subscribers + 1,
        }
    }

    /// Every peer, in joining order. Rooms are named `<prefix>-<r>`. In the meetings,
    /// the k-th member of every room joins before any room's (k+1)-th, so rooms fill
    /// evenly.
    pub fn plan(&self, prefix: &str) -> Vec<PeerPlan> {
        let mut peers = Vec::new();
        match *self {
            Scenario::Meeting { rooms, people } | Scenario::Audio { rooms, people } => {
                let video = matches!(self, Scenario::Meeting { .. });
                let per_peer = if video { 2 } else { 1 };
                for k in 0..people {
                    for r in 0..rooms {
                        peers.push(PeerPlan {
                            room: format!("{prefix}-{r}"),
                            nickname: format!("p{r}-{k}"),
                            video,
                            audio: true,
                            subscribes: true,
                            expected_tracks: (people - 1) * per_peer,
                            speakers: (0..people).map(|k| format!("p{r}-{k}")).collect(),
                        });
                    }
                }
            }
            Scenario::Webinar { subscribers } => {
                peers.push(PeerPlan {
                    room: format!("{prefix}-0"),
                    nickname: "host".into(),
                    video: true,
                    audio: true,
                    subscribes: false,
                    expected_tracks: 0,
                    speakers: vec!["host".into()],
                });
                for k in 0..subscribers {
                    peers.push(PeerPlan {
                        room: format!("{prefix}-0"),
                        nickname: format!("viewer-{k}"),
                        video: false,
                        audio: false,
                        subscribes: true,
                        expected_tracks: 2,
                        speakers: vec!["host".into()],
                    });
                }
            }
        }
        peers
    }

    /// Forwarded streams once everyone is in: (subscriber, track) pairs.
    pub fn forwarded_streams(&self) -> usize {
        self.plan("x").iter().map(|p| p.expected_tracks).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_have_the_right_shape() {
        let m = Scenario::Meeting {
            rooms: 2,
            people: 3,
        };
        let p = m.plan("r");
        assert_eq!(p.len(), 6);
        assert_eq!(p[0].room, "r-0");
        assert_eq!(p[1].room, "r-1");
        assert!(
            p.iter()
                .all(|x| x.video && x.audio && x.expected_tracks == 4)
        );
        assert_eq!(m.forwarded_streams(), 24);
        // Each room's members speak in turn.
        assert_eq!(p[3].speakers, ["p1-0", "p1-1", "p1-2"]);
        assert_eq!(p[4].speakers, ["p0-0", "p0-1", "p0-2"]);

        let w = Scenario::Webinar { subscribers: 5 };
        let p = w.plan("r");
        assert_eq!(p.len(), 6);
        assert!(p[0].video && !p[0].subscribes);
        assert!(p.iter().all(|x| x.speakers == ["host"]));
        assert!(
            p[1..]
                .iter()
                .all(|x| !x.video && !x.audio && x.expected_tracks == 2)
        );
        assert_eq!(w.room_size(), 6);

        let a = Scenario::Audio {
            rooms: 1,
            people: 4,
        };
        assert!(
            a.plan("r")
                .iter()
                .all(|x| !x.video && x.expected_tracks == 3)
        );
    }
}
