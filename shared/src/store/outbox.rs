//! The `outbox` table's SQL, all of it. Inserts are only reachable through the write protocol
//! (`services::changes`); the relay and the mark flusher read and mark rows here.

use crate::domain::clock::rfc3339;
use crate::domain::event::ChangeEvent;
use crate::ports::Stmt;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

fn envelope(ev: &ChangeEvent) -> String {
    let mut body = serde_json::to_value(ev).unwrap_or_default();
    body["published_at"] = Value::Null;
    body.to_string()
}

/// The outbox row of a change that lands with its batch or not at all (an insert: the batch
/// fails as a whole if the row already exists).
pub(crate) fn insert(ev: &ChangeEvent) -> Stmt {
    Stmt::new(
        "INSERT INTO outbox (account_id, id, body) VALUES (?1, ?2, ?3)",
        vec![json!(ev.account_id), json!(ev.id), json!(envelope(ev))],
    )
}

/// The same, but a row that is already there (an event forwarded again after a crash) is left
/// as it is: consumers are idempotent by event id.
pub(crate) fn insert_once(ev: &ChangeEvent) -> Stmt {
    Stmt::new(
        "INSERT INTO outbox (account_id, id, body) VALUES (?1, ?2, ?3) \
         ON CONFLICT (account_id, id) DO NOTHING",
        vec![json!(ev.account_id), json!(ev.id), json!(envelope(ev))],
    )
}

/// The outbox row of a change to an existing row, kept only if THIS change landed: the
/// change stamps the row with the event id (`last_event_id`) and this insert requires that
/// stamp, so a write that lost a race emits nothing even if another writer moved the row to the
/// same version. The event's `entity_version` is taken from the row as written.
pub(crate) fn insert_if_landed(ev: &ChangeEvent, table: &str, id: Uuid) -> Stmt {
    Stmt::new(
        format!(
            "INSERT INTO outbox (account_id, id, body) SELECT ?1, ?2, \
             json_set(?3, '$.entity_version', coalesce(CAST(t.body ->> '$.version' AS INTEGER), 0)) \
             FROM {table} t WHERE t.account_id = ?1 AND t.id = ?4 AND t.body ->> '$.last_event_id' = ?2"
        ),
        vec![
            json!(ev.account_id),
            json!(ev.id),
            json!(envelope(ev)),
            json!(id),
        ],
    )
}

/// The outbox row of a hard delete, kept only if THE DELETE right before it in the same batch
/// removed the row (`changes()`): a row already gone (another run removed it) emits nothing,
/// so overlapping runs cannot dispose of one row twice.
pub(crate) fn insert_if_gone(ev: &ChangeEvent, table: &str, id: &str) -> Stmt {
    Stmt::new(
        format!(
            "INSERT INTO outbox (account_id, id, body) SELECT ?1, ?2, ?3 WHERE changes() > 0 \
             AND NOT EXISTS (SELECT 1 FROM {table} WHERE account_id = ?1 AND id = ?4)"
        ),
        vec![
            json!(ev.account_id),
            json!(ev.id),
            json!(envelope(ev)),
            json!(id),
        ],
    )
}

/// Mark one account's outbox rows published (at most 98 ids: D1's 100 bound parameters).
pub fn mark_published_ids(account: Uuid, ids: &[Uuid], now: OffsetDateTime) -> Stmt {
    let mut params = vec![json!(rfc3339(now)), json!(account)];
    let mut marks = Vec::new();
    for id in ids {
        params.push(json!(id));
        marks.push(format!("?{}", params.len()));
    }
    Stmt::new(
        format!(
            "UPDATE outbox SET body = json_set(body, '$.published_at', ?1) \
             WHERE account_id = ?2 AND id IN ({})",
            marks.join(", ")
        ),
        params,
    )
}

/// Mark one row published (the relay, after resending it).
pub fn mark_published(account: &str, id: &str, now: OffsetDateTime) -> Stmt {
    Stmt::new(
        "UPDATE outbox SET body = json_set(body, '$.published_at', ?3) \
         WHERE account_id = ?1 AND id = ?2",
        vec![json!(account), json!(id), json!(rfc3339(now))],
    )
}

/// The relay's page: unpublished rows older than `before`, oldest first, across the shard's
/// tenants (the documented system-job exception to tenant-led indexes). A tenant being moved
/// onto this shard is the move's alone (its fence says `target`): its copied rows are not
/// relayed, and no fenced tenant's rows are purged while a move compares them.
pub fn unpublished_page(before: OffsetDateTime, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT account_id, id, body FROM outbox WHERE published_at IS NULL \
         AND created_at < ?1 AND NOT EXISTS (SELECT 1 FROM tenant_fences f \
           WHERE f.account_id = outbox.account_id AND f.body ->> '$.role' = 'target') \
         ORDER BY created_at LIMIT ?2",
        vec![json!(rfc3339(before)), json!(limit)],
    )
}

/// Delete up to `limit` rows published before `before` whose event the audit trail records.
/// The outbox is the consumer's evidence and the record's source (`store::event_evidence`): a
/// row whose event is not recorded yet (a consumer running late, a dead letter waiting for
/// replay) stays. The audit probe is by the unique index `audit_by_event`.
pub fn purge_published(before: OffsetDateTime, limit: i64) -> Stmt {
    Stmt::new(
        "DELETE FROM outbox WHERE rowid IN (SELECT o.rowid FROM outbox o \
         WHERE o.published_at IS NOT NULL AND o.published_at < ?1 \
         AND EXISTS (SELECT 1 FROM audit_log a WHERE a.account_id = o.account_id \
           AND a.event_id = o.id) \
         AND NOT EXISTS (SELECT 1 FROM tenant_fences f WHERE f.account_id = o.account_id) \
         LIMIT ?2)",
        vec![json!(rfc3339(before)), json!(limit)],
    )
}

/// The shard's unpublished backlog and its oldest row's time.
pub fn backlog() -> Stmt {
    Stmt::new(
        "SELECT count(*) AS n, min(created_at) AS oldest FROM outbox WHERE published_at IS NULL",
        vec![],
    )
}
