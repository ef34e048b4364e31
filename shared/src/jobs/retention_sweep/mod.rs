//! The nightly retention sweep, per bound shard and per account on it. Candidates come from
//! indexes (soft-deleted rows by deletion time; clients by relationship end), each is judged by
//! `domain::retention::decide` (policy, legal holds, longest retention wins), and each deletion
//! commits with its `*.purged` change event in one batch, so the audit trail proves the
//! disposition. Erasure requests go first (`erase`); restrictions that ended on records still
//! kept are lifted last (`restriction_ends`). A due row the sweep could not delete (a
//! constraint refused it) or a purged document's content left in R2 is named in the run,
//! which is then `partial`; a due client its documents still refer to is kept with them.
//!
//! Exactly once: every disposition statement is conditional on the row's version as the sweep
//! read it (a hold, an edit or another run's disposition since moves it), and its event is
//! written only if that very statement removed or rewrote the row. Two overlapping runs (a
//! lease taken over, say) therefore emit one event per disposed row.
//!
//! Bounded per run (deletions and candidates examined); a run that runs out of budget stores
//! its cursor (account, step, keyset position) in `job_cursors`, fenced by the run's lease, and
//! the next run resumes there, so kept rows are not read again within a cycle. A cycle ends
//! when every account of the shard has been swept; its cursor is then deleted
//! (`cycles_completed` in the run).

mod erase;
mod restriction_ends;

use crate::domain::clock::{parse_rfc3339, rfc3339, uuid_v7};
use crate::domain::event::{Action, Actor, Change, ChangeEvent, Origin};
use crate::domain::retention::{self, Decision, Policy, Record, RecordType};
use crate::jobs::lease::{write_cursor, JobError};
use crate::jobs::report::{RetentionCounts, RetentionReport, ShardSweep, Tally};
use crate::jobs::SchedulerPlatform;
use crate::ports::*;
use crate::services::changes::{self, version_of, Edit, Expect, Write};
use crate::store::job_state::Fence;
use crate::store::retention::{self as sql, Candidates};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// Candidate rows read per query and deletions per shard per run.
pub const PAGE: i64 = 200;
pub const MAX_DELETIONS_PER_SHARD: u64 = 5_000;
/// Candidate rows examined per shard per run (kept rows cost reads too).
pub const MAX_EXAMINED_PER_SHARD: u64 = 20_000;

fn date_of(v: Option<&str>) -> Option<time::Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    v.and_then(|s| time::Date::parse(s, &fmt).ok())
}

fn is_aml(kind: Option<&str>) -> bool {
    matches!(kind, Some("aml_evidence" | "identity"))
}

pub(crate) struct AccountCtx {
    id: Uuid,
    policy: Policy,
    hold: bool,
}

impl AccountCtx {
    fn of(id: Uuid, body: &Value) -> Self {
        AccountCtx {
            id,
            policy: Policy::from_stored(&body["retention"]),
            hold: body["legal_hold"] == json!(true),
        }
    }

    /// Read the account's hold and policy again (before each dispose batch and each erasure
    /// request: a hold placed while the run goes stops it from the next write on). An account
    /// no longer in the registry is treated as held: nothing of it is disposed of.
    /// Returns whether the policy changed.
    async fn refresh<P: SchedulerPlatform>(&mut self, p: &P) -> Result<bool, StoreError> {
        let rows = p.accounts().query(sql::account(self.id)).await?;
        let Some(body) = rows.first().and_then(|r| col_json(r, "body")) else {
            self.hold = true;
            return Ok(false);
        };
        let now = AccountCtx::of(self.id, &body);
        let changed = now.policy != self.policy;
        *self = now;
        Ok(changed)
    }
}

