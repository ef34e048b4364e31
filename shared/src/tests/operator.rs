//! The operator plane on its own Worker: the tenant API serves none of it, operators are
//! authenticated by a Cloudflare Access assertion (locally the dev credential), and every
//! action lands first in the hash-chained, append-only platform audit trail.

use super::*;
use crate::domain::clock::Clock;
use crate::domain::identity::tests::{rsa_key, sign};
use crate::domain::operator::ACCESS_ASSERTION_HEADER;
use crate::operator::routes::ROUTES;
use jsonwebtoken::Algorithm;
use std::collections::BTreeSet;

fn platform_trail(f: &Fake) -> Vec<serde_json::Value> {
    let r = f.admin(Get, "/admin/v1/audit?limit=1000", None);
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    r.body_json().unwrap()["items"].as_array().unwrap().clone()
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-4000-8000-000000000001")
        .replace("{job}", "retention")
}

#[test]
fn the_tenant_api_serves_no_operator_route_on_any_host_even_with_the_operator_secret() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let auth = format!("Bearer {ADMIN}");
    for r in ROUTES.iter().filter(|r| r.path.starts_with("/admin/")) {
        let m = match r.verb {
            crate::api::routes::Verb::Get => Get,
            crate::api::routes::Verb::Post => Post,
            crate::api::routes::Verb::Put => Put,
            crate::api::routes::Verb::Patch => Patch,
            crate::api::routes::Verb::Delete => Delete,
        };
        for host in ["api.test", "ded-01.localhost", "ops.test"] {
            let resp = f.call(
                m.clone(),
                &concrete(r.path),
                &[("authorization", &auth), ("host", host)],
                Some(json!({})),
            );
            assert_eq!(resp.status, 404, "{} {} on {host}", r.verb.as_str(), r.path);
            assert_eq!(
                resp.header("content-type"),
                Some("application/problem+json")
            );
        }
    }
    // Nothing happened: no account was deactivated, the platform trail holds only the setup.
    let a = f.admin(Get, &format!("/admin/v1/accounts/{acct}"), None);
    assert_eq!(a.body_json().unwrap()["is_active"], true);
    assert_eq!(platform_trail(&f).len(), 1);
    // The tenant API's document names no operator path and no operator credential.
    let doc = crate::api::openapi::document(None);
    assert!(doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .all(|p| !p.starts_with("/admin")));
    assert!(doc["components"]["securitySchemes"]
        .get("adminAuth")
        .is_none());
}

#[test]
fn the_operator_route_table_and_its_openapi_document_name_the_same_paths_and_methods() {
    let doc = crate::operator::openapi::document();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| k.as_str() != "parameters")
                .map(move |m| (path.clone(), m.to_ascii_uppercase()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.path.to_string(), r.verb.as_str().to_string()))
        .collect();
    assert_eq!(documented, served);
    // Every non-GET route is an audited action; every GET is a read.
    for r in ROUTES {
        assert_eq!(
            r.audited.is_some(),
            r.verb != crate::api::routes::Verb::Get,
            "{}",
            r.path
        );
    }
}

