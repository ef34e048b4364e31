//! Layer 3, the API (tenant `/v1` and operator `/admin/v1` over HTTP): the only layer that knows
//! requests, responses and problem+json. The API Worker's behaviour, platform-free: authenticate,
//! route the tenant to its shard, validate, write entity + outbox row in one batch, publish,
//! answer. The Worker only adapts. It uses services, store, ports and domain; the jobs layer
//! only from `admin/jobs.rs`.
#![allow(async_fn_in_trait)]

pub mod admin;
pub mod audit_api;
pub mod content;
pub mod erasure;
pub mod error;
pub mod http;
pub mod openapi;
pub mod settings;

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse, Method};
use crate::domain::auth::{self, Claims, JwtConfig, Role};
use crate::domain::clock::{uuid_v7, Entropy};
use crate::domain::entity::{self, EntitySpec, FilterOp};
use crate::domain::event::{Action, Actor, Change, ChangeEvent, Origin};
use crate::domain::tenancy::{SchemaStatus, ShardStatus};
use crate::ports::*;
use crate::services::changes::{commit, Edit, Expect, Write};
use crate::services::tenancy::{self, Route, RouteCache};
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

/// Everything the API needs from the platform.
pub trait Platform {
    type Db: Database;
    type Queue: EventQueue;
    type Blobs: BlobStore;
    type Entropy: Entropy;
    type Cache: Cache;
    fn accounts(&self) -> &Self::Db;
    /// The KV read cache, when this deployment enables it.
    fn cache(&self) -> Option<&Self::Cache>;
    /// A session on a shard this deployment binds (None: not bound here). `bookmark` is the
    /// client's `x-d1-bookmark`; without one the session is `first-unconstrained`.
    fn shard(&self, binding: &str, bookmark: Option<&str>) -> Option<Self::Db>;
    fn queue(&self) -> &Self::Queue;
    fn blobs(&self) -> &Self::Blobs;
    fn routes(&self) -> &RouteCache;
    fn now(&self) -> OffsetDateTime;
    fn entropy(&self) -> &Self::Entropy;
    /// The isolate's usage meter (flushed to the shard by the Worker, see `usage`).
    fn usage(&self) -> &crate::services::usage::UsageMeter;
    /// Sent events whose outbox rows wait to be marked published (see `marks`).
    fn marks(&self) -> &crate::services::marks::PendingMarks;
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub deployment: String,
    /// Local environment: demo tokens and the simulated-country header are honoured.
    pub local: bool,
    pub jwt: JwtConfig,
    pub admin_secret: String,
    /// Hostnames of the API itself (never looked up as custom domains).
    pub api_hosts: Vec<String>,
    pub max_content_bytes: usize,
}

pub const BOOKMARK_HEADER: &str = "x-d1-bookmark";
pub const MAX_BOOKMARK: usize = 256;
pub const SIMULATED_COUNTRY_HEADER: &str = "x-simulated-country";
/// Local only: what the request cost in D1 (see `ports::Cost::header`); benchmarks read it.
pub const COST_HEADER: &str = "x-d1-cost";
pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 50;
pub const DEFAULT_MAX_CONTENT_BYTES: usize = 25 * 1024 * 1024;

pub async fn handle<P: Platform>(p: &P, cfg: &ApiConfig, req: ApiRequest) -> ApiResponse {
    match route(p, cfg, &req).await {
        Ok(r) => r.with_header("x-request-id", req.request_id.clone()),
        Err(e) => error_response(e, &req.request_id),
    }
}

/// The one place an error becomes a response: problem+json, the request id, and `Allow` on 405.
pub fn error_response(e: ApiError, request_id: &str) -> ApiResponse {
    let allow = match &e {
        ApiError::MethodNotAllowed(a) => Some(*a),
        _ => None,
    };
    let r = e
        .into_problem()
        .into_response(request_id)
        .with_header("x-request-id", request_id);
    match allow {
        Some(a) => r.with_header("allow", a),
        None => r,
    }
}

