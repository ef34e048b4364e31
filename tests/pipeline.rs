//! The change-event path and the scheduler, end to end.

use integration_tests::*;
use serde_json::json;
use std::time::Duration;

pub const TESTS: &[NamedTest] = &[
    (
        "api_write_lands_in_the_shard_and_its_event_reaches_the_audit_trail",
        write_reaches_audit,
    ),
    (
        "cron_trigger_reaches_the_scheduler_which_records_a_run",
        cron_records_run,
    ),
    (
        "migration_check_finds_every_local_database_current",
        migration_check_current,
    ),
    (
        "writes_with_injected_send_failures_give_exactly_one_audit_row_each_after_the_relay",
        send_failures_recovered,
    ),
    (
        "duplicate_delivery_and_consumer_crashes_append_each_event_once",
        duplicates_append_once,
    ),
    (
        "poison_message_ends_as_a_dead_letters_row_and_can_be_replayed",
        poison_dead_letter,
    ),
    (
        "renaming_a_group_updates_every_one_of_its_clients",
        group_rename_reaches_clients,
    ),
    ("operators_run_a_job_on_demand", run_job_on_demand),
    (
        "retention_run_keeps_everything_still_within_retention",
        retention_cron,
    ),
];

/// Every audit entry of a tenant (admin token), through the list endpoint's pages.
fn audit_entries(env: &Env, t: &TestTenant) -> Result<Vec<serde_json::Value>, String> {
    let mut out = Vec::new();
    let mut path = "/v1/audit?limit=200".to_string();
    loop {
        let r = env.call(t, &t.admin, "GET", &path, None, &[])?;
        expect_status(&r, 200, "audit page")?;
        let j = r.json();
        out.extend(j["items"].as_array().cloned().unwrap_or_default());
        match j["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/audit?limit=200&cursor={c}"),
            None => return Ok(out),
        }
    }
}

fn exactly_once(env: &Env, t: &TestTenant, n: usize, relay: bool) -> TestResult {
    let entries = poll(&format!("{n} audit rows"), Duration::from_secs(60), || {
        if relay {
            env.client
                .send("GET", "/__scheduled?cron=*+*+*+*+*", &[], None)?;
        }
        let e = audit_entries(env, t)?;
        Ok((e.len() >= n).then_some(e))
    })?;
    let mut ids: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    ids.sort();
    ids.dedup();
    ensure(
        entries.len() == n && ids.len() == n,
        format!(
            "{} rows, {} distinct events, want {n}",
            entries.len(),
            ids.len()
        ),
    )?;
    let v = env
        .call(t, &t.admin, "GET", "/v1/audit/verify", None, &[])?
        .json();
    ensure(
        v["ok"] == true && v["checked"] == n,
        format!("chain verifies: {v}"),
    )
}

fn set_faults(env: &Env, t: &TestTenant, faults: serde_json::Value) -> TestResult {
    let r = env.admin(
        "PUT",
        &format!("/admin/v1/accounts/{}/faults", t.id),
        Some(&faults),
    )?;
    expect_status(&r, 200, "set faults")
}

fn send_failures_recovered(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    set_faults(env, &t, json!({"queue_send_rate": 0.5}))?;
    let n = 20;
    for i in 0..n {
        let r = env.call(
            &t,
            &t.member,
            "POST",
            "/v1/clients",
            Some(&json!({"forenames": "F", "surname": format!("S{i}"), "status": "active"})),
            &[],
        )?;
        expect_status(&r, 201, "write with faults")?;
    }
    exactly_once(env, &t, n, true)
}

fn duplicates_append_once(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    set_faults(
        env,
        &t,
        json!({"consumer_retry_rate": 0.3, "duplicate_delivery": true}),
    )?;
    let n = 10;
    for i in 0..n {
        let r = env.call(
            &t,
            &t.member,
            "POST",
            "/v1/clients",
            Some(&json!({"forenames": "D", "surname": format!("S{i}"), "status": "active"})),
            &[],
        )?;
        expect_status(&r, 201, "write")?;
    }
    exactly_once(env, &t, n, false)
}

