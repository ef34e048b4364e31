//! `fetch` entrypoint.

use platform::{logging, CryptoEntropy, HttpFetch, Kv, Queue, D1, R2};
use shared::api::{self, ApiConfig, Platform};
use shared::auth::JwtConfig;
use shared::bindings as b;
use shared::deferred;
use shared::http::{ApiRequest, ApiResponse, RequestLog};
use shared::identity::{KeyCache, REFETCH_INTERVAL};
use shared::marks::PendingMarks;
use shared::tenancy::{RouteCache, ROUTE_CACHE_TTL};
use shared::usage::UsageMeter;
use std::cell::OnceCell;
use tracing::Instrument;
use worker::{event, web_sys, Context, Env, Result};

thread_local! {
    // Lives as long as the isolate: routes are cached across requests for ROUTE_CACHE_TTL.
    static ROUTES: &'static RouteCache = Box::leak(Box::new(RouteCache::new(ROUTE_CACHE_TTL)));
    // Per-account D1 usage, flushed to the shards every few seconds (see shared::usage).
    static USAGE: &'static UsageMeter = Box::leak(Box::new(UsageMeter::default()));
    // Sent events whose outbox rows are marked published shortly after (see shared::marks).
    static MARKS: &'static PendingMarks = Box::leak(Box::new(PendingMarks::default()));
    // The identity providers' keys (JWKS), until their expiry (see shared::identity).
    static KEYS: OnceCell<&'static KeyCache> = const { OnceCell::new() };
    // Variables and secrets do not change within an isolate: read them once.
    static SETTINGS: OnceCell<&'static Settings> = const { OnceCell::new() };
}

/// What an isolate reads once: the domain's config plus this Worker's own settings.
struct Settings {
    api: ApiConfig,
    /// Shard bindings this deployment serves (`SHARD_BINDINGS`).
    served: Vec<String>,
    read_cache: bool,
    /// Which requests write their "request done" line (`READ_LOG_EVERY`).
    request_log: RequestLog,
    /// At most one JWKS fetch per identity provider and isolate per this interval.
    jwks_refetch: time::Duration,
}

fn settings(env: &Env) -> Settings {
    Settings {
        api: ApiConfig {
            deployment: platform::var(env, b::DEPLOYMENT_VAR).unwrap_or_else(|| "api".into()),
            local: platform::var(env, b::ENVIRONMENT_VAR).as_deref() == Some(b::LOCAL_ENVIRONMENT),
            jwt: JwtConfig {
                secret: platform::secret(env, b::JWT_SECRET).unwrap_or_default(),
                issuer: platform::var(env, b::JWT_ISSUER_VAR).unwrap_or_default(),
                audience: platform::var(env, b::JWT_AUDIENCE_VAR).unwrap_or_default(),
            },
            api_hosts: platform::list_var(env, b::API_HOSTS_VAR),
            max_content_bytes: api::DEFAULT_MAX_CONTENT_BYTES,
            // A secret when deployed (required there), a plain variable locally.
            // Missing or invalid: left empty, and the audit endpoints answer a 500 naming it.
            audit_keys: match platform::secret(env, b::AUDIT_PUBLIC_KEYS_VAR)
                .map(|v| serde_json::from_str(&v))
            {
                Some(Ok(keys)) => keys,
                Some(Err(e)) => {
                    tracing::error!(error = %e, "AUDIT_PUBLIC_KEYS is not a JSON array of keys");
                    Vec::new()
                }
                None => Vec::new(),
            },
            cursor_secret: platform::secret(env, b::CURSOR_SECRET).unwrap_or_default(),
        },
        served: platform::list_var(env, b::SHARD_BINDINGS_VAR),
        // READ_CACHE=on enables the KV read cache of GET by id (off by default: the version
        // probe costs D1 the same row as the read itself, so the cache adds a KV round trip
        // and saves no D1 rows; see the README's benchmarks).
        read_cache: platform::var(env, b::READ_CACHE_VAR).as_deref() == Some("on"),
        request_log: RequestLog::from_var(platform::var(env, b::READ_LOG_EVERY_VAR).as_deref()),
        jwks_refetch: platform::var(env, b::JWKS_REFETCH_SECONDS_VAR)
            .and_then(|s| s.parse::<i64>().ok())
            .map_or(REFETCH_INTERVAL, time::Duration::seconds),
    }
}

/// Bindings are looked up when first used in a request, not for every request: a GET by id
/// with its route cached touches only its shard.
struct WorkerPlatform {
    env: Env,
    settings: &'static Settings,
    accounts: OnceCell<D1>,
    queue: OnceCell<Queue>,
    blobs: OnceCell<R2>,
    checkpoints: OnceCell<R2>,
    cache: OnceCell<Option<Kv>>,
    key_store: OnceCell<Option<Kv>>,
    keys: &'static KeyCache,
    routes: &'static RouteCache,
    usage: &'static UsageMeter,
    marks: &'static PendingMarks,
}

