//! Signed audit checkpoints, written and read: the job side signs one checkpoint per account per
//! hour into the write-once checkpoint bucket; the verify side ties the trail in D1 to them.
//! The signing rules are `domain::checkpoint`'s; this module only moves bytes.

use crate::domain::checkpoint::{
    self, digest, period_label, period_start, Checkpoint, Finding, KeyRing, Kind, SignedCheckpoint,
    Signer, Trail, PERIOD,
};
use crate::domain::clock::{parse_rfc3339, rfc3339};
use crate::ports::{col_i64, col_str, BlobError, Database, ImmutableStore, StoreError};
use crate::store::checkpoints as store;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// At most this many periods are signed per account per run (a week): a job that was off for
/// longer catches up over several runs.
pub const MAX_PERIODS_PER_RUN: usize = 24 * 7;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bucket(#[from] BlobError),
    /// A row of `audit_disposals` that the audit writer did not sign: deletions were unlocked
    /// by hand.
    #[error("a disposal of audit rows is not the audit writer's: {detail}")]
    ForgedDisposal { detail: String },
    /// An object in the bucket that is not a signed checkpoint.
    #[error("checkpoint object {key} is not a signed checkpoint: {detail}")]
    Corrupt { key: String, detail: String },
}

/// `audit-checkpoints/{account}/{period}.json`: one object per account and period, so a run
/// that repeats finds its own object and writes nothing.
pub fn object_key(account_id: Uuid, period: &str) -> String {
    format!("{}{period}.json", prefix(account_id))
}

pub fn prefix(account_id: Uuid) -> String {
    format!("audit-checkpoints/{account_id}/")
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    /// Checkpoints this run signed and stored.
    pub signed: u32,
    /// Periods whose checkpoint was already in the bucket (a repeated or overlapping run).
    pub already_there: u32,
}

/// Sign the checkpoints due for one account: every complete period after the last one signed,
/// up to the one that ended before `now`, each stating the chain head read now (a late run
/// signs the periods it missed with the head it sees, and its `time` says when).
pub async fn write_due(
    db: &impl Database,
    bucket: &impl ImmutableStore,
    signer: &Signer,
    account_id: Uuid,
    now: OffsetDateTime,
) -> Result<Written, CheckpointError> {
    let last_complete = period_start(now) - PERIOD;
    let resume = store::resume_point(db, account_id).await?;
    let (mut period, mut previous) = match &resume {
        Some((p, d)) => match parse_rfc3339(p) {
            Some(t) => (t + PERIOD, d.clone()),
            None => (last_complete, checkpoint::GENESIS.to_string()),
        },
        None => (last_complete, checkpoint::GENESIS.to_string()),
    };
    let mut written = Written::default();
    if period > last_complete {
        return Ok(written);
    }
    let (head_seq, head_hash) = store::chain_head(db, account_id)
        .await?
        .unwrap_or((0, checkpoint::GENESIS.to_string()));
    let mut last = None;
    for _ in 0..MAX_PERIODS_PER_RUN {
        if period > last_complete {
            break;
        }
        let label = period_label(period);
        let key = object_key(account_id, &label);
        let signed = signer.sign(Checkpoint {
            account_id,
            period: label.clone(),
            kind: Kind::Periodic,
            head_seq,
            head_hash: head_hash.clone(),
            disposed_through: None,
            disposed_hash: None,
            previous: previous.clone(),
            key_id: signer.key_id.clone(),
            time: rfc3339(now),
        });
        let bytes = serde_json::to_vec(&signed).map_err(|e| CheckpointError::Corrupt {
            key: key.clone(),
            detail: e.to_string(),
        })?;
        let stored = if bucket.create(&key, bytes).await? {
            written.signed += 1;
            signed
        } else {
            // Written by an earlier or overlapping run: the chain continues from that one.
            written.already_there += 1;
            read(bucket, &key).await?.ok_or(CheckpointError::Corrupt {
                key: key.clone(),
                detail: "exists but cannot be read".into(),
            })?
        };
        previous = digest(&stored);
        last = Some((label, stored.checkpoint.head_seq));
        period += PERIOD;
    }
    if let Some((label, seq)) = last {
        db.query(store::save_resume_point(account_id, &label, &previous, seq))
            .await?;
    }
    Ok(written)
}

/// Rows looked at per disposal call (a run disposes of at most this many per account).
pub const DISPOSE_PAGE: i64 = 500;

