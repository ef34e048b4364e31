//! The retention sweep's SQL (shard D1, and its reads of the account registry): candidate
//! pages, guarded purges, the rows an erasure reads, and the age purges of operational rows.
//! Candidate bounds are inclusive (`<= cutoff`): the caller computes each cutoff with the same
//! function `domain::retention::decide` uses for the end instant, so a row is a candidate from
//! the very instant it is due.

use crate::ports::Stmt;
use crate::store::entities::not_protected_at;
use serde_json::json;
use uuid::Uuid;

/// The row's version as an integer (see `services::changes`).
const VERSION: &str = "coalesce(CAST(body ->> '$.version' AS INTEGER), 0)";

/// The accounts of a shard from `from` on, in id order (the sweep's resumable outer loop).
pub fn accounts_on_shard(shard_id: &str, from: &str) -> Stmt {
    Stmt::new(
        "SELECT id, body FROM accounts WHERE db_shard_id = ?1 AND id >= ?2 ORDER BY id",
        vec![json!(shard_id), json!(from)],
    )
}

/// One candidate query of the sweep: which rows, ordered by which index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidates {
    /// Soft-deleted documents, by deletion time.
    DocsSoftDeleted,
    /// Documents whose client's relationship ended (`client_ended_on`, copied onto them).
    DocsOfEndedClients,
    ClientsSoftDeleted,
    ClientsEnded,
    UsersSoftDeleted,
    GroupsSoftDeleted,
}

/// A page of candidates after keyset position (`after_key`, `after_id`), with `k` (the
/// position of each row, sort key and id separated by char 31) for the next page. Every page
/// is an index range of one account that starts where the last one ended.
pub fn candidates(
    which: Candidates,
    account: Uuid,
    cutoff: &str,
    after_key: &str,
    after_id: &str,
    limit: i64,
) -> Stmt {
    let sql = match which {
        Candidates::DocsSoftDeleted => {
            "SELECT id, body, client_ended_on AS ended, client_id, deleted_at || char(31) || id AS k \
             FROM documents WHERE account_id = ?1 AND deleted_at IS NOT NULL AND deleted_at <= ?2 \
             AND (deleted_at, id) > (?3, ?4) ORDER BY deleted_at, id LIMIT ?5"
        }
        Candidates::DocsOfEndedClients => {
            "SELECT id, body, client_ended_on AS ended, client_id, client_ended_on || char(31) || id AS k \
             FROM documents WHERE account_id = ?1 AND client_ended_on IS NOT NULL AND client_ended_on <= ?2 \
             AND (client_ended_on, id) > (?3, ?4) ORDER BY client_ended_on, id LIMIT ?5"
        }
        Candidates::ClientsSoftDeleted => {
            "SELECT id, body, relationship_ended_on AS ended, deleted_at || char(31) || id AS k FROM clients \
             WHERE account_id = ?1 AND deleted_at IS NOT NULL AND deleted_at <= ?2 AND (deleted_at, id) > (?3, ?4) \
             ORDER BY deleted_at, id LIMIT ?5"
        }
        Candidates::ClientsEnded => {
            "SELECT id, body, relationship_ended_on AS ended, relationship_ended_on || char(31) || id AS k FROM clients \
             WHERE account_id = ?1 AND relationship_ended_on IS NOT NULL AND relationship_ended_on <= ?2 \
             AND (relationship_ended_on, id) > (?3, ?4) ORDER BY relationship_ended_on, id LIMIT ?5"
        }
        Candidates::UsersSoftDeleted => {
            "SELECT id, body, deleted_at || char(31) || id AS k FROM users WHERE account_id = ?1 AND deleted_at IS NOT NULL \
             AND deleted_at <= ?2 AND (deleted_at, id) > (?3, ?4) ORDER BY deleted_at, id LIMIT ?5"
        }
        Candidates::GroupsSoftDeleted => {
            "SELECT id, body, deleted_at || char(31) || id AS k FROM groups WHERE account_id = ?1 AND deleted_at IS NOT NULL \
             AND deleted_at <= ?2 AND (deleted_at, id) > (?3, ?4) ORDER BY deleted_at, id LIMIT ?5"
        }
    };
    Stmt::new(
        sql,
        vec![
            json!(account),
            json!(cutoff),
            json!(after_key),
            json!(after_id),
            json!(limit),
        ],
    )
}

/// The account's clients under legal hold (the partial hold index holds only them).
pub fn held_clients(account: Uuid) -> Stmt {
    Stmt::new(
        "SELECT id FROM clients INDEXED BY clients_on_hold WHERE account_id = ?1 AND legal_hold = 1",
        vec![json!(account)],
    )
}

