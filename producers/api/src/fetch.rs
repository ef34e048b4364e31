//! `fetch` entrypoint.

use platform::{CryptoEntropy, Kv, Queue, D1, R2};
use shared::api::{self, ApiConfig, Platform};
use shared::auth::JwtConfig;
use shared::bindings as b;
use shared::ports::Database;
use shared::tenancy::{RouteCache, ROUTE_CACHE_TTL};
use shared::usage::UsageMeter;
use worker::{event, Context, Env, Request, Response, Result};

thread_local! {
    // Lives as long as the isolate: routes are cached across requests for ROUTE_CACHE_TTL.
    static ROUTES: &'static RouteCache = Box::leak(Box::new(RouteCache::new(ROUTE_CACHE_TTL)));
    // Per-account D1 usage, flushed to the shards every few seconds (see shared::usage).
    static USAGE: &'static UsageMeter = Box::leak(Box::new(UsageMeter::default()));
}

struct WorkerPlatform {
    env: Env,
    accounts: D1,
    served: Vec<String>,
    queue: Queue,
    blobs: R2,
    cache: Option<Kv>,
    routes: &'static RouteCache,
    usage: &'static UsageMeter,
}

impl Platform for WorkerPlatform {
    type Db = D1;
    type Queue = Queue;
    type Blobs = R2;
    type Entropy = CryptoEntropy;
    type Cache = Kv;
    fn cache(&self) -> Option<&Kv> {
        self.cache.as_ref()
    }
    fn accounts(&self) -> &D1 {
        &self.accounts
    }
    fn shard(&self, binding: &str, bookmark: Option<&str>) -> Option<D1> {
        // Only the shards this deployment declares: never a query against another database.
        if !self.served.iter().any(|s| s == binding) {
            return None;
        }
        D1::from_env(&self.env, binding, bookmark)
    }
    fn queue(&self) -> &Queue {
        &self.queue
    }
    fn blobs(&self) -> &R2 {
        &self.blobs
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
}

fn config(env: &Env) -> ApiConfig {
    ApiConfig {
        deployment: platform::var(env, b::DEPLOYMENT_VAR).unwrap_or_else(|| "api".into()),
        local: platform::var(env, b::ENVIRONMENT_VAR).as_deref() == Some(b::LOCAL_ENVIRONMENT),
        jwt: JwtConfig {
            secret: platform::secret(env, b::JWT_SECRET).unwrap_or_default(),
            issuer: platform::var(env, b::JWT_ISSUER_VAR).unwrap_or_default(),
            audience: platform::var(env, b::JWT_AUDIENCE_VAR).unwrap_or_default(),
        },
        admin_secret: platform::secret(env, b::ADMIN_SECRET).unwrap_or_default(),
        api_hosts: platform::list_var(env, b::API_HOSTS_VAR),
        max_content_bytes: api::DEFAULT_MAX_CONTENT_BYTES,
    }
}

fn unavailable(what: &str) -> Result<Response> {
    platform::to_worker_response(
        shared::http::Problem::new(
            503,
            "misconfigured",
            "Service Unavailable",
            format!("binding {what} is missing"),
        )
        .into_response("-"),
    )
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let cfg = config(&env);
    let Some(accounts) = D1::from_env(&env, b::ACCOUNTS_DB, None) else {
        return unavailable(b::ACCOUNTS_DB);
    };
    let (Ok(queue), Ok(bucket)) = (
        env.queue(b::CHANGE_EVENTS_QUEUE),
        env.bucket(b::DOCUMENTS_R2),
    ) else {
        return unavailable("CHANGE_EVENTS or DOCUMENTS");
    };
    // READ_CACHE=off disables the KV read cache (benchmarks compare both).
    let cache = match platform::var(&env, b::READ_CACHE_VAR).as_deref() {
        Some("off") => None,
        _ => env.kv(b::CACHE_KV).ok().map(Kv),
    };
    let platform = WorkerPlatform {
        served: platform::list_var(&env, b::SHARD_BINDINGS_VAR),
        cache,
        env,
        accounts,
        queue: Queue(queue),
        blobs: R2(bucket),
        routes: ROUTES.with(|r| *r),
        usage: USAGE.with(|u| *u),
    };
    let req = match platform::to_api_request(req, cfg.max_content_bytes).await {
        Ok(r) => r,
        Err(resp) => return platform::to_worker_response(resp),
    };
    let resp = api::handle(&platform, &cfg, req).await;
    let due = platform.usage.take_due(platform::now());
    if !due.is_empty() {
        let env = platform.env.clone();
        ctx.wait_until(async move {
            for (binding, stmts) in due {
                if let Some(db) = D1::from_env(&env, &binding, None) {
                    if let Err(e) = db.batch(stmts).await {
                        tracing::warn!(error = %e, %binding, "usage flush failed");
                    }
                }
            }
        });
    }
    platform::to_worker_response(resp)
}
