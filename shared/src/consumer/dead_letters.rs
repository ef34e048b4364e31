//! Dead letters: messages that will never succeed (undecodable, refused by the checks of
//! `consumer::validate`, unroutable) or that failed past `max_retries`. The change-event
//! consumer wraps the ones it refuses with a typed reason and sends them to the dead-letter
//! queue; the dead-letter queue's consumer records every message in `dead_letters` (account
//! D1) with a status: `applied` when its change event is already in the audit trail as the
//! message says it (it was processed, only its ack was lost), `conflicting` when the trail
//! records its id otherwise, `failed` when not at all, `unknown` when its shard did not answer
//! (settled when operators list them). Operators list and replay them through
//! `store::dead_letters`.

use crate::consumer::{ConsumerPlatform, Decision, Reason, STORAGE_RETRY_SECONDS};
use crate::ports::Database;
use crate::services::dead_letters;
use crate::store::dead_letters as store;
use serde_json::{json, Value};

/// Marks a message the consumer wrapped itself (as opposed to one the queue moved here after
/// `max_retries` failed deliveries).
pub const MARKER: &str = "dead_letter";
/// The kind of a message the queue moved after `max_retries`.
pub const RETRIES_EXHAUSTED: &str = "retries_exhausted";

pub fn wrap(reason: &Reason, source_queue: &str, message: &Value) -> Value {
    json!({ MARKER: 1, "reason": reason.to_string(), "kind": reason.kind(),
            "source_queue": source_queue, "message": message })
}

/// What the dead-letter queue's consumer knows of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrapped {
    pub reason: String,
    pub kind: String,
    pub source_queue: String,
    pub message: Value,
}

/// The reason, kind, source queue and original message of a DLQ message.
pub fn unwrap(dlq_message: &Value, default_source: &str) -> Unwrapped {
    if dlq_message.get(MARKER).is_some() {
        let s = |k: &str, d: &str| dlq_message[k].as_str().unwrap_or(d).to_string();
        Unwrapped {
            reason: s("reason", "refused by the consumer"),
            kind: s("kind", "refused"),
            source_queue: s("source_queue", default_source),
            message: dlq_message.get("message").cloned().unwrap_or(Value::Null),
        }
    } else {
        Unwrapped {
            reason: "delivery failed on every attempt (max_retries exceeded)".into(),
            kind: RETRIES_EXHAUSTED.into(),
            source_queue: default_source.into(),
            message: dlq_message.clone(),
        }
    }
}

/// Record one batch from the dead-letter queue. `id` is the queue's message id, so a redelivered
/// dead letter is recorded once. Its status comes from its shard's audit trail
/// (`services::dead_letters::status`); when the registry or the shard does not answer it is
/// recorded `unknown` (settled when listed): the dead-letter queue has no queue of its own, so
/// a letter retried through an outage would be lost. Only a failure of the account D1, where
/// it is recorded, retries it.
pub async fn record<P: ConsumerPlatform>(
    p: &P,
    source_queue: &str,
    messages: &[(String, Value)],
) -> Vec<Decision> {
    let bindings = match crate::store::registry::shard_bindings(p.accounts()).await {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::warn!(error = %e, "registry unavailable; dead letters recorded as unknown");
            None
        }
    };
    let mut out = Vec::with_capacity(messages.len());
    for (id, msg) in messages {
        let u = unwrap(msg, source_queue);
        let status = match &bindings {
            None => store::Status::Unknown,
            Some(b) => match dead_letters::status(b, |s| p.shard(s), &u.message).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "checking a dead letter's audit row failed; recorded as unknown");
                    store::Status::Unknown
                }
            },
        };
        let letter = store::Letter {
            id,
            queue: &u.source_queue,
            reason: &u.reason,
            kind: &u.kind,
            status,
            message: &u.message,
        };
        out.push(
            match p
                .accounts()
                .query(store::insert_stmt(&letter, p.now()))
                .await
            {
                Ok(_) => Decision::Ack,
                Err(e) => {
                    tracing::warn!(error = %e, "recording a dead letter failed");
                    Decision::Retry {
                        delay_seconds: STORAGE_RETRY_SECONDS,
                    }
                }
            },
        );
    }
    out
}
