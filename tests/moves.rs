//! Tenant moves on workerd (issue 15): a tenant with thousands of rows moves between the two
//! local shared shards, through cleanup, while a client keeps writing and reading; then no
//! write is lost, no row is duplicated, no read failed (writes may meet the brief 503 with
//! Retry-After), the audit trail verifies on the target and the source holds nothing of it.

use integration_tests::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TESTS: &[NamedTest] = &[(
    "a_tenant_moves_between_shards_under_load_without_losing_or_splitting_a_write",
    move_under_load,
)];

const SEEDED: u32 = 3000;

/// The tenant's rows on a shard, all tables.
fn rows_on(env: &Env, binding: &str, account: &str) -> Result<i64, String> {
    let tables = [
        "groups",
        "users",
        "clients",
        "documents",
        "erasure_requests",
        "idempotency_keys",
        "account_usage",
        "outbox",
        "audit_disposals",
        "audit_log",
        "audit_checkpoint_heads",
        "audit_checkpoints",
    ];
    let sql = tables
        .iter()
        .map(|t| format!("(SELECT count(*) FROM {t} WHERE account_id = '{account}')"))
        .collect::<Vec<_>>()
        .join(" + ");
    let r = xtask::seed::query(
        env.outside()?,
        binding,
        "wrangler/api.jsonc",
        &format!("SELECT {sql} AS n"),
    )?;
    r.first()
        .and_then(|r| r["n"].as_i64())
        .ok_or_else(|| format!("no count: {r:?}"))
}

#[derive(Default)]
struct Tally {
    created: Vec<String>,
    patched: BTreeMap<String, String>,
    write_503: u64,
    failed_writes: Vec<String>,
    reads: u64,
    failed_reads: Vec<String>,
}

