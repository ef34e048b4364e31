//! A message on the change-event queue is only a pointer (account + event id): what is recorded
//! is the shard's outbox row, which the outbox keeps until the audit trail has it. Regression
//! tests for an adversarial review of the consumer: made-up ids, forged account events,
//! altered copies of real events, events of earlier builds, dead letters during an outage.

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::consumer::{dead_letters, process_batch, Decision};
use crate::domain::auth::Role;
use crate::jobs::{self, Job};
use crate::testing::fakes::block_on;
use crate::testing::harness::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn audit_rows(f: &Fake) -> i64 {
    f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log")
}

fn kinds(d: &[Decision]) -> Vec<&'static str> {
    d.iter()
        .map(|d| match d {
            Decision::DeadLetter { reason } => reason.kind(),
            Decision::Ack => "ack",
            Decision::Retry { .. } => "retry",
        })
        .collect()
}

/// An account with one client created; returns the account and the create's message (still
/// on the queue).
fn with_a_client(f: &Fake) -> (Uuid, Value) {
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let genuine = f.queue.sent.borrow()[0].clone();
    (acct, genuine)
}

fn outbox_rows(f: &Fake, id: &str) -> i64 {
    f.count(
        "SHARD_EU_01",
        &format!("SELECT count(*) FROM outbox WHERE id = '{id}'"),
    )
}

#[test]
fn a_made_up_event_id_for_a_real_target_is_dead_lettered_as_not_in_outbox() {
    let f = Fake::new();
    let (_, genuine) = with_a_client(&f);
    assert_eq!(f.drain_queue(), vec![Decision::Ack]);
    let mut forged = genuine.clone();
    forged["id"] = json!(Uuid::from_u128(0xf0f0));
    forged["type"] = json!("client.erased");
    forged["changed_fields"] = json!(["personal data"]);
    forged["actor"] = json!({"type": "system", "id": "retention"});
    forged["entity_version"] = json!(1);
    let d = block_on(process_batch(&f, &[forged]));
    assert_eq!(kinds(&d), ["not_in_outbox"]);
    assert_eq!(audit_rows(&f), 1, "only the genuine create");
}

#[test]
fn a_forged_account_event_is_dead_lettered_as_not_in_outbox() {
    let f = Fake::new();
    let (acct, genuine) = with_a_client(&f);
    let mut forged = genuine.clone();
    forged["id"] = json!(Uuid::from_u128(0xacc));
    forged["type"] = json!("account.updated");
    forged["subject"] = json!(format!("accounts/{acct}"));
    forged["entity_version"] = json!(999);
    forged["changed_fields"] = json!(["legal_hold"]);
    forged["changes"] = json!({"legal_hold": {"before": true, "after": false}});
    let d = block_on(process_batch(&f, &[forged]));
    assert_eq!(kinds(&d), ["not_in_outbox"]);
    assert_eq!(audit_rows(&f), 0);
}

#[test]
fn an_altered_copy_of_a_real_event_records_the_outbox_event_and_the_genuine_one_is_a_duplicate() {
    let f = Fake::new();
    let (acct, _) = with_a_client(&f);
    let genuine = f.queue.sent.borrow_mut().remove(0);
    let mut forged = genuine.clone();
    forged["actor"] = json!({"type": "user", "id": Uuid::from_u128(0x666), "role": "admin"});
    forged["changed_fields"] = json!(["notes"]);
    forged["request_id"] = json!("nothing-to-see");
    forged["time"] = json!("2001-01-01T00:00:00.000Z");
    assert_eq!(block_on(process_batch(&f, &[forged])), vec![Decision::Ack]);
    assert_eq!(
        block_on(process_batch(&f, std::slice::from_ref(&genuine))),
        vec![Decision::Ack]
    );
    assert_eq!(audit_rows(&f), 1);
    let trail = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/audit", None);
    let item = trail.body_json().unwrap()["items"][0].clone();
    assert_eq!(item["request_id"], genuine["request_id"]);
    assert_eq!(item["actor"], genuine["actor"]);
    assert_eq!(item["event_time"], genuine["time"]);
    assert_eq!(item["changed_fields"], genuine["changed_fields"]);
}

