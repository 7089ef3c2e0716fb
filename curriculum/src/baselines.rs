//! Baseline samplers, each behind the same [`Sampler`] interface, seeded and
//! checkpointable. Every one has a prior for unseen samples (documented per config).
//!
//! Pass-rate based samplers (band-pass, Kimi, p(1−p), AdaRFT) key samples by their
//! merged pass-rate estimate ([`TierConfig::pass_estimate`](crate::TierConfig::pass_estimate))
//! quantised to 0.01 (exact 0 and exact 1 kept apart), so `select` costs
//! O(n · log bins) whatever the pool size.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::bins::BinIndex;
use crate::samplers::{
    batch_pass_rate, fill_any, target_move, weighted_fill, LazyBins, ObservedGroup, PoolView,
    Sampler, SamplerState, UniformSampler,
};

/// Pass-rate levels 0..=100 (0.01 steps), then one bin for unseen samples.
const PASS_LEVELS: usize = 101;
const UNSEEN_BIN: u32 = PASS_LEVELS as u32;

fn pass_bin(p: Option<f32>) -> u32 {
    match p {
        None => UNSEEN_BIN,
        Some(p) if p.is_nan() => UNSEEN_BIN,
        Some(p) if p <= 0.0 => 0,
        Some(p) if p >= 1.0 => 100,
        Some(p) => ((p * 100.0).round() as u32).clamp(1, 99),
    }
}

/// The pass rate a bin stands for (`unseen` for the unseen bin).
fn bin_pass(b: usize, unseen: f32) -> f64 {
    if b >= PASS_LEVELS {
        unseen as f64
    } else {
        b as f64 / 100.0
    }
}

fn pass_key(view: &PoolView<'_>, i: usize) -> u32 {
    pass_bin(view.tiers.pass_estimate(&view.stats[i]))
}

fn check_unit(name: &str, v: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("{name} must lie in [0, 1], got {v}"))
    }
}

/// Samples indexed by quantised pass rate, with a seeded RNG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PassBinned {
    rng: ChaCha8Rng,
    bins: LazyBins,
}

impl PassBinned {
    fn new(seed: u64) -> Self {
        PassBinned {
            rng: ChaCha8Rng::seed_from_u64(seed),
            bins: LazyBins::default(),
        }
    }

    /// Selects `min(n, pool)` by per-member weight of each pass bin.
    fn select_weighted(
        &mut self,
        n: usize,
        view: &PoolView<'_>,
        weight: impl Fn(f64) -> f64,
        unseen: f32,
    ) -> Vec<usize> {
        let ix = self
            .bins
            .ensure(view, PASS_LEVELS + 1, |i| pass_key(view, i));
        let per: Vec<f64> = (0..=PASS_LEVELS)
            .map(|b| weight(bin_pass(b, unseen)))
            .collect();
        let n = n.min(view.entries.len());
        let mut out = Vec::with_capacity(n);
        ix.begin_batch();
        weighted_fill(ix, &per, n, &mut self.rng, &mut out);
        ix.end_batch();
        out
    }

    /// Selects `min(n, pool)` nearest-first by `distance` of each bin (random within
    /// a bin; ties in bin order).
    fn select_nearest(
        ix: &mut BinIndex,
        rng: &mut ChaCha8Rng,
        n: usize,
        distance: impl Fn(usize) -> f64,
        out: &mut Vec<usize>,
    ) {
        let mut order: Vec<usize> = (0..ix.bins()).collect();
        order.sort_by(|&a, &b| distance(a).total_cmp(&distance(b)).then(a.cmp(&b)));
        for b in order {
            while out.len() < n {
                match ix.take(b, rng) {
                    Some(i) => out.push(i),
                    None => break,
                }
            }
        }
    }

    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>) {
        self.bins.update(groups, view, |i| pass_key(view, i));
    }
}

// ---------------------------------------------------------------------------------
// DAPO

