//! Layer 1, the store: SQL, one file per table family. Each returns `Stmt`s or typed rows over
//! the [`crate::ports::Database`] port; it knows the domain's records and nothing above them.

pub mod accounts;
pub mod audit;
pub mod changes;
pub mod checkpoints;
pub mod dead_letters;
pub mod derived_fields;
pub mod entities;
pub mod erasure_requests;
pub mod event_evidence;
pub mod health_job;
pub mod idempotency;
pub mod identity;
pub mod job_state;
pub mod moves;
pub mod operations;
pub mod outbox;
pub mod platform_audit;
pub mod platform_events;
pub mod registry;
pub mod retention;
pub mod route_probe;
pub mod schema;
pub mod shard_health;
pub mod usage;

/// The cheapest statement a shard session can run: a response that reads nothing else from the
/// shard (the account's settings come with its route) still learns the session's bookmark.
pub fn session_bookmark_stmt() -> crate::ports::Stmt {
    crate::ports::Stmt::new("SELECT 1 AS one", vec![])
}
