//! The names of the cluster's keys and channels (the table in the crate docs).

pub(crate) const NODE_PREFIX: &str = "peercalls:node:";

pub(crate) fn node(id: &str) -> String {
    format!("{NODE_PREFIX}{id}")
}

pub(crate) fn room_nodes(room: &str) -> String {
    format!("peercalls:room:{room}:nodes")
}

pub(crate) fn room_members(room: &str, node: &str) -> String {
    format!("peercalls:room:{room}:members:{node}")
}

pub(crate) fn room_events(room: &str) -> String {
    format!("peercalls:room:{room}:events")
}

/// The room a channel name carries events of.
pub(crate) fn room_of_channel(channel: &str) -> Option<&str> {
    channel
        .strip_prefix("peercalls:room:")?
        .strip_suffix(":events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_names_its_room_even_with_colons_in_it() {
        assert_eq!(room_of_channel(&room_events("a:b")), Some("a:b"));
        assert_eq!(room_of_channel("peercalls:node:x"), None);
    }
}
