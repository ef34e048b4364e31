//! The write protocol on workerd: numbers keep their type on the way to D1, so every row stays
//! writable after every kind of write (content uploads and legal holds included), and settings
//! and holds reach the audit trail.

use integration_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

pub const TESTS: &[NamedTest] = &[(
    "settings_and_account_holds_appear_in_the_audit_trail",
    settings_audited,
)];

/// Reads the stored versions from outside the runtime (`wrangler d1 execute`): one at a time.
pub const EXCLUSIVE: &[NamedTest] = &[(
    "after_uploads_holds_and_patches_every_version_is_an_integer_its_etag_names",
    integer_versions,
)];

fn binding_of(shard: &str) -> &'static str {
    match shard {
        "shard-eu-02" => "SHARD_EU_02",
        "shard-ded-01" => "SHARD_DED_01",
        _ => "SHARD_EU_01",
    }
}

/// `typeof` and value of every stored version of the tenant's rows, as D1 holds them.
fn stored_versions(env: &Env, t: &TestTenant) -> Result<Vec<Value>, String> {
    let mut rows = vec![];
    for table in ["clients", "documents"] {
        rows.extend(xtask::seed::query(
            env.outside()?,
            binding_of(&t.shard),
            "wrangler/api.jsonc",
            &format!(
                "SELECT '{table}' AS t, id, typeof(body ->> '$.version') AS ty, \
                 body ->> '$.version' AS v FROM {table} WHERE account_id = '{}'",
                t.id
            ),
        )?);
    }
    Ok(rows)
}

fn all_integer(env: &Env, t: &TestTenant, after: &str) -> TestResult {
    let rows = stored_versions(env, t)?;
    ensure(!rows.is_empty(), format!("{after}: rows were read"))?;
    for r in &rows {
        ensure(
            r["ty"] == "integer",
            format!(
                "after {after}: {} {} stored version {} as {}",
                r["t"], r["id"], r["v"], r["ty"]
            ),
        )?;
    }
    Ok(())
}

fn etag(r: &Reply) -> String {
    r.header("etag").unwrap_or_default().to_string()
}

fn upload(
    env: &Env,
    t: &TestTenant,
    doc: &str,
    body: &[u8],
    if_match: Option<&str>,
) -> Result<Reply, String> {
    let bearer = format!("Bearer {}", t.admin);
    let mut h = vec![
        ("content-type", "application/pdf"),
        ("authorization", bearer.as_str()),
    ];
    if let Some(m) = if_match {
        h.push(("if-match", m));
    }
    if let Some(host) = &t.host {
        h.push(("host", host));
    }
    env.client.send(
        "PUT",
        &format!("/v1/documents/{doc}/content"),
        &h,
        Some(body),
    )
}

fn integer_versions(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let call = |m: &str, p: &str, b: Option<&Value>, h: &[(&str, &str)]| {
        env.call(&t, &t.admin, m, p, b, h)
    };
    let c = call(
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "I", "surname": "Nt", "status": "active"})),
        &[],
    )?;
    expect_status(&c, 201, "create client")?;
    let client = c.json()["id"].as_str().unwrap_or_default().to_string();
    let cpath = format!("/v1/clients/{client}");

    // Hold on, hold off, then PATCH with the ETag GET returns.
    for (on, want) in [(true, "\"v2\""), (false, "\"v3\"")] {
        let r = call(
            "PUT",
            &format!("{cpath}/legal-hold"),
            Some(&json!({"hold": on})),
            &[],
        )?;
        expect_status(&r, 200, "legal hold")?;
        ensure(
            etag(&r) == want,
            format!("hold {on}: ETag {} want {want}", etag(&r)),
        )?;
        ensure(
            r.json()["legal_hold"] == json!(on),
            format!("hold {on}: {}", r.text()),
        )?;
        ensure(
            r.json()["version"] == json!(if on { 2 } else { 3 }),
            format!("integer version: {}", r.text()),
        )?;
    }
    let g = call("GET", &cpath, None, &[])?;
    ensure(
        etag(&g) == "\"v3\"",
        format!("GET after holds: ETag {}", etag(&g)),
    )?;
    let r = call(
        "PATCH",
        &cpath,
        Some(&json!({"surname": "Patched"})),
        &[("if-match", &etag(&g))],
    )?;
    expect_status(&r, 200, "PATCH with the ETag GET returned after holds")?;
    all_integer(env, &t, "holds and a patch")?;

    // Upload content, then PATCH, re-upload and DELETE with the returned ETags.
    let d = call(
        "POST",
        "/v1/documents",
        Some(&json!({"client_id": client, "kind": "identity", "title": "Passport"})),
        &[],
    )?;
    expect_status(&d, 201, "create document")?;
    let doc = d.json()["id"].as_str().unwrap_or_default().to_string();
    let dpath = format!("/v1/documents/{doc}");
    let u = upload(env, &t, &doc, b"%PDF-1.7 one", None)?;
    expect_status(&u, 200, "upload")?;
    ensure(etag(&u) == "\"v2\"", format!("upload ETag {}", etag(&u)))?;
    let g = call("GET", &dpath, None, &[])?;
    ensure(
        etag(&g) == "\"v2\"" && g.json()["version"] == json!(2),
        format!("GET after upload: {} {}", etag(&g), g.text()),
    )?;
    let r = call(
        "PATCH",
        &dpath,
        Some(&json!({"title": "Passport 2026"})),
        &[("if-match", &etag(&g))],
    )?;
    expect_status(&r, 200, "PATCH after upload")?;
    let u = upload(env, &t, &doc, b"%PDF-1.7 two", Some(&etag(&r)))?;
    expect_status(&u, 200, "second upload with the PATCH's ETag")?;
    all_integer(env, &t, "uploads")?;
    let r = call("DELETE", &dpath, None, &[("if-match", &etag(&u))])?;
    expect_status(&r, 204, "DELETE with the upload's ETag")?;
    all_integer(env, &t, "every kind of write")
}

