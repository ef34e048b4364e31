//! `PATCH /v1/{collection}/{id}`: a JSON merge patch (RFC 7396), optionally under `If-Match`.

use crate::api::crud::load;
use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::preconditions::{etag, if_match, matches_etag};
use crate::api::render::refuse_if_restricted;
use crate::api::{
    json_body, new_event, present, publish, require_write, with_bookmark, ApiConfig, Platform,
    Tenant,
};
use crate::domain::entity::{self, EntitySpec, CLIENTS};
use crate::domain::event::{Action, Change};
use crate::services::changes::{commit, version_of, Edit, Expect, Write};
use crate::store::entities::client_end_propagation;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Fields a client may not set, kept across a merge patch.
pub(crate) fn split_server_fields(spec: &EntitySpec, body: &Value) -> (Value, Map<String, Value>) {
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

pub(crate) async fn update<P: Platform>(
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
    // Validation reads the row once: the patch merged onto it must be a valid entity, change no
    // immutable field and change something. The write then merges the patch onto the row as it
    // is when the statement runs (`Edit::MergePatch`), so writers of other fields never
    // conflict; only `If-Match` pins the version the patch was meant for.
    let current = load(t, spec, id).await?;
    let old_version = version_of(&current);
    refuse_if_restricted(spec, &id.to_string(), &current)?;
    let if_match = if_match(req);
    if let Some(h) = if_match {
        if !matches_etag(h, old_version) {
            return Err(ApiError::PreconditionFailed(h.into()));
        }
    }
    let (user, _) = split_server_fields(spec, &current);
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
            ApiResponse::json(200, present(t.claims.role, spec, &id.to_string(), &current))
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
            entity_version: old_version + 1, // set from the row as written
            changed_fields: changed,
        },
    );
    let mut with = vec![];
    if spec.table == CLIENTS.table
        && ev
            .changed_fields
            .iter()
            .any(|f| f == "relationship_ended_on")
    {
        with.push(client_end_propagation(
            t.account_id(),
            id,
            merged.get("relationship_ended_on"),
            ev.id,
        ));
    }
    let write = Write {
        table: spec.table,
        id,
        edit: Edit::MergePatch(patch),
        expect: if_match.map_or(Expect::Any, |_| Expect::Version(old_version)),
        live_only: true,
        event: ev,
        with,
    };
    let Some(landed) = commit(&t.db, &write).await? else {
        // Nothing changed: deleted (404) or restricted (409) meanwhile, or (If-Match) moved on.
        let now = load(t, spec, id).await?;
        refuse_if_restricted(spec, &id.to_string(), &now)?;
        return Err(ApiError::PreconditionFailed(if_match.unwrap_or("*").into()));
    };
    publish(p, cfg, t, vec![landed.event]).await;
    Ok(with_bookmark(
        ApiResponse::json(
            200,
            present(t.claims.role, spec, &id.to_string(), &landed.body),
        )
        .with_header("etag", etag(landed.version)),
        &t.db,
    ))
}
