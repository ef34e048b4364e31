//! Tenant resolution: the verified token (HS256 with the deployment's secret for local and test
//! accounts; RS256/ES256 of the account's own identity providers otherwise), the account's route (shard, status), the account's
//! access rules (custom domain, UK only, CIDR allowlist), the bookmark, and the shard session.
//! Also the checks every write makes of the tenant and its shard (`require_write`).

use crate::api::error::ApiError;
use crate::api::http::ApiRequest;
use crate::api::{ApiConfig, Platform, BOOKMARK_HEADER, MAX_BOOKMARK, SIMULATED_COUNTRY_HEADER};
use crate::domain::auth::{self, Claims, Role};
use crate::domain::entity::EntitySpec;
use crate::domain::identity::{self, SigningAlg};
use crate::domain::tenancy::AccountKind;
use crate::domain::tenancy::{SchemaStatus, ShardStatus};
use crate::ports::Database;
use crate::services::identity as services_identity;
use crate::services::tenancy::{self, Route};
use jsonwebtoken::Algorithm;
use std::rc::Rc;
use uuid::Uuid;

/// An authenticated, routed request.
pub struct Tenant<D> {
    pub claims: Claims,
    pub route: Rc<Route>,
    pub db: D,
    pub via: Via,
    /// The request's time (`Platform::now` when it was resolved): what a restriction's end is
    /// compared with.
    pub now: time::OffsetDateTime,
}

impl<D> Tenant<D> {
    pub fn account_id(&self) -> Uuid {
        self.claims.account_id
    }
}

/// How the request's token was verified (settings changes must not lock their caller out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// HS256 with the deployment's secret (local environment and test accounts only).
    Secret,
    /// One of the account's identity providers: (issuer, audience).
    Issuer { issuer: String, audience: String },
}

pub(crate) async fn tenant<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    req: &ApiRequest,
) -> Result<Tenant<P::Db>, ApiError> {
    let now = p.now();
    let token = auth::bearer(req.header("authorization"))?;
    let (claims, route, via, db) = match auth::verify_minted(token, &cfg.jwt, now) {
        // The deployment's own HS256 token, decided in one pass (see `verify_minted`).
        Some(claims) => secret_signed(p, cfg, req, claims?, now).await?,
        None => {
            let u = identity::inspect(token)?;
            match u.alg {
                Algorithm::HS256 => {
                    let claims = auth::verify(token, &cfg.jwt, now)?;
                    secret_signed(p, cfg, req, claims, now).await?
                }
                alg if SigningAlg::of(alg).is_some() => external(p, req, token, &u, now).await?,
                alg => {
                    return Err(ApiError::Auth(auth::AuthError::Invalid(format!(
                        "algorithm {alg:?} is not accepted"
                    ))))
                }
            }
        }
    };
    if let Some(host) = req.host().map(tenancy::hostname) {
        let host = host.to_ascii_lowercase();
        if !cfg.api_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
            if let Some(owner) = p.routes().domain(|| p.accounts(), &host, now).await? {
                if owner != claims.account_id {
                    return Err(ApiError::Forbidden(
                        "this token is not valid on this domain".into(),
                    ));
                }
            }
        }
    }
    let account = &route.account;
    if !account.is_active {
        return Err(ApiError::Forbidden("the account is deactivated".into()));
    }
    if account.uk_only {
        let country = match (cfg.local, req.header(SIMULATED_COUNTRY_HEADER)) {
            (true, Some(c)) => Some(c.to_string()),
            _ => req.cf_country.get(),
        };
        if !country
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("GB"))
        {
            return Err(ApiError::UnavailableForLegalReasons(
                "this account may only be used from the United Kingdom".into(),
            ));
        }
    }
    if let Some(list) = account.cidr_allowlist.as_ref().filter(|l| !l.is_empty()) {
        let ip = req.header("cf-connecting-ip").unwrap_or("");
        if !tenancy::ip_allowed(ip, list) {
            return Err(ApiError::Forbidden(
                "the client address is not on the account's allowlist".into(),
            ));
        }
    }
    Ok(Tenant {
        claims,
        route,
        db,
        via,
        now,
    })
}

