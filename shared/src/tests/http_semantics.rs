//! HTTP semantics a client library expects (issue 14 item 3): RFC 6750 challenges, HEAD and
//! OPTIONS from the route table, strong If-Match, a bookmark on every tenant response, MAC'd
//! cursors, strict JSON, names that say something, live references, UUIDs in any case,
//! content-type parameters, canonical idempotency.

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::api::http::{ApiRequest, ApiResponse, Body, Method};
use crate::domain::auth::Role;
use crate::testing::harness::*;
use base64::Engine;
use serde_json::{json, Value};
use uuid::Uuid;

fn raw(f: &Fake, method: Method, path: &str, headers: &[(&str, &str)], body: &[u8]) -> ApiResponse {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    h.push(("host".into(), "api.test".into()));
    f.raw(ApiRequest {
        method,
        path: path.into(),
        query: ApiRequest::parse_query(query),
        headers: h,
        body: body.to_vec(),
        cf_country: Default::default(),
        request_id: "req-http".into(),
    })
}

fn problem(r: &ApiResponse) -> String {
    r.body_json().map_or(String::new(), |b| {
        b["type"].as_str().unwrap_or_default().to_string()
    })
}

struct T {
    f: Fake,
    auth: String,
}

impl T {
    fn new(role: Role) -> T {
        let f = Fake::new();
        let (acct, _) = f.account("acme", None);
        let auth = format!("Bearer {}", f.token(acct, role));
        T { f, auth }
    }
    fn call(&self, m: Method, path: &str, body: Option<Value>) -> ApiResponse {
        self.f.call(m, path, &[("authorization", &self.auth)], body)
    }
    fn with(&self, m: Method, path: &str, h: &[(&str, &str)], body: Option<Value>) -> ApiResponse {
        let mut all = vec![("authorization", self.auth.as_str())];
        all.extend_from_slice(h);
        self.f.call(m, path, &all, body)
    }
    fn raw(&self, m: Method, path: &str, h: &[(&str, &str)], body: &[u8]) -> ApiResponse {
        let mut all = vec![("authorization", self.auth.as_str())];
        all.extend_from_slice(h);
        raw(&self.f, m, path, &all, body)
    }
}

#[test]
fn a_401_challenges_with_invalid_request_without_a_token_and_invalid_token_with_a_bad_one() {
    let t = T::new(Role::Member);
    let none = t.f.call(Get, "/v1/clients", &[], None);
    assert_eq!(none.status, 401);
    let c = none.header("www-authenticate").unwrap_or_default();
    assert!(
        c.starts_with("Bearer realm=\"clientdocs\", error=\"invalid_request\""),
        "{c}"
    );
    let basic =
        t.f.call(Get, "/v1/clients", &[("authorization", "Basic abc")], None);
    assert!(basic
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("error=\"invalid_request\""));
    let bad = t.f.call(
        Get,
        "/v1/clients",
        &[("authorization", "Bearer not.a.jwt")],
        None,
    );
    assert_eq!(bad.status, 401);
    assert!(bad
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("error=\"invalid_token\""));
    // An expired token: the clock moves past its expiry.
    t.f.clock.advance(time::Duration::hours(2));
    let expired = t.call(Get, "/v1/clients", None);
    assert_eq!(expired.status, 401, "{:?}", expired.body_json());
    let c = expired.header("www-authenticate").unwrap_or_default();
    assert!(
        c.contains("error=\"invalid_token\"") && c.contains("expired"),
        "{c}"
    );
    // A 403 is not a 401: no challenge.
    let t = T::new(Role::Readonly);
    let r = t.call(Post, "/v1/clients", Some(client_body()));
    assert_eq!(r.status, 403);
    assert_eq!(r.header("www-authenticate"), None);
}