async fn route<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["health"] => match req.method {
            Method::Get | Method::Head => Ok(ApiResponse::json(
                200,
                json!({"status": "ok", "deployment": cfg.deployment}),
            )),
            _ => Err(ApiError::MethodNotAllowed("GET, HEAD")),
        },
        ["openapi.json"] => match req.method {
            Method::Get | Method::Head => {
                Ok(ApiResponse::json(200, crate::api::openapi::document(None)))
            }
            _ => Err(ApiError::MethodNotAllowed("GET, HEAD")),
        },
        ["admin", "v1", rest @ ..] => crate::api::admin::handle(p, cfg, req, rest).await,
        ["v1", rest @ ..] => {
            let t = tenant(p, cfg, req).await?;
            // The adapter's request span declares these; every line of this request carries them.
            let span = tracing::Span::current();
            span.record("account", tracing::field::display(t.account_id()));
            span.record("shard", t.route.shard.id.as_str());
            let result = tenant_route(p, cfg, req, &t, rest).await;
            // Metered whatever the outcome: a refused write may still have read rows.
            let cost = t.db.cost();
            // The request span declares these too: its "request done" line carries the cost.
            span.record("d1_calls", cost.calls);
            span.record("d1_statements", cost.statements);
            span.record("d1_rows_read", cost.rows_read);
            span.record("d1_rows_written", cost.rows_written);
            p.usage().record(
                &t.route.shard.binding,
                t.account_id(),
                p.now(),
                crate::services::usage::Usage {
                    requests: 1,
                    writes: u64::from(!matches!(req.method, Method::Get | Method::Head)),
                    cost,
                },
            );
            let r = result.unwrap_or_else(|e| error_response(e, &req.request_id));
            Ok(if cfg.local {
                r.with_header(COST_HEADER, cost.header())
            } else {
                r
            })
        }
        _ => Err(ApiError::NotFound(format!("no route for {}", req.path))),
    }
}

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

async fn tenant<P: Platform>(
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
    if bookmark.is_some_and(|b| {
        b.is_empty() || b.len() > MAX_BOOKMARK || !b.bytes().all(|c| c.is_ascii_graphic())
    }) {
        return Err(ApiError::bad_request(format!(
            "{BOOKMARK_HEADER} must be a bookmark from an earlier response (1 to {MAX_BOOKMARK} printable characters)"
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

async fn tenant_route<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    req: &ApiRequest,
    t: &Tenant<P::Db>,
    segs: &[&str],
) -> Result<ApiResponse, ApiError> {
    match segs {
        ["erasure-requests"] => match req.method {
            Method::Post => crate::api::erasure::create(p, cfg, t, req).await,
            _ => Err(ApiError::MethodNotAllowed("POST")),
        },
        ["erasure-requests", id] => match req.method {
            Method::Get => crate::api::erasure::get(t, parse_id(id)?).await,
            _ => Err(ApiError::MethodNotAllowed("GET")),
        },
        ["settings", "retention"] => match req.method {
            Method::Get => crate::api::settings::get(t).await,
            Method::Put => crate::api::settings::put(p, cfg, t, req).await,
            _ => Err(ApiError::MethodNotAllowed("GET, PUT")),
        },
        ["audit"] => match req.method {
            Method::Get => crate::api::audit_api::list(t, req, false).await,
            _ => Err(ApiError::MethodNotAllowed("GET")),
        },
        ["audit", "export"] => match req.method {
            Method::Get => crate::api::audit_api::list(t, req, true).await,
            _ => Err(ApiError::MethodNotAllowed("GET")),
        },
        ["audit", "verify"] => match req.method {
            Method::Get => crate::api::audit_api::verify(t, req).await,
            _ => Err(ApiError::MethodNotAllowed("GET")),
        },
        [table] => {
            let spec = spec_for(table)?;
            match req.method {
                Method::Get => list(t, spec, req).await,
                Method::Post => create(p, cfg, t, spec, req).await,
                _ => Err(ApiError::MethodNotAllowed("GET, POST")),
            }
        }
        [table, id] => {
            let spec = spec_for(table)?;
            let id = parse_id(id)?;
            match req.method {
                Method::Get => get(p, req, t, spec, id).await,
                Method::Patch => update(p, cfg, t, spec, id, req).await,
                Method::Delete => delete(p, cfg, t, spec, id, req).await,
                _ => Err(ApiError::MethodNotAllowed("GET, PATCH, DELETE")),
            }
        }
        ["clients", id, "legal-hold"] => match req.method {
            Method::Put => set_client_hold(p, cfg, t, parse_id(id)?, req).await,
            _ => Err(ApiError::MethodNotAllowed("PUT")),
        },
        ["documents", id, "content"] => {
            let id = parse_id(id)?;
            match req.method {
                Method::Put => crate::api::content::put(p, cfg, t, id, req).await,
                Method::Get => crate::api::content::get(p, t, id).await,
                _ => Err(ApiError::MethodNotAllowed("GET, PUT")),
            }
        }
        _ => Err(ApiError::NotFound(format!("no route for {}", req.path))),
    }
}

fn spec_for(table: &str) -> Result<&'static EntitySpec, ApiError> {
    entity::by_table(table)
        .ok_or_else(|| ApiError::NotFound(format!("no collection named {table}")))
}

pub fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    if entity::is_uuid(s) {
        Uuid::parse_str(s).map_err(|_| ApiError::bad_request("ids are UUIDs"))
    } else {
        Err(ApiError::bad_request(format!("`{s}` is not a UUID")))
    }
}

/// The `limit` query parameter: `default` when absent, otherwise 1 to `max`.
pub fn query_limit(req: &ApiRequest, default: usize, max: usize) -> Result<usize, ApiError> {
    match req.query_param("limit") {
        None => Ok(default),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("limit must be 1 to {max}"))),
    }
}