struct Deleter<'a, P: SchedulerPlatform> {
    p: &'a P,
    db: &'a P::Db,
    shard_id: &'a str,
    deleted: u64,
    examined: u64,
    /// Cached renderings deleted so far by this run (`erase::MAX_CACHE_DELETES_PER_RUN`).
    cache_deletes: u64,
    /// Due rows a constraint kept (`{table}/{id}: why`) and content objects of purged
    /// documents left in R2, for the run's detail.
    blocked: Vec<String>,
}

impl<P: SchedulerPlatform> Deleter<'_, P> {
    /// A change event of the sweep (actor `system/retention`).
    fn event(
        &self,
        account: Uuid,
        (table, singular): (&str, &str),
        entity_id: Uuid,
        why: &str,
        action: Action,
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
                entity_version: 0,
                changed_fields: vec![why.to_string()],
            },
        )
    }

    /// One change of a kept row through the write protocol, with its event; true if it landed.
    async fn change(
        &mut self,
        account: Uuid,
        entity: (&'static str, &'static str),
        id: &str,
        edit: Edit,
        expect: Expect,
        (why, action): (&str, Action),
    ) -> Result<bool, StoreError> {
        self.change_with(account, entity, id, edit, expect, (why, action), vec![])
            .await
    }

    /// [`Self::change`] with statements that commit in the same batch (after the change).
    #[allow(clippy::too_many_arguments)]
    async fn change_with(
        &mut self,
        account: Uuid,
        entity: (&'static str, &'static str),
        id: &str,
        edit: Edit,
        expect: Expect,
        (why, action): (&str, Action),
        with: Vec<Stmt>,
    ) -> Result<bool, StoreError> {
        let Ok(entity_id) = Uuid::parse_str(id) else {
            return Ok(false);
        };
        let write = Write {
            table: entity.0,
            id: entity_id,
            edit,
            expect,
            live_only: false,
            event: self.event(account, entity, entity_id, why, action),
            with,
        };
        Ok(changes::commit(self.db, &write).await?.is_some())
    }

    /// Hard-delete one row with its event, atomically, through the same guarded statements as
    /// the nightly purge ([`purge_stmts`]: the version read, holds re-checked). A foreign-key
    /// refusal (a client whose kept documents still reference it) keeps the row.
    async fn delete_as(
        &mut self,
        account: Uuid,
        due: &Due,
        action: Action,
    ) -> Result<bool, StoreError> {
        let Ok(entity_id) = Uuid::parse_str(&due.id) else {
            return Ok(false);
        };
        let mut ev = self.event(
            account,
            (due.table, due.singular),
            entity_id,
            &due.reason,
            action,
        );
        ev.changes = restriction_ends::ended_in(&due.body);
        match self.db.batch(purge_stmts(account, due, &ev)).await {
            Ok(res) if res.first().is_some_and(|r| r.meta.changes > 0) => {
                self.deleted += 1;
                Ok(true)
            }
            Ok(_) | Err(StoreError::Constraint(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Delete a removed document's content from R2 (after the commit): every object under the
    /// document's prefix, listed, not only the one its row names (an upload that lost a race
    /// with the removal stored one no row names). A failed delete leaves an unreferenced
    /// object, counted so an operator sees it, and its key is returned (a failed listing, the
    /// prefix): an erasure keeps them to retry.
    async fn delete_content(
        &self,
        account: Uuid,
        due: &Due,
        counts: &mut RetentionCounts,
    ) -> Vec<String> {
        let Ok(doc) = Uuid::parse_str(&due.id) else {
            return vec![];
        };
        let prefix = crate::domain::content::blob_prefix(account, doc);
        self.delete_under(&prefix, counts).await
    }

    /// Delete every object under `prefix` (a listing page at a time); what could not be
    /// deleted is returned: the keys, or the prefix itself if listing failed.
    async fn delete_under(&self, prefix: &str, counts: &mut RetentionCounts) -> Vec<String> {
        const LIST_PAGE: usize = 1_000;
        let mut failed = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let keys = match self
                .p
                .blobs()
                .list(prefix, after.as_deref(), LIST_PAGE)
                .await
            {
                Ok(keys) => keys,
                Err(_) => {
                    counts.contents_delete_failed.add(1);
                    failed.push(prefix.to_string());
                    return failed;
                }
            };
            for key in &keys {
                match self.p.blobs().delete(key).await {
                    Ok(()) => counts.contents_deleted.add(1),
                    Err(_) => {
                        counts.contents_delete_failed.add(1);
                        failed.push(key.clone());
                    }
                }
            }
            match keys.last() {
                Some(last) if keys.len() == LIST_PAGE => after = Some(last.clone()),
                _ => return failed,
            }
        }
    }

    /// Retry what an earlier run could not delete: a key, or (ending in `/`) a prefix.
    async fn delete_pending(&self, pending: &str, counts: &mut RetentionCounts) -> Vec<String> {
        if pending.ends_with('/') {
            return self.delete_under(pending, counts).await;
        }
        match self.p.blobs().delete(pending).await {
            Ok(()) => {
                counts.contents_deleted.add(1);
                vec![]
            }
            Err(_) => {
                counts.contents_delete_failed.add(1);
                vec![pending.to_string()]
            }
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

/// One shard, one bounded invocation under the run's lease (`fence`): resume from the stored
/// cursor, sweep accounts in id order until done or out of budget, then store the new cursor
/// (or delete it: cycle complete). A fence that is no longer current stops the run.
pub async fn sweep_shard<P: SchedulerPlatform>(
    p: &P,
    shard_id: &str,
    db: &P::Db,
    fence: &Fence,
    report: &mut RetentionReport,
) -> Result<(), JobError> {
    let counts = &mut report.counts;
    let before = db.cost();
    let stored = load_cursor(p.accounts(), shard_id).await?;
    let cursor: Cursor = stored
        .as_ref()
        .and_then(|b| serde_json::from_value(b["cursor"].clone()).ok())
        .unwrap_or_default();
    if stored.is_some() {
        counts.resumed.add(1);
    }
    let accounts = p
        .accounts()
        .query(sql::accounts_on_shard(shard_id, &cursor.account))
        .await?;
    let mut d = Deleter {
        p,
        db,
        shard_id,
        deleted: 0,
        examined: 0,
        cache_deletes: 0,
        blocked: Vec::new(),
    };
    let mut stopped: Option<Cursor> = None;
    for row in &accounts.rows {
        let Some(id) = col_str(row, "id").and_then(|s| Uuid::parse_str(s).ok()) else {
            continue;
        };
        // Still ours? A run whose lease expired and was taken over stops here, before it
        // touches another account (the deletions so far are counted below either way).
        if let Err(e) = crate::jobs::lease::renew(p, crate::jobs::Job::Retention, fence).await {
            add_counts(counts, d.deleted, d.examined, db, &before);
            report
                .undisposed
                .extend(d.blocked.drain(..).map(|b| format!("{shard_id}: {b}")));
            return Err(e);
        }
        let body = col_json(row, "body").unwrap_or_default();
        let mut ctx = AccountCtx::of(id, &body);
        let (step, after) = if id.to_string() == cursor.account {
            (cursor.step, cursor.after.clone())
        } else {
            (STEP_ERASURE, String::new())
        };
        let swept = sweep_account(p, &mut d, &mut ctx, step, after, counts).await;
        let swept = match swept {
            Ok(s) => s,
            Err(e) => {
                add_counts(counts, d.deleted, d.examined, db, &before);
                report
                    .undisposed
                    .extend(d.blocked.drain(..).map(|b| format!("{shard_id}: {b}")));
                return Err(e.into());
            }
        };
        if let Some((step, after)) = swept {
            stopped = Some(Cursor {
                account: id.to_string(),
                step,
                after,
            });
            break;
        }
    }
    // Counted before the cursor write: a run that loses its lease there still reports what it did.
    add_counts(counts, d.deleted, d.examined, db, &before);
    report
        .undisposed
        .extend(d.blocked.drain(..).map(|b| format!("{shard_id}: {b}")));
    let now = rfc3339(p.now());
    match stopped {
        Some(c) => {
            counts.left_for_next_run.add(1);
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
            counts.usage_periods_purged.add(r.meta.changes);
            write_cursor(p, &cursor_id(shard_id), None, fence).await?;
            counts.cycles_completed.add(1);
        }
    }
    let spent = db.cost();
    let (read, written) = (
        spent.rows_read.saturating_sub(before.rows_read),
        spent.rows_written.saturating_sub(before.rows_written),
    );
    // The same per shard: a shard with nothing due still reads its probes, and an operator
    // sizing the sweep wants each shard's own cost per deletion.
    report.by_shard.insert(
        shard_id.to_string(),
        ShardSweep {
            deleted: d.deleted,
            candidates_examined: d.examined,
            rows_read: read,
            rows_written: written,
        },
    );
    Ok(())
}

/// A shard invocation's work into the run's counts (once, whichever way it ends).
fn add_counts(
    counts: &mut RetentionCounts,
    deleted: u64,
    examined: u64,
    db: &impl Database,
    before: &crate::ports::Cost,
) {
    let spent = db.cost();
    counts.deleted.add(deleted);
    counts.candidates_examined.add(examined);
    counts
        .rows_read
        .add(spent.rows_read.saturating_sub(before.rows_read));
    counts
        .rows_written
        .add(spent.rows_written.saturating_sub(before.rows_written));
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

/// Candidate bounds of one account's policy at `now`, each the inverse of the boundary
/// `retention::decide` applies (inclusive: a row is a candidate from the instant it is due).
pub(crate) struct Cutoffs {
    /// Soft-deleted at or before this (RFC 3339): the grace is over.
    grace: String,
    /// Relationship ended on or before this date: the shortest relationship-end period is over.
    ended: String,
}

impl Cutoffs {
    pub(crate) fn of(policy: &Policy, now: OffsetDateTime) -> Self {
        let min_years = policy
            .aml_years_after_end
            .min(policy.document_years_after_end)
            .min(policy.client_years_after_end);
        Cutoffs {
            grace: rfc3339(retention::latest_due_start(
                policy.soft_delete_grace_days,
                now,
            )),
            ended: retention::latest_due_relationship_end(min_years, now).to_string(),
        }
    }
}

/// Separates the parts of a keyset position (`k`): the sort key, then the id.
const SEP: char = '\u{1f}';

/// The candidate query of a step, after keyset position `after` (the `k` of the last row seen).
pub(crate) fn candidates(step: u8, acct: &AccountCtx, c: &Cutoffs, after: &str) -> Option<Stmt> {
    let (key, id) = after.split_once(SEP).unwrap_or((after, ""));
    let (which, cutoff) = match step {
        STEP_DOCS_SOFT_DELETED => (Candidates::DocsSoftDeleted, &c.grace),
        STEP_DOCS_OF_ENDED_CLIENTS => (Candidates::DocsOfEndedClients, &c.ended),
        STEP_CLIENTS_SOFT_DELETED => (Candidates::ClientsSoftDeleted, &c.grace),
        STEP_CLIENTS_ENDED => (Candidates::ClientsEnded, &c.ended),
        STEP_USERS => (Candidates::UsersSoftDeleted, &c.grace),
        STEP_GROUPS => (Candidates::GroupsSoftDeleted, &c.grace),
        _ => return None,
    };
    Some(sql::candidates(which, acct.id, cutoff, key, id, PAGE))
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
    acct: &mut AccountCtx,
    start_step: u8,
    start_after: String,
    counts: &mut RetentionCounts,
) -> Result<Option<(u8, String)>, StoreError> {
    let now = p.now();
    let mut cutoffs = Cutoffs::of(&acct.policy, now);
    // The account's clients under legal hold, once (the partial index holds only them).
    let held_clients: std::collections::HashSet<String> = if acct.hold {
        Default::default()
    } else {
        d.db.query(sql::held_clients(acct.id))
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
            STEP_ERASURE => erase::erase(p, d, acct, counts).await?,
            // An account under legal hold keeps everything (idempotency keys included): no
            // candidate is even read.
            _ if acct.hold => {}
            STEP_IDEMPOTENCY => {
                let days = acct.policy.idempotency_days;
                let cutoff = rfc3339(retention::latest_due_start(days, now));
                let r = d.db.query(sql::purge_idempotency(acct.id, &cutoff)).await?;
                counts.idempotency_keys_purged.add(r.meta.changes);
            }
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
                            version: version_of(&body),
                            body,
                            reason,
                        }),
                        Decision::Held { .. } => counts.held.add(1),
                        Decision::Keep { .. } | Decision::KeepRestricted { .. } => {
                            counts.kept.add(1)
                        }
                    }
                }
                // The hold and policy as they are now, not as the run began: a hold placed
                // meanwhile keeps the page (and the rest of the account); a policy changed
                // meanwhile judges the page again.
                if acct.refresh(p).await? {
                    cutoffs = Cutoffs::of(&acct.policy, now);
                    continue;
                }
                if acct.hold {
                    counts.held.add(due.len() as u64);
                    break;
                }
                dispose(counts, d, acct, due).await?;
                match rows.rows.last().and_then(|r| col_str(r, "k")) {
                    Some(k) if rows.rows.len() as i64 == PAGE => after = k.to_string(),
                    _ => break,
                }
            },
        }
    }
    // What is due has gone (its disposal event naming a restriction that had ended); the
    // restrictions that ended on records still kept are lifted, each with its event.
    restriction_ends::lift_ended(d, acct, counts).await?;
    if !acct.hold {
        dispose_audit(p, d.db, acct, counts).await;
    }
    Ok(None)
}

