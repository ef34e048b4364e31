//! Merge patches under contention (issue 12 item 9): a patch without `If-Match` is merged by
//! the statement onto the row as it is then, so writers of other fields never conflict; with
//! `If-Match` exactly one writer holding an ETag wins. The SQLite fake runs requests one at a
//! time, so the interleaving is built with its `before_next_batch` hook: every PATCH goes
//! through the API (`api/update.rs`) and does its read, then, right before its write, the next
//! writer's whole request runs; all of them read the same row before any of them writes.

use super::{client_body, created_id};
use crate::api::http::ApiResponse;
use crate::api::http::Method::{self, *};
use crate::domain::auth::Role;
use crate::testing::fakes::SqliteDb;
use crate::testing::harness::*;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

const FIELDS: [&str; 8] = [
    "title",
    "email",
    "phone",
    "notes",
    "date_of_birth",
    "address",
    "dependants",
    "forenames",
];

fn value(field: &str) -> serde_json::Value {
    match field {
        "email" => json!("ada@example.test"),
        "date_of_birth" => json!("1815-12-10"),
        "address" => json!({"postcode": "W1 1AA"}),
        "dependants" => json!([]),
        f => json!(format!("{f}-set")),
    }
}

/// One request: token, method, path, If-Match, body.
type Req = (String, Method, String, Option<String>, Value);

/// Run `reqs[i]`; right before its write (after its reads), run `reqs[i + 1]`, and so on: every
/// request reads before any writes, and the last one writes first. Responses in request order.
fn interleaved(f: &Rc<Fake>, db: &Rc<SqliteDb>, reqs: Vec<Req>) -> Vec<ApiResponse> {
    fn run(
        f: Rc<Fake>,
        db: Rc<SqliteDb>,
        reqs: Rc<Vec<Req>>,
        out: Rc<RefCell<Vec<Option<ApiResponse>>>>,
        i: usize,
    ) {
        let Some((tok, method, path, if_match, body)) = reqs.get(i).cloned() else {
            return;
        };
        let next = (f.clone(), db.clone(), reqs.clone(), out.clone());
        db.before_next_batch(move || run(next.0, next.1, next.2, next.3, i + 1));
        let auth = format!("Bearer {tok}");
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(h) = if_match.as_deref() {
            headers.push(("if-match", h));
        }
        let r = f.call(method, &path, &headers, Some(body));
        out.borrow_mut()[i] = Some(r);
    }
    let out = Rc::new(RefCell::new(
        (0..reqs.len()).map(|_| None).collect::<Vec<_>>(),
    ));
    run(f.clone(), db.clone(), Rc::new(reqs), out.clone(), 0);
    let taken: Vec<Option<ApiResponse>> = out.borrow_mut().drain(..).collect();
    taken
        .into_iter()
        .map(|r| r.expect("every request ran"))
        .collect()
}

fn patches(tok: &str, id: &str, if_match: Option<&str>) -> Vec<Req> {
    FIELDS
        .iter()
        .map(|field| {
            (
                tok.to_string(),
                Patch,
                format!("/v1/clients/{id}"),
                if_match.map(str::to_owned),
                json!({ *field: value(field) }),
            )
        })
        .collect()
}

#[test]
fn eight_unconditional_patches_read_together_through_the_api_all_land_with_one_version_each() {
    let f = Rc::new(Fake::new());
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let db = f.shard_db("SHARD_EU_01");
    let answers = interleaved(&f, &db, patches(&tok, &id, None));
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200; 8], "no 409 for non-conflicting merges");
    // The last request wrote first: its ETag is v2, the first request's v9.
    let mut etags: Vec<&str> = answers.iter().filter_map(|r| r.header("etag")).collect();
    etags.reverse();
    let want: Vec<String> = (2..=9).map(|v| format!("\"v{v}\"")).collect();
    assert_eq!(etags, want, "version +1 per landed write");
    let r = f.as_user(&tok, Get, &format!("/v1/clients/{id}"), None);
    let b = r.body_json().cloned().unwrap();
    for field in FIELDS {
        assert_eq!(b[field], value(field), "{field} kept");
    }
    assert_eq!(b["surname"], "Lovelace");
    assert_eq!(r.header("etag"), Some("\"v9\""));
    let events = f.count(
        "SHARD_EU_01",
        &format!("SELECT count(*) FROM outbox WHERE body ->> '$.subject' = 'clients/{id}'"),
    );
    assert_eq!(events, 9, "one event per landed change (and the create)");
}

