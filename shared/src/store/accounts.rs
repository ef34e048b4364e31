//! SQL of the account D1's registry as the operator API changes and reads it: accounts,
//! custom domains, shards with their account counts, and new-account placement.

use crate::ports::Stmt;
use serde_json::json;
use uuid::Uuid;

/// Every shard with its account count and latest health sample.
pub fn shards_with_counts() -> Stmt {
    Stmt::new(
        "SELECT s.body, (SELECT count(*) FROM accounts a WHERE a.db_shard_id = s.id) AS accounts, \
         (SELECT h.body FROM shard_health h WHERE h.shard_id = s.id ORDER BY h.at DESC LIMIT 1) AS latest \
         FROM shards s ORDER BY s.id",
        vec![],
    )
}

/// Least-full active shared shard (fewest accounts; size-aware placement uses health data).
pub fn placement_stmt() -> Stmt {
    Stmt::new(
        "SELECT s.body FROM shards s WHERE s.tier = 'shared' AND s.status = 'active' \
         ORDER BY (SELECT count(*) FROM accounts a WHERE a.db_shard_id = s.id), s.id LIMIT 1",
        vec![],
    )
}

/// Whether shard `id` is registered (`id` column).
pub fn shard_exists(id: &str) -> Stmt {
    Stmt::new("SELECT id FROM shards WHERE id = ?1", vec![json!(id)])
}

pub fn insert_account(id: Uuid, body: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO accounts (id, body) VALUES (?1, ?2)",
        vec![json!(id), json!(body)],
    )
}

pub fn account(id: Uuid) -> Stmt {
    Stmt::new("SELECT body FROM accounts WHERE id = ?1", vec![json!(id)])
}

/// Local-only test configuration of an account (no event, no version: not tenant data).
pub fn set_faults(id: Uuid, faults_json: &str) -> Stmt {
    Stmt::new(
        "UPDATE accounts SET body = json_set(body, '$.faults', json(?2)) WHERE id = ?1",
        vec![json!(id), json!(faults_json)],
    )
}

pub fn insert_domain(hostname: &str, body: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO domains (hostname, body) VALUES (?1, ?2)",
        vec![json!(hostname), json!(body)],
    )
}
