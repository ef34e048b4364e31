//! Two restrictions on one document (its own, and its client's copy) never shorten each other:
//! the document is restricted while either is in force, and the one ending later is what it
//! shows and refuses with, on every path (the read cache's too). A change the API reads as
//! unrestricted is still refused by its statement when a restriction lands in between, and an
//! erased adviser's name leaves their clients in the erasure's own batch.

use super::{advance_to, adviser, client_body, created_id, request_erasure, row_body, upload};
use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::domain::event::Action;
use crate::jobs::{self, Job, Outcome};
use crate::services::changes::{commit, version_of, Edit, Expect, Write};
use crate::testing::fakes::block_on;
use crate::testing::harness::*;
use serde_json::json;
use time::macros::datetime;

fn restrict_client(f: &Fake, admin: &str, client: &str, until: &str) {
    let r = f.as_user(
        admin,
        Put,
        &format!("/v1/clients/{client}/restriction"),
        Some(json!({"reason": "legal_claims", "until": until})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
}

/// An API write of `edit` to row `id` of `table` (as the API would build it, event time now),
/// expecting `expect`: what a caller who read the row earlier sends.
fn api_write(
    f: &Fake,
    acct: uuid::Uuid,
    (table, singular): (&'static str, &'static str),
    id: &str,
    edit: Edit,
    expect: Expect,
) -> Write {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let mut ev =
        super::writes::system_event(acct, 7, (table, singular, id), Action::Updated, "api");
    ev.time = crate::domain::clock::rfc3339(crate::domain::clock::Clock::now(&f.clock));
    Write {
        table,
        id,
        edit,
        expect,
        live_only: true,
        event: ev,
        with: vec![],
    }
}

/// A client and one document (ids), created by an admin of a new account.
fn client_with_document(f: &Fake) -> (uuid::Uuid, String, String) {
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "fact_find", "title": "Ada's fact find"})),
    ));
    (acct, client, doc)
}

/// The document's own restriction (as an erasure kept it, for a legal obligation) ends in
/// February 2027; its client's runs to 2031. In March 2027 a member still gets it redacted,
/// sees the client's end, and cannot change it or its content; so does a second (cached) read.
#[test]
fn a_documents_own_shorter_restriction_does_not_end_its_clients_longer_one() {
    let f = Fake::new();
    advance_to(&f, datetime!(2027-01-10 09:00 UTC));
    let (acct, client, doc) = client_with_document(&f);
    let admin = f.token(acct, Role::Admin);
    restrict_client(&f, &admin, &client, "2031-01-01T00:00:00Z");
    f.shard_db("SHARD_EU_01")
        .exec(&format!(
            "UPDATE documents SET body = json_set(body, '$.restricted', json_object('reason', \
             'legal_obligation', 'until', '2027-02-01T00:00:00.000Z')) WHERE id = '{doc}'"
        ))
        .unwrap();
    advance_to(&f, datetime!(2027-03-01 09:00 UTC));
    let (admin, member) = (f.token(acct, Role::Admin), f.token(acct, Role::Member));
    let path = format!("/v1/documents/{doc}");
    for read in ["first", "second"] {
        let got = f.as_user(&member, Get, &path, None);
        assert_eq!(got.status, 200);
        let got = got.body_json().unwrap().clone();
        assert!(got.get("title").is_none(), "{read} read redacted: {got}");
        assert_eq!(
            got["restricted"]["until"], "2031-01-01T00:00:00.000Z",
            "{read} read shows the binding end: {got}"
        );
    }
    let admin_view = f
        .as_user(&admin, Get, &path, None)
        .body_json()
        .unwrap()
        .clone();
    assert_eq!(admin_view["title"], "Ada's fact find");
    assert_eq!(admin_view["restricted"]["reason"], "legal_claims");
    let patch = f.as_user(&member, Patch, &path, Some(json!({"title": "New"})));
    assert_eq!(patch.status, 409, "{:?}", patch.body_json());
    assert_eq!(
        patch.body_json().unwrap()["restricted"]["until"],
        "2031-01-01T00:00:00.000Z"
    );
    assert_eq!(upload(&f, &admin, &doc), 409);
    // The statements' own guard (`store::entities::not_restricted_at`) agrees: a patch that
    // skipped the API's check does not land either.
    let docs = ("documents", "document");
    let patch = api_write(
        &f,
        acct,
        docs,
        &doc,
        Edit::MergePatch(json!({"title": "New"})),
        Expect::Any,
    );
    let db = f.shard_db("SHARD_EU_01");
    assert!(block_on(commit(&*db, &patch)).unwrap().is_none());
    assert_eq!(row_body(&f, "documents", &doc)["title"], "Ada's fact find");
    // The night's sweep does not lift the document's own marker while its client's holds it.
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    assert!(row_body(&f, "documents", &doc)["restricted"].is_object());
    // Once both have ended it is served as any document.
    advance_to(&f, datetime!(2031-01-02 09:00 UTC));
    let member = f.token(acct, Role::Member);
    let got = f
        .as_user(&member, Get, &path, None)
        .body_json()
        .unwrap()
        .clone();
    assert_eq!(got["title"], "Ada's fact find", "{got}");
}