/// Settings of DAPO dynamic sampling (`[curriculum.dapo]`).
///
/// DAPO (Yu et al. 2025, arXiv 2503.14476, "dynamic sampling") over-samples and drops
/// prompt groups whose rollouts are all correct or all wrong, sampling again until the
/// batch is full. Mapped onto select/observe: the sampler picks uniformly without
/// replacement; [`Curriculum::observe`](crate::Curriculum::observe) keeps only mixed
/// groups and, while the iteration's batch is short and fewer than `max_rounds`
/// top-up rounds ran, reports `resample > 0`; the caller then rolls out
/// [`Curriculum::select_more`](crate::Curriculum::select_more)`(resample)` more prompts and
/// observes them under the same iteration. Callers that never top up get a batch
/// with only the mixed groups of the first round. The ratio EMA does not size DAPO's
/// first round (it rolls out the batch size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DapoConfig {
    /// Most top-up rounds per iteration after the first (default 3, the cap that keeps
    /// a solved pool from resampling forever).
    pub max_rounds: u32,
    /// Top-up size = `ceil(missing · min(1 / (1 − not_valid_rate), max_oversample))`
    /// (default 4).
    pub max_oversample: f64,
}

impl Default for DapoConfig {
    fn default() -> Self {
        DapoConfig {
            max_rounds: 3,
            max_oversample: 4.0,
        }
    }
}

impl DapoConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.max_oversample >= 1.0 && self.max_oversample <= 64.0) {
            return Err(format!(
                "dapo.max_oversample must lie in [1, 64], got {}",
                self.max_oversample
            ));
        }
        Ok(())
    }
}

/// DAPO dynamic sampling: uniform selection; the group filter and top-up rounds are
/// applied by the curriculum (see [`DapoConfig`]). Unseen samples: as any other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DapoSampler {
    /// Settings.
    pub config: DapoConfig,
    inner: UniformSampler,
}

impl DapoSampler {
    /// A seeded DAPO sampler.
    pub fn new(seed: u64, config: DapoConfig) -> Self {
        DapoSampler {
            config,
            inner: UniformSampler::new(seed),
        }
    }
}

impl Sampler for DapoSampler {
    fn name(&self) -> &'static str {
        "dapo"
    }
    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize> {
        self.inner.select(n, view)
    }
    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>) {
        self.inner.observe(groups, view)
    }
    fn save(&self) -> SamplerState {
        SamplerState::Dapo(self.clone())
    }
    fn heap_bytes(&self) -> usize {
        self.inner.heap_bytes()
    }
}

// ---------------------------------------------------------------------------------
// Band-pass

/// Settings of the band-pass filter (`[curriculum.band_pass]`).
///
/// Selects only samples whose pass rate p satisfies `lo < p < hi` — the offline /
/// online "drop prompts that are always or never solved" filter used by several
/// reasoning-RL recipes (e.g. Skywork-OR1, Polaris). The default band (0, 1) keeps
/// every sample with some but not full success. When the band holds fewer than the
/// batch, the rest comes from the samples nearest the band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BandPassConfig {
    /// Exclusive lower bound of the pass rate (default 0).
    pub lo: f64,
    /// Exclusive upper bound of the pass rate (default 1).
    pub hi: f64,
    /// Whether unseen samples count as in band (default true: they must be tried once).
    pub include_unseen: bool,
}

impl Default for BandPassConfig {
    fn default() -> Self {
        BandPassConfig {
            lo: 0.0,
            hi: 1.0,
            include_unseen: true,
        }
    }
}

impl BandPassConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        check_unit("band_pass.lo", self.lo)?;
        check_unit("band_pass.hi", self.hi)?;
        if self.lo >= self.hi {
            return Err(format!(
                "band_pass.lo ({}) must be below band_pass.hi ({})",
                self.lo, self.hi
            ));
        }
        Ok(())
    }
}