/// Hard-delete one row, only in the version the sweep read and judged (any change since, a
/// legal hold on a client included, moves the version) and never under a hold: a document's
/// client hold is re-checked by a probe of the partial hold index (which reads nothing when
/// there is none). Nor while a restriction in force at `now` protects the row (a client's, or
/// a document's own or its client's copy: `entities::not_protected_at`). The
/// disposition event goes right after it (`changes::purge_event`), kept only if THIS
/// statement removed the row.
pub fn purge(
    account: Uuid,
    table: &str,
    id: &str,
    client: Option<&str>,
    version: i64,
    now: &str,
) -> Stmt {
    match (table, client) {
        ("documents", Some(client)) => Stmt::new(
            format!(
                "DELETE FROM documents WHERE account_id = ?1 AND id = ?2 AND {VERSION} = ?4 AND {} \
                 AND NOT EXISTS (SELECT 1 FROM clients INDEXED BY clients_on_hold \
                 WHERE account_id = ?1 AND id = ?3 AND legal_hold = 1)",
                not_protected_at(5)
            ),
            vec![
                json!(account),
                json!(id),
                json!(client),
                json!(version),
                json!(now),
            ],
        ),
        ("clients", _) => Stmt::new(
            format!(
                "DELETE FROM clients WHERE account_id = ?1 AND id = ?2 AND {VERSION} = ?3 \
                 AND legal_hold IS NOT 1 AND {}",
                not_protected_at(4)
            ),
            vec![json!(account), json!(id), json!(version), json!(now)],
        ),
        ("documents", None) => Stmt::new(
            format!(
                "DELETE FROM documents WHERE account_id = ?1 AND id = ?2 AND {VERSION} = ?3 AND {}",
                not_protected_at(4)
            ),
            vec![json!(account), json!(id), json!(version), json!(now)],
        ),
        (table, _) => Stmt::new(
            format!("DELETE FROM {table} WHERE account_id = ?1 AND id = ?2 AND {VERSION} = ?3"),
            vec![json!(account), json!(id), json!(version)],
        ),
    }
}

/// One row by id (an erasure's subject).
pub fn row(table: &str, account: Uuid, id: &str) -> Stmt {
    let ended = if table == "clients" {
        ", relationship_ended_on AS ended"
    } else {
        ""
    };
    Stmt::new(
        format!("SELECT id, body{ended} FROM {table} WHERE account_id = ?1 AND id = ?2"),
        vec![json!(account), json!(id)],
    )
}

/// The clients a user advises, soft-deleted ones included (their cached renderings carry the
/// user's name in `adviser_name`).
pub fn clients_advised_by(account: Uuid, user: &str) -> Stmt {
    Stmt::new(
        "SELECT id, body FROM clients INDEXED BY clients_all_by_adviser \
         WHERE account_id = ?1 AND adviser_id = ?2",
        vec![json!(account), json!(user)],
    )
}

/// Every document of a client, soft-deleted ones included, in id order.
pub fn documents_of_client(account: Uuid, client: &str) -> Stmt {
    Stmt::new(
        "SELECT id, body FROM documents WHERE account_id = ?1 AND client_id = ?2 ORDER BY id",
        vec![json!(account), json!(client)],
    )
}

/// Idempotency keys of the account created at or before `cutoff`.
pub fn purge_idempotency(account: Uuid, cutoff: &str) -> Stmt {
    Stmt::new(
        "DELETE FROM idempotency_keys WHERE account_id = ?1 AND created_at <= ?2",
        vec![json!(account), json!(cutoff)],
    )
}

/// One account's registry row (the sweep re-reads its hold and policy before it disposes).
pub fn account(id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT id, body FROM accounts WHERE id = ?1",
        vec![json!(id)],
    )
}

/// The longest `dead_letter_days` any account's stored policy sets (NULL when none does).
pub fn longest_dead_letter_days() -> Stmt {
    Stmt::new(
        "SELECT max(CAST(body ->> '$.retention.dead_letter_days' AS INTEGER)) AS days FROM accounts",
        vec![],
    )
}

/// Dead letters (account D1) received at or before `cutoff`, except those of an account
/// under legal hold (a hold keeps every record of the account, its dead letters included).
pub fn purge_dead_letters(cutoff: &str) -> Stmt {
    Stmt::new(
        "DELETE FROM dead_letters WHERE received_at <= ?1 \
         AND coalesce(body ->> '$.message.account_id', '') NOT IN \
         (SELECT id FROM accounts WHERE body ->> '$.legal_hold' = 1)",
        vec![json!(cutoff)],
    )
}

/// Rows of `table` (`clients` or `documents`) whose own restriction ended at or before `now`
/// (`restricted.until`; one without an end is not in the index), oldest end first. Not a
/// document whose client's restriction (its copy) is still in force: its own, shorter one
/// decides when it may go (an erasure kept it for its own period), so it stays until the
/// client's is lifted, which removes the copy.
pub fn restrictions_ended(table: &str, account: Uuid, now: &str, limit: i64) -> Stmt {
    let client_copy = if table == "documents" {
        " AND NOT (json_type(body, '$.client_restricted') IS 'object' \
         AND coalesce(body ->> '$.client_restricted.until', '9999') > ?2)"
    } else {
        ""
    };
    Stmt::new(
        format!(
            "SELECT id, body FROM {table} INDEXED BY {table}_restriction_ends \
             WHERE account_id = ?1 AND restricted_until IS NOT NULL AND restricted_until <= ?2\
             {client_copy} ORDER BY restricted_until, id LIMIT ?3"
        ),
        vec![json!(account), json!(now), json!(limit)],
    )
}

/// Whether any document (soft-deleted ones included) still refers to the client: a client the
/// documents' foreign key keeps is kept with them, as long as they are.
pub fn client_has_documents(account: Uuid, client: &str) -> Stmt {
    Stmt::new(
        "SELECT 1 AS x FROM documents INDEXED BY documents_all_by_client \
         WHERE account_id = ?1 AND client_id = ?2 LIMIT 1",
        vec![json!(account), json!(client)],
    )
}
