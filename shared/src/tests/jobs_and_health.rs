//! Operator-run jobs, the migration check's drift, shard health sampling and usage metering, rebalancing proposals.

use super::*;

#[test]
fn operators_run_any_job_on_demand_with_the_operator_secret() {
    let f = Fake::new();
    let req = |path: &str, auth: &str| crate::api::http::ApiRequest {
        method: Post,
        path: path.into(),
        query: vec![],
        headers: vec![("authorization".into(), format!("Bearer {auth}"))],
        body: vec![],
        cf_country: Default::default(),
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
