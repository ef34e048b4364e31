//! What a shard knows of the events a consumer is about to record (shard D1): for each event
//! id, its outbox row's body (the event as the write protocol wrote it: the only proof an event
//! happened, and what is recorded) and whether the audit trail already has it. One query per
//! account and batch: the ids travel as one JSON array (`json_each`), both lookups by primary
//! key or unique index (`outbox` (account_id, id), `audit_by_event`).
//!
//! The outbox keeps every event until the audit trail has it (`outbox::purge_published`), so a
//! genuine event not yet recorded always has its row here.

use crate::ports::{col_i64, col_json, Rows, Stmt};
use serde_json::{json, Value};
use uuid::Uuid;

/// What the shard knows of one probed event id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// The outbox row's body (the envelope plus `published_at`); None: no such event here.
    pub outbox: Option<Value>,
    /// The audit trail already records this event id.
    pub recorded: bool,
}

/// The evidence for the event ids of one account, one row per id (`i` = its index).
pub fn evidence_stmt(account_id: Uuid, event_ids: &[Uuid]) -> Stmt {
    Stmt::new(
        "SELECT j.key AS i, \
         (SELECT o.body FROM outbox o WHERE o.account_id = ?1 AND o.id = j.value) AS outbox, \
         EXISTS (SELECT 1 FROM audit_log a WHERE a.account_id = ?1 AND a.event_id = j.value) \
           AS recorded \
         FROM json_each(?2) j ORDER BY j.key",
        vec![
            json!(account_id),
            json!(Value::from(event_ids.iter().map(|e| json!(e)).collect::<Vec<_>>()).to_string()),
        ],
    )
}

/// The evidence per id, in order (an id without a row has none).
pub fn read_evidence(rows: &Rows, n: usize) -> Vec<Evidence> {
    let mut out = vec![Evidence::default(); n];
    for r in &rows.rows {
        let Some(i) = col_i64(r, "i").and_then(|i| usize::try_from(i).ok()) else {
            continue;
        };
        if let Some(e) = out.get_mut(i) {
            *e = Evidence {
                outbox: col_json(r, "outbox"),
                recorded: col_i64(r, "recorded") == Some(1),
            };
        }
    }
    out
}
