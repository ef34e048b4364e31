//! GDPR erasure requests: `POST /v1/erasure-requests` (admins) records one, due one calendar
//! month after receipt; `GET /v1/erasure-requests/{id}` reports it. The retention sweep carries
//! them out first: personal data with no legal obligation to keep is erased (rows deleted, or
//! pseudonymised where other kept records still refer to them); records a law still requires
//! (AML evidence, HMRC records) are kept, marked restricted until their retention ends. The audit
//! trail holds only pseudonymous ids, so its hash chain is untouched.

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::{new_event, publish, ApiConfig, Platform, Tenant};
use crate::domain::auth::Role;
use crate::domain::clock::{rfc3339, uuid_v7};
use crate::domain::entity::is_uuid;
use crate::domain::event::{Action, Change};
use crate::ports::*;
use crate::services::changes::{commit, Edit, Expect, Write};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRequest {
    subject_type: String,
    subject_id: String,
}

pub async fn create<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    if t.claims.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only admins record erasure requests".into(),
        ));
    }
    crate::api::require_write(t, &crate::domain::entity::CLIENTS)?;
    let mut r: NewRequest = crate::api::typed_body(req)?;
    r.subject_id.make_ascii_lowercase(); // any case accepted, stored lower-case
    let table = match r.subject_type.as_str() {
        "client" => "clients",
        "user" => "users",
        _ => return Err(ApiError::bad_request("subject_type is client or user")),
    };
    if !is_uuid(&r.subject_id) {
        return Err(ApiError::bad_request("subject_id is a UUID"));
    }
    let exists =
        t.db.query(crate::store::erasure_requests::subject_exists_stmt(
            table,
            t.account_id(),
            &r.subject_id,
        ))
        .await?;
    if exists.rows.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "no {} {} in this account",
            r.subject_type, r.subject_id
        )));
    }
    let now = p.now();
    let id = uuid_v7(now, p.entropy());
    let body = json!({
        "id": id, "subject_type": r.subject_type, "subject_id": r.subject_id,
        "requested_by": t.claims.sub, "received_at": rfc3339(now),
        "due_by": rfc3339(crate::domain::retention::erasure_deadline(now)),
        "status": "pending", "completed_at": null, "outcome": null,
    });
    let ev = new_event(
        p,
        cfg,
        t,
        req,
        Change {
            entity_type: "erasure_requests",
            entity_singular: "erasure_request",
            entity_id: id,
            action: Action::Created,
            entity_version: 1,
            changed_fields: vec!["subject_type".into(), "subject_id".into()],
        },
    );
    let write = Write {
        table: "erasure_requests",
        id,
        edit: Edit::Insert(body),
        expect: Expect::Any,
        live_only: false,
        event: ev,
        with: vec![],
    };
    let landed = commit(&t.db, &write)
        .await?
        .ok_or_else(|| ApiError::Internal("the insert returned no row".into()))?;
    publish(p, cfg, t, vec![landed.event]).await;
    Ok(
        ApiResponse::json(202, crate::api::render(&id.to_string(), &landed.body))
            .with_header("location", format!("/v1/erasure-requests/{id}")),
    )
}

pub async fn get<D: Database>(t: &Tenant<D>, id: Uuid) -> Result<ApiResponse, ApiError> {
    if t.claims.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only admins read erasure requests".into(),
        ));
    }
    let r =
        t.db.query(crate::store::erasure_requests::get_stmt(t.account_id(), id))
            .await?;
    let body = r
        .first()
        .and_then(|row| col_json(row, "body"))
        .ok_or_else(|| ApiError::NotFound(format!("no erasure request {id}")))?;
    Ok(ApiResponse::json(
        200,
        crate::api::render(&id.to_string(), &body),
    ))
}