pub fn with_bookmark(r: ApiResponse, db: &impl Database) -> ApiResponse {
    match db.bookmark() {
        Some(b) => r.with_header(BOOKMARK_HEADER, b),
        None => r,
    }
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

/// Parse a JSON request body within the size and depth limits.
pub fn json_body(req: &ApiRequest, allowed_types: &[&str]) -> Result<Value, ApiError> {
    let ct = req.header("content-type").unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !allowed_types.contains(&mime.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be {}",
            allowed_types.join(" or ")
        )));
    }
    if req.body.len() > entity::MAX_JSON_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "JSON bodies are limited to {} bytes",
            entity::MAX_JSON_BODY_BYTES
        )));
    }
    let v: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    if entity::json_depth(&v) > entity::MAX_JSON_DEPTH {
        return Err(ApiError::bad_request(format!(
            "JSON nesting is limited to {} levels",
            entity::MAX_JSON_DEPTH
        )));
    }
    Ok(v)
}

/// A JSON request body (limits as in `json_body`) decoded into a request type; a body that does
/// not fit the type is a 400 that says why.
pub fn typed_body<T: serde::de::DeserializeOwned>(req: &ApiRequest) -> Result<T, ApiError> {
    let v = json_body(req, &["application/json"])?;
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))
}

pub fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

fn if_match(req: &ApiRequest) -> Option<&str> {
    req.header("if-match").map(str::trim)
}

/// The versions an `If-Match` header accepts: None for `*` (any), else the listed ones.
fn if_match_versions(header: &str) -> Option<Vec<i64>> {
    if header == "*" {
        return None;
    }
    Some(
        header
            .split(',')
            .filter_map(|s| {
                s.trim()
                    .trim_start_matches("W/")
                    .strip_prefix("\"v")?
                    .strip_suffix('"')?
                    .parse()
                    .ok()
            })
            .collect(),
    )
}

fn matches_etag(header: &str, version: i64) -> bool {
    let want = etag(version);
    header == "*"
        || header
            .split(',')
            .map(|s| s.trim().trim_start_matches("W/"))
            .any(|s| s == want)
}

/// Server bookkeeping kept in `body` but never shown.
pub const HIDDEN_FIELDS: &[&str] = &["index_rev", "last_event_id", "client_ended_on"];

/// When a client's relationship end changes, its documents' copy changes in the same batch
/// (only if the client's update landed: it carries the event id).
fn client_end_propagation(account: Uuid, client: Uuid, ended: Option<&Value>, event: Uuid) -> Stmt {
    Stmt::new(
        "UPDATE documents SET body = json_patch(body, json_object('client_ended_on', ?3)) \
         WHERE account_id = ?1 AND client_id = ?2 AND EXISTS (SELECT 1 FROM clients \
         WHERE account_id = ?1 AND id = ?2 AND body ->> '$.last_event_id' = ?4)",
        vec![
            json!(account),
            json!(client),
            ended.cloned().unwrap_or(Value::Null),
            json!(event),
        ],
    )
}

