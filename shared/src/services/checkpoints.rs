//! Signed audit checkpoints, written and read: the job side signs one checkpoint per account per
//! hour into the write-once checkpoint bucket; the verify side ties the trail in D1 to them.
//! The signing rules are `domain::checkpoint`'s; this module only moves bytes.

use crate::domain::audit::ChainHead;
use crate::domain::checkpoint::{
    self, digest, period_label, period_start, Checkpoint, Finding, HeadAnchor, KeyRing, Kind,
    Problem, SignedCheckpoint, Signer, Trail, PERIOD,
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
    /// The trail's head is below a head the writer signed and anchored outside D1: links were
    /// cut from the tail, and a checkpoint now would sign the loss.
    #[error("the trail's head {head} is below the writer's anchored head {anchored}: the trail was cut; not signed")]
    BelowAnchor { head: i64, anchored: i64 },
}

/// `audit-checkpoints/{account}/{period}.json`: one object per account and period, so a run
/// that repeats finds its own object and writes nothing.
pub fn object_key(account_id: Uuid, period: &str) -> String {
    format!("{}{period}.json", prefix(account_id))
}

/// The alternate keys of a period whose own key holds an object that is not its checkpoint
/// (planted or damaged): `{period}.r1.json` .. `{period}.r9.json`.
pub fn alternate_key(account_id: Uuid, period: &str, n: u32) -> String {
    format!("{}{period}.r{n}.json", prefix(account_id))
}

/// Alternates tried before a period is given up on.
pub const ALTERNATES: u32 = 9;

pub fn prefix(account_id: Uuid) -> String {
    format!("audit-checkpoints/{account_id}/")
}

/// `audit-heads/{account}/`: the writer's signed heads, one write-once object per run.
pub fn heads_prefix(account_id: Uuid) -> String {
    format!("audit-heads/{account_id}/")
}

/// `audit-heads/{account}/{seq:020}.json`.
pub fn head_key(account_id: Uuid, seq: i64) -> String {
    format!("{}{seq:020}.json", heads_prefix(account_id))
}

/// Anchor a head the writer signed outside D1 (created once; `false`: it was already there).
/// The receipt is the writer's deterministic Ed25519 signature of the link.
pub async fn anchor_head(
    bucket: &impl ImmutableStore,
    signer: &Signer,
    account_id: Uuid,
    head: &ChainHead,
) -> Result<bool, BlobError> {
    if head.seq <= 0 {
        return Ok(false);
    }
    let anchor = HeadAnchor {
        account_id,
        seq: head.seq,
        hash: head.hash.clone(),
        receipt: signer.receipt(account_id, head.seq, &head.hash),
    };
    let bytes = serde_json::to_vec(&anchor).map_err(|e| BlobError(e.to_string()))?;
    bucket.create(&head_key(account_id, head.seq), bytes).await
}

/// What lies above a trail's head among the anchored heads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Above {
    /// The highest anchored head above it that the writer signed (among the first
    /// [`ABOVE_LOOKED_AT`] objects there): the trail was cut.
    pub signed: Option<HeadAnchor>,
    /// Objects there that are not anchors the writer signed: `(key, why)`.
    pub corrupt: Vec<(String, String)>,
}

/// Anchored heads above `head_seq`: at most [`ABOVE_LOOKED_AT`] objects are read.
pub async fn anchors_above(
    bucket: &impl ImmutableStore,
    keys: &KeyRing,
    account_id: Uuid,
    head_seq: i64,
) -> Result<Above, BlobError> {
    let start = head_key(account_id, head_seq.max(0));
    let mut out = Above::default();
    for key in bucket
        .list(&heads_prefix(account_id), Some(&start), ABOVE_LOOKED_AT)
        .await?
    {
        let Some(bytes) = bucket.get(&key).await? else {
            continue;
        };
        match serde_json::from_slice::<HeadAnchor>(&bytes) {
            Ok(a) if a.verifies(account_id, keys) && key == head_key(account_id, a.seq) => {
                // Keys ascend: the last one read is the highest signed head looked at.
                out.signed = Some(a);
            }
            Ok(_) => out
                .corrupt
                .push((key, "not a head the writer signed".into())),
            Err(e) => out.corrupt.push((key, e.to_string())),
        }
    }
    Ok(out)
}

