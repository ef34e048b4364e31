//! Layer 3, the API (tenant `/v1` over HTTP; the operator plane is `crate::operator`, its own
//! Worker): the layer that knows requests, responses and problem+json. The API Worker's behaviour, platform-free: authenticate,
//! route the tenant to its shard, validate, write entity + outbox row in one batch, publish,
//! answer. The Worker only adapts. It uses services, store, ports and domain.
#![allow(async_fn_in_trait)]

pub mod audit_api;
pub mod content;
pub mod cors;
mod crud;
pub mod cursor;
pub mod erasure;
pub mod error;
mod events;
mod extract;
mod holds;
pub mod http;
mod idempotency;
pub mod identity;
mod lists;
pub mod openapi;
mod preconditions;
mod render;
pub mod restriction;
pub mod routes;
pub mod settings;
pub(crate) mod tenant;
mod update;

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse, Body, Method};
use crate::domain::auth::JwtConfig;
use crate::domain::clock::Entropy;
use crate::ports::*;
use crate::services::tenancy::RouteCache;
use serde_json::json;
use time::OffsetDateTime;

// The paths the handler modules (and the tests) use.
pub use crate::api::events::publish;
pub(crate) use crate::api::events::{
    admins_only, change_account, change_setting, new_event, settings_route,
};
pub use crate::api::extract::{json_body, parse_id, query_limit, typed_body};
pub(crate) use crate::api::holds::HoldRequest;
pub use crate::api::preconditions::etag;
pub use crate::api::render::{present, render, render_plain, Plain, HIDDEN_FIELDS};
pub(crate) use crate::api::tenant::require_write;
pub use crate::api::tenant::Tenant;
pub use crate::store::entities::{get_stmt, list_stmt};
/// Everything the API needs from the platform.
pub trait Platform {
    type Db: Database;
    type Queue: EventQueue;
    type Blobs: BlobStore;
    type Entropy: Entropy;
    type Cache: Cache;
    type Checkpoints: ImmutableStore;
    type Fetch: Fetch;
    fn accounts(&self) -> &Self::Db;
    /// What this request has cost the account D1 so far (local `x-account-d1-cost`; zero where
    /// the platform does not meter it per request).
    fn accounts_cost(&self) -> crate::ports::Cost {
        crate::ports::Cost::default()
    }
    /// Outbound HTTP (the identity providers' JWKS).
    fn fetcher(&self) -> &Self::Fetch;
    /// The isolate's cache of the identity providers' keys.
    fn keys(&self) -> &crate::services::identity::KeyCache;
    /// KV for the identity providers' keys, shared by every isolate (None: not bound).
    fn key_store(&self) -> Option<&Self::Cache>;
    /// The KV read cache, when this deployment enables it.
    fn cache(&self) -> Option<&Self::Cache>;
    /// A session on a shard this deployment binds (None: not bound here). `bookmark` is the
    /// client's `x-d1-bookmark`; without one the session is `first-unconstrained`.
    fn shard(&self, binding: &str, bookmark: Option<&str>) -> Option<Self::Db>;
    fn queue(&self) -> &Self::Queue;
    fn blobs(&self) -> &Self::Blobs;
    /// The signed audit checkpoints' bucket (read only: the scheduler writes it).
    fn checkpoints(&self) -> &Self::Checkpoints;
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
    /// Hostnames of the API itself (never looked up as custom domains).
    pub api_hosts: Vec<String>,
    pub max_content_bytes: usize,
    /// The audit writer's public keys, old ones included (`AUDIT_PUBLIC_KEYS`): verify checks
    /// receipts and checkpoints with them, and `/.well-known/audit-keys` publishes them.
    pub audit_keys: Vec<crate::domain::checkpoint::PublicKey>,
    /// The key of the page cursors' MAC (`CURSOR_SECRET`, see `api::cursor`).
    pub cursor_secret: String,
}

pub const BOOKMARK_HEADER: &str = "x-d1-bookmark";
pub const MAX_BOOKMARK: usize = 256;
pub const SIMULATED_COUNTRY_HEADER: &str = "x-simulated-country";
/// Local only: what the request cost in D1 (see `ports::Cost::header`); benchmarks read it.
pub const COST_HEADER: &str = "x-d1-cost";
/// Local only: what the request cost the account D1 (routing); the capacity work counts it.
pub const ACCOUNT_COST_HEADER: &str = "x-account-d1-cost";
pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 50;
pub const DEFAULT_MAX_CONTENT_BYTES: usize = 25 * 1024 * 1024;

