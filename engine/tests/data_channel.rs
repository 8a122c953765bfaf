//! The data channel through the shard core, with real str0m peers on virtual time: a
//! client's text on its channel reaches signalling (`Notice::ChannelData`), signalling's
//! `SendData` reaches the client, and a receiver whose channel buffer is full misses a
//! message rather than holding up the others.

use std::sync::Arc;
use std::time::Duration;

use engine::msg::Control;
use testkit::{Net, TestClient};

type Harness = Net<TestClient>;

/// Two clients on two shards, both with their data channels open.
fn two_with_channels() -> Harness {
    let mut h = Harness::new(2);
    h.join(0, &[]);
    h.join(1, &[]);
    assert!(h.run_until(Duration::from_secs(5), |h| h.all_connected()
        && h.channels_open.len() == 2
        && h.clients.iter().all(|c| c.channel_open)));
    h
}

#[test]
fn text_goes_both_ways_on_the_data_channel() {
    let mut h = two_with_channels();
    let text = r#"{"type":"message","data":{"chat":"hello"}}"#;
    assert!(h.clients[0].peer.send_text(text).unwrap());
    assert!(h.run_until(Duration::from_secs(2), |h| !h.channel_texts.is_empty()));
    assert_eq!(h.channel_texts, vec![(h.clients[0].id, text.to_owned())]);
    let reply: Arc<str> = r#"{"type":"message","from":"1","data":{"chat":"hi"}}"#.into();
    let (shard, peer) = (h.clients[1].shard, h.clients[1].id);
    h.control(
        shard,
        Control::SendData {
            peer,
            text: reply.clone(),
        },
    );
    assert!(h.run_until(Duration::from_secs(2), |h| {
        !h.clients[1].channel_texts.is_empty()
    }));
    assert_eq!(h.clients[1].channel_texts, vec![reply.to_string()]);
    let stats = |h: &Harness| {
        h.shards.iter().fold((0, 0), |a, s| {
            (a.0 + s.stats.data_received, a.1 + s.stats.data_sent)
        })
    };
    assert_eq!(stats(&h), (1, 1));
}

/// A receiver that reads nothing (its datagrams are lost) fills its channel's buffer
/// (4 MiB): the next messages for it are dropped and counted, and another receiver's
/// messages go on.
#[test]
fn a_receiver_that_cannot_keep_up_misses_messages_and_nobody_waits() {
    let mut h = two_with_channels();
    let slow = Harness::client_addr(0);
    h.loss = Some(Box::new(move |_, to, _| to == slow));
    let chunk: Arc<str> = "x".repeat(60 * 1024).into();
    let ids: Vec<_> = h.clients.iter().map(|c| (c.shard, c.id)).collect();
    for _ in 0..100 {
        for (shard, peer) in &ids {
            h.control(
                *shard,
                Control::SendData {
                    peer: *peer,
                    text: chunk.clone(),
                },
            );
        }
        h.run_for(Duration::from_millis(20));
    }
    let dropped: u64 = h.shards.iter().map(|s| s.stats.data_dropped).sum();
    assert!(dropped > 0, "the slow receiver's buffer filled");
    assert!(dropped < 100, "only its messages were dropped: {dropped}");
    assert!(
        h.run_until(Duration::from_secs(5), |h| h.clients[1].channel_texts.len()
            == 100)
    );
}
