//! The API on the local runtime: routing, auth, tenant isolation, errors, concurrency control.

use integration_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

pub const TESTS: &[NamedTest] = &[
    ("health_answers_without_auth", health),
    (
        "rejects_missing_and_forged_tokens_with_problem_json",
        rejects_bad_tokens,
    ),
    (
        "token_for_tenant_a_never_reaches_tenant_b_rows_on_one_shard",
        isolation_same_shard,
    ),
    (
        "token_for_tenant_a_never_reaches_tenant_b_rows_across_shards",
        isolation_across_shards,
    ),
    (
        "dedicated_tenant_on_shared_deployment_gets_421_naming_its_deployment",
        misdirected,
    ),
    (
        "deactivated_tenant_gets_403_and_reactivation_restores_access",
        inactive,
    ),
    ("readonly_role_never_writes", readonly),
    (
        "invalid_body_is_a_400_listing_fields_and_writes_nothing",
        invalid_body,
    ),
    (
        "filter_without_index_is_a_400_listing_allowed_filters",
        unindexed_filter,
    ),
    ("if_match_mismatch_is_412_and_match_updates", if_match),
    (
        "idempotency_key_replays_and_rejects_other_body",
        idempotency,
    ),
    ("list_pages_with_opaque_cursor", pagination),
    ("document_content_round_trips_through_r2", content),
    (
        "unknown_http_method_is_405_not_served_as_get",
        unknown_method,
    ),
    (
        "a_get_after_an_update_never_returns_the_old_version",
        get_after_update,
    ),
    (
        "every_entity_supports_create_get_patch_list_and_soft_delete",
        crud_every_entity,
    ),
    (
        "chunked_body_over_the_limit_is_413_without_content_length",
        chunked_over_limit,
    ),
    (
        "local_responses_report_their_d1_cost_and_a_write_is_one_batch_plus_one_follow_up",
        d1_cost_header,
    ),
    (
        "a_request_is_logged_as_one_json_line_with_its_request_id",
        request_logged,
    ),
];

fn health(env: &Env) -> TestResult {
    let r = env.client.send("GET", "/health", &[], None)?;
    expect_status(&r, 200, "health")
}

fn rejects_bad_tokens(env: &Env) -> TestResult {
    let r = env.client.send("GET", "/v1/clients", &[], None)?;
    expect_status(&r, 401, "no token")?;
    ensure(is_problem(&r), format!("problem+json: {}", r.text()))?;
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    let r = env
        .client
        .json("GET", "/v1/clients", Some(forged), None, &[])?;
    expect_status(&r, 401, "forged token")
}

fn make_client(env: &Env, t: &TestTenant, surname: &str) -> Result<String, String> {
    let r = env.call(
        t,
        &t.member,
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "A", "surname": surname, "status": "active"})),
        &[],
    )?;
    expect_status(&r, 201, "create client")?;
    Ok(r.json()["id"].as_str().unwrap_or_default().to_string())
}

fn check_isolation(env: &Env, a: &TestTenant, b: &TestTenant) -> TestResult {
    let b_client = make_client(env, b, "Secret")?;
    let path = format!("/v1/clients/{b_client}");
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"surname": "Stolen"}))),
        ("DELETE", None),
    ] {
        let r = env.call(a, &a.admin, method, &path, body.as_ref(), &[])?;
        expect_status(&r, 404, &format!("{method} another tenant's client"))?;
    }
    let list = env.call(a, &a.admin, "GET", "/v1/clients?limit=200", None, &[])?;
    expect_status(&list, 200, "list")?;
    ensure(
        !list.text().contains(&b_client),
        "another tenant's row is never listed",
    )?;
    // B's row is untouched.
    let r = env.call(b, &b.admin, "GET", &path, None, &[])?;
    expect_status(&r, 200, "owner still reads it")?;
    ensure(
        r.json()["surname"] == "Secret" && r.json()["version"] == 1,
        "owner's row unchanged",
    )
}

