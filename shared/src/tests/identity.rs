//! Identity from the firms' own providers, natively: issuers configured through
//! `/v1/settings/identity`, RS256/ES256 tokens verified against the issuer's JWKS (a counting
//! fake fetch), key rotation, unknown kids, algorithm confusion, HS256 only for test accounts.

use super::*;
use crate::domain::clock::Clock;
use crate::domain::identity::tests::{claims, ec_key, rsa_key, sign};
use crate::domain::identity::PublicKey;
use crate::services::identity::REFETCH_INTERVAL;
use jsonwebtoken::Algorithm;
use time::Duration;

const ISS: &str = "https://idp.firm.example";
const JWKS: &str = "https://idp.firm.example/keys";

fn jwks(keys: &[PublicKey]) -> serde_json::Value {
    json!({"keys": keys.iter().map(|k| {
        let mut v = serde_json::to_value(k).unwrap_or_default();
        v["use"] = json!("sig");
        if v["kty"] == "EC" {
            v["crv"] = json!("P-256");
        }
        v
    }).collect::<Vec<_>>()})
}

fn issuer_settings(audience: &str) -> serde_json::Value {
    json!({"issuers": [{
        "issuer": ISS, "audience": audience, "jwks_uri": JWKS, "algorithms": ["RS256", "ES256"],
        "role_claim": "roles",
        "role_values": {"admin": ["ClientDocs.Admin"], "member": ["ClientDocs.Adviser"], "readonly": ["ClientDocs.Reader"]}
    }]})
}

