//! `GET /v1/audit` (JSON pages) and `GET /v1/audit/export` (JSON Lines), admins only.
//! One filter mode at a time, each served by its own index: target, actor, or time range.

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse, Body, Method};
use crate::api::{ApiConfig, Platform, Tenant};
use crate::domain::auth::Role;
use crate::domain::checkpoint::{period_label, period_start, KeyRing, Problem};
use crate::domain::entity::is_uuid;
use crate::ports::{col_i64, col_json, col_str, Database};
use crate::services::checkpoints::{self, CheckpointError};
use crate::store::audit::{list_stmt, AuditQuery};
use serde_json::{json, Value};

pub const MAX_PAGE: usize = 200;
pub const MAX_EXPORT: usize = 1000;

/// A position in the audit list; its cursor is MAC'd and bound to the account and the filter
/// (`api::cursor`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Position {
    seq: i64,
    t: Option<String>,
}

fn parse_query(req: &ApiRequest) -> Result<AuditQuery, ApiError> {
    let get = |k: &str| req.query_param(k).map(str::to_owned);
    for (k, _) in &req.query {
        if ![
            "target_type",
            "target_id",
            "actor_id",
            "from",
            "to",
            "limit",
            "cursor",
        ]
        .contains(&k.as_str())
        {
            return Err(ApiError::BadRequest {
                detail: format!("unknown parameter `{k}`; filter by target_type+target_id, actor_id, or from+to"),
                extra: Some(json!({"allowed_filters": ["target_type", "target_id", "actor_id", "from", "to"]})),
            });
        }
    }
    let target = (get("target_type"), get("target_id"));
    let actor = get("actor_id");
    let time = (get("from"), get("to"));
    let modes = [
        target.0.is_some() || target.1.is_some(),
        actor.is_some(),
        time.0.is_some() || time.1.is_some(),
    ];
    if modes.iter().filter(|m| **m).count() > 1 {
        return Err(ApiError::bad_request(
            "filter by one of: target, actor, or time range",
        ));
    }
    if let (Some(ty), Some(id)) = target.clone() {
        // Entities, and the account's own row and erasure requests (their changes are audited).
        let known = crate::domain::entity::ALL.iter().any(|e| e.table == ty)
            || ["accounts", "erasure_requests"].contains(&ty.as_str());
        if !known || !is_uuid(&id) {
            return Err(ApiError::bad_request(
                "target_type is a collection name and target_id a UUID",
            ));
        }
        return Ok(AuditQuery::Target {
            entity_type: ty,
            id: id.to_ascii_lowercase(),
        });
    }
    if modes[0] {
        return Err(ApiError::bad_request(
            "target_type and target_id go together",
        ));
    }
    if let Some(a) = actor {
        if a.is_empty() || a.len() > 100 {
            return Err(ApiError::bad_request(
                "actor_id is a user id or a system job name",
            ));
        }
        return Ok(AuditQuery::Actor(a));
    }
    if modes[2] {
        let parse = |v: Option<String>, name: &str| -> Result<String, ApiError> {
            v.as_deref()
                .and_then(crate::domain::clock::parse_rfc3339)
                .map(crate::domain::clock::rfc3339)
                .ok_or_else(|| ApiError::bad_request(format!("{name} must be an RFC 3339 time")))
        };
        return Ok(AuditQuery::Time {
            from: parse(time.0, "from")?,
            to: parse(time.1, "to")?,
        });
    }
    Ok(AuditQuery::All)
}