/// Band-pass sampler: uniform over in-band samples, nearest-to-band fallback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandPassSampler {
    /// Settings.
    pub config: BandPassConfig,
    inner: PassBinned,
}

impl BandPassSampler {
    /// A seeded band-pass sampler.
    pub fn new(seed: u64, config: BandPassConfig) -> Self {
        BandPassSampler {
            config,
            inner: PassBinned::new(seed),
        }
    }

    fn distance(&self, b: usize) -> f64 {
        if b >= PASS_LEVELS {
            return if self.config.include_unseen { 0.0 } else { 1.0 };
        }
        let p = bin_pass(b, 0.5);
        let (lo, hi) = (self.config.lo, self.config.hi);
        if p > lo && p < hi {
            0.0
        } else if p <= lo {
            lo - p + 1e-9
        } else {
            p - hi + 1e-9
        }
    }
}

impl Sampler for BandPassSampler {
    fn name(&self) -> &'static str {
        "band_pass"
    }

    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize> {
        let in_band: Vec<f64> = (0..=PASS_LEVELS)
            .map(|b| if self.distance(b) == 0.0 { 1.0 } else { 0.0 })
            .collect();
        let dist: Vec<f64> = (0..=PASS_LEVELS).map(|b| self.distance(b)).collect();
        let inner = &mut self.inner;
        let ix = inner
            .bins
            .ensure(view, PASS_LEVELS + 1, |i| pass_key(view, i));
        let n = n.min(view.entries.len());
        let mut out = Vec::with_capacity(n);
        ix.begin_batch();
        // Uniform over in-band samples first (weights 1 per member, no fill-up)…
        let in_band_total: usize = (0..ix.bins())
            .filter(|&b| in_band.get(b).copied().unwrap_or(0.0) > 0.0)
            .map(|b| ix.available(b))
            .sum();
        weighted_fill(ix, &in_band, n.min(in_band_total), &mut inner.rng, &mut out);
        // …then the nearest out-of-band samples.
        PassBinned::select_nearest(
            ix,
            &mut inner.rng,
            n,
            |b| dist.get(b).copied().unwrap_or(2.0),
            &mut out,
        );
        ix.end_batch();
        out
    }

    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>) {
        self.inner.observe(groups, view)
    }

    fn save(&self) -> SamplerState {
        SamplerState::BandPass(self.clone())
    }

    fn heap_bytes(&self) -> usize {
        self.inner.bins.heap_bytes()
    }
}

// ---------------------------------------------------------------------------------
// Kimi and p(1−p)

/// Settings of the Kimi k1.5 sampler (`[curriculum.kimi]`).
///
/// Kimi k1.5 (Kimi Team 2025, arXiv 2501.12599, §2.3.4 "prioritized sampling") samples
/// problem i with weight ∝ 1 − s_i, s_i its success rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KimiConfig {
    /// Pass rate assumed for unseen samples (default 0.5).
    pub unseen_pass: f32,
    /// Weight floor, so solved samples still come up and an all-solved pool still
    /// returns a batch (default 0.01).
    pub min_weight: f64,
}

impl Default for KimiConfig {
    fn default() -> Self {
        KimiConfig {
            unseen_pass: 0.5,
            min_weight: 0.01,
        }
    }
}

impl KimiConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        check_unit("kimi.unseen_pass", self.unseen_pass as f64)?;
        check_unit("kimi.min_weight", self.min_weight)
    }
}

/// Settings of the p(1−p) priority sampler (`[curriculum.p1mp]`).
///
/// Weight ∝ p(1 − p), the variance of a Bernoulli reward: the expected GRPO signal of
/// a prompt is largest at p = 0.5 (as in e.g. "Online Difficulty Filtering",
/// Bae et al. 2025, and VCRL's variance-based sampling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P1mpConfig {
    /// Pass rate assumed for unseen samples (default 0.5: the highest priority, so
    /// unseen samples are tried early).
    pub unseen_pass: f32,
    /// Weight floor (default 0.005), so an all-solved pool still returns a batch.
    pub min_weight: f64,
}

