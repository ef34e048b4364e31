//! The API Worker: one deployment per tier (shared: many shards bound; dedicated: one).
//! The handler builds the adapters and hands the request to `shared::api`.
#![cfg(target_arch = "wasm32")]

mod fetch;

/// Once per isolate: structured logs to the console (Workers Logs).
#[worker::event(start)]
fn start() {
    platform::logging::init();
}
