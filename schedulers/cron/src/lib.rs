//! The scheduler Worker: outbox relay, shard health, migration checks, retention.
#![cfg(target_arch = "wasm32")]

mod scheduled;
