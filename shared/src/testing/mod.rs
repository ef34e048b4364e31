//! Test support, above every layer (it may use anything): native fakes of the ports and the
//! whole deployment over them, for the native tests.

pub mod fakes;
pub(crate) mod harness;
