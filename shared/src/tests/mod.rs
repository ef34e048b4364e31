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
mod cors;
mod deactivation;
mod derived_after_disposal;
mod derived_fields;
mod erasure_data_map;
mod erasure_races;
mod folding;
mod http_api;
mod http_semantics;
mod idempotency;
mod identity;
mod jobs_and_health;
mod model;
mod moves;
mod operator;
mod patch_edges;
mod pipeline;
mod read_cache;
mod rendering;
mod request_log;
mod restricted_documents;
mod restricted_lists;
mod restriction;
mod restriction_end;
mod restriction_lifecycle;
mod restriction_precedence;
mod retention_blocked;
mod retention_boundaries;
mod retention_review;
mod retention_sweep;
mod route_probe;
mod schema_and_plans;
mod tenancy;
mod writes;

pub(crate) mod overlap;

/// Move the fake clock to `at`.
pub(crate) fn advance_to(f: &Fake, at: time::OffsetDateTime) {
    let now = crate::domain::clock::Clock::now(&f.clock);
    f.clock.advance(at - now);
}

/// The account's retention policy: the UK preset with `edit` applied, set by an admin.
pub(crate) fn set_policy(f: &Fake, admin: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut p = serde_json::to_value(crate::domain::retention::Policy::uk_preset()).unwrap();
    edit(&mut p);
    let r = f.as_user(admin, Put, "/v1/settings/retention", Some(p));
    assert_eq!(r.status, 200, "{:?}", r.body_json());
}

/// An erasure request of `kind` (`client`/`user`) `id`, by an admin; its id.
pub(crate) fn request_erasure(f: &Fake, admin: &str, kind: &str, id: &str) -> String {
    let r = f.as_user(
        admin,
        Post,
        "/v1/erasure-requests",
        Some(json!({"subject_type": kind, "subject_id": id})),
    );
    assert_eq!(r.status, 202, "{:?}", r.body_json());
    r.body_json().unwrap()["id"].as_str().unwrap().to_string()
}

/// A former client whose relationship ended on `ended`, with one document of `kind`:
/// (client id, document id).
pub(crate) fn former_client_with_document(
    f: &Fake,
    admin: &str,
    ended: &str,
    kind: &str,
) -> (String, String) {
    let mut c = client_body();
    c["status"] = json!("former");
    c["relationship_ended_on"] = json!(ended);
    let client = created_id(&f.as_user(admin, Post, "/v1/clients", Some(c)));
    let doc = created_id(&f.as_user(
        admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": kind, "title": "FF"})),
    ));
    (client, doc)
}

pub(crate) fn created_id(r: &crate::api::http::ApiResponse) -> String {
    assert_eq!(r.status, 201, "{:?}", r.body_json());
    r.body_json()
        .and_then(|v| v["id"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A user (Grace Hopper) who may advise clients, created by `admin`: their id.
pub(crate) fn adviser(f: &Fake, admin: &str) -> String {
    created_id(&f.as_user(
        admin,
        Post,
        "/v1/users",
        Some(json!({"email": "grace@acme.example", "display_name": "Grace Hopper", "role": "member"})),
    ))
}

/// The stored body of row `id` of `table` on SHARD_EU_01 (null when there is none).
pub(crate) fn row_body(f: &Fake, table: &str, id: &str) -> serde_json::Value {
    f.shard_db("SHARD_EU_01")
        .query_json(&format!("SELECT body FROM {table} WHERE id = '{id}'"))
        .first()
        .and_then(|r| r["body"].as_str())
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// A document content upload (`PUT .../content`, a PDF) by `tok`: its status.
pub(crate) fn upload(f: &Fake, tok: &str, doc: &str) -> u16 {
    f.call(
        Put,
        &format!("/v1/documents/{doc}/content"),
        &[
            ("authorization", &format!("Bearer {tok}")),
            ("content-type", "application/pdf"),
        ],
        Some(json!("bytes")),
    )
    .status
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
