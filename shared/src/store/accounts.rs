//! Account rows (account D1) as the consumer reads them: where each account lives. (The API's
//! route lookups are still in `services::tenancy`.)

use crate::domain::tenancy::Faults;
use crate::ports::{col_json, col_str, Rows, Stmt};
use serde_json::{json, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// Where an account lives, and the local-only fault injection it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub shard_id: String,
    /// The shard's D1 binding (None: the shard is not registered).
    pub binding: Option<String>,
    pub is_active: bool,
    pub faults: Option<Faults>,
}

/// The placements of `ids` (any that are not accounts are simply absent): one query, by
/// primary key, the ids bound as one JSON array (`json_each`), so a batch of any size binds
/// two parameters, far below D1's 100.
pub fn placements_stmt(ids: &[Uuid]) -> Stmt {
    Stmt::new(
        "SELECT a.id AS id, a.db_shard_id AS shard_id, a.body ->> '$.is_active' AS is_active, \
         a.body -> '$.faults' AS faults, s.body ->> '$.binding' AS binding \
         FROM accounts a LEFT JOIN shards s ON s.id = a.db_shard_id \
         WHERE a.id IN (SELECT value FROM json_each(?1))",
        vec![json!(Value::from(
            ids.iter().map(|i| json!(i)).collect::<Vec<_>>()
        )
        .to_string())],
    )
}

pub fn read_placements(rows: &Rows) -> HashMap<Uuid, Placement> {
    rows.rows
        .iter()
        .filter_map(|r| {
            let id = Uuid::parse_str(col_str(r, "id")?).ok()?;
            let active = r
                .get("is_active")
                .is_some_and(|v| v.as_i64() == Some(1) || v.as_bool() == Some(true));
            Some((
                id,
                Placement {
                    shard_id: col_str(r, "shard_id")?.to_string(),
                    binding: col_str(r, "binding").map(str::to_owned),
                    is_active: active,
                    faults: col_json(r, "faults").and_then(|f| serde_json::from_value(f).ok()),
                },
            ))
        })
        .collect()
}
