//! SQL of the signed audit checkpoints: the chain head they sign, the job's resume point, and
//! the rows verify compares with them.

use crate::ports::{col_i64, col_str, Database, Stmt, StoreError};
use serde_json::json;
use uuid::Uuid;

/// The account's last audit row: `(seq, hash)`, or `None` for an empty trail.
pub async fn chain_head(
    db: &impl Database,
    account_id: Uuid,
) -> Result<Option<(i64, String)>, StoreError> {
    let r = db
        .query(Stmt::new(
            "SELECT seq, body ->> '$.hash' AS hash FROM audit_log WHERE account_id = ?1 \
             ORDER BY seq DESC LIMIT 1",
            vec![json!(account_id)],
        ))
        .await?;
    Ok(r.first()
        .and_then(|row| Some((col_i64(row, "seq")?, col_str(row, "hash")?.to_string()))))
}

/// The job's resume point: `(period, digest)` of the last checkpoint it signed.
pub async fn resume_point(
    db: &impl Database,
    account_id: Uuid,
) -> Result<Option<(String, String)>, StoreError> {
    let r = db
        .query(Stmt::new(
            "SELECT body ->> '$.period' AS period, body ->> '$.digest' AS digest \
             FROM audit_checkpoint_heads WHERE account_id = ?1",
            vec![json!(account_id)],
        ))
        .await?;
    Ok(r.first().and_then(|row| {
        Some((
            col_str(row, "period")?.to_string(),
            col_str(row, "digest")?.to_string(),
        ))
    }))
}

pub fn save_resume_point(account_id: Uuid, period: &str, digest: &str, head_seq: i64) -> Stmt {
    Stmt::new(
        "INSERT INTO audit_checkpoint_heads (account_id, body) \
         VALUES (?1, json_object('period', ?2, 'digest', ?3, 'head_seq', ?4)) \
         ON CONFLICT (account_id) DO UPDATE SET body = excluded.body",
        vec![
            json!(account_id),
            json!(period),
            json!(digest),
            json!(head_seq),
        ],
    )
}

/// The hashes stored in the rows `seqs` of the account (at most 90 per call: D1 binds at
/// most 100 parameters).
pub async fn hashes_at(
    db: &impl Database,
    account_id: Uuid,
    seqs: &[i64],
) -> Result<Vec<(i64, String)>, StoreError> {
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(90) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
        let mut params = vec![json!(account_id)];
        params.extend(chunk.iter().map(|s| json!(s)));
        let r = db
            .query(Stmt::new(
                format!(
                    "SELECT seq, body ->> '$.hash' AS hash FROM audit_log \
                     WHERE account_id = ?1 AND seq IN ({})",
                    marks.join(", ")
                ),
                params,
            ))
            .await?;
        out.extend(
            r.rows
                .iter()
                .filter_map(|row| Some((col_i64(row, "seq")?, col_str(row, "hash")?.to_string()))),
        );
    }
    Ok(out)
}

/// The first row present: `(seq, prev_hash, recorded_time)`.
pub async fn chain_first(
    db: &impl Database,
    account_id: Uuid,
) -> Result<Option<(i64, String, Option<String>)>, StoreError> {
    let r = db
        .query(Stmt::new(
            "SELECT seq, body ->> '$.prev_hash' AS prev, body ->> '$.recorded_time' AS recorded \
             FROM audit_log WHERE account_id = ?1 ORDER BY seq LIMIT 1",
            vec![json!(account_id)],
        ))
        .await?;
    Ok(r.first().and_then(|row| {
        Some((
            col_i64(row, "seq")?,
            col_str(row, "prev")?.to_string(),
            col_str(row, "recorded").map(str::to_string),
        ))
    }))
}

/// The account's first links after `after_seq` (ascending, at most `limit`): `seq`, `hash`,
/// `recorded` (when the audit writer recorded it), for the audit log's own disposal.
pub fn oldest_links_stmt(account_id: Uuid, after_seq: i64, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, body ->> '$.hash' AS hash, body ->> '$.recorded_time' AS recorded \
         FROM audit_log WHERE account_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        vec![json!(account_id), json!(after_seq), json!(limit)],
    )
}

/// The latest signed disposal of the account (`body`: the signed checkpoint), if any.
pub fn latest_disposal_stmt(account_id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT body FROM audit_disposals WHERE account_id = ?1 ORDER BY through_seq DESC LIMIT 1",
        vec![json!(account_id)],
    )
}

/// Record a signed disposal (its copy in D1 unlocks the DELETE of the rows it covers).
pub fn insert_disposal_stmt(account_id: Uuid, through_seq: i64, signed_json: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO audit_disposals (account_id, through_seq, body) VALUES (?1, ?2, ?3)",
        vec![json!(account_id), json!(through_seq), json!(signed_json)],
    )
}

/// Delete the account's links up to `through_seq` (refused by the schema unless a disposal
/// covering them is recorded first, in the same batch).
pub fn delete_links_through_stmt(account_id: Uuid, through_seq: i64) -> Stmt {
    Stmt::new(
        "DELETE FROM audit_log WHERE account_id = ?1 AND seq <= ?2",
        vec![json!(account_id), json!(through_seq)],
    )
}
