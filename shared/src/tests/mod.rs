//! Native tests of the whole request path over fakes (real migrations on SQLite).

use crate::api::http::Method::*;
use crate::consumer::Decision;
use crate::domain::auth::Role;
use crate::domain::entity::{self, FilterOp};
use crate::jobs::{self, Job, Outcome};
use crate::testing::fakes::{block_on, query_plan, SqliteDb};
use crate::testing::harness::*;
use serde_json::json;
use uuid::Uuid;

mod audit_disposal;
mod audit_guards;
mod audit_verify;
mod bookmarks;
mod consumer_checks;
mod consumer_forgery;
mod contention;
mod deactivation;
mod derived_after_disposal;
mod erasure_data_map;
mod idempotency;
mod identity;
mod model;
mod operator;
mod overlap;
mod patch_edges;
mod restricted_documents;
mod restricted_lists;
mod restriction;
mod restriction_lifecycle;
mod retention_boundaries;
mod writes;

pub(crate) fn created_id(r: &crate::api::http::ApiResponse) -> String {
    assert_eq!(r.status, 201, "{:?}", r.body_json());
    r.body_json()
        .and_then(|v| v["id"].as_str())
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn client_body() -> serde_json::Value {
    json!({"forenames": "Ada", "surname": "Lovelace", "status": "active"})
}

#[test]
fn every_migration_applies_in_order_with_foreign_keys_on() {
    for db in [SqliteDb::accounts().unwrap(), SqliteDb::shard().unwrap()] {
        let r = block_on(crate::ports::Database::query(
            &db,
            crate::ports::Stmt::new("PRAGMA foreign_keys", vec![]),
        ))
        .unwrap();
        assert_eq!(r.rows[0]["foreign_keys"], json!(1));
        let fk = block_on(crate::ports::Database::query(
            &db,
            crate::ports::Stmt::new("PRAGMA foreign_key_check", vec![]),
        ))
        .unwrap();
        assert!(fk.rows.is_empty());
    }
}

#[test]
fn every_get_and_list_statement_searches_an_index_led_by_account_id() {
    let db = SqliteDb::shard().unwrap();
    let acct = Uuid::from_u128(1);
    let id = Uuid::from_u128(2).to_string();
    for spec in entity::ALL {
        let mut stmts = vec![
            crate::api::get_stmt(spec, acct, Uuid::from_u128(2)),
            crate::api::list_stmt(spec, acct, None, None, 50, false),
            crate::api::list_stmt(spec, acct, None, Some((None, &id)), 50, false),
        ];
        for f in spec.filters {
            stmts.push(crate::api::list_stmt(
                spec,
                acct,
                Some((f, "x")),
                None,
                50,
                false,
            ));
            stmts.push(crate::api::list_stmt(
                spec,
                acct,
                Some((f, "x")),
                None,
                50,
                true,
            ));
            let key = (f.op == FilterOp::Prefix).then_some("x");
            stmts.push(crate::api::list_stmt(
                spec,
                acct,
                Some((f, "x")),
                Some((key, &id)),
                50,
                true,
            ));
        }
        for s in stmts {
            let plan = query_plan(&db, &s).join(" | ");
            assert!(
                plan.contains("SEARCH") && plan.contains("(account_id=?"),
                "{}: {plan}\n{}",
                spec.table,
                s.sql
            );
            assert!(!plan.contains("SCAN"), "{}: {plan}", s.sql);
            assert!(!plan.contains("TEMP B-TREE"), "sorted by the index: {plan}");
        }
    }
}

#[test]
fn create_commits_entity_and_outbox_together_then_publishes() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let r = f.as_user(&tok, Post, "/v1/clients", Some(client_body()));
    let id = created_id(&r);
    assert_eq!(r.header("etag"), Some("\"v1\""));
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/clients/{id}").as_str())
    );
    assert!(r.header("x-d1-bookmark").is_some());
    let sent = f.queue.sent.borrow().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "client.created");
    assert_eq!(sent[0]["subject"], format!("clients/{id}"));
    assert!(sent[0]["bookmark"].is_string());
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"
        ),
        1
    );
}

#[test]
fn failed_queue_send_leaves_the_event_for_the_relay_which_publishes_it_once() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    f.queue.fail.set(true);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        ),
        1
    );
    f.queue.fail.set(false);
    // Too young: the request that wrote it may still publish it.
    let run = block_on(jobs::run(&f, Job::OutboxRelay, None));
    assert_eq!(run.outcome, Outcome::Ok);
    assert!(f.queue.sent.borrow().is_empty());
    f.clock.advance(time::Duration::minutes(1));
    let run = block_on(jobs::run(&f, Job::OutboxRelay, None));
    assert_eq!(run.counts.to_json()["republished"], 1);
    let sent = f.queue.sent.borrow().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["subject"], format!("clients/{id}"));
    assert!(
        sent[0].get("published_at").is_none(),
        "the message is the envelope alone"
    );
    assert_eq!(f.drain_queue(), vec![Decision::Ack]);
    let run = block_on(jobs::run(&f, Job::OutboxRelay, None));
    assert!(
        run.counts.to_json().get("republished").is_none(),
        "nothing left to relay"
    );
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log"), 1);
}

#[test]
fn redelivered_events_append_one_audit_row_and_the_chain_verifies() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    for _ in 0..3 {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    let msgs = f.queue.sent.borrow().clone();
    let mut twice = msgs.clone();
    twice.extend(msgs.iter().rev().cloned());
    let d = block_on(crate::consumer::process_batch(&f, &twice));
    assert!(d.iter().all(|d| *d == Decision::Ack), "{d:?}");
    let d = block_on(crate::consumer::process_batch(&f, &msgs));
    assert!(d.iter().all(|d| *d == Decision::Ack));
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log"), 3);
    let v = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/audit/verify", None);
    let v = v.body_json().unwrap();
    assert_eq!(
        (v["ok"].clone(), v["checked"].clone(), v["head_seq"].clone()),
        (json!(true), json!(3), json!(3))
    );
}

#[test]
fn a_batch_of_one_accounts_events_is_recorded_in_one_d1_batch_with_its_index_fields() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let ids: Vec<String> = (0..5)
        .map(|_| created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body()))))
        .collect();
    use crate::ports::Database;
    let shard = f.shard_db("SHARD_EU_01");
    let before = shard.cost();
    assert!(f.drain_queue().iter().all(|d| *d == Decision::Ack));
    let spent = shard.cost();
    // The chain head once, then one batch: not two queries per event.
    assert_eq!(spent.calls - before.calls, 2, "{before:?} -> {spent:?}");
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log"), 5);
    for id in &ids {
        let c = f.as_user(&tok, Get, &format!("/v1/clients/{id}"), None);
        let c = c.body_json().unwrap();
        assert!(c["search_text"].is_string(), "index fields written: {c}");
    }
    let v = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/audit/verify", None);
    let v = v.body_json().unwrap();
    assert_eq!(
        (v["ok"].clone(), v["head_seq"].clone()),
        (json!(true), json!(5))
    );
    // The next batch continues from the head this one left (no head query).
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let msgs: Vec<serde_json::Value> = f.queue.sent.borrow_mut().drain(..).collect();
    let before = shard.cost();
    let d = block_on(crate::consumer::process_batch(&f, &msgs));
    assert_eq!(d, vec![Decision::Ack]);
    assert!(shard.cost().calls - before.calls <= 2);
    let v = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/audit/verify", None);
    assert_eq!(v.body_json().unwrap()["head_seq"], 6);
}

#[test]
fn a_tampered_audit_row_is_named_by_verify() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    for _ in 0..3 {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    f.drain_queue();
    let db = f.shard_db("SHARD_EU_01");
    assert!(
        db.exec("UPDATE audit_log SET body = body WHERE seq = 2")
            .is_err(),
        "append-only trigger"
    );
    db.exec(
        "DROP TRIGGER audit_log_no_update; \
         UPDATE audit_log SET body = json_set(body, '$.actor.role', 'admin') WHERE seq = 2;",
    )
    .unwrap();
    let v = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/audit/verify", None);
    let v = v.body_json().unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken_seq"], 2);
}

#[test]
fn poison_and_unknown_messages_are_dead_lettered() {
    let f = Fake::new();
    let d = block_on(crate::consumer::process_batch(
        &f,
        &[json!({"hello": "world"}), json!("text")],
    ));
    assert!(
        d.iter().all(|d| matches!(d, Decision::DeadLetter { .. })),
        "{d:?}"
    );
}

#[test]
fn unknown_account_is_indistinguishable_from_a_bad_token() {
    let f = Fake::new();
    let ghost = f.token(Uuid::from_u128(999), Role::Admin);
    let a = f.as_user(&ghost, Get, "/v1/clients", None);
    let b = f.as_user("not.a.token", Get, "/v1/clients", None);
    assert_eq!((a.status, b.status), (401, 401));
    assert_eq!(
        a.body_json().unwrap()["type"],
        b.body_json().unwrap()["type"]
    );
}

