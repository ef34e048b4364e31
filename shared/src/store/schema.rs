//! Schema fingerprints: a SHA-256 over `sqlite_master` (tables, indexes, triggers; whitespace
//! folded; SQLite's, D1's and wrangler's own tables left out). The expected fingerprints of the
//! embedded migrations are committed in `migrations/*.schema.sha256`; a native test recomputes
//! them from the migrations, so a new migration without its fingerprint fails the tests.

use crate::ports::{col_str, Database, Stmt, StoreError};
use sha2::{Digest, Sha256};

pub const EXPECTED_ACCOUNT: &str = include_str!("../../../migrations/account.schema.sha256");
pub const EXPECTED_SHARD: &str = include_str!("../../../migrations/shard.schema.sha256");

pub fn master_stmt() -> Stmt {
    Stmt::new(
        "SELECT type, name, tbl_name, sql FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name <> 'd1_migrations' \
         ORDER BY type, name",
        vec![],
    )
}

pub async fn fingerprint(db: &impl Database) -> Result<String, StoreError> {
    let rows = db.query(master_stmt()).await?;
    let mut h = Sha256::new();
    for r in &rows.rows {
        let sql: String = col_str(r, "sql")
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for part in [
            col_str(r, "type").unwrap_or_default(),
            col_str(r, "name").unwrap_or_default(),
            col_str(r, "tbl_name").unwrap_or_default(),
            &sql,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.update([b'\n']);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests;
