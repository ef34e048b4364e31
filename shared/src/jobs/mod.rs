//! Layer 3, the jobs (mirrors `schedulers/cron`): the scheduler's jobs, platform-free. Every run
//! is bounded, idempotent and recorded in `job_runs` (account D1) with its counts and outcome.
//! Jobs use services, store, ports and domain; never the API or the consumer (the operator's
//! job-run endpoint is `api::admin::jobs`).
#![allow(async_fn_in_trait)]

pub mod audit_checkpoints;
pub mod lease;
pub mod moves;
pub mod report;
pub mod retention_sweep;
pub mod shard_health;

use crate::bindings;
use crate::domain::clock::{rfc3339, uuid_v7, Entropy};
use crate::migrations::{self, Migration};
use crate::ports::*;
use lease::{Leases, Skipped};
use report::*;
use serde::Serialize;

use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    OutboxRelay,
    ShardHealth,
    MigrationCheck,
    Retention,
    /// Hourly: every account's signed audit checkpoint (`jobs/audit_checkpoints.rs`).
    AuditCheckpoints,
    /// Every two minutes (and on demand): tenant moves in flight (`jobs/moves.rs`).
    Moves,
}

impl Job {
    pub fn for_cron(cron: &str) -> Option<Job> {
        match cron {
            bindings::CRON_OUTBOX_RELAY => Some(Job::OutboxRelay),
            bindings::CRON_SHARD_HEALTH => Some(Job::ShardHealth),
            bindings::CRON_MIGRATION_CHECK => Some(Job::MigrationCheck),
            bindings::CRON_RETENTION | bindings::CRON_RETENTION_RESUME => Some(Job::Retention),
            bindings::CRON_AUDIT_CHECKPOINTS => Some(Job::AuditCheckpoints),
            bindings::CRON_MOVES => Some(Job::Moves),
            _ => None,
        }
    }

    pub fn parse(name: &str) -> Option<Job> {
        match name {
            "outbox_relay" => Some(Job::OutboxRelay),
            "shard_health" => Some(Job::ShardHealth),
            "migration_check" => Some(Job::MigrationCheck),
            "retention" => Some(Job::Retention),
            "audit_checkpoints" => Some(Job::AuditCheckpoints),
            "moves" => Some(Job::Moves),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Job::OutboxRelay => "outbox_relay",
            Job::ShardHealth => "shard_health",
            Job::MigrationCheck => "migration_check",
            Job::Retention => "retention",
            Job::AuditCheckpoints => "audit_checkpoints",
            Job::Moves => "moves",
        }
    }
}

