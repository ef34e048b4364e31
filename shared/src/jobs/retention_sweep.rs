//! The nightly retention sweep, per bound shard and per account on it. Candidates come from
//! indexes (soft-deleted rows by deletion time; clients by relationship end), each is judged by
//! `domain::retention::decide` (policy, legal holds, longest retention wins), and each deletion commits
//! with a `*.purged` change event in one batch, so the audit trail proves the disposition.
//! Bounded per run (deletions and candidates examined); a run that runs out of budget stores
//! its cursor (account, step, keyset position) in `job_cursors`, and the next run resumes
//! there, so kept rows are not read again within a cycle. A cycle ends when every account of
//! the shard has been swept; its cursor is then deleted (`cycles_completed` in the run).

use crate::domain::clock::{parse_rfc3339, rfc3339, uuid_v7};
use crate::domain::event::{Action, Actor, Change, ChangeEvent, Origin};
use crate::domain::retention::{self, Decision, Policy, Record, RecordType};
use crate::jobs::lease::{write_cursor, JobError};
use crate::jobs::SchedulerPlatform;
use crate::ports::*;
use crate::services::changes::{self, Edit, Expect, Write};
use crate::store::job_state::Fence;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// Candidate rows read per query and deletions per shard per run.
pub const PAGE: i64 = 200;
pub const MAX_DELETIONS_PER_SHARD: u64 = 5_000;
/// Candidate rows examined per shard per run (kept rows cost reads too).
pub const MAX_EXAMINED_PER_SHARD: u64 = 20_000;

use crate::jobs::add;

fn date_of(v: Option<&str>) -> Option<time::Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    v.and_then(|s| time::Date::parse(s, &fmt).ok())
}

/// `date` minus `years`, 29 February becoming 28 February; saturates at time's range.
fn years_before(date: time::Date, years: u32) -> time::Date {
    let y = date.year() - years.min(9_000) as i32;
    date.replace_year(y)
        .or_else(|_| date.replace_day(28).and_then(|d| d.replace_year(y)))
        .unwrap_or(time::Date::MIN)
}

fn is_aml(kind: Option<&str>) -> bool {
    matches!(kind, Some("aml_evidence" | "identity"))
}

pub(crate) struct AccountCtx {
    id: Uuid,
    policy: Policy,
    hold: bool,
}

struct Deleter<'a, P: SchedulerPlatform> {
    p: &'a P,
    db: &'a P::Db,
    shard_id: &'a str,
    deleted: u64,
    examined: u64,
}

