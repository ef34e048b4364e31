//! `queue` entrypoint: the change-event queue and its dead-letter queue.

use platform::{logging, CryptoEntropy, Queue, D1, R2};
use shared::bindings as b;
use shared::consumer::{self, ConsumerPlatform, Decision};
use shared::dead_letters;
use shared::services::audit::Seal;
use tracing::Instrument;
use worker::{
    event, Context, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, RawMessage, Result,
};

struct WorkerPlatform {
    env: Env,
    accounts: D1,
    served: Vec<String>,
    local: bool,
    index_jobs: Option<Queue>,
    seal: Option<Seal>,
    /// The write-once checkpoint bucket, where every head the writer signs is anchored.
    checkpoints: Option<R2>,
}

impl ConsumerPlatform for WorkerPlatform {
    type Db = D1;
    type Entropy = CryptoEntropy;
    type Queue = Queue;
    fn index_jobs(&self) -> Option<&Queue> {
        self.index_jobs.as_ref()
    }
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
    fn entropy(&self) -> &CryptoEntropy {
        &CryptoEntropy
    }
    fn local(&self) -> bool {
        self.local
    }
    fn seal(&self) -> Option<&Seal> {
        self.seal.as_ref()
    }
    type Checkpoints = R2;
    fn checkpoints(&self) -> Option<&R2> {
        self.checkpoints.as_ref()
    }
}

/// The audit writer's key from its secret, with the published keys its older receipts verify
/// with (`AUDIT_PUBLIC_KEYS`, a secret when deployed, a variable locally: after a rotation the
/// old key is what the head's receipt verifies with). None (logged): not configured or malformed.
fn seal(env: &Env) -> Option<Seal> {
    let secret = platform::secret(env, b::AUDIT_SIGNING_KEY)?;
    let published: Vec<shared::domain::checkpoint::PublicKey> = match platform::secret(
        env,
        b::AUDIT_PUBLIC_KEYS_VAR,
    )
    .map(|v| serde_json::from_str(&v))
    {
        Some(Ok(keys)) => keys,
        Some(Err(e)) => {
            tracing::error!(error = %e, "AUDIT_PUBLIC_KEYS is not a JSON array of keys; only the signing key's own is used");
            Vec::new()
        }
        None => {
            tracing::warn!("AUDIT_PUBLIC_KEYS is not set; only the signing key's own is used");
            Vec::new()
        }
    };
    match Seal::new(&secret, &published) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "AUDIT_SIGNING_KEY is malformed");
            None
        }
    }
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    let started = logging::now_ms();
    let messages = batch.raw_iter().collect::<Vec<_>>();
    let span = tracing::info_span!(
        "queue_batch",
        queue = %batch.queue(),
        messages = messages.len(),
        deployment = platform::var(&env, b::DEPLOYMENT_VAR),
    );
    let tally = consume(&batch, &messages, env)
        .instrument(span.clone())
        .await;
    span.in_scope(|| tally.log(started));
    Ok(())
}

/// What became of a batch's messages.
#[derive(Default)]
struct Tally {
    acked: usize,
    retried: usize,
    dead_lettered: usize,
}

impl Tally {
    fn all_retried(n: usize) -> Self {
        Self {
            retried: n,
            ..Self::default()
        }
    }

    /// The batch's completion line (inside its span): INFO when every message was acked, WARN
    /// when any was retried or dead-lettered.
    fn log(&self, started: f64) {
        let (level, outcome) = match (self.retried, self.dead_lettered) {
            (0, 0) => (tracing::Level::INFO, "ok"),
            _ => (tracing::Level::WARN, "partial"),
        };
        logging::event_at!(
            level,
            outcome,
            acked = self.acked,
            retried = self.retried,
            dead_lettered = self.dead_lettered,
            duration_ms = logging::elapsed_ms(started),
            "queue batch done"
        );
    }
}

