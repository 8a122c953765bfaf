//! The subscriber thread: a connection of its own in pub/sub mode, subscribed to the
//! event channel of every room the node holds, handing each event from another node to
//! the node. Subscriptions change between reads (a read waits at most [`POLL`]); a lost
//! connection is made again every second and every room subscribed again.

use std::collections::BTreeSet;
use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};
use redis::Client;

use crate::{ClusterEvent, EventSink, RoomEvent, keys};

/// How long a read waits before the thread looks at its subscription changes.
const POLL: Duration = Duration::from_millis(100);
const RETRY: Duration = Duration::from_secs(1);

pub(crate) enum Subscription {
    Add(String),
    Remove(String),
    Stop,
}

pub(crate) struct Subscriber {
    client: Client,
    node: String,
    changes: Receiver<Subscription>,
    events: EventSink,
    rooms: BTreeSet<String>,
}

/// Why a connected session ended.
enum End {
    Stop,
    Lost,
}

impl Subscriber {
    pub(crate) fn new(
        client: Client,
        node: String,
        changes: Receiver<Subscription>,
        events: EventSink,
    ) -> Self {
        Self {
            client,
            node,
            changes,
            events,
            rooms: BTreeSet::new(),
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            if let End::Stop = self.session() {
                return;
            }
            // Wait before trying again, still following the changes.
            match self.changes.recv_timeout(RETRY) {
                Ok(Subscription::Stop) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return;
                }
                Ok(Subscription::Add(room)) => {
                    self.rooms.insert(room);
                }
                Ok(Subscription::Remove(room)) => {
                    self.rooms.remove(&room);
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// One connection, from its start to its loss (or the stop).
    fn session(&mut self) -> End {
        let Ok(mut con) = self.client.get_connection_with_timeout(RETRY) else {
            return End::Lost;
        };
        let mut ps = con.as_pubsub();
        if ps.set_read_timeout(Some(POLL)).is_err() {
            return End::Lost;
        }
        for room in &self.rooms {
            if ps.subscribe(keys::room_events(room)).is_err() {
                return End::Lost;
            }
            let _ = self.events.send(ClusterEvent::Subscribed(room.clone()));
        }
        loop {
            loop {
                let change = match self.changes.try_recv() {
                    Ok(c) => c,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return End::Stop,
                };
                let ok = match change {
                    Subscription::Stop => return End::Stop,
                    Subscription::Add(room) => {
                        let r = ps.subscribe(keys::room_events(&room));
                        if r.is_ok() {
                            let _ = self.events.send(ClusterEvent::Subscribed(room.clone()));
                        }
                        self.rooms.insert(room);
                        r.is_ok()
                    }
                    Subscription::Remove(room) => {
                        let r = ps.unsubscribe(keys::room_events(&room));
                        self.rooms.remove(&room);
                        r.is_ok()
                    }
                };
                if !ok {
                    return End::Lost;
                }
            }
            match ps.get_message() {
                Ok(msg) => {
                    let Some(room) = keys::room_of_channel(msg.get_channel_name()) else {
                        continue;
                    };
                    let Ok(event) = serde_json::from_slice::<RoomEvent>(msg.get_payload_bytes())
                    else {
                        tracing::debug!("cluster: an event that is not a room event on {room}");
                        continue;
                    };
                    if event.from != self.node && event.room == room && self.rooms.contains(room) {
                        let _ = self.events.send(ClusterEvent::Room(event));
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => {
                    tracing::warn!("cluster: lost the pub/sub connection: {e}");
                    return End::Lost;
                }
            }
        }
    }
}
