//! Erasure requests (UK GDPR art. 17), carried out by the sweep before anything else, and the
//! restrictions they leave. Personal data with no legal obligation to keep is erased (rows
//! deleted, or pseudonymised where kept records still refer to them); a record a law still
//! requires is kept with `restricted: {reason, until, since}` (a `*.restricted` event), and
//! the request becomes `restricted` with `review_at` = its earliest `until`. Every night the
//! sweep takes pending requests and the restricted ones due for review, decides again, and
//! once the obligations have ended erases what they kept and completes the request.
//!
//! Every write is conditional on the version this run read (an erasure also on the row not
//! being erased already), so overlapping runs erase each record once; a run whose write did
//! not land leaves the request to the run that made it (or to the next night).

use super::{is_aml, record, AccountCtx, Deleter, Due};
use crate::domain::clock::{parse_rfc3339, rfc3339};
use crate::domain::event::Action;
use crate::domain::restriction::{LEGAL_OBLIGATION, RECORD_SCOPE};
use crate::domain::retention::{self, Decision, RecordType};
use crate::jobs::report::{RetentionCounts, Tally};
use crate::jobs::SchedulerPlatform;
use crate::ports::*;
use crate::services::changes::{version_of, Edit, Expect};
use crate::store::derived_fields;
use crate::store::erasure_requests::{
    due_for_review_stmt, pending_stmt, CLIENT_PSEUDONYM, PENDING_PAGE, USER_PSEUDONYM,
};
use crate::store::retention as sql;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// What carrying out one request did.
#[derive(Default)]
struct Progress {
    /// Records of the subject erased (by this run or, already, by an earlier one).
    erased: u64,
    /// Records kept restricted: `{client_id|document_id, until, reason}`.
    restricted: Vec<Value>,
    /// A legal hold stops the request; it stays as it is.
    held: bool,
    /// A write did not land (the row changed, or an overlapping run got there first): the
    /// request is left for the run that made the change, or the next night.
    deferred: bool,
    note: Option<&'static str>,
    /// Rows of the subject erased: (table, id, version and derived revision as read), whose
    /// cached renderings go too.
    touched: Vec<(&'static str, String, i64, i64)>,
    /// Other rows whose cached renderings carry the subject's data (the clients an erased
    /// user advises: `adviser_name`), as read.
    cached: Vec<(&'static str, String, i64, i64)>,
    /// Content objects of erased documents whose R2 delete failed (keys, or a document's prefix
    /// whose listing failed, ending in `/`): kept on the request and retried, which defers it
    /// until they are gone.
    pending_blobs: Vec<String>,
}

impl Progress {
    fn touch(&mut self, table: &'static str, id: &str, body: &Value) {
        let rev = body["index_rev"].as_i64().unwrap_or(0);
        self.touched
            .push((table, id.to_string(), version_of(body), rev));
    }
}

/// Pending requests examined per account per run at most.
const MAX_REQUESTS_PER_RUN: usize = 1_000;

/// Carry out the account's pending erasure requests and review the restricted ones now due.
pub(super) async fn erase<P: SchedulerPlatform>(
    p: &P,
    d: &mut Deleter<'_, P>,
    acct: &mut AccountCtx,
    counts: &mut RetentionCounts,
) -> Result<(), StoreError> {
    let now = p.now();
    // Every pending request, page by page (held ones cannot starve newer ones), up to a
    // bound per run.
    let mut requests = Vec::new();
    let mut after = String::new();
    loop {
        let page = d.db.query(pending_stmt(acct.id, &after)).await?.rows;
        let full = page.len() as i64 == PENDING_PAGE;
        match page.last().and_then(|r| col_str(r, "id")) {
            Some(id) => after = id.to_string(),
            None => break,
        }
        requests.extend(page);
        if !full || requests.len() >= MAX_REQUESTS_PER_RUN {
            break;
        }
    }
    requests.extend(
        d.db.query(due_for_review_stmt(acct.id, &rfc3339(now)))
            .await?
            .rows,
    );
    for r in &requests {
        let Some(req_id) = col_str(r, "id").and_then(|s| Uuid::parse_str(s).ok()) else {
            continue;
        };
        let body = col_json(r, "body").unwrap_or_default();
        let subject = body["subject_id"].as_str().unwrap_or_default();
        let received = body["received_at"].as_str().and_then(parse_rfc3339);
        // The account's hold and policy as they are now (a hold placed since the run began
        // stops this request).
        acct.refresh(p).await?;
        let mut run = Progress {
            held: acct.hold,
            ..Progress::default()
        };
        // Content objects an earlier run could not delete: retried first.
        let stored_blobs: Vec<String> = body["pending_blobs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for key in &stored_blobs {
            let left = d.delete_pending(key, counts).await;
            run.pending_blobs.extend(left);
        }
        if run.held {
            // A legal hold on the account beats erasure: nothing is even read.
        } else if body["subject_type"] == "user" {
            erase_user(d, acct, subject, &mut run).await?;
        } else {
            erase_client(d, acct, subject, received, now, &mut run, counts).await?;
        }
        let table = if body["subject_type"] == "user" {
            "users"
        } else {
            "clients"
        };
        if run.held {
            counts.erasures_held.add(1);
            continue;
        } else if run.deferred || !run.pending_blobs.is_empty() {
            // What this run did erase is followed everywhere now (the next night no longer
            // sees the rows it deleted), and the objects still to delete are kept on the
            // request.
            counts.erasures_deferred.add(1);
            erase_elsewhere(d, acct, table, subject, &run, counts).await?;
            if run.pending_blobs != stored_blobs {
                let edit = Edit::Set(vec![("pending_blobs", json!(run.pending_blobs))]);
                let entity = ("erasure_requests", "erasure_request");
                let expect = Expect::Version(version_of(&body));
                let why = ("pending_blobs", Action::Updated);
                d.change(acct.id, entity, &req_id.to_string(), edit, expect, why)
                    .await?;
            }
            continue;
        }
        if !erase_elsewhere(d, acct, table, subject, &run, counts).await? {
            // Said in the request's outcome: the compliance officer sees when KV is clean.
            run.note = Some(
                "cached renderings beyond this run's KV budget expire within 24 hours \
                 (they can no longer be served: their row moved)",
            );
        }
        if finish(d, acct, req_id, &body, run, now).await? {
            counts.erasures_completed.add(1);
        }
    }
    Ok(())
}

/// A user: pseudonymised (the row stays: audit rows and clients refer to its id).
async fn erase_user<P: SchedulerPlatform>(
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    subject: &str,
    run: &mut Progress,
) -> Result<(), StoreError> {
    let rows = d.db.query(sql::row("users", acct.id, subject)).await?;
    let Some(body) = rows.first().and_then(|r| col_json(r, "body")) else {
        run.note = Some("the subject no longer exists");
        return Ok(());
    };
    run.touch("users", subject, &body);
    // The clients this user advises, soft-deleted ones too: their cached renderings carry
    // the user's name (the consumer re-derives the rows themselves).
    for c in
        d.db.query(sql::clients_advised_by(acct.id, subject))
            .await?
            .rows
    {
        if let (Some(id), Some(cb)) = (col_str(&c, "id"), col_json(&c, "body")) {
            let rev = cb["index_rev"].as_i64().unwrap_or(0);
            run.cached
                .push(("clients", id.to_string(), version_of(&cb), rev));
        }
    }
    if !body["erased_at"].is_null() {
        run.erased += 1; // an overlapping run erased it
        return Ok(());
    }
    let expect = Expect::Unerased(version_of(&body));
    let edit = Edit::Rewrite(USER_PSEUDONYM);
    let why = ("personal data", Action::Erased);
    // The clients' copy of the name goes in the same batch as the name (derived from the user
    // row as the batch leaves it), not when the consumer's fan-out reaches them: no moment in
    // which the erased name is still served, or cached again.
    let names = vec![derived_fields::fan_out_chunk(
        derived_fields::Copy::AdviserName,
        &acct.id.to_string(),
        subject,
        "",
        -1,
    )];
    let entity = ("users", "user");
    if d.change_with(acct.id, entity, subject, edit, expect, why, names)
        .await?
    {
        run.erased += 1;
    } else {
        run.deferred = true;
    }
    Ok(())
}

/// A client: each document decided on its own (erased, or kept restricted while a law requires
/// it), then the client row (deleted when nothing kept refers to it, else pseudonymised; or
/// kept restricted).
async fn erase_client<P: SchedulerPlatform>(
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    subject: &str,
    received: Option<OffsetDateTime>,
    now: OffsetDateTime,
    run: &mut Progress,
    counts: &mut RetentionCounts,
) -> Result<(), StoreError> {
    let client = d.db.query(sql::row("clients", acct.id, subject)).await?;
    let Some(crow) = client.first() else {
        run.note = Some("the subject no longer exists");
        return Ok(());
    };
    let cbody = col_json(crow, "body").unwrap_or_default();
    let ended = col_str(crow, "ended").map(str::to_owned);
    let client_hold = cbody["legal_hold"] == json!(true);
    let docs =
        d.db.query(sql::documents_of_client(acct.id, subject))
            .await?;
    let mut kept_docs = 0;
    // The documents judged and kept: the client row is only erased while no others exist.
    let mut kept_ids: Vec<String> = Vec::new();
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
                let due = Due {
                    table: "documents",
                    singular: "document",
                    id: did,
                    client: Some(subject.to_string()),
                    version: version_of(&dbody),
                    body: dbody,
                    reason,
                };
                if !d.delete_as(acct.id, &due, Action::Erased).await? {
                    run.deferred = true;
                    return Ok(());
                }
                run.erased += 1;
                run.touch("documents", &due.id, &due.body);
                let left = d.delete_content(acct.id, &due, counts).await;
                run.pending_blobs.extend(left);
            }
            Decision::KeepRestricted { until, reason } => {
                kept_docs += 1;
                kept_ids.push(did.clone());
                let entity = ("documents", "document");
                if !restrict(d, acct, entity, &did, &dbody, until, now).await? {
                    run.deferred = true;
                    return Ok(());
                }
                run.restricted
                    .push(json!({"document_id": did, "until": rfc3339(until), "reason": reason}));
            }
            Decision::Held { .. } => {
                kept_docs += 1;
                kept_ids.push(did.clone());
                run.held = true;
            }
            Decision::Keep { .. } => {
                kept_docs += 1;
                kept_ids.push(did.clone());
            }
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
    let version = version_of(&cbody);
    if !cbody["erased_at"].is_null() {
        // Erased already (pseudonymised while kept records referred to it): nothing personal
        // is left in it, so no law keeps it; it stays only while kept records refer to it.
        // Once none does, it is deleted (a `client.purged`: the erasure was recorded once).
        run.erased += 1;
        if kept_docs == 0 && !client_hold && !acct.hold {
            let due = Due {
                table: "clients",
                singular: "client",
                id: subject.to_string(),
                client: None,
                version,
                body: Value::Null,
                reason: "pseudonymised after erasure; no kept record refers to it".into(),
            };
            if !d.delete_as(acct.id, &due, Action::Purged).await? {
                // Changed meanwhile, or a record created since refers to it: next run.
                run.deferred = true;
            }
        }
        return Ok(());
    }
    match retention::decide(&acct.policy, &rec, now) {
        Decision::Delete { reason } => {
            let due = Due {
                table: "clients",
                singular: "client",
                id: subject.to_string(),
                client: None,
                version,
                body: cbody.clone(),
                reason,
            };
            // Deleted outright if nothing kept refers to it, otherwise pseudonymised; but
            // only while its documents are still exactly those judged above: one created
            // meanwhile (its personal data not judged) defers the request to the next run.
            let deleted = kept_docs == 0 && d.delete_as(acct.id, &due, Action::Erased).await?;
            if !deleted && !only_documents(d, acct, subject, &kept_ids).await? {
                run.deferred = true;
                return Ok(());
            }
            let erased = deleted || {
                let edit = Edit::Rewrite(CLIENT_PSEUDONYM);
                let why = ("personal data", Action::Erased);
                let expect = Expect::Unerased(version);
                d.change(acct.id, ("clients", "client"), subject, edit, expect, why)
                    .await?
            };
            if erased {
                run.erased += 1;
                run.touch("clients", subject, &cbody);
            } else {
                run.deferred = true;
            }
        }
        Decision::KeepRestricted { until, reason } => {
            let entity = ("clients", "client");
            if restrict(d, acct, entity, subject, &cbody, until, now).await? {
                run.restricted
                    .push(json!({"client_id": subject, "until": rfc3339(until), "reason": reason}));
            } else {
                run.deferred = true;
            }
        }
        Decision::Held { .. } => run.held = true,
        Decision::Keep { .. } => {}
    }
    Ok(())
}

/// Whether the client's documents are exactly `kept` (by id) now.
async fn only_documents<P: SchedulerPlatform>(
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    client: &str,
    kept: &[String],
) -> Result<bool, StoreError> {
    let now =
        d.db.query(sql::documents_of_client(acct.id, client))
            .await?;
    let mut ids: Vec<&str> = now.rows.iter().filter_map(|r| col_str(r, "id")).collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = kept.iter().map(String::as_str).collect();
    want.sort_unstable();
    Ok(ids == want)
}

/// Mark a kept record restricted until `until` (a `*.restricted` event), unless it already is;
/// false if the row changed since it was read.
#[allow(clippy::too_many_arguments)]
async fn restrict<P: SchedulerPlatform>(
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    entity: (&'static str, &'static str),
    id: &str,
    body: &Value,
    until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let until = rfc3339(until);
    let current = &body["restricted"];
    // Already restricted at least as long (an admin's restriction with no end or a later one
    // stays: the record is kept until then whatever the law requires).
    if current.is_object()
        && current["until"]
            .as_str()
            .is_none_or(|u| u >= until.as_str())
    {
        return Ok(true);
    }
    let since = current["since"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| rfc3339(now));
    // The stored reason is a code (the statute stays in the request's outcome): the marker
    // is copied into the append-only audit trail.
    // Its scope is this record: a client's keep does not hold back its documents' disposals.
    let marker =
        json!({"reason": LEGAL_OBLIGATION, "until": until, "since": since, "scope": RECORD_SCOPE});
    let edit = Edit::Set(vec![("restricted", marker)]);
    let expect = Expect::Version(version_of(body));
    d.change(
        acct.id,
        entity,
        id,
        edit,
        expect,
        ("restricted", Action::Restricted),
    )
    .await
}

/// Record the request's outcome through the write protocol (`erasure_request.updated`),
/// conditional on the version read: of two overlapping runs only one records it. A request
/// that kept records restricted is reviewed again at the earliest `until`. False if nothing
/// was written (unchanged, or another run recorded it).
async fn finish<P: SchedulerPlatform>(
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    req_id: Uuid,
    body: &Value,
    run: Progress,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let status = if run.restricted.is_empty() {
        "completed"
    } else {
        "restricted"
    };
    // Erasures of earlier reviews count too.
    let before = body["outcome"]["erased"].as_u64().unwrap_or(0);
    let mut outcome = json!({"erased": before + run.erased, "restricted": run.restricted});
    if let Some(note) = run.note {
        outcome["note"] = json!(note);
    }
    let review_at = run
        .restricted
        .iter()
        .filter_map(|r| r["until"].as_str())
        .min()
        .map_or(Value::Null, |s| json!(s));
    if body["status"] == status && body["outcome"] == outcome && body["review_at"] == review_at {
        return Ok(false);
    }
    let edit = Edit::Set(vec![
        ("pending_blobs", json!([])),
        ("status", json!(status)),
        ("completed_at", json!(rfc3339(now))),
        ("outcome", outcome),
        ("review_at", review_at),
    ]);
    let entity = ("erasure_requests", "erasure_request");
    let expect = Expect::Version(version_of(body));
    d.change(
        acct.id,
        entity,
        &req_id.to_string(),
        edit,
        expect,
        ("status", Action::Updated),
    )
    .await
}

/// Cached renderings (one key per row) deleted per run at most (KV: 1,000 operations per
/// invocation).
pub(super) const MAX_CACHE_DELETES_PER_RUN: u64 = 800;

/// Walk the data map for everything besides the subject's own rows: stored responses are
/// deleted, the cached rendering of each erased row deleted (one key per row); derived copies are
/// recomputed by the consumer from the `*.erased` events; places holding ids only stay. False
/// when the run's KV delete budget ran out before every cached rendering was deleted.
async fn erase_elsewhere<P: SchedulerPlatform>(
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    table: &str,
    subject: &str,
    run: &Progress,
    counts: &mut RetentionCounts,
) -> Result<bool, StoreError> {
    use crate::domain::personal_data::{read_cache_key, Erasure, Store, DATA_MAP};
    let mut complete = true;
    for place in DATA_MAP {
        match (place.erasure, place.store) {
            // Done above, row by row (contents go with their documents).
            (Erasure::SubjectRows | Erasure::DeletedWithRow, _) => {}
            // The consumer re-derives them from current rows on the erased/purged events.
            (Erasure::DerivedCopies, _) => {}
            (Erasure::IdsOnly | Erasure::Nothing, _) => {}
            (Erasure::DeletedWithSubject, Store::ShardTable) => {
                if place.name == "idempotency_keys" {
                    // The keys whose outcome is the subject or a row erased with it (the
                    // caller's key itself may name the person).
                    let mut rows: Vec<(&str, Uuid)> = run
                        .touched
                        .iter()
                        .filter_map(|(t, id, _, _)| Some((*t, Uuid::parse_str(id).ok()?)))
                        .collect();
                    if let Ok(id) = Uuid::parse_str(subject) {
                        rows.push((table, id));
                    }
                    rows.sort_unstable();
                    rows.dedup();
                    let stmts: Vec<_> = rows
                        .iter()
                        .map(|(t, id)| {
                            crate::store::idempotency::delete_for_entity(acct.id, t, *id)
                        })
                        .collect();
                    if !stmts.is_empty() {
                        let results = d.db.batch(stmts).await?;
                        let n: u64 = results.iter().map(|r| r.meta.changes).sum();
                        counts.idempotency_keys_erased.add(n);
                    }
                } else {
                    tracing::error!(place = place.name, "no erasure for this data-map place");
                    counts.erasure_places_unhandled.add(1);
                }
            }
            (Erasure::CacheEntries, Store::Kv) => {
                // One key per row (its value names the state it renders): every rendering of
                // the row, whatever its version, goes with it.
                let mut deleted = 0;
                for (t, id, _, _) in run.touched.iter().chain(&run.cached) {
                    let Ok(id) = Uuid::parse_str(id) else {
                        continue;
                    };
                    if d.cache_deletes >= MAX_CACHE_DELETES_PER_RUN {
                        tracing::warn!(
                            "cache deletes of this run spent: the rest expire with the TTL"
                        );
                        complete = false;
                        break;
                    }
                    d.cache_deletes += 1;
                    if d.p
                        .cache()
                        .delete(&read_cache_key(acct.id, t, id))
                        .await
                        .is_ok()
                    {
                        deleted += 1;
                    }
                }
                counts.cache_keys_deleted.add(deleted);
            }
            (erasure, store) => {
                tracing::error!(
                    place = place.name,
                    ?erasure,
                    ?store,
                    "no erasure for this data-map place"
                );
                counts.erasure_places_unhandled.add(1);
            }
        }
    }
    Ok(complete)
}
