//! # rlcs-curriculum
//!
//! Decides which prompts an RL iteration rolls out, from what earlier rollouts showed.
//! Pure and synchronous (no I/O, no async runtime): the Curriculum actor wraps a
//! [`Curriculum`] and translates messages into calls on it.
//!
//! - [`SampleStats`]: per-sample attempts, successes, EMA pass rate, tier.
//! - [`TierConfig`]: difficulty tiers from pass rates (very easy … very hard).
//! - [`Sampler`]: the `select` / `observe` interface; [`UniformSampler`] and
//!   [`RlcsSampler`] implement it.
//! - [`RatioEma`]: the paper's dynamic sampling expansion via a ratio EMA, and
//!   [`balanced_selection`], which keeps the most balanced groups.
//! - [`Curriculum`]: ties a pool, its statistics, a sampler and the ratio EMA together.
#![deny(missing_docs)]

mod curriculum;
mod expansion;
mod samplers;
mod stats;

pub use curriculum::{
    Curriculum, CurriculumConfig, CurriculumError, GroupOutcome, Observation, ObserveSummary,
    PoolEntry, Selection,
};
pub use expansion::{balanced_selection, ExpansionConfig, RatioEma};
pub use samplers::{
    sampler_by_name, PoolView, RlcsConfig, RlcsSampler, Sampler, SamplerKind, UniformSampler,
};
pub use stats::{SampleStats, TierConfig, UNSEEN};

/// Stable identifier of a sample (a content hash, assigned by the domain).
pub type SampleId = u64;
