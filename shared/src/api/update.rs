//! `PATCH /v1/{collection}/{id}`: a JSON merge patch (RFC 7396), optionally under `If-Match`.

use crate::api::crud::load;
use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::preconditions::{etag, if_match, matches_etag};
use crate::api::render::{refuse_if_restricted, refuse_personal_data_on_erased};
use crate::api::{
    json_body, new_event, present, publish, require_write, ApiConfig, Platform, Tenant,
};
use crate::domain::entity::{self, EntitySpec};
use crate::domain::event::{Action, Change};
use crate::services::changes::{commit, version_of, Edit, Expect, Write};
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
    let mut patch = json_body(req, &["application/merge-patch+json", "application/json"])?;
    entity::strip_nulls_in_arrays(&mut patch);
    entity::validate_patch(spec, &patch).map_err(ApiError::Validation)?;
    entity::lowercase_uuids(spec, &mut patch);
    // Validation reads the row once: the patch merged onto it must be a valid entity, change no
    // immutable field and change something. The write then merges the patch onto the row as it
    // is when the statement runs (`Edit::MergePatch`), so writers of other fields never
    // conflict; only `If-Match` pins the version the patch was meant for.
    let current = load(t, spec, id).await?;
    let old_version = version_of(&current);
    refuse_if_restricted(spec, &id.to_string(), &current, t.now)?;
    let keys = patch
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>());
    refuse_personal_data_on_erased(spec, &id.to_string(), &current, keys.unwrap_or_default())?;
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
        return Ok(ApiResponse::json(
            200,
            present(t.claims.role, spec, &id.to_string(), &current, t.now),
        )
        .with_header("etag", etag(old_version)));
    }
    crate::api::crud::require_live_references(t, spec, &patch).await?;
    // The event names the fields the patch sets, not those it changed on the row as read: the
    // statement applies it to the row as it is then, which another writer may have moved.
    let patched = entity::field_names(&patch);
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
            changed_fields: patched,
        },
    );
    let write = Write {
        table: spec.table,
        id,
        edit: Edit::MergePatch(patch),
        expect: if_match.map_or(Expect::Any, |_| Expect::Version(old_version)),
        live_only: true,
        event: ev,
        // A client's documents copy what they carry of it in the same batch (the write
        // protocol's `copies_to_documents`).
        with: vec![],
    };
    let Some(landed) = commit(&t.db, &write).await? else {
        // Nothing changed: deleted (404) or restricted (409) meanwhile, or (If-Match) moved on.
        let now = load(t, spec, id).await?;
        refuse_if_restricted(spec, &id.to_string(), &now, t.now)?;
        refuse_personal_data_on_erased(spec, &id.to_string(), &now, &write.event.changed_fields)?;
        return Err(match if_match {
            Some(h) => ApiError::PreconditionFailed(h.into()),
            // Without If-Match the statement only requires a live, unrestricted row, which the
            // read above found again: it was deleted or restricted and restored meanwhile.
            None => ApiError::Conflict(format!(
                "the {} changed while the patch was applied (deleted or restricted, then \
                 restored); nothing was written, retry",
                spec.singular
            )),
        });
    };
    publish(p, cfg, t, vec![landed.event]).await;
    Ok(ApiResponse::json(
        200,
        present(t.claims.role, spec, &id.to_string(), &landed.body, t.now),
    )
    .with_header("etag", etag(landed.version)))
}
