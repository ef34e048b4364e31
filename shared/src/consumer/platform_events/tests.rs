use super::*;
use crate::domain::clock::CountingEntropy;
use crate::domain::platform_events::{event, REBALANCE_PROPOSED};
use crate::store::platform_events::list_stmt;
use crate::testing::fakes::{block_on, SqliteDb};
use serde_json::json;
use time::macros::datetime;

#[test]
fn records_each_event_once_and_dead_letters_malformed_ones() {
    let db = SqliteDb::accounts().unwrap();
    let e = event(
        REBALANCE_PROPOSED,
        "/jobs/shard_health",
        "rebalance_proposals/x",
        json!({"kind": "move"}),
        datetime!(2026-11-26 09:00 UTC),
        &CountingEntropy::default(),
    );
    let d = block_on(record(&db, &[e.clone(), e.clone(), json!({"id": "y"})]));
    assert_eq!(d[0], Decision::Ack);
    assert_eq!(d[1], Decision::Ack, "redelivery is a no-op");
    assert!(matches!(d[2], Decision::DeadLetter { .. }));
    let rows = db.query_json("SELECT type FROM platform_events");
    assert_eq!(rows.len(), 1);
    let listed = block_on(db.query(list_stmt(Some(REBALANCE_PROPOSED), 10))).unwrap();
    assert_eq!(listed.rows.len(), 1);
}
