//! The scheduler Worker: outbox relay, shard health, migration checks, retention; also runs any
//! job on demand for the operator Worker (`POST /admin/v1/jobs/{job}/run`, service binding only).
#![cfg(target_arch = "wasm32")]

mod fetch;
mod scheduled;

/// Once per isolate: structured logs to the console (Workers Logs).
#[worker::event(start)]
fn start() {
    platform::logging::init();
}

use platform::{CryptoEntropy, Kv, Queue, D1, R2};
use shared::bindings as b;
use shared::jobs::{self, SchedulerPlatform};
use worker::Env;

pub(crate) struct WorkerPlatform {
    env: Env,
    accounts: D1,
    served: Vec<String>,
    queue: Queue,
    platform_events: Queue,
    blobs: R2,
    cache: Kv,
    checkpoints: R2,
    seal: Option<shared::domain::audit::Seal>,
}

impl WorkerPlatform {
    pub(crate) fn new(env: Env) -> Option<Self> {
        let accounts = D1::from_env(&env, b::ACCOUNTS_DB, Some("first-primary"))?;
        let queue = env.queue(b::CHANGE_EVENTS_QUEUE).ok()?;
        let blobs = R2::new(env.bucket(b::DOCUMENTS_R2).ok()?);
        let platform_events = Queue::new(env.queue(b::PLATFORM_EVENTS_QUEUE).ok()?);
        let cache = Kv(env.kv(b::CACHE_KV).ok()?);
        let checkpoints = R2::from_env(&env, b::AUDIT_CHECKPOINTS_R2);
        // A secret when deployed, a variable locally: the keys older checkpoints and receipts
        // verify with after a rotation.
        let published: Vec<shared::domain::checkpoint::PublicKey> = match platform::secret(
            &env,
            b::AUDIT_PUBLIC_KEYS_VAR,
        )
        .map(|v| serde_json::from_str(&v))
        {
            Some(Ok(keys)) => keys,
            Some(Err(e)) => {
                tracing::error!(error = %e, "AUDIT_PUBLIC_KEYS is not a JSON array of keys");
                Vec::new()
            }
            None => {
                tracing::warn!("AUDIT_PUBLIC_KEYS is not set; only the signing key's own is used");
                Vec::new()
            }
        };
        let seal = platform::secret(&env, b::AUDIT_SIGNING_KEY).and_then(|s| {
            shared::domain::audit::Seal::new(&s, &published)
                .map_err(|e| tracing::error!(error = %e, "AUDIT_SIGNING_KEY is malformed"))
                .ok()
        });
        Some(Self {
            blobs,
            cache,
            checkpoints,
            seal,
            served: platform::list_var(&env, b::SHARD_BINDINGS_VAR),
            env,
            accounts,
            queue: Queue::new(queue),
            platform_events,
        })
    }
}

impl SchedulerPlatform for WorkerPlatform {
    type Db = D1;
    type Queue = Queue;
    type Entropy = CryptoEntropy;
    type Blobs = R2;
    type Cache = Kv;
    type Checkpoints = R2;
    fn checkpoints(&self) -> &R2 {
        &self.checkpoints
    }
    fn audit_seal(&self) -> Option<&shared::domain::audit::Seal> {
        self.seal.as_ref()
    }
    fn blobs(&self) -> &R2 {
        &self.blobs
    }
    fn cache(&self) -> &Kv {
        &self.cache
    }
    fn accounts(&self) -> &D1 {
        &self.accounts
    }
    fn shards(&self) -> Vec<(String, D1)> {
        self.served
            .iter()
            .filter_map(|s| {
                D1::from_env(&self.env, s, Some("first-primary")).map(|d| (s.clone(), d))
            })
            .collect()
    }
    fn queue(&self) -> &Queue {
        &self.queue
    }
    fn platform_events(&self) -> &Queue {
        &self.platform_events
    }
    fn now(&self) -> time::OffsetDateTime {
        platform::now()
    }
    fn entropy(&self) -> &CryptoEntropy {
        &CryptoEntropy
    }
    fn relay_min_age(&self) -> time::Duration {
        platform::var(&self.env, b::RELAY_MIN_AGE_VAR)
            .and_then(|s| s.parse::<i64>().ok())
            .map(|s| time::Duration::seconds(s.clamp(0, 86_400)))
            .unwrap_or(jobs::RELAY_MIN_AGE)
    }
    async fn pause(&self, d: time::Duration) {
        let ms = d.whole_milliseconds().max(0) as u64;
        worker::Delay::from(std::time::Duration::from_millis(ms)).await;
    }
}
