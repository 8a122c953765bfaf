//! JWT access tokens: verified with the `jsonwebtoken` crate against shared secrets
//! (HS256, by `kid`) or JWKS keys (ES256, RS256); `exp` (required) and `nbf` checked
//! here against the caller's clock, so each refusal says which rule failed.

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{Denied, Grants};

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Expiry, unix seconds. Required.
    pub exp: u64,
    /// Not before, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The member's nickname, fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The grants (LiveKit's claim name).
    #[serde(default)]
    pub video: Grants,
}

/// One verification key.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The keys tokens may be signed with.
#[derive(Clone, Default)]
pub struct JwtKeys {
    keys: Vec<Key>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|k| (&k.kid, k.algorithm)).collect();
        f.debug_struct("JwtKeys").field("keys", &kids).finish()
    }
}

impl JwtKeys {
    /// A shared secret for HS256 tokens, named `kid` (or the one for tokens naming none).
    pub fn add_secret(&mut self, kid: Option<&str>, secret: &[u8]) -> Result<(), String> {
        if secret.len() < 32 {
            return Err("a JWT secret must be at least 32 bytes".into());
        }
        let key = DecodingKey::from_secret(secret).map_err(|e| e.to_string())?;
        self.keys.push(Key {
            kid: kid.map(str::to_owned),
            algorithm: Algorithm::HS256,
            key,
        });
        Ok(())
    }

    /// Every key of a JWKS document (`{"keys": [...]}`): EC keys verify ES256, RSA keys
    /// RS256. Each needs a `kid`.
    pub fn add_jwks(&mut self, json: &str) -> Result<(), String> {
        let set: JwkSet =
            serde_json::from_str(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        for jwk in &set.keys {
            let kid = jwk
                .common
                .key_id
                .clone()
                .ok_or("every key of the JWKS needs a kid")?;
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                _ => return Err(format!("key {kid}: only EC (ES256) and RSA (RS256) keys")),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid}: {e}"))?;
            self.keys.push(Key {
                kid: Some(kid),
                algorithm,
                key,
            });
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The token's claims, if it is signed by one of the keys and valid at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, Denied> {
        let header = read_header(token)?;
        let key = match &header.kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                .ok_or_else(|| {
                    Denied(format!(
                        "the access token is signed with key {kid}, which this server does not know"
                    ))
                })?,
            None => match self.keys.iter().find(|k| k.kid.is_none()) {
                Some(k) => k,
                None => {
                    return Err(Denied(
                        "the access token names no key (kid), and this server has no default key"
                            .into(),
                    ));
                }
            },
        };
        if header.alg != alg_name(key.algorithm) {
            return Err(Denied(format!(
                "the access token is signed with {}, but its key is for {}",
                header.alg,
                alg_name(key.algorithm)
            )));
        }
        // The signature by the crate; the times below, by our clock, with our words.
        let mut validation = Validation::new(key.algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    Denied("the access token's signature does not verify".into())
                }
                _ => Denied(format!("the access token cannot be read: {e}")),
            })?;
        if data.claims.get("exp").is_none() {
            return Err(Denied("the access token has no expiry (exp)".into()));
        }
        let claims: Claims = serde_json::from_value(data.claims)
            .map_err(|e| Denied(format!("the access token's claims cannot be read: {e}")))?;
        if now >= claims.exp {
            return Err(Denied(format!(
                "the access token expired {} s ago",
                now - claims.exp
            )));
        }
        if let Some(nbf) = claims.nbf
            && now < nbf
        {
            return Err(Denied(format!(
                "the access token is not valid for another {} s",
                nbf - now
            )));
        }
        Ok(claims)
    }
}

/// The parts of a token's header that choose its key, read before the signature so
/// that `alg: none` and an unknown `kid` get sentences of their own.
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

fn read_header(token: &str) -> Result<RawHeader, Denied> {
    let not_jwt = || Denied("the access token is not a JWT".into());
    let first = token.split('.').next().ok_or_else(not_jwt)?;
    let bytes = base64url(first).ok_or_else(not_jwt)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| not_jwt())?;
    let alg = v.get("alg").and_then(|a| a.as_str()).ok_or_else(not_jwt)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(Denied(
            "the access token is not signed (alg: none); this server refuses it".into(),
        ));
    }
    Ok(RawHeader {
        alg: alg.to_owned(),
        kid: v.get("kid").and_then(|k| k.as_str()).map(str::to_owned),
    })
}

fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::HS256 => "HS256",
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        _ => "another algorithm",
    }
}

/// Unpadded base64url, as JWTs use.
fn base64url(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.as_bytes();
    if bytes.len() % 4 == 1 || bytes.len() > 8192 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..chunk.len()]);
    }
    Some(out)
}

