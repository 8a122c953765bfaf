//! The STUN and TURN servers each client is told about in `joined`, with short-lived
//! TURN credentials by the TURN REST scheme that coturn's `use-auth-secret` checks: the
//! user name is `<expiry, Unix seconds>:<peer id>` and the password is the base64 of
//! HMAC-SHA1 over the user name, keyed by the secret the server and coturn share. Nothing
//! is stored: coturn recomputes the password, and refuses it once the expiry has passed.

use std::time::{Duration, SystemTime};

use aws_lc_rs::hmac;
use protocol::IceServer;

/// The ICE servers clients get.
#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    /// `stun:`, `stuns:`, `turn:` and `turns:` URLs, in the order given.
    pub urls: Vec<String>,
    /// The secret shared with the TURN server (coturn's `static-auth-secret`); every
    /// `turn:`/`turns:` URL needs it.
    pub turn_secret: Option<String>,
    /// How long a session's TURN credentials are valid.
    pub turn_ttl: Duration,
}

/// Why an ICE server configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceError {
    /// Not a STUN or TURN URL.
    #[error("{0:?} is not a STUN or TURN URL (stun:, stuns:, turn: or turns:, then host[:port])")]
    NotIceUrl(String),
    /// TURN without the secret its credentials are made with.
    #[error("{0:?} is a TURN server: give the secret it shares with this server (--turn-secret)")]
    TurnWithoutSecret(String),
}

impl IceConfig {
    /// Checks every URL.
    pub fn check(&self) -> Result<(), IceError> {
        for url in &self.urls {
            let scheme = url.split(':').next().unwrap_or("");
            let rest = url.get(scheme.len() + 1..).unwrap_or("");
            if !matches!(scheme, "stun" | "stuns" | "turn" | "turns")
                || rest.is_empty()
                || rest.starts_with('/')
                || rest.contains(char::is_whitespace)
            {
                return Err(IceError::NotIceUrl(url.clone()));
            }
            if is_turn(url) && self.turn_secret.is_none() {
                return Err(IceError::TurnWithoutSecret(url.clone()));
            }
        }
        Ok(())
    }

    /// The servers for one session at `now`: the STUN URLs as one server, the TURN URLs as
    /// another with credentials for `peer` valid for [`IceConfig::turn_ttl`].
    pub fn for_session(&self, peer: &str, now: SystemTime) -> Vec<IceServer> {
        let (turn, stun): (Vec<&String>, Vec<&String>) = self.urls.iter().partition(|u| is_turn(u));
        let mut out = Vec::new();
        if !stun.is_empty() {
            out.push(IceServer {
                urls: stun.into_iter().cloned().collect(),
                username: None,
                credential: None,
            });
        }
        if let (false, Some(secret)) = (turn.is_empty(), &self.turn_secret) {
            let expiry = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_add(self.turn_ttl)
                .as_secs();
            let (username, password) = turn_credentials(secret, expiry, peer);
            out.push(IceServer {
                urls: turn.into_iter().cloned().collect(),
                username: Some(username),
                credential: Some(password),
            });
        }
        out
    }
}

fn is_turn(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

/// The TURN REST user name and password for `user` until `expiry` (Unix seconds).
pub fn turn_credentials(secret: &str, expiry: u64, user: &str) -> (String, String) {
    let username = format!("{expiry}:{user}");
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = hmac::sign(&key, username.as_bytes());
    (username, data_encoding::BASE64.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        // python3 -c "import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
        //   b'north', b'1700000000:42', hashlib.sha1).digest()).decode())"
        let (user, pass) = turn_credentials("north", 1_700_000_000, "42");
        assert_eq!(user, "1700000000:42");
        assert_eq!(pass, "DWX3FI7DiPIpadEYQAZsnZBAagI=");
    }

    #[test]
    fn stun_and_turn_servers_for_a_session() {
        let ice = IceConfig {
            urls: vec![
                "stun:stun.example.org:3478".into(),
                "turn:turn.example.org:3478?transport=udp".into(),
                "turns:turn.example.org:5349".into(),
            ],
            turn_secret: Some("north".into()),
            turn_ttl: Duration::from_secs(3600),
        };
        ice.check().unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_699_996_400);
        let servers = ice.for_session("42", now);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, ["stun:stun.example.org:3478"]);
        assert_eq!(servers[0].username, None);
        assert_eq!(servers[1].urls.len(), 2);
        assert_eq!(servers[1].username.as_deref(), Some("1700000000:42"));
        assert_eq!(
            servers[1].credential.as_deref(),
            Some("DWX3FI7DiPIpadEYQAZsnZBAagI=")
        );
    }

    #[test]
    fn bad_urls_and_turn_without_a_secret_are_refused() {
        let check = |url: &str, secret: Option<&str>| {
            IceConfig {
                urls: vec![url.into()],
                turn_secret: secret.map(Into::into),
                turn_ttl: Duration::from_secs(60),
            }
            .check()
        };
        assert_eq!(
            check("turn:t.example.org", None),
            Err(IceError::TurnWithoutSecret("turn:t.example.org".into()))
        );
        for bad in ["http://x", "stun:", "stun://x", "turn:a b", "x"] {
            assert!(
                matches!(check(bad, Some("s")), Err(IceError::NotIceUrl(_))),
                "{bad}"
            );
        }
        assert_eq!(check("stun:s.example.org", None), Ok(()));
    }
}
