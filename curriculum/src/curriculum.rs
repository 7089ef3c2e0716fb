//! The curriculum: a pool, its statistics, a sampler and the ratio EMA.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::baselines::{
    AdaRftConfig, BandPassConfig, DapoConfig, KimiConfig, LearningProgressConfig, P1mpConfig,
    PlrConfig,
};
use crate::expansion::{balanced_selection, ExpansionConfig, RatioEma};
use crate::samplers::{
    sampler_by_name, ObservedGroup, PoolView, RlcsConfig, Sampler, SamplerKind, SamplerState,
};
use crate::stats::{grpo_mean_abs_advantage, pass_at_k, SampleStats, TierConfig, UNSEEN};
use crate::SampleId;

/// The sampler's view of a curriculum's pool (a macro, so the view's borrows stay
/// apart from the mutable borrow of the sampler beside them).
macro_rules! pool_view {
    ($c:expr) => {
        PoolView {
            entries: &$c.entries,
            stats: &$c.stats,
            tiers: &$c.config.tiers,
            domains: $c.domains.len(),
            iteration: $c.iteration,
            generation: $c.generation,
        }
    };
}

/// Draws one top-up round makes from the sampler at most, to replace samples
/// already taken in the iteration.
const MAX_TOPUP_DRAWS: usize = 40;

/// One sample of the train pool as the curriculum knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolEntry {
    /// Stable sample id.
    pub id: SampleId,
    /// Domain index (into the curriculum's domain names).
    pub domain: u16,
}

/// Curriculum settings (the `[curriculum]` table of an experiment). Every field has
/// a default; each sampler reads only its own table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CurriculumConfig {
    /// Which sampler picks prompts (default `rlcs`).
    pub sampler: SamplerKind,
    /// Decay of the per-sample EMAs: pass rate, |advantage|, response length (default 0.5).
    pub pass_ema_decay: f32,
    /// k of the per-sample `last_pass_at_k`; 0 (default) means the group size.
    pub pass_at_k: u32,
    /// Difficulty tiers and the offline/online merge rule.
    pub tiers: TierConfig,
    /// Ratio-EMA dynamic sampling expansion.
    pub expansion: ExpansionConfig,
    /// RLCS settings (`sampler = "rlcs"`).
    pub rlcs: RlcsConfig,
    /// DAPO dynamic sampling settings (`sampler = "dapo"`).
    pub dapo: DapoConfig,
    /// Band-pass settings (`sampler = "band_pass"`).
    pub band_pass: BandPassConfig,
    /// Kimi k1.5 settings (`sampler = "kimi"`).
    pub kimi: KimiConfig,
    /// p(1−p) settings (`sampler = "p1mp"`).
    pub p1mp: P1mpConfig,
    /// Prioritized level replay settings (`sampler = "plr"`).
    pub plr: PlrConfig,
    /// AdaRFT settings (`sampler = "adarft"`).
    pub adarft: AdaRftConfig,
    /// Learning-progress bandit settings (`sampler = "learning_progress"`).
    pub learning_progress: LearningProgressConfig,
}

impl Default for CurriculumConfig {
    fn default() -> Self {
        CurriculumConfig {
            sampler: SamplerKind::Rlcs,
            pass_ema_decay: 0.5,
            pass_at_k: 0,
            tiers: TierConfig::default(),
            expansion: ExpansionConfig::default(),
            rlcs: RlcsConfig::default(),
            dapo: DapoConfig::default(),
            band_pass: BandPassConfig::default(),
            kimi: KimiConfig::default(),
            p1mp: P1mpConfig::default(),
            plr: PlrConfig::default(),
            adarft: AdaRftConfig::default(),
            learning_progress: LearningProgressConfig::default(),
        }
    }
}

impl CurriculumConfig {
    /// The default config with `sampler` chosen.
    pub fn with_sampler(sampler: SamplerKind) -> Self {
        CurriculumConfig {
            sampler,
            ..Default::default()
        }
    }

    /// Checks every value; the message names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.pass_ema_decay) {
            return Err(format!(
                "pass_ema_decay must lie in [0, 1), got {}",
                self.pass_ema_decay
            ));
        }
        self.tiers.validate()?;
        self.expansion.validate()?;
        self.rlcs.validate(self.tiers.len())?;
        self.dapo.validate()?;
        self.band_pass.validate()?;
        self.kimi.validate()?;
        self.p1mp.validate()?;
        self.plr.validate()?;
        self.adarft.validate()?;
        self.learning_progress.validate()
    }
}

