//! The operator routes' handlers (moved from the API Worker's `api/admin`): accounts, shards,
//! health, proposals, dead letters, local test helpers, identity providers, job runs and the
//! platform audit trail. Authentication and the audit record happen before (`operator::route`).

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::{json_body, parse_id, Platform};
use crate::domain::auth::{self, Claims, Role};
use crate::domain::clock::{rfc3339, uuid_v4};
use crate::domain::event::Actor;
use crate::domain::identity::IdentitySettings;
use crate::domain::operator::Operator;
use crate::domain::tenancy::{Account, AccountKind, Shard};
use crate::operator::routes::Handler as H;
use crate::operator::{OperatorConfig, OperatorPlatform};
use crate::ports::*;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

pub(crate) async fn dispatch<P: OperatorPlatform>(
    p: &P,
    cfg: &OperatorConfig,
    req: &ApiRequest,
    handler: H,
    param: &str,
    operator: &Operator,
) -> Result<ApiResponse, ApiError> {
    let id = || parse_id(param);
    match handler {
        H::Health | H::OpenApi => Err(ApiError::NotFound("public route".into())),
        H::ListShards => list_shards(p).await,
        H::ShardHealth => shard_health(p, param, req).await,
        H::Proposals => proposals(p).await,
        H::PlatformEvents => platform_events(p, req).await,
        H::CreateAccount => create_account(p, req).await,
        H::GetAccount => get_account(p, id()?).await,
        H::Deactivate => set_active(p, cfg, req, operator, id()?, false).await,
        H::Reactivate => set_active(p, cfg, req, operator, id()?, true).await,
        H::MintToken => mint_token(p, cfg, id()?, req).await,
        H::AddDomain => add_domain(p, id()?, req).await,
        H::SetIdentity => set_identity(p, cfg, req, operator, id()?).await,
        H::JobRuns => job_runs(p, req).await,
        H::RunJob => run_job(p, param, req).await,
        H::SetFaults => set_faults(p, cfg, id()?, req).await,
        H::AccountHold => set_account_hold(p, cfg, operator, id()?, req).await,
        H::DeadLetters => list_dead_letters(p, req).await,
        H::InjectMessage => inject_message(p, cfg, req).await,
        H::ReplayDeadLetter => replay_dead_letter(p, param).await,
        H::ListAudit => list_audit(p, req).await,
        H::VerifyAudit => verify_audit(p, req).await,
        H::ListMoves => crate::operator::moves::list(p).await,
        H::CreateMove => crate::operator::moves::create(p, req).await,
        H::GetMove => crate::operator::moves::get(p, param).await,
        H::CancelMove => crate::operator::moves::cancel(p, param).await,
        H::StepMove => crate::operator::moves::step(p, param, req).await,
        H::ActivateShard => crate::operator::moves::activate_shard(p, param).await,
    }
}