#[test]
fn tenant_on_a_shard_this_deployment_does_not_bind_gets_421_and_no_query() {
    let f = Fake::new();
    let (acct, shard) = f.account("northwind", Some("shard-ded-01"));
    assert_eq!(shard, "shard-ded-01");
    let r = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/clients", None);
    assert_eq!(r.status, 421);
    assert_eq!(
        r.body_json().unwrap()["deployment"],
        "clientdocs-api-ded-01"
    );
}

#[test]
fn new_accounts_go_to_the_least_full_shared_shard() {
    let f = Fake::new();
    let shards: Vec<String> = ["a1a", "b2b", "c3c", "d4d"]
        .iter()
        .map(|s| f.account(s, None).1)
        .collect();
    assert_eq!(
        shards,
        ["shard-eu-01", "shard-eu-02", "shard-eu-01", "shard-eu-02"]
    );
}

#[test]
fn uk_only_account_gets_451_outside_gb_and_the_header_works_only_locally() {
    let mut f = Fake::new();
    let r = f.admin(
        Post,
        "/admin/v1/accounts",
        // A test account: its HS256 token stays valid with `local` off (production accounts take
        // their identity provider's tokens only).
        Some(json!({"name": "UK", "slug": "uk-firm", "uk_only": true, "kind": "test"})),
    );
    let acct = Uuid::parse_str(r.body_json().unwrap()["id"].as_str().unwrap()).unwrap();
    let auth = format!("Bearer {}", f.token(acct, Role::Member));
    let get = |f: &Fake, country: Option<&str>| {
        let mut h = vec![("authorization", auth.as_str())];
        if let Some(c) = country {
            h.push(("x-simulated-country", c));
        }
        f.call(Get, "/v1/clients", &h, None).status
    };
    assert_eq!(get(&f, None), 451);
    assert_eq!(get(&f, Some("FR")), 451);
    assert_eq!(get(&f, Some("GB")), 200);
    f.cfg.local = false;
    assert_eq!(
        get(&f, Some("GB")),
        451,
        "not honoured outside the local environment"
    );
}

#[test]
fn cidr_allowlist_refuses_other_addresses() {
    let f = Fake::new();
    let r = f.admin(
        Post,
        "/admin/v1/accounts",
        Some(json!({"name": "Locked", "slug": "locked", "cidr_allowlist": ["203.0.113.0/24"]})),
    );
    let acct = Uuid::parse_str(r.body_json().unwrap()["id"].as_str().unwrap()).unwrap();
    let auth = format!("Bearer {}", f.token(acct, Role::Member));
    let inside = f.call(
        Get,
        "/v1/clients",
        &[
            ("authorization", &auth),
            ("cf-connecting-ip", "203.0.113.9"),
        ],
        None,
    );
    let outside = f.call(
        Get,
        "/v1/clients",
        &[
            ("authorization", &auth),
            ("cf-connecting-ip", "198.51.100.1"),
        ],
        None,
    );
    assert_eq!((inside.status, outside.status), (200, 403));
}

#[test]
fn custom_domain_must_agree_with_the_token() {
    let f = Fake::new();
    let (a, _) = f.account("acme", None);
    let (b, _) = f.account("brightwater", None);
    let r = f.admin(
        Post,
        &format!("/admin/v1/accounts/{a}/domains"),
        Some(json!({"hostname": "clients.acme.example"})),
    );
    assert_eq!(r.status, 201);
    let on_a = |tok: String| {
        f.call(
            Get,
            "/v1/clients",
            &[
                ("authorization", &format!("Bearer {tok}")),
                ("host", "clients.acme.example"),
            ],
            None,
        )
        .status
    };
    assert_eq!(on_a(f.token(a, Role::Member)), 200);
    assert_eq!(on_a(f.token(b, Role::Member)), 403);
}

#[test]
fn limits_each_have_a_clear_error_and_write_nothing() {
    let mut f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let auth = format!("Bearer {tok}");
    let mut big = client_body();
    big["notes"] = json!("x".repeat(entity::MAX_JSON_BODY_BYTES));
    assert_eq!(f.as_user(&tok, Post, "/v1/clients", Some(big)).status, 413);
    let mut deep = json!("leaf");
    for _ in 0..10 {
        deep = json!({ "a": deep });
    }
    let mut c = client_body();
    c["address"] = deep;
    assert_eq!(f.as_user(&tok, Post, "/v1/clients", Some(c)).status, 400);
    let r = f.call(
        Post,
        "/v1/clients",
        &[("authorization", &auth), ("content-type", "text/plain")],
        Some(client_body()),
    );
    assert_eq!(r.status, 415);
    assert_eq!(
        f.as_user(&tok, Get, "/v1/clients/not-a-uuid", None).status,
        400
    );
    let mut long = client_body();
    long["surname"] = json!("x".repeat(201));
    assert_eq!(f.as_user(&tok, Post, "/v1/clients", Some(long)).status, 400);
    // Content over the configured limit.
    let doc_client = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": doc_client, "kind": "identity", "title": "Passport"})),
    ));
    f.cfg.max_content_bytes = 10;
    let mut req = crate::api::http::ApiRequest {
        method: Put,
        path: format!("/v1/documents/{doc}/content"),
        query: vec![],
        headers: vec![
            ("authorization".into(), auth.clone()),
            ("content-type".into(), "application/pdf".into()),
        ],
        body: vec![1; 11],
        cf_country: None,
        request_id: "r".into(),
    };
    assert_eq!(f.raw(req.clone()).status, 413);
    req.body = vec![1; 10];
    assert_eq!(f.raw(req).status, 200);
    assert_eq!(
        f.count("SHARD_EU_01", "SELECT count(*) FROM clients"),
        1,
        "only the valid client"
    );
}

#[test]
fn every_error_is_problem_json_with_type_detail_and_request_id() {
    let f = Fake::new();
    for r in [
        f.call(Get, "/nope", &[], None),
        f.call(Get, "/v1/clients", &[], None),
        f.admin(Get, "/admin/v1/accounts/not-a-uuid", None),
        f.admin(Delete, "/admin/v1/shards", None),
    ] {
        assert!(r.status >= 400);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        let b = r.body_json().unwrap();
        assert!(b["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:clientdocs:problem:"));
        assert!(b["detail"].is_string() && b["title"].is_string());
        assert_eq!(b["request_id"], "req-test");
        assert_eq!(b["status"], r.status);
    }
}

#[test]
fn patch_merges_validates_and_counts_versions() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let mut body = client_body();
    body["address"] = json!({"line1": "1 High St", "postcode": "AB1 2CD"});
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(body)));
    let path = format!("/v1/clients/{id}");
    let r = f.as_user(
        &tok,
        Patch,
        &path,
        Some(json!({"address": {"postcode": null, "town": "Leeds"}})),
    );
    assert_eq!(r.status, 200);
    let v = r.body_json().unwrap();
    assert_eq!(v["address"], json!({"line1": "1 High St", "town": "Leeds"}));
    assert_eq!(v["version"], 2);
    // Removing a required field is a validation error, and writes nothing.
    assert_eq!(
        f.as_user(&tok, Patch, &path, Some(json!({"surname": null})))
            .status,
        400
    );
    assert_eq!(
        f.as_user(&tok, Patch, &path, Some(json!({"version": 7})))
            .status,
        400
    );
    // A no-op patch writes nothing and emits nothing.
    let before = f.queue.sent.borrow().len();
    assert_eq!(
        f.as_user(&tok, Patch, &path, Some(json!({"surname": "Lovelace"})))
            .body_json()
            .unwrap()["version"],
        2
    );
    assert_eq!(f.queue.sent.borrow().len(), before);
    let last = f.queue.sent.borrow().last().cloned().unwrap();
    assert_eq!(last["changed_fields"], json!(["address"]));
}

#[test]
fn injected_send_failures_lose_nothing_after_the_relay() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{acct}/faults"),
        Some(json!({"queue_send_rate": 0.5})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let tok = f.token(acct, Role::Member);
    for _ in 0..20 {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    let sent_directly = f.queue.sent.borrow().len();
    assert!(
        sent_directly > 0 && sent_directly < 20,
        "some sends were skipped: {sent_directly}"
    );
    f.drain_queue();
    f.clock.advance(time::Duration::minutes(1));
    block_on(jobs::run(&f, Job::OutboxRelay, None));
    assert_eq!(f.queue.sent.borrow().len(), 20 - sent_directly);
    f.drain_queue();
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log"), 20);
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(DISTINCT body ->> '$.event_id') FROM audit_log"
        ),
        20
    );
    let v = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/audit/verify", None);
    assert_eq!(v.body_json().unwrap()["ok"], true);
}