pub async fn list(
    cfg: &ApiConfig,
    t: &Tenant<impl Database>,
    req: &ApiRequest,
    export: bool,
) -> Result<ApiResponse, ApiError> {
    if t.claims.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only admins read the audit trail".into(),
        ));
    }
    let q = parse_query(req)?;
    let max = if export { MAX_EXPORT } else { MAX_PAGE };
    let limit = crate::api::query_limit(req, if export { MAX_EXPORT } else { 50 }, max)?;
    let scope = format!("audit?{q:?}");
    let after: Option<Position> = match req.query_param("cursor") {
        Some(c) => Some(crate::api::cursor::open(
            &cfg.cursor_secret,
            t.account_id(),
            &scope,
            c,
        )?),
        None => None,
    };
    if export && req.method == Method::Head {
        // HEAD of the export: its headers, without running it.
        return Ok(ApiResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/x-ndjson".into())],
            body: Body::Empty,
        });
    }
    let rows =
        t.db.query(list_stmt(
            t.account_id(),
            &q,
            after.as_ref().map(|c| (c.seq, c.t.as_deref())),
            limit,
        ))
        .await?;
    let mut items: Vec<Value> = rows
        .rows
        .iter()
        .filter_map(|r| col_json(r, "body"))
        .collect();
    let more = items.len() > limit;
    let next = if more {
        items.truncate(limit);
        let last = rows.rows.get(limit - 1);
        last.map(|r| {
            let body = col_json(r, "body").unwrap_or_default();
            crate::api::cursor::seal(
                &cfg.cursor_secret,
                t.account_id(),
                &scope,
                &Position {
                    seq: col_i64(r, "seq").unwrap_or(0),
                    t: body["event_time"].as_str().map(str::to_owned),
                },
            )
        })
        .transpose()?
    } else {
        None
    };
    if export {
        // The stored text as is: it is what the chain and the offline verifier check (a
        // re-serialised value would spell it differently).
        let mut out = Vec::new();
        for r in rows.rows.iter().take(limit) {
            if let Some(text) = col_str(r, "body") {
                out.extend_from_slice(text.as_bytes());
                out.push(b'\n');
            }
        }
        let mut r = ApiResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/x-ndjson".into())],
            body: Body::Bytes(out),
        };
        if let Some(n) = next {
            r = r.with_header("x-next-cursor", n);
        }
        return Ok(r);
    }
    Ok(ApiResponse::json(
        200,
        json!({"items": items, "next_cursor": next}),
    ))
}

pub const MAX_CHECKPOINT_PAGE: usize = 500;

/// The audit writer's published keys, or a 500 naming the setting: verify without them would
/// call every receipt forged.
fn configured_keys(cfg: &ApiConfig) -> Result<KeyRing, ApiError> {
    if cfg.audit_keys.is_empty() {
        return Err(ApiError::Misconfigured(
            "AUDIT_PUBLIC_KEYS is missing or not a JSON array of {key_id, public_key}".into(),
        ));
    }
    KeyRing::new(&cfg.audit_keys)
        .map_err(|e| ApiError::Misconfigured(format!("AUDIT_PUBLIC_KEYS: {e}")))
}

/// `GET /v1/audit/verify[?after_seq=N[&after_hash=H]][&checkpoints_before=P]`: one bounded step
/// of recomputing the chain (`services::audit::verify`; follow `next` until it is null) and one
/// week of the signed checkpoints checked against the trail: the most recent by default
/// (with every period due by now, and the head anchors), older weeks with
/// `checkpoints_before` (follow `checkpoints.next_before`). `ok` is false on any finding.
pub async fn verify<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<impl Database>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    if t.claims.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only admins verify the audit trail".into(),
        ));
    }
    for (k, _) in &req.query {
        if !["after_seq", "after_hash", "checkpoints_before"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter `{k}`; resume with after_seq (and after_hash) from `next`, \
                 and page older checkpoints with checkpoints_before from `checkpoints.next_before`"
            )));
        }
    }
    let after_seq = match req.query_param("after_seq") {
        Some(s) => Some(s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_request("after_seq is a sequence number (an integer >= 0)")
        })?),
        None => None,
    };
    let after_hash = req.query_param("after_hash");
    if after_hash.is_some_and(|h| h.len() != 64 || !h.bytes().all(|c| c.is_ascii_hexdigit())) {
        return Err(ApiError::bad_request("after_hash is a SHA-256 hex digest"));
    }
    let after = match (after_seq, after_hash) {
        (Some(seq), hash) => Some((seq, hash)),
        (None, Some(_)) => return Err(ApiError::bad_request("after_hash goes with after_seq")),
        (None, None) => None,
    };
    let before = period_param(req, "checkpoints_before")?
        .as_deref()
        .and_then(crate::domain::clock::parse_rfc3339);
    let keys = configured_keys(cfg)?;
    let mut v = crate::services::audit::verify(
        &t.db,
        t.account_id(),
        after,
        crate::services::audit::VERIFY_MAX_ROWS,
        &keys,
    )
    .await?
    .ok_or_else(|| ApiError::bad_request("after_seq names no link of this account's chain"))?;
    let window = checkpoints::verify_recent(
        &t.db,
        p.checkpoints(),
        t.account_id(),
        before,
        p.now(),
        &keys,
    )
    .await
    .map_err(checkpoint_error)?;
    // A head the writer anchored above the trail's: what the walk sees as unsigned links at
    // the tail is what was left of a run cut in the middle.
    let cut = window.findings.iter().find_map(|f| match f.problem {
        Problem::Truncated { trail_head } if f.period.is_empty() => Some((f.seq, trail_head)),
        _ => None,
    });
    if let (Some((signed, trail_head)), Some(b)) = (cut, v.first_broken.as_mut()) {
        if b.reason.contains("appended outside the service") && b.seq <= trail_head {
            b.reason = format!(
                "the trail was cut: the writer's signed head {signed} is gone, and links \
                 {}..={trail_head} are what is left of its last run",
                b.seq
            );
            v.reason = Some(b.reason.clone());
        }
    }
    let mut body = serde_json::to_value(&v).map_err(|e| ApiError::Internal(e.to_string()))?;
    body["ok"] = json!(v.ok && window.findings.is_empty());
    body["checkpoints"] = json!({
        "ok": window.findings.is_empty(),
        "checked": window.checked,
        "from": window.from,
        "to": window.to,
        "findings": window.findings,
        "next_before": window.next_before,
    });
    Ok(ApiResponse::json(200, body))
}