/// The stored document as the API shows it.
pub fn render(id: &str, body: &Value) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(id.into()));
    if let Some(o) = body.as_object() {
        for (k, v) in o {
            if !HIDDEN_FIELDS.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

use crate::services::changes::version_of;

fn actor(c: &Claims) -> Actor {
    Actor::User {
        id: c.sub,
        role: c.role.as_str().into(),
    }
}

/// After the batch committed: send the events (`changes::publish`). Locally, fault injection
/// may skip the send, leaving the rows for the relay as a failed send would.
pub async fn publish<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    events: Vec<ChangeEvent>,
) {
    if cfg.local {
        if let Some(f) = &t.route.account.faults {
            if tenancy::chance(p.entropy(), f.queue_send_rate) {
                tracing::warn!("fault injection: skipping the queue send; the relay will publish");
                return;
            }
        }
    }
    crate::services::changes::publish(
        p.queue(),
        p.marks(),
        &t.route.shard.binding,
        events,
        t.db.bookmark(),
    )
    .await;
}

/// Change one field of an account's own row through the write protocol
/// (`changes::commit_account`), then move its event into the tenant's shard outbox and send it,
/// when this deployment binds that shard (otherwise the relay forwards it within a minute).
pub(crate) async fn change_account<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    account: Uuid,
    field: &'static str,
    value: Value,
    actor: Actor,
    request_id: &str,
) -> Result<crate::services::changes::AccountOutcome, ApiError> {
    use crate::services::changes::{
        commit_account, forward_account_events, AccountOutcome, AccountWrite,
    };
    let now = p.now();
    let route = p
        .routes()
        .route(|| p.accounts(), account, now)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no account {account}")))?;
    let event = ChangeEvent::new(
        uuid_v7(now, p.entropy()),
        now,
        &Origin {
            deployment: &cfg.deployment,
            shard_id: &route.shard.id,
            account_id: account,
            actor,
            request_id,
        },
        Change {
            entity_type: "accounts",
            entity_singular: "account",
            entity_id: account,
            action: Action::Updated,
            entity_version: 0,
            changed_fields: vec![field.into()],
        },
    );
    let w = AccountWrite {
        account,
        field,
        value,
        event,
    };
    let outcome = commit_account(p.accounts(), &w).await?;
    p.routes().forget(account);
    if let AccountOutcome::Landed { pending, .. } = &outcome {
        if let Some(shard) = p.shard(&route.shard.binding, None) {
            let forwarded = forward_account_events(
                p.accounts(),
                &shard,
                &route.shard.id,
                account,
                pending.clone(),
            )
            .await;
            match forwarded {
                Ok(events) => {
                    crate::services::changes::publish(
                        p.queue(),
                        p.marks(),
                        &route.shard.binding,
                        events,
                        shard.bookmark(),
                    )
                    .await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "forwarding the account's event failed; the relay will")
                }
            }
        }
    }
    Ok(outcome)
}

pub(crate) fn new_event<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
    change: Change<'_>,
) -> ChangeEvent {
    let now = p.now();
    ChangeEvent::new(
        uuid_v7(now, p.entropy()),
        now,
        &Origin {
            deployment: &cfg.deployment,
            shard_id: &t.route.shard.id,
            account_id: t.account_id(),
            actor: actor(&t.claims),
            request_id: &req.request_id,
        },
        change,
    )
}

fn request_hash(req: &ApiRequest) -> String {
    let mut h = Sha256::new();
    h.update(req.path.as_bytes());
    h.update([0]);
    h.update(&req.body);
    hex::encode(h.finalize())
}

