//! The `erasure_requests` table (shard D1) and the pseudonymising expressions the retention
//! sweep applies to rows that must stay when their subject is erased. Requests change only
//! through the write protocol (`erasure_request.created` / `erasure_request.updated`).

use crate::ports::Stmt;
use serde_json::json;
use uuid::Uuid;

/// Personal fields replaced when a client row must stay (other kept records refer to it), and
/// its restriction with them (nothing personal is left to restrict). `?3` is the time.
pub const CLIENT_PSEUDONYM: &str =
    "json_set(json_remove(body, '$.email', '$.phone', '$.address', '$.dependants', \
     '$.notes', '$.date_of_birth', '$.title', '$.search_text', '$.adviser_name', '$.restricted'), \
     '$.forenames', '[erased]', '$.surname', '[erased]', '$.erased_at', ?3)";
/// A user's personal fields replaced (the row stays: audit rows and clients refer to its id).
pub const USER_PSEUDONYM: &str =
    "json_set(body, '$.display_name', '[erased]', '$.email', 'erased-' || id || '@invalid', \
     '$.erased_at', ?3, '$.deleted_at', coalesce(body ->> '$.deleted_at', ?3))";

/// Pending requests read per page.
pub const PENDING_PAGE: i64 = 50;

/// A page of requests not yet carried out after id `after` (keyset over the status index),
/// oldest first: ids are UUIDv7 of the time received, and every request is due a month after
/// it was received, so this is also the order of their deadlines. The sweep pages through all
/// of them, so requests that cannot proceed (held) never take a newer one's place.
pub fn pending_stmt(account_id: Uuid, after: &str) -> Stmt {
    Stmt::new(
        "SELECT id, body FROM erasure_requests WHERE account_id = ?1 AND status = 'pending' \
         AND id > ?2 ORDER BY id LIMIT ?3",
        vec![json!(account_id), json!(after), json!(PENDING_PAGE)],
    )
}

/// Requests that kept records restricted (`status = 'restricted'`) and whose earliest
/// restriction ends by `now` (`review_at`; one recorded before reviews existed has none and is
/// reviewed at once, which sets it). A range of the status index: it reads the account's
/// restricted requests (erasure requests are few), none of the completed ones.
pub fn due_for_review_stmt(account_id: Uuid, now: &str) -> Stmt {
    Stmt::new(
        "SELECT id, body FROM erasure_requests WHERE account_id = ?1 AND status = 'restricted' \
         AND coalesce(body ->> '$.review_at', '') <= ?2 ORDER BY id LIMIT 50",
        vec![json!(account_id), json!(now)],
    )
}

/// One request (the API's read).
pub fn get_stmt(account_id: Uuid, id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT body FROM erasure_requests WHERE account_id = ?1 AND id = ?2",
        vec![json!(account_id), json!(id)],
    )
}

/// Whether the subject of a new request exists (`table` is `clients` or `users`).
pub fn subject_exists_stmt(table: &str, account_id: Uuid, id: &str) -> Stmt {
    Stmt::new(
        format!("SELECT id FROM {table} WHERE account_id = ?1 AND id = ?2"),
        vec![json!(account_id), json!(id)],
    )
}
