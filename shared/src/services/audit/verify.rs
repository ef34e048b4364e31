//! Recomputing an account's hash chain, resumably: each call checks at most
//! [`VERIFY_MAX_ROWS`] links in pages of [`VERIFY_PAGE`] (100 D1 queries of about 300 KB, well
//! inside D1's 1,000 queries per invocation and a Worker's CPU time), then answers where to
//! resume (`next`). A chain of any length is verified by following `next` until it is null.
//! The resume cursor carries the last good link's hash, so a link rewritten between two calls
//! is still caught by the next one's `prev_hash` check.

use super::{chain_start, AuditEntry, ChainHead};
use crate::ports::{col_i64, col_str, Database, StoreError};
use crate::store::audit as store;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

pub const VERIFY_PAGE: i64 = 500;
pub const VERIFY_MAX_ROWS: u64 = 50_000;

/// A link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub seq: i64,
    pub hash: String,
}

/// The first link that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

/// Where the next call resumes (`?after_seq=&after_hash=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resume {
    pub after_seq: i64,
    pub after_hash: String,
}

/// One call's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// No broken link among those checked (so far: see `complete`).
    pub ok: bool,
    /// Links checked by this call.
    pub checked: u64,
    /// The link this call started after (the chain's start, or the resume point).
    pub started_after: i64,
    /// The last link that verifies (the start itself when none does yet; null only when the
    /// resume link itself does not verify).
    pub last_good: Option<Link>,
    pub first_broken: Option<Broken>,
    /// True only when the chain's head was reached and every link checked verified.
    pub complete: bool,
    /// Present when the call's budget ended before the head (and nothing was broken).
    pub next: Option<Resume>,
    /// The same as `last_good` and `first_broken`, under their earlier names.
    pub head_seq: i64,
    pub head_hash: String,
    pub first_broken_seq: Option<i64>,
    pub reason: Option<String>,
}

impl Verification {
    fn new(started_after: i64, checked: u64, good: Option<ChainHead>, end: End) -> Self {
        let (broken, complete, next) = match end {
            End::Head => (None, true, None),
            End::Budget => (
                None,
                false,
                good.as_ref().map(|g| Resume {
                    after_seq: g.seq,
                    after_hash: g.hash.clone(),
                }),
            ),
            End::Broken(seq, reason) => (Some(Broken { seq, reason }), false, None),
        };
        let last_good = good.map(|g| Link {
            seq: g.seq,
            hash: g.hash,
        });
        Verification {
            ok: broken.is_none(),
            checked,
            started_after,
            head_seq: last_good.as_ref().map_or(started_after, |l| l.seq),
            head_hash: last_good
                .as_ref()
                .map(|l| l.hash.clone())
                .unwrap_or_default(),
            first_broken_seq: broken.as_ref().map(|b| b.seq),
            reason: broken.as_ref().map(|b| b.reason.clone()),
            last_good,
            first_broken: broken,
            complete,
            next,
        }
    }
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

enum End {
    Head,
    Budget,
    Broken(i64, String),
}

/// Verify an account's chain from its start, or after `after` = (seq, hash of that link as a
/// previous call reported it; when absent the stored link is checked and its hash used), at most
/// `max_rows` links. `None`: `after` names no link of the chain.
pub async fn verify(
    db: &impl Database,
    account_id: Uuid,
    after: Option<(i64, Option<&str>)>,
    max_rows: u64,
) -> Result<Option<Verification>, StoreError> {
    let start = chain_start(db, account_id).await?;
    let mut head = start.clone();
    if let Some((seq, hash)) = after.filter(|(seq, _)| *seq > start.seq) {
        let rows = db.query(store::link_stmt(account_id, seq)).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        // The resume link is checked against its own prev_hash; the cursor's hash must be it.
        let anchor = ChainHead {
            seq: seq - 1,
            hash: col_str(row, "body")
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .and_then(|b| b["prev_hash"].as_str().map(str::to_owned))
                .unwrap_or_default(),
        };
        match verify_rows(&anchor, &rows.rows) {
            Ok(h) if hash.is_none_or(|expected| expected == h.hash) => head = h,
            Ok(_) => {
                let why = "link differs from the resume cursor (changed since)".to_string();
                return Ok(Some(Verification::new(seq, 0, None, End::Broken(seq, why))));
            }
            Err((s, why)) => {
                return Ok(Some(Verification::new(seq, 0, None, End::Broken(s, why))));
            }
        }
    }
    let started_after = head.seq;
    let mut checked = 0u64;
    while checked < max_rows {
        let limit = VERIFY_PAGE.min(i64::try_from(max_rows - checked).unwrap_or(VERIFY_PAGE));
        let rows = db
            .query(store::page_stmt(account_id, head.seq, limit))
            .await?;
        // The links of the page before a broken one still count as checked.
        for row in &rows.rows {
            match verify_rows(&head, std::slice::from_ref(row)) {
                Ok(h) => {
                    head = h;
                    checked += 1;
                }
                Err((seq, why)) => {
                    let seq = col_i64(row, "seq").unwrap_or(seq);
                    return Ok(Some(Verification::new(
                        started_after,
                        checked,
                        Some(head),
                        End::Broken(seq, why),
                    )));
                }
            }
        }
        if (rows.rows.len() as i64) < limit {
            return Ok(Some(Verification::new(
                started_after,
                checked,
                Some(head),
                End::Head,
            )));
        }
    }
    Ok(Some(Verification::new(
        started_after,
        checked,
        Some(head),
        End::Budget,
    )))
}