/// Errors from the curriculum.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CurriculumError {
    /// The config is invalid.
    #[error("invalid curriculum config: {0}")]
    Config(String),
    /// An observed group names a sample not in the pool.
    #[error("observed sample {0:#018x} is not in the train pool")]
    UnknownSample(SampleId),
    /// The pool holds the same id twice.
    #[error("sample id {0:#018x} appears twice in the train pool")]
    DuplicateSample(SampleId),
    /// A domain index is out of range.
    #[error("pool entry {id:#018x} has domain index {domain}, but only {domains} domains exist")]
    BadDomain {
        /// The sample.
        id: SampleId,
        /// Its domain index.
        domain: u16,
        /// Number of domains.
        domains: usize,
    },
    /// An offline tier is out of range.
    #[error("offline tier {tier} for sample {id:#018x} is out of range (only {tiers} tiers)")]
    BadTier {
        /// The sample.
        id: SampleId,
        /// The tier given.
        tier: u8,
        /// Number of tiers.
        tiers: usize,
    },
    /// An offline pass rate is not in [0, 1].
    #[error("offline pass rate {pass} for sample {id:#018x} is not in [0, 1]")]
    BadPassRate {
        /// The sample.
        id: SampleId,
        /// The pass rate given.
        pass: f32,
    },
    /// A saved state does not fit together.
    #[error("curriculum state is inconsistent: {0}")]
    BadState(String),
}

/// What to roll out this iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Samples to roll out (`ceil(ema · B)` of them with expansion on).
    pub samples: Vec<SampleId>,
    /// How many groups to keep for training (B).
    pub keep: usize,
}

/// One prompt's rollouts after scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupOutcome {
    /// The sample.
    pub sample: SampleId,
    /// Rollouts in the group.
    pub rollouts: u32,
    /// Rollouts judged correct.
    pub successes: u32,
    /// Mean reward of the group.
    pub mean_reward: f32,
    /// Policy version that produced the rollouts.
    pub policy_version: u64,
    /// Mean |GRPO advantage| over the group, when known (see
    /// [`grpo_mean_abs_advantage`](crate::grpo_mean_abs_advantage)).
    #[serde(default)]
    pub mean_abs_advantage: Option<f32>,
    /// Mean response length in tokens, when known.
    #[serde(default)]
    pub mean_response_len: Option<f32>,
}

impl GroupOutcome {
    /// A group of `rollouts` with `successes` correct; reward = pass rate, no
    /// advantage or length.
    pub fn new(sample: SampleId, rollouts: u32, successes: u32, policy_version: u64) -> Self {
        GroupOutcome {
            sample,
            rollouts,
            successes,
            mean_reward: if rollouts == 0 {
                0.0
            } else {
                successes.min(rollouts) as f32 / rollouts as f32
            },
            policy_version,
            mean_abs_advantage: None,
            mean_response_len: None,
        }
    }

    /// A group from its per-rollout rewards and correctness, with the mean reward and
    /// mean |GRPO advantage| computed, and the mean length when `lengths` is non-empty.
    pub fn from_rollouts(
        sample: SampleId,
        policy_version: u64,
        rewards: &[f64],
        correct: usize,
        lengths: &[u32],
    ) -> Self {
        let n = rewards.len();
        GroupOutcome {
            sample,
            rollouts: n as u32,
            successes: correct.min(n) as u32,
            mean_reward: (rewards.iter().sum::<f64>() / n.max(1) as f64) as f32,
            policy_version,
            mean_abs_advantage: Some(grpo_mean_abs_advantage(rewards)),
            mean_response_len: (!lengths.is_empty()).then(|| {
                (lengths.iter().map(|&l| l as f64).sum::<f64>() / lengths.len() as f64) as f32
            }),
        }
    }
}

/// One appended record of a sample's difficulty history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The sample.
    pub sample: SampleId,
    /// Iteration of the observation.
    pub iteration: u32,
    /// Policy version of the rollouts.
    pub policy_version: u64,
    /// Rollouts.
    pub rollouts: u32,
    /// Correct rollouts.
    pub successes: u32,
    /// Mean reward.
    pub mean_reward: f32,
    /// Tier after this observation.
    pub tier_after: u8,
}