fn poison_dead_letter(env: &Env) -> TestResult {
    let marker = unique("poison");
    let r = env.admin(
        "POST",
        "/admin/v1/change-events",
        Some(&json!({"garbage": marker})),
    )?;
    expect_status(&r, 202, "inject")?;
    let dl = poll("the dead letter", Duration::from_secs(30), || {
        let r = env.admin("GET", "/admin/v1/dead-letters?limit=200", None)?;
        Ok(r.json()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|i| i["message"]["garbage"] == marker.as_str()))
    })?;
    ensure(
        dl["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not a change event")),
        format!("reason recorded: {dl}"),
    )?;
    let id = dl["id"].as_str().unwrap_or_default();
    let r = env.admin("POST", &format!("/admin/v1/dead-letters/{id}/replay"), None)?;
    expect_status(&r, 200, "replay")?;
    ensure(r.json()["replay_count"] == 1, "replay counted")
}

fn write_reaches_audit(env: &Env) -> TestResult {
    for shard in [None, Some("shard-ded-01")] {
        let t = env.tenant(shard)?;
        let r = env.call(
            &t,
            &t.member,
            "POST",
            "/v1/clients",
            Some(&json!({"forenames": "Ada", "surname": "Lovelace", "status": "active"})),
            &[],
        )?;
        expect_status(&r, 201, "create client")?;
        let id = r.json()["id"].as_str().unwrap_or_default().to_string();
        let bookmark = r.header("x-d1-bookmark").unwrap_or_default().to_string();
        ensure(!bookmark.is_empty(), "writes return x-d1-bookmark")?;
        let g = env.call(
            &t,
            &t.readonly,
            "GET",
            &format!("/v1/clients/{id}"),
            None,
            &[("x-d1-bookmark", &bookmark)],
        )?;
        expect_status(&g, 200, "read after write")?;
        ensure(g.json()["surname"] == "Lovelace", "the row is in the shard")?;
        // The consumer appends the event to the tenant's audit chain.
        let v = poll("the audit row", Duration::from_secs(30), || {
            let v = env
                .call(&t, &t.admin, "GET", "/v1/audit/verify", None, &[])?
                .json();
            Ok((v["checked"].as_u64() == Some(1)).then_some(v))
        })?;
        ensure(
            v["ok"] == true && v["head_seq"] == 1,
            format!("chain verifies: {v}"),
        )?;
    }
    Ok(())
}

fn latest_run(env: &Env, job: &str) -> Result<Vec<serde_json::Value>, String> {
    let r = env.admin("GET", &format!("/admin/v1/job-runs?job={job}"), None)?;
    expect_status(&r, 200, "job runs")?;
    Ok(r.json()["items"].as_array().cloned().unwrap_or_default())
}

/// Fire `cron` until the scheduler records a run of `job` that ended `ok`, within `deadline`.
/// Every run records its cron. A run may end `partial` when another process on the local stack
/// (a parallel test's `wrangler d1 execute` seed) holds a database's SQLite lock; the scheduler's
/// answer to that is the next tick, and so is this helper's. A job that never ends `ok` fails.
fn cron_until_ok(
    env: &Env,
    job: &str,
    cron: &str,
    deadline: Duration,
) -> Result<serde_json::Value, String> {
    let started = std::time::Instant::now();
    let mut runs_seen = latest_run(env, job)?.len();
    let query = cron.replace(' ', "+");
    let mut last = serde_json::Value::Null;
    while started.elapsed() < deadline {
        let r = env
            .client
            .send("GET", &format!("/__scheduled?cron={query}"), &[], None)?;
        expect_status(&r, 200, "trigger cron")?;
        let runs = poll(
            &format!("a recorded {job} run"),
            Duration::from_secs(30),
            || {
                let runs = latest_run(env, job)?;
                Ok((runs.len() > runs_seen).then_some(runs))
            },
        )?;
        runs_seen = runs.len();
        last = runs[0].clone();
        ensure(
            last["cron"] == cron,
            format!("run records its cron: {last}"),
        )?;
        if last["outcome"] == "ok" {
            return Ok(last);
        }
    }
    Err(format!(
        "no {job} run ended ok within {deadline:?}; last: {last}"
    ))
}

fn cron_records_run(env: &Env) -> TestResult {
    cron_until_ok(env, "outbox_relay", "* * * * *", Duration::from_secs(60)).map(|_| ())
}

