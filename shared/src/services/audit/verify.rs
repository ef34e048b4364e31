//! Recomputing an account's hash chain, resumably: each call checks at most
//! [`VERIFY_MAX_ROWS`] links in pages of [`VERIFY_PAGE`] (100 D1 queries of about 300 KB, well
//! inside D1's 1,000 queries per invocation and a Worker's CPU time), then answers where to
//! resume (`next`). A chain of any length is verified by following `next` until it is null.
//! The resume cursor carries the last good link's hash, so a link rewritten between two calls
//! is still caught by the next one's `prev_hash` check.

use super::{chain_start, AuditEntry, ChainHead};
use crate::domain::audit::{Break, Walker};
use crate::domain::checkpoint::KeyRing;
use crate::ports::{col_i64, col_str, Database, StoreError};
use crate::store::audit as store;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

pub const VERIFY_PAGE: i64 = 500;
pub const VERIFY_MAX_ROWS: u64 = 50_000;
/// No run the writer appends is longer (a queue batch holds at most 100 messages): more links
/// than this without its receipt at the end of a call are not one of its runs.
pub const MAX_RUN: i64 = 1000;

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
    /// The walk started at the chain's own start (its genesis link or its latest signed
    /// disposal), not at a caller's cursor. A call with a cursor vouches only for the links
    /// after it: a whole verification is a run of calls from one without a cursor, following
    /// `next`.
    pub from_start: bool,
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
            End::Broken(seq, reason, resume) => (
                Some(Broken { seq, reason }),
                false,
                resume.map(|r| Resume {
                    after_seq: r.seq,
                    after_hash: r.hash,
                }),
            ),
        };
        let last_good = good.map(|g| Link {
            seq: g.seq,
            hash: g.hash,
        });
        Verification {
            ok: broken.is_none(),
            checked,
            started_after,
            from_start: false,
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

/// Check the next row (`seq`, `body` as stored) with the walker.
fn step(walker: &mut Walker, row: &serde_json::Map<String, Value>) -> Result<AuditEntry, Break> {
    let seq = col_i64(row, "seq").unwrap_or(-1);
    let Some(text) = col_str(row, "body") else {
        return Err(Break {
            seq,
            reason: "body is not an audit entry".into(),
            resume: None,
        });
    };
    walker.step_text(seq, text)
}

enum End {
    Head,
    Budget,
    /// Broken at seq, why, and where a caller may resume (the writer's acknowledgment).
    Broken(i64, String, Option<ChainHead>),
}

/// Verify an account's chain from its start, or after `after` = (seq, hash of that link as a
/// previous call reported it), at most `max_rows` links, every link's place, hash and the
/// writer's receipts checked (`domain::audit::Walker`). A resume point must be a link the writer
/// signed, so a cursor cannot start the walk past a forged region. `None`: `after` names no link
/// of the chain.
pub async fn verify(
    db: &impl Database,
    account_id: Uuid,
    after: Option<(i64, Option<&str>)>,
    max_rows: u64,
    keys: &KeyRing,
) -> Result<Option<Verification>, StoreError> {
    let start = match chain_start(db, account_id, keys).await? {
        Ok(start) => start,
        Err(reason) => {
            // Rows were cut from the start behind a disposal the writer did not sign.
            let first = db
                .query(store::page_stmt(account_id, 0, 1))
                .await?
                .first()
                .and_then(|r| col_i64(r, "seq"))
                .unwrap_or(1);
            return Ok(Some(Verification::new(
                0,
                0,
                None,
                End::Broken(first, reason, None),
            )));
        }
    };
    let mut from = start.clone();
    if let Some((seq, hash)) = after.filter(|(seq, _)| *seq > start.seq) {
        let rows = db.query(store::link_stmt(account_id, seq)).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let refuse = |reason: &str| {
            Ok(Some(Verification::new(
                seq,
                0,
                None,
                End::Broken(seq, reason.to_string(), None),
            )))
        };
        let Some(entry) =
            col_str(row, "body").and_then(|b| serde_json::from_str::<AuditEntry>(b).ok())
        else {
            return refuse("body is not an audit entry");
        };
        // The resume link is checked on its own: its stored text, content, and that the writer
        // signed it.
        let mut walker = Walker::new(
            account_id,
            ChainHead {
                seq: seq - 1,
                hash: entry.prev_hash.clone(),
            },
            keys,
        );
        if let Err(b) = step(&mut walker, row) {
            return refuse(&b.reason);
        }
        if walker.sealed().seq != seq {
            return refuse("the resume link carries no receipt of the audit writer");
        }
        if hash.is_some_and(|expected| expected != entry.hash) {
            return refuse("link differs from the resume cursor (changed since)");
        }
        from = walker.sealed().clone();
    }
    let started_after = from.seq;
    let from_start = started_after == start.seq;
    let mut walker = Walker::new(account_id, from, keys);
    let mut checked = 0u64;
    while checked < max_rows {
        let limit = VERIFY_PAGE.min(i64::try_from(max_rows - checked).unwrap_or(VERIFY_PAGE));
        let rows = db
            .query(store::page_stmt(account_id, walker.head().seq, limit))
            .await?;
        for row in &rows.rows {
            if let Err(b) = step(&mut walker, row) {
                // Before an acknowledged range, the last good link is the one before it.
                let good = walker.sealed().clone();
                return Ok(Some(Verification {
                    from_start,
                    ..Verification::new(
                        started_after,
                        checked,
                        Some(good),
                        End::Broken(b.seq, b.reason, b.resume),
                    )
                }));
            }
            checked += 1;
        }
        if (rows.rows.len() as i64) < limit {
            let end = match walker.finish() {
                Ok(()) => End::Head,
                Err(b) => End::Broken(b.seq, b.reason, None),
            };
            return Ok(Some(Verification {
                from_start,
                ..Verification::new(started_after, checked, Some(walker.sealed().clone()), end)
            }));
        }
    }
    // A whole call's budget of links and none of them signed: no genuine run is that long.
    let unsealed = walker.head().seq - walker.sealed().seq;
    let end = if walker.sealed().seq == started_after || unsealed > MAX_RUN {
        End::Broken(
            walker.sealed().seq + 1,
            format!(
                "links {}..={} and on carry no receipt of the audit writer (longer than any run \
                 it appends): appended outside the service",
                walker.sealed().seq + 1,
                walker.head().seq
            ),
            None,
        )
    } else {
        End::Budget
    };
    Ok(Some(Verification {
        from_start,
        ..Verification::new(started_after, checked, Some(walker.sealed().clone()), end)
    }))
}
