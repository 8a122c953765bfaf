//! The hostile-peer toolkit works: keys are learnt, forged SRTP and SRTCP are accepted
//! by the server's str0m and forwarded like the real thing.

use std::time::{Duration, Instant};

use fuzz_targets::forge::{rtp, rtp_header_len};
use fuzz_targets::rtp_datagram;
use fuzz_targets::world::{CALM, HOSTILE, World};
use str0m::format::Codec;

#[test]
fn forged_srtp_is_forwarded_like_real_media() {
    let t = Instant::now();
    let mut w = World::connected().expect("connects");
    eprintln!("world set up in {:?}", t.elapsed());
    let before = w.clients[CALM].received.len();
    let mut forge = w.clients[HOSTILE].forge().expect("keys");
    let hostile = &mut w.clients[HOSTILE];
    let mid = hostile.mid_of("hostile-video").unwrap();
    let (ssrc, _) = hostile.ssrcs(mid).unwrap();
    let (pt, _) = hostile.payload_type(Codec::Vp8).unwrap();
    for seq in 10..20u16 {
        let p = rtp(
            pt,
            seq,
            u32::from(seq) * 3000,
            *ssrc,
            true,
            b"forged payload",
        );
        assert_eq!(rtp_header_len(&p), Some(12));
        let d = rtp_datagram(&mut forge, &p);
        let src = w.addr(HOSTILE);
        w.deliver(src, &d);
        w.step(Duration::from_millis(10));
    }
    w.run_for(Duration::from_millis(100));
    let got: Vec<&[u8]> = w.clients[CALM].received[before..]
        .iter()
        .map(|g| g.payload.as_slice())
        .filter(|p| *p == b"forged payload")
        .collect();
    assert_eq!(got.len(), 10, "every forged packet was forwarded");
    // A PLI in SRTCP (sender: the hostile peer, media: the server's stream to it).
    let toward = w.clients[HOSTILE].receiving_ssrcs();
    assert!(!toward.is_empty());
    let calm_requests = w.clients[CALM].keyframe_requests;
    let mut pli = vec![0x81, 206, 0, 2];
    pli.extend_from_slice(&ssrc.to_be_bytes());
    pli.extend_from_slice(&toward[0].to_be_bytes());
    // The video stream toward the hostile peer may be either of the two it receives.
    for media in toward {
        pli[8..12].copy_from_slice(&media.to_be_bytes());
        let d = forge.protect_rtcp(&pli).unwrap();
        let src = w.addr(HOSTILE);
        w.deliver(src, &d);
    }
    w.run_for(Duration::from_millis(1500));
    assert!(
        w.clients[CALM].keyframe_requests > calm_requests,
        "the forged PLI reached the publisher"
    );
    assert_eq!(w.shards[0].stats.peer_panics, 0);
}

/// str0m 0.25 extends a TWCC report's base sequence number against the last one it sent
/// and adds the status count to it; a base far enough behind extends to just below 2^64,
/// and the addition overflows (found by `shard_srtp`, docs/fuzzing.md). A release build
/// wraps and ignores the report; a debug build panics, and the shard must then drop that
/// peer alone.
#[test]
fn a_twcc_report_far_behind_hurts_no_other_peer() {
    let mut w = World::connected().expect("connects");
    let mut forge = w.clients[HOSTILE].forge().expect("keys");
    let hostile = &mut w.clients[HOSTILE];
    let mid = hostile.mid_of("hostile-video").unwrap();
    let (ssrc, _) = hostile.ssrcs(mid).unwrap();
    let media = hostile.receiving_ssrcs()[0];
    let mut twcc = vec![0x8f, 205, 0, 5];
    twcc.extend_from_slice(&ssrc.to_be_bytes());
    twcc.extend_from_slice(&media.to_be_bytes());
    twcc.extend_from_slice(&65_000u16.to_be_bytes()); // base sequence, far behind
    twcc.extend_from_slice(&600u16.to_be_bytes()); // status count
    twcc.extend_from_slice(&[0, 0, 0, 0]); // reference time, feedback count
    twcc.extend_from_slice(&[0x02, 0x58, 0, 0]); // one run: 600 not received; padding
    let mut rr = vec![0x80, 201, 0, 1];
    rr.extend_from_slice(&ssrc.to_be_bytes());
    let d = forge.protect_rtcp(&[rr, twcc].concat()).unwrap();
    let src = w.addr(HOSTILE);
    w.deliver(src, &d);
    w.run_for(Duration::from_millis(500));
    let calm = w.clients[CALM].id;
    assert!(
        !w.gone.iter().any(|(p, _)| *p == calm),
        "the other peer stays"
    );
    assert!(w.clients[CALM].is_connected());
    if w.shards[0].stats.peer_panics > 0 {
        // A debug build of str0m: only the sender of the report is gone.
        let gone: Vec<_> = w.gone.iter().map(|(p, _)| *p).collect();
        assert_eq!(gone, vec![w.clients[HOSTILE].id]);
        assert_eq!(w.shards[0].peer_count(), 1);
    } else {
        assert!(w.gone.is_empty(), "a release build ignores the report");
    }
}

