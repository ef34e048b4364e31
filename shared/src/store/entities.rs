//! SQL of the entity tables (`groups`, `users`, `clients`, `documents`) as the API reads them:
//! get, list (keyset pages over one indexed filter), the version probe of the read cache, and
//! the copy of a client's relationship end into its documents. Writes of an entity go through
//! the write protocol (`services::changes`), which owns their statements.

use crate::domain::entity::{EntitySpec, Filter, FilterOp};
use crate::ports::Stmt;
use serde_json::{json, Value};
use uuid::Uuid;

/// When a client's relationship end changes, its documents' copy changes in the same batch
/// (only if the client's update landed: it carries the event id).
pub fn client_end_propagation(
    account: Uuid,
    client: Uuid,
    ended: Option<&Value>,
    event: Uuid,
) -> Stmt {
    Stmt::new(
        "UPDATE documents SET body = json_patch(body, json_object('client_ended_on', ?3)) \
         WHERE account_id = ?1 AND client_id = ?2 AND EXISTS (SELECT 1 FROM clients \
         WHERE account_id = ?1 AND id = ?2 AND body ->> '$.last_event_id' = ?4)",
        vec![
            json!(account),
            json!(client),
            ended.cloned().unwrap_or(Value::Null),
            json!(event),
        ],
    )
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

/// The list statement for one (optional) indexed filter and a keyset position.
pub fn list_stmt(
    spec: &EntitySpec,
    account_id: Uuid,
    filter: Option<(&Filter, &str)>,
    after: Option<(Option<&str>, &str)>,
    limit: usize,
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
    let mut order = "id".to_string();
    match filter {
        Some((f, v)) if f.op == FilterOp::Eq => {
            params.push(json!(v));
            sql += &format!(" AND {} = ?{}", f.column, params.len());
        }
        Some((f, v)) => {
            // SQLite's lower() folds ASCII only: fold the same way so both sides agree.
            let lo = v.to_ascii_lowercase();
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