#[test]
fn head_answers_with_the_gets_status_and_headers_its_length_and_no_body() {
    let t = T::new(Role::Admin);
    let id = created_id(&t.call(Post, "/v1/clients", Some(client_body())));
    for path in [
        "/v1/clients".to_string(),
        format!("/v1/clients/{id}"),
        format!("/v1/clients/{}", Uuid::from_u128(9)),
        "/v1/settings/retention".into(),
        "/v1/audit".into(),
        "/health".into(),
        "/openapi.json".into(),
    ] {
        let get = t.call(Get, &path, None);
        let head = t.call(Head, &path, None);
        assert_eq!(head.status, get.status, "{path}");
        assert_eq!(head.body, Body::Empty, "{path}");
        assert_eq!(
            head.header("content-length"),
            Some(get.body_bytes().len().to_string().as_str()),
            "{path}"
        );
        for h in ["content-type", "etag"] {
            assert_eq!(head.header(h), get.header(h), "{path} {h}");
        }
        assert_eq!(
            head.header("x-d1-bookmark").is_some(),
            get.header("x-d1-bookmark").is_some(),
            "{path}"
        );
    }
}

#[test]
fn head_of_content_reads_only_the_row_and_head_of_the_export_does_not_run_it() {
    let t = T::new(Role::Admin);
    let client = created_id(&t.call(Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&t.call(
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "identity", "title": "Passport"})),
    ));
    let path = format!("/v1/documents/{doc}/content");
    let up = t.raw(
        Put,
        &path,
        &[("content-type", "text/plain; charset=utf-8")],
        b"hello",
    );
    assert_eq!(up.status, 200, "{:?}", up.body_json());
    // Remove the object from R2: GET can no longer serve it, HEAD never needed it.
    t.f.blobs.objects.borrow_mut().clear();
    assert_eq!(t.call(Get, &path, None).status, 404);
    let head = t.call(Head, &path, None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("5"));
    assert_eq!(
        head.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(head.body, Body::Empty);
    let get_cost = t.call(Get, "/v1/audit/export", None);
    let head = t.call(Head, "/v1/audit/export", None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), get_cost.header("content-type"));
    assert!(
        head.header("x-d1-cost")
            .unwrap_or_default()
            .starts_with("calls=0;"),
        "HEAD of the export ran a query: {:?}",
        head.header("x-d1-cost")
    );
    assert!(!get_cost
        .header("x-d1-cost")
        .unwrap_or_default()
        .starts_with("calls=0;"));
}

#[test]
fn options_answers_204_with_the_allow_of_the_route_table_without_credentials_or_cors() {
    let f = Fake::new();
    for (path, allow) in [
        ("/v1/clients", "GET, HEAD, POST, OPTIONS"),
        ("/v1/clients/abc", "GET, HEAD, PATCH, DELETE, OPTIONS"),
        ("/v1/documents/x/content", "GET, HEAD, PUT, OPTIONS"),
        ("/v1/settings/retention", "GET, HEAD, PUT, OPTIONS"),
        ("/health", "GET, HEAD, OPTIONS"),
    ] {
        let r = f.call(Options, path, &[("origin", "https://app.example")], None);
        assert_eq!((r.status, r.header("allow")), (204, Some(allow)), "{path}");
        assert_eq!(r.body, Body::Empty);
        assert!(
            !r.headers
                .iter()
                .any(|(k, _)| k.starts_with("access-control-")),
            "no account configures CORS: {:?}",
            r.headers
        );
    }
    assert_eq!(f.call(Options, "/v1/nothing", &[], None).status, 404);
}

