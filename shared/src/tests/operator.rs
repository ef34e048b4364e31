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

/// Every link of the platform trail, actions and outcomes.
fn platform_links(f: &Fake) -> Vec<serde_json::Value> {
    let r = f.admin(Get, "/admin/v1/audit?limit=1000", None);
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    r.body_json().unwrap()["items"].as_array().unwrap().clone()
}

/// The action links of the platform trail (not their outcomes).
fn platform_trail(f: &Fake) -> Vec<serde_json::Value> {
    platform_links(f)
        .into_iter()
        .filter(|e| e.get("outcome").is_none())
        .collect()
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
    // The browser's Access cookie carries the same assertion; the header wins over it.
    let cookie = format!("theme=dark; CF_Authorization={ok}");
    let r = f.operator(&cfg, Get, "/admin/v1/shards", &[("cookie", &cookie)], None);
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let forged = format!("CF_Authorization={ok}x");
    let r = f.operator(&cfg, Get, "/admin/v1/shards", &[("cookie", &forged)], None);
    assert_eq!(r.status, 401, "a cookie is verified like the header");
    let r = f.operator(
        &cfg,
        Get,
        "/admin/v1/shards",
        &[(ACCESS_ASSERTION_HEADER, "x.y.z"), ("cookie", &cookie)],
        None,
    );
    assert_eq!(r.status, 401, "the header wins over the cookie");
}

