//! The tenancy registry's records: accounts, shards and their schema status, and the local-only
//! fault injection an account may carry. Stored as JSON bodies in the account D1 (see
//! `services::tenancy` for routing and `store::registry` for the lookups).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Shared,
    Dedicated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardStatus {
    Active,
    Draining,
    Readonly,
    Provisioning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Production,
    Training,
    Test,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub id: String,
    /// The D1 binding name a deployment uses for this shard.
    pub binding: String,
    pub tier: Tier,
    pub status: ShardStatus,
    pub capacity_bytes: u64,
    pub jurisdiction: String,
    /// The Worker deployment that serves this shard (named in 421 responses).
    pub deployment: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Set by the migration check; writes pause while it is not `current`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaCheck>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaStatus {
    Current,
    /// Migrations of this build are not applied yet.
    Behind,
    /// Applied migrations or the schema differ from this build's.
    Drifted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaCheck {
    pub status: SchemaStatus,
    #[serde(default)]
    pub detail: Option<String>,
    pub checked_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub db_shard_id: String,
    pub is_active: bool,
    pub tier: Tier,
    pub kind: AccountKind,
    #[serde(default)]
    pub uk_only: bool,
    #[serde(default)]
    pub cidr_allowlist: Option<Vec<String>>,
    #[serde(default)]
    pub retention: Value,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, deserialize_with = "crate::domain::integers::deserialize")]
    pub version: i64,
    /// A legal hold on everything of the account (the retention sweep deletes nothing).
    #[serde(default)]
    pub legal_hold: bool,
    /// Fault injection for tests; honoured only by the local environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
}

/// Local-only fault injection, per account so tests stay independent of each other.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Fraction of writes whose queue send is skipped, as if it failed (the relay recovers).
    #[serde(default)]
    pub queue_send_rate: f64,
    /// Fraction of messages the consumer processes and then retries, as if it died before acking.
    #[serde(default)]
    pub consumer_retry_rate: f64,
    /// Process every message of this account twice, as if the batch were delivered twice.
    #[serde(default)]
    pub duplicate_delivery: bool,
}

impl Faults {
    pub fn valid(&self) -> bool {
        (0.0..=1.0).contains(&self.queue_send_rate)
            && (0.0..=1.0).contains(&self.consumer_retry_rate)
    }
}
