//! Regressions of the issue-12 review of retention, erasure and restriction: holds and
//! policies re-read while a run goes, operational rows under an account's hold and policy.

use super::overlap::Overlap;
use super::*;
use crate::api::http::ApiRequest;
use crate::ports::Stmt;
use std::rc::Rc;
use time::Duration;

const NAME: &str = "quennell";
const ADVISER: &str = "grace hopper";

fn sweep(f: &Fake) -> crate::jobs::JobRun {
    block_on(jobs::run(f, Job::Retention, None))
}
fn relay_and_settle(f: &Fake) {
    f.clock.advance(Duration::minutes(1));
    block_on(jobs::run(f, Job::OutboxRelay, None));
    settle(f);
}
fn erase(f: &Fake, admin: &str, kind: &str, id: &str) -> String {
    request_erasure(f, admin, kind, id)
}
fn zelda(f: &Fake, admin: &str, extra: serde_json::Value) -> String {
    let mut b = json!({"forenames": "Zelda", "surname": "Quennell", "status": "active",
        "email": "zelda.quennell@example.org"});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    created_id(&f.as_user(admin, Post, "/v1/clients", Some(b)))
}
fn kv_hits(f: &Fake, s: &str) -> Vec<String> {
    f.cache
        .entries
        .borrow()
        .iter()
        .filter(|(_, v)| v.to_lowercase().contains(s))
        .map(|(k, _)| k.clone())
        .collect()
}
fn db_hits(f: &Fake, s: &str) -> Vec<String> {
    let mut out = vec![];
    for (name, db) in [
        ("shard", f.shard_db("SHARD_EU_01")),
        ("accounts", f.accounts.clone()),
    ] {
        let tables = db.query_json(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        );
        for t in tables {
            let t = t["name"].as_str().unwrap().to_string();
            for row in db.query_json(&format!("SELECT * FROM {t}")) {
                if format!("{row:?}").to_lowercase().contains(s) {
                    out.push(format!("{name}.{t}"));
                }
            }
        }
    }
    out
}
pub(super) fn r2_hits(f: &Fake, s: &str) -> Vec<String> {
    f.blobs
        .objects
        .borrow()
        .iter()
        .filter(|(_, b)| String::from_utf8_lossy(&b.bytes).to_lowercase().contains(s))
        .map(|(k, _)| k.clone())
        .collect()
}
pub(super) fn upload(f: &Fake, tok: &str, doc: &str, bytes: &[u8]) -> u16 {
    f.raw(ApiRequest {
        method: Put,
        path: format!("/v1/documents/{doc}/content"),
        query: vec![],
        headers: vec![
            ("authorization".into(), format!("Bearer {tok}")),
            ("content-type".into(), "text/plain".into()),
            ("host".into(), "api.test".into()),
        ],
        body: bytes.to_vec(),
        cf_country: Default::default(),
        request_id: "r".into(),
    })
    .status
}

/// D5: an account legal hold placed while the sweep runs is never re-checked: the account row
/// is read once per shard run and no disposition statement can see it (other D1).
#[test]
fn an_account_hold_placed_while_the_sweep_runs_stops_the_purge() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    former_clients(&f, acct, 5, "8001", "Expired", "2010-01-01", false);
    let p = Overlap::new(&f);
    let accounts = f.accounts.clone();
    let placed = Rc::new(std::cell::Cell::new(false));
    let seen = placed.clone();
    *p.hook.borrow_mut() = Some(Box::new(move |s: &Stmt| {
        // The first candidate query of the shard: nothing has been read or deleted yet.
        if s.sql.contains("FROM clients")
            && s.sql.contains("relationship_ended_on <=")
            && !seen.get()
        {
            seen.set(true);
            accounts
                .exec(&format!(
                    "UPDATE accounts SET body = json_set(body, '$.legal_hold', json('true'), \
                '$.version', CAST(body ->> '$.version' AS INTEGER) + 1) WHERE id = '{acct}'"
                ))
                .unwrap();
        }
    }));
    block_on(jobs::run(&p, Job::Retention, None));
    assert!(placed.get());
    assert_eq!(
        f.count("SHARD_EU_01", "SELECT count(*) FROM clients"),
        5,
        "clients purged although the account was on hold before they were read"
    );
}