fn isolation_same_shard(env: &Env) -> TestResult {
    let a = env.tenant(Some("shard-eu-01"))?;
    let b = env
        .tenant(Some("shard-eu-01"))
        .or_else(|_| env.tenant(None))?;
    ensure(
        a.shard == b.shard || b.shard.starts_with("shard-eu"),
        "setup",
    )?;
    check_isolation(env, &a, &b)
}

fn isolation_across_shards(env: &Env) -> TestResult {
    let a = env.tenant(None)?;
    let b = env.tenant(Some("shard-ded-01"))?;
    ensure(a.shard != b.shard, "different shards")?;
    check_isolation(env, &a, &b)?;
    check_isolation(env, &b, &a)
}

fn misdirected(env: &Env) -> TestResult {
    let mut t = env.tenant(Some("shard-ded-01"))?;
    t.host = None; // reach the shared deployment
    let r = env.call(&t, &t.admin, "GET", "/v1/clients", None, &[])?;
    expect_status(&r, 421, "misdirected")?;
    ensure(
        r.json()["deployment"] == "clientdocs-api-ded-01",
        format!("names the deployment: {}", r.text()),
    )
}

fn inactive(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let r = env.admin(
        "POST",
        &format!("/admin/v1/accounts/{}/deactivate", t.id),
        None,
    )?;
    expect_status(&r, 200, "deactivate")?;
    // The operator Worker is another isolate: an account change reaches the API's isolates
    // within ACCOUNT_CHECK_INTERVAL (5 s), so both directions are awaited with a deadline.
    let status_within = |want: u16, what: &str| {
        poll(what, Duration::from_secs(10), || {
            let r = env.call(&t, &t.admin, "GET", "/v1/clients", None, &[])?;
            Ok((r.status == want).then_some(()))
        })
    };
    status_within(403, "inactive tenant: 403")?;
    let r = env.admin(
        "POST",
        &format!("/admin/v1/accounts/{}/reactivate", t.id),
        None,
    )?;
    expect_status(&r, 200, "reactivate")?;
    status_within(200, "reactivated tenant: 200")
}

fn readonly(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let r = env.call(
        &t,
        &t.readonly,
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "A", "surname": "B", "status": "active"})),
        &[],
    )?;
    expect_status(&r, 403, "readonly create")?;
    let r = env.call(
        &t,
        &t.member,
        "POST",
        "/v1/groups",
        Some(&json!({"name": "Team"})),
        &[],
    )?;
    expect_status(&r, 403, "member creates a group")?;
    let r = env.call(&t, &t.readonly, "GET", "/v1/clients", None, &[])?;
    expect_status(&r, 200, "readonly reads")?;
    ensure(
        r.json()["items"].as_array().is_some_and(|a| a.is_empty()),
        "nothing was written",
    )
}

fn invalid_body(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let r = env.call(
        &t,
        &t.member,
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "A", "surnmae": "B", "status": "vip"})),
        &[],
    )?;
    expect_status(&r, 400, "invalid client")?;
    ensure(is_problem(&r), "problem+json")?;
    let ptrs: Vec<String> = r.json()["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["pointer"].as_str().map(str::to_owned))
        .collect();
    for p in ["/surnmae", "/status", "/surname"] {
        ensure(
            ptrs.iter().any(|x| x == p),
            format!("{p} reported in {ptrs:?}"),
        )?;
    }
    let r = env.call(&t, &t.member, "POST", "/v1/clients", Some(&json!({"forenames": "A", "surname": "B", "status": "active", "group_id": "00000000-0000-4000-8000-000000000000"})), &[])?;
    expect_status(&r, 422, "unknown group id")?;
    let list = env
        .call(&t, &t.member, "GET", "/v1/clients", None, &[])?
        .json();
    ensure(
        list["items"].as_array().is_some_and(|a| a.is_empty()),
        "bad input wrote nothing",
    )
}

fn unindexed_filter(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let r = env.call(&t, &t.member, "GET", "/v1/clients?forenames=Ada", None, &[])?;
    expect_status(&r, 400, "unindexed filter")?;
    let allowed = r.json()["allowed_filters"].clone();
    ensure(
        allowed
            == json!([
                "status",
                "group_id",
                "adviser_id",
                "surname_prefix",
                "search_prefix"
            ]),
        format!("allowed: {allowed}"),
    )?;
    let r = env.call(&t, &t.member, "GET", "/v1/clients?status=active", None, &[])?;
    expect_status(&r, 200, "indexed filter")
}