impl<P: SchedulerPlatform> Deleter<'_, P> {
    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        account: Uuid,
        table: &str,
        singular: &str,
        entity_id: Uuid,
        why: &str,
        action: Action,
        version: i64,
    ) -> ChangeEvent {
        let now = self.p.now();
        ChangeEvent::new(
            uuid_v7(now, self.p.entropy()),
            now,
            &Origin {
                deployment: "scheduler",
                shard_id: self.shard_id,
                account_id: account,
                actor: Actor::System {
                    id: "retention".into(),
                },
                request_id: "retention-sweep",
            },
            Change {
                entity_type: table,
                entity_singular: singular,
                entity_id,
                action,
                entity_version: version,
                changed_fields: vec![why.to_string()],
            },
        )
    }

    /// Replace a row's body by an SQL expression over it (`?3` = now), bumping its version, with
    /// the event in the same batch (kept only if the update landed).
    #[allow(clippy::too_many_arguments)]
    async fn rewrite(
        &mut self,
        account: Uuid,
        table: &'static str,
        singular: &'static str,
        id: &str,
        expr: &'static str,
        why: &str,
        action: Action,
    ) -> Result<bool, StoreError> {
        let Ok(entity_id) = Uuid::parse_str(id) else {
            return Ok(false);
        };
        let ev = self.event(account, table, singular, entity_id, why, action, 0);
        let write = Write {
            table,
            id: entity_id,
            edit: Edit::Rewrite(expr),
            expect: Expect::Any,
            live_only: false,
            event: ev,
            with: vec![],
        };
        Ok(changes::commit(self.db, &write).await?.is_some())
    }

    /// Hard-delete one row with its event, atomically, through the same guarded statements as
    /// the nightly purge (`purge_stmts`: a legal hold placed meanwhile still wins). A
    /// foreign-key refusal (a client whose kept documents still reference it) keeps the row.
    #[allow(clippy::too_many_arguments)]
    async fn delete_as(
        &mut self,
        account: Uuid,
        table: &'static str,
        singular: &'static str,
        id: &str,
        client: Option<&str>,
        why: &str,
        action: Action,
    ) -> Result<bool, StoreError> {
        let Ok(entity_id) = Uuid::parse_str(id) else {
            return Ok(false);
        };
        let ev = self.event(account, table, singular, entity_id, why, action, 0);
        let due = Due {
            table,
            singular,
            id: id.to_string(),
            client: client.map(str::to_owned),
            body: Value::Null,
            reason: why.to_string(),
        };
        match self
            .db
            .batch(purge_stmts(account, &due, &ev).to_vec())
            .await
        {
            Ok(res) if res.first().is_some_and(|r| r.meta.changes > 0) => {
                self.deleted += 1;
                Ok(true)
            }
            Ok(_) | Err(StoreError::Constraint(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Where a bounded run stopped: the account being swept, its step, and the keyset position
/// within that step. Stored in the account D1 (`job_cursors`) between invocations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub account: String,
    pub step: u8,
    pub after: String,
}

/// Steps per account, in order (documents before clients: foreign keys).
const STEP_ERASURE: u8 = 0;
const STEP_DOCS_SOFT_DELETED: u8 = 1;
const STEP_DOCS_OF_ENDED_CLIENTS: u8 = 2;
const STEP_CLIENTS_SOFT_DELETED: u8 = 3;
const STEP_CLIENTS_ENDED: u8 = 4;
const STEP_USERS: u8 = 5;
const STEP_GROUPS: u8 = 6;
const STEP_IDEMPOTENCY: u8 = 7;

pub fn cursor_id(shard_id: &str) -> String {
    format!("retention:{shard_id}")
}

async fn load_cursor(db: &impl Database, shard_id: &str) -> Result<Option<Value>, StoreError> {
    crate::store::job_state::cursor(db, &cursor_id(shard_id)).await
}

/// Whether a bounded run left this shard's cycle unfinished (a stored cursor).
pub async fn cycle_in_progress(db: &impl Database, shard_id: &str) -> Result<bool, StoreError> {
    Ok(load_cursor(db, shard_id).await?.is_some())
}

/// One shard, one bounded invocation: resume from the stored cursor, sweep accounts in id
/// order until done or out of budget, then store the new cursor (or delete it: cycle complete).
pub async fn sweep_shard<P: SchedulerPlatform>(
    p: &P,
    shard_id: &str,
    db: &P::Db,
    fence: &Fence,
    counts: &mut Map<String, Value>,
) -> Result<(), JobError> {
    let before = db.cost();
    let stored = load_cursor(p.accounts(), shard_id).await?;
    let cursor: Cursor = stored
        .as_ref()
        .and_then(|b| serde_json::from_value(b["cursor"].clone()).ok())
        .unwrap_or_default();
    if stored.is_some() {
        add(counts, "resumed", 1);
    }
    let accounts = p
        .accounts()
        .query(Stmt::new(
            "SELECT id, body FROM accounts WHERE db_shard_id = ?1 AND id >= ?2 ORDER BY id",
            vec![json!(shard_id), json!(cursor.account)],
        ))
        .await?;
    let mut d = Deleter {
        p,
        db,
        shard_id,
        deleted: 0,
        examined: 0,
    };
    let mut stopped: Option<Cursor> = None;
    for row in &accounts.rows {
        let Some(id) = col_str(row, "id").and_then(|s| Uuid::parse_str(s).ok()) else {
            continue;
        };
        let body = col_json(row, "body").unwrap_or_default();
        let ctx = AccountCtx {
            id,
            policy: Policy::from_stored(&body["retention"]),
            hold: body["legal_hold"] == json!(true),
        };
        let (step, after) = if id.to_string() == cursor.account {
            (cursor.step, cursor.after.clone())
        } else {
            (STEP_ERASURE, String::new())
        };
        if let Some((step, after)) = sweep_account(p, &mut d, &ctx, step, after, counts).await? {
            stopped = Some(Cursor {
                account: id.to_string(),
                step,
                after,
            });
            break;
        }
    }
    let now = rfc3339(p.now());
    match stopped {
        Some(c) => {
            add(counts, "left_for_next_run", 1);
            let started = stored
                .as_ref()
                .and_then(|b| b["cycle_started_at"].as_str().map(str::to_owned))
                .unwrap_or_else(|| now.clone());
            let invocations = stored
                .as_ref()
                .and_then(|b| b["invocations"].as_u64())
                .unwrap_or(0)
                + 1;
            let body = json!({"id": cursor_id(shard_id), "job": "retention", "shard_id": shard_id,
                "cursor": c, "cycle_started_at": started, "updated_at": now, "invocations": invocations});
            write_cursor(p, &cursor_id(shard_id), Some(&body), fence).await?;
        }
        None => {
            // Cycle complete: shard-level housekeeping, then forget the cursor.
            let r = db
                .query(crate::services::usage::purge_stmt(p.now()))
                .await?;
            add(counts, "usage_periods_purged", r.meta.changes);
            write_cursor(p, &cursor_id(shard_id), None, fence).await?;
            add(counts, "cycles_completed", 1);
        }
    }
    let spent = db.cost();
    let (read, written) = (
        spent.rows_read.saturating_sub(before.rows_read),
        spent.rows_written.saturating_sub(before.rows_written),
    );
    add(counts, "deleted", d.deleted);
    add(counts, "candidates_examined", d.examined);
    add(counts, "rows_read", read);
    add(counts, "rows_written", written);
    // The same per shard: a shard with nothing due still reads its probes, and an operator
    // sizing the sweep wants each shard's own cost per deletion.
    counts.entry("by_shard").or_insert_with(|| json!({}))[shard_id] = json!({
        "deleted": d.deleted,
        "candidates_examined": d.examined,
        "rows_read": read,
        "rows_written": written,
    });
    Ok(())
}

fn record(
    record_type: RecordType,
    body: &Value,
    ended: Option<&str>,
    client_hold: bool,
    acct: &AccountCtx,
) -> Record {
    let t = |k: &str| body[k].as_str().and_then(parse_rfc3339);
    Record {
        record_type,
        created_at: t("created_at").unwrap_or(OffsetDateTime::UNIX_EPOCH),
        relationship_ended_on: date_of(ended),
        soft_deleted_at: t("deleted_at"),
        published_at: None,
        account_hold: acct.hold,
        client_hold,
        erasure_requested_at: None,
    }
}

/// Cut-off dates of one account's policy, as of `now`.
pub(crate) struct Cutoffs {
    grace: String,
    ended: String,
}

/// Separates the parts of a keyset position (`k`): the sort key(s), then ids.
const SEP: char = '\u{1f}';

/// The candidate query of a step, after keyset position `after` (the `k` of the last row seen).
/// Keysets are row-value comparisons on the index columns, so every page is an index range
/// that starts where the last one ended: kept rows are not read again.
pub(crate) fn candidates(step: u8, acct: &AccountCtx, c: &Cutoffs, after: &str) -> Option<Stmt> {
    let mut parts: Vec<String> = after.split(SEP).map(str::to_owned).collect();
    parts.resize(3, String::new());
    let (sql, cutoff): (&str, &str) = match step {
        // Documents carry their client's relationship end (`client_ended_on`): no join.
        STEP_DOCS_SOFT_DELETED => (
            "SELECT id, body, client_ended_on AS ended, client_id, deleted_at || char(31) || id AS k \
             FROM documents WHERE account_id = ?1 AND deleted_at IS NOT NULL AND deleted_at < ?2 \
             AND (deleted_at, id) > (?3, ?4) ORDER BY deleted_at, id LIMIT ?6",
            &c.grace,
        ),
        STEP_DOCS_OF_ENDED_CLIENTS => (
            "SELECT id, body, client_ended_on AS ended, client_id, client_ended_on || char(31) || id AS k \
             FROM documents WHERE account_id = ?1 AND client_ended_on IS NOT NULL AND client_ended_on < ?2 \
             AND (client_ended_on, id) > (?3, ?4) ORDER BY client_ended_on, id LIMIT ?6",
            &c.ended,
        ),
        STEP_CLIENTS_SOFT_DELETED => (
            "SELECT id, body, relationship_ended_on AS ended, deleted_at || char(31) || id AS k FROM clients \
             WHERE account_id = ?1 AND deleted_at IS NOT NULL AND deleted_at < ?2 AND (deleted_at, id) > (?3, ?4) \
             ORDER BY deleted_at, id LIMIT ?6",
            &c.grace,
        ),
        STEP_CLIENTS_ENDED => (
            "SELECT id, body, relationship_ended_on AS ended, relationship_ended_on || char(31) || id AS k FROM clients \
             WHERE account_id = ?1 AND relationship_ended_on IS NOT NULL AND relationship_ended_on < ?2 \
             AND (relationship_ended_on, id) > (?3, ?4) ORDER BY relationship_ended_on, id LIMIT ?6",
            &c.ended,
        ),
        STEP_USERS => (
            "SELECT id, body, deleted_at || char(31) || id AS k FROM users WHERE account_id = ?1 AND deleted_at IS NOT NULL \
             AND deleted_at < ?2 AND (deleted_at, id) > (?3, ?4) ORDER BY deleted_at, id LIMIT ?6",
            &c.grace,
        ),
        STEP_GROUPS => (
            "SELECT id, body, deleted_at || char(31) || id AS k FROM groups WHERE account_id = ?1 AND deleted_at IS NOT NULL \
             AND deleted_at < ?2 AND (deleted_at, id) > (?3, ?4) ORDER BY deleted_at, id LIMIT ?6",
            &c.grace,
        ),
        _ => return None,
    };
    Some(Stmt::new(
        sql,
        vec![
            json!(acct.id),
            json!(cutoff),
            json!(parts[0]),
            json!(parts[1]),
            json!(parts[2]),
            json!(PAGE),
        ],
    ))
}

/// What a candidate row of a step is, for `retention::decide`.
fn classify(step: u8, body: &Value) -> (RecordType, &'static str, &'static str) {
    match step {
        STEP_DOCS_SOFT_DELETED | STEP_DOCS_OF_ENDED_CLIENTS => (
            if is_aml(body["kind"].as_str()) {
                RecordType::AmlEvidence
            } else {
                RecordType::Document
            },
            "documents",
            "document",
        ),
        STEP_CLIENTS_SOFT_DELETED | STEP_CLIENTS_ENDED => (RecordType::Client, "clients", "client"),
        // Users and groups have no legal retention of their own: soft-delete grace only.
        STEP_USERS => (RecordType::Document, "users", "user"),
        _ => (RecordType::Document, "groups", "group"),
    }
}

/// Sweep one account from `step`/`after`. Returns where it stopped when the budget ran out
/// (None: the account is done).
async fn sweep_account<P: SchedulerPlatform>(
    p: &P,
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    start_step: u8,
    start_after: String,
    counts: &mut Map<String, Value>,
) -> Result<Option<(u8, String)>, StoreError> {
    let now = p.now();
    let grace = rfc3339(now - time::Duration::days(i64::from(acct.policy.soft_delete_grace_days)));
    // Clients whose relationship ended before this date may hold something due for deletion.
    let min_years = acct
        .policy
        .aml_years_after_end
        .min(acct.policy.document_years_after_end)
        .min(acct.policy.client_years_after_end);
    let cutoffs = Cutoffs {
        grace,
        ended: years_before(now.date(), min_years).to_string(),
    };
    // The account's clients under legal hold, once (the partial index holds only them).
    let held_clients: std::collections::HashSet<String> = if acct.hold {
        Default::default()
    } else {
        d.db.query(Stmt::new(
            "SELECT id FROM clients INDEXED BY clients_on_hold WHERE account_id = ?1 AND legal_hold = 1",
            vec![json!(acct.id)],
        ))
        .await?
        .rows
        .iter()
        .filter_map(|r| col_str(r, "id").map(str::to_owned))
        .collect()
    };
    for step in start_step..=STEP_IDEMPOTENCY {
        let mut after = if step == start_step {
            start_after.clone()
        } else {
            String::new()
        };
        match step {
            // Erasure requests first: within the statutory month, before anything else.
            STEP_ERASURE => erase(p, d, acct, counts).await?,
            STEP_IDEMPOTENCY => {
                let cutoff =
                    rfc3339(now - time::Duration::days(i64::from(acct.policy.idempotency_days)));
                let r =
                    d.db.query(Stmt::new(
                        "DELETE FROM idempotency_keys WHERE account_id = ?1 AND created_at < ?2",
                        vec![json!(acct.id), json!(cutoff)],
                    ))
                    .await?;
                add(counts, "idempotency_keys_purged", r.meta.changes);
            }
            // An account under legal hold keeps everything: no candidate is even read.
            _ if acct.hold => {}
            _ => loop {
                if d.deleted >= MAX_DELETIONS_PER_SHARD || d.examined >= MAX_EXAMINED_PER_SHARD {
                    return Ok(Some((step, after)));
                }
                let Some(stmt) = candidates(step, acct, &cutoffs, &after) else {
                    break;
                };
                let rows = d.db.query(stmt).await?;
                d.examined += rows.rows.len() as u64;
                let mut due: Vec<Due> = Vec::new();
                for r in &rows.rows {
                    let body = col_json(r, "body").unwrap_or_default();
                    let (ty, table, singular) = classify(step, &body);
                    let client = col_str(r, "client_id").map(str::to_owned);
                    let client_hold = match &client {
                        Some(c) => held_clients.contains(c),
                        None => body["legal_hold"] == json!(true),
                    };
                    let rec = record(ty, &body, col_str(r, "ended"), client_hold, acct);
                    match retention::decide(&acct.policy, &rec, now) {
                        Decision::Delete { reason } => due.push(Due {
                            table,
                            singular,
                            id: col_str(r, "id").unwrap_or_default().to_string(),
                            client,
                            body,
                            reason,
                        }),
                        Decision::Held { .. } => add(counts, "held", 1),
                        Decision::Keep { .. } | Decision::KeepRestricted { .. } => {
                            add(counts, "kept", 1)
                        }
                    }
                }
                dispose(counts, d, acct, due).await?;
                match rows.rows.last().and_then(|r| col_str(r, "k")) {
                    Some(k) if rows.rows.len() as i64 == PAGE => after = k.to_string(),
                    _ => break,
                }
            },
        }
    }
    Ok(None)
}

/// A row the policy says must go.
struct Due {
    table: &'static str,
    singular: &'static str,
    id: String,
    /// A document's client (its hold is re-checked in the DELETE itself).
    client: Option<String>,
    body: Value,
    reason: String,
}

/// Delete one due row and record its `*.purged` event, both guarded so that a legal hold
/// placed since the candidate was read still wins: the DELETE re-checks the hold (a probe of
/// the partial hold index, which reads nothing when there is none) and the event is only
/// written if the row is gone. Two statements; the row is read once.
fn purge_stmts(account: Uuid, r: &Due, ev: &ChangeEvent) -> [Stmt; 2] {
    let delete = match (&r.client, r.table) {
        (Some(client), "documents") => Stmt::new(
            "DELETE FROM documents WHERE account_id = ?1 AND id = ?2 AND NOT EXISTS \
             (SELECT 1 FROM clients INDEXED BY clients_on_hold WHERE account_id = ?1 AND id = ?3 AND legal_hold = 1)",
            vec![json!(account), json!(r.id), json!(client)],
        ),
        (_, "clients") => Stmt::new(
            "DELETE FROM clients WHERE account_id = ?1 AND id = ?2 AND legal_hold IS NOT 1",
            vec![json!(account), json!(r.id)],
        ),
        (_, table) => Stmt::new(
            format!("DELETE FROM {table} WHERE account_id = ?1 AND id = ?2"),
            vec![json!(account), json!(r.id)],
        ),
    };
    let event = changes::purge_event(ev, r.table, &r.id);
    [delete, event]
}

/// Rows deleted per D1 batch (each with its `*.purged` event: 2 statements per row).
pub const DELETE_BATCH: usize = 40;

/// Delete a page's due rows, [`DELETE_BATCH`] per atomic batch with their events. A batch a
/// foreign key refuses (a client whose kept documents still reference it) is retried row by
/// row, so only the refused rows stay (counted as blocked).
async fn dispose<P: SchedulerPlatform>(
    counts: &mut Map<String, Value>,
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    due: Vec<Due>,
) -> Result<(), StoreError> {
    for chunk in due.chunks(DELETE_BATCH) {
        // Each row with its two statements (kept for the row-by-row retry).
        let rows: Vec<(&Due, [Stmt; 2])> = chunk
            .iter()
            .filter_map(|r| {
                let entity_id = Uuid::parse_str(&r.id).ok()?;
                let ev = d.event(
                    acct.id,
                    r.table,
                    r.singular,
                    entity_id,
                    &r.reason,
                    Action::Purged,
                    0,
                );
                Some((r, purge_stmts(acct.id, r, &ev)))
            })
            .collect();
        let stmts: Vec<Stmt> = rows.iter().flat_map(|(_, s)| s.iter().cloned()).collect();
        // Which rows went: the DELETE of each (even statements) changed one row.
        let landed = |res: &[Rows], i: usize| res.get(2 * i).is_some_and(|x| x.meta.changes > 0);
        let mut gone: Vec<&Due> = Vec::new();
        match d.db.batch(stmts).await {
            Ok(res) => {
                for (i, (r, _)) in rows.iter().enumerate() {
                    if landed(&res, i) {
                        gone.push(r);
                    } else {
                        add(counts, "held", 1); // a hold arrived after the candidate was read
                    }
                }
            }
            // A foreign key refused one of them (a client whose kept documents still
            // reference it): row by row, so only the refused rows stay.
            Err(StoreError::Constraint(_)) => {
                for (r, pair) in rows {
                    match d.db.batch(pair.to_vec()).await {
                        Ok(res) if landed(&res, 0) => gone.push(r),
                        Ok(_) => add(counts, "held", 1),
                        Err(StoreError::Constraint(_)) => {
                            add(counts, &format!("{}_blocked", r.table), 1)
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
        d.deleted += gone.len() as u64;
        for r in gone {
            add(counts, &format!("{}_deleted", r.table), 1);
            // Document contents go with their row (after the commit; a failed delete leaves an
            // unreferenced object, counted so an operator sees it).
            if let (Some(sha), Ok(doc)) =
                (r.body["content"]["sha256"].as_str(), Uuid::parse_str(&r.id))
            {
                match d
                    .p
                    .blobs()
                    .delete(&crate::domain::content::blob_key(acct.id, doc, sha))
                    .await
                {
                    Ok(()) => add(counts, "contents_deleted", 1),
                    Err(_) => add(counts, "contents_delete_failed", 1),
                }
            }
        }
    }
    Ok(())
}

/// Carry out the account's pending erasure requests.
async fn erase<P: SchedulerPlatform>(
    p: &P,
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    counts: &mut Map<String, Value>,
) -> Result<(), StoreError> {
    use crate::store::erasure_requests::{
        complete_stmt, pending_stmt, CLIENT_PSEUDONYM, USER_PSEUDONYM,
    };
    let now = p.now();
    let requests = d.db.query(pending_stmt(acct.id)).await?;
    for r in &requests.rows {
        let Some(req_id) = col_str(r, "id").map(str::to_owned) else {
            continue;
        };
        let body = col_json(r, "body").unwrap_or_default();
        let subject = body["subject_id"].as_str().unwrap_or_default().to_string();
        let received = body["received_at"].as_str().and_then(parse_rfc3339);
        let mut erased = 0u64;
        let mut restricted: Vec<Value> = Vec::new();
        let mut held = acct.hold;
        if held {
            // A legal hold beats erasure: the request stays pending.
        } else if body["subject_type"] == "user" {
            if d.rewrite(
                acct.id,
                "users",
                "user",
                &subject,
                USER_PSEUDONYM,
                "personal data",
                Action::Erased,
            )
            .await?
            {
                erased += 1;
            }
        } else {
            let client = d
                .db
                .query(Stmt::new(
                    "SELECT body, relationship_ended_on AS ended FROM clients WHERE account_id = ?1 AND id = ?2",
                    vec![json!(acct.id), json!(subject)],
                ))
                .await?;
            let Some(crow) = client.first() else {
                let outcome =
                    json!({"erased": 0, "restricted": [], "note": "the subject no longer exists"});
                d.db.query(complete_stmt(
                    acct.id,
                    &req_id,
                    "completed",
                    &outcome,
                    &rfc3339(now),
                ))
                .await?;
                add(counts, "erasures_completed", 1);
                continue;
            };
            let cbody = col_json(crow, "body").unwrap_or_default();
            let ended = col_str(crow, "ended").map(str::to_owned);
            let client_hold = cbody["legal_hold"] == json!(true);
            let docs =
                d.db.query(Stmt::new(
                    "SELECT id, body FROM documents WHERE account_id = ?1 AND client_id = ?2",
                    vec![json!(acct.id), json!(subject)],
                ))
                .await?;
            let mut kept_docs = 0;
            for doc in &docs.rows {
                let dbody = col_json(doc, "body").unwrap_or_default();
                let did = col_str(doc, "id").unwrap_or_default().to_string();
                let ty = if is_aml(dbody["kind"].as_str()) {
                    RecordType::AmlEvidence
                } else {
                    RecordType::Document
                };
                let mut rec = record(ty, &dbody, ended.as_deref(), client_hold, acct);
                rec.erasure_requested_at = received;
                match retention::decide(&acct.policy, &rec, now) {
                    Decision::Delete { reason } => {
                        if d.delete_as(
                            acct.id,
                            "documents",
                            "document",
                            &did,
                            Some(&subject),
                            &reason,
                            Action::Erased,
                        )
                        .await?
                        {
                            erased += 1;
                            if let (Some(sha), Ok(doc_id)) =
                                (dbody["content"]["sha256"].as_str(), Uuid::parse_str(&did))
                            {
                                if p.blobs()
                                    .delete(&crate::domain::content::blob_key(acct.id, doc_id, sha))
                                    .await
                                    .is_ok()
                                {
                                    add(counts, "contents_deleted", 1);
                                }
                            }
                        } else {
                            kept_docs += 1;
                        }
                    }
                    Decision::KeepRestricted { until, reason } => {
                        kept_docs += 1;
                        restricted.push(
                            json!({"document_id": did, "until": rfc3339(until), "reason": reason}),
                        );
                    }
                    Decision::Held { .. } => {
                        kept_docs += 1;
                        held = true;
                    }
                    Decision::Keep { .. } => kept_docs += 1,
                }
            }
            let mut rec = record(
                RecordType::Client,
                &cbody,
                ended.as_deref(),
                client_hold,
                acct,
            );
            rec.erasure_requested_at = received;
            match retention::decide(&acct.policy, &rec, now) {
                Decision::Delete { reason } => {
                    // Deleted outright if nothing kept refers to it, otherwise pseudonymised.
                    let deleted = kept_docs == 0
                        && d.delete_as(
                            acct.id,
                            "clients",
                            "client",
                            &subject,
                            None,
                            &reason,
                            Action::Erased,
                        )
                        .await?;
                    if deleted
                        || d.rewrite(
                            acct.id,
                            "clients",
                            "client",
                            &subject,
                            CLIENT_PSEUDONYM,
                            "personal data",
                            Action::Erased,
                        )
                        .await?
                    {
                        erased += 1;
                    }
                }
                Decision::KeepRestricted { until, reason } => {
                    restricted.push(
                        json!({"client_id": subject, "until": rfc3339(until), "reason": reason}),
                    );
                }
                Decision::Held { .. } => held = true,
                Decision::Keep { .. } => {}
            }
        }
        if held {
            add(counts, "erasures_held", 1);
            continue;
        }
        let status = if restricted.is_empty() {
            "completed"
        } else {
            "restricted"
        };
        let outcome = json!({"erased": erased, "restricted": restricted});
        d.db.query(complete_stmt(
            acct.id,
            &req_id,
            status,
            &outcome,
            &rfc3339(now),
        ))
        .await?;
        add(counts, "erasures_completed", 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