/// str0m 0.25 extends a transport-wide sequence number (TWCC header extension) against
/// the highest it registered; while that is below 32768, a value 32768 or more above it
/// extends below zero, to just under 2^64, and the next TWCC feedback tries to list
/// ~2^51 missing packets: the whole server runs out of memory (found by `shard_srtp`,
/// docs/fuzzing.md). The shard's `TwccGuard` drops such a packet before str0m; without
/// it this test aborts on a multi-gigabyte allocation.
#[test]
fn a_transport_sequence_number_str0m_would_extend_below_zero_is_dropped() {
    let mut w = World::connected().expect("connects");
    let mut forge = w.clients[HOSTILE].forge().expect("keys");
    let hostile = &mut w.clients[HOSTILE];
    let mid = hostile.mid_of("hostile-video").unwrap();
    let (ssrc, _) = hostile.ssrcs(mid).unwrap();
    let (pt, _) = hostile.payload_type(Codec::Vp8).unwrap();
    let before = w.clients[CALM].received.len();
    // A one-byte-form extension with id 3 (transport-wide-cc in str0m's default map, which
    // both sides of the world use) holding `tcc`.
    let with_twcc = |seq: u16, tcc: u16| {
        let mut p = rtp(pt, seq, u32::from(seq) * 3000, *ssrc, true, b"");
        p[0] |= 0x10;
        p.truncate(12);
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x31]);
        p.extend_from_slice(&tcc.to_be_bytes());
        p.push(0);
        p.extend_from_slice(b"twcc payload");
        p
    };
    for (i, tcc) in [5u16, 6, 7, 40_000, 8, 65_000, 9].into_iter().enumerate() {
        let d = rtp_datagram(&mut forge, &with_twcc(100 + i as u16, tcc));
        let src = w.addr(HOSTILE);
        w.deliver(src, &d);
        w.step(Duration::from_millis(10));
    }
    w.run_for(Duration::from_millis(500));
    assert_eq!(
        w.shards[0].stats.rx_twcc_guarded, 2,
        "40000 and 65000 dropped"
    );
    // A browser's packet: abs-send-time (id 2, three bytes, here with its top bit set)
    // beside a small sequence number. The negotiated map says id 2 is abs-send-time, so
    // its value is not mistaken for a sequence number.
    let mut p = rtp(pt, 120, 360_000, *ssrc, true, b"");
    p[0] |= 0x10;
    p.extend_from_slice(&[0xBE, 0xDE, 0, 2, 0x22, 0xF0, 0x00, 0x00, 0x31, 0, 10, 0]);
    p.extend_from_slice(b"twcc payload");
    let d = rtp_datagram(&mut forge, &p);
    let src = w.addr(HOSTILE);
    w.deliver(src, &d);
    w.run_for(Duration::from_millis(200));
    assert_eq!(
        w.shards[0].stats.rx_twcc_guarded, 2,
        "the browser's packet passes"
    );
    let forwarded = w.clients[CALM].received[before..]
        .iter()
        .filter(|g| g.payload.as_slice() == b"twcc payload")
        .count();
    assert_eq!(forwarded, 6, "the others are forwarded");
    assert!(w.gone.is_empty(), "nobody is dropped");
    assert!(w.clients[CALM].is_connected());
    assert_eq!(w.shards[0].stats.peer_panics, 0);
}

