//! Per-account CORS (issue 14 item 3): configured by the account's admins, audited, served
//! only on the account's custom domain and only to an allowed origin; nothing otherwise.

use super::*;

const APP: &str = "https://app.acme.example";
const HOST: &str = "clients.acme.example";

fn cors_headers(r: &crate::api::http::ApiResponse) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(k, _)| k.starts_with("access-control-"))
        .cloned()
        .collect()
}

/// An account with a custom domain and its admin's token.
fn acme(f: &Fake) -> (uuid::Uuid, String) {
    let (a, _) = f.account("acme", None);
    let r = f.admin(
        Post,
        &format!("/admin/v1/accounts/{a}/domains"),
        Some(json!({"hostname": HOST})),
    );
    assert_eq!(r.status, 201);
    (a, f.token(a, Role::Admin))
}

fn preflight(f: &Fake, host: &str, origin: &str, method: &str) -> crate::api::http::ApiResponse {
    f.call(
        Options,
        "/v1/clients",
        &[
            ("host", host),
            ("origin", origin),
            ("access-control-request-method", method),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
        None,
    )
}

#[test]
fn an_account_without_cors_settings_gets_no_cors_header_even_on_its_domain() {
    let f = Fake::new();
    let (_, admin) = acme(&f);
    let r = preflight(&f, HOST, APP, "POST");
    assert_eq!(r.status, 204);
    assert!(cors_headers(&r).is_empty(), "{:?}", r.headers);
    let r = f.call(
        Get,
        "/v1/clients",
        &[
            ("authorization", format!("Bearer {admin}").as_str()),
            ("host", HOST),
            ("origin", APP),
        ],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(cors_headers(&r).is_empty());
}

#[test]
fn configured_origins_get_preflights_and_readable_answers_on_the_accounts_domain_only() {
    let f = Fake::new();
    let (_, admin) = acme(&f);
    let r = f.as_user(
        &admin,
        Put,
        "/v1/settings/cors",
        Some(json!({"allowed_origins": [APP], "max_age_seconds": 300})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let p = preflight(&f, HOST, APP, "POST");
    assert_eq!(p.status, 204);
    assert_eq!(p.header("access-control-allow-origin"), Some(APP));
    assert_eq!(p.header("access-control-max-age"), Some("300"));
    assert_eq!(
        p.header("access-control-allow-methods"),
        p.header("allow"),
        "the methods the route table allows"
    );
    assert!(p
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("authorization") && h.contains("idempotency-key")));
    assert_eq!(p.header("vary"), Some("Origin"));
    // Another origin, a method the path does not have, the shared host: nothing granted.
    assert!(cors_headers(&preflight(&f, HOST, "https://evil.example", "POST")).is_empty());
    assert!(cors_headers(&preflight(&f, HOST, APP, "DELETE")).is_empty());
    assert!(cors_headers(&preflight(&f, "api.test", APP, "POST")).is_empty());
    // Actual answers, errors included, carry the origin and the headers a script may read.
    let call = |token: &str, origin: &str| {
        f.call(
            Get,
            "/v1/clients",
            &[
                ("authorization", format!("Bearer {token}").as_str()),
                ("host", HOST),
                ("origin", origin),
            ],
            None,
        )
    };
    let ok = call(&admin, APP);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
    assert!(ok
        .header("access-control-expose-headers")
        .is_some_and(|h| h.contains("etag") && h.contains("x-d1-bookmark")));
    let denied = call("not-a-token", APP);
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("access-control-allow-origin"), Some(APP));
    assert!(cors_headers(&call(&admin, "https://evil.example")).is_empty());
}

#[test]
fn cors_settings_are_for_admins_validated_and_audited() {
    let f = Fake::new();
    let (a, admin) = acme(&f);
    let member = f.token(a, Role::Member);
    let put = |tok: &str, body| f.as_user(tok, Put, "/v1/settings/cors", Some(body));
    assert_eq!(put(&member, json!({"allowed_origins": [APP]})).status, 403);
    assert_eq!(
        f.as_user(&member, Get, "/v1/settings/cors", None).status,
        403
    );
    for bad in [
        json!({"allowed_origins": ["*"]}),
        json!({"allowed_origins": ["https://app.acme.example/"]}),
        json!({"allowed_origins": ["ftp://app.acme.example"]}),
        json!({"allowed_origins": [APP], "max_age_seconds": 100000}),
        json!({"allowed_origins": [APP], "credentials": true}),
    ] {
        let r = put(&admin, bad.clone());
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    assert_eq!(
        f.as_user(&admin, Get, "/v1/settings/cors", None)
            .body_json()
            .cloned()
            .unwrap_or_default()["allowed_origins"],
        json!([]),
        "nothing half-written by the refused PUTs"
    );
    assert_eq!(put(&admin, json!({"allowed_origins": [APP]})).status, 200);
    let r = f.as_user(&admin, Get, "/v1/settings/cors", None);
    assert_eq!(
        r.body_json().cloned().unwrap_or_default(),
        json!({"allowed_origins": [APP], "max_age_seconds": 600})
    );
    f.drain_queue();
    let items = f
        .as_user(&admin, Get, "/v1/audit?limit=200", None)
        .body_json()
        .cloned()
        .unwrap_or_default()["items"]
        .clone();
    let change = items
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["action"] == "account.updated" && e["changed_fields"] == json!(["cors"]))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        change["changes"]["cors"]["after"]["allowed_origins"],
        json!([APP]),
        "{items:#}"
    );
}

#[test]
fn a_settings_read_with_a_bookmark_sees_a_change_another_isolate_made() {
    let f = Fake::new();
    let (a, admin) = acme(&f);
    let put = f.as_user(
        &admin,
        Put,
        "/v1/settings/cors",
        Some(json!({"allowed_origins": [APP]})),
    );
    assert_eq!(put.status, 200);
    let bookmark = put
        .header("x-d1-bookmark")
        .filter(|b| crate::api::tenant::is_bookmark(b))
        .expect("a settings PUT wrote D1: it carries a bookmark")
        .to_string();
    // Warm this isolate's route, then another isolate changes the setting (its row only: this
    // isolate's cache does not know).
    let get = |extra: &[(&str, &str)]| {
        let auth = format!("Bearer {admin}");
        let mut h = vec![("authorization", auth.as_str())];
        h.extend_from_slice(extra);
        f.call(Get, "/v1/settings/cors", &h, None)
            .body_json()
            .cloned()
            .unwrap_or_default()["allowed_origins"]
            .clone()
    };
    assert_eq!(get(&[]), json!([APP]));
    f.accounts
        .exec(&format!(
            "UPDATE accounts SET body = json_set(body, '$.cors.allowed_origins', \
             json('[\"https://other.acme.example\"]')) WHERE id = '{a}'"
        ))
        .unwrap();
    assert_eq!(
        get(&[]),
        json!([APP]),
        "without a bookmark: the cached route"
    );
    assert_eq!(
        get(&[("x-d1-bookmark", &bookmark)]),
        json!(["https://other.acme.example"]),
        "with one: the account row read afresh"
    );
}

#[test]
fn a_deactivated_accounts_domain_sends_no_cors_header_and_other_origins_get_vary() {
    let f = Fake::new();
    let (a, admin) = acme(&f);
    assert_eq!(
        f.as_user(
            &admin,
            Put,
            "/v1/settings/cors",
            Some(json!({"allowed_origins": [APP]})),
        )
        .status,
        200
    );
    let other = preflight(&f, HOST, "https://evil.example", "POST");
    assert!(cors_headers(&other).is_empty());
    assert_eq!(other.header("vary"), Some("Origin"));
    // Another account's token on this domain: refused, and still no grant to a foreign origin.
    let (b, _) = f.account("brightwater", None);
    let foreign = f.call(
        Get,
        "/v1/clients",
        &[
            (
                "authorization",
                format!("Bearer {}", f.token(b, Role::Admin)).as_str(),
            ),
            ("host", HOST),
            ("origin", "https://evil.example"),
        ],
        None,
    );
    assert_eq!(foreign.status, 403);
    assert!(cors_headers(&foreign).is_empty());
    let r = f.admin(Post, &format!("/admin/v1/accounts/{a}/deactivate"), None);
    assert_eq!(r.status, 200);
    let p = preflight(&f, HOST, APP, "POST");
    assert!(cors_headers(&p).is_empty(), "{:?}", p.headers);
}
