//! The `shard_health` table (account D1): one sample per shard per health run, and the loads
//! the planner and account placement read from the latest samples.

use crate::domain::clock::{parse_rfc3339, rfc3339};
use crate::domain::planner::{AccountLoad, ShardLoad};
use crate::ports::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

const PERIODS_PER_DAY: u64 = 96; // 15-minute usage periods

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountUsage {
    pub account_id: String,
    pub rows: u64,
    /// The account's share of the database: its JSON bodies, scaled by the database size over
    /// all bodies, so indexes and page overhead are attributed in proportion (what moving the
    /// tenant would free).
    pub bytes: u64,
    /// Sum of the account's JSON bodies.
    #[serde(default)]
    pub body_bytes: u64,
    /// When `rows` and `body_bytes` were last measured (a measuring cycle may span runs).
    #[serde(default)]
    pub measured_at: String,
    /// Metered by the API in the previous complete usage period (see `Sample::usage_period`).
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub rows_read: u64,
    #[serde(default)]
    pub rows_written: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub id: String,
    pub shard_id: String,
    pub at: String,
    pub size_bytes: u64,
    pub capacity_bytes: u64,
    pub accounts: Vec<AccountUsage>,
    pub outbox_backlog: u64,
    pub oldest_unpublished_seconds: Option<i64>,
    pub probe_ms: i64,
    /// Start of the 15-minute period the accounts' requests and rows read/written cover.
    #[serde(default)]
    pub usage_period: String,
    /// Dead letters not yet replayed whose message names this shard.
    #[serde(default)]
    pub dead_letters_open: u64,
}

/// Latest sample of every shard, and the sample nearest to a day before it (for growth).
pub async fn latest_samples(
    db: &impl Database,
    shard_id: &str,
) -> Result<(Option<Sample>, Option<Sample>), StoreError> {
    let r = db
        .query(Stmt::new(
            "SELECT body FROM shard_health WHERE shard_id = ?1 ORDER BY at DESC LIMIT 1",
            vec![json!(shard_id)],
        ))
        .await?;
    let latest: Option<Sample> = r
        .first()
        .and_then(|row| col_json(row, "body"))
        .and_then(|b| serde_json::from_value(b).ok());
    let Some(l) = &latest else {
        return Ok((None, None));
    };
    let day_before = parse_rfc3339(&l.at)
        .map(|t| rfc3339(t - time::Duration::days(1)))
        .unwrap_or_default();
    let r = db
        .query(Stmt::new(
            "SELECT body FROM shard_health WHERE shard_id = ?1 AND at <= ?2 ORDER BY at DESC LIMIT 1",
            vec![json!(shard_id), json!(day_before)],
        ))
        .await?;
    let earlier = r
        .first()
        .and_then(|row| col_json(row, "body"))
        .and_then(|b| serde_json::from_value(b).ok());
    Ok((latest, earlier))
}

/// Bytes per day between two samples (0 when the times do not make sense).
fn growth(then_at: &str, now_at: &str, then_bytes: u64, now_bytes: u64) -> f64 {
    let (Some(a), Some(b)) = (parse_rfc3339(then_at), parse_rfc3339(now_at)) else {
        return 0.0;
    };
    let days = (b - a).as_seconds_f64() / 86_400.0;
    if days <= 0.0 {
        return 0.0;
    }
    (now_bytes as f64 - then_bytes as f64) / days
}

/// Loads of every registered shard from its latest samples.
pub async fn loads(db: &impl Database) -> Result<(Vec<ShardLoad>, Vec<AccountLoad>), StoreError> {
    let mut shards = Vec::new();
    let mut accounts = Vec::new();
    for s in crate::store::registry::shards(db).await? {
        let (latest, earlier) = latest_samples(db, &s.id).await?;
        let size = latest.as_ref().map(|l| l.size_bytes).unwrap_or(0);
        let shard_growth = match (&latest, &earlier) {
            (Some(l), Some(e)) => growth(&e.at, &l.at, e.size_bytes, l.size_bytes),
            _ => 0.0,
        };
        let status = serde_json::to_value(s.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let tier = serde_json::to_value(s.tier)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        shards.push(ShardLoad {
            id: s.id.clone(),
            tier,
            status,
            capacity_bytes: s.capacity_bytes,
            size_bytes: size,
            growth_bytes_per_day: shard_growth,
        });
        if let Some(l) = &latest {
            for a in &l.accounts {
                let before = earlier
                    .as_ref()
                    .and_then(|e| e.accounts.iter().find(|x| x.account_id == a.account_id));
                let g = match (before, earlier.as_ref()) {
                    (Some(b), Some(e)) => growth(&e.at, &l.at, b.bytes, a.bytes),
                    _ => 0.0,
                };
                accounts.push(AccountLoad {
                    account_id: a.account_id.clone(),
                    shard_id: s.id.clone(),
                    size_bytes: a.bytes,
                    growth_bytes_per_day: g,
                    rows_read_per_day: a.rows_read * PERIODS_PER_DAY,
                    rows_written_per_day: a.rows_written * PERIODS_PER_DAY,
                });
            }
        }
    }
    Ok((shards, accounts))
}
