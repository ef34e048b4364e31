//! The tamper-evident audit trail: one row per change event, per-account sequence numbers,
//! `hash = SHA-256(prev_hash || canonical entry)`. Canonical = the entry without `hash`,
//! serialised as JSON with sorted keys (serde_json's default map is ordered).

use crate::domain::clock::rfc3339;
use crate::domain::event::{Actor, ChangeEvent};
use crate::ports::{col_i64, col_str, Database, Rows, Stmt, StoreError};
use crate::store::audit as store;
pub use crate::store::audit::{head_stmt, list_stmt, AuditQuery};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    #[serde(rename = "type")]
    pub entity_type: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub event_id: Uuid,
    pub account_id: Uuid,
    pub actor: Actor,
    /// The event type, for example `client.updated`.
    pub action: String,
    pub target: Target,
    pub event_time: String,
    pub recorded_time: String,
    pub request_id: String,
    pub outcome: String,
    pub entity_version: i64,
    pub changed_fields: Vec<String>,
    /// Before/after of the changed fields where the event carries them (settings, holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Value>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    pub fn from_event(ev: &ChangeEvent, head: &ChainHead, recorded: OffsetDateTime) -> Self {
        let (ty, id) = ev.target().unwrap_or(("unknown", ""));
        let mut e = AuditEntry {
            seq: head.seq + 1,
            event_id: ev.id,
            account_id: ev.account_id,
            actor: ev.actor.clone(),
            action: ev.event_type.clone(),
            target: Target {
                entity_type: ty.into(),
                id: id.into(),
            },
            event_time: ev.time.clone(),
            recorded_time: rfc3339(recorded),
            request_id: ev.request_id.clone(),
            outcome: "success".into(),
            entity_version: ev.entity_version,
            changed_fields: ev.changed_fields.clone(),
            changes: ev.changes.clone(),
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    /// SHA-256 over `prev_hash` followed by the canonical entry (without `hash`).
    pub fn compute_hash(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.remove("hash");
        }
        let canonical = v.to_string();
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(canonical.as_bytes());
        hex::encode(h.finalize())
    }
}

/// The last link of an account's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

impl ChainHead {
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.into(),
        }
    }
}

pub enum HeadLookup {
    AlreadyRecorded,
    Head(ChainHead),
}

pub fn read_head(rows: &Rows) -> HeadLookup {
    let Some(row) = rows.first() else {
        return HeadLookup::Head(ChainHead::genesis());
    };
    if col_i64(row, "existing").is_some() {
        return HeadLookup::AlreadyRecorded;
    }
    match (col_i64(row, "seq"), col_str(row, "hash")) {
        (Some(seq), Some(hash)) => HeadLookup::Head(ChainHead {
            seq,
            hash: hash.into(),
        }),
        _ => HeadLookup::Head(ChainHead::genesis()),
    }
}

pub fn insert_stmt(entry: &AuditEntry) -> Stmt {
    store::insert_stmt(
        entry.account_id,
        entry.seq,
        serde_json::to_string(entry).unwrap_or_default(),
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    New(ChainHead),
    Duplicate,
}

/// Append one event to its account's chain. Idempotent: a recorded event appends nothing.
/// A concurrent append of the same seq fails on the primary key and returns a constraint
/// error; the caller retries (the message is redelivered) and re-reads the head.
pub async fn append(
    db: &impl Database,
    ev: &ChangeEvent,
    known_head: Option<&ChainHead>,
    now: OffsetDateTime,
) -> Result<Appended, StoreError> {
    let head = match known_head {
        Some(h) => h.clone(),
        None => match read_head(&db.query(head_stmt(ev.account_id, ev.id)).await?) {
            HeadLookup::AlreadyRecorded => return Ok(Appended::Duplicate),
            HeadLookup::Head(h) => h,
        },
    };
    let entry = AuditEntry::from_event(ev, &head, now);
    match db.query(insert_stmt(&entry)).await {
        Ok(_) => Ok(Appended::New(ChainHead {
            seq: entry.seq,
            hash: entry.hash,
        })),
        // With a cached head, the constraint may be the event already being there.
        Err(StoreError::Constraint(_)) if known_head.is_some() => {
            match read_head(&db.query(head_stmt(ev.account_id, ev.id)).await?) {
                HeadLookup::AlreadyRecorded => Ok(Appended::Duplicate),
                HeadLookup::Head(_) => Err(StoreError::Constraint("audit chain moved".into())),
            }
        }
        Err(e) => Err(e),
    }
}

/// Append a run of one account's events in one D1 batch, chained from `head`, each with its
/// `extra` statements (the index fields) in the same transaction. All or nothing: when any
/// event is already recorded, or another batch moved the head, the batch fails on a
/// constraint and appends nothing; the caller then appends them one by one ([`append`]).
pub async fn append_run(
    db: &impl Database,
    run: &[(&ChangeEvent, &[Stmt])],
    head: &ChainHead,
    now: OffsetDateTime,
) -> Result<ChainHead, StoreError> {
    let mut head = head.clone();
    let mut stmts = Vec::with_capacity(run.len() * 2);
    for (ev, extra) in run {
        let entry = AuditEntry::from_event(ev, &head, now);
        stmts.push(insert_stmt(&entry));
        stmts.extend_from_slice(extra);
        head = ChainHead {
            seq: entry.seq,
            hash: entry.hash,
        };
    }
    db.batch(stmts).await?;
    Ok(head)
}

pub mod verify;
pub use verify::{verify, verify_rows, Verification, VERIFY_MAX_ROWS, VERIFY_PAGE};

/// Where an account's chain starts: retention's checkpoint (rows up to `seq` purged, the chain
/// continues from `hash`) or the genesis link.
pub async fn chain_start(db: &impl Database, account_id: Uuid) -> Result<ChainHead, StoreError> {
    let r = db.query(store::checkpoint_stmt(account_id)).await?;
    Ok(
        match r
            .first()
            .map(|row| (col_i64(row, "seq"), col_str(row, "hash")))
        {
            Some((Some(seq), Some(hash))) => ChainHead {
                seq,
                hash: hash.into(),
            },
            _ => ChainHead::genesis(),
        },
    )
}

/// Whether an event is in its account's audit trail.
pub async fn is_recorded(
    db: &impl Database,
    account_id: Uuid,
    event_id: Uuid,
) -> Result<bool, StoreError> {
    Ok(db
        .query(store::recorded_stmt(account_id, event_id))
        .await?
        .first()
        .is_some())
}
