//! Cloudflare implementations of the shared crate's ports. Everything here is a thin
//! translation; behaviour lives in `shared` where it is tested natively.
#![cfg(target_arch = "wasm32")]

pub mod logging;

use serde_json::{Map, Value};
use shared::clock::Entropy;
use shared::http::{ApiRequest, ApiResponse, Body, Method};
use shared::ports::*;
use worker::wasm_bindgen::JsValue;
use worker::{js_sys, web_sys, D1Database, D1DatabaseSession, D1PreparedStatement, Env};

use getrandom02 as _; // feature-only dependency: getrandom 0.2's `js` backend

/// Every Worker's allocator. Rust's default on wasm32 (dlmalloc) was about a tenth of the API
/// isolate's busy time in a V8 profile of GET by id (bench/README.md); talc is smaller and
/// faster there.
// SAFETY: a Worker's wasm instance is single-threaded (no shared memory, no atomics), which is
// what `new_global` requires; it grows memory itself with `memory.grow`.
#[global_allocator]
static ALLOCATOR: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };

/// A D1 session (Sessions API). `first-unconstrained` unless a bookmark is given.
pub struct D1 {
    /// None: the binding is missing (every statement fails with a clear storage error).
    session: Option<D1DatabaseSession>,
    cost: CostMeter,
}

impl D1 {
    pub fn open(db: &D1Database, bookmark: Option<&str>) -> Option<Self> {
        let anchor = bookmark
            .filter(|b| !b.is_empty() && b.len() <= 256)
            .unwrap_or("first-unconstrained");
        match db.with_session(Some(anchor)) {
            Ok(session) => Some(Self {
                session: Some(session),
                cost: CostMeter::default(),
            }),
            // A malformed bookmark: fall back to a fresh session rather than failing the read.
            Err(_) => db
                .with_session(Some("first-unconstrained"))
                .ok()
                .map(|session| Self {
                    session: Some(session),
                    cost: CostMeter::default(),
                }),
        }
    }

    /// A database whose binding is missing: every statement fails (503 at the edge).
    pub fn unavailable() -> Self {
        Self {
            session: None,
            cost: CostMeter::default(),
        }
    }

    fn session(&self) -> Result<&D1DatabaseSession, StoreError> {
        self.session
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the D1 binding is missing".into()))
    }

    pub fn from_env(env: &Env, binding: &str, bookmark: Option<&str>) -> Option<Self> {
        binding_of(env, binding).and_then(|db| Self::open(&db, bookmark))
    }

    fn prepare(&self, stmt: &Stmt) -> Result<D1PreparedStatement, StoreError> {
        // The one conversion the SQLite fake uses too (`shared::ports::bind`).
        let bound = bind(stmt);
        let params: Vec<JsValue> = bound.params.iter().map(to_js).collect();
        self.session()?
            .prepare(bound.sql.as_ref())
            .bind(&params)
            .map_err(|e| StoreError::from_message(e.to_string()))
    }
}

/// A D1 binding as the runtime hands it over: `Env::d1` also asks the object for its
/// constructor's name (three crossings and a string per request, about a tenth of the API's
/// shard lookup in a V8 profile). Only D1 databases are bound under the names this is asked
/// for (`shared::bindings`, checked against the wrangler configs by `cargo xtask tidy`); a
/// missing binding is `undefined`, so `None`.
fn binding_of(env: &Env, binding: &str) -> Option<D1Database> {
    use worker::wasm_bindgen::JsCast;
    js_sys::Reflect::get(env, &JsValue::from_str(binding))
        .ok()
        .filter(JsValue::is_object)
        .map(JsCast::unchecked_into)
}

fn to_js(v: &D1Param) -> JsValue {
    match v {
        D1Param::Null => JsValue::NULL,
        D1Param::Real(f) => JsValue::from_f64(*f),
        D1Param::Text(s) => JsValue::from_str(s),
    }
}

fn rows_of(r: &worker::D1Result) -> Result<Rows, StoreError> {
    if let Some(e) = r.error() {
        return Err(StoreError::from_message(e));
    }
    let rows: Vec<Map<String, Value>> = r
        .results::<Map<String, Value>>()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let meta = r.meta().ok().flatten();
    Ok(Rows {
        rows,
        meta: Meta {
            rows_read: meta.as_ref().and_then(|m| m.rows_read).unwrap_or(0) as u64,
            rows_written: meta.as_ref().and_then(|m| m.rows_written).unwrap_or(0) as u64,
            changes: meta.as_ref().and_then(|m| m.changes).unwrap_or(0) as u64,
            size_after: meta.as_ref().and_then(|m| m.size_after).map(|n| n as u64),
        },
    })
}