pub async fn handle<P: Platform>(p: &P, cfg: &ApiConfig, req: ApiRequest) -> ApiResponse {
    let mut r = match route(p, cfg, &req).await {
        Ok(r) => r.with_header("x-request-id", req.request_id.clone()),
        Err(e) => error_response(e, &req.request_id),
    };
    if let Some(c) = cors::of_host(p, cfg, &req).await {
        let origin = req.header("origin");
        let headers = match (&req.method, r.status) {
            (Method::Options, 204) => c.preflight_headers(
                origin,
                req.header("access-control-request-method"),
                req.header("access-control-request-headers"),
                r.header("allow").unwrap_or_default(),
            ),
            _ => c.response_headers(origin),
        };
        for (k, v) in headers {
            r = r.with_header(&k, v);
        }
    }
    if req.method == Method::Head {
        without_body(r)
    } else {
        r
    }
}

/// A HEAD answer: the GET's status and headers, no body, and `content-length` of the body the
/// GET would have sent (a handler that knows it without making the body, such as the content
/// download, sets it itself).
pub(crate) fn without_body(mut r: ApiResponse) -> ApiResponse {
    let length = match &r.body {
        Body::Empty => None,
        Body::JsonText(t) => Some(t.as_str().len()),
        Body::Json(_) | Body::Bytes(_) => Some(r.body_bytes().len()),
    };
    if let Some(n) = length.filter(|_| r.header("content-length").is_none()) {
        r = r.with_header("content-length", n.to_string());
    }
    r.body = Body::Empty;
    r
}

/// The one place an error becomes a response: problem+json, the request id, `Allow` on 405,
/// and on 401 the RFC 6750 challenge: `error="invalid_request"` when no bearer token was
/// sent (or the header is not `Bearer <token>`), `error="invalid_token"` when the token is
/// bad, expired or not yet valid. (`insufficient_scope` belongs to 403s.)
pub fn error_response(e: ApiError, request_id: &str) -> ApiResponse {
    let allow = match &e {
        ApiError::MethodNotAllowed(a) => Some(*a),
        _ => None,
    };
    let fenced = is_fenced(&e);
    let challenge = match &e {
        ApiError::Auth(a) => bearer_challenge(a),
        _ => None,
    };
    let mut r = e
        .into_problem()
        .into_response(request_id)
        .with_header("x-request-id", request_id);
    if let Some(a) = allow {
        r = r.with_header("allow", a);
    }
    if let Some(c) = challenge {
        r = r.with_header("www-authenticate", c);
    }
    if fenced {
        r = r.with_header("retry-after", FENCED_RETRY_AFTER_SECONDS.to_string());
    }
    r
}

/// A fenced tenant's writes answer 503 with this `Retry-After` (a move's cutover lasts seconds).
pub const FENCED_RETRY_AFTER_SECONDS: u32 = 1;

/// The shard refused the write because the tenant is fenced there (a move; see
/// `store::moves`): nothing was written.
pub fn is_fenced(e: &ApiError) -> bool {
    matches!(e, ApiError::Store(crate::ports::StoreError::Fenced(_)))
}

/// The `WWW-Authenticate` value of a 401 (None for an error that is not a 401).
pub fn bearer_challenge(e: &crate::domain::auth::AuthError) -> Option<String> {
    use crate::domain::auth::AuthError::*;
    let error = match e {
        NotConfigured => return None,
        Missing | Malformed => "invalid_request",
        Invalid(_) | Expired | NotYetValid | UnknownKey => "invalid_token",
    };
    // error_description is a quoted-string of printable ASCII without `"` and `\` (RFC 6750 §3).
    let description: String = e
        .to_string()
        .chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect();
    Some(format!(
        "Bearer realm=\"clientdocs\", error=\"{error}\", error_description=\"{description}\""
    ))
}