/// The content upload's statement refuses a document restricted after the API read it: the
/// client's restriction lands (copied onto the document, its version unchanged) between the
/// read and the write, and the write that expects the version it read does not land. The same
/// write lands on a document nobody restricted.
#[test]
fn a_content_write_is_refused_by_its_statement_when_a_restriction_landed_after_the_read() {
    let f = Fake::new();
    let (acct, client, doc) = client_with_document(&f);
    let admin = f.token(acct, Role::Admin);
    let write = |doc: &str| {
        let read = row_body(&f, "documents", doc);
        let content = Edit::SetUnrestricted(vec![("content", json!({"sha256": "ab"}))]);
        let expect = Expect::Version(version_of(&read));
        api_write(&f, acct, ("documents", "document"), doc, content, expect)
    };
    // Read as unrestricted; then the client's restriction lands.
    let racing = write(&doc);
    restrict_client(&f, &admin, &client, "2031-01-01T00:00:00Z");
    assert_eq!(
        version_of(&row_body(&f, "documents", &doc)),
        1,
        "the copy does not move the document's version"
    );
    let db = f.shard_db("SHARD_EU_01");
    assert!(block_on(commit(&*db, &racing)).unwrap().is_none());
    assert!(row_body(&f, "documents", &doc)["content"].is_null());
    // The same write on an unrestricted document lands.
    let other = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body()))), "kind": "fact_find", "title": "T"})),
    ));
    assert!(block_on(commit(&*db, &write(&other))).unwrap().is_some());
    assert_eq!(row_body(&f, "documents", &other)["content"]["sha256"], "ab");
}

/// An adviser's erasure rewrites their clients' `adviser_name` in the same batch as the user
/// row, before any event reaches the consumer: no read between the two serves the name.
#[test]
fn an_erased_advisers_name_leaves_their_clients_in_the_erasures_own_batch() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let adviser = adviser(&f, &admin);
    let mut clients = Vec::new();
    for surname in ["Lovelace", "Byron", "Somerville"] {
        let mut b = client_body();
        b["surname"] = json!(surname);
        b["adviser_id"] = json!(adviser);
        clients.push(created_id(&f.as_user(&admin, Post, "/v1/clients", Some(b))));
    }
    super::settle(&f);
    // One of them soft-deleted: it keeps its row for the grace period, and the name goes too.
    let del = f.as_user(&admin, Delete, &format!("/v1/clients/{}", clients[2]), None);
    assert_eq!(del.status, 204, "{:?}", del.body_json());
    for c in &clients {
        assert_eq!(row_body(&f, "clients", c)["adviser_name"], "Grace Hopper");
    }
    let cached = f.as_user(&admin, Get, &format!("/v1/clients/{}", clients[0]), None);
    assert_eq!(cached.body_json().unwrap()["adviser_name"], "Grace Hopper");
    request_erasure(&f, &admin, "user", &adviser);
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    // No relay, no consumer yet.
    for c in &clients {
        let name = &row_body(&f, "clients", c)["adviser_name"];
        assert_ne!(name, "Grace Hopper", "client {c}");
    }
    let got = f.as_user(&admin, Get, &format!("/v1/clients/{}", clients[0]), None);
    let got = got.body_json().unwrap().clone();
    assert!(!got.to_string().contains("Grace"), "{got}");
    assert_eq!(got["adviser_id"], json!(adviser));
}