impl Default for P1mpConfig {
    fn default() -> Self {
        P1mpConfig {
            unseen_pass: 0.5,
            min_weight: 0.005,
        }
    }
}

impl P1mpConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        check_unit("p1mp.unseen_pass", self.unseen_pass as f64)?;
        check_unit("p1mp.min_weight", self.min_weight)
    }
}

/// Which priority a [`PrioritySampler`] gives a sample with pass rate `p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PriorityRule {
    /// Kimi k1.5: `1 − p`.
    Kimi,
    /// The variance of a Bernoulli reward: `p(1 − p)`.
    P1mp,
}

/// Pass-rate priority sampling — Kimi k1.5 (`1 − p`) or p(1−p) — with weight
/// `max(rule(p), min_weight)` and a prior pass rate for unseen samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrioritySampler {
    /// The priority rule.
    pub rule: PriorityRule,
    /// Pass rate assumed for unseen samples.
    pub unseen_pass: f32,
    /// Weight floor.
    pub min_weight: f64,
    inner: PassBinned,
}

impl PrioritySampler {
    /// A seeded Kimi k1.5 sampler.
    pub fn kimi(seed: u64, config: KimiConfig) -> Self {
        PrioritySampler {
            rule: PriorityRule::Kimi,
            unseen_pass: config.unseen_pass,
            min_weight: config.min_weight,
            inner: PassBinned::new(seed),
        }
    }

    /// A seeded p(1−p) sampler.
    pub fn p1mp(seed: u64, config: P1mpConfig) -> Self {
        PrioritySampler {
            rule: PriorityRule::P1mp,
            unseen_pass: config.unseen_pass,
            min_weight: config.min_weight,
            inner: PassBinned::new(seed),
        }
    }
}

impl Sampler for PrioritySampler {
    fn name(&self) -> &'static str {
        match self.rule {
            PriorityRule::Kimi => "kimi",
            PriorityRule::P1mp => "p1mp",
        }
    }
    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize> {
        let floor = self.min_weight;
        let rule = self.rule;
        let weight = move |p: f64| match rule {
            PriorityRule::Kimi => (1.0 - p).max(floor),
            PriorityRule::P1mp => (p * (1.0 - p)).max(floor),
        };
        self.inner
            .select_weighted(n, view, weight, self.unseen_pass)
    }
    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>) {
        self.inner.observe(groups, view)
    }
    fn save(&self) -> SamplerState {
        match self.rule {
            PriorityRule::Kimi => SamplerState::Kimi(self.clone()),
            PriorityRule::P1mp => SamplerState::P1mp(self.clone()),
        }
    }
    fn heap_bytes(&self) -> usize {
        self.inner.bins.heap_bytes()
    }
}

// ---------------------------------------------------------------------------------
// AdaRFT

/// Settings of AdaRFT (`[curriculum.adarft]`).
///
/// AdaRFT (Shi et al. 2025, arXiv 2504.05520, "Efficient RL training via adaptive
/// curriculum learning"): a target difficulty T moves after each step by
/// `T ← clip(T + η · tanh(α · (R̄ − β)), 0, 1)`, R̄ the batch's mean reward, and the
/// batch is the samples whose difficulty is closest to T. Difficulty here is
/// `1 − pass rate` (the paper uses 0–100 scores from a reference model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaRftConfig {
    /// Starting target difficulty (default 0.5).
    pub initial_target: f64,
    /// Step size η (default 0.1 on the 0–1 scale).
    pub step: f64,
    /// Sensitivity α (default 2).
    pub sensitivity: f64,
    /// Target reward β (default 0.5).
    pub target_reward: f64,
    /// Pass rate assumed for unseen samples (default 0.5).
    pub unseen_pass: f32,
}