fn if_match(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let id = make_client(env, &t, "Match")?;
    let path = format!("/v1/clients/{id}");
    let r = env.call(
        &t,
        &t.member,
        "PATCH",
        &path,
        Some(&json!({"surname": "X"})),
        &[("if-match", "\"v9\"")],
    )?;
    expect_status(&r, 412, "stale If-Match")?;
    let r = env.call(
        &t,
        &t.member,
        "PATCH",
        &path,
        Some(&json!({"surname": "Y"})),
        &[("if-match", "\"v1\"")],
    )?;
    expect_status(&r, 200, "current If-Match")?;
    ensure(
        r.header("etag") == Some("\"v2\"") && r.json()["surname"] == "Y",
        "new version",
    )?;
    let bm = r.header("x-d1-bookmark").unwrap_or_default().to_string();
    let g = env.call(
        &t,
        &t.readonly,
        "GET",
        &path,
        None,
        &[("x-d1-bookmark", &bm)],
    )?;
    ensure(g.json()["version"] == 2, "read-after-write sees the update")?;
    let r = env.call(
        &t,
        &t.member,
        "DELETE",
        &path,
        None,
        &[("if-match", "\"v1\"")],
    )?;
    expect_status(&r, 412, "stale delete")?;
    let r = env.call(
        &t,
        &t.member,
        "DELETE",
        &path,
        None,
        &[("if-match", "\"v2\"")],
    )?;
    expect_status(&r, 204, "delete")?;
    let g = env.call(&t, &t.readonly, "GET", &path, None, &[])?;
    expect_status(&g, 404, "deleted")
}

fn idempotency(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let body = json!({"forenames": "I", "surname": "Dem", "status": "prospect"});
    let a = env.call(
        &t,
        &t.member,
        "POST",
        "/v1/clients",
        Some(&body),
        &[("idempotency-key", "k1")],
    )?;
    expect_status(&a, 201, "first")?;
    let b = env.call(
        &t,
        &t.member,
        "POST",
        "/v1/clients",
        Some(&body),
        &[("idempotency-key", "k1")],
    )?;
    expect_status(&b, 201, "replay")?;
    ensure(a.json()["id"] == b.json()["id"], "same result")?;
    let c = env.call(
        &t,
        &t.member,
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "Other", "surname": "Dem", "status": "prospect"})),
        &[("idempotency-key", "k1")],
    )?;
    expect_status(&c, 422, "same key, other body")?;
    let list = env
        .call(&t, &t.member, "GET", "/v1/clients", None, &[])?
        .json();
    ensure(
        list["items"].as_array().map(Vec::len) == Some(1),
        "one client written",
    )
}

fn pagination(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    for i in 0..5 {
        make_client(env, &t, &format!("Page{i}"))?;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/clients?limit=2".to_string();
    for _ in 0..5 {
        let r = env.call(&t, &t.member, "GET", &path, None, &[])?;
        expect_status(&r, 200, "page")?;
        let j = r.json();
        for it in j["items"].as_array().cloned().unwrap_or_default() {
            seen.push(it["surname"].as_str().unwrap_or_default().to_string());
        }
        match j["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/clients?limit=2&cursor={c}"),
            None => break,
        }
    }
    ensure(
        seen == ["Page0", "Page1", "Page2", "Page3", "Page4"],
        format!("every row once, in order: {seen:?}"),
    )?;
    let r = env.call(&t, &t.member, "GET", "/v1/clients?limit=201", None, &[])?;
    expect_status(&r, 400, "limit above 200")
}

