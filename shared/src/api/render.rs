//! How a stored row is shown: its id, its body without the server's bookkeeping.

use serde_json::{Map, Value};

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
