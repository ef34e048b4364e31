//! The operator plane, pure: who the operator is (from a verified Cloudflare Access assertion,
//! or locally from the dev credential), how an Access application is an RS256 issuer, and the
//! links of the platform audit trail (one per operator action, hash-chained like the tenants'
//! trail: `hash = SHA-256(prev_hash || canonical entry)`, from [`audit::GENESIS_HASH`]).

use crate::domain::audit::{self, ChainHead};
use crate::domain::auth::AuthError;
use crate::domain::identity::{self, Issuer, PublicKey, RoleValues, SigningAlg, UserMatch};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The header Cloudflare Access adds to every request it lets through.
pub const ACCESS_ASSERTION_HEADER: &str = "cf-access-jwt-assertion";

/// The operator every local dev-credential request is attributed to.
pub const LOCAL_OPERATOR_EMAIL: &str = "local-operator@ops.localhost";
pub const LOCAL_OPERATOR_SUB: &str = "local-dev-credential";

/// A Cloudflare Access application: its team domain (`<team>.cloudflareaccess.com`) and its
/// audience (AUD) tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessApp {
    pub team_domain: String,
    pub audience: String,
}

impl AccessApp {
    /// None unless both are set (an empty variable is no configuration).
    pub fn new(team_domain: &str, audience: &str) -> Option<Self> {
        let team = team_domain
            .trim()
            .trim_start_matches("https://")
            .trim_end_matches('/');
        let aud = audience.trim();
        (!team.is_empty() && !aud.is_empty()).then(|| Self {
            team_domain: team.to_string(),
            audience: aud.to_string(),
        })
    }

    /// The issuer Access tokens name and where its keys are (`/cdn-cgi/access/certs`). RS256
    /// only: Access signs with RSA keys, so an ES256, HS256 or `none` token never verifies.
    pub fn issuer(&self) -> Issuer {
        Issuer {
            issuer: format!("https://{}", self.team_domain),
            audience: self.audience.clone(),
            jwks_uri: format!("https://{}/cdn-cgi/access/certs", self.team_domain),
            algorithms: vec![SigningAlg::RS256],
            role_claim: None,
            role_values: RoleValues::default(),
            user_claim: "email".into(),
            user_match: UserMatch::default(),
        }
    }
}

/// How an operator proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    CloudflareAccess,
    LocalDevCredential,
}

/// The operator behind a request, as the platform audit trail records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// The Access identity's email; for a service token, its common name (client id).
    pub email: String,
    pub sub: String,
    pub via: Via,
}

impl Operator {
    pub fn local() -> Self {
        Self {
            email: LOCAL_OPERATOR_EMAIL.into(),
            sub: LOCAL_OPERATOR_SUB.into(),
            via: Via::LocalDevCredential,
        }
    }

    /// How the tenants' trails name an operator's change of their account.
    pub fn actor_id(&self) -> String {
        format!("operator:{}", self.email)
    }
}

/// Verify an Access assertion with the team's keys at `now` (signature RS256, `iss`, `aud`,
/// `exp` required) and take the operator from it: `email` (a user), else `common_name` (a
/// service token), and `sub`; an assertion naming neither is refused.
pub fn verify_access(
    app: &AccessApp,
    assertion: &str,
    keys: &[PublicKey],
    now: OffsetDateTime,
) -> Result<Operator, AuthError> {
    let claims = identity::verify(assertion, &app.issuer(), keys, now)?;
    operator_of(&claims)
}

fn operator_of(claims: &Map<String, Value>) -> Result<Operator, AuthError> {
    let s = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && v.len() <= 320)
    };
    let email = s("email")
        .or_else(|| s("common_name"))
        .ok_or_else(|| AuthError::Invalid("the assertion names no email or common_name".into()))?;
    Ok(Operator {
        email: email.to_string(),
        sub: s("sub").unwrap_or(email).to_string(),
        via: Via::CloudflareAccess,
    })
}

/// What an action was done to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// One link of the platform audit trail: an operator action, recorded before it is carried
/// out (an action the trail cannot record is not carried out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformEntry {
    pub seq: i64,
    pub operator: Operator,
    /// The operator route, for example `account.deactivate`.
    pub action: String,
    pub target: Target,
    /// The request's parameters (its JSON body), as the operator sent them.
    pub details: Value,
    pub request_id: String,
    pub time: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What a new link says (the trail gives it its place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub operator: Operator,
    pub action: String,
    pub target: Target,
    pub details: Value,
    pub request_id: String,
}

impl PlatformEntry {
    /// The link after `head`.
    pub fn next(head: &ChainHead, a: &Action, now: OffsetDateTime) -> Self {
        let mut e = PlatformEntry {
            seq: head.seq + 1,
            operator: a.operator.clone(),
            action: a.action.clone(),
            target: a.target.clone(),
            details: a.details.clone(),
            request_id: a.request_id.clone(),
            time: crate::domain::clock::rfc3339(now),
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    /// SHA-256 over `prev_hash` followed by the canonical entry (without `hash`), as
    /// `domain::audit::AuditEntry` hashes.
    pub fn compute_hash(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.remove("hash");
        }
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(v.to_string().as_bytes());
        hex::encode(h.finalize())
    }
}

/// Where a walk of the trail found it broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    pub seq: i64,
    pub reason: &'static str,
}

/// Checks a run of links in order from `start` (genesis for the whole trail).
pub struct Walker {
    head: ChainHead,
}

impl Walker {
    pub fn new(start: ChainHead) -> Self {
        Self { head: start }
    }

    pub fn genesis() -> Self {
        Self::new(ChainHead::genesis())
    }

    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    /// The link stored at `seq`: numbered next, chained onto the head, its hash its own.
    pub fn step(&mut self, seq: i64, e: &PlatformEntry) -> Result<(), Break> {
        let broken = |reason| Err(Break { seq, reason });
        if seq != self.head.seq + 1 || e.seq != seq {
            return broken("sequence gap");
        }
        if e.prev_hash != self.head.hash {
            return broken("prev_hash is not the previous link's hash");
        }
        if e.compute_hash() != e.hash {
            return broken("hash does not match the entry");
        }
        self.head = ChainHead {
            seq,
            hash: e.hash.clone(),
        };
        Ok(())
    }
}

/// The genesis of the platform trail is the tenants' genesis hash.
pub fn genesis_hash() -> &'static str {
    audit::GENESIS_HASH
}
