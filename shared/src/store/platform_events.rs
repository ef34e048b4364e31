//! The `platform_events` table (account D1), as operators read it.

use crate::ports::Stmt;
use serde_json::json;

/// Newest first, optionally of one type.
pub fn list_stmt(event_type: Option<&str>, limit: usize) -> Stmt {
    match event_type {
        Some(t) => Stmt::new(
            "SELECT body FROM platform_events WHERE type = ?1 ORDER BY time DESC LIMIT ?2",
            vec![json!(t), json!(limit)],
        ),
        None => Stmt::new(
            "SELECT body FROM platform_events ORDER BY time DESC LIMIT ?1",
            vec![json!(limit)],
        ),
    }
}

/// Record one event, once per id (the platform-events consumer).
pub fn insert_stmt(id: &str, body: &serde_json::Value) -> Stmt {
    Stmt::new(
        "INSERT OR IGNORE INTO platform_events (id, body) VALUES (?1, ?2)",
        vec![json!(id), json!(body.to_string())],
    )
}