/// What `observe` learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObserveSummary {
    /// Share of groups that were all correct or all wrong.
    pub not_valid_rate: f64,
    /// Clamped `1 / (1 − not_valid_rate)`.
    pub expansion_ratio: f64,
    /// EMA of the expansion ratio after this iteration.
    pub expansion_ratio_ema: f64,
    /// Whether the ratio hit its clamp (nearly all solved or unsolved): selection
    /// still works, but the ratio EMA cannot expand further.
    pub saturated: bool,
    /// Indices (into the observed groups) kept for training.
    pub kept: Vec<usize>,
    /// How many kept groups carry a learning signal.
    pub kept_mixed: usize,
    /// DAPO only: prompts to roll out in a top-up round of the same iteration
    /// ([`Curriculum::select_more`]); 0 when the batch is full or the round cap is hit.
    pub resample: usize,
    /// Samples per tier name (including `unseen`) after the update.
    pub tier_counts: Vec<(String, usize)>,
    /// Sampling weight per tier bucket, for samplers that have one.
    pub tier_weights: Option<Vec<f64>>,
    /// The pass rate the sampler aims at, for samplers that move one
    /// ([`crate::Sampler::target_pass_rate`]).
    pub target_pass_rate: Option<f64>,
    /// History records to append, one per observed group.
    pub observations: Vec<Observation>,
}

/// DAPO's per-iteration top-up bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DapoRound {
    /// Iteration the counters belong to.
    pub iteration: Option<u32>,
    /// Mixed groups kept so far in this iteration.
    pub kept: usize,
    /// Top-up rounds observed so far in this iteration.
    pub rounds: u32,
}

/// Everything needed to continue a curriculum bit-identically (serde). Large pools
/// serialise best with a binary format (bincode: about 65 B per sample: entry, statistics, sampler index); with JSON,
/// exact float round trips need serde_json's `float_roundtrip` feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurriculumState {
    /// The config.
    pub config: CurriculumConfig,
    /// Domain names.
    pub domains: Vec<String>,
    /// The pool.
    pub entries: Vec<PoolEntry>,
    /// Statistics, parallel to `entries`.
    pub stats: Vec<SampleStats>,
    /// The sampler (RNG and indexes included).
    pub sampler: SamplerState,
    /// The ratio EMA.
    pub ratio: RatioEma,
    /// Groups kept per iteration (B).
    pub batch_size: usize,
    /// Last observed iteration.
    pub iteration: u32,
    /// Offline-tier generation.
    pub generation: u64,
    /// DAPO bookkeeping.
    pub dapo: DapoRound,
    /// Pool indices selected in the current iteration so far, sorted.
    pub selected: Vec<u32>,
}

impl CurriculumState {
    /// The state as bytes (bincode), for checkpoints.
    pub fn encode(&self) -> Result<Vec<u8>, CurriculumError> {
        bincode::serialize(self)
            .map_err(|e| CurriculumError::BadState(format!("cannot encode: {e}")))
    }

    /// A state from [`encode`](Self::encode)'s bytes; damaged bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, CurriculumError> {
        bincode::deserialize(bytes)
            .map_err(|e| CurriculumError::BadState(format!("cannot decode: {e}")))
    }
}

/// A pool's curriculum: statistics per sample, a sampler, the ratio EMA.
///
/// Sized for 10 million samples: about 44 B of statistics, 16 B of pool entry, 12 B of
/// id index and 12 B of sampler index per sample ([`Curriculum::heap_bytes`]);
/// `select` and `observe` cost O(batch), not O(pool).
pub struct Curriculum {
    config: CurriculumConfig,
    entries: Vec<PoolEntry>,
    /// Sample ids, sorted, and the pool index of each.
    ids: Vec<SampleId>,
    idx: Vec<u32>,
    stats: Vec<SampleStats>,
    domains: Vec<String>,
    sampler: Box<dyn Sampler>,
    ratio: RatioEma,
    batch_size: usize,
    /// Samples per tier bucket (tiers, then unseen).
    tier_count: Vec<usize>,
    iteration: u32,
    generation: u64,
    dapo: DapoRound,
    /// Pool indices selected since the last [`Curriculum::select`]: top-up rounds
    /// ([`Curriculum::select_more`]) draw others.
    selected: HashSet<u32>,
}

struct PoolIndex {
    ids: Vec<SampleId>,
    idx: Vec<u32>,
    sizes: Vec<usize>,
}