/// A test account trusting the fake IdP (audience `clientdocs`), with the user ann@firm.example.
fn firm(f: &Fake, slug: &str) -> (Uuid, String) {
    let (acct, _) = f.account(slug, Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let r = f.as_user(
        &admin,
        Put,
        "/v1/settings/identity",
        Some(issuer_settings("clientdocs")),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let r = f.as_user(
        &admin,
        Post,
        "/v1/users",
        Some(json!({"email": "ann@firm.example", "display_name": "Ann", "role": "member"})),
    );
    (acct, created_id(&r))
}

fn idp_token(f: &Fake, alg: Algorithm, kid: &str, roles: &[&str]) -> String {
    let mut c = claims(f.clock.now());
    c["roles"] = json!(roles);
    sign(alg, Some(kid), &c)
}

#[test]
fn a_token_of_the_accounts_own_provider_acts_as_the_matched_user_with_the_claimed_role() {
    let f = Fake::new();
    f.fetch.serve(JWKS, &jwks(&[rsa_key("r1"), ec_key("e1")]));
    let (_, ann) = firm(&f, "firm-a");
    for (alg, kid) in [(Algorithm::RS256, "r1"), (Algorithm::ES256, "e1")] {
        let t = idp_token(&f, alg, kid, &["ClientDocs.Adviser"]);
        let r = f.as_user(&t, Post, "/v1/clients", Some(client_body()));
        assert_eq!(r.status, 201, "{alg:?}: {:?}", r.body_json());
    }
    f.drain_queue();
    let admin_tok = idp_token(&f, Algorithm::RS256, "r1", &["ClientDocs.Admin"]);
    let audit = f.as_user(&admin_tok, Get, "/v1/audit?limit=200", None);
    assert_eq!(audit.status, 200, "{:?}", audit.body_json());
    let rows = audit.body_json().cloned().unwrap_or_default();
    let actors: Vec<_> = rows["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["action"] == "client.created")
        .map(|r| r["actor"]["id"].clone())
        .collect();
    assert_eq!(actors, [json!(ann), json!(ann)], "{rows}");
    // A reader may not write; a role the mapping does not know is no role at all.
    let reader = idp_token(&f, Algorithm::RS256, "r1", &["ClientDocs.Reader"]);
    assert_eq!(
        f.as_user(&reader, Post, "/v1/clients", Some(client_body()))
            .status,
        403
    );
    assert_eq!(f.as_user(&reader, Get, "/v1/clients", None).status, 200);
    let nobody = idp_token(&f, Algorithm::RS256, "r1", &["Payroll"]);
    assert_eq!(f.as_user(&nobody, Get, "/v1/clients", None).status, 403);
    // One fetch served all of it (the keys are cached in the isolate and in KV).
    assert_eq!(f.fetch.calls(JWKS), 1);
    assert!(f
        .cache
        .entries
        .borrow()
        .contains_key(&crate::services::identity::kv_key(JWKS)));
}

#[test]
fn a_flood_of_unknown_kids_costs_one_fetch_per_interval() {
    let f = Fake::new();
    f.fetch.serve(JWKS, &jwks(&[rsa_key("r1")]));
    firm(&f, "firm-flood");
    let good = idp_token(&f, Algorithm::RS256, "r1", &["ClientDocs.Adviser"]);
    assert_eq!(f.as_user(&good, Get, "/v1/clients", None).status, 200);
    assert_eq!(f.fetch.calls(JWKS), 1);
    for round in 0..3 {
        f.clock.advance(REFETCH_INTERVAL);
        for i in 0..50 {
            let t = idp_token(&f, Algorithm::RS256, &format!("made-up-{round}-{i}"), &[]);
            let r = f.as_user(&t, Get, "/v1/clients", None);
            assert_eq!(r.status, 401, "{:?}", r.body_json());
        }
        assert_eq!(f.fetch.calls(JWKS), 2 + round, "one refetch per interval");
        // The known key still works all along, with no fetch.
        let good = idp_token(&f, Algorithm::RS256, "r1", &["ClientDocs.Adviser"]);
        assert_eq!(f.as_user(&good, Get, "/v1/clients", None).status, 200);
        assert_eq!(f.fetch.calls(JWKS), 2 + round);
    }
}

#[test]
fn rotation_the_new_key_works_after_one_refetch_and_the_retired_key_stops() {
    let f = Fake::new();
    f.fetch.serve(JWKS, &jwks(&[rsa_key("old")]));
    firm(&f, "firm-rotate");
    let old = idp_token(&f, Algorithm::RS256, "old", &["ClientDocs.Adviser"]);
    assert_eq!(f.as_user(&old, Get, "/v1/clients", None).status, 200);
    // The IdP publishes a second key, signs with it, then retires the old one.
    f.fetch.serve(JWKS, &jwks(&[ec_key("new")]));
    f.clock.advance(REFETCH_INTERVAL);
    let new = idp_token(&f, Algorithm::ES256, "new", &["ClientDocs.Adviser"]);
    assert_eq!(f.as_user(&new, Get, "/v1/clients", None).status, 200);
    assert_eq!(f.fetch.calls(JWKS), 2);
    let old = idp_token(&f, Algorithm::RS256, "old", &["ClientDocs.Adviser"]);
    let r = f.as_user(&old, Get, "/v1/clients", None);
    assert_eq!(r.status, 401, "{:?}", r.body_json());
}

#[test]
fn a_second_isolate_takes_the_keys_from_kv_without_asking_the_issuer() {
    let f = Fake::new();
    f.fetch.serve(JWKS, &jwks(&[rsa_key("r1")]));
    firm(&f, "firm-kv");
    let t = idp_token(&f, Algorithm::RS256, "r1", &["ClientDocs.Adviser"]);
    assert_eq!(f.as_user(&t, Get, "/v1/clients", None).status, 200);
    let other = crate::services::identity::KeyCache::new(REFETCH_INTERVAL);
    let keys = block_on(other.keys(Some(&f.cache), &f.fetch, JWKS, "r1", f.clock.now()));
    assert_eq!(keys.map(|k| k.len()).ok(), Some(1));
    assert_eq!(f.fetch.calls(JWKS), 1);
    // Past the keys' expiry (max-age 3600) KV's copy is gone too: the issuer is asked again.
    let later = f.clock.now() + Duration::hours(1);
    let keys = block_on(other.keys(Some(&f.cache), &f.fetch, JWKS, "r1", later));
    assert!(keys.is_ok());
    assert_eq!(f.fetch.calls(JWKS), 2);
}

#[test]
fn forged_tokens_are_refused_none_confused_hs256_foreign_issuer_wrong_audience_expired() {
    use base64::Engine as _;
    let f = Fake::new();
    f.fetch.serve(JWKS, &jwks(&[rsa_key("r1")]));
    firm(&f, "firm-forged");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut forged = vec![];
    // alg none
    let mut c = claims(f.clock.now());
    c["roles"] = json!(["ClientDocs.Admin"]);
    forged.push(format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","kid":"r1"}"#),
        b64.encode(c.to_string())
    ));
    // HS256 signed with the issuer's RSA public key (PEM) as the HMAC secret
    forged.push(sign(Algorithm::HS256, Some("r1"), &c));
    // foreign issuer, wrong audience, expired
    let mut other = c.clone();
    other["iss"] = json!("https://evil.example");
    forged.push(sign(Algorithm::RS256, Some("r1"), &other));
    let mut other = c.clone();
    other["aud"] = json!("another-app");
    forged.push(sign(Algorithm::RS256, Some("r1"), &other));
    let mut other = c.clone();
    other["exp"] = json!(f.clock.now().unix_timestamp() - 120);
    forged.push(sign(Algorithm::RS256, Some("r1"), &other));
    // an algorithm outside RS256/ES256
    forged.push(sign(Algorithm::HS384, Some("r1"), &c));
    for (i, t) in forged.iter().enumerate() {
        let r = f.as_user(t, Get, "/v1/clients", None);
        assert_eq!(r.status, 401, "forgery {i}: {:?}", r.body_json());
    }
}

#[test]
fn an_alg_the_account_does_not_list_is_refused_though_the_key_would_verify_it() {
    let f = Fake::new();
    f.fetch.serve(JWKS, &jwks(&[ec_key("e1")]));
    let (acct, _) = firm(&f, "firm-rsa-only");
    let mut s = issuer_settings("clientdocs");
    s["issuers"][0]["algorithms"] = json!(["RS256"]);
    let admin = f.token(acct, Role::Admin);
    assert_eq!(
        f.as_user(&admin, Put, "/v1/settings/identity", Some(s))
            .status,
        200
    );
    let t = idp_token(&f, Algorithm::ES256, "e1", &["ClientDocs.Adviser"]);
    assert_eq!(f.as_user(&t, Get, "/v1/clients", None).status, 401);
}

#[test]
fn hs256_tokens_are_refused_for_production_accounts_when_deployed() {
    let mut f = Fake::new();
    f.cfg.local = false;
    let r = f.admin(
        Post,
        "/admin/v1/accounts",
        Some(json!({"name": "Prod", "slug": "prod", "kind": "production", "shard_id": "shard-eu-01"})),
    );
    assert_eq!(r.status, 201, "{:?}", r.body_json());
    let prod = Uuid::parse_str(
        r.body_json()
            .and_then(|v| v["id"].as_str())
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let (test, _) = f.account("still-test", Some("shard-eu-01"));
    let r = f.as_user(&f.token(prod, Role::Admin), Get, "/v1/clients", None);
    assert_eq!(r.status, 401, "{:?}", r.body_json());
    assert_eq!(
        f.as_user(&f.token(test, Role::Admin), Get, "/v1/clients", None)
            .status,
        200
    );
}

#[test]
fn a_token_naming_no_live_user_of_the_account_is_refused() {
    let f = Fake::new();
    f.fetch.serve(JWKS, &jwks(&[rsa_key("r1")]));
    let (acct, ann) = firm(&f, "firm-leaver");
    let t = idp_token(&f, Algorithm::RS256, "r1", &["ClientDocs.Adviser"]);
    assert_eq!(f.as_user(&t, Get, "/v1/clients", None).status, 200);
    let admin = f.token(acct, Role::Admin);
    assert_eq!(
        f.as_user(&admin, Delete, &format!("/v1/users/{ann}"), None)
            .status,
        204
    );
    assert_eq!(f.as_user(&t, Get, "/v1/clients", None).status, 403);
}

#[test]
fn one_issuer_and_audience_belongs_to_one_account() {
    let f = Fake::new();
    f.fetch.serve(JWKS, &jwks(&[rsa_key("r1")]));
    firm(&f, "firm-first");
    let (other, _) = f.account("firm-squatter", Some("shard-eu-02"));
    let admin = f.token(other, Role::Admin);
    let r = f.as_user(
        &admin,
        Put,
        "/v1/settings/identity",
        Some(issuer_settings("clientdocs")),
    );
    assert_eq!(r.status, 409, "{:?}", r.body_json());
    // Another audience of the same issuer (another app registration) is another pair.
    let r = f.as_user(
        &admin,
        Put,
        "/v1/settings/identity",
        Some(issuer_settings("clientdocs-2")),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
}

#[test]
fn settings_that_drop_the_callers_own_issuer_are_refused_and_dropped_issuers_stop_working() {
    let f = Fake::new();
    f.fetch.serve(JWKS, &jwks(&[rsa_key("r1")]));
    let (acct, _) = firm(&f, "firm-lockout");
    let idp_admin = idp_token(&f, Algorithm::RS256, "r1", &["ClientDocs.Admin"]);
    let r = f.as_user(
        &idp_admin,
        Put,
        "/v1/settings/identity",
        Some(json!({"issuers": []})),
    );
    assert_eq!(r.status, 409, "{:?}", r.body_json());
    let r = f.as_user(&idp_admin, Get, "/v1/settings/identity", None);
    assert_eq!(
        r.body_json().map(|v| v["issuers"][0]["issuer"].clone()),
        Some(json!(ISS))
    );
    // A member may not read them.
    let member = idp_token(&f, Algorithm::RS256, "r1", &["ClientDocs.Adviser"]);
    assert_eq!(
        f.as_user(&member, Get, "/v1/settings/identity", None)
            .status,
        403
    );
    // Dropped by a test-account admin: the issuer's tokens no longer reach the account.
    let admin = f.token(acct, Role::Admin);
    let r = f.as_user(
        &admin,
        Put,
        "/v1/settings/identity",
        Some(json!({"issuers": []})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    assert_eq!(f.as_user(&member, Get, "/v1/clients", None).status, 401);
    // Each change is an account event with the value before and after, in the audit trail.
    f.drain_queue();
    let r = f.as_user(&admin, Get, "/v1/audit?limit=200", None);
    let items = r.body_json().cloned().unwrap_or_default()["items"].clone();
    let changes: Vec<&serde_json::Value> = items
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["action"] == "account.updated" && e["changed_fields"] == json!(["identity"]))
        .collect();
    assert_eq!(changes.len(), 2, "{items:#}");
    assert_eq!(
        changes[1]["changes"]["identity"]["after"],
        json!({"issuers": []})
    );
}

#[test]
fn settings_refuse_plain_http_issuers_when_deployed_and_unknown_fields() {
    let mut f = Fake::new();
    let (acct, _) = f.account("firm-http", Some("shard-eu-01"));
    f.cfg.local = false;
    let admin = f.token(acct, Role::Admin);
    let mut s = issuer_settings("clientdocs");
    s["issuers"][0]["jwks_uri"] = json!("http://idp.firm.example/keys");
    assert_eq!(
        f.as_user(&admin, Put, "/v1/settings/identity", Some(s))
            .status,
        400
    );
    let mut s = issuer_settings("clientdocs");
    s["issuers"][0]["algorithms"] = json!(["HS256"]);
    assert_eq!(
        f.as_user(&admin, Put, "/v1/settings/identity", Some(s))
            .status,
        400
    );
}
