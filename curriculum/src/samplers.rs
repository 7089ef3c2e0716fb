//! Samplers: the `select` / `observe` interface, the sampler registry, uniform and
//! RLCS. The baselines live in [`crate::baselines`].

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::baselines::{
    AdaRftSampler, BandPassSampler, DapoSampler, LearningProgressSampler, PlrSampler,
    PrioritySampler,
};
use crate::bins::BinIndex;
use crate::stats::{SampleStats, TierConfig, UNSEEN};
use crate::{CurriculumConfig, PoolEntry};

/// What a sampler may look at: the pool, its statistics and the tier config.
pub struct PoolView<'a> {
    /// The train pool.
    pub entries: &'a [PoolEntry],
    /// Statistics, parallel to `entries`.
    pub stats: &'a [SampleStats],
    /// Tier cut-offs and merge rule.
    pub tiers: &'a TierConfig,
    /// Number of domains (domain indices are `0..domains`).
    pub domains: usize,
    /// The last observed iteration (0 before any).
    pub iteration: u32,
    /// Changes whenever tiers change outside `observe` (offline tiers set), so that
    /// samplers rebuild their indexes.
    pub generation: u64,
}

/// One observed group, as a sampler sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObservedGroup {
    /// Index of the sample in the pool.
    pub index: usize,
    /// Tier of the sample before this observation.
    pub tier_before: u8,
    /// Tier of the sample after this observation.
    pub tier_after: u8,
    /// Correct rollouts.
    pub successes: u32,
    /// Rollouts.
    pub rollouts: u32,
    /// Mean |GRPO advantage| of the group, when reported.
    pub mean_abs_advantage: Option<f32>,
}

impl ObservedGroup {
    /// Whether the group carries a learning signal (neither all correct nor all wrong).
    pub fn is_mixed(&self) -> bool {
        self.successes > 0 && self.successes < self.rollouts
    }
}

/// Share of correct rollouts over `groups` (`None` without rollouts).
pub(crate) fn batch_pass_rate(groups: &[ObservedGroup]) -> Option<f64> {
    let (s, r) = groups.iter().fold((0u64, 0u64), |(s, r), g| {
        (
            s + u64::from(g.successes.min(g.rollouts)),
            r + u64::from(g.rollouts),
        )
    });
    (r > 0).then(|| s as f64 / r as f64)
}

/// AdaRFT's move of a target difficulty after a batch with pass rate `reward`:
/// `step · tanh(sensitivity · (reward − target_reward))` (up when the batch did
/// better than `target_reward`).
pub(crate) fn target_move(step: f64, sensitivity: f64, reward: f64, target_reward: f64) -> f64 {
    step * (sensitivity * (reward - target_reward)).tanh()
}

/// A curriculum sampler: picks prompts before rollout and learns from what rollout
/// showed. Implementations are seeded, deterministic and checkpointable.
///
/// Contract (checked by the conformance suite in `tests/conformance.rs` for every
/// [`SamplerKind`]): `select(n)` returns exactly `min(n, pool)` distinct pool
/// indices, never loops forever, and the same seed and inputs give the same output;
/// `save` then [`SamplerState::into_sampler`] continues bit-identically.
pub trait Sampler: Send {
    /// The sampler's name as written in configs.
    fn name(&self) -> &'static str;
    /// Pool indices of `min(n, pool)` distinct samples to roll out next.
    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize>;
    /// Learns from the groups of the last iteration (statistics are already updated).
    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>);
    /// Current sampling weight per tier bucket (tiers, then unseen), for reports.
    fn tier_weights(&self) -> Option<Vec<f64>> {
        None
    }
    /// The pass rate the sampler currently aims its batches at, for samplers that
    /// move one with the reward (AdaRFT; RLCS while it steers), for reports.
    fn target_pass_rate(&self) -> Option<f64> {
        None
    }
    /// The sampler's full state, RNG included.
    fn save(&self) -> SamplerState;
    /// Heap bytes held by the sampler's indexes (for memory reports).
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// The samplers a config can name (`sampler = "…"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// Uniform without replacement, epoch by epoch.
    Uniform,
    /// Reinforcement Learning with Curriculum Sampling (GLM-4.1V-Thinking).
    Rlcs,
    /// DAPO dynamic sampling: uniform, then all-correct / all-wrong groups are dropped
    /// and the batch is topped up (see [`crate::Curriculum::observe`]).
    Dapo,
    /// Only samples with `lo < pass rate < hi`.
    BandPass,
    /// Kimi k1.5: weight ∝ 1 − pass rate.
    Kimi,
    /// Weight ∝ p(1 − p).
    P1mp,
    /// Prioritized level replay.
    Plr,
    /// AdaRFT: a moving target difficulty.
    Adarft,
    /// Matiisen et al. learning-progress bandit over domains.
    LearningProgress,
}

impl SamplerKind {
    /// Every sampler, in registry order.
    pub const ALL: [SamplerKind; 9] = [
        SamplerKind::Uniform,
        SamplerKind::Rlcs,
        SamplerKind::Dapo,
        SamplerKind::BandPass,
        SamplerKind::Kimi,
        SamplerKind::P1mp,
        SamplerKind::Plr,
        SamplerKind::Adarft,
        SamplerKind::LearningProgress,
    ];

