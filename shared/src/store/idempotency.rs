//! SQL of `idempotency_keys` (shard D1): one row per `(account_id, id)`, where `id` is the
//! caller's key scoped to its user and route. The nightly retention sweep purges old rows.

use crate::ports::Stmt;
use serde_json::{json, Value};
use uuid::Uuid;

/// Record a key with what identifies its outcome; it goes in the same batch as the change, so
/// the row exists exactly when the change landed.
pub fn insert(account_id: Uuid, key: &str, body: &Value) -> Stmt {
    Stmt::new(
        "INSERT INTO idempotency_keys (account_id, id, body) VALUES (?1, ?2, ?3)",
        vec![json!(account_id), json!(key), json!(body.to_string())],
    )
}

/// The stored outcome of a key (`body`), if any.
pub fn find(account_id: Uuid, key: &str) -> Stmt {
    Stmt::new(
        "SELECT body FROM idempotency_keys WHERE account_id = ?1 AND id = ?2",
        vec![json!(account_id), json!(key)],
    )
}

/// Delete every idempotency row whose outcome is row `entity_id` of `table` in the account
/// (for erasure: a subject's keys go with the subject). Served by `idempotency_by_entity`.
pub fn delete_for_entity(account_id: Uuid, table: &str, entity_id: Uuid) -> Stmt {
    Stmt::new(
        "DELETE FROM idempotency_keys WHERE account_id = ?1 AND entity_id = ?3 \
         AND body ->> '$.table' = ?2",
        vec![json!(account_id), json!(table), json!(entity_id)],
    )
}
