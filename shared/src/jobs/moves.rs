//! The `moves` job: drive every move in flight (`services::moves`), each under its own lease
//! (`job_leases`, key `move:{id}`) whose fencing token also guards every write the run makes on
//! the target. Steps until the move waits (drain, grace period), ends, or the run's budget is
//! spent; each phase change is a platform event (and this run is recorded in `job_runs`).

use crate::domain::moves::{Move, Phase, Stage};
use crate::domain::platform_events;
use crate::jobs::lease::Leases;
use crate::jobs::report::{MoveCounts, Tally};
use crate::jobs::{Outcome, SchedulerPlatform};
use crate::ports::*;
use crate::services::moves::{self as svc, Ctx, MoveError, Stepped};
use serde_json::json;

/// Steps per move per run (each at most `RANGES_PER_STEP` ranges).
pub const STEPS_PER_RUN: usize = 40;

/// D1 calls one Worker invocation may make (Cloudflare D1 limits, "Queries per Worker
/// invocation": 1,000 on Workers Paid). The local runtime does not enforce it; the job does:
/// it takes another step only while one as costly as the costliest so far still fits, with
/// room left for its own bookkeeping (lease release, run record).
pub const D1_CALLS_PER_INVOCATION: u64 = 1000;
const BOOKKEEPING_CALLS: u64 = 50;
/// What a step is assumed to cost before one has been measured in this run.
const FIRST_STEP_CALLS: u64 = 120;

/// Whether one more step fits the invocation's D1 budget (pure, so the rule has a test).
pub fn step_fits(used: u64, costliest_step: u64) -> bool {
    used + costliest_step.max(FIRST_STEP_CALLS) + BOOKKEEPING_CALLS <= D1_CALLS_PER_INVOCATION
}

pub const MOVE_PHASE_CHANGED: &str = "platform.move.phase_changed";

/// How long a fenced step that waits (the drain) pauses before the next try, within the run
/// (at most `STEPS_PER_RUN` tries: 10 s).
pub const FENCED_PAUSE: time::Duration = time::Duration::milliseconds(250);

/// `steps`: at most this many steps per move (the operator's `step?steps=`), at most
/// [`STEPS_PER_RUN`].
pub async fn run<P: SchedulerPlatform>(
    p: &P,
    leases: &mut Leases,
    counts: &mut MoveCounts,
    detail: &mut Vec<String>,
    steps: usize,
) -> Outcome {
    let accounts_start = p.accounts().cost().calls;
    let moves: Vec<Move> = match p
        .accounts()
        .query(crate::store::moves::active_moves())
        .await
    {
        Ok(r) => r
            .rows
            .iter()
            .filter_map(|r| col_json(r, "body"))
            .filter_map(|b| serde_json::from_value(b).ok())
            .collect(),
        Err(e) => {
            detail.push(format!("reading moves: {e}"));
            return Outcome::Failed;
        }
    };
    let shards = match crate::store::registry::shards(p.accounts()).await {
        Ok(s) => s,
        Err(e) => {
            detail.push(format!("reading the shard registry: {e}"));
            return Outcome::Failed;
        }
    };
    let dbs = p.shards();
    // The D1 calls this run made so far, on every handle (a handle may have served earlier
    // runs of the isolate: counted from here).
    let shard_calls = || dbs.iter().map(|(_, d)| d.cost().calls).sum::<u64>();
    let start = accounts_start + shard_calls();
    let used = || (p.accounts().cost().calls + shard_calls()).saturating_sub(start);
    let mut outcome = Outcome::Ok;
    for m in moves {
        counts.moves.add(1);
        let find = |id: &str| {
            let s = shards.iter().find(|s| s.id == id)?;
            let i = dbs.iter().position(|(b, _)| *b == s.binding)?;
            Some((&dbs[i].1, s.tier))
        };
        let (Some((source, st)), Some((target, tt))) =
            (find(&m.source_shard), find(&m.target_shard))
        else {
            detail.push(format!(
                "move {}: a shard is not bound by this scheduler",
                m.id
            ));
            outcome = Outcome::Partial;
            continue;
        };
        let fence = match leases.take(p, &format!("move:{}", m.id)).await {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                detail.push(format!("move {}: taking the lease: {e}", m.id));
                outcome = Outcome::Partial;
                continue;
            }
        };
        let tier = |t: crate::domain::tenancy::Tier| {
            serde_json::to_value(t)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "shared".into())
        };
        if let Err(e) = drive(
            p,
            source,
            target,
            tier(st),
            tier(tt),
            fence.token,
            m.id,
            counts,
            &used,
            steps.min(STEPS_PER_RUN),
        )
        .await
        {
            detail.push(format!("move {}: {e}", m.id));
            outcome = Outcome::Partial;
        }
        leases.release(p, &fence).await;
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn drive<P: SchedulerPlatform>(
    p: &P,
    source: &P::Db,
    target: &P::Db,
    source_tier: String,
    target_tier: String,
    token: i64,
    id: uuid::Uuid,
    counts: &mut MoveCounts,
    used: &dyn Fn() -> u64,
    steps: usize,
) -> Result<(), MoveError> {
    let mut costliest = 0;
    for _ in 0..steps {
        let before = used();
        counts.d1_calls = Some(before);
        let Some(mut m) = svc::load(p.accounts(), id).await? else {
            return Ok(());
        };
        // The steps after the flip lift the target's fence (a few D1 calls): never left for
        // the next tick. The fence itself is put only with half the budget left, so the fenced
        // steps that follow fit this run.
        let after_flip = matches!(m.phase, Phase::Cutover)
            || (m.phase == Phase::Cleanup && m.stage == Stage::Fence);
        let fences_next = m.phase == Phase::Verifying
            && m.stage == Stage::Fence
            && m.pre_verified
            && m.fenced_at.is_none();
        if !after_flip
            && (!step_fits(before, costliest)
                || (fences_next && before > D1_CALLS_PER_INVOCATION / 2))
        {
            counts.budget_stops.add(1);
            return Ok(());
        }
        let c = Ctx {
            accounts: p.accounts(),
            source,
            target,
            source_tier: source_tier.clone(),
            target_tier: target_tier.clone(),
            token,
            now: p.now(),
        };
        let stepped = svc::step(&c, &mut m).await?;
        counts.steps.add(1);
        costliest = costliest.max(used().saturating_sub(before));
        counts.d1_calls = Some(used());
        match stepped {
            Stepped::Progress => {}
            Stepped::Entered(phase) => {
                counts.phase_changes.add(1);
                let ev = platform_events::event(
                    MOVE_PHASE_CHANGED,
                    "/scheduler/moves",
                    &m.subject(),
                    json!({"move_id": m.id, "account_id": m.account_id, "phase": phase,
                           "source_shard": m.source_shard, "target_shard": m.target_shard,
                           "fenced_ms": m.fenced_ms, "error": m.error}),
                    p.now(),
                    p.entropy(),
                );
                if p.platform_events().send_batch(vec![ev]).await.is_err() {
                    counts.events_failed.add(1);
                }
                if phase.is_terminal() {
                    return Ok(());
                }
            }
            // Fenced, the drain waits for the consumer (a moment): wait here, within the run,
            // rather than leave the tenant's writes refused until the next tick.
            Stepped::Waiting(_) if m.phase == Phase::Verifying && m.fenced_at.is_some() => {
                p.pause(FENCED_PAUSE).await;
            }
            Stepped::Waiting(_) | Stepped::Finished => return Ok(()),
        }
    }
    Ok(())
}
