//! Shard health (every 15 minutes) and the rebalancing proposals made from it. Each bound shard
//! gets one sample: size against its capacity (D1's 10 GB cap), per-account rows and bytes,
//! outbox backlog and its oldest unpublished age, and a probe query's latency. The planner
//! (`domain::planner`) then turns the latest samples of every shard into proposals.

use crate::domain::clock::{parse_rfc3339, rfc3339, uuid_v7};
use crate::domain::planner::{self, Policy, Proposal};
use crate::domain::tenancy::Shard;
use crate::jobs::SchedulerPlatform;
use crate::ports::*;
use crate::store::registry;
use crate::store::shard_health::{latest_samples, loads, AccountUsage, Sample};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Tables whose rows count toward a tenant's size, with the key that orders an account's rows.
const TENANT_TABLES: &[(&str, &str)] = &[
    ("groups", "id"),
    ("users", "id"),
    ("clients", "id"),
    ("documents", "id"),
    ("audit_log", "seq"),
    ("outbox", "id"),
    ("idempotency_keys", "id"),
    ("erasure_requests", "id"),
];

/// Rows one measuring query reads (one account, one table, in key order).
pub const MEASURE_CHUNK: u64 = 50_000;
/// Rows a health run reads to measure account sizes, per shard; the rest waits for the next run.
pub const MEASURE_ROWS_PER_RUN: u64 = 500_000;

/// Where the size measurement of a shard stopped (stored in `job_cursors` as `health:{shard}`):
/// the account, table and key being measured, and that account's sums so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SizeCursor {
    pub account: String,
    pub table: usize,
    pub after: Value,
    pub rows: u64,
    pub bytes: u64,
}

pub fn cursor_id(shard_id: &str) -> String {
    format!("health:{shard_id}")
}

/// Measure account sizes, bounded: resume at the stored cursor, read at most
/// [`MEASURE_ROWS_PER_RUN`] rows in chunks of [`MEASURE_CHUNK`] (each an index range of one
/// account and table, never a scan of the shard), and carry the other accounts' figures over
/// from the previous sample. A full cycle measures every account of the shard once.
async fn measure<P: SchedulerPlatform>(
    p: &P,
    shard: &Shard,
    db: &impl Database,
    fence: &Fence,
) -> Result<BTreeMap<String, AccountUsage>, JobError> {
    let budget = p.measure_rows_per_run().max(1);
    let (previous, _) = latest_samples(p.accounts(), &shard.id).await?;
    let ids = p
        .accounts()
        .query(q::account_ids_on_shard(&shard.id))
        .await?;
    let ids: Vec<String> = ids
        .rows
        .iter()
        .filter_map(|r| col_str(r, "id").map(str::to_owned))
        .collect();
    // Accounts still on the shard keep their last measurement until they are measured again.
    let mut out: BTreeMap<String, AccountUsage> = previous
        .map(|s| s.accounts)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| ids.contains(&a.account_id))
        .map(|a| {
            let carried = AccountUsage {
                // Raw bodies again: `sample` scales them to the database size each time.
                bytes: if a.body_bytes > 0 {
                    a.body_bytes
                } else {
                    a.bytes
                },
                requests: 0,
                rows_read: 0,
                rows_written: 0,
                ..a
            };
            (carried.account_id.clone(), carried)
        })
        .collect();
    let stored = crate::store::job_state::cursor(p.accounts(), &cursor_id(&shard.id)).await?;
    let mut c: SizeCursor = stored
        .and_then(|b| serde_json::from_value(b["cursor"].clone()).ok())
        .unwrap_or_default();
    let mut spent = 0u64;
    let mut stopped = false;
    let start = c.account.clone();
    'accounts: for id in ids.iter().filter(|id| **id >= start) {
        if *id != c.account {
            c = SizeCursor {
                account: id.clone(),
                ..Default::default()
            };
        }
        while let Some((table, key)) = TENANT_TABLES.get(c.table) {
            if spent >= budget {
                stopped = true;
                break 'accounts;
            }
            if c.after.is_null() {
                c.after = if *key == "seq" { json!(-1) } else { json!("") };
            }
            let r = db
                .query(q::measure_chunk(table, key, id, &c.after, MEASURE_CHUNK))
                .await?;
            let row = r.first();
            let n = row.and_then(|r| col_i64(r, "n")).unwrap_or(0).max(0) as u64;
            spent += n.max(1);
            c.rows += n;
            c.bytes += row.and_then(|r| col_i64(r, "b")).unwrap_or(0).max(0) as u64;
            if n < MEASURE_CHUNK {
                c.table += 1;
                c.after = Value::Null;
            } else {
                c.after = row
                    .and_then(|r| r.get("last").cloned())
                    .unwrap_or(Value::Null);
            }
        }
        let u = out.entry(id.clone()).or_insert_with(|| AccountUsage {
            account_id: id.clone(),
            ..Default::default()
        });
        u.rows = c.rows;
        u.bytes = c.bytes;
        u.body_bytes = c.bytes;
        u.measured_at = rfc3339(p.now());
    }
    let body = stopped.then(|| {
        json!({"id": cursor_id(&shard.id), "job": "shard_health", "shard_id": shard.id,
            "cursor": c, "updated_at": rfc3339(p.now())})
    });
    write_cursor(p, &cursor_id(&shard.id), body.as_ref(), fence).await?;
    Ok(out)
}

