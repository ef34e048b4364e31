//! An insider with the shard D1's credentials, and separately someone with write access to the
//! checkpoint bucket, try to rewrite a tenant's audit trail (the adversarial review of issue 13):
//! the shared harness of the `audit_*` regression tests, and the attacks that were detected
//! from the start.

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::consumer::Decision;
use crate::domain::audit::{AuditEntry, ChainHead};
use crate::domain::auth::Role;
use crate::jobs::{self, Job, Outcome};
use crate::services::checkpoints;
use crate::testing::fakes::block_on;
use crate::testing::harness::*;
use serde_json::{json, Value};
use time::Duration;
use uuid::Uuid;

pub(super) const SHARD: &str = "SHARD_EU_01";

pub(super) struct T {
    pub(super) f: Fake,
    pub(super) acct: Uuid,
}

pub(super) fn setup() -> T {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    T { f, acct }
}

impl T {
    pub(super) fn member(&self) -> String {
        self.f.token(self.acct, Role::Member)
    }
    pub(super) fn admin(&self) -> String {
        self.f.token(self.acct, Role::Admin)
    }
    /// One change, delivered alone: its link is the last of its run, so it is signed.
    pub(super) fn event(&self) {
        created_id(
            &self
                .f
                .as_user(&self.member(), Post, "/v1/clients", Some(client_body())),
        );
        let d = self.f.drain_queue();
        assert!(d.iter().all(|d| *d == Decision::Ack), "{d:?}");
    }
    pub(super) fn events(&self, n: usize) {
        for _ in 0..n {
            self.event();
        }
    }
    pub(super) fn verify(&self, q: &str) -> (u16, Value) {
        let r = self
            .f
            .as_user(&self.admin(), Get, &format!("/v1/audit/verify{q}"), None);
        (r.status, r.body_json().cloned().unwrap_or_default())
    }
    pub(super) fn job(&self) -> jobs::JobRun {
        block_on(jobs::run(&self.f, Job::AuditCheckpoints, None))
    }
    pub(super) fn sql(&self, sql: &str) {
        self.f.shard_db(SHARD).exec(sql).unwrap();
    }
    pub(super) fn trigger_sql(&self, name: &str) -> String {
        self.f.shard_db(SHARD).query_json(&format!(
            "SELECT sql FROM sqlite_master WHERE name = '{name}'"
        ))[0]["sql"]
            .as_str()
            .unwrap()
            .to_string()
    }
    /// The insider's edit: drop the guard, do `sql`, put the identical guard back.
    pub(super) fn behind(&self, trigger: &str, sql: &str) {
        let again = self.trigger_sql(trigger);
        self.sql(&format!("DROP TRIGGER {trigger}; {sql}; {again};"));
    }
    pub(super) fn truncate_after(&self, seq: i64) {
        self.behind(
            "audit_log_no_delete",
            &format!("DELETE FROM audit_log WHERE seq > {seq}"),
        );
    }
    pub(super) fn head(&self) -> i64 {
        self.f.count(SHARD, "SELECT max(seq) FROM audit_log")
    }
    pub(super) fn entry(&self, seq: i64) -> AuditEntry {
        let rows = self
            .f
            .shard_db(SHARD)
            .query_json(&format!("SELECT body FROM audit_log WHERE seq = {seq}"));
        serde_json::from_str(rows[0]["body"].as_str().unwrap()).unwrap()
    }
}

pub(super) fn ok(v: &Value) -> bool {
    v["ok"] == json!(true)
}

