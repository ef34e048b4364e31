//! Appending to and reading the tamper-evident audit trail. The links, their hash and the walk
//! that checks them are `domain::audit`'s.

pub use crate::domain::audit::Seal;
pub use crate::domain::audit::{AuditEntry, ChainHead, Target, GENESIS_HASH};
use crate::domain::checkpoint::{KeyRing, Receipt};
use crate::domain::event::ChangeEvent;
use crate::ports::{col_i64, col_json, col_str, Database, Rows, Stmt, StoreError};
use crate::store::audit as store;
pub use crate::store::audit::{head_stmt, list_stmt, AuditQuery};
use time::OffsetDateTime;
use uuid::Uuid;

pub enum HeadLookup {
    AlreadyRecorded,
    Head(ChainHead),
    /// The head link carries no valid receipt of the writer: someone appended it outside the
    /// service. Nothing may be chained onto it (that would vouch for it).
    Unsealed(ChainHead),
}

pub fn read_head(rows: &Rows, account_id: Uuid, keys: &KeyRing) -> HeadLookup {
    let Some(row) = rows.first() else {
        return HeadLookup::Head(ChainHead::genesis());
    };
    if col_i64(row, "existing").is_some() {
        return HeadLookup::AlreadyRecorded;
    }
    match (col_i64(row, "seq"), col_str(row, "hash")) {
        (Some(seq), Some(hash)) => {
            let head = ChainHead {
                seq,
                hash: hash.into(),
            };
            let sealed = col_json(row, "receipt")
                .and_then(|r| serde_json::from_value::<Receipt>(r).ok())
                .is_some_and(|r| keys.verify_receipt(account_id, seq, hash, &r));
            if sealed {
                HeadLookup::Head(head)
            } else {
                HeadLookup::Unsealed(head)
            }
        }
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
    /// Appended after the writer's own signed link recording that links `from..=to` carry no
    /// receipt of it (appended outside the service), or that its signed head `cut` is gone.
    AfterUnsigned {
        from: i64,
        to: i64,
        cut: Option<i64>,
        head: ChainHead,
    },
    /// Refused: the chain's head link is not the writer's and no link the writer signed was
    /// found within [`SEALED_SEARCH_ROWS`] links below it, so the range cannot be named.
    UnsealedHead {
        seq: i64,
    },
}

/// Links looked at (newest first, those with a receipt) when searching for the last link the
/// writer signed below an unsealed head.
pub const SEALED_SEARCH_ROWS: i64 = 1000;

/// The last link below `below_seq` the writer signed (a valid receipt), or the chain's start
/// when no link there carries one. None: not found within [`SEALED_SEARCH_ROWS`] receipted
/// links, or the chain's start is itself not the writer's.
pub async fn last_sealed(
    db: &impl Database,
    account_id: Uuid,
    below_seq: i64,
    keys: &KeyRing,
) -> Result<Option<ChainHead>, StoreError> {
    const PAGE: i64 = 100;
    let mut below = below_seq;
    let mut looked = 0;
    while looked < SEALED_SEARCH_ROWS {
        let rows = db
            .query(store::receipted_below_stmt(account_id, below, PAGE))
            .await?;
        for row in &rows.rows {
            let (Some(seq), Some(hash)) = (col_i64(row, "seq"), col_str(row, "hash")) else {
                continue;
            };
            below = seq;
            let valid = col_json(row, "receipt")
                .and_then(|r| serde_json::from_value::<Receipt>(r).ok())
                .is_some_and(|r| keys.verify_receipt(account_id, seq, hash, &r));
            if valid {
                return Ok(Some(ChainHead {
                    seq,
                    hash: hash.into(),
                }));
            }
        }
        looked += PAGE;
        if (rows.rows.len() as i64) < PAGE {
            return Ok(chain_start(db, account_id, keys).await?.ok());
        }
    }
    Ok(None)
}

/// Append one event to its account's chain, its link signed. Idempotent: a recorded event
/// appends nothing. A concurrent append of the same seq fails on the primary key and returns a
/// constraint error; the caller retries (the message is redelivered) and re-reads the head.
/// `known_head` is a head this writer appended itself (so it is sealed).
///
/// A head the writer did not sign is not refused (that would stop the account's auditing for
/// good on one forged INSERT): the writer first appends a signed link of its own recording
/// the links after its last signed one as unsigned ([`AuditEntry::unsigned_links`]), then the
/// event, in one batch. So does a trail whose head is below `cut`, a head the writer signed and
/// anchored outside D1 (the trail was cut).
pub async fn append(
    db: &impl Database,
    ev: &ChangeEvent,
    known_head: Option<&ChainHead>,
    cut: Option<i64>,
    now: OffsetDateTime,
    seal: &Seal,
) -> Result<Appended, StoreError> {
    let lookup = || async {
        Ok::<_, StoreError>(read_head(
            &db.query(head_stmt(ev.account_id, ev.id)).await?,
            ev.account_id,
            &seal.keys,
        ))
    };
    let known_head = known_head.filter(|_| cut.is_none());
    // `unsigned`: the first link after the last one the writer signed, when the head is not.
    let (head, unsigned) = match known_head {
        Some(h) => (h.clone(), None),
        None => match lookup().await? {
            HeadLookup::AlreadyRecorded => return Ok(Appended::Duplicate),
            HeadLookup::Unsealed(h) => {
                match last_sealed(db, ev.account_id, h.seq, &seal.keys).await? {
                    Some(s) => (h, Some(s.seq + 1)),
                    None => return Ok(Appended::UnsealedHead { seq: h.seq }),
                }
            }
            HeadLookup::Head(h) => {
                let from = cut.filter(|c| *c > h.seq).map(|_| h.seq + 1);
                (h, from)
            }
        },
    };
    let cut = cut.filter(|c| *c > head.seq);
    let mut entries = Vec::with_capacity(2);
    let mut at = head.clone();
    if let Some(from) = unsigned {
        let mut own = AuditEntry::unsigned_links(ev.account_id, &head, from, cut, now);
        own.seal(&seal.signer);
        at = ChainHead {
            seq: own.seq,
            hash: own.hash.clone(),
        };
        entries.push(own);
    }
    let mut entry = AuditEntry::from_event(ev, &at, now);
    entry.seal(&seal.signer);
    let new = ChainHead {
        seq: entry.seq,
        hash: entry.hash.clone(),
    };
    entries.push(entry);
    let written = if entries.len() == 1 {
        db.query(insert_stmt(&entries[0])).await.map(|_| ())
    } else {
        db.batch(entries.iter().map(insert_stmt).collect())
            .await
            .map(|_| ())
    };
    match written {
        Ok(()) => Ok(match unsigned {
            Some(from) => Appended::AfterUnsigned {
                from,
                to: head.seq,
                cut,
                head: new,
            },
            None => Appended::New(new),
        }),
        // With a cached head, the constraint may be the event already being there.
        Err(StoreError::Constraint(_)) if known_head.is_some() => match lookup().await? {
            HeadLookup::AlreadyRecorded => Ok(Appended::Duplicate),
            HeadLookup::Unsealed(_) | HeadLookup::Head(_) => {
                Err(StoreError::Constraint("audit chain moved".into()))
            }
        },
        Err(e) => Err(e),
    }
}

/// Append a run of one account's events in one D1 batch, chained from `head` (a sealed head:
/// see [`read_head`]), each with its `extra` statements (the index fields) in the same
/// transaction, the run's last link signed. All or nothing: when any event is already
/// recorded, or another batch moved the head, the batch fails on a constraint and appends
/// nothing; the caller then appends them one by one ([`append`]).
pub async fn append_run(
    db: &impl Database,
    run: &[(&ChangeEvent, &[Stmt])],
    head: &ChainHead,
    now: OffsetDateTime,
    seal: &Seal,
) -> Result<ChainHead, StoreError> {
    let mut head = head.clone();
    let mut entries = Vec::with_capacity(run.len());
    for (ev, _) in run {
        let entry = AuditEntry::from_event(ev, &head, now);
        head = ChainHead {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        entries.push(entry);
    }
    if let Some(last) = entries.last_mut() {
        last.seal(&seal.signer);
    }
    let mut stmts = Vec::with_capacity(run.len() * 2);
    for (entry, (_, extra)) in entries.iter().zip(run) {
        stmts.push(insert_stmt(entry));
        stmts.extend_from_slice(extra);
    }
    db.batch(stmts).await?;
    Ok(head)
}

pub mod verify;
pub use verify::{verify, Verification, VERIFY_MAX_ROWS, VERIFY_PAGE};

/// Where an account's chain starts: after its latest signed disposal (the audit log's own
/// retention removed the links up to `through`; the chain continues from that link's hash) or
/// at the genesis link. `Err(reason)`: the latest disposal row is not the audit writer's
/// (deletions were unlocked by hand), so nothing before the first link present can be trusted.
pub async fn chain_start(
    db: &impl Database,
    account_id: Uuid,
    keys: &KeyRing,
) -> Result<Result<ChainHead, String>, StoreError> {
    use crate::services::checkpoints::{latest_disposal, CheckpointError};
    match latest_disposal(db, account_id, keys).await {
        Ok(Some((seq, hash))) => Ok(Ok(ChainHead { seq, hash })),
        Ok(None) => Ok(Ok(ChainHead::genesis())),
        Err(CheckpointError::Store(e)) => Err(e),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Whether the writer has recorded, signed, that its head `anchored` is gone (a cut it
/// carried on after: see [`append`]). The trail is then shorter than a signed head on the
/// record, not silently.
pub async fn cut_recorded(
    db: &impl Database,
    account_id: Uuid,
    anchored: i64,
    keys: &KeyRing,
) -> Result<bool, StoreError> {
    let rows = db
        .query(store::latest_of_action_stmt(
            account_id,
            crate::domain::audit::UNSIGNED_LINKS_ACTION,
        ))
        .await?;
    let Some(e) = rows
        .first()
        .and_then(|r| col_str(r, "body"))
        .and_then(|b| serde_json::from_str::<AuditEntry>(b).ok())
    else {
        return Ok(false);
    };
    let signed = e
        .receipt
        .as_ref()
        .is_some_and(|r| keys.verify_receipt(account_id, e.seq, &e.hash, r));
    let cut = e.changes.as_ref().and_then(|c| c["cut_head"].as_i64());
    Ok(signed && e.compute_hash() == e.hash && cut.is_some_and(|c| c >= anchored))
}

/// An event's entry in its account's audit trail (None: not recorded).
pub async fn recorded(
    db: &impl Database,
    account_id: Uuid,
    event_id: Uuid,
) -> Result<Option<AuditEntry>, StoreError> {
    Ok(db
        .query(store::recorded_stmt(account_id, event_id))
        .await?
        .first()
        .and_then(|r| col_json(r, "body"))
        .and_then(|b| serde_json::from_value(b).ok()))
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
