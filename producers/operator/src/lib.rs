//! The operator Worker: the operator plane on its own hostname (behind Cloudflare Access when
//! deployed). The handler builds the adapters and hands the request to `shared::operator`.
#![cfg(target_arch = "wasm32")]

mod fetch;

/// Once per isolate: structured logs to the console (Workers Logs).
#[worker::event(start)]
fn start() {
    platform::logging::init();
}
