//! Typed run reports: each job counts what it did in its own struct of named counters. A
//! counter the run never reached stays unset and is left out of the JSON (`job_runs`, the
//! operator API, the scheduler's log line), so `{"deleted": 0}` means "looked, found none"
//! and a missing `deleted` means "did not look".

use serde::Serialize;
use std::collections::BTreeMap;

/// One named counter: unset until the run reaches it.
pub type Count = Option<u64>;

/// Adding to a counter sets it.
pub trait Tally {
    fn add(&mut self, n: u64);
}

impl Tally for Count {
    fn add(&mut self, n: u64) {
        *self = Some(self.unwrap_or(0).saturating_add(n));
    }
}

macro_rules! counters {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
        pub struct $name {
            $(
                $(#[$fm])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $field: Count,
            )*
        }
    };
}

counters! {
    /// `outbox_relay`.
    pub struct RelayCounts {
        /// Account changes moved from their account row into the shard's outbox.
        account_events_forwarded,
        /// Outbox rows sent again (their first send failed or was never marked).
        republished,
        /// Published rows past their keep period, deleted.
        purged,
    }
}

counters! {
    /// `shard_health`.
    pub struct HealthCounts {
        sampled,
        dead_letters_open,
        proposals,
        proposals_new,
        proposals_superseded,
        proposal_events_failed,
    }
}

counters! {
    /// `migration_check`: databases by schema status.
    pub struct MigrationCounts {
        current,
        behind,
        drifted,
    }
}

counters! {
    /// `retention`: what the sweep disposed of, kept and spent, over every shard.
    pub struct RetentionCounts {
        resumed,
        left_for_next_run,
        cycles_completed,
        usage_periods_purged,
        deleted,
        candidates_examined,
        rows_read,
        rows_written,
        /// Due rows kept because a hold applies, or arrived (or the row changed) after the read.
        held,
        kept,
        clients_deleted,
        documents_deleted,
        users_deleted,
        groups_deleted,
        /// Due clients kept because documents still kept refer to them (kept as long).
        clients_kept_for_documents,
        /// Due erased users kept because clients still name them as adviser (the
        /// pseudonymous row stays while their clients do).
        users_kept_for_clients,
        /// Due rows a constraint refused to delete (named in the run's detail; `partial`).
        clients_blocked,
        documents_blocked,
        users_blocked,
        groups_blocked,
        contents_deleted,
        contents_delete_failed,
        idempotency_keys_purged,
        dead_letters_purged,
        erasures_completed,
        erasures_held,
        /// Erasures left for the run that changed the row meanwhile (or the next night).
        erasures_deferred,
        idempotency_keys_erased,
        cache_keys_deleted,
        erasure_places_unhandled,
        /// Restrictions whose `until` had passed, lifted (`*.unrestricted`).
        restrictions_lifted,
        /// Audit links past the audit log's own retention, removed behind a signed disposal.
        audit_links_disposed,
        /// Accounts whose audit disposal failed this run (tried again the next night).
        audit_disposals_failed,
    }
}

impl RetentionCounts {
    /// The `{table}_deleted` counter.
    pub fn deleted_from(&mut self, table: &str) -> &mut Count {
        match table {
            "clients" => &mut self.clients_deleted,
            "documents" => &mut self.documents_deleted,
            "users" => &mut self.users_deleted,
            _ => &mut self.groups_deleted,
        }
    }

    /// The `{table}_blocked` counter.
    pub fn blocked_in(&mut self, table: &str) -> &mut Count {
        match table {
            "clients" => &mut self.clients_blocked,
            "documents" => &mut self.documents_blocked,
            "users" => &mut self.users_blocked,
            _ => &mut self.groups_blocked,
        }
    }
}

/// One shard's share of a retention run (an operator sizing the sweep wants each shard's cost
/// per deletion).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ShardSweep {
    pub deleted: u64,
    pub candidates_examined: u64,
    pub rows_read: u64,
    pub rows_written: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    #[serde(flatten)]
    pub counts: RetentionCounts,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_shard: BTreeMap<String, ShardSweep>,
    /// Due rows the sweep could not dispose of (`{shard}: {table}/{id}: why`): the run is
    /// `partial` and names them in its detail, never a silent success.
    #[serde(skip)]
    pub undisposed: Vec<String>,
}

counters! {
    /// `audit_checkpoints`.
    pub struct CheckpointCounts {
        /// Accounts whose due checkpoints were looked at.
        accounts,
        /// Checkpoints signed and stored by this run.
        signed,
        /// Periods whose checkpoint was already in the bucket (a repeated or overlapping run).
        already_there,
        /// Accounts whose checkpoints could not be written this run (retried next hour).
        failed,
    }
}

counters! {
    /// `moves`.
    pub struct MoveCounts {
        /// Moves in flight that the run looked at.
        moves,
        /// Steps run (each bounded).
        steps,
        /// Phases entered.
        phase_changes,
        /// Phase-change platform events that could not be sent.
        events_failed,
        /// D1 calls of the invocation when the run stopped stepping (see `D1_CALLS_PER_INVOCATION`).
        d1_calls,
        /// Moves whose stepping stopped for the invocation's D1 call budget (they go on next run).
        budget_stops,
    }
}

/// A run's counts, by job (serialised as the job's own object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RunReport {
    OutboxRelay(RelayCounts),
    ShardHealth(HealthCounts),
    MigrationCheck(MigrationCounts),
    Retention(Box<RetentionReport>),
    AuditCheckpoints(CheckpointCounts),
    Moves(MoveCounts),
}

impl RunReport {
    /// As JSON (what `job_runs` stores and the operator API answers).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_counters_are_left_out_and_set_ones_appear_even_at_zero() {
        let mut r = RetentionReport::default();
        r.counts.deleted.add(0);
        r.counts.deleted_from("documents").add(2);
        r.by_shard.insert("s".into(), ShardSweep::default());
        let v = serde_json::to_value(RunReport::Retention(Box::new(r))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"deleted": 0, "documents_deleted": 2,
                "by_shard": {"s": {"deleted": 0, "candidates_examined": 0, "rows_read": 0, "rows_written": 0}}})
        );
        let relay = RunReport::OutboxRelay(RelayCounts::default());
        assert_eq!(serde_json::to_value(relay).unwrap(), serde_json::json!({}));
    }
}
