//! The `account_usage` table (shard D1): per account and 15-minute period, the D1 usage the API
//! metered (`services::usage`), one JSON body of counters per row.

use crate::ports::Stmt;
use serde_json::json;
use uuid::Uuid;

const COUNTERS: [&str; 6] = [
    "requests",
    "writes",
    "calls",
    "statements",
    "rows_read",
    "rows_written",
];

/// The counters of one upsert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub writes: u64,
    pub calls: u64,
    pub statements: u64,
    pub rows_read: u64,
    pub rows_written: u64,
}

/// Add `c` to an account's period (the row is created on first use).
pub fn upsert_stmt(account: Uuid, period: &str, c: Counts) -> Stmt {
    let body = json!({
        "period_start": period,
        "requests": c.requests,
        "writes": c.writes,
        "calls": c.calls,
        "statements": c.statements,
        "rows_read": c.rows_read,
        "rows_written": c.rows_written,
    });
    let fields = COUNTERS
        .map(|k| format!("'$.{k}', (body ->> '$.{k}') + (excluded.body ->> '$.{k}')"))
        .join(", ");
    Stmt::new(
        format!(
            "INSERT INTO account_usage (account_id, id, body) VALUES (?1, ?2, ?3) \
             ON CONFLICT (account_id, id) DO UPDATE SET body = json_set(body, {fields})"
        ),
        vec![json!(account), json!(period), json!(body.to_string())],
    )
}

/// Every account's counters in one period (`account_id` and one column per counter).
pub fn period_stmt(period: &str) -> Stmt {
    Stmt::new(
        "SELECT account_id, body ->> '$.requests' AS requests, body ->> '$.writes' AS writes, \
         body ->> '$.calls' AS calls, body ->> '$.statements' AS statements, \
         body ->> '$.rows_read' AS rows_read, body ->> '$.rows_written' AS rows_written \
         FROM account_usage WHERE id = ?1",
        vec![json!(period)],
    )
}

/// Delete the periods that started before `period`.
pub fn purge_before_stmt(period: &str) -> Stmt {
    Stmt::new(
        "DELETE FROM account_usage WHERE id < ?1",
        vec![json!(period)],
    )
}
