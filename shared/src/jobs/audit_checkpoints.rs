//! The hourly audit-checkpoint job: for every account of every shard this deployment serves,
//! the signed checkpoints of the periods that ended since its last one
//! (`services::checkpoints::write_due`), into the write-once checkpoint bucket. One run per
//! shard at a time (the job's lease); a repeated or overlapping run finds its objects there and
//! writes nothing new. Partial, naming the account, when an account's trail is below a head
//! the writer anchored (cut: nothing signed), or when the run distrusted what it found (a
//! resume hint in D1 that disagrees with the bucket, an object planted at a checkpoint's key).

use crate::jobs::lease::Leases;
use crate::jobs::report::{CheckpointCounts, Tally};
use crate::jobs::{Outcome, SchedulerPlatform};
use crate::ports::{col_str, Database};
use crate::services::checkpoints::write_due;
use crate::store::health_job::account_ids_on_shard;

pub async fn run<P: SchedulerPlatform>(
    p: &P,
    leases: &mut Leases,
    counts: &mut CheckpointCounts,
    detail: &mut Vec<String>,
) -> Outcome {
    let Some(seal) = p.audit_seal() else {
        detail.push("AUDIT_SIGNING_KEY is missing or malformed: no checkpoint signed".into());
        return Outcome::Failed;
    };
    let shard_ids = crate::jobs::shard_ids_by_binding(p.accounts()).await;
    let mut outcome = Outcome::Ok;
    for (binding, db) in p.shards() {
        let Some(shard_id) = shard_ids.get(&binding) else {
            continue;
        };
        let fence = match leases.take(p, shard_id).await {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                detail.push(format!("{binding}: taking the lease: {e}"));
                outcome = Outcome::Partial;
                continue;
            }
        };
        let accounts = match p.accounts().query(account_ids_on_shard(shard_id)).await {
            Ok(r) => r,
            Err(e) => {
                detail.push(format!("{binding}: listing accounts: {e}"));
                leases.release(p, &fence).await;
                outcome = Outcome::Partial;
                continue;
            }
        };
        for id in accounts
            .rows
            .iter()
            .filter_map(|r| col_str(r, "id").and_then(|s| uuid::Uuid::parse_str(s).ok()))
        {
            counts.accounts.add(1);
            match write_due(&db, p.checkpoints(), &seal.signer, &seal.keys, id, p.now()).await {
                Ok(w) => {
                    counts.signed.add(u64::from(w.signed));
                    counts.already_there.add(u64::from(w.already_there));
                    if !w.warnings.is_empty() {
                        outcome = Outcome::Partial;
                    }
                    for warning in w.warnings {
                        detail.push(format!("{binding}: account {id}: {warning}"));
                    }
                }
                Err(e) => {
                    counts.failed.add(1);
                    detail.push(format!("{binding}: account {id}: {e}"));
                    outcome = Outcome::Partial;
                }
            }
        }
        leases.release(p, &fence).await;
    }
    outcome
}