fn settings_audited(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let r = env.call(&t, &t.admin, "GET", "/v1/settings/retention", None, &[])?;
    expect_status(&r, 200, "get settings")?;
    let mut policy = r.json();
    policy["soft_delete_grace_days"] = json!(40);
    let r = env.call(
        &t,
        &t.admin,
        "PUT",
        "/v1/settings/retention",
        Some(&policy),
        &[],
    )?;
    expect_status(&r, 200, "put settings")?;
    let r = env.admin(
        "PUT",
        &format!("/admin/v1/accounts/{}/legal-hold", t.id),
        Some(&json!({"hold": true})),
    )?;
    expect_status(&r, 200, "account hold on")?;
    let r = env.admin(
        "PUT",
        &format!("/admin/v1/accounts/{}/legal-hold", t.id),
        Some(&json!({"hold": false})),
    )?;
    expect_status(&r, 200, "account hold off")?;
    let items = poll(
        "three account changes in the audit trail",
        Duration::from_secs(30),
        || {
            let r = env.call(
                &t,
                &t.admin,
                "GET",
                &format!("/v1/audit?target_type=accounts&target_id={}&limit=50", t.id),
                None,
                &[],
            )?;
            let items: Vec<Value> = r.json()["items"].as_array().cloned().unwrap_or_default();
            let n = items
                .iter()
                .filter(|e| e["action"] == "account.updated")
                .count();
            Ok((n >= 3).then_some(items))
        },
    )?;
    let holds: Vec<&Value> = items
        .iter()
        .filter(|e| e["changed_fields"] == json!(["legal_hold"]))
        .collect();
    ensure(holds.len() == 2, format!("two hold changes: {items:?}"))?;
    ensure(
        holds
            .iter()
            .all(|h| h["actor"]["id"] == "operator:local-operator@ops.localhost")
            && holds
                .iter()
                .any(|h| h["changes"]["legal_hold"] == json!({"before": false, "after": true}))
            && holds
                .iter()
                .any(|h| h["changes"]["legal_hold"] == json!({"before": true, "after": false})),
        format!("holds with operator and before/after: {holds:?}"),
    )?;
    let settings: Vec<&Value> = items
        .iter()
        .filter(|e| e["changed_fields"] == json!(["retention"]))
        .collect();
    ensure(
        settings.len() == 1
            && settings[0]["actor"]["type"] == "user"
            && settings[0]["changes"]["retention"]["after"]["soft_delete_grace_days"] == json!(40),
        format!("settings change with actor and after: {settings:?}"),
    )?;
    let v = env.call(&t, &t.admin, "GET", "/v1/audit/verify", None, &[])?;
    ensure(
        v.json()["ok"] == json!(true),
        format!("chain verifies: {}", v.text()),
    )
}