#[test]
fn injected_consumer_faults_and_duplicate_delivery_append_each_event_once() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{acct}/faults"),
        Some(json!({"consumer_retry_rate": 0.5, "duplicate_delivery": true})),
    );
    assert_eq!(r.status, 200);
    let tok = f.token(acct, Role::Member);
    for _ in 0..10 {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    let msgs = f.queue.sent.borrow().clone();
    let mut pending = msgs.clone();
    let mut rounds = 0;
    while !pending.is_empty() && rounds < 50 {
        let d = block_on(crate::consumer::process_batch(&f, &pending));
        pending = pending
            .into_iter()
            .zip(d)
            .filter(|(_, d)| *d != Decision::Ack)
            .map(|(m, _)| m)
            .collect();
        rounds += 1;
    }
    assert!(
        pending.is_empty() && rounds > 1,
        "some retries were injected, all eventually acked"
    );
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log"), 10);
    let v = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/audit/verify", None);
    assert_eq!(v.body_json().unwrap()["ok"], true);
}

#[test]
fn faults_are_refused_outside_the_local_environment() {
    let mut f = Fake::new();
    let (acct, _) = f.account("acme", None);
    f.cfg.local = false;
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{acct}/faults"),
        Some(json!({"queue_send_rate": 1.0})),
    );
    assert_eq!(r.status, 404);
}

#[test]
fn dead_letters_are_recorded_once_listed_and_replayed() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let good = f.queue.sent.borrow_mut().remove(0);
    let poison = json!({"not": "an event"});
    let wrapped = crate::consumer::dead_letters::wrap(
        &crate::consumer::Reason::Undecodable("no type".into()),
        "change-events",
        &poison,
    );
    let batch = vec![
        ("m1".to_string(), wrapped.clone()),
        ("m2".to_string(), good.clone()),
    ];
    let d = block_on(crate::consumer::dead_letters::record(
        &f,
        "change-events",
        &batch,
    ));
    assert_eq!(d, vec![Decision::Ack, Decision::Ack]);
    // Redelivered from the DLQ: still one row each.
    block_on(crate::consumer::dead_letters::record(
        &f,
        "change-events",
        &batch,
    ));
    let list = f.admin(Get, "/admin/v1/dead-letters", None);
    let items = list.body_json().unwrap()["items"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(items.len(), 2);
    let m1 = items.iter().find(|i| i["id"] == "m1").unwrap();
    assert_eq!(m1["kind"], "undecodable");
    assert_eq!(m1["message"], poison);
    let m2 = items.iter().find(|i| i["id"] == "m2").unwrap();
    assert!(m2["reason"].as_str().unwrap().contains("max_retries"));
    // Replaying the good one delivers it; the consumer records it.
    let r = f.admin(Post, "/admin/v1/dead-letters/m2/replay", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body_json().unwrap()["replay_count"], 1);
    assert_eq!(f.drain_queue(), vec![Decision::Ack]);
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log"), 1);
    assert_eq!(
        f.admin(Post, "/admin/v1/dead-letters/nope/replay", None)
            .status,
        404
    );
}

#[test]
fn audit_list_statements_search_an_index_led_by_account_id() {
    use crate::services::audit::{list_stmt, AuditQuery};
    let db = SqliteDb::shard().unwrap();
    let acct = Uuid::from_u128(1);
    let queries = [
        AuditQuery::All,
        AuditQuery::Target {
            entity_type: "clients".into(),
            id: "x".into(),
        },
        AuditQuery::Actor("u".into()),
        AuditQuery::Time {
            from: "2026-01-01T00:00:00.000Z".into(),
            to: "2027-01-01T00:00:00.000Z".into(),
        },
    ];
    for q in &queries {
        for after in [None, Some((5, Some("2026-02-01T00:00:00.000Z")))] {
            let s = list_stmt(acct, q, after, 50);
            let plan = query_plan(&db, &s).join(" | ");
            assert!(
                plan.contains("SEARCH") && plan.contains("(account_id=?"),
                "{q:?}: {plan}"
            );
            assert!(
                !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
                "{q:?}: {plan}"
            );
        }
    }
    let plan = query_plan(
        &db,
        &crate::services::audit::head_stmt(acct, Uuid::from_u128(2)),
    )
    .join(" | ");
    assert!(
        !plan.contains("SCAN audit_log"),
        "chain head lookup: {plan}"
    );
}

#[test]
fn audit_trail_lists_by_target_and_exports_json_lines_to_admins_only() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Admin);
    let a = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    f.clock.advance(time::Duration::seconds(1));
    let r = f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{a}"),
        Some(json!({"status": "former"})),
    );
    assert_eq!(r.status, 200);
    f.drain_queue();
    let r = f.as_user(
        &tok,
        Get,
        &format!("/v1/audit?target_type=clients&target_id={a}"),
        None,
    );
    let items = r.body_json().unwrap()["items"].as_array().cloned().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["client.created", "client.updated"]);
    assert_eq!(items[1]["changed_fields"], json!(["status"]));
    // Pages.
    let p1 = f.as_user(&tok, Get, "/v1/audit?limit=2", None);
    let p1 = p1.body_json().unwrap();
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let c = p1["next_cursor"].as_str().unwrap();
    let p2 = f.as_user(&tok, Get, &format!("/v1/audit?limit=2&cursor={c}"), None);
    assert_eq!(p2.body_json().unwrap()["items"][0]["seq"], 3);
    // Export.
    let e = f.as_user(&tok, Get, "/v1/audit/export", None);
    assert_eq!(e.header("content-type"), Some("application/x-ndjson"));
    let text = String::from_utf8(e.body_bytes()).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    // Members do not read the audit trail; unknown filters are refused.
    assert_eq!(
        f.as_user(&f.token(acct, Role::Member), Get, "/v1/audit", None)
            .status,
        403
    );
    assert_eq!(
        f.as_user(&tok, Get, "/v1/audit?entity=clients", None)
            .status,
        400
    );
}

#[test]
fn unsupported_method_is_405_with_an_allow_header() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let r = f.as_user(&tok, Put, "/v1/clients", None);
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, HEAD, POST"))
    );
    let r = f.call(Post, "/health", &[], None);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
}

#[test]
fn malformed_bookmark_is_a_400_not_silently_ignored() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let auth = format!("Bearer {}", f.token(acct, Role::Member));
    let long = "0".repeat(300);
    for bad in [long.as_str(), "has space", ""] {
        let r = f.call(
            Get,
            "/v1/clients",
            &[("authorization", &auth), ("x-d1-bookmark", bad)],
            None,
        );
        assert_eq!(r.status, 400, "{bad:?}");
    }
}

#[test]
fn document_content_refuses_active_types_and_downloads_as_an_attachment() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let client = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "correspondence", "title": "Letter"})),
    ));
    let put = |ct: &str| {
        f.raw(crate::api::http::ApiRequest {
            method: Put,
            path: format!("/v1/documents/{doc}/content"),
            query: vec![],
            headers: vec![
                ("authorization".into(), format!("Bearer {tok}")),
                ("content-type".into(), ct.into()),
            ],
            body: b"<script>alert(1)</script>".to_vec(),
            cf_country: None,
            request_id: "r".into(),
        })
    };
    for bad in [
        "text/html",
        "image/svg+xml",
        "application/javascript",
        "text/yaml",
    ] {
        assert_eq!(put(bad).status, 415, "{bad}");
    }
    assert_eq!(put("text/plain; charset=utf-8").status, 200);
    let g = f.as_user(&tok, Get, &format!("/v1/documents/{doc}/content"), None);
    assert_eq!(g.header("content-type"), Some("text/plain"));
    assert_eq!(g.header("x-content-type-options"), Some("nosniff"));
    assert!(g
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
}

/// Run the consumer on everything queued, and the index-jobs follow-ups until none remain.
fn settle(f: &Fake) -> usize {
    f.drain_queue();
    let mut chunks = 0;
    loop {
        let jobs: Vec<serde_json::Value> = f.index_jobs.sent.borrow_mut().drain(..).collect();
        if jobs.is_empty() {
            return chunks;
        }
        chunks += jobs.len();
        let d = block_on(crate::consumer::process_index_jobs(f, &jobs));
        assert!(d.iter().all(|d| *d == Decision::Ack), "{d:?}");
    }
}

#[test]
fn renaming_a_group_reaches_every_client_in_chunks() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let group = created_id(&f.as_user(&admin, Post, "/v1/groups", Some(json!({"name": "Leeds"}))));
    let n = crate::services::derived::CHUNK as usize * 2 + 7;
    for i in 0..n {
        let mut c = client_body();
        c["surname"] = json!(format!("S{i:05}"));
        c["group_id"] = json!(group);
        created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    }
    settle(&f);
    let named = |name: &str| {
        f.count(
            "SHARD_EU_01",
            &format!("SELECT count(*) FROM clients WHERE body ->> '$.group_name' = '{name}'"),
        )
    };
    assert_eq!(named("Leeds"), n as i64);
    let r = f.as_user(
        &admin,
        Patch,
        &format!("/v1/groups/{group}"),
        Some(json!({"name": "Leeds North"})),
    );
    assert_eq!(r.status, 200);
    let follow_ups = settle(&f);
    assert_eq!(
        follow_ups, 2,
        "two chunks after the first, each its own message"
    );
    assert_eq!(named("Leeds North"), n as i64);
    // Replaying the rename event changes nothing further.
    assert_eq!(named("Leeds"), 0);
}

