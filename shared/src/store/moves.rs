//! Tenant moves' SQL: the `moves` rows (account D1), the route flip, the per-tenant fences
//! (`tenant_fences`, every shard), and the keyset reads and guarded writes a move copies,
//! verifies and cleans up with. `services::moves` owns the protocol.
//!
//! Every write a move makes on the target carries the fence guard: the batch's first statement
//! opens the target's fence (`state` `fenced` -> `copy`) only for this move and the lease token
//! of the run driving it, every statement requires the open fence, and the last closes it. A
//! D1 batch is one transaction, so nothing else ever writes through the open fence, and a run
//! whose lease was taken over (a smaller token) writes nothing.

use crate::domain::moves::{Kind, Move, Row};
use crate::ports::*;
use serde_json::{json, Value};
use uuid::Uuid;

/// One shard table a move carries: its key column (the tenant's rows are `account_id`, key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub key: &'static str,
    pub int_key: bool,
    pub kind: Kind,
}

const fn t(name: &'static str, key: &'static str, int_key: bool, kind: Kind) -> Table {
    Table {
        name,
        key,
        int_key,
        kind,
    }
}

/// Every shard table holding tenant rows, parents before children (foreign keys). A test
/// checks that no shard table with `account_id` is missing, except [`NOT_COPIED`].
pub const TABLES: &[Table] = &[
    t("groups", "id", false, Kind::Mutable),
    t("users", "id", false, Kind::Mutable),
    t("clients", "id", false, Kind::Mutable),
    t("documents", "id", false, Kind::Mutable),
    t("erasure_requests", "id", false, Kind::Mutable),
    t("idempotency_keys", "id", false, Kind::Mutable),
    t("account_usage", "id", false, Kind::Mutable),
    t("outbox", "id", false, Kind::Mutable),
    t("audit_disposals", "through_seq", true, Kind::AppendOnly),
    t("audit_log", "seq", true, Kind::AppendOnly),
    t("audit_checkpoint_heads", "account_id", false, Kind::Mutable),
];

/// Tenant tables a move does not copy: the fences themselves, a move's change log on its
/// source (`move_tracking`, `move_changes`), and the retired `audit_checkpoints` (it takes no
/// writes since migration 0012 and unlocks nothing; cleanup deletes the source's row).
pub const NOT_COPIED: &[&str] = &[
    "tenant_fences",
    "move_tracking",
    "move_changes",
    "audit_checkpoints",
];

/// Tables cleanup empties on the source (children first; the change log last: the deletes
/// before are not logged, tracking ended when the source's fence said `moved`).
pub fn cleanup_tables() -> Vec<&'static str> {
    let mut v: Vec<&str> = TABLES.iter().rev().map(|t| t.name).collect();
    v.push("audit_checkpoints");
    v.push("move_changes");
    v
}

/// Foreign keys of a table: (column in `body`, parent table).
pub fn parents(table: &str) -> &'static [(&'static str, &'static str)] {
    match table {
        "users" => &[("group_id", "groups")],
        "clients" => &[("group_id", "groups"), ("adviser_id", "users")],
        "documents" => &[("client_id", "clients")],
        _ => &[],
    }
}

pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

// ---- moves rows (account D1) ----

pub fn insert_move(m: &Move) -> Stmt {
    Stmt::new(
        "INSERT INTO moves (id, body) VALUES (?1, ?2)",
        vec![json!(m.id), json!(body_text(m))],
    )
}

fn body_text(m: &Move) -> String {
    serde_json::to_string(m).unwrap_or_default()
}

pub fn get_move(id: Uuid) -> Stmt {
    Stmt::new("SELECT body FROM moves WHERE id = ?1", vec![json!(id)])
}

/// Moves in flight, oldest first.
pub fn active_moves() -> Stmt {
    Stmt::new(
        "SELECT body FROM moves WHERE phase NOT IN ('done', 'failed', 'cancelled') ORDER BY id",
        vec![],
    )
}

