//! The `dead_letters` table (account D1): the operator API lists, loads and marks replayed the
//! messages `consumer::dead_letters` recorded.

use crate::domain::clock::rfc3339;
use crate::ports::{col_json, Database, Stmt, StoreError};
use serde_json::{json, Value};
use time::OffsetDateTime;

pub fn list_stmt(before: Option<(&str, &str)>, limit: usize) -> Stmt {
    match before {
        Some((at, id)) => Stmt::new(
            "SELECT id, body FROM dead_letters WHERE (received_at, id) < (?1, ?2) \
             ORDER BY received_at DESC, id DESC LIMIT ?3",
            vec![json!(at), json!(id), json!(limit as i64 + 1)],
        ),
        None => Stmt::new(
            "SELECT id, body FROM dead_letters ORDER BY received_at DESC, id DESC LIMIT ?1",
            vec![json!(limit as i64 + 1)],
        ),
    }
}

pub async fn load(db: &impl Database, id: &str) -> Result<Option<Value>, StoreError> {
    let r = db
        .query(Stmt::new(
            "SELECT body FROM dead_letters WHERE id = ?1",
            vec![json!(id)],
        ))
        .await?;
    Ok(r.first().and_then(|row| col_json(row, "body")))
}

pub fn mark_replayed(id: &str, now: OffsetDateTime) -> Stmt {
    Stmt::new(
        "UPDATE dead_letters SET body = json_set(body, '$.replayed_at', ?2, '$.replay_count', \
         coalesce(body ->> '$.replay_count', 0) + 1) WHERE id = ?1",
        vec![json!(id), json!(rfc3339(now))],
    )
}