#[test]
fn index_fields_follow_advisers_documents_and_search() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let adviser = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/users",
        Some(json!({"email": "a@acme.example", "display_name": "Alex", "role": "member"})),
    ));
    let mut c = client_body();
    c["adviser_id"] = json!(adviser);
    c["address"] = json!({"postcode": "SW1Y 4JH"});
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    for kind in ["identity", "fact_find"] {
        created_id(&f.as_user(
            &admin,
            Post,
            "/v1/documents",
            Some(json!({"client_id": client, "kind": kind, "title": "t"})),
        ));
    }
    settle(&f);
    let get = |f: &Fake| {
        f.as_user(&admin, Get, &format!("/v1/clients/{client}"), None)
            .body_json()
            .cloned()
            .unwrap()
    };
    let v = get(&f);
    assert_eq!(v["adviser_name"], "Alex");
    assert_eq!(v["document_count"], 2);
    assert_eq!(v["search_text"], "lovelace ada sw1y 4jh");
    f.as_user(
        &admin,
        Patch,
        &format!("/v1/users/{adviser}"),
        Some(json!({"display_name": "Alexandra"})),
    );
    settle(&f);
    assert_eq!(get(&f)["adviser_name"], "Alexandra");
    let found = f.as_user(&admin, Get, "/v1/clients?search_prefix=LOVE", None);
    assert_eq!(
        found.body_json().unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A document cannot move to another client (its count would be wrong).
    let docs = f.as_user(
        &admin,
        Get,
        &format!("/v1/documents?client_id={client}"),
        None,
    );
    let doc = docs.body_json().unwrap()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = f.as_user(
        &admin,
        Patch,
        &format!("/v1/documents/{doc}"),
        Some(json!({"client_id": Uuid::from_u128(5)})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        f.as_user(&admin, Delete, &format!("/v1/documents/{doc}"), None)
            .status,
        204
    );
    settle(&f);
    assert_eq!(get(&f)["document_count"], 1);
}

#[test]
fn fan_out_chunks_search_the_group_and_adviser_indexes() {
    let db = SqliteDb::shard().unwrap();
    for kind in [
        crate::services::derived::FanOut::GroupName,
        crate::services::derived::FanOut::AdviserName,
    ] {
        let plan = query_plan(
            &db,
            &crate::services::derived::fan_out_chunk(kind, "a", "g", ""),
        )
        .join(" | ");
        assert!(plan.contains("USING INDEX clients_by_"), "{plan}");
        assert!(!plan.contains("SCAN clients"), "{plan}");
    }
}

#[test]
fn read_cache_serves_only_the_current_version_and_never_overrides_a_bookmark() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let group = created_id(&f.as_user(&admin, Post, "/v1/groups", Some(json!({"name": "Leeds"}))));
    let mut c = client_body();
    c["group_id"] = json!(group);
    let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    settle(&f);
    let path = format!("/v1/clients/{id}");
    let first = f.as_user(&admin, Get, &path, None);
    assert_eq!(first.header("x-cache"), Some("miss"));
    let second = f.as_user(&admin, Get, &path, None);
    assert_eq!(second.header("x-cache"), Some("hit"));
    assert_eq!(second.body_json(), first.body_json());
    // Prove the hit comes from KV: mark the cached copy.
    for v in f.cache.entries.borrow_mut().values_mut() {
        *v = v.replace("Lovelace", "FromCache");
    }
    assert_eq!(
        f.as_user(&admin, Get, &path, None).body_json().unwrap()["surname"],
        "FromCache"
    );
    // A bookmark bypasses the cache.
    let bm = f.call(
        Get,
        &path,
        &[
            ("authorization", &format!("Bearer {admin}")),
            (
                "x-d1-bookmark",
                "00000000-00000001-00000000-00000000000000000000000000000000",
            ),
        ],
        None,
    );
    assert_eq!(
        (
            bm.header("x-cache"),
            bm.body_json().unwrap()["surname"].clone()
        ),
        (None, json!("Lovelace"))
    );
    // An update moves the version: the old entry can no longer be found.
    let r = f.as_user(&admin, Patch, &path, Some(json!({"surname": "Byron"})));
    assert_eq!(r.status, 200);
    let g = f.as_user(&admin, Get, &path, None);
    assert_eq!(
        (
            g.header("x-cache"),
            g.body_json().unwrap()["surname"].clone()
        ),
        (Some("miss"), json!("Byron"))
    );
    // So does a derived-field update (the consumer re-derived search_text, then a group
    // rename), without moving the user's version.
    settle(&f);
    assert_eq!(
        f.as_user(&admin, Get, &path, None).header("x-cache"),
        Some("miss")
    );
    assert_eq!(
        f.as_user(&admin, Get, &path, None).header("x-cache"),
        Some("hit")
    );
    f.as_user(
        &admin,
        Patch,
        &format!("/v1/groups/{group}"),
        Some(json!({"name": "Leeds North"})),
    );
    settle(&f);
    let g = f.as_user(&admin, Get, &path, None);
    let body = g.body_json().unwrap();
    assert_eq!(
        (body["group_name"].clone(), body["version"].clone()),
        (json!("Leeds North"), json!(2))
    );
    assert!(
        body.get("index_rev").is_none(),
        "internal counter is not shown"
    );
}

#[test]
fn operators_run_any_job_on_demand_with_the_operator_secret() {
    let f = Fake::new();
    let req = |path: &str, auth: &str| crate::api::http::ApiRequest {
        method: Post,
        path: path.into(),
        query: vec![],
        headers: vec![("authorization".into(), format!("Bearer {auth}"))],
        body: vec![],
        cf_country: None,
        request_id: "r".into(),
    };
    let run = |r| block_on(crate::operator::jobs::handle_scheduler(&f, ADMIN, &r));
    assert_eq!(
        run(req("/admin/v1/jobs/migration_check/run", "wrong")).status,
        401
    );
    assert_eq!(run(req("/admin/v1/jobs/nope/run", ADMIN)).status, 404);
    let r = run(req("/admin/v1/jobs/migration_check/run", ADMIN));
    assert_eq!(r.status, 200);
    let v = r.body_json().unwrap();
    assert_eq!(
        (v["job"].clone(), v["outcome"].clone()),
        (json!("migration_check"), json!("ok"))
    );
    assert_eq!(v["counts"]["current"], 4, "{v}");
}

#[test]
fn a_drifted_shard_is_reported_marked_and_refuses_writes_with_503() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    f.shard_db("SHARD_EU_01")
        .exec("CREATE INDEX rogue ON clients (account_id, status)")
        .unwrap();
    f.shard_db("SHARD_EU_02")
        .exec("DELETE FROM d1_migrations WHERE id = (SELECT max(id) FROM d1_migrations)")
        .unwrap();
    let run = block_on(jobs::run(&f, Job::MigrationCheck, None));
    assert_eq!(run.outcome, Outcome::Partial);
    assert_eq!(
        (
            run.counts.to_json()["drifted"].clone(),
            run.counts.to_json()["behind"].clone()
        ),
        (json!(1), json!(1))
    );
    assert!(
        run.detail
            .iter()
            .any(|d| d.starts_with("SHARD_EU_01: schema fingerprint")),
        "{:?}",
        run.detail
    );
    assert!(
        run.detail
            .iter()
            .any(|d| d.starts_with("SHARD_EU_02: behind")),
        "{:?}",
        run.detail
    );
    let shards = f.admin(Get, "/admin/v1/shards", None);
    let items = shards.body_json().unwrap()["items"]
        .as_array()
        .cloned()
        .unwrap();
    let status =
        |id: &str| items.iter().find(|s| s["id"] == id).unwrap()["schema"]["status"].clone();
    assert_eq!(
        (status("shard-eu-01"), status("shard-eu-02")),
        (json!("drifted"), json!("behind"))
    );
    // The API sees it once its route cache refreshes: writes 503, reads still served.
    f.routes.forget(acct);
    let w = f.as_user(&tok, Post, "/v1/clients", Some(client_body()));
    assert_eq!(w.status, 503, "{:?}", w.body_json());
    assert_eq!(f.as_user(&tok, Get, "/v1/clients", None).status, 200);
}

