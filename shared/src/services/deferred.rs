//! Work the API leaves for after its response, decided here and handed to the Worker as data
//! (the adapter only waits and runs it, from `ctx.wait_until`): marking sent events' outbox
//! rows published ([`PendingMarks`], batched over [`FLUSH_AFTER`]) and flushing the usage meter
//! ([`UsageMeter`], every [`FLUSH_EVERY`]). Nothing is lost on failure: what a failed batch
//! held goes back to the isolate's state and rides with the next flush (and should the isolate
//! die first, the relay resends unmarked events, and usage figures are for planning only).
//!
//! [`FLUSH_AFTER`]: crate::services::marks::FLUSH_AFTER
//! [`FLUSH_EVERY`]: crate::services::usage::FLUSH_EVERY

use crate::ports::Database;
use crate::services::marks::{PendingMarks, FLUSH_AFTER};
use crate::services::usage::{ShardUsage, UsageMeter};
use time::{Duration, OffsetDateTime};

/// One piece of deferred work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferred {
    /// Wait `after`, then mark published every event sent by then (all requests of the
    /// isolate in that window share the statements): taken when it runs, not now.
    MarkPublished { after: Duration },
    /// Add these counts to the shards' `account_usage`, at once.
    FlushUsage(Vec<ShardUsage>),
}

impl Deferred {
    /// How long the adapter waits before [`run`].
    pub fn after(&self) -> Duration {
        match self {
            Deferred::MarkPublished { after } => *after,
            Deferred::FlushUsage(_) => Duration::ZERO,
        }
    }
}

/// The isolate's deferred state (one per API isolate).
#[derive(Clone, Copy)]
pub struct IsolateState<'a> {
    pub marks: &'a PendingMarks,
    pub usage: &'a UsageMeter,
}

/// What is due after a request at `now`: a marks flush if events were sent and none is
/// scheduled yet (one at a time), the usage counts once [`FLUSH_EVERY`] has passed.
///
/// [`FLUSH_EVERY`]: crate::services::usage::FLUSH_EVERY
pub fn due(s: IsolateState<'_>, now: OffsetDateTime) -> Vec<Deferred> {
    let mut out = Vec::new();
    if s.marks.needs_flush(now) {
        out.push(Deferred::MarkPublished { after: FLUSH_AFTER });
    }
    let usage = s.usage.take_due_counts(now);
    if !usage.is_empty() {
        out.push(Deferred::FlushUsage(usage));
    }
    out
}

/// What a run did: statements batches that landed, and the bindings whose batch failed (their
/// work is back in the isolate's state).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ran {
    pub batches: usize,
    pub failed: Vec<String>,
    /// Bindings this deployment cannot reach: their work is dropped (the relay resends marks).
    pub unbound: Vec<String>,
    /// Event ids whose marks were dropped (unbound, or past `marks::MAX_RESTORED`), logged here.
    pub dropped: usize,
    /// Accounts whose usage was dropped because the shard refused it: the tenant is fenced
    /// there (moving, or moved off it; see `store::moves`).
    pub fenced: usize,
}

/// Run one piece of deferred work, one D1 batch per shard binding.
pub async fn run<D: Database>(
    work: Deferred,
    s: IsolateState<'_>,
    now: OffsetDateTime,
    shard: impl Fn(&str) -> Option<D>,
) -> Ran {
    let mut ran = Ran::default();
    match work {
        Deferred::MarkPublished { .. } => {
            for m in s.marks.take_pending() {
                let stmts = m.statements(now);
                let binding = m.binding.clone();
                match outcome(&shard, &binding, stmts).await {
                    Outcome::Done => ran.batches += 1,
                    Outcome::Unbound => {
                        tracing::warn!(%binding, events = m.len(), "marks for a shard this deployment does not bind dropped; the relay resends them");
                        ran.dropped += m.len();
                        ran.unbound.push(binding);
                    }
                    Outcome::Failed | Outcome::Fenced => {
                        tracing::warn!(%binding, events = m.len(), "marking outbox rows published failed; kept for the next flush");
                        let dropped = s.marks.restore(m);
                        if dropped > 0 {
                            tracing::warn!(%binding, dropped, "too many marks kept for the next flush; the relay resends the dropped ones");
                        }
                        ran.dropped += dropped;
                        ran.failed.push(binding);
                    }
                }
            }
        }
        Deferred::FlushUsage(usage) => {
            for u in usage {
                let binding = u.binding.clone();
                match outcome(&shard, &binding, u.statements()).await {
                    Outcome::Done => ran.batches += 1,
                    Outcome::Unbound => {
                        tracing::warn!(%binding, "usage of a shard this deployment does not bind dropped");
                        ran.unbound.push(binding);
                    }
                    // A tenant fenced on this shard (a move's cutover, or a stale route after
                    // it) refuses the whole batch: it must not hold back the other tenants'
                    // counts, flush after flush. Each account alone, then (only after such a
                    // refusal); a fenced one's counts of this window are dropped and counted
                    // (its usage rows move with it or live on its new shard; usage is for
                    // planning only).
                    Outcome::Fenced => {
                        for one in u.by_account() {
                            match outcome(&shard, &binding, one.statements()).await {
                                Outcome::Done => ran.batches += 1,
                                Outcome::Fenced => {
                                    tracing::warn!(%binding, account = ?one.accounts(), "usage of a tenant fenced on this shard dropped");
                                    ran.fenced += 1;
                                }
                                Outcome::Failed | Outcome::Unbound => {
                                    s.usage.restore(one);
                                    if !ran.failed.contains(&binding) {
                                        ran.failed.push(binding.clone());
                                    }
                                }
                            }
                        }
                    }
                    // The batch may have committed though the call failed (a lost answer):
                    // those counts are then added twice. Usage is for planning only.
                    Outcome::Failed => {
                        tracing::warn!(%binding, "usage flush failed; kept for the next flush");
                        s.usage.restore(u);
                        ran.failed.push(binding);
                    }
                }
            }
        }
    }
    ran
}

enum Outcome {
    Done,
    Failed,
    /// Refused: a tenant of the batch is fenced on this shard (nothing was written).
    Fenced,
    Unbound,
}

async fn outcome<D: Database>(
    shard: &impl Fn(&str) -> Option<D>,
    binding: &str,
    stmts: Vec<crate::ports::Stmt>,
) -> Outcome {
    if stmts.is_empty() {
        return Outcome::Done;
    }
    let Some(db) = shard(binding) else {
        return Outcome::Unbound;
    };
    match db.batch(stmts).await {
        Ok(_) => Outcome::Done,
        Err(crate::ports::StoreError::Fenced(_)) => Outcome::Fenced,
        Err(e) => {
            tracing::warn!(error = %e, %binding, "deferred batch failed");
            Outcome::Failed
        }
    }
}

#[cfg(test)]
mod tests;
