//! Restriction on the API (issue 12 item 2) and holds on soft-deleted clients (item 4).

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::jobs::{self, Job};
use crate::testing::fakes::block_on;
use crate::testing::harness::*;
use serde_json::json;

fn binding(shard: &str) -> &'static str {
    if shard == "shard-eu-01" {
        "SHARD_EU_01"
    } else {
        "SHARD_EU_02"
    }
}

#[test]
fn a_restricted_client_refuses_changes_hides_personal_data_from_non_admins_and_is_audited() {
    let f = Fake::new();
    let (acct, shard) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let member = f.token(acct, Role::Member);
    let mut c = client_body();
    c["email"] = json!("ada@example.test");
    let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    let path = format!("/v1/clients/{id}");
    let restriction = format!("{path}/restriction");
    let body = json!({"reason": "AML evidence kept by law", "until": "2031-01-01T00:00:00Z"});
    assert_eq!(
        f.as_user(&member, Put, &restriction, Some(body.clone()))
            .status,
        403
    );
    let r = f.as_user(&admin, Put, &restriction, Some(body.clone()));
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    assert_eq!(r.header("etag"), Some("\"v2\""));
    let shown = r.body_json().cloned().unwrap_or_default();
    assert_eq!(shown["restricted"]["reason"], "AML evidence kept by law");
    assert_eq!(
        shown["restricted"]["until"], "2031-01-01T00:00:00.000Z",
        "normalised to UTC"
    );
    assert!(shown["restricted"]["since"].is_string());
    assert_eq!(
        shown["email"], "ada@example.test",
        "admins see personal data"
    );

    let seen = f.as_user(&member, Get, &path, None);
    let b = seen.body_json().cloned().unwrap_or_default();
    assert_eq!(seen.status, 200);
    for field in ["forenames", "surname", "email"] {
        assert!(b.get(field).is_none(), "{field} shown to a member: {b}");
    }
    assert_eq!(b["redacted"], json!(["forenames", "surname", "email"]));
    assert_eq!(b["restricted"]["reason"], "AML evidence kept by law");
    let listed = f.as_user(&member, Get, "/v1/clients", None);
    let item = &listed.body_json().cloned().unwrap_or_default()["items"][0];
    assert!(
        item.get("surname").is_none() && item["redacted"].is_array(),
        "{item}"
    );

    let outbox_before = f.count(binding(&shard), "SELECT count(*) FROM outbox");
    for (method, p, body) in [
        (Patch, path.clone(), Some(json!({"notes": "changed"}))),
        (Delete, path.clone(), None),
        (
            Put,
            format!("{path}/legal-hold"),
            Some(json!({"hold": true})),
        ),
    ] {
        let r = f.as_user(&admin, method.clone(), &p, body);
        let b = r.body_json().cloned().unwrap_or_default();
        assert_eq!(
            (r.status, b["type"].as_str()),
            (409, Some("urn:clientdocs:problem:restricted")),
            "{method:?} {p}: {b}"
        );
        assert!(
            b["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("AML evidence kept by law"),
            "{b}"
        );
        assert!(
            b["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("2031-01-01T00:00:00.000Z"),
            "{b}"
        );
    }
    assert_eq!(
        f.count(binding(&shard), "SELECT count(*) FROM outbox"),
        outbox_before,
        "refusals write nothing"
    );
    let still = f.as_user(&admin, Get, &path, None);
    assert_eq!(still.header("etag"), Some("\"v2\""));

    let lifted = f.as_user(&admin, Delete, &restriction, None);
    assert_eq!(lifted.status, 200);
    assert!(lifted.body_json().unwrap()["restricted"].is_null());
    assert_eq!(
        f.as_user(&member, Patch, &path, Some(json!({"notes": "ok now"})))
            .status,
        200
    );

    let events = f.shard_db(binding(&shard)).query_json(
        "SELECT body ->> '$.type' AS type, body -> '$.changes' AS changes FROM outbox ORDER BY created_at, id",
    );
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(
        types.contains(&"client.restricted") && types.contains(&"client.unrestricted"),
        "{types:?}"
    );
    let restricted = events
        .iter()
        .find(|e| e["type"] == "client.restricted")
        .unwrap();
    let changes: serde_json::Value =
        serde_json::from_str(restricted["changes"].as_str().unwrap()).unwrap();
    assert_eq!(
        changes["restricted"],
        json!({"before": null, "after": {"reason": "AML evidence kept by law", "until": "2031-01-01T00:00:00.000Z"}})
    );
}

#[test]
fn a_restricted_document_refuses_content_uploads_before_storing_anything() {
    let f = Fake::new();
    let (acct, shard) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "aml_evidence", "title": "Passport"})),
    ));
    f.shard_db(binding(&shard))
        .exec(&format!(
            "UPDATE documents SET body = json_set(body, '$.restricted', json('{{\"reason\":\"MLR 2017\",\"until\":null,\"since\":\"2026-11-26T09:00:00Z\"}}')) WHERE id = '{doc}'"
        ))
        .unwrap();
    let r = f.call(
        Put,
        &format!("/v1/documents/{doc}/content"),
        &[
            ("authorization", &format!("Bearer {admin}")),
            ("content-type", "application/pdf"),
        ],
        Some(json!("bytes")),
    );
    let b = r.body_json().cloned().unwrap_or_default();
    assert_eq!(
        (r.status, b["type"].as_str()),
        (409, Some("urn:clientdocs:problem:restricted")),
        "{b}"
    );
    assert!(f.blobs.objects.borrow().is_empty(), "nothing stored");
}

