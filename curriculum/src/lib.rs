//! # rlcs-curriculum
//!
//! Decides which prompts an RL iteration rolls out, from what earlier rollouts showed.
//! Pure and synchronous (no I/O, no async runtime): the Curriculum actor wraps a
//! [`Curriculum`] and translates messages into calls on it.
//!
//! - [`SampleStats`]: per-sample attempts, successes, EMA pass rate, last pass@k,
//!   last seen, mean |advantage|, response length, offline and current tier (44 B).
//! - [`TierConfig`] and [`TierMerge`]: difficulty tiers from pass rates, and how
//!   offline tiers and online pass rates combine.
//! - [`Sampler`]: the `select` / `observe` interface, implemented by every
//!   [`SamplerKind`]: [`UniformSampler`], [`RlcsSampler`], and the baselines
//!   [`DapoSampler`], [`BandPassSampler`], [`PrioritySampler`] (Kimi k1.5 and p(1−p)),
//!   [`PlrSampler`], [`AdaRftSampler`], [`LearningProgressSampler`]. All are seeded,
//!   and checkpointable through [`SamplerState`].
//! - [`RatioEma`]: the paper's dynamic sampling expansion via a ratio EMA, and
//!   [`balanced_selection`], which keeps the most balanced groups.
//! - [`Curriculum`]: ties a pool, its statistics, a sampler and the ratio EMA together;
//!   [`Curriculum::save`] / [`Curriculum::restore`] continue bit-identically.
//!
//! A 10-million-sample pool for a benchmark:
//! ```
//! use rlcs_curriculum::{Curriculum, CurriculumConfig, GroupOutcome, PoolEntry, SamplerKind};
//! let pool: Vec<PoolEntry> = (0..1000u64).map(|i| PoolEntry { id: i, domain: (i % 2) as u16 }).collect();
//! let mut c = Curriculum::new(
//!     CurriculumConfig::with_sampler(SamplerKind::Rlcs),
//!     vec!["math".into(), "ocr".into()],
//!     pool,
//!     64,  // B
//!     7,   // seed
//! ).unwrap();
//! let sel = c.select_n(64);
//! let groups: Vec<_> = sel.samples.iter().map(|&id| GroupOutcome::new(id, 8, (id % 9) as u32, 0)).collect();
//! let summary = c.observe(1, &groups).unwrap();
//! assert_eq!(summary.observations.len(), 64);
//! ```
#![deny(missing_docs)]

mod baselines;
mod bins;
mod curriculum;
mod expansion;
mod samplers;
mod stats;

pub use baselines::{
    AdaRftConfig, AdaRftSampler, BandPassConfig, BandPassSampler, BanditPolicy, DapoConfig,
    DapoSampler, KimiConfig, LearningProgressConfig, LearningProgressSampler, P1mpConfig,
    PlrConfig, PlrSampler, PlrScore, PriorityRule, PrioritySampler,
};
pub use curriculum::{
    Curriculum, CurriculumConfig, CurriculumError, CurriculumState, DapoRound, GroupOutcome,
    Observation, ObserveSummary, PoolEntry, Selection,
};
pub use expansion::{balanced_selection, ExpansionConfig, RatioEma};
pub use samplers::{
    sampler_by_name, ObservedGroup, PoolView, RlcsConfig, RlcsSampler, Sampler, SamplerKind,
    SamplerState, Steer, SteerWhen, UniformSampler, Usefulness, WithinTier,
};
pub use stats::{grpo_mean_abs_advantage, pass_at_k, SampleStats, TierConfig, TierMerge, UNSEEN};

/// Stable identifier of a sample (a content hash, assigned by the domain).
pub type SampleId = u64;
