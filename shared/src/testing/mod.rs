//! Test support, above every layer (it may use anything): native fakes of the ports (also built
//! for benches and seeding with the `fakes` feature) and, in tests, the whole deployment over
//! them.

pub mod fakes;
#[cfg(test)]
pub(crate) mod harness;
