//! Tenant routing: token -> account -> shard. The account D1 holds the registry; a deployment
//! serves only the shard bindings it has; results are cached in-isolate (see [`RouteCache`]
//! for how long, and how fast a deactivation reaches every isolate) so a cached request costs
//! no registry query.

use crate::domain::identity::IdentitySettings;
use crate::domain::tenancy::{Account, Shard};
use crate::ports::{col_json, col_str, Database, StoreError};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use time::OffsetDateTime;
use uuid::Uuid;

/// True with probability `rate`, from the injected entropy.
pub fn chance(entropy: &impl crate::domain::clock::Entropy, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let mut b = [0u8; 8];
    entropy.fill(&mut b);
    (u64::from_le_bytes(b) as f64 / u64::MAX as f64) < rate
}

/// An account with the shard it lives on.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub account: Account,
    pub shard: Shard,
    /// The account's trusted identity providers (the `identity` field of its row).
    pub identity: IdentitySettings,
    /// The origins browsers may call it from (the `cors` field of its row).
    pub cors: crate::domain::cors::CorsSettings,
}

pub use crate::store::accounts::{account_version_stmt, domain_stmt, route_stmt};

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("registry row is corrupt: {0}")]
    Corrupt(String),
}

pub async fn load_route(
    db: &impl Database,
    account_id: Uuid,
) -> Result<Option<Route>, TenancyError> {
    let rows = db.query(route_stmt(account_id)).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let account_body = col_json(row, "account");
    let identity = match account_body.as_ref().map(|b| &b["identity"]) {
        None | Some(serde_json::Value::Null) => IdentitySettings::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| TenancyError::Corrupt(format!("identity of account {account_id}: {e}")))?,
    };
    let cors = match account_body.as_ref().map(|b| &b["cors"]) {
        None | Some(serde_json::Value::Null) => Default::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| TenancyError::Corrupt(format!("cors of account {account_id}: {e}")))?,
    };
    let account = account_body
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| TenancyError::Corrupt(format!("account {account_id}")))?;
    let shard = col_json(row, "shard")
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| TenancyError::Corrupt(format!("shard of account {account_id}")))?;
    Ok(Some(Route {
        account,
        shard,
        identity,
        cors,
    }))
}

pub async fn load_domain(db: &impl Database, hostname: &str) -> Result<Option<Uuid>, TenancyError> {
    let rows = db.query(domain_stmt(hostname)).await?;
    Ok(rows
        .first()
        .and_then(|r| col_str(r, "account_id"))
        .and_then(|s| Uuid::parse_str(s).ok()))
}

/// In-isolate cache of routes, custom domains and trusted issuers (negative answers of the
/// last two too).
///
/// **How fast a deactivation (or any change of the account row: identity settings, UK-only, the
/// CIDR allowlist) reaches every isolate:** a cached route is used for at most
/// [`ACCOUNT_CHECK_INTERVAL`] (5 s) without asking the account D1; after that, the next request
/// of any account probes the version and shard of every route the isolate used in the last
/// [`PROBE_IDLE`] in one query (`services::route_probe`) and drops those that moved, so they are
/// reloaded; the others get the shard's fresh record. Every account change moves the
/// version (`services::changes::commit_account`), so a request that starts more than 5 s after
/// the change commits sees it, in every isolate; the isolate that made the change forgets the
/// route at once. A route not probed for [`ROUTE_CACHE_TTL`] (30 s) is loaded again. A KV-held epoch would not be faster: KV is eventually
/// consistent and a write can take 60 s or more to be visible in other locations.
pub struct RouteCache {
    ttl: time::Duration,
    check: time::Duration,
    routes: RefCell<HashMap<Uuid, CachedRoute>>,
    domains: RefCell<HashMap<String, (OffsetDateTime, Option<Uuid>)>>,
    issuers: RefCell<HashMap<String, (OffsetDateTime, Option<Uuid>)>>,
}

struct CachedRoute {
    loaded_at: OffsetDateTime,
    checked_at: OffsetDateTime,
    /// Last request that used it: routes idle for [`PROBE_IDLE`] are dropped, not probed.
    used_at: OffsetDateTime,
    /// Shared with the requests using it (a hit is a reference count, not a copy).
    route: Rc<Route>,
}

