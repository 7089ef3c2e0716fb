//! Dynamic sampling expansion via a ratio EMA (GLM-4.1V-Thinking, §RLCS), and the
//! balanced selection that follows rollout.

use serde::{Deserialize, Serialize};

/// Settings of the ratio EMA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpansionConfig {
    /// Whether to roll out more prompts than the batch and keep the most balanced.
    pub enabled: bool,
    /// EMA decay of the expansion ratio (default 0.9).
    pub ema_decay: f64,
    /// Upper clamp of `1 / (1 − not_valid_rate)` (default 4).
    pub max_ratio: f64,
    /// Start the EMA at the first observed ratio instead of at 1 (default true).
    /// Without it the EMA needs about `1 / (1 − ema_decay)` iterations to warm up, and
    /// the first iterations train on batches as unfiltered as without expansion.
    pub warm_start: bool,
}

impl Default for ExpansionConfig {
    fn default() -> Self {
        ExpansionConfig {
            enabled: true,
            ema_decay: 0.9,
            max_ratio: 4.0,
            warm_start: true,
        }
    }
}

impl ExpansionConfig {
    /// Checks the values; returns a message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(format!(
                "expansion.ema_decay must lie in [0, 1), got {}",
                self.ema_decay
            ));
        }
        if !(self.max_ratio >= 1.0 && self.max_ratio <= 64.0) {
            return Err(format!(
                "expansion.max_ratio must lie in [1, 64], got {}",
                self.max_ratio
            ));
        }
        Ok(())
    }
}

/// The ratio EMA: `not_valid_rate` is the share of prompt groups whose rollouts were
/// all correct or all wrong; `expansion_ratio = 1 / (1 − not_valid_rate)`, clamped to
/// `[1, max_ratio]`; its EMA sets how many prompts the next iteration rolls out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatioEma {
    config: ExpansionConfig,
    /// Last observed share of groups with no learning signal.
    pub not_valid_rate: f64,
    /// Last clamped expansion ratio.
    pub expansion_ratio: f64,
    /// EMA of the expansion ratio (starts at 1).
    pub expansion_ratio_ema: f64,
    /// Whether the last ratio hit the clamp (nearly everything solved or unsolved).
    pub saturated: bool,
    /// Ratios observed so far.
    #[serde(default)]
    pub updates: u64,
}

impl RatioEma {
    /// A fresh EMA at 1.
    pub fn new(config: ExpansionConfig) -> Self {
        RatioEma {
            config,
            not_valid_rate: 0.0,
            expansion_ratio: 1.0,
            expansion_ratio_ema: 1.0,
            saturated: false,
            updates: 0,
        }
    }

    /// Feeds the last iteration's `not_valid_rate` (clamped into [0, 1]).
    pub fn update(&mut self, not_valid_rate: f64) {
        let nv = if not_valid_rate.is_nan() {
            0.0
        } else {
            not_valid_rate.clamp(0.0, 1.0)
        };
        let max = self.config.max_ratio;
        let raw = if nv >= 1.0 {
            f64::INFINITY
        } else {
            1.0 / (1.0 - nv)
        };
        self.saturated = raw >= max;
        self.not_valid_rate = nv;
        self.expansion_ratio = raw.clamp(1.0, max);
        let d = if self.updates == 0 && self.config.warm_start {
            0.0
        } else {
            self.config.ema_decay
        };
        self.updates += 1;
        self.expansion_ratio_ema = d * self.expansion_ratio_ema + (1.0 - d) * self.expansion_ratio;
    }

    /// How many prompts to roll out for a kept batch of `batch_size`:
    /// `ceil(ema · B)` when enabled, else `B`.
    pub fn rollout_count(&self, batch_size: usize) -> usize {
        if !self.config.enabled {
            return batch_size;
        }
        // The small epsilon keeps 1.0000000001 · B from rounding up a whole prompt.
        ((self.expansion_ratio_ema * batch_size as f64) - 1e-9)
            .ceil()
            .max(batch_size as f64) as usize
    }

    /// Whether expansion is on.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }
}

/// Indices of the `keep` groups whose correct/incorrect counts are most balanced,
/// given `(successes, rollouts)` per group. Ties keep the earlier group, so the result
/// is deterministic. Returned in ascending index order.
pub fn balanced_selection(groups: &[(u32, u32)], keep: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    // |successes − failures| / rollouts: 0 is perfectly balanced, 1 is all one way.
    let imbalance = |&(s, n): &(u32, u32)| -> u64 {
        if n == 0 {
            return u64::MAX;
        }
        let diff = (2 * s as i64 - n as i64).unsigned_abs();
        // Compare diff/n exactly across different n by scaling to a common grid.
        diff * 1_000_000 / n as u64
    };
    order.sort_by_key(|&i| (imbalance(&groups[i]), i));
    order.truncate(keep);
    order.sort_unstable();
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_follows_the_paper_formula() {
        let mut r = RatioEma::new(ExpansionConfig {
            ema_decay: 0.0,
            ..Default::default()
        });
        r.update(0.5);
        assert_eq!(r.expansion_ratio, 2.0);
        assert_eq!(r.expansion_ratio_ema, 2.0);
        assert_eq!(r.rollout_count(32), 64);
        r.update(0.0);
        assert_eq!(r.rollout_count(32), 32);
    }

    #[test]
    fn everything_solved_saturates_without_error() {
        let mut r = RatioEma::new(ExpansionConfig::default());
        for _ in 0..200 {
            r.update(1.0);
        }
        assert!(r.saturated);
        assert!(r.expansion_ratio_ema <= 4.0 + 1e-9);
        assert_eq!(r.rollout_count(10), 40);
        r.update(f64::NAN);
        assert!(r.expansion_ratio_ema.is_finite());
    }

    #[test]
    fn ema_moves_gradually() {
        let mut r = RatioEma::new(ExpansionConfig {
            warm_start: false,
            ..Default::default()
        });
        r.update(0.5);
        assert!((r.expansion_ratio_ema - 1.1).abs() < 1e-12);
        assert_eq!(r.rollout_count(10), 11);
    }

    #[test]
    fn warm_start_begins_at_the_first_ratio() {
        let mut r = RatioEma::new(ExpansionConfig::default());
        r.update(0.5);
        assert_eq!(r.expansion_ratio_ema, 2.0);
        r.update(0.0);
        assert!((r.expansion_ratio_ema - 1.9).abs() < 1e-12);
    }

    #[test]
    fn disabled_expansion_rolls_out_the_batch() {
        let mut r = RatioEma::new(ExpansionConfig {
            enabled: false,
            ..Default::default()
        });
        r.update(0.9);
        assert_eq!(r.rollout_count(16), 16);
    }

    #[test]
    fn balanced_selection_prefers_mixed_groups() {
        let groups = [(8, 8), (4, 8), (0, 8), (1, 8), (7, 8), (5, 8)];
        assert_eq!(balanced_selection(&groups, 3), vec![1, 3, 5]);
        assert_eq!(balanced_selection(&groups, 10).len(), 6);
        assert_eq!(balanced_selection(&groups, 0), Vec::<usize>::new());
    }
}
