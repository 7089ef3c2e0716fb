//! Samplers: the `select` / `observe` interface and its implementations.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::stats::{SampleStats, TierConfig, UNSEEN};
use crate::PoolEntry;

/// What a sampler may look at: the pool, its statistics and the tier config.
pub struct PoolView<'a> {
    /// The train pool.
    pub entries: &'a [PoolEntry],
    /// Statistics, parallel to `entries`.
    pub stats: &'a [SampleStats],
    /// Tier cut-offs.
    pub tiers: &'a TierConfig,
    /// Number of domains (domain indices are `0..domains`).
    pub domains: usize,
}

/// One observed group, as a sampler sees it.
#[derive(Debug, Clone, Copy)]
pub struct ObservedGroup {
    /// Index of the sample in the pool.
    pub index: usize,
    /// Tier of the sample when it was selected.
    pub tier_before: u8,
    /// Correct rollouts.
    pub successes: u32,
    /// Rollouts.
    pub rollouts: u32,
}

impl ObservedGroup {
    /// Whether the group carries a learning signal (neither all correct nor all wrong).
    pub fn is_mixed(&self) -> bool {
        self.successes > 0 && self.successes < self.rollouts
    }
}

/// A curriculum sampler: picks prompts before rollout and learns from what rollout
/// showed. Implementations are seeded and deterministic.
pub trait Sampler: Send {
    /// The sampler's name as written in configs.
    fn name(&self) -> &'static str;
    /// Pool indices of up to `n` distinct samples to roll out next.
    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize>;
    /// Learns from the groups of the last iteration (statistics are already updated).
    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>);
    /// Current sampling weight per tier bucket (tiers, then unseen), for reports.
    fn tier_weights(&self) -> Option<Vec<f64>> {
        None
    }
}

/// The samplers a config can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// Uniform without replacement, epoch by epoch.
    Uniform,
    /// Reinforcement Learning with Curriculum Sampling.
    Rlcs,
}

/// Builds the sampler of `kind`, seeded.
pub fn sampler_by_name(
    kind: SamplerKind,
    seed: u64,
    rlcs: &RlcsConfig,
    pool_len: usize,
    tiers: usize,
) -> Box<dyn Sampler> {
    match kind {
        SamplerKind::Uniform => Box::new(UniformSampler::new(seed, pool_len)),
        SamplerKind::Rlcs => Box::new(RlcsSampler::new(seed, rlcs.clone(), tiers)),
    }
}

/// Uniform sampling without replacement: every sample once per epoch, in a fresh
/// seeded order each epoch.
#[derive(Debug, Clone)]
pub struct UniformSampler {
    rng: ChaCha8Rng,
    order: Vec<usize>,
    cursor: usize,
}

impl UniformSampler {
    /// A sampler over a pool of `pool_len` samples.
    pub fn new(seed: u64, pool_len: usize) -> Self {
        let mut s = UniformSampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
            order: (0..pool_len).collect(),
            cursor: 0,
        };
        shuffle(&mut s.order, &mut s.rng);
        s
    }
}

