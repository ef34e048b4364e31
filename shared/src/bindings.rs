//! Every binding, queue, variable and cron name the Workers use. These must match
//! `wrangler/*.jsonc`; `cargo xtask tidy` (`wrangler_configs_match_the_binding_consts` in
//! `xtask/src/tidy.rs`) reads the configs and checks.

/// Account D1: tenant registry, shard registry, custom domains, job runs. No tenant data.
pub const ACCOUNTS_DB: &str = "ACCOUNTS_DB";
/// KV namespace for read caches (immutable, version-suffixed keys).
pub const CACHE_KV: &str = "CACHE";
/// R2 bucket for document contents (account-scoped keys).
pub const DOCUMENTS_R2: &str = "DOCUMENTS";
/// Producer binding of the change-event queue.
pub const CHANGE_EVENTS_QUEUE: &str = "CHANGE_EVENTS";

/// Queue names (not bindings).
pub const CHANGE_EVENTS_QUEUE_NAME: &str = "change-events";
pub const CHANGE_EVENTS_DLQ_NAME: &str = "change-events-dlq";
/// Platform events (operators, not tenants): producer binding and queue name.
pub const PLATFORM_EVENTS_QUEUE: &str = "PLATFORM_EVENTS";
pub const PLATFORM_EVENTS_QUEUE_NAME: &str = "platform-events";

/// Shard D1 bindings are named by the `shards.binding` column; a deployment lists the shard
/// bindings it serves in this variable (comma separated). Bindings start with this prefix.
pub const SHARD_BINDINGS_VAR: &str = "SHARD_BINDINGS";
pub const SHARD_BINDING_PREFIX: &str = "SHARD_";

/// Plain variables.
pub const DEPLOYMENT_VAR: &str = "DEPLOYMENT";
pub const ENVIRONMENT_VAR: &str = "ENVIRONMENT";
pub const JWT_ISSUER_VAR: &str = "JWT_ISSUER";
pub const JWT_AUDIENCE_VAR: &str = "JWT_AUDIENCE";
/// Secrets (plain `vars` only in the local environment; `wrangler secret put` when deployed).
pub const JWT_SECRET: &str = "JWT_SECRET";
pub const ADMIN_SECRET: &str = "ADMIN_SECRET";
/// The key of the list cursors' HMAC-SHA256 (API Workers): cursors are opaque, and one that
/// was altered, forged or made for another account or query is refused. Its own secret, not
/// derived from JWT_SECRET: the token key is replaced by per-account identity providers, and
/// rotating one must not invalidate the other.
pub const CURSOR_SECRET: &str = "CURSOR_SECRET";
/// The audit writer's private key (consumer: link receipts; scheduler: signed checkpoints),
/// `<key id>:<base64 of a 32-byte Ed25519 seed>`. Never stored in D1.
pub const AUDIT_SIGNING_KEY: &str = "AUDIT_SIGNING_KEY";
/// The audit writer's public keys, earlier ones included so old receipts and checkpoints still
/// verify: a JSON array of `{"key_id", "public_key"}` (published at `/.well-known/audit-keys`).
pub const AUDIT_PUBLIC_KEYS_VAR: &str = "AUDIT_PUBLIC_KEYS";
/// R2 bucket of the signed audit checkpoints: its own bucket, write-once objects, bucket-locked
/// when deployed.
pub const AUDIT_CHECKPOINTS_R2: &str = "AUDIT_CHECKPOINTS";

/// Cron schedules of the scheduler Worker.
pub const CRON_OUTBOX_RELAY: &str = "* * * * *";
pub const CRON_SHARD_HEALTH: &str = "*/15 * * * *";
pub const CRON_MIGRATION_CHECK: &str = "0 * * * *";
pub const CRON_RETENTION: &str = "0 2 * * *";
/// Hourly: carries on a retention cycle a bounded run left unfinished (no-op otherwise).
pub const CRON_RETENTION_RESUME: &str = "30 * * * *";
/// Hourly, a few minutes past: every account's signed audit checkpoint of the hour that ended.
pub const CRON_AUDIT_CHECKPOINTS: &str = "5 * * * *";
/// Every two minutes: tenant moves in flight (also run on demand through the operator).
pub const CRON_MOVES: &str = "*/2 * * * *";
pub const ALL_CRONS: [&str; 7] = [
    CRON_OUTBOX_RELAY,
    CRON_SHARD_HEALTH,
    CRON_MIGRATION_CHECK,
    CRON_RETENTION,
    CRON_RETENTION_RESUME,
    CRON_AUDIT_CHECKPOINTS,
    CRON_MOVES,
];

/// The value of `ENVIRONMENT` that enables local-only behaviour (demo tokens, simulated country).
pub const LOCAL_ENVIRONMENT: &str = "local";

/// Hostnames of the API itself (comma separated); any other Host is looked up as a custom domain.
pub const API_HOSTS_VAR: &str = "API_HOSTS";

/// Producer binding of the dead-letter queue (the consumer sends refused messages there).
pub const CHANGE_EVENTS_DLQ: &str = "CHANGE_EVENTS_DLQ";
/// Scheduler: unpublished outbox rows younger than this many seconds are left to the request
/// that wrote them (default 30).
pub const RELAY_MIN_AGE_VAR: &str = "OUTBOX_RELAY_MIN_AGE_SECONDS";

/// Producer binding and name of the queue that continues large index fan-outs in chunks.
pub const INDEX_JOBS_QUEUE: &str = "INDEX_JOBS";
pub const INDEX_JOBS_QUEUE_NAME: &str = "index-jobs";

/// `on` enables the KV read cache of GET by id (default off: see the README's benchmarks).
pub const READ_CACHE_VAR: &str = "READ_CACHE";

/// One in this many successful reads writes its "request done" line (default
/// `api::http::RequestLog::DEFAULT_READS_EVERY`; `1` logs every read). See `api::http::RequestLog`.
pub const READ_LOG_EVERY_VAR: &str = "READ_LOG_EVERY";

/// Seconds between two fetches of one identity provider's JWKS by an isolate when tokens name
/// unknown keys (default 60; the local stack lowers it so rotation tests need not wait).
pub const JWKS_REFETCH_SECONDS_VAR: &str = "JWKS_REFETCH_SECONDS";

/// Operator Worker: the Cloudflare Access application it sits behind (deployed): the team
/// domain (`<team>.cloudflareaccess.com`) and the application's audience (AUD) tag.
pub const ACCESS_TEAM_DOMAIN_VAR: &str = "ACCESS_TEAM_DOMAIN";
pub const ACCESS_AUD_VAR: &str = "ACCESS_AUD";
/// Operator Worker: its service binding to the scheduler (job runs on demand).
pub const SCHEDULER_SERVICE: &str = "SCHEDULER";
