//! The route cache's batched version probe (`services::route_probe`): one account-D1 query per
//! isolate per check interval for every cached account, and still version-safe.

use super::*;
use crate::domain::clock::Clock;
use crate::ports::Database;
use crate::services::tenancy::{RouteCache, ACCOUNT_CHECK_INTERVAL, PROBE_IDLE, ROUTE_CACHE_TTL};
use time::Duration;

#[test]
fn one_probe_query_revalidates_every_cached_route_of_an_isolate() {
    let f = Fake::new();
    let ids: Vec<Uuid> = (0..30)
        .map(|i| f.account(&format!("probe-{i}"), None).0)
        .collect();
    let isolate = RouteCache::new(ROUTE_CACHE_TTL);
    let t0 = f.clock.now();
    let calls = || f.api_accounts.cost().calls;
    let cold = calls();
    for id in &ids {
        assert!(block_on(isolate.route(|| &f.api_accounts, *id, t0))
            .unwrap()
            .is_some());
    }
    assert_eq!(calls() - cold, 30, "a cold isolate loads each route once");
    // Every 5 s for a minute, every account asks again: one query per interval, not thirty,
    // and no route reload at the 30 s shard TTL (the probe brings the shard's record back).
    let warm = calls();
    for step in 1..=12 {
        let t = t0 + ACCOUNT_CHECK_INTERVAL * step;
        for id in &ids {
            let r = block_on(isolate.route(|| &f.api_accounts, *id, t)).unwrap();
            assert!(r.is_some_and(|r| r.account.is_active));
        }
    }
    assert_eq!(
        calls() - warm,
        12,
        "one batched probe per interval for 30 accounts"
    );
}

#[test]
fn a_change_seen_by_the_batched_probe_drops_only_that_route_and_reloads_it() {
    let f = Fake::new();
    let (a, _) = f.account("probe-changed", None);
    let (b, _) = f.account("probe-unchanged", None);
    let isolate = RouteCache::new(ROUTE_CACHE_TTL);
    let t0 = f.clock.now();
    for id in [a, b] {
        block_on(isolate.route(|| &f.api_accounts, id, t0)).unwrap();
    }
    let r = f.admin(Post, &format!("/admin/v1/accounts/{a}/deactivate"), None);
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let t = t0 + ACCOUNT_CHECK_INTERVAL;
    let before = f.api_accounts.cost().calls;
    // b's request probes both; a's version moved, so a is dropped and reloaded on its request.
    let rb = block_on(isolate.route(|| &f.api_accounts, b, t)).unwrap();
    assert!(rb.is_some_and(|r| r.account.is_active));
    let ra = block_on(isolate.route(|| &f.api_accounts, a, t)).unwrap();
    assert!(
        ra.is_some_and(|r| !r.account.is_active),
        "the deactivation is seen"
    );
    assert_eq!(
        f.api_accounts.cost().calls - before,
        2,
        "one probe, one reload of a"
    );
}

#[test]
fn a_move_to_another_shard_is_never_served_from_the_cache_after_the_interval() {
    let f = Fake::new();
    let (a, _) = f.account("probe-moved", Some("shard-eu-01"));
    let isolate = RouteCache::new(ROUTE_CACHE_TTL);
    let t0 = f.clock.now();
    let r = block_on(isolate.route(|| &f.api_accounts, a, t0))
        .unwrap()
        .unwrap();
    assert_eq!(r.shard.id, "shard-eu-01");
    // The registry row moves the account (as a move's cut-over does), version untouched: the
    // probe compares the shard too.
    f.accounts
        .exec(&format!("UPDATE accounts SET body = json_set(body, '$.db_shard_id', 'shard-eu-02') WHERE id = '{a}'"))
        .unwrap();
    let r = block_on(isolate.route(|| &f.api_accounts, a, t0 + ACCOUNT_CHECK_INTERVAL))
        .unwrap()
        .unwrap();
    assert_eq!(r.shard.id, "shard-eu-02");
}

#[test]
fn routes_idle_past_the_probe_idle_time_are_dropped_not_probed() {
    let f = Fake::new();
    let (a, _) = f.account("probe-busy", None);
    let (idle, _) = f.account("probe-idle", None);
    let isolate = RouteCache::new(ROUTE_CACHE_TTL);
    let t0 = f.clock.now();
    block_on(isolate.route(|| &f.api_accounts, idle, t0)).unwrap();
    let mut t = t0;
    while t - t0 <= PROBE_IDLE + Duration::seconds(10) {
        t += ACCOUNT_CHECK_INTERVAL;
        block_on(isolate.route(|| &f.api_accounts, a, t)).unwrap();
    }
    let before = f.api_accounts.cost().calls;
    block_on(isolate.route(|| &f.api_accounts, idle, t)).unwrap();
    assert_eq!(
        f.api_accounts.cost().calls - before,
        1,
        "the idle route is loaded again"
    );
}