fn move_under_load(env: &Env) -> TestResult {
    let t = env.tenant(Some("shard-eu-01"))?;
    ensure(t.shard == "shard-eu-01", "tenant placed on shard-eu-01")?;
    // Thousands of rows, straight into the source D1.
    let prefix = format!("{:08x}", std::process::id() ^ 0x5eed_0000);
    xtask::seed::execute(
        env.outside()?,
        "SHARD_EU_01",
        "wrangler/api.jsonc",
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SEEDED}) \
             INSERT INTO clients (account_id, id, body) SELECT '{acct}', \
             printf('{prefix}-0000-4000-8000-%012d', i), json_object('forenames', 'Seed', \
             'surname', printf('S%05d', i), 'status', 'active', 'version', 1, \
             'created_at', '2026-01-01T00:00:00.000Z', 'updated_at', '2026-01-01T00:00:00.000Z') FROM n;",
            acct = t.id
        ),
    )?;
    let seeded_id = move |i: u32| format!("{prefix}-0000-4000-8000-{i:012}");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let base = env.client.base().to_string();
    // The writer: creates, and patches of what it created, as fast as it can.
    let writer = {
        let (tally, stop, token, base) =
            (tally.clone(), stop.clone(), t.admin.clone(), base.clone());
        std::thread::spawn(move || {
            let c = Client::new(&base);
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let created = tally.lock().map(|t| t.created.clone()).unwrap_or_default();
                let (method, path, body) = if n % 2 == 1 || created.is_empty() {
                    (
                        "POST",
                        "/v1/clients".to_string(),
                        json!({"forenames": "W", "surname": format!("W{n}"), "status": "active"}),
                    )
                } else {
                    let id = &created[(n as usize / 2) % created.len()];
                    (
                        "PATCH",
                        format!("/v1/clients/{id}"),
                        json!({"forenames": format!("P{n}")}),
                    )
                };
                loop {
                    let r = c.json(method, &path, Some(&token), Some(&body), &[]);
                    let mut g = match tally.lock() {
                        Ok(g) => g,
                        Err(_) => return,
                    };
                    match r {
                        Ok(r) if r.status == 503 && r.header("retry-after").is_some() => {
                            g.write_503 += 1;
                            drop(g);
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                        Ok(r)
                            if (r.status == 201 && method == "POST")
                                || (r.status == 200 && method == "PATCH") =>
                        {
                            if method == "POST" {
                                g.created
                                    .push(r.json()["id"].as_str().unwrap_or_default().to_string());
                            } else {
                                g.patched.insert(
                                    path.rsplit('/').next().unwrap_or_default().to_string(),
                                    body["forenames"].as_str().unwrap_or_default().to_string(),
                                );
                            }
                        }
                        Ok(r) => g.failed_writes.push(format!(
                            "{method} {path}: {} {}",
                            r.status,
                            r.text()
                        )),
                        Err(e) => g.failed_writes.push(format!("{method} {path}: {e}")),
                    }
                    break;
                }
            }
        })
    };
    // The reader: single rows (seeded ones) and list pages.
    let reader = {
        let (tally, stop, token, base) =
            (tally.clone(), stop.clone(), t.member.clone(), base.clone());
        std::thread::spawn(move || {
            let c = Client::new(&base);
            let mut i = 0u32;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let path = if i.is_multiple_of(4) {
                    "/v1/clients?limit=50".to_string()
                } else {
                    format!("/v1/clients/{}", seeded_id(1 + (i * 37) % SEEDED))
                };
                let r = c.json("GET", &path, Some(&token), None, &[]);
                let Ok(mut g) = tally.lock() else { return };
                g.reads += 1;
                match r {
                    Ok(r) if r.status == 200 => {}
                    Ok(r) => g
                        .failed_reads
                        .push(format!("GET {path}: {} {}", r.status, r.text())),
                    Err(e) => g.failed_reads.push(format!("GET {path}: {e}")),
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let r = env.admin(
        "POST",
        "/admin/v1/moves",
        Some(&json!({"account_id": t.id, "target_shard": "shard-eu-02", "grace_seconds": 6})),
    );
    let result = (|| -> Result<Value, String> {
        let r = r?;
        expect_status(&r, 201, "start the move")?;
        let id = r.json()["id"].as_str().unwrap_or_default().to_string();
        poll("the move to finish", Duration::from_secs(300), || {
            let s = env.admin("POST", &format!("/admin/v1/moves/{id}/step"), None)?;
            expect_status(&s, 200, "step")?;
            let m = s.json()["move"].clone();
            match m["phase"].as_str() {
                Some("done") => Ok(Some(m)),
                Some("failed" | "cancelled") => Err(format!("the move ended {}", m)),
                _ => Ok(None),
            }
        })
    })();
    // Keep the load on a little past the end (stale routes, the new shard).
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let _ = writer.join();
    let _ = reader.join();
    let m = result?;
    let elapsed = started.elapsed();
    let g = tally.lock().map_err(|_| "tally poisoned")?;
    eprintln!(
        "move done in {elapsed:?}: fenced {} ms; {} creates, {} patched rows, {} writes met 503, {} reads",
        m["fenced_ms"], g.created.len(), g.patched.len(), g.write_503, g.reads
    );
    ensure(
        g.failed_writes.is_empty(),
        format!(
            "failed writes: {:?}",
            &g.failed_writes[..g.failed_writes.len().min(5)]
        ),
    )?;
    ensure(
        g.failed_reads.is_empty(),
        format!(
            "failed reads: {:?}",
            &g.failed_reads[..g.failed_reads.len().min(5)]
        ),
    )?;
    ensure(
        g.created.len() > 10 && g.reads > 10,
        "the client kept writing and reading",
    )?;
    let acct = env.admin("GET", &format!("/admin/v1/accounts/{}", t.id), None)?;
    ensure(
        acct.json()["db_shard_id"] == "shard-eu-02",
        format!("route: {}", acct.text()),
    )?;
    // Every write is there, once, as last written.
    for id in &g.created {
        let r = env.call(
            &t,
            &t.member,
            "GET",
            &format!("/v1/clients/{id}"),
            None,
            &[],
        )?;
        expect_status(&r, 200, &format!("lost write {id}"))?;
    }
    for (id, value) in &g.patched {
        let r = env.call(
            &t,
            &t.member,
            "GET",
            &format!("/v1/clients/{id}"),
            None,
            &[],
        )?;
        ensure(
            r.json()["forenames"] == value.as_str(),
            format!("lost patch of {id}: {} != {value}", r.json()["forenames"]),
        )?;
    }
    let mut seen = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(c) => format!("/v1/clients?limit=200&cursor={c}"),
            None => "/v1/clients?limit=200".to_string(),
        };
        let r = env.call(&t, &t.member, "GET", &q, None, &[])?;
        expect_status(&r, 200, "list")?;
        for it in r.json()["items"].as_array().cloned().unwrap_or_default() {
            let id = it["id"].as_str().unwrap_or_default().to_string();
            ensure(seen.insert(id.clone()), format!("duplicated row {id}"))?;
        }
        match r.json()["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => after = Some(c.to_string()),
            _ => break,
        }
    }
    let want = SEEDED as usize + g.created.len();
    ensure(
        seen.len() == want,
        format!("{} rows listed, {want} written", seen.len()),
    )?;
    // The trail verifies on the target, once the consumer has recorded every write.
    poll(
        "the audit trail to verify complete",
        Duration::from_secs(120),
        || {
            let v = env.call(&t, &t.admin, "GET", "/v1/audit/verify", None, &[])?;
            let v = v.json();
            if !v["first_broken"].is_null() {
                return Err(format!("audit chain broken: {v}"));
            }
            Ok((v["complete"] == true
                && v["checked"].as_u64().unwrap_or(0) as usize >= g.created.len())
            .then_some(()))
        },
    )?;
    let left = rows_on(env, "SHARD_EU_01", &t.id)?;
    ensure(
        left == 0,
        format!("{left} rows of the tenant left on the source"),
    )
}
