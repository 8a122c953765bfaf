//! SDP negotiation as signalling sees it: the client's first offer places the peer on a
//! shard and gets the answer; every later offer comes from the shard and the client
//! answers it; `publish` and `unpublish` ask the shard for such an offer. SDP is
//! bounded before it is parsed, and a client that keeps sending unusable SDP is closed.

use std::time::Instant;

use engine::msg::{Control, PeerId, ShardId};
use protocol::{ErrorCode, ServerMessage, TrackRef};
use str0m::change::{SdpAnswer, SdpOffer};

use super::membership::track_name;
use super::{App, Output, Refusal, close, refuse};
use crate::transport::ConnId;

/// Unusable SDPs a connection may send before it is closed.
const MAX_BAD_SDP: u32 = 5;
/// Lines in the client's first offer. A browser's offer for its few tracks is a few
/// hundred lines; parsing costs ~4 µs a line, so a cap keeps a hostile offer cheap.
const MAX_OFFER_LINES: usize = 2_000;
/// Lines an answer may have per m-line of the offer it answers (a browser's answer has
/// ~60 per m-line), plus a session part: an answer is bounded by its offer, whatever the
/// room's size.
const ANSWER_LINES_PER_MLINE: usize = 80;
const ANSWER_SESSION_LINES: usize = 200;

/// Bytes of SDP a client's answer may need per m-line (a browser's is ~1.1 KB).
pub(super) const ANSWER_BYTES_PER_MLINE: usize = 1536;

impl App {
    /// The client's first offer: pick a shard, build the peer, answer.
    pub(super) fn offer(&mut self, now: Instant, peer: PeerId, sdp: &str) -> Result<(), Refusal> {
        let s = self.session(peer)?;
        if s.shard.is_some() {
            return refuse(
                ErrorCode::UnexpectedOffer,
                "the server makes every offer after the first; answer them, or ask with publish",
            );
        }
        check_lines(sdp, MAX_OFFER_LINES, "offer")?;
        let offer = SdpOffer::from_sdp_string(sdp)
            .map_err(|_| (ErrorCode::BadSdp, "the offer is not valid SDP".to_string()))?;
        let room_shards: Vec<ShardId> = self
            .members(&s.room)
            .iter()
            .filter_map(|p| self.sessions.get(p)?.shard)
            .collect();
        let shard = self.placement.place(&room_shards);
        let accepted = match self
            .factory
            .accept_offer(now, self.shard_addrs[shard], offer)
        {
            Ok(a) => a,
            Err(e) => {
                self.placement.remove(shard, false);
                return refuse(ErrorCode::BadSdp, format!("the offer cannot be used: {e}"));
            }
        };
        let s = self.sessions.get_mut(&peer).expect("checked above");
        s.shard = Some(shard);
        let conn = s.conn;
        self.out.push(Output::Control(
            shard,
            Control::AddPeer {
                peer,
                rtc: accepted.rtc,
                ufrag: accepted.ufrag,
                keys: accepted.keys,
            },
        ));
        if let Some(conn) = conn {
            self.send(
                conn,
                ServerMessage::Answer {
                    sdp: accepted.answer.to_sdp_string(),
                },
            );
        }
        Ok(())
    }

    /// The client's answer to the shard's offer.
    pub(super) fn answer(&mut self, peer: PeerId, sdp: &str) -> Result<(), Refusal> {
        let s = self.session(peer)?;
        let (Some(shard), Some(offer)) = (s.shard, &s.pending_offer) else {
            return refuse(
                ErrorCode::UnexpectedAnswer,
                "no offer from the server is waiting for an answer",
            );
        };
        let mlines = offer.matches("\nm=").count();
        check_lines(
            sdp,
            ANSWER_SESSION_LINES + ANSWER_LINES_PER_MLINE * mlines,
            "answer",
        )?;
        let answer = SdpAnswer::from_sdp_string(sdp)
            .map_err(|_| (ErrorCode::BadSdp, "the answer is not valid SDP".to_string()))?;
        if let Some(s) = self.sessions.get_mut(&peer) {
            s.pending_offer = None;
        }
        self.out
            .push(Output::Control(shard, Control::Answer { peer, answer }));
        Ok(())
    }

    /// The client will publish one more track; the shard offers it a slot.
    pub(super) fn publish(&mut self, peer: PeerId, track: TrackRef) -> Result<(), Refusal> {
        let shard = self.media_shard(peer)?;
        let name = track_name(&track)?;
        let s = self.session(peer)?;
        let room = self.rooms.get(&s.room);
        if room.and_then(|r| r.track_named(&name)).is_some() {
            return refuse(
                ErrorCode::TrackExists,
                "a track with these ids is already published in the room",
            );
        }
        let mine = room.map_or(0, |r| r.tracks.iter().filter(|t| t.peer == peer).count());
        let max = self.config.max_tracks_per_member;
        if mine >= max {
            return refuse(
                ErrorCode::TooManyTracks,
                format!("a member may publish {max} tracks; unpublish one first"),
            );
        }
        self.out.push(Output::Control(
            shard,
            Control::RequestPublish { peer, name },
        ));
        Ok(())
    }

    /// The client stops publishing a track; the shard renegotiates it away.
    pub(super) fn unpublish(&mut self, peer: PeerId, track: TrackRef) -> Result<(), Refusal> {
        let shard = self.media_shard(peer)?;
        let name = track_name(&track)?;
        let s = self.session(peer)?;
        let Some(t) = self
            .rooms
            .get(&s.room)
            .and_then(|r| r.track_named(&name))
            .filter(|t| t.peer == peer)
        else {
            return refuse(
                ErrorCode::TrackNotFound,
                "you publish no track with these ids",
            );
        };
        self.out.push(Output::Control(
            shard,
            Control::Unpublish {
                peer,
                track: t.track,
            },
        ));
        Ok(())
    }

    /// The shard made an offer: it goes to the client, and is kept to send again if the
    /// client resumes before answering.
    pub(super) fn server_offer(&mut self, peer: PeerId, offer: str0m::change::SdpOffer) {
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        let sdp = offer.to_sdp_string();
        s.pending_offer = Some(sdp.clone());
        if let Some(conn) = s.conn {
            self.send(conn, ServerMessage::Offer { sdp });
        }
    }

    /// The shard could not use the client's answer.
    pub(super) fn bad_answer(&mut self, peer: PeerId, reason: String) {
        if let Some(conn) = self.conn_of(peer) {
            self.error(
                conn,
                None,
                ErrorCode::BadSdp,
                format!("the answer could not be used: {reason}"),
            );
            self.count_bad_sdp(conn);
        }
    }

    /// One more unusable SDP from `conn`; too many close it.
    pub(super) fn count_bad_sdp(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.bad_sdp += 1;
        if c.bad_sdp >= MAX_BAD_SDP {
            self.out.push(Output::Close(
                conn,
                close::POLICY,
                "too many unusable SDPs".into(),
            ));
        }
    }
}

fn check_lines(sdp: &str, max: usize, what: &str) -> Result<(), Refusal> {
    let lines = sdp.bytes().filter(|&b| b == b'\n').count();
    if lines > max {
        return refuse(
            ErrorCode::BadSdp,
            format!("the {what} has {lines} lines; at most {max} are accepted"),
        );
    }
    Ok(())
}
