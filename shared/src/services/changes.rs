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
use crate::store::{entities, outbox};
use serde_json::{json, Value};
use uuid::Uuid;

/// How a row changes.
#[derive(Debug, Clone)]
pub enum Edit {
    /// A new row at version 1 (`created_at` = `updated_at` = the event's time). A document also
    /// takes its client's relationship end (`client_ended_on`) and restriction
    /// (`client_restricted`) in the same statement.
    Insert(Value),
    /// The body replaced (a merge patch applied to the current one, server fields kept).
    Replace(Value),
    /// A JSON merge patch (RFC 7396) applied by the statement to the row as it is then
    /// (`json_patch`), so concurrent patches of other fields all land; refused (nothing
    /// written) if the row is restricted by then. The caller validated the patch and the
    /// merge; server fields cannot be in a validated patch.
    MergePatch(Value),
    /// Top-level fields set to JSON values.
    Set(Vec<(&'static str, Value)>),
    /// Soft delete: `deleted_at` = the event's time.
    SoftDelete,
    /// Soft delete of a row that is not restricted (`restricted` absent or null): the API's
    /// delete, refused by the statement itself if a restriction landed first.
    SoftDeleteUnrestricted,
    /// The body rewritten by an SQL expression over `body` (`?3` is the event's time), for
    /// example pseudonymisation.
    Rewrite(&'static str),
}

/// Which versions of the row the change may apply to.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Any,
    Version(i64),
    OneOf(Vec<i64>),
    /// This version, and not erased yet (no `erased_at`): an erasure lands once, whatever
    /// runs overlap; and no restriction in force (no `until`, or one still ahead) protects it.
    Unerased(i64),
}

/// One change of one row, with its event.
#[derive(Debug, Clone)]
pub struct Write {
    pub table: &'static str,
    pub id: Uuid,
    pub edit: Edit,
    pub expect: Expect,
    /// Only a row that is not soft-deleted (every API change); the sweep touches any row.
    pub live_only: bool,
    /// The change's event; its `entity_version` is set from the row as written.
    pub event: ChangeEvent,
    /// Statements that commit in the same batch (after the change and its outbox row). They
    /// must hold only if the change landed: inserts of a new row's companions (the batch fails
    /// as a whole), or statements that check the row's `last_event_id` stamp.
    pub with: Vec<Stmt>,
}

/// A change that landed: the row's new version and body as stored, and its event.
#[derive(Debug, Clone, PartialEq)]
pub struct Landed {
    pub version: i64,
    pub body: Value,
    pub event: ChangeEvent,
}

/// The version in a stored body. Versions written before the integer fix may be `2.0`.
pub fn version_of(body: &Value) -> i64 {
    crate::domain::integers::integral(&body["version"]).unwrap_or(0)
}

/// The row's version as an integer (a version stored as `2.0` reads as 2), and the next one.
const CURRENT_VERSION: &str = "coalesce(CAST(body ->> '$.version' AS INTEGER), 0)";
const NEXT_VERSION: &str = "coalesce(CAST(body ->> '$.version' AS INTEGER), 0) + 1";
const RETURNING: &str = " RETURNING body, CAST(body ->> '$.version' AS INTEGER) AS v";

impl Write {
    /// The batch: the change, its outbox row, then `with`.
    pub fn statements(&self) -> Vec<Stmt> {
        let account = self.event.account_id;
        let now = self.event.time.clone();
        let change = match &self.edit {
            Edit::Insert(_) => insert_stmt(
                self.table,
                account,
                self.id,
                &self.insert_body().unwrap_or_default(),
            ),
            edit => {
                let mut params = vec![
                    json!(account),
                    json!(self.id),
                    json!(now),
                    json!(self.event.id),
                ];
                let base = match edit {
                    // (An insert never reaches here; as an update it would be a replace.)
                    Edit::Replace(body) | Edit::Insert(body) => {
                        params.push(json!(body.to_string()));
                        let n = params.len();
                        if self.table == "documents" {
                            // The client's relationship end is the server's copy, kept from the
                            // row as it is now (a concurrent change of the client may have
                            // moved it), never from the body the caller read.
                            format!(
                                "json_patch(?{n}, json_object('client_ended_on', \
                                 body ->> '$.client_ended_on', 'client_restricted', \
                                 json(body -> '$.client_restricted')))"
                            )
                        } else {
                            format!("?{n}")
                        }
                    }
                    Edit::MergePatch(patch) => {
                        params.push(json!(patch.to_string()));
                        format!("json_patch(body, ?{})", params.len())
                    }
                    Edit::Set(fields) => {
                        let mut sets = String::new();
                        for (field, value) in fields {
                            params.push(json!(value.to_string()));
                            sets += &format!(", '$.{field}', json(?{})", params.len());
                        }
                        format!("json_set(body{sets})")
                    }
                    Edit::SoftDelete | Edit::SoftDeleteUnrestricted => {
                        "json_set(body, '$.deleted_at', ?3)".to_string()
                    }
                    Edit::Rewrite(expr) => (*expr).to_string(),
                };
                let mut filter = String::from("account_id = ?1 AND id = ?2");
                if self.live_only {
                    filter += " AND deleted_at IS NULL";
                }
                if matches!(edit, Edit::SoftDeleteUnrestricted | Edit::MergePatch(_)) {
                    // Its own restriction, or (a document) its client's copy.
                    filter += " AND body ->> '$.restricted' IS NULL \
                               AND body ->> '$.client_restricted' IS NULL";
                }
                let current = CURRENT_VERSION;
                match &self.expect {
                    Expect::Any => {}
                    Expect::Version(v) => {
                        params.push(json!(v));
                        filter += &format!(" AND {current} = ?{}", params.len());
                    }
                    Expect::Unerased(v) => {
                        params.push(json!(v));
                        // Never while a restriction is in force (`?3` is now).
                        filter += &format!(
                            " AND {current} = ?{} AND body ->> '$.erased_at' IS NULL AND {}",
                            params.len(),
                            entities::not_restricted_at(3)
                        );
                    }
                    Expect::OneOf(vs) => {
                        let marks: Vec<String> = vs
                            .iter()
                            .take(20)
                            .map(|v| {
                                params.push(json!(v));
                                format!("?{}", params.len())
                            })
                            .collect();
                        filter += &format!(" AND {current} IN ({})", marks.join(", "));
                    }
                }
                Stmt::new(
                    format!(
                        "UPDATE {} SET body = json_set({base}, '$.version', {NEXT_VERSION}, \
                         '$.updated_at', ?3, '$.last_event_id', ?4) WHERE {filter}{RETURNING}",
                        self.table
                    ),
                    params,
                )
            }
        };
        let event = match &self.edit {
            Edit::Insert(_) => outbox::insert(&self.event),
            _ => outbox::insert_if_landed(&self.event, self.table, self.id),
        };
        let mut out = vec![change, event];
        out.extend(self.copies_to_documents());
        out.extend(self.with.iter().cloned());
        out
    }

    /// What a client's documents copy from it, in the same batch, read from the client row
    /// inside the statement and only if this change landed: its relationship end
    /// (`client_ended_on`) whenever a patch names it, and its restriction (`client_restricted`)
    /// whenever the change may have moved it (a set of `restricted`, a rewrite).
    fn copies_to_documents(&self) -> Vec<Stmt> {
        if self.table != "clients" {
            return vec![];
        }
        let (account, ev) = (self.event.account_id, self.event.id);
        let mut out = vec![];
        let names = |field: &str| match &self.edit {
            Edit::MergePatch(p) | Edit::Replace(p) => p.get(field).is_some(),
            Edit::Set(fields) => fields.iter().any(|(f, _)| *f == field),
            Edit::Rewrite(_) => field == "restricted",
            _ => false,
        };
        if names("relationship_ended_on") {
            out.push(entities::copy_client_end(account, self.id, ev));
        }
        if names("restricted") {
            out.push(entities::copy_client_restriction(account, self.id, ev));
        }
        out
    }
}

impl Write {
    /// The body an insert stores: the caller's, with version 1 and the server's timestamps and
    /// event stamp (None for other edits). The idempotency row renders its response from it.
    pub fn insert_body(&self) -> Option<Value> {
        let Edit::Insert(body) = &self.edit else {
            return None;
        };
        let mut body = body.clone();
        if let Some(o) = body.as_object_mut() {
            o.insert("version".into(), json!(1));
            o.insert("created_at".into(), json!(self.event.time));
            o.insert("updated_at".into(), json!(self.event.time));
            o.insert("last_event_id".into(), json!(self.event.id));
        }
        Some(body)
    }
}

/// A new row's statement.
fn insert_stmt(table: &str, account: Uuid, id: Uuid, body: &Value) -> Stmt {
    let mut params = vec![json!(account), json!(id), json!(body.to_string())];
    let value = if table == "documents" {
        // The document carries its client's relationship end for the retention sweep; the
        // foreign key still refuses an unknown client.
        params.push(body.get("client_id").cloned().unwrap_or(Value::Null));
        "json_patch(?3, json_object('client_ended_on', (SELECT relationship_ended_on \
         FROM clients WHERE account_id = ?1 AND id = ?4), 'client_restricted', \
         json((SELECT body -> '$.restricted' FROM clients WHERE account_id = ?1 AND id = ?4))))"
    } else {
        "?3"
    };
    Stmt::new(
        format!("INSERT INTO {table} (account_id, id, body) VALUES (?1, ?2, {value}){RETURNING}"),
        params,
    )
}

/// What a committed batch says about its change (the first statement's RETURNING row).
pub fn landed(w: &Write, results: &[Rows]) -> Option<Landed> {
    let row = results.first()?.first()?;
    let body = col_json(row, "body")?;
    let version = col_i64(row, "v").unwrap_or_else(|| version_of(&body));
    let mut event = w.event.clone();
    event.entity_version = version;
    Some(Landed {
        version,
        body,
        event,
    })
}

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
        let current = accounts
            .query(Stmt::new(
                "SELECT body FROM accounts WHERE id = ?1",
                vec![json!(w.account)],
            ))
            .await?;
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
            .query(Stmt::new(
                format!(
                    "UPDATE accounts SET body = json_set(body, '$.{}', json(?2), '$.updated_at', ?3, \
                     '$.version', {NEXT_VERSION}, '$.last_event_id', ?4, '$.pending_events', \
                     json_insert(coalesce(body -> '$.pending_events', json('[]')), '$[#]', json(?5))) \
                     WHERE id = ?1 AND {CURRENT_VERSION} = ?6{RETURNING}",
                    w.field
                ),
                vec![
                    json!(w.account),
                    json!(w.value.to_string()),
                    json!(event.time),
                    json!(event.id),
                    json!(serde_json::to_string(&event).unwrap_or_default()),
                    json!(version),
                ],
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
    let r = accounts
        .query(Stmt::new(
            "SELECT body FROM accounts WHERE id = ?1",
            vec![json!(account)],
        ))
        .await?;
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
        .query(Stmt::new(
            "UPDATE accounts SET body = json_remove(body, '$.pending_events') \
             WHERE id = ?1 AND body ->> '$.last_event_id' IS ?2",
            vec![
                json!(account),
                pending.last_event_id.map_or(Value::Null, Value::String),
            ],
        ))
        .await?;
    Ok(events)
}

/// Accounts of a shard whose own changes still wait to be forwarded (the relay's part).
pub fn accounts_with_pending_events(shard_id: &str) -> Stmt {
    Stmt::new(
        "SELECT id FROM accounts WHERE db_shard_id = ?1 AND body -> '$.pending_events' IS NOT NULL",
        vec![json!(shard_id)],
    )
}
