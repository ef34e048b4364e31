//! The checkpoint bucket against whoever can write to it, and against failures half-way: an
//! object that is not a checkpoint is a finding and the job writes under an alternate key; a
//! disposal whose D1 batch failed after its object was written is carried out by the retry
//! from that same object.

use super::audit_insider::*;
use crate::domain::checkpoint::period_label;
use crate::domain::clock::Clock;
use crate::jobs::Outcome;
use crate::services::checkpoints;
use crate::testing::fakes::block_on;
use crate::testing::harness::START;
use time::Duration;

#[test]
fn a_garbage_object_at_the_next_key_is_a_finding_and_the_job_writes_an_alternate() {
    let t = setup();
    t.events(1);
    t.f.clock.advance(Duration::minutes(65)); // 10:05, writes 09:00
    t.job();
    let next = period_label(START + Duration::hours(1)); // 10:00
    t.f.checkpoints
        .objects
        .borrow_mut()
        .insert(checkpoints::object_key(t.acct, &next), b"x".to_vec());
    t.f.clock.advance(Duration::hours(1));
    let run = t.job();
    assert_eq!(run.outcome, Outcome::Partial, "{:?}", run.detail);
    assert!(t
        .f
        .checkpoints
        .objects
        .borrow()
        .contains_key(&checkpoints::alternate_key(t.acct, &next, 1)));
    for _ in 0..2 {
        t.f.clock.advance(Duration::hours(1));
        assert_eq!(t.job().outcome, Outcome::Ok);
    }
    let (status, v) = t.verify("");
    assert_eq!(status, 200, "{v}");
    assert!(!ok(&v));
    let f = v["checkpoints"]["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["problem"], "corrupt");
    assert_eq!(f[0]["period"], next);
}

#[test]
fn a_disposal_that_failed_after_its_object_was_written_is_completed_from_that_object() {
    let t = setup();
    t.events(3);
    t.f.clock.advance(Duration::minutes(65));
    t.job();
    t.sql("CREATE TRIGGER transient BEFORE INSERT ON audit_disposals BEGIN SELECT RAISE(ABORT, 'D1_ERROR: network'); END");
    let db = t.f.shard_db(SHARD);
    let dispose = || {
        block_on(checkpoints::dispose_expired(
            &db,
            &t.f.checkpoints,
            &t.f.seal.signer,
            &t.f.seal.keys,
            t.acct,
            0,
            t.f.clock.now(),
        ))
    };
    assert!(dispose().is_err());
    t.sql("DROP TRIGGER transient");
    t.f.clock.advance(Duration::hours(1));
    assert_eq!(t.job().outcome, Outcome::Ok);
    let (_, v) = t.verify("");
    assert!(ok(&v), "the chain continues from the disposal object: {v}");
    let disposals = || {
        t.f.checkpoints
            .objects
            .borrow()
            .keys()
            .filter(|k| k.contains(".disposal-"))
            .count()
    };
    assert_eq!(disposals(), 1);
    assert_eq!(dispose().unwrap(), 2, "the retry disposes of links 1..=2");
    assert_eq!(disposals(), 1, "from the same object");
    let (_, v) = t.verify("");
    assert!(ok(&v), "{v}");
    assert_eq!(v["started_after"], 2);
}