    /// The config name (`"band_pass"`, …).
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Uniform => "uniform",
            SamplerKind::Rlcs => "rlcs",
            SamplerKind::Dapo => "dapo",
            SamplerKind::BandPass => "band_pass",
            SamplerKind::Kimi => "kimi",
            SamplerKind::P1mp => "p1mp",
            SamplerKind::Plr => "plr",
            SamplerKind::Adarft => "adarft",
            SamplerKind::LearningProgress => "learning_progress",
        }
    }

    /// Parses a config name (also accepts `pq` for `p1mp`).
    pub fn from_name(name: &str) -> Option<Self> {
        if name == "pq" {
            return Some(SamplerKind::P1mp);
        }
        SamplerKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The saved state of any sampler (config, RNG, indexes). Serde-able; restore with
/// [`SamplerState::into_sampler`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SamplerState {
    Uniform(UniformSampler),
    Rlcs(RlcsSampler),
    Dapo(DapoSampler),
    BandPass(BandPassSampler),
    Kimi(PrioritySampler),
    P1mp(PrioritySampler),
    Plr(PlrSampler),
    Adarft(AdaRftSampler),
    LearningProgress(LearningProgressSampler),
}

impl SamplerState {
    /// The sampler this state belongs to.
    pub fn kind(&self) -> SamplerKind {
        match self {
            SamplerState::Uniform(_) => SamplerKind::Uniform,
            SamplerState::Rlcs(_) => SamplerKind::Rlcs,
            SamplerState::Dapo(_) => SamplerKind::Dapo,
            SamplerState::BandPass(_) => SamplerKind::BandPass,
            SamplerState::Kimi(_) => SamplerKind::Kimi,
            SamplerState::P1mp(_) => SamplerKind::P1mp,
            SamplerState::Plr(_) => SamplerKind::Plr,
            SamplerState::Adarft(_) => SamplerKind::Adarft,
            SamplerState::LearningProgress(_) => SamplerKind::LearningProgress,
        }
    }

    /// The restored sampler; it continues exactly where the saved one stopped.
    pub fn into_sampler(self) -> Box<dyn Sampler> {
        match self {
            SamplerState::Uniform(s) => Box::new(s),
            SamplerState::Rlcs(s) => Box::new(s),
            SamplerState::Dapo(s) => Box::new(s),
            SamplerState::BandPass(s) => Box::new(s),
            SamplerState::Kimi(s) => Box::new(s),
            SamplerState::P1mp(s) => Box::new(s),
            SamplerState::Plr(s) => Box::new(s),
            SamplerState::Adarft(s) => Box::new(s),
            SamplerState::LearningProgress(s) => Box::new(s),
        }
    }
}

/// Builds the sampler of `kind` with its settings from `config`, seeded. `domains`
/// and `domain_sizes` (samples per domain) resolve RLCS's domain mix.
pub fn sampler_by_name(
    kind: SamplerKind,
    config: &CurriculumConfig,
    seed: u64,
    domains: &[String],
    domain_sizes: &[usize],
) -> Box<dyn Sampler> {
    match kind {
        SamplerKind::Uniform => Box::new(UniformSampler::new(seed)),
        SamplerKind::Rlcs => {
            let mut s = RlcsSampler::new(seed, config.rlcs.clone(), config.tiers.len());
            s.set_domain_shares(RlcsSampler::resolve_domain_shares(
                &config.rlcs,
                domains,
                domain_sizes,
            ));
            Box::new(s)
        }
        SamplerKind::Dapo => Box::new(DapoSampler::new(seed, config.dapo.clone())),
        SamplerKind::BandPass => Box::new(BandPassSampler::new(seed, config.band_pass.clone())),
        SamplerKind::Kimi => Box::new(PrioritySampler::kimi(seed, config.kimi.clone())),
        SamplerKind::P1mp => Box::new(PrioritySampler::p1mp(seed, config.p1mp.clone())),
        SamplerKind::Plr => Box::new(PlrSampler::new(seed, config.plr.clone())),
        SamplerKind::Adarft => Box::new(AdaRftSampler::new(seed, config.adarft.clone())),
        SamplerKind::LearningProgress => Box::new(LearningProgressSampler::new(
            seed,
            config.learning_progress.clone(),
        )),
    }
}

/// A lazily built [`BinIndex`], rebuilt when the pool or its generation changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LazyBins {
    pub(crate) index: Option<BinIndex>,
    generation: u64,
}

impl LazyBins {
    /// The index, (re)built with `key` when stale.
    pub(crate) fn ensure(
        &mut self,
        view: &PoolView<'_>,
        bins: usize,
        key: impl Fn(usize) -> u32,
    ) -> &mut BinIndex {
        let stale = match &self.index {
            Some(ix) => ix.pool_len() != view.entries.len() || self.generation != view.generation,
            None => true,
        };
        if stale {
            self.index = Some(BinIndex::build(bins, view.entries.len(), key));
            self.generation = view.generation;
        }
        match &mut self.index {
            Some(ix) => ix,
            None => unreachable!("index built above"),
        }
    }