/// decide(): "an account hold holds every record", idempotency keys included. The sweep
/// purges an account-held tenant's idempotency keys anyway (the hold arm comes after it).
#[test]
fn an_account_hold_keeps_idempotency_keys() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let auth = format!("Bearer {admin}");
    created_id(&f.call(
        Post,
        "/v1/clients",
        &[("authorization", &auth), ("idempotency-key", "k1")],
        Some(client_body()),
    ));
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{acct}/legal-hold"),
        Some(json!({"hold": true})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    f.clock.advance(Duration::days(2));
    sweep(&f);
    use crate::domain::retention::*;
    let rec = Record {
        record_type: RecordType::IdempotencyKey,
        created_at: crate::testing::harness::START,
        relationship_ended_on: None,
        soft_deleted_at: None,
        published_at: None,
        account_hold: true,
        client_hold: false,
        erasure_requested_at: None,
    };
    assert!(matches!(
        decide(
            &Policy::uk_preset(),
            &rec,
            crate::domain::clock::Clock::now(&f.clock)
        ),
        Decision::Held { .. }
    ));
    assert_eq!(
        f.count("SHARD_EU_01", "SELECT count(*) FROM idempotency_keys"),
        1,
        "held account's keys purged"
    );
}

/// The account's `dead_letter_days` (and its legal hold) are ignored: dead letters are purged
/// after the UK preset's 30 days for every account.
#[test]
fn dead_letters_follow_the_longest_account_policy_and_its_hold() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let mut pol = serde_json::to_value(crate::domain::retention::Policy::uk_preset()).unwrap();
    pol["dead_letter_days"] = json!(90);
    let r = f.as_user(&admin, Put, "/v1/settings/retention", Some(pol));
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{acct}/legal-hold"),
        Some(json!({"hold": true})),
    );
    assert_eq!(r.status, 200);
    f.accounts
        .exec(&format!(
            "INSERT INTO dead_letters (id, body) VALUES ('dl1', json_object('id', 'dl1', \
        'queue', 'change-events', 'reason', 'x', 'message', json_object('account_id', '{acct}'), \
        'received_at', '2026-10-01T00:00:00.000Z', 'replayed_at', NULL, 'replay_count', 0))"
        ))
        .unwrap();
    sweep(&f); // 2026-11-26: 56 days later
    assert_eq!(
        f.accounts.query_json("SELECT id FROM dead_letters").len(),
        1,
        "a dead letter of an account with 90 days (and on hold) purged at 56 days"
    );
}

/// D1: the cache erasure enumerates (version x index_rev) oldest first and stops at 2,000
/// keys: for a client with ~50 edits, the NEWEST rendering (the one actually cached) survives.
#[test]
fn erasure_deletes_the_newest_cached_rendering_of_a_busy_client() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let c = zelda(&f, &admin, json!({}));
    for i in 0..50 {
        let r = f.as_user(
            &admin,
            Patch,
            &format!("/v1/clients/{c}"),
            Some(json!({"notes": format!("call {i}")})),
        );
        assert_eq!(r.status, 200);
        settle(&f);
    }
    assert_eq!(
        f.as_user(&admin, Get, &format!("/v1/clients/{c}"), None)
            .status,
        200
    );
    assert!(!kv_hits(&f, NAME).is_empty());
    erase(&f, &admin, "client", &c);
    let run = sweep(&f);
    assert_eq!(
        run.counts.to_json()["erasures_completed"],
        1,
        "{:?}",
        run.counts
    );
    relay_and_settle(&f);
    assert_eq!(
        kv_hits(&f, NAME),
        Vec::<String>::new(),
        "erased client still cached in KV"
    );
}

