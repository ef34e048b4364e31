//! A whole deployment over fakes: account D1 + three shards in SQLite (real migrations,
//! foreign keys on), memory queue and R2, a fixed clock. Used by the native tests.

use crate::api::http::{ApiRequest, ApiResponse, Method};
use crate::api::{self, ApiConfig, Platform};
use crate::consumer::ConsumerPlatform;
use crate::domain::auth::{Claims, JwtConfig, Role};
use crate::domain::clock::{Clock, CountingEntropy, FixedClock};
use crate::jobs::SchedulerPlatform;
use crate::services::tenancy::RouteCache;
use crate::testing::fakes::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::rc::Rc;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

pub const ADMIN: &str = "admin-secret";
/// The fake Cloudflare Access application of the operator Worker.
pub const ACCESS_TEAM: &str = "platform.cloudflareaccess.com";
pub const ACCESS_AUD: &str = "aud-tag-0123456789";
pub const ACCESS_CERTS: &str = "https://platform.cloudflareaccess.com/cdn-cgi/access/certs";
/// The operator `admin` calls are made as when deployed.
pub const OPERATOR_EMAIL: &str = "ops@platform.example";
pub const START: OffsetDateTime = datetime!(2026-11-26 09:00 UTC);

pub struct Fake {
    pub accounts: Rc<SqliteDb>,
    /// The API's view of the account D1 (a session, as in the Worker).
    pub api_accounts: Session,
    pub usage: crate::services::usage::UsageMeter,
    pub marks: crate::services::marks::PendingMarks,
    pub shards: BTreeMap<String, Rc<SqliteDb>>,
    pub served: Vec<String>,
    pub queue: MemQueue,
    pub index_jobs: MemQueue,
    pub platform_events: MemQueue,
    /// The health job's measuring budget (tests lower it to see a cycle span runs).
    pub measure_rows: std::cell::Cell<u64>,
    pub blobs: MemBlobs,
    /// The signed audit checkpoints' bucket.
    pub checkpoints: MemImmutable,
    pub cache: MemCache,
    /// Whether the KV read cache is bound (`READ_CACHE=on`); on unless a test turns it off
    /// (`without_read_cache`, the deployed default).
    pub read_cache: bool,
    /// Outbound HTTP (identity providers' JWKS), counting calls.
    pub fetch: CountingFetch,
    pub keys: crate::services::identity::KeyCache,
    pub routes: RouteCache,
    /// What each tenant session was opened with (`Platform::shard`'s bookmark), in order.
    pub session_starts: std::cell::RefCell<Vec<(String, Option<String>)>>,
    pub clock: FixedClock,
    pub entropy: CountingEntropy,
    pub cfg: ApiConfig,
    /// The audit writer's key (the consumer signs with it; the API verifies with its public half).
    pub seal: crate::services::audit::Seal,
}

/// The audit writer's key in native tests (a fixed seed: receipts are reproducible).
pub fn test_seal() -> crate::services::audit::Seal {
    use base64::Engine as _;
    let seed = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    match crate::services::audit::Seal::new(&format!("test-k1:{seed}"), &[]) {
        Ok(s) => s,
        Err(e) => panic!("test seal: {e}"),
    }
}

