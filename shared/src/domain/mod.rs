//! Layer 0, the domain: pure and sans-IO. No SQL, no ports, nothing of the crate above it
//! (only `bindings`). Identities and tokens, time and ids, the change-event envelope, the entity
//! specs, retention decisions and the rebalancing planner.

pub mod audit;
pub mod auth;
pub mod checkpoint;
pub mod clock;
pub mod content;
pub mod cors;
pub mod entity;
pub mod event;
pub mod identity;
pub mod integers;
pub mod moves;
pub mod operator;
pub mod personal_data;
pub mod planner;
pub mod platform_events;
pub mod restriction;
pub mod retention;
pub mod tenancy;