async fn create<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    spec: &'static EntitySpec,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    require_write(t, spec)?;
    let input = json_body(req, &["application/json"])?;
    entity::validate(spec, &input).map_err(ApiError::Validation)?;
    let idem = idempotency_key(t, req)?;
    if let Some(key) = &idem {
        if let Some(r) = replay(t, key, req).await? {
            return Ok(r);
        }
    }
    let id = uuid_v7(p.now(), p.entropy());
    let mut body = input.clone();
    entity::strip_nulls(&mut body); // null means "absent", at every level
    let changed: Vec<String> = input
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let ev = new_event(
        p,
        cfg,
        t,
        req,
        Change {
            entity_type: spec.table,
            entity_singular: spec.singular,
            entity_id: id,
            action: Action::Created,
            entity_version: 1,
            changed_fields: changed,
        },
    );
    let location = format!("/v1/{}/{}", spec.table, id);
    let mut write = Write {
        table: spec.table,
        id,
        edit: Edit::Insert(body),
        expect: Expect::Any,
        live_only: true,
        event: ev,
        with: vec![],
    };
    if let Some(key) = &idem {
        // The key's row keeps the response to replay; it is written in the same batch, so it
        // exists exactly when the row does.
        let stored = write.insert_body().unwrap_or_default();
        write.with.push(Stmt::new(
            "INSERT INTO idempotency_keys (account_id, id, body) VALUES (?1, ?2, ?3)",
            vec![
                json!(t.account_id()),
                json!(key),
                json!(json!({
                    "request_hash": request_hash(req),
                    "status": 201,
                    "location": location,
                    "etag": etag(1),
                    "response": render(&id.to_string(), &stored),
                    "created_at": write.event.time,
                })
                .to_string()),
            ],
        ));
    }
    let landed = match commit(&t.db, &write).await {
        Ok(l) => l,
        Err(StoreError::Constraint(m)) if idem.is_some() && m.contains("idempotency_keys") => {
            // A concurrent request with the same key won the race: answer as it did.
            if let Some(key) = &idem {
                if let Some(r) = replay(t, key, req).await? {
                    return Ok(r);
                }
            }
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is in flight".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let landed = landed.ok_or_else(|| ApiError::Internal("the insert returned no row".into()))?;
    publish(p, cfg, t, vec![landed.event]).await;
    Ok(with_bookmark(
        ApiResponse::json(201, render(&id.to_string(), &landed.body))
            .with_header("location", location)
            .with_header("etag", etag(landed.version)),
        &t.db,
    ))
}

fn idempotency_key(
    t: &Tenant<impl Database>,
    req: &ApiRequest,
) -> Result<Option<String>, ApiError> {
    let Some(k) = req.header("idempotency-key") else {
        return Ok(None);
    };
    let k = k.trim();
    if k.is_empty() || k.len() > 200 || !k.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 200 printable ASCII characters",
        ));
    }
    Ok(Some(format!("{}:POST {}:{}", t.claims.sub, req.path, k)))
}

async fn replay(
    t: &Tenant<impl Database>,
    key: &str,
    req: &ApiRequest,
) -> Result<Option<ApiResponse>, ApiError> {
    let rows =
        t.db.query(Stmt::new(
            "SELECT body FROM idempotency_keys WHERE account_id = ?1 AND id = ?2",
            vec![json!(t.account_id()), json!(key)],
        ))
        .await?;
    let Some(stored) = rows.first().and_then(|r| col_json(r, "body")) else {
        return Ok(None);
    };
    if stored.get("request_hash").and_then(Value::as_str) != Some(request_hash(req).as_str()) {
        return Err(ApiError::Unprocessable(
            "this Idempotency-Key was used with a different request body".into(),
        ));
    }
    let status = stored.get("status").and_then(Value::as_u64).unwrap_or(201) as u16;
    let mut r = ApiResponse::json(
        status,
        stored.get("response").cloned().unwrap_or(Value::Null),
    )
    .with_header("idempotent-replayed", "true");
    for h in ["location", "etag"] {
        if let Some(v) = stored.get(h).and_then(Value::as_str) {
            r = r.with_header(h, v);
        }
    }
    Ok(Some(with_bookmark(r, &t.db)))
}

pub fn get_stmt(spec: &EntitySpec, account_id: Uuid, id: Uuid) -> Stmt {
    Stmt::new(
        format!(
            "SELECT id, body FROM {} WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL",
            spec.table
        ),
        vec![json!(account_id), json!(id)],
    )
}

async fn load(t: &Tenant<impl Database>, spec: &EntitySpec, id: Uuid) -> Result<Value, ApiError> {
    let rows = t.db.query(get_stmt(spec, t.account_id(), id)).await?;
    rows.first()
        .and_then(|r| col_json(r, "body"))
        .ok_or_else(|| ApiError::NotFound(format!("no {} with id {id}", spec.singular)))
}

/// Cache key of a rendered entity: immutable, because every change to the row moves `version`
/// (user changes) or `index_rev` (the consumer's denormalised fields).
pub fn cache_key(account_id: Uuid, table: &str, id: Uuid, version: i64, index_rev: i64) -> String {
    format!("r1/{account_id}/{table}/{id}/{version}.{index_rev}")
}

pub const CACHE_TTL_SECONDS: u64 = 86_400;