fn migration_check_current(env: &Env) -> TestResult {
    let run = cron_until_ok(env, "migration_check", "0 * * * *", Duration::from_secs(60))?;
    ensure(
        run["counts"]["current"] == 4,
        format!("4 databases current: {run}"),
    )
}

fn group_rename_reaches_clients(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let g = env.call(
        &t,
        &t.admin,
        "POST",
        "/v1/groups",
        Some(&json!({"name": "Bristol"})),
        &[],
    )?;
    expect_status(&g, 201, "group")?;
    let gid = g.json()["id"].as_str().unwrap_or_default().to_string();
    for i in 0..5 {
        let r = env.call(&t, &t.member, "POST", "/v1/clients", Some(&json!({"forenames": "G", "surname": format!("R{i}"), "status": "active", "group_id": gid})), &[])?;
        expect_status(&r, 201, "client")?;
    }
    let names = |env: &Env| -> Result<Vec<serde_json::Value>, String> {
        let r = env.call(
            &t,
            &t.member,
            "GET",
            &format!("/v1/clients?group_id={gid}"),
            None,
            &[],
        )?;
        Ok(r.json()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| c["group_name"].clone())
            .collect())
    };
    poll(
        "clients named after their group",
        Duration::from_secs(30),
        || {
            let n = names(env)?;
            Ok((n.len() == 5 && n.iter().all(|x| x == "Bristol")).then_some(()))
        },
    )?;
    let r = env.call(
        &t,
        &t.admin,
        "PATCH",
        &format!("/v1/groups/{gid}"),
        Some(&json!({"name": "Bristol & Bath"})),
        &[],
    )?;
    expect_status(&r, 200, "rename")?;
    poll("every client renamed", Duration::from_secs(90), || {
        let n = names(env)?;
        Ok((n.len() == 5 && n.iter().all(|x| x == "Bristol & Bath")).then_some(()))
    })
}

fn run_job_on_demand(env: &Env) -> TestResult {
    let r = env.admin("POST", "/admin/v1/jobs/migration_check/run", None)?;
    expect_status(&r, 200, "run migration_check")?;
    let run = r.json();
    ensure(
        run["outcome"] == "ok" && run["counts"]["current"] == 4 && run["cron"].is_null(),
        format!("on-demand run: {run}"),
    )?;
    let r = env.client.json(
        "POST",
        "/admin/v1/jobs/migration_check/run",
        Some("not-the-secret"),
        None,
        &[("host", "ops.localhost")],
    )?;
    expect_status(&r, 401, "wrong secret")
}

fn shard_health_cron(env: &Env) -> TestResult {
    let run = cron_until_ok(env, "shard_health", "*/15 * * * *", Duration::from_secs(60))?;
    ensure(run["counts"]["sampled"] == 3, format!("health run: {run}"))?;
    for shard in ["shard-eu-01", "shard-eu-02", "shard-ded-01"] {
        let h = env.admin(
            "GET",
            &format!("/admin/v1/shards/{shard}/health?limit=1"),
            None,
        )?;
        expect_status(&h, 200, "health")?;
        let s = h.json()["items"][0].clone();
        ensure(
            s["size_bytes"].as_u64().is_some_and(|b| b > 0)
                && s["capacity_bytes"] == 10_000_000_000u64,
            format!("{shard}: {s}"),
        )?;
    }
    let p = env.admin("GET", "/admin/v1/rebalance-proposals", None)?;
    expect_status(&p, 200, "proposals")?;
    ensure(
        p.json()["items"].as_array().is_some_and(|a| a.is_empty()),
        "tiny local shards need no rebalancing",
    )?;
    oversized_tenant_gets_a_proposal(env)
}

