//! Dead letters: messages that will never succeed (undecodable, refused by the checks of
//! `consumer::validate`, unroutable) or that failed past `max_retries`. The change-event
//! consumer wraps the ones it refuses with a typed reason and sends them to the dead-letter
//! queue; the dead-letter queue's consumer records every message in `dead_letters` (account
//! D1) with a status: `applied` when its change event is already in the audit trail (it was
//! processed, only its ack was lost), else `failed`. Operators list and replay them through
//! `store::dead_letters`.

use crate::consumer::{ConsumerPlatform, Decision, Reason, STORAGE_RETRY_SECONDS};
use crate::domain::event::decode;
use crate::ports::Database;
use crate::services::audit;
use crate::store::dead_letters as store;
use serde_json::{json, Value};
use std::collections::HashMap;

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

/// Whether the message is a change event already recorded in its account's audit trail.
/// `Err`: storage failed (the dead letter is retried).
async fn applied<P: ConsumerPlatform>(
    p: &P,
    bindings: &mut Option<HashMap<String, String>>,
    message: &Value,
) -> Result<bool, crate::ports::StoreError> {
    let Ok(ev) = decode(message) else {
        return Ok(false);
    };
    if bindings.is_none() {
        *bindings = Some(crate::store::registry::shard_bindings(p.accounts()).await?);
    }
    let Some(db) = bindings
        .as_ref()
        .and_then(|b| b.get(&ev.shard_id))
        .and_then(|b| p.shard(b))
    else {
        return Ok(false);
    };
    audit::is_recorded(&db, ev.account_id, ev.id).await
}

/// Record one batch from the dead-letter queue. `id` is the queue's message id, so a redelivered
/// dead letter is recorded once. Storage failure: retry (the message stays in the DLQ).
pub async fn record<P: ConsumerPlatform>(
    p: &P,
    source_queue: &str,
    messages: &[(String, Value)],
) -> Vec<Decision> {
    let mut bindings = None;
    let mut out = Vec::with_capacity(messages.len());
    for (id, msg) in messages {
        let u = unwrap(msg, source_queue);
        let status = match applied(p, &mut bindings, &u.message).await {
            Ok(true) => store::Status::Applied,
            Ok(false) => store::Status::Failed,
            Err(e) => {
                tracing::warn!(error = %e, "checking a dead letter's audit row failed");
                out.push(Decision::Retry {
                    delay_seconds: STORAGE_RETRY_SECONDS,
                });
                continue;
            }
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
