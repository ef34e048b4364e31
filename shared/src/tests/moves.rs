//! Tenant moves (issue 15) over fakes: a move carries every table through to cleanup, writes
//! during the copy and catch-up are carried, the fence refuses writes (503 Retry-After) while
//! reads go on, a stale route after the flip is refused by the source and retried on the
//! target, a crash after any step resumes, a stale run cannot write, a difference stops the
//! move, cancel rolls back, and the operator API's refusals.

use super::*;
use crate::domain::clock::Clock;
use crate::domain::moves::{Move, Phase, Stage};
use crate::services::moves::{self as svc, Ctx, MoveError};
use crate::store::moves::TABLES;
use serde_json::Value;

const SRC: &str = "SHARD_EU_01";
const DST: &str = "SHARD_EU_02";

struct World {
    f: Fake,
    acct: Uuid,
    admin: String,
    clients: Vec<String>,
}

/// An account on shard-eu-01 with groups, users, clients, documents, an idempotent create and
/// an audit trail.
fn world(clients: usize) -> World {
    let f = Fake::new();
    let (acct, shard) = f.account("movers", Some("shard-eu-01"));
    assert_eq!(shard, "shard-eu-01");
    let admin = f.token(acct, Role::Admin);
    let group = created_id(&f.as_user(&admin, Post, "/v1/groups", Some(json!({"name": "Leeds"}))));
    let user = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/users",
        Some(json!({"email": "a@m.example", "display_name": "Alex", "role": "member", "group_id": group})),
    ));
    let mut ids = vec![];
    for i in 0..clients {
        let mut c = client_body();
        c["surname"] = json!(format!("S{i:04}"));
        c["group_id"] = json!(group);
        c["adviser_id"] = json!(user);
        let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
        if i % 3 == 0 {
            created_id(&f.as_user(
                &admin,
                Post,
                "/v1/documents",
                Some(json!({"client_id": id, "kind": "fact_find", "title": "t"})),
            ));
        }
        ids.push(id);
    }
    let r = f.call(
        Post,
        "/v1/clients",
        &[
            ("authorization", &format!("Bearer {admin}")),
            ("idempotency-key", "k-1"),
        ],
        Some(client_body()),
    );
    assert_eq!(r.status, 201);
    settle(&f);
    World {
        f,
        acct,
        admin,
        clients: ids,
    }
}

fn start(w: &World, target: &str, grace: i64) -> Uuid {
    let r = w.f.admin(
        Post,
        "/admin/v1/moves",
        Some(json!({"account_id": w.acct, "target_shard": target, "grace_seconds": grace})),
    );
    assert_eq!(r.status, 201, "{:?}", r.body_json());
    Uuid::parse_str(r.body_json().unwrap()["id"].as_str().unwrap()).unwrap()
}

fn load(w: &World, id: Uuid) -> Move {
    block_on(svc::load(&*w.f.accounts, id)).unwrap().unwrap()
}

/// A registered shard's (binding, tier).
fn registered(w: &World, shard: &str) -> (String, String) {
    let r = block_on(crate::ports::Database::query(
        &*w.f.accounts,
        crate::store::registry::shard_stmt(shard),
    ))
    .unwrap();
    let b = crate::ports::col_json(r.first().unwrap(), "body").unwrap();
    (
        b["binding"].as_str().unwrap().to_string(),
        b["tier"].as_str().unwrap().to_string(),
    )
}

/// One step as the scheduler runs it, with lease token `token`, on the move's shards.
fn step_with(w: &World, id: Uuid, token: i64) -> Result<svc::Stepped, MoveError> {
    let mut m = load(w, id);
    let (src, src_tier) = registered(w, &m.source_shard);
    let (dst, dst_tier) = registered(w, &m.target_shard);
    let c = Ctx {
        accounts: &*w.f.accounts,
        source: &*w.f.shards[&src],
        target: &*w.f.shards[&dst],
        source_tier: src_tier,
        target_tier: dst_tier,
        token,
        now: w.f.clock.now(),
    };
    block_on(svc::step(&c, &mut m))
}

fn step(w: &World, id: Uuid) -> svc::Stepped {
    let s = step_with(w, id, 1).unwrap();
    // The consumer keeps recording the source's events (the drain waits for it).
    settle(&w.f);
    // A step that waits (the grace period, at least `MIN_GRACE_SECONDS`) lets a second pass.
    if matches!(s, svc::Stepped::Waiting(_)) {
        w.f.clock.advance(time::Duration::seconds(1));
    }
    s
}

/// Step until `done` holds for the move (at most `n` steps).
fn step_until(w: &World, id: Uuid, n: usize, done: impl Fn(&Move) -> bool) -> Move {
    for _ in 0..n {
        let m = load(w, id);
        if done(&m) {
            return m;
        }
        step(w, id);
        w.f.clock.advance(time::Duration::milliseconds(100));
    }
    let m = load(w, id);
    assert!(done(&m), "not reached in {n} steps: {m:?}");
    m
}

