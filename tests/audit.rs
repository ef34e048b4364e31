//! The audit trail against an insider, on workerd: a link appended straight into the shard D1
//! with its hash recomputed is never vouched for (the writer records it as unsigned, signed,
//! and carries on) and verify names it; a tail cut below a head the writer anchored in R2 is
//! named as truncation; the hourly checkpoint job signs into the write-once R2 bucket once per
//! period, however often it runs, and verify checks the trail against it.

use integration_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

pub const TESTS: &[NamedTest] = &[(
    "checkpoints_are_signed_once_per_period_into_r2_and_verify_checks_them",
    checkpoints,
)];

/// The insider's tests reach the shard's D1 file from outside the runtime: one at a time.
pub const EXCLUSIVE: &[NamedTest] = &[
    (
        "a_forged_append_is_never_chained_onto_and_verify_names_it",
        forged_append,
    ),
    (
        "a_tail_cut_below_an_anchored_head_is_named_as_truncation",
        truncation,
    ),
];

fn binding_of(shard: &str) -> &'static str {
    match shard {
        "shard-eu-02" => "SHARD_EU_02",
        "shard-ded-01" => "SHARD_DED_01",
        _ => "SHARD_EU_01",
    }
}

fn new_client(env: &Env, t: &TestTenant, surname: &str) -> TestResult {
    let r = env.call(
        t,
        &t.member,
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "A", "surname": surname, "status": "active"})),
        &[],
    )?;
    expect_status(&r, 201, "create client")
}

fn audit_rows(env: &Env, t: &TestTenant) -> Result<usize, String> {
    let r = env.call(t, &t.admin, "GET", "/v1/audit?limit=200", None, &[])?;
    expect_status(&r, 200, "audit list")?;
    Ok(r.json()["items"].as_array().map_or(0, Vec::len))
}

fn verify(env: &Env, t: &TestTenant) -> Result<Value, String> {
    verify_at(env, t, "")
}

fn verify_at(env: &Env, t: &TestTenant, query: &str) -> Result<Value, String> {
    let r = env.call(
        t,
        &t.admin,
        "GET",
        &format!("/v1/audit/verify{query}"),
        None,
        &[],
    )?;
    expect_status(&r, 200, "verify")?;
    Ok(r.json())
}

fn shard_sql(env: &Env, t: &TestTenant, sql: &str) -> Result<Vec<Value>, String> {
    xtask::seed::query(
        env.outside()?,
        binding_of(&t.shard),
        "wrangler/api.jsonc",
        sql,
    )
}

fn forged_append(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    new_client(env, &t, "Genuine")?;
    poll("the first event recorded", Duration::from_secs(60), || {
        Ok((audit_rows(env, &t)? == 1).then_some(()))
    })?;
    // The insider: read the head link, write a second one after it with a correctly
    // recomputed hash, straight into the shard D1 (no trigger stops an append).
    let rows = xtask::seed::query(
        env.outside()?,
        binding_of(&t.shard),
        "wrangler/api.jsonc",
        &format!(
            "SELECT body FROM audit_log WHERE account_id = '{}' ORDER BY seq DESC LIMIT 1",
            t.id
        ),
    )?;
    let head: shared::services::audit::AuditEntry = rows
        .first()
        .and_then(|r| r["body"].as_str())
        .and_then(|b| serde_json::from_str(b).ok())
        .ok_or("no head link")?;
    let mut forged = head.clone();
    forged.seq = head.seq + 1;
    forged.event_id = uuid_like(0xf0);
    forged.action = "client.erased".into();
    forged.prev_hash = head.hash.clone();
    forged.receipt = None;
    forged.hash = forged.compute_hash();
    let body = serde_json::to_string(&forged).map_err(|e| e.to_string())?;
    xtask::seed::query(
        env.outside()?,
        binding_of(&t.shard),
        "wrangler/api.jsonc",
        &format!(
            "INSERT INTO audit_log (account_id, seq, body) VALUES ('{}', {}, '{}')",
            t.id,
            forged.seq,
            body.replace('\'', "''")
        ),
    )?;
    // A genuine change after it: the writer records the forged link as unsigned (its own
    // signed link), then the event; it never vouches for the forged one.
    new_client(env, &t, "After")?;
    poll(
        "the next genuine event recorded",
        Duration::from_secs(90),
        || Ok((audit_rows(env, &t)? == 4).then_some(())),
    )?;
    let own = shard_sql(
        env,
        &t,
        &format!(
            "SELECT body FROM audit_log WHERE account_id = '{}' AND seq = {}",
            t.id,
            forged.seq + 1
        ),
    )?;
    let own = own
        .first()
        .and_then(|r| r["body"].as_str())
        .unwrap_or_default();
    ensure(
        own.contains("audit.unsigned_links")
            && own.contains(&format!("\"unsigned_from\":{}", forged.seq)),
        format!("the writer's own record of the unsigned link: {own}"),
    )?;
    let v = verify(env, &t)?;
    ensure(
        v["ok"] == false
            && v["first_broken"]["seq"] == json!(forged.seq)
            && v["last_good"]["seq"] == json!(head.seq)
            && v["next"]["after_seq"] == json!(forged.seq + 1),
        format!("verify names the forged link and resumes at the writer's record: {v}"),
    )?;
    let rest = verify_at(
        env,
        &t,
        &format!(
            "?after_seq={}&after_hash={}",
            forged.seq + 1,
            v["next"]["after_hash"].as_str().unwrap_or_default()
        ),
    )?;
    ensure(
        rest["first_broken"].is_null() && rest["complete"] == true,
        format!("the links after the writer's record verify: {rest}"),
    )
}

