//! The restriction lifecycle in the retention sweep: a record an erasure must keep (a law still
//! requires it) is marked `restricted: {reason, until, since}` with a `*.restricted` event; the
//! request stays `restricted` and is reviewed when the earliest `until` passes, until every
//! kept record is disposed of (with its `*.erased` event) and the request completes.

use super::*;
use crate::testing::fakes::SqliteDb;
use time::macros::datetime;
use time::Duration;

fn body(db: &SqliteDb, table: &str, id: &str) -> Option<serde_json::Value> {
    db.query_json(&format!("SELECT body FROM {table} WHERE id = '{id}'"))
        .first()
        .and_then(|r| r["body"].as_str())
        .and_then(|s| serde_json::from_str(s).ok())
}

fn count_events(db: &SqliteDb, ty: &str, subject: &str) -> i64 {
    db.query_json(&format!(
        "SELECT count(*) AS n FROM outbox WHERE body ->> '$.type' = '{ty}' \
         AND body ->> '$.subject' = '{subject}'"
    ))[0]["n"]
        .as_i64()
        .unwrap_or(-1)
}

#[test]
fn records_kept_restricted_by_an_erasure_are_disposed_of_when_their_restriction_ends() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let mut c = client_body();
    c["relationship_ended_on"] = json!("2022-06-01"); // HMRC: until 2028-06-01
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    let aml = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "aml_evidence", "title": "Passport"})),
    ));
    let r = f.as_user(
        &admin,
        Post,
        "/v1/erasure-requests",
        Some(json!({"subject_type": "client", "subject_id": client})),
    );
    let req = r.body_json().unwrap()["id"].as_str().unwrap().to_string();
    let db = f.shard_db("SHARD_EU_01");
    let sweep = || {
        let run = block_on(jobs::run(&f, Job::Retention, None));
        assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    };
    let request = || body(&db, "erasure_requests", &req).unwrap();
    let (csub, dsub) = (format!("clients/{client}"), format!("documents/{aml}"));

    sweep();
    // Both kept, restricted, each with its event; the request waits for the earlier end.
    let d = body(&db, "documents", &aml).unwrap();
    assert_eq!(d["restricted"]["until"], "2027-06-01T00:00:00.000Z", "{d}");
    assert_eq!(d["restricted"]["since"], "2026-11-26T09:00:00.000Z");
    // A code in the record (its events reach the append-only audit trail); the statute stays
    // in the request's outcome.
    assert_eq!(d["restricted"]["reason"], "legal_obligation");
    let cl = body(&db, "clients", &client).unwrap();
    assert_eq!(
        cl["restricted"]["until"], "2028-06-01T00:00:00.000Z",
        "{cl}"
    );
    assert_eq!(cl["surname"], "Lovelace", "kept because a law requires it");
    assert_eq!(
        d["client_restricted"], cl["restricted"],
        "the client's restriction is copied onto its documents"
    );
    assert_eq!(count_events(&db, "document.restricted", &dsub), 1);
    assert_eq!(count_events(&db, "client.restricted", &csub), 1);
    assert_eq!(request()["status"], "restricted");
    assert_eq!(request()["review_at"], "2027-06-01T00:00:00.000Z");
    let updates = || {
        count_events(
            &db,
            "erasure_request.updated",
            &format!("erasure_requests/{req}"),
        )
    };
    assert_eq!(updates(), 1);

    // Nights go by: nothing changes, nothing is emitted again.
    f.clock.advance(Duration::days(1));
    sweep();
    assert_eq!(count_events(&db, "document.restricted", &dsub), 1);
    assert_eq!(updates(), 1);

    // The AML evidence's restriction ends: it is erased; the client stays restricted and the
    // request (no longer pending) is reviewed again when the client's ends.
    advance_to(&f, datetime!(2027-06-01 02:00 UTC));
    sweep();
    assert!(body(&db, "documents", &aml).is_none(), "erased at its end");
    assert_eq!(count_events(&db, "document.erased", &dsub), 1);
    // Its disposal event names the restriction that ended.
    let ev = db.query_json(&format!(
        "SELECT body FROM outbox WHERE body ->> '$.type' = 'document.erased' \
         AND body ->> '$.subject' = '{dsub}'"
    ));
    let ev: serde_json::Value = serde_json::from_str(ev[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        ev["changes"]["restricted"]["before"]["until"], "2027-06-01T00:00:00.000Z",
        "{ev}"
    );
    assert_eq!(request()["status"], "restricted");
    assert_eq!(request()["review_at"], "2028-06-01T00:00:00.000Z");
    assert_eq!(request()["outcome"]["erased"], 1);
    assert!(body(&db, "clients", &client).is_some());

    // A minute before the client's restriction ends nothing happens; the first night after it,
    // the client goes too and the request completes.
    f.clock
        .advance(Duration::days(366) - Duration::hours(2) - Duration::minutes(1));
    sweep();
    assert!(body(&db, "clients", &client).is_some(), "one minute early");
    advance_to(&f, datetime!(2028-06-01 02:00 UTC));
    sweep();
    assert!(body(&db, "clients", &client).is_none());
    assert_eq!(count_events(&db, "client.erased", &csub), 1);
    let done = request();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["outcome"]["erased"], 2);
    assert!(done["review_at"].is_null());
    // And it is never examined again.
    let before = updates();
    f.clock.advance(Duration::days(1));
    sweep();
    assert_eq!(updates(), before);
}

/// A client an admin restricted (until a date ahead) is neither purged nor erased by the sweep,
/// nor are its documents, though their retention ran out and an erasure was requested; the
/// first night after `until`, they are disposed of as usual.
#[test]
fn the_sweep_disposes_of_nothing_an_admin_restricted_before_its_restriction_ends() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let mut c = client_body();
    c["status"] = json!("former");
    c["relationship_ended_on"] = json!("2001-01-01");
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
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
        Some(json!({"reason": "legal_obligation", "until": "2027-03-01T00:00:00Z"})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let r = f.as_user(
        &admin,
        Post,
        "/v1/erasure-requests",
        Some(json!({"subject_type": "client", "subject_id": client})),
    );
    assert_eq!(r.status, 202, "{:?}", r.body_json());
    let db = f.shard_db("SHARD_EU_01");
    let sweep = || {
        let run = block_on(jobs::run(&f, Job::Retention, None));
        assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    };
    let disposals = || {
        db.query_json(
            "SELECT count(*) AS n FROM outbox WHERE body ->> '$.type' IN \
             ('client.purged', 'client.erased', 'document.purged', 'document.erased')",
        )[0]["n"]
            .as_i64()
            .unwrap_or(-1)
    };
    sweep();
    f.clock.advance(Duration::days(30));
    sweep();
    let cl = body(&db, "clients", &client).expect("not purged before until");
    assert_eq!(cl["surname"], "Lovelace", "not erased before until");
    assert!(
        body(&db, "documents", &doc).is_some(),
        "its document neither"
    );
    assert_eq!(disposals(), 0);
    advance_to(&f, datetime!(2027-03-01 02:00 UTC));
    sweep();
    sweep();
    assert!(
        body(&db, "documents", &doc).is_none(),
        "disposed of once it ended"
    );
    assert!(
        body(&db, "clients", &client).is_none_or(|b| b["surname"] == "[erased]"),
        "the client too"
    );
    assert!(disposals() >= 2);
}