/// A cached route unused this long is left out of the batched probe (and dropped).
pub const PROBE_IDLE: time::Duration = time::Duration::seconds(60);

/// How long the shard's record in a cached route is used before it is loaded again.
pub const ROUTE_CACHE_TTL: time::Duration = time::Duration::seconds(30);
/// How long a cached route is used before the account's version is probed (the bound on a
/// deactivation reaching an isolate that did not make it).
pub const ACCOUNT_CHECK_INTERVAL: time::Duration = time::Duration::seconds(5);
/// How long an issuer's account is kept (see [`RouteCache::issuer`]).
pub const ISSUER_TTL: time::Duration = time::Duration::minutes(10);
const MAX_ENTRIES: usize = 10_000;

impl RouteCache {
    pub fn new(ttl: time::Duration) -> Self {
        Self {
            ttl,
            check: ACCOUNT_CHECK_INTERVAL.min(ttl),
            routes: RefCell::default(),
            domains: RefCell::default(),
            issuers: RefCell::default(),
        }
    }

    /// `db` is only called on a cache miss or a due probe (a Worker opens its account-D1
    /// session lazily).
    pub async fn route<'a, D: Database + 'a>(
        &self,
        db: impl FnOnce() -> &'a D,
        account_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<Rc<Route>>, TenancyError> {
        let cached = self.routes.borrow().get(&account_id).and_then(|c| {
            (now - c.loaded_at < self.ttl).then(|| (c.route.clone(), now - c.checked_at))
        });
        let db = match cached {
            Some((route, since_check)) if since_check < self.check => {
                if let Some(c) = self.routes.borrow_mut().get_mut(&account_id) {
                    c.used_at = now;
                }
                return Ok(Some(route));
            }
            Some(_) => {
                // One probe for every route this isolate uses (`services::route_probe`).
                let db = db();
                if let Some(route) = self.probe_all(db, account_id, now).await? {
                    return Ok(Some(route));
                }
                db
            }
            None => db(),
        };
        let r = load_route(db, account_id).await?.map(Rc::new);
        let mut m = self.routes.borrow_mut();
        match &r {
            // Unknown accounts are not cached: one created a moment ago must work at once.
            None => {
                m.remove(&account_id);
            }
            Some(route) => {
                if m.len() >= MAX_ENTRIES {
                    m.clear();
                }
                m.insert(
                    account_id,
                    CachedRoute {
                        loaded_at: now,
                        checked_at: now,
                        used_at: now,
                        route: route.clone(),
                    },
                );
            }
        }
        Ok(r)
    }

    /// The batched version probe: every route used within [`PROBE_IDLE`] (and `account_id`'s)
    /// in one query per [`crate::services::route_probe::PROBE_CHUNK`] ids. A route whose
    /// account is at the same version on the same shard is kept with the shard's fresh record;
    /// any other is dropped (with the issuer answers naming it), so it can only be reloaded,
    /// never used stale. Returns `account_id`'s route if it was kept.
    async fn probe_all<D: Database>(
        &self,
        db: &D,
        account_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<Rc<Route>>, TenancyError> {
        let mut ids: Vec<Uuid> = self
            .routes
            .borrow()
            .iter()
            .filter(|(id, c)| **id == account_id || now - c.used_at < PROBE_IDLE)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let found = crate::services::route_probe::probe(db, &ids).await?;
        let mut dropped = Vec::new();
        let mut m = self.routes.borrow_mut();
        m.retain(|id, c| match found.get(id) {
            Some(p) if p.version == c.route.account.version && p.shard.id == c.route.shard.id => {
                Rc::make_mut(&mut c.route).shard = p.shard.clone();
                c.loaded_at = now;
                c.checked_at = now;
                true
            }
            _ => {
                dropped.push(*id);
                false
            }
        });
        if !dropped.is_empty() {
            self.issuers
                .borrow_mut()
                .retain(|_, (_, a)| a.is_none_or(|a| !dropped.contains(&a)));
        }
        Ok(m.get_mut(&account_id).map(|c| {
            c.used_at = now;
            c.route.clone()
        }))
    }

    pub async fn domain<'a, D: Database + 'a>(
        &self,
        db: impl FnOnce() -> &'a D,
        hostname: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, TenancyError> {
        let key = hostname.to_ascii_lowercase();
        if let Some((at, r)) = self.domains.borrow().get(&key) {
            if now - *at < self.ttl {
                return Ok(*r);
            }
        }
        let r = load_domain(db(), &key).await?;
        let mut m = self.domains.borrow_mut();
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(key, (now, r));
        Ok(r)
    }

    /// The account that trusts the issuer `iss` for one of `aud` (a token's unverified claims).
    /// Negative answers are kept for [`ACCOUNT_CHECK_INTERVAL`]; an account for up to
    /// [`ISSUER_TTL`], or until the batched probe finds that account changed. A stale answer
    /// can only be refused: the token is verified against the issuers in the account's route,
    /// which is version-checked every [`ACCOUNT_CHECK_INTERVAL`].
    pub async fn issuer<'a, D: Database + 'a>(
        &self,
        db: impl FnOnce() -> &'a D,
        iss: &str,
        aud: &[String],
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, TenancyError> {
        let key = serde_json::json!([iss, aud]).to_string();
        if let Some((at, r)) = self.issuers.borrow().get(&key) {
            let keep = if r.is_some() { ISSUER_TTL } else { self.check };
            if now - *at < keep {
                return Ok(*r);
            }
        }
        let r = crate::services::identity::issuer_account(db(), iss, aud).await?;
        let mut m = self.issuers.borrow_mut();
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(key, (now, r));
        Ok(r)
    }

    /// Forget what is cached of `account_id` (its route; issuers are looked up again too).
    pub fn forget(&self, account_id: Uuid) {
        self.routes.borrow_mut().remove(&account_id);
        self.issuers.borrow_mut().clear();
    }
}

/// Strip the port from a Host header value.
pub fn hostname(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map(|h| &h[1..]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// Is `ip` inside one of the CIDR blocks (IPv4 and IPv6)?
pub fn ip_allowed(ip: &str, allowlist: &[String]) -> bool {
    let Ok(addr) = ip.trim().parse::<std::net::IpAddr>() else {
        return false;
    };
    allowlist.iter().any(|cidr| cidr_contains(cidr, addr))
}

pub fn parse_cidr(cidr: &str) -> Option<(std::net::IpAddr, u8)> {
    let (net, len) = match cidr.split_once('/') {
        Some((n, l)) => (n, l.parse::<u8>().ok()?),
        None => (cidr, if cidr.contains(':') { 128 } else { 32 }),
    };
    let net: std::net::IpAddr = net.parse().ok()?;
    let max = if net.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((net, len))
}

fn cidr_contains(cidr: &str, addr: std::net::IpAddr) -> bool {
    use std::net::IpAddr::*;
    let Some((net, len)) = parse_cidr(cidr) else {
        return false;
    };
    match (net, addr) {
        (V4(n), V4(a)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (V6(n), V6(a)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_allowlist_matches_v4_and_v6() {
        let list = vec![
            "10.1.0.0/16".to_string(),
            "2001:db8::/32".to_string(),
            "192.0.2.7".into(),
        ];
        assert!(ip_allowed("10.1.200.3", &list));
        assert!(!ip_allowed("10.2.0.1", &list));
        assert!(ip_allowed("2001:db8:1::5", &list));
        assert!(!ip_allowed("2001:db9::1", &list));
        assert!(ip_allowed("192.0.2.7", &list));
        assert!(!ip_allowed("192.0.2.8", &list));
        assert!(!ip_allowed("not-an-ip", &list));
        assert!(parse_cidr("10.0.0.0/33").is_none());
    }

    #[test]
    fn hostname_strips_port() {
        assert_eq!(hostname("acme.localhost:8787"), "acme.localhost");
        assert_eq!(hostname("example.com"), "example.com");
        assert_eq!(hostname("[::1]:8787"), "::1");
    }
}