/// A statement's result as `JSON.stringify` writes it (what [`D1::query`] reads).
#[derive(serde::Deserialize)]
struct RawResult {
    #[serde(default)]
    results: Vec<Map<String, Value>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    meta: Option<RawMeta>,
}

#[derive(serde::Deserialize)]
struct RawMeta {
    rows_read: Option<u64>,
    rows_written: Option<u64>,
    changes: Option<u64>,
    size_after: Option<u64>,
}

impl Database for D1 {
    /// The result crosses from JS to wasm once, as the text of `JSON.stringify(result)`, parsed
    /// by serde_json: not field by field (`D1Result::results`/`meta` walk each row's and the
    /// meta's properties through serde_wasm_bindgen, a JS call per key and value).
    async fn query(&self, stmt: Stmt) -> Result<Rows, StoreError> {
        let prepared = self.prepare(&stmt)?;
        let err = |e: JsValue| StoreError::from_message(worker::Error::from(e).to_string());
        let promise = prepared.inner().all().map_err(err)?;
        let result = worker::wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(err)?;
        let text: String = js_sys::JSON::stringify(&result).map_err(err)?.into();
        let raw: RawResult = serde_json::from_str(&text)
            .map_err(|e| StoreError::Backend(format!("D1 result: {e}")))?;
        if let Some(e) = raw.error {
            return Err(StoreError::from_message(e));
        }
        let meta = raw.meta;
        let rows = Rows {
            rows: raw.results,
            meta: Meta {
                rows_read: meta.as_ref().and_then(|m| m.rows_read).unwrap_or(0),
                rows_written: meta.as_ref().and_then(|m| m.rows_written).unwrap_or(0),
                changes: meta.as_ref().and_then(|m| m.changes).unwrap_or(0),
                size_after: meta.as_ref().and_then(|m| m.size_after),
            },
        };
        self.cost.record([&rows.meta]);
        Ok(rows)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, StoreError> {
        let prepared = stmts
            .iter()
            .map(|s| self.prepare(s))
            .collect::<Result<Vec<_>, _>>()?;
        let results = self
            .session()?
            .batch(prepared)
            .await
            .map_err(|e| StoreError::from_message(e.to_string()))?;
        let rows = results.iter().map(rows_of).collect::<Result<Vec<_>, _>>()?;
        self.cost.record(rows.iter().map(|r| &r.meta));
        Ok(rows)
    }

    fn bookmark(&self) -> Option<String> {
        self.session.as_ref()?.get_bookmark().ok().flatten()
    }

    fn cost(&self) -> Cost {
        self.cost.get()
    }
}

/// A Queues producer binding; messages go as JSON (content type `json`). None: the binding
/// is missing, and every send fails (the outbox relay resends once it is there).
pub struct Queue(pub Option<worker::Queue>);

impl Queue {
    pub fn new(q: worker::Queue) -> Self {
        Self(Some(q))
    }
    pub fn from_env(env: &Env, binding: &str) -> Self {
        Self(env.queue(binding).ok())
    }
}

impl EventQueue for Queue {
    async fn send_batch(&self, messages: Vec<Value>) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        let queue = self
            .0
            .as_ref()
            .ok_or_else(|| QueueError("the queue binding is missing".into()))?;
        for chunk in messages.chunks(100) {
            let mut batch = Vec::with_capacity(chunk.len());
            for m in chunk {
                // Through JSON.parse: serde_wasm_bindgen would turn maps into JS `Map`s, which the
                // json content type cannot carry.
                let js = js_sys::JSON::parse(&m.to_string())
                    .map_err(|e| QueueError(format!("{e:?}")))?;
                batch.push(
                    worker::RawMessageBuilder::new(js)
                        .build_with_content_type(worker::QueueContentType::Json),
                );
            }
            queue
                .send_raw_batch(batch)
                .await
                .map_err(|e| QueueError(e.to_string()))?;
        }
        Ok(())
    }
}

/// A KV namespace used as a read cache.
pub struct Kv(pub worker::KvStore);

impl Cache for Kv {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        self.0
            .get(key)
            .text()
            .await
            .map_err(|e| CacheError(e.to_string()))
    }

    async fn put(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), CacheError> {
        self.0
            .put(key, value)
            .map_err(|e| CacheError(e.to_string()))?
            .expiration_ttl(ttl_seconds.max(60))
            .execute()
            .await
            .map_err(|e| CacheError(e.to_string()))
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.0
            .delete(key)
            .await
            .map_err(|e| CacheError(e.to_string()))
    }
}