    /// Moves observed samples to their new bins (only when the index is current).
    pub(crate) fn update(
        &mut self,
        groups: &[ObservedGroup],
        view: &PoolView<'_>,
        key: impl Fn(usize) -> u32,
    ) {
        if self.generation != view.generation {
            return;
        }
        if let Some(ix) = &mut self.index {
            if ix.pool_len() != view.entries.len() {
                return;
            }
            for g in groups {
                ix.move_to(g.index, key(g.index));
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.index.as_ref().map_or(0, BinIndex::heap_bytes)
    }
}

/// Takes up to `n` samples from bins in proportion to `per_member[b] × available(b)`
/// (sampling without replacement), then — if weights ran out before `n` — from any
/// bin with members left, in bin order. Returns the picks.
pub(crate) fn weighted_fill(
    ix: &mut BinIndex,
    per_member: &[f64],
    n: usize,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<usize>,
) {
    let bins = ix.bins();
    let weight = |ix: &BinIndex, b: usize| {
        per_member.get(b).copied().unwrap_or(0.0) * ix.available(b) as f64
    };
    let mut w = crate::bins::WeightedBins::new((0..bins).map(|b| weight(ix, b)).collect());
    while out.len() < n {
        let Some(b) = w.draw(rng) else { break };
        if let Some(i) = ix.take(b, rng) {
            out.push(i);
        }
        w.set(b, weight(ix, b));
    }
    fill_any(ix, n, rng, out);
}

/// Fills `out` up to `n` from any bins with members left, in bin order.
pub(crate) fn fill_any(ix: &mut BinIndex, n: usize, rng: &mut ChaCha8Rng, out: &mut Vec<usize>) {
    for b in 0..ix.bins() {
        while out.len() < n {
            match ix.take(b, rng) {
                Some(i) => out.push(i),
                None => break,
            }
        }
    }
}

/// Uniform sampling without replacement: every sample once per epoch, in a fresh
/// seeded order each epoch. Unseen and seen samples are treated alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniformSampler {
    rng: ChaCha8Rng,
    bins: LazyBins,
}

impl UniformSampler {
    /// A uniform sampler.
    pub fn new(seed: u64) -> Self {
        UniformSampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
            bins: LazyBins::default(),
        }
    }
}

impl Sampler for UniformSampler {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize> {
        let ix = self.bins.ensure(view, 1, |_| 0);
        let n = n.min(view.entries.len());
        let mut out = Vec::with_capacity(n);
        ix.begin_batch();
        fill_any(ix, n, &mut self.rng, &mut out);
        ix.end_batch();
        out
    }

    fn observe(&mut self, _groups: &[ObservedGroup], _view: &PoolView<'_>) {}

    fn save(&self) -> SamplerState {
        SamplerState::Uniform(self.clone())
    }

    fn heap_bytes(&self) -> usize {
        self.bins.heap_bytes()
    }
}

/// Settings of the RLCS sampler (`[curriculum.rlcs]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RlcsConfig {
    /// Starting weight per tier (easiest first), then one for unseen samples
    /// (default `[0.05, 0.3, 0.6, 0.3, 0.05, 0.5]` for the five default tiers).
    /// Mid-range difficulty is favoured; the weights then follow observed usefulness.
    pub initial_weights: Vec<f64>,
    /// No tier's weight falls below this share, so none starves (default 0.01).
    pub floor: f64,
    /// Exponent applied to each tier's usefulness before normalising (default 6):
    /// 1 samples tiers in plain proportion to their share of mixed groups, larger
    /// values concentrate on the most useful tiers. Chosen on the curriculum study
    /// (BENCHMARKS.md): with 1, RLCS saved at most 1.18× rollouts on a revisited
    /// pool; with 6 it saves 1.24–1.32× and never costs more than uniform.
    pub sharpness: f64,
    /// EMA decay of each tier's usefulness (default 0.7).
    pub usefulness_decay: f64,
    /// What a tier's usefulness measures: `mixed` (default, the paper's): the share
    /// of its groups that were neither all correct nor all wrong; `signal`: the mean
    /// of 4·p(1−p) over its groups (p the group's pass rate), the size of the
    /// unnormalised GRPO advantage, which also prefers p ≈ 0.5 among mixed groups.
    pub usefulness: Usefulness,
    /// Domain mix: domain name → share. Empty (default) means in proportion to pool size.
    pub domain_weights: BTreeMap<String, f64>,
    /// Tier weights apply per sample (default true): a tier is drawn in proportion to
    /// its weight times the samples it has left, so a tier's weight says how much more
    /// likely one of its samples is than a sample of another tier. With `false` the
    /// weight is the tier's whole share of the batch, which makes a small tier's few
    /// samples repeat every iteration until memorised.
    pub per_sample: bool,
    /// Which member of a drawn tier is taken: `random` (default, the paper's): any
    /// member not yet taken in the current pass over the tier; `balanced`: a member
    /// whose pass-rate estimate (quantised to 0.05) is nearest 0.5, so a hard tier
    /// gives its easiest members first and an easy tier its hardest.
    pub within_tier: WithinTier,
    /// Reward-driven steering of the tier weights (default: on pools with offline
    /// tiers only).
    pub steer: Steer,
}

