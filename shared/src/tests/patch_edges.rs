//! Merge patch edges: nulls inside arrays are stripped as a create strips them, and a client
//! pseudonymised by an erasure (`erased_at`, a server field) still takes patches.

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::testing::harness::*;
use serde_json::json;

fn stored(f: &Fake, binding: &str, id: &str) -> serde_json::Value {
    let rows = f
        .shard_db(binding)
        .query_json(&format!("SELECT body FROM clients WHERE id = '{id}'"));
    serde_json::from_str(rows[0]["body"].as_str().unwrap()).unwrap()
}

#[test]
fn a_merge_patch_stores_no_null_inside_an_array() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let r = f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{id}"),
        Some(json!({"dependants": [{"name": "Byron", "relationship": "child", "date_of_birth": null}], "notes": null})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let body = stored(&f, "SHARD_EU_01", &id);
    assert_eq!(
        body["dependants"],
        json!([{"name": "Byron", "relationship": "child"}]),
        "{body}"
    );
    assert!(
        body.get("notes").is_none(),
        "a member's null still deletes: {body}"
    );
}

#[test]
fn a_pseudonymised_client_still_takes_a_patch() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    // What the erasure's pseudonymisation leaves (`store::erasure_requests::CLIENT_PSEUDONYM`).
    f.shard_db("SHARD_EU_01")
        .exec(&format!(
            "UPDATE clients SET body = json_set(body, '$.forenames', '[erased]', '$.surname', \
             '[erased]', '$.erased_at', '2026-11-26T09:00:00.000Z') WHERE id = '{id}'"
        ))
        .unwrap();
    let r = f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{id}"),
        Some(json!({"status": "former"})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    assert_eq!(
        r.body_json().unwrap()["erased_at"],
        "2026-11-26T09:00:00.000Z"
    );
    let refused = f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{id}"),
        Some(json!({"erased_at": null})),
    );
    assert_eq!(refused.status, 400, "a server field");
}
