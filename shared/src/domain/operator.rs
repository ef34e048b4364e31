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
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The header Cloudflare Access adds to every request it lets through.
pub const ACCESS_ASSERTION_HEADER: &str = "cf-access-jwt-assertion";
/// The cookie Access sets in the browser after sign-in (same token; the header wins).
pub const ACCESS_COOKIE: &str = "CF_Authorization";
/// How a config placeholder begins (`set-to-...`): never a real team domain or AUD tag.
pub const PLACEHOLDER_PREFIX: &str = "set-to-";

/// The Access assertion of a request: the `Cf-Access-Jwt-Assertion` header, else the
/// `CF_Authorization` cookie (`cookie` is the request's `Cookie` header).
pub fn access_assertion<'a>(header: Option<&'a str>, cookie: Option<&'a str>) -> Option<&'a str> {
    header.map(str::trim).filter(|h| !h.is_empty()).or_else(|| {
        cookie?.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k.trim() == ACCESS_COOKIE)
                .then(|| v.trim())
                .filter(|v| !v.is_empty())
        })
    })
}

/// The Access application a deployment is configured with, or why it must not serve: outside
/// the local environment both values are required and neither may be a placeholder (the
/// production AUD tag is the Worker secret `ACCESS_AUD`, set per deployment). Locally none is
/// needed (the dev credential stands in).
pub fn access_config(
    team_domain: &str,
    audience: &str,
    local: bool,
) -> Result<Option<AccessApp>, String> {
    for (name, v) in [
        ("ACCESS_TEAM_DOMAIN", team_domain),
        ("ACCESS_AUD", audience),
    ] {
        if v.trim().starts_with(PLACEHOLDER_PREFIX) {
            return Err(format!(
                "{name} is the placeholder `{}`: set the deployment's value (ACCESS_AUD as a Worker secret)",
                v.trim()
            ));
        }
    }
    match AccessApp::new(team_domain, audience) {
        None if !local => Err(
            "ACCESS_TEAM_DOMAIN and ACCESS_AUD (Worker secret) must be set outside the local environment"
                .into(),
        ),
        app => Ok(app),
    }
}

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
    /// A system job acting on its own (the scheduler's move cleanup), not a person.
    System,
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

    /// A system job, named (for example `scheduler/moves`).
    pub fn system(name: &str) -> Self {
        Self {
            email: name.into(),
            sub: name.into(),
            via: Via::System,
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
/// out (an action the trail cannot record is not carried out), or that action's outcome, a
/// later link of the same request naming the action's `seq` (`outcome`).
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
    /// Set on an outcome link only (absent from an action's text, so links written before
    /// outcomes existed keep their hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// How an action ended: its HTTP status, and for a refusal or failure the problem's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The action link this is the outcome of.
    pub of_seq: i64,
    pub status: u16,
    /// `done` (2xx), `refused` (4xx: nothing was carried out) or `failed` (5xx: it may have
    /// been carried out in part).
    pub result: String,
    /// The problem's `type` (`urn:clientdocs:problem:*`) of a refusal or failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it did or why not: the created resource (`location`) or the problem's `detail`,
    /// at most [`OUTCOME_SUMMARY_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// The longest outcome summary kept.
pub const OUTCOME_SUMMARY_CHARS: usize = 500;

impl Outcome {
    pub fn new(of_seq: i64, status: u16, error: Option<&str>, summary: Option<&str>) -> Self {
        let result = match status {
            200..=399 => "done",
            400..=499 => "refused",
            _ => "failed",
        };
        Self {
            of_seq,
            status,
            result: result.into(),
            error: error.map(str::to_string),
            summary: summary.map(|s| s.chars().take(OUTCOME_SUMMARY_CHARS).collect()),
        }
    }
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

impl Action {
    /// The outcome link of the action recorded as `recorded`.
    pub fn outcome_of(recorded: &PlatformEntry) -> Self {
        Self {
            operator: recorded.operator.clone(),
            action: recorded.action.clone(),
            target: recorded.target.clone(),
            details: Value::Null,
            request_id: recorded.request_id.clone(),
        }
    }
}

impl PlatformEntry {
    /// The link after `head`.
    pub fn next(head: &ChainHead, a: &Action, now: OffsetDateTime) -> Self {
        Self::link(head, a, None, now)
    }

    /// The link after `head` recording `outcome` of an earlier action (`a` from
    /// [`Action::outcome_of`]).
    pub fn next_outcome(
        head: &ChainHead,
        a: &Action,
        outcome: Outcome,
        now: OffsetDateTime,
    ) -> Self {
        Self::link(head, a, Some(outcome), now)
    }

    fn link(head: &ChainHead, a: &Action, outcome: Option<Outcome>, now: OffsetDateTime) -> Self {
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
            outcome,
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

/// Checks a run of links in order from `start` (genesis for the whole trail), and pairs each
/// outcome with its action: an outcome must name an earlier action of the same request, the
/// same action and target, that has no outcome yet.
pub struct Walker {
    head: ChainHead,
    /// Actions walked whose outcome is not (yet) recorded: seq -> (request id, action, target).
    open: BTreeMap<i64, (String, String, Target)>,
}

impl Walker {
    pub fn new(start: ChainHead) -> Self {
        Self {
            head: start,
            open: BTreeMap::new(),
        }
    }

    /// The actions walked whose outcome the walk has not met, ascending: in flight at the
    /// head, or never finished (the Worker stopped between the action and its outcome).
    pub fn without_outcome(&self) -> impl Iterator<Item = i64> + '_ {
        self.open.keys().copied()
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
        match &e.outcome {
            None => {
                self.open.insert(
                    seq,
                    (e.request_id.clone(), e.action.clone(), e.target.clone()),
                );
            }
            Some(o) => match self.open.get(&o.of_seq) {
                Some((rid, action, target))
                    if *rid == e.request_id && *action == e.action && *target == e.target =>
                {
                    self.open.remove(&o.of_seq);
                }
                _ => {
                    return broken(
                        "the outcome names no earlier action of its request awaiting one",
                    )
                }
            },
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
