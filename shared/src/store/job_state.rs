//! The jobs' own state in the account D1: `job_leases` (one lease per job and shard, with a
//! fencing token), `job_cursors` (where a bounded run stopped; every write fenced by the
//! writer's lease) and `job_runs` (the record of each run).

use crate::domain::clock::rfc3339;
use crate::ports::{col_i64, col_json, col_str, Database, Stmt, StoreError};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The lease of `job` on `shard` (also the key of its row).
pub fn lease_id(job: &str, shard: &str) -> String {
    format!("{job}:{shard}")
}

/// Proof that a run holds a lease: its row and token. Cursor writes carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease_id: String,
    pub token: i64,
}

/// What an attempt to take a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// This run holds the lease until `expires_at`, with `fence`.
    Granted { fence: Fence, expires_at: String },
    /// Another run holds it.
    Held { holder: String, expires_at: String },
}

/// Take the lease for `holder` until `now + ttl`, in one statement: a new row starts at token 1;
/// an expired lease (`expires_at <= now`) is taken over with the next token; a live one is left
/// as it is and the statement returns no row.
pub fn acquire_stmt(
    job: &str,
    shard: &str,
    holder: &str,
    now: OffsetDateTime,
    ttl: time::Duration,
) -> Stmt {
    Stmt::new(
        "INSERT INTO job_leases (id, body) VALUES (?1, json_object('id', ?1, 'job', ?2, 'shard_id', ?3, \
         'holder', ?4, 'token', 1, 'acquired_at', ?5, 'expires_at', ?6)) \
         ON CONFLICT (id) DO UPDATE SET body = json_set(body, '$.holder', ?4, \
         '$.token', CAST(body ->> '$.token' AS INTEGER) + 1, '$.acquired_at', ?5, '$.expires_at', ?6) \
         WHERE body ->> '$.expires_at' <= ?5 \
         RETURNING CAST(body ->> '$.token' AS INTEGER) AS token, body ->> '$.expires_at' AS expires_at",
        vec![
            json!(lease_id(job, shard)),
            json!(job),
            json!(shard),
            json!(holder),
            json!(rfc3339(now)),
            json!(rfc3339(now + ttl)),
        ],
    )
}

/// The current holder of a lease (to report who holds it).
pub fn lease_stmt(id: &str) -> Stmt {
    Stmt::new(
        "SELECT body ->> '$.holder' AS holder, body ->> '$.expires_at' AS expires_at FROM job_leases WHERE id = ?1",
        vec![json!(id)],
    )
}

/// Take the lease (see [`acquire_stmt`]); reads the holder when it is not granted.
pub async fn acquire(
    db: &impl Database,
    job: &str,
    shard: &str,
    holder: &str,
    now: OffsetDateTime,
    ttl: time::Duration,
) -> Result<Acquired, StoreError> {
    let r = db.query(acquire_stmt(job, shard, holder, now, ttl)).await?;
    if let Some(row) = r.first() {
        return Ok(Acquired::Granted {
            fence: Fence {
                lease_id: lease_id(job, shard),
                token: col_i64(row, "token").unwrap_or(0),
            },
            expires_at: col_str(row, "expires_at").unwrap_or_default().to_string(),
        });
    }
    let r = db.query(lease_stmt(&lease_id(job, shard))).await?;
    let row = r.first();
    Ok(Acquired::Held {
        holder: row
            .and_then(|r| col_str(r, "holder"))
            .unwrap_or_default()
            .to_string(),
        expires_at: row
            .and_then(|r| col_str(r, "expires_at"))
            .unwrap_or_default()
            .to_string(),
    })
}

/// Give the lease back at the end of a run (it expires now; the token stays, so the next run
/// takes the next one). Only the holder's token releases it.
pub fn release_stmt(fence: &Fence, now: OffsetDateTime) -> Stmt {
    Stmt::new(
        "UPDATE job_leases SET body = json_set(body, '$.expires_at', ?3) \
         WHERE id = ?1 AND CAST(body ->> '$.token' AS INTEGER) = ?2",
        vec![
            json!(fence.lease_id),
            json!(fence.token),
            json!(rfc3339(now)),
        ],
    )
}

/// Extend the lease to `until`, only while `fence` is its current token (`changes` 0: lost).
pub fn renew_stmt(fence: &Fence, until: OffsetDateTime) -> Stmt {
    Stmt::new(
        "UPDATE job_leases SET body = json_set(body, '$.expires_at', ?3) \
         WHERE id = ?1 AND CAST(body ->> '$.token' AS INTEGER) = ?2",
        vec![
            json!(fence.lease_id),
            json!(fence.token),
            json!(rfc3339(until)),
        ],
    )
}

/// The fencing condition every cursor write carries: the writer's token (`?{n+1}`) is the
/// current one of the lease (`?{n}`).
fn fenced(n: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM job_leases WHERE id = ?{n} AND CAST(body ->> '$.token' AS INTEGER) = ?{})",
        n + 1
    )
}

/// A stored cursor's body.
pub async fn cursor(db: &impl Database, id: &str) -> Result<Option<Value>, StoreError> {
    let r = db
        .query(Stmt::new(
            "SELECT body FROM job_cursors WHERE id = ?1",
            vec![json!(id)],
        ))
        .await?;
    Ok(r.first().and_then(|row| col_json(row, "body")))
}

/// Store a cursor, only while `fence` is the lease's current token.
pub fn put_cursor_stmt(id: &str, body: &Value, fence: &Fence) -> Stmt {
    Stmt::new(
        format!(
            "INSERT INTO job_cursors (id, body) SELECT ?1, ?2 WHERE {} \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            fenced(3)
        ),
        vec![
            json!(id),
            json!(body.to_string()),
            json!(fence.lease_id),
            json!(fence.token),
        ],
    )
}

/// Forget a cursor (the cycle is complete), only while `fence` is the lease's current token.
pub fn delete_cursor_stmt(id: &str, fence: &Fence) -> Stmt {
    Stmt::new(
        format!("DELETE FROM job_cursors WHERE id = ?1 AND {}", fenced(2)),
        vec![json!(id), json!(fence.lease_id), json!(fence.token)],
    )
}

/// Whether the fence is still the lease's current token (a delete of an absent cursor changes
/// nothing either way, so its refusal is told apart by this).
pub async fn still_holds(db: &impl Database, fence: &Fence) -> Result<bool, StoreError> {
    let r = db
        .query(Stmt::new(
            "SELECT 1 AS ok FROM job_leases WHERE id = ?1 AND CAST(body ->> '$.token' AS INTEGER) = ?2",
            vec![json!(fence.lease_id), json!(fence.token)],
        ))
        .await?;
    Ok(!r.rows.is_empty())
}

/// The record of one run.
pub fn insert_run_stmt(id: &str, body: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO job_runs (id, body) VALUES (?1, ?2)",
        vec![json!(id), json!(body)],
    )
}
