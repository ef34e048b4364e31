use super::*;
use crate::services::usage::{read_period, Usage, FLUSH_EVERY};
use crate::testing::fakes::{block_on, SqliteDb};
use std::rc::Rc;
use time::macros::datetime;
use uuid::Uuid;

const T0: OffsetDateTime = datetime!(2026-11-26 09:00:01 UTC);
const ACCT: Uuid = Uuid::from_u128(1);

fn shard() -> Rc<SqliteDb> {
    Rc::new(SqliteDb::shard().expect("migrations"))
}

/// `n` unpublished outbox rows of ACCT, ids 100.. (what the API wrote with its changes).
fn outbox_rows(db: &SqliteDb, n: u128) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (100..100 + n).map(Uuid::from_u128).collect();
    for id in &ids {
        db.exec(&format!(
            "INSERT INTO outbox (account_id, id, body) VALUES ('{ACCT}', '{id}', \
             json_object('time', '2026-11-26T09:00:00.000Z', 'published_at', NULL))"
        ))
        .unwrap();
    }
    ids
}

fn published(db: &SqliteDb) -> i64 {
    db.query_json("SELECT count(*) AS n FROM outbox WHERE published_at IS NOT NULL")[0]["n"]
        .as_i64()
        .unwrap_or(-1)
}

fn on<'a>(db: &'a Rc<SqliteDb>) -> impl Fn(&str) -> Option<Rc<SqliteDb>> + 'a {
    move |b: &str| (b == "S1").then(|| db.clone())
}