pub fn list_moves(limit: i64) -> Stmt {
    Stmt::new(
        "SELECT body FROM moves ORDER BY id DESC LIMIT ?1",
        vec![json!(limit)],
    )
}

pub fn read_move(rows: &Rows) -> Option<Move> {
    rows.first()
        .and_then(|r| col_json(r, "body"))
        .and_then(|b| serde_json::from_value(b).ok())
}

/// Store `m` (its `rev` already moved by one) if the row is still at `m.rev - 1`.
pub fn save_move(m: &Move) -> Stmt {
    Stmt::new(
        "UPDATE moves SET body = ?2 WHERE id = ?1 AND CAST(body ->> '$.rev' AS INTEGER) = ?3",
        vec![json!(m.id), json!(body_text(m)), json!(m.rev - 1)],
    )
}

/// Point the account at `to` (from `from`), moving its version (so every isolate's cached
/// route is revalidated within `ACCOUNT_CHECK_INTERVAL`), only while the move row is at `rev`:
/// put before [`save_move`] of the same `rev` in one batch, both land or neither does.
pub fn flip_route(
    account: Uuid,
    from: &str,
    to: &str,
    tier: &str,
    move_id: Uuid,
    rev: i64,
    now: &str,
) -> Stmt {
    use crate::store::changes::NEXT_VERSION;
    Stmt::new(
        format!(
            "UPDATE accounts SET body = json_set(body, '$.db_shard_id', ?3, '$.tier', ?4, \
             '$.version', {NEXT_VERSION}, '$.updated_at', ?5) \
             WHERE id = ?1 AND db_shard_id = ?2 AND EXISTS (SELECT 1 FROM moves \
             WHERE id = ?6 AND CAST(body ->> '$.rev' AS INTEGER) = ?7)"
        ),
        vec![
            json!(account),
            json!(from),
            json!(to),
            json!(tier),
            json!(now),
            json!(move_id),
            json!(rev),
        ],
    )
}

// ---- fences (shards) ----

pub fn fence(account: Uuid) -> Stmt {
    Stmt::new(
        "SELECT body FROM tenant_fences WHERE account_id = ?1",
        vec![json!(account)],
    )
}

/// Fence the tenant on a shard for this move (`role` source or target). Does nothing if a
/// fence is there already: the caller reads it back and checks it is this move's.
pub fn put_fence(account: Uuid, move_id: Uuid, role: &str, token: i64, now: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO tenant_fences (account_id, body) VALUES (?1, json_object('move_id', ?2, \
         'role', ?3, 'state', 'fenced', 'token', ?4, 'at', ?5)) ON CONFLICT (account_id) DO NOTHING",
        vec![
            json!(account),
            json!(move_id),
            json!(role),
            json!(token),
            json!(now),
        ],
    )
}

/// A tenant moving back to a shard it left: its `moved` fence there (of the earlier move)
/// becomes this move's target fence, the old fence kept in `prior` so a rollback restores it
/// ([`restore_fence`]). Only a `moved` fence is taken over.
pub fn reclaim_fence(account: Uuid, move_id: Uuid, token: i64, now: &str) -> Stmt {
    Stmt::new(
        "UPDATE tenant_fences SET body = json_object('move_id', ?2, 'role', 'target', \
         'state', 'fenced', 'token', ?3, 'at', ?4, 'prior', json(body)) \
         WHERE account_id = ?1 AND state = 'moved'",
        vec![json!(account), json!(move_id), json!(token), json!(now)],
    )
}

/// A rolled-back move's target fence that took over a `moved` one ([`reclaim_fence`]): the
/// `moved` fence again (the tenant still lives elsewhere). Nothing for a fence without `prior`.
pub fn restore_fence(account: Uuid, move_id: Uuid) -> Stmt {
    Stmt::new(
        "UPDATE tenant_fences SET body = body -> '$.prior' WHERE account_id = ?1 \
         AND body ->> '$.move_id' = ?2 AND body ->> '$.role' = 'target' \
         AND body -> '$.prior' IS NOT NULL",
        vec![json!(account), json!(move_id)],
    )
}