#[test]
fn restriction_requests_are_validated() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let p = format!("/v1/clients/{id}/restriction");
    for bad in [
        json!({"reason": ""}),
        json!({"reason": "x", "until": "next tuesday"}),
        json!({"reason": "x", "extra": 1}),
        json!({"until": null}),
    ] {
        assert_eq!(
            f.as_user(&admin, Put, &p, Some(bad.clone())).status,
            400,
            "{bad}"
        );
    }
    let open_ended = f.as_user(
        &admin,
        Put,
        &p,
        Some(json!({"reason": "art. 18 request", "until": null})),
    );
    assert_eq!(open_ended.status, 200);
    assert!(open_ended.body_json().unwrap()["restricted"]["until"].is_null());
}

#[test]
fn a_hold_on_a_soft_deleted_client_beats_the_purge_until_it_is_lifted() {
    let f = Fake::new();
    let (acct, shard) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    assert_eq!(
        f.as_user(&admin, Delete, &format!("/v1/clients/{id}"), None)
            .status,
        204
    );
    let hold = |on: bool| {
        // Minted at the current time: the clock moves on by more than a token's life.
        f.as_user(
            &f.token(acct, Role::Admin),
            Put,
            &format!("/v1/clients/{id}/legal-hold"),
            Some(json!({"hold": on})),
        )
    };
    let placed = hold(true);
    assert_eq!(placed.status, 200, "{:?}", placed.body_json());
    assert_eq!(placed.body_json().unwrap()["legal_hold"], true);
    assert!(placed.body_json().unwrap()["deleted_at"].is_string());
    let rows = |sql: &str| f.count(binding(&shard), sql);
    let present = format!("SELECT count(*) FROM clients WHERE id = '{id}'");
    let purged_events = format!(
        "SELECT count(*) FROM outbox WHERE body ->> '$.type' = 'client.purged' AND body ->> '$.subject' LIKE '%{id}'"
    );
    f.clock.advance(time::Duration::days(400));
    block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(rows(&present), 1, "held: still there past the grace period");
    let lifted = hold(false);
    assert_eq!(lifted.status, 200, "{:?}", lifted.body_json());
    f.clock.advance(time::Duration::days(1));
    block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(rows(&present), 0, "purged once the hold is lifted");
    block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(rows(&purged_events), 1, "one purge event");
}