fn rows(f: &Fake, binding: &str, table: &str, acct: Uuid) -> Vec<(String, String)> {
    let key = TABLES
        .iter()
        .find(|t| t.name == table)
        .map(|t| t.key)
        .unwrap_or("account_id");
    let r = block_on(crate::ports::Database::query(
        &*f.shards[binding],
        crate::ports::Stmt::new(
            format!("SELECT CAST({key} AS TEXT) AS k, body FROM {table} WHERE account_id = ?1 ORDER BY {key}"),
            vec![json!(acct)],
        ),
    ))
    .unwrap();
    r.rows
        .iter()
        .map(|r| {
            (
                r["k"].as_str().unwrap_or_default().to_string(),
                r["body"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn tenant_rows(f: &Fake, binding: &str, acct: Uuid) -> usize {
    let mut names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    names.push("audit_checkpoints");
    names.iter().map(|t| rows(f, binding, t, acct).len()).sum()
}

fn db_shard(w: &World) -> String {
    let r =
        w.f.admin(Get, &format!("/admin/v1/accounts/{}", w.acct), None);
    r.body_json().unwrap()["db_shard_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn verify_ok(w: &World) {
    let v = w.f.as_user(&w.admin, Get, "/v1/audit/verify", None);
    let v = v.body_json().cloned().unwrap_or_default();
    assert_eq!(
        (v["first_broken"].clone(), v["complete"].clone()),
        (Value::Null, json!(true)),
        "{v}"
    );
}

fn done(m: &Move) -> bool {
    m.phase == Phase::Done
}

#[test]
fn a_tenant_moves_with_every_table_and_the_source_ends_empty() {
    let w = world(30);
    let before: Vec<_> = TABLES
        .iter()
        .map(|t| rows(&w.f, SRC, t.name, w.acct))
        .collect();
    let id = start(&w, "shard-eu-02", 0);
    let m = step_until(&w, id, 200, done);
    assert_eq!(db_shard(&w), "shard-eu-02");
    // The target holds what the source held (and the source's events of the move itself: none).
    for (t, b) in TABLES.iter().zip(&before) {
        if t.name == "account_usage" {
            continue;
        }
        let after = rows(&w.f, DST, t.name, w.acct);
        assert_eq!(after.len(), b.len(), "{}", t.name);
    }
    assert_eq!(
        tenant_rows(&w.f, SRC, w.acct),
        0,
        "the source keeps nothing of the tenant"
    );
    assert!(m.fenced_ms.is_some() && m.audit_head.is_some(), "{m:?}");
    assert!(
        m.tables["clients"].source_rows >= 31
            && m.tables["clients"].source_digest == m.tables["clients"].target_digest
    );
    // The phases, in order, each once.
    let seen: Vec<Phase> = m.history.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        seen,
        [
            Phase::Planned,
            Phase::Copying,
            Phase::CatchingUp,
            Phase::Verifying,
            Phase::Cutover,
            Phase::Cleanup,
            Phase::Done
        ]
    );
    // Life goes on, on the target.
    w.f.clock.advance(time::Duration::seconds(10));
    let r = w.f.as_user(
        &w.admin,
        Patch,
        &format!("/v1/clients/{}", w.clients[0]),
        Some(json!({"status": "former"})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    settle(&w.f);
    verify_ok(&w);
    assert_eq!(
        w.f.as_user(&w.admin, Get, "/v1/clients?limit=200", None)
            .body_json()
            .unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        31
    );
}

#[test]
fn writes_during_copy_and_catch_up_all_reach_the_target() {
    let w = world(60);
    let id = start(&w, "shard-eu-02", 0);
    let mut written = vec![];
    for i in 0..400 {
        let m = load(&w, id);
        if m.phase >= Phase::Verifying {
            break;
        }
        // A create and a patch between every step.
        let c = created_id(&w.f.as_user(
            &w.admin,
            Post,
            "/v1/clients",
            Some(json!({"forenames": "N", "surname": format!("New{i}"), "status": "active"})),
        ));
        let target = &w.clients[i % w.clients.len()];
        let r = w.f.as_user(
            &w.admin,
            Patch,
            &format!("/v1/clients/{target}"),
            Some(json!({"forenames": format!("F{i}")})),
        );
        assert_eq!(r.status, 200);
        written.push((c, target.clone(), format!("F{i}")));
        step(&w, id);
    }
    let m = step_until(&w, id, 200, done);
    assert!(m.passes >= 2, "{m:?}");
    assert_eq!(db_shard(&w), "shard-eu-02");
    w.f.clock.advance(time::Duration::seconds(10));
    for (created, _, _) in &written {
        let r =
            w.f.as_user(&w.admin, Get, &format!("/v1/clients/{created}"), None);
        assert_eq!(r.status, 200, "lost write {created}");
    }
    let mut last = std::collections::BTreeMap::new();
    for (_, patched, value) in &written {
        last.insert(patched.clone(), value.clone());
    }
    for (id, value) in last {
        let r =
            w.f.as_user(&w.admin, Get, &format!("/v1/clients/{id}"), None);
        assert_eq!(
            r.body_json().unwrap()["forenames"],
            json!(value),
            "lost patch of {id}"
        );
    }
    assert_eq!(tenant_rows(&w.f, SRC, w.acct), 0);
    verify_ok(&w);
}

#[test]
fn while_the_source_is_fenced_writes_answer_503_with_retry_after_and_reads_go_on() {
    let w = world(5);
    let id = start(&w, "shard-eu-02", 0);
    step_until(&w, id, 100, |m| {
        m.phase == Phase::Verifying && m.stage != Stage::Fence
    });
    let path = format!("/v1/clients/{}", w.clients[1]);
    let r =
        w.f.as_user(&w.admin, Patch, &path, Some(json!({"status": "former"})));
    assert_eq!(r.status, 503, "{:?}", r.body_json());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(
        r.body_json().unwrap()["type"]
            .as_str()
            .map(|t| t.ends_with("tenant-moving")),
        Some(true)
    );
    assert_eq!(w.f.as_user(&w.admin, Get, &path, None).status, 200);
    let r =
        w.f.as_user(&w.admin, Post, "/v1/clients", Some(client_body()));
    assert_eq!(r.status, 503);
    // Nothing of the refused writes landed anywhere.
    assert_eq!(
        w.f.as_user(&w.admin, Get, &path, None).body_json().unwrap()["status"],
        "active"
    );
    let m = step_until(&w, id, 100, done);
    assert!(m.fenced_ms.unwrap() >= 0);
    assert_eq!(tenant_rows(&w.f, SRC, w.acct), 0);
}

#[test]
fn a_stale_route_after_the_flip_is_refused_by_the_source_and_the_write_lands_on_the_target() {
    let w = world(5);
    // The isolate caches the route to shard-eu-01.
    assert_eq!(w.f.as_user(&w.admin, Get, "/v1/clients", None).status, 200);
    let id = start(&w, "shard-eu-02", 3600);
    step_until(&w, id, 100, |m| {
        m.phase == Phase::Cleanup && m.stage != Stage::Fence
    });
    assert_eq!(db_shard(&w), "shard-eu-02");
    // Within the route cache's interval: the cached route still says shard-eu-01.
    let path = format!("/v1/clients/{}", w.clients[2]);
    let r =
        w.f.as_user(&w.admin, Patch, &path, Some(json!({"forenames": "Moved"})));
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let on = |b: &str| {
        rows(&w.f, b, "clients", w.acct)
            .into_iter()
            .find(|(k, _)| *k == w.clients[2])
            .map(|(_, b)| b)
            .unwrap_or_default()
    };
    assert!(on(DST).contains("Moved"), "the write is on the target");
    assert!(
        !on(SRC).contains("Moved"),
        "the source's copy never changed"
    );
    // Directly: the write protocol on the source is refused inside its batch.
    let patch = || {
        direct_write(
            &w,
            SRC,
            &w.clients[2],
            "shard-eu-01",
            Edit::MergePatch(json!({"forenames": "Stale"})),
        )
    };
    let e = patch();
    assert!(
        matches!(e, Err(crate::ports::StoreError::Fenced(_))),
        "{e:?} {}",
        on(SRC)
    );
    assert!(!on(SRC).contains("Stale"));
    // After cleanup too (the source's fence stays for good).
    w.f.clock.advance(time::Duration::seconds(3601));
    step_until(&w, id, 100, done);
    // The row is gone from the source: an update finds nothing; a create is refused.
    assert_eq!(patch(), Ok(None));
    let e = direct_write(
        &w,
        SRC,
        &Uuid::from_u128(0x5eed).to_string(),
        "shard-eu-01",
        Edit::Insert(client_body()),
    );
    assert!(
        matches!(e, Err(crate::ports::StoreError::Fenced(_))),
        "{e:?}"
    );
    assert_eq!(tenant_rows(&w.f, SRC, w.acct), 0);
}

/// Crash after every step in turn (the step's work done, its save of the move row lost), then
/// run on: the move converges to the same end whichever step was lost.
#[test]
fn a_crash_after_any_step_resumes_and_converges() {
    let mut k = 0;
    loop {
        let w = world(12);
        let id = start(&w, "shard-eu-02", 0);
        for _ in 0..k {
            step(&w, id);
        }
        let before = load(&w, id);
        if before.phase == Phase::Done {
            break;
        }
        step(&w, id);
        let after = load(&w, id);
        // The flip commits with the move row (one batch): a crash there loses both or neither.
        if !(after.phase == Phase::Cutover && before.phase == Phase::Verifying) {
            block_on(crate::ports::Database::query(
                &*w.f.accounts,
                crate::ports::Stmt::new(
                    "UPDATE moves SET body = ?2 WHERE id = ?1",
                    vec![
                        json!(id),
                        json!(serde_json::to_string(&Move {
                            rev: after.rev,
                            ..before.clone()
                        })
                        .unwrap()),
                    ],
                ),
            ))
            .unwrap();
        }
        // Writes go on meanwhile (refused only while fenced).
        let _ = w.f.as_user(
            &w.admin,
            Patch,
            &format!("/v1/clients/{}", w.clients[0]),
            Some(json!({"forenames": format!("K{k}")})),
        );
        settle(&w.f);
        let m = step_until(&w, id, 300, done);
        assert_eq!(db_shard(&w), "shard-eu-02", "crash after step {k}");
        assert_eq!(
            tenant_rows(&w.f, SRC, w.acct),
            0,
            "crash after step {k}: {m:?}"
        );
        w.f.clock.advance(time::Duration::seconds(10));
        let got = w.f.as_user(
            &w.admin,
            Get,
            &format!("/v1/clients/{}", w.clients[0]),
            None,
        );
        let f = got.body_json().unwrap()["forenames"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            f == format!("K{k}") || f == "Ada",
            "crash after step {k}: {f}"
        );
        verify_ok(&w);
        k += 1;
        assert!(k < 200);
    }
    assert!(k > 6, "every phase had a crash: {k} steps");
}

/// A step killed after it fenced the source and before its save: the redo finds its own fence
/// and counts the fenced window from the fence's time, not from the redo's.
#[test]
fn a_crash_after_fencing_the_source_still_counts_the_whole_fenced_window() {
    let w = world(3);
    let id = start(&w, "shard-eu-02", 0);
    let before = step_until(&w, id, 100, |m| {
        m.phase == Phase::Verifying && m.pre_verified && m.stage == Stage::Fence
    });
    step(&w, id);
    let fenced = load(&w, id);
    assert_eq!(fenced.stage, Stage::Drain, "{fenced:?}");
    let at = fence_on(&w, SRC).unwrap()["at"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fenced.fenced_at.as_deref(), Some(at.as_str()));
    // The save is lost; the run resumes 30 s later (its lease expired).
    block_on(crate::ports::Database::query(
        &*w.f.accounts,
        crate::ports::Stmt::new(
            "UPDATE moves SET body = ?2 WHERE id = ?1",
            vec![json!(id), json!(serde_json::to_string(&before).unwrap())],
        ),
    ))
    .unwrap();
    w.f.clock.advance(time::Duration::seconds(30));
    let m = step_until(&w, id, 100, |m| m.phase == Phase::Cutover || done(m));
    assert_eq!(m.fenced_at.as_deref(), Some(at.as_str()), "{m:?}");
    assert!(m.fenced_ms.unwrap() >= 30_000, "{:?}", m.fenced_ms);
}

#[test]
fn a_run_whose_lease_was_taken_over_writes_nothing_on_the_target() {
    let w = world(5);
    let id = start(&w, "shard-eu-02", 0);
    step(&w, id); // planned -> copying, the target fenced for token 1
                  // A newer run (token 7) takes the move over.
    assert!(step_with(&w, id, 7).is_ok());
    let copied = tenant_rows(&w.f, DST, w.acct);
    let e = step_with(&w, id, 1).unwrap_err();
    assert!(matches!(e, MoveError::FenceLost(1)), "{e:?}");
    assert_eq!(tenant_rows(&w.f, DST, w.acct), copied);
}

#[test]
fn a_difference_found_by_verify_fails_the_move_naming_the_row_and_rolls_back() {
    let w = world(5);
    let id = start(&w, "shard-eu-02", 0);
    // Before the full verify (it runs before the fence; the fenced part re-checks only what
    // the source's change log names).
    step_until(&w, id, 100, |m| {
        m.phase == Phase::Verifying && !m.pre_verified
    });
    // Someone changes the target's copy behind the move's back.
    block_on(crate::ports::Database::query(
        &*w.f.shards[DST],
        crate::ports::Stmt::new(
            "UPDATE clients SET body = json_set(body, '$.surname', 'Tampered') WHERE account_id = ?1 AND id = ?2",
            vec![json!(w.acct), json!(w.clients[3])],
        ),
    ))
    .unwrap();
    let m = step_until(&w, id, 100, |m| m.phase.is_terminal());
    assert_eq!(m.phase, Phase::Failed);
    assert!(
        m.differences.contains(&format!("clients/{}", w.clients[3])),
        "{m:?}"
    );
    assert_eq!(db_shard(&w), "shard-eu-01");
    assert_eq!(
        tenant_rows(&w.f, DST, w.acct),
        0,
        "the target's copy is gone"
    );
    let r = w.f.as_user(
        &w.admin,
        Patch,
        &format!("/v1/clients/{}", w.clients[3]),
        Some(json!({"status": "former"})),
    );
    assert_eq!(r.status, 200, "the source takes writes again");
}

#[test]
fn cancel_rolls_back_until_cleanup_and_is_refused_after() {
    let w = world(8);
    let id = start(&w, "shard-eu-02", 3600);
    step_until(&w, id, 100, |m| m.phase == Phase::CatchingUp);
    let r =
        w.f.admin(Post, &format!("/admin/v1/moves/{id}/cancel"), None);
    assert_eq!(r.status, 202, "{:?}", r.body_json());
    let m = step_until(&w, id, 100, |m| m.phase.is_terminal());
    assert_eq!(m.phase, Phase::Cancelled);
    assert_eq!(tenant_rows(&w.f, DST, w.acct), 0);
    assert_eq!(w.f.count(DST, "SELECT count(*) FROM tenant_fences"), 0);
    assert_eq!(w.f.count(SRC, "SELECT count(*) FROM tenant_fences"), 0);
    assert_eq!(db_shard(&w), "shard-eu-01");
    // Cancelled in cutover (flipped, the target still fenced): the route comes back.
    let id = start(&w, "shard-eu-02", 3600);
    step_until(&w, id, 100, |m| m.phase == Phase::Cutover);
    assert_eq!(db_shard(&w), "shard-eu-02");
    assert_eq!(
        w.f.admin(Post, &format!("/admin/v1/moves/{id}/cancel"), None)
            .status,
        202
    );
    let m = step_until(&w, id, 100, |m| m.phase.is_terminal());
    assert_eq!(m.phase, Phase::Cancelled);
    assert_eq!(db_shard(&w), "shard-eu-01");
    assert_eq!(tenant_rows(&w.f, DST, w.acct), 0);
    w.f.clock.advance(time::Duration::seconds(10));
    let r = w.f.as_user(
        &w.admin,
        Patch,
        &format!("/v1/clients/{}", w.clients[0]),
        Some(json!({"status": "former"})),
    );
    assert_eq!(r.status, 200);
    // Once cleanup has started, too late.
    let id = start(&w, "shard-eu-02", 3600);
    step_until(&w, id, 100, |m| m.phase == Phase::Cleanup);
    let r =
        w.f.admin(Post, &format!("/admin/v1/moves/{id}/cancel"), None);
    assert_eq!(r.status, 409);
}

#[test]
fn the_operator_api_plans_refuses_and_drives_moves() {
    let w = world(4);
    let dry = w.f.admin(
        Post,
        "/admin/v1/moves",
        Some(json!({"account_id": w.acct, "target_shard": "shard-eu-02", "dry_run": true})),
    );
    assert_eq!(dry.status, 200, "{:?}", dry.body_json());
    let plan = &dry.body_json().unwrap()["plan"];
    assert!(
        plan["rows"].as_u64().unwrap() > 5 && plan["bytes"].as_u64().unwrap() > 0,
        "{plan}"
    );
    assert!(plan["estimated_seconds"].is_number());
    assert_eq!(
        w.f.admin(Get, "/admin/v1/moves", None).body_json().unwrap()["items"],
        json!([])
    );
    // Onto its own shard: refused.
    let r = w.f.admin(
        Post,
        "/admin/v1/moves",
        Some(json!({"account_id": w.acct, "target_shard": "shard-eu-01"})),
    );
    assert_eq!(r.status, 409);
    let id = start(&w, "shard-eu-02", 0);
    // One move in flight per tenant.
    let r = w.f.admin(
        Post,
        "/admin/v1/moves",
        Some(json!({"account_id": w.acct, "target_shard": "shard-ded-01"})),
    );
    assert_eq!(r.status, 409, "{:?}", r.body_json());
    // Driven through the scheduler's job (service binding), recorded as a job run.
    for _ in 0..20 {
        let r = w.f.admin(Post, &format!("/admin/v1/moves/{id}/step"), None);
        assert_eq!(r.status, 200, "{:?}", r.body_json());
        settle(&w.f);
        w.f.clock.advance(time::Duration::seconds(1));
        if r.body_json().unwrap()["move"]["phase"] == "done" {
            break;
        }
    }
    let m = w.f.admin(Get, &format!("/admin/v1/moves/{id}"), None);
    assert_eq!(
        m.body_json().unwrap()["phase"],
        "done",
        "{:?}",
        m.body_json()
    );
    let events: Vec<Value> = w.f.platform_events.sent.borrow().clone();
    let phases: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == crate::jobs::moves::MOVE_PHASE_CHANGED)
        .filter_map(|e| e["data"]["phase"].as_str())
        .collect();
    assert_eq!(
        phases,
        [
            "copying",
            "catching_up",
            "verifying",
            "cutover",
            "cleanup",
            "done"
        ]
    );
    // The cleanup is in the platform audit trail, as the system's.
    let trail = w.f.admin(Get, "/admin/v1/audit?limit=1000", None);
    let items = trail.body_json().unwrap()["items"]
        .as_array()
        .unwrap()
        .clone();
    assert!(items
        .iter()
        .any(|e| e["action"] == "move.cleanup" && e["operator"]["via"] == "system"));
    assert!(items.iter().any(|e| e["action"] == "move.create"));
}

/// `step?steps=1`: the scheduler's run takes exactly one step of the move (an operator, or the
/// workerd crash test, sees and can interrupt every step); out of range is a 400.
#[test]
fn the_operator_steps_a_move_one_step_at_a_time() {
    let w = world(4);
    let id = start(&w, "shard-eu-02", 0);
    for bad in ["0", "41", "x"] {
        let r = w.f.admin(
            Post,
            &format!("/admin/v1/moves/{id}/step?steps={bad}"),
            None,
        );
        assert_eq!(r.status, 400, "steps={bad}: {:?}", r.body_json());
    }
    assert_eq!(
        load(&w, id).phase,
        Phase::Planned,
        "a refused step did nothing"
    );
    let mut seen = vec![Phase::Planned];
    for _ in 0..60 {
        let before = load(&w, id);
        if before.phase == Phase::Done {
            break;
        }
        let r =
            w.f.admin(Post, &format!("/admin/v1/moves/{id}/step?steps=1"), None);
        assert_eq!(r.status, 200, "{:?}", r.body_json());
        assert_eq!(
            r.body_json().unwrap()["run"]["counts"]["steps"],
            json!(1),
            "{:?}",
            r.body_json()
        );
        let after = load(&w, id);
        assert_eq!(after.rev, before.rev + 1, "one step, one save");
        if seen.last() != Some(&after.phase) {
            seen.push(after.phase);
        }
        settle(&w.f);
        w.f.clock.advance(time::Duration::seconds(1));
    }
    // Every phase entered on a step of its own, as the move's history records them.
    let history: Vec<Phase> = load(&w, id).history.iter().map(|(p, _)| *p).collect();
    assert_eq!(seen, history);
    assert_eq!(
        (seen.len(), seen.last()),
        (7, Some(&Phase::Done)),
        "{seen:?}"
    );
}

#[test]
fn a_move_into_a_shard_above_its_soft_cap_is_refused() {
    let w = world(2);
    block_on(crate::ports::Database::query(
        &*w.f.accounts,
        crate::ports::Stmt::new(
            "UPDATE shards SET body = json_set(body, '$.capacity_bytes', 4096) WHERE id = 'shard-eu-02'",
            vec![],
        ),
    ))
    .unwrap();
    block_on(jobs::run(&w.f, Job::ShardHealth, None));
    let r = w.f.admin(
        Post,
        "/admin/v1/moves",
        Some(json!({"account_id": w.acct, "target_shard": "shard-eu-02"})),
    );
    assert_eq!(r.status, 409, "{:?}", r.body_json());
    assert!(r.body_json().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("soft cap"));
}

#[test]
fn every_shard_table_with_tenant_rows_is_carried_by_a_move() {
    let f = Fake::new();
    let r = block_on(crate::ports::Database::query(
        &*f.shards[SRC],
        crate::ports::Stmt::new(
            "SELECT m.name AS name FROM sqlite_master m WHERE m.type = 'table' AND EXISTS \
             (SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = 'account_id')",
            vec![],
        ),
    ))
    .unwrap();
    for row in &r.rows {
        let name = row["name"].as_str().unwrap();
        assert!(
            TABLES.iter().any(|t| t.name == name)
                || crate::store::moves::NOT_COPIED.contains(&name),
            "shard table {name} is not carried by a move"
        );
    }
}

#[test]
fn the_moves_job_stays_within_one_invocations_d1_calls_and_still_finishes_the_move() {
    use crate::jobs::moves::{step_fits, D1_CALLS_PER_INVOCATION};
    use crate::jobs::report::RunReport;
    // The rule: a step as costly as the costliest so far must fit, with room for bookkeeping.
    assert!(step_fits(0, 0));
    assert!(step_fits(700, 200));
    assert!(!step_fits(800, 200));
    assert!(!step_fits(D1_CALLS_PER_INVOCATION, 0));
    let w = world(30);
    // Enough rows that one run's 40 steps would pass the budget: seeded straight into the source.
    w.f.shard_db(SRC)
        .exec(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 16000) \
             INSERT INTO clients (account_id, id, body) SELECT '{}', \
             printf('5eed0000-0000-4000-8000-%012d', i), json_object('forenames', 'Seed', \
             'surname', printf('S%05d', i), 'status', 'active', 'version', 1, \
             'created_at', '2026-01-01T00:00:00.000Z', 'updated_at', '2026-01-01T00:00:00.000Z') FROM n",
            w.acct
        ))
        .unwrap();
    let r = w.f.admin(
        Post,
        "/admin/v1/moves",
        Some(json!({"account_id": w.acct, "target_shard": "shard-eu-02", "grace_seconds": 0})),
    );
    assert_eq!(r.status, 201, "{:?}", r.body_json());
    let id = r.body_json().cloned().unwrap_or_default()["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (mut runs, mut most, mut stops) = (0, 0, 0);
    loop {
        let run = block_on(jobs::run(&w.f, Job::Moves, None));
        let RunReport::Moves(c) = &run.counts else {
            panic!("not a moves report: {run:?}")
        };
        most = most.max(c.d1_calls.unwrap_or(0));
        stops += c.budget_stops.unwrap_or(0);
        runs += 1;
        let m = w.f.admin(Get, &format!("/admin/v1/moves/{id}"), None);
        let phase = m.body_json().cloned().unwrap_or_default()["phase"].clone();
        if phase == "done" {
            break;
        }
        assert!(runs < 100, "the move did not finish: {phase}");
        assert_ne!(phase, "failed", "{:?}", m.body_json());
        w.f.clock.advance(time::Duration::seconds(120));
    }
    eprintln!("{runs} runs, at most {most} D1 calls in one, {stops} budget stops");
    assert!(most > 0 && most <= D1_CALLS_PER_INVOCATION, "{most}");
    assert!(stops > 0, "a run of this size meets the budget");
    assert_eq!(
        tenant_rows(&w.f, SRC, w.acct),
        0,
        "cleanup emptied the source"
    );
}

/// Promotion (issue 15 item 7): a new dedicated shard is registered `provisioning`; a move
/// into it copies and catches up but waits before fencing the source, the tenant writing on
/// meanwhile; an operator activates it once the migration check found its schema current
/// (audited, refused before and after), and the move then cuts over and fills it.
#[test]
fn a_move_into_a_provisioning_dedicated_shard_fills_it_and_cuts_over_only_once_activated() {
    let w = world(8);
    w.f.accounts
        .exec(
            "UPDATE shards SET body = json_remove(json_set(body, '$.status', 'provisioning'), \
             '$.schema') WHERE id = 'shard-ded-01'",
        )
        .unwrap();
    let ded = "SHARD_DED_01";
    let id = start(&w, "shard-ded-01", 0);
    let m = step_until(&w, id, 200, |m| m.phase == Phase::Verifying);
    assert_eq!(m.stage, Stage::Fence);
    for _ in 0..5 {
        assert!(
            matches!(step(&w, id), svc::Stepped::Waiting(why) if why.contains("provisioning")),
            "{:?}",
            load(&w, id)
        );
    }
    assert_eq!(load(&w, id).stage, Stage::Fence, "the source is not fenced");
    assert_eq!(w.f.count(SRC, "SELECT count(*) FROM tenant_fences"), 0);
    assert_eq!(db_shard(&w), "shard-eu-01");
    assert!(
        tenant_rows(&w.f, ded, w.acct) > 0,
        "the new shard is filled"
    );
    let path = format!("/v1/clients/{}", w.clients[0]);
    let r =
        w.f.as_user(&w.admin, Patch, &path, Some(json!({"forenames": "Still"})));
    assert_eq!(
        r.status, 200,
        "the tenant writes on while the shard provisions"
    );
    settle(&w.f);

    // Not before the migration check has seen its schema.
    let activate = "/admin/v1/shards/shard-ded-01/activate";
    let r = w.f.admin(Post, activate, None);
    assert_eq!(r.status, 409, "{:?}", r.body_json());
    assert_eq!(
        w.f.admin(Post, "/admin/v1/shards/shard-ded-09/activate", None)
            .status,
        404
    );
    let r = w.f.admin(Post, "/admin/v1/jobs/migration_check/run", None);
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let r = w.f.admin(Post, activate, None);
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    assert_eq!(r.body_json().unwrap()["status"], "active");
    assert_eq!(w.f.admin(Post, activate, None).status, 409, "only once");
    let audit = w.f.admin(Get, "/admin/v1/audit?limit=200", None);
    let actions: Vec<String> = audit.body_json().unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(
        actions.iter().filter(|a| *a == "shard.activate").count() >= 3,
        "{actions:?}"
    );

    let m = step_until(&w, id, 200, done);
    assert!(m.fenced_ms.is_some());
    assert_eq!(db_shard(&w), "shard-ded-01");
    let acct =
        w.f.admin(Get, &format!("/admin/v1/accounts/{}", w.acct), None);
    assert_eq!(acct.body_json().unwrap()["tier"], "dedicated");
    assert_eq!(tenant_rows(&w.f, SRC, w.acct), 0);
    assert!(rows(&w.f, ded, "clients", w.acct)
        .iter()
        .any(|(k, b)| *k == w.clients[0] && b.contains("Still")));
}

/// Bookmarks name their shard (`{shard id}:{D1 bookmark}`): after a move, the old shard's
/// bookmark is never handed to the new shard's database (the session starts `first-primary`),
/// and the request succeeds; the new shard's own bookmark is honoured as it is.
#[test]
fn a_bookmark_from_the_old_shard_is_not_passed_to_the_new_shard_after_a_move() {
    let w = world(3);
    let path = format!("/v1/clients/{}", w.clients[0]);
    let with = |method, b: &str, body| {
        w.f.call(
            method,
            &path,
            &[
                ("authorization", &format!("Bearer {}", w.admin)),
                ("x-d1-bookmark", b),
            ],
            body,
        )
    };
    let started = || w.f.session_starts.borrow().last().cloned().unwrap();
    let old = w.f.as_user(&w.admin, Get, &path, None);
    let old = old.header("x-d1-bookmark").unwrap().to_string();
    let (shard, d1) = old.split_once(':').unwrap();
    assert_eq!(shard, "shard-eu-01", "{old}");
    assert_eq!(with(Get, &old, None).status, 200);
    assert_eq!(started(), (SRC.to_string(), Some(d1.to_string())));

    let id = start(&w, "shard-eu-02", 0);
    step_until(&w, id, 200, done);
    w.f.clock.advance(time::Duration::seconds(10));
    let r = with(Get, &old, None);
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    assert_eq!(started(), (DST.to_string(), Some("first-primary".into())));
    let new = r.header("x-d1-bookmark").unwrap().to_string();
    assert!(new.starts_with("shard-eu-02:"), "{new}");
    let r = with(Patch, &old, Some(json!({"forenames": "After"})));
    assert_eq!(
        r.status,
        200,
        "a write with the old bookmark: {:?}",
        r.body_json()
    );
    assert_eq!(started(), (DST.to_string(), Some("first-primary".into())));
    assert_eq!(with(Get, &new, None).status, 200);
    assert_eq!(
        started(),
        (
            DST.to_string(),
            new.split_once(':').map(|(_, b)| b.to_string())
        )
    );
    // A bookmark naming no shard (handed out before they named one): never passed on either.
    assert_eq!(with(Get, d1, None).status, 200);
    assert_eq!(started().1.as_deref(), Some("first-primary"));
    assert_eq!(with(Get, "first-unconstrained", None).status, 200);
    assert_eq!(started().1.as_deref(), Some("first-unconstrained"));
    // A settings read with the old bookmark still answers with one of the new shard.
    let s = w.f.call(
        Get,
        "/v1/settings/retention",
        &[
            ("authorization", &format!("Bearer {}", w.admin)),
            ("x-d1-bookmark", &old),
        ],
        None,
    );
    assert_eq!(s.status, 200);
    assert!(
        s.header("x-d1-bookmark")
            .is_some_and(|b| b.starts_with("shard-eu-02:")),
        "{:?}",
        s.headers
    );
    // Shapes that cannot be bookmarks are still a 400.
    for bad in ["shard-eu-02:", "Shard:00ff", "shard-eu-02:00FF", ":00ff"] {
        assert_eq!(with(Get, bad, None).status, 400, "{bad}");
    }
}

use crate::services::changes::Edit;

fn fresh_id() -> String {
    Uuid::from_u128(0xa0a).to_string()
}

fn fence_on(w: &World, binding: &str) -> Option<Value> {
    let r = block_on(crate::ports::Database::query(
        &*w.f.shards[binding],
        crate::store::moves::fence(w.acct),
    ))
    .unwrap();
    r.first().and_then(|r| crate::ports::col_json(r, "body"))
}

/// A write through the write protocol straight to `binding`'s database (what an isolate with
/// a stale route to that shard would send) of `client`.
fn direct_write(
    w: &World,
    binding: &str,
    client: &str,
    shard: &str,
    edit: Edit,
) -> Result<Option<crate::services::changes::Landed>, crate::ports::StoreError> {
    let id = Uuid::parse_str(client).unwrap();
    let ev = crate::domain::event::ChangeEvent::new(
        Uuid::from_u128(0xab + w.f.clock.now().unix_timestamp() as u128),
        START,
        &crate::domain::event::Origin {
            deployment: "d",
            shard_id: shard,
            account_id: w.acct,
            actor: crate::domain::event::Actor::System { id: "stale".into() },
            request_id: "r",
        },
        crate::domain::event::Change {
            entity_type: "clients",
            entity_singular: "client",
            entity_id: id,
            action: crate::domain::event::Action::Updated,
            entity_version: 0,
            changed_fields: vec![],
        },
    );
    let wr = crate::services::changes::Write {
        table: "clients",
        id,
        edit,
        expect: crate::services::changes::Expect::Any,
        live_only: true,
        event: ev,
        with: vec![],
    };
    block_on(crate::services::changes::commit(&*w.f.shards[binding], &wr))
}

/// A -> B -> A: the `moved` fence the first move left on A becomes the second move's target
/// fence and goes at its cleanup, so the tenant writes on A again; B is fenced `moved` for
/// good, so a stale route to B cannot write there. Rolled back instead, the second move gives
/// A its `moved` fence back.
#[test]
fn a_tenant_moved_away_and_back_writes_on_its_first_shard_again_and_not_on_the_second() {
    let w = world(6);
    let there = start(&w, "shard-eu-02", 0);
    step_until(&w, there, 200, done);
    assert_eq!(fence_on(&w, SRC).unwrap()["state"], "moved");
    w.f.clock.advance(time::Duration::seconds(10));
    let path = format!("/v1/clients/{}", w.clients[1]);
    let r =
        w.f.as_user(&w.admin, Patch, &path, Some(json!({"forenames": "OnB"})));
    assert_eq!(r.status, 200);
    settle(&w.f);

    // Rolled back: A gets its `moved` fence back (a stale route to A still cannot write).
    let back = start(&w, "shard-eu-01", 0);
    step_until(&w, back, 50, |m| m.phase == Phase::Copying);
    assert_eq!(fence_on(&w, SRC).unwrap()["role"], "target");
    let r =
        w.f.admin(Post, &format!("/admin/v1/moves/{back}/cancel"), None);
    assert_eq!(r.status, 202, "{:?}", r.body_json());
    step_until(&w, back, 200, |m| m.phase.is_terminal());
    assert_eq!(load(&w, back).phase, Phase::Cancelled);
    let f = fence_on(&w, SRC).unwrap();
    assert_eq!(
        (f["state"].as_str(), f["move_id"].as_str()),
        (Some("moved"), Some(there.to_string().as_str()))
    );
    assert_eq!(tenant_rows(&w.f, SRC, w.acct), 0);
    assert!(matches!(
        direct_write(
            &w,
            SRC,
            &fresh_id(),
            "shard-eu-01",
            Edit::Insert(client_body())
        ),
        Err(crate::ports::StoreError::Fenced(_))
    ));
    assert_eq!(db_shard(&w), "shard-eu-02");

    // Back for real.
    let back = start(&w, "shard-eu-01", 0);
    let m = step_until(&w, back, 300, done);
    assert!(m.error.is_none(), "{m:?}");
    assert_eq!(db_shard(&w), "shard-eu-01");
    assert_eq!(
        fence_on(&w, SRC),
        None,
        "A is the tenant's shard again: no fence"
    );
    assert_eq!(fence_on(&w, DST).unwrap()["state"], "moved");
    assert_eq!(tenant_rows(&w.f, DST, w.acct), 0);
    w.f.clock.advance(time::Duration::seconds(10));
    let r =
        w.f.as_user(&w.admin, Patch, &path, Some(json!({"surname": "Back"})));
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let r =
        w.f.as_user(&w.admin, Post, "/v1/clients", Some(client_body()));
    assert_eq!(r.status, 201, "{:?}", r.body_json());
    settle(&w.f);
    let got = w.f.as_user(&w.admin, Get, &path, None);
    let got = got.body_json().unwrap();
    assert_eq!(
        (got["forenames"].as_str(), got["surname"].as_str()),
        (Some("OnB"), Some("Back"))
    );
    verify_ok(&w);
    // A stale route to B: refused inside the write's batch (a create is refused outright; the
    // row is gone from B, so a patch finds nothing to change).
    let fresh = Uuid::from_u128(0xb0b).to_string();
    let e = direct_write(&w, DST, &fresh, "shard-eu-02", Edit::Insert(client_body()));
    assert!(
        matches!(e, Err(crate::ports::StoreError::Fenced(_))),
        "{e:?}"
    );
    let e = direct_write(
        &w,
        DST,
        &w.clients[1],
        "shard-eu-02",
        Edit::MergePatch(json!({"forenames": "Stale"})),
    );
    assert!(
        matches!(e, Ok(None) | Err(crate::ports::StoreError::Fenced(_))),
        "{e:?}"
    );
    assert_eq!(tenant_rows(&w.f, DST, w.acct), 0);
}

/// Steps from the source's fence to the flip, with up to `writes` client patches between the
/// steps of the pre-fence verify; and the patches made.
fn fenced_steps(w: &World, id: Uuid, writes: usize) -> (usize, usize) {
    step_until(w, id, 2000, |m| m.phase == Phase::Verifying);
    let mut i = 0;
    while load(w, id).stage == Stage::Fence && load(w, id).phase == Phase::Verifying {
        if i < writes {
            let c = &w.clients[i % w.clients.len()];
            let r = w.f.as_user(
                &w.admin,
                Patch,
                &format!("/v1/clients/{c}"),
                Some(json!({"forenames": format!("W{i}")})),
            );
            assert!(r.status == 200 || r.status == 503, "{:?}", r.body_json());
            i += 1;
        }
        step(w, id);
    }
    let mut n = 0;
    while load(w, id).phase == Phase::Verifying {
        step(w, id);
        n += 1;
    }
    (n, i)
}

/// The fenced part re-checks only the rows the source's change log names since the last
/// catch-up pass began: its length does not grow with the tenant (the full verify ran before
/// the fence), and writes made during that verify still reach the target.
#[test]
fn the_fenced_window_does_not_grow_with_the_tenant_and_writes_before_it_are_carried() {
    let (small, large) = (world(20), world(600));
    let ids = (
        start(&small, "shard-eu-02", 0),
        start(&large, "shard-eu-02", 0),
    );
    let (fenced, writes) = {
        let (s, l) = (
            fenced_steps(&small, ids.0, 6),
            fenced_steps(&large, ids.1, 6),
        );
        ((s.0, l.0), l.1)
    };
    assert!(
        writes >= 2,
        "the large tenant's pre-fence verify takes several steps"
    );
    assert!(
        fenced.1 <= fenced.0 + 1,
        "fenced steps: {} for {} rows, {} for {} rows",
        fenced.0,
        tenant_rows(&small.f, SRC, small.acct),
        fenced.1,
        tenant_rows(&large.f, SRC, large.acct)
    );
    let m = step_until(&large, ids.1, 200, done);
    assert!(m.pre_verified, "{m:?}");
    assert_eq!(
        m.tables["clients"].source_digest, m.tables["clients"].target_digest,
        "{m:?}"
    );
    large.f.clock.advance(time::Duration::seconds(10));
    for i in 0..writes {
        let c = &large.clients[i];
        let r = large
            .f
            .as_user(&large.admin, Get, &format!("/v1/clients/{c}"), None);
        assert_eq!(
            r.body_json().unwrap()["forenames"],
            json!(format!("W{i}")),
            "a write made during the pre-fence verify is lost"
        );
    }
    assert_eq!(tenant_rows(&large.f, SRC, large.acct), 0);
    assert_eq!(large.f.count(SRC, "SELECT count(*) FROM move_changes"), 0);
    assert_eq!(large.f.count(SRC, "SELECT count(*) FROM move_tracking"), 0);
    verify_ok(&large);
}

/// A grace shorter than the stale-route bound is raised to it: deleting the source's rows
/// while an isolate may still read there with the old route would turn its reads into 404s.
#[test]
fn a_grace_shorter_than_the_stale_route_bound_is_raised_to_it() {
    let w = world(4);
    let id = start(&w, "shard-eu-02", 0);
    assert_eq!(load(&w, id).grace_seconds, svc::MIN_GRACE_SECONDS);
    let m = step_until(&w, id, 100, |m| m.phase == Phase::Cleanup);
    let after = time::OffsetDateTime::parse(
        m.cleanup_after.as_deref().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        after - w.f.clock.now() >= time::Duration::seconds(svc::MIN_GRACE_SECONDS - 2),
        "cleanup at {after}, now {}",
        w.f.clock.now()
    );
    // The source keeps the tenant's rows until then.
    assert!(tenant_rows(&w.f, SRC, w.acct) > 0);
}

/// A move cancelled after its flip restores the route at once but keeps the target's copy for
/// the grace: an isolate still reading the target with the flipped route finds its rows.
#[test]
fn a_rollback_after_the_flip_keeps_the_targets_copy_through_the_grace() {
    let w = world(6);
    let id = start(&w, "shard-eu-02", 3600);
    step_until(&w, id, 100, |m| m.phase == Phase::Cutover);
    assert_eq!(
        w.f.admin(Post, &format!("/admin/v1/moves/{id}/cancel"), None)
            .status,
        202
    );
    let m = step_until(&w, id, 20, |m| {
        m.undo.as_ref().is_some_and(|u| u.source_unfenced)
    });
    assert_eq!(db_shard(&w), "shard-eu-01", "the route is back: {m:?}");
    let restored = w.f.clock.now();
    // Stepping on within the grace deletes nothing on the target.
    for _ in 0..5 {
        assert!(matches!(step(&w, id), svc::Stepped::Waiting(_)));
    }
    assert!(w.f.clock.now() - restored < time::Duration::seconds(svc::MIN_GRACE_SECONDS));
    assert!(
        tenant_rows(&w.f, DST, w.acct) > 0,
        "the target's copy is kept"
    );
    let m = step_until(&w, id, 100, |m| m.phase.is_terminal());
    assert_eq!(m.phase, Phase::Cancelled);
    assert!(w.f.clock.now() - restored >= time::Duration::seconds(svc::MIN_GRACE_SECONDS));
    assert_eq!(tenant_rows(&w.f, DST, w.acct), 0);
}

/// The drain gave up and lifted the source's fence, and that step's save was lost: the move
/// row still says it is fenced. The flip checks the fence itself, so a write that lands on the
/// unfenced source after the final copy is carried, never left behind.
#[test]
fn the_route_never_flips_while_the_source_is_unfenced() {
    let w = world(6);
    let id = start(&w, "shard-eu-02", 0);
    step_until(&w, id, 100, |m| {
        m.stage == Stage::Verify && m.fenced_at.is_some() && m.phase == Phase::Verifying
    });
    block_on(crate::ports::Database::query(
        &*w.f.shards[SRC],
        crate::store::moves::lift_fence(w.acct, id, "source"),
    ))
    .unwrap();
    let r = w.f.as_user(
        &w.admin,
        Patch,
        &format!("/v1/clients/{}", w.clients[0]),
        Some(json!({"forenames": "Late"})),
    );
    assert_eq!(r.status, 200, "the source is unfenced: {:?}", r.body_json());
    settle(&w.f);
    let m = step_until(&w, id, 300, done);
    assert_eq!(m.phase, Phase::Done, "{m:?}");
    assert_eq!(db_shard(&w), "shard-eu-02");
    w.f.clock.advance(time::Duration::seconds(10));
    let got = w.f.as_user(
        &w.admin,
        Get,
        &format!("/v1/clients/{}", w.clients[0]),
        None,
    );
    assert_eq!(got.body_json().unwrap()["forenames"], "Late");
    verify_ok(&w);
}

/// Deployed, the `moves` job runs once per 2-minute tick: a fenced drain that returned to wait
/// for the next tick would refuse the tenant's writes for minutes. The run waits it out itself
/// (a moment at a time), and once the consumer has recorded the source's events the same run
/// flips the route and lifts the target's fence.
#[test]
fn a_fenced_drain_is_waited_out_within_the_run_not_left_for_the_next_tick() {
    let w = world(6);
    // A write whose event the consumer has not recorded yet: the drain must wait for it.
    let id = start(&w, "shard-eu-02", 3600);
    step_until(&w, id, 100, |m| {
        m.phase == Phase::Verifying && m.stage == Stage::Fence && m.pre_verified
    });
    let r = w.f.as_user(
        &w.admin,
        Patch,
        &format!("/v1/clients/{}", w.clients[0]),
        Some(json!({"forenames": "Pending"})),
    );
    assert_eq!(r.status, 200);
    let before = w.f.clock.now();
    block_on(jobs::run(&w.f, Job::Moves, None));
    let m = load(&w, id);
    assert_eq!(
        (m.phase, m.stage),
        (Phase::Verifying, Stage::Drain),
        "{m:?}"
    );
    // Nothing recorded the event during the run (the fake consumer runs between calls), so the
    // run paused on every remaining try instead of returning at the first.
    assert!(
        w.f.clock.now() - before >= crate::jobs::moves::FENCED_PAUSE * 30,
        "waited {}",
        w.f.clock.now() - before
    );
    settle(&w.f);
    block_on(jobs::run(&w.f, Job::Moves, None));
    let m = load(&w, id);
    assert_eq!(m.phase, Phase::Cleanup, "{m:?}");
    assert_eq!(db_shard(&w), "shard-eu-02");
    assert_eq!(
        w.f.count(DST, "SELECT count(*) FROM tenant_fences"),
        0,
        "the target's fence went in the run that flipped"
    );
}