/// D2: a KV rendering of ANOTHER client carries the erased adviser's name (`adviser_name`);
/// erasure deletes only the subject's own rows' renderings.
#[test]
fn erasing_an_adviser_deletes_the_cached_renderings_of_the_clients_they_advise() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let u = adviser(&f, &admin);
    let c = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/clients",
        Some(json!({"forenames": "Ann", "surname": "Other", "status": "active", "adviser_id": u})),
    ));
    settle(&f);
    assert_eq!(
        f.as_user(&admin, Get, &format!("/v1/clients/{c}"), None)
            .status,
        200
    );
    assert!(!kv_hits(&f, ADVISER).is_empty(), "cached with adviser_name");
    erase(&f, &admin, "user", &u);
    sweep(&f);
    relay_and_settle(&f);
    assert_eq!(db_hits(&f, ADVISER), Vec::<String>::new());
    assert_eq!(
        kv_hits(&f, ADVISER),
        Vec::<String>::new(),
        "erased adviser's name left in KV"
    );
}

/// D3: the adviser_name fan-out skips soft-deleted clients (`deleted_at IS NULL`): a client
/// deleted last week keeps the erased adviser's name in its row.
#[test]
fn erasing_an_adviser_removes_their_name_from_soft_deleted_clients() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let u = adviser(&f, &admin);
    let c = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/clients",
        Some(json!({"forenames": "Ann", "surname": "Other", "status": "active", "adviser_id": u})),
    ));
    settle(&f);
    assert_eq!(
        f.as_user(&admin, Delete, &format!("/v1/clients/{c}"), None)
            .status,
        204
    );
    settle(&f);
    erase(&f, &admin, "user", &u);
    let run = sweep(&f);
    assert_eq!(
        run.counts.to_json()["erasures_completed"],
        1,
        "{:?}",
        run.counts
    );
    relay_and_settle(&f);
    assert_eq!(
        db_hits(&f, ADVISER),
        Vec::<String>::new(),
        "erased adviser's name in a soft-deleted client"
    );
}

