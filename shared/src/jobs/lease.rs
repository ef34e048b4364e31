//! Job leases: before a run of a job touches a shard it takes that job's lease on the shard
//! (`store::job_state`, account D1). A second run meanwhile is skipped ("lease held", typed in
//! the run's report) and does nothing there; a lease expires, so a crashed run blocks the shard
//! for at most its job's lease time, and the run that takes it over gets a larger fencing token,
//! which the stale run's cursor writes then fail to match.

use crate::jobs::{Job, SchedulerPlatform};
use crate::ports::StoreError;
use crate::store::job_state::{self, Acquired, Fence};
use serde::Serialize;

impl Job {
    /// How long a run holds its lease on one shard: longer than the run can last (a Cron
    /// Trigger's invocation is bounded; every job's work per shard is bounded), short enough
    /// that a crashed run does not delay the next one much.
    pub fn lease_ttl(self) -> time::Duration {
        match self {
            Job::OutboxRelay => time::Duration::minutes(2),
            Job::MigrationCheck => time::Duration::minutes(5),
            Job::ShardHealth => time::Duration::minutes(10),
            Job::Retention => time::Duration::minutes(20),
            Job::AuditCheckpoints => time::Duration::minutes(10),
            // Per move (`move:{id}`): a run steps one move for well under a minute.
            Job::Moves => time::Duration::minutes(2),
        }
    }
}

/// A shard a run left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub shard: String,
    #[serde(flatten)]
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// Another run of the same job holds this shard's lease.
    LeaseHeld { holder: String, expires_at: String },
}

/// The leases of one run: its holder id, and the shards it was refused.
#[derive(Debug)]
pub struct Leases {
    pub job: Job,
    pub holder: String,
    pub skipped: Vec<Skipped>,
    /// Leases granted to this run.
    pub taken: usize,
}

impl Leases {
    pub fn new(job: Job, holder: String) -> Self {
        Leases {
            job,
            holder,
            skipped: Vec::new(),
            taken: 0,
        }
    }

    /// Take this run's lease on `shard`; `None` (recorded as skipped) while another run holds it.
    pub async fn take<P: SchedulerPlatform>(
        &mut self,
        p: &P,
        shard: &str,
    ) -> Result<Option<Fence>, StoreError> {
        let got = job_state::acquire(
            p.accounts(),
            self.job.name(),
            shard,
            &self.holder,
            p.now(),
            self.job.lease_ttl(),
        )
        .await?;
        match got {
            Acquired::Granted { fence, .. } => {
                self.taken += 1;
                Ok(Some(fence))
            }
            Acquired::Held { holder, expires_at } => {
                self.skipped.push(Skipped {
                    shard: shard.to_string(),
                    reason: SkipReason::LeaseHeld { holder, expires_at },
                });
                Ok(None)
            }
        }
    }

    /// Give a lease back once the run is done with the shard (a failure only delays the next
    /// run until the lease expires).
    pub async fn release<P: SchedulerPlatform>(&self, p: &P, fence: &Fence) {
        if let Err(e) =
            crate::ports::Database::query(p.accounts(), job_state::release_stmt(fence, p.now()))
                .await
        {
            tracing::warn!(error = %e, lease = %fence.lease_id, "releasing the lease failed; it expires");
        }
    }
}

/// Why a job's work on one shard stopped (the jobs layer's errors).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The lease expired and another run took it over: this run's cursor write was refused.
    #[error("lease {lease} lost to a newer run (token {token} is stale); stopped")]
    LeaseLost { lease: String, token: i64 },
}

/// Keep the lease while the run works (before each unit of bounded work): extended by the job's
/// lease time from now, only while `fence` is still current; `LeaseLost` otherwise, and the run
/// must stop touching the shard (a newer run has it).
pub async fn renew<P: SchedulerPlatform>(p: &P, job: Job, fence: &Fence) -> Result<(), JobError> {
    use crate::ports::Database;
    let until = p.now() + job.lease_ttl();
    let r = p
        .accounts()
        .query(job_state::renew_stmt(fence, until))
        .await?;
    if r.meta.changes == 0 {
        return Err(JobError::LeaseLost {
            lease: fence.lease_id.clone(),
            token: fence.token,
        });
    }
    Ok(())
}

/// Store or forget a cursor under `fence`; refused (`LeaseLost`) when the fence is stale.
pub async fn write_cursor<P: SchedulerPlatform>(
    p: &P,
    id: &str,
    body: Option<&serde_json::Value>,
    fence: &Fence,
) -> Result<(), JobError> {
    use crate::ports::Database;
    let stmt = match body {
        Some(b) => job_state::put_cursor_stmt(id, b, fence),
        None => job_state::delete_cursor_stmt(id, fence),
    };
    let r = p.accounts().query(stmt).await?;
    if r.meta.changes == 0 && !job_state::still_holds(p.accounts(), fence).await? {
        return Err(JobError::LeaseLost {
            lease: fence.lease_id.clone(),
            token: fence.token,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
