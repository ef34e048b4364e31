//! Layer 0, the ports: what the crate needs from the platform (it imports only the domain). The
//! Workers implement them over D1 / Queues / KV / R2; `testing::fakes` implements them over
//! SQLite and memory for native tests.
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

/// A parameter as D1 receives it. D1 binds every JavaScript number as REAL (an integer `2`
/// bound as a number is stored as `2.0`, and `json_set(body, '$.version', ?1)` writes `2.0`),
/// refuses `BigInt`, and turns booleans into `1.0`/`0.0` (measured on workerd: `SELECT
/// typeof(?1)` with `2` is `real`). So there are only three kinds of value on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum D1Param<'a> {
    Null,
    Real(f64),
    /// Borrowed from the statement where it can be: the read path binds ids without copying.
    Text(Cow<'a, str>),
}

/// A statement as it goes to D1: what [`bind`] makes of a [`Stmt`].
#[derive(Debug, Clone, PartialEq)]
pub struct Bound<'a> {
    /// The statement's own text unless an integer parameter needed its placeholder cast.
    pub sql: Cow<'a, str>,
    pub params: Vec<D1Param<'a>>,
}

/// The one conversion from a [`Stmt`] to what D1 binds, used by the D1 adapter and by the
/// SQLite fake alike, so native tests see exactly what D1 stores.
///
/// Integers (and booleans) would arrive as REAL, so each one travels as its decimal text and
/// every use of its placeholder is wrapped in `CAST(?n AS INTEGER)`: stored, compared and
/// computed as INTEGER, exactly for the whole `i64` range (a JS number is exact only to 2^53).
/// Non-integral numbers stay REAL; strings stay TEXT; arrays and objects go as JSON text.
pub fn bind(stmt: &Stmt) -> Bound<'_> {
    let mut ints = vec![false; stmt.params.len()];
    let params = stmt
        .params
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Null => D1Param::Null,
            Value::Bool(b) => {
                ints[i] = true;
                D1Param::Text(Cow::Borrowed(if *b { "1" } else { "0" }))
            }
            // Above i64::MAX a CAST would clamp: such a number stays REAL, as D1 would have it.
            Value::Number(n) if n.is_i64() => {
                ints[i] = true;
                D1Param::Text(Cow::Owned(n.to_string()))
            }
            Value::Number(n) => D1Param::Real(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => D1Param::Text(Cow::Borrowed(s)),
            other => D1Param::Text(Cow::Owned(other.to_string())),
        })
        .collect();
    let sql = if ints.iter().any(|b| *b) {
        Cow::Owned(cast_integer_placeholders(&stmt.sql, &ints))
    } else {
        Cow::Borrowed(stmt.sql.as_ref())
    };
    Bound { sql, params }
}

/// Wrap every placeholder `?n` (or bare `?`) whose parameter is an integer in
/// `CAST(?n AS INTEGER)`, leaving string literals, quoted identifiers and comments alone.
fn cast_integer_placeholders(sql: &str, ints: &[bool]) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 32);
    let (mut i, mut next_anon) = (0usize, 1usize);
    let mut start = 0usize;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2; // doubled quote: still inside
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'?' => {
                let digits_end = b[i + 1..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .map_or(b.len(), |p| i + 1 + p);
                let n = if digits_end > i + 1 {
                    sql[i + 1..digits_end].parse::<usize>().unwrap_or(0)
                } else {
                    next_anon
                };
                // SQLite numbers a bare `?` one past the largest index so far.
                next_anon = next_anon.max(n + 1);
                if n >= 1 && ints.get(n - 1).copied().unwrap_or(false) {
                    out.push_str(&sql[start..i]);
                    out.push_str("CAST(");
                    out.push_str(&sql[i..digits_end]);
                    out.push_str(" AS INTEGER)");
                    start = digits_end;
                }
                i = digits_end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[start.min(sql.len())..]);
    out
}

/// A REAL as D1's JavaScript result carries it: a JS number, which the adapter decodes as an
/// integer when it is one. The fake decodes columns through this so both agree.
pub fn js_number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0 {
        Value::from(f as i64)
    } else {
        Value::from(f)
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
    /// The tenant is fenced on this shard (a move is in its cutover, or the tenant has moved
    /// away): the batch wrote nothing. The API re-resolves the route and retries once.
    #[error("tenant fenced: {0}")]
    Fenced(String),
}

impl StoreError {
    /// Classify a backend error message (D1 reports SQLite's text).
    pub fn from_message(msg: String) -> Self {
        if msg.contains("tenant_fenced") {
            Self::Fenced(msg)
        } else if msg.contains("constraint failed") || msg.contains("SQLITE_CONSTRAINT") {
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
#[error("outbound fetch failed: {0}")]
pub struct FetchError(pub String);

/// What an outbound GET answered (bodies are small documents such as a JWKS).
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    /// The `Cache-Control` header, if any.
    pub cache_control: Option<String>,
}

/// Outbound HTTP through the Worker (`fetch()`): identity providers' JWKS.
pub trait Fetch {
    async fn get(&self, url: &str) -> Result<Fetched, FetchError>;
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
    /// Keys under `prefix` in lexicographic order, after `start_after`, at most `limit` (R2
    /// `list`, its pages followed): what is stored, whether or not a row names it.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError>;
}

/// Write-once objects (the signed audit checkpoints' own R2 bucket, bucket-locked when
/// deployed): an object is created once and never replaced; there is no delete.
pub trait ImmutableStore {
    /// Create `key` unless it exists (R2 `onlyIf: {etagDoesNotMatch: "*"}`); `false` when it
    /// already existed, in which case nothing was written.
    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<bool, BlobError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;
    /// Keys under `prefix` in lexicographic order, after `start_after`, at most `limit`.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError>;
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