async fn list_shards<P: Platform>(p: &P) -> Result<ApiResponse, ApiError> {
    let rows = p
        .accounts()
        .query(crate::store::accounts::shards_with_counts())
        .await?;
    let items: Vec<Value> = rows
        .rows
        .iter()
        .filter_map(|r| {
            let mut b = col_json(r, "body")?;
            b["account_count"] = json!(col_i64(r, "accounts").unwrap_or(0));
            b["latest_health"] = col_json(r, "latest").unwrap_or(Value::Null);
            Some(b)
        })
        .collect();
    Ok(ApiResponse::json(200, json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    name: String,
    slug: String,
    #[serde(default = "default_kind")]
    kind: AccountKind,
    /// Place on this dedicated shard; otherwise the least-full active shared shard.
    #[serde(default)]
    shard_id: Option<String>,
    #[serde(default)]
    uk_only: bool,
    #[serde(default)]
    cidr_allowlist: Option<Vec<String>>,
    #[serde(default)]
    id: Option<Uuid>,
}

fn default_kind() -> AccountKind {
    AccountKind::Production
}

fn slug_ok(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

async fn create_account<P: Platform>(p: &P, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let input: NewAccount = crate::api::typed_body(req)?;
    if input.name.trim().is_empty() || input.name.len() > 200 {
        return Err(ApiError::bad_request("name must be 1 to 200 characters"));
    }
    if !slug_ok(&input.slug) {
        return Err(ApiError::bad_request("slug must be 3-63 of a-z, 0-9 and -"));
    }
    for c in input.cidr_allowlist.iter().flatten() {
        if crate::services::tenancy::parse_cidr(c).is_none() {
            return Err(ApiError::bad_request(format!("`{c}` is not a CIDR block")));
        }
    }
    let shard: Shard = match &input.shard_id {
        Some(id) => {
            let rows = p
                .accounts()
                .query(crate::store::registry::shard_stmt(id))
                .await?;
            let s: Shard = rows
                .first()
                .and_then(|r| col_json(r, "body"))
                .and_then(|b| serde_json::from_value(b).ok())
                .ok_or_else(|| ApiError::Unprocessable(format!("no shard {id}")))?;
            if s.status != crate::domain::tenancy::ShardStatus::Active {
                return Err(ApiError::Unprocessable(format!("shard {id} is not active")));
            }
            s
        }
        None => place(p).await?,
    };
    let now = rfc3339(p.now());
    let account = Account {
        id: input.id.unwrap_or_else(|| uuid_v4(p.entropy())),
        name: input.name,
        slug: input.slug,
        db_shard_id: shard.id.clone(),
        is_active: true,
        tier: shard.tier,
        kind: input.kind,
        uk_only: input.uk_only,
        cidr_allowlist: input.cidr_allowlist,
        retention: json!({"preset": "uk-financial-advice"}),
        created_at: now.clone(),
        updated_at: now,
        version: 1,
        legal_hold: false,
        faults: None,
    };
    let body = serde_json::to_string(&account).map_err(|e| ApiError::Internal(e.to_string()))?;
    p.accounts()
        .query(crate::store::accounts::insert_account(account.id, &body))
        .await?;
    Ok(
        ApiResponse::json(201, serde_json::to_value(&account).unwrap_or_default())
            .with_header("location", format!("/admin/v1/accounts/{}", account.id)),
    )
}

async fn load_account<P: Platform>(p: &P, id: Uuid) -> Result<Account, ApiError> {
    p.accounts()
        .query(crate::store::accounts::account(id))
        .await?
        .first()
        .and_then(|r| col_json(r, "body"))
        .and_then(|b| serde_json::from_value(b).ok())
        .ok_or_else(|| ApiError::NotFound(format!("no account {id}")))
}

async fn get_account<P: Platform>(p: &P, id: Uuid) -> Result<ApiResponse, ApiError> {
    let a = load_account(p, id).await?;
    Ok(ApiResponse::json(
        200,
        serde_json::to_value(a).unwrap_or_default(),
    ))
}

async fn set_active<P: Platform>(
    p: &P,
    cfg: &OperatorConfig,
    req: &ApiRequest,
    operator: &Operator,
    id: Uuid,
    active: bool,
) -> Result<ApiResponse, ApiError> {
    set_account_field(p, cfg, req, operator, id, "is_active", json!(active)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    sub: Uuid,
    role: Role,
    #[serde(default = "default_ttl")]
    ttl_seconds: i64,
}

fn default_ttl() -> i64 {
    3600
}

async fn mint_token<P: Platform>(
    p: &P,
    cfg: &OperatorConfig,
    id: Uuid,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    if !cfg.api.local {
        return Err(ApiError::NotFound(
            "demo tokens exist only in the local environment".into(),
        ));
    }
    let t: TokenRequest = crate::api::typed_body(req)?;
    if !(60..=30 * 86_400).contains(&t.ttl_seconds) {
        return Err(ApiError::bad_request("ttl_seconds must be 60 to 2592000"));
    }
    load_account(p, id).await?;
    let now = p.now().unix_timestamp();
    let claims = Claims {
        sub: t.sub,
        account_id: id,
        role: t.role,
        exp: now + t.ttl_seconds,
        iat: now,
        nbf: None,
        iss: cfg.api.jwt.issuer.clone(),
        aud: cfg.api.jwt.audience.clone(),
    };
    let token = auth::mint(&claims, &cfg.api.jwt)?;
    Ok(ApiResponse::json(
        201,
        json!({"token": token, "claims": claims}),
    ))
}

async fn job_runs<P: Platform>(p: &P, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let job = req.query_param("job");
    let stmt = crate::store::operations::job_runs(job);
    body_items(p, stmt).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDomain {
    hostname: String,
}

fn hostname_ok(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').count() >= 2
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

async fn add_domain<P: Platform>(
    p: &P,
    id: Uuid,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let d: NewDomain = crate::api::typed_body(req)?;
    let host = d.hostname.trim().to_ascii_lowercase();
    if !hostname_ok(&host) {
        return Err(ApiError::bad_request(format!("`{host}` is not a hostname")));
    }
    load_account(p, id).await?;
    let body = json!({"hostname": host, "account_id": id, "created_at": rfc3339(p.now())});
    p.accounts()
        .query(crate::store::accounts::insert_domain(
            &host,
            &body.to_string(),
        ))
        .await?;
    Ok(ApiResponse::json(201, body))
}

async fn set_faults<P: Platform>(
    p: &P,
    cfg: &OperatorConfig,
    id: Uuid,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    if !cfg.api.local {
        return Err(ApiError::NotFound(
            "fault injection exists only in the local environment".into(),
        ));
    }
    let f: crate::domain::tenancy::Faults = crate::api::typed_body(req)?;
    if !f.valid() {
        return Err(ApiError::bad_request("rates are fractions from 0 to 1"));
    }
    // Local-only test configuration, not a change of the tenant's data: no event, no version.
    let r = p
        .accounts()
        .query(crate::store::accounts::set_faults(
            id,
            &serde_json::to_string(&f).map_err(|e| ApiError::Internal(e.to_string()))?,
        ))
        .await?;
    if r.meta.changes == 0 {
        return Err(ApiError::NotFound(format!("no account {id}")));
    }
    p.routes().forget(id);
    get_account(p, id).await
}

async fn list_dead_letters<P: Platform>(p: &P, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let limit = crate::api::query_limit(req, 50, 200)?;
    let before: Option<(String, String)> = match req.query_param("cursor") {
        Some(c) => Some(
            b64.decode(c)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| ApiError::bad_request("cursor is invalid"))?,
        ),
        None => None,
    };
    let rows = p
        .accounts()
        .query(crate::store::dead_letters::list_stmt(
            before.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            limit,
        ))
        .await?;
    let mut items: Vec<Value> = rows
        .rows
        .iter()
        .filter_map(|r| col_json(r, "body"))
        .collect();
    settle_unknown_dead_letters(p, &mut items).await;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|l| {
            b64.encode(
                serde_json::to_vec(&(
                    l["received_at"].as_str().unwrap_or(""),
                    l["id"].as_str().unwrap_or(""),
                ))
                .unwrap_or_default(),
            )
        })
    } else {
        None
    };
    Ok(ApiResponse::json(
        200,
        json!({ "items": items, "next_cursor": next }),
    ))
}

/// Dead letters recorded `unknown` (their shard did not answer then) get their status now,
/// stored once known; a shard still down leaves them `unknown`.
async fn settle_unknown_dead_letters<P: Platform>(p: &P, items: &mut [Value]) {
    use crate::services::dead_letters::{status, Status};
    if !items
        .iter()
        .any(|i| i["status"] == Status::Unknown.as_str())
    {
        return;
    }
    let Ok(bindings) = crate::store::registry::shard_bindings(p.accounts()).await else {
        return;
    };
    for item in items
        .iter_mut()
        .filter(|i| i["status"] == Status::Unknown.as_str())
    {
        let message = item.get("message").cloned().unwrap_or(Value::Null);
        let Ok(settled) = status(&bindings, |b| p.shard(b, None), &message).await else {
            continue;
        };
        let id = item["id"].as_str().unwrap_or_default().to_string();
        let stmt = crate::store::dead_letters::settle_stmt(&id, settled);
        if p.accounts().query(stmt).await.is_ok() {
            item["status"] = json!(settled.as_str());
        }
    }
}

async fn replay_dead_letter<P: Platform>(p: &P, id: &str) -> Result<ApiResponse, ApiError> {
    if id.is_empty() || id.len() > 128 {
        return Err(ApiError::bad_request("invalid dead-letter id"));
    }
    let dl = crate::store::dead_letters::load(p.accounts(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no dead letter {id}")))?;
    let queue = dl["queue"]
        .as_str()
        .unwrap_or(crate::bindings::CHANGE_EVENTS_QUEUE_NAME);
    if queue != crate::bindings::CHANGE_EVENTS_QUEUE_NAME {
        return Err(ApiError::Unprocessable(format!(
            "dead letters from {queue} are not replayed here; the next change to the entity redoes its index work"
        )));
    }
    let message = dl.get("message").cloned().unwrap_or(Value::Null);
    p.queue()
        .send_batch(vec![message])
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    p.accounts()
        .query(crate::store::dead_letters::mark_replayed(id, p.now()))
        .await?;
    let dl = crate::store::dead_letters::load(p.accounts(), id)
        .await?
        .unwrap_or(dl);
    Ok(ApiResponse::json(200, dl))
}

/// Local only: put a raw message on the change-event queue (tests use it for poison messages).
async fn inject_message<P: Platform>(
    p: &P,
    cfg: &OperatorConfig,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    if !cfg.api.local {
        return Err(ApiError::NotFound(
            "message injection exists only in the local environment".into(),
        ));
    }
    let v = json_body(req, &["application/json"])?;
    p.queue()
        .send_batch(vec![v])
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(ApiResponse::empty(202))
}

/// Placement of a new account: with health data, the planner's least-full active shared shard
/// below its soft cap (never one above it); before any health sample exists, the active shared
/// shard with the fewest accounts.
async fn place<P: Platform>(p: &P) -> Result<Shard, ApiError> {
    let (loads, _) = crate::store::shard_health::loads(p.accounts()).await?;
    let sampled = loads.iter().any(|l| l.size_bytes > 0);
    let chosen_id = if sampled {
        Some(
            crate::domain::planner::place_new_account(
                &loads,
                &crate::domain::planner::Policy::default(),
            )
            .map(|s| s.id.clone())
            .ok_or_else(|| {
                ApiError::Unavailable("no active shared shard is below its soft cap".into())
            })?,
        )
    } else {
        None
    };
    let stmt = match &chosen_id {
        Some(id) => crate::store::registry::shard_stmt(id),
        None => crate::store::accounts::placement_stmt(),
    };
    p.accounts()
        .query(stmt)
        .await?
        .first()
        .and_then(|r| col_json(r, "body"))
        .and_then(|b| serde_json::from_value(b).ok())
        .ok_or_else(|| ApiError::Unavailable("no active shared shard has room".into()))
}

async fn shard_health<P: Platform>(
    p: &P,
    id: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let limit = crate::api::query_limit(req, 96, 500)? as i64;
    let exists = p
        .accounts()
        .query(crate::store::accounts::shard_exists(id))
        .await?;
    if exists.rows.is_empty() {
        return Err(ApiError::NotFound(format!("no shard {id}")));
    }
    let rows = p
        .accounts()
        .query(crate::store::operations::health_samples(id, limit))
        .await?;
    let items: Vec<Value> = rows
        .rows
        .iter()
        .filter_map(|r| col_json(r, "body"))
        .collect();
    Ok(ApiResponse::json(
        200,
        json!({ "shard_id": id, "items": items }),
    ))
}

/// `{"items": [...]}` of the `body` column of an account-D1 query.
async fn body_items<P: Platform>(p: &P, stmt: Stmt) -> Result<ApiResponse, ApiError> {
    let rows = p.accounts().query(stmt).await?;
    let items: Vec<Value> = rows
        .rows
        .iter()
        .filter_map(|r| col_json(r, "body"))
        .collect();
    Ok(ApiResponse::json(200, json!({ "items": items })))
}

async fn proposals<P: Platform>(p: &P) -> Result<ApiResponse, ApiError> {
    body_items(p, crate::store::operations::open_proposals()).await
}

/// `GET /admin/v1/platform-events?type=&limit=`: newest first.
async fn platform_events<P: Platform>(p: &P, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let limit = crate::api::query_limit(req, 100, 500)?;
    let ty = req.query_param("type").filter(|t| !t.is_empty());
    if ty.is_some_and(|t| t.len() > 200) {
        return Err(ApiError::bad_request("type is at most 200 characters"));
    }
    body_items(p, crate::store::platform_events::list_stmt(ty, limit)).await
}

/// `PUT /admin/v1/accounts/{id}/legal-hold`: a hold on everything of the account.
async fn set_account_hold<P: Platform>(
    p: &P,
    cfg: &OperatorConfig,
    operator: &Operator,
    id: Uuid,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let h: crate::api::HoldRequest = crate::api::typed_body(req)?;
    set_account_field(p, cfg, req, operator, id, "legal_hold", json!(h.hold)).await
}

/// Set one field of an account's body through the write protocol (its version moves by one,
/// and the change is an `account.updated` event in the tenant's audit trail, attributed to the
/// operator by name), and drop the cached route so this isolate sees it at once (others within the
/// route cache's TTL).
async fn set_account_field<P: Platform>(
    p: &P,
    cfg: &OperatorConfig,
    req: &ApiRequest,
    operator: &Operator,
    id: Uuid,
    field: &'static str,
    value: Value,
) -> Result<ApiResponse, ApiError> {
    let actor = Actor::System {
        id: operator.actor_id(),
    };
    let outcome =
        crate::api::change_account(p, &cfg.api, id, field, value, actor, &req.request_id).await?;
    if outcome == crate::services::changes::AccountOutcome::Missing {
        return Err(ApiError::NotFound(format!("no account {id}")));
    }
    get_account(p, id).await
}

/// `PUT /admin/v1/accounts/{id}/identity`: set an account's trusted identity providers. The
/// bootstrap of a production account, which accepts no HS256 token: its first issuer is set
/// here. The same service and account change as the tenant's own `PUT /v1/settings/identity`
/// (claimed first, one account per issuer and audience; released after), attributed to the
/// operator in the tenant's trail as in the platform's.
async fn set_identity<P: Platform>(
    p: &P,
    cfg: &OperatorConfig,
    req: &ApiRequest,
    operator: &Operator,
    id: Uuid,
) -> Result<ApiResponse, ApiError> {
    use crate::services::identity as service;
    let settings: IdentitySettings = crate::api::typed_body(req)?;
    settings
        .validate(cfg.api.local)
        .map_err(ApiError::bad_request)?;
    load_account(p, id).await?;
    service::claim_issuers(p.accounts(), id, &settings, &rfc3339(p.now())).await?;
    let value = serde_json::to_value(&settings).map_err(|e| ApiError::Internal(e.to_string()))?;
    let actor = Actor::System {
        id: operator.actor_id(),
    };
    let outcome =
        crate::api::change_account(p, &cfg.api, id, "identity", value, actor, &req.request_id)
            .await?;
    if outcome == crate::services::changes::AccountOutcome::Missing {
        return Err(ApiError::NotFound(format!("no account {id}")));
    }
    service::release_issuers(p.accounts(), id, &settings).await?;
    p.routes().forget(id);
    Ok(ApiResponse::json(
        200,
        serde_json::to_value(&settings).unwrap_or_default(),
    ))
}

/// `POST /admin/v1/jobs/{job}/run`: the scheduler runs it (service binding) and answers with
/// its recorded run.
async fn run_job<P: OperatorPlatform>(
    p: &P,
    job: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    if !crate::operator::jobs::known(job) {
        return Err(ApiError::NotFound(format!(
            "no job {job}; jobs: outbox_relay, shard_health, migration_check, retention, audit_checkpoints, moves"
        )));
    }
    p.run_job(job, None, &req.request_id)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the scheduler did not answer: {e}")))
}

fn audit_error(e: crate::services::platform_audit::PlatformAuditError) -> ApiError {
    use crate::services::platform_audit::PlatformAuditError as E;
    match e {
        E::Store(s) => ApiError::Store(s),
        other => ApiError::Internal(other.to_string()),
    }
}

/// `GET /admin/v1/audit?after_seq=&limit=`: the platform audit trail, oldest first.
async fn list_audit<P: Platform>(p: &P, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let limit = crate::api::query_limit(req, 100, 1000)? as i64;
    let after = match req.query_param("after_seq") {
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::bad_request("after_seq is a sequence number"))?,
        None => 0,
    };
    let items = crate::services::platform_audit::page(p.accounts(), after, limit)
        .await
        .map_err(audit_error)?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|e| e.seq))
        .flatten();
    Ok(ApiResponse::json(
        200,
        json!({"items": items, "next_after_seq": next}),
    ))
}

/// `GET /admin/v1/audit/verify`: recompute the platform trail's chain from genesis.
async fn verify_audit<P: Platform>(p: &P, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let max = crate::api::query_limit(req, 50_000, 50_000)? as i64;
    let v = crate::services::platform_audit::verify(p.accounts(), max)
        .await
        .map_err(audit_error)?;
    Ok(ApiResponse::json(
        200,
        serde_json::to_value(v).unwrap_or_default(),
    ))
}
