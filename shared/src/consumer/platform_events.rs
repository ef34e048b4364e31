//! Recording platform events: what system jobs tell operators (not tenant data, not in any
//! tenant's audit trail). CloudEvents 1.0 structured JSON (`domain::platform_events`) on the
//! `platform-events` queue; the consumer records each in the account D1's `platform_events`,
//! once per event id. Operators read them at `GET /admin/v1/platform-events`
//! (`store::platform_events`) or subscribe a consumer of their own (alerting, chat).

use crate::consumer::{Decision, Reason};
use crate::ports::{Database, StoreError};
use crate::store::platform_events as store;
use serde_json::Value;

fn valid(body: &Value) -> Result<&str, Reason> {
    let id = body["id"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 100);
    let ty = body["type"].as_str().filter(|t| t.starts_with("platform."));
    match (id, ty, body["time"].as_str()) {
        (Some(id), Some(_), Some(_)) => Ok(id),
        _ => Err(Reason::NotAPlatformEvent),
    }
}

/// Record a batch: each valid event once (`INSERT OR IGNORE`), malformed ones dead-lettered,
/// a storage failure retried.
pub async fn record(db: &impl Database, bodies: &[Value]) -> Vec<Decision> {
    let mut out = Vec::with_capacity(bodies.len());
    for b in bodies {
        let d = match valid(b) {
            Err(reason) => Decision::DeadLetter { reason },
            Ok(id) => match db.query(store::insert_stmt(id, b)).await {
                Ok(_) => Decision::Ack,
                Err(StoreError::Constraint(m)) => Decision::DeadLetter {
                    reason: Reason::Refused(m),
                },
                Err(_) => Decision::Retry { delay_seconds: 10 },
            },
        };
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests;
