//! The shard registry in the account D1 (`shards`): the lookups shared by the jobs, the
//! consumer and the operator API. (Account and domain lookups are still in
//! `services::tenancy`.)

use crate::domain::tenancy::Shard;
use crate::ports::*;
use std::collections::HashMap;

/// One shard's row by id.
pub fn shard_stmt(id: &str) -> Stmt {
    Stmt::new(
        "SELECT body FROM shards WHERE id = ?1",
        vec![serde_json::json!(id)],
    )
}

/// A `provisioning` shard becomes `active` (changes 0: it was not provisioning any more).
pub fn activate_shard(id: &str, now: &str) -> Stmt {
    Stmt::new(
        "UPDATE shards SET body = json_set(body, '$.status', 'active', '$.updated_at', ?2) \
         WHERE id = ?1 AND status = 'provisioning'",
        vec![serde_json::json!(id), serde_json::json!(now)],
    )
}

/// Shard id -> binding, from the registry (one query per batch).
pub async fn shard_bindings(db: &impl Database) -> Result<HashMap<String, String>, StoreError> {
    let rows = db
        .query(Stmt::new(
            "SELECT id, body ->> '$.binding' AS binding FROM shards",
            vec![],
        ))
        .await?;
    Ok(rows
        .rows
        .iter()
        .filter_map(|r| {
            Some((
                col_str(r, "id")?.to_string(),
                col_str(r, "binding")?.to_string(),
            ))
        })
        .collect())
}

/// Every registered shard, in id order.
pub async fn shards(db: &impl Database) -> Result<Vec<Shard>, StoreError> {
    let r = db
        .query(Stmt::new("SELECT body FROM shards ORDER BY id", vec![]))
        .await?;
    Ok(r.rows
        .iter()
        .filter_map(|row| col_json(row, "body"))
        .filter_map(|b| serde_json::from_value(b).ok())
        .collect())
}
