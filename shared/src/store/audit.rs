//! The audit trail's SQL (shard D1): `audit_log`, append-only and hash-chained per account (a
//! chain the audit log's own retention trimmed continues after its signed disposal, in
//! `store::checkpoints`). The chain itself (entries, hashes, verification) is `services::audit`.

use crate::ports::Stmt;
use serde_json::json;
use uuid::Uuid;

/// One query: is the event already recorded (`existing`), and what is the chain head
/// (`seq`, `hash`, the writer's `receipt` as JSON; absent for an empty chain)?
pub fn head_stmt(account_id: Uuid, event_id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT (SELECT seq FROM audit_log WHERE account_id = ?1 AND event_id = ?2) AS existing, \
         seq, body ->> '$.hash' AS hash, body -> '$.receipt' AS receipt \
         FROM (SELECT 1) LEFT JOIN (SELECT seq, body FROM audit_log WHERE account_id = ?1 \
         ORDER BY seq DESC LIMIT 1)",
        vec![json!(account_id), json!(event_id)],
    )
}

/// Whether an event is recorded (a row, `seq` and `body`, or none): by the unique event index.
pub fn recorded_stmt(account_id: Uuid, event_id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT seq, body FROM audit_log WHERE account_id = ?1 AND event_id = ?2",
        vec![json!(account_id), json!(event_id)],
    )
}

/// Append one link; `body` is the serialised entry. Fails on the primary key when another
/// append took `seq`, and on the unique event index when the event is already recorded.
pub fn insert_stmt(account_id: Uuid, seq: i64, body: String) -> Stmt {
    Stmt::new(
        "INSERT INTO audit_log (account_id, seq, body) VALUES (?1, ?2, ?3)",
        vec![json!(account_id), json!(seq), json!(body)],
    )
}

/// Links after `after_seq`, ascending, at most `limit` (verification pages).
pub fn page_stmt(account_id: Uuid, after_seq: i64, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, body FROM audit_log WHERE account_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        vec![json!(account_id), json!(after_seq), json!(limit)],
    )
}

/// One link by its sequence number (`seq`, `body`).
pub fn link_stmt(account_id: Uuid, seq: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, body FROM audit_log WHERE account_id = ?1 AND seq = ?2",
        vec![json!(account_id), json!(seq)],
    )
}

/// The last link's `seq` (no row: the chain is empty).
pub fn last_seq_stmt(account_id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT seq FROM audit_log WHERE account_id = ?1 ORDER BY seq DESC LIMIT 1",
        vec![json!(account_id)],
    )
}

/// One way of reading the audit log, each served by its own index.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditQuery {
    All,
    Target {
        entity_type: String,
        id: String,
    },
    Actor(String),
    /// `[from, to)` on event time (RFC 3339).
    Time {
        from: String,
        to: String,
    },
}

/// Keyset position: the last row's seq (and event time, for time ranges).
pub fn list_stmt(
    account_id: Uuid,
    q: &AuditQuery,
    after: Option<(i64, Option<&str>)>,
    limit: usize,
) -> Stmt {
    let mut params = vec![json!(account_id)];
    let mut sql = String::from("SELECT seq, body FROM audit_log WHERE account_id = ?1");
    let mut order = "seq";
    match q {
        AuditQuery::All => {}
        AuditQuery::Target { entity_type, id } => {
            params.push(json!(entity_type));
            params.push(json!(id));
            sql += " AND target_type = ?2 AND target_id = ?3";
        }
        AuditQuery::Actor(a) => {
            params.push(json!(a));
            sql += " AND actor_id = ?2";
        }
        AuditQuery::Time { from, to } => {
            params.push(json!(from));
            params.push(json!(to));
            sql += " AND event_time >= ?2 AND event_time < ?3";
            order = "event_time, seq";
        }
    }
    match (q, after) {
        (AuditQuery::Time { .. }, Some((seq, Some(t)))) => {
            params.push(json!(t));
            params.push(json!(seq));
            sql += &format!(
                " AND (event_time, seq) > (?{}, ?{})",
                params.len() - 1,
                params.len()
            );
        }
        (_, Some((seq, _))) => {
            params.push(json!(seq));
            sql += &format!(" AND seq > ?{}", params.len());
        }
        _ => {}
    }
    params.push(json!(limit as i64 + 1));
    sql += &format!(" ORDER BY {order} LIMIT ?{}", params.len());
    Stmt::new(sql, params)
}

/// The account's links below `below_seq` that carry a receipt, newest first (at most `limit`):
/// `seq`, `hash`, `receipt`, for finding the last link the writer signed.
pub fn receipted_below_stmt(account_id: Uuid, below_seq: i64, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, body ->> '$.hash' AS hash, body -> '$.receipt' AS receipt FROM audit_log \
         WHERE account_id = ?1 AND seq < ?2 AND body ->> '$.receipt' IS NOT NULL \
         ORDER BY seq DESC LIMIT ?3",
        vec![json!(account_id), json!(below_seq), json!(limit)],
    )
}

/// The account's latest link of `action` (the writer's own links), `seq` and `body`.
pub fn latest_of_action_stmt(account_id: Uuid, action: &str) -> Stmt {
    Stmt::new(
        "SELECT seq, body FROM audit_log WHERE account_id = ?1 AND body ->> '$.action' = ?2 \
         ORDER BY seq DESC LIMIT 1",
        vec![json!(account_id), json!(action)],
    )
}
