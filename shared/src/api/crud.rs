//! Create, get (through the optional KV read cache) and soft delete of the four entities.

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::idempotency::{idempotency_key, outcome, replay};
use crate::api::preconditions::{etag, if_match, if_match_versions};
use crate::api::render::{refuse_if_restricted, render_plain};
use crate::api::{
    json_body, new_event, present, publish, require_write, ApiConfig, Platform, Tenant,
    BOOKMARK_HEADER,
};
use crate::domain::clock::uuid_v7;
use crate::domain::entity::{self, EntitySpec};
use crate::domain::event::{Action, Change};
use crate::ports::*;
use crate::services::changes::{commit, version_of, Edit, Expect, Write};
use crate::store::entities::{get_any_stmt, get_stmt, version_probe_stmt};
use serde_json::Value;
use uuid::Uuid;

pub(crate) async fn create<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    spec: &'static EntitySpec,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    require_write(t, spec)?;
    let mut input = json_body(req, &["application/json"])?;
    entity::validate(spec, &input).map_err(ApiError::Validation)?;
    entity::lowercase_uuids(spec, &mut input);
    let idem = idempotency_key(t, spec, req)?;
    if let Some(key) = &idem {
        if let Some(r) = replay(t, spec, key, req).await? {
            return Ok(r);
        }
    }
    require_live_references(t, spec, &input).await?;
    if spec.table == entity::DOCUMENTS.table {
        refuse_for_restricted_client(t, &input).await?;
    }
    let id = uuid_v7(p.now(), p.entropy());
    let mut body = input.clone();
    entity::strip_nulls(&mut body); // null means "absent", at every level
    let changed = entity::field_names(&input);
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
        // The key's row names the outcome (never its body); it is written in the same batch,
        // so it exists exactly when the row does.
        write.with.push(crate::store::idempotency::insert(
            t.account_id(),
            &key.id,
            &outcome(req, spec, id, &write.event.time),
        ));
    }
    let landed = match commit(&t.db, &write).await {
        Ok(l) => l,
        Err(StoreError::Constraint(m)) => {
            // Classified by what is stored, not by the error's text: if the key's row exists,
            // a concurrent request with the same key won the race (its batch, row and key
            // together, committed): answer as it did. Otherwise it is the entity's constraint.
            if let Some(key) = &idem {
                if let Some(r) = replay(t, spec, key, req).await? {
                    return Ok(r);
                }
            }
            return Err(StoreError::Constraint(m).into());
        }
        Err(e) => return Err(e.into()),
    };
    let landed = landed.ok_or_else(|| ApiError::Internal("the insert returned no row".into()))?;
    publish(p, cfg, t, vec![landed.event]).await;
    Ok(ApiResponse::json(
        201,
        present(t.claims.role, spec, &id.to_string(), &landed.body, t.now),
    )
    .with_header("location", location)
    .with_header("etag", etag(landed.version)))
}

/// Every reference the body sets names a live row (422 otherwise, as for an id that does not
/// exist: the foreign key only knows the key, which a soft-deleted row keeps). One read per
/// reference set. A parent deleted between this read and the write is not caught here.
pub(crate) async fn require_live_references(
    t: &Tenant<impl Database>,
    spec: &EntitySpec,
    body: &Value,
) -> Result<(), ApiError> {
    for r in spec.references {
        let Some(id) = body[r.field].as_str().and_then(|s| Uuid::parse_str(s).ok()) else {
            continue;
        };
        let rows = t.db.query(get_stmt(r.target, t.account_id(), id)).await?;
        if rows.rows.is_empty() {
            return Err(ApiError::Unprocessable(format!(
                "{} {id} does not exist in this account (or has been deleted)",
                r.field
            )));
        }
    }
    Ok(())
}

/// No new document for a restricted client (409 `restricted`, naming the client). A document
/// created in a race with the restriction takes it anyway: the insert copies the client's
/// `restricted` in the same statement.
async fn refuse_for_restricted_client(
    t: &Tenant<impl Database>,
    input: &Value,
) -> Result<(), ApiError> {
    let Some(client) = input["client_id"]
        .as_str()
        .and_then(|c| Uuid::parse_str(c).ok())
    else {
        return Ok(());
    };
    let rows =
        t.db.query(get_stmt(&entity::CLIENTS, t.account_id(), client))
            .await?;
    match rows.first().and_then(|r| col_json(r, "body")) {
        Some(body) => refuse_if_restricted(&entity::CLIENTS, &client.to_string(), &body, t.now),
        None => Ok(()), // the foreign key refuses an unknown client
    }
}

pub(crate) async fn load(
    t: &Tenant<impl Database>,
    spec: &EntitySpec,
    id: Uuid,
) -> Result<Value, ApiError> {
    let rows = t.db.query(get_stmt(spec, t.account_id(), id)).await?;
    rows.first()
        .and_then(|r| col_json(r, "body"))
        .ok_or_else(|| ApiError::NotFound(format!("no {} with id {id}", spec.singular)))
}

