use super::*;
use crate::testing::fakes::{block_on, SqliteDb};
use time::macros::datetime;

fn shard() -> SqliteDb {
    SqliteDb::shard().expect("migrations")
}

fn cost(rows_read: u64) -> Usage {
    Usage {
        requests: 1,
        writes: 0,
        cost: Cost {
            calls: 1,
            statements: 1,
            rows_read,
            rows_written: 0,
        },
    }
}

#[test]
fn periods_are_aligned_quarter_hours() {
    assert_eq!(
        period_start(datetime!(2026-11-26 08:29:59 UTC)),
        datetime!(2026-11-26 08:15:00 UTC)
    );
    assert_eq!(
        period_start(datetime!(2026-11-26 08:30:00 UTC)),
        datetime!(2026-11-26 08:30:00 UTC)
    );
}

#[test]
fn flushes_only_after_the_interval_and_then_starts_from_zero() {
    let m = UsageMeter::default();
    let a = Uuid::from_u128(1);
    let t0 = datetime!(2026-11-26 08:00:01 UTC);
    m.record("SHARD_EU_01", a, t0, cost(2));
    m.record("SHARD_EU_01", a, t0 + Duration::seconds(3), cost(5));
    assert!(m.take_due(t0 + Duration::seconds(9)).is_empty());
    let due = m.take_due(t0 + Duration::seconds(10));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].0, "SHARD_EU_01");
    assert_eq!(due[0].1.len(), 1, "one upsert per account and period");
    assert!(m.take_due(t0 + Duration::seconds(30)).is_empty());
}

#[test]
fn upserts_add_up_per_account_and_period_and_never_mix_tenants() {
    let db = shard();
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let t = datetime!(2026-11-26 08:05:00 UTC);
    let m = UsageMeter::default();
    for (acct, n) in [(a, 3), (b, 7), (a, 4)] {
        m.record("S", acct, t, cost(n));
    }
    for (_, stmts) in m.take_due(t + FLUSH_EVERY) {
        block_on(db.batch(stmts)).expect("flush");
    }
    m.record("S", a, t + Duration::minutes(1), cost(10));
    for (_, stmts) in m.take_due(t + Duration::minutes(2)) {
        block_on(db.batch(stmts)).expect("flush");
    }
    let got = block_on(read_period(&db, t)).expect("read");
    assert_eq!(got[&a.to_string()].cost.rows_read, 17);
    assert_eq!(got[&a.to_string()].requests, 3);
    assert_eq!(got[&b.to_string()].cost.rows_read, 7);
    assert!(block_on(read_period(&db, t + PERIOD))
        .expect("read")
        .is_empty());
}
