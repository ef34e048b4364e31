//! Per-account D1 usage, metered by the API from D1's result meta. Each request's cost is
//! added to an in-isolate meter; every [`FLUSH_EVERY`] the meter is written to the shard's
//! `account_usage` table, one upsert per account and 15-minute period, so metering never adds
//! a D1 query to a request. What an isolate has not flushed when it is evicted is lost: the
//! figures are for capacity planning, not billing.

use crate::domain::clock::rfc3339;
use crate::ports::{col_i64, col_str, Cost, Database, Stmt, StoreError};
use crate::store::usage as store;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub const PERIOD: Duration = Duration::minutes(15);
pub const FLUSH_EVERY: Duration = Duration::seconds(10);
/// Usage rows are kept this long (the retention sweep purges older periods).
pub const KEEP_DAYS: i64 = 35;

/// Counts of one account in one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub requests: u64,
    pub writes: u64,
    pub cost: Cost,
}

impl Usage {
    fn add(&mut self, o: Usage) {
        self.requests += o.requests;
        self.writes += o.writes;
        self.cost = self.cost.plus(o.cost);
    }
}

/// Start of the 15-minute period holding `t`.
pub fn period_start(t: OffsetDateTime) -> OffsetDateTime {
    let secs = t.unix_timestamp();
    let p = PERIOD.whole_seconds();
    OffsetDateTime::from_unix_timestamp(secs - secs.rem_euclid(p)).unwrap_or(t)
}

/// One shard's pending counts: (account, period start in Unix seconds) -> counts.
type Periods = BTreeMap<(Uuid, i64), Usage>;

/// The in-isolate meter (one per API isolate; single-threaded).
#[derive(Debug, Default)]
pub struct UsageMeter {
    /// Shard binding -> its pending counts.
    pending: RefCell<BTreeMap<String, Periods>>,
    last_flush: Cell<Option<OffsetDateTime>>,
}

impl UsageMeter {
    /// On every request: no formatting, and no allocation once the shard has an entry.
    pub fn record(&self, binding: &str, account: Uuid, now: OffsetDateTime, usage: Usage) {
        let key = (account, period_start(now).unix_timestamp());
        let mut pending = self.pending.borrow_mut();
        let periods = match pending.get_mut(binding) {
            Some(p) => p,
            None => pending.entry(binding.to_string()).or_default(),
        };
        periods.entry(key).or_default().add(usage);
        drop(pending);
        if self.last_flush.get().is_none() {
            self.last_flush.set(Some(now));
        }
    }

    /// When a flush is due: the pending counts of each shard binding, and the meter starts
    /// again from zero. Nothing is due before [`FLUSH_EVERY`] since the last flush.
    pub fn take_due_counts(&self, now: OffsetDateTime) -> Vec<ShardUsage> {
        match self.last_flush.get() {
            Some(last) if now - last >= FLUSH_EVERY => {}
            _ => return Vec::new(),
        }
        self.last_flush.set(Some(now));
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        pending
            .into_iter()
            .map(|(binding, periods)| ShardUsage { binding, periods })
            .collect()
    }

    /// The same, as one batch of upserts per shard binding.
    pub fn take_due(&self, now: OffsetDateTime) -> Vec<(String, Vec<Stmt>)> {
        self.take_due_counts(now)
            .into_iter()
            .map(|s| {
                let stmts = s.statements();
                (s.binding, stmts)
            })
            .collect()
    }

    /// Put back counts whose flush failed: they are added to what accrued meanwhile and go
    /// with the next flush.
    pub fn restore(&self, s: ShardUsage) {
        let mut pending = self.pending.borrow_mut();
        let periods = pending.entry(s.binding).or_default();
        for (key, u) in s.periods {
            periods.entry(key).or_default().add(u);
        }
    }
}

/// One shard's counts taken from the meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardUsage {
    pub binding: String,
    periods: Periods,
}

impl ShardUsage {
    /// The same counts, one `ShardUsage` per account.
    pub fn by_account(self) -> Vec<ShardUsage> {
        let mut out: BTreeMap<Uuid, Periods> = BTreeMap::new();
        for ((account, start), u) in self.periods {
            out.entry(account).or_default().insert((account, start), u);
        }
        out.into_values()
            .map(|periods| ShardUsage {
                binding: self.binding.clone(),
                periods,
            })
            .collect()
    }

    /// The accounts these counts are of.
    pub fn accounts(&self) -> Vec<Uuid> {
        let mut a: Vec<Uuid> = self.periods.keys().map(|(a, _)| *a).collect();
        a.dedup();
        a
    }

    /// One upsert per account and period.
    pub fn statements(&self) -> Vec<Stmt> {
        self.periods
            .iter()
            .map(|((account, start), u)| {
                let period = OffsetDateTime::from_unix_timestamp(*start)
                    .map(rfc3339)
                    .unwrap_or_default();
                upsert(*account, &period, *u)
            })
            .collect()
    }
}

/// Every account's usage in one period of a shard (the health job's read).
pub async fn read_period(
    db: &impl Database,
    period: OffsetDateTime,
) -> Result<BTreeMap<String, Usage>, StoreError> {
    let r = db
        .query(store::period_stmt(&rfc3339(period_start(period))))
        .await?;
    let n = |row: &serde_json::Map<String, serde_json::Value>, k: &str| {
        col_i64(row, k).unwrap_or(0).max(0) as u64
    };
    Ok(r.rows
        .iter()
        .filter_map(|row| {
            let a = col_str(row, "account_id")?.to_string();
            Some((
                a,
                Usage {
                    requests: n(row, "requests"),
                    writes: n(row, "writes"),
                    cost: Cost {
                        calls: n(row, "calls"),
                        statements: n(row, "statements"),
                        rows_read: n(row, "rows_read"),
                        rows_written: n(row, "rows_written"),
                    },
                },
            ))
        })
        .collect())
}

/// Add `u` to an account's period (created on first use).
pub fn upsert(account: Uuid, period: &str, u: Usage) -> Stmt {
    store::upsert_stmt(
        account,
        period,
        store::Counts {
            requests: u.requests,
            writes: u.writes,
            calls: u.cost.calls,
            statements: u.cost.statements,
            rows_read: u.cost.rows_read,
            rows_written: u.cost.rows_written,
        },
    )
}

/// Purge periods older than [`KEEP_DAYS`] (retention sweep, per shard).
pub fn purge_stmt(now: OffsetDateTime) -> Stmt {
    store::purge_before_stmt(&rfc3339(period_start(now - Duration::days(KEEP_DAYS))))
}

#[cfg(test)]
mod tests;
