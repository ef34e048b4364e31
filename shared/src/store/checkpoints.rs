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

/// The first row present: `(seq, prev_hash)`.
pub async fn chain_first(
    db: &impl Database,
    account_id: Uuid,
) -> Result<Option<(i64, String)>, StoreError> {
    let r = db
        .query(Stmt::new(
            "SELECT seq, body ->> '$.prev_hash' AS prev FROM audit_log WHERE account_id = ?1 \
             ORDER BY seq LIMIT 1",
            vec![json!(account_id)],
        ))
        .await?;
    Ok(r.first()
        .and_then(|row| Some((col_i64(row, "seq")?, col_str(row, "prev")?.to_string()))))
}
