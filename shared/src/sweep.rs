//! The nightly retention sweep, per bound shard and per account on it. Candidates come from
//! indexes (soft-deleted rows by deletion time; clients by relationship end), each is judged by
//! `retention::decide` (policy, legal holds, longest retention wins), and each deletion commits
//! with a `*.purged` change event in one batch, so the audit trail proves the disposition.
//! Bounded per run; what is left is taken by the next run (deleted rows leave the candidate
//! indexes, so the sweep resumes by itself; kept rows are passed with a keyset cursor).

use crate::api::outbox_insert;
use crate::clock::{parse_rfc3339, rfc3339, uuid_v7};
use crate::event::{Action, Actor, Change, ChangeEvent, Origin};
use crate::jobs::SchedulerPlatform;
use crate::ports::*;
use crate::retention::{self, Decision, Policy, Record, RecordType};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// Candidate rows read per query and deletions per shard per run.
pub const PAGE: i64 = 200;
pub const MAX_DELETIONS_PER_SHARD: u64 = 5_000;

fn add(counts: &mut Map<String, Value>, key: &str, n: u64) {
    let cur = counts.get(key).and_then(Value::as_u64).unwrap_or(0);
    counts.insert(key.into(), json!(cur + n));
}

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

struct AccountCtx {
    id: Uuid,
    policy: Policy,
    hold: bool,
}

struct Deleter<'a, P: SchedulerPlatform> {
    p: &'a P,
    db: &'a P::Db,
    shard_id: &'a str,
    deleted: u64,
}

