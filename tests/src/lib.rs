//! Conformance and end-to-end test support for whim.

pub mod conformance;
pub mod https;
pub mod runtimes;
pub mod suite;
