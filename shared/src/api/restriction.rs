//! `PUT/DELETE /v1/clients/{id}/restriction` (admins): restrict a client's processing (UK GDPR
//! art. 18, or "kept because a law requires it") or lift it, through the write protocol with a
//! `client.restricted` / `client.unrestricted` event whose `changes` carry reason and until
//! (a code of `domain::restriction::REASONS`, never free text). A restricted record shows `restricted: {reason, until, since}`, refuses
//! changes (409 `restricted`) and shows its personal data to admins only (`render::present`).

use crate::api::crud::load;
use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::preconditions::etag;
use crate::api::{
    new_event, present, publish, require_write, typed_body, ApiConfig, Platform, Tenant,
};
use crate::domain::auth::Role;
use crate::domain::clock::{parse_rfc3339, rfc3339};
use crate::domain::entity::CLIENTS;
use crate::domain::event::{Action, Change};
use crate::domain::restriction;
use crate::services::changes::{commit, version_of, Edit, Expect, Write};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RestrictionRequest {
    reason: String,
    until: Option<String>,
}

/// The reason and end of a stored restriction (what its events carry), or null.
fn terms(restricted: &Value) -> Value {
    if restricted.is_null() {
        Value::Null
    } else {
        json!({"reason": restricted["reason"], "until": restricted["until"]})
    }
}

/// `PUT`: restrict, or change the terms of a restriction (its `since` stays).
pub(crate) async fn put<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    id: Uuid,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let r: RestrictionRequest = typed_body(req)?;
    // A code, never free text: the reason goes into the append-only audit trail.
    let reason = r.reason.as_str();
    if !restriction::is_reason(reason) {
        return Err(ApiError::BadRequest {
            detail: format!(
                "reason is one of {} (UK GDPR art. 18(1)(a)-(d), or kept by law)",
                restriction::REASONS.join(", ")
            ),
            extra: Some(json!({"allowed_reasons": restriction::REASONS})),
        });
    }
    let until = match r.until.as_deref() {
        None => None,
        Some(u) => {
            let at = parse_rfc3339(u)
                .ok_or_else(|| ApiError::bad_request("until is an RFC 3339 date-time or null"))?;
            if at <= p.now() {
                return Err(ApiError::bad_request(
                    "until is in the past: a restriction ends later, or never (null)",
                ));
            }
            Some(rfc3339(at))
        }
    };
    change(p, cfg, t, id, req, Some((reason.to_string(), until))).await
}

/// `DELETE`: lift the restriction.
pub(crate) async fn lift<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    id: Uuid,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    change(p, cfg, t, id, req, None).await
}

async fn change<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    id: Uuid,
    req: &ApiRequest,
    to: Option<(String, Option<String>)>,
) -> Result<ApiResponse, ApiError> {
    if t.claims.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only admins restrict records or lift restrictions".into(),
        ));
    }
    require_write(t, &CLIENTS)?;
    let current = load(t, &CLIENTS, id).await?;
    if !current["erased_at"].is_null() {
        return Err(ApiError::Gone(format!(
            "client {id} was erased; it can no longer be restricted or changed"
        )));
    }
    let version = version_of(&current);
    let before = current["restricted"].clone();
    refuse_to_shorten_a_keep(id, &before, to.as_ref().map(|(_, u)| u.as_deref()), t.now)?;
    let after = match &to {
        None => Value::Null,
        Some((reason, until)) => json!({
            "reason": reason,
            "until": until,
            // A new restriction after one that ended starts now.
            "since": before["since"]
                .as_str()
                .filter(|_| restriction::in_force(&before, t.now))
                .map_or_else(|| rfc3339(p.now()), str::to_owned),
        }),
    };
    let shown = |body: &Value, v: i64| {
        ApiResponse::json(
            200,
            present(t.claims.role, &CLIENTS, &id.to_string(), body, t.now),
        )
        .with_header("etag", etag(v))
    };
    if terms(&before) == terms(&after) {
        return Ok(shown(&current, version));
    }
    let mut ev = new_event(
        p,
        cfg,
        t,
        req,
        Change {
            entity_type: CLIENTS.table,
            entity_singular: CLIENTS.singular,
            entity_id: id,
            action: if after.is_null() {
                Action::Unrestricted
            } else {
                Action::Restricted
            },
            entity_version: version + 1,
            changed_fields: vec!["restricted".into()],
        },
    );
    ev.changes = Some(json!({"restricted": {"before": terms(&before), "after": terms(&after)}}));
    let write = Write {
        table: CLIENTS.table,
        id,
        edit: Edit::Set(vec![("restricted", after)]),
        expect: Expect::Version(version),
        live_only: true,
        event: ev,
        with: vec![],
    };
    let landed = commit(&t.db, &write)
        .await?
        .ok_or_else(|| ApiError::Conflict("the client changed concurrently; retry".into()))?;
    publish(p, cfg, t, vec![landed.event]).await;
    Ok(shown(&landed.body, landed.version))
}

/// An erasure's keep of the record (`scope: "record"`, set by the retention sweep because a law
/// still requires the record) is not the admin's to lift or to shorten while it is in force:
/// the sweep disposes of the record at its end. A later end, or another reason, is an
/// admin's restriction from then on (and holds the client's documents too).
fn refuse_to_shorten_a_keep(
    id: Uuid,
    before: &Value,
    until: Option<Option<&str>>,
    now: time::OffsetDateTime,
) -> Result<(), ApiError> {
    if before["scope"] != restriction::RECORD_SCOPE || !restriction::in_force(before, now) {
        return Ok(());
    }
    let ends = before["until"].as_str();
    let shorter = match until {
        None => true,
        Some(None) => false,
        Some(Some(u)) => ends.is_some_and(|e| {
            match (
                crate::domain::clock::parse_rfc3339(u),
                crate::domain::clock::parse_rfc3339(e),
            ) {
                (Some(u), Some(e)) => u < e,
                _ => true,
            }
        }),
    };
    if shorter {
        return Err(ApiError::Restricted {
            singular: "client",
            id: id.to_string(),
            restriction: before.clone(),
        });
    }
    Ok(())
}
