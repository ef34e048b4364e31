//! Platform events: what system jobs tell operators (not tenant data, not in any tenant's audit
//! trail). CloudEvents 1.0 structured JSON on the `platform-events` queue; the consumer records
//! each in the account D1's `platform_events`, once per event id. Operators read them at
//! `GET /admin/v1/platform-events` or subscribe a consumer of their own (alerting, chat).

use crate::consumer::Decision;
use crate::ports::{Database, Stmt, StoreError};
use serde_json::{json, Value};

fn valid(body: &Value) -> Result<&str, String> {
    let id = body["id"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 100);
    let ty = body["type"].as_str().filter(|t| t.starts_with("platform."));
    match (id, ty, body["time"].as_str()) {
        (Some(id), Some(_), Some(_)) => Ok(id),
        _ => Err("not a platform event (id, type platform.*, time required)".into()),
    }
}

/// Record a batch: each valid event once (`INSERT OR IGNORE`), malformed ones dead-lettered,
/// a storage failure retried.
pub async fn record(db: &impl Database, bodies: &[Value]) -> Vec<Decision> {
    let mut out = Vec::with_capacity(bodies.len());
    for b in bodies {
        let d = match valid(b) {
            Err(reason) => Decision::DeadLetter { reason },
            Ok(id) => match db
                .query(Stmt::new(
                    "INSERT OR IGNORE INTO platform_events (id, body) VALUES (?1, ?2)",
                    vec![json!(id), json!(b.to_string())],
                ))
                .await
            {
                Ok(_) => Decision::Ack,
                Err(StoreError::Constraint(m)) => Decision::DeadLetter { reason: m },
                Err(_) => Decision::Retry { delay_seconds: 10 },
            },
        };
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::CountingEntropy;
    use crate::domain::platform_events::{event, REBALANCE_PROPOSED};
    use crate::fakes::{block_on, SqliteDb};
    use crate::store::platform_events::list_stmt;
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
}
