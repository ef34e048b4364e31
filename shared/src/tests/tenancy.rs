//! Tenant resolution: unknown accounts, shards this deployment does not bind, placement, UK-only and CIDR rules, custom domains, the route cache.

use super::*;

#[test]
fn unknown_account_is_indistinguishable_from_a_bad_token() {
    let f = Fake::new();
    let ghost = f.token(Uuid::from_u128(999), Role::Admin);
    let a = f.as_user(&ghost, Get, "/v1/clients", None);
    let b = f.as_user("not.a.token", Get, "/v1/clients", None);
    assert_eq!((a.status, b.status), (401, 401));
    assert_eq!(
        a.body_json().unwrap()["type"],
        b.body_json().unwrap()["type"]
    );
}

#[test]
fn tenant_on_a_shard_this_deployment_does_not_bind_gets_421_and_no_query() {
    let f = Fake::new();
    let (acct, shard) = f.account("northwind", Some("shard-ded-01"));
    assert_eq!(shard, "shard-ded-01");
    let r = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/clients", None);
    assert_eq!(r.status, 421);
    assert_eq!(
        r.body_json().unwrap()["deployment"],
        "clientdocs-api-ded-01"
    );
}

#[test]
fn new_accounts_go_to_the_least_full_shared_shard() {
    let f = Fake::new();
    let shards: Vec<String> = ["a1a", "b2b", "c3c", "d4d"]
        .iter()
        .map(|s| f.account(s, None).1)
        .collect();
    assert_eq!(
        shards,
        ["shard-eu-01", "shard-eu-02", "shard-eu-01", "shard-eu-02"]
    );
}

#[test]
fn uk_only_account_gets_451_outside_gb_and_the_header_works_only_locally() {
    let mut f = Fake::new();
    let r = f.admin(
        Post,
        "/admin/v1/accounts",
        // A test account: its HS256 token stays valid with `local` off (production accounts take
        // their identity provider's tokens only).
        Some(json!({"name": "UK", "slug": "uk-firm", "uk_only": true, "kind": "test"})),
    );
    let acct = Uuid::parse_str(r.body_json().unwrap()["id"].as_str().unwrap()).unwrap();
    let auth = format!("Bearer {}", f.token(acct, Role::Member));
    let get = |f: &Fake, country: Option<&str>| {
        let mut h = vec![("authorization", auth.as_str())];
        if let Some(c) = country {
            h.push(("x-simulated-country", c));
        }
        f.call(Get, "/v1/clients", &h, None).status
    };
    assert_eq!(get(&f, None), 451);
    assert_eq!(get(&f, Some("FR")), 451);
    assert_eq!(get(&f, Some("GB")), 200);
    f.cfg.local = false;
    assert_eq!(
        get(&f, Some("GB")),
        451,
        "not honoured outside the local environment"
    );
}

#[test]
fn the_country_is_asked_of_the_runtime_only_for_a_uk_only_account() {
    use crate::http::Country;
    use std::cell::Cell;
    use std::rc::Rc;
    let mut f = Fake::new();
    let account = |f: &Fake, slug: &str, uk_only: bool| {
        let r = f.admin(
            Post,
            "/admin/v1/accounts",
            Some(json!({"name": slug, "slug": slug, "uk_only": uk_only, "kind": "test"})),
        );
        let acct = Uuid::parse_str(r.body_json().unwrap()["id"].as_str().unwrap()).unwrap();
        format!("Bearer {}", f.token(acct, Role::Member))
    };
    let uk = account(&f, "uk-firm", true);
    let anywhere = account(&f, "any-firm", false);
    f.cfg.local = false;
    let asked = Rc::new(Cell::new(0));
    let get = |f: &Fake, auth: &str, country: Option<&str>| {
        let mut req = crate::testing::harness::request(
            Get,
            "/v1/clients",
            &[("authorization", auth)],
            None,
            "api.test",
        );
        let (asked, country) = (asked.clone(), country.map(str::to_string));
        req.cf_country = Country::ask(move || {
            asked.set(asked.get() + 1);
            country.clone()
        });
        f.raw(req).status
    };
    assert_eq!(get(&f, &uk, Some("GB")), 200);
    assert_eq!(get(&f, &uk, Some("gb")), 200);
    assert_eq!(get(&f, &uk, Some("FR")), 451);
    assert_eq!(get(&f, &uk, None), 451);
    assert_eq!(asked.get(), 4, "a UK-only account's request asks once each");
    assert_eq!(get(&f, &anywhere, None), 200);
    assert_eq!(get(&f, &anywhere, Some("FR")), 200);
    assert_eq!(asked.get(), 4, "another account's requests never ask");
}

#[test]
fn cidr_allowlist_refuses_other_addresses() {
    let f = Fake::new();
    let r = f.admin(
        Post,
        "/admin/v1/accounts",
        Some(json!({"name": "Locked", "slug": "locked", "cidr_allowlist": ["203.0.113.0/24"]})),
    );
    let acct = Uuid::parse_str(r.body_json().unwrap()["id"].as_str().unwrap()).unwrap();
    let auth = format!("Bearer {}", f.token(acct, Role::Member));
    let inside = f.call(
        Get,
        "/v1/clients",
        &[
            ("authorization", &auth),
            ("cf-connecting-ip", "203.0.113.9"),
        ],
        None,
    );
    let outside = f.call(
        Get,
        "/v1/clients",
        &[
            ("authorization", &auth),
            ("cf-connecting-ip", "198.51.100.1"),
        ],
        None,
    );
    assert_eq!((inside.status, outside.status), (200, 403));
}

#[test]
fn custom_domain_must_agree_with_the_token() {
    let f = Fake::new();
    let (a, _) = f.account("acme", None);
    let (b, _) = f.account("brightwater", None);
    let r = f.admin(
        Post,
        &format!("/admin/v1/accounts/{a}/domains"),
        Some(json!({"hostname": "clients.acme.example"})),
    );
    assert_eq!(r.status, 201);
    let on_a = |tok: String| {
        f.call(
            Get,
            "/v1/clients",
            &[
                ("authorization", &format!("Bearer {tok}")),
                ("host", "clients.acme.example"),
            ],
            None,
        )
        .status
    };
    assert_eq!(on_a(f.token(a, Role::Member)), 200);
    assert_eq!(on_a(f.token(b, Role::Member)), 403);
}

#[test]
fn a_request_whose_route_is_cached_makes_no_account_d1_query() {
    use crate::ports::Database;
    let f = Fake::new();
    let (acct, _) = f.account("routed", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let id = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let before = f.api_accounts.cost().calls;
    assert_eq!(
        f.as_user(&tok, Get, &format!("/v1/clients/{id}"), None)
            .status,
        200
    );
    assert_eq!(
        f.api_accounts.cost().calls,
        before,
        "route and domain served from the cache"
    );
    // After the TTL the route is loaded again.
    f.clock
        .advance(crate::services::tenancy::ROUTE_CACHE_TTL + time::Duration::seconds(1));
    assert_eq!(
        f.as_user(&tok, Get, &format!("/v1/clients/{id}"), None)
            .status,
        200
    );
    assert!(f.api_accounts.cost().calls > before);
}
