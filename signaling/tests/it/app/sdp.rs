//! SDP from a client: hostile, unsupported, unusable.

use super::*;

/// A real client offer with one audio m-line.
fn audio_offer(t: &T) -> String {
    let mut peer = ClientPeer::new(t.now, "127.0.0.1:5555".parse().unwrap());
    let track = LocalTrack {
        stream_id: "s".into(),
        track_id: "a".into(),
        kind: MediaKind::Audio,
    };
    peer.create_offer(&[track]).unwrap().to_sdp_string()
}

#[test]
fn hostile_sdp_gets_a_bounded_time_error_and_changes_nothing() {
    let mut t = T::new(AppConfig::default());
    let base = audio_offer(&t);
    let no_rtpmap: String = base
        .lines()
        .filter(|l| !l.starts_with("a=rtpmap"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let unsupported_only = base.replace("opus/48000/2", "PCMU/8000");
    let mut duplicate_mids = base.clone();
    let section = base[base.find("m=audio").unwrap()..].to_string();
    duplicate_mids.push_str(&section);
    let mut thousands_of_lines = base.clone();
    for i in 0..5000 {
        thousands_of_lines.push_str(&format!("a=x-junk:{i}\r\n"));
    }
    let cases = [
        ("no rtpmap", no_rtpmap),
        ("unsupported codecs only", unsupported_only),
        ("duplicate mids", duplicate_mids),
        ("thousands of lines", thousands_of_lines),
        ("not sdp", "hello".to_string()),
    ];
    for (i, (name, sdp)) in cases.into_iter().enumerate() {
        // A fresh connection each time: five unusable SDPs close a connection.
        let (c, _, _) = t.join(100 + i as u64, "room", "ann");
        let msg = serde_json::json!({"type": "offer", "sdp": sdp});
        let started = Instant::now();
        let out = t.text(c, &msg.to_string());
        assert_eq!(errors(&out, c), vec![ErrorCode::BadSdp], "{name}");
        assert_eq!(controls(&out), 0, "{name}: no peer was created");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name} took {:?}",
            started.elapsed()
        );
    }
    // The same session can still start media with a good offer afterwards.
    let (c, _, _) = t.join(200, "room", "bob");
    let out = t.offer(c, &[]);
    assert!(matches!(sent_to(&out, c)[0], ServerMessage::Answer { .. }));
}

#[test]
fn unsupported_codecs_are_named_in_the_error() {
    let mut t = T::new(AppConfig::default());
    let (c, _, _) = t.join(1, "room", "ann");
    let sdp = audio_offer(&t).replace("opus/48000/2", "PCMU/8000");
    let msg = serde_json::json!({"type": "offer", "sdp": sdp});
    let out = t.text(c, &msg.to_string());
    let reason = out
        .iter()
        .find_map(|o| match o {
            Output::Send(_, ServerMessage::Error { reason, .. }) => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        reason.contains("opus") && reason.contains("VP8"),
        "{reason}"
    );
}

#[test]
fn five_unusable_sdps_close_the_connection() {
    let mut t = T::new(AppConfig::default());
    let (c, _, _) = t.join(1, "room", "ann");
    let mut closed = false;
    for i in 0..5 {
        let out = t.text(c, r#"{"type":"offer","sdp":"garbage"}"#);
        assert_eq!(errors(&out, c), vec![ErrorCode::BadSdp]);
        closed = out
            .iter()
            .any(|o| matches!(o, Output::Close(conn, close::POLICY, _) if *conn == c));
        assert_eq!(closed, i == 4, "closed after the fifth, not before");
    }
    assert!(closed);
}
