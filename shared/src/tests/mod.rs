//! Native tests of the whole request path over fakes (real migrations on SQLite).

use crate::api::http::Method::*;
use crate::consumer::Decision;
use crate::domain::auth::Role;
use crate::domain::entity::{self, FilterOp};
use crate::jobs::{self, Job, Outcome};
use crate::testing::fakes::{block_on, query_plan, SqliteDb};
use crate::testing::harness::*;
use serde_json::json;
use uuid::Uuid;

mod audit_bucket_objects;
mod audit_checkpoint_freshness;
mod audit_disposal;
mod audit_guards;
mod audit_insider;
mod audit_keys;
mod audit_offline;
mod audit_stored_text;
mod audit_trail;
mod audit_truncation;
mod audit_unsigned_links;
mod audit_verify;
mod bookmarks;
mod capacity_inputs;
mod consumer_checks;
mod consumer_forgery;
mod contention;
mod deactivation;
mod derived_after_disposal;
mod derived_fields;
mod erasure_data_map;
mod folding;
mod http_api;
mod http_semantics;
mod idempotency;
mod identity;
mod jobs_and_health;
mod model;
mod operator;
mod patch_edges;
mod pipeline;
mod read_cache;
mod restricted_documents;
mod restricted_lists;
mod restriction;
mod restriction_lifecycle;
mod retention_boundaries;
mod retention_review;
mod retention_sweep;
mod route_probe;
mod schema_and_plans;
mod tenancy;
mod writes;

pub(crate) mod overlap;

pub(crate) fn created_id(r: &crate::api::http::ApiResponse) -> String {
    assert_eq!(r.status, 201, "{:?}", r.body_json());
    r.body_json()
        .and_then(|v| v["id"].as_str())
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn client_body() -> serde_json::Value {
    json!({"forenames": "Ada", "surname": "Lovelace", "status": "active"})
}

/// Run the consumer on everything queued, and the index-jobs follow-ups until none remain.
pub(crate) fn settle(f: &Fake) -> usize {
    f.drain_queue();
    let mut chunks = 0;
    loop {
        let jobs: Vec<serde_json::Value> = f.index_jobs.sent.borrow_mut().drain(..).collect();
        if jobs.is_empty() {
            return chunks;
        }
        chunks += jobs.len();
        let d = block_on(crate::consumer::process_index_jobs(f, &jobs));
        assert!(d.iter().all(|d| *d == Decision::Ack), "{d:?}");
    }
}

/// `n` former clients of `acct` on shard-eu-01, straight into SQLite: ids
/// `00000000-0000-4000-{block}-<row number>`, relationship ended on `ended`, optionally
/// under a client-level legal hold.
pub(crate) fn former_clients(
    f: &Fake,
    acct: Uuid,
    n: i64,
    block: &str,
    surname: &str,
    ended: &str,
    held: bool,
) {
    let hold = if held {
        ", 'legal_hold', json('true')"
    } else {
        ""
    };
    f.shard_db("SHARD_EU_01")
        .exec(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO clients (account_id, id, body) SELECT '{acct}', printf('00000000-0000-4000-{block}-%012d', i), \
             json_object('forenames', 'F', 'surname', '{surname}', 'status', 'former', 'version', 1, \
             'created_at', '2005-01-01T00:00:00.000Z', 'relationship_ended_on', '{ended}'{hold}) FROM n;"
        ))
        .unwrap();
}
