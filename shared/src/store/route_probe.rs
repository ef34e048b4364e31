//! The route cache's batched probe: every cached account's version and its shard's record in
//! one query (ids as one JSON-array parameter, so the 100-bound-parameter limit does not apply).

use crate::ports::Stmt;
use serde_json::json;
use uuid::Uuid;

/// `id`, `version`, `shard_id` and `shard` (the shard's body) of each of `ids` that exists;
/// one primary-key lookup per id and one per shard row joined.
pub fn versions_stmt(ids: &[Uuid]) -> Stmt {
    let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    Stmt::new(
        "SELECT a.id AS id, a.body ->> '$.version' AS version, s.id AS shard_id, s.body AS shard \
         FROM accounts a JOIN shards s ON s.id = a.db_shard_id \
         WHERE a.id IN (SELECT value FROM json_each(?1))",
        vec![json!(
            serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
        )],
    )
}
