//! Tenant resolution: the verified token, the account's route (shard, status), the account's
//! access rules (custom domain, UK only, CIDR allowlist), the bookmark, and the shard session.
//! Also the checks every write makes of the tenant and its shard (`require_write`).

use crate::api::error::ApiError;
use crate::api::http::ApiRequest;
use crate::api::{ApiConfig, Platform, BOOKMARK_HEADER, MAX_BOOKMARK, SIMULATED_COUNTRY_HEADER};
use crate::domain::auth::{self, Claims, Role};
use crate::domain::entity::EntitySpec;
use crate::domain::tenancy::{SchemaStatus, ShardStatus};
use crate::ports::Database;
use crate::services::tenancy::{self, Route};
use uuid::Uuid;

/// An authenticated, routed request.
pub struct Tenant<D> {
    pub claims: Claims,
    pub route: Route,
    pub db: D,
}

impl<D> Tenant<D> {
    pub fn account_id(&self) -> Uuid {
        self.claims.account_id
    }
}

pub(crate) async fn tenant<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    req: &ApiRequest,
) -> Result<Tenant<P::Db>, ApiError> {
    let now = p.now();
    let token = auth::bearer(req.header("authorization"))?;
    let claims = auth::verify(token, &cfg.jwt, now)?;
    // Unknown account: the same answer as a bad token, so existence never leaks.
    let route = p
        .routes()
        .route(|| p.accounts(), claims.account_id, now)
        .await?
        .ok_or_else(|| ApiError::Auth(auth::AuthError::Invalid("unknown subject".into())))?;
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
            _ => req.cf_country.clone(),
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
    let bookmark = req.header(BOOKMARK_HEADER);
    if let Some(b) = bookmark.filter(|b| !is_bookmark(b)) {
        return Err(ApiError::InvalidBookmark(format!(
            "{BOOKMARK_HEADER} `{}` cannot be a D1 bookmark: send back the {BOOKMARK_HEADER} of an \
             earlier response (four hyphen-separated hex groups of 8, 8, 8 and 32 digits), or \
             first-primary / first-unconstrained",
            b.chars().take(MAX_BOOKMARK).collect::<String>()
        )));
    }
    let db = p
        .shard(&route.shard.binding, bookmark)
        .ok_or_else(|| ApiError::Misdirected {
            account: claims.account_id.to_string(),
            shard: route.shard.id.clone(),
            deployment: route.shard.deployment.clone(),
        })?;
    Ok(Tenant { claims, route, db })
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

/// Whether `b` can be what `withSession` takes: a session constraint, or a D1 bookmark as D1
/// and the local runtime emit it (`00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683`:
/// hex groups of 8, 8, 8 and 32 digits, lower case). D1 does not say what it does with a
/// well-formed bookmark it never issued (see ARCHITECTURE.md, Consistency), so only the shape
/// can be checked here.
pub fn is_bookmark(b: &str) -> bool {
    if b == "first-primary" || b == "first-unconstrained" {
        return true;
    }
    let groups: Vec<&str> = b.split('-').collect();
    groups.len() == 4
        && groups
            .iter()
            .zip([8, 8, 8, 32])
            .all(|(g, n)| g.len() == n && g.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
}
