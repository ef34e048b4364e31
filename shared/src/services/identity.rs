//! Identity providers: the issuers' signing keys (JWKS), fetched through the Worker, cached in
//! the isolate and in KV until their expiry, refetched from the issuer at most once per
//! interval per JWKS URL (a token naming an unknown `kid` may be a rotation, or a flood of made-up
//! ones: either way one fetch per interval); the account-D1 index of which account trusts which
//! (issuer, audience); and the user a verified token names.

use crate::domain::auth::{AuthError, Role};
use crate::domain::identity::{self, IdentitySettings, Issuer, PublicKey, Unverified, UserMatch};
use crate::ports::{col_str, Cache, Database, Fetch, StoreError};
use crate::store::identity as sql;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// At most one fetch of a JWKS URL from its issuer per interval (per isolate), by default.
pub const REFETCH_INTERVAL: Duration = Duration::seconds(60);
/// Keys are kept for the JWKS response's `max-age`, within these bounds (an hour without one).
pub const KEYS_TTL_DEFAULT: Duration = Duration::hours(1);
const KEYS_TTL_MIN: Duration = Duration::minutes(5);
const KEYS_TTL_MAX: Duration = Duration::hours(24);
/// Expired keys still verify for this long while the issuer cannot be reached.
pub const STALE_IF_ERROR: Duration = Duration::hours(1);
const MAX_JWKS_BYTES: usize = 64 * 1024;
const MAX_URLS: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The issuer's keys could not be had (fetch failed, no usable copy): not the caller's fault.
    #[error("the identity provider's keys are unavailable: {0}")]
    KeysUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another account already trusts this (issuer, audience).
    #[error("{0}")]
    Taken(String),
}

#[derive(Debug, Clone)]
struct Entry {
    keys: Rc<Vec<PublicKey>>,
    expires_at: OffsetDateTime,
    /// When this isolate last asked the issuer (successfully or not).
    asked_at: Option<OffsetDateTime>,
}

/// The KV copy (`jwks:v1:<sha256 of the URL>`), shared by every isolate.
#[derive(Serialize, Deserialize)]
struct Stored {
    keys: Vec<PublicKey>,
    expires_at: i64,
}

pub fn kv_key(jwks_uri: &str) -> String {
    format!(
        "jwks:v1:{}",
        hex::encode(Sha256::digest(jwks_uri.as_bytes()))
    )
}

/// The isolate's JWKS cache.
pub struct KeyCache {
    refetch_interval: Duration,
    entries: RefCell<HashMap<String, Entry>>,
}

impl KeyCache {
    pub fn new(refetch_interval: Duration) -> Self {
        Self {
            refetch_interval,
            entries: RefCell::default(),
        }
    }

