//! Native fakes of the ports: SQLite for `Database` (the real migrations apply to it),
//! memory for the queue, cache and blob store. Used by the native tests.

use crate::ports::*;
use rusqlite::{types::ValueRef, Connection};
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Run a future whose awaits never truly wait (all fakes are synchronous underneath).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

pub struct SqliteDb {
    conn: RefCell<Connection>,
    commits: Cell<u64>,
    cost: CostMeter,
    /// Run once, right before the next batch (tests interleave a second request between a
    /// request's read and its write: the fake otherwise runs requests one after another).
    before_next_batch: RefCell<Option<Box<dyn FnOnce()>>>,
}

impl SqliteDb {
    /// In-memory database with foreign keys on and the given migrations applied in order.
    pub fn with_migrations(
        migrations: &[crate::migrations::Migration],
    ) -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| StoreError::Backend(e.to_string()))?;
        // D1 refuses an expression tree deeper than 100 ("Expression tree is too large
        // (maximum depth 100)"); SQLite's default is 1000. The fake refuses what D1 refuses.
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_EXPR_DEPTH, 100)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        // Like `wrangler d1 migrations apply`: each applied migration is recorded.
        conn.execute_batch(
            "CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, \
             applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)",
        )
        .map_err(|e| StoreError::Backend(e.to_string()))?;
        for m in migrations {
            conn.execute_batch(m.sql)
                .map_err(|e| StoreError::Backend(format!("migration {}: {e}", m.name)))?;
            conn.execute("INSERT INTO d1_migrations (name) VALUES (?1)", [m.name])
                .map_err(|e| StoreError::Backend(e.to_string()))?;
        }
        Ok(Self {
            conn: RefCell::new(conn),
            commits: Cell::new(0),
            cost: CostMeter::default(),
            before_next_batch: RefCell::new(None),
        })
    }

    /// Run `f` right before the next batch on this database (once): the request that issues
    /// that batch has done its reads, `f` (another request, say) lands first.
    pub fn before_next_batch(&self, f: impl FnOnce() + 'static) {
        *self.before_next_batch.borrow_mut() = Some(Box::new(f));
    }

    pub fn shard() -> Result<Self, StoreError> {
        Self::with_migrations(crate::migrations::SHARD)
    }

    pub fn accounts() -> Result<Self, StoreError> {
        Self::with_migrations(crate::migrations::ACCOUNT)
    }

    /// Run raw SQL (tests tamper with rows, seed, inspect plans).
    /// Rows of a parameterless query (tests).
    pub fn query_json(&self, sql: &str) -> Vec<Map<String, Value>> {
        block_on(self.query(Stmt::new(sql.to_string(), vec![])))
            .map(|r| r.rows)
            .unwrap_or_default()
    }

    pub fn exec(&self, sql: &str) -> Result<(), StoreError> {
        self.conn
            .borrow()
            .execute_batch(sql)
            .map_err(|e| StoreError::from_message(e.to_string()))
    }

    fn run(conn: &Connection, stmt: &Stmt) -> Result<Rows, StoreError> {
        // Exactly what the D1 adapter sends: the same conversion (`ports::bind`).
        let bound = bind(stmt);
        let mut prepared = conn
            .prepare(&bound.sql)
            .map_err(|e| StoreError::from_message(e.to_string()))?;
        let params: Vec<rusqlite::types::Value> = bound.params.iter().map(to_sql).collect();
        let names: Vec<String> = prepared
            .column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut out = Vec::new();
        let mut rows = prepared
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(|e| StoreError::from_message(e.to_string()))?;
        while let Some(row) = rows
            .next()
            .map_err(|e| StoreError::from_message(e.to_string()))?
        {
            let mut m = Map::new();
            for (i, n) in names.iter().enumerate() {
                let v = match row
                    .get_ref(i)
                    .map_err(|e| StoreError::Backend(e.to_string()))?
                {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::from(i),
                    ValueRef::Real(f) => js_number(f), // as D1's JS result holds it
                    ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::from(b.to_vec()),
                };
                m.insert(n.clone(), v);
            }
            out.push(m);
        }
        drop(rows);
        let changes = conn.changes();
        let size_after = conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get::<_, i64>(0),
            )
            .ok()
            .map(|n| n.max(0) as u64);
        Ok(Rows {
            meta: Meta {
                rows_read: out.len() as u64,
                rows_written: changes,
                changes,
                size_after,
            },
            rows: out,
        })
    }
}

fn to_sql(v: &D1Param) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        D1Param::Null => S::Null,
        D1Param::Real(f) => S::Real(*f),
        D1Param::Text(t) => S::Text(t.to_string()),
    }
}