impl Platform for Fake {
    type Db = Session;
    type Queue = MemQueue;
    type Blobs = MemBlobs;
    type Entropy = CountingEntropy;
    type Cache = MemCache;
    type Checkpoints = MemImmutable;
    type Fetch = CountingFetch;
    fn fetcher(&self) -> &CountingFetch {
        &self.fetch
    }
    fn keys(&self) -> &crate::services::identity::KeyCache {
        &self.keys
    }
    fn key_store(&self) -> Option<&MemCache> {
        Some(&self.cache)
    }
    fn checkpoints(&self) -> &MemImmutable {
        &self.checkpoints
    }
    fn cache(&self) -> Option<&MemCache> {
        self.read_cache.then_some(&self.cache)
    }
    fn accounts(&self) -> &Session {
        &self.api_accounts
    }
    fn shard(&self, binding: &str, bookmark: Option<&str>) -> Option<Session> {
        self.session_starts
            .borrow_mut()
            .push((binding.to_string(), bookmark.map(str::to_owned)));
        self.served
            .iter()
            .any(|s| s == binding)
            .then(|| self.shards.get(binding).cloned().map(Session::new))
            .flatten()
    }
    fn queue(&self) -> &MemQueue {
        &self.queue
    }
    fn blobs(&self) -> &MemBlobs {
        &self.blobs
    }
    fn routes(&self) -> &RouteCache {
        &self.routes
    }
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
    fn entropy(&self) -> &CountingEntropy {
        &self.entropy
    }
    fn usage(&self) -> &crate::services::usage::UsageMeter {
        &self.usage
    }
    fn marks(&self) -> &crate::services::marks::PendingMarks {
        &self.marks
    }
}

impl crate::operator::OperatorPlatform for Fake {
    /// The scheduler's side of the service-binding call, in process.
    async fn run_job(
        &self,
        job: &str,
        steps: Option<usize>,
        request_id: &str,
    ) -> Result<ApiResponse, String> {
        let req = ApiRequest {
            method: Method::Post,
            path: crate::operator::jobs::run_path(job, None),
            query: steps
                .map(|n| vec![("steps".to_string(), n.to_string())])
                .unwrap_or_default(),
            headers: vec![("authorization".into(), format!("Bearer {ADMIN}"))],
            body: vec![],
            cf_country: Default::default(),
            request_id: request_id.into(),
        };
        Ok(crate::operator::jobs::handle_scheduler(self, ADMIN, &req).await)
    }
}

impl ConsumerPlatform for Fake {
    type Db = Rc<SqliteDb>;
    type Entropy = CountingEntropy;
    type Queue = MemQueue;
    fn index_jobs(&self) -> Option<&MemQueue> {
        Some(&self.index_jobs)
    }
    fn entropy(&self) -> &CountingEntropy {
        &self.entropy
    }
    fn local(&self) -> bool {
        self.cfg.local
    }
    fn accounts(&self) -> &Rc<SqliteDb> {
        &self.accounts
    }
    fn shard(&self, binding: &str) -> Option<Rc<SqliteDb>> {
        self.shards.get(binding).cloned()
    }
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
    fn seal(&self) -> Option<&crate::services::audit::Seal> {
        Some(&self.seal)
    }
    type Checkpoints = MemImmutable;
    fn checkpoints(&self) -> Option<&MemImmutable> {
        Some(&self.checkpoints)
    }
}