/// The seeded oversized tenant puts shard-eu-02 above its soft cap: the health job must propose
/// moving it, the proposal applied must bring every shard under its soft cap, and it must be
/// emitted as a platform event. (Part of the health test: both read the same open proposals.)
fn oversized_tenant_gets_a_proposal(env: &Env) -> TestResult {
    use xtask::seed;
    seed::oversized_scenario(env.outside()?)?;
    let result = (|| -> TestResult {
        let r = env.admin("POST", "/admin/v1/jobs/shard_health/run", None)?;
        expect_status(&r, 200, "run shard health")?;
        ensure(
            r.json()["counts"]["proposals_new"].as_u64() >= Some(1),
            format!("{}", r.json()),
        )?;
        let p = env.admin("GET", "/admin/v1/rebalance-proposals", None)?;
        let items = p.json()["items"].as_array().cloned().unwrap_or_default();
        let proposals: Vec<&serde_json::Value> = items.iter().map(|i| &i["proposal"]).collect();
        let names_tenant = |p: &&serde_json::Value| {
            p["account_id"] == seed::OVERSIZED_ACCOUNT
                && ((p["kind"] == "move" && p["from_shard"] == seed::OVERSIZED_SHARD)
                    || (p["kind"] == "dedicated" && p["shard_id"] == seed::OVERSIZED_SHARD))
        };
        ensure(
            proposals.iter().any(names_tenant),
            format!(
                "the oversized tenant moved off {} or given its own shard: {items:?}",
                seed::OVERSIZED_SHARD
            ),
        )?;
        ensure(
            !proposals.iter().any(|p| p["kind"] == "provision_shard"),
            format!("room enough without a new shared shard: {items:?}"),
        )?;
        // Applied: every shard's latest size, minus what leaves (moves and tenants going to a
        // dedicated shard), plus what arrives, is under 70% of its registered capacity.
        for shard in ["shard-eu-01", "shard-eu-02", "shard-ded-01"] {
            let h = env.admin(
                "GET",
                &format!("/admin/v1/shards/{shard}/health?limit=1"),
                None,
            )?;
            let s = h.json()["items"][0].clone();
            let size = s["size_bytes"].as_u64().unwrap_or(u64::MAX) as i128;
            let tenant_bytes = |a: &serde_json::Value| -> i128 {
                s["accounts"]
                    .as_array()
                    .and_then(|v| v.iter().find(|x| x["account_id"] == *a))
                    .and_then(|x| x["bytes"].as_u64())
                    .unwrap_or(0) as i128
            };
            let delta: i128 = proposals
                .iter()
                .map(|p| match p["kind"].as_str() {
                    Some("move") if p["from_shard"] == shard => {
                        -(p["bytes"].as_u64().unwrap_or(0) as i128)
                    }
                    Some("move") if p["to_shard"] == shard => {
                        p["bytes"].as_u64().unwrap_or(0) as i128
                    }
                    Some("dedicated") if p["shard_id"] == shard => -tenant_bytes(&p["account_id"]),
                    _ => 0,
                })
                .sum();
            let cap = s["capacity_bytes"].as_u64().unwrap_or(0) as i128;
            ensure(
                (size + delta) * 10 < cap * 7,
                format!(
                    "{shard} after the proposals: {} of {cap} bytes",
                    size + delta
                ),
            )?;
        }
        // Emitted: the consumer records the platform event.
        poll(
            "the proposal's platform event",
            Duration::from_secs(30),
            || {
                let e = env.admin(
                    "GET",
                    "/admin/v1/platform-events?type=platform.rebalance_proposal.created",
                    None,
                )?;
                Ok(e.json()["items"]
                    .as_array()
                    .is_some_and(|a| {
                        a.iter()
                            .any(|e| e["data"]["proposal"]["account_id"] == seed::OVERSIZED_ACCOUNT)
                    })
                    .then_some(()))
            },
        )
    })();
    // Give the shard its capacity back whatever happened, then re-plan: nothing left to propose.
    seed::restore_capacity(env.outside()?, seed::OVERSIZED_SHARD)?;
    result?;
    let r = env.admin("POST", "/admin/v1/jobs/shard_health/run", None)?;
    expect_status(&r, 200, "run shard health again")?;
    let p = env.admin("GET", "/admin/v1/rebalance-proposals", None)?;
    ensure(
        p.json()["items"].as_array().is_some_and(|a| a.is_empty()),
        format!("capacity restored, proposals superseded: {}", p.json()),
    )
}

