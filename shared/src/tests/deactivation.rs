//! How fast a deactivation reaches an isolate that did not make it: within
//! `ACCOUNT_CHECK_INTERVAL` (5 s), measured with the injected clock.

use super::*;
use crate::domain::clock::Clock;
use crate::ports::Database;
use crate::services::tenancy::{RouteCache, ACCOUNT_CHECK_INTERVAL, ROUTE_CACHE_TTL};
use time::Duration;

#[test]
fn a_deactivation_made_in_another_isolate_is_seen_within_the_check_interval() {
    let f = Fake::new();
    let (acct, _) = f.account("deactivated-elsewhere", Some("shard-eu-01"));
    // Another isolate's route cache, warmed now.
    let other = RouteCache::new(ROUTE_CACHE_TTL);
    let t0 = f.clock.now();
    let route = block_on(other.route(|| &f.api_accounts, acct, t0))
        .ok()
        .flatten();
    assert!(route.is_some_and(|r| r.account.is_active));
    // Deactivated through the operator API (this isolate forgets; the other does not know).
    let r = f.admin(Post, &format!("/admin/v1/accounts/{acct}/deactivate"), None);
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let before = f.api_accounts.cost();
    let just_before = t0 + ACCOUNT_CHECK_INTERVAL - Duration::milliseconds(1);
    let stale = block_on(other.route(|| &f.api_accounts, acct, just_before))
        .ok()
        .flatten();
    assert!(
        stale.is_some_and(|r| r.account.is_active),
        "served from the cache"
    );
    assert_eq!(
        f.api_accounts.cost(),
        before,
        "no query inside the interval"
    );
    let at_bound = t0 + ACCOUNT_CHECK_INTERVAL;
    let fresh = block_on(other.route(|| &f.api_accounts, acct, at_bound))
        .ok()
        .flatten();
    assert!(
        fresh.is_some_and(|r| !r.account.is_active),
        "seen at the bound"
    );
    assert!(ACCOUNT_CHECK_INTERVAL <= Duration::seconds(5));
}

#[test]
fn an_unchanged_account_costs_one_row_read_per_check_interval() {
    let f = Fake::new();
    let (acct, _) = f.account("unchanged", Some("shard-eu-01"));
    let cache = RouteCache::new(ROUTE_CACHE_TTL);
    let t0 = f.clock.now();
    assert!(block_on(cache.route(|| &f.api_accounts, acct, t0)).is_ok());
    let before = f.api_accounts.cost();
    let r = block_on(cache.route(|| &f.api_accounts, acct, t0 + ACCOUNT_CHECK_INTERVAL));
    assert!(r.ok().flatten().is_some());
    let after = f.api_accounts.cost();
    assert_eq!(after.calls - before.calls, 1, "one probe");
    assert_eq!(after.rows_read - before.rows_read, 1, "of one row");
}

#[test]
fn a_deactivated_account_is_refused_by_the_api_of_another_isolate_within_the_interval() {
    let f = Fake::new();
    let (acct, _) = f.account("api-deactivated", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    assert_eq!(f.as_user(&tok, Get, "/v1/clients", None).status, 200);
    // Deactivated by someone else: the row changes, this isolate's cache is not told.
    let w = crate::services::changes::AccountWrite {
        account: acct,
        field: "is_active",
        value: json!(false),
        event: crate::domain::event::ChangeEvent::new(
            Uuid::from_u128(0xdead),
            f.clock.now(),
            &crate::domain::event::Origin {
                deployment: "operator",
                shard_id: "shard-eu-01",
                account_id: acct,
                actor: crate::domain::event::Actor::System {
                    id: "operator".into(),
                },
                request_id: "req-elsewhere",
            },
            crate::domain::event::Change {
                entity_type: "accounts",
                entity_singular: "account",
                entity_id: acct,
                action: crate::domain::event::Action::Updated,
                entity_version: 0,
                changed_fields: vec!["is_active".into()],
            },
        ),
    };
    assert!(block_on(crate::services::changes::commit_account(&*f.accounts, &w)).is_ok());
    f.clock
        .advance(ACCOUNT_CHECK_INTERVAL - Duration::milliseconds(1));
    assert_eq!(f.as_user(&tok, Get, "/v1/clients", None).status, 200);
    f.clock.advance(Duration::milliseconds(1));
    assert_eq!(f.as_user(&tok, Get, "/v1/clients", None).status, 403);
}
