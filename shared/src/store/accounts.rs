//! SQL of the account D1's registry: where each account lives (the consumer's placements), and
//! the operator API's accounts, custom domains, shards with their account counts and
//! new-account placement, and the API's route lookups (`services::tenancy` caches them).

use crate::domain::tenancy::Faults;
use crate::ports::{col_json, col_str, Rows, Stmt};
use serde_json::{json, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// Where an account lives, and the local-only fault injection it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub shard_id: String,
    /// The shard's D1 binding (None: the shard is not registered).
    pub binding: Option<String>,
    pub is_active: bool,
    pub faults: Option<Faults>,
}

/// The placements of `ids` (any that are not accounts are simply absent): one query, by
/// primary key, the ids bound as one JSON array (`json_each`), so a batch of any size binds
/// two parameters, far below D1's 100.
pub fn placements_stmt(ids: &[Uuid]) -> Stmt {
    Stmt::new(
        "SELECT a.id AS id, a.db_shard_id AS shard_id, a.body ->> '$.is_active' AS is_active, \
         a.body -> '$.faults' AS faults, s.body ->> '$.binding' AS binding \
         FROM accounts a LEFT JOIN shards s ON s.id = a.db_shard_id \
         WHERE a.id IN (SELECT value FROM json_each(?1))",
        vec![json!(Value::from(
            ids.iter().map(|i| json!(i)).collect::<Vec<_>>()
        )
        .to_string())],
    )
}

pub fn read_placements(rows: &Rows) -> HashMap<Uuid, Placement> {
    rows.rows
        .iter()
        .filter_map(|r| {
            let id = Uuid::parse_str(col_str(r, "id")?).ok()?;
            let active = r
                .get("is_active")
                .is_some_and(|v| v.as_i64() == Some(1) || v.as_bool() == Some(true));
            Some((
                id,
                Placement {
                    shard_id: col_str(r, "shard_id")?.to_string(),
                    binding: col_str(r, "binding").map(str::to_owned),
                    is_active: active,
                    faults: col_json(r, "faults").and_then(|f| serde_json::from_value(f).ok()),
                },
            ))
        })
        .collect()
}

/// Every shard with its account count and latest health sample.
pub fn shards_with_counts() -> Stmt {
    Stmt::new(
        "SELECT s.body, (SELECT count(*) FROM accounts a WHERE a.db_shard_id = s.id) AS accounts, \
         (SELECT h.body FROM shard_health h WHERE h.shard_id = s.id ORDER BY h.at DESC LIMIT 1) AS latest \
         FROM shards s ORDER BY s.id",
        vec![],
    )
}

/// Least-full active shared shard (fewest accounts; size-aware placement uses health data).
pub fn placement_stmt() -> Stmt {
    Stmt::new(
        "SELECT s.body FROM shards s WHERE s.tier = 'shared' AND s.status = 'active' \
         ORDER BY (SELECT count(*) FROM accounts a WHERE a.db_shard_id = s.id), s.id LIMIT 1",
        vec![],
    )
}

/// Whether shard `id` is registered (`id` column).
pub fn shard_exists(id: &str) -> Stmt {
    Stmt::new("SELECT id FROM shards WHERE id = ?1", vec![json!(id)])
}

pub fn insert_account(id: Uuid, body: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO accounts (id, body) VALUES (?1, ?2)",
        vec![json!(id), json!(body)],
    )
}

pub fn account(id: Uuid) -> Stmt {
    Stmt::new("SELECT body FROM accounts WHERE id = ?1", vec![json!(id)])
}

/// Local-only test configuration of an account (no event, no version: not tenant data).
pub fn set_faults(id: Uuid, faults_json: &str) -> Stmt {
    Stmt::new(
        "UPDATE accounts SET body = json_set(body, '$.faults', json(?2)) WHERE id = ?1",
        vec![json!(id), json!(faults_json)],
    )
}

pub fn insert_domain(hostname: &str, body: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO domains (hostname, body) VALUES (?1, ?2)",
        vec![json!(hostname), json!(body)],
    )
}

/// An account with the shard it lives on (`account`, `shard` bodies), by primary key.
pub fn route_stmt(account_id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT a.body AS account, s.body AS shard FROM accounts a \
         JOIN shards s ON s.id = a.db_shard_id WHERE a.id = ?1",
        vec![json!(account_id)],
    )
}

/// The account a custom domain belongs to (`account_id`), by primary key.
pub fn domain_stmt(hostname: &str) -> Stmt {
    Stmt::new(
        "SELECT body ->> '$.account_id' AS account_id FROM domains WHERE hostname = ?1",
        vec![json!(hostname.to_ascii_lowercase())],
    )
}

/// An account's row (`body`), by primary key.
pub fn body_stmt(account_id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT body FROM accounts WHERE id = ?1",
        vec![json!(account_id)],
    )
}

/// Change one top-level field of an account, conditionally on `version`, with `event`
/// appended to the row's `pending_events` in the same statement (the account D1 has no
/// outbox): the change and its event land together or not at all. `RETURNING` the row.
pub fn change_with_event_stmt(
    account_id: Uuid,
    field: &str,
    value: &Value,
    event: &crate::domain::event::ChangeEvent,
    version: i64,
) -> Stmt {
    use crate::store::changes::{CURRENT_VERSION, NEXT_VERSION, RETURNING};
    Stmt::new(
        format!(
            "UPDATE accounts SET body = json_set(body, '$.{field}', json(?2), '$.updated_at', ?3, \
             '$.version', {NEXT_VERSION}, '$.last_event_id', ?4, '$.pending_events', \
             json_insert(coalesce(body -> '$.pending_events', json('[]')), '$[#]', json(?5))) \
             WHERE id = ?1 AND {CURRENT_VERSION} = ?6{RETURNING}"
        ),
        vec![
            json!(account_id),
            json!(value.to_string()),
            json!(event.time),
            json!(event.id),
            json!(serde_json::to_string(event).unwrap_or_default()),
            json!(version),
        ],
    )
}

/// Clear an account's forwarded events, unless a newer change arrived (its `last_event_id`).
pub fn clear_pending_stmt(account_id: Uuid, last_event_id: Option<String>) -> Stmt {
    Stmt::new(
        "UPDATE accounts SET body = json_remove(body, '$.pending_events') \
         WHERE id = ?1 AND body ->> '$.last_event_id' IS ?2",
        vec![
            json!(account_id),
            last_event_id.map_or(Value::Null, Value::String),
        ],
    )
}

/// Accounts of a shard whose own changes still wait to be forwarded (the relay's part).
pub fn accounts_with_pending_events(shard_id: &str) -> Stmt {
    Stmt::new(
        "SELECT id FROM accounts WHERE db_shard_id = ?1 AND body -> '$.pending_events' IS NOT NULL",
        vec![json!(shard_id)],
    )
}

/// The account row's version (`version`), by primary key: the route cache's cheap probe.
pub fn account_version_stmt(account_id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT body ->> '$.version' AS version FROM accounts WHERE id = ?1",
        vec![json!(account_id)],
    )
}
