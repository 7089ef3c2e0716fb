//! The curriculum: a pool, its statistics, a sampler and the ratio EMA.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::expansion::{balanced_selection, ExpansionConfig, RatioEma};
use crate::samplers::{
    sampler_by_name, ObservedGroup, PoolView, RlcsConfig, RlcsSampler, Sampler, SamplerKind,
};
use crate::stats::{SampleStats, TierConfig};
use crate::SampleId;

/// One sample of the train pool as the curriculum knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolEntry {
    /// Stable sample id.
    pub id: SampleId,
    /// Domain index (into the curriculum's domain names).
    pub domain: u16,
}

/// Curriculum settings (the `[curriculum]` table of an experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CurriculumConfig {
    /// Which sampler picks prompts.
    pub sampler: SamplerKind,
    /// Decay of the per-sample EMA pass rate.
    pub pass_ema_decay: f32,
    /// Difficulty tiers.
    pub tiers: TierConfig,
    /// Ratio-EMA dynamic sampling expansion.
    pub expansion: ExpansionConfig,
    /// RLCS settings (used when `sampler = "rlcs"`).
    pub rlcs: RlcsConfig,
}

impl Default for CurriculumConfig {
    fn default() -> Self {
        CurriculumConfig {
            sampler: SamplerKind::Rlcs,
            pass_ema_decay: 0.5,
            tiers: TierConfig::default(),
            expansion: ExpansionConfig::default(),
            rlcs: RlcsConfig::default(),
        }
    }
}

impl CurriculumConfig {
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
        self.rlcs.validate(self.tiers.len())
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
    /// Whether the ratio hit its clamp (nearly all solved or unsolved).
    pub saturated: bool,
    /// Indices (into the observed groups) kept for training.
    pub kept: Vec<usize>,
    /// How many kept groups carry a learning signal.
    pub kept_mixed: usize,
    /// Samples per tier name (including `unseen`) after the update.
    pub tier_counts: Vec<(String, usize)>,
    /// Sampling weight per tier bucket, for samplers that have one.
    pub tier_weights: Option<Vec<f64>>,
    /// History records to append, one per observed group.
    pub observations: Vec<Observation>,
}