#[test]
fn an_operator_request_without_a_valid_credential_is_401_problem_json() {
    let mut f = Fake::new();
    let cfg = f.operator_cfg();
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", "Basic x")],
    ] {
        let r = f.operator(&cfg, Get, "/admin/v1/shards", &headers, None);
        assert_eq!(r.status, 401, "{headers:?}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    // Unknown paths are refused before they are answered 404.
    assert_eq!(
        f.operator(&cfg, Get, "/admin/v1/nothing", &[], None).status,
        401
    );
    // Deployed, the dev credential is no credential at all; only an Access assertion is.
    f.cfg.local = false;
    let cfg = f.operator_cfg();
    let dev = format!("Bearer {ADMIN}");
    let r = f.operator(
        &cfg,
        Get,
        "/admin/v1/shards",
        &[("authorization", &dev)],
        None,
    );
    assert_eq!(r.status, 401);
    let ok = f.access_assertion("ops@platform.example");
    let r = f.operator(
        &cfg,
        Get,
        "/admin/v1/shards",
        &[(ACCESS_ASSERTION_HEADER, &ok)],
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    // Deployed without an Access application configured: nothing is served.
    let mut bare = cfg.clone();
    bare.access = None;
    let r = f.operator(
        &bare,
        Get,
        "/admin/v1/shards",
        &[(ACCESS_ASSERTION_HEADER, &ok)],
        None,
    );
    assert_eq!(r.status, 503);
}

#[test]
fn access_assertions_of_another_audience_issuer_algorithm_or_expired_are_refused() {
    let mut f = Fake::new();
    f.cfg.local = false;
    let cfg = f.operator_cfg();
    f.access_assertion("seed@platform.example"); // serves the team's keys
    let now = f.clock.now().unix_timestamp();
    let claims = |iss: &str, aud: &str, exp: i64| {
        json!({"iss": iss, "aud": [aud], "email": "eve@platform.example", "sub": "eve",
               "iat": now, "exp": exp})
    };
    let team = format!("https://{ACCESS_TEAM}");
    let forged = [
        sign(
            Algorithm::RS256,
            Some("access-1"),
            &claims(&team, "another-app", now + 600),
        ),
        sign(
            Algorithm::RS256,
            Some("access-1"),
            &claims("https://other.cloudflareaccess.com", ACCESS_AUD, now + 600),
        ),
        sign(
            Algorithm::RS256,
            Some("access-1"),
            &claims(&team, ACCESS_AUD, now - 3600),
        ),
        // HS256 signed with the public key's PEM (algorithm confusion), and an ES256 token.
        sign(
            Algorithm::HS256,
            Some("access-1"),
            &claims(&team, ACCESS_AUD, now + 600),
        ),
        sign(
            Algorithm::ES256,
            Some("access-1"),
            &claims(&team, ACCESS_AUD, now + 600),
        ),
        "not.a.jwt".to_string(),
    ];
    for t in &forged {
        let r = f.operator(
            &cfg,
            Post,
            "/admin/v1/accounts",
            &[(ACCESS_ASSERTION_HEADER, t)],
            Some(json!({"name": "Evil", "slug": "evil"})),
        );
        assert_eq!(r.status, 401, "{t}: {:?}", r.body_json());
    }
    // An assertion with no email or common name names no operator.
    let anonymous = sign(
        Algorithm::RS256,
        Some("access-1"),
        &json!({"iss": team, "aud": [ACCESS_AUD], "sub": "x", "iat": now, "exp": now + 600}),
    );
    let r = f.operator(
        &cfg,
        Get,
        "/admin/v1/shards",
        &[(ACCESS_ASSERTION_HEADER, &anonymous)],
        None,
    );
    assert_eq!(r.status, 401);
    // Nothing was created, nothing recorded.
    let trail = f.operator(
        &cfg,
        Get,
        "/admin/v1/audit",
        &[(
            ACCESS_ASSERTION_HEADER,
            &f.access_assertion("ops@platform.example"),
        )],
        None,
    );
    assert_eq!(trail.body_json().unwrap()["items"], json!([]));
    // The keys were fetched once, from the team's certs URL.
    assert_eq!(f.fetch.calls(ACCESS_CERTS), 1);
    let _ = rsa_key("unused");
}

#[test]
fn every_operator_action_is_recorded_with_the_access_identity_before_it_is_carried_out() {
    let mut f = Fake::new();
    f.cfg.local = false;
    let (acct, _) = f.account("acme", None);
    for (m, path, body) in [
        (
            Put,
            format!("/admin/v1/accounts/{acct}/legal-hold"),
            Some(json!({"hold": true})),
        ),
        (Post, format!("/admin/v1/accounts/{acct}/deactivate"), None),
        (Post, format!("/admin/v1/accounts/{acct}/reactivate"), None),
        (
            Post,
            format!("/admin/v1/accounts/{acct}/domains"),
            Some(json!({"hostname": "docs.acme.example"})),
        ),
        (Post, "/admin/v1/jobs/migration_check/run".into(), None),
    ] {
        let r = f.admin(m, &path, body);
        assert!(r.status < 300, "{path}: {:?}", r.body_json());
    }
    // Reads are not actions.
    f.admin(Get, "/admin/v1/shards", None);
    let trail = platform_trail(&f);
    let actions: Vec<_> = trail.iter().map(|e| e["action"].clone()).collect();
    assert_eq!(
        actions,
        json!([
            "account.create",
            "account.legal_hold_set",
            "account.deactivate",
            "account.reactivate",
            "account.domain_add",
            "job.run"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    for e in &trail {
        assert_eq!(
            e["operator"],
            json!({"email": OPERATOR_EMAIL, "sub": format!("sub-{OPERATOR_EMAIL}"), "via": "cloudflare_access"})
        );
    }
    assert_eq!(
        trail[1]["target"],
        json!({"type": "account", "id": acct.to_string()})
    );
    assert_eq!(trail[1]["details"], json!({"hold": true}));
    assert_eq!(trail[5]["target"]["id"], "migration_check");
    // The tenant's own trail names the operator too.
    f.drain_queue();
    let holds = f.count(
        "SHARD_EU_01",
        &format!(
            "SELECT count(*) FROM audit_log WHERE account_id = '{acct}' \
             AND body ->> '$.actor.id' = 'operator:{OPERATOR_EMAIL}'"
        ),
    ) + f.count(
        "SHARD_EU_02",
        &format!(
            "SELECT count(*) FROM audit_log WHERE account_id = '{acct}' \
             AND body ->> '$.actor.id' = 'operator:{OPERATOR_EMAIL}'"
        ),
    );
    assert_eq!(holds, 3, "hold, deactivate, reactivate");
    let v = f.admin(Get, "/admin/v1/audit/verify", None);
    assert_eq!(
        v.body_json().unwrap()["complete"],
        true,
        "{:?}",
        v.body_json()
    );
    assert_eq!(v.body_json().unwrap()["links"], 6);
    assert_eq!(v.body_json().unwrap()["first_broken"], json!(null));
}

#[test]
fn the_platform_trail_refuses_rewrites_and_verify_names_a_link_rewritten_behind_its_triggers() {
    let f = Fake::new();
    f.account("acme", None);
    f.account("brightwater", None);
    f.account("northwind", None);
    let db = &f.accounts;
    for sql in [
        "UPDATE platform_audit SET body = json_set(body, '$.operator.email', 'x') WHERE seq = 2",
        "DELETE FROM platform_audit WHERE seq = 3",
        "INSERT OR REPLACE INTO platform_audit (seq, body) SELECT seq, body FROM platform_audit WHERE seq = 1",
    ] {
        assert!(db.exec(sql).is_err(), "{sql} was allowed");
    }
    assert_eq!(platform_trail(&f).len(), 3);
    // Someone who can drop the triggers can rewrite a link: verify names it.
    db.exec("DROP TRIGGER platform_audit_no_update").unwrap();
    db.exec(
        "UPDATE platform_audit SET body = json_set(body, '$.operator.email', 'someone@else') \
         WHERE seq = 2",
    )
    .unwrap();
    let v = f.admin(Get, "/admin/v1/audit/verify", None);
    let v = v.body_json().unwrap();
    assert_eq!(v["first_broken"]["seq"], 2, "{v}");
    assert_eq!(v["head_seq"], 1);
    assert_eq!(v["complete"], false);
    // The dropped trigger is schema drift, which the hourly migration check reports.
    let run = block_on(jobs::run(&f, Job::MigrationCheck, None));
    assert_eq!(run.outcome, Outcome::Partial, "{:?}", run.counts.to_json());
}

#[test]
fn an_operator_sets_a_production_accounts_first_identity_provider_and_it_is_claimed_once() {
    let mut f = Fake::new();
    f.cfg.local = false;
    let r = f.admin(
        Post,
        "/admin/v1/accounts",
        Some(json!({"name": "Prod", "slug": "prod", "kind": "production", "shard_id": "shard-eu-01"})),
    );
    assert_eq!(r.status, 201);
    let prod = r.body_json().unwrap()["id"].as_str().unwrap().to_string();
    let issuers = json!({"issuers": [{
        "issuer": "https://login.microsoftonline.com/tid/v2.0", "audience": "client-1",
        "jwks_uri": "https://login.microsoftonline.com/tid/discovery/v2.0/keys",
        "algorithms": ["RS256"], "role_claim": "roles",
        "role_values": {"admin": ["ClientDocs.Admin"], "member": [], "readonly": []}}]});
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{prod}/identity"),
        Some(issuers.clone()),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    assert_eq!(r.body_json().unwrap()["issuers"][0]["audience"], "client-1");
    // Another account cannot trust the same issuer and audience.
    let other = f.admin(
        Post,
        "/admin/v1/accounts",
        Some(json!({"name": "Other", "slug": "other", "kind": "production", "shard_id": "shard-eu-01"})),
    );
    let other = other.body_json().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{other}/identity"),
        Some(issuers),
    );
    assert_eq!(r.status, 409, "{:?}", r.body_json());
    // Local-only settings (a plain-http issuer) are refused when deployed.
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{prod}/identity"),
        Some(json!({"issuers": [{"issuer": "http://idp", "audience": "a", "jwks_uri": "http://idp/keys", "algorithms": ["RS256"]}]})),
    );
    assert_eq!(r.status, 400, "{:?}", r.body_json());
    let actions: Vec<_> = platform_trail(&f)
        .iter()
        .map(|e| (e["action"].clone(), e["target"]["id"].clone()))
        .collect();
    assert!(actions.contains(&(json!("account.identity_set"), json!(prod))));
}

#[test]
fn an_action_the_platform_trail_cannot_record_is_not_carried_out() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    f.accounts
        .exec(
            "CREATE TRIGGER refuse_all BEFORE INSERT ON platform_audit \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        )
        .unwrap();
    let r = f.admin(Post, &format!("/admin/v1/accounts/{acct}/deactivate"), None);
    assert!(r.status >= 500, "{:?}", r.body_json());
    f.accounts.exec("DROP TRIGGER refuse_all").unwrap();
    let a = f.admin(Get, &format!("/admin/v1/accounts/{acct}"), None);
    assert_eq!(a.body_json().unwrap()["is_active"], true);
}
