//! The bench's JavaScript twin (`bench/twin-js`, reached with Host `twin-js.localhost`) answers
//! `GET /v1/clients/{id}` and `POST /v1/clients` exactly as the product does: the same requests
//! go to both and their status, body and headers are compared, and for creates the rows each
//! wrote (client, outbox, idempotency key) and what the pipeline made of them (the outbox row
//! marked published, the event in the audit trail). The twin's consumer (`consumer.js`, fed by
//! the twin's creates with `x-twin-consumer: 1`) records the same audit links and derived fields
//! as the product's, and refuses a malformed message alike. This keeps the comparisons of
//! `cargo xtask bench --read-path`, `--write-path` and `--consumer-path` honest (the twin does
//! all of the product's work, no less).

use integration_tests::*;
use serde_json::{json, Value};
use shared::auth::{mint, Claims, JwtConfig, Role};
use std::time::Duration;

pub const TESTS: &[NamedTest] = &[(
    "the_js_twin_answers_get_client_by_id_as_the_product_does",
    twin_matches_product,
)];

/// Compares the rows each wrote through `wrangler d1 execute`: one at a time.
pub const EXCLUSIVE: &[NamedTest] = &[
    (
        "the_js_twin_creates_clients_as_the_product_does",
        twin_creates_as_the_product_does,
    ),
    (
        "the_js_twin_consumer_records_the_audit_trail_as_the_product_does",
        twin_consumer_as_the_product,
    ),
];

const TWIN_HOST: &str = "twin-js.localhost";
/// Headers whose values must be equal (`x-d1-bookmark` is compared for presence: another
/// test's write in between moves the shard's bookmark).
const SAME: &[&str] = &[
    "content-type",
    "etag",
    "x-request-id",
    "x-d1-cost",
    "www-authenticate",
];

/// The local JWT secret (wrangler/.dev.vars, read by every local Worker, the twin included).
fn jwt() -> Result<JwtConfig, String> {
    let path = xtask::root().join("wrangler/.dev.vars");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("JWT_SECRET="))
        .ok_or("no JWT_SECRET in wrangler/.dev.vars")?;
    Ok(JwtConfig {
        secret: secret.trim().to_string(),
        issuer: "https://auth.clientdocs.local".into(),
        audience: "clientdocs-api".into(),
    })
}

fn token(account: &str, exp_from_now: i64) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs() as i64;
    let cfg = jwt()?;
    let claims = Claims {
        sub: uuid::Uuid::from_u128(7),
        account_id: uuid::Uuid::parse_str(account).map_err(|e| e.to_string())?,
        role: Role::Member,
        exp: now + exp_from_now,
        iat: now - 3600,
        nbf: None,
        iss: cfg.issuer.clone(),
        aud: cfg.audience.clone(),
    };
    mint(&claims, &cfg).map_err(|e| e.to_string())
}

/// One request to the product and to the twin (same headers, same request id); their answers
/// must agree.
fn same(
    env: &Env,
    what: &str,
    path: &str,
    headers: &[(&str, &str)],
    want: u16,
) -> Result<Reply, String> {
    let rid = unique("twin");
    let mut h: Vec<(&str, &str)> = headers.to_vec();
    h.push(("x-request-id", &rid));
    let mut t: Vec<(&str, &str)> = h.clone();
    t.push(("host", TWIN_HOST));
    // The consumer may write the row's derived fields between the two reads: the pair counts
    // only when the product answers the same before and after the twin (else it is read again).
    let mut tries = 0;
    let (product, twin) = loop {
        let product = env.client.send("GET", path, &h, None)?;
        let twin = env.client.send("GET", path, &t, None)?;
        let again = env.client.send("GET", path, &h, None)?;
        tries += 1;
        if (again.status, again.text()) == (product.status, product.text()) || tries == 5 {
            break (product, twin);
        }
    };
    expect_status(&product, want, &format!("{what}: product"))?;
    ensure(
        product.status == twin.status,
        format!(
            "{what}: product {} {}, twin {} {}",
            product.status,
            product.text(),
            twin.status,
            twin.text()
        ),
    )?;
    ensure(
        product.json() == twin.json() && product.json() != Value::Null,
        format!(
            "{what}: bodies differ:\n product {}\n twin    {}",
            product.text(),
            twin.text()
        ),
    )?;
    same_headers(what, &product, &twin, &[])?;
    Ok(product)
}