impl<P: SchedulerPlatform> Deleter<'_, P> {
    /// Hard-delete one row with its `purged` event, atomically. A foreign-key refusal (a client
    /// whose kept documents still reference it) keeps the row.
    async fn delete(
        &mut self,
        account: Uuid,
        table: &str,
        singular: &str,
        id: &str,
        why: &str,
    ) -> Result<bool, StoreError> {
        let now = self.p.now();
        let Ok(entity_id) = Uuid::parse_str(id) else {
            return Ok(false);
        };
        let mut ev = ChangeEvent::new(
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
                action: Action::Purged,
                entity_version: 0,
                changed_fields: vec![why.to_string()],
            },
        );
        ev.bookmark = None;
        let res = self
            .db
            .batch(vec![
                Stmt::new(
                    format!("DELETE FROM {table} WHERE account_id = ?1 AND id = ?2"),
                    vec![json!(account), json!(id)],
                ),
                outbox_insert(&ev),
            ])
            .await;
        match res {
            Ok(_) => {
                self.deleted += 1;
                Ok(true)
            }
            Err(StoreError::Constraint(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// One shard: every account on it.
pub async fn sweep_shard<P: SchedulerPlatform>(
    p: &P,
    shard_id: &str,
    db: &P::Db,
    counts: &mut Map<String, Value>,
) -> Result<(), StoreError> {
    let accounts = p
        .accounts()
        .query(Stmt::new(
            "SELECT id, body FROM accounts WHERE db_shard_id = ?1 ORDER BY id",
            vec![json!(shard_id)],
        ))
        .await?;
    let mut d = Deleter {
        p,
        db,
        shard_id,
        deleted: 0,
    };
    for row in &accounts.rows {
        let Some(id) = col_str(row, "id").and_then(|s| Uuid::parse_str(s).ok()) else {
            continue;
        };
        let body = col_json(row, "body").unwrap_or_default();
        let ctx = AccountCtx {
            id,
            policy: crate::settings::policy_of(&body["retention"]),
            hold: body["legal_hold"] == json!(true),
        };
        sweep_account(p, &mut d, &ctx, counts).await?;
        if d.deleted >= MAX_DELETIONS_PER_SHARD {
            add(counts, "left_for_next_run", 1);
            break;
        }
    }
    add(counts, "deleted", d.deleted);
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

async fn sweep_account<P: SchedulerPlatform>(
    p: &P,
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    counts: &mut Map<String, Value>,
) -> Result<(), StoreError> {
    let now = p.now();
    let grace_cutoff =
        rfc3339(now - time::Duration::days(i64::from(acct.policy.soft_delete_grace_days)));
    // 1. Documents: soft-deleted past grace, and documents of clients whose relationship ended
    //    long enough ago (documents before clients: foreign keys).
    // Clients whose relationship ended before this date may hold something due for deletion.
    let min_years = acct
        .policy
        .aml_years_after_end
        .min(acct.policy.document_years_after_end)
        .min(acct.policy.client_years_after_end);
    let ended_cutoff = years_before(now.date(), min_years).to_string();
    let doc_query = |after: &str, mode: u8| -> Stmt {
        match mode {
            0 => Stmt::new(
                "SELECT d.id, d.body, c.body ->> '$.relationship_ended_on' AS ended, c.body ->> '$.legal_hold' AS hold, \
                 d.deleted_at || d.id AS k FROM documents d LEFT JOIN clients c ON c.account_id = d.account_id AND c.id = d.client_id \
                 WHERE d.account_id = ?1 AND d.deleted_at IS NOT NULL AND d.deleted_at < ?2 AND (d.deleted_at || d.id) > ?3 \
                 ORDER BY d.deleted_at, d.id LIMIT ?4",
                vec![json!(acct.id), json!(grace_cutoff), json!(after), json!(PAGE)],
            ),
            _ => Stmt::new(
                "SELECT d.id, d.body, c.relationship_ended_on AS ended, c.body ->> '$.legal_hold' AS hold, \
                 c.relationship_ended_on || c.id || d.id AS k FROM clients c \
                 JOIN documents d ON d.account_id = c.account_id AND d.client_id = c.id \
                 WHERE c.account_id = ?1 AND c.relationship_ended_on IS NOT NULL AND c.relationship_ended_on < ?2 \
                 AND (c.relationship_ended_on || c.id || d.id) > ?3 ORDER BY k LIMIT ?4",
                vec![json!(acct.id), json!(ended_cutoff), json!(after), json!(PAGE)],
            ),
        }
    };
    for mode in [0u8, 1] {
        let mut after = String::new();
        loop {
            let rows = d.db.query(doc_query(&after, mode)).await?;
            for r in &rows.rows {
                let body = col_json(r, "body").unwrap_or_default();
                let ty = if is_aml(body["kind"].as_str()) {
                    RecordType::AmlEvidence
                } else {
                    RecordType::Document
                };
                let rec = record(
                    ty,
                    &body,
                    col_str(r, "ended"),
                    col_i64(r, "hold") == Some(1),
                    acct,
                );
                tally(
                    counts,
                    d,
                    acct,
                    "documents",
                    "document",
                    col_str(r, "id").unwrap_or_default(),
                    &body,
                    retention::decide(&acct.policy, &rec, now),
                )
                .await?;
            }
            match rows.rows.last().and_then(|r| col_str(r, "k")) {
                Some(k)
                    if (rows.rows.len() as i64) == PAGE && d.deleted < MAX_DELETIONS_PER_SHARD =>
                {
                    after = k.to_string();
                }
                _ => break,
            }
        }
    }
    // 2. Clients: soft-deleted past grace, or relationship ended long enough ago.
    for mode in [0u8, 1] {
        let mut after = String::new();
        loop {
            let stmt = if mode == 0 {
                Stmt::new(
                    "SELECT id, body, relationship_ended_on AS ended, deleted_at || id AS k FROM clients \
                     WHERE account_id = ?1 AND deleted_at IS NOT NULL AND deleted_at < ?2 AND (deleted_at || id) > ?3 \
                     ORDER BY deleted_at, id LIMIT ?4",
                    vec![json!(acct.id), json!(grace_cutoff), json!(after), json!(PAGE)],
                )
            } else {
                Stmt::new(
                    "SELECT id, body, relationship_ended_on AS ended, relationship_ended_on || id AS k FROM clients \
                     WHERE account_id = ?1 AND relationship_ended_on IS NOT NULL AND relationship_ended_on < ?2 \
                     AND (relationship_ended_on || id) > ?3 ORDER BY relationship_ended_on, id LIMIT ?4",
                    vec![json!(acct.id), json!(ended_cutoff), json!(after), json!(PAGE)],
                )
            };
            let rows = d.db.query(stmt).await?;
            for r in &rows.rows {
                let body = col_json(r, "body").unwrap_or_default();
                let rec = record(
                    RecordType::Client,
                    &body,
                    col_str(r, "ended"),
                    body["legal_hold"] == json!(true),
                    acct,
                );
                tally(
                    counts,
                    d,
                    acct,
                    "clients",
                    "client",
                    col_str(r, "id").unwrap_or_default(),
                    &body,
                    retention::decide(&acct.policy, &rec, now),
                )
                .await?;
            }
            match rows.rows.last().and_then(|r| col_str(r, "k")) {
                Some(k)
                    if (rows.rows.len() as i64) == PAGE && d.deleted < MAX_DELETIONS_PER_SHARD =>
                {
                    after = k.to_string()
                }
                _ => break,
            }
        }
    }
    // 3. Soft-deleted users and groups past grace (no legal retention of their own).
    for (table, singular) in [("users", "user"), ("groups", "group")] {
        let rows =
            d.db.query(Stmt::new(
                format!(
                    "SELECT id, body FROM {table} WHERE account_id = ?1 AND deleted_at IS NOT NULL \
                     AND deleted_at < ?2 ORDER BY deleted_at, id LIMIT ?3"
                ),
                vec![json!(acct.id), json!(grace_cutoff), json!(PAGE)],
            ))
            .await?;
        for r in &rows.rows {
            let body = col_json(r, "body").unwrap_or_default();
            let rec = record(RecordType::Document, &body, None, false, acct);
            tally(
                counts,
                d,
                acct,
                table,
                singular,
                col_str(r, "id").unwrap_or_default(),
                &body,
                retention::decide(&acct.policy, &rec, now),
            )
            .await?;
        }
    }
    // 4. Idempotency keys past their days.
    let idem_cutoff = rfc3339(now - time::Duration::days(i64::from(acct.policy.idempotency_days)));
    let r =
        d.db.query(Stmt::new(
            "DELETE FROM idempotency_keys WHERE account_id = ?1 AND created_at < ?2",
            vec![json!(acct.id), json!(idem_cutoff)],
        ))
        .await?;
    add(counts, "idempotency_keys_purged", r.meta.changes);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn tally<P: SchedulerPlatform>(
    counts: &mut Map<String, Value>,
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    table: &str,
    singular: &str,
    id: &str,
    body: &Value,
    decision: Decision,
) -> Result<(), StoreError> {
    match decision {
        Decision::Delete { reason } => {
            if d.delete(acct.id, table, singular, id, &reason).await? {
                add(counts, &format!("{table}_deleted"), 1);
                // Document contents go with their row (after the commit; a failed delete leaves an
                // unreferenced object, counted so an operator sees it).
                if let (Some(sha), Ok(doc)) =
                    (body["content"]["sha256"].as_str(), Uuid::parse_str(id))
                {
                    match d
                        .p
                        .blobs()
                        .delete(&crate::content::blob_key(acct.id, doc, sha))
                        .await
                    {
                        Ok(()) => add(counts, "contents_deleted", 1),
                        Err(_) => add(counts, "contents_delete_failed", 1),
                    }
                }
            } else {
                add(counts, &format!("{table}_blocked"), 1);
            }
        }
        Decision::Held { .. } => add(counts, "held", 1),
        Decision::Keep { .. } | Decision::KeepRestricted { .. } => add(counts, "kept", 1),
    }
    Ok(())
}