fn content(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let client = make_client(env, &t, "Doc")?;
    let r = env.call(
        &t,
        &t.member,
        "POST",
        "/v1/documents",
        Some(&json!({"client_id": client, "kind": "identity", "title": "Passport"})),
        &[],
    )?;
    expect_status(&r, 201, "create document")?;
    let id = r.json()["id"].as_str().unwrap_or_default().to_string();
    let bytes = b"%PDF-1.7 pretend passport scan";
    let bearer = format!("Bearer {}", t.member);
    let r = env.client.send(
        "PUT",
        &format!("/v1/documents/{id}/content"),
        &[
            ("authorization", &bearer),
            ("content-type", "application/pdf"),
        ],
        Some(bytes),
    )?;
    expect_status(&r, 200, "upload")?;
    ensure(
        r.json()["size"] == bytes.len()
            && r.json()["sha256"].as_str().is_some_and(|s| s.len() == 64),
        "metadata recorded",
    )?;
    let g = env.client.send(
        "GET",
        &format!("/v1/documents/{id}/content"),
        &[("authorization", &bearer)],
        None,
    )?;
    expect_status(&g, 200, "download")?;
    ensure(
        g.body == bytes && g.header("content-type") == Some("application/pdf"),
        "same bytes and type",
    )?;
    // Another tenant cannot read it.
    let other = env.tenant(None)?;
    let g = env.client.send(
        "GET",
        &format!("/v1/documents/{id}/content"),
        &[("authorization", &format!("Bearer {}", other.admin))],
        None,
    )?;
    expect_status(&g, 404, "other tenant")
}

fn unknown_method(env: &Env) -> TestResult {
    // Raw HTTP: client libraries refuse non-standard methods.
    use std::io::{Read, Write};
    let addr = env.client.base.trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        sock,
        "QUERY /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    sock.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let head = resp.to_ascii_lowercase();
    ensure(
        head.starts_with("http/1.1 405"),
        format!("QUERY /health: {}", resp.lines().next().unwrap_or("")),
    )?;
    ensure(
        head.contains("\r\nallow: get, head, options\r\n"),
        "Allow header",
    )
}

fn get_after_update(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let id = make_client(env, &t, "V0")?;
    let path = format!("/v1/clients/{id}");
    for i in 1..=5 {
        // Warm the read cache with the current version, then change it.
        expect_status(
            &env.call(&t, &t.member, "GET", &path, None, &[])?,
            200,
            "warm",
        )?;
        expect_status(
            &env.call(&t, &t.member, "GET", &path, None, &[])?,
            200,
            "warm",
        )?;
        let r = env.call(
            &t,
            &t.member,
            "PATCH",
            &path,
            Some(&json!({"surname": format!("V{i}")})),
            &[],
        )?;
        expect_status(&r, 200, "update")?;
        let g = env.call(&t, &t.member, "GET", &path, None, &[])?;
        let got = g.json();
        ensure(
            got["surname"] == format!("V{i}") && got["version"] == i + 1,
            format!("after update {i}: {got}"),
        )?;
    }
    Ok(())
}

