//! What a shard knows of the events a consumer is about to record (shard D1): for each event,
//! whether its outbox row is there (the write protocol wrote it), the target row's current
//! version, and whether the target has an audit history. One query per account and batch:
//! the events travel as one JSON array (`json_each`), every lookup is by primary key or a
//! tenant-led index.

use crate::domain::entity::ALL;
use crate::ports::{col_i64, Rows, Stmt};
use serde_json::json;
use uuid::Uuid;

/// Shard tables an event's subject may name besides the entities.
const OTHER_TARGETS: &[&str] = &["erasure_requests"];

/// One event to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe<'a> {
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub subject: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
}

/// What the shard knows of one probed event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The outbox holds this event id with this type and subject.
    pub in_outbox: bool,
    /// The target row exists (with this version).
    pub version: Option<i64>,
    /// The target has at least one audit row (it existed, whatever became of it); the
    /// consumer also sets it when another event of the target in the batch is in the outbox.
    pub audited: bool,
}

/// The evidence for `probes` of one account, one row per probe (`i` = its index).
pub fn evidence_stmt(account_id: Uuid, probes: &[Probe<'_>]) -> Stmt {
    let tables = ALL
        .iter()
        .map(|e| e.table)
        .chain(OTHER_TARGETS.iter().copied());
    let version_cases: String = tables
        .map(|t| {
            format!(
                " WHEN '{t}' THEN (SELECT coalesce(body ->> '$.version', 1) FROM {t} \
                 WHERE account_id = ?1 AND id = j.value ->> '$.id')"
            )
        })
        .collect();
    let list: Vec<serde_json::Value> = probes
        .iter()
        .map(|p| {
            json!({"e": p.event_id, "ty": p.event_type, "s": p.subject,
                   "t": p.target_type, "id": p.target_id})
        })
        .collect();
    Stmt::new(
        format!(
            "SELECT j.key AS i, \
             EXISTS (SELECT 1 FROM outbox o WHERE o.account_id = ?1 AND o.id = j.value ->> '$.e' \
               AND o.body ->> '$.type' = j.value ->> '$.ty' \
               AND o.body ->> '$.subject' = j.value ->> '$.s') AS in_outbox, \
             CASE j.value ->> '$.t'{version_cases} END AS version, \
             EXISTS (SELECT 1 FROM audit_log a WHERE a.account_id = ?1 \
               AND a.target_type = j.value ->> '$.t' AND a.target_id = j.value ->> '$.id') AS audited \
             FROM json_each(?2) j ORDER BY j.key"
        ),
        vec![json!(account_id), json!(serde_json::Value::from(list).to_string())],
    )
}

/// The evidence per probe, in probe order (a probe without a row has none).
pub fn read_evidence(rows: &Rows, n: usize) -> Vec<Evidence> {
    let mut out = vec![Evidence::default(); n];
    for r in &rows.rows {
        let Some(i) = col_i64(r, "i").and_then(|i| usize::try_from(i).ok()) else {
            continue;
        };
        if let Some(e) = out.get_mut(i) {
            *e = Evidence {
                in_outbox: col_i64(r, "in_outbox") == Some(1),
                version: col_i64(r, "version"),
                audited: col_i64(r, "audited") == Some(1),
            };
        }
    }
    out
}