impl Default for AdaRftConfig {
    fn default() -> Self {
        AdaRftConfig {
            initial_target: 0.5,
            step: 0.1,
            sensitivity: 2.0,
            target_reward: 0.5,
            unseen_pass: 0.5,
        }
    }
}

impl AdaRftConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        check_unit("adarft.initial_target", self.initial_target)?;
        check_unit("adarft.target_reward", self.target_reward)?;
        check_unit("adarft.unseen_pass", self.unseen_pass as f64)?;
        if !(self.step.is_finite() && self.step >= 0.0) {
            return Err(format!("adarft.step must be >= 0, got {}", self.step));
        }
        if !(self.sensitivity.is_finite() && self.sensitivity >= 0.0) {
            return Err(format!(
                "adarft.sensitivity must be >= 0, got {}",
                self.sensitivity
            ));
        }
        Ok(())
    }
}

/// AdaRFT: the samples nearest a moving target difficulty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaRftSampler {
    /// Settings.
    pub config: AdaRftConfig,
    /// Current target difficulty (1 − pass rate).
    pub target: f64,
    inner: PassBinned,
}

impl AdaRftSampler {
    /// A seeded AdaRFT sampler.
    pub fn new(seed: u64, config: AdaRftConfig) -> Self {
        AdaRftSampler {
            target: config.initial_target,
            config,
            inner: PassBinned::new(seed),
        }
    }
}

impl Sampler for AdaRftSampler {
    fn name(&self) -> &'static str {
        "adarft"
    }

    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize> {
        let unseen = self.config.unseen_pass;
        let target = self.target;
        let inner = &mut self.inner;
        let ix = inner
            .bins
            .ensure(view, PASS_LEVELS + 1, |i| pass_key(view, i));
        let n = n.min(view.entries.len());
        let mut out = Vec::with_capacity(n);
        ix.begin_batch();
        PassBinned::select_nearest(
            ix,
            &mut inner.rng,
            n,
            |b| ((1.0 - bin_pass(b, unseen)) - target).abs(),
            &mut out,
        );
        ix.end_batch();
        out
    }

    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>) {
        if let Some(reward) = batch_pass_rate(groups) {
            let c = &self.config;
            // High reward → harder target (difficulty up).
            self.target = (self.target
                + target_move(c.step, c.sensitivity, reward, c.target_reward))
            .clamp(0.0, 1.0);
        }
        self.inner.observe(groups, view)
    }

    fn target_pass_rate(&self) -> Option<f64> {
        Some(1.0 - self.target)
    }

    fn save(&self) -> SamplerState {
        SamplerState::Adarft(self.clone())
    }

    fn heap_bytes(&self) -> usize {
        self.inner.bins.heap_bytes()
    }
}

// ---------------------------------------------------------------------------------
// Prioritized level replay

/// What PLR scores a seen sample by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlrScore {
    /// EMA of the group's mean |GRPO advantage| (PLR's positive value loss analogue);
    /// samples without a reported advantage use `2·sqrt(p(1−p))`, its value for
    /// binary rewards.
    AbsAdvantage,
    /// p(1 − p) of the pass rate.
    P1mp,
}

/// Settings of prioritized level replay (`[curriculum.plr]`).
///
/// PLR (Jiang et al. 2021, arXiv 2010.03934): with probability `replay_prob` replay
/// a seen sample drawn from `P = (1 − ρ)·P_S + ρ·P_C`, where `P_S ∝ (1/rank(score))^(1/β)`
/// and `P_C ∝ c − C_i` (iterations since last seen); otherwise take an unseen sample
/// (uniformly). Scores are quantised to 32 levels and last-seen iterations to windows
/// of `staleness_window` iterations, so `select` never scans the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlrConfig {
    /// Score (default `abs_advantage`).
    pub score: PlrScore,
    /// Rank temperature β (default 0.1, the paper's).
    pub temperature: f64,
    /// Staleness mix ρ (default 0.1, the paper's).
    pub staleness: f64,
    /// Probability of replaying a seen sample while unseen ones remain (default 0.5).
    pub replay_prob: f64,
    /// Width in iterations of a staleness window (default 8).
    pub staleness_window: u32,
}

