//! The change pipeline over fakes: entity and outbox in one batch, publish, relay, consumer, dead letters, injected faults, cost per write.

use super::*;

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
            ("if-match", "\"v2\""),
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