/// Pass-rate distance over which steering divides a tier's weight by `e^strength`.
const STEER_WIDTH: f64 = 0.25;

/// Reward-driven steering of RLCS's tier weights ([`RlcsConfig::steer`]), AdaRFT's
/// moving target (arXiv 2504.05520) applied to tiers.
///
/// A target pass rate `p*` starts at 0.5 and moves after each observed batch with
/// mean pass rate `R̄`: `p* ← clip(p* − step · tanh(sensitivity · (R̄ − target_reward)), 0, 1)`,
/// so while the policy solves less than `target_reward` of its rollouts the target
/// moves to easier tiers, and to harder ones once it solves more. Each tier's weight
/// is multiplied by `exp(−s · |p_tier − p*| / STEER_WIDTH)` (0.25, a tier's width
/// under the default cut-offs) before the floor applies,
/// `p_tier` the tier's representative pass rate (0.5 for unseen samples) and `s` the
/// strength — under `when = "graded"` scaled by the share of the pool that carries an
/// offline tier, so steering acts on graded pools only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Steer {
    /// How strongly tiers far from the target are down-weighted (default 4; 0 is off).
    pub strength: f64,
    /// When steering applies: `graded` (default) on pools with offline tiers (from a
    /// grade stage or an earlier run), in proportion to the graded share; `always`.
    pub when: SteerWhen,
    /// Step size of the target per iteration (default 0.1).
    pub step: f64,
    /// Sensitivity of the step to the reward gap (default 2).
    pub sensitivity: f64,
    /// The batch pass rate the target aims for (default 0.5).
    pub target_reward: f64,
}

impl Default for Steer {
    fn default() -> Self {
        Steer {
            strength: 4.0,
            when: SteerWhen::Graded,
            step: 0.1,
            sensitivity: 2.0,
            target_reward: 0.5,
        }
    }
}

/// When RLCS's steering applies ([`Steer::when`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SteerWhen {
    /// On pools with offline tiers, scaled by the share of graded samples.
    #[default]
    Graded,
    /// On every pool.
    Always,
}

/// How RLCS picks inside a tier ([`RlcsConfig::within_tier`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithinTier {
    /// A random member not yet taken in this pass over the tier.
    #[default]
    Random,
    /// A member whose pass-rate estimate is nearest 0.5 (random among equals).
    Balanced,
}

/// Pass-rate levels inside a tier under [`WithinTier::Balanced`] (0.05 steps).
const LEVELS: usize = 21;

impl WithinTier {
    fn levels(self) -> usize {
        match self {
            WithinTier::Random => 1,
            WithinTier::Balanced => LEVELS,
        }
    }
}

impl Default for RlcsConfig {
    fn default() -> Self {
        RlcsConfig {
            initial_weights: vec![0.05, 0.3, 0.6, 0.3, 0.05, 0.5],
            floor: 0.01,
            sharpness: 6.0,
            usefulness_decay: 0.7,
            usefulness: Usefulness::Mixed,
            domain_weights: BTreeMap::new(),
            per_sample: true,
            within_tier: WithinTier::Random,
            steer: Steer::default(),
        }
    }
}

/// What RLCS counts as a tier's usefulness ([`RlcsConfig::usefulness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Usefulness {
    /// Share of mixed groups (neither all correct nor all wrong).
    Mixed,
    /// Mean 4·p(1−p) of the groups' pass rates.
    Signal,
}

impl RlcsConfig {
    /// Checks the values against the number of tiers.
    pub fn validate(&self, tiers: usize) -> Result<(), String> {
        if self.initial_weights.len() != tiers + 1 {
            return Err(format!(
                "rlcs.initial_weights needs {} values (one per tier, then one for unseen samples), got {}",
                tiers + 1,
                self.initial_weights.len()
            ));
        }
        if self
            .initial_weights
            .iter()
            .any(|w| !(w.is_finite() && *w >= 0.0))
        {
            return Err("rlcs.initial_weights must be finite and non-negative".into());
        }
        if !(0.0..0.5).contains(&self.floor) {
            return Err(format!(
                "rlcs.floor must lie in [0, 0.5), got {}",
                self.floor
            ));
        }
        if !(self.sharpness.is_finite() && (0.0..=64.0).contains(&self.sharpness)) {
            return Err(format!(
                "rlcs.sharpness must lie in [0, 64], got {}",
                self.sharpness
            ));
        }
        if !(0.0..1.0).contains(&self.usefulness_decay) {
            return Err(format!(
                "rlcs.usefulness_decay must lie in [0, 1), got {}",
                self.usefulness_decay
            ));
        }
        let st = &self.steer;
        for (key, v, max) in [
            ("strength", st.strength, 64.0),
            ("step", st.step, 1.0),
            ("sensitivity", st.sensitivity, 64.0),
            ("target_reward", st.target_reward, 1.0),
        ] {
            if !(v.is_finite() && (0.0..=max).contains(&v)) {
                return Err(format!("rlcs.steer.{key} must lie in [0, {max}], got {v}"));
            }
        }
        if let Some((k, w)) = self
            .domain_weights
            .iter()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(format!(
                "rlcs.domain_weights.{k} must be finite and non-negative, got {w}"
            ));
        }
        Ok(())
    }
}

