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

/// SQL (over `body`) of the restriction in force on a row: its own `restricted`, else (a
/// document) its client's copy, `client_restricted`; SQL NULL when neither is set.
pub const RESTRICTION_UNTIL: &str = "CASE WHEN json_type(body, '$.restricted') = 'object' \
     THEN coalesce(body ->> '$.restricted.until', '9999') \
     WHEN json_type(body, '$.client_restricted') = 'object' \
     THEN coalesce(body ->> '$.client_restricted.until', '9999') END";

/// A predicate (over `body`, `?n` the time) that holds unless a restriction still in force at
/// `?n` protects the row (no `until`, or `until` later): the sweep never disposes of such a row.
pub fn not_restricted_at(n: usize) -> String {
    format!("({RESTRICTION_UNTIL} IS NULL OR {RESTRICTION_UNTIL} <= ?{n})")
}

pub fn get_stmt(spec: &EntitySpec, account_id: Uuid, id: Uuid) -> Stmt {
    Stmt::new(
        format!(
            "SELECT id, body FROM {} WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL",
            spec.table
        ),
        vec![json!(account_id), json!(id)],
    )
}

/// The list statement for one (optional) indexed filter and a keyset position;
/// `unrestricted_only` leaves restricted rows out.
pub fn list_stmt(
    spec: &EntitySpec,
    account_id: Uuid,
    filter: Option<(&Filter, &str)>,
    after: Option<(Option<&str>, &str)>,
    limit: usize,
    unrestricted_only: bool,
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
    if unrestricted_only {
        // A residual predicate on the rows the index range yields (no index of its own).
        sql += " AND body ->> '$.restricted' IS NULL AND body ->> '$.client_restricted' IS NULL";
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
