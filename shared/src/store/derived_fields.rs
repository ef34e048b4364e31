//! The denormalised fields of clients (`group_name`, `adviser_name`, `search_text`,
//! `document_count`), each derived by SQL from the current rows, never from an event's payload.
//! `services::derived` decides which of these an event needs.

use crate::ports::Stmt;
use serde_json::json;

const GROUP_NAME: &str =
    "(SELECT g.body ->> '$.name' FROM groups g WHERE g.account_id = clients.account_id \
     AND g.id = clients.group_id AND g.deleted_at IS NULL)";
const ADVISER_NAME: &str =
    "(SELECT u.body ->> '$.display_name' FROM users u WHERE u.account_id = clients.account_id \
     AND u.id = clients.adviser_id AND u.deleted_at IS NULL)";
const DOCUMENT_COUNT: &str =
    "(SELECT count(*) FROM documents d WHERE d.account_id = clients.account_id \
     AND d.client_id = clients.id AND d.deleted_at IS NULL)";
/// Every derived-field update moves `index_rev`, which is part of the read-cache key: cached
/// renderings of the old body can no longer be found. (`version` is the user's concurrency
/// token and does not move for derived fields.)
const BUMP: &str = "'$.index_rev', coalesce(body ->> '$.index_rev', 0) + 1";
const SEARCH_TEXT: &str =
    "lower(trim(coalesce(body ->> '$.surname', '') || ' ' || coalesce(body ->> '$.forenames', '') \
     || ' ' || coalesce(body ->> '$.address.postcode', '')))";

pub fn refresh_client(account_id: &str, client_id: &str) -> Stmt {
    Stmt::new(
        format!(
            "UPDATE clients SET body = json_set(body, '$.group_name', {GROUP_NAME}, \
             '$.adviser_name', {ADVISER_NAME}, '$.search_text', {SEARCH_TEXT}, \
             '$.document_count', {DOCUMENT_COUNT}, {BUMP}) \
             WHERE account_id = ?1 AND id = ?2"
        ),
        vec![json!(account_id), json!(client_id)],
    )
}

pub fn recount_documents(account_id: &str, document_id: &str) -> Stmt {
    Stmt::new(
        format!(
            "UPDATE clients SET body = json_set(body, '$.document_count', \
             (SELECT count(*) FROM documents d WHERE d.account_id = clients.account_id \
              AND d.client_id = clients.id AND d.deleted_at IS NULL), {BUMP}) \
             WHERE account_id = ?1 AND id = (SELECT client_id FROM documents WHERE account_id = ?1 AND id = ?2)"
        ),
        vec![json!(account_id), json!(document_id)],
    )
}

/// Recompute one client's `document_count` from its current documents (the retention sweep,
/// in the batch that hard-deletes one of them: the document is gone, so its event can no
/// longer name the client).
pub fn refresh_document_count(account_id: &str, client_id: &str) -> Stmt {
    Stmt::new(
        format!(
            "UPDATE clients SET body = json_set(body, '$.document_count', {DOCUMENT_COUNT}, {BUMP}) \
             WHERE account_id = ?1 AND id = ?2"
        ),
        vec![json!(account_id), json!(client_id)],
    )
}

/// A denormalised copy fanned out over many clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// A group's name, in its clients' `group_name`.
    GroupName,
    /// A user's display name, in the `adviser_name` of the clients they advise.
    AdviserName,
}

/// One chunk (`limit` clients after `after`) of a fan-out; returns the ids it updated.
/// An adviser's name goes to soft-deleted clients too: they keep their rows for the grace period, and an erased
/// adviser's name must not survive in them (`clients_all_by_adviser` serves the adviser's).
pub fn fan_out_chunk(
    copy: Copy,
    account_id: &str,
    target_id: &str,
    after: &str,
    limit: i64,
) -> Stmt {
    let (field, value, column, from) = match copy {
        Copy::GroupName => (
            "$.group_name",
            GROUP_NAME,
            "group_id",
            "clients WHERE deleted_at IS NULL AND",
        ),
        Copy::AdviserName => (
            "$.adviser_name",
            ADVISER_NAME,
            "adviser_id",
            "clients INDEXED BY clients_all_by_adviser WHERE",
        ),
    };
    Stmt::new(
        format!(
            "UPDATE clients SET body = json_set(body, '{field}', {value}, {BUMP}) WHERE rowid IN \
             (SELECT rowid FROM {from} account_id = ?1 AND {column} = ?2 \
              AND id > ?3 ORDER BY id LIMIT ?4) RETURNING id"
        ),
        vec![
            json!(account_id),
            json!(target_id),
            json!(after),
            json!(limit),
        ],
    )
}