impl Default for PlrConfig {
    fn default() -> Self {
        PlrConfig {
            score: PlrScore::AbsAdvantage,
            temperature: 0.1,
            staleness: 0.1,
            replay_prob: 0.5,
            staleness_window: 8,
        }
    }
}

impl PlrConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "plr.temperature must be > 0, got {}",
                self.temperature
            ));
        }
        check_unit("plr.staleness", self.staleness)?;
        check_unit("plr.replay_prob", self.replay_prob)?;
        if self.staleness_window == 0 {
            return Err("plr.staleness_window must be >= 1".into());
        }
        Ok(())
    }
}

const PLR_LEVELS: usize = 32;

/// Prioritized level replay over samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlrSampler {
    /// Settings.
    pub config: PlrConfig,
    rng: ChaCha8Rng,
    bins: LazyBins,
}

impl PlrSampler {
    /// A seeded PLR sampler.
    pub fn new(seed: u64, config: PlrConfig) -> Self {
        PlrSampler {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            bins: LazyBins::default(),
        }
    }

    /// Bin 0: unseen; then `1 + window · 32 + level`.
    fn key(config: &PlrConfig, view: &PoolView<'_>, i: usize) -> u32 {
        let s = &view.stats[i];
        let Some(p) = view.tiers.pass_estimate(s) else {
            return 0;
        };
        if s.visits == 0 {
            // Offline-graded but never rolled out: still "unseen" for replay purposes.
            return 0;
        }
        let p = p.clamp(0.0, 1.0) as f64;
        let score = match (config.score, s.abs_advantage()) {
            (PlrScore::AbsAdvantage, Some(a)) => a as f64,
            (PlrScore::AbsAdvantage, None) => 2.0 * (p * (1.0 - p)).sqrt(),
            (PlrScore::P1mp, _) => 4.0 * p * (1.0 - p),
        };
        let level = ((score.clamp(0.0, 1.0) * PLR_LEVELS as f64) as usize).min(PLR_LEVELS - 1);
        let window = (s.last_seen / config.staleness_window.max(1)) as usize;
        (1 + window * PLR_LEVELS + level) as u32
    }
}

impl Sampler for PlrSampler {
    fn name(&self) -> &'static str {
        "plr"
    }

    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize> {
        let config = self.config.clone();
        let ix = self
            .bins
            .ensure(view, 1 + PLR_LEVELS, |i| Self::key(&config, view, i));
        let bins = ix.bins();
        // Per score level: seen samples (all windows).
        let mut level_count = [0usize; PLR_LEVELS];
        let mut seen = 0usize;
        for b in 1..bins {
            let c = ix.len(b);
            level_count[(b - 1) % PLR_LEVELS] += c;
            seen += c;
        }
        let unseen = ix.len(0);
        // Rank-based P_S: a level's members share the average rank of its ties.
        let inv_beta = 1.0 / config.temperature;
        let mut h = [0.0f64; PLR_LEVELS];
        let mut higher = 0usize;
        for l in (0..PLR_LEVELS).rev() {
            let c = level_count[l];
            if c > 0 {
                let rank = higher as f64 + (c as f64 + 1.0) / 2.0;
                h[l] = (1.0 / rank).powf(inv_beta);
            }
            higher += c;
        }
        let h_total: f64 = (0..PLR_LEVELS).map(|l| h[l] * level_count[l] as f64).sum();
        // Staleness P_C ∝ c − C_i, with C_i at its window's middle.
        let now = view.iteration as f64 + 1.0;
        let w = config.staleness_window.max(1) as f64;
        let age = |b: usize| -> f64 {
            let window = ((b - 1) / PLR_LEVELS) as f64;
            (now - (window * w + (w - 1.0) / 2.0)).max(0.5)
        };
        let c_total: f64 = (1..bins).map(|b| age(b) * ix.len(b) as f64).sum();
        let replay = if unseen == 0 {
            1.0
        } else if seen == 0 {
            0.0
        } else {
            config.replay_prob
        };
        let rho = config.staleness;
        let mut per = vec![0.0; bins];
        if unseen > 0 {
            per[0] = (1.0 - replay) / unseen as f64;
        }
        for (b, slot) in per.iter_mut().enumerate().skip(1) {
            let l = (b - 1) % PLR_LEVELS;
            let ps = if h_total > 0.0 { h[l] / h_total } else { 0.0 };
            let pc = if c_total > 0.0 { age(b) / c_total } else { 0.0 };
            *slot = replay * ((1.0 - rho) * ps + rho * pc);
        }
        let n = n.min(view.entries.len());
        let mut out = Vec::with_capacity(n);
        ix.begin_batch();
        weighted_fill(ix, &per, n, &mut self.rng, &mut out);
        ix.end_batch();
        out
    }

    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>) {
        let config = &self.config;
        self.bins
            .update(groups, view, |i| Self::key(config, view, i));
    }

    fn save(&self) -> SamplerState {
        SamplerState::Plr(self.clone())
    }

    fn heap_bytes(&self) -> usize {
        self.bins.heap_bytes()
    }
}

