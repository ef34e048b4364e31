//! The HTTP surface: limits, problem+json errors, merge patches, 405 with Allow, bookmarks, content types, extreme inputs.

use super::*;

#[test]
fn limits_each_have_a_clear_error_and_write_nothing() {
    let mut f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let auth = format!("Bearer {tok}");
    let mut big = client_body();
    big["notes"] = json!("x".repeat(entity::MAX_JSON_BODY_BYTES));
    assert_eq!(f.as_user(&tok, Post, "/v1/clients", Some(big)).status, 413);
    let mut deep = json!("leaf");
    for _ in 0..10 {
        deep = json!({ "a": deep });
    }
    let mut c = client_body();
    c["address"] = deep;
    assert_eq!(f.as_user(&tok, Post, "/v1/clients", Some(c)).status, 400);
    let r = f.call(
        Post,
        "/v1/clients",
        &[("authorization", &auth), ("content-type", "text/plain")],
        Some(client_body()),
    );
    assert_eq!(r.status, 415);
    assert_eq!(
        f.as_user(&tok, Get, "/v1/clients/not-a-uuid", None).status,
        400
    );
    let mut long = client_body();
    long["surname"] = json!("x".repeat(201));
    assert_eq!(f.as_user(&tok, Post, "/v1/clients", Some(long)).status, 400);
    // Content over the configured limit.
    let doc_client = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": doc_client, "kind": "identity", "title": "Passport"})),
    ));
    f.cfg.max_content_bytes = 10;
    let mut req = crate::api::http::ApiRequest {
        method: Put,
        path: format!("/v1/documents/{doc}/content"),
        query: vec![],
        headers: vec![
            ("authorization".into(), auth.clone()),
            ("content-type".into(), "application/pdf".into()),
        ],
        body: vec![1; 11],
        cf_country: Default::default(),
        request_id: "r".into(),
    };
    assert_eq!(f.raw(req.clone()).status, 413);
    req.body = vec![1; 10];
    assert_eq!(f.raw(req).status, 200);
    assert_eq!(
        f.count("SHARD_EU_01", "SELECT count(*) FROM clients"),
        1,
        "only the valid client"
    );
}

#[test]
fn every_error_is_problem_json_with_type_detail_and_request_id() {
    let f = Fake::new();
    for r in [
        f.call(Get, "/nope", &[], None),
        f.call(Get, "/v1/clients", &[], None),
        f.admin(Get, "/admin/v1/accounts/not-a-uuid", None),
        f.admin(Delete, "/admin/v1/shards", None),
    ] {
        assert!(r.status >= 400);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        let b = r.body_json().unwrap();
        assert!(b["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:clientdocs:problem:"));
        assert!(b["detail"].is_string() && b["title"].is_string());
        assert_eq!(b["request_id"], "req-test");
        assert_eq!(b["status"], r.status);
    }
}

#[test]
fn patch_merges_validates_and_counts_versions() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let mut body = client_body();
    body["address"] = json!({"line1": "1 High St", "postcode": "AB1 2CD"});
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(body)));
    let path = format!("/v1/clients/{id}");
    let r = f.as_user(
        &tok,
        Patch,
        &path,
        Some(json!({"address": {"postcode": null, "town": "Leeds"}})),
    );
    assert_eq!(r.status, 200);
    let v = r.body_json().unwrap();
    assert_eq!(v["address"], json!({"line1": "1 High St", "town": "Leeds"}));
    assert_eq!(v["version"], 2);
    // Removing a required field is a validation error, and writes nothing.
    assert_eq!(
        f.as_user(&tok, Patch, &path, Some(json!({"surname": null})))
            .status,
        400
    );
    assert_eq!(
        f.as_user(&tok, Patch, &path, Some(json!({"version": 7})))
            .status,
        400
    );
    // A no-op patch writes nothing and emits nothing.
    let before = f.queue.sent.borrow().len();
    assert_eq!(
        f.as_user(&tok, Patch, &path, Some(json!({"surname": "Lovelace"})))
            .body_json()
            .unwrap()["version"],
        2
    );
    assert_eq!(f.queue.sent.borrow().len(), before);
    let last = f.queue.sent.borrow().last().cloned().unwrap();
    assert_eq!(last["changed_fields"], json!(["address"]));
}

#[test]
fn unsupported_method_is_405_with_an_allow_header() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let r = f.as_user(&tok, Put, "/v1/clients", None);
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, HEAD, POST, OPTIONS"))
    );
    let r = f.call(Post, "/health", &[], None);
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, HEAD, OPTIONS"))
    );
}

#[test]
fn malformed_bookmark_is_a_400_not_silently_ignored() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let auth = format!("Bearer {}", f.token(acct, Role::Member));
    let long = "0".repeat(300);
    for bad in [long.as_str(), "has space", ""] {
        let r = f.call(
            Get,
            "/v1/clients",
            &[("authorization", &auth), ("x-d1-bookmark", bad)],
            None,
        );
        assert_eq!(r.status, 400, "{bad:?}");
    }
}

#[test]
fn document_content_refuses_active_types_and_downloads_as_an_attachment() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let client = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "correspondence", "title": "Letter"})),
    ));
    let put = |ct: &str| {
        f.raw(crate::api::http::ApiRequest {
            method: Put,
            path: format!("/v1/documents/{doc}/content"),
            query: vec![],
            headers: vec![
                ("authorization".into(), format!("Bearer {tok}")),
                ("content-type".into(), ct.into()),
            ],
            body: b"<script>alert(1)</script>".to_vec(),
            cf_country: Default::default(),
            request_id: "r".into(),
        })
    };
    for bad in [
        "text/html",
        "image/svg+xml",
        "application/javascript",
        "text/yaml",
    ] {
        assert_eq!(put(bad).status, 415, "{bad}");
    }
    assert_eq!(put("text/plain; charset=utf-8").status, 200);
    let g = f.as_user(&tok, Get, &format!("/v1/documents/{doc}/content"), None);
    assert_eq!(g.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(g.header("x-content-type-options"), Some("nosniff"));
    assert!(g
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
}

#[test]
fn extreme_times_nested_nulls_and_non_ascii_prefixes_are_handled() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let r = f.as_user(
        &admin,
        Get,
        "/v1/audit?from=9999-12-31T23:59:59-01:00&to=9999-12-31T23:59:59Z",
        None,
    );
    assert!(r.status < 500, "no panic: {}", r.status);
    let mut c = client_body();
    c["surname"] = json!("Ötzi");
    c["address"] = json!({"line1": null, "town": "Bozen"});
    let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    let g = f.as_user(&admin, Get, &format!("/v1/clients/{id}"), None);
    assert_eq!(g.body_json().unwrap()["address"], json!({"town": "Bozen"}));
    let found = f.as_user(&admin, Get, "/v1/clients?surname_prefix=%C3%96tz", None);
    assert_eq!(
        found.body_json().unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