fn truncation(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    for (i, name) in ["One", "Two", "Three"].iter().enumerate() {
        new_client(env, &t, name)?;
        poll("the event recorded", Duration::from_secs(60), || {
            Ok((audit_rows(env, &t)? == i + 1).then_some(()))
        })?;
    }
    // The insider: drop the delete guard, cut the tail to its first link, put the guard back.
    let guard = shard_sql(
        env,
        &t,
        "SELECT sql FROM sqlite_master WHERE name = 'audit_log_no_delete'",
    )?;
    let guard = guard
        .first()
        .and_then(|r| r["sql"].as_str())
        .ok_or("no delete guard")?
        .to_string();
    shard_sql(
        env,
        &t,
        &format!(
            "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE account_id = '{}' AND seq > 1; {guard};",
            t.id
        ),
    )?;
    let v = verify(env, &t)?;
    let named = v["checkpoints"]["findings"].as_array().is_some_and(|f| {
        f.iter()
            .any(|f| f["problem"] == "truncated" && f["trail_head"] == 1)
    });
    ensure(
        v["ok"] == false && named,
        format!("verify names the cut below the anchored head: {v}"),
    )?;
    // The next genuine event: the writer records the cut, signed, and carries on.
    new_client(env, &t, "Four")?;
    poll("the next event recorded", Duration::from_secs(60), || {
        Ok((audit_rows(env, &t)? == 3).then_some(()))
    })?;
    let v = verify(env, &t)?;
    ensure(
        v["ok"] == false
            && v["first_broken"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("the trail was cut")),
        format!("verify names the cut the writer recorded: {v}"),
    )
}

fn checkpoints(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    new_client(env, &t, "Checked")?;
    poll("the event recorded", Duration::from_secs(60), || {
        Ok((audit_rows(env, &t)? == 1).then_some(()))
    })?;
    for run in 0..2 {
        let r = env.admin("POST", "/admin/v1/jobs/audit_checkpoints/run", None)?;
        expect_status(&r, 200, "run audit_checkpoints")?;
        ensure(
            r.json()["outcome"] == "ok" || r.json()["outcome"] == "skipped",
            format!("run {run}: {}", r.text()),
        )?;
    }
    let r = env.call(&t, &t.admin, "GET", "/v1/audit/checkpoints", None, &[])?;
    expect_status(&r, 200, "list checkpoints")?;
    let items = r.json()["items"].as_array().cloned().unwrap_or_default();
    ensure(
        items.len() == 1,
        format!(
            "one checkpoint for the period, however often the job ran: {}",
            r.text()
        ),
    )?;
    let keys = env
        .client
        .json("GET", "/.well-known/audit-keys", None, None, &[])?;
    expect_status(&keys, 200, "published keys")?;
    ensure(
        keys.json()["keys"][0]["key_id"] == items[0]["key_id"],
        format!("signed with a published key: {} {}", keys.text(), r.text()),
    )?;
    let v = verify(env, &t)?;
    ensure(
        v["ok"] == true && v["checkpoints"]["checked"] == 1 && v["checkpoints"]["ok"] == true,
        format!("verify checks the checkpoint: {v}"),
    )
}

fn uuid_like(n: u8) -> uuid::Uuid {
    uuid::Uuid::from_u128(0xf0f0_0000_0000_4000_8000_0000_0000_0000 | u128::from(n))
}
