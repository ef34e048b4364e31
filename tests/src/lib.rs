//! Helpers for the integration tests: a started stack, tenants made through the operator API,
//! and polling with deadlines (never fixed sleeps).

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
pub use xtask::http::{Client, Reply};
use xtask::{LOCAL_ADMIN_SECRET, OPERATOR_HOST};

pub type TestResult = Result<(), String>;

pub struct Env {
    pub client: Client,
    /// The stack's persist directory (seeding writes into its D1s): reached only through
    /// [`Env::outside`].
    persist: std::path::PathBuf,
    /// Where the stack's `wrangler dev` writes its output (the Workers' console lines).
    pub log: std::path::PathBuf,
    /// Set once the tests that run one at a time begin (see [`Env::outside`]).
    exclusive: AtomicBool,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A unique slug for this process.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

pub struct TestTenant {
    pub id: String,
    pub shard: String,
    pub admin: String,
    pub member: String,
    pub readonly: String,
    /// Host header to reach the deployment serving this tenant (dedicated tenants).
    pub host: Option<String>,
}

impl Env {
    pub fn new(client: Client, log: std::path::PathBuf, persist: std::path::PathBuf) -> Self {
        Env {
            client,
            persist,
            log,
            exclusive: AtomicBool::new(false),
        }
    }

    /// The tests that run one at a time begin (tests/stack.rs).
    pub fn enter_exclusive_phase(&self) {
        self.exclusive.store(true, Ordering::SeqCst);
    }

    /// The stack's persist directory, for a test that reads or writes its D1 files from outside
    /// the runtime (`wrangler d1 execute`, a second process on the same SQLite files: the
    /// stack's own writes meet SQLITE_BUSY meanwhile, and a test running beside it would see
    /// 503s it did not cause). Only in the one-at-a-time phase: a test that calls this from the
    /// parallel phase fails, naming the fix.
    pub fn outside(&self) -> Result<&std::path::Path, String> {
        if self.exclusive.load(Ordering::SeqCst) {
            Ok(&self.persist)
        } else {
            Err(
                "this test reaches the D1 files from outside the runtime: list it in its \
                 module's EXCLUSIVE tests (tests/stack.rs runs those one at a time)"
                    .into(),
            )
        }
    }

    /// An operator call: the operator Worker's own host, the local dev credential.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Reply, String> {
        self.client.json(
            method,
            path,
            Some(LOCAL_ADMIN_SECRET),
            body,
            &[("host", OPERATOR_HOST)],
        )
    }

    pub fn token(&self, account: &str, role: &str) -> Result<String, String> {
        let sub = format!(
            "00000000-0000-4000-8000-{:012}",
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let r = self.admin(
            "POST",
            &format!("/admin/v1/accounts/{account}/tokens"),
            Some(&json!({"sub": sub, "role": role})),
        )?;
        expect_status(&r, 201, "mint token")?;
        r.json()["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or("no token".into())
    }

    /// A new account on the least-full shared shard, or on `shard` (dedicated).
    pub fn tenant(&self, shard: Option<&str>) -> Result<TestTenant, String> {
        let slug = unique("t");
        let mut body = json!({"name": format!("Tenant {slug}"), "slug": slug, "kind": "test"});
        if let Some(s) = shard {
            body["shard_id"] = json!(s);
        }
        let r = self.admin("POST", "/admin/v1/accounts", Some(&body))?;
        expect_status(&r, 201, "create account")?;
        let a = r.json();
        let id = a["id"].as_str().unwrap_or_default().to_string();
        let shard = a["db_shard_id"].as_str().unwrap_or_default().to_string();
        let host = if shard == "shard-ded-01" {
            Some("ded-01.localhost".to_string())
        } else {
            None
        };
        Ok(TestTenant {
            admin: self.token(&id, "admin")?,
            member: self.token(&id, "member")?,
            readonly: self.token(&id, "readonly")?,
            id,
            shard,
            host,
        })
    }

    /// A tenant API call with the tenant's routing Host.
    pub fn call(
        &self,
        t: &TestTenant,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let mut h: Vec<(&str, &str)> = extra.to_vec();
        if let Some(host) = &t.host {
            h.push(("host", host));
        }
        self.client.json(method, path, Some(token), body, &h)
    }
}

pub fn expect_status(r: &Reply, want: u16, what: &str) -> TestResult {
    if r.status == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected HTTP {want}, got {} {}",
            r.status,
            r.text()
        ))
    }
}

pub fn ensure(cond: bool, msg: impl Into<String>) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(msg.into())
    }
}

/// Poll until `f` returns Some or the deadline passes.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    let mut last_err = String::new();
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = e,
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {timeout:?} waiting for {what} {last_err}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn problem_type(r: &Reply) -> String {
    r.json()["type"].as_str().unwrap_or_default().to_string()
}

pub fn is_problem(r: &Reply) -> bool {
    r.header("content-type") == Some("application/problem+json")
        && r.json()["status"].as_u64() == Some(u64::from(r.status))
        && r.json()["request_id"].is_string()
        && r.json()["detail"].is_string()
}

/// A test case: its behaviour-describing name and body.
pub type NamedTest = (&'static str, fn(&Env) -> TestResult);
