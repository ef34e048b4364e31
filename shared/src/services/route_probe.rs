//! One account-D1 query per isolate per [`ACCOUNT_CHECK_INTERVAL`] for every cached route,
//! instead of one per cached account (issue 17: with 1,000 tenants, three UK locations and
//! tens of isolates each, per-account probes alone come to thousands of queries/s).
//!
//! Version-safe: a cached route is kept only when the probe finds its account at the same
//! version on the same shard (a move, deactivation, re-domain or any other account change moves
//! the version; a move changes `db_shard_id`); anything else drops it, so the next request
//! loads it again. The shard's record comes back fresh with every probe.
//!
//! [`ACCOUNT_CHECK_INTERVAL`]: crate::services::tenancy::ACCOUNT_CHECK_INTERVAL

use crate::domain::tenancy::Shard;
use crate::ports::{col_i64, col_json, col_str, Database};
use crate::services::tenancy::TenancyError;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Ids per probe query (a 500-id JSON list is about 19 kB, well inside D1's limits).
pub const PROBE_CHUNK: usize = 500;

/// What the probe found of one account.
#[derive(Debug, Clone, PartialEq)]
pub struct Probed {
    pub version: i64,
    pub shard: Shard,
}

/// The version and shard of each of `ids` that exists (absent: deleted or unknown).
pub async fn probe(
    db: &impl Database,
    ids: &[Uuid],
) -> Result<BTreeMap<Uuid, Probed>, TenancyError> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(PROBE_CHUNK) {
        let rows = db
            .query(crate::store::route_probe::versions_stmt(chunk))
            .await?;
        for r in &rows.rows {
            let id = col_str(r, "id").and_then(|s| Uuid::parse_str(s).ok());
            let version = col_i64(r, "version");
            let shard = col_json(r, "shard").and_then(|v| serde_json::from_value::<Shard>(v).ok());
            match (id, version, shard) {
                (Some(id), Some(version), Some(shard)) => {
                    out.insert(id, Probed { version, shard });
                }
                // A row the probe cannot read is left out: its route is dropped and reloaded,
                // and `load_route` reports the corruption.
                _ => continue,
            }
        }
    }
    Ok(out)
}
