//! A restriction has an end: it is in force only while its `until` lies ahead of the injected
//! `now`. Once it has passed, reads and writes are served as for any record (nothing waits
//! for the night), and the next retention sweep lifts it with an audited `*.unrestricted`
//! event (the record's documents lose their copy with it), once.

use super::{
    advance_to, client_body, created_id, former_client_with_document, request_erasure, row_body,
    set_policy, settle,
};
use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::jobs::{self, Job, Outcome};
use crate::testing::fakes::block_on;
use crate::testing::harness::*;
use serde_json::json;
use time::macros::datetime;

fn events(f: &Fake, ty: &str, subject: &str) -> i64 {
    f.count(
        "SHARD_EU_01",
        &format!(
            "SELECT count(*) FROM outbox WHERE body ->> '$.type' = '{ty}' \
             AND body ->> '$.subject' = '{subject}'"
        ),
    )
}

/// An active client restricted until 2027-03-01 (not due for disposal): refused and redacted
/// before; from that instant on a member reads its personal data and changes it, documents are
/// created for it; the first sweep after lifts the marker (`client.unrestricted`, actor the
/// retention job), its document's copy goes with it, and a second sweep does nothing more.
#[test]
fn a_restriction_whose_end_has_passed_is_no_longer_in_force_and_the_sweep_lifts_it() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "fact_find", "title": "FF"})),
    ));
    let r = f.as_user(
        &admin,
        Put,
        &format!("/v1/clients/{client}/restriction"),
        Some(json!({"reason": "accuracy_contested", "until": "2027-03-01T00:00:00Z"})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let path = format!("/v1/clients/{client}");
    let patch = |tok: &str, surname: &str| {
        f.as_user(tok, Patch, &path, Some(json!({"surname": surname})))
            .status
    };
    // In force: a second before its end (tokens issued then: they expire).
    advance_to(&f, datetime!(2027-02-28 23:59:59 UTC));
    let (admin, member) = (f.token(acct, Role::Admin), f.token(acct, Role::Member));
    let got = f
        .as_user(&member, Get, &path, None)
        .body_json()
        .unwrap()
        .clone();
    assert!(got.get("surname").is_none(), "redacted: {got}");
    assert_eq!(patch(&member, "Byron"), 409);
    let new_doc = json!({"client_id": client, "kind": "fact_find", "title": "FF2"});
    assert_eq!(
        f.as_user(&admin, Post, "/v1/documents", Some(new_doc.clone()))
            .status,
        409
    );
    let doc_path = format!("/v1/documents/{doc}");
    let title = |tok: &str| {
        f.as_user(tok, Patch, &doc_path, Some(json!({"title": "FF v2"})))
            .status
    };
    assert_eq!(title(&member), 409);

    // Ended, and no sweep has run yet: served and changed as any record.
    advance_to(&f, datetime!(2027-03-01 00:00:00 UTC));
    let (admin, member) = (f.token(acct, Role::Admin), f.token(acct, Role::Member));
    let got = f
        .as_user(&member, Get, &path, None)
        .body_json()
        .unwrap()
        .clone();
    assert_eq!(
        got["surname"], "Lovelace",
        "not redacted after its end: {got}"
    );
    assert!(got.get("redacted").is_none(), "{got}");
    assert_eq!(patch(&member, "Byron"), 200);
    assert_eq!(title(&member), 200);
    let d = f
        .as_user(&member, Get, &doc_path, None)
        .body_json()
        .unwrap()
        .clone();
    assert_eq!(d["title"], "FF v2", "{d}");
    let created = created_id(&f.as_user(&admin, Post, "/v1/documents", Some(new_doc)));
    let r = f.as_user(&member, Delete, &format!("/v1/documents/{created}"), None);
    assert_eq!(
        r.status, 204,
        "deleted: its client's ended restriction refuses nothing"
    );
    let listed = f
        .as_user(&member, Get, "/v1/clients?surname_prefix=byr", None)
        .body_json()
        .unwrap()
        .clone();
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    settle(&f);

    // The night after: lifted by the sweep, audited once, documents' copies gone.
    advance_to(&f, datetime!(2027-03-01 02:00:00 UTC));
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    assert!(row_body(&f, "clients", &client)["restricted"].is_null());
    assert!(row_body(&f, "documents", &doc)["client_restricted"].is_null());
    let subject = format!("clients/{client}");
    assert_eq!(events(&f, "client.unrestricted", &subject), 1);
    let ev = f.shard_db("SHARD_EU_01").query_json(&format!(
        "SELECT body FROM outbox WHERE body ->> '$.type' = 'client.unrestricted' \
         AND body ->> '$.subject' = '{subject}'"
    ));
    let ev: serde_json::Value = serde_json::from_str(ev[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(ev["actor"]["id"], "retention", "{ev}");
    assert_eq!(
        ev["changes"]["restricted"]["before"]["until"], "2027-03-01T00:00:00.000Z",
        "{ev}"
    );
    assert!(ev["changes"]["restricted"]["after"].is_null(), "{ev}");
    // The consumer records it (a known event, valid changes), once the relay has sent it.
    f.clock.advance(time::Duration::minutes(1));
    block_on(jobs::run(&f, Job::OutboxRelay, None));
    settle(&f);
    let audited = f.count(
        "SHARD_EU_01",
        &format!(
            "SELECT count(*) FROM audit_log WHERE body ->> '$.action' = 'client.unrestricted' \
             AND body ->> '$.target.id' = '{client}'"
        ),
    );
    assert_eq!(audited, 1);
    f.clock.advance(time::Duration::days(1));
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    assert_eq!(events(&f, "client.unrestricted", &subject), 1, "once");
}

/// A restriction with no end stays in force whatever the date, and the sweep leaves it.
#[test]
fn a_restriction_without_an_end_stays_in_force() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let r = f.as_user(
        &admin,
        Put,
        &format!("/v1/clients/{client}/restriction"),
        Some(json!({"reason": "legal_claims", "until": null})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    advance_to(&f, datetime!(2040-01-01 02:00:00 UTC));
    let member = f.token(acct, Role::Member);
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    let path = format!("/v1/clients/{client}");
    let got = f
        .as_user(&member, Get, &path, None)
        .body_json()
        .unwrap()
        .clone();
    assert!(got.get("surname").is_none(), "{got}");
    let r = f.as_user(&member, Patch, &path, Some(json!({"surname": "Byron"})));
    assert_eq!(r.status, 409);
    assert_eq!(
        events(&f, "client.unrestricted", &format!("clients/{client}")),
        0
    );
}

/// AML evidence an erasure kept restricted (its own 8 years, the client's 6 are over: the client
/// is pseudonymised) is not disposed of when its restriction ends, because a legal hold was
/// placed on the client meanwhile: the sweep lifts the ended restriction instead, with a
/// `document.unrestricted` event, once.
#[test]
fn aml_evidence_whose_restriction_ended_under_a_hold_is_unrestricted_not_disposed() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    set_policy(&f, &admin, |p| p["aml_years_after_end"] = json!(8));
    // The client is due 2025, its AML evidence 2027-06-01.
    let (client, aml) = former_client_with_document(&f, &admin, "2019-06-01", "aml_evidence");
    request_erasure(&f, &admin, "client", &client);
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    let d = row_body(&f, "documents", &aml);
    assert_eq!(d["restricted"]["until"], "2027-06-01T00:00:00.000Z", "{d}");
    let r = f.as_user(
        &admin,
        Put,
        &format!("/v1/clients/{client}/legal-hold"),
        Some(json!({"hold": true})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    advance_to(&f, datetime!(2027-06-01 02:00:00 UTC));
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    let d = row_body(&f, "documents", &aml);
    assert!(d.is_object(), "held: not disposed of");
    assert!(
        d["restricted"].is_null(),
        "the ended restriction is lifted: {d}"
    );
    let subject = format!("documents/{aml}");
    assert_eq!(events(&f, "document.unrestricted", &subject), 1);
    assert_eq!(events(&f, "document.erased", &subject), 0);
    f.clock.advance(time::Duration::days(1));
    block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(events(&f, "document.unrestricted", &subject), 1, "once");
}