/// The scheduler over `Fake`, with R2 deletes failing (a transient R2 error).
struct FailingR2<'a>(&'a Fake, FailBlobs<'a>);
struct FailBlobs<'a>(&'a crate::testing::fakes::MemBlobs);
impl crate::ports::BlobStore for FailBlobs<'_> {
    async fn put(&self, k: &str, b: crate::ports::Blob) -> Result<(), crate::ports::BlobError> {
        self.0.put(k, b).await
    }
    async fn get(&self, k: &str) -> Result<Option<crate::ports::Blob>, crate::ports::BlobError> {
        self.0.get(k).await
    }
    async fn delete(&self, _k: &str) -> Result<(), crate::ports::BlobError> {
        Err(crate::ports::BlobError("injected: R2 unavailable".into()))
    }
    async fn list(
        &self,
        p: &str,
        a: Option<&str>,
        n: usize,
    ) -> Result<Vec<String>, crate::ports::BlobError> {
        self.0.list(p, a, n).await
    }
}
impl<'a> crate::jobs::SchedulerPlatform for FailingR2<'a> {
    type Db = Rc<SqliteDb>;
    type Queue = crate::testing::fakes::MemQueue;
    type Entropy = crate::domain::clock::CountingEntropy;
    type Blobs = FailBlobs<'a>;
    type Cache = crate::testing::fakes::MemCache;
    type Checkpoints = crate::testing::fakes::MemImmutable;
    fn checkpoints(&self) -> &Self::Checkpoints {
        &self.0.checkpoints
    }
    fn audit_seal(&self) -> Option<&crate::domain::audit::Seal> {
        Some(&self.0.seal)
    }
    fn blobs(&self) -> &Self::Blobs {
        &self.1
    }
    fn cache(&self) -> &Self::Cache {
        &self.0.cache
    }
    fn accounts(&self) -> &Rc<SqliteDb> {
        &self.0.accounts
    }
    fn shards(&self) -> Vec<(String, Rc<SqliteDb>)> {
        self.0
            .shards
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn queue(&self) -> &Self::Queue {
        &self.0.queue
    }
    fn platform_events(&self) -> &Self::Queue {
        &self.0.platform_events
    }
    fn now(&self) -> time::OffsetDateTime {
        crate::domain::clock::Clock::now(&self.0.clock)
    }
    fn entropy(&self) -> &Self::Entropy {
        &self.0.entropy
    }
}

/// Zelda with one document whose content is `bytes`: (client id, document id).
fn zelda_with_content(f: &Fake, admin: &str, bytes: &[u8]) -> (String, String) {
    let c = zelda(f, admin, json!({}));
    let d = created_id(&f.as_user(
        admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": c, "kind": "fact_find", "title": "FF"})),
    ));
    assert_eq!(upload(f, admin, &d, bytes), 200);
    (c, d)
}

/// A failed R2 delete during erasure: the request is still "completed", the row that named the
/// object is gone, and nothing ever retries: the content bytes stay for ever.
#[test]
fn a_failed_content_delete_defers_the_erasure_until_the_object_is_gone() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let (c, _) = zelda_with_content(&f, &admin, b"Zelda Quennell bank statement");
    let req = erase(&f, &admin, "client", &c);
    let p = FailingR2(&f, FailBlobs(&f.blobs));
    let run = block_on(jobs::run(&p, Job::Retention, None));
    eprintln!("{:?} {:?}", run.outcome, run.counts.to_json());
    // Later nights with R2 healthy again.
    f.clock.advance(Duration::days(1));
    sweep(&f);
    let admin = f.token(acct, Role::Admin);
    let st = f
        .as_user(&admin, Get, &format!("/v1/erasure-requests/{req}"), None)
        .body_json()
        .unwrap()["status"]
        .clone();
    let left = r2_hits(&f, NAME);
    assert!(
        st != "completed" || left.is_empty(),
        "request {st}, run {:?}, R2 still holds {left:?}",
        run.outcome
    );
}

/// A purged document's content object that R2 would not delete is left unreferenced (its row
/// is gone, nothing finds it again): the run is `partial` and names the object.
#[test]
fn a_content_object_the_purge_could_not_delete_makes_the_run_partial_and_is_named() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let (_, d) = zelda_with_content(&f, &admin, b"Zelda Quennell statement");
    let r = f.as_user(&admin, Delete, &format!("/v1/documents/{d}"), None);
    assert_eq!(r.status, 204, "{:?}", r.body_json());
    f.clock.advance(Duration::days(31));
    let p = FailingR2(&f, FailBlobs(&f.blobs));
    let run = block_on(jobs::run(&p, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Partial, "{run:?}");
    let prefix = crate::domain::content::blob_prefix(acct, Uuid::parse_str(&d).unwrap());
    assert!(
        run.detail.iter().any(|l| l.contains(&prefix)),
        "the object is named: {:?}",
        run.detail
    );
}