/// Dispose of the oldest audit links of an account whose retention is over (the audit log's
/// own retention, `retention::audit_retention_end`): a prefix of the chain, never its head.
/// First a signed disposal checkpoint into the write-once bucket (what was removed, and the
/// hash the remaining trail continues from), then one D1 batch: its copy in `audit_disposals`
/// (which unlocks the DELETE), the DELETE, and the checkpoint job's resume point, so the next
/// hourly checkpoint chains onto the disposal. Returns the links removed. A call that failed
/// half-way is repeated safely: the object is created once, the batch is all or nothing.
pub async fn dispose_expired(
    db: &impl Database,
    bucket: &impl ImmutableStore,
    signer: &Signer,
    keys: &KeyRing,
    account_id: Uuid,
    audit_years: u32,
    now: OffsetDateTime,
) -> Result<u64, CheckpointError> {
    // Bring the periodic checkpoints up to date first: the disposal chains onto the latest.
    write_due(db, bucket, signer, account_id, now).await?;
    let Some((head_seq, head_hash)) = store::chain_head(db, account_id).await? else {
        return Ok(0);
    };
    let after = latest_disposal(db, account_id, keys)
        .await?
        .map_or(0, |(through, _)| through);
    let rows = db
        .query(store::oldest_links_stmt(account_id, after, DISPOSE_PAGE))
        .await?;
    let mut through: Option<(i64, String)> = None;
    for r in &rows.rows {
        let (Some(seq), Some(hash), Some(recorded)) = (
            col_i64(r, "seq"),
            col_str(r, "hash"),
            col_str(r, "recorded").and_then(parse_rfc3339),
        ) else {
            break;
        };
        // The head always stays: the writer chains onto it.
        if seq >= head_seq
            || crate::domain::retention::audit_retention_end(recorded, audit_years) > now
        {
            break;
        }
        through = Some((seq, hash.to_string()));
    }
    let Some((through_seq, through_hash)) = through else {
        return Ok(0);
    };
    let (resume_period, previous) = match store::resume_point(db, account_id).await? {
        Some((p, d)) => (Some(p), d),
        None => (None, checkpoint::GENESIS.to_string()),
    };
    // Ordered just before the next periodic checkpoint, which will chain onto it.
    let period = resume_period
        .as_deref()
        .and_then(parse_rfc3339)
        .map_or(period_start(now), |p| p + PERIOD);
    let label = period_label(period);
    let key = format!(
        "{}{label}.disposal-{through_seq:020}.json",
        prefix(account_id)
    );
    let signed = signer.sign(Checkpoint {
        account_id,
        period: label,
        kind: Kind::Disposal,
        head_seq,
        head_hash,
        disposed_through: Some(through_seq),
        disposed_hash: Some(through_hash),
        previous,
        key_id: signer.key_id.clone(),
        time: rfc3339(now),
    });
    let bytes = serde_json::to_vec(&signed).map_err(|e| CheckpointError::Corrupt {
        key: key.clone(),
        detail: e.to_string(),
    })?;
    let stored = if bucket.create(&key, bytes).await? {
        signed
    } else {
        read(bucket, &key).await?.ok_or(CheckpointError::Corrupt {
            key: key.clone(),
            detail: "exists but cannot be read".into(),
        })?
    };
    let json = serde_json::to_string(&stored).map_err(|e| CheckpointError::Corrupt {
        key: key.clone(),
        detail: e.to_string(),
    })?;
    let mut stmts = vec![
        store::insert_disposal_stmt(account_id, through_seq, &json),
        store::delete_links_through_stmt(account_id, through_seq),
    ];
    if let Some(p) = &resume_period {
        stmts.push(store::save_resume_point(
            account_id,
            p,
            &digest(&stored),
            stored.checkpoint.head_seq,
        ));
    }
    let results = db.batch(stmts).await?;
    Ok(results.get(1).map_or(0, |r| r.meta.changes))
}

/// The latest disposal recorded in D1, if its signature verifies: `(through, hash)`, where the
/// remaining trail continues. A disposal row that does not verify is an error (someone
/// unlocked deletions by hand).
pub async fn latest_disposal(
    db: &impl Database,
    account_id: Uuid,
    keys: &KeyRing,
) -> Result<Option<(i64, String)>, CheckpointError> {
    let r = db.query(store::latest_disposal_stmt(account_id)).await?;
    let Some(body) = r.first().and_then(|row| col_str(row, "body")) else {
        return Ok(None);
    };
    let forged = |detail: &str| CheckpointError::ForgedDisposal {
        detail: detail.to_string(),
    };
    let c: SignedCheckpoint = serde_json::from_str(body).map_err(|e| forged(&e.to_string()))?;
    if c.checkpoint.account_id != account_id || c.checkpoint.kind != Kind::Disposal {
        return Err(forged("not a disposal of this account"));
    }
    if !keys.verifies(&c) {
        return Err(forged(
            "its signature does not verify with the audit writer's keys",
        ));
    }
    match (c.checkpoint.disposed_through, c.checkpoint.disposed_hash) {
        (Some(t), Some(h)) => Ok(Some((t, h))),
        _ => Err(forged("it names no disposed link")),
    }
}