/// One shard's sample (its only write is the measuring cursor).
pub async fn sample<P: SchedulerPlatform>(
    p: &P,
    shard: &Shard,
    db: &impl Database,
    fence: &Fence,
) -> Result<Sample, JobError> {
    let started = p.now();
    let probe = db.query(q::probe()).await?;
    let probe_ms = (p.now() - started).whole_milliseconds() as i64;
    let mut usage = measure(p, shard, db, fence).await?;
    let backlog = db.query(crate::store::outbox::backlog()).await?;
    let row = backlog.first();
    let oldest = row
        .and_then(|r| col_str(r, "oldest"))
        .and_then(parse_rfc3339)
        .map(|t| (started - t).whole_seconds());
    // The previous complete metering period: the one that ended when this run started.
    let period = crate::services::usage::period_start(started) - crate::services::usage::PERIOD;
    for (a, m) in crate::services::usage::read_period(db, period).await? {
        let u = usage.entry(a.clone()).or_insert_with(|| AccountUsage {
            account_id: a,
            ..Default::default()
        });
        u.requests = m.requests;
        u.rows_read = m.cost.rows_read;
        u.rows_written = m.cost.rows_written;
    }
    let estimated: u64 = usage.values().map(|u| u.bytes).sum();
    let size_bytes = probe.meta.size_after.unwrap_or(estimated);
    for u in usage.values_mut() {
        u.body_bytes = u.bytes;
        if estimated > 0 && size_bytes > estimated {
            u.bytes = (u128::from(u.bytes) * u128::from(size_bytes) / u128::from(estimated)) as u64;
        }
    }
    Ok(Sample {
        id: uuid_v7(started, p.entropy()).to_string(),
        shard_id: shard.id.clone(),
        at: rfc3339(started),
        size_bytes,
        capacity_bytes: shard.capacity_bytes,
        accounts: usage.into_values().collect(),
        outbox_backlog: row.and_then(|r| col_i64(r, "n")).unwrap_or(0).max(0) as u64,
        oldest_unpublished_seconds: oldest,
        probe_ms,
        usage_period: rfc3339(period),
        dead_letters_open: p
            .accounts()
            .query(q::open_dead_letters(Some(&shard.id)))
            .await?
            .first()
            .and_then(|r| col_i64(r, "n"))
            .unwrap_or(0)
            .max(0) as u64,
    })
}

use crate::jobs::lease::{write_cursor, JobError, Leases};
use crate::jobs::report::{HealthCounts, Tally};
use crate::store::health_job as q;
use crate::store::job_state::Fence;

