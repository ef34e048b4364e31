//! The operator plane on workerd: its own Worker on its own host (ops.localhost), nothing of it
//! on the tenant hosts, every action in the platform audit trail with the operator.

use integration_tests::*;
use serde_json::json;

pub const TESTS: &[NamedTest] = &[
    (
        "operator_routes_are_404_on_every_tenant_host_even_with_the_operator_secret",
        not_on_tenant_hosts,
    ),
    (
        "operator_actions_are_recorded_with_the_operator_in_a_verifiable_platform_trail",
        platform_trail,
    ),
];

fn not_on_tenant_hosts(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let secret = "local-dev-admin-secret";
    for host in [
        "127.0.0.1",
        "api.localhost",
        "ded-01.localhost",
        "northwind.localhost",
    ] {
        for (method, path) in [
            ("GET", "/admin/v1/shards".to_string()),
            ("POST", format!("/admin/v1/accounts/{}/deactivate", t.id)),
            ("POST", "/admin/v1/jobs/retention/run".to_string()),
            ("GET", "/admin/v1/audit".to_string()),
        ] {
            let r = env
                .client
                .json(method, &path, Some(secret), None, &[("host", host)])?;
            expect_status(&r, 404, &format!("{method} {path} on {host}"))?;
            ensure(is_problem(&r), format!("not problem+json: {}", r.text()))?;
        }
    }
    let doc = env.client.json("GET", "/openapi.json", None, None, &[])?;
    ensure(
        doc.json()["paths"]
            .as_object()
            .is_some_and(|p| p.keys().all(|k| !k.starts_with("/admin"))),
        "the tenant API's OpenAPI names operator paths",
    )?;
    let ops = env.client.json(
        "GET",
        "/openapi.json",
        None,
        None,
        &[("host", "ops.localhost")],
    )?;
    ensure(
        ops.json()["paths"]["/admin/v1/audit"].is_object(),
        format!(
            "the operator's OpenAPI lacks /admin/v1/audit: {}",
            ops.text()
        ),
    )?;
    // Still active: nothing reached the operator.
    let a = env.admin("GET", &format!("/admin/v1/accounts/{}", t.id), None)?;
    ensure(a.json()["is_active"] == true, "the account was deactivated")
}

fn platform_trail(env: &Env) -> TestResult {
    let none = env.client.json(
        "GET",
        "/admin/v1/shards",
        None,
        None,
        &[("host", "ops.localhost")],
    )?;
    expect_status(&none, 401, "no credential")?;
    ensure(is_problem(&none), "401 is problem+json")?;
    let t = env.tenant(None)?;
    let hold = env.admin(
        "PUT",
        &format!("/admin/v1/accounts/{}/legal-hold", t.id),
        Some(&json!({"hold": true})),
    )?;
    expect_status(&hold, 200, "hold")?;
    let run = env.admin("POST", "/admin/v1/jobs/migration_check/run", None)?;
    expect_status(&run, 200, "job run through the service binding")?;
    // Find our own entries (other tests append too): by target.
    let mut after = 0;
    let mut ours = vec![];
    loop {
        let page = env.admin(
            "GET",
            &format!("/admin/v1/audit?after_seq={after}&limit=1000"),
            None,
        )?;
        expect_status(&page, 200, "platform audit")?;
        let items = page.json()["items"].as_array().cloned().unwrap_or_default();
        ours.extend(
            items
                .iter()
                .filter(|e| e["target"]["id"] == t.id.as_str() || e["action"] == "job.run")
                .cloned(),
        );
        match page.json()["next_after_seq"].as_i64() {
            Some(n) => after = n,
            None => break,
        }
    }
    for action in [
        "account.create",
        "account.token_mint",
        "account.legal_hold_set",
        "job.run",
    ] {
        ensure(
            ours.iter().any(|e| {
                e["action"] == action
                    && e["operator"]["email"] == "local-operator@ops.localhost"
                    && e["operator"]["via"] == "local_dev_credential"
            }),
            format!("no {action} by the local operator in {ours:?}"),
        )?;
    }
    // Each action is followed by its outcome link in the same chain (on workerd, through D1).
    let hold = ours
        .iter()
        .find(|e| e["action"] == "account.legal_hold_set" && e.get("outcome").is_none())
        .cloned()
        .unwrap_or_default();
    ensure(
        ours.iter().any(|e| {
            e["outcome"]["of_seq"] == hold["seq"]
                && e["outcome"]["status"] == 200
                && e["outcome"]["result"] == "done"
                && e["request_id"] == hold["request_id"]
        }),
        format!("no outcome of the hold {hold} in {ours:?}"),
    )?;
    let v = env.admin("GET", "/admin/v1/audit/verify", None)?;
    expect_status(&v, 200, "verify")?;
    ensure(
        v.json()["complete"] == true && v.json()["first_broken"].is_null(),
        format!("verify: {}", v.text()),
    )
}