/// `GET /v1/audit/checkpoints[?after=P][&limit=N]`: the account's signed checkpoints, oldest
/// first, as stored in the checkpoint bucket, and `head`, the writer's latest anchored head
/// (verify them offline with `audit-verify`).
pub async fn checkpoints<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<impl Database>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    if t.claims.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only admins read the audit checkpoints".into(),
        ));
    }
    for (k, _) in &req.query {
        if !["after", "limit"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter `{k}`; page with after (a period) and limit"
            )));
        }
    }
    let after = period_param(req, "after")?;
    let limit = crate::api::query_limit(req, 100, MAX_CHECKPOINT_PAGE)?;
    let start_after = after
        .as_deref()
        .map(|a| checkpoints::object_key(t.account_id(), a));
    let items = checkpoints::list(
        p.checkpoints(),
        t.account_id(),
        start_after.as_deref(),
        limit,
    )
    .await
    .map_err(checkpoint_error)?;
    let next = (items.len() == limit)
        .then(|| items.last().map(|(_, c)| c.checkpoint.period.clone()))
        .flatten();
    let items: Vec<_> = items.into_iter().map(|(_, c)| c).collect();
    // The writer's latest anchored head: an exported trail must reach it.
    let head = match configured_keys(cfg) {
        Ok(keys) => checkpoints::latest_anchor(&t.db, p.checkpoints(), &keys, t.account_id())
            .await
            .map_err(checkpoint_error)?,
        Err(e) => return Err(e),
    };
    Ok(ApiResponse::json(
        200,
        json!({"items": items, "next_after": next, "head": head}),
    ))
}

/// `GET /.well-known/audit-keys`: the audit writer's public keys, old ones included, each with
/// its fingerprint (SHA-256 of the key), which an auditor compares with one received out of band.
pub fn keys(cfg: &ApiConfig) -> Result<ApiResponse, ApiError> {
    configured_keys(cfg)?;
    let keys: Vec<Value> = cfg
        .audit_keys
        .iter()
        .map(|k| json!({"key_id": k.key_id, "public_key": k.public_key, "fingerprint": k.fingerprint()}))
        .collect();
    Ok(ApiResponse::json(200, json!({"keys": keys})))
}

/// A period parameter: an RFC 3339 instant, given back as the period label it falls in.
fn period_param(req: &ApiRequest, name: &str) -> Result<Option<String>, ApiError> {
    match req.query_param(name) {
        None => Ok(None),
        Some(v) => crate::domain::clock::parse_rfc3339(v)
            .map(|t| Some(period_label(period_start(t))))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name} is a period (RFC 3339, e.g. 2026-12-02T14:00:00.000Z)"
                ))
            }),
    }
}

fn checkpoint_error(e: CheckpointError) -> ApiError {
    match e {
        CheckpointError::Store(e) => e.into(),
        CheckpointError::Bucket(e) => e.into(),
        other => ApiError::Unavailable(other.to_string()),
    }
}
