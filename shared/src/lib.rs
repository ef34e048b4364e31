//! Platform-free core of the client-management backend: domain types, the change-event
//! envelope, tenant routing, SQL and policies. It never depends on the `worker` crate: the
//! platform is reached through the traits in [`ports`] (and the per-Worker `Platform` traits),
//! implemented over D1/Queues/KV/R2 by the Workers and by [`fakes`] in native tests.

pub mod api;
pub mod bindings;
pub mod consumer;
pub mod domain;
pub mod jobs;
pub mod migrations;
pub mod ports;
pub mod services;
pub mod store;

#[cfg(any(test, feature = "fakes"))]
pub mod testing;

#[cfg(test)]
mod tests;

// Paths the Worker crates use.
pub use api::http;
pub use consumer::{dead_letters, platform_events};
pub use domain::{auth, clock};
pub use services::{marks, tenancy, usage};
#[cfg(any(test, feature = "fakes"))]
pub use testing::fakes;