#[test]
fn a_write_that_lost_its_race_emits_no_event_even_at_the_same_version() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let uid = Uuid::parse_str(&id).unwrap();
    // Another writer already moved the row to version 2.
    assert_eq!(
        f.as_user(
            &tok,
            Patch,
            &format!("/v1/clients/{id}"),
            Some(json!({"surname": "B"}))
        )
        .status,
        200
    );
    let outbox_before = f.count("SHARD_EU_01", "SELECT count(*) FROM outbox");
    // Our delete read version 1: its UPDATE matches nothing, so its event must not be written.
    let ev = crate::domain::event::ChangeEvent::new(
        Uuid::from_u128(77),
        START,
        &crate::domain::event::Origin {
            deployment: "d",
            shard_id: "shard-eu-01",
            account_id: acct,
            actor: crate::domain::event::Actor::System { id: "t".into() },
            request_id: "r",
        },
        crate::domain::event::Change {
            entity_type: "clients",
            entity_singular: "client",
            entity_id: uid,
            action: crate::domain::event::Action::Deleted,
            entity_version: 2,
            changed_fields: vec![],
        },
    );
    let write = crate::services::changes::Write {
        table: "clients",
        id: uid,
        edit: crate::services::changes::Edit::SoftDelete,
        expect: crate::services::changes::Expect::Version(1),
        live_only: true,
        event: ev,
        with: vec![],
    };
    let landed = block_on(crate::services::changes::commit(
        &*f.shard_db("SHARD_EU_01"),
        &write,
    ))
    .unwrap();
    assert!(landed.is_none(), "the row is at version 2: nothing lands");
    assert_eq!(
        f.count("SHARD_EU_01", "SELECT count(*) FROM outbox"),
        outbox_before
    );
}

#[test]
fn deleting_audit_rows_is_refused_and_a_missing_first_row_is_reported() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    for _ in 0..3 {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    f.drain_queue();
    let db = f.shard_db("SHARD_EU_01");
    assert!(
        db.exec("DELETE FROM audit_log WHERE seq = 1").is_err(),
        "append-only"
    );
    db.exec("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 1;")
        .unwrap();
    let v = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/audit/verify", None);
    let v = v.body_json().unwrap();
    assert_eq!(
        (v["ok"].clone(), v["first_broken_seq"].clone()),
        (json!(false), json!(2))
    );
    assert_eq!(
        f.as_user(&tok, Get, "/v1/audit/verify", None).status,
        403,
        "admins only"
    );
}