/// The audit log's own retention: links past `audit_years` go, behind a signed disposal
/// checkpoint (`services::checkpoints::dispose_expired`); an account hold keeps them all.
async fn dispose_audit<P: SchedulerPlatform>(
    p: &P,
    db: &P::Db,
    acct: &AccountCtx,
    counts: &mut RetentionCounts,
) {
    let Some(seal) = p.audit_seal() else {
        return;
    };
    match crate::services::checkpoints::dispose_expired(
        db,
        p.checkpoints(),
        &seal.signer,
        &seal.keys,
        acct.id,
        acct.policy.audit_years,
        p.now(),
    )
    .await
    {
        Ok(n) => counts.audit_links_disposed.add(n),
        Err(e) => {
            tracing::warn!(error = %e, account = %acct.id, "audit disposal failed");
            counts.audit_disposals_failed.add(1);
        }
    }
}

/// A row the policy says must go, as the sweep read it.
struct Due {
    table: &'static str,
    singular: &'static str,
    id: String,
    /// A document's client (its hold is re-checked in the DELETE itself).
    client: Option<String>,
    /// The version judged: the DELETE applies only to it.
    version: i64,
    body: Value,
    reason: String,
}

/// Delete one due row and record its disposition event, both guarded so that a legal hold
/// placed (or any change made) since the candidate was read still wins: the DELETE requires
/// the version read and re-checks the hold, and the event is only written if that DELETE
/// removed the row; nor while a restriction in force at the event's time protects it. A document's client
/// gets its `document_count` recomputed in the same batch (derived fields stay true after
/// purges).
fn purge_stmts(account: Uuid, r: &Due, ev: &ChangeEvent) -> Vec<Stmt> {
    let mut stmts = vec![
        sql::purge(
            account,
            r.table,
            &r.id,
            r.client.as_deref(),
            r.version,
            &ev.time,
        ),
        changes::purge_event(ev, r.table, &r.id),
    ];
    if let (Some(client), "documents") = (&r.client, r.table) {
        stmts.push(crate::store::derived_fields::refresh_document_count(
            &account.to_string(),
            client,
        ));
    }
    stmts
}

