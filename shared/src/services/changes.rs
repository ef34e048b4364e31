//! The write protocol: the one owner of the product's central rule, "every change of a tenant's
//! data lands once, with its event, and its version moves by exactly one".
//!
//! Every change of an entity goes through [`commit`]: API create/update/delete, content upload,
//! client legal holds, erasure and the retention sweep's rewrites. It builds the conditional,
//! versioned statement (the version is computed by SQL from the row itself, stored as INTEGER,
//! and the row is stamped with the event id), the outbox row that commits only if that change
//! landed, and whatever else must commit with it, runs them as one D1 batch, and reports
//! whether the change landed, with the row as written. Hard deletes pair their DELETE with
//! [`purge_event`]. Changes of an account's own settings (retention policy, account legal hold)
//! live in the account D1, which has no outbox: [`commit_account`] stores the event in the
//! account row itself, in the same statement as the change, and [`forward_account_events`]
//! moves it into the shard's outbox (the API right away, the relay after a crash).
//!
//! No other module writes the outbox or moves a version.

use crate::domain::event::ChangeEvent;
use crate::ports::*;
use crate::store::accounts as account_sql;
pub use crate::store::accounts::accounts_with_pending_events;
pub use crate::store::changes::{landed, version_of, Edit, Expect, Landed, Write};
use crate::store::outbox;
use serde_json::{json, Value};
use uuid::Uuid;

/// Commit one change as one D1 batch. `Ok(None)`: the row was not there in the expected
/// version (nothing was written, no event). A constraint failure writes nothing either.
pub async fn commit(db: &impl Database, w: &Write) -> Result<Option<Landed>, StoreError> {
    let results = db.batch(w.statements()).await?;
    Ok(landed(w, &results))
}

/// The outbox row of a hard delete: the statement to put right after the (guarded) DELETE of
/// row `id` in `table`, in the same batch. It is written only if the row is gone.
pub fn purge_event(ev: &ChangeEvent, table: &str, id: &str) -> Stmt {
    outbox::insert_if_gone(ev, table, id)
}

/// After a batch committed: send the events. On success their outbox rows wait in `marks` to
/// be marked published a moment later (many writes to one statement); a failed send leaves
/// them for the relay. The write itself has already succeeded either way.
pub async fn publish(
    queue: &impl EventQueue,
    marks: &crate::services::marks::PendingMarks,
    binding: &str,
    mut events: Vec<ChangeEvent>,
    bookmark: Option<String>,
) {
    let Some(account) = events.first().map(|e| e.account_id) else {
        return;
    };
    for ev in &mut events {
        ev.bookmark = bookmark.clone();
    }
    let msgs: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect();
    match queue.send_batch(msgs).await {
        Ok(()) => marks.add(binding, account, events.iter().map(|e| e.id)),
        Err(e) => tracing::warn!(error = %e, "queue send failed; the outbox relay will publish"),
    }
}

/// A change of one field of an account's own row (account D1).
#[derive(Debug, Clone)]
pub struct AccountWrite {
    pub account: Uuid,
    /// A top-level field of the account's body, for example `retention` or `legal_hold`.
    pub field: &'static str,
    pub value: Value,
    /// The event (subject `accounts/{id}`); `entity_version` and `changes` are filled in here.
    pub event: ChangeEvent,
}

/// What [`commit_account`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountOutcome {
    /// The field already had that value: nothing written, no event.
    Unchanged,
    /// The change landed with its event stored in the row: `pending` is every event the row
    /// now holds (this one, and any an earlier crash left), to forward to the shard's outbox.
    Landed { version: i64, pending: Pending },
    /// No such account.
    Missing,
}

/// The events an account row holds until they are in its shard's outbox, and the row's
/// `last_event_id` when they were read (they are cleared only if no change came since).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pending {
    pub events: Vec<ChangeEvent>,
    pub last_event_id: Option<String>,
}

impl Pending {
    fn of(body: &Value) -> Self {
        Pending {
            events: serde_json::from_value(body["pending_events"].clone()).unwrap_or_default(),
            last_event_id: body["last_event_id"].as_str().map(str::to_owned),
        }
    }
}

const ACCOUNT_ATTEMPTS: usize = 5;

/// Change one field of an account, conditionally on its version, with the event (carrying the
/// field's value before and after) appended to the row's `pending_events` in the same
/// statement: the change and its event land together or not at all.
pub async fn commit_account(
    accounts: &impl Database,
    w: &AccountWrite,
) -> Result<AccountOutcome, StoreError> {
    for _ in 0..ACCOUNT_ATTEMPTS {
        let current = accounts.query(account_sql::body_stmt(w.account)).await?;
        let Some(body) = current.first().and_then(|r| col_json(r, "body")) else {
            return Ok(AccountOutcome::Missing);
        };
        let before = body.get(w.field).cloned().unwrap_or(Value::Null);
        if before == w.value {
            return Ok(AccountOutcome::Unchanged);
        }
        let version = version_of(&body);
        let mut event = w.event.clone();
        event.entity_version = version + 1;
        event.changed_fields = vec![w.field.to_string()];
        event.changes = Some(json!({ w.field: {"before": before, "after": w.value} }));
        let r = accounts
            .query(account_sql::change_with_event_stmt(
                w.account, w.field, &w.value, &event, version,
            ))
            .await?;
        if let Some(row) = r.first() {
            let version = col_i64(row, "v").unwrap_or(version + 1);
            let pending = col_json(row, "body")
                .map(|b| Pending::of(&b))
                .unwrap_or_default();
            return Ok(AccountOutcome::Landed { version, pending });
        }
        // Another change of the account moved its version: read again.
    }
    Err(StoreError::Backend(format!(
        "account {} kept changing; gave up after {ACCOUNT_ATTEMPTS} attempts",
        w.account
    )))
}

/// The events waiting in an account row (the relay's read; the API has them from the change).
pub async fn pending_account_events(
    accounts: &impl Database,
    account: Uuid,
) -> Result<Pending, StoreError> {
    let r = accounts.query(account_sql::body_stmt(account)).await?;
    Ok(r.first()
        .and_then(|row| col_json(row, "body"))
        .map(|b| Pending::of(&b))
        .unwrap_or_default())
}

/// Move an account's pending events (changes of its own row) into its shard's outbox, then
/// clear them from the row if no newer change arrived meanwhile. Idempotent: an event already
/// in the outbox stays as it is, and consumers dedupe by event id. Returns the events moved.
pub async fn forward_account_events(
    accounts: &impl Database,
    shard: &impl Database,
    shard_id: &str,
    account: Uuid,
    pending: Pending,
) -> Result<Vec<ChangeEvent>, StoreError> {
    // Only this account's own events (the row is the account's; never trust it further),
    // recorded where they are forwarded to (the route the change was made through may have
    // been stale).
    let events: Vec<ChangeEvent> = pending
        .events
        .into_iter()
        .filter(|e| e.account_id == account)
        .map(|mut e| {
            // The source names the shard too (`/deployments/{d}/shards/{s}`): both follow.
            if let Some((deployment, _)) = e.source.rsplit_once("/shards/") {
                e.source = format!("{deployment}/shards/{shard_id}");
            }
            e.shard_id = shard_id.to_string();
            e
        })
        .collect();
    if events.is_empty() {
        return Ok(vec![]);
    }
    shard
        .batch(events.iter().map(outbox::insert_once).collect())
        .await?;
    accounts
        .query(account_sql::clear_pending_stmt(
            account,
            pending.last_event_id,
        ))
        .await?;
    Ok(events)
}
