//! str0m writes an m-line's msid once, when it makes the m-line. A recycled m-line (see
//! `Parked`) carries another track, so every offer is corrected before it leaves: the
//! client reads from the msid whose track an m-line carries.

use str0m::change::SdpOffer;
use str0m::media::Mid;

use crate::msg::TrackName;

/// The offer with each recycled m-line's msid set to the track it carries now.
pub(super) fn relabel(offer: SdpOffer, relabelled: &[(Mid, TrackName)]) -> SdpOffer {
    if relabelled.is_empty() {
        return offer;
    }
    let sdp = relabel_sdp(&offer.to_sdp_string(), relabelled);
    match SdpOffer::from_sdp_string(&sdp) {
        Ok(corrected) => corrected,
        Err(e) => {
            // Cannot happen (only msid values change); the uncorrected offer still works
            // for every m-line that was not recycled.
            tracing::error!("a relabelled offer does not parse: {e}");
            offer
        }
    }
}

/// Rewrites `a=msid:` and `a=ssrc:… msid:` in the media sections whose mid is relabelled.
fn relabel_sdp(sdp: &str, relabelled: &[(Mid, TrackName)]) -> String {
    let lines: Vec<&str> = sdp.split("\r\n").collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut start = 0;
    while start < lines.len() {
        // One section: from this line to the next m= line.
        let end = (start + 1..lines.len())
            .find(|&i| lines[i].starts_with("m="))
            .unwrap_or(lines.len());
        let section = &lines[start..end];
        let name = section
            .iter()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .and_then(|mid| relabelled.iter().find(|(m, _)| **m == *mid))
            .map(|(_, name)| name);
        for line in section {
            out.push(match name {
                Some(n) => relabel_line(line, n),
                None => (*line).to_string(),
            });
        }
        start = end;
    }
    out.join("\r\n")
}

fn relabel_line(line: &str, name: &TrackName) -> String {
    let msid = format!("{} {}", name.stream_id, name.track_id);
    if line.starts_with("a=msid:") {
        return format!("a=msid:{msid}");
    }
    if let Some(rest) = line.strip_prefix("a=ssrc:")
        && let Some((ssrc, attr)) = rest.split_once(' ')
        && attr.starts_with("msid:")
    {
        return format!("a=ssrc:{ssrc} msid:{msid}");
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use str0m::media::MediaKind;

    use super::*;

    #[test]
    fn only_the_recycled_sections_msid_changes() {
        let sdp = [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=mid:0",
            "a=msid:alice a-audio",
            "a=ssrc:11 cname:x",
            "a=ssrc:11 msid:alice a-audio",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=mid:1",
            "a=msid:bob b-audio",
            "a=ssrc:12 msid:bob b-audio",
            "",
        ]
        .join("\r\n");
        let carol = TrackName {
            stream_id: "carol".into(),
            track_id: "c-audio".into(),
            kind: MediaKind::Audio,
        };
        let out = relabel_sdp(&sdp, &[(Mid::from("1"), carol)]);
        let expected = sdp
            .replace("a=msid:bob b-audio", "a=msid:carol c-audio")
            .replace("a=ssrc:12 msid:bob b-audio", "a=ssrc:12 msid:carol c-audio");
        assert_eq!(out, expected);
    }
}