fn crud_every_entity(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let group = env.call(
        &t,
        &t.admin,
        "POST",
        "/v1/groups",
        Some(&json!({"name": "Ops"})),
        &[],
    )?;
    expect_status(&group, 201, "group")?;
    let gid = group.json()["id"].as_str().unwrap_or_default().to_string();
    let client = make_client(env, &t, "Crud")?;
    let cases = [
        (
            "groups",
            json!({"name": "Team A"}),
            json!({"description": "north"}),
            "name_prefix=team",
        ),
        (
            "users",
            json!({"email": "u1@x.example", "display_name": "U One", "role": "member", "group_id": gid}),
            json!({"role": "readonly"}),
            "role=readonly",
        ),
        (
            "clients",
            json!({"forenames": "C", "surname": "Two", "status": "prospect"}),
            json!({"status": "active"}),
            "status=active",
        ),
        (
            "documents",
            json!({"client_id": client, "kind": "fact_find", "title": "FF"}),
            json!({"title": "Fact find"}),
            "kind=fact_find",
        ),
    ];
    for (table, create, patch, filter) in cases {
        let r = env.call(
            &t,
            &t.admin,
            "POST",
            &format!("/v1/{table}"),
            Some(&create),
            &[],
        )?;
        expect_status(&r, 201, &format!("create {table}"))?;
        let id = r.json()["id"].as_str().unwrap_or_default().to_string();
        ensure(
            r.header("location") == Some(format!("/v1/{table}/{id}").as_str()),
            format!("{table} Location"),
        )?;
        let path = format!("/v1/{table}/{id}");
        expect_status(
            &env.call(&t, &t.readonly, "GET", &path, None, &[])?,
            200,
            &format!("get {table}"),
        )?;
        let p = env.call(
            &t,
            &t.admin,
            "PATCH",
            &path,
            Some(&patch),
            &[("if-match", "\"v1\"")],
        )?;
        expect_status(&p, 200, &format!("patch {table}"))?;
        let l = env.call(
            &t,
            &t.readonly,
            "GET",
            &format!("/v1/{table}?{filter}"),
            None,
            &[],
        )?;
        expect_status(&l, 200, &format!("list {table}"))?;
        ensure(
            l.text().contains(&id),
            format!("{table} filter {filter} finds the patched row"),
        )?;
        expect_status(
            &env.call(&t, &t.admin, "DELETE", &path, None, &[])?,
            204,
            &format!("delete {table}"),
        )?;
        expect_status(
            &env.call(&t, &t.readonly, "GET", &path, None, &[])?,
            404,
            &format!("deleted {table}"),
        )?;
    }
    // Emails are unique per account among live users.
    let u = json!({"email": "dup@x.example", "display_name": "D", "role": "member"});
    expect_status(
        &env.call(&t, &t.admin, "POST", "/v1/users", Some(&u), &[])?,
        201,
        "first user",
    )?;
    expect_status(
        &env.call(&t, &t.admin, "POST", "/v1/users", Some(&u), &[])?,
        409,
        "duplicate email",
    )
}

fn chunked_over_limit(env: &Env) -> TestResult {
    use std::io::{Read, Write};
    let t = env.tenant(None)?;
    let addr = env.client.base.trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let body = format!(
        "{{\"forenames\":\"A\",\"surname\":\"B\",\"status\":\"active\",\"notes\":\"{}\"}}",
        "x".repeat(300_000)
    );
    write!(
        sock,
        "POST /v1/clients HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        t.member,
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    sock.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    ensure(
        resp.starts_with("HTTP/1.1 413"),
        format!("chunked 300 KB: {}", resp.lines().next().unwrap_or("")),
    )?;
    let list = env.call(&t, &t.member, "GET", "/v1/clients", None, &[])?;
    ensure(
        list.json()["items"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "nothing written",
    )
}

fn d1_cost(r: &Reply) -> Result<std::collections::BTreeMap<String, u64>, String> {
    let h = r
        .header("x-d1-cost")
        .ok_or_else(|| format!("no x-d1-cost header ({})", r.status))?;
    h.split(';')
        .map(|kv| {
            let (k, v) = kv.split_once('=').ok_or(format!("bad pair in {h}"))?;
            Ok((
                k.to_string(),
                v.parse::<u64>().map_err(|e| format!("{h}: {e}"))?,
            ))
        })
        .collect()
}

fn d1_cost_header(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let created = env.call(
        &t,
        &t.member,
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "Cost", "surname": "Meter", "status": "active"})),
        &[],
    )?;
    expect_status(&created, 201, "create")?;
    let c = d1_cost(&created)?;
    // One atomic batch (row + outbox), then one small follow-up marking the event published.
    ensure(
        c["calls"] <= 2 && c["rows_written"] >= 2,
        format!("a write: {c:?}"),
    )?;
    let id = created.json()["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let got = env.call(
        &t,
        &t.member,
        "GET",
        &format!("/v1/clients/{id}"),
        None,
        &[],
    )?;
    expect_status(&got, 200, "get")?;
    let g = d1_cost(&got)?;
    ensure(
        g["rows_written"] == 0 && g["rows_read"] >= 1 && g["calls"] <= 2,
        format!("a get by id: {g:?}"),
    )?;
    let page = env.call(&t, &t.member, "GET", "/v1/clients?limit=5", None, &[])?;
    expect_status(&page, 200, "list")?;
    let l = d1_cost(&page)?;
    ensure(l["calls"] == 1, format!("a list page: {l:?}"))
}