/// Rows deleted per D1 batch (each with its event and, for documents, its client's recount).
pub const DELETE_BATCH: usize = 40;

/// Delete a page's due rows, [`DELETE_BATCH`] per atomic batch with their events. A batch a
/// foreign key refuses (a client whose kept documents still reference it) is retried row by
/// row, so only the refused rows stay (counted as blocked).
async fn dispose<P: SchedulerPlatform>(
    counts: &mut RetentionCounts,
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    due: Vec<Due>,
) -> Result<(), StoreError> {
    for chunk in due.chunks(DELETE_BATCH) {
        // Each row with its statements (kept for the row-by-row retry).
        let rows: Vec<(&Due, Vec<Stmt>)> = chunk
            .iter()
            .filter_map(|r| {
                let entity_id = Uuid::parse_str(&r.id).ok()?;
                let mut ev = d.event(
                    acct.id,
                    (r.table, r.singular),
                    entity_id,
                    &r.reason,
                    Action::Purged,
                );
                ev.changes = restriction_ends::ended_in(&r.body);
                Some((r, purge_stmts(acct.id, r, &ev)))
            })
            .collect();
        let mut starts = Vec::with_capacity(rows.len());
        let mut stmts: Vec<Stmt> = Vec::new();
        for (_, s) in &rows {
            starts.push(stmts.len());
            stmts.extend(s.iter().cloned());
        }
        // Which rows went: the DELETE (first statement) of each changed one row.
        let landed = |res: &[Rows], at: usize| res.get(at).is_some_and(|x| x.meta.changes > 0);
        let mut gone: Vec<&Due> = Vec::new();
        match d.db.batch(stmts).await {
            Ok(res) => {
                for (i, (r, _)) in rows.iter().enumerate() {
                    if landed(&res, starts[i]) {
                        gone.push(r);
                    } else {
                        // A hold arrived, the row changed, or another run disposed of it.
                        counts.held.add(1);
                    }
                }
            }
            // A foreign key refused one of them (a client whose kept documents still
            // reference it): row by row, so only the refused rows stay.
            Err(StoreError::Constraint(_)) => {
                for (r, own) in rows {
                    match d.db.batch(own).await {
                        Ok(res) if landed(&res, 0) => gone.push(r),
                        Ok(_) => counts.held.add(1),
                        // A client its documents still refer to is kept with them (the
                        // longest retention wins); any other refusal is named in the run.
                        Err(StoreError::Constraint(why)) => {
                            let kept_by_documents = r.table == "clients"
                                && !d
                                    .db
                                    .query(sql::client_has_documents(acct.id, &r.id))
                                    .await?
                                    .rows
                                    .is_empty();
                            // An erased adviser's pseudonymous row, which their clients
                            // still name (erasure leaves it so; the API never deletes a user
                            // clients name, and such a user is named as blocked).
                            let kept_by_clients = r.table == "users"
                                && !r.body["erased_at"].is_null()
                                && !d
                                    .db
                                    .query(sql::clients_advised_by(acct.id, &r.id))
                                    .await?
                                    .rows
                                    .is_empty();
                            if kept_by_documents {
                                counts.clients_kept_for_documents.add(1);
                            } else if kept_by_clients {
                                counts.users_kept_for_clients.add(1);
                            } else {
                                counts.blocked_in(r.table).add(1);
                                d.blocked
                                    .push(format!("{}/{}: not deleted: {why}", r.table, r.id));
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
        d.deleted += gone.len() as u64;
        for r in gone {
            counts.deleted_from(r.table).add(1);
            // Document contents go with their row; an object left behind is named in the run
            // (its row is gone: nothing else would find it again).
            for left in d.delete_content(acct.id, r, counts).await {
                d.blocked.push(format!(
                    "{left}: content of {}/{} not deleted",
                    r.table, r.id
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
