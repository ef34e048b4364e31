//! How a stored row is shown: its id, its body without the server's bookkeeping. A restricted
//! record (`restricted` set in its body) shows its personal-data fields
//! (`domain::personal_data::fields`) to admins only: for anyone else they are omitted and
//! named in `redacted`.

use crate::domain::auth::Role;
use crate::domain::entity::EntitySpec;
use crate::domain::personal_data;
use serde_json::{json, Map, Value};

/// Server bookkeeping kept in `body` but never shown.
pub const HIDDEN_FIELDS: &[&str] = &["index_rev", "last_event_id", "client_ended_on"];

/// The stored document as the API shows it.
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
    Value::Object(out)
}

/// Whether a stored body is restricted (`restricted` present and not null).
pub fn is_restricted(body: &Value) -> bool {
    !body["restricted"].is_null()
}

/// The row as `role` may see it: rendered, and for a restricted record seen by a non-admin,
/// without its personal data, whose field names are listed in `redacted`.
pub fn present(role: Role, spec: &EntitySpec, id: &str, body: &Value) -> Value {
    let mut out = render(id, body);
    if role == Role::Admin || !is_restricted(body) {
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

/// Refuse a change of a restricted record (409 `restricted`, naming reason and until).
pub fn refuse_if_restricted(
    spec: &EntitySpec,
    id: &str,
    body: &Value,
) -> Result<(), crate::api::error::ApiError> {
    if is_restricted(body) {
        return Err(crate::api::error::ApiError::Restricted {
            singular: spec.singular,
            id: id.to_string(),
            restriction: body["restricted"].clone(),
        });
    }
    Ok(())
}
