//! `queue` entrypoint.

use platform::D1;
use shared::bindings as b;
use shared::consumer::{self, ConsumerPlatform, Decision};
use worker::{event, Context, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, Result};

struct WorkerPlatform {
    env: Env,
    accounts: D1,
    served: Vec<String>,
}

impl ConsumerPlatform for WorkerPlatform {
    type Db = D1;
    fn accounts(&self) -> &D1 {
        &self.accounts
    }
    fn shard(&self, binding: &str) -> Option<D1> {
        if !self.served.iter().any(|s| s == binding) {
            return None;
        }
        D1::from_env(&self.env, binding, Some("first-primary"))
    }
    fn now(&self) -> time::OffsetDateTime {
        platform::now()
    }
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    let messages = batch.raw_iter().collect::<Vec<_>>();
    let Some(accounts) = D1::from_env(&env, b::ACCOUNTS_DB, Some("first-primary")) else {
        batch.retry_all();
        return Ok(());
    };
    let p = WorkerPlatform {
        served: platform::list_var(&env, b::SHARD_BINDINGS_VAR),
        env,
        accounts,
    };
    let bodies: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| serde_wasm_bindgen_json(&m.body()))
        .collect();
    let decisions = consumer::process_batch(&p, &bodies).await;
    for (m, d) in messages.iter().zip(decisions) {
        match d {
            Decision::Ack => m.ack(),
            Decision::Retry { delay_seconds } => m.retry_with_options(
                &QueueRetryOptionsBuilder::new()
                    .with_delay_seconds(delay_seconds)
                    .build(),
            ),
            // Retrying lets the queue move it to the dead-letter queue after max_retries, where
            // its consumer records the reason.
            Decision::DeadLetter { reason } => {
                worker::console_warn!("poison message {}: {}", m.id(), reason);
                m.retry();
            }
        }
    }
    Ok(())
}

/// JS value -> serde_json::Value through JSON.stringify (maps stay objects).
fn serde_wasm_bindgen_json(v: &worker::wasm_bindgen::JsValue) -> serde_json::Value {
    worker::js_sys::JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null)
}
