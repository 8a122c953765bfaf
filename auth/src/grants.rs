//! The grants, named like LiveKit's video grants (camelCase in the token).

use protocol::{Allowed, Source};
use serde::{Deserialize, Serialize};

use crate::Denied;

/// A member's grants in one room. Absent publish, subscribe and data grants are allowed
/// (as LiveKit reads them); joining, creating, hiding and moderating must be granted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Grants {
    /// The room the token is for; `None`: any room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// May join a room that has members.
    pub room_join: bool,
    /// May start a room nobody is in.
    pub room_create: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    /// Only these sources, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish_sources: Option<Vec<Source>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    /// Chat and files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish_data: Option<bool>,
    /// Not announced to the room.
    pub hidden: bool,
    /// Moderation: kick, mute, lock, end.
    pub room_admin: bool,
}

impl Grants {
    /// An open room's member: everything but hiding and moderation.
    pub fn open() -> Grants {
        Grants {
            room_join: true,
            room_create: true,
            ..Grants::default()
        }
    }

    /// May publish a track from `source`.
    pub fn may_publish(&self, source: Source) -> bool {
        self.can_publish != Some(false)
            && self
                .can_publish_sources
                .as_ref()
                .is_none_or(|s| s.contains(&source))
    }

    pub fn may_subscribe(&self) -> bool {
        self.can_subscribe != Some(false)
    }

    pub fn may_send_data(&self) -> bool {
        self.can_publish_data != Some(false)
    }

    /// What the page needs to know: which controls to show.
    pub fn allowed(&self) -> Allowed {
        Allowed {
            publish: Source::ALL
                .into_iter()
                .filter(|s| self.may_publish(*s))
                .collect(),
            subscribe: self.may_subscribe(),
            data: self.may_send_data(),
            moderate: self.room_admin,
        }
    }

    /// Whether these grants let their holder into `room` (`creating`: nobody is in it).
    pub fn admits(&self, room: &str, creating: bool) -> Result<(), Denied> {
        if let Some(r) = &self.room
            && r != room
        {
            return Err(Denied(format!(
                "the access token is for room {r}, not {room}"
            )));
        }
        if creating && !self.room_create {
            return Err(Denied(format!(
                "nobody is in room {room} yet, and the access token does not allow starting it (roomCreate)"
            )));
        }
        if !creating && !self.room_join {
            return Err(Denied(
                "the access token does not allow joining the room (roomJoin)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_media_grants_allow_and_the_others_must_be_given() {
        let g: Grants = serde_json::from_str(r#"{"roomJoin":true}"#).unwrap();
        assert!(g.may_publish(Source::Camera) && g.may_subscribe() && g.may_send_data());
        assert!(!g.hidden && !g.room_admin);
        assert!(g.admits("any", false).is_ok());
        assert!(g.admits("any", true).unwrap_err().0.contains("roomCreate"));
        let viewer: Grants = serde_json::from_str(
            r#"{"room":"r","roomJoin":true,"canPublish":false,"canPublishData":false}"#,
        )
        .unwrap();
        assert!(!viewer.may_publish(Source::Microphone));
        assert!(viewer.may_subscribe() && !viewer.may_send_data());
        assert!(
            viewer
                .admits("other", false)
                .unwrap_err()
                .0
                .contains("for room r")
        );
        let screen_only: Grants =
            serde_json::from_str(r#"{"roomJoin":true,"canPublishSources":["screen_share"]}"#)
                .unwrap();
        assert!(screen_only.may_publish(Source::ScreenShare));
        assert!(!screen_only.may_publish(Source::Camera));
    }
}
