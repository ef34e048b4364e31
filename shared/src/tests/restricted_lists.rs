//! Lists filtered and sorted on personal-data columns (`surname_prefix`, `search_prefix`) leave
//! restricted records out for non-admins: neither which rows match a prefix nor the cursor's
//! sort key can reveal a restricted client's surname or search key.

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::testing::harness::*;
use base64::Engine;
use serde_json::json;

fn restrict(f: &Fake, admin: &str, id: &str) {
    let r = f.as_user(
        admin,
        Put,
        &format!("/v1/clients/{id}/restriction"),
        Some(json!({"reason": "legal_claims", "until": "2031-01-01T00:00:00Z"})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
}

fn ids(r: &crate::api::http::ApiResponse) -> Vec<String> {
    r.body_json().unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_restricted_surname_never_reaches_a_member_through_a_prefix_list_or_its_cursor() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let member = f.token(acct, Role::Member);
    let mut secret = client_body();
    secret["surname"] = json!("Lovelace-Secret");
    let hidden = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(secret)));
    let mut others = vec![];
    for surname in ["Lz", "Lzz"] {
        let mut c = client_body();
        c["surname"] = json!(surname);
        others.push(created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c))));
    }
    restrict(&f, &admin, &hidden);
    let mut seen = vec![];
    let mut path = "/v1/clients?surname_prefix=l&limit=1".to_string();
    loop {
        let r = f.as_user(&member, Get, &path, None);
        assert_eq!(r.status, 200, "{:?}", r.body_json());
        seen.extend(ids(&r));
        let Some(cursor) = r.body_json().unwrap()["next_cursor"]
            .as_str()
            .map(str::to_owned)
        else {
            break;
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor.split('.').next().unwrap_or_default())
            .unwrap();
        let c: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_ne!(c["k"], "lovelace-secret", "the cursor carries it: {c}");
        assert_ne!(c["id"], hidden.as_str(), "{c}");
        path = format!("/v1/clients?surname_prefix=l&limit=1&cursor={cursor}");
    }
    assert_eq!(
        seen, others,
        "a member pages through the unrestricted matches only"
    );
    let all = f.as_user(&admin, Get, "/v1/clients?surname_prefix=l", None);
    assert_eq!(ids(&all).len(), 3, "admins see every match");
}

#[test]
fn a_member_cannot_tell_whether_a_restricted_client_matches_a_prefix() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let member = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    restrict(&f, &admin, &id);
    for filter in [
        "surname_prefix=lovelace",
        "surname_prefix=lovelacf",
        "search_prefix=l",
    ] {
        let r = f.as_user(&member, Get, &format!("/v1/clients?{filter}"), None);
        assert_eq!(
            r.body_json().unwrap(),
            &json!({"items": [], "next_cursor": null}),
            "{filter}"
        );
    }
    let exact = f.as_user(&admin, Get, "/v1/clients?surname_prefix=lovelace", None);
    assert_eq!(ids(&exact), vec![id.clone()]);
    // The default order (ids) and other filters reveal nothing personal: the row is listed,
    // redacted.
    let plain = f.as_user(&member, Get, "/v1/clients?status=active", None);
    let item = plain.body_json().unwrap()["items"][0].clone();
    assert_eq!(item["id"], id.as_str());
    assert!(item.get("surname").is_none(), "{item}");
}
