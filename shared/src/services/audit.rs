//! The tamper-evident audit trail: one row per change event, per-account sequence numbers,
//! `hash = SHA-256(prev_hash || canonical entry)`. Canonical = the entry without `hash`,
//! serialised as JSON with sorted keys (serde_json's default map is ordered).

use crate::domain::clock::rfc3339;
use crate::domain::event::{Actor, ChangeEvent};
use crate::ports::{col_i64, col_str, Database, Rows, Stmt, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
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

/// One query: is the event already recorded, and what is the chain head?
pub fn head_stmt(account_id: Uuid, event_id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT (SELECT seq FROM audit_log WHERE account_id = ?1 AND event_id = ?2) AS existing, \
         seq, body ->> '$.hash' AS hash \
         FROM (SELECT 1) LEFT JOIN (SELECT seq, body FROM audit_log WHERE account_id = ?1 \
         ORDER BY seq DESC LIMIT 1)",
        vec![json!(account_id), json!(event_id)],
    )
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
    Stmt::new(
        "INSERT INTO audit_log (account_id, seq, body) VALUES (?1, ?2, ?3)",
        vec![
            json!(entry.account_id),
            json!(entry.seq),
            json!(serde_json::to_string(entry).unwrap_or_default()),
        ],
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

/// Result of recomputing an account's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub ok: bool,
    pub checked: u64,
    /// The first link that does not verify, and why.
    pub first_broken_seq: Option<i64>,
    pub reason: Option<String>,
    pub head_seq: i64,
    pub head_hash: String,
    /// False when the request's budget ended before the head of the chain.
    pub complete: bool,
}

/// Checks a page of rows (ascending seq) against the running head; returns the new head or the
/// first broken link.
pub fn verify_rows(
    head: &ChainHead,
    rows: &[serde_json::Map<String, Value>],
) -> Result<ChainHead, (i64, String)> {
    let mut head = head.clone();
    for row in rows {
        let seq = col_i64(row, "seq").unwrap_or(-1);
        let Some(entry) =
            col_str(row, "body").and_then(|b| serde_json::from_str::<AuditEntry>(b).ok())
        else {
            return Err((seq, "body is not an audit entry".into()));
        };
        if entry.seq != seq {
            return Err((seq, format!("body seq {} differs from row seq", entry.seq)));
        }
        if seq != head.seq + 1 {
            return Err((seq, format!("gap: expected seq {}", head.seq + 1)));
        }
        if entry.prev_hash != head.hash {
            return Err((seq, "prev_hash does not match the previous link".into()));
        }
        if entry.compute_hash() != entry.hash {
            return Err((seq, "hash does not match the entry's content".into()));
        }
        head = ChainHead {
            seq,
            hash: entry.hash,
        };
    }
    Ok(head)
}

pub const VERIFY_PAGE: i64 = 500;
/// Pages per request: bounded work (D1 queries per invocation); `complete: false` says more remain.
pub const VERIFY_MAX_PAGES: usize = 200;

/// Where an account's chain starts: retention's checkpoint (rows up to `seq` purged, the chain
/// continues from `hash`) or the genesis link.
pub async fn chain_start(db: &impl Database, account_id: Uuid) -> Result<ChainHead, StoreError> {
    let r = db
        .query(Stmt::new(
            "SELECT body ->> '$.seq' AS seq, body ->> '$.hash' AS hash FROM audit_checkpoints \
             WHERE account_id = ?1",
            vec![json!(account_id)],
        ))
        .await?;
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

/// Recompute one account's chain from its start, page by page (bounded per request).
pub async fn verify(db: &impl Database, account_id: Uuid) -> Result<Verification, StoreError> {
    let mut head = chain_start(db, account_id).await?;
    let mut checked = 0u64;
    let done = |head: ChainHead, checked, broken: Option<(i64, String)>, complete| Verification {
        ok: broken.is_none(),
        checked,
        first_broken_seq: broken.as_ref().map(|b| b.0),
        reason: broken.map(|b| b.1),
        head_seq: head.seq,
        head_hash: head.hash,
        complete,
    };
    for _ in 0..VERIFY_MAX_PAGES {
        let rows = db
            .query(Stmt::new(
                "SELECT seq, body FROM audit_log WHERE account_id = ?1 AND seq > ?2 \
                 ORDER BY seq LIMIT ?3",
                vec![json!(account_id), json!(head.seq), json!(VERIFY_PAGE)],
            ))
            .await?;
        let n = rows.rows.len();
        match verify_rows(&head, &rows.rows) {
            Ok(h) => head = h,
            Err(broken) => return Ok(done(head, checked, Some(broken), true)),
        }
        checked += n as u64;
        if (n as i64) < VERIFY_PAGE {
            return Ok(done(head, checked, None, true));
        }
    }
    Ok(done(head, checked, None, false))
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
