//! The change-event consumer Worker: audit trail (and, as the pipeline grows, cache
//! invalidation and index rebuilds). Per-message ack/retry; the handler never returns `Err`
//! (an `Err` would reset the isolate and redeliver the whole batch).
#![cfg(target_arch = "wasm32")]

mod queue;

/// Once per isolate: structured logs to the console (Workers Logs).
#[worker::event(start)]
fn start() {
    platform::logging::init();
}