impl SchedulerPlatform for Fake {
    type Db = Rc<SqliteDb>;
    type Queue = MemQueue;
    type Entropy = CountingEntropy;
    type Blobs = MemBlobs;
    type Checkpoints = MemImmutable;
    fn checkpoints(&self) -> &MemImmutable {
        &self.checkpoints
    }
    fn audit_seal(&self) -> Option<&crate::domain::audit::Seal> {
        Some(&self.seal)
    }
    type Cache = MemCache;
    fn blobs(&self) -> &MemBlobs {
        &self.blobs
    }
    fn cache(&self) -> &MemCache {
        &self.cache
    }
    fn accounts(&self) -> &Rc<SqliteDb> {
        &self.accounts
    }
    fn shards(&self) -> Vec<(String, Rc<SqliteDb>)> {
        self.shards
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn queue(&self) -> &MemQueue {
        &self.queue
    }
    fn platform_events(&self) -> &MemQueue {
        &self.platform_events
    }
    fn measure_rows_per_run(&self) -> u64 {
        self.measure_rows.get()
    }
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
    fn entropy(&self) -> &CountingEntropy {
        &self.entropy
    }
    async fn pause(&self, d: time::Duration) {
        self.clock.advance(d);
    }
}

pub fn jwt() -> JwtConfig {
    JwtConfig {
        secret: "test-secret".into(),
        issuer: "https://issuer.test".into(),
        audience: "clientdocs-api".into(),
    }
}

impl Fake {
    /// The shared-tier deployment (binds SHARD_EU_01 and SHARD_EU_02), registry seeded.
    pub fn new() -> Self {
        let accounts = Rc::new(SqliteDb::accounts().expect("account migrations apply"));
        accounts
            .exec(include_str!("../../../seed/local-shards.sql"))
            .expect("seed shards");
        let shards = ["SHARD_EU_01", "SHARD_EU_02", "SHARD_DED_01"]
            .into_iter()
            .map(|b| {
                (
                    b.to_string(),
                    Rc::new(SqliteDb::shard().expect("shard migrations apply")),
                )
            })
            .collect();
        Fake {
            api_accounts: Session::new(accounts.clone()),
            usage: Default::default(),
            marks: Default::default(),
            accounts,
            shards,
            served: vec!["SHARD_EU_01".into(), "SHARD_EU_02".into()],
            queue: MemQueue::default(),
            index_jobs: MemQueue::default(),
            platform_events: MemQueue::default(),
            measure_rows: std::cell::Cell::new(crate::jobs::shard_health::MEASURE_ROWS_PER_RUN),
            blobs: MemBlobs::default(),
            checkpoints: MemImmutable::default(),
            cache: MemCache::default(),
            read_cache: true,
            fetch: CountingFetch::default(),
            keys: crate::services::identity::KeyCache::new(
                crate::services::identity::REFETCH_INTERVAL,
            ),
            routes: RouteCache::new(crate::services::tenancy::ROUTE_CACHE_TTL),
            session_starts: Default::default(),
            clock: FixedClock::new(START),
            entropy: CountingEntropy::default(),
            cfg: ApiConfig {
                deployment: "clientdocs-api".into(),
                local: true,
                jwt: jwt(),
                api_hosts: vec!["api.test".into()],
                max_content_bytes: 1024,
                audit_keys: vec![test_seal().signer.public_key()],
                cursor_secret: "test-cursor-secret".into(),
            },
            seal: test_seal(),
        }
    }

    /// The deployed default: no KV read cache, so a GET by id reads its shard.
    pub fn without_read_cache(mut self) -> Self {
        self.read_cache = false;
        self
    }

    pub fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> ApiResponse {
        self.raw(request(method, path, headers, body, "api.test"))
    }

    /// One request, then what the Worker does after it: flush the deferred outbox marks.
    pub fn raw(&self, req: ApiRequest) -> ApiResponse {
        let r = block_on(api::handle(self, &self.cfg, req));
        self.flush_marks();
        r
    }

    pub fn flush_marks(&self) {
        for (binding, stmts) in self.marks.take(self.clock.now()) {
            block_on(crate::ports::Database::batch(
                &*self.shards[&binding],
                stmts,
            ))
            .expect("marking outbox rows published");
        }
    }

    /// The operator Worker's configuration over this fake (local: the dev credential).
    pub fn operator_cfg(&self) -> crate::operator::OperatorConfig {
        crate::operator::OperatorConfig {
            api: self.cfg.clone(),
            access: Ok(crate::domain::operator::AccessApp::new(
                ACCESS_TEAM,
                ACCESS_AUD,
            )),
            dev_secret: ADMIN.into(),
        }
    }

    /// A Cloudflare Access assertion for `email` (RS256 with the test key `access-1`, served at
    /// the team's certs URL by the fake fetch), valid for an hour from the fake clock.
    pub fn access_assertion(&self, email: &str) -> String {
        use crate::domain::identity::tests::{rsa_key, sign};
        let key = serde_json::to_value(rsa_key("access-1")).unwrap_or_default();
        self.fetch.serve(ACCESS_CERTS, &json!({"keys": [key]}));
        let now = self.clock.now().unix_timestamp();
        sign(
            jsonwebtoken::Algorithm::RS256,
            Some("access-1"),
            &json!({"iss": format!("https://{ACCESS_TEAM}"), "aud": [ACCESS_AUD], "email": email,
                    "sub": format!("sub-{email}"), "iat": now, "exp": now + 3600}),
        )
    }

