//! SQL of `idempotency_keys` (shard D1): one row per `(account_id, id)`, where `id` is the
//! caller's key scoped to its user and route, the key itself as its SHA-256 digest
//! (`{user}:POST /v1/{table}:#{hex}`; rows written before that hold the key as sent). The
//! nightly retention sweep purges old rows.

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

/// The stored outcome of a key (`body`), if any: under its digest form `key`, or the form
/// rows written before keys were digested hold (`legacy`).
pub fn find(account_id: Uuid, key: &str, legacy: &str) -> Stmt {
    Stmt::new(
        "SELECT body FROM idempotency_keys WHERE account_id = ?1 AND id IN (?2, ?3) LIMIT 1",
        vec![json!(account_id), json!(key), json!(legacy)],
    )
}

/// A `GLOB` matching the ids of the digest form (`...:#` and 64 lower-case hex digits).
fn digest_form() -> String {
    format!("*:#{}", "[0-9a-f]".repeat(64))
}

/// Delete the idempotency rows whose outcome is row `entity_id` of `table` in the account and
/// whose id holds the caller's key as sent (the form written before keys were digested: the
/// key may name the person). Rows of the digest form stay, as tombstones holding ids and
/// digests only, so a replay of the erased subject's create answers 410 and never creates it
/// again. Served by `idempotency_by_entity`.
pub fn delete_for_entity(account_id: Uuid, table: &str, entity_id: Uuid) -> Stmt {
    Stmt::new(
        "DELETE FROM idempotency_keys WHERE account_id = ?1 AND entity_id = ?3 \
         AND body ->> '$.table' = ?2 AND id NOT GLOB ?4",
        vec![
            json!(account_id),
            json!(table),
            json!(entity_id),
            json!(digest_form()),
        ],
    )
}