/// A token verified with the deployment's secret: the account's route, which must be a test
/// account outside the local stack, and the session on its shard.
async fn secret_signed<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    req: &ApiRequest,
    claims: Claims,
    now: time::OffsetDateTime,
) -> Result<(Claims, Rc<Route>, Via, P::Db), ApiError> {
    // Unknown account: the same answer as a bad token, so existence never leaks.
    let unknown = || ApiError::Auth(auth::AuthError::Invalid("unknown subject".into()));
    let route = p
        .routes()
        .route(|| p.accounts(), claims.account_id, now)
        .await?
        .ok_or_else(unknown)?;
    // The shared secret signs only for the local stack and test accounts: a production
    // or training account's users sign in through the account's identity provider.
    if !cfg.local && route.account.kind != AccountKind::Test {
        return Err(ApiError::Auth(auth::AuthError::Invalid(
            "HS256 tokens are accepted only for test accounts; sign in through the \
             account's identity provider"
                .into(),
        )));
    }
    let db = shard(p, req, &route, claims.account_id)?;
    Ok((claims, route, Via::Secret, db))
}

/// The bookmark the request sends back, checked for shape (see [`parse_bookmark`]), and what
/// the session on `shard` starts from (see [`session_start`]).
fn bookmark<'r>(req: &'r ApiRequest, shard: &str) -> Result<Option<&'r str>, ApiError> {
    let bookmark = req.header(BOOKMARK_HEADER);
    match bookmark.map(parse_bookmark) {
        Some(None) => Err(ApiError::InvalidBookmark(format!(
            "{BOOKMARK_HEADER} `{}` cannot be a D1 bookmark: send back the {BOOKMARK_HEADER} of an \
             earlier response (<shard id>:<lower-case hex digits and hyphens, at most \
             {MAX_BOOKMARK}>), or first-primary / first-unconstrained",
            bookmark.unwrap_or_default().chars().take(MAX_BOOKMARK).collect::<String>()
        ))),
        Some(Some(b)) => Ok(Some(session_start(b, shard))),
        None => Ok(None),
    }
}

/// The session on the account's shard (421 when this deployment does not bind it).
fn shard<P: Platform>(
    p: &P,
    req: &ApiRequest,
    route: &Route,
    account: Uuid,
) -> Result<P::Db, ApiError> {
    p.shard(&route.shard.binding, bookmark(req, &route.shard.id)?)
        .ok_or_else(|| ApiError::Misdirected {
            account: account.to_string(),
            shard: route.shard.id.clone(),
            deployment: route.shard.deployment.clone(),
        })
}

/// An RS256/ES256 token of one of the account's identity providers: the account from the
/// token's (unverified) `iss`/`aud`, the signature, `iss`, `aud` and times against that
/// issuer's keys, then the role (the role claim, or the user row's) and the user (the issuer's
/// user claim, matched to a live row of the account's `users`).
async fn external<P: Platform>(
    p: &P,
    req: &ApiRequest,
    token: &str,
    u: &identity::Unverified,
    now: time::OffsetDateTime,
) -> Result<(Claims, Rc<Route>, Via, P::Db), ApiError> {
    let unknown = || ApiError::Auth(auth::AuthError::Invalid("unknown subject".into()));
    let iss = u.iss.as_deref().ok_or_else(unknown)?;
    let account = p
        .routes()
        .issuer(|| p.accounts(), iss, &u.aud, now)
        .await?
        .ok_or_else(unknown)?;
    let route = p
        .routes()
        .route(|| p.accounts(), account, now)
        .await?
        .ok_or_else(unknown)?;
    let settings = route.identity.clone();
    let (verified, issuer) = services_identity::verify_external(
        p.keys(),
        p.key_store(),
        p.fetcher(),
        &settings,
        token,
        u,
        now,
    )
    .await?;
    let db = shard(p, req, &route, account)?;
    let (user, user_role) = services_identity::find_user(&db, account, issuer, &verified)
        .await?
        .ok_or_else(|| {
            ApiError::Forbidden(format!(
                "the token's {} names no active user of this account",
                issuer.user_claim
            ))
        })?;
    let role = match &issuer.role_claim {
        Some(name) => identity::role(&verified, issuer).ok_or_else(|| {
            ApiError::Forbidden(format!("the token's {name} claim grants no role here"))
        })?,
        None => user_role.ok_or_else(|| ApiError::Forbidden("the user has no role".into()))?,
    };
    let num = |f: &str| verified.get(f).and_then(serde_json::Value::as_i64);
    let claims = Claims {
        sub: user,
        account_id: account,
        role,
        exp: num("exp").unwrap_or_default(),
        iat: num("iat").unwrap_or_default(),
        nbf: num("nbf"),
        iss: issuer.issuer.clone(),
        aud: issuer.audience.clone(),
    };
    let via = Via::Issuer {
        issuer: issuer.issuer.clone(),
        audience: issuer.audience.clone(),
    };
    Ok((claims, route, via, db))
}