/// An erasure deferred half-way (a concurrent edit of its second document) has already deleted
/// the first document, but `erase_elsewhere` only runs for a request that did not defer: the
/// first document's cached renderings are never deleted (the next night no longer sees it).
#[test]
fn a_deferred_erasure_deletes_the_cache_of_what_it_already_erased() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let c = zelda(&f, &admin, json!({}));
    let d1 = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": c, "kind": "fact_find", "title": "Quennell fact find"})),
    ));
    let d2 = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": c, "kind": "correspondence", "title": "letter"})),
    ));
    for d in [&d1, &d2] {
        assert_eq!(
            f.as_user(&admin, Get, &format!("/v1/documents/{d}"), None)
                .status,
            200
        );
    }
    erase(&f, &admin, "client", &c);
    let p = Overlap::new(&f);
    let shard = f.shard_db("SHARD_EU_01");
    let (first, second) = if d1 < d2 {
        (d1.clone(), d2.clone())
    } else {
        (d2.clone(), d1.clone())
    };
    let _ = first;
    let n = Rc::new(std::cell::Cell::new(0));
    let k = n.clone();
    *p.hook.borrow_mut() = Some(Box::new(move |s: &Stmt| {
        if s.sql.starts_with("DELETE FROM documents") {
            k.set(k.get() + 1);
            if k.get() == 2 {
                shard
                    .exec(&format!(
                        "UPDATE documents SET body = json_set(body, '$.version', \
                    CAST(body ->> '$.version' AS INTEGER) + 1) WHERE id = '{second}'"
                    ))
                    .unwrap();
            }
        }
    }));
    let run = block_on(jobs::run(&p, Job::Retention, None));
    eprintln!("{:?}", run.counts.to_json());
    f.clock.advance(Duration::days(1));
    let run = sweep(&f);
    assert_eq!(
        run.counts.to_json()["erasures_completed"],
        1,
        "{:?}",
        run.counts
    );
    relay_and_settle(&f);
    assert_eq!(kv_hits(&f, NAME), Vec::<String>::new());
}

/// D7: a document created while the sweep erases its (document-less) client would leave its
/// personal data behind a completed request: its INSERT is refused by its own statement (an
/// erasure of the client was requested), so nothing is left.
#[test]
fn a_document_created_during_the_erasure_is_refused_and_nothing_is_left() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let c = zelda(&f, &admin, json!({}));
    let req = erase(&f, &admin, "client", &c);
    let p = Overlap::new(&f);
    let shard = f.shard_db("SHARD_EU_01");
    let (cid, done) = (c.clone(), Rc::new(std::cell::Cell::new(false)));
    let seen = done.clone();
    *p.hook.borrow_mut() = Some(Box::new(move |s: &Stmt| {
        if s.sql.starts_with("DELETE FROM clients") && !seen.get() {
            seen.set(true);
            // What POST /v1/documents commits (the insert copies client_ended_on/restricted).
            let refused = shard
                .exec(&format!(
                    "INSERT INTO documents (account_id, id, body) VALUES ('{acct}', \
                '00000000-0000-4000-9999-000000000001', json_object('client_id', '{cid}', 'kind', \
                'fact_find', 'title', 'Zelda Quennell suitability', 'version', 1, \
                'created_at', '2026-11-26T09:00:00.000Z'))"
                ))
                .expect_err("an erasure of the client was requested");
            assert!(refused.to_string().contains("client_erasure"), "{refused}");
        }
    }));
    block_on(jobs::run(&p, Job::Retention, None));
    assert!(done.get());
    let r = f.as_user(&admin, Get, &format!("/v1/erasure-requests/{req}"), None);
    let status = r.body_json().unwrap()["status"].clone();
    let left = db_hits(&f, NAME);
    assert!(
        status != "completed" || left.is_empty(),
        "request {status} but found in {left:?}"
    );
}

/// D6: 50 pending requests that cannot proceed (held clients) fill `pending_stmt`'s LIMIT 50
/// for ever: a newer request is never carried out, whatever its deadline.
#[test]
fn held_erasure_requests_do_not_starve_a_newer_one() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    former_clients(&f, acct, 50, "8002", "Held", "2020-01-01", true);
    for i in 1..=50 {
        erase(
            &f,
            &admin,
            "client",
            &format!("00000000-0000-4000-8002-{i:012}"),
        );
        f.clock.advance(Duration::seconds(1));
    }
    let c = zelda(&f, &admin, json!({}));
    let req = erase(&f, &admin, "client", &c);
    for _ in 0..3 {
        let run = sweep(&f);
        eprintln!("{:?}", run.counts.to_json());
        f.clock.advance(Duration::days(1));
    }
    let admin = f.token(acct, Role::Admin);
    let r = f.as_user(&admin, Get, &format!("/v1/erasure-requests/{req}"), None);
    assert_eq!(
        r.body_json().unwrap()["status"],
        "completed",
        "{:?}",
        r.body_json()
    );
}
