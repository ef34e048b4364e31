//! Idempotency keys keep the outcome by reference, never the response body (issue 12 item 1).

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::testing::fakes::{block_on, SqliteDb};
use crate::testing::harness::*;
use serde_json::json;
use uuid::Uuid;

fn post_with_key(
    f: &Fake,
    tok: &str,
    key: &str,
    body: serde_json::Value,
) -> crate::api::http::ApiResponse {
    f.call(
        Post,
        "/v1/clients",
        &[
            ("authorization", &format!("Bearer {tok}")),
            ("idempotency-key", key),
        ],
        Some(body),
    )
}

#[test]
fn the_idempotency_row_stores_no_personal_data_and_a_replay_shows_the_row_as_it_is_now() {
    let f = Fake::new();
    let (acct, shard) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let body = json!({"forenames": "Ada", "surname": "Lovelace", "status": "active", "email": "ada@example.test"});
    let first = post_with_key(&f, &tok, "k1", body.clone());
    let id = created_id(&first);
    let binding = if shard == "shard-eu-01" {
        "SHARD_EU_01"
    } else {
        "SHARD_EU_02"
    };
    let stored = f
        .shard_db(binding)
        .query_json("SELECT body FROM idempotency_keys");
    assert_eq!(stored.len(), 1);
    let text = stored[0]["body"].as_str().unwrap_or_default().to_string();
    for personal in ["Ada", "Lovelace", "ada@example.test"] {
        assert!(!text.contains(personal), "{personal} stored in {text}");
    }
    let patched = f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{id}"),
        Some(json!({"surname": "King"})),
    );
    assert_eq!(patched.status, 200);
    let replay = post_with_key(&f, &tok, "k1", body);
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        replay.header("location"),
        Some(format!("/v1/clients/{id}").as_str())
    );
    assert_eq!(replay.header("etag"), Some("\"v2\""));
    let b = replay.body_json().cloned().unwrap_or_default();
    assert_eq!(
        (b["id"].as_str(), b["surname"].as_str()),
        (Some(id.as_str()), Some("King"))
    );
    let other = post_with_key(
        &f,
        &tok,
        "k1",
        json!({"forenames": "B", "surname": "C", "status": "active"}),
    );
    assert_eq!(other.status, 422, "same key, other body");
}

#[test]
fn replaying_the_key_of_a_since_deleted_or_erased_client_is_410_gone_without_the_old_body() {
    let f = Fake::new();
    let (acct, shard) = f.account("acme", None);
    let binding = if shard == "shard-eu-01" {
        "SHARD_EU_01"
    } else {
        "SHARD_EU_02"
    };
    let tok = f.token(acct, Role::Admin);
    for (key, gone_by) in [("soft", "delete"), ("erased", "erase"), ("purged", "purge")] {
        let id = created_id(&post_with_key(&f, &tok, key, client_body()));
        match gone_by {
            "delete" => assert_eq!(f.as_user(&tok, Delete, &format!("/v1/clients/{id}"), None).status, 204),
            "erase" => f
                .shard_db(binding)
                .exec(&format!(
                    "UPDATE clients SET body = json_set(body, '$.forenames', '[erased]', '$.erased_at', '2026-11-27T00:00:00Z') WHERE id = '{id}'"
                ))
                .unwrap(),
            _ => f
                .shard_db(binding)
                .exec(&format!("DELETE FROM clients WHERE id = '{id}'"))
                .unwrap(),
        }
        let r = post_with_key(&f, &tok, key, client_body());
        let b = r.body_json().cloned().unwrap_or_default();
        assert_eq!(r.status, 410, "{gone_by}: {b}");
        assert_eq!(b["type"], "urn:clientdocs:problem:resource-gone");
        assert!(!b.to_string().contains("Lovelace"), "{b}");
    }
}

#[test]
fn the_scrub_migration_removes_stored_responses_and_keeps_the_outcome() {
    let old = &crate::migrations::SHARD[..crate::migrations::SHARD
        .iter()
        .position(|m| m.name.starts_with("0011"))
        .unwrap()];
    let db = SqliteDb::with_migrations(old).unwrap();
    let id = Uuid::from_u128(7);
    db.exec(&format!(
        "INSERT INTO idempotency_keys (account_id, id, body) VALUES ('a', 'k', json('{}'))",
        json!({"request_hash": "h", "status": 201, "location": format!("/v1/clients/{id}"),
               "etag": "\"v1\"", "response": {"id": id, "surname": "Lovelace"}, "created_at": "2026-11-26T09:00:00Z"})
    ))
    .unwrap();
    let m = crate::migrations::SHARD
        .iter()
        .find(|m| m.name.starts_with("0011"))
        .unwrap();
    db.exec(m.sql).unwrap();
    let rows = db.query_json("SELECT body, entity_id FROM idempotency_keys");
    let body: serde_json::Value = serde_json::from_str(rows[0]["body"].as_str().unwrap()).unwrap();
    assert!(body.get("response").is_none(), "{body}");
    assert_eq!(
        (body["table"].as_str(), body["entity_id"].as_str()),
        (Some("clients"), Some(id.to_string().as_str()))
    );
    assert_eq!(rows[0]["entity_id"], json!(id.to_string()));
}

/// Erasure deletes (through an index) a subject's key rows that hold the caller's key as sent
/// (written before keys were digested); rows of the digest form stay as tombstones, holding
/// neither the key nor any field of the subject.
#[test]
fn erasure_deletes_a_subjects_key_rows_as_sent_and_keeps_the_digested_ones_as_tombstones() {
    let f = Fake::new();
    let (acct, shard) = f.account("acme", None);
    let binding = if shard == "shard-eu-01" {
        "SHARD_EU_01"
    } else {
        "SHARD_EU_02"
    };
    let tok = f.token(acct, Role::Member);
    let a = created_id(&post_with_key(
        &f,
        &tok,
        "create-ada-lovelace",
        client_body(),
    ));
    let b = created_id(&post_with_key(&f, &tok, "b", client_body()));
    f.shard_db(binding)
        .exec(&format!(
            "INSERT INTO idempotency_keys (account_id, id, body) VALUES ('{acct}', \
             'u:POST /v1/clients:ada-lovelace-old', json_object('table', 'clients', \
             'entity_id', '{a}', 'status', 201))"
        ))
        .unwrap();
    let ids = |f: &Fake| -> Vec<String> {
        f.shard_db(binding)
            .query_json("SELECT id FROM idempotency_keys ORDER BY id")
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(ids(&f).len(), 3);
    assert!(
        ids(&f).iter().all(|k| !k.contains("create-ada")),
        "keys are stored digested: {:?}",
        ids(&f)
    );
    let stmt =
        crate::store::idempotency::delete_for_entity(acct, "clients", Uuid::parse_str(&a).unwrap());
    let plan = crate::testing::fakes::query_plan(&f.shard_db(binding), &stmt).join(" ");
    assert!(plan.contains("idempotency_by_entity"), "{plan}");
    block_on(crate::ports::Database::query(&*f.shard_db(binding), stmt)).unwrap();
    let left = ids(&f);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|k| !k.contains("lovelace")), "{left:?}");
    let entities = f
        .shard_db(binding)
        .query_json("SELECT entity_id FROM idempotency_keys ORDER BY entity_id");
    let mut want = vec![json!(a), json!(b)];
    want.sort_by_key(|v| v.to_string());
    let got: Vec<_> = entities.iter().map(|r| r["entity_id"].clone()).collect();
    assert_eq!(got, want);
}
