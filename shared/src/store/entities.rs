//! SQL of the entity tables (`groups`, `users`, `clients`, `documents`) as the API reads them:
//! get, list (keyset pages over one indexed filter), the version probe of the read cache, and
//! the copy of a client's relationship end into its documents. Writes of an entity go through
//! the write protocol (`services::changes`), which owns their statements.

use crate::domain::entity::{EntitySpec, Filter, FilterOp};
use crate::ports::Stmt;
use serde_json::json;
use uuid::Uuid;

/// A client's relationship end copied onto its documents (`client_ended_on`), read from the
/// client row inside the statement (never from the row the caller read: a concurrent patch may
/// have moved it), only if the client's change landed (the row carries the event id `?3`).
pub fn copy_client_end(account: Uuid, client: Uuid, event: Uuid) -> Stmt {
    Stmt::new(
        "UPDATE documents SET body = json_patch(body, json_object('client_ended_on', \
         (SELECT relationship_ended_on FROM clients WHERE account_id = ?1 AND id = ?2))) \
         WHERE account_id = ?1 AND client_id = ?2 AND EXISTS (SELECT 1 FROM clients \
         WHERE account_id = ?1 AND id = ?2 AND body ->> '$.last_event_id' = ?3)",
        vec![json!(account), json!(client), json!(event)],
    )
}

/// A client's restriction copied onto its documents (`client_restricted`, removed when the
/// client's is lifted), read from the client row inside the statement, only if the client's
/// change landed (the row carries the event id `?3`). It moves `index_rev` (part of the read
/// cache's key): the documents' renderings change with it.
pub fn copy_client_restriction(account: Uuid, client: Uuid, event: Uuid) -> Stmt {
    Stmt::new(
        "UPDATE documents SET body = json_set(json_patch(json_remove(body, '$.client_restricted'), \
         json_object('client_restricted', json((SELECT body -> '$.restricted' FROM clients \
         WHERE account_id = ?1 AND id = ?2)))), \
         '$.index_rev', coalesce(body ->> '$.index_rev', 0) + 1) \
         WHERE account_id = ?1 AND client_id = ?2 AND EXISTS (SELECT 1 FROM clients \
         WHERE account_id = ?1 AND id = ?2 AND body ->> '$.last_event_id' = ?3)",
        vec![json!(account), json!(client), json!(event)],
    )
}

/// SQL (over `body`) of when the restriction on a row ends: the later of its own `restricted`
/// and (a document) its client's copy, `client_restricted`, when `inherited` (an SQL condition)
/// holds for the copy (`'9999'` for one without an end); SQL NULL when neither counts. The rule
/// is `domain::restriction::binding`'s: neither can shorten the other.
fn restriction_until(inherited: &str) -> String {
    format!(
        "nullif(max(\
         CASE WHEN json_type(body, '$.restricted') = 'object' \
         THEN coalesce(body ->> '$.restricted.until', '9999') ELSE '' END, \
         CASE WHEN json_type(body, '$.client_restricted') = 'object'{inherited} \
         THEN coalesce(body ->> '$.client_restricted.until', '9999') ELSE '' END), '')"
    )
}

/// A predicate (over `body`, `?n` the time) that holds unless a restriction still in force at
/// `?n` (no `until`, or `until` later), the row's own or its client's copy, protects the row
/// from change: every API edit's statement and the reads that hide restricted rows.
pub fn not_restricted_at(n: usize) -> String {
    let until = restriction_until("");
    format!("({until} IS NULL OR {until} <= ?{n})")
}

/// A predicate (over `body`, `?n` the time) that holds unless a restriction in force at `?n`
/// protects the row from disposal: its own, or its client's copy unless that copy is scoped
/// to the client's record (`domain::restriction::RECORD_SCOPE`: an erasure's keep of the
/// client for its own legal period; each document kept is marked on itself). Every retention
/// delete's guard.
pub fn not_protected_at(n: usize) -> String {
    let until = restriction_until(&format!(
        " AND body ->> '$.client_restricted.scope' IS NOT '{}'",
        crate::domain::restriction::RECORD_SCOPE
    ));
    format!("({until} IS NULL OR {until} <= ?{n})")
}

