//! The `erasure_requests` table (shard D1) and the pseudonymising expressions the retention
//! sweep applies to rows that must stay when their subject is erased.

use crate::ports::Stmt;
use serde_json::{json, Value};
use uuid::Uuid;

/// Personal fields replaced when a row must stay (other kept records refer to it).
pub const CLIENT_PSEUDONYM: &str = "json_set(json_remove(body, '$.email', '$.phone', '$.address', '$.dependants', \
     '$.notes', '$.date_of_birth', '$.title', '$.search_text'), '$.forenames', '[erased]', '$.surname', '[erased]', \
     '$.erased_at', ?3)";
pub const USER_PSEUDONYM: &str =
    "json_set(body, '$.display_name', '[erased]', '$.email', 'erased-' || id || '@invalid', \
     '$.erased_at', ?3, '$.deleted_at', coalesce(body ->> '$.deleted_at', ?3))";

pub fn pending_stmt(account_id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT id, body FROM erasure_requests WHERE account_id = ?1 AND status = 'pending' ORDER BY id LIMIT 50",
        vec![json!(account_id)],
    )
}

pub fn complete_stmt(account_id: Uuid, id: &str, status: &str, outcome: &Value, now: &str) -> Stmt {
    Stmt::new(
        "UPDATE erasure_requests SET body = json_set(body, '$.status', ?3, '$.completed_at', ?4, '$.outcome', json(?5)) \
         WHERE account_id = ?1 AND id = ?2",
        vec![json!(account_id), json!(id), json!(status), json!(now), json!(outcome.to_string())],
    )
}