/// The row, soft-deleted or not (404 only once it is purged).
pub(crate) async fn load_any(
    t: &Tenant<impl Database>,
    spec: &EntitySpec,
    id: Uuid,
) -> Result<Value, ApiError> {
    let rows = t.db.query(get_any_stmt(spec, t.account_id(), id)).await?;
    rows.first()
        .and_then(|r| col_json(r, "body"))
        .ok_or_else(|| ApiError::NotFound(format!("no {} with id {id}", spec.singular)))
}

/// Cache key of a rendered entity: immutable, because every change to the row moves `version`
/// (user changes) or `index_rev` (the consumer's denormalised fields). One owner: the data map,
/// so erasure deletes exactly the keys the API writes.
pub use crate::domain::personal_data::read_cache_key as cache_key;

pub const CACHE_TTL_SECONDS: u64 = 86_400;

pub(crate) async fn get<P: Platform>(
    p: &P,
    req: &ApiRequest,
    t: &Tenant<P::Db>,
    spec: &EntitySpec,
    id: Uuid,
) -> Result<ApiResponse, ApiError> {
    let respond = |body: Value, v: i64| ApiResponse::json(200, body).with_header("etag", etag(v));
    // With a bookmark the client asked for at least that write: read through the session.
    let cache = p.cache().filter(|_| req.header(BOOKMARK_HEADER).is_none());
    let Some(cache) = cache else {
        // The stored text, rendered as it is for a plain row (`render_plain`); any other row
        // is parsed and presented.
        let rows = t.db.query(get_stmt(spec, t.account_id(), id)).await?;
        let row = rows
            .first()
            .ok_or_else(|| ApiError::NotFound(format!("no {} with id {id}", spec.singular)))?;
        let body = col_str(row, "body").ok_or_else(|| {
            ApiError::Internal(format!("{} {id}: body is not text", spec.singular))
        })?;
        let id = id.to_string();
        if let Some(plain) = render_plain(&id, body) {
            return Ok(
                ApiResponse::json_text(200, plain.doc).with_header("etag", etag(plain.version))
            );
        }
        let body: Value = serde_json::from_str(body)
            .map_err(|e| ApiError::Internal(format!("{} {id}: stored body: {e}", spec.singular)))?;
        return Ok(respond(
            present(t.claims.role, spec, &id, &body, t.now),
            version_of(&body),
        ));
    };
    let probe =
        t.db.query(version_probe_stmt(spec, t.account_id(), id))
            .await?;
    let row = probe
        .first()
        .ok_or_else(|| ApiError::NotFound(format!("no {} with id {id}", spec.singular)))?;
    let (v, r) = (
        col_i64(row, "v").unwrap_or(0),
        col_i64(row, "r").unwrap_or(0),
    );
    let key = cache_key(t.account_id(), spec.table, id);
    if let Ok(Some(hit)) = cache.get(&key).await {
        if let Ok(entry) = serde_json::from_str::<Value>(&hit) {
            // Served only at the version and revision the probe just read.
            if entry["v"].as_i64() == Some(v) && entry["r"].as_i64() == Some(r) {
                let shown = present(t.claims.role, spec, &id.to_string(), &entry["body"], t.now);
                return Ok(respond(shown, v).with_header("x-cache", "hit"));
            }
        }
    }
    let body = load(t, spec, id).await?;
    let (v2, r2) = (
        version_of(&body),
        body.get("index_rev").and_then(Value::as_i64).unwrap_or(0),
    );
    // The cache holds the stored body (both restrictions of a document with it, so which one
    // binds is decided at `now`); what a caller may see is decided on the way out.
    let entry = serde_json::json!({"v": v2, "r": r2, "body": body});
    match cache.put(&key, &entry.to_string(), CACHE_TTL_SECONDS).await {
        Err(e) => tracing::warn!(error = %e, "read cache put failed"),
        Ok(()) => {
            // The row may have changed (been erased, say) since it was loaded: then the entry
            // just put is not current and goes, so no superseded rendering stays in KV.
            let now =
                t.db.query(version_probe_stmt(spec, t.account_id(), id))
                    .await?;
            let moved = now.first().is_none_or(|row| {
                (
                    col_i64(row, "v").unwrap_or(0),
                    col_i64(row, "r").unwrap_or(0),
                ) != (v2, r2)
            });
            if moved {
                let _ = cache.delete(&key).await;
            }
        }
    }
    let shown = present(t.claims.role, spec, &id.to_string(), &body, t.now);
    Ok(respond(shown, v2).with_header("x-cache", "miss"))
}

pub(crate) async fn delete<P: Platform>(
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
        edit: Edit::SoftDeleteUnrestricted,
        expect: versions.map_or(Expect::Any, Expect::OneOf),
        live_only: true,
        event: ev,
        with: vec![],
    };
    let Some(landed) = commit(&t.db, &write).await? else {
        // Nothing changed: gone (404), restricted (409), or at another version (412).
        let current = load(t, spec, id).await?;
        refuse_if_restricted(spec, &id.to_string(), &current, t.now)?;
        return Err(ApiError::PreconditionFailed(
            if_match(req).unwrap_or("*").into(),
        ));
    };
    publish(p, cfg, t, vec![landed.event]).await;
    Ok(ApiResponse::empty(204))
}
