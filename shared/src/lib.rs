//! Platform-free core of the client-management backend. It never depends on the `worker`
//! crate: the platform is reached through the traits in [`ports`] (and the per-Worker platform
//! traits), implemented over D1/Queues/KV/R2 by the Workers and by `testing::fakes` in native
//! tests.
//!
//! The folders are layers; each imports only the layers below it (`cargo xtask tidy` checks):
//!
//! - [`domain`] (L0): pure and sans-IO (ids and time, tokens, the event envelope, entity
//!   specs, retention decisions, the planner). Imports nothing of the crate but `bindings`.
//! - [`ports`] (L0): the platform's traits (`Database`, `EventQueue`, `Cache`, `BlobStore`).
//!   Imports `domain`.
//! - [`store`] (L1): SQL, one file per table family (the families moved so far; see
//!   ARCHITECTURE.md). Imports `ports`, `domain`.
//! - [`services`] (L2): rules that need storage but know nothing of HTTP, cron or queues (the
//!   write protocol, tenancy, usage, audit chain, derived fields). Imports `store` and below.
//! - [`api`], [`jobs`], [`consumer`] (L3): one per Worker (HTTP, cron, queues). Each imports
//!   `services` and below, never a sibling.
//! - [`operator`] (L3, the operator Worker): the operator plane on its own host. Imports `api`
//!   (its HTTP toolkit and account-change protocol; `api` never imports it) and below; only
//!   `operator/jobs.rs` (the scheduler's side of a job run) imports `jobs`.
//! - `testing` (fakes, the test harness) and `tests` may import anything.
//!
//! [`bindings`] (binding, queue and cron names) and [`migrations`] sit at the top level, below
//! every layer. Inside the crate, modules are imported by their layer path; the re-exports at
//! the end of this file are the paths the Worker crates use.

// The OpenAPI document is one `json!` literal per path; the verify answer nests deeper than the
// default limit of 128.
#![recursion_limit = "256"]

pub mod api;
pub mod bindings;
pub mod consumer;
pub mod domain;
pub mod jobs;
pub mod migrations;
pub mod operator;
pub mod ports;
pub mod services;
pub mod store;

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests;

// Paths the Worker crates use (kept as they were before the layers).
pub use api::http;
pub use consumer::{dead_letters, platform_events};
pub use domain::{auth, clock};
pub use services::{deferred, identity, marks, tenancy, usage};
