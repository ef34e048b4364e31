//! Identity from the firms' own providers (OIDC), sans-IO: an account's trusted issuers and their
//! validation, what a bearer token says before it is verified (enough to find the account and
//! the key), the JWKS an issuer publishes (only RSA and P-256 signing keys are kept), the
//! verification of an RS256/ES256 token against one of those keys with the injected clock, and
//! the mapping of its claims to a role and to one of the account's users.
//!
//! Algorithm confusion is closed by construction: the algorithm is taken from the account's
//! list (never from the token alone), each algorithm is bound to one key type (RS256 to RSA,
//! ES256 to EC P-256), a JWKS's symmetric (`oct`) keys are dropped when it is parsed, and HS256
//! is verified only with the deployment's own secret, for local and test accounts
//! (`api::tenant`). `jsonwebtoken` (RustCrypto backend) verifies: RSA verification uses only
//! the public key, so RUSTSEC-2023-0071 (timing of `rsa`'s private-key operations) does not
//! apply to anything this crate does with it.

use crate::domain::auth::{AuthError, Role, LEEWAY_SECONDS};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The signing algorithms an account may trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
}

impl SigningAlg {
    pub fn of(a: Algorithm) -> Option<Self> {
        match a {
            Algorithm::RS256 => Some(SigningAlg::RS256),
            Algorithm::ES256 => Some(SigningAlg::ES256),
            _ => None,
        }
    }
    fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::ES256 => Algorithm::ES256,
        }
    }
}

/// How a verified token names one of the account's `users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UserMatch {
    /// The claim holds the user's login email (`users.email`, case-insensitive).
    #[default]
    Email,
    /// The claim holds the user's id in this service (an IdP custom claim).
    UserId,
}

/// Which values of the role claim grant which role (the highest one present wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleValues {
    #[serde(default)]
    pub admin: Vec<String>,
    #[serde(default)]
    pub member: Vec<String>,
    #[serde(default)]
    pub readonly: Vec<String>,
}

impl Default for RoleValues {
    fn default() -> Self {
        RoleValues {
            admin: vec!["admin".into()],
            member: vec!["member".into()],
            readonly: vec!["readonly".into()],
        }
    }
}

/// One trusted OIDC issuer of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// The token's `iss`, exactly (for example `https://login.microsoftonline.com/{tid}/v2.0`).
    pub issuer: String,
    /// The token's `aud` must contain it (the application's client id).
    pub audience: String,
    /// Where the issuer publishes its keys (the `jwks_uri` of its discovery document).
    pub jwks_uri: String,
    /// A non-empty subset of RS256 and ES256.
    pub algorithms: Vec<SigningAlg>,
    /// The claim carrying the role (a string or an array of strings, for example Entra's
    /// `roles`); None: the role of the matched user row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_claim: Option<String>,
    #[serde(default)]
    pub role_values: RoleValues,
    /// The claim naming the user (default `email`).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    #[serde(default)]
    pub user_match: UserMatch,
}

fn default_user_claim() -> String {
    "email".into()
}

/// An account's identity settings (`GET/PUT /v1/settings/identity`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    #[serde(default)]
    pub issuers: Vec<Issuer>,
}

pub const MAX_ISSUERS: usize = 5;
const MAX_URL: usize = 512;
const MAX_NAME: usize = 128;

impl IdentitySettings {
    /// `local`: plain `http://` URLs are allowed (the local mock identity provider).
    pub fn validate(&self, local: bool) -> Result<(), String> {
        if self.issuers.len() > MAX_ISSUERS {
            return Err(format!("at most {MAX_ISSUERS} issuers"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, iss) in self.issuers.iter().enumerate() {
            let at = |m: &str| format!("/issuers/{i}: {m}");
            for (name, url) in [("issuer", &iss.issuer), ("jwks_uri", &iss.jwks_uri)] {
                let ok_scheme =
                    url.starts_with("https://") || (local && url.starts_with("http://"));
                if !ok_scheme || url.len() > MAX_URL || url.chars().any(char::is_whitespace) {
                    return Err(at(&format!(
                        "{name} must be an https:// URL of at most {MAX_URL} characters"
                    )));
                }
            }
            if iss.audience.trim().is_empty() || iss.audience.len() > MAX_URL {
                return Err(at("audience must not be empty"));
            }
            if iss.algorithms.is_empty() {
                return Err(at("algorithms must name RS256, ES256 or both"));
            }
            let names = [Some(&iss.user_claim), iss.role_claim.as_ref()];
            if names
                .into_iter()
                .flatten()
                .any(|n| n.trim().is_empty() || n.len() > MAX_NAME)
            {
                return Err(at("claim names must not be empty"));
            }
            if !seen.insert(issuer_key(&iss.issuer, &iss.audience)) {
                return Err(at("the same issuer and audience appear twice"));
            }
        }
        Ok(())
    }

    pub fn find(&self, iss: &str, aud: &[String]) -> Option<&Issuer> {
        self.issuers
            .iter()
            .find(|i| i.issuer == iss && aud.contains(&i.audience))
    }
}

/// The registry key of an (issuer, audience) pair: one account owns it (`account_issuers`).
pub fn issuer_key(iss: &str, aud: &str) -> String {
    let pair = serde_json::json!([iss, aud]).to_string();
    hex::encode(Sha256::digest(pair.as_bytes()))
}

/// What a token says before it is verified: enough to choose the path, the account and the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub iss: Option<String>,
    pub aud: Vec<String>,
}

/// Read a token's header and payload without verifying anything. `alg: none` and unknown
/// algorithms are refused here (jsonwebtoken's `Algorithm` has no `none`).
pub fn inspect(token: &str) -> Result<Unverified, AuthError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
        .ok_or_else(|| AuthError::Invalid("the payload is not a JSON object".into()))?;
    Ok(Unverified {
        alg: header.alg,
        kid: header.kid,
        iss: payload
            .get("iss")
            .and_then(Value::as_str)
            .map(str::to_owned),
        aud: audiences(payload.get("aud")),
    })
}