pub trait SchedulerPlatform {
    type Db: Database;
    type Queue: EventQueue;
    type Entropy: Entropy;
    type Blobs: BlobStore;
    type Cache: Cache;
    type Checkpoints: ImmutableStore;
    /// The signed audit checkpoints' own write-once bucket.
    fn checkpoints(&self) -> &Self::Checkpoints;
    /// The audit writer's signing key and the keys its earlier signatures verify with (None: not
    /// configured; the checkpoint job fails loudly and the audit log's disposal waits).
    fn audit_seal(&self) -> Option<&crate::domain::audit::Seal>;
    /// Document contents (the retention sweep deletes them with their rows).
    fn blobs(&self) -> &Self::Blobs;
    /// The API's read cache (KV): erasure deletes the subject's rendered rows from it.
    fn cache(&self) -> &Self::Cache;
    fn accounts(&self) -> &Self::Db;
    /// The shard bindings this deployment serves, with a session on each.
    fn shards(&self) -> Vec<(String, Self::Db)>;
    fn queue(&self) -> &Self::Queue;
    /// The platform-events queue (rebalancing proposals and other operator news).
    fn platform_events(&self) -> &Self::Queue;
    fn now(&self) -> OffsetDateTime;
    fn entropy(&self) -> &Self::Entropy;
    /// Wait `d` of wall time (no CPU): the moves job waits out a fenced drain in its own run
    /// rather than leave a tenant fenced until the next tick.
    async fn pause(&self, d: time::Duration) {
        let _ = d;
    }
    /// Unpublished outbox rows younger than this belong to the request that wrote them.
    fn relay_min_age(&self) -> time::Duration {
        RELAY_MIN_AGE
    }
    /// Rows the health job may read per shard and run to measure account sizes.
    fn measure_rows_per_run(&self) -> u64 {
        crate::jobs::shard_health::MEASURE_ROWS_PER_RUN
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Some work failed or was left for the next run.
    Partial,
    Failed,
    /// Another run of the job held the lease of every shard: this one did nothing.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobRun {
    pub id: String,
    pub job: Job,
    pub cron: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub outcome: Outcome,
    /// What the run did, in the job's own named counters (serialised as `counts`).
    pub counts: RunReport,
    /// Shards left alone because another run of the job held their lease.
    pub skipped: Vec<Skipped>,
    pub detail: Vec<String>,
}

/// Unpublished outbox rows older than this are the relay's (younger ones are still being
/// published by the API request that wrote them).
pub const RELAY_MIN_AGE: time::Duration = time::Duration::seconds(30);
pub const RELAY_PAGE: i64 = 100;
/// Pages per shard per run: bounded work per invocation; the rest waits for the next minute.
pub const RELAY_MAX_PAGES: usize = 20;
pub const OUTBOX_KEEP_PUBLISHED: time::Duration = time::Duration::days(7);
pub const PURGE_PAGE: i64 = 500;

pub async fn run<P: SchedulerPlatform>(p: &P, job: Job, cron: Option<&str>) -> JobRun {
    run_limited(p, job, cron, None).await
}

/// [`run`], the `moves` job taking at most `move_steps` steps per move (the operator's
/// `POST /admin/v1/moves/{id}/step?steps=`; None: `moves::STEPS_PER_RUN`).
pub async fn run_limited<P: SchedulerPlatform>(
    p: &P,
    job: Job,
    cron: Option<&str>,
    move_steps: Option<usize>,
) -> JobRun {
    let started = p.now();
    let id = uuid_v7(started, p.entropy()).to_string();
    let mut leases = Leases::new(job, id.clone());
    let mut detail = Vec::new();
    let l = &mut leases;
    let (mut outcome, counts) = match job {
        Job::OutboxRelay => {
            let mut c = RelayCounts::default();
            let o = relay(p, l, &mut c, &mut detail).await;
            (o, RunReport::OutboxRelay(c))
        }
        Job::MigrationCheck => {
            let mut c = MigrationCounts::default();
            let o = migration_check(p, l, &mut c, &mut detail).await;
            (o, RunReport::MigrationCheck(c))
        }
        Job::ShardHealth => {
            let mut c = HealthCounts::default();
            let o = if crate::jobs::shard_health::run(p, l, &mut c, &mut detail).await {
                Outcome::Ok
            } else {
                Outcome::Partial
            };
            (o, RunReport::ShardHealth(c))
        }
        Job::Retention => {
            let resume_only = cron == Some(bindings::CRON_RETENTION_RESUME);
            let mut c = RetentionReport::default();
            let o = retention(p, l, &mut c, &mut detail, resume_only).await;
            (o, RunReport::Retention(Box::new(c)))
        }
        Job::AuditCheckpoints => {
            let mut c = CheckpointCounts::default();
            let o = crate::jobs::audit_checkpoints::run(p, l, &mut c, &mut detail).await;
            (o, RunReport::AuditCheckpoints(c))
        }
        Job::Moves => {
            let mut c = MoveCounts::default();
            let o = crate::jobs::moves::run(
                p,
                l,
                &mut c,
                &mut detail,
                move_steps.unwrap_or(crate::jobs::moves::STEPS_PER_RUN),
            )
            .await;
            (o, RunReport::Moves(c))
        }
    };
    for s in &leases.skipped {
        detail.push(format!("{}: skipped: lease held", s.shard));
    }
    if leases.taken == 0 && !leases.skipped.is_empty() && outcome == Outcome::Ok {
        outcome = Outcome::Skipped;
    }
    let run = JobRun {
        id,
        job,
        cron: cron.map(str::to_owned),
        started_at: rfc3339(started),
        finished_at: rfc3339(p.now()),
        outcome,
        counts,
        skipped: leases.skipped,
        detail,
    };
    let body = serde_json::to_string(&run).unwrap_or_default();
    if let Err(e) = p
        .accounts()
        .query(crate::store::job_state::insert_run_stmt(&run.id, &body))
        .await
    {
        tracing::error!(error = %e, job = job.name(), "recording the job run failed");
    }
    run
}

/// Account changes whose events are still in the account row (the API isolate that made them
/// did not forward them, or does not bind the shard): into the shard's outbox, for the relay.
async fn forward_pending<P: SchedulerPlatform>(
    p: &P,
    shard_id: &str,
    db: &P::Db,
    counts: &mut RelayCounts,
) -> Result<(), StoreError> {
    let rows = p
        .accounts()
        .query(crate::services::changes::accounts_with_pending_events(
            shard_id,
        ))
        .await?;
    for r in &rows.rows {
        if let Some(id) = col_str(r, "id").and_then(|s| uuid::Uuid::parse_str(s).ok()) {
            let moved = {
                use crate::services::changes::{forward_account_events, pending_account_events};
                let pending = pending_account_events(p.accounts(), id).await?;
                forward_account_events(p.accounts(), db, shard_id, id, pending).await?
            };
            counts.account_events_forwarded.add(moved.len() as u64);
        }
    }
    Ok(())
}

async fn relay<P: SchedulerPlatform>(
    p: &P,
    leases: &mut Leases,
    counts: &mut RelayCounts,
    detail: &mut Vec<String>,
) -> Outcome {
    let mut outcome = Outcome::Ok;
    // Shard id by binding, to find the accounts whose own changes wait to be forwarded.
    let shard_ids = shard_ids_by_binding(p.accounts()).await;
    for (binding, db) in p.shards() {
        let key = shard_ids.get(&binding).unwrap_or(&binding).clone();
        let fence = match leases.take(p, &key).await {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                detail.push(format!("{binding}: taking the lease: {e}"));
                outcome = Outcome::Partial;
                continue;
            }
        };
        if !relay_shard(p, &binding, shard_ids.get(&binding), &db, counts, detail).await {
            outcome = Outcome::Partial;
        }
        leases.release(p, &fence).await;
    }
    outcome
}