async fn get<P: Platform>(
    p: &P,
    req: &ApiRequest,
    t: &Tenant<P::Db>,
    spec: &EntitySpec,
    id: Uuid,
) -> Result<ApiResponse, ApiError> {
    let respond = |body: Value, v: i64| {
        with_bookmark(
            ApiResponse::json(200, body).with_header("etag", etag(v)),
            &t.db,
        )
    };
    // With a bookmark the client asked for at least that write: read through the session.
    let cache = p.cache().filter(|_| req.header(BOOKMARK_HEADER).is_none());
    let Some(cache) = cache else {
        let body = load(t, spec, id).await?;
        return Ok(respond(render(&id.to_string(), &body), version_of(&body)));
    };
    let probe = t
        .db
        .query(Stmt::new(
            format!(
                "SELECT body ->> '$.version' AS v, coalesce(body ->> '$.index_rev', 0) AS r FROM {} \
                 WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL",
                spec.table
            ),
            vec![json!(t.account_id()), json!(id)],
        ))
        .await?;
    let row = probe
        .first()
        .ok_or_else(|| ApiError::NotFound(format!("no {} with id {id}", spec.singular)))?;
    let (v, r) = (
        col_i64(row, "v").unwrap_or(0),
        col_i64(row, "r").unwrap_or(0),
    );
    let key = cache_key(t.account_id(), spec.table, id, v, r);
    if let Ok(Some(hit)) = cache.get(&key).await {
        if let Ok(body) = serde_json::from_str::<Value>(&hit) {
            return Ok(respond(body, v).with_header("x-cache", "hit"));
        }
    }
    let body = load(t, spec, id).await?;
    let (v2, r2) = (
        version_of(&body),
        body.get("index_rev").and_then(Value::as_i64).unwrap_or(0),
    );
    let rendered = render(&id.to_string(), &body);
    let key = cache_key(t.account_id(), spec.table, id, v2, r2);
    if let Err(e) = cache
        .put(&key, &rendered.to_string(), CACHE_TTL_SECONDS)
        .await
    {
        tracing::warn!(error = %e, "read cache put failed");
    }
    Ok(respond(rendered, v2).with_header("x-cache", "miss"))
}

/// Fields a client may not set, kept across a merge patch.
fn split_server_fields(spec: &EntitySpec, body: &Value) -> (Value, Map<String, Value>) {
    let mut user = body.clone();
    let mut server = Map::new();
    if let Some(o) = user.as_object_mut() {
        let keys: Vec<String> = o.keys().cloned().collect();
        for k in keys {
            if entity::COMMON_READ_ONLY.contains(&k.as_str())
                || spec.read_only.contains(&k.as_str())
            {
                if let Some(v) = o.remove(&k) {
                    server.insert(k, v);
                }
            }
        }
    }
    (user, server)
}

const MAX_WRITE_ATTEMPTS: usize = 3;

async fn update<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    spec: &'static EntitySpec,
    id: Uuid,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    require_write(t, spec)?;
    let patch = json_body(req, &["application/merge-patch+json", "application/json"])?;
    entity::validate_patch(spec, &patch).map_err(ApiError::Validation)?;
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let current = load(t, spec, id).await?;
        let old_version = version_of(&current);
        if let Some(h) = if_match(req) {
            if !matches_etag(h, old_version) {
                return Err(ApiError::PreconditionFailed(h.into()));
            }
        }
        let (user, server) = split_server_fields(spec, &current);
        let mut merged = user.clone();
        entity::merge_patch(&mut merged, &patch);
        entity::validate(spec, &merged).map_err(ApiError::Validation)?;
        let changed = entity::changed_fields(&user, &merged);
        if let Some(f) = changed
            .iter()
            .find(|f| spec.immutable.contains(&f.as_str()))
        {
            return Err(ApiError::Validation(vec![entity::FieldError {
                pointer: format!("/{f}"),
                message: "cannot change after creation".into(),
            }]));
        }
        if changed.is_empty() {
            return Ok(with_bookmark(
                ApiResponse::json(200, render(&id.to_string(), &current))
                    .with_header("etag", etag(old_version)),
                &t.db,
            ));
        }
        let ev = new_event(
            p,
            cfg,
            t,
            req,
            Change {
                entity_type: spec.table,
                entity_singular: spec.singular,
                entity_id: id,
                action: Action::Updated,
                entity_version: old_version + 1,
                changed_fields: changed,
            },
        );
        let mut body = merged;
        if let Some(o) = body.as_object_mut() {
            o.extend(server);
        }
        let mut with = vec![];
        if spec.table == "clients"
            && ev
                .changed_fields
                .iter()
                .any(|f| f == "relationship_ended_on")
        {
            with.push(client_end_propagation(
                t.account_id(),
                id,
                body.get("relationship_ended_on"),
                ev.id,
            ));
        }
        let write = Write {
            table: spec.table,
            id,
            edit: Edit::Replace(body),
            expect: Expect::Version(old_version),
            live_only: true,
            event: ev,
            with,
        };
        let Some(landed) = commit(&t.db, &write).await? else {
            if let Some(h) = if_match(req) {
                return Err(ApiError::PreconditionFailed(h.into()));
            }
            continue; // a concurrent write moved the version: merge again onto the new one
        };
        publish(p, cfg, t, vec![landed.event]).await;
        return Ok(with_bookmark(
            ApiResponse::json(200, render(&id.to_string(), &landed.body))
                .with_header("etag", etag(landed.version)),
            &t.db,
        ));
    }
    Err(ApiError::Conflict(
        "the resource is being changed concurrently; retry".into(),
    ))
}

