//! Bearer JWTs. This file: HS256 with the deployment's secret (local and test accounts only;
//! `api::tenant` enforces it), RS256/ES256 of the firms' own providers are in
//! `domain::identity`. Signature, `iss` and `aud` are checked by
//! `jsonwebtoken` (pure-Rust backend, builds for wasm32); `exp`/`iat`/`nbf` against the
//! injected clock with 60 s leeway, so the checks are deterministic in tests. Also the operator secret's
//! constant-time check ([`authorize_secret`]).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub const LEEWAY_SECONDS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Readonly,
    Member,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Readonly => "readonly",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
    pub fn can_write(self) -> bool {
        self >= Role::Member
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub account_id: Uuid,
    pub role: Role,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub iss: String,
    pub aud: String,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub secret: String,
    pub issuer: String,
    pub audience: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed Authorization header (expected `Bearer <jwt>`)")]
    Malformed,
    #[error("token is invalid: {0}")]
    Invalid(String),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("signing is not configured")]
    NotConfigured,
    /// The token names a key its issuer does not (or no longer) publish.
    #[error("the token's signing key (kid) is not one its issuer publishes")]
    UnknownKey,
}

/// Extract the token from an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let h = header.ok_or(AuthError::Missing)?;
    let (scheme, token) = h.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token.trim())
}

/// Verify an HS256 token with the deployment's secret (nothing else is ever an HMAC key).
pub fn verify(token: &str, cfg: &JwtConfig, now: OffsetDateTime) -> Result<Claims, AuthError> {
    if cfg.secret.is_empty() {
        return Err(AuthError::NotConfigured);
    }
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_exp = false; // checked below against the injected clock
    v.validate_nbf = false;
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    v.set_issuer(&[&cfg.issuer]);
    v.set_audience(&[&cfg.audience]);
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(cfg.secret.as_bytes()), &v)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
    let c = data.claims;
    let t = now.unix_timestamp();
    if c.exp + LEEWAY_SECONDS < t {
        return Err(AuthError::Expired);
    }
    if c.iat - LEEWAY_SECONDS > t || c.nbf.is_some_and(|nbf| nbf - LEEWAY_SECONDS > t) {
        return Err(AuthError::NotYetValid);
    }
    Ok(c)
}

pub fn mint(claims: &Claims, cfg: &JwtConfig) -> Result<String, AuthError> {
    if cfg.secret.is_empty() {
        return Err(AuthError::NotConfigured);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(cfg.secret.as_bytes()),
    )
    .map_err(|e| AuthError::Invalid(e.to_string()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The operator secret as a bearer token in `authorization` (constant-time comparison).
pub fn authorize_secret(secret: &str, authorization: Option<&str>) -> Result<(), AuthError> {
    let token = bearer(authorization)?;
    if secret.is_empty() || !constant_time_eq(token.as_bytes(), secret.as_bytes()) {
        return Err(AuthError::Invalid("not an operator credential".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn cfg() -> JwtConfig {
        JwtConfig {
            secret: "s3cret".into(),
            issuer: "https://issuer.test".into(),
            audience: "clientdocs-api".into(),
        }
    }

    fn claims(now: OffsetDateTime) -> Claims {
        Claims {
            sub: Uuid::from_u128(1),
            account_id: Uuid::from_u128(2),
            role: Role::Member,
            exp: now.unix_timestamp() + 3600,
            iat: now.unix_timestamp(),
            nbf: None,
            iss: cfg().issuer,
            aud: cfg().audience,
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);

    #[test]
    fn accepts_a_token_it_minted() {
        let t = mint(&claims(NOW), &cfg()).unwrap();
        assert_eq!(verify(&t, &cfg(), NOW).unwrap(), claims(NOW));
    }

    #[test]
    fn rejects_token_signed_with_another_secret() {
        let mut other = cfg();
        other.secret = "other".into();
        let t = mint(&claims(NOW), &other).unwrap();
        assert!(matches!(
            verify(&t, &cfg(), NOW),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn rejects_wrong_audience_or_issuer() {
        let mut c = claims(NOW);
        c.aud = "someone-else".into();
        assert!(verify(&mint(&c, &cfg()).unwrap(), &cfg(), NOW).is_err());
        let mut c = claims(NOW);
        c.iss = "https://evil.test".into();
        assert!(verify(&mint(&c, &cfg()).unwrap(), &cfg(), NOW).is_err());
    }

    #[test]
    fn expiry_allows_sixty_seconds_of_clock_skew_and_no_more() {
        let t = mint(&claims(NOW), &cfg()).unwrap();
        let exp = NOW + time::Duration::hours(1);
        assert!(verify(&t, &cfg(), exp + time::Duration::seconds(60)).is_ok());
        assert_eq!(
            verify(&t, &cfg(), exp + time::Duration::seconds(61)),
            Err(AuthError::Expired)
        );
        assert!(verify(&t, &cfg(), NOW - time::Duration::seconds(60)).is_ok());
        assert_eq!(
            verify(&t, &cfg(), NOW - time::Duration::seconds(61)),
            Err(AuthError::NotYetValid)
        );
    }

    #[test]
    fn rejects_unsigned_alg_none_token() {
        // {"alg":"none"} . {claims} . (empty signature)
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let t = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(serde_json::to_vec(&claims(NOW)).unwrap())
        );
        assert!(verify(&t, &cfg(), NOW).is_err());
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer(None), Err(AuthError::Missing));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::Malformed));
        assert_eq!(bearer(Some("Bearer")), Err(AuthError::Malformed));
    }

    #[test]
    fn readonly_never_writes() {
        assert!(!Role::Readonly.can_write());
        assert!(Role::Member.can_write());
        assert!(Role::Admin.can_write());
    }
}
