//! `Idempotency-Key` on creates: the key is scoped to the account (the row's `account_id`), the
//! caller and the route (`{user}:POST /v1/{collection}:{key}`, the collection's template, so
//! `/v1/clients/` and `/v1/clients` share keys); the same key with the same JSON (compared
//! canonically: whitespace and key order do not matter) replays the first outcome, with another
//! body it is 422. The row stores
//! the outcome by reference (status, table, id); a replay renders the row as it is now, and a
//! created row since deleted or erased is 410 Gone, never its old body.

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::preconditions::etag;
use crate::api::render::present;
use crate::api::Tenant;
use crate::domain::entity::{self, EntitySpec};
use crate::ports::*;
use crate::services::changes::version_of;
use crate::store::entities::get_any_stmt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a key's row remembers of the request: SHA-256 of the route and the body's canonical
/// JSON (keys sorted at every level, no insignificant whitespace). A body that is not JSON is
/// hashed as sent (it never reaches a create: `json_body` refuses it first).
pub(crate) fn request_hash(spec: &EntitySpec, req: &ApiRequest) -> String {
    let body = entity::strict_json::from_slice(&req.body)
        .map(|v| canonical_json(&v).into_bytes())
        .unwrap_or_else(|_| req.body.clone());
    let mut h = Sha256::new();
    h.update(b"canonical-v1\0");
    h.update(format!("/v1/{}", spec.table).as_bytes());
    h.update([0]);
    h.update(&body);
    hex::encode(h.finalize())
}

/// The hash rows written before bodies were compared canonically hold: the raw path and bytes.
fn legacy_request_hash(req: &ApiRequest) -> String {
    let mut h = Sha256::new();
    h.update(req.path.as_bytes());
    h.update([0]);
    h.update(&req.body);
    hex::encode(h.finalize())
}

/// JSON with its object keys sorted at every level and no whitespace: one spelling per value.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let members: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&o[k])))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// A request's idempotency key, scoped to its user and route: `id` (the key as a SHA-256
/// digest: the caller's key is free text and may name the person the request is about), and
/// the form rows written before keys were digested hold (`legacy`, looked up only).
pub(crate) struct IdempotencyKey {
    pub id: String,
    legacy: String,
}

pub(crate) fn idempotency_key(
    t: &Tenant<impl Database>,
    spec: &EntitySpec,
    req: &ApiRequest,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(k) = req.header("idempotency-key") else {
        return Ok(None);
    };
    let k = k.trim();
    if k.is_empty() || k.len() > 200 || !k.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 200 printable ASCII characters",
        ));
    }
    let scope = format!("{}:POST /v1/{}:", t.claims.sub, spec.table);
    let digest = hex::encode(sha2::Sha256::digest(k.as_bytes()));
    Ok(Some(IdempotencyKey {
        id: format!("{scope}#{digest}"),
        legacy: format!("{scope}{k}"),
    }))
}

pub(crate) async fn replay(
    t: &Tenant<impl Database>,
    spec: &EntitySpec,
    key: &IdempotencyKey,
    req: &ApiRequest,
) -> Result<Option<ApiResponse>, ApiError> {
    let find = crate::store::idempotency::find(t.account_id(), &key.id, &key.legacy);
    let rows = t.db.query(find).await?;
    let Some(stored) = rows.first().and_then(|r| col_json(r, "body")) else {
        return Ok(None);
    };
    let stored_hash = stored.get("request_hash").and_then(Value::as_str);
    if stored_hash != Some(request_hash(spec, req).as_str())
        && stored_hash != Some(legacy_request_hash(req).as_str())
    {
        return Err(ApiError::Unprocessable(
            "this Idempotency-Key was used with a different request body".into(),
        ));
    }
    // What the first request created; rows written before outcomes were stored by reference
    // name it only in their `location` (`/v1/{table}/{id}`).
    let location = stored["location"].as_str().unwrap_or_default().to_string();
    let from_location = location
        .strip_prefix("/v1/")
        .and_then(|l| l.split_once('/'));
    let table = stored["table"]
        .as_str()
        .or(from_location.map(|(t, _)| t))
        .and_then(entity::by_table);
    let id = stored["entity_id"]
        .as_str()
        .or(from_location.map(|(_, id)| id))
        .and_then(|id| Uuid::parse_str(id).ok());
    let (Some(spec), Some(id)) = (table, id) else {
        return Err(ApiError::Internal(format!(
            "idempotency row {} names no resource",
            key.id
        )));
    };
    let rows = t.db.query(get_any_stmt(spec, t.account_id(), id)).await?;
    let body = rows
        .first()
        .and_then(|r| col_json(r, "body"))
        .filter(|b| b["deleted_at"].is_null() && b["erased_at"].is_null())
        .ok_or_else(|| {
            ApiError::Gone(format!(
                "the {} this Idempotency-Key created ({id}) has since been deleted or erased; \
                 its first response is not replayed",
                spec.singular
            ))
        })?;
    let status = stored["status"].as_u64().unwrap_or(201) as u16;
    let r = ApiResponse::json(
        status,
        present(t.claims.role, spec, &id.to_string(), &body, t.now),
    )
    .with_header("idempotent-replayed", "true")
    .with_header("location", location)
    .with_header("etag", etag(version_of(&body)));
    Ok(Some(r))
}

/// What the key's row stores: the outcome by reference (never the response body, which holds
/// personal data that erasure must be able to remove from one place, the entity row).
pub(crate) fn outcome(req: &ApiRequest, spec: &EntitySpec, id: Uuid, time: &str) -> Value {
    json!({
        "request_hash": request_hash(spec, req),
        "status": 201,
        "table": spec.table,
        "entity_id": id,
        "location": format!("/v1/{}/{}", spec.table, id),
        "created_at": time,
    })
}