async fn read(
    bucket: &impl ImmutableStore,
    key: &str,
) -> Result<Option<SignedCheckpoint>, CheckpointError> {
    match bucket.get(key).await? {
        None => Ok(None),
        Some(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CheckpointError::Corrupt {
                    key: key.into(),
                    detail: e.to_string(),
                })
        }
    }
}

/// Every checkpoint of an account, oldest first, at most `limit` after `start_after` (an
/// object key). Objects that are not checkpoints are errors: nothing but the job writes there.
pub async fn list(
    bucket: &impl ImmutableStore,
    account_id: Uuid,
    start_after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, SignedCheckpoint)>, CheckpointError> {
    let keys = bucket.list(&prefix(account_id), start_after, limit).await?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(c) = read(bucket, &key).await? {
            out.push((key, c));
        }
    }
    Ok(out)
}

/// The trail as the checkpoints need it, read from D1 for exactly the seqs they name.
struct D1Trail {
    first: Option<(i64, String)>,
    head: i64,
    hashes: BTreeMap<i64, String>,
}

impl Trail for D1Trail {
    fn first(&self) -> Option<(i64, String)> {
        self.first.clone()
    }
    fn head(&self) -> i64 {
        self.head
    }
    fn hash_at(&self, seq: i64) -> Option<String> {
        self.hashes.get(&seq).cloned()
    }
}

/// One bounded window of an account's checkpoints checked against its trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WindowCheck {
    pub checked: usize,
    pub findings: Vec<Finding>,
    /// The period to resume after (`checkpoints_after`), when more checkpoints follow.
    pub next_after: Option<String>,
}

/// Check at most `limit` checkpoints of the account after period `after` (from its first when
/// None) against the trail in D1: signatures, their own chain (anchored on the checkpoint of
/// `after`), missing periods and the trail's hashes at their heads.
pub async fn verify_window(
    db: &impl Database,
    bucket: &impl ImmutableStore,
    account_id: Uuid,
    after: Option<&str>,
    limit: usize,
    keys: &KeyRing,
) -> Result<WindowCheck, CheckpointError> {
    let start_after = after.map(|p| object_key(account_id, p));
    let window = list(bucket, account_id, start_after.as_deref(), limit).await?;
    let anchor = match &start_after {
        Some(k) => read(bucket, k).await?,
        None => None,
    };
    let cps: Vec<SignedCheckpoint> = window.iter().map(|(_, c)| c.clone()).collect();
    let trail = d1_trail(db, account_id, &cps).await?;
    // A disposal row that does not verify covers nothing (its rows are then a cut head).
    let disposal = latest_disposal(db, account_id, keys).await.unwrap_or(None);
    let findings =
        checkpoint::verify_window(account_id, anchor.as_ref(), disposal, &cps, keys, &trail);
    let next_after = (window.len() == limit)
        .then(|| window.last().map(|(_, c)| c.checkpoint.period.clone()))
        .flatten();
    Ok(WindowCheck {
        checked: cps.len(),
        findings,
        next_after,
    })
}

async fn d1_trail(
    db: &impl Database,
    account_id: Uuid,
    checkpoints: &[SignedCheckpoint],
) -> Result<D1Trail, CheckpointError> {
    let mut seqs: Vec<i64> = checkpoints
        .iter()
        .map(|c| c.checkpoint.head_seq)
        .filter(|s| *s > 0)
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    Ok(D1Trail {
        first: store::chain_first(db, account_id).await?,
        head: store::chain_head(db, account_id)
            .await?
            .map(|(s, _)| s)
            .unwrap_or(0),
        hashes: store::hashes_at(db, account_id, &seqs)
            .await?
            .into_iter()
            .collect(),
    })
}

/// Check an account's trail in D1 against its signed checkpoints (the chain's own links are
/// `services::audit::verify`'s).
pub async fn verify_against(
    db: &impl Database,
    account_id: Uuid,
    checkpoints: &[SignedCheckpoint],
    keys: &KeyRing,
) -> Result<Vec<Finding>, CheckpointError> {
    let trail = d1_trail(db, account_id, checkpoints).await?;
    Ok(checkpoint::verify(account_id, checkpoints, keys, &trail))
}

#[cfg(test)]
mod tests;
