//! A platform-free HTTP model: the Worker converts `worker::Request` into `ApiRequest` and
//! `ApiResponse` back, so every route is tested natively.

use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            other => Self::Other(other.into()),
        }
    }

    /// The method's name as sent (upper case; `Other` as parsed).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// Path without the query string, percent-decoding left to the router.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `request.cf.country` (none locally), asked of the runtime only if a check needs it.
    pub cf_country: Country,
    pub request_id: String,
}

/// The request's country of origin (`request.cf.country`), read from the runtime only when
/// asked: reading `cf` makes the runtime build the request's whole `cf` object, and only a
/// UK-only account's requests look at the country (`api::tenant`). Unknown by default.
#[derive(Clone, Default)]
pub struct Country(Option<std::rc::Rc<dyn Fn() -> Option<String>>>);

impl Country {
    /// Asked of `read` when first needed (and again if asked again: nothing asks twice).
    pub fn ask(read: impl Fn() -> Option<String> + 'static) -> Self {
        Self(Some(std::rc::Rc::new(read)))
    }

    pub fn get(&self) -> Option<String> {
        self.0.as_ref().and_then(|read| read())
    }
}

impl std::fmt::Debug for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Country(..)")
    }
}

impl ApiRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn host(&self) -> Option<&str> {
        self.header("host")
    }

    /// Parse a query string (`a=1&b=x%20y`).
    pub fn parse_query(q: &str) -> Vec<(String, String)> {
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }
}

/// Which completed requests write their "request done" line. Every write, every answer of 400
/// or more, and every read slower than `slow_ms` is logged; of the other reads (GET, HEAD,
/// OPTIONS), one in `reads_every`, chosen by the request id (so a request's choice is the same
/// on every line and in every replay of the logs). A sampled line carries `sampled` =
/// `reads_every`, so counting lines still estimates volume.
///
/// Why not every read: the platform's invocation log already records each request (status,
/// CPU and wall time, ray id), the usage meter records each account's D1 cost, and a console
/// line is the costliest thing a cached GET does in the runtime (see bench/README.md); Workers
/// Logs also bills per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLog {
    pub reads_every: u32,
    pub slow_ms: u64,
}

impl RequestLog {
    pub const DEFAULT_READS_EVERY: u32 = 100;
    /// A read at least this slow (wall time, I/O included) is always logged.
    pub const SLOW_MS: u64 = 1000;
    /// Every request (the operator plane and the scheduler: few requests, each one an action).
    pub const ALL: RequestLog = RequestLog {
        reads_every: 1,
        slow_ms: 0,
    };

    /// From the `READ_LOG_EVERY` variable: a positive integer, else the default.
    pub fn from_var(v: Option<&str>) -> Self {
        RequestLog {
            reads_every: v
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(Self::DEFAULT_READS_EVERY),
            slow_ms: Self::SLOW_MS,
        }
    }

    /// `None`: no line. `Some(n)`: write the line; `n > 1` means it stands for one in `n`
    /// reads (its `sampled` field).
    pub fn line(
        &self,
        method: &Method,
        status: u16,
        duration_ms: u64,
        request_id: &str,
    ) -> Option<u32> {
        self.choose(method, request_id).line(status, duration_ms)
    }

    /// What can be decided before the request is served (so the adapter keeps no copy of the
    /// method or id): whether it is a read, and whether its id is the sampled one in
    /// `reads_every`.
    pub fn choose(&self, method: &Method, request_id: &str) -> LineChoice {
        let read = matches!(method, Method::Get | Method::Head | Method::Options);
        LineChoice {
            log: *self,
            read,
            chosen: self.reads_every <= 1
                || (read
                    && fnv1a(request_id.as_bytes()).is_multiple_of(u64::from(self.reads_every))),
        }
    }
}

/// A request's [`RequestLog`] choice, made before it is served.
#[derive(Debug, Clone, Copy)]
pub struct LineChoice {
    log: RequestLog,
    read: bool,
    chosen: bool,
}

impl LineChoice {
    /// See [`RequestLog::line`].
    pub fn line(&self, status: u16, duration_ms: u64) -> Option<u32> {
        let l = &self.log;
        if !self.read || status >= 400 || duration_ms >= l.slow_ms || l.reads_every <= 1 {
            return Some(1);
        }
        self.chosen.then_some(l.reads_every)
    }
}

/// FNV-1a, 64 bits: a fixed, seedless hash (the sampling choice must not vary by isolate).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Empty,
    Json(Value),
    /// A JSON document already rendered as text (by SQLite, on the read path): forwarded as
    /// it is, parsed only when something asks for its value.
    JsonText(JsonText),
    Bytes(Vec<u8>),
}

/// JSON text with its value parsed on first demand ([`ApiResponse::body_json`]).
#[derive(Debug, Clone)]
pub struct JsonText {
    text: String,
    parsed: std::cell::OnceCell<Value>,
}

impl JsonText {
    pub fn new(text: String) -> Self {
        Self {
            text,
            parsed: std::cell::OnceCell::new(),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
    pub fn into_string(self) -> String {
        self.text
    }
    /// The value (JSON null if the text is not JSON, which SQLite's JSON functions never emit).
    pub fn value(&self) -> &Value {
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }
}

impl PartialEq for JsonText {
    fn eq(&self, o: &Self) -> bool {
        self.value() == o.value()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl ApiResponse {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::Json(body),
        }
    }

    /// A JSON answer whose document is already text (see [`Body::JsonText`]).
    pub fn json_text(status: u16, text: String) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::JsonText(JsonText::new(text)),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            body: Body::Empty,
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_json(&self) -> Option<&Value> {
        match &self.body {
            Body::Json(v) => Some(v),
            Body::JsonText(t) => Some(t.value()),
            _ => None,
        }
    }

    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Empty => Vec::new(),
            Body::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
            Body::JsonText(t) => t.as_str().as_bytes().to_vec(),
            Body::Bytes(b) => b.clone(),
        }
    }
}

/// An RFC 9457 problem. `kind` is the stable last segment of `type`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: u16,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub extra: Option<Value>,
}

pub const PROBLEM_TYPE_PREFIX: &str = "urn:clientdocs:problem:";

impl Problem {
    pub fn new(
        status: u16,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title,
            detail: detail.into(),
            extra: None,
        }
    }

    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    pub fn into_response(self, request_id: &str) -> ApiResponse {
        let mut body = json!({
            "type": format!("{PROBLEM_TYPE_PREFIX}{}", self.kind),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "request_id": request_id,
        });
        if let (Some(Value::Object(extra)), Some(obj)) = (self.extra, body.as_object_mut()) {
            for (k, v) in extra {
                obj.insert(k, v);
            }
        }
        ApiResponse {
            status: self.status,
            headers: vec![("content-type".into(), "application/problem+json".into())],
            body: Body::Json(body),
        }
    }
}