#[test]
fn if_match_compares_strongly_a_weak_tag_never_matches_and_star_needs_a_live_row() {
    let t = T::new(Role::Member);
    let id = created_id(&t.call(Post, "/v1/clients", Some(client_body())));
    let path = format!("/v1/clients/{id}");
    let patch = |m: &str, surname: &str| {
        t.with(
            Patch,
            &path,
            &[("if-match", m)],
            Some(json!({"surname": surname})),
        )
    };
    assert_eq!(patch("W/\"v1\"", "A").status, 412);
    assert_eq!(patch("\"v9\", W/\"v1\"", "A").status, 412);
    assert_eq!(patch("\"v9\", \"v1\"", "A").status, 200);
    assert_eq!(patch("*", "B").status, 200);
    let del = |m: &str| t.with(Delete, &path, &[("if-match", m)], None);
    assert_eq!(del("W/\"v3\"").status, 412);
    assert_eq!(del("\"v3\"").status, 204);
    // `*` matches a current representation only: the row is gone.
    assert_eq!(patch("*", "C").status, 404);
    // Content uploads compare the same way.
    let client = created_id(&t.call(Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&t.call(
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "identity", "title": "P"})),
    ));
    let put = |m: &str| {
        t.raw(
            Put,
            &format!("/v1/documents/{doc}/content"),
            &[("content-type", "application/pdf"), ("if-match", m)],
            b"%PDF",
        )
    };
    assert_eq!(put("W/\"v1\"").status, 412);
    assert_eq!(put("\"v1\"").status, 200);
}

#[test]
fn every_tenant_response_that_touched_the_shard_carries_a_bookmark_errors_included() {
    let t = T::new(Role::Member);
    let id = created_id(&t.call(Post, "/v1/clients", Some(client_body())));
    let missing = Uuid::from_u128(77);
    let doc = created_id(&t.call(
        Post,
        "/v1/documents",
        Some(json!({"client_id": id, "kind": "identity", "title": "P"})),
    ));
    for (what, r) in [
        ("get", t.call(Get, &format!("/v1/clients/{id}"), None)),
        (
            "404 of a row",
            t.call(Get, &format!("/v1/clients/{missing}"), None),
        ),
        (
            "content 404",
            t.call(Get, &format!("/v1/documents/{doc}/content"), None),
        ),
        ("list", t.call(Get, "/v1/clients", None)),
        (
            "412",
            t.with(
                Patch,
                &format!("/v1/clients/{id}"),
                &[("if-match", "\"v7\"")],
                Some(json!({"surname": "X"})),
            ),
        ),
        (
            "422",
            t.call(
                Post,
                "/v1/documents",
                Some(json!({"client_id": missing, "kind": "identity", "title": "P"})),
            ),
        ),
        (
            "erasure 404",
            t.call(Get, &format!("/v1/erasure-requests/{missing}"), None),
        ),
    ] {
        assert!(
            r.header("x-d1-bookmark")
                .is_some_and(crate::api::tenant::is_bookmark),
            "{what} ({}) has no bookmark: {:?}",
            r.status,
            r.headers
        );
    }
    // Settings are served from the account's route (no shard statement): the bookmark the
    // client sent comes back, so its read-after-write floor is kept.
    let b = t
        .call(Get, "/v1/clients", None)
        .header("x-d1-bookmark")
        .unwrap_or_default()
        .to_string();
    let s = t.with(
        Get,
        "/v1/settings/retention",
        &[("x-d1-bookmark", &b)],
        None,
    );
    assert_eq!(
        (s.status, s.header("x-d1-bookmark")),
        (200, Some(b.as_str()))
    );
    // Without one, each settings GET reads the shard session once for its bookmark.
    let admin = T::new(Role::Admin);
    for path in [
        "/v1/settings/retention",
        "/v1/settings/identity",
        "/v1/settings/cors",
    ] {
        let s = admin.call(Get, path, None);
        assert!(
            s.status == 200
                && s.header("x-d1-bookmark")
                    .is_some_and(crate::api::tenant::is_bookmark),
            "{path}: {} {:?}",
            s.status,
            s.headers
        );
    }
}