async fn consume(
    batch: &MessageBatch<serde_json::Value>,
    messages: &[RawMessage],
    env: Env,
) -> Tally {
    let Some(accounts) = D1::from_env(&env, b::ACCOUNTS_DB, Some("first-primary")) else {
        tracing::error!(
            binding = b::ACCOUNTS_DB,
            "binding missing; the batch is retried"
        );
        batch.retry_all();
        return Tally::all_retried(messages.len());
    };
    let bodies: Vec<serde_json::Value> = messages.iter().map(|m| json_of(&m.body())).collect();
    let source = batch.queue();
    let dlq = env.queue(b::CHANGE_EVENTS_DLQ).ok().map(Queue::new);
    let dlq = dlq
        .as_ref()
        .map(|q| (q, bodies.as_slice(), source.as_str()));
    if source == b::PLATFORM_EVENTS_QUEUE_NAME {
        let decisions = shared::platform_events::record(&accounts, &bodies).await;
        return apply(messages, decisions, dlq).await;
    }
    // Missing, the index-jobs binding retries only what needs it (fan-outs, index jobs): dead
    // letters and plain events never use it.
    let index_jobs = env.queue(b::INDEX_JOBS_QUEUE).ok().map(Queue::new);
    if index_jobs.is_none() {
        tracing::error!(binding = b::INDEX_JOBS_QUEUE, "binding missing");
    }
    let p = WorkerPlatform {
        served: platform::list_var(&env, b::SHARD_BINDINGS_VAR),
        local: platform::var(&env, b::ENVIRONMENT_VAR).as_deref() == Some(b::LOCAL_ENVIRONMENT),
        seal: seal(&env),
        checkpoints: env.bucket(b::AUDIT_CHECKPOINTS_R2).ok().map(R2::new),
        env,
        accounts,
        index_jobs,
    };
    if source == b::CHANGE_EVENTS_DLQ_NAME {
        // Recorded with a status from the audit trail (`unknown` if the shard does not answer).
        let with_ids: Vec<(String, serde_json::Value)> =
            messages.iter().map(|m| m.id()).zip(bodies).collect();
        let decisions = dead_letters::record(&p, b::CHANGE_EVENTS_QUEUE_NAME, &with_ids).await;
        return apply(messages, decisions, None).await;
    }
    let decisions = if source == b::INDEX_JOBS_QUEUE_NAME {
        consumer::process_index_jobs(&p, &bodies).await
    } else {
        consumer::process_batch(&p, &bodies).await
    };
    apply(messages, decisions, dlq).await
}

/// Carry out each message's decision. Dead letters are wrapped with their reason and sent to
/// the dead-letter queue, then acked; if that send fails they are retried instead.
async fn apply(
    messages: &[RawMessage],
    decisions: Vec<Decision>,
    dlq: Option<(&Queue, &[serde_json::Value], &str)>,
) -> Tally {
    use shared::ports::EventQueue;
    let mut tally = Tally::default();
    for (i, (m, d)) in messages.iter().zip(decisions).enumerate() {
        match d {
            Decision::Ack => {
                m.ack();
                tally.acked += 1;
            }
            Decision::Retry { delay_seconds } => {
                m.retry_with_options(
                    &QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(delay_seconds)
                        .build(),
                );
                tally.retried += 1;
            }
            Decision::DeadLetter { reason } => {
                // The reason's kind only: its full text (serde's, D1's) may quote the message.
                tracing::warn!(message_id = %m.id(), reason = reason.kind(), "dead letter");
                tally.dead_lettered += 1;
                let sent = match dlq {
                    Some((q, bodies, source)) => {
                        let body = bodies.get(i).cloned().unwrap_or_default();
                        let wrapped = dead_letters::wrap(&reason, source, &body);
                        q.send_batch(vec![wrapped]).await.is_ok()
                    }
                    None => false,
                };
                if sent {
                    m.ack();
                } else {
                    // The queue moves it to the dead-letter queue after max_retries.
                    m.retry();
                }
            }
        }
    }
    tally
}

/// JS value -> serde_json::Value through JSON.stringify (maps stay objects).
fn json_of(v: &worker::wasm_bindgen::JsValue) -> serde_json::Value {
    worker::js_sys::JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null)
}
