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
];

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
                .call(&t, &t.readonly, "GET", "/v1/audit/verify", None, &[])?
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

fn cron_records_run(env: &Env) -> TestResult {
    let before = latest_run(env, "outbox_relay")?.len();
    let r = env
        .client
        .send("GET", "/__scheduled?cron=*+*+*+*+*", &[], None)?;
    expect_status(&r, 200, "trigger cron")?;
    let runs = poll("a recorded relay run", Duration::from_secs(20), || {
        let runs = latest_run(env, "outbox_relay")?;
        Ok((runs.len() > before).then_some(runs))
    })?;
    let run = &runs[0];
    ensure(
        run["cron"] == "* * * * *",
        format!("run records its cron: {run}"),
    )?;
    ensure(run["outcome"] == "ok", format!("relay run outcome: {run}"))
}

fn migration_check_current(env: &Env) -> TestResult {
    let before = latest_run(env, "migration_check")?.len();
    let r = env
        .client
        .send("GET", "/__scheduled?cron=0+*+*+*+*", &[], None)?;
    expect_status(&r, 200, "trigger cron")?;
    let runs = poll(
        "a recorded migration check",
        Duration::from_secs(20),
        || {
            let runs = latest_run(env, "migration_check")?;
            Ok((runs.len() > before).then_some(runs))
        },
    )?;
    let run = &runs[0];
    ensure(
        run["outcome"] == "ok" && run["counts"]["current"] == 4,
        format!("4 databases current: {run}"),
    )
}
