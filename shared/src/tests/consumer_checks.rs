//! The consumer trusts no message: forged envelopes are dead-lettered with a typed reason and
//! never reach the audit chain; late events of disposed targets are still recorded (their
//! outbox rows stay until recorded); dead letters whose event was already applied say so.

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::consumer::{dead_letters, process_batch, Decision};
use crate::domain::auth::Role;
use crate::testing::fakes::block_on;
use crate::testing::harness::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn kind(d: &Decision) -> &'static str {
    match d {
        Decision::DeadLetter { reason } => reason.kind(),
        Decision::Ack => "ack",
        Decision::Retry { .. } => "retry",
    }
}

fn audit_rows(f: &Fake, binding: &str) -> i64 {
    f.count(binding, "SELECT count(*) FROM audit_log")
}

/// A copy of a genuine envelope under a fresh event id (so the outbox does not vouch for it).
fn forge(genuine: &Value, change: impl FnOnce(&mut Value)) -> Value {
    thread_local!(static NEXT: std::cell::Cell<u128> = const { std::cell::Cell::new(0xf0_0000) });
    let mut v = genuine.clone();
    v["id"] = json!(NEXT.with(|n| {
        n.set(n.get() + 1);
        Uuid::from_u128(n.get())
    }));
    change(&mut v);
    v
}

#[test]
fn forged_envelopes_are_dead_lettered_with_their_reason_and_never_appended() {
    let f = Fake::new();
    let (acct, shard) = f.account("acme", Some("shard-eu-01"));
    assert_eq!(shard, "shard-eu-01");
    let (elsewhere, _) = f.account("brightwater", Some("shard-eu-02"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let genuine = f.queue.sent.borrow_mut().remove(0);
    let forged = vec![
        forge(&genuine, |v| v["type"] = json!("client.teleported")),
        forge(&genuine, |v| {
            v["account_id"] = json!(Uuid::from_u128(0xdead))
        }),
        // A real account, but it lives on shard-eu-02 and the event names shard-eu-01.
        forge(&genuine, |v| v["account_id"] = json!(elsewhere)),
        forge(&genuine, |v| {
            v["type"] = json!("client.updated");
            v["subject"] = json!(format!("clients/{}", Uuid::from_u128(0xbeef)));
            v["changed_fields"] = json!(["surname"]);
        }),
        forge(&genuine, |v| {
            v["type"] = json!("client.updated");
            v["entity_version"] = json!(7);
            v["changed_fields"] = json!(["surname"]);
        }),
        forge(&genuine, |v| v["entity_version"] = json!(0)),
        forge(&genuine, |v| {
            v["type"] = json!("account.updated");
            v["subject"] = json!(format!("accounts/{acct}"));
            v["changed_fields"] = json!(["legal_hold"]);
        }),
        forge(&genuine, |v| {
            v["source"] = json!("/deployments/api/shards/shard-eu-02")
        }),
    ];
    let mut batch = vec![genuine.clone()];
    batch.extend(forged);
    let d = block_on(process_batch(&f, &batch));
    let kinds: Vec<&str> = d.iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            "ack",
            "unknown_type",
            "unknown_account",
            "wrong_shard",
            "not_in_outbox",
            "not_in_outbox",
            "schema",
            "not_in_outbox",
            "not_in_outbox",
        ]
    );
    assert_eq!(audit_rows(&f, "SHARD_EU_01"), 1, "only the genuine event");
    assert_eq!(audit_rows(&f, "SHARD_EU_02"), 0);
    let admin = f.token(acct, Role::Admin);
    let trail = f.as_user(&admin, Get, "/v1/audit", None);
    let items = trail.body_json().unwrap()["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1));
    assert_eq!(items[0]["target"]["id"], json!(id));
    let v = f.as_user(&admin, Get, "/v1/audit/verify", None);
    assert_eq!(v.body_json().unwrap()["ok"], true);
}

#[test]
fn a_late_event_of_a_target_that_is_gone_is_recorded_from_its_outbox_row() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    // The create is recorded, then the update's event arrives after the row is gone.
    let a = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    assert_eq!(f.drain_queue(), vec![Decision::Ack]);
    let r = f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{a}"),
        Some(json!({"surname": "Later"})),
    );
    assert_eq!(r.status, 200);
    // No history at all: only the outbox holds the create.
    let b = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let db = f.shard_db("SHARD_EU_01");
    db.exec(&format!("DELETE FROM clients WHERE id IN ('{a}', '{b}');"))
        .unwrap();
    assert_eq!(f.drain_queue(), vec![Decision::Ack, Decision::Ack]);
    assert_eq!(audit_rows(&f, "SHARD_EU_01"), 3);
    // Without its outbox row (never written, or removed by hand) the same kind of event is a
    // forgery, even though its target's history is there.
    let r = f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{b}"),
        Some(json!({"surname": "Gone"})),
    );
    assert_eq!(r.status, 404, "the row is gone");
    let c = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let ev = f.queue.sent.borrow_mut().remove(0);
    db.exec(&format!(
        "DELETE FROM outbox WHERE body ->> '$.subject' = 'clients/{c}';"
    ))
    .unwrap();
    let refused = block_on(process_batch(&f, &[ev]));
    assert_eq!(
        refused.iter().map(kind).collect::<Vec<_>>(),
        ["not_in_outbox"]
    );
    assert_eq!(audit_rows(&f, "SHARD_EU_01"), 3);
}

#[test]
fn a_dead_letter_whose_event_is_already_recorded_is_marked_applied_not_failed() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let sent: Vec<Value> = f.queue.sent.borrow().clone();
    // The first was processed but never acked; the second never processed at all.
    assert_eq!(block_on(process_batch(&f, &sent[..1])), vec![Decision::Ack]);
    let refused = dead_letters::wrap(
        &crate::consumer::Reason::NotAnIndexJob,
        "index-jobs",
        &json!({"index_job": "?"}),
    );
    let batch = vec![
        ("m1".to_string(), sent[0].clone()),
        ("m2".to_string(), sent[1].clone()),
        ("m3".to_string(), refused),
    ];
    let d = block_on(dead_letters::record(&f, "change-events", &batch));
    assert_eq!(d, vec![Decision::Ack; 3]);
    let list = f.admin(Get, "/admin/v1/dead-letters", None);
    let items = list.body_json().unwrap()["items"].clone();
    let of = |id: &str| {
        items
            .as_array()
            .and_then(|a| a.iter().find(|i| i["id"] == id).cloned())
            .unwrap_or_default()
    };
    assert_eq!(
        (of("m1")["status"].clone(), of("m1")["kind"].clone()),
        (json!("applied"), json!("retries_exhausted"))
    );
    assert_eq!(of("m2")["status"], "failed");
    assert_eq!(
        (of("m3")["status"].clone(), of("m3")["kind"].clone()),
        (json!("failed"), json!("not_an_index_job"))
    );
}