/// RLCS (GLM-4.1V-Thinking §RL): samples are grouped into difficulty tiers (plus
/// unseen); each iteration re-weights the tiers by their observed usefulness — the
/// share of their groups that were neither all correct nor all wrong — so too-easy and
/// currently-too-hard samples are down-sampled and mid-range ones boosted, with a
/// floor so no tier starves. Domains are mixed in set proportions. Within a
/// (domain, tier) bucket no sample repeats until the bucket is exhausted. On pools
/// with offline tiers the weights are also steered toward a target pass rate that
/// moves with the batch reward ([`Steer`]).
///
/// Buckets are index lists kept up to date on `observe` (a tier change moves a sample
/// in O(1)), so `select(n)` costs O(n · (domains + tiers)), independent of the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlcsSampler {
    config: RlcsConfig,
    rng: ChaCha8Rng,
    /// Usefulness estimate per bucket (tiers, then unseen).
    usefulness: Vec<f64>,
    /// Domain shares by domain index (empty: by pool size).
    domain_share: Vec<f64>,
    bins: LazyBins,
    /// Steering target pass rate ([`Steer`]); 0.5 at the start.
    #[serde(default = "half")]
    steer_target: f64,
    /// Representative pass rate per bucket (tiers, then unseen), learnt from the pool
    /// view for [`RlcsSampler::weights`].
    #[serde(default)]
    steer_levels: Vec<f64>,
    /// Steering strength in force: the configured one, under [`SteerWhen::Graded`]
    /// times the pool's graded share (recounted when the pool's generation changes).
    #[serde(default)]
    steer_strength: f64,
    /// Pool (generation, length) the strength was computed for.
    #[serde(default)]
    steer_pool: Option<(u64, usize)>,
}

fn half() -> f64 {
    0.5
}

impl RlcsSampler {
    /// A sampler for `tiers` tiers.
    pub fn new(seed: u64, config: RlcsConfig, tiers: usize) -> Self {
        let mut usefulness = config.initial_weights.clone();
        usefulness.resize(tiers + 1, 0.5);
        RlcsSampler {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            usefulness,
            domain_share: Vec::new(),
            bins: LazyBins::default(),
            steer_target: 0.5,
            steer_levels: Vec::new(),
            steer_strength: 0.0,
            steer_pool: None,
        }
    }

    /// The steering target pass rate ([`Steer`]).
    pub fn steer_target(&self) -> f64 {
        self.steer_target
    }

    /// Steering strength in force ([`Steer`]).
    pub fn steer_strength(&self) -> f64 {
        self.steer_strength
    }

    /// Learns the tiers' representative pass rates and the steering strength from the
    /// pool (O(pool) only when the pool's generation or size changed).
    fn learn_pool(&mut self, view: &PoolView<'_>) {
        let st = &self.config.steer;
        if st.strength <= 0.0 {
            return;
        }
        let pool = (view.generation, view.entries.len());
        if self.steer_pool == Some(pool) {
            return;
        }
        let tiers = view.tiers.len();
        self.steer_levels = (0..tiers)
            .map(|t| f64::from(view.tiers.representative_pass(t as u8).unwrap_or(0.5)))
            .chain(std::iter::once(0.5))
            .collect();
        self.steer_strength = match st.when {
            SteerWhen::Always => st.strength,
            SteerWhen::Graded => {
                let graded = view
                    .stats
                    .iter()
                    .filter(|s| s.offline_tier != UNSEEN)
                    .count();
                st.strength * graded as f64 / view.stats.len().max(1) as f64
            }
        };
        self.steer_pool = Some(pool);
    }

    /// Sets the share of each domain index.
    pub fn set_domain_shares(&mut self, shares: Vec<f64>) {
        self.domain_share = shares;
    }

    /// Domain shares by name resolved against `names` (index order); by `sizes` when
    /// the config names none.
    pub fn resolve_domain_shares(
        config: &RlcsConfig,
        names: &[String],
        sizes: &[usize],
    ) -> Vec<f64> {
        if config.domain_weights.is_empty() {
            return sizes.iter().map(|&s| s as f64).collect();
        }
        names
            .iter()
            .map(|n| config.domain_weights.get(n).copied().unwrap_or(0.0))
            .collect()
    }

    fn bucket(tier: u8, tiers: usize) -> usize {
        if tier == UNSEEN {
            tiers
        } else {
            (tier as usize).min(tiers)
        }
    }