    /// The keys to verify a token naming `kid` with: this isolate's copy while it is fresh and
    /// has `kid`; else KV's (when the isolate has no fresh copy); else the issuer's, unless this
    /// isolate asked it less than the interval ago, in which case what it has (verification
    /// then says the key is unknown).
    pub async fn keys(
        &self,
        kv: Option<&impl Cache>,
        fetch: &impl Fetch,
        jwks_uri: &str,
        kid: &str,
        now: OffsetDateTime,
    ) -> Result<Rc<Vec<PublicKey>>, IdentityError> {
        let has = |keys: &[PublicKey]| keys.iter().any(|k| k.kid() == kid);
        let mut current = self.entries.borrow().get(jwks_uri).cloned();
        if let Some(e) = current.as_ref().filter(|e| now < e.expires_at) {
            if has(&e.keys) {
                return Ok(e.keys.clone());
            }
        }
        if current.as_ref().is_none_or(|e| now >= e.expires_at) {
            if let Some(stored) = read_kv(kv, jwks_uri, now).await {
                let e = Entry {
                    keys: Rc::new(stored.keys),
                    expires_at: from_unix(stored.expires_at),
                    asked_at: current.as_ref().and_then(|c| c.asked_at),
                };
                self.put(jwks_uri, e.clone());
                if has(&e.keys) {
                    return Ok(e.keys);
                }
                current = Some(e);
            }
        }
        let asked_at = current.as_ref().and_then(|e| e.asked_at);
        if asked_at.is_some_and(|t| now - t < self.refetch_interval) {
            return current.map(|e| e.keys).ok_or_else(|| {
                IdentityError::KeysUnavailable("asked the issuer moments ago".into())
            });
        }
        // Marked before the fetch: requests arriving while it is in flight do not fetch too.
        let placeholder = Entry {
            keys: current
                .as_ref()
                .map_or_else(|| Rc::new(vec![]), |e| e.keys.clone()),
            expires_at: current.as_ref().map_or(now, |e| e.expires_at),
            asked_at: Some(now),
        };
        self.put(jwks_uri, placeholder);
        match fetch_jwks(fetch, jwks_uri).await {
            Ok((keys, ttl)) => {
                let e = Entry {
                    keys: Rc::new(keys),
                    expires_at: now + ttl,
                    asked_at: Some(now),
                };
                self.put(jwks_uri, e.clone());
                if let Some(kv) = kv {
                    let stored = Stored {
                        keys: e.keys.to_vec(),
                        expires_at: e.expires_at.unix_timestamp(),
                    };
                    let body = serde_json::to_string(&stored).unwrap_or_default();
                    // KV's expirationTtl is at least 60 s.
                    let ttl_s = ttl.whole_seconds().max(60) as u64;
                    if let Err(err) = kv.put(&kv_key(jwks_uri), &body, ttl_s).await {
                        tracing::warn!(jwks_uri, error = %err, "caching the JWKS in KV failed");
                    }
                }
                Ok(e.keys)
            }
            Err(err) => {
                tracing::warn!(jwks_uri, error = %err, "fetching the JWKS failed");
                match current.filter(|e| now < e.expires_at + STALE_IF_ERROR && !e.keys.is_empty())
                {
                    Some(e) => Ok(e.keys),
                    None => Err(IdentityError::KeysUnavailable(err)),
                }
            }
        }
    }

    fn put(&self, uri: &str, e: Entry) {
        let mut m = self.entries.borrow_mut();
        if m.len() >= MAX_URLS && !m.contains_key(uri) {
            m.clear();
        }
        m.insert(uri.to_string(), e);
    }
}

fn from_unix(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

async fn read_kv(kv: Option<&impl Cache>, uri: &str, now: OffsetDateTime) -> Option<Stored> {
    let s = kv?.get(&kv_key(uri)).await.ok()??;
    serde_json::from_str::<Stored>(&s)
        .ok()
        .filter(|st| now.unix_timestamp() < st.expires_at)
}

async fn fetch_jwks(fetch: &impl Fetch, uri: &str) -> Result<(Vec<PublicKey>, Duration), String> {
    let r = fetch.get(uri).await.map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!("{uri} answered {}", r.status));
    }
    if r.body.len() > MAX_JWKS_BYTES {
        return Err(format!("{uri} answered more than {MAX_JWKS_BYTES} bytes"));
    }
    let keys = identity::parse_jwks(&r.body)?;
    Ok((keys, ttl_of(r.cache_control.as_deref())))
}

/// The keys' lifetime from `Cache-Control: max-age=N`, clamped to 5 minutes .. 24 hours.
pub fn ttl_of(cache_control: Option<&str>) -> Duration {
    cache_control
        .into_iter()
        .flat_map(|c| c.split(','))
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|n| n.trim().parse::<i64>().ok())
        .map_or(KEYS_TTL_DEFAULT, |s| {
            Duration::seconds(s).clamp(KEYS_TTL_MIN, KEYS_TTL_MAX)
        })
}