#[test]
fn forged_appends_rewrites_cut_heads_and_foreign_or_edited_checkpoints_are_detected() {
    // Forged append with a recomputed hash at the tail.
    let t = setup();
    t.events(3);
    let mut e = t.entry(3);
    e.seq = 4;
    e.event_id = Uuid::from_u128(0xf1);
    e.prev_hash = e.hash.clone();
    e.receipt = None;
    e.hash = e.compute_hash();
    t.sql(&format!(
        "INSERT INTO audit_log (account_id, seq, body) VALUES ('{}', 4, '{}')",
        t.acct,
        serde_json::to_string(&e).unwrap()
    ));
    let (_, v) = t.verify("");
    assert!(!ok(&v) && v["first_broken"]["seq"] == 4, "{v}");
    // The genuine receipt of link 3 copied onto the forged link 4.
    let t = setup();
    t.events(3);
    let mut e = t.entry(3);
    e.seq = 4;
    e.event_id = Uuid::from_u128(0xf1);
    e.prev_hash = e.hash.clone();
    e.hash = e.compute_hash();
    t.sql(&format!(
        "INSERT INTO audit_log (account_id, seq, body) VALUES ('{}', 4, '{}')",
        t.acct,
        serde_json::to_string(&e).unwrap()
    ));
    let (_, v) = t.verify("");
    assert!(!ok(&v) && v["first_broken"]["seq"] == 4, "{v}");
    // Rewritten from genesis, receipts dropped.
    let t = setup();
    t.events(3);
    let mut head = ChainHead::genesis();
    let mut stmts = String::new();
    for seq in 1..=3 {
        let mut e = t.entry(seq);
        e.actor = crate::domain::event::Actor::System {
            id: "nobody".into(),
        };
        e.prev_hash = head.hash.clone();
        e.receipt = None;
        e.hash = e.compute_hash();
        head = ChainHead {
            seq,
            hash: e.hash.clone(),
        };
        stmts += &format!(
            "UPDATE audit_log SET body = '{}' WHERE seq = {seq};",
            serde_json::to_string(&e).unwrap()
        );
    }
    t.behind("audit_log_no_update", &stmts);
    let (_, v) = t.verify("");
    assert!(!ok(&v), "{v}");
    // First rows cut behind a hand-written disposal.
    let t = setup();
    t.events(3);
    t.sql(&format!(
        "INSERT INTO audit_disposals (account_id, through_seq, body) VALUES ('{a}', 2, \
         json_object('account_id', '{a}', 'disposed_through', 2, 'key_id', 'test-k1', 'signature', 'c2ln')); \
         DELETE FROM audit_log WHERE seq <= 2",
        a = t.acct
    ));
    let (_, v) = t.verify("");
    assert!(!ok(&v), "{v}");
    // Another account's checkpoint copied into this account's prefix.
    let t = setup();
    let (other, _) = t.f.account("other", None);
    t.events(1);
    t.f.clock.advance(Duration::minutes(65));
    t.job();
    let theirs =
        t.f.checkpoints
            .objects
            .borrow()
            .iter()
            .find(|(k, _)| k.contains(&other.to_string()))
            .map(|(_, v)| v.clone())
            .unwrap();
    t.f.checkpoints.objects.borrow_mut().insert(
        checkpoints::object_key(t.acct, "2026-11-26T10:00:00.000Z"),
        theirs,
    );
    let (_, v) = t.verify("");
    assert!(!ok(&v), "{v}");
    // An R2 object rewritten (its head edited, signature kept).
    let t = setup();
    t.events(2);
    t.f.clock.advance(Duration::minutes(65));
    t.job();
    let k =
        t.f.checkpoints
            .objects
            .borrow()
            .keys()
            .next()
            .cloned()
            .unwrap();
    let mut c: Value = serde_json::from_slice(&t.f.checkpoints.objects.borrow()[&k]).unwrap();
    c["head_seq"] = json!(1);
    t.f.checkpoints
        .objects
        .borrow_mut()
        .insert(k, serde_json::to_vec(&c).unwrap());
    let (_, v) = t.verify("");
    assert!(!ok(&v), "{v}");
    // The job's resume digest tampered with: verify names the checkpoint the hint claims and
    // the bucket does not hold; the job ignores the hint (the bucket is the record) and says so.
    let t = setup();
    t.events(1);
    t.f.clock.advance(Duration::minutes(65));
    t.job();
    t.sql("UPDATE audit_checkpoint_heads SET body = json_set(body, '$.digest', 'ab')");
    let (_, v) = t.verify("");
    assert!(!ok(&v), "{v}");
    t.f.clock.advance(Duration::hours(1));
    let run = t.job();
    assert_eq!(run.outcome, Outcome::Partial, "{:?}", run.detail);
    assert!(
        run.detail.iter().any(|d| d.contains(&t.acct.to_string())),
        "{:?}",
        run.detail
    );
    let (_, v) = t.verify("");
    assert!(
        ok(&v),
        "the chain of checkpoints itself was never broken: {v}"
    );
}
