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
    check_times(data.claims, now)
}

/// The deployment's own HS256 tokens, checked in one pass over the token: `Some` only when the
/// general path (`identity::inspect`, then [`verify`]) would reach the same answer. The header
/// is exactly `{"alg":"HS256"}` (with `typ` or not), the signature is the secret's HMAC of
/// `header.payload`, the payload is a JSON object of [`Claims`]' fields and no other (`exp` not
/// negative), and `iss`/`aud` are the configured ones; the times are then checked as [`verify`]
/// checks them. Anything else is `None`: the caller takes the general path, which decides and
/// words every refusal. That path decodes the token's header and payload three times and
/// builds a `Value` map of the claims; this one is the path of every request of the local
/// stack and test accounts (property test: `minted_fast_path_agrees_with_verify`).
pub fn verify_minted(
    token: &str,
    cfg: &JwtConfig,
    now: OffsetDateTime,
) -> Option<Result<Claims, AuthError>> {
    use base64::Engine;
    use hmac::Mac;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct MintedHeader<'a> {
        alg: &'a str,
        /// Allowed, not read (jsonwebtoken does not read it either).
        #[serde(default, borrow, rename = "typ")]
        _typ: Option<&'a str>,
    }
    /// [`Claims`] and nothing else: the general path reads an unknown claim's value too
    /// (`identity::inspect` parses the whole payload into a map), and refuses some that a
    /// skipped field would let through (`1e400`, a lone surrogate, nesting past its limit).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct MintedClaims {
        sub: Uuid,
        account_id: Uuid,
        role: Role,
        exp: i64,
        iat: i64,
        #[serde(default)]
        nbf: Option<i64>,
        iss: String,
        aud: String,
    }
    if cfg.secret.is_empty() {
        return None;
    }
    let (signed, signature) = token.rsplit_once('.')?;
    let (header, payload) = signed.split_once('.')?;
    if payload.contains('.') {
        return None;
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.decode(header).ok()?;
    let h: MintedHeader = serde_json::from_slice(&header).ok()?;
    if h.alg != "HS256" {
        return None;
    }
    let signature = b64.decode(signature).ok()?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(cfg.secret.as_bytes()).ok()?;
    mac.update(signed.as_bytes());
    mac.verify_slice(&signature).ok()?;
    let payload = b64.decode(payload).ok()?;
    // A JSON array would also parse as the struct, field by field: only an object is claims.
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let c: MintedClaims = serde_json::from_slice(&payload).ok()?;
    // jsonwebtoken reads `exp` as a u64: a negative one is "Missing required claim: exp".
    if c.exp < 0 || c.iss != cfg.issuer || c.aud != cfg.audience {
        return None;
    }
    let claims = Claims {
        sub: c.sub,
        account_id: c.account_id,
        role: c.role,
        exp: c.exp,
        iat: c.iat,
        nbf: c.nbf,
        iss: c.iss,
        aud: c.aud,
    };
    Some(check_times(claims, now))
}