async fn route<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    use crate::api::routes::{area, find, Area, Found, Handler, Public};
    // OPTIONS needs no credentials (a CORS preflight never carries any): 204 with the path's
    // `Allow` from the route table. CORS headers only for an account that configured them, on
    // its custom domain (`handle`, `api::cors`).
    if req.method == Method::Options {
        return match crate::api::routes::allow(&req.path) {
            Some(allow) => Ok(ApiResponse::empty(204).with_header("allow", allow)),
            None => Err(not_found(req)),
        };
    }
    match area(&req.path) {
        Area::Public => match find(&req.method, &req.path) {
            Found::Route(r, _) => match r.handler {
                Handler::Public(Public::Health) => Ok(ApiResponse::json(
                    200,
                    json!({"status": "ok", "deployment": cfg.deployment}),
                )),
                Handler::Public(Public::OpenApi) => {
                    Ok(ApiResponse::json(200, crate::api::openapi::document(None)))
                }
                Handler::Public(Public::AuditKeys) => crate::api::audit_api::keys(cfg),
                _ => Err(not_found(req)),
            },
            Found::MethodNotAllowed(allow) => Err(ApiError::MethodNotAllowed(allow)),
            Found::NotFound => Err(not_found(req)),
        },
        Area::Tenant => {
            let mut t = crate::api::tenant::tenant(p, cfg, req).await?;
            // The adapter's request span declares these; every line of this request carries them.
            let span = tracing::Span::current();
            let mut account = uuid::Uuid::encode_buffer();
            span.record(
                "account",
                &*t.account_id().hyphenated().encode_lower(&mut account),
            );
            span.record("shard", t.route.shard.id.as_str());
            let mut result = tenant_route(p, cfg, req, &t).await;
            // The tenant is fenced on the shard this isolate's route names: the route may be
            // stale (the tenant moved). Re-resolve it; on another shard, retry once there,
            // without the old shard's bookmark (a bookmark belongs to one database). Else
            // the move is in its cutover: 503 with Retry-After.
            let retry;
            let mut req = req;
            if matches!(&result, Err(e) if is_fenced(e)) {
                p.routes().forget(t.account_id());
                retry = ApiRequest {
                    headers: req
                        .headers
                        .iter()
                        .filter(|(k, _)| !k.eq_ignore_ascii_case(BOOKMARK_HEADER))
                        .cloned()
                        .collect(),
                    ..req.clone()
                };
                if let Ok(fresh) = crate::api::tenant::tenant(p, cfg, &retry).await {
                    if fresh.route.shard.id != t.route.shard.id {
                        tracing::info!(from = %t.route.shard.id, to = %fresh.route.shard.id,
                            "the tenant moved: route refreshed, write retried on its new shard");
                        span.record("shard", fresh.route.shard.id.as_str());
                        t = fresh;
                        req = &retry;
                        result = tenant_route(p, cfg, req, &t).await;
                    }
                }
            }
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
                t.now,
                crate::services::usage::Usage {
                    requests: 1,
                    writes: u64::from(!matches!(req.method, Method::Get | Method::Head)),
                    cost,
                },
            );
            let mut r = result.unwrap_or_else(|e| error_response(e, &req.request_id));
            // The one place every tenant response gets its bookmark (errors included).
            crate::api::extract::set_bookmark(&mut r, &t.db, req, &t.route.shard.id);
            Ok(if cfg.local {
                r.with_header(COST_HEADER, cost.header())
                    .with_header(ACCOUNT_COST_HEADER, p.accounts_cost().header())
            } else {
                r
            })
        }
    }
}

pub(crate) fn not_found(req: &ApiRequest) -> ApiError {
    ApiError::NotFound(format!("no route for {}", req.path))
}

async fn tenant_route<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    req: &ApiRequest,
    t: &Tenant<P::Db>,
) -> Result<ApiResponse, ApiError> {
    use crate::api::routes::{find, Found, Handler, Tenant as H};
    let (handler, params) = match find(&req.method, &req.path) {
        Found::Route(r, params) => match r.handler {
            Handler::Tenant(h) => (h, params),
            _ => return Err(not_found(req)),
        },
        Found::MethodNotAllowed(allow) => return Err(ApiError::MethodNotAllowed(allow)),
        Found::NotFound => return Err(not_found(req)),
    };
    // Every tenant template has at most one parameter, an entity id.
    let id = || {
        params
            .first()
            .map_or_else(|| Err(not_found(req)), |s| parse_id(s))
    };
    match handler {
        H::List(spec) => lists::list(cfg, t, spec, req).await,
        H::Create(spec) => crud::create(p, cfg, t, spec, req).await,
        H::Get(spec) => crud::get(p, req, t, spec, id()?).await,
        H::Update(spec) => update::update(p, cfg, t, spec, id()?, req).await,
        H::Delete(spec) => crud::delete(p, cfg, t, spec, id()?, req).await,
        H::ClientHold => holds::set_client_hold(p, cfg, t, id()?, req).await,
        H::Restrict => restriction::put(p, cfg, t, id()?, req).await,
        H::Unrestrict => restriction::lift(p, cfg, t, id()?, req).await,
        H::PutContent => crate::api::content::put(p, cfg, t, id()?, req).await,
        H::GetContent => crate::api::content::get(p, t, id()?, req.method == Method::Head).await,
        H::CreateErasure => crate::api::erasure::create(p, cfg, t, req).await,
        H::GetErasure => crate::api::erasure::get(t, id()?).await,
        H::GetRetention => crate::api::settings::get(p, t, req).await,
        H::PutRetention => crate::api::settings::put(p, cfg, t, req).await,
        H::GetIdentity => crate::api::identity::get(p, t, req).await,
        H::PutIdentity => crate::api::identity::put(p, cfg, t, req).await,
        H::GetCors => cors::get(p, t, req).await,
        H::PutCors => cors::put(p, cfg, t, req).await,
        H::ListAudit => crate::api::audit_api::list(cfg, t, req, false).await,
        H::ExportAudit => crate::api::audit_api::list(cfg, t, req, true).await,
        H::VerifyAudit => crate::api::audit_api::verify(p, cfg, t, req).await,
        H::AuditCheckpoints => crate::api::audit_api::checkpoints(p, cfg, t, req).await,
    }
}