    /// Bin of sample `i`: (domain, tier bucket, pass level), the level only under
    /// [`WithinTier::Balanced`].
    fn key(view: &PoolView<'_>, i: usize, within: WithinTier) -> u32 {
        let tiers = view.tiers.len();
        let domains = view.domains.max(1);
        let d = (view.entries[i].domain as usize).min(domains - 1);
        let b = Self::bucket(view.tiers.current(&view.stats[i]), tiers);
        let levels = within.levels();
        let level = match within {
            WithinTier::Random => 0,
            WithinTier::Balanced => match view.tiers.pass_estimate(&view.stats[i]) {
                Some(p) if p.is_finite() => {
                    ((p.clamp(0.0, 1.0) * 20.0).round() as usize).min(LEVELS - 1)
                }
                _ => LEVELS / 2,
            },
        };
        ((d * (tiers + 1) + b) * levels + level) as u32
    }

    /// Levels of a tier in the order `balanced` takes them: nearest 0.5 first.
    fn level_order() -> [usize; LEVELS] {
        let mut order = [0usize; LEVELS];
        for (k, o) in order.iter_mut().enumerate() {
            // 10, 11, 9, 12, 8, ...: nearest 0.5 first, the easier side on ties.
            let step = k.div_ceil(2);
            *o = if k % 2 == 1 { 10 + step } else { 10 - step };
        }
        order
    }

    /// Current sampling weight per bucket (tiers, then unseen): normalised usefulness
    /// with the floor applied.
    pub fn weights(&self) -> Vec<f64> {
        let strength = self.steer_strength;
        let sharp: Vec<f64> = self
            .usefulness
            .iter()
            .enumerate()
            .map(|(b, u)| {
                let w = u.max(0.0).powf(self.config.sharpness);
                match self.steer_levels.get(b) {
                    Some(p) if strength > 0.0 => {
                        w * (-strength * (p - self.steer_target).abs() / STEER_WIDTH).exp()
                    }
                    _ => w,
                }
            })
            .collect();
        let total: f64 = sharp.iter().sum();
        let n = sharp.len() as f64;
        sharp
            .iter()
            .map(|u| {
                let share = if total > 0.0 { u / total } else { 1.0 / n };
                share.max(self.config.floor)
            })
            .collect()
    }
}

/// Index of a positive weight drawn in proportion (linear scan: few entries).
fn pick_weighted(weights: &[f64], rng: &mut ChaCha8Rng) -> Option<usize> {
    let total: f64 = weights.iter().filter(|w| **w > 0.0).sum();
    if total <= 0.0 {
        return None;
    }
    let mut x = rng.random::<f64>() * total;
    let mut last = None;
    for (i, &w) in weights.iter().enumerate() {
        if w <= 0.0 {
            continue;
        }
        last = Some(i);
        if x < w {
            return Some(i);
        }
        x -= w;
    }
    last
}