// ---------------------------------------------------------------------------------
// Learning progress (Teacher–Student curriculum)

/// How the learning-progress teacher picks a domain. TOML:
/// `policy = { epsilon_greedy = { epsilon = 0.1 } }` or
/// `policy = { boltzmann = { temperature = 0.05 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BanditPolicy {
    /// The domain with the largest |learning progress|, or with probability
    /// `epsilon` a uniform one.
    EpsilonGreedy {
        /// Exploration probability.
        epsilon: f64,
    },
    /// Probability ∝ exp(|learning progress| / temperature).
    Boltzmann {
        /// Temperature.
        temperature: f64,
    },
}

/// Settings of the learning-progress bandit (`[curriculum.learning_progress]`).
///
/// Teacher–Student Curriculum Learning (Matiisen et al. 2017, arXiv 1707.00183),
/// "Online" algorithm: each domain's learning progress is an EMA
/// `Q ← α·r + (1 − α)·Q` of r, the change in the domain's pass rate since the domain
/// was last trained; domains are picked by |Q| (ε-greedy or Boltzmann), each pick one
/// sample, uniformly without replacement within the domain. Unseen domains start at
/// Q = 0 (exploration finds them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearningProgressConfig {
    /// EMA rate α (default 0.1).
    pub alpha: f64,
    /// Domain choice (default ε-greedy with ε = 0.1).
    pub policy: BanditPolicy,
}

impl Default for LearningProgressConfig {
    fn default() -> Self {
        LearningProgressConfig {
            alpha: 0.1,
            policy: BanditPolicy::EpsilonGreedy { epsilon: 0.1 },
        }
    }
}

impl LearningProgressConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(format!(
                "learning_progress.alpha must lie in (0, 1], got {}",
                self.alpha
            ));
        }
        match self.policy {
            BanditPolicy::EpsilonGreedy { epsilon } => {
                check_unit("learning_progress.policy.epsilon", epsilon)
            }
            BanditPolicy::Boltzmann { temperature }
                if temperature.is_nan() || temperature <= 0.0 =>
            {
                Err(format!(
                    "learning_progress.policy.temperature must be > 0, got {temperature}"
                ))
            }
            BanditPolicy::Boltzmann { .. } => Ok(()),
        }
    }
}

/// Matiisen learning-progress bandit over domains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningProgressSampler {
    /// Settings.
    pub config: LearningProgressConfig,
    /// Learning progress Q per domain.
    pub progress: Vec<f64>,
    /// Last observed pass rate per domain.
    last_score: Vec<Option<f64>>,
    rng: ChaCha8Rng,
    bins: LazyBins,
}