/// Relay one shard: forward waiting account events, republish old unpublished rows, purge
/// published ones. False if anything failed.
async fn relay_shard<P: SchedulerPlatform>(
    p: &P,
    binding: &str,
    shard_id: Option<&String>,
    db: &P::Db,
    counts: &mut RelayCounts,
    detail: &mut Vec<String>,
) -> bool {
    let mut outcome = Outcome::Ok;
    let now = p.now();
    let cutoff = now.checked_sub(p.relay_min_age()).unwrap_or(now);
    {
        match shard_id {
            Some(shard_id) => {
                if let Err(e) = forward_pending(p, shard_id, db, counts).await {
                    detail.push(format!("{binding}: forwarding account events: {e}"));
                    outcome = Outcome::Partial;
                }
            }
            None => {
                detail.push(format!(
                    "{binding}: not in the shard registry; account events wait"
                ));
                outcome = Outcome::Partial;
            }
        }
        for _ in 0..RELAY_MAX_PAGES {
            let rows = match db
                .query(crate::store::outbox::unpublished_page(cutoff, RELAY_PAGE))
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    detail.push(format!("{binding}: {e}"));
                    outcome = Outcome::Partial;
                    break;
                }
            };
            if rows.rows.is_empty() {
                break;
            }
            let mut msgs = Vec::new();
            let mut keys = Vec::new();
            for r in &rows.rows {
                if let Some(mut b) = col_json(r, "body") {
                    if let Some(o) = b.as_object_mut() {
                        o.remove("published_at");
                    }
                    msgs.push(b);
                    keys.push((
                        col_str(r, "account_id").unwrap_or_default().to_string(),
                        col_str(r, "id").unwrap_or_default().to_string(),
                    ));
                }
            }
            if let Err(e) = p.queue().send_batch(msgs).await {
                detail.push(format!("{binding}: {e}"));
                outcome = Outcome::Partial;
                break;
            }
            counts.republished.add(keys.len() as u64);
            let now = p.now();
            let stmts: Vec<Stmt> = keys
                .iter()
                .map(|(a, id)| crate::store::outbox::mark_published(a, id, now))
                .collect();
            if let Err(e) = db.batch(stmts).await {
                // Sent but not marked: the next run sends again; consumers are idempotent.
                detail.push(format!("{binding}: {e}"));
                outcome = Outcome::Partial;
                break;
            }
            if (rows.rows.len() as i64) < RELAY_PAGE {
                break;
            }
        }
        let purge_before = p.now() - OUTBOX_KEEP_PUBLISHED;
        match db
            .query(crate::store::outbox::purge_published(
                purge_before,
                PURGE_PAGE,
            ))
            .await
        {
            Ok(r) => counts.purged.add(r.meta.changes),
            Err(e) => {
                detail.push(format!("{binding}: purge: {e}"));
                outcome = Outcome::Partial;
            }
        }
    }
    outcome == Outcome::Ok
}