    /// An operator request to the operator Worker: locally with the dev credential as a
    /// bearer, deployed (`cfg.local` false) with an Access assertion of [`OPERATOR_EMAIL`].
    pub fn admin(&self, method: Method, path: &str, body: Option<Value>) -> ApiResponse {
        let (name, value) = if self.cfg.local {
            ("authorization", format!("Bearer {ADMIN}"))
        } else {
            (
                crate::domain::operator::ACCESS_ASSERTION_HEADER,
                self.access_assertion(OPERATOR_EMAIL),
            )
        };
        self.operator(&self.operator_cfg(), method, path, &[(name, &value)], body)
    }

    /// One request to the operator Worker with `cfg`.
    pub fn operator(
        &self,
        cfg: &crate::operator::OperatorConfig,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> ApiResponse {
        let req = request(method, path, headers, body, "ops.test");
        let r = block_on(crate::operator::handle(self, cfg, req));
        self.flush_marks();
        r
    }

    /// Create an account (placement by the operator API) and return (id, shard id).
    pub fn account(&self, slug: &str, shard: Option<&str>) -> (Uuid, String) {
        let mut body = json!({"name": slug, "slug": slug, "kind": "test"});
        if let Some(s) = shard {
            body["shard_id"] = json!(s);
        }
        let r = self.admin(Method::Post, "/admin/v1/accounts", Some(body));
        assert_eq!(r.status, 201, "{:?}", r.body_json());
        let v = r.body_json().cloned().unwrap_or_default();
        (
            Uuid::parse_str(v["id"].as_str().unwrap_or_default()).unwrap_or_default(),
            v["db_shard_id"].as_str().unwrap_or_default().to_string(),
        )
    }

    pub fn token(&self, account: Uuid, role: Role) -> String {
        let now = self.clock.now().unix_timestamp();
        crate::domain::auth::mint(
            &Claims {
                sub: Uuid::from_u128(0xabc),
                account_id: account,
                role,
                exp: now + 3600,
                iat: now,
                nbf: None,
                iss: jwt().issuer,
                aud: jwt().audience,
            },
            &jwt(),
        )
        .unwrap_or_default()
    }

    pub fn as_user(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> ApiResponse {
        self.call(
            method,
            path,
            &[("authorization", &format!("Bearer {token}"))],
            body,
        )
    }

    /// Deliver everything the API sent to the queue through the consumer.
    pub fn drain_queue(&self) -> Vec<crate::consumer::Decision> {
        let msgs: Vec<Value> = self.queue.sent.borrow_mut().drain(..).collect();
        block_on(crate::consumer::process_batch(self, &msgs))
    }

    pub fn shard_db(&self, binding: &str) -> Rc<SqliteDb> {
        self.shards[binding].clone()
    }

    pub fn count(&self, binding: &str, sql: &str) -> i64 {
        let r = block_on(crate::ports::Database::query(
            &*self.shards[binding],
            crate::ports::Stmt::new(sql.to_string(), vec![]),
        ))
        .expect("count query");
        r.rows
            .first()
            .and_then(|row| row.values().next().and_then(Value::as_i64))
            .unwrap_or(-1)
    }
}

/// A test request: lower-cased headers, a JSON content type when there is a body, and `host`
/// unless the caller names one.
pub(crate) fn request(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
    host: &str,
) -> ApiRequest {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    if body.is_some() && !h.iter().any(|(k, _)| k == "content-type") {
        h.push(("content-type".into(), "application/json".into()));
    }
    if !h.iter().any(|(k, _)| k == "host") {
        h.push(("host".into(), host.into()));
    }
    ApiRequest {
        method,
        path: path.into(),
        query: ApiRequest::parse_query(query),
        headers: h,
        body: body
            .map(|b| serde_json::to_vec(&b).unwrap_or_default())
            .unwrap_or_default(),
        cf_country: Default::default(),
        request_id: "req-test".into(),
    }
}
