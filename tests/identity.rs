//! Identity from the firms' own providers on workerd: the local mock identity provider
//! (`wrangler/mock-idp.js`) serves each test's realm; the API fetches its JWKS through the
//! Worker's `fetch()`. Rotation, unknown kids (and their flood), wrong issuer, wrong audience,
//! expiry and algorithm confusion.

use integration_tests::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const TESTS: &[NamedTest] = &[
    (
        "idp_rotation_the_new_key_is_fetched_and_the_retired_key_stops_working",
        rotation,
    ),
    (
        "idp_a_flood_of_unknown_kids_costs_at_most_one_jwks_fetch_per_interval",
        unknown_kid_flood,
    ),
    (
        "idp_forged_tokens_are_refused_wrong_issuer_audience_expired_alg_confusion",
        forged,
    ),
];

/// The local stack's JWKS refetch interval (`JWKS_REFETCH_SECONDS` in wrangler/api.jsonc).
const REFETCH: Duration = Duration::from_secs(3);

struct Firm {
    tenant: TestTenant,
    realm: String,
    issuer: String,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl Firm {
    fn idp(
        &self,
        env: &Env,
        method: &str,
        action: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        env.client.json(
            method,
            &format!("/mock-idp/{}/{action}", self.realm),
            None,
            body,
            &[],
        )
    }

    fn add_key(&self, env: &Env, alg: &str) -> Result<String, String> {
        let r = self.idp(env, "POST", "keys", Some(&json!({"alg": alg})))?;
        expect_status(&r, 201, "add key")?;
        Ok(r.json()["kid"].as_str().unwrap_or_default().to_string())
    }

    fn fetches(&self, env: &Env) -> Result<u64, String> {
        Ok(self.idp(env, "GET", "stats", None)?.json()["jwks_fetches"]
            .as_u64()
            .unwrap_or_default())
    }

    fn claims(&self, roles: &[&str]) -> Value {
        json!({"iss": self.issuer, "aud": "clientdocs-test", "sub": "idp-user-1",
            "email": "Ann@Firm.example", "roles": roles, "iat": now(), "exp": now() + 600})
    }

    fn mint(&self, env: &Env, body: Value) -> Result<String, String> {
        let r = self.idp(env, "POST", "token", Some(&body))?;
        expect_status(&r, 200, "mint")?;
        Ok(r.json()["token"].as_str().unwrap_or_default().to_string())
    }

    fn token(&self, env: &Env, kid: &str) -> Result<String, String> {
        self.mint(
            env,
            json!({"kid": kid, "claims": self.claims(&["ClientDocs.Adviser"])}),
        )
    }

    fn get_clients(&self, env: &Env, token: &str) -> Result<Reply, String> {
        env.call(&self.tenant, token, "GET", "/v1/clients", None, &[])
    }
}

/// A test tenant trusting its own realm of the mock IdP, with the user ann@firm.example.
fn firm(env: &Env) -> Result<Firm, String> {
    let tenant = env.tenant(None)?;
    let realm = unique("realm");
    let issuer = format!("{}/mock-idp/{realm}", env.client.base());
    let settings = json!({"issuers": [{
        "issuer": issuer, "audience": "clientdocs-test", "jwks_uri": format!("{issuer}/jwks"),
        "algorithms": ["RS256", "ES256"], "role_claim": "roles",
        "role_values": {"admin": ["ClientDocs.Admin"], "member": ["ClientDocs.Adviser"]}}]});
    let r = env.call(
        &tenant,
        &tenant.admin,
        "PUT",
        "/v1/settings/identity",
        Some(&settings),
        &[],
    )?;
    expect_status(&r, 200, "identity settings")?;
    let r = env.call(
        &tenant,
        &tenant.admin,
        "POST",
        "/v1/users",
        Some(&json!({"email": "ann@firm.example", "display_name": "Ann", "role": "member"})),
        &[],
    )?;
    expect_status(&r, 201, "user")?;
    Ok(Firm {
        tenant,
        realm,
        issuer,
    })
}

fn rotation(env: &Env) -> TestResult {
    let f = firm(env)?;
    let old = f.add_key(env, "RS256")?;
    expect_status(&f.get_clients(env, &f.token(env, &old)?)?, 200, "old key")?;
    // The IdP publishes a new key and retires the old one.
    let new = f.add_key(env, "ES256")?;
    let r = f.idp(env, "DELETE", &format!("keys/{old}"), None)?;
    expect_status(&r, 200, "retire")?;
    let new_token = f.token(env, &new)?;
    // Within one refetch interval the API asks the IdP again and takes the new key.
    let deadline = Instant::now() + REFETCH * 4;
    loop {
        let r = f.get_clients(env, &new_token)?;
        if r.status == 200 {
            break;
        }
        ensure(
            r.status == 401,
            format!("new key: {} {}", r.status, r.text()),
        )?;
        ensure(Instant::now() < deadline, "the new key was never fetched")?;
        std::thread::sleep(Duration::from_millis(500));
    }
    // The old key is gone from the JWKS the API now holds.
    let r = f.get_clients(env, &f.token_with_old(env, &old, &new)?)?;
    expect_status(&r, 401, "retired key")
}

impl Firm {
    /// A token naming the retired key: the mock cannot sign with it any more, so it is signed
    /// with the new key under the old kid (the API must find no key of that kid).
    fn token_with_old(&self, env: &Env, old: &str, new: &str) -> Result<String, String> {
        self.mint(
            env,
            json!({"kid": new, "header_kid": old, "claims": self.claims(&["ClientDocs.Adviser"])}),
        )
    }
}

fn unknown_kid_flood(env: &Env) -> TestResult {
    let f = firm(env)?;
    let kid = f.add_key(env, "RS256")?;
    expect_status(&f.get_clients(env, &f.token(env, &kid)?)?, 200, "good key")?;
    let before = f.fetches(env)?;
    let started = Instant::now();
    for i in 0..20 {
        let t = f.mint(
            env,
            json!({"kid": kid, "header_kid": format!("made-up-{i}"), "claims": f.claims(&["ClientDocs.Admin"])}),
        )?;
        let r = f.get_clients(env, &t)?;
        expect_status(&r, 401, &format!("unknown kid {i}"))?;
    }
    let intervals = started.elapsed().as_secs() / REFETCH.as_secs() + 1;
    let fetched = f.fetches(env)? - before;
    ensure(
        fetched <= intervals,
        format!("{fetched} JWKS fetches for 20 unknown kids in {intervals} interval(s)"),
    )?;
    // The known key still works.
    expect_status(
        &f.get_clients(env, &f.token(env, &kid)?)?,
        200,
        "good key after",
    )
}

fn forged(env: &Env) -> TestResult {
    let f = firm(env)?;
    let kid = f.add_key(env, "RS256")?;
    expect_status(&f.get_clients(env, &f.token(env, &kid)?)?, 200, "genuine")?;
    let base = f.claims(&["ClientDocs.Admin"]);
    let with = |field: &str, v: Value| {
        let mut c = base.clone();
        c[field] = v;
        c
    };
    let cases = [
        (
            "wrong issuer",
            json!({"kid": kid, "claims": with("iss", json!(format!("{}-other", f.issuer)))}),
        ),
        (
            "wrong audience",
            json!({"kid": kid, "claims": with("aud", json!("another-app"))}),
        ),
        (
            "expired",
            json!({"kid": kid, "claims": with("exp", json!(now() - 300))}),
        ),
        (
            "HS256 with the RSA public key",
            json!({"kid": kid, "claims": base.clone(), "forge": "hs256-public-key"}),
        ),
        (
            "alg none",
            json!({"kid": kid, "claims": base.clone(), "forge": "none"}),
        ),
    ];
    for (what, body) in cases {
        let r = f.get_clients(env, &f.mint(env, body)?)?;
        expect_status(&r, 401, what)?;
    }
    Ok(())
}