/// `exp`, `iat` and `nbf` against `now`, with [`LEEWAY_SECONDS`].
fn check_times(c: Claims, now: OffsetDateTime) -> Result<Claims, AuthError> {
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

    /// A token signed with `secret` over the given header and payload texts.
    fn signed(header: &str, payload: impl AsRef<[u8]>, secret: &str) -> String {
        use base64::Engine;
        use hmac::Mac;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let msg = format!("{}.{}", b64.encode(header), b64.encode(payload.as_ref()));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(msg.as_bytes());
        format!("{msg}.{}", b64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn minted_fast_path_takes_the_deployments_own_tokens() {
        let t = mint(&claims(NOW), &cfg()).unwrap();
        assert_eq!(verify_minted(&t, &cfg(), NOW), Some(Ok(claims(NOW))));
        let late = NOW + time::Duration::hours(2);
        assert_eq!(
            verify_minted(&t, &cfg(), late),
            Some(Err(AuthError::Expired))
        );
        // What it does not decide goes to the general path.
        let c = serde_json::to_string(&claims(NOW)).unwrap();
        for (header, payload) in [
            (r#"{"alg":"HS256","kid":"k1"}"#, c.clone()),
            (r#"{"alg":"HS384"}"#, c.clone()),
            (r#"{"alg":"HS256"}"#, format!("[{c}]")),
            (
                r#"{"alg":"HS256"}"#,
                c.replace("https://issuer.test", "https://evil.test"),
            ),
        ] {
            assert_eq!(
                verify_minted(&signed(header, &payload, "s3cret"), &cfg(), NOW),
                None
            );
        }
        assert_eq!(
            verify_minted(&signed(r#"{"alg":"HS256"}"#, &c, "other"), &cfg(), NOW),
            None
        );
        // An unknown claim whose value the general path refuses (not UTF-8).
        let mut raw = c.clone().into_bytes();
        raw.pop();
        raw.extend_from_slice(b",\"x\":\"\xff\"}");
        let t = signed(r#"{"alg":"HS256"}"#, &raw, "s3cret");
        assert_eq!(verify_minted(&t, &cfg(), NOW), None);
        assert!(general(&t, &cfg(), NOW).is_err());
    }

    /// What the API decides of a token without the fast path: `identity::inspect`, then
    /// [`verify`].
    fn general(token: &str, cfg: &JwtConfig, now: OffsetDateTime) -> Result<Claims, AuthError> {
        crate::domain::identity::inspect(token).and_then(|_| verify(token, cfg, now))
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(1024))]
        /// Whatever the fast path decides, the general path (`inspect`, then `verify`) decides
        /// the same: the fast path never accepts a token it refuses, nor refuses one differently.
        #[test]
        fn minted_fast_path_agrees_with_verify(
            // Mostly well-formed, so the fast path decides often: about one case in twenty.
            header in proptest::sample::select(vec![
                r#"{"alg":"HS256","typ":"JWT"}"#, r#"{"alg":"HS256","typ":"JWT"}"#,
                r#"{"alg":"HS256","typ":"JWT"}"#, r#"{"alg":"HS256","typ":"JWT"}"#,
                r#"{"alg":"HS256"}"#, r#"{"alg":"HS256"}"#, r#"{"typ":"JWT","alg":"HS256"}"#,
                r#"{"alg":"HS256","alg":"HS256"}"#, r#"{"alg":"none"}"#, r#"{"alg":"HS256","typ":1}"#,
                r#" {"alg":"HS256"}"#, r#"{"alg":"HS\u0032\u0035\u0036"}"#, r#"[]"#, r#"{"alg":"HS256","jwk":{}}"#,
            ]),
            secret in proptest::sample::select(vec!["s3cret", "s3cret", "s3cret", "other", ""]),
            iss in proptest::sample::select(vec!["https://issuer.test", "https://issuer.test", "https://issuer.test", "https://evil.test", ""]),
            aud in proptest::sample::select(vec![r#""clientdocs-api""#, r#""clientdocs-api""#, r#""clientdocs-api""#, r#""clientdocs-api""#, r#"["clientdocs-api"]"#, r#""x""#, "null"]),
            role in proptest::sample::select(vec!["admin", "readonly", "root"]),
            exp in proptest::sample::select(vec![Some(-4000i64), Some(-61), Some(0), Some(3600), None]),
            iat in -4000i64..4000,
            nbf in proptest::option::of(-4000i64..4000),
            extra in proptest::sample::select(vec![
                String::new(), String::new(), String::new(), r#","x":1"#.into(), r#","sub":"dup""#.into(),
                r#","exp":1.5"#.into(), r#","x":1e400"#.into(), r#","x":"\ud800""#.into(),
                format!(r#","x":{}1{}"#, "[".repeat(200), "]".repeat(200)), r#","nbf":-5"#.into(),
            ]),
            wrap in proptest::sample::select(vec!["{}", "{}", " {} ", "[{}]"]),
        ) {
            let t = NOW.unix_timestamp();
            let nbf = nbf.map(|n| format!(r#","nbf":{}"#, t + n)).unwrap_or_default();
            let body = format!(
                r#""sub":"{}","account_id":"{}","role":"{role}","exp":{},"iat":{}{nbf},"iss":"{iss}","aud":{aud}{extra}"#,
                Uuid::from_u128(1), Uuid::from_u128(2), exp.map_or(-5, |e| t + e), t + iat
            );
            let payload = wrap.replace("{}", &format!("{{{body}}}"));
            let token = signed(header, &payload, secret);
            let mut c = cfg();
            if secret.is_empty() { c.secret = String::new(); }
            if let Some(fast) = verify_minted(&token, &c, NOW) {
                proptest::prop_assert_eq!(fast, general(&token, &c, NOW));
            }
        }
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