fn index_pool(entries: &[PoolEntry], domains: usize) -> Result<PoolIndex, CurriculumError> {
    if entries.len() >= u32::MAX as usize {
        return Err(CurriculumError::Config(format!(
            "pool of {} samples exceeds the 4 billion limit",
            entries.len()
        )));
    }
    let mut sizes = vec![0usize; domains];
    for e in entries {
        match sizes.get_mut(e.domain as usize) {
            Some(s) => *s += 1,
            None => {
                return Err(CurriculumError::BadDomain {
                    id: e.id,
                    domain: e.domain,
                    domains,
                })
            }
        }
    }
    let mut pairs: Vec<(SampleId, u32)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id, i as u32))
        .collect();
    pairs.sort_unstable();
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(CurriculumError::DuplicateSample(w[0].0));
    }
    let ids = pairs.iter().map(|p| p.0).collect();
    let idx = pairs.iter().map(|p| p.1).collect();
    Ok(PoolIndex { ids, idx, sizes })
}

fn bucket(tier: u8, tiers: usize) -> usize {
    if tier == UNSEEN || tier as usize >= tiers {
        tiers
    } else {
        tier as usize
    }
}

impl Curriculum {
    /// A curriculum over `entries` (domain indices into `domains`), keeping `batch_size`
    /// groups per iteration, seeded with `seed`.
    pub fn new(
        config: CurriculumConfig,
        domains: Vec<String>,
        entries: Vec<PoolEntry>,
        batch_size: usize,
        seed: u64,
    ) -> Result<Self, CurriculumError> {
        config.validate().map_err(CurriculumError::Config)?;
        let PoolIndex { ids, idx, sizes } = index_pool(&entries, domains.len())?;
        let sampler = sampler_by_name(config.sampler, &config, seed, &domains, &sizes);
        let mut tier_count = vec![0usize; config.tiers.len() + 1];
        tier_count[config.tiers.len()] = entries.len();
        Ok(Curriculum {
            ratio: RatioEma::new(config.expansion.clone()),
            stats: vec![SampleStats::default(); entries.len()],
            config,
            entries,
            ids,
            idx,
            domains,
            sampler,
            batch_size,
            tier_count,
            iteration: 0,
            generation: 0,
            dapo: DapoRound::default(),
            selected: HashSet::new(),
        })
    }

    fn lookup(&self, id: SampleId) -> Option<usize> {
        self.ids
            .binary_search(&id)
            .ok()
            .map(|k| self.idx[k] as usize)
    }

    /// The samples to roll out next (`ceil(ema · B)`, or B for DAPO) and how many
    /// groups to keep.
    pub fn select(&mut self) -> Selection {
        let n = if self.config.sampler == SamplerKind::Dapo {
            self.batch_size
        } else {
            self.ratio.rollout_count(self.batch_size)
        };
        let view = pool_view!(self);
        let picked = self.sampler.select(n, &view);
        self.selected.clear();
        self.selected.extend(picked.iter().map(|&i| i as u32));
        self.selection(&picked)
    }

    /// The selection of pool indices `picked`.
    fn selection(&self, picked: &[usize]) -> Selection {
        Selection {
            samples: picked.iter().map(|&i| self.entries[i].id).collect(),
            keep: self.batch_size.min(picked.len()),
        }
    }

    /// Up to `n` more samples for a top-up round of the current iteration (DAPO),
    /// none of them selected since the last [`select`](Self::select): every sample
    /// is rolled out at most once per iteration. Fewer (possibly none) when the
    /// sampler keeps offering samples already taken or the pool is used up.
    pub fn select_more(&mut self, n: usize) -> Selection {
        let mut picked: Vec<usize> = Vec::with_capacity(n);
        // Epoch-ordered samplers may offer many taken samples before a new one: each
        // draw asks for twice the last, up to one pass over the pool in all.
        let mut budget = self.entries.len() + n;
        let mut ask = n;
        for _ in 0..MAX_TOPUP_DRAWS {
            let want = (n - picked.len()).max(ask).min(budget);
            if picked.len() == n || self.selected.len() >= self.entries.len() || want == 0 {
                break;
            }
            budget -= want;
            ask = want.saturating_mul(2);
            let view = pool_view!(self);
            let got = self.sampler.select(want, &view);
            if got.is_empty() {
                break;
            }
            for i in got {
                if picked.len() < n && self.selected.insert(i as u32) {
                    picked.push(i);
                }
            }
        }
        self.selection(&picked)
    }

    /// `min(n, pool)` distinct samples from the sampler, ignoring the ratio EMA and
    /// what this iteration already took (benchmarks; top-up rounds use
    /// [`select_more`](Self::select_more)).
    pub fn select_n(&mut self, n: usize) -> Selection {
        let view = pool_view!(self);
        let picked = self.sampler.select(n, &view);
        self.selection(&picked)
    }

