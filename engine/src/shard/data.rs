//! The data channel: the page's app messages (chat, files) come in on it and go out on
//! it, as text frames of the signalling protocol that signalling relays (a `message`
//! through the same checks as one on the WebSocket). The shard only carries them: one
//! channel per peer, the first the client opens.

use std::sync::Arc;
use std::time::Instant;

use str0m::channel::{ChannelData, ChannelId};

use super::core::ShardCore;
use super::timers::Slot;
use crate::msg::{Notice, PeerId};

/// The largest message taken from a client: the WebSocket's frame limit, and str0m's
/// own SCTP message limit.
const MAX_DATA_MESSAGE: usize = 256 * 1024;

impl ShardCore {
    /// The client opened a data channel: its first is the one app messages use.
    pub(super) fn channel_opened(&mut self, now: Instant, slot: Slot, id: ChannelId) {
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        peer.last_authentic_rx = now;
        if peer.channel.is_none() {
            peer.channel = Some(id);
            self.out
                .notices
                .push(Notice::ChannelOpen { peer: slot.peer });
        }
    }

    pub(super) fn channel_closed(&mut self, slot: Slot, id: ChannelId) {
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        if peer.channel == Some(id) {
            peer.channel = None;
            self.out
                .notices
                .push(Notice::ChannelClosed { peer: slot.peer });
        }
    }

    /// A message from the client: text on its channel goes to signalling; anything else
    /// (binary, another channel, too large, not UTF-8) is dropped and counted.
    pub(super) fn channel_data(&mut self, now: Instant, slot: Slot, data: ChannelData) {
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        peer.last_authentic_rx = now;
        let ours = peer.channel == Some(data.id);
        let text = (ours && !data.binary && data.data.len() <= MAX_DATA_MESSAGE)
            .then(|| String::from_utf8(data.data).ok())
            .flatten();
        match text {
            Some(text) => {
                self.stats.data_received += 1;
                self.out.notices.push(Notice::ChannelData {
                    peer: slot.peer,
                    text,
                });
            }
            None => self.stats.data_dropped += 1,
        }
    }

    /// Sends `text` on `peer`'s channel, unless its buffer is full (the receiver is
    /// slower than the senders: it misses this message, the others do not wait).
    pub(super) fn send_data(&mut self, now: Instant, peer: PeerId, text: Arc<str>) {
        let Some(slot) = self.slot_of(peer) else {
            return;
        };
        let Some(id) = self.peer_mut(slot).and_then(|p| p.channel) else {
            self.stats.data_dropped += 1;
            return;
        };
        let mut sent = false;
        self.mutate(now, slot, |rtc| {
            if let Some(mut channel) = rtc.channel(id) {
                sent = channel.write(false, text.as_bytes())?;
            }
            Ok(())
        });
        if sent {
            self.stats.data_sent += 1;
        } else {
            self.stats.data_dropped += 1;
        }
    }
}
