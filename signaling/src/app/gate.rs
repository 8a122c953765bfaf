//! Who gets into a room: the provider's grants (`--auth`; the webhook provider is asked
//! off this thread, and the join waits for its verdict), a room's lock and bans
//! (moderation), and without a provider, a room's password.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use protocol::ErrorCode;

use super::remote::resume_key;
use super::sessions::{Joining, unix_ms};
use super::{App, Output, Refusal, refuse};
use crate::transport::ConnId;

/// The provider's word on a join: what it may do, or why not.
pub(super) type Verdict = Result<auth::Admission, auth::Denied>;

/// Who a connection is, as the WebSocket's upgrade request showed it: what the webhook
/// provider is told, and what password guesses are counted by.
#[derive(Debug, Clone, Default)]
pub struct Visitor {
    /// The client's address (of the TCP connection).
    pub address: Option<IpAddr>,
    /// The upgrade request's `Cookie` header.
    pub cookie: Option<String>,
    /// The upgrade request's `X-Forwarded-For` header: the client's address when
    /// `address` is a trusted proxy's.
    pub forwarded_for: Option<String>,
}

impl Visitor {
    /// The client's address: the TCP peer's, or behind one of `proxies`, the last one
    /// `X-Forwarded-For` names (what that proxy saw; the earlier ones the client may have
    /// written itself).
    pub(super) fn client_address(&self, proxies: &[IpAddr]) -> Option<IpAddr> {
        let peer = self.address?;
        if !proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded = self.forwarded_for.as_deref()?.rsplit(',').next()?.trim();
        Some(forwarded.parse().unwrap_or(peer))
    }
}

/// Wrong room passwords one address may send per [`GUESS_WINDOW`].
pub const GUESSES: u32 = 5;
pub const GUESS_WINDOW: Duration = Duration::from_secs(60);

/// Wrong password guesses, by address (an IPv6 address by its /64, which one
/// subscriber usually holds whole).
#[derive(Debug, Default)]
pub(super) struct Guesses {
    by_address: HashMap<IpAddr, (Instant, u32)>,
}

impl Guesses {
    fn key(address: Option<IpAddr>) -> IpAddr {
        match address {
            Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            Some(IpAddr::V6(v6)) => IpAddr::V4(v6.to_ipv4_mapped().unwrap_or([0; 4].into())),
            Some(v4) => v4,
            None => IpAddr::V4([0; 4].into()),
        }
    }

    fn exhausted(&self, address: Option<IpAddr>, now: Instant) -> bool {
        self.by_address
            .get(&Self::key(address))
            .is_some_and(|(since, n)| now < *since + GUESS_WINDOW && *n >= GUESSES)
    }

    fn count(&mut self, address: Option<IpAddr>, now: Instant) {
        let e = self
            .by_address
            .entry(Self::key(address))
            .or_insert((now, 0));
        if now >= e.0 + GUESS_WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    pub(super) fn forget_old(&mut self, now: Instant) {
        self.by_address
            .retain(|_, (since, _)| now < *since + GUESS_WINDOW);
    }
}

/// Whether two passwords are the same, in time that does not depend on where they
/// differ (their digests are compared, so not on their lengths either).
fn same_password(given: &str, wanted: &str) -> bool {
    let digest = |s: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    aws_lc_rs::constant_time::verify_slices_are_equal(
        digest(given).as_ref(),
        digest(wanted).as_ref(),
    )
    .is_ok()
}

impl App {
    /// Nobody is in `room` yet, here or on another node.
    pub(super) fn room_is_empty(&self, room: &str) -> bool {
        self.rooms
            .get(room)
            .is_none_or(|r| r.members.is_empty() && r.remote.is_empty())
    }

    /// With the webhook provider, a join without the service's verdict waits for it:
    /// the question goes out, and [`App::on_verdict`] takes the join on.
    pub(super) fn asks_provider(&mut self, conn: ConnId, j: Joining) -> Option<Joining> {
        if self.config.auth.webhook().is_none() || j.verdict.is_some() {
            return Some(j);
        }
        let visitor = self
            .conns
            .get(&conn)
            .map(|c| c.visitor.clone())
            .unwrap_or_default();
        let question = auth::Question {
            room: j.room.clone(),
            access_token: j.access_token.clone(),
            address: visitor.client_address(&self.config.trusted_proxies),
            cookie: visitor.cookie,
            creating: self.room_is_empty(&j.room),
        };
        self.out.push(Output::Ask { conn, question });
        self.asking.insert(conn, j);
        None
    }

    /// The webhook's verdict on the join waiting on `conn`.
    pub fn on_verdict(&mut self, now: Instant, conn: ConnId, verdict: Verdict) {
        let Some(mut j) = self.asking.remove(&conn) else {
            return; // the connection closed meanwhile
        };
        if !self.conns.contains_key(&conn) {
            return;
        }
        j.verdict = Some(verdict);
        let id = j.id;
        if let Err(refusal) = self.join(now, conn, j) {
            self.refused(conn, id, false, refusal);
        }
    }

