//! Overlapping job runs: two runs of one job driven concurrently over the same fakes, their
//! D1 calls interleaved one by one (every query and batch yields once before it runs), the way
//! a cron run and a manual run overlap on workerd.

use super::*;
use crate::jobs::lease::SkipReason;
use crate::jobs::SchedulerPlatform;
use crate::ports::{Cost, Database, Rows, Stmt, StoreError};
use crate::testing::fakes::{MemBlobs, MemQueue};
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Pending once, then ready: the other run gets a turn before every D1 call.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A statement hook: called before each statement runs (tests change rows "meanwhile").
type Hook = Rc<RefCell<Option<Box<dyn FnMut(&Stmt)>>>>;

#[derive(Clone)]
pub(crate) struct Yielding {
    db: Rc<SqliteDb>,
    hook: Hook,
}

impl Yielding {
    fn before(&self, stmt: &Stmt) {
        if let Some(h) = self.hook.borrow_mut().as_mut() {
            h(stmt);
        }
    }
}

impl Database for Yielding {
    async fn query(&self, stmt: Stmt) -> Result<Rows, StoreError> {
        YieldOnce(false).await;
        self.before(&stmt);
        self.db.query(stmt).await
    }
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, StoreError> {
        YieldOnce(false).await;
        for s in &stmts {
            self.before(s);
        }
        self.db.batch(stmts).await
    }
    fn bookmark(&self) -> Option<String> {
        self.db.bookmark()
    }
    fn cost(&self) -> Cost {
        self.db.cost()
    }
}

/// The scheduler's platform over `Fake`'s databases, every call yielding first.
pub(crate) struct Overlap<'a> {
    pub f: &'a Fake,
    accounts: Yielding,
    pub hook: Hook,
}

impl<'a> Overlap<'a> {
    pub fn new(f: &'a Fake) -> Self {
        let hook: Hook = Rc::new(RefCell::new(None));
        Overlap {
            f,
            accounts: Yielding {
                db: f.accounts.clone(),
                hook: hook.clone(),
            },
            hook,
        }
    }
    pub fn shard(&self, binding: &str) -> Yielding {
        Yielding {
            db: self.f.shard_db(binding),
            hook: self.hook.clone(),
        }
    }
}

impl SchedulerPlatform for Overlap<'_> {
    type Db = Yielding;
    type Queue = MemQueue;
    type Entropy = crate::domain::clock::CountingEntropy;
    type Blobs = MemBlobs;
    fn blobs(&self) -> &MemBlobs {
        &self.f.blobs
    }
    fn accounts(&self) -> &Yielding {
        &self.accounts
    }
    fn shards(&self) -> Vec<(String, Yielding)> {
        self.f
            .shards
            .keys()
            .map(|b| (b.clone(), self.shard(b)))
            .collect()
    }
    fn queue(&self) -> &MemQueue {
        &self.f.queue
    }
    fn platform_events(&self) -> &MemQueue {
        &self.f.platform_events
    }
    fn now(&self) -> time::OffsetDateTime {
        crate::domain::clock::Clock::now(&self.f.clock)
    }
    fn entropy(&self) -> &crate::domain::clock::CountingEntropy {
        &self.f.entropy
    }
}

/// Drive two futures to completion, one step of each in turn.
pub(crate) fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    let mut cx = Context::from_waker(Waker::noop());
    while ra.is_none() || rb.is_none() {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(&mut cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(&mut cx) {
                rb = Some(v);
            }
        }
    }
    match (ra, rb) {
        (Some(a), Some(b)) => (a, b),
        _ => unreachable!("both finished"),
    }
}

/// Events in the shard's outbox of `type` per entity id.
fn events_per_subject(f: &Fake, like: &str) -> Vec<(String, i64)> {
    f.shard_db("SHARD_EU_01")
        .query_json(&format!(
            "SELECT body ->> '$.subject' AS s, count(*) AS n FROM outbox \
             WHERE body ->> '$.type' LIKE '{like}' GROUP BY 1 ORDER BY 1"
        ))
        .iter()
        .map(|r| {
            (
                r["s"].as_str().unwrap_or_default().to_string(),
                r["n"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn two_concurrent_runs_of_one_job_on_a_shard_one_runs_the_other_is_skipped_by_the_lease() {
    let f = Fake::new();
    let (acct, _) = f.account("bulk", Some("shard-eu-01"));
    former_clients(&f, acct, 5, "8001", "Expired", "2010-01-01", false);
    let p = Overlap::new(&f);
    let (a, b) = join2(
        jobs::run(&p, Job::Retention, None),
        jobs::run(&p, Job::Retention, None),
    );
    // The runs overlapped: a shard one of them was on was refused to the other, which names
    // the holder. (A shard released meanwhile may be swept again by the later run.)
    assert!(
        !a.skipped.is_empty() || !b.skipped.is_empty(),
        "{a:?} {b:?}"
    );
    for (run, other) in [(&a, &b), (&b, &a)] {
        for s in &run.skipped {
            let SkipReason::LeaseHeld { holder, .. } = &s.reason;
            assert_eq!(holder, &other.id);
        }
    }
    let deleted = |r: &crate::jobs::JobRun| r.counts.get("deleted").and_then(|v| v.as_u64());
    assert_eq!(deleted(&a).unwrap_or(0) + deleted(&b).unwrap_or(0), 5);
    assert_eq!(events_per_subject(&f, "client.purged").len(), 5);
    assert!(events_per_subject(&f, "client.purged")
        .iter()
        .all(|(_, n)| *n == 1));
    // Both released their leases: the next run takes every shard.
    let next = block_on(jobs::run(&f, Job::Retention, None));
    assert!(next.skipped.is_empty(), "{next:?}");
    assert_eq!(next.outcome, Outcome::Ok);
}

#[test]
fn a_run_whose_every_shard_is_leased_elsewhere_is_skipped_and_does_nothing() {
    let f = Fake::new();
    let (acct, _) = f.account("bulk", Some("shard-eu-01"));
    former_clients(&f, acct, 3, "8001", "Expired", "2010-01-01", false);
    let mut other = crate::jobs::lease::Leases::new(Job::Retention, "other-run".into());
    for shard in ["shard-eu-01", "shard-eu-02", "shard-ded-01"] {
        assert!(block_on(other.take(&f, shard)).unwrap().is_some());
    }
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Skipped, "{run:?}");
    assert_eq!(run.skipped.len(), 3);
    let v = serde_json::to_value(&run).unwrap();
    assert_eq!(v["skipped"][0]["reason"], "lease_held");
    assert_eq!(v["skipped"][0]["holder"], "other-run");
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM clients WHERE surname_lc = 'expired'"
        ),
        3
    );
}