#[test]
fn a_legal_hold_event_of_an_earlier_build_without_changes_is_recorded() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    assert_eq!(f.drain_queue(), vec![Decision::Ack]);
    let r = f.as_user(
        &admin,
        Put,
        &format!("/v1/clients/{id}/legal-hold"),
        Some(json!({"hold": true})),
    );
    assert_eq!(r.status, 200);
    let mut old = f.queue.sent.borrow_mut().remove(0);
    old.as_object_mut().unwrap().remove("changes");
    // The earlier build wrote its outbox row without `changes` too.
    f.shard_db("SHARD_EU_01")
        .exec(&format!(
            "UPDATE outbox SET body = json_remove(body, '$.changes') WHERE id = '{}'",
            old["id"].as_str().unwrap()
        ))
        .unwrap();
    assert_eq!(block_on(process_batch(&f, &[old])), vec![Decision::Ack]);
    assert_eq!(audit_rows(&f), 2);
}

#[test]
fn an_account_event_naming_the_shard_of_a_stale_route_in_its_source_is_recorded() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{acct}/legal-hold"),
        Some(json!({"hold": true})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let mut sent: Vec<Value> = f.queue.sent.borrow_mut().drain(..).collect();
    let ev = sent
        .iter_mut()
        .find(|m| m["type"] == "account.updated")
        .expect("the hold's account event");
    assert!(ev["source"]
        .as_str()
        .unwrap()
        .ends_with("/shards/shard-eu-01"));
    // Forwarded by an earlier build, which kept the source of the route the change came in by.
    ev["source"] = json!("/deployments/api/shards/shard-eu-02");
    f.shard_db("SHARD_EU_01")
        .exec(&format!(
            "UPDATE outbox SET body = json_set(body, '$.source', \
             '/deployments/api/shards/shard-eu-02') WHERE id = '{}'",
            ev["id"].as_str().unwrap()
        ))
        .unwrap();
    let ev = ev.clone();
    assert_eq!(block_on(process_batch(&f, &[ev])), vec![Decision::Ack]);
    assert_eq!(audit_rows(&f), 1);
}

#[test]
fn an_unrecorded_event_keeps_its_outbox_row_past_the_purge_age_and_a_recorded_one_is_purged() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let sent: Vec<Value> = f.queue.sent.borrow_mut().drain(..).collect();
    let (recorded, late) = (sent[0].clone(), sent[1].clone());
    assert_eq!(
        block_on(process_batch(&f, std::slice::from_ref(&recorded))),
        vec![Decision::Ack]
    );
    // Twice past the keep time: a row the API did not mark is published by the first run.
    for _ in 0..2 {
        f.clock.advance(time::Duration::days(8));
        block_on(jobs::run(&f, Job::OutboxRelay, None));
    }
    assert_eq!(outbox_rows(&f, recorded["id"].as_str().unwrap()), 0);
    assert_eq!(outbox_rows(&f, late["id"].as_str().unwrap()), 1);
    // The consumer running late still finds its evidence; the recorded one's redelivery is a
    // duplicate, not a forgery, though its outbox row is gone.
    let d = block_on(process_batch(&f, &[late.clone(), recorded]));
    assert_eq!(d, vec![Decision::Ack, Decision::Ack]);
    assert_eq!(audit_rows(&f), 2);
    f.clock.advance(time::Duration::days(8));
    block_on(jobs::run(&f, Job::OutboxRelay, None));
    assert_eq!(outbox_rows(&f, late["id"].as_str().unwrap()), 0);
}

#[test]
fn ids_in_another_spelling_than_the_canonical_one_are_refused() {
    let f = Fake::new();
    let (_, genuine) = with_a_client(&f);
    let id = genuine["id"].as_str().unwrap().to_string();
    let (ty, target) = genuine["subject"]
        .as_str()
        .unwrap()
        .split_once('/')
        .unwrap();
    let mut upper = genuine.clone();
    upper["id"] = json!(id.to_uppercase());
    let mut braced = genuine.clone();
    braced["id"] = json!(format!("{{{id}}}"));
    let mut simple_account = genuine.clone();
    simple_account["account_id"] = json!(genuine["account_id"].as_str().unwrap().replace('-', ""));
    let mut urn_subject = genuine.clone();
    urn_subject["subject"] = json!(format!("{ty}/urn:uuid:{target}"));
    let d = block_on(process_batch(
        &f,
        &[upper, braced, simple_account, urn_subject],
    ));
    assert_eq!(kinds(&d), ["schema"; 4]);
    assert_eq!(audit_rows(&f), 0);
}

