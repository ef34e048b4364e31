//! Merge patches under contention (issue 12 item 9): a patch without `If-Match` is merged by
//! the statement onto the row as it is then, so writers of other fields never conflict; with
//! `If-Match` exactly one writer holding an ETag wins. The SQLite fake runs futures to
//! completion one at a time, so the interleaving is built explicitly: every writer's change is
//! prepared from the same read before any of them commits.

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::domain::event::{Action, Actor, Change, ChangeEvent, Origin};
use crate::services::changes::{commit, Edit, Expect, Write};
use crate::testing::fakes::block_on;
use crate::testing::harness::*;
use serde_json::json;
use uuid::Uuid;

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

/// Eight patches of different fields, each prepared from the same read (version 1).
fn writes(acct: Uuid, id: Uuid, expect: Expect) -> Vec<Write> {
    FIELDS
        .iter()
        .enumerate()
        .map(|(i, field)| Write {
            table: "clients",
            id,
            edit: Edit::MergePatch(json!({ *field: value(field) })),
            expect: expect.clone(),
            live_only: true,
            event: ChangeEvent::new(
                Uuid::from_u128(1000 + i as u128),
                START,
                &Origin {
                    deployment: "d",
                    shard_id: "shard-eu-01",
                    account_id: acct,
                    actor: Actor::System { id: "t".into() },
                    request_id: "r",
                },
                Change {
                    entity_type: "clients",
                    entity_singular: "client",
                    entity_id: id,
                    action: Action::Updated,
                    entity_version: 2,
                    changed_fields: vec![field.to_string()],
                },
            ),
            with: vec![],
        })
        .collect()
}

#[test]
fn eight_unconditional_patches_prepared_from_one_read_all_land_with_one_version_each() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let uid = Uuid::parse_str(&id).unwrap();
    let db = f.shard_db("SHARD_EU_01");
    let mut versions = vec![];
    for w in writes(acct, uid, Expect::Any) {
        let landed = block_on(commit(&*db, &w)).unwrap().expect("lands");
        assert_eq!(landed.event.entity_version, landed.version);
        versions.push(landed.version);
    }
    assert_eq!(
        versions,
        (2..=9).collect::<Vec<i64>>(),
        "version +1 per landed write"
    );
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
fn patches_under_the_same_if_match_have_exactly_one_winner() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let db = f.shard_db("SHARD_EU_01");
    let landed: Vec<bool> = writes(acct, Uuid::parse_str(&id).unwrap(), Expect::Version(1))
        .iter()
        .map(|w| block_on(commit(&*db, w)).unwrap().is_some())
        .collect();
    assert_eq!(landed.iter().filter(|l| **l).count(), 1, "{landed:?}");
    // Over HTTP: the losers' ETag is stale, 412, and the row moved once.
    let stale = f.call(
        Patch,
        &format!("/v1/clients/{id}"),
        &[
            ("authorization", &format!("Bearer {tok}")),
            ("if-match", "\"v1\""),
        ],
        Some(json!({"notes": "late"})),
    );
    assert_eq!(stale.status, 412);
    let r = f.as_user(&tok, Get, &format!("/v1/clients/{id}"), None);
    assert_eq!(r.header("etag"), Some("\"v2\""));
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