/// Verify a token of one of the account's issuers: the issuer its (unverified) `iss`/`aud`
/// name, that issuer's keys (refetched once if the `kid` is unknown and the interval allows),
/// then `domain::identity::verify`. Returns the claims and the issuer.
pub async fn verify_external<'s>(
    cache: &KeyCache,
    kv: Option<&impl Cache>,
    fetch: &impl Fetch,
    settings: &'s IdentitySettings,
    token: &str,
    u: &Unverified,
    now: OffsetDateTime,
) -> Result<(Map<String, Value>, &'s Issuer), IdentityError> {
    let iss = u.iss.as_deref().unwrap_or_default();
    let issuer = settings.find(iss, &u.aud).ok_or_else(|| {
        AuthError::Invalid("the token's issuer is not trusted by this account".into())
    })?;
    let kid = u
        .kid
        .as_deref()
        .ok_or_else(|| AuthError::Invalid("the token names no key (kid)".into()))?;
    let keys = cache.keys(kv, fetch, &issuer.jwks_uri, kid, now).await?;
    Ok((identity::verify(token, issuer, &keys, now)?, issuer))
}

/// The account that trusts (`iss`, one of `aud`), from the account D1's index.
pub async fn issuer_account(
    db: &impl Database,
    iss: &str,
    aud: &[String],
) -> Result<Option<Uuid>, StoreError> {
    for a in aud.iter().take(5) {
        let rows = db
            .query(sql::issuer_owner(&identity::issuer_key(iss, a)))
            .await?;
        if let Some(id) = rows
            .first()
            .and_then(|r| col_str(r, "account_id"))
            .and_then(|s| Uuid::parse_str(s).ok())
        {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The live user of `account` the verified claims name, with that user's stored role.
pub async fn find_user(
    shard: &impl Database,
    account: Uuid,
    issuer: &Issuer,
    claims: &Map<String, Value>,
) -> Result<Option<(Uuid, Option<Role>)>, StoreError> {
    let Some(key) = identity::user_key(claims, issuer) else {
        return Ok(None);
    };
    let stmt = match issuer.user_match {
        UserMatch::Email => sql::user_by_email(account, key),
        UserMatch::UserId => match Uuid::parse_str(key) {
            Ok(id) => sql::user_by_id(account, id),
            Err(_) => return Ok(None),
        },
    };
    let rows = shard.query(stmt).await?;
    Ok(rows.first().and_then(|r| {
        let id = Uuid::parse_str(col_str(r, "id")?).ok()?;
        let role =
            col_str(r, "role").and_then(|s| serde_json::from_value::<Role>(Value::from(s)).ok());
        Some((id, role))
    }))
}

/// Claim every (issuer, audience) of `settings` for `account` in the account D1's index;
/// [`IdentityError::Taken`] if another account holds one (nothing of this account's is released).
pub async fn claim_issuers(
    accounts: &impl Database,
    account: Uuid,
    settings: &IdentitySettings,
    now: &str,
) -> Result<(), IdentityError> {
    for i in &settings.issuers {
        let key = identity::issuer_key(&i.issuer, &i.audience);
        accounts
            .query(sql::claim_issuer(
                &key,
                account,
                &i.issuer,
                &i.audience,
                now,
            ))
            .await?;
        let owner = issuer_account(accounts, &i.issuer, std::slice::from_ref(&i.audience)).await?;
        if owner != Some(account) {
            return Err(IdentityError::Taken(format!(
                "issuer {} with audience {} is already trusted by another account",
                i.issuer, i.audience
            )));
        }
    }
    Ok(())
}

/// Release the pairs `account` holds that `settings` no longer names (after the change landed).
pub async fn release_issuers(
    accounts: &impl Database,
    account: Uuid,
    settings: &IdentitySettings,
) -> Result<(), StoreError> {
    let keep: Vec<String> = settings
        .issuers
        .iter()
        .map(|i| identity::issuer_key(&i.issuer, &i.audience))
        .collect();
    accounts
        .query(sql::release_issuers(account, &keep))
        .await
        .map(|_| ())
}
