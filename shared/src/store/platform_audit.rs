//! SQL of the platform audit trail (`platform_audit`, account D1): the chain head, one append,
//! pages in sequence order. Append-only by its triggers (`0009_platform_audit.sql`).

use crate::ports::Stmt;
use serde_json::json;

/// The last link: `seq`, `hash` (no row: the trail is empty).
pub fn head() -> Stmt {
    Stmt::new(
        "SELECT seq, body ->> '$.hash' AS hash FROM platform_audit ORDER BY seq DESC LIMIT 1",
        vec![],
    )
}

/// Append one link; fails on the key when another append took `seq`.
pub fn insert(seq: i64, body: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO platform_audit (seq, body) VALUES (?1, ?2)",
        vec![json!(seq), json!(body)],
    )
}

/// Links after `after_seq`, ascending, at most `limit`: `seq`, `body`.
pub fn page(after_seq: i64, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, body FROM platform_audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        vec![json!(after_seq), json!(limit)],
    )
}
