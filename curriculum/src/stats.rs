//! Per-sample statistics and difficulty tiers.

use serde::{Deserialize, Serialize};

/// Tier index used for samples with neither an online pass rate nor an offline tier.
pub const UNSEEN: u8 = u8::MAX;

/// Online statistics of one sample. Kept small: the pool may hold millions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleStats {
    /// Rollouts generated for this sample so far.
    pub attempts: u32,
    /// Rollouts judged correct so far.
    pub successes: u32,
    /// Exponential moving average of the per-iteration pass rate.
    pub ema_pass: f32,
    /// Pass rate of the last group rolled out (pass@1 estimate of the last visit).
    pub last_pass: f32,
    /// Iteration of the last visit.
    pub last_seen: u32,
    /// Policy version that produced the last visit's rollouts.
    pub last_policy_version: u32,
    /// Offline tier (from grading or an earlier run), or [`UNSEEN`].
    pub offline_tier: u8,
    /// Current tier, or [`UNSEEN`].
    pub tier: u8,
}

impl Default for SampleStats {
    fn default() -> Self {
        SampleStats {
            attempts: 0,
            successes: 0,
            ema_pass: 0.0,
            last_pass: 0.0,
            last_seen: 0,
            last_policy_version: 0,
            offline_tier: UNSEEN,
            tier: UNSEEN,
        }
    }
}

impl SampleStats {
    /// Records one group of `rollouts` rollouts with `successes` correct ones.
    pub fn record(
        &mut self,
        iteration: u32,
        policy_version: u32,
        rollouts: u32,
        successes: u32,
        ema_decay: f32,
    ) {
        let pass = if rollouts == 0 {
            0.0
        } else {
            successes as f32 / rollouts as f32
        };
        self.ema_pass = if self.attempts == 0 {
            pass
        } else {
            ema_decay * self.ema_pass + (1.0 - ema_decay) * pass
        };
        self.attempts = self.attempts.saturating_add(rollouts);
        self.successes = self.successes.saturating_add(successes);
        self.last_pass = pass;
        self.last_seen = iteration;
        self.last_policy_version = policy_version;
    }
}

/// Difficulty tiers by pass rate: a sample belongs to the first tier whose `min_pass`
/// its pass rate reaches. The default is the five tiers of the design:
/// very easy ≥ 0.9, easy [0.7, 0.9), medium [0.3, 0.7), hard (0, 0.3), very hard 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// Tier names, easiest first.
    pub names: Vec<String>,
    /// Lowest pass rate of each tier, descending; the last must be 0.
    pub min_pass: Vec<f32>,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            names: ["very_easy", "easy", "medium", "hard", "very_hard"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            // 1e-6 makes "hard" the open interval (0, 0.3): one success in any group
            // lifts a sample out of "very hard".
            min_pass: vec![0.9, 0.7, 0.3, 1e-6, 0.0],
        }
    }
}

impl TierConfig {
    /// Number of tiers.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no tiers (never true for a validated config).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Checks names and cut-offs agree; returns a message naming the problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.names.is_empty() || self.names.len() > 32 {
            return Err(format!(
                "tiers.names must hold 1 to 32 names, got {}",
                self.names.len()
            ));
        }
        if self.names.len() != self.min_pass.len() {
            return Err(format!(
                "tiers.names has {} entries but tiers.min_pass has {}",
                self.names.len(),
                self.min_pass.len()
            ));
        }
        if self.min_pass.windows(2).any(|w| w[0] <= w[1]) {
            return Err(format!(
                "tiers.min_pass must be strictly descending, got {:?}",
                self.min_pass
            ));
        }
        if self.min_pass.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return Err(format!(
                "tiers.min_pass values must lie in [0, 1], got {:?}",
                self.min_pass
            ));
        }
        if self.min_pass.last() != Some(&0.0) {
            return Err("tiers.min_pass must end with 0".to_string());
        }
        Ok(())
    }

    /// The tier of a pass rate.
    pub fn tier_of(&self, pass: f32) -> u8 {
        self.min_pass
            .iter()
            .position(|&m| pass >= m)
            .unwrap_or(self.min_pass.len().saturating_sub(1)) as u8
    }

    /// The name of a tier index (`unseen` for [`UNSEEN`]).
    pub fn name(&self, tier: u8) -> &str {
        self.names
            .get(tier as usize)
            .map(String::as_str)
            .unwrap_or("unseen")
    }

    /// The current tier of a sample: online pass rate once it has been rolled out,
    /// else its offline tier, else [`UNSEEN`].
    pub fn current(&self, s: &SampleStats) -> u8 {
        if s.attempts > 0 {
            self.tier_of(s.ema_pass)
        } else {
            s.offline_tier
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tiers_match_the_design() {
        let t = TierConfig::default();
        t.validate().unwrap();
        let cases = [
            (1.0, "very_easy"),
            (0.9, "very_easy"),
            (0.89, "easy"),
            (0.7, "easy"),
            (0.5, "medium"),
            (0.3, "medium"),
            (0.29, "hard"),
            (0.01, "hard"),
            (0.0, "very_hard"),
        ];
        for (p, name) in cases {
            assert_eq!(t.name(t.tier_of(p)), name, "pass rate {p}");
        }
    }

    #[test]
    fn unseen_sample_has_unseen_tier_until_observed() {
        let t = TierConfig::default();
        let mut s = SampleStats::default();
        assert_eq!(t.current(&s), UNSEEN);
        s.offline_tier = 2;
        assert_eq!(t.current(&s), 2);
        s.record(1, 0, 8, 8, 0.5);
        assert_eq!(t.name(t.current(&s)), "very_easy");
    }

    #[test]
    fn ema_starts_at_first_observation_then_blends() {
        let mut s = SampleStats::default();
        s.record(1, 0, 8, 4, 0.5);
        assert_eq!(s.ema_pass, 0.5);
        s.record(2, 1, 8, 8, 0.5);
        assert_eq!(s.ema_pass, 0.75);
        assert_eq!((s.attempts, s.successes, s.last_seen), (16, 12, 2));
    }

    #[test]
    fn bad_tier_configs_are_rejected() {
        let t = TierConfig {
            min_pass: vec![0.5, 0.7, 0.3, 0.1, 0.0],
            ..Default::default()
        };
        assert!(t.validate().unwrap_err().contains("descending"));
        let mut t = TierConfig::default();
        t.min_pass.pop();
        assert!(t.validate().unwrap_err().contains("entries"));
        let t = TierConfig {
            min_pass: vec![0.9, 0.7, 0.3, 0.1, 0.05],
            ..Default::default()
        };
        assert!(t.validate().unwrap_err().contains("must end with 0"));
    }
}
