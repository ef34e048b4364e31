//! The audit log's own retention in the nightly sweep: links past `audit_years` are removed
//! behind a signed disposal checkpoint, the rest of the trail still verifies, and an account
//! hold keeps every link.

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::jobs::{self, Job};
use crate::testing::fakes::block_on;
use crate::testing::harness::*;
use serde_json::{json, Value};
use time::Duration;

fn trail_of(f: &Fake, n: usize) -> uuid::Uuid {
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    for _ in 0..n {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    f.drain_queue();
    acct
}

fn disposed(run: &jobs::JobRun) -> serde_json::Value {
    run.counts
        .to_json()
        .get("audit_links_disposed")
        .cloned()
        .unwrap_or_default()
}

#[test]
fn links_past_the_audit_retention_go_behind_a_signed_disposal_and_the_rest_verifies() {
    let f = Fake::new();
    let acct = trail_of(&f, 3);
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(disposed(&run), json!(0), "nothing is ten years old yet");
    f.clock.advance(Duration::days(3653 + 2));
    // One more change, so the old links are not the head.
    let tok = f.token(acct, Role::Member);
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    f.drain_queue();
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(disposed(&run), json!(3), "{:?}", run.counts.to_json());
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log"), 1);
    assert_eq!(
        f.count("SHARD_EU_01", "SELECT count(*) FROM audit_disposals"),
        1
    );
    let admin = f.token(acct, Role::Admin);
    let v = f.as_user(&admin, Get, "/v1/audit/verify", None);
    let v = v.body_json().cloned().unwrap_or_default();
    assert_eq!(
        (v["first_broken"].clone(), v["complete"].clone()),
        (Value::Null, json!(true)),
        "{v}"
    );
    // Ten years without the hourly job: the periods it did not sign, and nothing else.
    assert!(
        v["checkpoints"]["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty() && f.iter().all(|f| f["problem"] == "missing_period")),
        "{v}"
    );
    assert_eq!(v["started_after"], 3);
    let cps = f.as_user(&admin, Get, "/v1/audit/checkpoints?limit=500", None);
    let items = cps.body_json().cloned().unwrap_or_default()["items"].clone();
    assert!(
        items.as_array().is_some_and(|i| i
            .iter()
            .any(|c| c["kind"] == "disposal" && c["disposed_through"] == 3)),
        "the disposal is a signed checkpoint in the bucket"
    );
}

#[test]
fn an_account_hold_keeps_every_audit_link() {
    let f = Fake::new();
    let acct = trail_of(&f, 2);
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{acct}/legal-hold"),
        Some(json!({"hold": true})),
    );
    assert_eq!(r.status, 200);
    f.drain_queue();
    f.clock.advance(Duration::days(3653 + 2));
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert!(disposed(&run).is_null(), "{:?}", run.counts.to_json());
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log"), 3);
}
