//! HTTP semantics on workerd (issue 14 item 3): HEAD and OPTIONS through the real runtime, a
//! content type's parameters through R2, the bookmark on every tenant response, the 401
//! challenge, and cursors MAC'd with the Worker's CURSOR_SECRET.

use integration_tests::*;
use serde_json::json;

pub const TESTS: &[NamedTest] = &[
    (
        "head_on_get_routes_has_the_gets_headers_and_length_and_no_body",
        head_routes,
    ),
    (
        "options_answers_204_with_allow_and_cors_only_for_an_accounts_allowed_origin",
        options_allow,
    ),
    (
        "a_charset_sent_with_content_comes_back_on_download",
        content_charset,
    ),
    (
        "tenant_responses_that_read_d1_carry_a_bookmark_404s_included",
        bookmarks_everywhere,
    ),
    (
        "a_401_carries_a_bearer_challenge_and_a_tampered_cursor_is_a_400",
        challenge_and_cursor,
    ),
];

fn id_of(r: &Reply) -> String {
    r.json()["id"].as_str().unwrap_or_default().to_string()
}

/// A client with a document whose content is `body` as `content_type`: (client, document).
fn document_with_content(
    env: &Env,
    t: &TestTenant,
    content_type: &str,
    body: &[u8],
) -> Result<(String, String), String> {
    let c = env.call(
        t,
        &t.admin,
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "H", "surname": "Ead", "status": "active"})),
        &[],
    )?;
    expect_status(&c, 201, "create client")?;
    let d = env.call(
        t,
        &t.admin,
        "POST",
        "/v1/documents",
        Some(&json!({"client_id": id_of(&c), "kind": "correspondence", "title": "Letter"})),
        &[],
    )?;
    expect_status(&d, 201, "create document")?;
    let doc = id_of(&d);
    let bearer = format!("Bearer {}", t.admin);
    let mut h = vec![
        ("content-type", content_type),
        ("authorization", bearer.as_str()),
    ];
    if let Some(host) = &t.host {
        h.push(("host", host));
    }
    let u = env.client.send(
        "PUT",
        &format!("/v1/documents/{doc}/content"),
        &h,
        Some(body),
    )?;
    expect_status(&u, 200, "upload")?;
    Ok((id_of(&c), doc))
}

fn head_routes(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let (client, doc) = document_with_content(env, &t, "text/plain; charset=utf-8", b"hello head")?;
    // The consumer derives `document_count` after the document's event: wait for it, so the
    // GET and the HEAD below read the same version of the client.
    poll(
        "the client's document count",
        std::time::Duration::from_secs(20),
        || {
            let r = env.call(
                &t,
                &t.admin,
                "GET",
                &format!("/v1/clients/{client}"),
                None,
                &[],
            )?;
            Ok((r.json()["document_count"].as_i64() == Some(1)).then_some(()))
        },
    )?;
    for path in [
        "/v1/clients".to_string(),
        format!("/v1/clients/{client}"),
        format!("/v1/documents/{doc}"),
        format!("/v1/documents/{doc}/content"),
        "/v1/settings/retention".into(),
        "/v1/audit".into(),
        "/health".into(),
    ] {
        let get = env.call(&t, &t.admin, "GET", &path, None, &[])?;
        let head = env.call(&t, &t.admin, "HEAD", &path, None, &[])?;
        ensure(
            head.status == get.status && head.body.is_empty(),
            format!(
                "HEAD {path}: {} with {} bytes",
                head.status,
                head.body.len()
            ),
        )?;
        ensure(
            head.header("content-length") == Some(get.body.len().to_string().as_str()),
            format!(
                "HEAD {path}: content-length {:?}, the GET sent {} bytes",
                head.header("content-length"),
                get.body.len()
            ),
        )?;
        for h in ["content-type", "etag"] {
            ensure(
                head.header(h) == get.header(h),
                format!(
                    "HEAD {path}: {h} {:?} vs GET {:?}",
                    head.header(h),
                    get.header(h)
                ),
            )?;
        }
    }
    let head = env.call(&t, &t.admin, "HEAD", "/v1/audit/export", None, &[])?;
    ensure(
        head.status == 200
            && head.body.is_empty()
            && head.header("content-type") == Some("application/x-ndjson"),
        format!("HEAD of the export: {} {:?}", head.status, head.headers),
    )
}