impl Database for SqliteDb {
    async fn query(&self, stmt: Stmt) -> Result<Rows, StoreError> {
        let conn = self.conn.borrow();
        let r = Self::run(&conn, &stmt)?;
        self.cost.record([&r.meta]);
        if r.meta.changes > 0 {
            self.commits.set(self.commits.get() + 1);
        }
        Ok(r)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, StoreError> {
        let hook = self.before_next_batch.borrow_mut().take();
        if let Some(hook) = hook {
            hook();
        }
        let mut conn = self.conn.borrow_mut();
        let tx = conn
            .transaction()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut out = Vec::with_capacity(stmts.len());
        for s in &stmts {
            out.push(Self::run(&tx, s)?); // dropping `tx` on error rolls back
        }
        tx.commit()
            .map_err(|e| StoreError::from_message(e.to_string()))?;
        self.commits.set(self.commits.get() + 1);
        self.cost.record(out.iter().map(|r| &r.meta));
        Ok(out)
    }

    fn bookmark(&self) -> Option<String> {
        // Shaped like D1's (hex groups of 8, 8, 8 and 32 digits), sortable by commit.
        Some(format!(
            "{:08x}-{:08x}-{:08x}-{:032x}",
            0,
            self.commits.get(),
            0,
            0
        ))
    }

    fn cost(&self) -> Cost {
        self.cost.get()
    }
}

/// One request's session over a shared SQLite, as a D1 session is: it meters only what it ran.
pub struct Session {
    db: std::rc::Rc<SqliteDb>,
    cost: CostMeter,
}

impl Session {
    pub fn new(db: std::rc::Rc<SqliteDb>) -> Self {
        Self {
            db,
            cost: CostMeter::default(),
        }
    }
}

impl Database for Session {
    async fn query(&self, stmt: Stmt) -> Result<Rows, StoreError> {
        let r = self.db.query(stmt).await?;
        self.cost.record([&r.meta]);
        Ok(r)
    }
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, StoreError> {
        let r = self.db.batch(stmts).await?;
        self.cost.record(r.iter().map(|r| &r.meta));
        Ok(r)
    }
    fn bookmark(&self) -> Option<String> {
        self.db.bookmark()
    }
    fn cost(&self) -> Cost {
        self.cost.get()
    }
}

/// Queue fake: records what was sent; can be told to fail.
#[derive(Default)]
pub struct MemQueue {
    pub sent: RefCell<Vec<Value>>,
    pub fail: Cell<bool>,
}

impl EventQueue for MemQueue {
    async fn send_batch(&self, messages: Vec<Value>) -> Result<(), QueueError> {
        if self.fail.get() {
            return Err(QueueError("injected failure".into()));
        }
        self.sent.borrow_mut().extend(messages);
        Ok(())
    }
}

#[derive(Default)]
pub struct MemCache {
    pub entries: RefCell<BTreeMap<String, String>>,
}

impl Cache for MemCache {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        Ok(self.entries.borrow().get(key).cloned())
    }
    async fn put(&self, key: &str, value: &str, _ttl: u64) -> Result<(), CacheError> {
        self.entries.borrow_mut().insert(key.into(), value.into());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.entries.borrow_mut().remove(key);
        Ok(())
    }
}

#[derive(Default)]
pub struct MemBlobs {
    pub objects: RefCell<BTreeMap<String, Blob>>,
}

impl BlobStore for MemBlobs {
    async fn put(&self, key: &str, blob: Blob) -> Result<(), BlobError> {
        self.objects.borrow_mut().insert(key.into(), blob);
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        Ok(self.objects.borrow().get(key).cloned())
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.objects.borrow_mut().remove(key);
        Ok(())
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        Ok(list_keys(
            self.objects.borrow().keys(),
            prefix,
            start_after,
            limit,
        ))
    }
}

/// R2's `list` over a sorted key set: keys under `prefix`, strictly after `start_after`, in
/// lexicographic (byte) order, at most `limit`.
fn list_keys<'a>(
    keys: impl Iterator<Item = &'a String>,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
) -> Vec<String> {
    keys.filter(|k| k.starts_with(prefix) && start_after.is_none_or(|a| k.as_str() > a))
        .take(limit)
        .cloned()
        .collect()
}

/// The checkpoint bucket: objects created once, never replaced (as R2's conditional put).
#[derive(Default)]
pub struct MemImmutable {
    pub objects: RefCell<BTreeMap<String, Vec<u8>>>,
}

impl ImmutableStore for MemImmutable {
    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<bool, BlobError> {
        let mut o = self.objects.borrow_mut();
        if o.contains_key(key) {
            return Ok(false);
        }
        o.insert(key.into(), bytes);
        Ok(true)
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        Ok(self.objects.borrow().get(key).cloned())
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        Ok(list_keys(
            self.objects.borrow().keys(),
            prefix,
            start_after,
            limit,
        ))
    }
}

/// Convenience: `EXPLAIN QUERY PLAN` of a statement, one detail line per step.
pub fn query_plan(db: &SqliteDb, stmt: &Stmt) -> Vec<String> {
    let explain = Stmt::new(
        format!("EXPLAIN QUERY PLAN {}", stmt.sql),
        stmt.params.clone(),
    );
    block_on(db.query(explain))
        .map(|r| {
            r.rows
                .iter()
                .filter_map(|row| col_str(row, "detail").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Outbound HTTP over a table of answers, counting what was asked (identity providers' JWKS).
#[derive(Default)]
pub struct CountingFetch {
    pub answers: RefCell<BTreeMap<String, Fetched>>,
    pub calls: RefCell<BTreeMap<String, usize>>,
}

impl CountingFetch {
    pub fn serve(&self, url: &str, body: &serde_json::Value) {
        self.answers.borrow_mut().insert(
            url.into(),
            Fetched {
                status: 200,
                body: body.to_string().into_bytes(),
                cache_control: Some("public, max-age=3600".into()),
            },
        );
    }
    pub fn calls(&self, url: &str) -> usize {
        self.calls.borrow().get(url).copied().unwrap_or(0)
    }
}

impl Fetch for CountingFetch {
    async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        *self.calls.borrow_mut().entry(url.into()).or_default() += 1;
        self.answers
            .borrow()
            .get(url)
            .cloned()
            .ok_or_else(|| FetchError(format!("{url}: connection refused")))
    }
}
