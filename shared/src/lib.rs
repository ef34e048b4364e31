//! Platform-free core of the client-management backend: domain types, the change-event
//! envelope, tenant routing, SQL and policies. It never depends on the `worker` crate: the
//! platform is reached through the traits in [`ports`] (and the per-Worker `Platform` traits),
//! implemented over D1/Queues/KV/R2 by the Workers and by [`fakes`] in native tests.

pub mod admin;
pub mod api;
pub mod audit_api;
pub mod bindings;
pub mod consumer;
pub mod content;
pub mod dead_letters;
pub mod domain;
pub mod erasure;
pub mod error;
pub mod health;
pub mod http;
pub mod jobs;
pub mod migrations;
pub mod openapi;
pub mod platform_events;
pub mod ports;
pub mod services;
pub mod settings;
pub mod store;
pub mod sweep;

#[cfg(any(test, feature = "fakes"))]
pub mod fakes;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

// Paths the Worker crates use.
pub use domain::{auth, clock};
pub use services::{marks, tenancy, usage};
