//! How a stored row is shown: its id, its body without the server's bookkeeping. A restricted
//! record (`restricted` set in its body, or for a document its client's copy,
//! `client_restricted`, whichever in force ends later) shows its personal-data fields
//! (`domain::personal_data::fields`) to admins only: for anyone else they are omitted and named
//! in `redacted`.

use crate::domain::auth::Role;
use crate::domain::entity::EntitySpec;
use crate::domain::personal_data;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// Server bookkeeping kept in `body` but never shown.
pub const HIDDEN_FIELDS: &[&str] = &[
    "index_rev",
    "last_event_id",
    "client_ended_on",
    "client_restricted",
];

/// The stored document as the API shows it, without deciding restrictions (no `now`): a
/// document without its own shows its client's. [`present`] decides them from the stored body.
pub fn render(id: &str, body: &Value) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(id.into()));
    if let Some(o) = body.as_object() {
        for (k, v) in o {
            if !HIDDEN_FIELDS.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    // A document shows its client's restriction as its own.
    if let Value::Null = body["restricted"] {
        if !body["client_restricted"].is_null() {
            out.insert("restricted".into(), body["client_restricted"].clone());
        }
    }
    Value::Object(out)
}

/// The restriction binding a stored body at `now`: its own `restricted` and, for a document,
/// its client's copy (`client_restricted`), whichever in force ends later
/// (`domain::restriction::binding`); null when neither is in force.
pub fn restriction(body: &Value, now: OffsetDateTime) -> &Value {
    crate::domain::restriction::binding(&body["restricted"], &body["client_restricted"], now)
        .unwrap_or(&Value::Null)
}

/// Whether a stored body is restricted at `now` (its own restriction or its client's, in force).
pub fn is_restricted(body: &Value, now: OffsetDateTime) -> bool {
    !restriction(body, now).is_null()
}

/// The row as `role` may see it: rendered, and for a restricted record seen by a non-admin,
/// without its personal data, whose field names are listed in `redacted` (while the
/// restriction is in force at `now`).
pub fn present(
    role: Role,
    spec: &EntitySpec,
    id: &str,
    body: &Value,
    now: OffsetDateTime,
) -> Value {
    let mut out = render(id, body);
    let binding = restriction(body, now);
    if binding.is_null() {
        return out;
    }
    if let Some(o) = out.as_object_mut() {
        // The restriction shown is the one that binds (a document's client's may outlast its own).
        o.insert("restricted".into(), binding.clone());
    }
    if role == Role::Admin {
        return out;
    }
    if let Some(o) = out.as_object_mut() {
        let redacted: Vec<&str> = personal_data::fields(spec.table)
            .iter()
            .copied()
            .filter(|f| o.remove(*f).is_some())
            .collect();
        o.insert("redacted".into(), json!(redacted));
    }
    out
}

/// Refuse a change that would put personal data (`domain::personal_data::fields`) back on an
/// erased record's pseudonymous shell (kept while records refer to it): 410 `resource-gone`.
/// Its other fields (a status, a group) still change.
pub fn refuse_personal_data_on_erased(
    spec: &EntitySpec,
    id: &str,
    body: &Value,
    fields: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<(), crate::api::error::ApiError> {
    if body["erased_at"].is_null() {
        return Ok(());
    }
    let personal = personal_data::fields(spec.table);
    if let Some(f) = fields.into_iter().find(|f| personal.contains(&f.as_ref())) {
        return Err(crate::api::error::ApiError::Gone(format!(
            "{} {id} was erased: its personal data ({}) cannot be set again",
            spec.singular,
            f.as_ref()
        )));
    }
    Ok(())
}

/// Refuse a change of a record restricted at `now` (409 `restricted`, naming reason and until).
pub fn refuse_if_restricted(
    spec: &EntitySpec,
    id: &str,
    body: &Value,
    now: OffsetDateTime,
) -> Result<(), crate::api::error::ApiError> {
    if is_restricted(body, now) {
        return Err(crate::api::error::ApiError::Restricted {
            singular: spec.singular,
            id: id.to_string(),
            restriction: restriction(body, now).clone(),
        });
    }
    Ok(())
}