    /// What a new member may do in its room, and its nickname (the provider's `name`
    /// wins): the provider's grants, then the room's lock, bans and password.
    pub(super) fn authorize(
        &mut self,
        now: Instant,
        conn: ConnId,
        j: &Joining,
    ) -> Result<(auth::Grants, String), Refusal> {
        let room = j.room.as_str();
        let creating = self.room_is_empty(room);
        let admission = match &j.verdict {
            Some(verdict) => verdict.clone(),
            None => {
                self.config
                    .auth
                    .admit(room, j.access_token.as_deref(), creating, unix_ms() / 1000)
            }
        }
        .map_err(|d| (ErrorCode::Forbidden, d.0))?;
        // A member moving here from a node that is gone is in the room already: its
        // lock and password are behind it.
        let moving = j.token.is_some();
        if let Some(r) = self.rooms.get(room).filter(|_| !moving) {
            if let Some(t) = &j.access_token
                && r.banned.contains(&resume_key(t))
            {
                return refuse(
                    ErrorCode::Forbidden,
                    format!("a moderator removed you from room {room}; you may not join it again"),
                );
            }
            if r.locked && !admission.grants.room_admin {
                return refuse(
                    ErrorCode::Forbidden,
                    format!("room {room} is locked: its moderators let nobody new in"),
                );
            }
        }
        if self.config.auth.is_open() && !moving {
            self.check_password(now, conn, j, creating)?;
        }
        let nickname = admission.name.unwrap_or_else(|| j.nickname.clone());
        Ok((admission.grants, nickname))
    }

    /// The room's password, if it has one (the server's, or the one its creator set).
    fn check_password(
        &mut self,
        now: Instant,
        conn: ConnId,
        j: &Joining,
        creating: bool,
    ) -> Result<(), Refusal> {
        let room = j.room.as_str();
        let set_by_creator = self
            .rooms
            .get(room)
            .filter(|_| !creating)
            .and_then(|r| r.password.clone());
        let Some(wanted) = self.config.room_password.clone().or(set_by_creator) else {
            return Ok(());
        };
        let proxies = &self.config.trusted_proxies;
        let address = self
            .conns
            .get(&conn)
            .and_then(|c| c.visitor.client_address(proxies));
        if self.guesses.exhausted(address, now) {
            return refuse(
                ErrorCode::RateLimited,
                format!(
                    "too many wrong passwords from your address; try again in {} s",
                    GUESS_WINDOW.as_secs()
                ),
            );
        }
        match j.password.as_deref().filter(|p| !p.is_empty()) {
            None => refuse(
                ErrorCode::PasswordRequired,
                format!("room {room} needs a password"),
            ),
            Some(p) if same_password(p, &wanted) => Ok(()),
            Some(_) => {
                self.guesses.count(address, now);
                tracing::info!(room, ?address, "a wrong room password");
                refuse(
                    ErrorCode::PasswordRequired,
                    format!("that is not the password of room {room}"),
                )
            }
        }
    }

    /// The first member of an empty room sets its password, when it gave one and the
    /// server has none for every room.
    pub(super) fn set_room_password(&mut self, room: &str, password: Option<&str>) {
        if !self.config.auth.is_open() || self.config.room_password.is_some() {
            return;
        }
        if let Some(r) = self.rooms.get_mut(room)
            && r.members.len() == 1
            && r.remote.is_empty()
        {
            r.password = password.filter(|p| !p.is_empty()).map(str::to_owned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_compare_whole() {
        assert!(same_password("correct horse", "correct horse"));
        assert!(!same_password("correct hors", "correct horse"));
        assert!(!same_password("", "x"));
    }

    #[test]
    fn guesses_are_counted_per_address_and_forgotten_after_the_window() {
        let t0 = Instant::now();
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        let mut g = Guesses::default();
        for _ in 0..GUESSES {
            assert!(!g.exhausted(Some(a), t0));
            g.count(Some(a), t0);
        }
        assert!(g.exhausted(Some(a), t0));
        assert!(!g.exhausted(Some(b), t0));
        assert!(!g.exhausted(Some(a), t0 + GUESS_WINDOW));
        g.forget_old(t0 + GUESS_WINDOW);
        assert!(g.by_address.is_empty());
    }

    #[test]
    fn a_forwarded_address_is_believed_from_a_trusted_proxy_only() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let v = |peer: &str, xff: Option<&str>| Visitor {
            address: Some(peer.parse().unwrap()),
            cookie: None,
            forwarded_for: xff.map(str::to_owned),
        };
        let client = Some("203.0.113.7".parse().unwrap());
        // The proxy appends what it saw; the first entries the client may have forged.
        let behind = v("10.0.0.2", Some("198.51.100.1, 203.0.113.7"));
        assert_eq!(behind.client_address(&[proxy]), client);
        assert_eq!(behind.client_address(&[]), Some(proxy));
        let direct = v("203.0.113.7", Some("198.51.100.1"));
        assert_eq!(direct.client_address(&[proxy]), client);
        assert_eq!(
            v("10.0.0.2", Some("garbage")).client_address(&[proxy]),
            Some(proxy)
        );
    }

    #[test]
    fn an_ipv6_subscriber_counts_as_its_64() {
        let t0 = Instant::now();
        let mut g = Guesses::default();
        for i in 0..GUESSES {
            let a: IpAddr = format!("2001:db8:1:2::{i}").parse().unwrap();
            g.count(Some(a), t0);
        }
        assert!(g.exhausted(Some("2001:db8:1:2::ffff".parse().unwrap()), t0));
        assert!(!g.exhausted(Some("2001:db8:1:3::1".parse().unwrap()), t0));
    }
}
