//! `PUT /v1/clients/{id}/legal-hold`: a client's legal hold, set and lifted by admins, also on
//! a soft-deleted client that is not purged yet (the hold stops the purge).

use crate::api::crud::load_any;
use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::preconditions::etag;
use crate::api::{new_event, present, publish, require_write, ApiConfig, Platform, Tenant};
use crate::domain::auth::Role;
use crate::domain::entity;
use crate::domain::event::{Action, Change};
use crate::services::changes::{commit, version_of, Edit, Expect, Write};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HoldRequest {
    pub hold: bool,
}

/// `PUT /v1/clients/{id}/legal-hold`: admins place or lift a legal hold; the retention sweep
/// deletes nothing of a held client. Audited like any change.
pub(crate) async fn set_client_hold<P: Platform>(
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
    // A soft-deleted client still inside its grace period takes a hold too: that is where a
    // hold matters, since it stops the purge (the sweep's purge statement re-checks it).
    let current = load_any(t, &entity::CLIENTS, id).await?;
    let version = version_of(&current);
    // A restricted client takes and loses holds like any other: a hold only protects.
    if current
        .get("legal_hold")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        == h.hold
    {
        return Ok(ApiResponse::json(
            200,
            present(
                t.claims.role,
                &entity::CLIENTS,
                &id.to_string(),
                &current,
                t.now,
            ),
        )
        .with_header("etag", etag(version)));
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
        live_only: false,
        event: ev,
        with: vec![],
    };
    let landed = commit(&t.db, &write)
        .await?
        .ok_or_else(|| ApiError::Conflict("the client changed concurrently; retry".into()))?;
    publish(p, cfg, t, vec![landed.event]).await;
    Ok(ApiResponse::json(
        200,
        present(
            t.claims.role,
            &entity::CLIENTS,
            &id.to_string(),
            &landed.body,
            t.now,
        ),
    )
    .with_header("etag", etag(landed.version)))
}