#[test]
fn a_deployed_operator_worker_without_a_real_access_aud_serves_nothing_but_a_500_problem() {
    let mut f = Fake::new();
    f.cfg.local = false;
    let ok = f.access_assertion("ops@platform.example");
    for (team, aud) in [
        (
            "clientdocs.cloudflareaccess.com",
            "set-to-the-access-application-aud-tag",
        ),
        ("clientdocs.cloudflareaccess.com", ""),
        ("", "0123abcd"),
    ] {
        let mut cfg = f.operator_cfg();
        cfg.access = crate::domain::operator::access_config(team, aud, false);
        assert!(cfg.access.is_err(), "{team} {aud}");
        for path in ["/admin/v1/shards", "/health", "/openapi.json"] {
            let r = f.operator(&cfg, Get, path, &[(ACCESS_ASSERTION_HEADER, &ok)], None);
            assert_eq!(r.status, 500, "{path} with {team:?} {aud:?}");
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
            let detail = r.body_json().unwrap()["detail"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(detail.contains("ACCESS_"), "{detail}");
        }
    }
    // Locally nothing is needed (the dev credential stands in); a placeholder is refused there too.
    assert_eq!(
        crate::domain::operator::access_config("", "", true),
        Ok(None)
    );
    assert!(crate::domain::operator::access_config("", "set-to-x", true).is_err());
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
    assert_eq!(
        v.body_json().unwrap()["links"],
        12,
        "six actions, six outcomes"
    );
    assert_eq!(v.body_json().unwrap()["first_broken"], json!(null));
    assert_eq!(v.body_json().unwrap()["without_outcome"], json!([]));
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

#[test]
fn each_operator_action_is_followed_by_its_outcome_so_a_refused_one_is_told_from_a_done_one() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let missing = "00000000-0000-4000-8000-0000000000ff";
    assert_eq!(
        f.admin(Post, &format!("/admin/v1/accounts/{acct}/deactivate"), None)
            .status,
        200
    );
    assert_eq!(
        f.admin(
            Post,
            &format!("/admin/v1/accounts/{missing}/deactivate"),
            None
        )
        .status,
        404
    );
    let r = f.admin(
        Post,
        "/admin/v1/accounts",
        Some(json!({"name": "Bad", "slug": "NO"})),
    );
    assert_eq!(r.status, 400);
    let links = platform_links(&f);
    // Each action is directly followed by its outcome (nothing ran concurrently here).
    assert_eq!(links.len(), 8, "{links:#?}");
    for pair in links.chunks(2) {
        let (action, outcome) = (&pair[0], &pair[1]);
        assert!(action.get("outcome").is_none(), "{action}");
        assert_eq!(outcome["outcome"]["of_seq"], action["seq"]);
        assert_eq!(outcome["action"], action["action"]);
        assert_eq!(outcome["target"], action["target"]);
        assert_eq!(outcome["operator"], action["operator"]);
        assert_eq!(outcome["request_id"], action["request_id"]);
    }
    let outcomes: Vec<_> = links
        .iter()
        .filter_map(|e| e.get("outcome"))
        .map(|o| (o["status"].clone(), o["result"].clone(), o["error"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (json!(201), json!("done"), json!(null)),
            (json!(200), json!("done"), json!(null)),
            (
                json!(404),
                json!("refused"),
                json!("urn:clientdocs:problem:not-found")
            ),
            (
                json!(400),
                json!("refused"),
                json!("urn:clientdocs:problem:bad-request")
            ),
        ]
    );
    assert_eq!(
        links[1]["outcome"]["summary"],
        format!("/admin/v1/accounts/{acct}")
    );
    assert!(links[5]["outcome"]["summary"]
        .as_str()
        .unwrap()
        .contains(missing));
    let v = f.admin(Get, "/admin/v1/audit/verify", None);
    let v = v.body_json().unwrap();
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(v["without_outcome"], json!([]));
}

#[test]
fn verify_refuses_an_outcome_moved_to_another_action_and_lists_actions_left_without_one() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    f.admin(Post, &format!("/admin/v1/accounts/{acct}/deactivate"), None);
    // Seq 4 is the deactivation's outcome; a forger who can drop the triggers re-points it at
    // the account's creation (seq 1) and recomputes its hash: the chain holds, the pairing not.
    let db = &f.accounts;
    db.exec("DROP TRIGGER platform_audit_no_update").unwrap();
    let links = platform_links(&f);
    let mut forged: crate::domain::operator::PlatformEntry =
        serde_json::from_value(links[3].clone()).unwrap();
    forged.outcome.as_mut().unwrap().of_seq = 1;
    forged.hash = forged.compute_hash();
    db.exec(&format!(
        "UPDATE platform_audit SET body = '{}' WHERE seq = 4",
        serde_json::to_string(&forged).unwrap()
    ))
    .unwrap();
    let v = f.admin(Get, "/admin/v1/audit/verify", None);
    let v = v.body_json().unwrap();
    assert_eq!(v["first_broken"]["seq"], 4, "{v}");
    assert_eq!(v["head_seq"], 3);
    assert_eq!(v["without_outcome"], json!([3]));
    // An action whose outcome was never written (the Worker stopped in between) is listed.
    db.exec("DROP TRIGGER platform_audit_no_delete").unwrap();
    db.exec("DELETE FROM platform_audit WHERE seq = 4").unwrap();
    let v = f.admin(Get, "/admin/v1/audit/verify", None);
    let v = v.body_json().unwrap();
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(v["first_broken"], json!(null));
    assert_eq!(v["without_outcome"], json!([3]));
}

#[test]
fn the_operator_plane_answers_head_and_options_like_the_tenant_api_but_only_to_an_operator() {
    let f = Fake::new();
    let cfg = f.operator_cfg();
    let get = f.admin(Get, "/admin/v1/shards", None);
    let head = f.admin(Head, "/admin/v1/shards", None);
    assert_eq!((get.status, head.status), (200, 200));
    assert_eq!(head.body, crate::api::http::Body::Empty);
    assert_eq!(
        head.header("content-length"),
        Some(get.body_bytes().len().to_string().as_str())
    );
    assert_eq!(head.header("content-type"), get.header("content-type"));
    let opt = f.admin(Options, "/admin/v1/moves", None);
    assert_eq!(
        (opt.status, opt.header("allow")),
        (204, Some("GET, HEAD, POST, OPTIONS"))
    );
    let opt = f.admin(Options, "/admin/v1/moves/x/cancel", None);
    assert_eq!(opt.header("allow"), Some("POST, OPTIONS"));
    assert_eq!(f.admin(Options, "/admin/v1/nothing", None).status, 404);
    // A 405 names OPTIONS too.
    let r = f.admin(Delete, "/admin/v1/shards", None);
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, HEAD, OPTIONS"))
    );
    // Without a credential OPTIONS says nothing about which paths exist, and a 401 challenges.
    for path in ["/admin/v1/moves", "/admin/v1/nothing"] {
        let r = f.operator(&cfg, Options, path, &[], None);
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("www-authenticate").is_some(), "{path}");
    }
    // The public paths answer anyone.
    let r = f.operator(&cfg, Options, "/health", &[], None);
    assert_eq!(
        (r.status, r.header("allow")),
        (204, Some("GET, HEAD, OPTIONS"))
    );
    let r = f.operator(&cfg, Head, "/health", &[], None);
    assert_eq!(
        (r.status, r.body.clone()),
        (200, crate::api::http::Body::Empty)
    );
}