impl LearningProgressSampler {
    /// A seeded learning-progress sampler.
    pub fn new(seed: u64, config: LearningProgressConfig) -> Self {
        LearningProgressSampler {
            config,
            progress: Vec::new(),
            last_score: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            bins: LazyBins::default(),
        }
    }

    fn key(view: &PoolView<'_>, i: usize) -> u32 {
        (view.entries[i].domain as usize).min(view.domains.max(1) - 1) as u32
    }

    fn pick_domain(&mut self, avail: &[usize]) -> Option<usize> {
        let open: Vec<usize> = (0..avail.len()).filter(|&d| avail[d] > 0).collect();
        if open.is_empty() {
            return None;
        }
        let q = |d: usize| self.progress.get(d).copied().unwrap_or(0.0).abs();
        match self.config.policy {
            BanditPolicy::EpsilonGreedy { epsilon } => {
                if self.rng.random::<f64>() < epsilon {
                    return Some(open[self.rng.random_range(0..open.len())]);
                }
                let best = open.iter().map(|&d| q(d)).fold(f64::MIN, f64::max);
                let ties: Vec<usize> = open.iter().copied().filter(|&d| q(d) >= best).collect();
                Some(ties[self.rng.random_range(0..ties.len())])
            }
            BanditPolicy::Boltzmann { temperature } => {
                let best = open.iter().map(|&d| q(d)).fold(f64::MIN, f64::max);
                let w: Vec<f64> = open
                    .iter()
                    .map(|&d| ((q(d) - best) / temperature).exp())
                    .collect();
                let total: f64 = w.iter().sum();
                let mut x = self.rng.random::<f64>() * total;
                for (k, &wk) in w.iter().enumerate() {
                    if x < wk {
                        return Some(open[k]);
                    }
                    x -= wk;
                }
                open.last().copied()
            }
        }
    }
}

impl Sampler for LearningProgressSampler {
    fn name(&self) -> &'static str {
        "learning_progress"
    }

    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize> {
        let domains = view.domains.max(1);
        let mut bins = std::mem::take(&mut self.bins);
        let ix = bins.ensure(view, domains, |i| Self::key(view, i));
        let n = n.min(view.entries.len());
        let mut out = Vec::with_capacity(n);
        let mut avail: Vec<usize> = (0..ix.bins()).map(|d| ix.available(d)).collect();
        ix.begin_batch();
        while out.len() < n {
            let Some(d) = self.pick_domain(&avail) else {
                break;
            };
            if let Some(i) = ix.take(d, &mut self.rng) {
                out.push(i);
            }
            avail[d] = avail[d].saturating_sub(1);
        }
        fill_any(ix, n, &mut self.rng, &mut out);
        ix.end_batch();
        self.bins = bins;
        out
    }

    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>) {
        let domains = view.domains.max(1);
        self.progress.resize(domains, 0.0);
        self.last_score.resize(domains, None);
        let mut s = vec![0u64; domains];
        let mut r = vec![0u64; domains];
        for g in groups {
            let d = Self::key(view, g.index) as usize;
            s[d] += g.successes.min(g.rollouts) as u64;
            r[d] += g.rollouts as u64;
        }
        let a = self.config.alpha;
        for d in 0..domains {
            if r[d] == 0 {
                continue;
            }
            let x = s[d] as f64 / r[d] as f64;
            if let Some(prev) = self.last_score[d] {
                self.progress[d] = a * (x - prev) + (1.0 - a) * self.progress[d];
            }
            self.last_score[d] = Some(x);
        }
        self.bins.update(groups, view, |i| Self::key(view, i));
    }

    fn save(&self) -> SamplerState {
        SamplerState::LearningProgress(self.clone())
    }

    fn heap_bytes(&self) -> usize {
        self.bins.heap_bytes()
    }
}
