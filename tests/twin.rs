//! The bench's JavaScript twin (`bench/twin-js`, reached with Host `twin-js.localhost`) answers
//! `GET /v1/clients/{id}` exactly as the product does: the same requests go to both and their
//! status, body and headers are compared. This keeps the read-path comparison of
//! `cargo xtask bench --read-path` honest (the twin does all of the product's work, no less).

use integration_tests::*;
use serde_json::{json, Value};
use shared::auth::{mint, Claims, JwtConfig, Role};

pub const TESTS: &[NamedTest] = &[(
    "the_js_twin_answers_get_client_by_id_as_the_product_does",
    twin_matches_product,
)];

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
    for name in SAME {
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
    Ok(product)
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
