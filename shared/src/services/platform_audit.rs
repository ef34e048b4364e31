//! The platform audit trail: append an operator action at the chain head (retried with a fresh
//! head when a concurrent append took its place), then its outcome as a later link naming it;
//! read it in order, and verify it from genesis (chain, hashes, each outcome paired with its
//! action).

use crate::domain::audit::ChainHead;
use crate::domain::operator::{Action, Break, Outcome, PlatformEntry, Walker};
use crate::ports::{col_i64, col_json, col_str, Database, StoreError};
use crate::store::platform_audit as sql;
use time::OffsetDateTime;

/// Attempts at the head before an append gives up (each lost race means another append won).
const APPEND_ATTEMPTS: usize = 5;
/// Links read per query while verifying.
const VERIFY_PAGE: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum PlatformAuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the platform audit trail is busy: {0} appends in a row lost the race for its head")]
    Contended(usize),
    #[error("link {0} of the platform audit trail is unreadable")]
    Unreadable(i64),
}

async fn head<D: Database>(db: &D) -> Result<ChainHead, PlatformAuditError> {
    let rows = db.query(sql::head()).await?;
    Ok(match rows.first() {
        Some(r) => ChainHead {
            seq: col_i64(r, "seq").unwrap_or(0),
            hash: col_str(r, "hash").unwrap_or_default().to_string(),
        },
        None => ChainHead::genesis(),
    })
}

/// Append `a` as the next link and return it.
pub async fn append<D: Database>(
    db: &D,
    a: &Action,
    now: OffsetDateTime,
) -> Result<PlatformEntry, PlatformAuditError> {
    append_link(db, |h| PlatformEntry::next(h, a, now)).await
}

/// Append the outcome of the action recorded as `recorded` (a later link of the same chain
/// naming its `seq`) and return it.
pub async fn append_outcome<D: Database>(
    db: &D,
    recorded: &PlatformEntry,
    outcome: Outcome,
    now: OffsetDateTime,
) -> Result<PlatformEntry, PlatformAuditError> {
    let a = Action::outcome_of(recorded);
    append_link(db, |h| {
        PlatformEntry::next_outcome(h, &a, outcome.clone(), now)
    })
    .await
}

async fn append_link<D: Database>(
    db: &D,
    link: impl Fn(&ChainHead) -> PlatformEntry,
) -> Result<PlatformEntry, PlatformAuditError> {
    for _ in 0..APPEND_ATTEMPTS {
        let h = head(db).await?;
        let e = link(&h);
        let body = serde_json::to_string(&e).unwrap_or_default();
        match db.query(sql::insert(e.seq, &body)).await {
            Ok(_) => return Ok(e),
            Err(StoreError::Constraint(_)) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(PlatformAuditError::Contended(APPEND_ATTEMPTS))
}

/// Links after `after_seq`, ascending, at most `limit`.
pub async fn page<D: Database>(
    db: &D,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<PlatformEntry>, PlatformAuditError> {
    let rows = db.query(sql::page(after_seq, limit)).await?;
    rows.rows
        .iter()
        .map(|r| {
            let seq = col_i64(r, "seq").unwrap_or(0);
            col_json(r, "body")
                .and_then(|b| serde_json::from_value(b).ok())
                .ok_or(PlatformAuditError::Unreadable(seq))
        })
        .collect()
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// Links checked.
    pub links: i64,
    /// The last good link.
    pub head_seq: i64,
    pub head_hash: String,
    /// The first broken link, if any.
    pub first_broken: Option<Break>,
    /// Whether the walk reached the end of the trail (false: `max_links` stopped it).
    pub complete: bool,
    /// Action links walked whose outcome link the walk did not meet (in flight at the head,
    /// or never finished), at most [`MAX_LISTED_OPEN`] of them, oldest first.
    pub without_outcome: Vec<i64>,
}

/// How many actions without an outcome a verification lists.
pub const MAX_LISTED_OPEN: usize = 100;

/// Walk the trail from genesis, at most `max_links` links.
pub async fn verify<D: Database>(db: &D, max_links: i64) -> Result<Verified, PlatformAuditError> {
    let mut w = Walker::genesis();
    let mut links = 0;
    loop {
        let rows = db
            .query(sql::page(w.head().seq, VERIFY_PAGE.min(max_links - links)))
            .await?;
        if rows.rows.is_empty() {
            return Ok(report(&w, links, None, true));
        }
        for r in &rows.rows {
            let seq = col_i64(r, "seq").unwrap_or(0);
            let entry: Option<PlatformEntry> =
                col_json(r, "body").and_then(|b| serde_json::from_value(b).ok());
            let step = match &entry {
                Some(e) => w.step(seq, e),
                None => Err(Break {
                    seq,
                    reason: "the link is not a platform audit entry",
                }),
            };
            if let Err(b) = step {
                return Ok(report(&w, links, Some(b), false));
            }
            links += 1;
        }
        if links >= max_links {
            return Ok(report(&w, links, None, false));
        }
    }
}

fn report(w: &Walker, links: i64, first_broken: Option<Break>, complete: bool) -> Verified {
    Verified {
        links,
        head_seq: w.head().seq,
        head_hash: w.head().hash.clone(),
        first_broken,
        complete,
        without_outcome: w.without_outcome().take(MAX_LISTED_OPEN).collect(),
    }
}