/// Hand the target's fence to the run holding lease token `token` (never back to an older one).
pub fn take_fence(account: Uuid, move_id: Uuid, token: i64) -> Stmt {
    Stmt::new(
        "UPDATE tenant_fences SET body = json_set(body, '$.token', ?3) WHERE account_id = ?1 \
         AND body ->> '$.move_id' = ?2 AND CAST(body ->> '$.token' AS INTEGER) <= ?3",
        vec![json!(account), json!(move_id), json!(token)],
    )
}

/// The source's fence for good: the tenant lives elsewhere (with the audit head it left).
pub fn fence_moved(account: Uuid, move_id: Uuid, head: &Value) -> Stmt {
    Stmt::new(
        "UPDATE tenant_fences SET body = json_set(body, '$.state', 'moved', '$.head', json(?3)) \
         WHERE account_id = ?1 AND body ->> '$.move_id' = ?2 AND body ->> '$.role' = 'source'",
        vec![json!(account), json!(move_id), json!(head.to_string())],
    )
}

/// Lift this move's fence of `role` (never a `moved` one).
pub fn lift_fence(account: Uuid, move_id: Uuid, role: &str) -> Stmt {
    Stmt::new(
        "DELETE FROM tenant_fences WHERE account_id = ?1 AND body ->> '$.move_id' = ?2 \
         AND body ->> '$.role' = ?3 AND state IS NOT 'moved'",
        vec![json!(account), json!(move_id), json!(role)],
    )
}

// ---- the change log on the source (migration 0016) ----

/// Log the tenant's changes on this shard from now on (the triggers of `move_changes`).
pub fn start_tracking(account: Uuid, move_id: Uuid, now: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO move_tracking (account_id, body) VALUES (?1, json_object('move_id', ?2, \
         'at', ?3)) ON CONFLICT (account_id) DO NOTHING",
        vec![json!(account), json!(move_id), json!(now)],
    )
}

/// Stop logging (the log itself goes with [`delete_chunk`] of `move_changes`).
pub fn stop_tracking(account: Uuid) -> Stmt {
    Stmt::new(
        "DELETE FROM move_tracking WHERE account_id = ?1",
        vec![json!(account)],
    )
}

/// The tenant's change log, all of it (a rolled-back move: no fence allows [`delete_chunk`]).
pub fn drop_change_log(account: Uuid) -> Stmt {
    Stmt::new(
        "DELETE FROM move_changes WHERE account_id = ?1",
        vec![json!(account)],
    )
}

/// The log's last sequence number (`seq`, 0 when empty).
pub fn last_change(account: Uuid) -> Stmt {
    Stmt::new(
        "SELECT coalesce(max(seq), 0) AS seq FROM move_changes WHERE account_id = ?1",
        vec![json!(account)],
    )
}

/// Up to `limit` log entries after `after`, in order (`seq`, `t`, `k`).
pub fn changes_after(account: Uuid, after: i64, limit: i64) -> Stmt {
    Stmt::new(
        "SELECT seq, body ->> '$.t' AS t, body -> '$.k' AS k FROM move_changes \
         WHERE account_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        vec![json!(account), json!(after), json!(limit)],
    )
}

/// Rows of `t` by key (`k`, `body`), `keys` at most 90.
pub fn by_keys(t: &Table, account: Uuid, keys: &[Value]) -> Stmt {
    let mut params = vec![json!(account)];
    let marks: Vec<String> = keys
        .iter()
        .take(90)
        .map(|k| {
            params.push(k.clone());
            format!("?{}", params.len())
        })
        .collect();
    Stmt::new(
        format!(
            "SELECT {key} AS k, body FROM {table} WHERE account_id = ?1 AND {key} IN ({}) \
             ORDER BY {key}",
            marks.join(", "),
            key = t.key,
            table = t.name
        ),
        params,
    )
}

// ---- reads of the tenant's rows ----

/// Whether the tenant has any row in `table` (`n`: 0 or 1).
pub fn any_rows(table: &str, account: Uuid) -> Stmt {
    Stmt::new(
        format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE account_id = ?1) AS n"),
        vec![json!(account)],
    )
}