#[test]
fn a_time_that_is_not_rfc3339_or_unbounded_changed_fields_are_refused() {
    let f = Fake::new();
    let (_, genuine) = with_a_client(&f);
    let mut bad_time = genuine.clone();
    bad_time["time"] = json!("yesterday");
    let mut many = genuine.clone();
    many["type"] = json!("client.updated");
    many["changed_fields"] = json!((0..65).map(|i| format!("f{i}")).collect::<Vec<_>>());
    let mut long = genuine.clone();
    long["type"] = json!("client.updated");
    long["changed_fields"] = json!(["x".repeat(1025)]);
    let mut big = genuine.clone();
    big["changes"] = json!({"notes": {"before": "a".repeat(20_000), "after": ""}});
    let d = block_on(process_batch(&f, &[bad_time, many, long, big, genuine]));
    assert_eq!(kinds(&d), ["schema", "schema", "schema", "schema", "ack"]);
    assert_eq!(audit_rows(&f), 1);
}

#[test]
fn events_of_a_shard_this_consumer_does_not_bind_are_retried_not_dead_lettered() {
    let f = Fake::new();
    let (_, genuine) = with_a_client(&f);
    f.accounts
        .exec(
            "UPDATE shards SET body = json_set(body, '$.binding', 'SHARD_NOT_HERE') \
             WHERE id = 'shard-eu-01'",
        )
        .unwrap();
    let d = block_on(process_batch(&f, &[genuine]));
    assert_eq!(kinds(&d), ["retry"]);
    assert_eq!(audit_rows(&f), 0);
}

fn dead_letter(f: &Fake, id: &str) -> Value {
    let list = f.admin(Get, "/admin/v1/dead-letters", None);
    let items = list.body_json().unwrap()["items"].clone();
    items
        .as_array()
        .and_then(|a| a.iter().find(|i| i["id"] == id).cloned())
        .unwrap_or_default()
}

#[test]
fn a_refused_forgery_reusing_a_recorded_id_is_listed_conflicting_not_applied() {
    let f = Fake::new();
    let (_, genuine) = with_a_client(&f);
    assert_eq!(f.drain_queue(), vec![Decision::Ack]);
    let mut forged = genuine.clone();
    forged["type"] = json!("client.teleported");
    let d = block_on(process_batch(&f, std::slice::from_ref(&forged)));
    let Decision::DeadLetter { reason } = &d[0] else {
        panic!("{d:?}")
    };
    let mut retyped = genuine.clone();
    retyped["type"] = json!("client.deleted");
    retyped["changed_fields"] = json!(["deleted_at"]);
    let mut reversioned = genuine.clone();
    reversioned["entity_version"] = json!(5);
    let batch = vec![
        (
            "m1".into(),
            dead_letters::wrap(reason, "change-events", &forged),
        ),
        ("m2".into(), retyped),
        ("m3".into(), reversioned),
        ("m4".into(), genuine),
    ];
    let d = block_on(dead_letters::record(&f, "change-events", &batch));
    assert_eq!(d, vec![Decision::Ack; 4]);
    let status = |id: &str| dead_letter(&f, id)["status"].clone();
    assert_eq!(dead_letter(&f, "m1")["kind"], "unknown_type");
    assert_eq!(status("m1"), "conflicting");
    assert_eq!(status("m2"), "conflicting");
    assert_eq!(status("m3"), "conflicting");
    assert_eq!(status("m4"), "applied");
}

#[test]
fn a_dead_letter_is_recorded_unknown_while_its_shard_is_down_and_settled_when_listed() {
    let f = Fake::new();
    let (_, genuine) = with_a_client(&f);
    assert_eq!(f.drain_queue(), vec![Decision::Ack]);
    let db = f.shard_db("SHARD_EU_01");
    db.exec("ALTER TABLE audit_log RENAME TO audit_log_gone;")
        .unwrap();
    let out = block_on(dead_letters::record(
        &f,
        "change-events",
        &[("m1".into(), genuine)],
    ));
    assert_eq!(out, vec![Decision::Ack]);
    assert_eq!(
        dead_letter(&f, "m1")["status"],
        "unknown",
        "shard still down"
    );
    db.exec("ALTER TABLE audit_log_gone RENAME TO audit_log;")
        .unwrap();
    assert_eq!(dead_letter(&f, "m1")["status"], "applied");
    let stored = f
        .accounts
        .query_json("SELECT body ->> '$.status' AS s FROM dead_letters WHERE id = 'm1'");
    assert_eq!(stored[0]["s"], "applied", "settled for good");
}