pub(crate) fn require_write(t: &Tenant<impl Database>, spec: &EntitySpec) -> Result<(), ApiError> {
    if !t.claims.role.can_write() {
        return Err(ApiError::Forbidden("the readonly role cannot write".into()));
    }
    if spec.admin_writes && t.claims.role != Role::Admin {
        return Err(ApiError::Forbidden(format!(
            "only admins may change {}",
            spec.table
        )));
    }
    if let Some(check) = &t.route.shard.schema {
        if check.status != SchemaStatus::Current {
            return Err(ApiError::Unavailable(format!(
                "shard {} schema is {:?} ({}); writes are paused until migrations are applied",
                t.route.shard.id,
                check.status,
                check.detail.as_deref().unwrap_or("see the migration check")
            )));
        }
    }
    if matches!(
        t.route.shard.status,
        ShardStatus::Readonly | ShardStatus::Provisioning
    ) {
        return Err(ApiError::Unavailable(format!(
            "shard {} is {:?}; writes are paused",
            t.route.shard.id, t.route.shard.status
        )));
    }
    Ok(())
}

/// A bookmark as the API hands it out (`x-d1-bookmark`): the D1 bookmark bound to the shard
/// whose database issued it, `{shard id}:{D1 bookmark}` (a bookmark belongs to one database,
/// and a tenant may change shard between two requests), or a session constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bookmark<'a> {
    /// `first-primary` or `first-unconstrained`.
    Constraint(&'a str),
    /// Issued by `shard`'s database.
    Bound { shard: &'a str, d1: &'a str },
    /// A bare D1 bookmark (handed out before bookmarks named their shard): its database is
    /// unknown.
    Unbound(&'a str),
}

/// The header value for a D1 bookmark of `shard`'s database.
pub fn bound_bookmark(shard: &str, d1: &str) -> String {
    format!("{shard}:{d1}")
}

/// Parse an `x-d1-bookmark` (None: it cannot be one; see [`is_d1_bookmark`]).
pub fn parse_bookmark(b: &str) -> Option<Bookmark<'_>> {
    if b == "first-primary" || b == "first-unconstrained" {
        return Some(Bookmark::Constraint(b));
    }
    match b.split_once(':') {
        Some((shard, d1)) => {
            let shard_ok = !shard.is_empty()
                && shard.len() <= 100
                && shard
                    .bytes()
                    .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'));
            (shard_ok && is_d1_bookmark(d1)).then_some(Bookmark::Bound { shard, d1 })
        }
        None => is_d1_bookmark(b).then_some(Bookmark::Unbound(b)),
    }
}

/// What a session on `shard` starts from, given the request's bookmark: a constraint as
/// asked; this shard's own bookmark; anything else (another shard's, after a move, or one
/// naming no shard) is never handed to this database: a fresh `first-primary` session, at least
/// as fresh as any bookmark, instead of an error for the client.
pub fn session_start<'a>(b: Bookmark<'a>, shard: &str) -> &'a str {
    match b {
        Bookmark::Constraint(c) => c,
        Bookmark::Bound { shard: s, d1 } if s == shard => d1,
        Bookmark::Bound { .. } | Bookmark::Unbound(_) => "first-primary",
    }
}

/// Whether `b` can be an `x-d1-bookmark` (see [`parse_bookmark`]).
#[cfg(test)]
pub fn is_bookmark(b: &str) -> bool {
    parse_bookmark(b).is_some()
}

/// Whether `b` is shaped like a D1 bookmark: lower-case hex digits and hyphens, at most
/// [`MAX_BOOKMARK`] characters. Cloudflare documents bookmarks only as opaque strings (the
/// examples are hex groups such as
/// `00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683`) and no fixed layout, so a
/// stricter check could refuse a bookmark D1 itself issued; and D1 does not say what it does
/// with a well-formed one it never issued, or one of another database (see ARCHITECTURE.md,
/// Consistency): only this shard's own bookmarks reach its database.
pub fn is_d1_bookmark(b: &str) -> bool {
    !b.is_empty()
        && b.len() <= MAX_BOOKMARK
        && b.bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f' | b'-'))
}
