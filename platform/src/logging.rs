//! Structured logs for Workers Logs: a `tracing` subscriber that writes every event (INFO and
//! above) as one JSON object on one line to the console, `console.error` for ERROR,
//! `console.warn` for WARN and `console.log` otherwise. Workers Logs indexes the fields of a
//! JSON line and timestamps it; locally `wrangler dev` prints the line as it is, after its own
//! time. So a line has no time field of its own.
//!
//! A line carries `level`, `message`, the event's own fields, the fields of every span the event
//! is in (innermost first; an inner span's field, or the event's, wins over an outer one of the
//! same name), then `span` (the innermost span's name) and `target`. Fields declared
//! `tracing::field::Empty` appear once recorded (`tracing::Span::current().record("account",
//! ..)`); a field named `level`, `span` or `target` is left out.
//!
//! A line is written straight into one buffer: each span keeps its fields already rendered as
//! JSON (they are rendered when recorded, not per line), names are the fields' `&'static str`.
//!
//! Time comes from `Date` (`std::time` panics on wasm32-unknown-unknown). In a Worker, `Date`
//! advances only across I/O, so `duration_ms` is wall time spent waiting, not CPU time.

use shared::http::{ApiRequest, ApiResponse, RequestLog};
use std::fmt::{Debug, Write};
use std::future::Future;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Instrument, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use worker::js_sys;
use worker::wasm_bindgen::JsValue;
use worker::web_sys::console;

#[doc(hidden)]
pub use tracing as __tracing;

/// `tracing::event!` at a level chosen at run time (`event!` needs a constant one):
/// `logging::event_at!(level, outcome, duration_ms, "run done")`. DEBUG and TRACE write nothing
/// (the subscriber keeps INFO and above).
#[doc(hidden)]
#[macro_export]
macro_rules! __logging_event_at {
    ($level:expr, $($arg:tt)+) => {{
        use $crate::logging::__tracing as t;
        match $level {
            t::Level::ERROR => t::event!(t::Level::ERROR, $($arg)+),
            t::Level::WARN => t::event!(t::Level::WARN, $($arg)+),
            t::Level::INFO => t::event!(t::Level::INFO, $($arg)+),
            _ => {}
        }
    }};
}
pub use crate::__logging_event_at as event_at;

/// Install the subscriber. Call it from `#[event(start)]`; a later call does nothing.
pub fn init() {
    let _ = tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(ConsoleJson)
        .try_init();
}

/// Milliseconds since the epoch (`Date.now()`), for durations.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Whole milliseconds since `started` (a `now_ms()` value).
pub fn elapsed_ms(started: f64) -> u64 {
    (now_ms() - started).max(0.0) as u64
}

/// Longest path a request span's `route` carries, in characters.
pub const MAX_ROUTE_PATH: usize = 200;

/// One HTTP request of a `fetch` entrypoint: converts it (`to_api_request`, body up to
/// `max_body` bytes), runs `serve` in the request's span and ends with its "request done" line
/// where `log` says so (every write and error; reads sampled, see `RequestLog`). A request
/// refused before routing gets its line too (in a span with `deployment` only).
pub async fn in_request_span<F, Fut>(
    req: worker::web_sys::Request,
    max_body: usize,
    deployment: &str,
    log: RequestLog,
    serve: F,
) -> ApiResponse
where
    F: FnOnce(ApiRequest) -> Fut,
    Fut: Future<Output = ApiResponse>,
{
    let started = now_ms();
    let req = match crate::to_api_request(req, max_body).await {
        Ok(req) => req,
        Err(resp) => {
            tracing::info_span!("request", deployment)
                .in_scope(|| request_done(resp.status, elapsed_ms(started), 1));
            return resp;
        }
    };
    let span = request_span(&req, deployment);
    let choice = log.choose(&req.method, &req.request_id);
    let resp = serve(req).instrument(span.clone()).await;
    let duration_ms = elapsed_ms(started);
    if let Some(sampled) = choice.line(resp.status, duration_ms) {
        span.in_scope(|| request_done(resp.status, duration_ms, sampled));
    }
    resp
}

/// The span of one HTTP request: its id, route (method and path, never the query string; the
/// path cut at `MAX_ROUTE_PATH` characters) and deployment. The domain records `account` and
/// `shard` once it knows them, and the request's D1 cost (`d1_calls`, `d1_statements`,
/// `d1_rows_read`, `d1_rows_written`) when the request touched a shard.
fn request_span(req: &ApiRequest, deployment: &str) -> tracing::Span {
    let path = truncate(&req.path, MAX_ROUTE_PATH);
    // Plain `&str` fields: recorded as strings, not through `Display` and the formatter.
    let mut route = String::with_capacity(req.method.as_str().len() + 1 + path.len());
    route.push_str(req.method.as_str());
    route.push(' ');
    route.push_str(path);
    tracing::info_span!(
        "request",
        request_id = req.request_id.as_str(),
        route = route.as_str(),
        deployment,
        account = tracing::field::Empty,
        shard = tracing::field::Empty,
        d1_calls = tracing::field::Empty,
        d1_statements = tracing::field::Empty,
        d1_rows_read = tracing::field::Empty,
        d1_rows_written = tracing::field::Empty,
    )
}

