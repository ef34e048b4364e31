//! `fetch` entrypoint.

use platform::{logging, CryptoEntropy, HttpFetch, Kv, Queue, D1, R2};
use shared::api::{ApiConfig, Platform};
use shared::auth::JwtConfig;
use shared::bindings as b;
use shared::domain::operator::access_config;
use shared::http::{ApiRequest, ApiResponse};
use shared::identity::{KeyCache, REFETCH_INTERVAL};
use shared::marks::PendingMarks;
use shared::operator::{self, OperatorConfig, OperatorPlatform};
use shared::tenancy::{RouteCache, ROUTE_CACHE_TTL};
use shared::usage::UsageMeter;
use std::cell::OnceCell;
use worker::{event, web_sys, Context, Env, Result};

thread_local! {
    static ROUTES: &'static RouteCache = Box::leak(Box::new(RouteCache::new(ROUTE_CACHE_TTL)));
    // Never flushed: operator requests are not a tenant's usage.
    static USAGE: &'static UsageMeter = Box::leak(Box::new(UsageMeter::default()));
    // Account events are forwarded and sent at once; their marks are left to the relay.
    static MARKS: &'static PendingMarks = Box::leak(Box::new(PendingMarks::default()));
    // The Access team's keys (and nothing else), until their expiry.
    static KEYS: &'static KeyCache = Box::leak(Box::new(KeyCache::new(REFETCH_INTERVAL)));
    static SETTINGS: OnceCell<&'static Settings> = const { OnceCell::new() };
}

struct Settings {
    operator: OperatorConfig,
    served: Vec<String>,
    /// The credential of the call to the scheduler (service binding), `ADMIN_SECRET`.
    scheduler_secret: String,
}

fn settings(env: &Env) -> Settings {
    let local = platform::var(env, b::ENVIRONMENT_VAR).as_deref() == Some(b::LOCAL_ENVIRONMENT);
    let admin_secret = platform::secret(env, b::ADMIN_SECRET).unwrap_or_default();
    Settings {
        operator: OperatorConfig {
            api: ApiConfig {
                deployment: platform::var(env, b::DEPLOYMENT_VAR)
                    .unwrap_or_else(|| "operator".into()),
                local,
                // Only for local demo tokens (404 elsewhere): the local HS256 secret.
                jwt: JwtConfig {
                    secret: platform::secret(env, b::JWT_SECRET).unwrap_or_default(),
                    issuer: platform::var(env, b::JWT_ISSUER_VAR).unwrap_or_default(),
                    audience: platform::var(env, b::JWT_AUDIENCE_VAR).unwrap_or_default(),
                },
                api_hosts: vec![],
                max_content_bytes: 256 * 1024,
                audit_keys: vec![],
                // The operator API pages nothing with the tenants' MAC'd cursors.
                cursor_secret: String::new(),
            },
            // ACCESS_AUD is a Worker secret deployed (a var locally; `secret` reads either).
            access: access_config(
                &platform::var(env, b::ACCESS_TEAM_DOMAIN_VAR).unwrap_or_default(),
                &platform::secret(env, b::ACCESS_AUD_VAR).unwrap_or_default(),
                local,
            ),
            dev_secret: if local {
                admin_secret.clone()
            } else {
                String::new()
            },
        },
        served: platform::list_var(env, b::SHARD_BINDINGS_VAR),
        scheduler_secret: admin_secret,
    }
}

struct WorkerPlatform {
    env: Env,
    settings: &'static Settings,
    accounts: OnceCell<D1>,
    queue: OnceCell<Queue>,
    blobs: R2,
    key_store: OnceCell<Option<Kv>>,
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
        KEYS.with(|k| *k)
    }
    fn key_store(&self) -> Option<&Kv> {
        self.key_store
            .get_or_init(|| self.env.kv(b::CACHE_KV).ok().map(Kv))
            .as_ref()
    }
    fn cache(&self) -> Option<&Kv> {
        None
    }
    fn accounts(&self) -> &D1 {
        // Operator reads and writes go to the primary: an operator sees what it just did.
        self.accounts.get_or_init(|| {
            D1::from_env(&self.env, b::ACCOUNTS_DB, Some("first-primary"))
                .unwrap_or_else(D1::unavailable)
        })
    }
    fn shard(&self, binding: &str, bookmark: Option<&str>) -> Option<D1> {
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
        &self.blobs
    }
    fn blobs(&self) -> &R2 {
        &self.blobs
    }
    fn routes(&self) -> &RouteCache {
        ROUTES.with(|r| *r)
    }
    fn now(&self) -> time::OffsetDateTime {
        platform::now()
    }
    fn entropy(&self) -> &CryptoEntropy {
        &CryptoEntropy
    }
    fn usage(&self) -> &UsageMeter {
        USAGE.with(|u| *u)
    }
    fn marks(&self) -> &PendingMarks {
        MARKS.with(|m| *m)
    }
}

impl OperatorPlatform for WorkerPlatform {
    async fn run_job(
        &self,
        job: &str,
        steps: Option<usize>,
        request_id: &str,
    ) -> std::result::Result<ApiResponse, String> {
        platform::post_service(
            &self.env,
            b::SCHEDULER_SERVICE,
            &operator::jobs::run_path(job, steps),
            &self.settings.scheduler_secret,
            request_id,
        )
        .await
    }
}

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    let settings: &'static Settings =
        SETTINGS.with(|c| *c.get_or_init(|| Box::leak(Box::new(settings(&env)))));
    let resp = logging::in_request_span(
        req,
        settings.operator.api.max_content_bytes,
        &settings.operator.api.deployment,
        // Few requests, each an operator's action: every one gets its line.
        shared::http::RequestLog::ALL,
        |req| serve(env, settings, req),
    )
    .await;
    platform::to_worker_response(resp)
}

async fn serve(env: Env, settings: &'static Settings, req: ApiRequest) -> ApiResponse {
    let platform = WorkerPlatform {
        env,
        settings,
        accounts: OnceCell::new(),
        queue: OnceCell::new(),
        blobs: R2(None),
        key_store: OnceCell::new(),
    };
    operator::handle(&platform, &settings.operator, req).await
}