fn options_allow(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let mut h = vec![
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
    ];
    if let Some(host) = &t.host {
        h.push(("host", host));
    }
    for (path, allow) in [
        ("/v1/clients", "GET, HEAD, POST, OPTIONS"),
        ("/v1/documents/x/content", "GET, HEAD, PUT, OPTIONS"),
        ("/health", "GET, HEAD, OPTIONS"),
    ] {
        let r = env.client.send("OPTIONS", path, &h, None)?;
        ensure(
            r.status == 204 && r.header("allow") == Some(allow),
            format!("OPTIONS {path}: {} allow {:?}", r.status, r.header("allow")),
        )?;
        ensure(
            !r.headers
                .iter()
                .any(|(k, _)| k.starts_with("access-control-")),
            format!(
                "OPTIONS {path}: CORS headers without CORS configured: {:?}",
                r.headers
            ),
        )?;
    }
    let r = env.client.send("OPTIONS", "/v1/nothing", &h, None)?;
    expect_status(&r, 404, "OPTIONS of a path no route serves")?;
    // An account that allows its web app's origin: preflights and answers on its own domain
    // carry CORS headers for that origin alone.
    let domain = format!("{}.cors.localhost", t.id);
    let r = env.admin(
        "POST",
        &format!("/admin/v1/accounts/{}/domains", t.id),
        Some(&json!({"hostname": domain})),
    )?;
    expect_status(&r, 201, "add a custom domain")?;
    let r = env.call(
        &t,
        &t.admin,
        "PUT",
        "/v1/settings/cors",
        Some(&json!({"allowed_origins": ["https://app.example"]})),
        &[],
    )?;
    expect_status(&r, 200, "PUT /v1/settings/cors")?;
    let pre = |origin: &str| {
        env.client.send(
            "OPTIONS",
            "/v1/clients",
            &[
                ("host", domain.as_str()),
                ("origin", origin),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
            None,
        )
    };
    let ok = pre("https://app.example")?;
    ensure(
        ok.status == 204
            && ok.header("access-control-allow-origin") == Some("https://app.example")
            && ok.header("access-control-allow-methods") == Some("GET, HEAD, POST, OPTIONS"),
        format!(
            "preflight from the allowed origin: {} {:?}",
            ok.status, ok.headers
        ),
    )?;
    let other = pre("https://evil.example")?;
    ensure(
        other.header("access-control-allow-origin").is_none(),
        format!("preflight from another origin: {:?}", other.headers),
    )?;
    let bearer = format!("Bearer {}", t.admin);
    let get = env.client.send(
        "GET",
        "/v1/clients",
        &[
            ("host", domain.as_str()),
            ("origin", "https://app.example"),
            ("authorization", bearer.as_str()),
        ],
        None,
    )?;
    ensure(
        get.status == 200
            && get.header("access-control-allow-origin") == Some("https://app.example")
            && get
                .header("access-control-expose-headers")
                .is_some_and(|h| h.contains("x-d1-bookmark")),
        format!(
            "GET from the allowed origin: {} {:?}",
            get.status, get.headers
        ),
    )
}

fn content_charset(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let (_, doc) = document_with_content(env, &t, "text/plain; charset=ISO-8859-1", b"caf\xe9")?;
    let g = env.call(
        &t,
        &t.admin,
        "GET",
        &format!("/v1/documents/{doc}/content"),
        None,
        &[],
    )?;
    expect_status(&g, 200, "download")?;
    ensure(
        g.header("content-type") == Some("text/plain; charset=ISO-8859-1") && g.body == b"caf\xe9",
        format!("download: {:?} {:?}", g.header("content-type"), g.body),
    )
}

fn bookmarks_everywhere(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let (client, doc) = document_with_content(env, &t, "application/pdf", b"%PDF-1.7")?;
    let d = env.call(
        &t,
        &t.admin,
        "POST",
        "/v1/documents",
        Some(&json!({"client_id": client, "kind": "identity", "title": "Empty"})),
        &[],
    )?;
    let empty = id_of(&d);
    let missing = "00000000-0000-4000-8000-000000000077";
    for (what, method, path) in [
        ("a GET", "GET", format!("/v1/clients/{client}")),
        ("a 404 of a row", "GET", format!("/v1/clients/{missing}")),
        (
            "a content GET",
            "GET",
            format!("/v1/documents/{doc}/content"),
        ),
        (
            "a content 404",
            "GET",
            format!("/v1/documents/{empty}/content"),
        ),
        (
            "an erasure 404",
            "GET",
            format!("/v1/erasure-requests/{missing}"),
        ),
        ("a list", "GET", "/v1/documents".into()),
        (
            "the retention settings",
            "GET",
            "/v1/settings/retention".into(),
        ),
        ("the CORS settings", "GET", "/v1/settings/cors".into()),
    ] {
        let r = env.call(&t, &t.admin, method, &path, None, &[])?;
        ensure(
            r.header("x-d1-bookmark").is_some_and(|b| !b.is_empty()),
            format!(
                "{what} ({} {path}, {}) has no x-d1-bookmark",
                method, r.status
            ),
        )?;
    }
    let b = env
        .call(&t, &t.admin, "GET", "/v1/documents", None, &[])?
        .header("x-d1-bookmark")
        .unwrap_or_default()
        .to_string();
    let s = env.call(
        &t,
        &t.admin,
        "GET",
        "/v1/settings/retention",
        None,
        &[("x-d1-bookmark", &b)],
    )?;
    ensure(
        s.header("x-d1-bookmark") == Some(b.as_str()),
        format!(
            "settings echo the bookmark sent: {:?}",
            s.header("x-d1-bookmark")
        ),
    )
}

fn challenge_and_cursor(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let mut h = vec![];
    if let Some(host) = &t.host {
        h.push(("host", host.as_str()));
    }
    let r = env.client.send("GET", "/v1/clients", &h, None)?;
    ensure(
        r.status == 401
            && r.header("www-authenticate").is_some_and(|c| {
                c.starts_with("Bearer ") && c.contains("error=\"invalid_request\"")
            }),
        format!("no token: {} {:?}", r.status, r.header("www-authenticate")),
    )?;
    let r = env.call(&t, "not.a.jwt", "GET", "/v1/clients", None, &[])?;
    ensure(
        r.status == 401
            && r.header("www-authenticate")
                .is_some_and(|c| c.contains("error=\"invalid_token\"")),
        format!("bad token: {} {:?}", r.status, r.header("www-authenticate")),
    )?;
    for s in ["A", "B"] {
        let c = env.call(
            &t,
            &t.admin,
            "POST",
            "/v1/clients",
            Some(&json!({"forenames": "C", "surname": s, "status": "active"})),
            &[],
        )?;
        expect_status(&c, 201, "create client")?;
    }
    let first = env.call(&t, &t.admin, "GET", "/v1/clients?limit=1", None, &[])?;
    let cursor = first.json()["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let next = env.call(
        &t,
        &t.admin,
        "GET",
        &format!("/v1/clients?limit=1&cursor={cursor}"),
        None,
        &[],
    )?;
    expect_status(&next, 200, "the issued cursor")?;
    let (payload, _) = cursor
        .split_once('.')
        .ok_or(format!("cursor without a MAC: {cursor}"))?;
    let tampered = format!("{payload}.AAAA");
    let r = env.call(
        &t,
        &t.admin,
        "GET",
        &format!("/v1/clients?limit=1&cursor={tampered}"),
        None,
        &[],
    )?;
    expect_status(&r, 400, "a tampered cursor")
}