/// The request's completion line (inside its span): status and duration, and `sampled` when
/// the line stands for one in that many reads. INFO below 400, WARN for 4xx and 5xx (a 5xx's
/// cause is the request's ERROR line, logged where it was answered).
fn request_done(status: u16, duration_ms: u64, sampled: u32) {
    let level = if status >= 400 {
        Level::WARN
    } else {
        Level::INFO
    };
    if sampled > 1 {
        event_at!(level, status, duration_ms, sampled, "request done");
    } else {
        event_at!(level, status, duration_ms, "request done");
    }
}

/// `s` cut to its first `max` characters.
fn truncate(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(i, _)| &s[..i])
}

/// A field's value as `tracing` hands it over.
enum Val<'a> {
    F64(f64),
    I64(i64),
    U64(u64),
    Bool(bool),
    Str(&'a str),
    Debug(&'a dyn Debug),
    Error(&'a (dyn std::error::Error + 'static)),
}

/// Append `v` as JSON (NaN and infinities become null).
fn write_val(out: &mut String, v: Val<'_>) {
    match v {
        Val::F64(v) if v.is_finite() => {
            let _ = write!(out, "{v}");
        }
        Val::F64(_) => out.push_str("null"),
        Val::I64(v) => {
            let _ = write!(out, "{v}");
        }
        Val::U64(v) => {
            let _ = write!(out, "{v}");
        }
        Val::Bool(v) => out.push_str(if v { "true" } else { "false" }),
        Val::Str(v) => write_str(out, v),
        Val::Debug(v) => {
            // `%x` fields and the message arrive here too, already in their Display form.
            out.push('"');
            let _ = write!(Escaped(out), "{v:?}");
            out.push('"');
        }
        Val::Error(v) => {
            out.push('"');
            let _ = write!(Escaped(out), "{v}");
            out.push('"');
        }
    }
}

/// Append `s` as a JSON string.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let _ = Escaped(out).write_str(s);
    out.push('"');
}

/// Writes into a JSON string's contents, escaping as it goes (no intermediate `String`).
struct Escaped<'a>(&'a mut String);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let esc = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.push_str(&s[start..i]);
            if esc.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.push_str(esc);
            }
            start = i + 1;
        }
        self.0.push_str(&s[start..]);
        Ok(())
    }
}

/// Where a visited field goes.
trait Put {
    fn put(&mut self, name: &'static str, v: Val<'_>);
}

/// A `Visit` that hands every field to its `Put` (one `Visit` for both, through `dyn`).
struct Visitor<'a>(&'a mut dyn Put);

impl Visit for Visitor<'_> {
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.0.put(f.name(), Val::F64(v));
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.put(f.name(), Val::I64(v));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.put(f.name(), Val::U64(v));
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.put(f.name(), Val::Bool(v));
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.put(f.name(), Val::Str(v));
    }
    fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
        self.0.put(f.name(), Val::Error(v));
    }
    fn record_debug(&mut self, f: &Field, v: &dyn Debug) {
        self.0.put(f.name(), Val::Debug(v));
    }
}

/// A span's fields in declaration (then recording) order, each value rendered as JSON; a
/// recorded field replaces its earlier value.
#[derive(Default)]
struct SpanFields(Vec<(&'static str, String)>);

impl Put for SpanFields {
    fn put(&mut self, name: &'static str, v: Val<'_>) {
        let mut json = String::new();
        write_val(&mut json, v);
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = json,
            None => self.0.push((name, json)),
        }
    }
}

/// The line being written, and the names it already has (the first of a name wins).
struct Line {
    out: String,
    seen: Vec<&'static str>,
}

impl Line {
    fn field(&mut self, name: &'static str) -> bool {
        if self.seen.contains(&name) {
            return false;
        }
        self.seen.push(name);
        self.out.push(',');
        write_str(&mut self.out, name);
        self.out.push(':');
        true
    }
}

impl Put for Line {
    fn put(&mut self, name: &'static str, v: Val<'_>) {
        if self.field(name) {
            write_val(&mut self.out, v);
        }
    }
}

/// The layer: keeps each span's fields in the registry, writes each event as one line.
struct ConsoleJson;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for ConsoleJson {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut fields = SpanFields::default();
            attrs.record(&mut Visitor(&mut fields));
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                values.record(&mut Visitor(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = Line {
            out: String::with_capacity(384),
            seen: Vec::with_capacity(24),
        };
        line.seen.extend(["level", "span", "target"]);
        line.out.push_str("{\"level\":");
        write_str(&mut line.out, meta.level().as_str());
        // The event's own fields: the message first (tracing puts it first), then the rest.
        event.record(&mut Visitor(&mut line));
        let mut innermost = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                innermost.get_or_insert(span.name());
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (name, json) in &fields.0 {
                        if line.field(name) {
                            line.out.push_str(json);
                        }
                    }
                }
            }
        }
        if let Some(name) = innermost {
            line.out.push_str(",\"span\":");
            write_str(&mut line.out, name);
        }
        line.out.push_str(",\"target\":");
        write_str(&mut line.out, meta.target());
        line.out.push('}');
        let text = JsValue::from_str(&line.out);
        match *meta.level() {
            Level::ERROR => console::error_1(&text),
            Level::WARN => console::warn_1(&text),
            _ => console::log_1(&text),
        }
    }
}