    /// Records the scored groups of `iteration`, updates tiers, the sampler and the
    /// ratio EMA, and picks the groups to train on: the B most balanced with expansion
    /// on, the first B without, and for DAPO only mixed groups (asking for a top-up
    /// round through [`ObserveSummary::resample`] while the batch is short).
    pub fn observe(
        &mut self,
        iteration: u32,
        groups: &[GroupOutcome],
    ) -> Result<ObserveSummary, CurriculumError> {
        // Resolve every id first, so an error leaves the curriculum untouched.
        let indices = groups
            .iter()
            .map(|g| {
                self.lookup(g.sample)
                    .ok_or(CurriculumError::UnknownSample(g.sample))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tiers = self.config.tiers.len();
        let decay = self.config.pass_ema_decay;
        let mut observed = Vec::with_capacity(groups.len());
        let mut observations = Vec::with_capacity(groups.len());
        for (g, &i) in groups.iter().zip(&indices) {
            let s = &mut self.stats[i];
            let tier_before = self.config.tiers.current(s);
            s.record(
                iteration,
                g.policy_version.min(u32::MAX as u64) as u32,
                g.rollouts,
                g.successes,
                decay,
            );
            if self.config.pass_at_k > 0 {
                s.last_pass_at_k = pass_at_k(g.rollouts, g.successes, self.config.pass_at_k);
            }
            s.record_signal(g.mean_abs_advantage, g.mean_response_len, decay);
            let tier_after = self.config.tiers.current(s);
            s.tier = tier_after;
            self.tier_count[bucket(tier_before, tiers)] -= 1;
            self.tier_count[bucket(tier_after, tiers)] += 1;
            observed.push(ObservedGroup {
                index: i,
                tier_before,
                tier_after,
                successes: g.successes,
                rollouts: g.rollouts,
                mean_abs_advantage: g.mean_abs_advantage,
            });
            observations.push(Observation {
                sample: g.sample,
                iteration,
                policy_version: g.policy_version,
                rollouts: g.rollouts,
                successes: g.successes,
                mean_reward: g.mean_reward,
                tier_after,
            });
        }
        self.iteration = iteration;
        let view = pool_view!(self);
        self.sampler.observe(&observed, &view);
        let not_valid = observed.iter().filter(|g| !g.is_mixed()).count();
        let not_valid_rate = if observed.is_empty() {
            0.0
        } else {
            not_valid as f64 / observed.len() as f64
        };
        self.ratio.update(not_valid_rate);
        let mut resample = 0;
        let kept = if self.config.sampler == SamplerKind::Dapo {
            if self.dapo.iteration != Some(iteration) {
                self.dapo = DapoRound {
                    iteration: Some(iteration),
                    kept: 0,
                    rounds: 0,
                };
            } else {
                self.dapo.rounds += 1;
            }
            let need = self.batch_size.saturating_sub(self.dapo.kept);
            let kept: Vec<usize> = (0..observed.len())
                .filter(|&k| observed[k].is_mixed())
                .take(need)
                .collect();
            self.dapo.kept += kept.len();
            let missing = self.batch_size.saturating_sub(self.dapo.kept);
            if missing > 0 && self.dapo.rounds < self.config.dapo.max_rounds && !self.is_empty() {
                let over = if not_valid_rate >= 1.0 {
                    f64::INFINITY
                } else {
                    1.0 / (1.0 - not_valid_rate)
                };
                let over = over.min(self.config.dapo.max_oversample);
                resample = ((missing as f64 * over).ceil() as usize).min(self.entries.len());
            }
            kept
        } else if self.ratio.enabled() {
            let counts: Vec<(u32, u32)> =
                groups.iter().map(|g| (g.successes, g.rollouts)).collect();
            balanced_selection(&counts, self.batch_size)
        } else {
            (0..groups.len().min(self.batch_size)).collect()
        };
        let kept_mixed = kept.iter().filter(|&&k| observed[k].is_mixed()).count();
        Ok(ObserveSummary {
            not_valid_rate,
            expansion_ratio: self.ratio.expansion_ratio,
            expansion_ratio_ema: self.ratio.expansion_ratio_ema,
            saturated: self.ratio.saturated,
            kept,
            kept_mixed,
            resample,
            tier_counts: self.tier_counts(),
            tier_weights: self.sampler.tier_weights(),
            target_pass_rate: self.sampler.target_pass_rate(),
            observations,
        })
    }

    fn set_offline(&mut self, updates: &[(usize, u8)]) {
        let tiers = self.config.tiers.len();
        for &(i, t) in updates {
            let s = &mut self.stats[i];
            let before = self.config.tiers.current(s);
            s.offline_tier = t;
            let after = self.config.tiers.current(s);
            s.tier = after;
            self.tier_count[bucket(before, tiers)] -= 1;
            self.tier_count[bucket(after, tiers)] += 1;
        }
        // Samplers rebuild their indexes on the next select.
        self.generation += 1;
    }

    /// Sets offline tiers (from a grade stage or an earlier run); [`UNSEEN`] clears one.
    /// Validates all entries before changing any. Returns how many were set.
    pub fn set_offline_tiers(
        &mut self,
        tiers: &[(SampleId, u8)],
    ) -> Result<usize, CurriculumError> {
        let n = self.config.tiers.len();
        let updates = tiers
            .iter()
            .map(|&(id, t)| {
                let i = self.lookup(id).ok_or(CurriculumError::UnknownSample(id))?;
                if t != UNSEEN && t as usize >= n {
                    return Err(CurriculumError::BadTier {
                        id,
                        tier: t,
                        tiers: n,
                    });
                }
                Ok((i, t))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.set_offline(&updates);
        Ok(updates.len())
    }

    /// Sets offline tiers from offline pass rates (e.g. pass@k of reference models),
    /// through the tier cut-offs. Validates all entries before changing any.
    pub fn set_offline_pass_rates(
        &mut self,
        rates: &[(SampleId, f32)],
    ) -> Result<usize, CurriculumError> {
        let updates = rates
            .iter()
            .map(|&(id, p)| {
                let i = self.lookup(id).ok_or(CurriculumError::UnknownSample(id))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(CurriculumError::BadPassRate { id, pass: p });
                }
                Ok((i, self.config.tiers.tier_of(p)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.set_offline(&updates);
        Ok(updates.len())
    }

    /// Samples per tier name, easiest first, then `unseen` (kept up to date
    /// incrementally: O(tiers)).
    pub fn tier_counts(&self) -> Vec<(String, usize)> {
        let tiers = &self.config.tiers;
        self.tier_count
            .iter()
            .enumerate()
            .map(|(b, &c)| {
                let name = if b < tiers.len() {
                    tiers.names[b].clone()
                } else {
                    "unseen".to_string()
                };
                (name, c)
            })
            .collect()
    }

    /// The full state, to continue later with [`Curriculum::restore`].
    pub fn save(&self) -> CurriculumState {
        CurriculumState {
            config: self.config.clone(),
            domains: self.domains.clone(),
            entries: self.entries.clone(),
            stats: self.stats.clone(),
            sampler: self.sampler.save(),
            ratio: self.ratio.clone(),
            batch_size: self.batch_size,
            iteration: self.iteration,
            generation: self.generation,
            dapo: self.dapo.clone(),
            selected: {
                let mut v: Vec<u32> = self.selected.iter().copied().collect();
                v.sort_unstable();
                v
            },
        }
    }

    /// A curriculum continuing exactly where `state` was saved.
    pub fn restore(state: CurriculumState) -> Result<Self, CurriculumError> {
        let CurriculumState {
            config,
            domains,
            entries,
            stats,
            sampler,
            ratio,
            batch_size,
            iteration,
            generation,
            dapo,
            selected,
        } = state;
        config.validate().map_err(CurriculumError::Config)?;
        if stats.len() != entries.len() {
            return Err(CurriculumError::BadState(format!(
                "{} statistics for {} pool entries",
                stats.len(),
                entries.len()
            )));
        }
        if sampler.kind() != config.sampler {
            return Err(CurriculumError::BadState(format!(
                "sampler state is {:?} but the config names {:?}",
                sampler.kind().name(),
                config.sampler.name()
            )));
        }
        let PoolIndex { ids, idx, .. } = index_pool(&entries, domains.len())?;
        let n_entries = entries.len();
        let tiers = config.tiers.len();
        let mut tier_count = vec![0usize; tiers + 1];
        for s in &stats {
            tier_count[bucket(config.tiers.current(s), tiers)] += 1;
        }
        Ok(Curriculum {
            config,
            entries,
            ids,
            idx,
            stats,
            domains,
            sampler: sampler.into_sampler(),
            ratio,
            batch_size,
            tier_count,
            iteration,
            generation,
            dapo,
            selected: selected
                .into_iter()
                .filter(|&i| (i as usize) < n_entries)
                .collect(),
        })
    }

    /// Statistics of one sample.
    pub fn stats(&self, id: SampleId) -> Option<&SampleStats> {
        self.lookup(id).map(|i| &self.stats[i])
    }

    /// Statistics of the whole pool, parallel to [`Curriculum::entries`].
    pub fn all_stats(&self) -> &[SampleStats] {
        &self.stats
    }

    /// The pool.
    pub fn entries(&self) -> &[PoolEntry] {
        &self.entries
    }

    /// Domain names.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// The config.
    pub fn config(&self) -> &CurriculumConfig {
        &self.config
    }

    /// Groups kept per iteration (B).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The current ratio EMA.
    pub fn ratio(&self) -> &RatioEma {
        &self.ratio
    }

    /// The sampler's name.
    pub fn sampler_name(&self) -> &'static str {
        self.sampler.name()
    }

    /// Number of samples in the pool.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Heap bytes held (pool, id index, statistics, sampler indexes): divide by
    /// [`Curriculum::len`] for memory per sample.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<PoolEntry>()
            + self.ids.capacity() * 8
            + self.idx.capacity() * 4
            + self.stats.capacity() * std::mem::size_of::<SampleStats>()
            + self.sampler.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize, domains: u16) -> Vec<PoolEntry> {
        (0..n)
            .map(|i| PoolEntry {
                id: 1000 + i as u64,
                domain: (i as u16) % domains,
            })
            .collect()
    }

    fn curriculum(kind: SamplerKind, n: usize, b: usize, seed: u64) -> Curriculum {
        Curriculum::new(
            CurriculumConfig::with_sampler(kind),
            vec!["a".into(), "b".into()],
            pool(n, 2),
            b,
            seed,
        )
        .unwrap()
    }

    fn outcome(id: SampleId, successes: u32) -> GroupOutcome {
        GroupOutcome::new(id, 8, successes, 1)
    }

    #[test]
    fn not_valid_rate_and_expansion_follow_groups() {
        let mut c = curriculum(SamplerKind::Rlcs, 100, 10, 1);
        let sel = c.select();
        assert_eq!(sel.samples.len(), 10);
        // Half the groups all-correct or all-wrong.
        let groups: Vec<_> = sel
            .samples
            .iter()
            .enumerate()
            .map(|(k, &id)| outcome(id, [0, 8, 4, 3, 5][k % 5]))
            .collect();
        let o = c.observe(1, &groups).unwrap();
        assert!((o.not_valid_rate - 0.4).abs() < 1e-12);
        assert!((o.expansion_ratio - 1.0 / 0.6).abs() < 1e-12);
        // The EMA starts at the first observed ratio (warm start).
        assert!((o.expansion_ratio_ema - 1.0 / 0.6).abs() < 1e-12);
        assert_eq!(c.select().samples.len(), 17);
        assert_eq!(o.kept_mixed, 6);
    }

    #[test]
    fn rlcs_moves_away_from_solved_samples() {
        // In both domains half the samples are always solved and half are 50/50:
        // after a few iterations RLCS should favour the mixed ones.
        let mut c = curriculum(SamplerKind::Rlcs, 400, 20, 3);
        let mut late_mixed = 0.0;
        for it in 0..30 {
            let sel = c.select();
            let groups: Vec<_> = sel
                .samples
                .iter()
                .map(|&id| outcome(id, if id % 4 < 2 { 8 } else { 4 }))
                .collect();
            if it >= 20 {
                late_mixed +=
                    groups.iter().filter(|g| g.successes == 4).count() as f64 / groups.len() as f64;
            }
            c.observe(it, &groups).unwrap();
        }
        assert!(
            late_mixed / 10.0 > 0.7,
            "share of mixed samples {late_mixed}"
        );
    }

    #[test]
    fn rlcs_respects_domain_proportions() {
        let mut config = CurriculumConfig::with_sampler(SamplerKind::Rlcs);
        config.rlcs.domain_weights = [("a".to_string(), 3.0), ("b".to_string(), 1.0)]
            .into_iter()
            .collect();
        config.expansion.enabled = false;
        let mut c =
            Curriculum::new(config, vec!["a".into(), "b".into()], pool(4000, 2), 200, 5).unwrap();
        let mut a = 0usize;
        for _ in 0..5 {
            a += c.select().samples.iter().filter(|id| *id % 2 == 0).count();
        }
        let share = a as f64 / 1000.0;
        assert!((share - 0.75).abs() < 0.05, "domain a share {share}");
    }

    #[test]
    fn unknown_and_duplicate_samples_are_errors() {
        let mut c = curriculum(SamplerKind::Uniform, 10, 4, 1);
        assert_eq!(
            c.observe(0, &[outcome(5, 1)]),
            Err(CurriculumError::UnknownSample(5))
        );
        let mut p = pool(3, 1);
        p[2].id = p[0].id;
        assert!(matches!(
            Curriculum::new(Default::default(), vec!["a".into()], p, 2, 0),
            Err(CurriculumError::DuplicateSample(_))
        ));
        assert!(matches!(
            Curriculum::new(Default::default(), vec!["a".into()], pool(3, 2), 2, 0),
            Err(CurriculumError::BadDomain { .. })
        ));
    }

    #[test]
    fn uniform_visits_every_sample_once_per_epoch() {
        let mut c = curriculum(SamplerKind::Uniform, 30, 10, 9);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 {
            for id in c.select().samples {
                assert!(seen.insert(id));
            }
        }
        assert_eq!(seen.len(), 30);
    }

    #[test]
    fn offline_tiers_set_tiers_until_online_overrides() {
        let mut c = curriculum(SamplerKind::Rlcs, 10, 4, 1);
        assert_eq!(c.set_offline_tiers(&[(1000, 4), (1001, 2)]), Ok(2));
        assert_eq!(c.stats(1000).map(|s| s.tier), Some(4));
        let counts = c.tier_counts();
        assert_eq!(counts[4], ("very_hard".to_string(), 1));
        assert_eq!(counts[5], ("unseen".to_string(), 8));
        assert_eq!(
            c.set_offline_tiers(&[(1002, 9)]),
            Err(CurriculumError::BadTier {
                id: 1002,
                tier: 9,
                tiers: 5
            })
        );
        assert_eq!(c.set_offline_pass_rates(&[(1002, 0.95)]), Ok(1));
        assert_eq!(c.stats(1002).map(|s| s.tier), Some(0));
        assert!(matches!(
            c.set_offline_pass_rates(&[(1003, f32::NAN)]),
            Err(CurriculumError::BadPassRate { .. })
        ));
        c.observe(1, &[outcome(1000, 8)]).unwrap();
        assert_eq!(c.stats(1000).map(|s| s.tier), Some(0));
        let total: usize = c.tier_counts().iter().map(|t| t.1).sum();
        assert_eq!(total, 10);
    }

    #[test]
    fn dapo_keeps_mixed_groups_and_tops_up_with_a_cap() {
        let mut c = curriculum(SamplerKind::Dapo, 200, 10, 2);
        let sel = c.select();
        assert_eq!(sel.samples.len(), 10);
        // Even ids solved, odd ids mixed.
        let grade = |ids: &[SampleId]| -> Vec<GroupOutcome> {
            ids.iter()
                .map(|&id| outcome(id, if id % 2 == 0 { 8 } else { 3 }))
                .collect()
        };
        let o = c.observe(0, &grade(&sel.samples)).unwrap();
        assert!(o.kept.iter().all(|&k| sel.samples[k] % 2 == 1));
        let mut kept = o.kept.len();
        let mut resample = o.resample;
        let mut rounds = 0;
        while resample > 0 {
            rounds += 1;
            let more = c.select_n(resample);
            let o = c.observe(0, &grade(&more.samples)).unwrap();
            kept += o.kept.len();
            resample = o.resample;
        }
        assert!(rounds <= 3);
        assert_eq!(kept, 10);
        // An all-solved pool stops after the cap with a short batch.
        let mut c = curriculum(SamplerKind::Dapo, 50, 10, 2);
        let sel = c.select();
        let mut o = c
            .observe(
                0,
                &sel.samples
                    .iter()
                    .map(|&id| outcome(id, 8))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        let mut rounds = 0;
        while o.resample > 0 {
            rounds += 1;
            let more = c.select_n(o.resample);
            o = c
                .observe(
                    0,
                    &more
                        .samples
                        .iter()
                        .map(|&id| outcome(id, 8))
                        .collect::<Vec<_>>(),
                )
                .unwrap();
            assert!(o.kept.is_empty());
        }
        assert_eq!(rounds, 3);
    }

    #[test]
    fn saturation_is_reported_not_fatal() {
        let mut c = curriculum(SamplerKind::Rlcs, 100, 10, 4);
        let mut last = None;
        for it in 0..50 {
            let sel = c.select();
            assert!(sel.samples.len() >= 10 && sel.samples.len() <= 40);
            let groups: Vec<_> = sel.samples.iter().map(|&id| outcome(id, 8)).collect();
            last = Some(c.observe(it, &groups).unwrap());
        }
        let o = last.unwrap();
        assert!(o.saturated);
        assert_eq!(o.kept.len(), 10);
        assert_eq!(o.kept_mixed, 0);
    }
}