impl Platform for WorkerPlatform {
    type Db = D1;
    type Queue = Queue;
    type Blobs = R2;
    type Checkpoints = R2;
    type Entropy = CryptoEntropy;
    type Cache = Kv;
    type Fetch = HttpFetch;
    fn fetcher(&self) -> &HttpFetch {
        &HttpFetch
    }
    fn keys(&self) -> &KeyCache {
        self.keys
    }
    fn key_store(&self) -> Option<&Kv> {
        self.key_store
            .get_or_init(|| self.env.kv(b::CACHE_KV).ok().map(Kv))
            .as_ref()
    }
    fn cache(&self) -> Option<&Kv> {
        self.cache
            .get_or_init(|| {
                self.settings
                    .read_cache
                    .then(|| self.env.kv(b::CACHE_KV).ok().map(Kv))
                    .flatten()
            })
            .as_ref()
    }
    fn accounts(&self) -> &D1 {
        self.accounts.get_or_init(|| {
            D1::from_env(&self.env, b::ACCOUNTS_DB, None).unwrap_or_else(D1::unavailable)
        })
    }
    fn accounts_cost(&self) -> shared::ports::Cost {
        self.accounts
            .get()
            .map(shared::ports::Database::cost)
            .unwrap_or_default()
    }
    fn shard(&self, binding: &str, bookmark: Option<&str>) -> Option<D1> {
        // Only the shards this deployment declares: never a query against another database.
        if !self.settings.served.iter().any(|s| s == binding) {
            return None;
        }
        D1::from_env(&self.env, binding, bookmark)
    }
    fn queue(&self) -> &Queue {
        self.queue
            .get_or_init(|| Queue::from_env(&self.env, b::CHANGE_EVENTS_QUEUE))
    }
    fn checkpoints(&self) -> &R2 {
        self.checkpoints
            .get_or_init(|| R2::from_env(&self.env, b::AUDIT_CHECKPOINTS_R2))
    }
    fn blobs(&self) -> &R2 {
        self.blobs
            .get_or_init(|| R2::from_env(&self.env, b::DOCUMENTS_R2))
    }
    fn routes(&self) -> &RouteCache {
        self.routes
    }
    fn now(&self) -> time::OffsetDateTime {
        platform::now()
    }
    fn entropy(&self) -> &CryptoEntropy {
        &CryptoEntropy
    }
    fn usage(&self) -> &UsageMeter {
        self.usage
    }
    fn marks(&self) -> &PendingMarks {
        self.marks
    }
}

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    let settings: &'static Settings =
        SETTINGS.with(|c| *c.get_or_init(|| Box::leak(Box::new(settings(&env)))));
    let resp = logging::in_request_span(
        req,
        settings.api.max_content_bytes,
        &settings.api.deployment,
        settings.request_log,
        |req| serve(env, ctx, settings, req),
    )
    .await;
    platform::to_worker_response(resp)
}

/// One request: the domain's answer, then the deferred work shared returns for after the
/// response (outbox marks, usage flush), which stays in the request's span.
async fn serve(
    env: Env,
    ctx: Context,
    settings: &'static Settings,
    req: ApiRequest,
) -> ApiResponse {
    let platform = WorkerPlatform {
        env,
        settings,
        accounts: OnceCell::new(),
        queue: OnceCell::new(),
        blobs: OnceCell::new(),
        checkpoints: OnceCell::new(),
        cache: OnceCell::new(),
        key_store: OnceCell::new(),
        keys: KEYS
            .with(|k| *k.get_or_init(|| Box::leak(Box::new(KeyCache::new(settings.jwks_refetch))))),
        routes: ROUTES.with(|r| *r),
        usage: USAGE.with(|u| *u),
        marks: MARKS.with(|m| *m),
    };
    let resp = api::handle(&platform, &settings.api, req).await;
    // What shared decided is due (outbox marks, usage flush): wait, then run it off the
    // request path, in the request's span.
    let state = deferred::IsolateState {
        marks: platform.marks,
        usage: platform.usage,
    };
    for work in deferred::due(state, platform::now()) {
        let env = platform.env.clone();
        ctx.wait_until(
            async move {
                let wait = work.after().whole_milliseconds().max(0) as u64;
                if wait > 0 {
                    worker::Delay::from(std::time::Duration::from_millis(wait)).await;
                }
                deferred::run(work, state, platform::now(), |b| {
                    D1::from_env(&env, b, None)
                })
                .await;
            }
            .in_current_span(),
        );
    }
    resp
}