#[test]
fn the_shard_holds_the_srtp_keys_of_each_session() {
    let w = World::connected().expect("connects");
    for c in [CALM, HOSTILE] {
        let client = w.clients[c].keys().expect("the client's keys");
        let server = w.shards[0]
            .srtp_keys(w.clients[c].id)
            .expect("the shard's keys");
        // One export, seen from both ends: the same material and profile, and the
        // server is the DTLS server (ICE-lite answers; the client connects).
        assert_eq!(server.material, client.material);
        assert_eq!(server.profile, client.profile);
        assert!(client.active && !server.active);
    }
}

/// A subscriber that NACKs the same packets over and over gets at most half as many
/// resends a second as its stream carries (30 whatever it carries), and the publisher
/// and the shard go on as before.
#[test]
fn a_nack_flood_gets_no_more_than_the_streams_resend_budget() {
    let mut w = World::connected().expect("connects");
    for seq in 100..140 {
        w.send_media(CALM, seq);
        w.step(Duration::from_millis(20));
    }
    w.run_for(Duration::from_millis(200));
    let mut forge = w.clients[HOSTILE].forge().expect("keys");
    let hostile = &mut w.clients[HOSTILE];
    let mid = hostile.mid_of("hostile-video").unwrap();
    let (ssrc, _) = hostile.ssrcs(mid).unwrap();
    // The last packets the hostile peer received on each of its streams, named again
    // and again: 200 NACKs of 17 packets each, at one instant.
    // (receiving_ssrcs lists the m-lines in the order their first packet came.)
    let toward = hostile.receiving_ssrcs();
    let mut mids = Vec::new();
    for g in &hostile.received {
        if !mids.contains(&g.mid) {
            mids.push(g.mid);
        }
    }
    let last: Vec<(u32, u16)> = toward
        .iter()
        .zip(&mids)
        .filter_map(|(s, mid)| {
            let got = hostile.received.iter().rev().find(|g| g.mid == *mid)?;
            Some((**s, (got.seq as u16).wrapping_sub(16)))
        })
        .collect();
    assert!(!last.is_empty());
    let before = w.shards[0].stats;
    for _ in 0..200 {
        for (media, first) in &last {
            let mut nack = vec![0x81, 205, 0, 3];
            nack.extend_from_slice(&ssrc.to_be_bytes());
            nack.extend_from_slice(&media.to_be_bytes());
            nack.extend_from_slice(&first.to_be_bytes());
            nack.extend_from_slice(&0xffffu16.to_be_bytes());
            let d = forge.protect_rtcp(&nack).unwrap();
            let src = w.addr(HOSTILE);
            w.deliver(src, &d);
        }
    }
    let after = w.shards[0].stats;
    let resent = after.rtp_resent - before.rtp_resent;
    assert!(resent > 0, "the first NACK is answered");
    // 40 packets sent a second on each stream at most: 30 resends each.
    assert!(
        resent <= 30 * last.len() as u64,
        "{resent} resends for {} streams",
        last.len()
    );
    assert!(after.nack_unanswered - before.nack_unanswered > 1000);
    // The call goes on.
    let got = w.clients[CALM].received.len();
    for seq in 140..150 {
        w.send_media(HOSTILE, seq);
        w.step(Duration::from_millis(20));
    }
    w.run_for(Duration::from_millis(200));
    assert!(w.clients[CALM].received.len() > got);
    assert_eq!(w.shards[0].stats.peer_panics, 0);
}
