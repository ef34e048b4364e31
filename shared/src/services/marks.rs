//! Outbox rows whose events the API has sent, waiting to be marked published. Marking them
//! one write at a time would add a D1 query to every write; instead the isolate collects them
//! and marks each account's batch with ONE statement a moment later (the Worker flushes from
//! `ctx.wait_until` after [`FLUSH_AFTER`], off the request path). If the isolate dies first the
//! rows stay unpublished and the relay resends them after its minimum age (consumers are
//! idempotent), which is why the relay's minimum age must exceed the flush delay.

use crate::ports::Stmt;
use crate::store::outbox::mark_published_ids;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub const FLUSH_AFTER: Duration = Duration::seconds(2);
/// A scheduled flush that has not taken the marks by then is taken for lost (a `wait_until`
/// future the runtime dropped): the next request schedules another.
pub const SCHEDULED_EXPIRES: Duration = Duration::seconds(30);
/// At most this many event ids are kept for the next flush after failed ones (a shard failing
/// for long would grow them past what one D1 batch holds); the relay resends what is dropped.
pub const MAX_RESTORED: usize = 10_000;

#[derive(Debug, Default)]
pub struct PendingMarks {
    pending: RefCell<BTreeMap<(String, Uuid), Vec<Uuid>>>,
    /// When the pending flush was scheduled (None: none is).
    scheduled: Cell<Option<OffsetDateTime>>,
}

impl PendingMarks {
    pub fn add(&self, binding: &str, account: Uuid, events: impl IntoIterator<Item = Uuid>) {
        self.pending
            .borrow_mut()
            .entry((binding.to_string(), account))
            .or_default()
            .extend(events);
    }

    /// True once per batch: the caller must schedule a flush (none is scheduled yet, or the
    /// one scheduled did not run within [`SCHEDULED_EXPIRES`]).
    pub fn needs_flush(&self, now: OffsetDateTime) -> bool {
        if self.pending.borrow().is_empty() {
            return false;
        }
        if self
            .scheduled
            .get()
            .is_some_and(|at| now < at + SCHEDULED_EXPIRES)
        {
            return false;
        }
        self.scheduled.set(Some(now));
        true
    }

    /// Everything pending, per shard binding, and a flush may be scheduled again.
    pub fn take_pending(&self) -> Vec<ShardMarks> {
        self.scheduled.set(None);
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        let mut out: BTreeMap<String, ShardMarks> = BTreeMap::new();
        for ((binding, account), ids) in pending {
            out.entry(binding.clone())
                .or_insert_with(|| ShardMarks {
                    binding,
                    accounts: Vec::new(),
                })
                .accounts
                .push((account, ids));
        }
        out.into_values().collect()
    }

    fn len(&self) -> usize {
        self.pending.borrow().values().map(Vec::len).sum()
    }

    /// Everything pending, as one mark statement per account (at most 90 ids each: D1 allows
    /// 100 bound parameters), grouped by shard binding.
    pub fn take(&self, now: OffsetDateTime) -> Vec<(String, Vec<Stmt>)> {
        self.take_pending()
            .into_iter()
            .map(|m| {
                let stmts = m.statements(now);
                (m.binding, stmts)
            })
            .collect()
    }

    /// Put back marks whose statement failed: the next flush marks them with what came since,
    /// up to [`MAX_RESTORED`] ids pending in all. Returns how many ids were dropped (their rows
    /// stay unpublished; the relay resends them).
    pub fn restore(&self, m: ShardMarks) -> usize {
        let mut room = MAX_RESTORED.saturating_sub(self.len());
        let mut dropped = 0;
        for (account, mut ids) in m.accounts {
            let keep = ids.len().min(room);
            dropped += ids.len() - keep;
            ids.truncate(keep);
            room -= keep;
            if !ids.is_empty() {
                self.add(&m.binding, account, ids);
            }
        }
        dropped
    }
}

/// One shard's pending marks: the sent event ids of each account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMarks {
    pub binding: String,
    accounts: Vec<(Uuid, Vec<Uuid>)>,
}

impl ShardMarks {
    /// One mark statement per account and 90 ids (D1 allows 100 bound parameters).
    pub fn statements(&self, now: OffsetDateTime) -> Vec<Stmt> {
        self.accounts
            .iter()
            .flat_map(|(account, ids)| {
                ids.chunks(90)
                    .map(move |chunk| mark_published_ids(*account, chunk, now))
            })
            .collect()
    }

    /// How many events' rows these marks cover.
    pub fn len(&self) -> usize {
        self.accounts.iter().map(|(_, ids)| ids.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn one_statement_per_account_and_one_flush_scheduled_at_a_time() {
        let m = PendingMarks::default();
        let t = datetime!(2026-11-26 09:00 UTC);
        assert!(!m.needs_flush(t), "nothing pending");
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        m.add("S1", a, [Uuid::from_u128(10)]);
        assert!(m.needs_flush(t));
        m.add("S1", a, (11..200).map(Uuid::from_u128));
        m.add("S1", b, [Uuid::from_u128(20)]);
        assert!(!m.needs_flush(t), "already scheduled");
        let due = m.take(datetime!(2026-11-26 09:00 UTC));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.len(), 4, "190 ids of a in 3 chunks, 1 of b");
        assert!(due[0].1.iter().all(|s| s.params.len() <= 100));
        assert!(m.take(datetime!(2026-11-26 09:00 UTC)).is_empty());
        m.add("S1", a, [Uuid::from_u128(30)]);
        assert!(m.needs_flush(t), "a new batch schedules again");
    }

    #[test]
    fn a_scheduled_flush_that_never_ran_expires_and_another_is_scheduled() {
        let m = PendingMarks::default();
        let t = datetime!(2026-11-26 09:00 UTC);
        m.add("S1", Uuid::from_u128(1), [Uuid::from_u128(10)]);
        assert!(m.needs_flush(t));
        assert!(!m.needs_flush(t + SCHEDULED_EXPIRES - Duration::seconds(1)));
        assert!(
            m.needs_flush(t + SCHEDULED_EXPIRES),
            "the lost flush is replaced"
        );
        assert!(!m.needs_flush(t + SCHEDULED_EXPIRES), "once");
    }

    #[test]
    fn restored_marks_are_capped_and_the_dropped_ones_counted() {
        let m = PendingMarks::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        m.add("S1", a, (0..6_000).map(Uuid::from_u128));
        m.add("S1", b, (6_000..12_000).map(Uuid::from_u128));
        let taken = m.take_pending();
        m.add("S1", a, [Uuid::from_u128(99_999)]);
        let dropped: usize = taken.into_iter().map(|s| m.restore(s)).sum();
        assert_eq!(m.len(), MAX_RESTORED);
        assert_eq!(dropped, 12_001 - MAX_RESTORED);
    }
}
