//! Ports: what the domain needs from the platform. The Workers implement them over
//! D1 / Queues / KV / R2; `fakes` implements them over SQLite and memory for native tests.
#![allow(async_fn_in_trait)] // single-threaded wasm: the futures need not be Send.

use serde_json::{Map, Value};
use std::borrow::Cow;

/// One SQL statement with positional `?` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub sql: Cow<'static, str>,
    pub params: Vec<Value>,
}

impl Stmt {
    pub fn new(sql: impl Into<Cow<'static, str>>, params: Vec<Value>) -> Self {
        Self {
            sql: sql.into(),
            params,
        }
    }
}

/// Metered cost of a statement, from D1's result meta (SQLite fakes report what they can).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    pub rows_read: u64,
    pub rows_written: u64,
    pub changes: u64,
    /// Database size in bytes after the statement (D1 reports it).
    pub size_after: Option<u64>,
}

/// What a session has cost so far: D1 round trips (`calls`, a batch is one), statements, and
/// the rows D1 bills (`rows_read` is rows scanned, not returned).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cost {
    pub calls: u64,
    pub statements: u64,
    pub rows_read: u64,
    pub rows_written: u64,
}

impl Cost {
    /// `calls=1;statements=1;rows_read=1;rows_written=0` (the local `x-d1-cost` header).
    pub fn header(&self) -> String {
        format!(
            "calls={};statements={};rows_read={};rows_written={}",
            self.calls, self.statements, self.rows_read, self.rows_written
        )
    }

    pub fn plus(self, o: Cost) -> Cost {
        Cost {
            calls: self.calls + o.calls,
            statements: self.statements + o.statements,
            rows_read: self.rows_read + o.rows_read,
            rows_written: self.rows_written + o.rows_written,
        }
    }
}

/// Accumulates a session's [`Cost`] from the metas of what it ran (adapters embed one).
#[derive(Debug, Default)]
pub struct CostMeter(std::cell::Cell<Cost>);

impl CostMeter {
    pub fn record<'a>(&self, metas: impl IntoIterator<Item = &'a Meta>) {
        let mut c = self.0.get();
        c.calls += 1;
        for m in metas {
            c.statements += 1;
            c.rows_read += m.rows_read;
            c.rows_written += m.rows_written;
        }
        self.0.set(c);
    }

    pub fn get(&self) -> Cost {
        self.0.get()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub rows: Vec<Map<String, Value>>,
    pub meta: Meta,
}

impl Rows {
    pub fn first(&self) -> Option<&Map<String, Value>> {
        self.rows.first()
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StoreError {
    /// A UNIQUE / CHECK / FOREIGN KEY constraint refused the write: nothing was written.
    #[error("constraint violated: {0}")]
    Constraint(String),
    #[error("storage error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Classify a backend error message (D1 reports SQLite's text).
    pub fn from_message(msg: String) -> Self {
        if msg.contains("constraint failed") || msg.contains("SQLITE_CONSTRAINT") {
            Self::Constraint(msg)
        } else {
            Self::Backend(msg)
        }
    }
}

/// A database session (D1 Sessions API): reads and writes in one request go through one
/// session so that they see each other; `bookmark` is what a later request sends back.
pub trait Database {
    async fn query(&self, stmt: Stmt) -> Result<Rows, StoreError>;
    /// All statements in one atomic transaction (D1 `batch()`).
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, StoreError>;
    fn bookmark(&self) -> Option<String>;
    /// Everything this session has run so far (metered from D1's result meta).
    fn cost(&self) -> Cost;
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("queue send failed: {0}")]
pub struct QueueError(pub String);

pub trait EventQueue {
    async fn send_batch(&self, messages: Vec<Value>) -> Result<(), QueueError>;
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("cache error: {0}")]
pub struct CacheError(pub String);

/// A read cache (KV). Keys are immutable and version-suffixed, so a stale read can only miss.
pub trait Cache {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError>;
    async fn put(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), CacheError>;
    async fn delete(&self, key: &str) -> Result<(), CacheError>;
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("blob store error: {0}")]
pub struct BlobError(pub String);

#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    pub bytes: Vec<u8>,
    pub content_type: String,
}

/// Document contents (R2), under account-scoped keys.
pub trait BlobStore {
    async fn put(&self, key: &str, blob: Blob) -> Result<(), BlobError>;
    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError>;
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}

/// Convenience for decoding a column.
pub fn col_str<'a>(row: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    row.get(name).and_then(Value::as_str)
}

pub fn col_i64(row: &Map<String, Value>, name: &str) -> Option<i64> {
    row.get(name)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

/// Parse a `body` column (JSON text) into a value.
pub fn col_json(row: &Map<String, Value>, name: &str) -> Option<Value> {
    col_str(row, name).and_then(|s| serde_json::from_str(s).ok())
}

/// A shared handle works wherever the database does (fakes hand out `Rc`s of one SQLite).
impl<T: Database> Database for std::rc::Rc<T> {
    async fn query(&self, stmt: Stmt) -> Result<Rows, StoreError> {
        (**self).query(stmt).await
    }
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, StoreError> {
        (**self).batch(stmts).await
    }
    fn bookmark(&self) -> Option<String> {
        (**self).bookmark()
    }
    fn cost(&self) -> Cost {
        (**self).cost()
    }
}