/// The tenant's rows in `table` and their body bytes (`n`, `bytes`): a dry run's estimate.
pub fn size(table: &str, account: Uuid) -> Stmt {
    Stmt::new(
        format!(
            "SELECT count(*) AS n, coalesce(sum(length(body)), 0) AS bytes FROM {table} \
             WHERE account_id = ?1"
        ),
        vec![json!(account)],
    )
}

/// One keyset range: `key > after`, in key order, at most `limit` rows (`k`, `body`).
pub fn range(t: &Table, account: Uuid, after: Option<&Value>, limit: i64) -> Stmt {
    let mut params = vec![json!(account)];
    let mut filter = String::from("account_id = ?1");
    if let Some(a) = after {
        params.push(a.clone());
        filter += &format!(" AND {} > ?{}", t.key, params.len());
    }
    params.push(json!(limit));
    Stmt::new(
        format!(
            "SELECT {key} AS k, body FROM {table} WHERE {filter} ORDER BY {key} LIMIT ?{n}",
            key = t.key,
            table = t.name,
            n = params.len()
        ),
        params,
    )
}

/// Rows of `table` by id (a parent the target lacks), `ids` at most 90.
pub fn by_ids(table: &str, account: Uuid, ids: &[String]) -> Stmt {
    let mut params = vec![json!(account)];
    let marks: Vec<String> = ids
        .iter()
        .take(90)
        .map(|id| {
            params.push(json!(id));
            format!("?{}", params.len())
        })
        .collect();
    Stmt::new(
        format!(
            "SELECT id AS k, body FROM {table} WHERE account_id = ?1 AND id IN ({})",
            marks.join(", ")
        ),
        params,
    )
}