/// A pool's curriculum: statistics per sample, a sampler, the ratio EMA.
pub struct Curriculum {
    config: CurriculumConfig,
    entries: Vec<PoolEntry>,
    index: HashMap<SampleId, usize>,
    stats: Vec<SampleStats>,
    domains: Vec<String>,
    sampler: Box<dyn Sampler>,
    ratio: RatioEma,
    batch_size: usize,
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
        let mut index = HashMap::with_capacity(entries.len());
        let mut sizes = vec![0usize; domains.len()];
        for (i, e) in entries.iter().enumerate() {
            if index.insert(e.id, i).is_some() {
                return Err(CurriculumError::DuplicateSample(e.id));
            }
            match sizes.get_mut(e.domain as usize) {
                Some(s) => *s += 1,
                None => {
                    return Err(CurriculumError::BadDomain {
                        id: e.id,
                        domain: e.domain,
                        domains: domains.len(),
                    })
                }
            }
        }
        let sampler: Box<dyn Sampler> = match config.sampler {
            SamplerKind::Rlcs => {
                let mut s = RlcsSampler::new(seed, config.rlcs.clone(), config.tiers.len());
                s.set_domain_shares(RlcsSampler::resolve_domain_shares(
                    &config.rlcs,
                    &domains,
                    &sizes,
                ));
                Box::new(s)
            }
            kind => sampler_by_name(kind, seed, &config.rlcs, entries.len(), config.tiers.len()),
        };
        Ok(Curriculum {
            ratio: RatioEma::new(config.expansion.clone()),
            stats: vec![SampleStats::default(); entries.len()],
            config,
            entries,
            index,
            domains,
            sampler,
            batch_size,
        })
    }

    /// The samples to roll out next and how many groups to keep.
    pub fn select(&mut self) -> Selection {
        let n = self.ratio.rollout_count(self.batch_size);
        let view = PoolView {
            entries: &self.entries,
            stats: &self.stats,
            tiers: &self.config.tiers,
            domains: self.domains.len(),
        };
        let picked = self.sampler.select(n, &view);
        Selection {
            samples: picked.iter().map(|&i| self.entries[i].id).collect(),
            keep: self.batch_size.min(picked.len()),
        }
    }

    /// Records the scored groups of `iteration`, updates tiers, the sampler and the
    /// ratio EMA, and picks the groups to train on.
    pub fn observe(
        &mut self,
        iteration: u32,
        groups: &[GroupOutcome],
    ) -> Result<ObserveSummary, CurriculumError> {
        let mut observed = Vec::with_capacity(groups.len());
        let mut observations = Vec::with_capacity(groups.len());
        for g in groups {
            let &i = self
                .index
                .get(&g.sample)
                .ok_or(CurriculumError::UnknownSample(g.sample))?;
            let tier_before = self.config.tiers.current(&self.stats[i]);
            let s = &mut self.stats[i];
            s.record(
                iteration,
                g.policy_version.min(u32::MAX as u64) as u32,
                g.rollouts,
                g.successes,
                self.config.pass_ema_decay,
            );
            let tier_after = self.config.tiers.current(s);
            s.tier = tier_after;
            observed.push(ObservedGroup {
                index: i,
                tier_before,
                successes: g.successes,
                rollouts: g.rollouts,
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
        let view = PoolView {
            entries: &self.entries,
            stats: &self.stats,
            tiers: &self.config.tiers,
            domains: self.domains.len(),
        };
        self.sampler.observe(&observed, &view);
        let not_valid = observed.iter().filter(|g| !g.is_mixed()).count();
        let not_valid_rate = if observed.is_empty() {
            0.0
        } else {
            not_valid as f64 / observed.len() as f64
        };
        self.ratio.update(not_valid_rate);
        let counts: Vec<(u32, u32)> = groups.iter().map(|g| (g.successes, g.rollouts)).collect();
        let kept = if self.ratio.enabled() {
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
            tier_counts: self.tier_counts(),
            tier_weights: self.sampler.tier_weights(),
            observations,
        })
    }

    /// Samples per tier name, easiest first, then `unseen`.
    pub fn tier_counts(&self) -> Vec<(String, usize)> {
        let tiers = &self.config.tiers;
        let mut counts = vec![0usize; tiers.len() + 1];
        for s in &self.stats {
            let t = tiers.current(s);
            let b = if (t as usize) < tiers.len() {
                t as usize
            } else {
                tiers.len()
            };
            counts[b] += 1;
        }
        counts
            .into_iter()
            .enumerate()
            .map(|(b, c)| {
                let name = if b < tiers.len() {
                    tiers.names[b].clone()
                } else {
                    "unseen".to_string()
                };
                (name, c)
            })
            .collect()
    }

    /// Statistics of one sample.
    pub fn stats(&self, id: SampleId) -> Option<&SampleStats> {
        self.index.get(&id).map(|&i| &self.stats[i])
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
        let config = CurriculumConfig {
            sampler: kind,
            ..Default::default()
        };
        Curriculum::new(config, vec!["a".into(), "b".into()], pool(n, 2), b, seed).unwrap()
    }

    fn outcome(id: SampleId, successes: u32) -> GroupOutcome {
        GroupOutcome {
            sample: id,
            rollouts: 8,
            successes,
            mean_reward: successes as f32 / 8.0,
            policy_version: 1,
        }
    }

    #[test]
    fn every_sampler_is_deterministic_distinct_and_sized() {
        for kind in [SamplerKind::Uniform, SamplerKind::Rlcs] {
            for (n, b) in [(0, 4), (1, 4), (3, 4), (100, 16), (100, 100)] {
                let mut c1 = curriculum(kind, n, b, 7);
                let mut c2 = curriculum(kind, n, b, 7);
                for it in 0..5 {
                    let expected = c1.ratio().rollout_count(b).min(n);
                    let s1 = c1.select();
                    let s2 = c2.select();
                    assert_eq!(s1, s2, "{kind:?} pool {n} not deterministic");
                    assert_eq!(s1.samples.len(), expected);
                    assert_eq!(s1.keep, b.min(n));
                    let mut seen = std::collections::HashSet::new();
                    assert!(
                        s1.samples.iter().all(|id| seen.insert(*id)),
                        "repeat in batch"
                    );
                    let groups: Vec<_> = s1
                        .samples
                        .iter()
                        .map(|&id| outcome(id, (id % 9) as u32))
                        .collect();
                    let o1 = c1.observe(it, &groups).unwrap();
                    let o2 = c2.observe(it, &groups).unwrap();
                    assert_eq!(o1, o2);
                    assert_eq!(o1.kept.len(), b.min(groups.len()));
                }
            }
        }
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
        assert!(o.expansion_ratio_ema > 1.0);
        assert_eq!(c.select().samples.len(), 11);
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
}
