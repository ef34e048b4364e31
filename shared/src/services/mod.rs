//! Layer 2, services: the rules that need storage but know nothing of HTTP, cron or queues.
//! They use the store, the ports and the domain only.

pub mod audit;
pub mod changes;
pub mod checkpoints;
pub mod dead_letters;
pub mod deferred;
pub mod derived;
pub mod identity;
pub mod marks;
pub mod moves;
pub mod platform_audit;
pub mod route_probe;
pub mod tenancy;
pub mod usage;