/// The writer's latest anchored head at or above the trail's head in D1 (the one at the head
/// normally; one above it when the trail was cut), for the checkpoints page: an auditor's
/// export must reach it.
pub async fn latest_anchor(
    db: &impl Database,
    bucket: &impl ImmutableStore,
    keys: &KeyRing,
    account_id: Uuid,
) -> Result<Option<HeadAnchor>, CheckpointError> {
    let head = store::chain_head(db, account_id)
        .await?
        .map_or(0, |(s, _)| s);
    let mut latest = None;
    let start = head_key(account_id, (head - 1).max(0));
    for key in bucket
        .list(&heads_prefix(account_id), Some(&start), ABOVE_LOOKED_AT)
        .await?
    {
        if let Some(bytes) = bucket.get(&key).await? {
            if let Ok(a) = serde_json::from_slice::<HeadAnchor>(&bytes) {
                if a.verifies(account_id, keys) && key == head_key(account_id, a.seq) {
                    latest = Some(a);
                }
            }
        }
    }
    Ok(latest)
}

/// Objects read above a head before giving up on finding a signed anchor among planted ones.
pub const ABOVE_LOOKED_AT: usize = 10;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    /// Checkpoints this run signed and stored.
    pub signed: u32,
    /// Periods whose checkpoint was already in the bucket (a repeated or overlapping run).
    pub already_there: u32,
    /// What the run noticed and did not trust (a resume hint in D1 that is in the future or
    /// disagrees with the bucket, an object planted at a checkpoint's key): for the run's
    /// report, which is then partial.
    pub warnings: Vec<String>,
}

/// A valid checkpoint of the account: parsed, the account's, signed by a known key.
fn valid(account_id: Uuid, keys: &KeyRing, bytes: &[u8]) -> Result<SignedCheckpoint, String> {
    let c: SignedCheckpoint = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if c.checkpoint.account_id != account_id {
        return Err("a checkpoint of another account".into());
    }
    if !keys.verifies(&c) {
        return Err("its signature does not verify with the audit writer's keys".into());
    }
    Ok(c)
}

/// An object listed under an account's checkpoint prefix, read.
struct Listed {
    key: String,
    checkpoint: Result<SignedCheckpoint, String>,
}

impl Listed {
    /// The period its key names.
    fn period(&self, account_id: Uuid) -> String {
        let rest = self.key.trim_start_matches(&prefix(account_id));
        rest.get(..24).unwrap_or(rest).to_string()
    }
}

/// The keys of the account's checkpoint objects with a period in `[from, to)` (None:
/// unbounded), oldest first, at most `max` (paged; keys only).
async fn list_keys(
    bucket: &impl ImmutableStore,
    account_id: Uuid,
    from: Option<&str>,
    to: Option<&str>,
    max: usize,
) -> Result<Vec<String>, CheckpointError> {
    const PAGE: usize = 1000;
    let pre = prefix(account_id);
    // Every key of period P (and later) sorts after `{prefix}{P}` itself.
    let mut after = from.map(|p| format!("{pre}{p}"));
    let mut out = Vec::new();
    loop {
        let page = bucket.list(&pre, after.as_deref(), PAGE).await?;
        let n = page.len();
        for key in page {
            after = Some(key.clone());
            let period = key.trim_start_matches(&pre).get(..24).unwrap_or("");
            if to.is_some_and(|t| period >= t) {
                return Ok(out);
            }
            out.push(key);
            if out.len() >= max {
                return Ok(out);
            }
        }
        if n < PAGE {
            return Ok(out);
        }
    }
}

/// Read one listed object (None: gone since it was listed).
async fn read_listed(
    bucket: &impl ImmutableStore,
    keys: &KeyRing,
    account_id: Uuid,
    key: String,
) -> Result<Option<Listed>, CheckpointError> {
    Ok(bucket.get(&key).await?.map(|bytes| Listed {
        checkpoint: valid(account_id, keys, &bytes),
        key,
    }))
}