/// An R2 bucket. None: the binding is missing, and every operation fails.
pub struct R2(pub Option<worker::Bucket>);

impl R2 {
    pub fn new(b: worker::Bucket) -> Self {
        Self(Some(b))
    }
    pub fn from_env(env: &Env, binding: &str) -> Self {
        Self(env.bucket(binding).ok())
    }
    fn bucket(&self) -> Result<&worker::Bucket, BlobError> {
        self.0
            .as_ref()
            .ok_or_else(|| BlobError("the R2 binding is missing".into()))
    }
}

/// The checkpoint bucket: `create` is R2's conditional put (`onlyIf: {etagDoesNotMatch: "*"}`,
/// which R2 and the local runtime both honour: the put returns no object when the key exists).
impl ImmutableStore for R2 {
    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<bool, BlobError> {
        let put = self
            .bucket()?
            .put(key, bytes)
            .http_metadata(worker::HttpMetadata {
                content_type: Some("application/json".into()),
                ..Default::default()
            })
            .only_if(worker::Conditional {
                etag_does_not_match: Some("*".into()),
                ..Default::default()
            })
            .execute()
            .await
            .map_err(|e| BlobError(e.to_string()))?;
        Ok(put.is_some())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let Some(obj) = self
            .bucket()?
            .get(key)
            .execute()
            .await
            .map_err(|e| BlobError(e.to_string()))?
        else {
            return Ok(None);
        };
        match obj.body() {
            Some(b) => b
                .bytes()
                .await
                .map(Some)
                .map_err(|e| BlobError(e.to_string())),
            None => Ok(Some(Vec::new())),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        self.list_keys(prefix, start_after, limit).await
    }
}

impl R2 {
    /// R2 may answer fewer keys than asked for with `truncated` set (a page is at most 1,000
    /// keys, and fewer with metadata): pages are followed by their cursor until `limit` keys
    /// or the end.
    async fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        let mut out: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        while out.len() < limit {
            let want = (limit - out.len()).clamp(1, 1000);
            let mut l = self
                .bucket()?
                .list()
                .prefix(prefix)
                .limit(u32::try_from(want).unwrap_or(1000));
            match (&cursor, start_after) {
                (Some(c), _) => l = l.cursor(c.clone()),
                (None, Some(a)) => l = l.start_after(a),
                (None, None) => {}
            }
            let objects = l.execute().await.map_err(|e| BlobError(e.to_string()))?;
            out.extend(objects.objects().iter().map(|o| o.key()));
            match objects.cursor().filter(|_| objects.truncated()) {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

impl BlobStore for R2 {
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        self.list_keys(prefix, start_after, limit).await
    }

    async fn put(&self, key: &str, blob: Blob) -> Result<(), BlobError> {
        self.bucket()?
            .put(key, blob.bytes)
            .http_metadata(worker::HttpMetadata {
                content_type: Some(blob.content_type),
                ..Default::default()
            })
            .execute()
            .await
            .map(|_| ())
            .map_err(|e| BlobError(e.to_string()))
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        let Some(obj) = self
            .bucket()?
            .get(key)
            .execute()
            .await
            .map_err(|e| BlobError(e.to_string()))?
        else {
            return Ok(None);
        };
        let content_type = obj
            .http_metadata()
            .content_type
            .unwrap_or_else(|| "application/octet-stream".into());
        let bytes = match obj.body() {
            Some(b) => b.bytes().await.map_err(|e| BlobError(e.to_string()))?,
            None => Vec::new(),
        };
        Ok(Some(Blob {
            bytes,
            content_type,
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.bucket()?
            .delete(key)
            .await
            .map_err(|e| BlobError(e.to_string()))
    }
}

/// crypto.getRandomValues.
pub struct CryptoEntropy;

impl Entropy for CryptoEntropy {
    fn fill(&self, buf: &mut [u8]) {
        if getrandom::fill(buf).is_err() {
            // Never reached in workerd; fall back to time-derived bytes rather than panic.
            let t = js_sys::Date::now().to_bits();
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (t >> ((i % 8) * 8)) as u8 ^ (i as u8);
            }
        }
    }
}

pub fn now() -> time::OffsetDateTime {
    // Whole seconds plus milliseconds in i64: the nanosecond constructor divides an i128.
    let ms = js_sys::Date::now() as i64;
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t + time::Duration::milliseconds(ms.rem_euclid(1000)))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|s| !s.is_empty())
}

pub fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|v| v.to_string())
        .or_else(|| var(env, name))
        .filter(|s| !s.is_empty())
}

/// Comma-separated list variable.
pub fn list_var(env: &Env, name: &str) -> Vec<String> {
    var(env, name)
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The path (`/` when the URL has none) and the query string (without `?`, empty when absent)
/// of an absolute URL as the runtime serialises it (`scheme://authority/path?query#fragment`).
pub fn path_and_query(url: &str) -> Option<(&str, &str)> {
    let rest = &url[url.find("://")? + 3..];
    let rest = rest.split('#').next().unwrap_or("");
    let Some(slash) = rest.find(['/', '?']) else {
        return Some(("/", ""));
    };
    let target = &rest[slash..];
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Some((if path.is_empty() { "/" } else { path }, query))
}

/// The runtime's request -> `ApiRequest` (reads the body, up to `max_body` bytes). Taken as
/// the raw `web_sys::Request`: `worker::Request` reads the method, URL, headers and the whole
/// `cf` object up front, each a crossing into JavaScript, and the `cf` object is built by the
/// runtime on first read; here each is read once, `cf` only if a check asks for the country.
pub async fn to_api_request(
    req: web_sys::Request,
    max_body: usize,
) -> Result<ApiRequest, ApiResponse> {
    // The runtime hands over its own serialised (already parsed and normalised) URL: its path
    // and query are cut out of that string, not parsed again by the `url` crate.
    let url = req.url();
    let (path, query) = path_and_query(&url).ok_or_else(|| ApiResponse::empty(400))?;
    let headers = header_pairs(&req.headers());
    // `cf-ray` before a caller's `x-request-id`: the runtime hands headers over sorted by name,
    // so deployed the platform's ray id wins (it also decides which reads' lines are sampled,
    // `RequestLog`; a caller's own id counts only where there is no ray id, locally).
    let request_id = headers
        .iter()
        .find(|(k, _)| k == "cf-ray" || k == "x-request-id")
        .map(|(_, v)| v.chars().take(64).collect())
        .unwrap_or_else(|| {
            let mut b = [0u8; 8];
            CryptoEntropy.fill(&mut b);
            hex::encode(b)
        });
    let declared = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    // The raw method: worker::Method maps every unknown method (QUERY, FOO, ...) to GET.
    let method = Method::parse(&req.method());
    let body = req.body();
    let country = {
        // The handle, not `Request.clone()` (which would tee the body).
        let req = <web_sys::Request as Clone>::clone(&req);
        shared::http::Country::ask(move || {
            use worker::worker_sys::ext::RequestExt;
            req.cf().and_then(|cf| cf.country().ok().flatten())
        })
    };
    let mut out = ApiRequest {
        method,
        path: path.to_string(),
        query: ApiRequest::parse_query(query),
        headers,
        body: Vec::new(),
        cf_country: country,
        request_id,
    };
    let Some(body) = body else {
        return Ok(out);
    };
    match declared {
        Some(n) if n > max_body => {
            out.body = vec![0; max_body + 1]; // let the domain report the limit in its own words
        }
        // A declared length within the limit: the whole body in one read. Should the body be
        // longer than declared, at most one byte past the limit is copied into the isolate's
        // memory, so the domain still answers 413 and the wasm side never holds more.
        Some(_) => {
            if let Ok(buf) = req.array_buffer() {
                if let Ok(buf) = worker::wasm_bindgen_futures::JsFuture::from(buf).await {
                    let bytes = js_sys::Uint8Array::new(&buf);
                    let kept = bytes
                        .length()
                        .min(u32::try_from(max_body + 1).unwrap_or(u32::MAX));
                    out.body = bytes.subarray(0, kept).to_vec();
                }
            }
        }
        // Chunk by chunk, stopping one byte past the limit: a body without Content-Length
        // (chunked) can never make the isolate hold more than the limit.
        None => {
            use futures_util::StreamExt;
            let mut stream = worker::ByteStream::from(body);
            while let Some(chunk) = stream.next().await {
                let Ok(chunk) = chunk else { break };
                let room = max_body + 1 - out.body.len();
                out.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if out.body.len() > max_body {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// Every header as (lower-case name, value), read in two crossings (`Array.from(headers)`,
/// then its `JSON.stringify` text) rather than an iterator step and two string reads per header.
fn header_pairs(headers: &web_sys::Headers) -> Vec<(String, String)> {
    let text: Option<String> = js_sys::JSON::stringify(&js_sys::Array::from(headers))
        .ok()
        .and_then(|t| t.as_string());
    let pairs: Vec<(String, String)> = text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    pairs
        .into_iter()
        .map(|(mut k, v)| {
            k.make_ascii_lowercase();
            (k, v)
        })
        .collect()
}

/// `ApiResponse` -> the runtime's `Response`, built directly: its status and headers cross as
/// one JSON text, parsed by the runtime into the `ResponseInit` (`{"status":..,"headers":{name:
/// value,..}}`), rather than a `Headers` object filled
/// by a call and two string copies per header; a JSON body is handed over as a JS string (one
/// UTF-8 decode), not copied into a fresh `Uint8Array` first (`worker::Response`'s route,
/// measurably dearer per request on the read path; see bench/README.md).
pub fn to_worker_response(r: ApiResponse) -> worker::Result<web_sys::Response> {
    use worker::wasm_bindgen::JsCast;
    // A record, one property per name, a later value replacing an earlier one of the same name
    // as `Headers.set` does (the runtime converts an object's own properties faster than a
    // sequence of pairs, each of which it walks with the iterator protocol).
    let mut headers = serde_json::Map::new();
    for (k, v) in &r.headers {
        headers.insert(k.to_ascii_lowercase(), serde_json::Value::String(v.clone()));
    }
    let init_text = format!(
        "{{\"status\":{},\"headers\":{}}}",
        r.status,
        serde_json::Value::Object(headers)
    );
    let init: web_sys::ResponseInit = js_sys::JSON::parse(&init_text)?.unchecked_into();
    let resp = match r.body {
        Body::Empty => web_sys::Response::new_with_opt_str_and_init(None, &init)?,
        Body::Json(v) => web_sys::Response::new_with_opt_str_and_init(
            Some(&serde_json::to_string(&v).unwrap_or_default()),
            &init,
        )?,
        Body::JsonText(t) => web_sys::Response::new_with_opt_str_and_init(Some(t.as_str()), &init)?,
        Body::Bytes(b) => {
            let array = js_sys::Uint8Array::new_with_length(b.len() as u32);
            array.copy_from(&b);
            web_sys::Response::new_with_opt_buffer_source_and_init(Some(&array), &init)?
        }
    };
    Ok(resp)
}

/// Outbound HTTP through the Worker's `fetch()` (identity providers' JWKS). Only GET, no
/// credentials, redirects followed by the runtime.
pub struct HttpFetch;

impl Fetch for HttpFetch {
    async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let url = worker::Url::parse(url).map_err(|e| FetchError(format!("{url}: {e}")))?;
        let mut r = worker::Fetch::Url(url)
            .send()
            .await
            .map_err(|e| FetchError(e.to_string()))?;
        let cache_control = r.headers().get("cache-control").ok().flatten();
        let body = r.bytes().await.map_err(|e| FetchError(e.to_string()))?;
        Ok(Fetched {
            status: r.status_code(),
            body,
            cache_control,
        })
    }
}

/// POST to another Worker through its service binding (the operator Worker's call of the
/// scheduler's job run), with a bearer credential; its answer as an `ApiResponse` (a JSON body
/// kept as JSON).
pub async fn post_service(
    env: &Env,
    binding: &str,
    path: &str,
    bearer: &str,
    request_id: &str,
) -> Result<ApiResponse, String> {
    let fetcher = env
        .service(binding)
        .map_err(|e| format!("{binding}: {e}"))?;
    let headers = worker::Headers::new();
    headers
        .set("authorization", &format!("Bearer {bearer}"))
        .and_then(|_| headers.set("x-request-id", request_id))
        .map_err(|e| e.to_string())?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post).with_headers(headers);
    // A service binding ignores the host; the path is what the callee routes on.
    let mut r = fetcher
        .fetch(
            format!("https://{}{path}", binding.to_ascii_lowercase()),
            Some(init),
        )
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status_code();
    let content_type = r.headers().get("content-type").ok().flatten();
    let body = r.bytes().await.map_err(|e| e.to_string())?;
    let mut out = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => ApiResponse::json(status, v),
        Err(_) => ApiResponse::empty(status),
    };
    if let Some(ct) = content_type {
        out.headers.retain(|(k, _)| k != "content-type");
        out = out.with_header("content-type", ct);
    }
    Ok(out)
}
