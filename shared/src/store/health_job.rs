//! The scheduler's own reads and writes beside the retention sweep's: shard-health sampling
//! (account ids of a shard, the bounded size-measuring chunk, the probe, the sample row, open
//! dead letters), rebalancing proposals, and the migration check (applied migrations, the
//! shard's recorded schema status).

use crate::ports::Stmt;
use serde_json::{json, Value};

/// The ids of a shard's accounts, in order.
pub fn account_ids_on_shard(shard_id: &str) -> Stmt {
    Stmt::new(
        "SELECT id FROM accounts WHERE db_shard_id = ?1 ORDER BY id",
        vec![json!(shard_id)],
    )
}

/// Rows and body bytes of one account in one table after keyset `after` on `key`, at most
/// `limit` rows: an index range of one account, never a scan of the shard.
pub fn measure_chunk(table: &str, key: &str, account: &str, after: &Value, limit: u64) -> Stmt {
    Stmt::new(
        format!(
            "SELECT count(*) AS n, coalesce(sum(length(body)), 0) AS b, max({key}) AS last FROM \
             (SELECT {key}, body FROM {table} WHERE account_id = ?1 AND {key} > ?2 ORDER BY {key} LIMIT ?3)"
        ),
        vec![json!(account), after.clone(), json!(limit)],
    )
}

/// The cheapest query there is: latency, and D1's database size in its meta.
pub fn probe() -> Stmt {
    Stmt::new("SELECT 1 AS ok", vec![])
}

pub fn insert_sample(id: &str, body: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO shard_health (id, body) VALUES (?1, ?2)",
        vec![json!(id), json!(body)],
    )
}

/// Open dead letters, of one shard's events or (None) all.
pub fn open_dead_letters(shard_id: Option<&str>) -> Stmt {
    match shard_id {
        Some(s) => Stmt::new(
            "SELECT count(*) AS n FROM dead_letters WHERE replayed_at IS NULL \
             AND body ->> '$.message.shard_id' = ?1",
            vec![json!(s)],
        ),
        None => Stmt::new(
            "SELECT count(*) AS n FROM dead_letters WHERE replayed_at IS NULL",
            vec![],
        ),
    }
}

pub fn open_proposals() -> Stmt {
    Stmt::new(
        "SELECT id, body FROM rebalance_proposals WHERE status = 'open'",
        vec![],
    )
}

pub fn supersede_proposal(id: &str, now: &str) -> Stmt {
    Stmt::new(
        "UPDATE rebalance_proposals SET body = json_set(body, '$.status', 'superseded', '$.superseded_at', ?2) WHERE id = ?1",
        vec![json!(id), json!(now)],
    )
}

pub fn insert_proposal(id: &str, body: &Value) -> Stmt {
    Stmt::new(
        "INSERT INTO rebalance_proposals (id, body) VALUES (?1, ?2)",
        vec![json!(id), json!(body.to_string())],
    )
}

pub fn mark_proposal_emitted(id: &str, now: &str) -> Stmt {
    Stmt::new(
        "UPDATE rebalance_proposals SET body = json_set(body, '$.emitted_at', ?2) WHERE id = ?1",
        vec![json!(id), json!(now)],
    )
}

/// Migrations applied to a database, as wrangler records them.
pub fn applied_migrations() -> Stmt {
    Stmt::new("SELECT name FROM d1_migrations ORDER BY id", vec![])
}

/// Record a shard's schema status in its registry row.
pub fn record_schema_status(shard_id: &str, check: &Value) -> Stmt {
    Stmt::new(
        "UPDATE shards SET body = json_set(body, '$.schema', json(?2)) WHERE id = ?1",
        vec![json!(shard_id), json!(check.to_string())],
    )
}
