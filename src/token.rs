//! `peer-calls token`: prints an access token for a server with `--auth jwt`, for
//! testing and operations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use clap::Args;

/// The token's grants and lifetime.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The secret the server checks tokens with (its --jwt-secret; `KID=SECRET` names
    /// the key). Prefer the environment variable.
    #[arg(long, env = "PEERCALLS_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// The room the token is for.
    #[arg(long)]
    room: String,
    /// The member's nickname, fixed.
    #[arg(long)]
    name: Option<String>,
    /// A grant other than the defaults (roomJoin and roomCreate true, the rest as LiveKit
    /// reads them absent: publish, subscribe and data allowed): `canPublish=false`,
    /// `canPublishSources=camera,microphone`, `hidden=true`, `roomAdmin=true`. Repeatable.
    #[arg(long = "grant", value_name = "NAME=VALUE")]
    grants: Vec<String>,
    /// How long the token is valid: `90s`, `30m`, `1h`, `7d`.
    #[arg(long, default_value = "1h")]
    ttl: String,
}

pub(crate) fn run(args: &TokenArgs) -> anyhow::Result<()> {
    let (kid, secret) = crate::cli::split_kid(&args.secret);
    if secret.len() < 32 {
        return Err(anyhow!(
            "--secret: must be at least 32 bytes, as the server's"
        ));
    }
    let mut video = serde_json::json!({"room": args.room, "roomJoin": true, "roomCreate": true});
    for g in &args.grants {
        let (name, value) = g
            .split_once('=')
            .ok_or_else(|| anyhow!("--grant {g}: NAME=VALUE, for example canPublish=false"))?;
        let value = match name {
            "canPublishSources" => serde_json::json!(value.split(',').collect::<Vec<_>>()),
            _ => serde_json::json!(
                value
                    .parse::<bool>()
                    .map_err(|_| anyhow!("--grant {g}: the value is true or false"))?
            ),
        };
        video[name] = value;
    }
    let grants: auth::Grants =
        serde_json::from_value(video.clone()).map_err(|e| anyhow!("--grant: {e}"))?;
    let known = serde_json::to_value(&grants)?;
    for name in video.as_object().map(|o| o.keys()).into_iter().flatten() {
        if known.get(name).is_none() && name != "room" {
            return Err(anyhow!("--grant {name}: not a grant this server knows"));
        }
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = auth::Claims {
        exp: now + parse_ttl(&args.ttl)?.as_secs(),
        nbf: None,
        name: args.name.clone(),
        video: grants,
    };
    let token = auth::mint(secret.as_bytes(), kid, &claims).map_err(|e| anyhow!("{e}"))?;
    println!(
        "valid until unix time {} for room {}",
        claims.exp, args.room
    );
    println!("{token}");
    Ok(())
}

/// `90s`, `30m`, `1h`, `7d`.
fn parse_ttl(s: &str) -> anyhow::Result<Duration> {
    let bad = || anyhow!("--ttl {s}: a number and s, m, h or d, for example 1h");
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}