/// The account's checkpoint objects with a period in `[from, to)`, read.
async fn list_range(
    bucket: &impl ImmutableStore,
    keys: &KeyRing,
    account_id: Uuid,
    from: Option<&str>,
    to: Option<&str>,
    max: usize,
) -> Result<Vec<Listed>, CheckpointError> {
    let mut out = Vec::new();
    for key in list_keys(bucket, account_id, from, to, max).await? {
        out.extend(read_listed(bucket, keys, account_id, key).await?);
    }
    Ok(out)
}

/// The last valid checkpoint among `listed` keys (read from the newest back).
async fn last_valid(
    bucket: &impl ImmutableStore,
    keys: &KeyRing,
    account_id: Uuid,
    listed: Vec<String>,
) -> Result<Option<SignedCheckpoint>, CheckpointError> {
    for key in listed.into_iter().rev() {
        if let Some(Listed {
            checkpoint: Ok(c), ..
        }) = read_listed(bucket, keys, account_id, key).await?
        {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// The last valid checkpoint with a period before `before` (None: any), looking a week back
/// first and at the whole prefix only when that week holds none.
async fn last_before(
    bucket: &impl ImmutableStore,
    keys: &KeyRing,
    account_id: Uuid,
    before: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<Option<SignedCheckpoint>, CheckpointError> {
    let to = before.map(period_label);
    let week_back = period_label(before.unwrap_or(now) - WEEK);
    for from in [Some(week_back.as_str()), None] {
        let listed = list_keys(bucket, account_id, from, to.as_deref(), usize::MAX).await?;
        if let Some(c) = last_valid(bucket, keys, account_id, listed).await? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// A week of periods: how far back the job looks for where it stopped, and one verify window.
pub const WEEK: time::Duration = time::Duration::days(7);
/// Objects read per listing (a week is 168 periodic checkpoints, plus disposals and alternates).
pub const LIST_MAX: usize = 5000;

/// The next period to sign and the digest it names as `previous`, from the bucket: after the
/// last valid checkpoint there (a disposal is ordered before the periodic checkpoint of its
/// own period, so that period still follows it). D1's resume row is at most a hint: a future
/// or disagreeing value is ignored and reported.
async fn resume(
    db: &impl Database,
    bucket: &impl ImmutableStore,
    keys: &KeyRing,
    account_id: Uuid,
    now: OffsetDateTime,
    warnings: &mut Vec<String>,
) -> Result<Option<(OffsetDateTime, String)>, CheckpointError> {
    let last = last_before(bucket, keys, account_id, None, now).await?;
    let hint = store::resume_point(db, account_id).await?;
    if let Some((p, d)) = &hint {
        let future = parse_rfc3339(p).is_none_or(|t| t > period_start(now));
        if future {
            warnings.push(format!(
                "the resume point in D1 names period {p}, which has not ended: ignored"
            ));
        } else if last.as_ref().is_none_or(|c| digest(c) != *d) {
            // A hint that lags (a batch that failed after its object was written) names a
            // checkpoint of its period; one that does not points at what the bucket lacks.
            let next = parse_rfc3339(p).map(|t| period_label(t + PERIOD));
            let mut held = false;
            for key in list_keys(bucket, account_id, Some(p), next.as_deref(), 20).await? {
                if let Some(Listed {
                    checkpoint: Ok(c), ..
                }) = read_listed(bucket, keys, account_id, key).await?
                {
                    held |= digest(&c) == *d;
                }
            }
            if !held {
                warnings.push(format!(
                    "the resume point in D1 (period {p}) names no checkpoint in the bucket: \
                     checkpoints were removed or the resume point edited; the bucket's last is used"
                ));
            }
        }
    }
    Ok(last.and_then(|c| {
        let p = parse_rfc3339(&c.checkpoint.period)?;
        let next = match c.checkpoint.kind {
            Kind::Periodic => p + PERIOD,
            Kind::Disposal => p,
        };
        Some((next, digest(&c)))
    }))
}

/// The head a checkpoint may state: the last link the writer signed (a forged tail is not
/// vouched for), read now.
async fn signable_head(
    db: &impl Database,
    keys: &KeyRing,
    account_id: Uuid,
) -> Result<ChainHead, CheckpointError> {
    let Some((seq, _)) = store::chain_head(db, account_id).await? else {
        return Ok(ChainHead::genesis());
    };
    Ok(
        crate::services::audit::last_sealed(db, account_id, seq + 1, keys)
            .await?
            .unwrap_or_else(ChainHead::genesis),
    )
}

/// Sign the checkpoints due for one account: every complete period after the last one in the
/// bucket, up to the one that ended before `now`, each stating the last head the writer signed,
/// read now (a late run signs the periods it missed with the head it sees, and its `time` says
/// when). Refused when a head the writer anchored outside D1 is above it (the trail was cut)
/// and the writer has not recorded that cut in the trail: a checkpoint must never sign the
/// loss unrecorded.
pub async fn write_due(
    db: &impl Database,
    bucket: &impl ImmutableStore,
    signer: &Signer,
    keys: &KeyRing,
    account_id: Uuid,
    now: OffsetDateTime,
) -> Result<Written, CheckpointError> {
    let last_complete = period_start(now) - PERIOD;
    let mut written = Written::default();
    let resumed = resume(db, bucket, keys, account_id, now, &mut written.warnings).await?;
    let (mut period, mut previous) = match resumed {
        Some((p, d)) => (p, d),
        None => (last_complete, checkpoint::GENESIS.to_string()),
    };
    if period > last_complete {
        return Ok(written);
    }
    let mut head = signable_head(db, keys, account_id).await?;
    let mut above = anchors_above(bucket, keys, account_id, head.seq).await?;
    if above.signed.is_some() {
        // The writer may have appended and anchored since: read the head once more.
        head = signable_head(db, keys, account_id).await?;
        above = anchors_above(bucket, keys, account_id, head.seq).await?;
    }
    if let Some(a) = above.signed {
        // Once the writer has recorded the cut (signed, in the trail), the checkpoints go on
        // from the head it carried on at; until then they would sign the loss.
        if !crate::services::audit::cut_recorded(db, account_id, a.seq, keys).await? {
            return Err(CheckpointError::BelowAnchor {
                head: head.seq,
                anchored: a.seq,
            });
        }
    }
    let mut last = None;
    for _ in 0..MAX_PERIODS_PER_RUN {
        if period > last_complete {
            break;
        }
        let label = period_label(period);
        let signed = signer.sign(Checkpoint {
            account_id,
            period: label.clone(),
            kind: Kind::Periodic,
            head_seq: head.seq,
            head_hash: head.hash.clone(),
            disposed_through: None,
            disposed_hash: None,
            previous: previous.clone(),
            key_id: signer.key_id.clone(),
            time: rfc3339(now),
        });
        let bytes = serde_json::to_vec(&signed).map_err(|e| CheckpointError::Corrupt {
            key: object_key(account_id, &label),
            detail: e.to_string(),
        })?;
        let mut stored = None;
        for n in 0..=ALTERNATES {
            let key = match n {
                0 => object_key(account_id, &label),
                n => alternate_key(account_id, &label, n),
            };
            if bucket.create(&key, bytes.clone()).await? {
                written.signed += 1;
                stored = Some(signed.clone());
                break;
            }
            // Written by an earlier or overlapping run: the chain continues from that one.
            let there = bucket.get(&key).await?.unwrap_or_default();
            match valid(account_id, keys, &there) {
                Ok(c) if c.checkpoint.period == label && c.checkpoint.kind == Kind::Periodic => {
                    written.already_there += 1;
                    stored = Some(c);
                    break;
                }
                Ok(_) => written.warnings.push(format!(
                    "{key} holds another period's or a disposal checkpoint: written under the next alternate key"
                )),
                Err(e) => written.warnings.push(format!(
                    "{key} is not a signed checkpoint ({e}): written under the next alternate key"
                )),
            }
        }
        let Some(stored) = stored else {
            return Err(CheckpointError::Corrupt {
                key: object_key(account_id, &label),
                detail: format!(
                    "it and its {ALTERNATES} alternates hold objects that are not its checkpoint"
                ),
            });
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
/// (which unlocks the DELETE), the DELETE, and the checkpoint job's resume hint. Returns the
/// links removed. A call whose batch failed after the object was written is repeated safely:
/// the checkpoint chain continues from that object (the job resumes from the bucket), and the
/// retry finds it (a disposal in the bucket beyond D1's latest) and carries it out instead of
/// signing a second one.
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
    write_due(db, bucket, signer, keys, account_id, now).await?;
    let Some((head_seq, head_hash)) = store::chain_head(db, account_id).await? else {
        return Ok(0);
    };
    let after = latest_disposal(db, account_id, keys)
        .await?
        .map_or(0, |(through, _)| through);
    // A disposal signed by an earlier call whose batch failed: carried out now.
    let week_back = period_label(now - WEEK);
    let mut pending = None;
    let listed = list_keys(bucket, account_id, Some(&week_back), None, LIST_MAX).await?;
    for key in listed
        .into_iter()
        .rev()
        .filter(|k| k.contains(".disposal-"))
    {
        if let Some(Listed {
            checkpoint: Ok(c), ..
        }) = read_listed(bucket, keys, account_id, key).await?
        {
            if c.checkpoint.kind == Kind::Disposal
                && c.checkpoint.disposed_through.is_some_and(|t| t > after)
            {
                pending = Some(c);
                break;
            }
        }
    }
    if let Some(stored) = pending {
        let through = stored.checkpoint.disposed_through.unwrap_or(0);
        let hash = store::hashes_at(db, account_id, &[through]).await?;
        if hash.first().map(|(_, h)| h) != stored.checkpoint.disposed_hash.as_ref() {
            return Err(CheckpointError::Corrupt {
                key: format!("{}{}", prefix(account_id), stored.checkpoint.period),
                detail: format!(
                    "a disposal through {through} in the bucket names another hash than the trail's row"
                ),
            });
        }
        return record_disposal(db, account_id, &stored).await;
    }
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
    let mut warnings = Vec::new();
    let (period, previous) = resume(db, bucket, keys, account_id, now, &mut warnings)
        .await?
        .unwrap_or((period_start(now), checkpoint::GENESIS.to_string()));
    // Ordered just before the next periodic checkpoint, which will chain onto it.
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
        let there = bucket.get(&key).await?.unwrap_or_default();
        valid(account_id, keys, &there).map_err(|detail| CheckpointError::Corrupt {
            key: key.clone(),
            detail,
        })?
    };
    record_disposal(db, account_id, &stored).await
}

/// The D1 half of a disposal: its signed copy (which unlocks the DELETE), the DELETE, and the
/// job's resume hint, in one batch.
async fn record_disposal(
    db: &impl Database,
    account_id: Uuid,
    stored: &SignedCheckpoint,
) -> Result<u64, CheckpointError> {
    let through_seq = stored.checkpoint.disposed_through.unwrap_or(0);
    let json = serde_json::to_string(stored).map_err(|e| CheckpointError::Corrupt {
        key: stored.checkpoint.period.clone(),
        detail: e.to_string(),
    })?;
    let stmts = vec![
        store::insert_disposal_stmt(account_id, through_seq, &json),
        store::delete_links_through_stmt(account_id, through_seq),
        store::save_resume_point(
            account_id,
            &stored.checkpoint.period,
            &digest(stored),
            stored.checkpoint.head_seq,
        ),
    ];
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

/// Every checkpoint of an account, oldest first, at most `limit` after `start_after` (an
/// object key), as stored (objects that do not parse are left out: verify names them).
pub async fn list(
    bucket: &impl ImmutableStore,
    account_id: Uuid,
    start_after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, SignedCheckpoint)>, CheckpointError> {
    let keys = bucket.list(&prefix(account_id), start_after, limit).await?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(bytes) = bucket.get(&key).await? {
            if let Ok(c) = serde_json::from_slice(&bytes) {
                out.push((key, c));
            }
        }
    }
    Ok(out)
}

/// The trail as the checkpoints need it, read from D1 for exactly the seqs they name.
struct D1Trail {
    first: Option<(i64, String)>,
    first_recorded: Option<String>,
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
    fn first_recorded(&self) -> Option<String> {
        self.first_recorded.clone()
    }
}

/// One window of an account's checkpoints checked against its trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WindowCheck {
    pub checked: usize,
    /// The window: periods from `from` (inclusive) to `to` (exclusive; null: up to now).
    pub from: String,
    pub to: Option<String>,
    pub findings: Vec<Finding>,
    /// The older window follows (`checkpoints_before`), when a checkpoint precedes this one.
    pub next_before: Option<String>,
}

/// Check one week of an account's checkpoints against the trail in D1: by default the most
/// recent week (up to `now`: every complete period since the last checkpoint is due, and the
/// trail's head must not be below a head the writer anchored), or the week before `before`.
/// The window is anchored on the last checkpoint before it, which its first must name as
/// `previous`; signatures, their own chain, missing periods, objects that are not
/// checkpoints, and the trail's hashes at their heads.
pub async fn verify_recent(
    db: &impl Database,
    bucket: &impl ImmutableStore,
    account_id: Uuid,
    before: Option<OffsetDateTime>,
    now: OffsetDateTime,
    keys: &KeyRing,
) -> Result<WindowCheck, CheckpointError> {
    let end = before.map(period_start);
    let from = period_start(end.unwrap_or(now)) - WEEK;
    let from_label = period_label(from);
    let to_label = end.map(period_label);
    let listed = list_range(
        bucket,
        keys,
        account_id,
        Some(&from_label),
        to_label.as_deref(),
        LIST_MAX,
    )
    .await?;
    let anchor = last_before(bucket, keys, account_id, Some(from), now).await?;
    let mut findings = Vec::new();
    let mut cps = Vec::with_capacity(listed.len());
    for l in listed {
        let period = l.period(account_id);
        match l.checkpoint {
            Ok(c) => cps.push(c),
            Err(detail) => findings.push(Finding {
                period,
                seq: 0,
                problem: Problem::Corrupt { key: l.key, detail },
            }),
        }
    }
    let trail = d1_trail(db, account_id, &cps).await?;
    // A disposal row that does not verify covers nothing (its rows are then a cut head).
    let disposal = match latest_disposal(db, account_id, keys).await {
        Ok(d) => d,
        Err(CheckpointError::ForgedDisposal { .. }) => None,
        Err(e) => return Err(e),
    };
    let as_of = end.is_none().then_some(now);
    findings.extend(checkpoint::verify_window(
        account_id,
        anchor.as_ref(),
        disposal,
        &cps,
        keys,
        &trail,
        as_of,
    ));
    if end.is_none() {
        let above = anchors_above(bucket, keys, account_id, trail.head).await?;
        if let Some(a) = above.signed {
            findings.push(Finding {
                period: String::new(),
                seq: a.seq,
                problem: Problem::Truncated {
                    trail_head: trail.head,
                },
            });
        }
        for (key, detail) in above.corrupt {
            findings.push(Finding {
                period: String::new(),
                seq: 0,
                problem: Problem::Corrupt { key, detail },
            });
        }
        // The job's hint names the last checkpoint it wrote: one the bucket no longer holds
        // was removed (the next run would otherwise quietly write it again).
        if let Some((p, d)) = store::resume_point(db, account_id).await? {
            let held = cps.iter().chain(anchor.iter()).any(|c| digest(c) == d);
            let recent = parse_rfc3339(&p).is_some_and(|t| t >= from && t <= now);
            if recent && !held {
                findings.push(Finding {
                    period: p,
                    seq: 0,
                    problem: Problem::MissingPeriod,
                });
            }
        }
    }
    Ok(WindowCheck {
        checked: cps.len(),
        from: from_label.clone(),
        to: to_label,
        findings,
        next_before: anchor.map(|_| from_label),
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
    let first = store::chain_first(db, account_id).await?;
    Ok(D1Trail {
        first: first.as_ref().map(|(s, p, _)| (*s, p.clone())),
        first_recorded: first.and_then(|(_, _, r)| r),
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

/// Check an account's trail in D1 against the given signed checkpoints (the chain's own links
/// are `services::audit::verify`'s; a week of the bucket's is [`verify_recent`]).
pub async fn verify_against(
    db: &impl Database,
    account_id: Uuid,
    checkpoints: &[SignedCheckpoint],
    keys: &KeyRing,
) -> Result<Vec<Finding>, CheckpointError> {
    let trail = d1_trail(db, account_id, checkpoints).await?;
    Ok(checkpoint::verify(
        account_id,
        checkpoints,
        keys,
        &trail,
        None,
    ))
}

#[cfg(test)]
mod tests;
