//! The account D1's load on workerd (issue 17): account-D1 queries per 1,000 tenant requests
//! over accounts whose routes no isolate has cached yet, counted from the local
//! `x-account-d1-cost` header of each response.

use integration_tests::*;
use std::time::{Duration, Instant};

pub const TESTS: &[NamedTest] = &[(
    "account_d1_queries_per_1000_requests_are_the_cold_loads_and_one_probe_per_interval",
    per_thousand,
)];

const ACCOUNTS: usize = 20;
const REQUESTS: usize = 1000;
/// Requests are paced 12 ms apart (12 s in all), so the 5 s probe falls due about twice; this is
/// the load's shape, not a wait for a condition.
const PACE: Duration = Duration::from_millis(12);

fn account_calls(r: &Reply) -> Result<u64, String> {
    let h = r
        .header("x-account-d1-cost")
        .ok_or("no x-account-d1-cost header on a tenant response")?;
    h.split(';')
        .find_map(|p| p.strip_prefix("calls="))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("x-account-d1-cost: {h}"))
}

fn per_thousand(env: &Env) -> TestResult {
    let tenants = (0..ACCOUNTS)
        .map(|_| env.tenant(Some("shard-eu-01")))
        .collect::<Result<Vec<_>, _>>()?;
    let t0 = Instant::now();
    let mut total = 0u64;
    for i in 0..REQUESTS {
        if let Some(ahead) = (t0 + PACE * i as u32).checked_duration_since(Instant::now()) {
            std::thread::sleep(ahead);
        }
        let t = &tenants[i % ACCOUNTS];
        let r = env.call(t, &t.member, "GET", "/v1/clients?limit=1", None, &[])?;
        expect_status(&r, 200, "list clients")?;
        total += account_calls(&r)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let intervals = (secs / 5.0).ceil() as u64 + 1;
    eprintln!(
        "account-D1 queries for {REQUESTS} requests over {ACCOUNTS} cold accounts in {secs:.1} s: {total}"
    );
    // One route load per account, then at most one batched probe per 5 s interval (one query
    // per account per interval before the batched probe: about 20 + 20 * 2 here).
    ensure(
        total >= ACCOUNTS as u64 && total <= ACCOUNTS as u64 + intervals + 2,
        format!("{total} account-D1 queries for {REQUESTS} requests in {secs:.1} s ({intervals} intervals)"),
    )
}
