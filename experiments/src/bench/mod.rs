//! `rlcs bench …`: end-to-end benchmarks that print machine-readable reports.
//!
//! - [`verifiers`]: verifications per second and accuracy of the reward verifiers.
//! - [`curriculum`]: `select` latency, `observe` throughput and memory per sample of
//!   the curriculum samplers on pools of millions of samples.

pub mod curriculum;
pub mod verifiers;
