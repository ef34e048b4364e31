//! The write protocol's SQL (`services::changes` owns the protocol): the conditional,
//! versioned statement of each kind of change (the version computed by SQL from the row, `+ 1`,
//! stamped with the event id), the outbox row that commits only if it landed, and what a
//! document copies from its client, in one batch; and reading what landed (`RETURNING`).

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
    /// Top-level fields set on a row that is not restricted: the API's changes other than a
    /// merge patch (a document's content), refused by the statement itself if a restriction
    /// (its own or its client's copy) landed after the caller read the row.
    SetUnrestricted(Vec<(&'static str, Value)>),
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
    /// Only a row that is not soft-deleted, nor erased if the change sets personal data
    /// (every API change); the sweep touches any row.
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
pub(crate) const CURRENT_VERSION: &str = "coalesce(CAST(body ->> '$.version' AS INTEGER), 0)";
pub(crate) const NEXT_VERSION: &str = "coalesce(CAST(body ->> '$.version' AS INTEGER), 0) + 1";
pub(crate) const RETURNING: &str = " RETURNING body, CAST(body ->> '$.version' AS INTEGER) AS v";

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
                    Edit::Set(fields) | Edit::SetUnrestricted(fields) => {
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
                if self.live_only && self.sets_personal_data() {
                    // Never personal data back on an erased row's pseudonymous shell, even if
                    // the erasure landed after the caller's read.
                    filter += " AND body ->> '$.erased_at' IS NULL";
                }
                if matches!(
                    edit,
                    Edit::SoftDeleteUnrestricted | Edit::MergePatch(_) | Edit::SetUnrestricted(_)
                ) {
                    // Its own restriction, or (a document) its client's copy.
                    // In force at the event's time (`?3`): an ended one no longer refuses.
                    filter += &format!(" AND {}", entities::not_restricted_at(3));
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

    /// Whether the change names top-level `field` (a patch or replaced body holding it, a set
    /// of it; a rewrite names `restricted`, what the sweep's rewrites may move).
    fn names(&self, field: &str) -> bool {
        match &self.edit {
            Edit::MergePatch(p) | Edit::Replace(p) => p.get(field).is_some(),
            Edit::Set(fields) | Edit::SetUnrestricted(fields) => {
                fields.iter().any(|(f, _)| *f == field)
            }
            Edit::Rewrite(_) => field == "restricted",
            _ => false,
        }
    }

    /// Whether the change sets a personal-data field of its table
    /// (`domain::personal_data::fields`).
    fn sets_personal_data(&self) -> bool {
        crate::domain::personal_data::fields(self.table)
            .iter()
            .any(|f| self.names(f))
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
        if self.names("relationship_ended_on") {
            out.push(entities::copy_client_end(account, self.id, ev));
        }
        if self.names("restricted") {
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