/// The health job: sample every bound shard, store the samples, then re-plan.
pub async fn run<P: SchedulerPlatform>(
    p: &P,
    leases: &mut Leases,
    counts: &mut HealthCounts,
    detail: &mut Vec<String>,
) -> bool {
    let mut ok = true;
    let shards = match registry::shards(p.accounts()).await {
        Ok(s) => s,
        Err(e) => {
            detail.push(format!("registry: {e}"));
            return false;
        }
    };
    for (binding, db) in p.shards() {
        let Some(shard) = shards.iter().find(|s| s.binding == binding) else {
            detail.push(format!("{binding}: not in the shard registry"));
            ok = false;
            continue;
        };
        let fence = match leases.take(p, &shard.id).await {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                detail.push(format!("{binding}: taking the lease: {e}"));
                ok = false;
                continue;
            }
        };
        let sampled = sample(p, shard, &db, &fence).await;
        leases.release(p, &fence).await;
        match sampled {
            Ok(s) => {
                let body = serde_json::to_string(&s).unwrap_or_default();
                match p.accounts().query(q::insert_sample(&s.id, &body)).await {
                    Ok(_) => {
                        counts.sampled.add(1);
                        let pct = (s.size_bytes * 100)
                            .checked_div(s.capacity_bytes)
                            .unwrap_or(0);
                        detail.push(format!(
                            "{}: {} bytes ({pct}% of capacity), {} accounts, outbox backlog {}",
                            s.shard_id,
                            s.size_bytes,
                            s.accounts.len(),
                            s.outbox_backlog
                        ));
                    }
                    Err(e) => {
                        detail.push(format!("{binding}: storing the sample failed: {e}"));
                        ok = false;
                    }
                }
            }
            Err(e) => {
                detail.push(format!("{binding}: {e}"));
                ok = false;
            }
        }
    }
    if let Ok(r) = p.accounts().query(q::open_dead_letters(None)).await {
        counts
            .dead_letters_open
            .add(r.first().and_then(|r| col_i64(r, "n")).unwrap_or(0).max(0) as u64);
    }
    match rebalance(p).await {
        Ok(r) => {
            counts.proposals.add(r.open as u64);
            counts.proposals_new.add(r.new as u64);
            counts.proposals_superseded.add(r.superseded as u64);
            if r.emit_failed > 0 {
                counts.proposal_events_failed.add(r.emit_failed as u64);
                detail.push(format!(
                    "{} proposal events not sent; the next run sends them",
                    r.emit_failed
                ));
                ok = false;
            }
        }
        Err(e) => {
            detail.push(format!("rebalance: {e}"));
            ok = false;
        }
    }
    ok
}

/// What a re-plan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replan {
    /// Open proposals after the re-plan.
    pub open: usize,
    /// New ones (each emitted as a platform event).
    pub new: usize,
    pub superseded: usize,
    /// New proposals whose event could not be sent (the next run's re-plan sends it again).
    pub emit_failed: usize,
}

/// Re-plan from the latest samples. A proposal the new plan repeats stays open as it was (no
/// new event every 15 minutes); open ones the plan no longer makes are superseded; new ones
/// are stored, then emitted on the platform-events queue and marked `emitted_at`.
pub async fn rebalance<P: SchedulerPlatform>(p: &P) -> Result<Replan, StoreError> {
    let (shards, accounts) = loads(p.accounts()).await?;
    let planned: Vec<Value> = planner::plan(&shards, &accounts, &Policy::default())
        .iter()
        .filter_map(|pr: &Proposal| serde_json::to_value(pr).ok())
        .collect();
    let now = p.now();
    let open = p.accounts().query(q::open_proposals()).await?;
    let mut stmts = Vec::new();
    let mut kept: Vec<Value> = Vec::new();
    let mut unsent: Vec<Value> = Vec::new();
    let mut out = Replan::default();
    for row in &open.rows {
        let (Some(id), Some(body)) = (col_str(row, "id"), col_json(row, "body")) else {
            continue;
        };
        if planned.contains(&body["proposal"]) && !kept.contains(&body["proposal"]) {
            kept.push(body["proposal"].clone());
            if body["emitted_at"].is_null() {
                unsent.push(body);
            }
        } else {
            out.superseded += 1;
            stmts.push(q::supersede_proposal(id, &rfc3339(now)));
        }
    }
    for pr in planned.iter().filter(|pr| !kept.contains(pr)) {
        let id = uuid_v7(now, p.entropy()).to_string();
        let body = json!({"id": id, "created_at": rfc3339(now), "status": "open", "proposal": pr, "emitted_at": null});
        stmts.push(q::insert_proposal(&id, &body));
        out.new += 1;
        unsent.push(body);
    }
    out.open = planned.len();
    if !stmts.is_empty() {
        p.accounts().batch(stmts).await?;
    }
    for body in unsent {
        let id = body["id"].as_str().unwrap_or_default().to_string();
        let ev = crate::domain::platform_events::event(
            crate::domain::platform_events::REBALANCE_PROPOSED,
            "/jobs/shard_health",
            &format!("rebalance_proposals/{id}"),
            body.clone(),
            now,
            p.entropy(),
        );
        match p.platform_events().send_batch(vec![ev]).await {
            Ok(()) => {
                p.accounts()
                    .query(q::mark_proposal_emitted(&id, &rfc3339(now)))
                    .await?;
            }
            Err(_) => out.emit_failed += 1,
        }
    }
    Ok(out)
}
