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
    async fn delete(
        &mut self,
        account: Uuid,
        table: &str,
        singular: &str,
        id: &str,
        why: &str,
    ) -> Result<bool, StoreError> {
        self.delete_as(account, table, singular, id, why, Action::Purged)
            .await
    }

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
        table: &str,
        singular: &str,
        id: &str,
        expr: &str,
        why: &str,
        action: Action,
    ) -> Result<bool, StoreError> {
        let Ok(entity_id) = Uuid::parse_str(id) else {
            return Ok(false);
        };
        let ev = self.event(account, table, singular, entity_id, why, action, 0);
        let now = rfc3339(self.p.now());
        let res = self
            .db
            .batch(vec![
                Stmt::new(
                    format!(
                        "UPDATE {table} SET body = json_set({expr}, '$.version', coalesce(body ->> '$.version', 0) + 1, \
                         '$.updated_at', ?3, '$.last_event_id', ?4) WHERE account_id = ?1 AND id = ?2"
                    ),
                    vec![json!(account), json!(id), json!(now), json!(ev.id)],
                ),
                crate::api::outbox_insert_if_landed(&ev, table, entity_id),
            ])
            .await?;
        Ok(res.first().map(|r| r.meta.changes).unwrap_or(0) > 0)
    }

    /// Hard-delete one row with its event, atomically. A foreign-key refusal (a client whose kept
    /// documents still reference it) keeps the row.
    #[allow(clippy::too_many_arguments)]
    async fn delete_as(
        &mut self,
        account: Uuid,
        table: &str,
        singular: &str,
        id: &str,
        why: &str,
        action: Action,
    ) -> Result<bool, StoreError> {
        let Ok(entity_id) = Uuid::parse_str(id) else {
            return Ok(false);
        };
        let ev = self.event(account, table, singular, entity_id, why, action, 0);
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
    // 0. Erasure requests first: within the statutory month, before anything else.
    erase(p, d, acct, counts).await?;
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

/// Carry out the account's pending erasure requests.
async fn erase<P: SchedulerPlatform>(
    p: &P,
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    counts: &mut Map<String, Value>,
) -> Result<(), StoreError> {
    use crate::erasure::{complete_stmt, pending_stmt, CLIENT_PSEUDONYM, USER_PSEUDONYM};
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
                                    .delete(&crate::content::blob_key(acct.id, doc_id, sha))
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
