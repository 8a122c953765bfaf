//! The wallclock of a forwarded packet: when its media was captured, on the publisher's
//! clock, expressed as a local `Instant`.
//!
//! str0m puts the wallclock we give each written packet into the sender reports it
//! sends subscribers. Receivers align audio and video of one stream by those reports, so
//! both must come from the same timeline. The publisher's own sender reports give that
//! timeline (its NTP time for an RTP time); arrival time would carry network jitter.

use std::time::{Instant, SystemTime};

use str0m::media::MediaTime;
use str0m::rtp::rtcp::SenderInfo;

/// A fixed correspondence between the local monotonic clock and the system clock,
/// taken once, so mapping a `SystemTime` to an `Instant` costs no system call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClockAnchor {
    instant: Instant,
    system: SystemTime,
}

impl ClockAnchor {
    pub(crate) fn now() -> Self {
        Self {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }

    fn to_instant(self, t: SystemTime) -> Option<Instant> {
        match t.duration_since(self.system) {
            Ok(ahead) => self.instant.checked_add(ahead),
            Err(behind) => self.instant.checked_sub(behind.duration()),
        }
    }

    /// The local instant at which the media at `time` was captured, by the publisher's
    /// last sender report; `None` without a report or when it falls outside what an
    /// `Instant` can hold (a wildly wrong publisher clock).
    pub(crate) fn wallclock(self, sr: Option<&SenderInfo>, time: MediaTime) -> Option<Instant> {
        let sr = sr?;
        let offset = time.as_seconds() - sr.rtp_time.as_seconds();
        if !offset.is_finite() || offset.abs() > 3600.0 {
            return None;
        }
        let capture = if offset >= 0.0 {
            sr.ntp_time
                .checked_add(std::time::Duration::from_secs_f64(offset))?
        } else {
            sr.ntp_time
                .checked_sub(std::time::Duration::from_secs_f64(-offset))?
        };
        self.to_instant(capture)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use str0m::rtp::Ssrc;

    fn sr(ntp: SystemTime, rtp_secs: f64) -> SenderInfo {
        SenderInfo {
            ssrc: Ssrc::from(1),
            ntp_time: ntp,
            rtp_time: MediaTime::from_seconds(rtp_secs),
            sender_packet_count: 0,
            sender_octet_count: 0,
        }
    }

    #[test]
    fn maps_rtp_time_through_the_sender_report() {
        let anchor = ClockAnchor::now();
        // The publisher's clock runs 2 hours behind ours: only differences matter.
        let ntp = anchor.system - Duration::from_secs(7200);
        let report = sr(ntp, 100.0);
        let at = |secs: f64| anchor.wallclock(Some(&report), MediaTime::from_seconds(secs));
        let a = at(100.5);
        let b = at(101.0);
        let before = at(99.0);
        if let (Some(a), Some(b), Some(before)) = (a, b, before) {
            assert_eq!(b - a, Duration::from_millis(500));
            assert_eq!(a - before, Duration::from_millis(1500));
        } else {
            // On a machine up for less than two hours the instant does not exist.
            assert!(
                anchor
                    .instant
                    .checked_sub(Duration::from_secs(7200))
                    .is_none()
            );
        }
    }

    #[test]
    fn no_report_or_absurd_offsets_give_none() {
        let anchor = ClockAnchor::now();
        assert!(
            anchor
                .wallclock(None, MediaTime::from_seconds(1.0))
                .is_none()
        );
        let report = sr(anchor.system, 0.0);
        assert!(
            anchor
                .wallclock(Some(&report), MediaTime::from_seconds(1e9))
                .is_none()
        );
        let near = anchor
            .wallclock(Some(&report), MediaTime::from_seconds(0.25))
            .unwrap();
        assert_eq!(near - anchor.instant, Duration::from_millis(250));
    }
}