/// Compare applied migrations (wrangler's `d1_migrations`) with those embedded in the build.
pub fn drift(applied: &[String], embedded: &[Migration]) -> Option<String> {
    let want: Vec<&str> = embedded.iter().map(|m| m.name).collect();
    if applied.iter().map(String::as_str).eq(want.iter().copied()) {
        return None;
    }
    if applied.len() < want.len() && applied.iter().zip(&want).all(|(a, w)| a == w) {
        return Some(format!(
            "behind: missing {}",
            want[applied.len()..].join(", ")
        ));
    }
    Some(format!(
        "drifted: applied [{}], build has [{}]",
        applied.join(", "),
        want.join(", ")
    ))
}

async fn applied(db: &impl Database) -> Result<Vec<String>, StoreError> {
    let r = db
        .query(crate::store::health_job::applied_migrations())
        .await?;
    Ok(r.rows
        .iter()
        .filter_map(|r| col_str(r, "name").map(str::to_owned))
        .collect())
}

/// The nightly sweep of every shard, or (`resume_only`, the hourly cron) only the shards whose
/// last run stopped at its budget: a backlog larger than one run clears within hours, not
/// one budget per night.
async fn retention<P: SchedulerPlatform>(
    p: &P,
    leases: &mut Leases,
    counts: &mut RetentionReport,
    detail: &mut Vec<String>,
    resume_only: bool,
) -> Outcome {
    let mut outcome = Outcome::Ok;
    let ids = shard_ids_by_binding(p.accounts()).await;
    for (binding, db) in p.shards() {
        let Some(shard_id) = ids.get(&binding) else {
            detail.push(format!("{binding}: not in the shard registry"));
            outcome = Outcome::Partial;
            continue;
        };
        if resume_only {
            match crate::jobs::retention_sweep::cycle_in_progress(p.accounts(), shard_id).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    detail.push(format!("{binding}: {e}"));
                    outcome = Outcome::Partial;
                    continue;
                }
            }
        }
        let fence = match leases.take(p, shard_id).await {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                detail.push(format!("{binding}: taking the lease: {e}"));
                outcome = Outcome::Partial;
                continue;
            }
        };
        if let Err(e) =
            crate::jobs::retention_sweep::sweep_shard(p, shard_id, &db, &fence, counts).await
        {
            detail.push(format!("{binding}: {e}"));
            outcome = Outcome::Partial;
        }
        leases.release(p, &fence).await;
    }
    // Dead letters (account D1), once a night: after the longest period any account's policy
    // sets (never sooner than an account asked for; the UK preset at least), and never those
    // of an account under legal hold.
    if !resume_only {
        use crate::domain::retention::{latest_due_start, Policy};
        let purged = async {
            let longest = p
                .accounts()
                .query(crate::store::retention::longest_dead_letter_days())
                .await?
                .first()
                .and_then(|r| r.get("days").and_then(serde_json::Value::as_u64))
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(0);
            let days = longest.max(Policy::uk_preset().dead_letter_days);
            let cutoff = rfc3339(latest_due_start(days, p.now()));
            p.accounts()
                .query(crate::store::retention::purge_dead_letters(&cutoff))
                .await
        };
        match purged.await {
            Ok(r) => counts.counts.dead_letters_purged.add(r.meta.changes),
            Err(e) => {
                detail.push(format!("dead letters: {e}"));
                outcome = Outcome::Partial;
            }
        }
    }
    if counts.counts.left_for_next_run.is_some() {
        outcome = Outcome::Partial;
    }
    // A due row left behind (a foreign key kept it) is named, and the run is not a success.
    if !counts.undisposed.is_empty() {
        outcome = Outcome::Partial;
        const NAMED: usize = 20;
        let more = counts.undisposed.len().saturating_sub(NAMED);
        detail.extend(counts.undisposed.drain(..).take(NAMED));
        if more > 0 {
            detail.push(format!("and {more} more due rows not disposed of"));
        }
    }
    outcome
}

