//! Structured logs for Workers Logs: a `tracing` subscriber that writes every event (INFO and
//! above) as one JSON object on one line to the console, `console.error` for ERROR,
//! `console.warn` for WARN and `console.log` otherwise. Workers Logs indexes the fields of a
//! JSON line; locally `wrangler dev` prints the line as it is.
//!
//! A line carries `time`, `level`, `message`, the fields of every span the event is in (root
//! first, so `request_id`, `route`, `account`, ... of the request span), the event's own fields
//! (they win over a span field of the same name), `span` (the innermost span's name) and
//! `target`. Fields declared `tracing::field::Empty` appear once recorded
//! (`tracing::Span::current().record("account", ..)`).
//!
//! Time comes from `Date` (`std::time` panics on wasm32-unknown-unknown). In a Worker, `Date`
//! advances only across I/O, so `duration_ms` is wall time spent waiting, not CPU time.

use serde_json::Value;
use shared::http::{ApiRequest, Method};
use std::fmt::Debug;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use worker::js_sys;
use worker::wasm_bindgen::JsValue;
use worker::web_sys::console;

/// Install the subscriber (once per isolate; later calls do nothing). Call it from
/// `#[event(start)]`.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::registry()
            .with(LevelFilter::INFO)
            .with(ConsoleJson)
            .try_init();
    });
}

/// Milliseconds since the epoch (`Date.now()`), for durations.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Whole milliseconds since `started` (a `now_ms()` value).
pub fn elapsed_ms(started: f64) -> u64 {
    (now_ms() - started).max(0.0) as u64
}

/// The span of one HTTP request: its id, route (method and path, never the query string) and
/// deployment; `account` and `shard` are recorded by the domain once it knows them.
pub fn request_span(req: &ApiRequest, deployment: &str) -> tracing::Span {
    tracing::info_span!(
        "request",
        request_id = %req.request_id,
        route = %format_args!("{} {}", method_name(&req.method), req.path),
        deployment,
        account = tracing::field::Empty,
        shard = tracing::field::Empty,
    )
}

/// The request's completion line (inside its span): status, duration and, when the response
/// reports it (`x-d1-cost`, local only), its D1 cost. 5xx is an ERROR, anything else INFO.
pub fn request_done(status: u16, started: f64, d1_cost: Option<&str>) {
    let duration_ms = elapsed_ms(started);
    let cost = |name: &str| {
        d1_cost?
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    let (calls, statements) = (cost("calls"), cost("statements"));
    let (rows_read, rows_written) = (cost("rows_read"), cost("rows_written"));
    macro_rules! done {
        ($level:expr) => {
            tracing::event!(
                $level,
                status,
                duration_ms,
                d1_calls = calls,
                d1_statements = statements,
                d1_rows_read = rows_read,
                d1_rows_written = rows_written,
                "request done"
            )
        };
    }
    if status >= 500 {
        done!(Level::ERROR)
    } else {
        done!(Level::INFO)
    }
}

fn method_name(m: &Method) -> &str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Other(s) => s,
    }
}

/// Ordered fields (a JSON object in declaration order; a repeated name replaces the value).
#[derive(Default)]
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn set(&mut self, name: &str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.remove(i).1)
    }

    fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&Value::from(k.as_str()).to_string());
            out.push(':');
            out.push_str(&v.to_string());
        }
        out.push('}');
        out
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.set(f.name(), Value::from(v)); // NaN and infinities become null
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.set(f.name(), Value::from(v));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.set(f.name(), Value::from(v));
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.set(f.name(), Value::from(v));
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.set(f.name(), Value::from(v));
    }
    fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
        self.set(f.name(), Value::from(v.to_string()));
    }
    fn record_debug(&mut self, f: &Field, v: &dyn Debug) {
        // `%x` fields and the message arrive here too, already in their Display form.
        self.set(f.name(), Value::from(format!("{v:?}")));
    }
}

/// The layer: keeps each span's fields in the registry, writes each event as one line.
struct ConsoleJson;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for ConsoleJson {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut own = Fields::default();
        event.record(&mut own);
        let mut line = Fields::default();
        let time: String = js_sys::Date::new_0().to_iso_string().into();
        line.set("time", Value::from(time));
        line.set("level", Value::from(meta.level().as_str()));
        if let Some(message) = own.take("message") {
            line.set("message", message);
        }
        let mut innermost = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<Fields>() {
                    for (k, v) in &fields.0 {
                        line.set(k, v.clone());
                    }
                }
                innermost = Some(span.name());
            }
        }
        for (k, v) in own.0 {
            line.set(&k, v);
        }
        if let Some(name) = innermost {
            line.set("span", Value::from(name));
        }
        line.set("target", Value::from(meta.target()));
        let text = JsValue::from_str(&line.to_json());
        match *meta.level() {
            Level::ERROR => console::error_1(&text),
            Level::WARN => console::warn_1(&text),
            _ => console::log_1(&text),
        }
    }
}