/// A token for `claims`, signed HS256 with `secret` and naming `kid` (for
/// `peer-calls token`, and tests).
pub fn mint(secret: &[u8], kid: Option<&str>, claims: &Claims) -> Result<String, String> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_secret(secret).map_err(|e| e.to_string())?;
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Provider, Source};

    const SECRET: &[u8] = b"a secret of at least thirty-two bytes!!";
    const NOW: u64 = 1_800_000_000;

    fn keys() -> JwtKeys {
        let mut k = JwtKeys::default();
        k.add_secret(None, SECRET).unwrap();
        k.add_secret(Some("2026-12"), b"the next secret, rotated in, 32+ bytes")
            .unwrap();
        k
    }

    fn claims(room: &str) -> Claims {
        Claims {
            exp: NOW + 3600,
            nbf: None,
            name: Some("Ada".into()),
            video: Grants {
                room: Some(room.into()),
                room_join: true,
                room_create: true,
                can_publish: Some(false),
                ..Grants::default()
            },
        }
    }

    fn denied(token: &str, room: &str) -> String {
        Provider::Jwt(keys())
            .admit(room, Some(token), false, NOW)
            .unwrap_err()
            .0
    }

    #[test]
    fn a_good_token_admits_with_its_grants_and_name() {
        let t = mint(SECRET, None, &claims("r")).unwrap();
        let a = Provider::Jwt(keys())
            .admit("r", Some(&t), false, NOW)
            .unwrap();
        assert_eq!(a.name.as_deref(), Some("Ada"));
        assert!(!a.grants.may_publish(Source::Camera));
        assert!(a.grants.may_subscribe());
        // Signed with the rotated key, named by kid.
        let t = mint(
            b"the next secret, rotated in, 32+ bytes",
            Some("2026-12"),
            &claims("r"),
        )
        .unwrap();
        assert!(
            Provider::Jwt(keys())
                .admit("r", Some(&t), false, NOW)
                .is_ok()
        );
    }

    #[test]
    fn each_bad_token_is_refused_with_its_reason() {
        let good = mint(SECRET, None, &claims("r")).unwrap();
        assert!(denied(&good, "other").contains("for room r, not other"));
        let mut expired = claims("r");
        expired.exp = NOW - 10;
        assert!(denied(&mint(SECRET, None, &expired).unwrap(), "r").contains("expired 10 s ago"));
        let mut early = claims("r");
        early.nbf = Some(NOW + 60);
        assert!(
            denied(&mint(SECRET, None, &early).unwrap(), "r")
                .contains("not valid for another 60 s")
        );
        let forged = mint(b"somebody else's secret, 32 bytes long", None, &claims("r")).unwrap();
        assert!(denied(&forged, "r").contains("signature does not verify"));
        let unknown = mint(SECRET, Some("old"), &claims("r")).unwrap();
        assert!(denied(&unknown, "r").contains("key old, which this server does not know"));
        // alg: none, with the claims of a good token.
        let body = good.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{body}.");
        assert!(denied(&none, "r").contains("alg: none"));
        assert!(denied("garbage", "r").contains("not a JWT"));
        let no_token = Provider::Jwt(keys())
            .admit("r", None, false, NOW)
            .unwrap_err();
        assert!(no_token.0.contains("access token only"));
        // No exp.
        let h = good.split('.').next().unwrap();
        let no_exp = format!("{h}.eyJ2aWRlbyI6eyJyb29tSm9pbiI6dHJ1ZX19.x");
        assert!(!denied(&no_exp, "r").is_empty());
    }

    /// Unpadded base64url, for the test's JWK.
    fn b64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for c in bytes.chunks(3) {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn an_es256_token_verifies_with_its_jwks_key_and_not_with_another() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let public = pair.public_key().as_ref(); // 0x04 || X || Y
        let jwks = format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"idp-1","x":"{}","y":"{}"}}]}}"#,
            b64(&public[1..33]),
            b64(&public[33..65])
        );
        let mut keys = JwtKeys::default();
        keys.add_jwks(&jwks).unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("idp-1".into());
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let token = jsonwebtoken::encode(&header, &claims("r"), &key).unwrap();
        let c = keys.verify(&token, NOW).unwrap();
        assert_eq!(c.name.as_deref(), Some("Ada"));
        // The same claims HS256-signed under that kid: the key is for ES256.
        let wrong = mint(SECRET, Some("idp-1"), &claims("r")).unwrap();
        assert!(
            keys.verify(&wrong, NOW)
                .unwrap_err()
                .0
                .contains("its key is for ES256")
        );
        assert!(
            JwtKeys::default()
                .add_jwks(r#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}"#)
                .is_err()
        );
    }

    #[test]
    fn secrets_are_long_enough_and_base64url_reads_what_jwts_write() {
        assert!(JwtKeys::default().add_secret(None, b"short").is_err());
        assert_eq!(base64url("eyJhIjoxfQ").unwrap(), br#"{"a":1}"#);
        assert_eq!(base64url("YQ").unwrap(), b"a");
        assert!(base64url("a").is_none());
        assert!(base64url("a*bc").is_none());
    }
}