/// The headers of `SAME` (and `extra`) are equal on both answers; a bookmark on both or neither.
fn same_headers(what: &str, product: &Reply, twin: &Reply, extra: &[&str]) -> TestResult {
    for name in SAME.iter().chain(extra) {
        ensure(
            product.header(name) == twin.header(name),
            format!(
                "{what}: header {name}: product {:?}, twin {:?}",
                product.header(name),
                twin.header(name)
            ),
        )?;
    }
    ensure(
        product.header("x-d1-bookmark").is_some() == twin.header("x-d1-bookmark").is_some(),
        format!(
            "{what}: x-d1-bookmark: product {:?}, twin {:?}",
            product.header("x-d1-bookmark"),
            twin.header("x-d1-bookmark")
        ),
    )?;
    Ok(())
}

fn twin_matches_product(env: &Env) -> TestResult {
    let a = env.tenant(None)?;
    let b = env.tenant(None)?;
    let created = env.call(
        &a,
        &a.member,
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "Ada", "surname": "Twin", "status": "active",
                     "email": "ada@example.com", "address": {"postcode": "AB1 2CD", "line1": "1 Road"}})),
        &[],
    )?;
    expect_status(&created, 201, "create client")?;
    let id = created.json()["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let path = format!("/v1/clients/{id}");
    let bearer = |t: &str| format!("Bearer {t}");
    let (member, admin) = (bearer(&a.member), bearer(&a.admin));

    let r = same(env, "found", &path, &[("authorization", &member)], 200)?;
    ensure(
        r.json()["surname"] == "Twin",
        format!("the client: {}", r.text()),
    )?;
    same(
        env,
        "found (uppercase id)",
        &path.to_uppercase().replace("/V1/CLIENTS/", "/v1/clients/"),
        &[("authorization", &member)],
        200,
    )?;
    let missing = "/v1/clients/00000000-0000-4000-8000-000000000001";
    same(
        env,
        "not found",
        missing,
        &[("authorization", &member)],
        404,
    )?;
    same(
        env,
        "not a uuid",
        "/v1/clients/nope",
        &[("authorization", &member)],
        400,
    )?;
    same(env, "no token", &path, &[], 401)?;
    same(
        env,
        "not bearer",
        &path,
        &[("authorization", "Basic abc")],
        401,
    )?;
    let forged = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    same(
        env,
        "bad signature",
        &path,
        &[("authorization", forged)],
        401,
    )?;
    let expired = bearer(&token(&a.id, -3600)?);
    same(env, "expired", &path, &[("authorization", &expired)], 401)?;
    let unknown = bearer(&token("5e1f0000-0000-4000-8000-000000000099", 3600)?);
    same(
        env,
        "unknown account",
        &path,
        &[("authorization", &unknown)],
        401,
    )?;
    let other = bearer(&b.member);
    same(
        env,
        "another account's client",
        &path,
        &[("authorization", &other)],
        404,
    )?;
    // Read-after-write: the create's bookmark, then one that cannot be a bookmark.
    let bookmark = created
        .header("x-d1-bookmark")
        .ok_or("the create answered no bookmark")?
        .to_string();
    same(
        env,
        "with the write's bookmark",
        &path,
        &[("authorization", &member), ("x-d1-bookmark", &bookmark)],
        200,
    )?;
    same(
        env,
        "invalid bookmark",
        &path,
        &[
            ("authorization", &member),
            ("x-d1-bookmark", "NOT-A-BOOKMARK"),
        ],
        400,
    )?;
    // A restricted client: personal data for admins only.
    let r = env.call(
        &a,
        &a.admin,
        "PUT",
        &format!("{path}/restriction"),
        Some(&json!({"reason": "accuracy_contested"})),
        &[],
    )?;
    ensure(
        r.status < 300,
        format!("restrict: {} {}", r.status, r.text()),
    )?;
    let bm = r
        .header("x-d1-bookmark")
        .unwrap_or("first-primary")
        .to_string();
    let r = same(
        env,
        "restricted, member",
        &path,
        &[("authorization", &member), ("x-d1-bookmark", &bm)],
        200,
    )?;
    ensure(
        r.json()["redacted"].is_array(),
        format!("redacted for a member: {}", r.text()),
    )?;
    same(
        env,
        "restricted, admin",
        &path,
        &[("authorization", &admin), ("x-d1-bookmark", &bm)],
        200,
    )?;
    // A dedicated tenant on the shared deployment: 421 naming its deployment.
    let mut d = env.tenant(Some("shard-ded-01"))?;
    d.host = None;
    same(
        env,
        "misdirected",
        &path,
        &[("authorization", &bearer(&d.member))],
        421,
    )?;
    Ok(())
}