impl Sampler for RlcsSampler {
    fn name(&self) -> &'static str {
        "rlcs"
    }

    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize> {
        let tiers = view.tiers.len();
        let buckets = tiers + 1;
        let domains = view.domains.max(1);
        let within = self.config.within_tier;
        let levels = within.levels();
        self.learn_pool(view);
        let mut weights = self.weights();
        weights.resize(buckets, self.config.floor.max(1e-9));
        let ix = self.bins.ensure(view, domains * buckets * levels, |i| {
            Self::key(view, i, within)
        });
        let n = n.min(view.entries.len());
        let mut out = Vec::with_capacity(n);
        // Available members per (domain, tier) bucket, summed over its levels.
        let mut avail: Vec<usize> = (0..domains * buckets)
            .map(|t| (0..levels).map(|l| ix.available(t * levels + l)).sum())
            .collect();
        let mut dom_avail: Vec<usize> = (0..domains)
            .map(|d| avail[d * buckets..(d + 1) * buckets].iter().sum())
            .collect();
        let shares: Vec<f64> = if self.domain_share.len() == domains {
            self.domain_share.clone()
        } else {
            (0..domains)
                .map(|d| {
                    (0..buckets * levels)
                        .map(|b| ix.len(d * buckets * levels + b))
                        .sum::<usize>() as f64
                })
                .collect()
        };
        let order = Self::level_order();
        ix.begin_batch();
        let mut dom_w = vec![0.0; domains];
        let mut tier_w = vec![0.0; buckets];
        while out.len() < n {
            for d in 0..domains {
                dom_w[d] = if dom_avail[d] > 0 { shares[d] } else { 0.0 };
            }
            let d = match pick_weighted(&dom_w, &mut self.rng) {
                Some(d) => d,
                // Domains left have zero share: take from any non-empty one.
                None => match (0..domains).find(|&d| dom_avail[d] > 0) {
                    Some(d) => d,
                    None => break,
                },
            };
            for b in 0..buckets {
                let left = avail[d * buckets + b];
                tier_w[b] = if left == 0 {
                    0.0
                } else if self.config.per_sample {
                    weights[b].max(1e-12) * left as f64
                } else {
                    weights[b].max(1e-12)
                };
            }
            let Some(b) = pick_weighted(&tier_w, &mut self.rng) else {
                break;
            };
            let bucket = d * buckets + b;
            let bin = match within {
                WithinTier::Random => bucket,
                WithinTier::Balanced => {
                    // `avail > 0` guarantees a level with members left.
                    let level = order
                        .iter()
                        .copied()
                        .find(|&l| ix.available(bucket * levels + l) > 0)
                        .unwrap_or(0);
                    bucket * levels + level
                }
            };
            if let Some(i) = ix.take(bin, &mut self.rng) {
                out.push(i);
            }
            avail[bucket] = avail[bucket].saturating_sub(1);
            dom_avail[d] = dom_avail[d].saturating_sub(1);
        }
        ix.end_batch();
        out
    }

    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>) {
        let tiers = view.tiers.len();
        let mut useful = vec![0f64; tiers + 1];
        let mut total = vec![0u32; tiers + 1];
        for g in groups {
            let b = Self::bucket(g.tier_before, tiers);
            total[b] += 1;
            useful[b] += match self.config.usefulness {
                Usefulness::Mixed => f64::from(u8::from(g.is_mixed())),
                Usefulness::Signal => {
                    let p = f64::from(g.successes) / f64::from(g.rollouts.max(1));
                    4.0 * p * (1.0 - p)
                }
            };
        }
        self.learn_pool(view);
        if self.steer_strength > 0.0 {
            if let Some(reward) = batch_pass_rate(groups) {
                let st = &self.config.steer;
                // A harder target difficulty is a lower target pass rate.
                let up = target_move(st.step, st.sensitivity, reward, st.target_reward);
                self.steer_target = (self.steer_target - up).clamp(0.0, 1.0);
            }
        }
        let d = self.config.usefulness_decay;
        self.usefulness.resize(tiers + 1, 0.5);
        for b in 0..=tiers {
            if total[b] > 0 {
                let u = useful[b] / f64::from(total[b]);
                self.usefulness[b] = d * self.usefulness[b] + (1.0 - d) * u;
            }
        }
        let within = self.config.within_tier;
        self.bins
            .update(groups, view, |i| Self::key(view, i, within));
    }

    fn tier_weights(&self) -> Option<Vec<f64>> {
        Some(self.weights())
    }

    fn target_pass_rate(&self) -> Option<f64> {
        (self.steer_strength > 0.0).then_some(self.steer_target)
    }

    fn save(&self) -> SamplerState {
        SamplerState::Rlcs(self.clone())
    }

    fn heap_bytes(&self) -> usize {
        self.bins.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view of a one-domain pool.
    fn one_domain<'a>(
        entries: &'a [PoolEntry],
        stats: &'a [SampleStats],
        tiers: &'a TierConfig,
    ) -> PoolView<'a> {
        PoolView {
            entries,
            stats,
            tiers,
            domains: 1,
            iteration: 1,
            generation: 0,
        }
    }

    #[test]
    fn sharpness_concentrates_weight_on_useful_tiers_and_keeps_the_floor() {
        let flat = RlcsSampler::new(
            1,
            RlcsConfig {
                sharpness: 1.0,
                ..RlcsConfig::default()
            },
            5,
        );
        let sharp = RlcsSampler::new(1, RlcsConfig::default(), 5);
        let (wf, ws) = (flat.weights(), sharp.weights());
        // Medium (index 2) is the most useful initial tier: sharpening raises its
        // share and lowers the others', but never below the floor.
        assert!(ws[2] > wf[2]);
        assert!(ws[0] < wf[0] || ws[0] == RlcsConfig::default().floor);
        assert!(ws.iter().all(|&w| w >= RlcsConfig::default().floor));
        let bad = RlcsConfig {
            sharpness: f64::NAN,
            ..RlcsConfig::default()
        };
        assert!(bad.validate(5).is_err_and(|e| e.contains("sharpness")));
    }

    #[test]
    fn signal_usefulness_prefers_balanced_groups_mixed_counts_them_alike() {
        let entries = vec![
            PoolEntry { id: 1, domain: 0 },
            PoolEntry { id: 2, domain: 0 },
        ];
        let stats = vec![SampleStats::default(); 2];
        let tiers = TierConfig::default();
        let view = one_domain(&entries, &stats, &tiers);
        // Medium (tier 2) at 4/8 correct, hard (tier 3) at 1/8: both mixed.
        let group = |index, tier, successes| ObservedGroup {
            index,
            tier_before: tier,
            tier_after: tier,
            successes,
            rollouts: 8,
            mean_abs_advantage: None,
        };
        let groups = [group(0, 2, 4), group(1, 3, 1)];
        let start = RlcsConfig {
            initial_weights: vec![0.5; 6],
            ..RlcsConfig::default()
        };
        let mut mixed = RlcsSampler::new(1, start.clone(), 5);
        let mut signal = RlcsSampler::new(
            1,
            RlcsConfig {
                usefulness: Usefulness::Signal,
                ..start
            },
            5,
        );
        for _ in 0..5 {
            mixed.observe(&groups, &view);
            signal.observe(&groups, &view);
        }
        assert_eq!(mixed.usefulness[2], mixed.usefulness[3]);
        // 4·(1/2)(1/2) = 1 against 4·(1/8)(7/8) ≈ 0.44.
        assert!(signal.usefulness[2] > signal.usefulness[3] + 0.3);
        assert!(signal.weights()[2] > signal.weights()[3]);
    }

    #[test]
    fn balanced_within_tier_takes_members_nearest_half_first() {
        // Six hard-tier samples (0 < p < 0.3); the two nearest 0.5 are 0.25 and 0.28.
        let passes = [0.05f32, 0.25, 0.1, 0.28, 0.02, 0.15];
        let entries: Vec<PoolEntry> = (0..passes.len())
            .map(|i| PoolEntry {
                id: i as u64 + 1,
                domain: 0,
            })
            .collect();
        let stats: Vec<SampleStats> = passes
            .iter()
            .map(|&p| SampleStats {
                visits: 3,
                attempts: 24,
                ema_pass: p,
                ..SampleStats::default()
            })
            .collect();
        let tiers = TierConfig::default();
        assert!(stats.iter().all(|s| tiers.current(s) == 3), "all hard");
        let view = one_domain(&entries, &stats, &tiers);
        let balanced = RlcsConfig {
            within_tier: WithinTier::Balanced,
            ..RlcsConfig::default()
        };
        let mut random_hits = 0;
        for seed in 0..20 {
            let mut s = RlcsSampler::new(seed, balanced.clone(), 5);
            let mut got = s.select(2, &view);
            got.sort_unstable();
            assert_eq!(got, vec![1, 3], "seed {seed}");
            let mut r = RlcsSampler::new(seed, RlcsConfig::default(), 5);
            let mut got = r.select(2, &view);
            got.sort_unstable();
            random_hits += usize::from(got == [1, 3]);
        }
        // The default takes any member of the tier.
        assert!(random_hits < 10, "{random_hits}");
        let state = serde_json::to_string(&RlcsSampler::new(1, balanced, 5)).unwrap();
        assert!(state.contains("balanced"));
    }

    /// A pool of `n` samples, the first `graded` of them with offline tier 3 (hard).
    fn graded_pool(n: usize, graded: usize) -> (Vec<PoolEntry>, Vec<SampleStats>) {
        let entries = (0..n)
            .map(|i| PoolEntry {
                id: i as u64 + 1,
                domain: 0,
            })
            .collect();
        let stats = (0..n)
            .map(|i| SampleStats {
                offline_tier: if i < graded { 3 } else { UNSEEN },
                ..SampleStats::default()
            })
            .collect();
        (entries, stats)
    }

    #[test]
    fn steering_follows_the_batch_pass_rate_on_graded_pools_only() {
        let tiers = TierConfig::default();
        let group = |index, successes| ObservedGroup {
            index,
            tier_before: 3,
            tier_after: 3,
            successes,
            rollouts: 8,
            mean_abs_advantage: None,
        };
        let unsteered = RlcsConfig {
            steer: Steer {
                strength: 0.0,
                ..Steer::default()
            },
            ..RlcsConfig::default()
        };
        for (graded, share) in [(40, 1.0), (20, 0.5), (0, 0.0)] {
            let (entries, stats) = graded_pool(40, graded);
            let view = one_domain(&entries, &stats, &tiers);
            let mut s = RlcsSampler::new(3, RlcsConfig::default(), 5);
            let mut plain = RlcsSampler::new(3, unsteered.clone(), 5);
            // Batches the policy mostly fails: the target moves to easier tiers.
            for _ in 0..6 {
                s.observe(&[group(0, 1), group(1, 0)], &view);
                plain.observe(&[group(0, 1), group(1, 0)], &view);
            }
            assert_eq!(s.steer_strength(), 4.0 * share, "graded {graded}");
            let (w, p) = (s.weights(), plain.weights());
            if share == 0.0 {
                // No offline tiers: exactly the unsteered sampler (target unmoved).
                assert_eq!(w, p);
                assert_eq!(s.steer_target(), 0.5);
                assert_eq!(s.target_pass_rate(), None);
                continue;
            }
            assert!(s.steer_target() > 0.8, "{}", s.steer_target());
            assert_eq!(s.target_pass_rate(), Some(s.steer_target()));
            // Easy (index 1) gains on medium (2) and very hard (4) loses against it.
            assert!(w[1] / w[2] > p[1] / p[2], "{w:?} {p:?}");
            assert!(w[4] / w[1] < p[4] / p[1], "{w:?} {p:?}");
            // Batches it mostly solves: the target moves back to harder tiers.
            for _ in 0..12 {
                s.observe(&[group(0, 8), group(1, 7)], &view);
            }
            assert!(s.steer_target() < 0.3, "{}", s.steer_target());
            assert!(s
                .weights()
                .iter()
                .all(|&w| w >= RlcsConfig::default().floor));
        }
        let bad = RlcsConfig {
            steer: Steer {
                step: f64::NAN,
                ..Steer::default()
            },
            ..RlcsConfig::default()
        };
        assert!(bad
            .validate(5)
            .is_err_and(|e| e.contains("rlcs.steer.step")));
    }
}
