//! A client's restriction reaches its documents: the write protocol copies it onto them
//! (`client_restricted`) in the same batch as the client's change, so a document of a
//! restricted client is redacted for non-admins, refuses changes and content (409), and no new
//! document is created for the client; lifting the restriction lifts it from them too.

use super::{client_body, created_id, upload};
use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::testing::harness::*;
use serde_json::json;

fn restriction(f: &Fake, admin: &str, client: &str, on: bool) {
    let path = format!("/v1/clients/{client}/restriction");
    let r = if on {
        f.as_user(
            admin,
            Put,
            &path,
            Some(json!({"reason": "legal_claims", "until": "2031-01-01T00:00:00Z"})),
        )
    } else {
        f.as_user(admin, Delete, &path, None)
    };
    assert_eq!(r.status, 200, "{:?}", r.body_json());
}

#[test]
fn the_documents_of_a_restricted_client_are_redacted_and_refuse_changes_and_content() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let member = f.token(acct, Role::Member);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "aml_evidence", "title": "Passport of Ada Lovelace"})),
    ));
    assert_eq!(upload(&f, &admin, &doc), 200);
    let path = format!("/v1/documents/{doc}");
    // Cached while unrestricted: the restriction must not be served from the cache.
    assert_eq!(f.as_user(&member, Get, &path, None).status, 200);
    restriction(&f, &admin, &client, true);

    let listed = f.as_user(
        &member,
        Get,
        &format!("/v1/documents?client_id={client}"),
        None,
    );
    let item = listed.body_json().unwrap()["items"][0].clone();
    let got = f
        .as_user(&member, Get, &path, None)
        .body_json()
        .cloned()
        .unwrap();
    for shown in [&item, &got] {
        assert!(shown.get("title").is_none(), "title shown: {shown}");
        assert_eq!(shown["restricted"]["reason"], "legal_claims", "{shown}");
        assert!(shown.get("client_restricted").is_none(), "{shown}");
    }
    let admin_view = f
        .as_user(&admin, Get, &path, None)
        .body_json()
        .cloned()
        .unwrap();
    assert_eq!(admin_view["title"], "Passport of Ada Lovelace");
    let content = |tok: &str| f.as_user(tok, Get, &format!("{path}/content"), None).status;
    assert_eq!((content(&member), content(&admin)), (409, 200));
    let patched = f.as_user(&member, Patch, &path, Some(json!({"title": "x"})));
    let deleted = f.as_user(&member, Delete, &path, None);
    assert_eq!(
        (
            patched.status,
            upload(&f, &member, &doc),
            upload(&f, &admin, &doc),
            deleted.status
        ),
        (409, 409, 409, 409)
    );
    let b = patched.body_json().unwrap();
    assert_eq!(b["type"], "urn:clientdocs:problem:restricted", "{b}");

    restriction(&f, &admin, &client, false);
    let got = f
        .as_user(&member, Get, &path, None)
        .body_json()
        .cloned()
        .unwrap();
    assert_eq!(got["title"], "Passport of Ada Lovelace", "{got}");
    assert!(got["restricted"].is_null(), "{got}");
    assert_eq!(content(&member), 200);
    assert_eq!(
        f.as_user(&member, Patch, &path, Some(json!({"title": "Passport"})))
            .status,
        200
    );
}

#[test]
fn no_document_is_created_for_a_restricted_client() {
    let f = Fake::new();
    let (acct, shard) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    restriction(&f, &admin, &client, true);
    let binding = if shard == "shard-eu-01" {
        "SHARD_EU_01"
    } else {
        "SHARD_EU_02"
    };
    let before = f.count(binding, "SELECT count(*) FROM outbox");
    let r = f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "fact_find", "title": "FF"})),
    );
    let b = r.body_json().cloned().unwrap();
    assert_eq!(
        (r.status, b["type"].as_str()),
        (409, Some("urn:clientdocs:problem:restricted")),
        "{b}"
    );
    assert_eq!(f.count(binding, "SELECT count(*) FROM documents"), 0);
    assert_eq!(f.count(binding, "SELECT count(*) FROM outbox"), before);
}

/// A document inserted after its client's restriction landed (a create that read the client
/// before it) takes the restriction in the insert statement itself.
#[test]
fn a_document_inserted_in_a_race_with_its_clients_restriction_is_restricted() {
    let f = std::rc::Rc::new(Fake::new());
    let (acct, shard) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let member = f.token(acct, Role::Member);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let binding = if shard == "shard-eu-01" {
        "SHARD_EU_01"
    } else {
        "SHARD_EU_02"
    };
    let (g, a, c) = (f.clone(), admin.clone(), client.clone());
    f.shard_db(binding)
        .before_next_batch(move || restriction(&g, &a, &c, true));
    let doc = created_id(&f.as_user(
        &member,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "fact_find", "title": "FF"})),
    ));
    let got = f.as_user(&member, Get, &format!("/v1/documents/{doc}"), None);
    let b = got.body_json().cloned().unwrap();
    assert!(
        b.get("title").is_none() && b["restricted"].is_object(),
        "{b}"
    );
}
