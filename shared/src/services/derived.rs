//! Derived data (was `index.rs`): the denormalised fields the consumer maintains after each
//! change event, clients' `group_name`, `adviser_name`, `search_text` and `document_count`.
//! Every statement derives the value from the current rows (never from the event's payload),
//! so replays, duplicates and out-of-order delivery all converge on the truth. Fan-outs over
//! many clients are done in chunks; what does not fit in one chunk continues as follow-up
//! messages on the `index-jobs` queue.

use crate::domain::event::ChangeEvent;
use crate::ports::{col_str, Database, Stmt, StoreError};
use crate::store::derived_fields::Copy;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Clients updated per statement (well inside D1's 30 s per query).
pub const CHUNK: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FanOut {
    /// A group was renamed or deleted: its clients' `group_name`.
    GroupName,
    /// A user was renamed or deleted: the `adviser_name` of the clients they advise.
    AdviserName,
}

/// A follow-up message on the `index-jobs` queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexJob {
    pub index_job: u32,
    pub kind: FanOut,
    pub account_id: String,
    pub shard_id: String,
    pub target_id: String,
    /// Keyset position: clients with a greater id remain.
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    RefreshClient { client_id: String },
    RecountDocuments { document_id: String },
    FanOut { kind: FanOut, target_id: String },
}

/// What an event requires of the index fields.
pub fn work_for(ev: &ChangeEvent) -> Vec<Work> {
    let Some((ty, id)) = ev.target() else {
        return vec![];
    };
    let action = ev.action().unwrap_or_default();
    let changed = |f: &str| ev.changed_fields.iter().any(|c| c == f);
    let id = id.to_string();
    match (ty, action) {
        // Every client write re-derives all its fields: a PATCH writes back the derived fields it
        // read, so this also repairs a race with a concurrent fan-out or recount.
        ("clients", "created" | "updated") => vec![Work::RefreshClient { client_id: id }],
        ("documents", "created" | "deleted") => vec![Work::RecountDocuments { document_id: id }],
        ("groups", "deleted") => vec![Work::FanOut {
            kind: FanOut::GroupName,
            target_id: id,
        }],
        ("groups", "updated") if changed("name") => {
            vec![Work::FanOut {
                kind: FanOut::GroupName,
                target_id: id,
            }]
        }
        ("users", "deleted" | "erased") => vec![Work::FanOut {
            kind: FanOut::AdviserName,
            target_id: id,
        }],
        ("clients", "erased") => vec![Work::RefreshClient { client_id: id }],
        ("users", "updated") if changed("display_name") => {
            vec![Work::FanOut {
                kind: FanOut::AdviserName,
                target_id: id,
            }]
        }
        _ => vec![],
    }
}

pub use crate::store::derived_fields::{recount_documents, refresh_client, refresh_document_count};

/// One chunk of a fan-out; returns the ids it updated.
pub fn fan_out_chunk(kind: FanOut, account_id: &str, target_id: &str, after: &str) -> Stmt {
    let copy = match kind {
        FanOut::GroupName => Copy::GroupName,
        FanOut::AdviserName => Copy::AdviserName,
    };
    crate::store::derived_fields::fan_out_chunk(copy, account_id, target_id, after, CHUNK)
}

/// Run one fan-out chunk; `Some(job)` when clients remain beyond it.
pub async fn run_chunk(db: &impl Database, job: &IndexJob) -> Result<Option<IndexJob>, StoreError> {
    let r = db
        .query(fan_out_chunk(
            job.kind,
            &job.account_id,
            &job.target_id,
            &job.after,
        ))
        .await?;
    if (r.rows.len() as i64) < CHUNK {
        return Ok(None);
    }
    let last = r
        .rows
        .iter()
        .filter_map(|row| col_str(row, "id"))
        .max()
        .unwrap_or_default();
    Ok(Some(IndexJob {
        after: last.to_string(),
        ..job.clone()
    }))
}

/// Carry out an event's index work on its shard. Fan-outs run their first chunk here; the
/// returned jobs continue them on the `index-jobs` queue.
/// One piece of index work as a single statement (None: a fan-out, done in chunks).
fn statement(account: &str, w: &Work) -> Option<Stmt> {
    match w {
        Work::RefreshClient { client_id } => Some(refresh_client(account, client_id)),
        Work::RecountDocuments { document_id } => Some(recount_documents(account, document_id)),
        Work::FanOut { .. } => None,
    }
}

/// An event's index work as plain statements, or None when it fans out (chunked, with
/// follow-up messages): the consumer writes the former in the same batch as the audit row.
pub fn statements(ev: &ChangeEvent) -> Option<Vec<Stmt>> {
    let account = ev.account_id.to_string();
    work_for(ev)
        .iter()
        .map(|w| statement(&account, w))
        .collect()
}

pub async fn apply(db: &impl Database, ev: &ChangeEvent) -> Result<Vec<IndexJob>, StoreError> {
    let account = ev.account_id.to_string();
    let mut follow_ups = Vec::new();
    for w in work_for(ev) {
        if let Some(stmt) = statement(&account, &w) {
            db.query(stmt).await?;
        } else if let Work::FanOut { kind, target_id } = w {
            let job = IndexJob {
                index_job: 1,
                kind,
                account_id: account.clone(),
                shard_id: ev.shard_id.clone(),
                target_id,
                after: String::new(),
            };
            if let Some(next) = run_chunk(db, &job).await? {
                follow_ups.push(next);
            }
        }
    }
    Ok(follow_ups)
}

pub fn decode_job(v: &Value) -> Option<IndexJob> {
    serde_json::from_value(v.clone())
        .ok()
        .filter(|j: &IndexJob| j.index_job == 1)
}
