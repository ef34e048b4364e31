//! GET by id and list pages render a plain stored body from its text (`render_plain`); every
//! other body is parsed and presented. The two must never show a caller different things.

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::api::{present, render_plain};
use crate::domain::auth::Role;
use crate::domain::entity;
use crate::store::changes::version_of;
use crate::testing::harness::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const SHARD: &str = "SHARD_EU_01";
const ID: &str = "0190f1c2-0000-7000-8000-000000000001";

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        (0i64..5).prop_map(|v| json!(v as f64)),
        "\\PC{0,6}".prop_map(Value::from),
        Just(json!({"reason": "legal_claims", "until": "2031-01-01T00:00:00Z"})),
        Just(json!({"reason": "legal_claims", "until": "2020-01-01T00:00:00Z"})),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies with the keys that decide the rendering (server fields, restrictions, `id`,
/// `version`) as often as any other, and some keys that need escapes.
fn body() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("index_rev".to_string()),
        Just("last_event_id".to_string()),
        Just("client_ended_on".to_string()),
        Just("client_restricted".to_string()),
        Just("restricted".to_string()),
        Just("version".to_string()),
        Just("id".to_string()),
        "[a-z_]{1,10}",
        "\\PC{1,4}",
    ];
    prop::collection::vec((key, value()), 0..10)
        .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Whatever `render_plain` renders is what `present` shows every role, at any time, with
    /// the same version; and it declines only bodies it is documented to leave to `present`.
    #[test]
    fn a_plain_rendering_is_what_every_caller_is_presented(body in body(), pretty in any::<bool>()) {
        // Stored compact, or with whitespace between tokens (as a direct write might).
        let text = if pretty { serde_json::to_string_pretty(&body).unwrap() } else { body.to_string() };
        // The general path presents the body as parsed from the stored text.
        let body: Value = serde_json::from_str(&text).unwrap();
        let o = body.as_object().unwrap();
        let set = |k: &str| o.get(k).is_some_and(|v| !v.is_null());
        let escaped = text.contains("\\u")
            || o.keys().any(|k| serde_json::to_string(k).unwrap().len() != k.len() + 2);
        let plain = render_plain(ID, &text);
        match plain {
            Some(plain) => {
                let shown: Value = serde_json::from_str(&plain.doc).unwrap();
                for role in [Role::Admin, Role::Member, Role::Readonly] {
                    for now in [time::macros::datetime!(2019-01-01 0:00 UTC), time::macros::datetime!(2030-01-01 0:00 UTC)] {
                        prop_assert_eq!(&shown, &present(role, &entity::CLIENTS, ID, &body, now));
                    }
                }
                prop_assert_eq!(plain.version, version_of(&body));
            }
            None => prop_assert!(
                o.contains_key("id") || set("restricted") || set("client_restricted") || escaped,
                "declined a plain body: {text}"
            ),
        }
    }
}

#[test]
fn a_body_that_is_not_a_plain_object_is_left_to_present() {
    for text in [
        // A repeated key: `present` reads the last value (here a restriction), so it decides.
        r#"{"restricted":null,"surname":"Lovelace","restricted":{"reason":"legal_claims","until":"2031-01-01T00:00:00Z"}}"#,
        r#"{"surname":"a","surname":"b"}"#,
        r#"{"sur\u006eame":"Lovelace"}"#,
        // A lone surrogate: the general path refuses such a body rather than show it.
        r#"{"surname":"\ud800"}"#,
        r#"{"id":"someone-else"}"#,
        r#"{"client_restricted":{"until":"2031-01-01T00:00:00Z"}}"#,
        "[1, 2]",
        "\"text\"",
        "{\"surname\":",
        "",
    ] {
        assert!(render_plain(ID, text).is_none(), "{text}");
    }
    let plain = render_plain(
        ID,
        r#"{"index_rev":3,"restricted":null,"surname":"L","version":2.0}"#,
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&plain.doc).unwrap(),
        json!({"id": ID, "restricted": null, "surname": "L", "version": 2.0})
    );
    assert_eq!(plain.version, 2);
}

/// An insider writes a body with `restricted` twice, null first: the record is restricted
/// (the value read is the last one), so a member is shown it redacted, by id and in a list.
#[test]
fn a_repeated_restriction_key_written_into_the_shard_still_redacts_for_a_member() {
    let f = Fake::new().without_read_cache();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let member = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    f.shard_db(SHARD)
        .exec(&format!(
            "UPDATE clients SET body = '{{\"restricted\":null,' || substr(json_set(body, \
             '$.restricted', json('{{\"reason\":\"legal_claims\",\"until\":\"2031-01-01T00:00:00Z\"}}')), 2) \
             WHERE id = '{id}'"
        ))
        .unwrap();
    let by_id = f.as_user(&member, Get, &format!("/v1/clients/{id}"), None);
    assert_eq!(by_id.status, 200, "{:?}", by_id.body_json());
    let shown = by_id.body_json().unwrap();
    assert!(shown.get("surname").is_none(), "{shown}");
    assert_eq!(
        shown["redacted"],
        json!(["forenames", "surname"]),
        "{shown}"
    );
    let page = f.as_user(&member, Get, "/v1/clients", None);
    let item = page.body_json().unwrap()["items"][0].clone();
    assert_eq!(item["id"], json!(id));
    assert!(item.get("surname").is_none(), "{item}");
    // The admin sees it whole, with the restriction that binds.
    let whole = f.as_user(&admin, Get, &format!("/v1/clients/{id}"), None);
    assert_eq!(whole.body_json().unwrap()["surname"], json!("Lovelace"));
    assert_eq!(
        whole.body_json().unwrap()["restricted"]["reason"],
        json!("legal_claims")
    );
}

/// A plain row is shown by id and in a list without the server's fields, with its id and the
/// ETag of its version.
#[test]
fn a_plain_row_is_shown_without_server_fields_by_id_and_in_a_list() {
    let f = Fake::new().without_read_cache();
    let (acct, _) = f.account("acme", None);
    let member = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&member, Post, "/v1/clients", Some(client_body())));
    f.shard_db(SHARD)
        .exec(&format!(
            "UPDATE clients SET body = json_set(body, '$.index_rev', 7, '$.last_event_id', 'e', \
             '$.client_ended_on', '2020-01-01') WHERE id = '{id}'"
        ))
        .unwrap();
    let r = f.as_user(&member, Get, &format!("/v1/clients/{id}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some("\"v1\""));
    let shown = r.body_json().unwrap().clone();
    let listed = f
        .as_user(&member, Get, "/v1/clients", None)
        .body_json()
        .unwrap()["items"][0]
        .clone();
    assert_eq!(shown, listed);
    assert_eq!(shown["id"], json!(id));
    for hidden in crate::api::HIDDEN_FIELDS {
        assert!(shown.get(*hidden).is_none(), "{hidden} shown: {shown}");
    }
    assert_eq!(shown["surname"], json!("Lovelace"));
}
