//! Who may join a room and what they may do there (issue #21): the grants a member
//! holds, and the providers that issue them (`--auth`).
//!
//! - [`Provider::Open`] (the default): every room is open to anyone with its link, with
//!   every grant but moderation: what the server did before providers existed.
//! - [`Provider::Jwt`]: an access token (a JWT) in the `join` names the grants. Tokens are
//!   signed with a shared secret (HS256, several keys by `kid` for rotation) or with keys
//!   from a JWKS file (ES256, RS256); `alg: none`, a wrong `kid`, a bad signature, an
//!   expired or not yet valid token and a token for another room are each refused with a
//!   sentence that says which ([`Denied`]).
//! - [`Provider::Webhook`]: an operator's service is asked (`webhook.rs`).
//!
//! The grants are named like LiveKit's video grants, in the token's `video` claim, so
//! operators recognise them; `name` fixes the member's nickname.

mod grants;
mod jwt;
pub mod webhook;

pub use grants::Grants;
pub use jwt::{Claims, JwtKeys, mint};
pub use protocol::Source;
pub use webhook::{Question, Webhook, WebhookConfig};

/// Why a join is refused, in a sentence for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Denied {}

/// What a member may do in the room it joins, and the nickname the token fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub grants: Grants,
    /// The token's `name`: the member's nickname, which the client cannot change.
    pub name: Option<String>,
}

/// Where grants come from.
#[derive(Debug, Clone, Default)]
pub enum Provider {
    /// Open rooms: anyone with the link joins with every grant but moderation.
    #[default]
    Open,
    /// JWT access tokens.
    Jwt(JwtKeys),
    /// An operator's service, asked over HTTP: its verdict comes later, from a
    /// [`Webhook`], never from [`Provider::admit`].
    Webhook(WebhookConfig),
}

impl Provider {
    /// The service to ask, for the webhook provider.
    pub fn webhook(&self) -> Option<&WebhookConfig> {
        match self {
            Provider::Webhook(c) => Some(c),
            _ => None,
        }
    }

    /// Open rooms: no provider.
    pub fn is_open(&self) -> bool {
        matches!(self, Provider::Open)
    }

    /// Whether `access_token` lets its bearer into `room` at `now` (unix seconds), and
    /// with what; `creating`: nobody is in the room yet.
    pub fn admit(
        &self,
        room: &str,
        access_token: Option<&str>,
        creating: bool,
        now: u64,
    ) -> Result<Admission, Denied> {
        match self {
            Provider::Open => Ok(Admission {
                grants: Grants::open(),
                name: None,
            }),
            Provider::Jwt(keys) => {
                let token = access_token.filter(|t| !t.is_empty()).ok_or_else(|| {
                    Denied("this server admits members with an access token only; the link you used has none".into())
                })?;
                let claims = keys.verify(token, now)?;
                claims.video.admits(room, creating)?;
                Ok(Admission {
                    grants: claims.video,
                    name: claims.name.filter(|n| !n.is_empty()),
                })
            }
            Provider::Webhook(_) => Err(Denied(
                "the permissions service has not been asked about this join".into(),
            )),
        }
    }
}