/// The API's completion line reaches the console (wrangler dev writes it to the stack's log):
/// one JSON object carrying the caller's `x-request-id`, the route without its query string,
/// the account and shard, the status, the duration and the D1 cost. Reads are sampled (one in
/// `READ_LOG_EVERY`, by request id; the stack runs the default): a sampled read's line says
/// so, an unsampled read writes none, and an error is always logged.
fn request_logged(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let policy = shared::http::RequestLog::from_var(None);
    let get = shared::http::Method::Get;
    let pick = |sampled: bool| {
        (0u32..)
            .map(|i| unique(&format!("log-req-{i}")))
            .find(|id| policy.line(&get, 200, 0, id).is_some() == sampled)
            .unwrap_or_default()
    };
    let (logged, unlogged) = (pick(true), pick(false));
    for id in [&logged, &unlogged] {
        let r = env.call(
            &t,
            &t.member,
            "GET",
            "/v1/clients?limit=1",
            None,
            &[("x-request-id", id)],
        )?;
        expect_status(&r, 200, "list")?;
    }
    let missing = unique("log-missing");
    let r = env.call(
        &t,
        &t.member,
        "GET",
        "/v1/clients/00000000-0000-4000-8000-00000000dead",
        None,
        &[("x-request-id", &missing)],
    )?;
    expect_status(&r, 404, "a missing client")?;
    let log = &env.log;
    let lines = |id: &str| -> Result<Vec<Value>, String> {
        let text = std::fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
        Ok(json_lines(&text)
            .filter(|v| v["request_id"] == id && v["message"] == "request done")
            .collect())
    };
    let line = poll(
        "the sampled request's JSON log line",
        Duration::from_secs(20),
        || Ok(lines(&logged)?.into_iter().next()),
    )?;
    poll(
        "the 404's JSON log line (errors are never sampled out)",
        Duration::from_secs(20),
        || Ok(lines(&missing)?.into_iter().next()),
    )?;
    // The unsampled read was answered before the 404 (requests in turn, lines in their order):
    // had it been logged, its line would be in the log by now.
    // (A read slower than `SLOW_MS`, on a loaded machine, is logged whatever its id.)
    let slow = |l: &Value| {
        l["duration_ms"]
            .as_u64()
            .is_some_and(|d| d >= policy.slow_ms)
    };
    ensure(
        lines(&unlogged)?.iter().all(slow),
        format!("an unsampled read wrote a line: {:?}", lines(&unlogged)),
    )?;
    ensure(
        line["sampled"] == policy.reads_every || slow(&line),
        format!("sampled: {line}"),
    )?;
    ensure(line["route"] == "GET /v1/clients", format!("route: {line}"))?;
    ensure(line["status"] == 200, format!("status: {line}"))?;
    ensure(line["level"] == "INFO", format!("level: {line}"))?;
    ensure(line["span"] == "request", format!("span: {line}"))?;
    ensure(
        line["deployment"] == "clientdocs-api",
        format!("deployment: {line}"),
    )?;
    ensure(line["duration_ms"].is_u64(), format!("duration: {line}"))?;
    ensure(
        line["account"] == t.id.as_str() && line["shard"] == t.shard.as_str(),
        format!("account and shard: {line}"),
    )?;
    // Recorded on the span by the domain, so deployed lines carry it too (not the local header).
    ensure(
        line["d1_calls"].as_u64().is_some_and(|n| n >= 1)
            && line["d1_statements"].is_u64()
            && line["d1_rows_read"].is_u64()
            && line["d1_rows_written"] == 0,
        format!("d1 cost: {line}"),
    )
}

/// The JSON objects among wrangler dev's output lines (it prefixes each with the Worker's name
/// and colours warnings).
fn json_lines(text: &str) -> impl Iterator<Item = Value> + '_ {
    text.lines().filter_map(|l| {
        let json = l.get(l.find('{')?..=l.rfind('}')?)?;
        serde_json::from_str(json).ok()
    })
}