/// One create (or any request with a body) to the product and to the twin, same headers and
/// request id; both must answer `want`.
fn pair(
    env: &Env,
    what: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    want: u16,
) -> Result<(Reply, Reply), String> {
    let rid = unique("twin-create");
    let mut h: Vec<(&str, &str)> = headers.to_vec();
    h.push(("x-request-id", &rid));
    let product = env.client.send("POST", "/v1/clients", &h, Some(body))?;
    h.push(("host", TWIN_HOST));
    let twin = env.client.send("POST", "/v1/clients", &h, Some(body))?;
    expect_status(&product, want, &format!("{what}: product"))?;
    ensure(
        product.status == twin.status,
        format!(
            "{what}: product {} {}, twin {} {}",
            product.status,
            product.text(),
            twin.status,
            twin.text()
        ),
    )?;
    same_headers(
        what,
        &product,
        &twin,
        &["idempotent-replayed", "retry-after"],
    )?;
    Ok((product, twin))
}

/// The two answers' bodies are equal but for `differ` (top-level keys).
fn same_body(what: &str, product: &Reply, twin: &Reply, differ: &[&str]) -> TestResult {
    let strip = |r: &Reply| {
        let mut v = r.json();
        if let Some(o) = v.as_object_mut() {
            for k in differ {
                o.remove(*k);
            }
        }
        v
    };
    ensure(
        strip(product) == strip(twin) && product.json().is_object(),
        format!(
            "{what}: bodies differ:\n product {}\n twin    {}",
            product.text(),
            twin.text()
        ),
    )
}

/// Both refuse the body alike (the same problem, field errors in the same order).
fn same_refusal(env: &Env, what: &str, h: &[(&str, &str)], body: &[u8], want: u16) -> TestResult {
    let (p, t) = pair(env, what, h, body, want)?;
    same_body(what, &p, &t, &[])
}

/// Both created a client: equal answers but for the id and times; `location` names each one's
/// own row. Returns (product's, twin's) answers.
fn both_create(
    env: &Env,
    what: &str,
    h: &[(&str, &str)],
    body: &[u8],
) -> Result<(Reply, Reply), String> {
    let (p, t) = pair(env, what, h, body, 201)?;
    same_body(what, &p, &t, &["id", "created_at", "updated_at"])?;
    for r in [&p, &t] {
        let id = r.json()["id"].as_str().unwrap_or_default().to_string();
        ensure(
            r.header("location") == Some(&format!("/v1/clients/{id}"))
                && r.header("x-d1-bookmark").is_some(),
            format!(
                "{what}: location {:?} for {id}, bookmark {:?}",
                r.header("location"),
                r.header("x-d1-bookmark")
            ),
        )?;
    }
    Ok((p, t))
}

/// `h` with an `Idempotency-Key`.
fn with_key<'a>(h: &[(&'a str, &'a str)], key: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut v = h.to_vec();
    v.push(("idempotency-key", key));
    v
}

/// `twin` with the values that differ by nature (ids, times) replaced by the product's: then
/// the stored texts must be equal byte for byte (same keys, same order, same spelling).
fn same_text(what: &str, product: &str, twin: &str, swaps: &[(&str, &str)]) -> TestResult {
    let mut t = twin.to_string();
    for (from, to) in swaps {
        t = t.replace(from, to);
    }
    ensure(
        t == product,
        format!("{what}: stored texts differ:\n product {product}\n twin    {twin}"),
    )
}

fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn twin_creates_as_the_product_does(env: &Env) -> TestResult {
    let a = env.tenant(None)?;
    ensure(
        a.shard == "shard-eu-01" || a.shard == "shard-eu-02",
        "a shared shard",
    )?;
    let binding = if a.shard == "shard-eu-02" {
        "SHARD_EU_02"
    } else {
        "SHARD_EU_01"
    };
    let outside = env.outside()?;
    let q = |sql: &str| xtask::seed::query(outside, binding, "wrangler/api.jsonc", sql);
    let bearer = |t: &str| format!("Bearer {t}");
    let (member, readonly) = (bearer(&a.member), bearer(&a.readonly));
    let json = "application/json";
    let h: &[(&str, &str)] = &[("authorization", &member), ("content-type", json)];

    // A valid create: answers, then the rows each wrote.
    let body = br#"{"surname": "Twin", "forenames": "Ada", "status": "active", "title": null,
        "email": "ada@example.com", "address": {"postcode": "AB1 2CD", "line1": "1 Road", "town": null},
        "dependants": [{"name": "Bo", "relationship": "child", "date_of_birth": "2020-02-29"}],
        "notes": "line one\nline \"two\"\ttabbed, caf\u00e9 \u2603"}"#;
    let (p, t) = both_create(env, "create", h, body)?;
    let (pid, tid) = (
        str_of(&p.json(), "/id").to_string(),
        str_of(&t.json(), "/id").to_string(),
    );
    ensure(
        pid != tid && !tid.is_empty(),
        format!("two rows: {pid} {tid}"),
    )?;
    // The outbox rows, once both are marked published (the twin's deferred mark too) and both
    // events are in the audit trail (the consumer recorded the twin's event as the product's,
    // and derived both rows' denormalised fields in the same batch).
    let outbox = poll(
        "both outbox rows published and audited",
        Duration::from_secs(60),
        || {
            let rows = q(&format!(
                "SELECT o.id, o.body, o.published_at IS NOT NULL AS published, EXISTS (SELECT 1 \
                 FROM audit_log l WHERE l.account_id = o.account_id AND l.event_id = o.id) AS audited \
                 FROM outbox o WHERE o.account_id = '{}' AND o.body ->> '$.subject' IN ('clients/{pid}', 'clients/{tid}')",
                a.id
            ))?;
            let done = rows.len() == 2
                && rows
                    .iter()
                    .all(|r| r["published"] == 1 && r["audited"] == 1);
            Ok(done.then_some(rows))
        },
    )?;
    // The client rows, derived by the consumer alike.
    let rows = q(&format!(
        "SELECT id, body FROM clients WHERE account_id = '{}' AND id IN ('{pid}', '{tid}')",
        a.id
    ))?;
    let row = |id: &str| {
        rows.iter()
            .find(|r| r["id"] == id)
            .and_then(|r| r["body"].as_str())
            .map(str::to_owned)
            .ok_or(format!("no clients row {id}"))
    };
    let (prow, trow) = (row(&pid)?, row(&tid)?);
    let (pv, tv): (Value, Value) = (
        serde_json::from_str(&prow).map_err(|e| e.to_string())?,
        serde_json::from_str(&trow).map_err(|e| e.to_string())?,
    );
    let (pev, tev) = (str_of(&pv, "/last_event_id"), str_of(&tv, "/last_event_id"));
    let (ptime, ttime) = (str_of(&pv, "/created_at"), str_of(&tv, "/created_at"));
    same_text(
        "the client rows",
        &prow,
        &trow,
        &[(tev, pev), (ttime, ptime)],
    )?;
    ensure(
        pv["version"] == 1 && pv.get("title").is_none() && pv["address"].get("town").is_none(),
        format!("the stored client: {prow}"),
    )?;

    let text = |id: &str| {
        outbox
            .iter()
            .find(|r| r["id"] == id)
            .and_then(|r| r["body"].as_str())
            .map(str::to_owned)
            .ok_or(format!("no outbox row {id}"))
    };
    let (pout, tout) = (text(pev)?, text(tev)?);
    let (po, to): (Value, Value) = (
        serde_json::from_str(&pout).map_err(|e| e.to_string())?,
        serde_json::from_str(&tout).map_err(|e| e.to_string())?,
    );
    same_text(
        "the outbox rows",
        &pout,
        &tout,
        &[
            (tev, pev),
            (&tid, &pid),
            (str_of(&to, "/time"), str_of(&po, "/time")),
            (str_of(&to, "/published_at"), str_of(&po, "/published_at")),
        ],
    )?;
    ensure(
        po["type"] == "client.created" && po["entity_version"] == 1 && po["bookmark"].is_null(),
        format!("the product's outbox row: {pout}"),
    )?;

    // Refusals: the same problem, the same field errors in the same order.
    same_refusal(
        env,
        "a required field missing",
        h,
        br#"{"forenames": "A", "status": "active"}"#,
        400,
    )?;
    same_refusal(
        env,
        "many field errors",
        h,
        br#"{"forenames": "A", "surname": "B", "status": "nope", "version": 3, "colour": "red",
            "email": "not-an-email", "date_of_birth": "2026-02-30", "title": "xxxxxxxxxxxxxxxxxxxxxxxxx",
            "dependants": [{"name": " "}, 5], "address": {"postcode": "12345678901", "flat": "2"},
            "group_id": "nope", "phone": "01\u0007", "relationship_ended_on": "2024-02-29",
            "notes": ["x"], "search_text": "y"}"#,
        400,
    )?;
    same_refusal(
        env,
        "whitespace-only surname",
        h,
        b"{\"forenames\": \"A\", \"surname\": \" \\t\", \"status\": \"active\"}",
        400,
    )?;
    same_refusal(env, "not an object", h, b"[]", 400)?;
    same_refusal(
        env,
        "a key named twice",
        h,
        br#"{"surname": "A", "forenames": "B", "status": "active", "surname": "C"}"#,
        400,
    )?;
    same_refusal(
        env,
        "a key named twice, nested, on a later line",
        h,
        b"{\"surname\": \"A\", \"forenames\": \"B\", \"status\": \"active\",\n \"address\": {\"town\": \"X\",\n   \"\xc3\xa9\": \"1\", \"to\\u0077n\"  : \"Y\"}}",
        400,
    )?;
    same_refusal(
        env,
        "nested too deep",
        h,
        br#"{"surname": "A", "forenames": "B", "status": "active", "address": {"x": [[[[[[[["deep"]]]]]]]]}}"#,
        400,
    )?;
    let (p, t) = pair(env, "not JSON", h, br#"{"surname": "#, 400)?;
    // The parser's own words differ (serde_json's, V8's); everything else is the same.
    same_body("not JSON", &p, &t, &["detail"])?;
    for r in [&p, &t] {
        ensure(
            str_of(&r.json(), "/detail").starts_with("the body is not valid JSON: "),
            format!("not JSON: {}", r.text()),
        )?;
    }
    let text_plain: &[(&str, &str)] = &[("authorization", &member), ("content-type", "text/plain")];
    same_refusal(env, "not application/json", text_plain, br#"{}"#, 415)?;
    let big = format!(
        r#"{{"surname": "A", "forenames": "B", "status": "active", "notes": "{}"}}"#,
        "x".repeat(300 * 1024)
    );
    same_refusal(env, "too large", h, big.as_bytes(), 413)?;
    same_refusal(env, "no token", &[("content-type", json)], br#"{}"#, 401)?;
    let ro: &[(&str, &str)] = &[("authorization", &readonly), ("content-type", json)];
    same_refusal(
        env,
        "readonly",
        ro,
        br#"{"surname": "A", "forenames": "B", "status": "active"}"#,
        403,
    )?;

    // References: a missing group (any case) is a 422; an existing one, named in upper case,
    // is stored lower-case and costs one read more.
    same_refusal(
        env,
        "a group that does not exist",
        h,
        br#"{"surname": "A", "forenames": "B", "status": "active", "group_id": "5E1F0000-0000-4000-8000-0000000000AA"}"#,
        422,
    )?;
    let g = env.call(
        &a,
        &a.admin,
        "POST",
        "/v1/groups",
        Some(&json!({"name": "Twins"})),
        &[],
    )?;
    expect_status(&g, 201, "create group")?;
    let gid = str_of(&g.json(), "/id").to_string();
    let body = format!(
        r#"{{"surname": "Grouped", "forenames": "B", "status": "prospect", "group_id": "{}"}}"#,
        gid.to_uppercase()
    );
    let (p, _) = both_create(env, "with a group", h, body.as_bytes())?;
    ensure(
        p.json()["group_id"] == gid.as_str()
            && p.header("x-d1-cost")
                .is_some_and(|c| c.starts_with("calls=2;")),
        format!("with a group: {} {:?}", p.text(), p.header("x-d1-cost")),
    )?;

    // Idempotency-Key: a malformed one; one the product used, replayed by the twin (and the
    // product) with the body spelt differently; another body with it; and the rows of two keys.
    same_refusal(
        env,
        "a malformed key",
        &with_key(h, "not printable"),
        br#"{"surname": "A", "forenames": "B", "status": "active"}"#,
        400,
    )?;
    let key = unique("key");
    let key = key.as_str();
    let first = env.client.send(
        "POST",
        "/v1/clients",
        &with_key(h, key),
        Some(br#"{"surname": "Keyed", "forenames": "B", "status": "active"}"#),
    )?;
    expect_status(&first, 201, "the product's create with a key")?;
    let (p, t) = pair(
        env,
        "a replay",
        &with_key(h, key),
        b"{ \"status\": \"active\",\n \"forenames\": \"B\", \"surname\": \"Keyed\" }",
        201,
    )?;
    same_body("a replay", &p, &t, &[])?;
    ensure(
        p.json() == first.json() && t.header("location") == first.header("location"),
        format!(
            "the replay names the first create: {} / {}",
            first.text(),
            t.text()
        ),
    )?;
    same_refusal(
        env,
        "a replay with another body",
        &with_key(h, key),
        br#"{"surname": "Other", "forenames": "B", "status": "active"}"#,
        422,
    )?;
    let rid = unique("twin-keys");
    let keyed = br#"{"surname": "Keys", "forenames": "B", "status": "active"}"#;
    let mut ids = vec![];
    for host in [None, Some(TWIN_HOST)] {
        let k = unique("key");
        let mut hk = with_key(h, &k);
        hk.push(("x-request-id", &rid));
        if let Some(host) = host {
            hk.push(("host", host));
        }
        let r = env.client.send("POST", "/v1/clients", &hk, Some(keyed))?;
        expect_status(&r, 201, &format!("a create with a key, {host:?}"))?;
        ids.push(str_of(&r.json(), "/id").to_string());
    }
    let keys = q(&format!(
        "SELECT body ->> '$.entity_id' AS e, body FROM idempotency_keys WHERE account_id = '{}' \
         AND body ->> '$.entity_id' IN ('{}', '{}')",
        a.id, ids[0], ids[1]
    ))?;
    let key_row = |id: &str| {
        keys.iter()
            .find(|r| r["e"] == id)
            .and_then(|r| r["body"].as_str())
            .map(str::to_owned)
            .ok_or(format!("no idempotency row for {id}"))
    };
    let (pk, tk) = (key_row(&ids[0])?, key_row(&ids[1])?);
    let tkv: Value = serde_json::from_str(&tk).map_err(|e| e.to_string())?;
    let pkv: Value = serde_json::from_str(&pk).map_err(|e| e.to_string())?;
    same_text(
        "the idempotency rows",
        &pk,
        &tk,
        &[
            (&ids[1], &ids[0]),
            (str_of(&tkv, "/created_at"), str_of(&pkv, "/created_at")),
        ],
    )
}

/// The shard binding of a shared shard (`shard-eu-01` -> `SHARD_EU_01`).
fn binding_name(shard: &str) -> String {
    shard.to_uppercase().replace('-', "_")
}

/// The audit rows (`seq`, `body`) of an account, ascending.
fn audit_texts(env: &Env, t: &TestTenant) -> Result<Vec<(i64, String)>, String> {
    let rows = xtask::seed::query(
        env.outside()?,
        &binding_name(&t.shard),
        "wrangler/api.jsonc",
        &format!(
            "SELECT seq, body FROM audit_log WHERE account_id = '{}' ORDER BY seq",
            t.id
        ),
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r["seq"].as_i64().unwrap_or(-1),
                r["body"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// The same creates through the product's pipeline (product API, product consumer) for two
/// accounts and through the twin's (twin create, twin consumer) for two others, interleaved so
/// batches hold both accounts; then their audit links compared field by field and byte for
/// byte (ids, times, hashes and signatures swapped), the twin's chains walked with the
/// writer's keys (hash, links, receipts) and verified by the product's `GET /v1/audit/verify`,
/// the clients' derived fields compared; and a malformed message dead-lettered alike.
fn twin_consumer_as_the_product(env: &Env) -> TestResult {
    let product = [env.tenant(None)?, env.tenant(None)?];
    let twin = [env.tenant(None)?, env.tenant(None)?];
    for t in product.iter().chain(&twin) {
        ensure(
            t.shard == "shard-eu-01" || t.shard == "shard-eu-02",
            format!("a shared shard: {}", t.shard),
        )?;
    }
    let n = 3;
    // (request id, product client id, twin client id) per create, per account pair.
    let mut made: Vec<[(String, String, String); 2]> = Vec::new();
    for i in 0..n {
        let mut pair_ids: Vec<(String, String, String)> = Vec::new();
        for k in 0..2 {
            let rid = unique("twin-consumer");
            let body = json!({"surname": format!("Piped{i}"), "forenames": "Ada", "status": "active",
                "address": {"postcode": format!("AB{k} {i}CD")}});
            let p = env.call(
                &product[k],
                &product[k].member,
                "POST",
                "/v1/clients",
                Some(&body),
                &[("x-request-id", &rid)],
            )?;
            expect_status(&p, 201, "the product's create")?;
            let t = env.call(
                &twin[k],
                &twin[k].member,
                "POST",
                "/v1/clients",
                Some(&body),
                &[
                    ("x-request-id", &rid),
                    ("host", TWIN_HOST),
                    ("x-twin-consumer", "1"),
                ],
            )?;
            expect_status(&t, 201, "the twin's create")?;
            pair_ids.push((
                rid,
                str_of(&p.json(), "/id").to_string(),
                str_of(&t.json(), "/id").to_string(),
            ));
        }
        made.push([pair_ids[0].clone(), pair_ids[1].clone()]);
    }
    let seal = {
        let path = xtask::root().join("wrangler/.dev.vars");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let secret = text
            .lines()
            .find_map(|l| l.strip_prefix("AUDIT_SIGNING_KEY="))
            .ok_or("no AUDIT_SIGNING_KEY in wrangler/.dev.vars")?;
        shared::services::audit::Seal::new(secret.trim(), &[]).map_err(|e| e.to_string())?
    };
    for k in 0..2 {
        let (pt, tt) = (&product[k], &twin[k]);
        let trails = poll(
            "both pipelines' audit trails",
            Duration::from_secs(60),
            || {
                let (p, t) = (audit_texts(env, pt)?, audit_texts(env, tt)?);
                Ok((p.len() == n && t.len() == n).then_some((p, t)))
            },
        )?;
        let (ptrail, ttrail) = trails;
        let mut walker = shared::domain::audit::Walker::new(
            uuid::Uuid::parse_str(&tt.id).map_err(|e| e.to_string())?,
            shared::services::audit::ChainHead::genesis(),
            &seal.keys,
        );
        for (i, ((pseq, ptext), (tseq, ttext))) in ptrail.iter().zip(&ttrail).enumerate() {
            let what = format!("account pair {k}, link {}", i + 1);
            let tentry = walker
                .step_text(*tseq, ttext)
                .map_err(|b| format!("{what}: the twin's link does not verify: {b:?}"))?;
            let pentry: shared::services::audit::AuditEntry =
                serde_json::from_str(ptext).map_err(|e| format!("{what}: {e}"))?;
            let (_, pid, tid) = &made[i][k];
            // The same x-request-id (recorded as its digest by both).
            ensure(
                pseq == tseq
                    && pentry.request_id == tentry.request_id
                    && !pentry.request_id.is_empty()
                    && pentry.target.id == *pid
                    && tentry.target.id == *tid,
                format!("{what}: seq {pseq}/{tseq}, links {ptext} / {ttext}"),
            )?;
            // Field by field, but for what differs by nature.
            let mut a = pentry.clone();
            a.event_id = tentry.event_id;
            a.account_id = tentry.account_id;
            a.actor = tentry.actor.clone();
            a.target.id = tentry.target.id.clone();
            a.event_time = tentry.event_time.clone();
            a.recorded_time = tentry.recorded_time.clone();
            a.prev_hash = tentry.prev_hash.clone();
            a.hash = tentry.hash.clone();
            // A receipt is on the last link of each run: runs follow the queue's batches.
            a.receipt = tentry.receipt.clone();
            ensure(
                a == tentry,
                format!("{what}: links differ:\n product {ptext}\n twin    {ttext}"),
            )?;
            // Byte for byte: the same keys in the same order, spelt alike.
            let strip = |t: &str| match t.find(",\"receipt\":") {
                Some(at) => format!("{}}}", &t[..at]),
                None => t.to_string(),
            };
            let actor = |e: &shared::services::audit::AuditEntry| e.actor.id();
            let (pa, ta) = (actor(&pentry), actor(&tentry));
            let swaps = [
                (tentry.event_id.to_string(), pentry.event_id.to_string()),
                (tentry.account_id.to_string(), pentry.account_id.to_string()),
                (ta, pa),
                (tid.clone(), pid.clone()),
                (tentry.event_time.clone(), pentry.event_time.clone()),
                (tentry.recorded_time.clone(), pentry.recorded_time.clone()),
                (tentry.prev_hash.clone(), pentry.prev_hash.clone()),
                (tentry.hash.clone(), pentry.hash.clone()),
            ];
            let swaps: Vec<(&str, &str)> = swaps
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            same_text(&what, &strip(ptext), &strip(ttext), &swaps)?;
        }
        walker
            .finish()
            .map_err(|b| format!("account pair {k}: the twin's head is not signed: {b:?}"))?;
        for (who, t) in [("product", pt), ("twin", tt)] {
            let v = env.call(t, &t.admin, "GET", "/v1/audit/verify", None, &[])?;
            expect_status(&v, 200, "verify")?;
            ensure(
                v.json()["ok"] == true,
                format!("the {who}'s trail verifies: {}", v.text()),
            )?;
        }
        // The derived fields, as each consumer wrote them.
        for (_, pid, tid) in made.iter().map(|m| &m[k]) {
            let fields = |t: &TestTenant, id: &str| {
                let rows = xtask::seed::query(
                    env.outside()?,
                    &binding_name(&t.shard),
                    "wrangler/api.jsonc",
                    &format!(
                        "SELECT body ->> '$.search_text' AS s, body ->> '$.document_count' AS d, \
                         body ->> '$.group_name' AS g, body ->> '$.adviser_name' AS a, \
                         body ->> '$.index_rev' AS r FROM clients WHERE account_id = '{}' AND id = '{id}'",
                        t.id
                    ),
                )?;
                rows.into_iter()
                    .next()
                    .ok_or_else(|| format!("no client {id}"))
            };
            let (pf, tf) = (fields(pt, pid)?, fields(tt, tid)?);
            ensure(
                pf == tf
                    && pf["r"].as_i64().is_some_and(|r| r >= 1)
                    && pf["s"].as_str().is_some_and(|s| s.starts_with("piped")),
                format!("derived fields: product {pf}, twin {tf}"),
            )?;
        }
    }

    // A malformed message: dead-lettered by both with the same reason, from its own queue.
    let marker = unique("twin-poison");
    let r = env.admin(
        "POST",
        "/admin/v1/change-events",
        Some(&json!({"garbage": marker})),
    )?;
    expect_status(&r, 202, "inject into the product's queue")?;
    let r = env.client.send(
        "POST",
        "/bench/twin-consumer/messages",
        &[("host", TWIN_HOST), ("content-type", "application/json")],
        Some(json!({"garbage": marker}).to_string().as_bytes()),
    )?;
    expect_status(&r, 202, "inject into the twin's queue")?;
    let letters = poll("both dead letters", Duration::from_secs(60), || {
        let r = env.admin("GET", "/admin/v1/dead-letters?limit=200", None)?;
        let found: Vec<Value> = r.json()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i["message"]["garbage"] == marker.as_str())
            .collect();
        Ok((found.len() >= 2).then_some(found))
    })?;
    let of = |q: &str| letters.iter().find(|l| l["queue"] == q);
    let (p, t) = (
        of("change-events").ok_or(format!("no product dead letter: {letters:?}"))?,
        of("change-events-twin").ok_or(format!("no twin dead letter: {letters:?}"))?,
    );
    ensure(
        p["kind"] == "undecodable"
            && p["kind"] == t["kind"]
            && p["status"] == t["status"]
            && t["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("not a change event: ")),
        format!("dead letters: product {p}, twin {t}"),
    )
}
