//! Dead letters: messages that will never succeed (undecodable, unknown schema, unroutable) or
//! that failed past `max_retries`. The change-event consumer wraps the ones it refuses with a
//! reason and sends them to the dead-letter queue; the dead-letter queue's consumer records
//! every message in `dead_letters` (account D1); operators list and replay them through
//! `store::dead_letters`.

use crate::consumer::Decision;
use crate::domain::clock::rfc3339;
use crate::ports::{Database, Stmt};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Marks a message the consumer wrapped itself (as opposed to one the queue moved here after
/// `max_retries` failed deliveries).
pub const MARKER: &str = "dead_letter";

pub fn wrap(reason: &str, source_queue: &str, message: &Value) -> Value {
    json!({ MARKER: 1, "reason": reason, "source_queue": source_queue, "message": message })
}

/// `(reason, source queue, original message)` of a DLQ message.
pub fn unwrap(dlq_message: &Value, default_source: &str) -> (String, String, Value) {
    if dlq_message.get(MARKER).is_some() {
        (
            dlq_message["reason"]
                .as_str()
                .unwrap_or("refused by the consumer")
                .to_string(),
            dlq_message["source_queue"]
                .as_str()
                .unwrap_or(default_source)
                .to_string(),
            dlq_message.get("message").cloned().unwrap_or(Value::Null),
        )
    } else {
        (
            "delivery failed on every attempt (max_retries exceeded)".into(),
            default_source.into(),
            dlq_message.clone(),
        )
    }
}

/// Record one batch from the dead-letter queue. `id` is the queue's message id, so a redelivered
/// dead letter is recorded once. Storage failure: retry (the message stays in the DLQ).
pub async fn record(
    db: &impl Database,
    source_queue: &str,
    messages: &[(String, Value)],
    now: OffsetDateTime,
) -> Vec<Decision> {
    let mut out = Vec::with_capacity(messages.len());
    for (id, msg) in messages {
        let (reason, queue, original) = unwrap(msg, source_queue);
        let body = json!({
            "id": id, "queue": queue, "reason": reason, "message": original,
            "received_at": rfc3339(now), "replayed_at": null, "replay_count": 0,
        });
        let res = db
            .query(Stmt::new(
                "INSERT INTO dead_letters (id, body) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                vec![json!(id), json!(body.to_string())],
            ))
            .await;
        out.push(match res {
            Ok(_) => Decision::Ack,
            Err(e) => {
                tracing::warn!(error = %e, "recording a dead letter failed");
                Decision::Retry {
                    delay_seconds: crate::consumer::STORAGE_RETRY_SECONDS,
                }
            }
        });
    }
    out
}
