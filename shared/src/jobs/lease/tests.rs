use super::*;
use crate::domain::clock::Clock;
use crate::store::job_state::{acquire, cursor};
use crate::testing::fakes::block_on;
use crate::testing::harness::Fake;
use serde_json::json;

fn take(f: &Fake, holder: &str) -> Acquired {
    block_on(acquire(
        &*f.accounts,
        "retention",
        "shard-eu-01",
        holder,
        f.clock.now(),
        Job::Retention.lease_ttl(),
    ))
    .unwrap()
}

fn fence_of(a: Acquired) -> Fence {
    match a {
        Acquired::Granted { fence, .. } => fence,
        held => panic!("not granted: {held:?}"),
    }
}

#[test]
fn a_live_lease_is_refused_to_another_holder_and_names_its_holder() {
    let f = Fake::new();
    let first = fence_of(take(&f, "run-a"));
    assert_eq!(first.token, 1);
    f.clock
        .advance(Job::Retention.lease_ttl() - time::Duration::seconds(1));
    match take(&f, "run-b") {
        Acquired::Held { holder, .. } => assert_eq!(holder, "run-a"),
        granted => panic!("a live lease was granted again: {granted:?}"),
    }
}

#[test]
fn an_expired_lease_is_taken_over_with_a_larger_token() {
    let f = Fake::new();
    let first = fence_of(take(&f, "run-a"));
    // run-a crashed: nothing released its lease; it expires on its own.
    f.clock.advance(Job::Retention.lease_ttl());
    let second = fence_of(take(&f, "run-b"));
    assert!(second.token > first.token, "{second:?} after {first:?}");
    assert_eq!(second.lease_id, first.lease_id);
    // Released leases keep their token: the next run still gets a larger one.
    block_on(crate::ports::Database::query(
        &*f.accounts,
        crate::store::job_state::release_stmt(&second, f.clock.now()),
    ))
    .unwrap();
    let third = fence_of(take(&f, "run-c"));
    assert!(third.token > second.token);
}

#[test]
fn a_stale_holders_cursor_write_is_refused_and_the_new_holders_lands() {
    let f = Fake::new();
    let stale = fence_of(take(&f, "run-a"));
    f.clock
        .advance(Job::Retention.lease_ttl() + time::Duration::seconds(1));
    let fresh = fence_of(take(&f, "run-b"));
    let id = "retention:shard-eu-01";
    let body = |who: &str| json!({"id": id, "job": "retention", "cursor": {"by": who}});
    block_on(write_cursor(&f, id, Some(&body("run-b")), &fresh)).unwrap();
    let refused = block_on(write_cursor(&f, id, Some(&body("run-a")), &stale));
    assert!(
        matches!(refused, Err(JobError::LeaseLost { token: 1, .. })),
        "{refused:?}"
    );
    let refused_delete = block_on(write_cursor(&f, id, None, &stale));
    assert!(matches!(refused_delete, Err(JobError::LeaseLost { .. })));
    let stored = block_on(cursor(&*f.accounts, id)).unwrap().unwrap();
    assert_eq!(
        stored["cursor"]["by"], "run-b",
        "the stale run moved nothing"
    );
    block_on(write_cursor(&f, id, None, &fresh)).unwrap();
    assert!(block_on(cursor(&*f.accounts, id)).unwrap().is_none());
}

#[test]
fn a_run_that_renews_keeps_its_lease_and_a_stale_run_learns_it_lost_it() {
    let f = Fake::new();
    let first = fence_of(take(&f, "run-a"));
    // Renewing before the lease runs out keeps it: another run is still refused later.
    f.clock
        .advance(Job::Retention.lease_ttl() - time::Duration::seconds(1));
    block_on(renew(&f, Job::Retention, &first)).unwrap();
    f.clock.advance(time::Duration::seconds(2));
    assert!(
        matches!(take(&f, "run-b"), Acquired::Held { .. }),
        "renewed"
    );
    // Left to expire, it is taken over; the old holder's next renewal says so, and it stops.
    f.clock.advance(Job::Retention.lease_ttl());
    let second = fence_of(take(&f, "run-b"));
    assert!(second.token > first.token);
    assert!(matches!(
        block_on(renew(&f, Job::Retention, &first)),
        Err(JobError::LeaseLost { .. })
    ));
    block_on(renew(&f, Job::Retention, &second)).unwrap();
}