/// The erased adviser's pseudonymous row is soft-deleted, so once its grace has passed it is
/// due, but their clients still name it: the sweep keeps it for them, counted as such, and the
/// night's run is a success (not `partial` every night from then on).
#[test]
fn an_erased_adviser_named_by_clients_is_kept_for_them_and_the_run_succeeds() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let adviser = adviser(&f, &admin);
    let mut c = client_body();
    c["adviser_id"] = json!(adviser);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    request_erasure(&f, &admin, "user", &adviser);
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    assert!(row_body(&f, "users", &adviser)["erased_at"].is_string());
    f.clock.advance(time::Duration::days(120));
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    let counts = run.counts.to_json();
    assert_eq!(counts["users_kept_for_clients"], 1, "{counts:?}");
    assert!(counts.get("users_blocked").is_none(), "{counts:?}");
    assert!(row_body(&f, "users", &adviser).is_object());
    assert_eq!(
        row_body(&f, "clients", &client)["adviser_id"],
        json!(adviser)
    );
}

/// An erased client's pseudonymous shell (kept while records refer to it) never takes personal
/// data again: a PATCH of a personal field and a restriction answer 410, a merge patch of one
/// that read the row before the erasure landed is refused by its statement; its status still
/// changes.
#[test]
fn an_erased_clients_shell_never_takes_personal_data_again() {
    let f = Fake::new();
    let (acct, client, _doc) = client_with_document(&f);
    let admin = f.token(acct, Role::Admin);
    let notes = Edit::MergePatch(json!({"notes": "Ada Lovelace called"}));
    let racing = api_write(&f, acct, ("clients", "client"), &client, notes, Expect::Any);
    // The erasure's pseudonymisation lands (as the sweep leaves a shell its documents keep).
    f.shard_db("SHARD_EU_01")
        .exec(&format!(
            "UPDATE clients SET body = json_set(body, '$.forenames', '[erased]', \
             '$.surname', '[erased]', '$.erased_at', '2026-12-01T02:00:00.000Z') \
             WHERE id = '{client}'"
        ))
        .unwrap();
    let db = f.shard_db("SHARD_EU_01");
    assert!(block_on(commit(&*db, &racing)).unwrap().is_none());
    let path = format!("/v1/clients/{client}");
    let r = f.as_user(
        &admin,
        Patch,
        &path,
        Some(json!({"email": "ada@example.org"})),
    );
    assert_eq!(r.status, 410, "{:?}", r.body_json());
    let r = f.as_user(
        &admin,
        Put,
        &format!("{path}/restriction"),
        Some(json!({"reason": "legal_claims", "until": "2031-01-01T00:00:00Z"})),
    );
    assert_eq!(r.status, 410, "{:?}", r.body_json());
    let b = row_body(&f, "clients", &client);
    assert!(b["notes"].is_null() && b["email"].is_null(), "{b}");
    let r = f.as_user(&admin, Patch, &path, Some(json!({"status": "former"})));
    assert_eq!(r.status, 200, "{:?}", r.body_json());
}

/// An erasure's keep of a client (a law still requires the record) cannot be lifted or
/// shortened by an admin while it is in force; it can be extended, which makes it the admin's.
#[test]
fn an_admin_cannot_lift_or_shorten_an_erasures_keep() {
    let f = Fake::new();
    let (acct, client, _doc) = client_with_document(&f);
    let admin = f.token(acct, Role::Admin);
    f.shard_db("SHARD_EU_01")
        .exec(&format!(
            "UPDATE clients SET body = json_set(body, '$.restricted', json_object('reason', \
             'legal_obligation', 'until', '2028-06-01T00:00:00.000Z', 'since', \
             '2026-11-26T09:00:00.000Z', 'scope', 'record')) WHERE id = '{client}'"
        ))
        .unwrap();
    let path = format!("/v1/clients/{client}/restriction");
    let lift = f.as_user(&admin, Delete, &path, None);
    assert_eq!(lift.status, 409, "{:?}", lift.body_json());
    let shorter = f.as_user(
        &admin,
        Put,
        &path,
        Some(json!({"reason": "legal_obligation", "until": "2027-01-01T00:00:00Z"})),
    );
    assert_eq!(shorter.status, 409, "{:?}", shorter.body_json());
    assert_eq!(
        row_body(&f, "clients", &client)["restricted"]["until"],
        "2028-06-01T00:00:00.000Z"
    );
    let longer = f.as_user(
        &admin,
        Put,
        &path,
        Some(json!({"reason": "legal_claims", "until": "2031-01-01T00:00:00Z"})),
    );
    assert_eq!(longer.status, 200, "{:?}", longer.body_json());
    let r = row_body(&f, "clients", &client)["restricted"].clone();
    assert_eq!(r["until"], "2031-01-01T00:00:00.000Z");
    assert!(r.get("scope").is_none(), "the admin's from now on: {r}");
}
