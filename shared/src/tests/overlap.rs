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
    type Cache = crate::testing::fakes::MemCache;
    type Checkpoints = crate::testing::fakes::MemImmutable;
    fn checkpoints(&self) -> &crate::testing::fakes::MemImmutable {
        &self.f.checkpoints
    }
    fn audit_seal(&self) -> Option<&crate::domain::audit::Seal> {
        Some(&self.f.seal)
    }
    fn blobs(&self) -> &MemBlobs {
        &self.f.blobs
    }
    fn cache(&self) -> &crate::testing::fakes::MemCache {
        &self.f.cache
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
    let deleted = |r: &crate::jobs::JobRun| match &r.counts {
        crate::jobs::report::RunReport::Retention(c) => c.counts.deleted.unwrap_or(0),
        other => panic!("{other:?}"),
    };
    assert_eq!(deleted(&a) + deleted(&b), 5);
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

/// Every change event in the shard's outbox: (type, subject) -> how many.
fn events(f: &Fake) -> std::collections::BTreeMap<(String, String), i64> {
    f.shard_db("SHARD_EU_01")
        .query_json(
            "SELECT body ->> '$.type' AS t, body ->> '$.subject' AS s, count(*) AS n \
             FROM outbox GROUP BY 1, 2",
        )
        .iter()
        .map(|r| {
            (
                (
                    r["t"].as_str().unwrap_or_default().to_string(),
                    r["s"].as_str().unwrap_or_default().to_string(),
                ),
                r["n"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

fn of_type(all: &std::collections::BTreeMap<(String, String), i64>, ty: &str) -> Vec<i64> {
    all.iter()
        .filter(|((t, _), _)| t == ty)
        .map(|(_, n)| *n)
        .collect()
}

fn doc(f: &Fake, tok: &str, client: &str, kind: &str) -> String {
    created_id(&f.as_user(
        tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": kind, "title": kind})),
    ))
}

fn client_ended(f: &Fake, tok: &str, ended: Option<&str>) -> String {
    let mut c = client_body();
    if let Some(e) = ended {
        c["relationship_ended_on"] = json!(e);
    }
    created_id(&f.as_user(tok, Post, "/v1/clients", Some(c)))
}

fn erasure_request(f: &Fake, tok: &str, kind: &str, id: &str) -> String {
    let r = f.as_user(
        tok,
        Post,
        "/v1/erasure-requests",
        Some(json!({"subject_type": kind, "subject_id": id})),
    );
    assert_eq!(r.status, 202, "{:?}", r.body_json());
    r.body_json().unwrap()["id"].as_str().unwrap().to_string()
}

fn leased(f: &Fake) -> crate::store::job_state::Fence {
    use crate::store::job_state::{acquire, Acquired};
    let now = crate::domain::clock::Clock::now(&f.clock);
    match block_on(acquire(
        &*f.accounts,
        "retention",
        "shard-eu-01",
        "test",
        now,
        Job::Retention.lease_ttl(),
    ))
    .unwrap()
    {
        Acquired::Granted { fence, .. } => fence,
        held => panic!("{held:?}"),
    }
}

#[test]
fn two_overlapping_sweeps_emit_one_disposition_event_per_disposed_row() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    former_clients(&f, acct, 7, "8001", "Expired", "2010-01-01", false);
    let adviser = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/users",
        Some(json!({"email": "ann@acme.example", "display_name": "Ann Adviser", "role": "member"})),
    ));
    let active = client_ended(&f, &admin, None);
    doc(&f, &admin, &active, "fact_find");
    doc(&f, &admin, &active, "aml_evidence");
    let old = client_ended(&f, &admin, Some("2015-01-31"));
    doc(&f, &admin, &old, "aml_evidence");
    let recent = client_ended(&f, &admin, Some("2022-06-01"));
    doc(&f, &admin, &recent, "aml_evidence");
    let requests = [
        erasure_request(&f, &admin, "client", &active),
        erasure_request(&f, &admin, "client", &old),
        erasure_request(&f, &admin, "client", &recent),
        erasure_request(&f, &admin, "user", &adviser),
    ];
    let before = events(&f);
    // Two runs on one shard at once, the lease bypassed (both hold the same fence).
    let p = Overlap::new(&f);
    let fence = leased(&f);
    let db = p.shard("SHARD_EU_01");
    let (mut ca, mut cb) = (
        crate::jobs::report::RetentionReport::default(),
        crate::jobs::report::RetentionReport::default(),
    );
    let (ra, rb) = join2(
        crate::jobs::retention_sweep::sweep_shard(&p, "shard-eu-01", &db, &fence, &mut ca),
        crate::jobs::retention_sweep::sweep_shard(&p, "shard-eu-01", &db, &fence, &mut cb),
    );
    ra.unwrap();
    rb.unwrap();
    let mut after = events(&f);
    after.retain(|k, _| !before.contains_key(k));
    for (ty, rows) in [
        ("client.purged", 7),
        ("document.erased", 2), // the fact find, the old AML evidence
        ("client.erased", 2),   // active (pseudonymised), old (deleted)
        ("user.erased", 1),
        ("document.restricted", 2), // AML evidence still within MLR's 5 years
        ("client.restricted", 1),   // recent: HMRC's 6 years run until 2028
        ("erasure_request.updated", 4),
    ] {
        let per_row = of_type(&after, ty);
        assert_eq!(per_row.len(), rows, "{ty}: {after:?}");
        assert!(per_row.iter().all(|n| *n == 1), "{ty} twice: {after:?}");
    }
    let deleted = |c: &crate::jobs::report::RetentionReport| c.counts.deleted.unwrap_or(0);
    assert_eq!(deleted(&ca) + deleted(&cb), 7 + 3, "{ca:?} {cb:?}");
    let status = |id: &str| {
        f.as_user(&admin, Get, &format!("/v1/erasure-requests/{id}"), None)
            .body_json()
            .unwrap()["status"]
            .clone()
    };
    let statuses: Vec<_> = requests.iter().map(|r| status(r)).collect();
    assert_eq!(
        statuses,
        [
            json!("restricted"),
            json!("completed"),
            json!("restricted"),
            json!("completed")
        ]
    );
}

#[test]
fn a_legal_hold_placed_after_the_sweep_read_a_row_still_wins() {
    for erasure in [false, true] {
        let f = Fake::new();
        let (acct, _) = f.account("acme", Some("shard-eu-01"));
        let admin = f.token(acct, Role::Admin);
        let client = client_ended(&f, &admin, Some("2010-01-01"));
        let doc = doc(&f, &admin, &client, "fact_find");
        if erasure {
            erasure_request(&f, &admin, "client", &client);
        }
        let p = Overlap::new(&f);
        // The sweep has read and judged the rows; just before its first disposition statement
        // an admin puts the client on hold (which moves the client's version).
        let shard = f.shard_db("SHARD_EU_01");
        let placed = Rc::new(std::cell::Cell::new(false));
        let seen = placed.clone();
        let target = client.clone();
        *p.hook.borrow_mut() = Some(Box::new(move |s: &Stmt| {
            let disposes = s.sql.starts_with("DELETE FROM documents")
                || s.sql.starts_with("DELETE FROM clients")
                || s.sql.starts_with("UPDATE clients");
            if disposes && !seen.get() {
                seen.set(true);
                shard
                    .exec(&format!(
                        "UPDATE clients SET body = json_set(body, '$.legal_hold', json('true'), \
                         '$.version', CAST(body ->> '$.version' AS INTEGER) + 1) WHERE id = '{target}'"
                    ))
                    .unwrap();
            }
        }));
        let before = events(&f);
        let run = block_on(jobs::run(&p, Job::Retention, None));
        assert!(placed.get(), "the hold went in mid-run");
        assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
        let exists = |t: &str, id: &str| {
            f.count(
                "SHARD_EU_01",
                &format!("SELECT count(*) FROM {t} WHERE id = '{id}'"),
            ) == 1
        };
        assert!(
            exists("clients", &client) && exists("documents", &doc),
            "erasure {erasure}"
        );
        let client_row = f.shard_db("SHARD_EU_01").query_json(&format!(
            "SELECT body ->> '$.surname' AS s FROM clients WHERE id = '{client}'"
        ));
        assert_eq!(client_row[0]["s"], "Lovelace", "not pseudonymised either");
        let mut after = events(&f);
        after.retain(|k, _| !before.contains_key(k));
        assert!(
            after
                .keys()
                .all(|(t, _)| !t.ends_with(".purged") && !t.ends_with(".erased")),
            "no disposition event: {after:?}"
        );
    }
}