#[test]
fn extreme_times_nested_nulls_and_non_ascii_prefixes_are_handled() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let r = f.as_user(
        &admin,
        Get,
        "/v1/audit?from=9999-12-31T23:59:59-01:00&to=9999-12-31T23:59:59Z",
        None,
    );
    assert!(r.status < 500, "no panic: {}", r.status);
    let mut c = client_body();
    c["surname"] = json!("Ötzi");
    c["address"] = json!({"line1": null, "town": "Bozen"});
    let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    let g = f.as_user(&admin, Get, &format!("/v1/clients/{id}"), None);
    assert_eq!(g.body_json().unwrap()["address"], json!({"town": "Bozen"}));
    let found = f.as_user(&admin, Get, "/v1/clients?surname_prefix=%C3%96tz", None);
    assert_eq!(
        found.body_json().unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn health_job_samples_every_bound_shard_with_per_account_usage() {
    let f = Fake::new();
    let (acct, shard) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    f.queue.fail.set(true);
    for _ in 0..3 {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    f.clock.advance(time::Duration::seconds(90));
    f.accounts
        .exec(&format!(
            "INSERT INTO dead_letters (id, body) VALUES ('dl1', json_object('id', 'dl1', 'queue', 'change-events', \
             'reason', 'poison', 'message', json_object('shard_id', '{shard}'), 'received_at', '2026-11-26T09:00:00.000Z', \
             'replayed_at', NULL, 'replay_count', 0))"
        ))
        .unwrap();
    let run = block_on(jobs::run(&f, Job::ShardHealth, None));
    assert_eq!(run.outcome, Outcome::Ok, "{:?}", run.detail);
    assert_eq!(run.counts.to_json()["sampled"], 3);
    let h = f.admin(Get, &format!("/admin/v1/shards/{shard}/health"), None);
    let s = h.body_json().unwrap()["items"][0].clone();
    assert!(s["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        s["outbox_backlog"], 3,
        "the sends failed: three unpublished rows"
    );
    assert_eq!(s["oldest_unpublished_seconds"], 90);
    assert_eq!(
        s["dead_letters_open"], 1,
        "the poison message names this shard"
    );
    let a = s["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == acct.to_string())
        .unwrap()
        .clone();
    assert_eq!(a["rows"], 6, "3 clients + 3 outbox rows");
    assert_eq!(
        f.admin(Get, "/admin/v1/shards/nope/health", None).status,
        404
    );
}

#[test]
fn api_meters_d1_usage_per_account_and_health_reports_the_previous_period() {
    let f = Fake::new();
    let (acct, shard) = f.account("metered", Some("shard-eu-01"));
    let (other, _) = f.account("quiet", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let get = f.as_user(&tok, Get, &format!("/v1/clients/{id}"), None);
    let cost = get
        .header(crate::api::COST_HEADER)
        .unwrap_or_default()
        .to_string();
    assert!(cost.starts_with("calls="), "{cost}");
    // A refused request is metered too (it ran its queries).
    let missing = f.as_user(
        &tok,
        Get,
        &format!("/v1/clients/{}", Uuid::from_u128(7)),
        None,
    );
    assert_eq!(missing.status, 404);
    assert!(missing.header(crate::api::COST_HEADER).is_some());
    // Flush as the Worker does after the interval, then sample in the next period.
    f.clock.advance(crate::services::usage::FLUSH_EVERY);
    for (binding, stmts) in f.usage.take_due(crate::domain::clock::Clock::now(&f.clock)) {
        block_on(crate::ports::Database::batch(&*f.shard_db(&binding), stmts)).unwrap();
    }
    f.clock.advance(crate::services::usage::PERIOD);
    let run = block_on(jobs::run(&f, Job::ShardHealth, None));
    assert_eq!(run.outcome, Outcome::Ok, "{:?}", run.detail);
    let h = f.admin(
        Get,
        &format!("/admin/v1/shards/{shard}/health?limit=1"),
        None,
    );
    let sample = h.body_json().unwrap()["items"][0].clone();
    let usage = |a: Uuid| {
        sample["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["account_id"] == a.to_string())
            .cloned()
            .unwrap_or_default()
    };
    let u = usage(acct);
    assert_eq!(u["requests"], 3, "{sample}");
    assert!(u["rows_read"].as_u64().unwrap() >= 2, "{u}");
    assert!(
        u["rows_written"].as_u64().unwrap() >= 2,
        "client + outbox: {u}"
    );
    assert_eq!(
        usage(other)["requests"].as_u64().unwrap_or(0),
        0,
        "no leak across tenants"
    );
}

/// `n` former clients of `acct` on shard-eu-01, straight into SQLite: ids
/// `00000000-0000-4000-{block}-<row number>`, relationship ended on `ended`, optionally
/// under a client-level legal hold.
fn former_clients(
    f: &Fake,
    acct: Uuid,
    n: i64,
    block: &str,
    surname: &str,
    ended: &str,
    held: bool,
) {
    let hold = if held {
        ", 'legal_hold', json('true')"
    } else {
        ""
    };
    f.shard_db("SHARD_EU_01")
        .exec(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO clients (account_id, id, body) SELECT '{acct}', printf('00000000-0000-4000-{block}-%012d', i), \
             json_object('forenames', 'F', 'surname', '{surname}', 'status', 'former', 'version', 1, \
             'created_at', '2005-01-01T00:00:00.000Z', 'relationship_ended_on', '{ended}'{hold}) FROM n;"
        ))
        .unwrap();
}

#[test]
fn bounded_retention_runs_resume_from_the_stored_cursor_until_the_cycle_completes() {
    let f = Fake::new();
    let (acct, _) = f.account("bulk", Some("shard-eu-01"));
    let over = crate::jobs::retention_sweep::MAX_EXAMINED_PER_SHARD as i64 + 5_000;
    // Clients under a client-level legal hold (kept, but read), ended 2010, ahead of
    // ten expired ones in the candidate order (ended 2012).
    former_clients(&f, acct, over, "8000", "Held", "2010-01-01", true);
    former_clients(&f, acct, 10, "8001", "Expired", "2012-01-01", false);
    let expired = "SELECT count(*) FROM clients WHERE surname_lc = 'expired'";
    let first = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(first.outcome, Outcome::Partial, "{:?}", first.counts);
    assert_eq!(
        f.count("SHARD_EU_01", expired),
        10,
        "budget spent on held rows"
    );
    let cursor = f.accounts.query_json(&format!(
        "SELECT body FROM job_cursors WHERE id = '{}'",
        crate::jobs::retention_sweep::cursor_id("shard-eu-01")
    ));
    assert_eq!(cursor.len(), 1, "a stored cursor between runs");
    let second = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(second.outcome, Outcome::Ok, "{:?}", second.counts);
    assert_eq!(second.counts.to_json()["resumed"], 1);
    assert_eq!(
        second.counts.to_json()["cycles_completed"],
        3,
        "every bound shard finished its cycle"
    );
    assert!(
        second.counts.to_json()["candidates_examined"]
            .as_u64()
            .unwrap()
            < 6_000,
        "resumed after the cursor, not from the start: {:?}",
        second.counts
    );
    assert_eq!(
        f.count("SHARD_EU_01", expired),
        0,
        "every expired row gone after one cycle"
    );
    // Per shard: the swept shard carries the deletions, and the shards sum to the totals.
    let second_counts = second.counts.to_json();
    let by_shard = second_counts["by_shard"].as_object().unwrap();
    assert_eq!(by_shard["shard-eu-01"]["deleted"], 10, "{by_shard:?}");
    for key in ["deleted", "rows_read", "candidates_examined"] {
        let sum: u64 = by_shard.values().map(|v| v[key].as_u64().unwrap()).sum();
        assert_eq!(json!(sum), second_counts[key], "{key}: {by_shard:?}");
    }
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM clients WHERE surname_lc = 'held'"
        ),
        over,
        "nothing held was deleted"
    );
    assert!(f
        .accounts
        .query_json("SELECT body FROM job_cursors")
        .is_empty());
}

#[test]
fn the_hourly_retention_cron_only_carries_on_an_unfinished_cycle() {
    use crate::bindings::{CRON_RETENTION, CRON_RETENTION_RESUME};
    let f = Fake::new();
    let (acct, _) = f.account("bulk", Some("shard-eu-01"));
    // More expired clients (relationship ended 2010) than one run may delete.
    let n = crate::jobs::retention_sweep::MAX_DELETIONS_PER_SHARD as i64 + 10;
    former_clients(&f, acct, n, "8001", "Expired", "2010-01-01", false);
    let left = || {
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM clients WHERE surname_lc = 'expired'",
        )
    };
    // No cycle in progress: the hourly run sweeps nothing (the nightly one starts cycles).
    let idle = block_on(jobs::run(&f, Job::Retention, Some(CRON_RETENTION_RESUME)));
    assert_eq!(idle.outcome, Outcome::Ok, "{:?}", idle.counts);
    assert!(
        idle.counts.to_json().get("deleted").is_none(),
        "{:?}",
        idle.counts
    );
    assert_eq!(left(), n);
    let nightly = block_on(jobs::run(&f, Job::Retention, Some(CRON_RETENTION)));
    assert_eq!(nightly.outcome, Outcome::Partial, "{:?}", nightly.counts);
    assert_eq!(left(), 10);
    // The next hourly run carries the cycle on from its cursor and finishes it.
    let hourly = block_on(jobs::run(&f, Job::Retention, Some(CRON_RETENTION_RESUME)));
    assert_eq!(hourly.outcome, Outcome::Ok, "{:?}", hourly.counts);
    assert_eq!(hourly.counts.to_json()["resumed"], 1);
    assert_eq!(hourly.counts.to_json()["deleted"], 10);
    assert_eq!(left(), 0);
    let after = block_on(jobs::run(&f, Job::Retention, Some(CRON_RETENTION_RESUME)));
    assert!(
        after.counts.to_json().get("deleted").is_none(),
        "{:?}",
        after.counts
    );
}

#[test]
fn health_measures_account_sizes_in_bounded_runs_resuming_from_a_stored_cursor() {
    let f = Fake::new();
    let (acct, shard) = f.account("sized", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    for _ in 0..3 {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    // A tiny budget: each run measures a few tables, then stores where it stopped.
    f.measure_rows.set(3);
    let cursor = || {
        f.accounts.query_json(&format!(
            "SELECT body FROM job_cursors WHERE id = '{}'",
            crate::jobs::shard_health::cursor_id(&shard)
        ))
    };
    let latest = || {
        let h = f.admin(
            Get,
            &format!("/admin/v1/shards/{shard}/health?limit=1"),
            None,
        );
        h.body_json().unwrap()["items"][0]["accounts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|a| a["account_id"] == acct.to_string())
    };
    let run = block_on(jobs::run(&f, Job::ShardHealth, None));
    assert_eq!(run.outcome, Outcome::Ok, "{:?}", run.detail);
    assert_eq!(cursor().len(), 1, "stopped mid-account: cursor stored");
    assert!(latest().is_none(), "not measured yet");
    let mut runs = 1;
    while !cursor().is_empty() {
        runs += 1;
        assert!(runs < 20, "the measuring cycle must finish");
        f.clock.advance(time::Duration::minutes(15));
        block_on(jobs::run(&f, Job::ShardHealth, None));
    }
    assert!(runs >= 2, "the cycle spanned runs");
    let a = latest().expect("measured after the cycle");
    assert_eq!(
        a["rows"], 6,
        "3 clients + 3 outbox rows, summed across runs: {a}"
    );
    assert!(a["measured_at"].is_string());
    // The next cycle carries the figures forward while it measures again.
    f.clock.advance(time::Duration::minutes(15));
    block_on(jobs::run(&f, Job::ShardHealth, None));
    assert_eq!(latest().expect("carried")["rows"], 6);
}

#[test]
fn writes_cost_one_d1_batch_and_outbox_marks_are_deferred_and_grouped() {
    let f = Fake::new();
    let (acct, _) = f.account("lean", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let calls = |r: &crate::api::http::ApiResponse| -> u64 {
        let h = r
            .header(crate::api::COST_HEADER)
            .unwrap_or_default()
            .to_string();
        h.split(';')
            .find_map(|kv| kv.strip_prefix("calls="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let created = f.as_user(&tok, Post, "/v1/clients", Some(client_body()));
    assert_eq!(calls(&created), 1, "create: one batch");
    let id = created_id(&created);
    let path = format!("/v1/clients/{id}");
    let patched = f.call(
        Patch,
        &path,
        &[
            ("authorization", &format!("Bearer {tok}")),
            ("if-match", "\"v1\""),
        ],
        Some(json!({"surname": "Byron"})),
    );
    assert_eq!(patched.status, 200, "{:?}", patched.body_json());
    assert_eq!(
        calls(&patched),
        2,
        "update: read to merge and validate, then one batch"
    );
    let stale = f.call(
        Delete,
        &path,
        &[
            ("authorization", &format!("Bearer {tok}")),
            ("if-match", "\"v1\""),
        ],
        None,
    );
    assert_eq!(stale.status, 412);
    let deleted = f.call(
        Delete,
        &path,
        &[
            ("authorization", &format!("Bearer {tok}")),
            ("if-match", "W/\"v2\""),
        ],
        None,
    );
    assert_eq!(deleted.status, 204);
    assert_eq!(
        calls(&deleted),
        1,
        "delete: one conditional batch, no read first"
    );
    assert_eq!(
        f.as_user(&tok, Delete, &path, None).status,
        404,
        "already deleted"
    );
    // The delete event carries the version the row reached, read from the row itself.
    let ev = f.queue.sent.borrow().last().cloned().unwrap();
    assert_eq!(
        (ev["type"].clone(), ev["entity_version"].clone()),
        (json!("client.deleted"), json!(3))
    );
    let outbox_version = f.count(
        "SHARD_EU_01",
        &format!(
            "SELECT body ->> '$.entity_version' FROM outbox WHERE id = '{}'",
            ev["id"].as_str().unwrap()
        ),
    );
    assert_eq!(outbox_version, 3);
    // Sent events' rows were marked published after the requests (the Worker's wait_until).
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        ),
        0
    );
}

#[test]
fn documents_carry_their_clients_relationship_end_hidden_and_kept_in_step() {
    let f = Fake::new();
    let (acct, _) = f.account("ended", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let mut c = client_body();
    c["relationship_ended_on"] = json!("2015-03-31");
    let client = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(c)));
    let doc = |title: &str| {
        f.as_user(
            &tok,
            Post,
            "/v1/documents",
            Some(json!({"client_id": client, "kind": "fact_find", "title": title})),
        )
    };
    let d1 = doc("one");
    let d1_id = created_id(&d1);
    assert!(
        d1.body_json().unwrap().get("client_ended_on").is_none(),
        "never shown"
    );
    let stored = |id: &str| {
        f.count(
            "SHARD_EU_01",
            &format!("SELECT count(*) FROM documents WHERE id = '{id}' AND client_ended_on = '2015-03-31'"),
        )
    };
    assert_eq!(stored(&d1_id), 1, "copied at creation");
    // The client's end changes: every document follows in the same batch.
    let r = f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{client}"),
        Some(json!({"relationship_ended_on": "2016-01-31"})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    assert_eq!(
        f.count("SHARD_EU_01", &format!("SELECT count(*) FROM documents WHERE id = '{d1_id}' AND client_ended_on = '2016-01-31'")),
        1
    );
    // Cleared: the copy goes too (no nulls stored).
    f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{client}"),
        Some(json!({"relationship_ended_on": null})),
    );
    assert_eq!(
        f.count("SHARD_EU_01", &format!("SELECT count(*) FROM documents WHERE id = '{d1_id}' AND body ->> '$.client_ended_on' IS NULL AND body NOT LIKE '%client_ended_on%'")),
        1
    );
    // A document PATCH keeps the server's copy, and clients cannot set it.
    let refused = f.as_user(
        &tok,
        Patch,
        &format!("/v1/documents/{d1_id}"),
        Some(json!({"client_ended_on": "2000-01-01"})),
    );
    assert_eq!(refused.status, 400, "{:?}", refused.body_json());
    // An unknown client is still refused by the foreign key.
    let orphan = f.as_user(
        &tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": Uuid::from_u128(99), "kind": "fact_find", "title": "x"})),
    );
    assert_eq!(orphan.status, 422, "{:?}", orphan.body_json());
}

#[test]
fn a_request_whose_route_is_cached_makes_no_account_d1_query() {
    use crate::ports::Database;
    let f = Fake::new();
    let (acct, _) = f.account("routed", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let before = f.api_accounts.cost().calls;
    assert_eq!(
        f.as_user(&tok, Get, &format!("/v1/clients/{id}"), None)
            .status,
        200
    );
    assert_eq!(
        f.api_accounts.cost().calls,
        before,
        "route and domain served from the cache"
    );
    // After the TTL the route is loaded again.
    f.clock
        .advance(crate::services::tenancy::ROUTE_CACHE_TTL + time::Duration::seconds(1));
    assert_eq!(
        f.as_user(&tok, Get, &format!("/v1/clients/{id}"), None)
            .status,
        200
    );
    assert!(f.api_accounts.cost().calls > before);
}

fn synthetic_sample(f: &Fake, shard: &str, at: &str, size: u64, accounts: &[(&str, u64)]) {
    let id = crate::domain::clock::uuid_v4(&f.entropy).to_string();
    let accounts: Vec<_> = accounts
        .iter()
        .map(|(a, b)| json!({"account_id": a, "rows": 1, "bytes": b}))
        .collect();
    let body = json!({"id": id, "shard_id": shard, "at": at, "size_bytes": size, "capacity_bytes": 10_000_000_000u64,
        "accounts": accounts, "outbox_backlog": 0, "oldest_unpublished_seconds": null, "probe_ms": 1});
    f.accounts
        .exec(&format!(
            "INSERT INTO shard_health (id, body) VALUES ('{id}', '{body}')"
        ))
        .unwrap();
}

#[test]
fn an_oversized_shard_gets_proposals_that_bring_every_shard_under_its_soft_cap() {
    let f = Fake::new();
    const GB: u64 = 1_000_000_000;
    synthetic_sample(
        &f,
        "shard-eu-01",
        "2026-11-25T09:00:00.000Z",
        8 * GB - 10_000_000,
        &[
            ("a1", 3 * GB),
            ("a2", 5 * GB / 2 - 10_000_000),
            ("a3", 5 * GB / 2),
        ],
    );
    synthetic_sample(
        &f,
        "shard-eu-01",
        "2026-11-26T09:00:00.000Z",
        8 * GB,
        &[("a1", 3 * GB), ("a2", 5 * GB / 2), ("a3", 5 * GB / 2)],
    );
    synthetic_sample(
        &f,
        "shard-eu-02",
        "2026-11-26T09:00:00.000Z",
        GB,
        &[("b1", GB)],
    );
    synthetic_sample(
        &f,
        "shard-ded-01",
        "2026-11-26T09:00:00.000Z",
        GB,
        &[("c1", GB)],
    );
    let first = block_on(crate::jobs::shard_health::rebalance(&f)).unwrap();
    let n = first.open;
    assert!(n > 0);
    assert_eq!(first.new, n);
    // Every new proposal is emitted as a platform event, and marked so.
    let sent: Vec<serde_json::Value> = f.platform_events.sent.borrow().clone();
    assert_eq!(sent.len(), n);
    assert!(sent.iter().all(
        |e| e["type"] == crate::domain::platform_events::REBALANCE_PROPOSED
            && e["data"]["proposal"]["kind"].is_string()
    ));
    assert!(block_on(crate::consumer::platform_events::record(
        &*f.accounts,
        &sent
    ))
    .iter()
    .all(|d| *d == Decision::Ack));
    let r = f.admin(Get, "/admin/v1/rebalance-proposals", None);
    let proposals: Vec<crate::domain::planner::Proposal> = r.body_json().unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| serde_json::from_value(i["proposal"].clone()).unwrap())
        .collect();
    assert!(proposals.iter().any(|p| matches!(p, crate::domain::planner::Proposal::Move { from_shard, .. } if from_shard == "shard-eu-01")), "{proposals:?}");
    let (shards, accounts) = block_on(crate::store::shard_health::loads(&*f.accounts)).unwrap();
    let after = crate::domain::planner::apply(&shards, &accounts, &proposals);
    let policy = crate::domain::planner::Policy::default();
    assert!(
        crate::domain::planner::over_soft_cap(&after, &policy).is_empty(),
        "{after:?}"
    );
    assert!(r.body_json().unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["emitted_at"].is_string()));
    // Re-planning the same plan keeps the open proposals: no pile-up, no repeated events.
    let second = block_on(crate::jobs::shard_health::rebalance(&f)).unwrap();
    assert_eq!((second.new, second.superseded), (0, 0));
    assert_eq!(f.platform_events.sent.borrow().len(), n);
    let listed = f.admin(Get, "/admin/v1/platform-events", None);
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.body_json().unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        n
    );
    let again = f.admin(Get, "/admin/v1/rebalance-proposals", None);
    assert_eq!(
        again.body_json().unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        n
    );
    // New accounts are never placed on the shard above its soft cap.
    for slug in ["n1x", "n2x", "n3x"] {
        assert_eq!(f.account(slug, None).1, "shard-eu-02");
    }
}

#[test]
fn retention_settings_default_to_uk_presets_and_only_admins_change_them() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let member = f.token(acct, Role::Member);
    let admin = f.token(acct, Role::Admin);
    let g = f.as_user(&member, Get, "/v1/settings/retention", None);
    assert_eq!(g.status, 200);
    assert_eq!(g.body_json().unwrap()["client_years_after_end"], 6);
    assert_eq!(g.body_json().unwrap()["aml_years_after_end"], 5);
    let mut p = g.body_json().unwrap().clone();
    p["audit_years"] = json!(12.0); // JSON Schema's integer admits 12.0
    assert_eq!(
        f.as_user(&member, Put, "/v1/settings/retention", Some(p.clone()))
            .status,
        403
    );
    assert_eq!(
        f.as_user(&admin, Put, "/v1/settings/retention", Some(p.clone()))
            .status,
        200
    );
    assert_eq!(
        f.as_user(&member, Get, "/v1/settings/retention", None)
            .body_json()
            .unwrap()["audit_years"],
        12
    );
    let mut bad = p.clone();
    bad["soft_delete_grace_days"] = json!(0);
    assert_eq!(
        f.as_user(&admin, Put, "/v1/settings/retention", Some(bad))
            .status,
        400
    );
    let mut unknown = p;
    unknown["keep_forever"] = json!(true);
    assert_eq!(
        f.as_user(&admin, Put, "/v1/settings/retention", Some(unknown))
            .status,
        400
    );
}

#[test]
fn retention_sweep_deletes_exactly_what_is_due_and_keeps_holds() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let (held_acct, _) = f.account("held-firm", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let client = |tok: &str, surname: &str, ended: Option<&str>| {
        let mut c = client_body();
        c["surname"] = json!(surname);
        if let Some(e) = ended {
            c["relationship_ended_on"] = json!(e);
        }
        created_id(&f.as_user(tok, Post, "/v1/clients", Some(c)))
    };
    let doc = |tok: &str, client: &str, kind: &str| {
        created_id(&f.as_user(
            tok,
            Post,
            "/v1/documents",
            Some(json!({"client_id": client, "kind": kind, "title": kind})),
        ))
    };
    let active = client(&admin, "Active", None);
    let old = client(&admin, "Old", Some("2019-01-01")); // 6 years after: 2025-01-01, past
    let old_aml = doc(&admin, &old, "aml_evidence");
    let old_doc = doc(&admin, &old, "fact_find");
    let recent = client(&admin, "Recent", Some("2022-06-01")); // AML until 2027, client until 2028
    let recent_aml = doc(&admin, &recent, "aml_evidence");
    let held = client(&admin, "Held", Some("2010-01-01"));
    let held_doc = doc(&admin, &held, "identity");
    assert_eq!(
        f.as_user(
            &admin,
            Put,
            &format!("/v1/clients/{held}/legal-hold"),
            Some(json!({"hold": true}))
        )
        .status,
        200
    );
    let member = f.token(acct, Role::Member);
    assert_eq!(
        f.as_user(
            &member,
            Put,
            &format!("/v1/clients/{active}/legal-hold"),
            Some(json!({"hold": true}))
        )
        .status,
        403
    );
    // Content of a document that will be purged.
    let bearer = format!("Bearer {admin}");
    let up = f.raw(crate::api::http::ApiRequest {
        method: Put,
        path: format!("/v1/documents/{old_doc}/content"),
        query: vec![],
        headers: vec![
            ("authorization".into(), bearer),
            ("content-type".into(), "application/pdf".into()),
        ],
        body: b"%PDF old".to_vec(),
        cf_country: None,
        request_id: "r".into(),
    });
    assert_eq!(up.status, 200);
    assert_eq!(f.blobs.objects.borrow().len(), 1);
    let soft_old = client(&admin, "SoftOld", None);
    assert_eq!(
        f.as_user(&admin, Delete, &format!("/v1/clients/{soft_old}"), None)
            .status,
        204
    );
    f.clock.advance(time::Duration::days(30));
    let admin = f.token(acct, Role::Admin); // the first token has expired meanwhile
    let soft_new = client(&admin, "SoftNew", None);
    assert_eq!(
        f.as_user(&admin, Delete, &format!("/v1/clients/{soft_new}"), None)
            .status,
        204
    );
    // An account on legal hold: nothing of it goes, however old.
    let held_admin = f.token(held_acct, Role::Admin);
    let held_acct_client = client(&held_admin, "AcctHeld", Some("2001-01-01"));
    assert_eq!(
        f.admin(
            Put,
            &format!("/admin/v1/accounts/{held_acct}/legal-hold"),
            Some(json!({"hold": true}))
        )
        .status,
        200
    );
    f.clock.advance(time::Duration::days(10));
    settle(&f);

    let outbox_before = f.count("SHARD_EU_01", "SELECT count(*) FROM outbox");
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(
        run.outcome,
        Outcome::Ok,
        "{:?} {:?}",
        run.counts,
        run.detail
    );
    let exists = |table: &str, id: &str| {
        f.count(
            "SHARD_EU_01",
            &format!("SELECT count(*) FROM {table} WHERE id = '{id}'"),
        ) == 1
    };
    for (id, table, want) in [
        (&active, "clients", true),
        (&old, "clients", false),
        (&old_aml, "documents", false),
        (&old_doc, "documents", false),
        (&recent, "clients", true),
        (&recent_aml, "documents", true),
        (&held, "clients", true),
        (&held_doc, "documents", true),
        (&soft_old, "clients", false),
        (&soft_new, "clients", true),
        (&held_acct_client, "clients", true),
    ] {
        assert_eq!(
            exists(table, id),
            want,
            "{table} {id}: counts {:?}",
            run.counts
        );
    }
    assert_eq!(run.counts.to_json()["clients_deleted"], 2);
    assert_eq!(run.counts.to_json()["documents_deleted"], 2);
    assert_eq!(run.counts.to_json()["contents_deleted"], 1);
    assert!(
        f.blobs.objects.borrow().is_empty(),
        "the purged document's content is gone from R2"
    );
    // Every deletion is a change event (proof of disposition in the audit trail).
    assert_eq!(
        f.count("SHARD_EU_01", "SELECT count(*) FROM outbox") - outbox_before,
        4
    );
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM outbox WHERE body ->> '$.type' LIKE '%.purged'"
        ),
        4
    );
    f.drain_queue();
    let purged_audit = f.count(
        "SHARD_EU_01",
        "SELECT count(*) FROM audit_log WHERE body ->> '$.action' LIKE '%.purged'",
    );
    assert_eq!(
        purged_audit, 0,
        "the sweep's events go out through the relay, not the API's send"
    );
    f.clock.advance(time::Duration::minutes(1));
    block_on(jobs::run(&f, Job::OutboxRelay, None));
    f.drain_queue();
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM audit_log WHERE body ->> '$.action' LIKE '%.purged'"
        ),
        4
    );
    // A second full run finds nothing more to delete.
    let again = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(again.counts.to_json()["deleted"], 0, "{:?}", again.counts);
}