fn shuffle(v: &mut [usize], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

impl Sampler for UniformSampler {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn select(&mut self, n: usize, view: &PoolView<'_>) -> Vec<usize> {
        if self.order.len() != view.entries.len() {
            self.order = (0..view.entries.len()).collect();
            shuffle(&mut self.order, &mut self.rng);
            self.cursor = 0;
        }
        let n = n.min(self.order.len());
        let mut out = Vec::with_capacity(n);
        let mut taken = vec![false; 0];
        while out.len() < n {
            if self.cursor == self.order.len() {
                // New epoch; samples already in this batch must not repeat.
                shuffle(&mut self.order, &mut self.rng);
                self.cursor = 0;
                taken = vec![false; self.order.len()];
                for &i in &out {
                    taken[i] = true;
                }
            }
            let i = self.order[self.cursor];
            self.cursor += 1;
            if taken.get(i).copied().unwrap_or(false) {
                continue;
            }
            out.push(i);
        }
        out
    }

    fn observe(&mut self, _groups: &[ObservedGroup], _view: &PoolView<'_>) {}
}

/// Settings of the RLCS sampler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RlcsConfig {
    /// Starting weight per tier (easiest first), then one for unseen samples.
    /// Mid-range difficulty is favoured; the weights then follow observed usefulness.
    pub initial_weights: Vec<f64>,
    /// No tier's weight falls below this share, so none starves.
    pub floor: f64,
    /// EMA decay of each tier's usefulness (share of mixed groups).
    pub usefulness_decay: f64,
    /// Domain mix: domain name → share. Empty means in proportion to pool size.
    pub domain_weights: BTreeMap<String, f64>,
}

impl Default for RlcsConfig {
    fn default() -> Self {
        RlcsConfig {
            initial_weights: vec![0.05, 0.3, 0.6, 0.3, 0.05, 0.5],
            floor: 0.02,
            usefulness_decay: 0.7,
            domain_weights: BTreeMap::new(),
        }
    }
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
        if !(0.0..1.0).contains(&self.usefulness_decay) {
            return Err(format!(
                "rlcs.usefulness_decay must lie in [0, 1), got {}",
                self.usefulness_decay
            ));
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

/// RLCS: samples are grouped into difficulty tiers (plus unseen); each iteration
/// re-weights the tiers by their observed usefulness — the share of their groups that
/// were neither all correct nor all wrong — so too-easy and currently-too-hard samples
/// are down-sampled and mid-range ones boosted, with a floor so no tier starves.
/// Domains are mixed in set proportions. Within a tier no sample repeats until the
/// tier is exhausted.
#[derive(Debug, Clone)]
pub struct RlcsSampler {
    config: RlcsConfig,
    rng: ChaCha8Rng,
    /// Usefulness estimate per bucket (tiers, then unseen).
    usefulness: Vec<f64>,
    /// Visited in the current pass over its bucket.
    visited: Vec<bool>,
    /// Domain shares by domain index (resolved lazily from names).
    domain_share: Vec<f64>,
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
            visited: Vec::new(),
            domain_share: Vec::new(),
        }
    }

    /// Sets the share of each domain index, from the config's names.
    pub fn set_domain_shares(&mut self, shares: Vec<f64>) {
        self.domain_share = shares;
    }

    /// Domain shares by name resolved against `names` (index order).
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

    fn weights(&self) -> Vec<f64> {
        let total: f64 = self.usefulness.iter().sum();
        let n = self.usefulness.len() as f64;
        self.usefulness
            .iter()
            .map(|u| {
                let share = if total > 0.0 { u / total } else { 1.0 / n };
                share.max(self.config.floor)
            })
            .collect()
    }
}

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
        if self.visited.len() != view.entries.len() {
            self.visited = vec![false; view.entries.len()];
        }
        let domains = view.domains.max(1);
        let shares = if self.domain_share.len() == domains {
            self.domain_share.clone()
        } else {
            let mut s = vec![0.0; domains];
            for e in view.entries {
                if let Some(x) = s.get_mut(e.domain as usize) {
                    *x += 1.0;
                }
            }
            s
        };
        // members[domain][bucket] = (fresh, already visited) pool indices.
        let mut fresh: Vec<Vec<Vec<usize>>> = vec![vec![Vec::new(); buckets]; domains];
        let mut stale: Vec<Vec<Vec<usize>>> = vec![vec![Vec::new(); buckets]; domains];
        for (i, (e, s)) in view.entries.iter().zip(view.stats).enumerate() {
            let d = (e.domain as usize).min(domains - 1);
            let b = Self::bucket(view.tiers.current(s), tiers);
            if self.visited[i] {
                stale[d][b].push(i);
            } else {
                fresh[d][b].push(i);
            }
        }
        let weights = self.weights();
        let n = n.min(view.entries.len());
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let dom_w: Vec<f64> = (0..domains)
                .map(|d| {
                    let any =
                        (0..buckets).any(|b| !fresh[d][b].is_empty() || !stale[d][b].is_empty());
                    if any {
                        shares[d]
                    } else {
                        0.0
                    }
                })
                .collect();
            let d = match pick_weighted(&dom_w, &mut self.rng) {
                Some(d) => d,
                None => {
                    // Remaining domains have zero share: fall back to any non-empty one.
                    match (0..domains).find(|&d| {
                        (0..buckets).any(|b| !fresh[d][b].is_empty() || !stale[d][b].is_empty())
                    }) {
                        Some(d) => d,
                        None => break,
                    }
                }
            };
            let tier_w: Vec<f64> = (0..buckets)
                .map(|b| {
                    if fresh[d][b].is_empty() && stale[d][b].is_empty() {
                        0.0
                    } else {
                        weights[b]
                    }
                })
                .collect();
            let Some(b) = pick_weighted(&tier_w, &mut self.rng) else {
                break;
            };
            if fresh[d][b].is_empty() {
                // Tier exhausted: start a new pass over it.
                let mut again = std::mem::take(&mut stale[d][b]);
                for &i in &again {
                    self.visited[i] = false;
                }
                std::mem::swap(&mut fresh[d][b], &mut again);
            }
            let list = &mut fresh[d][b];
            let k = self.rng.random_range(0..list.len());
            let i = list.swap_remove(k);
            self.visited[i] = true;
            out.push(i);
        }
        out
    }

    fn observe(&mut self, groups: &[ObservedGroup], view: &PoolView<'_>) {
        let tiers = view.tiers.len();
        let mut mixed = vec![0u32; tiers + 1];
        let mut total = vec![0u32; tiers + 1];
        for g in groups {
            let b = Self::bucket(g.tier_before, tiers);
            total[b] += 1;
            mixed[b] += g.is_mixed() as u32;
        }
        let d = self.config.usefulness_decay;
        for b in 0..=tiers {
            if total[b] > 0 {
                let u = mixed[b] as f64 / total[b] as f64;
                self.usefulness[b] = d * self.usefulness[b] + (1.0 - d) * u;
            }
        }
    }

    fn tier_weights(&self) -> Option<Vec<f64>> {
        Some(self.weights())
    }
}