pub fn read_rows(t: &Table, rows: &Rows) -> Vec<Row> {
    rows.rows
        .iter()
        .filter_map(|r| {
            let k = r.get("k")?;
            let key = if t.int_key {
                json!(crate::domain::integers::integral(k)?)
            } else {
                k.clone()
            };
            let body = match r.get("body")? {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(Row { key, body })
        })
        .collect()
}

/// The tenant's audit chain head (`seq`, `hash`).
pub fn audit_head(account: Uuid) -> Stmt {
    Stmt::new(
        "SELECT seq, body ->> '$.hash' AS hash FROM audit_log WHERE account_id = ?1 \
         ORDER BY seq DESC LIMIT 1",
        vec![json!(account)],
    )
}

/// Outbox rows of the tenant not yet published or not yet in its audit trail (`n`).
pub fn undrained(account: Uuid) -> Stmt {
    Stmt::new(
        "SELECT count(*) AS n FROM outbox o WHERE o.account_id = ?1 AND (o.published_at IS NULL \
         OR NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.account_id = o.account_id \
         AND a.event_id = o.id))",
        vec![json!(account)],
    )
}

// ---- guarded writes on the target ----

/// Who may write through the target's fence: this move, with this lease token.
#[derive(Debug, Clone, Copy)]
pub struct Writer {
    pub account: Uuid,
    pub move_id: Uuid,
    pub token: i64,
}

const GUARD: &str = "EXISTS (SELECT 1 FROM tenant_fences WHERE account_id = ?1 AND state = 'copy' \
     AND body ->> '$.move_id' = ?2 AND CAST(body ->> '$.token' AS INTEGER) = ?3)";

impl Writer {
    fn params(&self) -> Vec<Value> {
        vec![json!(self.account), json!(self.move_id), json!(self.token)]
    }

    /// The batch's first statement: open the fence (changes 1 only for the current token).
    pub fn open(&self) -> Stmt {
        Stmt::new(
            "UPDATE tenant_fences SET body = json_set(body, '$.state', 'copy') WHERE account_id = ?1 \
             AND body ->> '$.move_id' = ?2 AND CAST(body ->> '$.token' AS INTEGER) = ?3 \
             AND state = 'fenced' AND body ->> '$.role' = 'target'",
            self.params(),
        )
    }

    /// The batch's last statement.
    pub fn close(&self) -> Stmt {
        Stmt::new(
            "UPDATE tenant_fences SET body = json_set(body, '$.state', 'fenced') \
             WHERE account_id = ?1 AND body ->> '$.move_id' = ?2 AND state = 'copy'",
            vec![json!(self.account), json!(self.move_id)],
        )
    }

    /// Copy one row (an append-only table only ever gets rows it lacks).
    pub fn upsert(&self, t: &Table, row: &Row) -> Stmt {
        let mut params = self.params();
        let (cols, vals) = if t.key == "account_id" {
            ("account_id, body", "?1, ?4")
        } else {
            params.push(row.key.clone());
            ("account_id, KEY, body", "?1, ?4, ?5")
        };
        params.push(json!(row.body));
        let cols = cols.replace("KEY", t.key);
        let conflict = match t.kind {
            Kind::Mutable if t.key == "account_id" => {
                " ON CONFLICT (account_id) DO UPDATE SET body = excluded.body".to_string()
            }
            Kind::Mutable => format!(
                " ON CONFLICT (account_id, {}) DO UPDATE SET body = excluded.body",
                t.key
            ),
            Kind::AppendOnly => String::new(),
        };
        Stmt::new(
            format!(
                "INSERT INTO {} ({cols}) SELECT {vals} WHERE {GUARD}{conflict}",
                t.name
            ),
            params,
        )
    }

    /// Delete one row the source no longer has, with the target's rows that reference it
    /// (the source cannot have them: its foreign keys refuse that); a row the source still has
    /// is copied again when its table's range comes.
    pub fn delete(&self, t: &Table, key: &Value) -> Vec<Stmt> {
        let mut out = vec![];
        let clients_of_group = "SELECT id FROM clients WHERE account_id = ?1 AND (group_id = ?4 \
             OR adviser_id IN (SELECT id FROM users WHERE account_id = ?1 AND group_id = ?4))";
        let dependants: Vec<String> = match t.name {
            "clients" => vec!["DELETE FROM documents WHERE account_id = ?1 AND client_id = ?4".into()],
            "users" => vec![
                "DELETE FROM documents WHERE account_id = ?1 AND client_id IN \
                 (SELECT id FROM clients WHERE account_id = ?1 AND adviser_id = ?4)"
                    .into(),
                "DELETE FROM clients WHERE account_id = ?1 AND adviser_id = ?4".into(),
            ],
            "groups" => vec![
                format!(
                    "DELETE FROM documents WHERE account_id = ?1 AND client_id IN ({clients_of_group})"
                ),
                format!("DELETE FROM clients WHERE account_id = ?1 AND id IN ({clients_of_group})"),
                "DELETE FROM users WHERE account_id = ?1 AND group_id = ?4".into(),
            ],
            _ => vec![],
        };
        for sql in dependants {
            let mut p = self.params();
            p.push(key.clone());
            out.push(Stmt::new(format!("{sql} AND {GUARD}"), p));
        }
        let mut p = self.params();
        p.push(key.clone());
        out.push(Stmt::new(
            format!(
                "DELETE FROM {} WHERE account_id = ?1 AND {} = ?4 AND {GUARD}",
                t.name, t.key
            ),
            p,
        ));
        out
    }
}

/// Delete up to `limit` of the tenant's rows of `table` on a shard where this move's fence
/// allows it: the source once it says `moved` (cleanup), or the target while its fence stands
/// (a rollback). `changes` says how many went.
pub fn delete_chunk(table: &str, account: Uuid, move_id: Uuid, role: &str, limit: i64) -> Stmt {
    let state = if role == "source" {
        "state = 'moved'"
    } else {
        "state IS NOT 'moved'"
    };
    Stmt::new(
        format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE account_id = ?1 \
             LIMIT ?4) AND EXISTS (SELECT 1 FROM tenant_fences WHERE account_id = ?1 \
             AND body ->> '$.move_id' = ?2 AND body ->> '$.role' = ?3 AND {state})"
        ),
        vec![json!(account), json!(move_id), json!(role), json!(limit)],
    )
}