fn cursor_of(r: &ApiResponse) -> String {
    r.body_json().unwrap()["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_forged_altered_or_foreign_cursor_is_a_400_and_an_issued_one_pages_on() {
    let t = T::new(Role::Admin);
    for s in ["A", "B", "C"] {
        let mut c = client_body();
        c["surname"] = json!(s);
        created_id(&t.call(Post, "/v1/clients", Some(c)));
    }
    let first = t.call(Get, "/v1/clients?limit=1", None);
    let c = cursor_of(&first);
    assert!(c.contains('.'), "{c}");
    let next = t.call(Get, &format!("/v1/clients?limit=1&cursor={c}"), None);
    assert_eq!(next.status, 200);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (payload, tag) = c.split_once('.').unwrap();
    let mut pos: Value = serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
    pos["id"] = json!(Uuid::from_u128(0).to_string());
    let forged = format!("{}.{tag}", b64.encode(serde_json::to_vec(&pos).unwrap()));
    let unsigned = b64.encode(serde_json::to_vec(&pos).unwrap());
    for bad in [forged, unsigned, "x".into(), format!("{c}x")] {
        let r = t.call(Get, &format!("/v1/clients?limit=1&cursor={bad}"), None);
        assert_eq!(
            (r.status, problem(&r).as_str()),
            (400, "urn:clientdocs:problem:bad-request"),
            "{bad}"
        );
    }
    // Another query: another filter, or another collection.
    let r = t.call(
        Get,
        &format!("/v1/clients?status=active&limit=1&cursor={c}"),
        None,
    );
    assert_eq!(r.status, 400);
    let r = t.call(Get, &format!("/v1/groups?limit=1&cursor={c}"), None);
    assert_eq!(r.status, 400);
    // Another account, same deployment and key.
    let (other, _) = t.f.account("other", None);
    let foreign = format!("Bearer {}", t.f.token(other, Role::Admin));
    let r = t.f.call(
        Get,
        &format!("/v1/clients?limit=1&cursor={c}"),
        &[("authorization", &foreign)],
        None,
    );
    assert_eq!(r.status, 400, "{:?}", r.body_json());
    // The audit list's cursor likewise.
    t.f.drain_queue();
    let a = t.call(Get, "/v1/audit?limit=1", None);
    let ac = cursor_of(&a);
    assert_eq!(
        t.call(Get, &format!("/v1/audit?limit=1&cursor={ac}"), None)
            .status,
        200
    );
    let r = t.f.call(
        Get,
        &format!("/v1/audit?limit=1&cursor={ac}"),
        &[("authorization", &foreign)],
        None,
    );
    assert_eq!(r.status, 400);
    let r = t.call(
        Get,
        &format!("/v1/audit?limit=1&actor_id=x&cursor={ac}"),
        None,
    );
    assert_eq!(r.status, 400);
    let r = t.call(Get, &format!("/v1/audit/export?limit=1&cursor={c}"), None);
    assert_eq!(r.status, 400, "a list cursor is not an audit cursor");
}

#[test]
fn required_names_cannot_be_blank_and_a_duplicate_key_is_a_400() {
    let t = T::new(Role::Admin);
    for blank in ["", "   ", "\t\n", "\u{00a0}"] {
        let mut c = client_body();
        c["surname"] = json!(blank);
        let r = t.call(Post, "/v1/clients", Some(c));
        assert_eq!(r.status, 400, "{blank:?}");
        assert_eq!(r.body_json().unwrap()["errors"][0]["pointer"], "/surname");
        let g = t.call(Post, "/v1/groups", Some(json!({"name": blank})));
        assert_eq!(g.status, 400, "{blank:?}");
    }
    let id = created_id(&t.call(Post, "/v1/clients", Some(client_body())));
    let r = t.call(
        Patch,
        &format!("/v1/clients/{id}"),
        Some(json!({"forenames": " "})),
    );
    assert_eq!(r.status, 400);
    // Optional text may be empty.
    let mut c = client_body();
    c["notes"] = json!("");
    assert_eq!(t.call(Post, "/v1/clients", Some(c)).status, 201);
    let dup =
        br#"{"forenames": "Ada", "surname": "Lovelace", "status": "active", "surname": "King"}"#;
    let r = t.raw(
        Post,
        "/v1/clients",
        &[("content-type", "application/json")],
        dup,
    );
    assert_eq!(r.status, 400);
    let detail = r.body_json().unwrap()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("duplicate key `surname`"), "{detail}");
    let r = t.raw(
        Patch,
        &format!("/v1/clients/{id}"),
        &[("content-type", "application/merge-patch+json")],
        br#"{"address": {"town": "A", "town": "B"}}"#,
    );
    assert_eq!(r.status, 400);
}