#[test]
fn patches_read_together_under_the_same_if_match_have_exactly_one_winner() {
    let f = Rc::new(Fake::new());
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let db = f.shard_db("SHARD_EU_01");
    let answers = interleaved(&f, &db, patches(&tok, &id, Some("\"v1\"")));
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        7,
        "{statuses:?}"
    );
    let r = f.as_user(&tok, Get, &format!("/v1/clients/{id}"), None);
    assert_eq!(r.header("etag"), Some("\"v2\""));
}

/// Patch A reads the row when the relationship end is already 2020-01-01; writer B moves it to
/// 2015-01-01 before A writes; A's merge puts 2020-01-01 back. The documents must follow the
/// client (copied from the client row in the statement) and A's event must name the field.
#[test]
fn an_interleaved_patch_leaves_documents_with_the_relationship_end_of_their_client() {
    let f = Rc::new(Fake::new());
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let path = format!("/v1/clients/{id}");
    let doc = created_id(&f.as_user(
        &tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": id, "kind": "aml_evidence", "title": "P"})),
    ));
    let set = |end: &str| json!({"relationship_ended_on": end});
    assert_eq!(
        f.as_user(&tok, Patch, &path, Some(set("2020-01-01")))
            .status,
        200
    );
    let db = f.shard_db("SHARD_EU_01");
    let mut a = set("2020-01-01");
    a["notes"] = json!("n");
    let answers = interleaved(
        &f,
        &db,
        vec![
            (tok.clone(), Patch, path.clone(), None, a),
            (tok.clone(), Patch, path.clone(), None, set("2015-01-01")),
        ],
    );
    assert_eq!((answers[0].status, answers[1].status), (200, 200));
    let row = db.query_json(&format!(
        "SELECT (SELECT relationship_ended_on FROM clients WHERE id = '{id}') AS c, \
         (SELECT body ->> '$.client_ended_on' FROM documents WHERE id = '{doc}') AS d"
    ));
    assert_eq!(row[0]["c"], "2020-01-01");
    assert_eq!(
        row[0]["c"], row[0]["d"],
        "client and its documents disagree: {:?}",
        row[0]
    );
    let fields = db.query_json(&format!(
        "SELECT body -> '$.changed_fields' AS f FROM outbox WHERE body ->> '$.subject' = 'clients/{id}' \
         AND body ->> '$.type' = 'client.updated' ORDER BY CAST(body ->> '$.entity_version' AS INTEGER) DESC LIMIT 1"
    ));
    let mut last: Vec<String> = serde_json::from_str(fields[0]["f"].as_str().unwrap()).unwrap();
    last.sort();
    assert_eq!(
        last,
        ["notes", "relationship_ended_on"],
        "the fields the patch set"
    );
}

#[test]
fn an_unconditional_patch_still_validates_and_propagates_the_relationship_end() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let path = format!("/v1/clients/{id}");
    let doc = created_id(&f.as_user(
        &tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": id, "kind": "fact_find", "title": "FF"})),
    ));
    for bad in [
        json!({"surname": null}),
        json!({"email": "not an email"}),
        json!({"version": 7}),
    ] {
        assert_eq!(
            f.as_user(&tok, Patch, &path, Some(bad.clone())).status,
            400,
            "{bad}"
        );
    }
    let r = f.as_user(
        &tok,
        Patch,
        &path,
        Some(json!({"relationship_ended_on": "2024-03-01", "status": "former"})),
    );
    assert_eq!((r.status, r.header("etag")), (200, Some("\"v2\"")));
    let ended = f.shard_db("SHARD_EU_01").query_json(&format!(
        "SELECT body ->> '$.client_ended_on' AS e FROM documents WHERE id = '{doc}'"
    ));
    assert_eq!(ended[0]["e"], "2024-03-01");
    let same = f.as_user(&tok, Patch, &path, Some(json!({"status": "former"})));
    assert_eq!(
        (same.status, same.header("etag")),
        (200, Some("\"v2\"")),
        "no change, no version"
    );
}