fn reads(n: u64) -> Usage {
    Usage {
        requests: 1,
        cost: crate::ports::Cost {
            rows_read: n,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn one_marks_flush_is_scheduled_after_the_delay_and_covers_every_send_in_its_window() {
    let db = shard();
    let ids = outbox_rows(&db, 150);
    let (marks, usage) = (PendingMarks::default(), UsageMeter::default());
    let s = IsolateState {
        marks: &marks,
        usage: &usage,
    };
    assert!(due(s, T0).is_empty(), "nothing sent, nothing due");
    marks.add("S1", ACCT, ids[..1].iter().copied());
    let work = due(s, T0);
    assert_eq!(work, vec![Deferred::MarkPublished { after: FLUSH_AFTER }]);
    assert_eq!(work[0].after(), FLUSH_AFTER);
    // Sends of later requests in the window join the scheduled flush instead of their own.
    marks.add("S1", ACCT, ids[1..].iter().copied());
    assert!(due(s, T0).is_empty());
    let ran = block_on(run(work[0].clone(), s, T0, on(&db)));
    assert_eq!(
        ran,
        Ran {
            batches: 1,
            ..Ran::default()
        }
    );
    assert_eq!(published(&db), 150, "150 ids in 2 statements of one batch");
    assert!(due(s, T0).is_empty(), "nothing left");
}

#[test]
fn marks_whose_batch_failed_are_kept_and_go_with_the_next_flush() {
    let db = shard();
    let ids = outbox_rows(&db, 3);
    let (marks, usage) = (PendingMarks::default(), UsageMeter::default());
    let s = IsolateState {
        marks: &marks,
        usage: &usage,
    };
    marks.add("S1", ACCT, ids[..2].iter().copied());
    let work = due(s, T0);
    db.exec("ALTER TABLE outbox RENAME TO outbox_away").unwrap();
    let ran = block_on(run(work[0].clone(), s, T0, on(&db)));
    assert_eq!(ran.failed, vec!["S1".to_string()]);
    db.exec("ALTER TABLE outbox_away RENAME TO outbox").unwrap();
    assert_eq!(published(&db), 0);
    marks.add("S1", ACCT, ids[2..].iter().copied());
    let work = due(s, T0);
    assert_eq!(work.len(), 1, "a new flush is scheduled for the kept marks");
    let ran = block_on(run(work[0].clone(), s, T0, on(&db)));
    assert_eq!((ran.batches, ran.failed.len()), (1, 0));
    assert_eq!(published(&db), 3);
}

#[test]
fn usage_is_due_every_interval_and_a_failed_flush_is_added_to_the_next() {
    let db = shard();
    let (marks, usage) = (PendingMarks::default(), UsageMeter::default());
    let s = IsolateState {
        marks: &marks,
        usage: &usage,
    };
    usage.record("S1", ACCT, T0, reads(5));
    assert!(due(s, T0 + Duration::seconds(9)).is_empty());
    let work = due(s, T0 + FLUSH_EVERY);
    assert!(matches!(work.as_slice(), [Deferred::FlushUsage(u)] if u.len() == 1));
    assert_eq!(work[0].after(), Duration::ZERO);
    db.exec("ALTER TABLE account_usage RENAME TO account_usage_away")
        .unwrap();
    let ran = block_on(run(work[0].clone(), s, T0, on(&db)));
    assert_eq!(ran.failed, vec!["S1".to_string()]);
    db.exec("ALTER TABLE account_usage_away RENAME TO account_usage")
        .unwrap();
    usage.record("S1", ACCT, T0 + Duration::seconds(12), reads(7));
    assert!(
        due(s, T0 + Duration::seconds(15)).is_empty(),
        "interval restarted"
    );
    let work = due(s, T0 + Duration::seconds(20));
    let ran = block_on(run(work[0].clone(), s, T0, on(&db)));
    assert_eq!((ran.batches, ran.failed.len()), (1, 0));
    let got = block_on(read_period(&*db, T0)).unwrap();
    assert_eq!(got[&ACCT.to_string()].cost.rows_read, 12, "5 kept + 7 new");
    assert_eq!(got[&ACCT.to_string()].requests, 2);
}

#[test]
fn work_for_a_shard_this_deployment_cannot_reach_is_reported_not_retried() {
    let db = shard();
    let (marks, usage) = (PendingMarks::default(), UsageMeter::default());
    let s = IsolateState {
        marks: &marks,
        usage: &usage,
    };
    marks.add("S9", ACCT, [Uuid::from_u128(5)]);
    usage.record("S9", ACCT, T0, reads(1));
    let work = due(s, T0 + FLUSH_EVERY);
    assert_eq!(work.len(), 2);
    let mut dropped = 0;
    for w in work {
        let ran = block_on(run(w, s, T0, on(&db)));
        assert_eq!(ran.unbound, vec!["S9".to_string()]);
        dropped += ran.dropped;
    }
    assert_eq!(dropped, 1, "the one mark is reported dropped");
    assert!(due(s, T0 + FLUSH_EVERY * 3).is_empty(), "dropped, not kept");
}

/// A tenant fenced on the shard (a move's cutover, or a stale route after it) refuses the
/// whole usage batch; the other tenants' counts still land, the fenced one's are dropped and
/// counted, and nothing is left to fail the next flush.
#[test]
fn a_fenced_tenant_does_not_hold_back_the_other_tenants_usage() {
    let db = shard();
    let moved = Uuid::from_u128(2);
    db.exec(&format!(
        "INSERT INTO tenant_fences (account_id, body) VALUES ('{moved}', \
         json_object('move_id', 'm', 'role', 'source', 'state', 'moved', 'token', 1))"
    ))
    .unwrap();
    let (marks, usage) = (PendingMarks::default(), UsageMeter::default());
    let s = IsolateState {
        marks: &marks,
        usage: &usage,
    };
    usage.record("S1", ACCT, T0, reads(5));
    usage.record("S1", moved, T0, reads(9));
    let work = due(s, T0 + FLUSH_EVERY);
    let ran = block_on(run(work[0].clone(), s, T0, on(&db)));
    assert_eq!(
        (ran.batches, ran.fenced, ran.failed.len()),
        (1, 1, 0),
        "{ran:?}"
    );
    let got = block_on(read_period(&*db, T0)).unwrap();
    assert_eq!(got[&ACCT.to_string()].cost.rows_read, 5);
    assert!(!got.contains_key(&moved.to_string()), "{got:?}");
    // Nothing was kept back: the next flush carries only what accrued since.
    usage.record("S1", ACCT, T0 + Duration::seconds(12), reads(1));
    let work = due(s, T0 + Duration::seconds(20));
    let ran = block_on(run(work[0].clone(), s, T0, on(&db)));
    assert_eq!((ran.batches, ran.fenced, ran.failed.len()), (1, 0, 0));
    assert_eq!(
        block_on(read_period(&*db, T0)).unwrap()[&ACCT.to_string()]
            .cost
            .rows_read,
        6
    );
}
