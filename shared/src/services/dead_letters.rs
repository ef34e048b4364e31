//! What became of a dead letter's change event: the audit trail decides. Shared by the
//! dead-letter queue's consumer (when it records a letter) and the operator API (which settles
//! the letters recorded `unknown` while their shard did not answer).

use crate::domain::event::decode;
use crate::ports::{Database, StoreError};
use crate::services::audit;
pub use crate::store::dead_letters::Status;
use serde_json::Value;
use std::collections::HashMap;

/// The status of a dead letter's `message`: `Applied` only when the audit trail records its
/// event id as the message says it (type, subject, version), `Conflicting` when it records the
/// id otherwise, `Failed` when not at all, or when the message is no change event of a shard
/// bound here. `bindings` maps shard ids to bindings (`store::registry::shard_bindings`);
/// `shard` opens one. `Err`: the shard failed (the caller records `Unknown`).
pub async fn status<D: Database>(
    bindings: &HashMap<String, String>,
    shard: impl Fn(&str) -> Option<D>,
    message: &Value,
) -> Result<Status, StoreError> {
    let Ok(ev) = decode(message) else {
        return Ok(Status::Failed);
    };
    let Some(db) = bindings.get(&ev.shard_id).and_then(|b| shard(b)) else {
        return Ok(Status::Failed);
    };
    let Some(entry) = audit::recorded(&db, ev.account_id, ev.id).await? else {
        return Ok(Status::Failed);
    };
    let (ty, id) = ev.target().unwrap_or_default();
    let same = entry.action == ev.event_type
        && entry.target.entity_type == ty
        && entry.target.id == id
        && entry.entity_version == ev.entity_version;
    Ok(if same {
        Status::Applied
    } else {
        Status::Conflicting
    })
}