fn retention_cron(env: &Env) -> TestResult {
    // Nothing this stack's tests create is old enough: the sweep must run and delete nothing
    // that is still within its retention (soft-deleted minutes ago, active clients).
    let t = env.tenant(None)?;
    let id = {
        let r = env.call(
            &t,
            &t.member,
            "POST",
            "/v1/clients",
            Some(&json!({"forenames": "R", "surname": "Keep", "status": "active"})),
            &[],
        )?;
        expect_status(&r, 201, "client")?;
        r.json()["id"].as_str().unwrap_or_default().to_string()
    };
    let gone = env.call(
        &t,
        &t.member,
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "R", "surname": "Soft", "status": "active"})),
        &[],
    )?;
    let gone_id = gone.json()["id"].as_str().unwrap_or_default().to_string();
    expect_status(
        &env.call(
            &t,
            &t.member,
            "DELETE",
            &format!("/v1/clients/{gone_id}"),
            None,
            &[],
        )?,
        204,
        "soft delete",
    )?;
    // Runs are bounded and resumable: a partial run (another test's sweep holding a shard,
    // a transient local D1 error) is followed by the next one until a cycle completes.
    let run = retention_until_ok(env)?;
    ensure(run["outcome"] == "ok", format!("retention run: {run}"))?;
    expect_status(
        &env.call(
            &t,
            &t.member,
            "GET",
            &format!("/v1/clients/{id}"),
            None,
            &[],
        )?,
        200,
        "active client kept",
    )?;
    // The soft-deleted one is within its 30-day grace: still there for an undo or the audit.
    let audit = env.call(
        &t,
        &t.admin,
        "GET",
        &format!("/v1/audit?target_type=clients&target_id={gone_id}"),
        None,
        &[],
    )?;
    expect_status(&audit, 200, "audit of the soft-deleted client")?;
    ensure(
        !audit.text().contains("client.purged"),
        "nothing purged inside the grace period",
    )
}