/// A live row's stored `body` (its id is the one asked for).
pub fn get_stmt(spec: &EntitySpec, account_id: Uuid, id: Uuid) -> Stmt {
    Stmt::new(
        format!(
            "SELECT body FROM {} WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL",
            spec.table
        ),
        vec![json!(account_id), json!(id)],
    )
}

/// The list statement for one (optional) indexed filter and a keyset position;
/// `unrestricted_at` (a time) leaves out the rows a restriction in force then protects.
/// Each row comes back as its `id` and stored `body` (and `k`, the sort key of a prefix
/// filter, for the next page's cursor).
pub fn list_stmt(
    spec: &EntitySpec,
    account_id: Uuid,
    filter: Option<(&Filter, &str)>,
    after: Option<(Option<&str>, &str)>,
    limit: usize,
    unrestricted_at: Option<&str>,
) -> Stmt {
    let mut params = vec![json!(account_id)];
    let mut sql = format!(
        "SELECT id, body{} FROM {} WHERE account_id = ?1 AND deleted_at IS NULL",
        match filter {
            Some((f, _)) if f.op == FilterOp::Prefix => format!(", {} AS k", f.column),
            _ => String::new(),
        },
        spec.table
    );
    if let Some(now) = unrestricted_at {
        // A residual predicate on the rows the index range yields (no index of its own).
        params.push(json!(now));
        sql += &format!(" AND {}", not_restricted_at(params.len()));
    }
    let mut order = "id".to_string();
    match filter {
        Some((f, v)) if f.op == FilterOp::Eq => {
            params.push(json!(v));
            sql += &format!(" AND {} = ?{}", f.column, params.len());
        }
        Some((f, v)) => {
            // The column holds the fold of its field (`domain::entity::fold`, applied in SQL by
            // the generated column): fold the prefix the same way, so both sides agree.
            let lo = crate::domain::entity::fold::fold(v);
            let hi = format!("{lo}\u{10FFFF}");
            params.push(json!(lo));
            params.push(json!(hi));
            sql += &format!(
                " AND {c} >= ?{} AND {c} < ?{}",
                params.len() - 1,
                params.len(),
                c = f.column
            );
            order = format!("{}, id", f.column);
        }
        None => {}
    }
    match (filter, after) {
        (Some((f, _)), Some((Some(k), id))) if f.op == FilterOp::Prefix => {
            params.push(json!(k));
            params.push(json!(id));
            sql += &format!(
                " AND ({}, id) > (?{}, ?{})",
                f.column,
                params.len() - 1,
                params.len()
            );
        }
        (_, Some((_, id))) => {
            params.push(json!(id));
            sql += &format!(" AND id > ?{}", params.len());
        }
        _ => {}
    }
    params.push(json!(limit as i64 + 1));
    sql += &format!(" ORDER BY {order} LIMIT ?{}", params.len());
    Stmt::new(sql, params)
}

/// The live row's version and denormalisation revision (the read cache's key), nothing else.
pub fn version_probe_stmt(spec: &EntitySpec, account_id: Uuid, id: Uuid) -> Stmt {
    Stmt::new(
        format!(
            "SELECT body ->> '$.version' AS v, coalesce(body ->> '$.index_rev', 0) AS r FROM {} \
             WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL",
            spec.table
        ),
        vec![json!(account_id), json!(id)],
    )
}

/// The row whether or not it is soft-deleted (`deleted_at` in the body says which); purged
/// rows are gone.
pub fn get_any_stmt(spec: &EntitySpec, account_id: Uuid, id: Uuid) -> Stmt {
    Stmt::new(
        format!(
            "SELECT id, body FROM {} WHERE account_id = ?1 AND id = ?2",
            spec.table
        ),
        vec![json!(account_id), json!(id)],
    )
}
