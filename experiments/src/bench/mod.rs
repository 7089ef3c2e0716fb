//! `rlcs bench …`: end-to-end benchmarks that print machine-readable reports.
//!
//! - [`verifiers`]: verifications per second and accuracy of the reward verifiers.
//! - [`curriculum`]: `select` latency, `observe` throughput and memory per sample of
//!   the curriculum samplers on pools of millions of samples.
//! - [`store`]: observations written per second, bytes per observation, open and
//!   summary time of each store backend.
//! - [`plugins`]: requests per second through external verifier processes and the
//!   code sandbox against the same rule in-process.
//! - [`model`]: training tokens/s and MFU, generation tokens/s with and without the
//!   KV cache, and packing efficiency of the libtorch model.
//! - [`perception`]: how many answer-only training steps the libtorch model needs
//!   before it reads its images, on probe tasks and domains.

pub mod curriculum;
pub mod model;
pub mod perception;
pub mod plugins;
pub mod store;
pub mod verifiers;
