//! SQL of what operators read in the account D1 about the platform's own work: job runs,
//! open rebalancing proposals and a shard's health samples.

use crate::ports::Stmt;
use serde_json::json;

/// The latest 100 runs, of one job or of all.
pub fn job_runs(job: Option<&str>) -> Stmt {
    match job {
        Some(j) => Stmt::new(
            "SELECT body FROM job_runs WHERE job = ?1 ORDER BY started_at DESC LIMIT 100",
            vec![json!(j)],
        ),
        None => Stmt::new(
            "SELECT body FROM job_runs ORDER BY id DESC LIMIT 100",
            vec![],
        ),
    }
}

pub fn open_proposals() -> Stmt {
    Stmt::new(
        "SELECT body FROM rebalance_proposals WHERE status = 'open' ORDER BY created_at DESC LIMIT 200",
        vec![],
    )
}

/// A shard's health samples, newest first.
pub fn health_samples(shard_id: &str, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT body FROM shard_health WHERE shard_id = ?1 ORDER BY at DESC LIMIT ?2",
        vec![json!(shard_id), json!(limit)],
    )
}