async fn delete<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    spec: &'static EntitySpec,
    id: Uuid,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    require_write(t, spec)?;
    // No read first: one conditional UPDATE (the If-Match versions, if any) in the batch with
    // the event; only a delete that changed nothing reads the row, to say why.
    let versions = if_match(req).and_then(if_match_versions);
    if versions.as_ref().is_some_and(|v| v.is_empty()) {
        return Err(ApiError::PreconditionFailed(
            if_match(req).unwrap_or_default().into(),
        ));
    }
    let ev = new_event(
        p,
        cfg,
        t,
        req,
        Change {
            entity_type: spec.table,
            entity_singular: spec.singular,
            entity_id: id,
            action: Action::Deleted,
            entity_version: 0, // the row's new version, known once the UPDATE has run
            changed_fields: vec!["deleted_at".into()],
        },
    );
    let write = Write {
        table: spec.table,
        id,
        edit: Edit::SoftDelete,
        expect: versions.map_or(Expect::Any, Expect::OneOf),
        live_only: true,
        event: ev,
        with: vec![],
    };
    let Some(landed) = commit(&t.db, &write).await? else {
        // Nothing changed: gone (404), or there but at another version (412).
        load(t, spec, id).await?;
        return Err(ApiError::PreconditionFailed(
            if_match(req).unwrap_or("*").into(),
        ));
    };
    publish(p, cfg, t, vec![landed.event]).await;
    Ok(with_bookmark(ApiResponse::empty(204), &t.db))
}

/// Opaque keyset cursor: the last row's sort key and id, bound to the filter that made it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    f: String,
    k: Option<String>,
    id: String,
}