/// Binding -> shard id, from the registry (empty if it cannot be read; callers report the
/// shards they could not place).
async fn shard_ids_by_binding(db: &impl Database) -> std::collections::HashMap<String, String> {
    crate::store::registry::shard_bindings(db)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(id, binding)| (binding, id))
        .collect()
}

/// The schema status of one database: applied migrations and the `sqlite_master` fingerprint
/// against this build's.
async fn schema_status(
    db: &impl Database,
    set: &[Migration],
    expected: &str,
) -> Result<(crate::domain::tenancy::SchemaStatus, Option<String>), StoreError> {
    use crate::domain::tenancy::SchemaStatus;
    let applied = applied(db).await?;
    if let Some(d) = drift(&applied, set) {
        let status = if d.starts_with("behind") {
            SchemaStatus::Behind
        } else {
            SchemaStatus::Drifted
        };
        return Ok((status, Some(d)));
    }
    let got = crate::store::schema::fingerprint(db).await?;
    if got != expected.trim() {
        return Ok((
            SchemaStatus::Drifted,
            Some(format!(
                "schema fingerprint {got} differs from this build's {}",
                expected.trim()
            )),
        ));
    }
    Ok((SchemaStatus::Current, None))
}

type Checked = Result<(crate::domain::tenancy::SchemaStatus, Option<String>), StoreError>;

fn tally(name: &str, r: &Checked, counts: &mut MigrationCounts, detail: &mut Vec<String>) -> bool {
    use crate::domain::tenancy::SchemaStatus;
    match r {
        Ok((SchemaStatus::Current, _)) => {
            counts.current.add(1);
            true
        }
        Ok((status, d)) => {
            if *status == SchemaStatus::Behind {
                counts.behind.add(1);
            } else {
                counts.drifted.add(1);
            }
            detail.push(format!("{name}: {}", d.as_deref().unwrap_or("")));
            false
        }
        Err(e) => {
            detail.push(format!("{name}: {e}"));
            false
        }
    }
}

async fn migration_check<P: SchedulerPlatform>(
    p: &P,
    leases: &mut Leases,
    counts: &mut MigrationCounts,
    detail: &mut Vec<String>,
) -> Outcome {
    let mut ok = true;
    let r = schema_status(
        p.accounts(),
        migrations::ACCOUNT,
        crate::store::schema::EXPECTED_ACCOUNT,
    )
    .await;
    ok &= tally(bindings::ACCOUNTS_DB, &r, counts, detail);
    let ids = shard_ids_by_binding(p.accounts()).await;
    let now = rfc3339(p.now());
    for (binding, db) in p.shards() {
        let key = ids.get(&binding).unwrap_or(&binding).clone();
        let fence = match leases.take(p, &key).await {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                detail.push(format!("{binding}: taking the lease: {e}"));
                ok = false;
                continue;
            }
        };
        let r = schema_status(&db, migrations::SHARD, crate::store::schema::EXPECTED_SHARD).await;
        leases.release(p, &fence).await;
        ok &= tally(&binding, &r, counts, detail);
        let (Some(id), Ok((status, d))) = (ids.get(&binding), r) else {
            continue;
        };
        let check = crate::domain::tenancy::SchemaCheck {
            status,
            detail: d,
            checked_at: now.clone(),
        };
        if let Err(e) = p
            .accounts()
            .query(crate::store::health_job::record_schema_status(
                id,
                &serde_json::to_value(&check).unwrap_or_default(),
            ))
            .await
        {
            detail.push(format!("{binding}: recording the status failed: {e}"));
            ok = false;
        }
    }
    if ok {
        Outcome::Ok
    } else {
        Outcome::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cron_maps_to_a_job() {
        for c in bindings::ALL_CRONS {
            assert!(Job::for_cron(c).is_some(), "{c}");
        }
        assert_eq!(Job::for_cron("5 4 * * *"), None);
    }

    #[test]
    fn drift_says_behind_or_drifted() {
        let set = migrations::SHARD;
        let names: Vec<String> = set.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(drift(&names, set), None);
        assert!(drift(&names[..1], set).unwrap().starts_with("behind"));
        let mut other = names.clone();
        other[0] = "0001_other.sql".into();
        assert!(drift(&other, set).unwrap().starts_with("drifted"));
    }
}