#[test]
fn a_reference_to_a_soft_deleted_parent_is_a_422_like_a_missing_one() {
    let t = T::new(Role::Admin);
    let group = created_id(&t.call(Post, "/v1/groups", Some(json!({"name": "Leeds"}))));
    let user = created_id(&t.call(
        Post,
        "/v1/users",
        Some(json!({"email": "a@b.test", "display_name": "A", "role": "member"})),
    ));
    let client = created_id(&t.call(Post, "/v1/clients", Some(client_body())));
    let live = created_id(&t.call(Post, "/v1/clients", Some(client_body())));
    for p in [
        format!("/v1/groups/{group}"),
        format!("/v1/users/{user}"),
        format!("/v1/clients/{client}"),
    ] {
        assert_eq!(t.call(Delete, &p, None).status, 204, "{p}");
    }
    let mut in_group = client_body();
    in_group["group_id"] = json!(group);
    let mut with_adviser = client_body();
    with_adviser["adviser_id"] = json!(user);
    for (what, path, body) in [
        ("client in a deleted group", "/v1/clients", in_group),
        ("client with a deleted adviser", "/v1/clients", with_adviser),
        (
            "user in a deleted group",
            "/v1/users",
            json!({"email": "c@b.test", "display_name": "C", "role": "member", "group_id": group}),
        ),
        (
            "document of a deleted client",
            "/v1/documents",
            json!({"client_id": client, "kind": "identity", "title": "P"}),
        ),
    ] {
        let r = t.call(Post, path, Some(body));
        assert_eq!(r.status, 422, "{what}: {:?}", r.body_json());
        assert_eq!(
            problem(&r),
            "urn:clientdocs:problem:unprocessable",
            "{what}"
        );
    }
    let r = t.call(
        Patch,
        &format!("/v1/clients/{live}"),
        Some(json!({"group_id": group})),
    );
    assert_eq!(r.status, 422, "a patch onto a deleted parent");
    let missing = Uuid::from_u128(5);
    let r = t.call(
        Patch,
        &format!("/v1/clients/{live}"),
        Some(json!({"adviser_id": missing})),
    );
    assert_eq!(r.status, 422, "a patch onto a missing parent");
}

