//! The `dead_letters` table (account D1): `consumer::dead_letters` records each message once;
//! the operator API lists, loads and marks replayed them.

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

/// What became of a dead letter's message before it was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Its change event is in the audit trail as the message says it (type, subject, version):
    /// it was processed, only its ack was lost.
    Applied,
    /// The audit trail records its event id, but not as the message says it: a copy altered
    /// or made up around a recorded id. Nothing of it was applied.
    Conflicting,
    /// Never applied.
    Failed,
    /// Not known yet: its shard did not answer when it was recorded (resolved when listed).
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Conflicting => "conflicting",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
        }
    }
}

/// Settle an `unknown` dead letter's status (a letter settled meanwhile is left as it is).
pub fn settle_stmt(id: &str, status: Status) -> Stmt {
    Stmt::new(
        "UPDATE dead_letters SET body = json_set(body, '$.status', ?2) \
         WHERE id = ?1 AND body ->> '$.status' = 'unknown'",
        vec![json!(id), json!(status.as_str())],
    )
}

/// One dead letter as recorded.
pub struct Letter<'a> {
    /// The dead-letter queue's message id.
    pub id: &'a str,
    pub queue: &'a str,
    pub reason: &'a str,
    /// Stable, value-free name of the reason (`consumer::Reason::kind`, or `retries_exhausted`).
    pub kind: &'a str,
    pub status: Status,
    pub message: &'a Value,
}

/// Record a dead letter once (a redelivered one is left as it is).
pub fn insert_stmt(l: &Letter<'_>, now: OffsetDateTime) -> Stmt {
    let body = json!({
        "id": l.id, "queue": l.queue, "reason": l.reason, "kind": l.kind,
        "status": l.status.as_str(), "message": l.message,
        "received_at": rfc3339(now), "replayed_at": null, "replay_count": 0,
    });
    Stmt::new(
        "INSERT INTO dead_letters (id, body) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        vec![json!(l.id), json!(body.to_string())],
    )
}