fn audiences(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => vec![],
    }
}

/// A public signing key from an issuer's JWKS (RSA, or EC on P-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum PublicKey {
    #[serde(rename = "RSA")]
    Rsa { kid: String, n: String, e: String },
    #[serde(rename = "EC")]
    Ec { kid: String, x: String, y: String },
}

impl PublicKey {
    pub fn kid(&self) -> &str {
        match self {
            PublicKey::Rsa { kid, .. } | PublicKey::Ec { kid, .. } => kid,
        }
    }
    fn serves(&self, alg: SigningAlg) -> bool {
        matches!(
            (self, alg),
            (PublicKey::Rsa { .. }, SigningAlg::RS256) | (PublicKey::Ec { .. }, SigningAlg::ES256)
        )
    }
    fn decoding_key(&self) -> Result<DecodingKey, AuthError> {
        match self {
            PublicKey::Rsa { n, e, .. } => DecodingKey::from_rsa_components(n, e),
            PublicKey::Ec { x, y, .. } => DecodingKey::from_ec_components(x, y),
        }
        .map_err(|e| AuthError::Invalid(format!("the issuer's key is unusable: {e}")))
    }
}

/// The signing keys of a JWKS document. Keys without a `kid`, encryption keys (`use: enc`),
/// symmetric (`oct`) keys, other curves and other key types are dropped; a key whose `alg`
/// names anything but RS256/ES256 is dropped too.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<PublicKey>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let keys = v["keys"]
        .as_array()
        .ok_or_else(|| "JWKS has no `keys` array".to_string())?;
    let s = |k: &Value, f: &str| k[f].as_str().map(str::to_owned);
    Ok(keys
        .iter()
        .filter(|k| k["use"].as_str().is_none_or(|u| u == "sig"))
        .filter_map(|k| {
            let kid = s(k, "kid")?;
            let alg = k["alg"].as_str();
            match k["kty"].as_str()? {
                "RSA" if alg.is_none_or(|a| a == "RS256") => Some(PublicKey::Rsa {
                    kid,
                    n: s(k, "n")?,
                    e: s(k, "e")?,
                }),
                "EC" if k["crv"].as_str() == Some("P-256") && alg.is_none_or(|a| a == "ES256") => {
                    Some(PublicKey::Ec {
                        kid,
                        x: s(k, "x")?,
                        y: s(k, "y")?,
                    })
                }
                _ => None,
            }
        })
        .collect())
}

/// Verify an RS256/ES256 token of `issuer` with `keys` at `now`: the token's algorithm must be
/// in the issuer's list, its `kid` must name a key of that algorithm's type, signature, `iss`,
/// `aud` must hold, `exp` is required, and `exp`/`nbf`/`iat` are checked against the injected
/// clock with [`LEEWAY_SECONDS`]. [`AuthError::UnknownKey`] when no key has the `kid` (the caller
/// may refetch the JWKS once).
pub fn verify(
    token: &str,
    issuer: &Issuer,
    keys: &[PublicKey],
    now: OffsetDateTime,
) -> Result<Map<String, Value>, AuthError> {
    let u = inspect(token)?;
    let alg = SigningAlg::of(u.alg)
        .filter(|a| issuer.algorithms.contains(a))
        .ok_or_else(|| {
            AuthError::Invalid(format!(
                "algorithm {:?} is not one this account trusts",
                u.alg
            ))
        })?;
    let kid = u
        .kid
        .ok_or_else(|| AuthError::Invalid("the token names no key (kid)".into()))?;
    let key = keys
        .iter()
        .find(|k| k.kid() == kid && k.serves(alg))
        .ok_or(AuthError::UnknownKey)?;
    let mut v = Validation::new(alg.algorithm());
    v.validate_exp = false; // checked below against the injected clock
    v.validate_nbf = false;
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v.set_issuer(&[&issuer.issuer]);
    v.set_audience(&[&issuer.audience]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding_key()?, &v)
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
    let c = data.claims;
    let t = now.unix_timestamp();
    let num = |f: &str| c.get(f).and_then(Value::as_i64);
    let exp = num("exp").ok_or_else(|| AuthError::Invalid("exp is not a number".into()))?;
    if exp + LEEWAY_SECONDS < t {
        return Err(AuthError::Expired);
    }
    if [num("iat"), num("nbf")]
        .into_iter()
        .flatten()
        .any(|at| at - LEEWAY_SECONDS > t)
    {
        return Err(AuthError::NotYetValid);
    }
    Ok(c)
}

/// The role the token's role claim grants (the highest listed value present), or None.
pub fn role(claims: &Map<String, Value>, issuer: &Issuer) -> Option<Role> {
    let name = issuer.role_claim.as_ref()?;
    let values: Vec<&str> = match claims.get(name) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let rv = &issuer.role_values;
    [
        (Role::Admin, &rv.admin),
        (Role::Member, &rv.member),
        (Role::Readonly, &rv.readonly),
    ]
    .into_iter()
    .find(|(_, granted)| granted.iter().any(|g| values.contains(&g.as_str())))
    .map(|(r, _)| r)
}

/// The user the token names (the value of the issuer's user claim).
pub fn user_key<'a>(claims: &'a Map<String, Value>, issuer: &Issuer) -> Option<&'a str> {
    claims
        .get(&issuer.user_claim)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
#[path = "identity/tests.rs"]
pub(crate) mod tests;