#[test]
fn erasure_erases_personal_data_keeps_what_the_law_requires_and_respects_holds() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let adviser = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/users",
        Some(json!({"email": "ann@acme.example", "display_name": "Ann Adviser", "role": "member"})),
    ));
    let mut c = client_body();
    c["email"] = json!("ada@example.com");
    c["address"] = json!({"line1": "1 Analytical Row", "postcode": "N1 1AA"});
    c["adviser_id"] = json!(adviser);
    let active = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    let ff = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": active, "kind": "fact_find", "title": "FF"})),
    ));
    let aml = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": active, "kind": "aml_evidence", "title": "Passport"})),
    ));
    let mut old = client_body();
    old["relationship_ended_on"] = json!("2015-01-31");
    let old = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(old)));
    let old_doc = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": old, "kind": "aml_evidence", "title": "Old"})),
    ));
    let held = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    f.as_user(
        &admin,
        Put,
        &format!("/v1/clients/{held}/legal-hold"),
        Some(json!({"hold": true})),
    );
    let request = |kind: &str, id: &str| {
        let r = f.as_user(
            &admin,
            Post,
            "/v1/erasure-requests",
            Some(json!({"subject_type": kind, "subject_id": id})),
        );
        assert_eq!(r.status, 202, "{:?}", r.body_json());
        let v = r.body_json().cloned().unwrap();
        assert_eq!(
            v["due_by"], "2026-12-26T09:00:00.000Z",
            "one calendar month"
        );
        v["id"].as_str().unwrap().to_string()
    };
    let member = f.token(acct, Role::Member);
    assert_eq!(
        f.as_user(
            &member,
            Post,
            "/v1/erasure-requests",
            Some(json!({"subject_type": "client", "subject_id": active}))
        )
        .status,
        403
    );
    assert_eq!(
        f.as_user(
            &admin,
            Post,
            "/v1/erasure-requests",
            Some(json!({"subject_type": "client", "subject_id": Uuid::from_u128(9)}))
        )
        .status,
        422
    );
    let r_active = request("client", &active);
    let r_old = request("client", &old);
    let r_held = request("client", &held);
    let r_user = request("user", &adviser);
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(
        run.outcome,
        Outcome::Ok,
        "{:?} {:?}",
        run.counts,
        run.detail
    );
    let exists = |t: &str, id: &str| {
        f.count(
            "SHARD_EU_01",
            &format!("SELECT count(*) FROM {t} WHERE id = '{id}'"),
        ) == 1
    };
    // Active client: the fact find goes; AML evidence stays (MLR), restricted; the client row stays
    // because that evidence refers to it, but without personal data.
    assert!(!exists("documents", &ff) && exists("documents", &aml));
    let v = f
        .as_user(&admin, Get, &format!("/v1/clients/{active}"), None)
        .body_json()
        .cloned()
        .unwrap();
    assert_eq!(
        (v["surname"].clone(), v["forenames"].clone()),
        (json!("[erased]"), json!("[erased]"))
    );
    assert!(
        v.get("email").is_none() && v.get("address").is_none(),
        "{v}"
    );
    let req = |id: &str| {
        f.as_user(&admin, Get, &format!("/v1/erasure-requests/{id}"), None)
            .body_json()
            .cloned()
            .unwrap()
    };
    let ra = req(&r_active);
    assert_eq!(ra["status"], "restricted");
    assert_eq!(ra["outcome"]["restricted"][0]["document_id"], aml);
    // Relationship ended 2015: nothing must be kept, everything goes.
    assert!(!exists("clients", &old) && !exists("documents", &old_doc));
    assert_eq!(req(&r_old)["status"], "completed");
    // A legal hold beats erasure: the request waits.
    assert!(exists("clients", &held));
    assert_eq!(req(&r_held)["status"], "pending");
    // The user is pseudonymised, and clients stop showing the name.
    assert_eq!(req(&r_user)["status"], "completed");
    let u = f.as_user(&admin, Get, &format!("/v1/users/{adviser}"), None);
    assert_eq!(
        u.status, 404,
        "an erased user is also deleted from lists and reads"
    );
    f.clock.advance(time::Duration::minutes(1));
    block_on(jobs::run(&f, Job::OutboxRelay, None));
    settle(&f);
    let v = f
        .as_user(&admin, Get, &format!("/v1/clients/{active}"), None)
        .body_json()
        .cloned()
        .unwrap();
    assert_eq!(v["adviser_name"], serde_json::Value::Null, "{v}");
    // The audit trail records the erasures and still verifies.
    let audit = f.as_user(&admin, Get, "/v1/audit/export", None);
    let text = String::from_utf8(audit.body_bytes()).unwrap();
    assert!(
        text.contains("client.erased")
            && text.contains("document.erased")
            && text.contains("user.erased")
    );
    assert!(
        !text.contains("ada@example.com") && !text.contains("Analytical Row"),
        "no personal data in the audit trail"
    );
    assert_eq!(
        f.as_user(&admin, Get, "/v1/audit/verify", None)
            .body_json()
            .unwrap()["ok"],
        true
    );
}
