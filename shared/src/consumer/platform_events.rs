//! Recording platform events: what system jobs tell operators (not tenant data, not in any
//! tenant's audit trail). CloudEvents 1.0 structured JSON (`domain::platform_events`) on the
//! `platform-events` queue; the consumer records each in the account D1's `platform_events`,
//! once per event id. Operators read them at `GET /admin/v1/platform-events`
//! (`store::platform_events`) or subscribe a consumer of their own (alerting, chat).

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
mod tests;
