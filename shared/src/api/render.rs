//! How a stored row is shown: its id, its body without the server's bookkeeping. A restricted
//! record (`restricted` set in its body, or for a document its client's copy,
//! `client_restricted`, whichever in force ends later) shows its personal-data fields
//! (`domain::personal_data::fields`) to admins only: for anyone else they are omitted and named
//! in `redacted`.

use crate::domain::auth::Role;
use crate::domain::entity::EntitySpec;
use crate::domain::personal_data;
use serde_json::value::RawValue;
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

/// A stored body rendered from its text: what [`present`] shows any caller, and its version.
pub struct Plain {
    pub doc: String,
    pub version: i64,
}

/// [`render`] written from the stored text in one scan, without building a `Value` (each
/// field's value is copied as stored), for the common case only: a body that is a JSON object
/// whose keys have no escapes, none repeated, no `id` of its own, and neither `restricted` nor
/// `client_restricted` set (absent or null). Such a body shows every caller the same thing,
/// so this is [`present`] for any role and time. Anything else is `None`: the caller parses the
/// body and presents it, which decides every case (a repeated key, for one, is read as its last
/// value there). Values are copied as stored: a number beyond `f64` (which only a direct write
/// can store) is shown as written, where the general path refuses the body.
pub fn render_plain(id: &str, body: &str) -> Option<Plain> {
    // A `\u` escape may be a lone surrogate, which the scan below lets through and a parser
    // refuses; the product writes none but for control characters, so such a body is left to
    // the general path.
    if body.contains("\\u") {
        return None;
    }
    let Fields(fields) = serde_json::from_str(body).ok()?;
    let mut keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    let mut version = None;
    let mut len = body.len() + id.len() + 8;
    for (k, v) in &fields {
        if *k == "id" {
            return None;
        }
        match *k {
            "restricted" | "client_restricted" if v.get() != "null" => return None,
            "version" => version = Some(v),
            _ => {}
        }
        if HIDDEN_FIELDS.contains(k) {
            len = len.saturating_sub(k.len() + v.get().len());
        }
    }
    let version = match version {
        Some(v) => serde_json::from_str::<Value>(v.get())
            .ok()
            .and_then(|v| crate::domain::integers::integral(&v))
            .unwrap_or(0),
        None => 0,
    };
    let mut doc = String::with_capacity(len);
    doc.push_str("{\"id\":");
    doc.push_str(&Value::from(id).to_string());
    for (k, v) in fields.iter().filter(|(k, _)| !HIDDEN_FIELDS.contains(k)) {
        doc.push_str(",\"");
        doc.push_str(k);
        doc.push_str("\":");
        doc.push_str(v.get());
    }
    doc.push('}');
    Some(Plain { doc, version })
}

/// An object's fields in stored order, keys and values borrowed from the text (a key with an
/// escape is refused: it cannot be borrowed).
struct Fields<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields<'de>, A::Error> {
                let mut out = Vec::with_capacity(24);
                while let Some(field) = map.next_entry::<&'de str, &'de RawValue>()? {
                    out.push(field);
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(Object)
    }
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