fn seeded_retention(env: &Env) -> TestResult {
    use xtask::seed;
    seed::retention_scenario(env.outside()?)?;
    let t = TestTenant {
        id: seed::ACCOUNT.into(),
        shard: seed::SHARD.into(),
        admin: env.token(seed::ACCOUNT, "admin")?,
        member: env.token(seed::ACCOUNT, "member")?,
        readonly: env.token(seed::ACCOUNT, "readonly")?,
        host: None,
    };
    let r = retention_until_ok(env)?;
    ensure(r["outcome"] == "ok", format!("retention run: {r}"))?;
    let req = env.call(
        &t,
        &t.admin,
        "GET",
        &format!("/v1/erasure-requests/{}", seed::ERASURE_REQUEST),
        None,
        &[],
    )?;
    ensure(
        req.json()["status"] == "completed",
        format!("erasure request: {}", req.text()),
    )?;
    // Each deletion is an audited change event: wait for the relay and the consumer.
    let targets: Vec<(&str, &str, bool)> = seed::CLIENTS
        .iter()
        .map(|(id, deleted, _)| ("clients", *id, *deleted))
        .chain(
            seed::DOCUMENTS
                .iter()
                .map(|(id, _, _, deleted)| ("documents", *id, *deleted)),
        )
        .collect();
    let disposed = |ty: &str, id: &str| -> Result<bool, String> {
        let r = env.call(
            &t,
            &t.admin,
            "GET",
            &format!("/v1/audit?target_type={ty}&target_id={id}"),
            None,
            &[],
        )?;
        Ok(r.text().contains(".purged") || r.text().contains(".erased"))
    };
    poll(
        "audit rows for every disposed row",
        Duration::from_secs(60),
        || {
            env.client
                .send("GET", "/__scheduled?cron=*+*+*+*+*", &[], None)?;
            for (ty, id, deleted) in &targets {
                if *deleted && !disposed(ty, id)? {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )?;
    for (ty, id, deleted) in &targets {
        ensure(
            disposed(ty, id)? == *deleted,
            format!("{ty} {id}: disposed should be {deleted}"),
        )?;
        if !*deleted && *ty == "documents" {
            expect_status(
                &env.call(&t, &t.admin, "GET", &format!("/v1/{ty}/{id}"), None, &[])?,
                200,
                "kept document",
            )?;
        }
    }
    // The kept, live clients still read; the chain with the disposals verifies.
    for id in [seed::CLIENTS[1].0, seed::CLIENTS[2].0] {
        expect_status(
            &env.call(&t, &t.admin, "GET", &format!("/v1/clients/{id}"), None, &[])?,
            200,
            "kept client",
        )?;
    }
    let v = env
        .call(&t, &t.admin, "GET", "/v1/audit/verify", None, &[])?
        .json();
    ensure(v["ok"] == true, format!("chain: {v}"))
}

/// Run after the others, one at a time: they seed a shard through `wrangler d1 execute` or
/// change its schema.
pub const EXCLUSIVE: &[NamedTest] = &[
    (
        "a_drifted_shard_is_reported_and_refuses_writes_until_repaired",
        drifted_shard,
    ),
    (
        "health_cron_samples_every_shard_and_plans",
        shard_health_cron,
    ),
    (
        "seeded_retention_data_loses_exactly_its_expired_rows_and_keeps_the_rest",
        seeded_retention,
    ),
];

fn migration_run(env: &Env) -> Result<serde_json::Value, String> {
    let r = env.admin("POST", "/admin/v1/jobs/migration_check/run", None)?;
    expect_status(&r, 200, "run migration check")?;
    Ok(r.json())
}

fn drifted_shard(env: &Env) -> TestResult {
    let t = env.tenant(Some("shard-eu-02"))?;
    let write = |surname: &str| {
        env.call(
            &t,
            &t.member,
            "POST",
            "/v1/clients",
            Some(&json!({"forenames": "D", "surname": surname, "status": "active"})),
            &[],
        )
    };
    expect_status(&write("Before")?, 201, "write before drift")?;
    // Someone changed the schema by hand: an object no migration made.
    xtask::seed::execute(
        env.outside()?,
        "SHARD_EU_02",
        "wrangler/api.jsonc",
        "CREATE TABLE rogue_by_hand (x TEXT);",
    )?;
    let result = (|| -> TestResult {
        let run = migration_run(env)?;
        ensure(
            run["outcome"] == "partial"
                && run["counts"]["drifted"] == 1
                && run["detail"].as_array().is_some_and(|d| {
                    d.iter().any(|l| {
                        l.as_str()
                            .is_some_and(|l| l.starts_with("SHARD_EU_02: schema fingerprint"))
                    })
                }),
            format!("shard-eu-02 reported drifted: {run}"),
        )?;
        let shards = env.admin("GET", "/admin/v1/shards", None)?;
        let status = shards.json()["items"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == "shard-eu-02").cloned())
            .unwrap_or_default();
        ensure(
            status["schema"]["status"] == "drifted",
            format!("marked in the registry: {status}"),
        )?;
        // The API sees the mark when its route cache refreshes (30 s): writes 503, reads 200.
        let refused = poll("writes refused with 503", Duration::from_secs(90), || {
            let r = write("During")?;
            Ok((r.status == 503).then_some(r))
        })?;
        ensure(
            refused
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/problem+json")),
            "503 is problem+json",
        )?;
        expect_status(
            &env.call(&t, &t.member, "GET", "/v1/clients", None, &[])?,
            200,
            "reads still served",
        )
    })();
    // Repair whatever happened, and check that the shard comes back.
    xtask::seed::execute(
        env.outside()?,
        "SHARD_EU_02",
        "wrangler/api.jsonc",
        "DROP TABLE IF EXISTS rogue_by_hand;",
    )?;
    let run = migration_run(env)?;
    result?;
    ensure(
        run["outcome"] == "ok" && run["counts"]["current"] == 4,
        format!("repaired: {run}"),
    )?;
    poll("writes accepted again", Duration::from_secs(90), || {
        Ok((write("After")?.status == 201).then_some(()))
    })
}

/// Run the retention job until a run completes its cycle (at most 5 runs).
fn retention_until_ok(env: &Env) -> Result<serde_json::Value, String> {
    let mut last = serde_json::Value::Null;
    for _ in 0..5 {
        let r = env.admin("POST", "/admin/v1/jobs/retention/run", None)?;
        expect_status(&r, 200, "run retention")?;
        last = r.json();
        if last["outcome"] == "ok" {
            break;
        }
    }
    Ok(last)
}