#[test]
fn uuids_in_any_case_are_accepted_in_bodies_and_filters_and_stored_lower_case() {
    let t = T::new(Role::Admin);
    let group = created_id(&t.call(Post, "/v1/groups", Some(json!({"name": "Leeds"}))));
    let upper = group.to_ascii_uppercase();
    let mut c = client_body();
    c["group_id"] = json!(upper);
    let r = t.call(Post, "/v1/clients", Some(c));
    assert_eq!(r.status, 201, "{:?}", r.body_json());
    assert_eq!(r.body_json().unwrap()["group_id"], json!(group));
    let id = created_id(&r);
    let doc = t.call(
        Post,
        "/v1/documents",
        Some(json!({"client_id": id.to_ascii_uppercase(), "kind": "identity", "title": "P"})),
    );
    assert_eq!(doc.status, 201);
    assert_eq!(doc.body_json().unwrap()["client_id"], json!(id));
    let listed = t.call(Get, &format!("/v1/clients?group_id={upper}"), None);
    assert_eq!(listed.body_json().unwrap()["items"][0]["id"], json!(id));
    let other = created_id(&t.call(Post, "/v1/clients", Some(client_body())));
    let r = t.call(
        Patch,
        &format!("/v1/clients/{other}"),
        Some(json!({"group_id": upper})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body_json().unwrap()["group_id"], json!(group));
    let e = t.call(
        Post,
        "/v1/erasure-requests",
        Some(json!({"subject_type": "client", "subject_id": other.to_ascii_uppercase()})),
    );
    assert_eq!(e.status, 202, "{:?}", e.body_json());
    assert_eq!(e.body_json().unwrap()["subject_id"], json!(other));
}

#[test]
fn a_content_types_parameters_are_kept_and_served_back_and_malformed_ones_refused() {
    let t = T::new(Role::Member);
    let client = created_id(&t.call(Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&t.call(
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "correspondence", "title": "Letter"})),
    ));
    let path = format!("/v1/documents/{doc}/content");
    for (sent, kept) in [
        (
            "text/plain; charset=ISO-8859-1",
            "text/plain; charset=ISO-8859-1",
        ),
        (
            "Text/CSV;Charset=\"utf-8\" ; header=present",
            "text/csv; charset=\"utf-8\"; header=present",
        ),
        ("application/pdf", "application/pdf"),
    ] {
        let r = t.raw(Put, &path, &[("content-type", sent)], b"data");
        assert_eq!(r.status, 200, "{sent}: {:?}", r.body_json());
        assert_eq!(r.body_json().unwrap()["content_type"], json!(kept));
        assert_eq!(
            t.call(Get, &path, None).header("content-type"),
            Some(kept),
            "{sent}"
        );
        let d = t.call(Get, &format!("/v1/documents/{doc}"), None);
        assert_eq!(
            d.body_json().unwrap()["content"]["content_type"],
            json!(kept)
        );
    }
    for bad in [
        "text/plain; charset",
        "text/plain; a b=c",
        "text/plain; x=\"\u{7f}\"",
        "text/html; charset=utf-8",
    ] {
        let r = t.raw(Put, &path, &[("content-type", bad)], b"data");
        assert_eq!(r.status, 415, "{bad}");
    }
}

#[test]
fn an_idempotency_key_compares_canonical_json_per_account_and_route_and_a_deleted_result_is_410() {
    let t = T::new(Role::Admin);
    let post = |path: &str, auth: &str, body: &[u8]| {
        raw(
            &t.f,
            Post,
            path,
            &[
                ("authorization", auth),
                ("content-type", "application/json"),
                ("idempotency-key", "k-1"),
            ],
            body,
        )
    };
    let first = post(
        "/v1/clients",
        &t.auth,
        br#"{"forenames":"Ada","surname":"Lovelace","status":"active"}"#,
    );
    let id = created_id(&first);
    let same = post(
        "/v1/clients/",
        &t.auth,
        b"{ \"status\" : \"active\",\n  \"surname\": \"Lovelace\", \"forenames\": \"Ada\" }",
    );
    assert_eq!(same.status, 201, "{:?}", same.body_json());
    assert_eq!(same.header("idempotent-replayed"), Some("true"));
    assert_eq!(created_id(&same), id);
    let other = post(
        "/v1/clients",
        &t.auth,
        br#"{"forenames":"Ada","surname":"King","status":"active"}"#,
    );
    assert_eq!(other.status, 422);
    // The same key on another route, or in another account, is another key.
    let g = post("/v1/groups", &t.auth, br#"{"name":"x"}"#);
    assert_eq!((g.status, g.header("idempotent-replayed")), (201, None));
    let (acct2, _) = t.f.account("beta", None);
    let auth2 = format!("Bearer {}", t.f.token(acct2, Role::Admin));
    let elsewhere = post(
        "/v1/clients",
        &auth2,
        br#"{"forenames":"Ada","surname":"Lovelace","status":"active"}"#,
    );
    assert_eq!(elsewhere.status, 201);
    assert_eq!(elsewhere.header("idempotent-replayed"), None);
    assert_ne!(created_id(&elsewhere), id);
    // The created row is deleted: the replay says so.
    assert_eq!(
        t.call(Delete, &format!("/v1/clients/{id}"), None).status,
        204
    );
    let gone = post(
        "/v1/clients",
        &t.auth,
        br#"{"forenames":"Ada","surname":"Lovelace","status":"active"}"#,
    );
    assert_eq!(gone.status, 410);
    assert_eq!(problem(&gone), "urn:clientdocs:problem:resource-gone");
}