fn encode_cursor(c: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode_cursor(s: &str) -> Option<Cursor> {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    serde_json::from_slice(&b).ok()
}

/// The list statement for one (optional) indexed filter and a keyset position.
pub fn list_stmt(
    spec: &EntitySpec,
    account_id: Uuid,
    filter: Option<(&entity::Filter, &str)>,
    after: Option<(Option<&str>, &str)>,
    limit: usize,
) -> Stmt {
    let mut params = vec![json!(account_id)];
    let mut sql = format!(
        "SELECT id, body{} FROM {} WHERE account_id = ?1 AND deleted_at IS NULL",
        match filter {
            Some((f, _)) if f.op == FilterOp::Prefix => format!(", {} AS k", f.column),
            _ => String::new(),
        },
        spec.table
    );
    let mut order = "id".to_string();
    match filter {
        Some((f, v)) if f.op == FilterOp::Eq => {
            params.push(json!(v));
            sql += &format!(" AND {} = ?{}", f.column, params.len());
        }
        Some((f, v)) => {
            // SQLite's lower() folds ASCII only: fold the same way so both sides agree.
            let lo = v.to_ascii_lowercase();
            let hi = format!("{lo}\u{10FFFF}");
            params.push(json!(lo));
            params.push(json!(hi));
            sql += &format!(
                " AND {c} >= ?{} AND {c} < ?{}",
                params.len() - 1,
                params.len(),
                c = f.column
            );
            order = format!("{}, id", f.column);
        }
        None => {}
    }
    match (filter, after) {
        (Some((f, _)), Some((Some(k), id))) if f.op == FilterOp::Prefix => {
            params.push(json!(k));
            params.push(json!(id));
            sql += &format!(
                " AND ({}, id) > (?{}, ?{})",
                f.column,
                params.len() - 1,
                params.len()
            );
        }
        (_, Some((_, id))) => {
            params.push(json!(id));
            sql += &format!(" AND id > ?{}", params.len());
        }
        _ => {}
    }
    params.push(json!(limit as i64 + 1));
    sql += &format!(" ORDER BY {order} LIMIT ?{}", params.len());
    Stmt::new(sql, params)
}

async fn list(
    t: &Tenant<impl Database>,
    spec: &'static EntitySpec,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let allowed: Vec<&str> = spec.filters.iter().map(|f| f.param).collect();
    let mut filter = None;
    let mut limit = DEFAULT_PAGE;
    let mut cursor = None;
    for (k, v) in &req.query {
        match k.as_str() {
            "limit" => limit = query_limit(req, DEFAULT_PAGE, MAX_PAGE)?,
            "cursor" => cursor = Some(v.as_str()),
            other => match spec.filters.iter().find(|f| f.param == other) {
                Some(f) => {
                    if filter.is_some() {
                        return Err(ApiError::BadRequest {
                            detail: format!(
                                "filter on one indexed field at a time; allowed: {}",
                                allowed.join(", ")
                            ),
                            extra: Some(json!({"allowed_filters": allowed})),
                        });
                    }
                    let errs = entity::check(f.value, &json!(v));
                    if let Some(e) = errs.first() {
                        return Err(ApiError::bad_request(format!("filter {}: {}", f.param, e.message)));
                    }
                    filter = Some((f, v.as_str()));
                }
                None => {
                    return Err(ApiError::BadRequest {
                        detail: format!(
                            "cannot filter {} on `{other}`: only indexed fields are filterable; allowed: {}",
                            spec.table,
                            if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
                        ),
                        extra: Some(json!({"allowed_filters": allowed})),
                    })
                }
            },
        }
    }
    let fsig = filter
        .map(|(f, v)| format!("{}={}", f.param, v))
        .unwrap_or_default();
    let after = match cursor {
        None => None,
        Some(c) => {
            let c = decode_cursor(c)
                .filter(|c| c.f == fsig && entity::is_uuid(&c.id))
                .ok_or_else(|| {
                    ApiError::bad_request("cursor is invalid or belongs to another filter")
                })?;
            Some(c)
        }
    };
    let stmt = list_stmt(
        spec,
        t.account_id(),
        filter,
        after.as_ref().map(|c| (c.k.as_deref(), c.id.as_str())),
        limit,
    );
    let rows = t.db.query(stmt).await?;
    let mut items = Vec::new();
    let mut next = None;
    for (i, r) in rows.rows.iter().enumerate() {
        let id = col_str(r, "id").unwrap_or_default();
        if i == limit {
            let prev = &rows.rows[i - 1];
            next = Some(encode_cursor(&Cursor {
                f: fsig.clone(),
                k: col_str(prev, "k").map(str::to_owned),
                id: col_str(prev, "id").unwrap_or_default().into(),
            }));
            break;
        }
        items.push(render(id, &col_json(r, "body").unwrap_or(Value::Null)));
    }
    Ok(with_bookmark(
        ApiResponse::json(200, json!({"items": items, "next_cursor": next})),
        &t.db,
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HoldRequest {
    pub hold: bool,
}

/// `PUT /v1/clients/{id}/legal-hold`: admins place or lift a legal hold; the retention sweep
/// deletes nothing of a held client. Audited like any change.
async fn set_client_hold<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    id: Uuid,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    if t.claims.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only admins place or lift legal holds".into(),
        ));
    }
    require_write(t, &entity::CLIENTS)?;
    let h: HoldRequest = crate::api::typed_body(req)?;
    let current = load(t, &entity::CLIENTS, id).await?;
    let version = version_of(&current);
    if current
        .get("legal_hold")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        == h.hold
    {
        return Ok(with_bookmark(
            ApiResponse::json(200, render(&id.to_string(), &current))
                .with_header("etag", etag(version)),
            &t.db,
        ));
    }
    let mut ev = new_event(
        p,
        cfg,
        t,
        req,
        Change {
            entity_type: "clients",
            entity_singular: "client",
            entity_id: id,
            action: Action::Updated,
            entity_version: version + 1,
            changed_fields: vec!["legal_hold".into()],
        },
    );
    ev.changes = Some(json!({"legal_hold": {"before": !h.hold, "after": h.hold}}));
    let write = Write {
        table: "clients",
        id,
        edit: Edit::Set(vec![("legal_hold", json!(h.hold))]),
        expect: Expect::Version(version),
        live_only: true,
        event: ev,
        with: vec![],
    };
    let landed = commit(&t.db, &write)
        .await?
        .ok_or_else(|| ApiError::Conflict("the client changed concurrently; retry".into()))?;
    publish(p, cfg, t, vec![landed.event]).await;
    Ok(with_bookmark(
        ApiResponse::json(200, render(&id.to_string(), &landed.body))
            .with_header("etag", etag(landed.version)),
        &t.db,
    ))
}
