//! Per-sample statistics, difficulty tiers and the offline/online tier merge.

use serde::{Deserialize, Serialize};

/// Tier index used for samples with neither an online pass rate nor an offline tier.
pub const UNSEEN: u8 = u8::MAX;

const HAS_ADVANTAGE: u8 = 1;
const HAS_LENGTH: u8 = 2;

/// Online statistics of one sample. Kept small (44 bytes): the pool may hold 10 million.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleStats {
    /// Rollouts generated for this sample so far.
    pub attempts: u32,
    /// Rollouts judged correct so far.
    pub successes: u32,
    /// Groups (visits) observed so far.
    pub visits: u32,
    /// Exponential moving average of the per-visit pass rate.
    pub ema_pass: f32,
    /// Pass rate of the last group rolled out (pass@1 estimate of the last visit).
    pub last_pass: f32,
    /// Unbiased pass@k of the last group (k = the group size unless configured).
    pub last_pass_at_k: f32,
    /// EMA over visits of the group's mean |GRPO advantage| (valid when
    /// [`SampleStats::abs_advantage`] is `Some`).
    pub mean_abs_advantage: f32,
    /// EMA over visits of the group's mean response length in tokens (valid when
    /// [`SampleStats::response_len`] is `Some`).
    pub mean_response_len: f32,
    /// Iteration of the last visit.
    pub last_seen: u32,
    /// Policy version that produced the last visit's rollouts (saturating at `u32::MAX`).
    pub last_policy_version: u32,
    /// Offline tier (from grading or an earlier run), or [`UNSEEN`].
    pub offline_tier: u8,
    /// Current tier (offline and online merged by [`TierMerge`]), or [`UNSEEN`].
    pub tier: u8,
    /// Bit 0: `mean_abs_advantage` is set; bit 1: `mean_response_len` is set.
    pub flags: u8,
}

impl Default for SampleStats {
    fn default() -> Self {
        SampleStats {
            attempts: 0,
            successes: 0,
            visits: 0,
            ema_pass: 0.0,
            last_pass: 0.0,
            last_pass_at_k: 0.0,
            mean_abs_advantage: 0.0,
            mean_response_len: 0.0,
            last_seen: 0,
            last_policy_version: 0,
            offline_tier: UNSEEN,
            tier: UNSEEN,
            flags: 0,
        }
    }
}

/// Unbiased pass@k of a group of `n` rollouts with `c` correct (Chen et al. 2021):
/// `1 − C(n−c, k) / C(n, k)`; `k` is clamped to `1..=n`; 0 for an empty group.
pub fn pass_at_k(n: u32, c: u32, k: u32) -> f32 {
    if n == 0 {
        return 0.0;
    }
    let c = c.min(n);
    let k = k.clamp(1, n);
    if n - c < k {
        return 1.0;
    }
    // Π_{i=n−c+1}^{n} (1 − k/i), the numerically stable product form.
    let mut miss = 1.0f64;
    for i in (n - c + 1)..=n {
        miss *= 1.0 - k as f64 / i as f64;
    }
    (1.0 - miss) as f32
}

/// Mean |A_i| of GRPO advantages `A_i = (r_i − mean r) / std r` over one group's
/// rewards; 0 when the rewards are all equal (no learning signal) or the group is empty.
pub fn grpo_mean_abs_advantage(rewards: &[f64]) -> f32 {
    if rewards.is_empty() {
        return 0.0;
    }
    let n = rewards.len() as f64;
    let mean = rewards.iter().sum::<f64>() / n;
    let var = rewards.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / n;
    let std = var.sqrt();
    if std.is_nan() || std <= 1e-12 {
        return 0.0;
    }
    (rewards.iter().map(|r| (r - mean).abs()).sum::<f64>() / n / std) as f32
}

impl SampleStats {
    /// Records one group of `rollouts` rollouts with `successes` correct ones
    /// (`last_pass_at_k` uses k = the group size: whether any rollout was correct).
    pub fn record(
        &mut self,
        iteration: u32,
        policy_version: u32,
        rollouts: u32,
        successes: u32,
        ema_decay: f32,
    ) {
        let successes = successes.min(rollouts);
        let pass = if rollouts == 0 {
            0.0
        } else {
            successes as f32 / rollouts as f32
        };
        self.ema_pass = if self.visits == 0 {
            pass
        } else {
            ema_decay * self.ema_pass + (1.0 - ema_decay) * pass
        };
        self.attempts = self.attempts.saturating_add(rollouts);
        self.successes = self.successes.saturating_add(successes);
        self.visits = self.visits.saturating_add(1);
        self.last_pass = pass;
        self.last_pass_at_k = pass_at_k(rollouts, successes, rollouts);
        self.last_seen = iteration;
        self.last_policy_version = policy_version;
    }

    /// Folds a visit's mean |advantage| and mean response length (either optional)
    /// into their EMAs; the first value seen is taken as is.
    pub fn record_signal(
        &mut self,
        mean_abs_advantage: Option<f32>,
        mean_response_len: Option<f32>,
        ema_decay: f32,
    ) {
        let fold = |old: f32, new: f32, has: bool| {
            if has {
                ema_decay * old + (1.0 - ema_decay) * new
            } else {
                new
            }
        };
        if let Some(a) = mean_abs_advantage.filter(|a| a.is_finite()) {
            self.mean_abs_advantage =
                fold(self.mean_abs_advantage, a, self.flags & HAS_ADVANTAGE != 0);
            self.flags |= HAS_ADVANTAGE;
        }
        if let Some(l) = mean_response_len.filter(|l| l.is_finite()) {
            self.mean_response_len = fold(self.mean_response_len, l, self.flags & HAS_LENGTH != 0);
            self.flags |= HAS_LENGTH;
        }
    }

    /// EMA of the mean |advantage|, once any visit reported one.
    pub fn abs_advantage(&self) -> Option<f32> {
        (self.flags & HAS_ADVANTAGE != 0).then_some(self.mean_abs_advantage)
    }

    /// EMA of the mean response length, once any visit reported one.
    pub fn response_len(&self) -> Option<f32> {
        (self.flags & HAS_LENGTH != 0).then_some(self.mean_response_len)
    }
}

/// How a sample's offline tier and its online pass rate combine into its current tier.
/// Written in TOML as `merge = { online_after = { groups = 1 } }`,
/// `merge = { blend = { offline_weight = 0.3 } }`, `merge = "offline_only"` or
/// `merge = "online_only"` (externally tagged, so binary formats work too).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TierMerge {
    /// The offline tier until the sample has been observed in `groups` groups, then
    /// the online EMA pass rate alone (default, with `groups = 1`).
    OnlineAfter {
        /// Groups observed before the online pass rate overrides the offline tier.
        groups: u32,
    },
    /// The tier of `offline_weight · p_offline + (1 − offline_weight) · p_online`,
    /// where `p_offline` is the middle of the offline tier's pass-rate range; either
    /// side alone when the other is missing.
    Blend {
        /// Weight of the offline estimate, in [0, 1].
        offline_weight: f32,
    },
    /// Offline tier only; online results never change a sample's tier.
    OfflineOnly,
    /// Online pass rate only; offline tiers are ignored.
    OnlineOnly,
}

impl Default for TierMerge {
    fn default() -> Self {
        TierMerge::OnlineAfter { groups: 1 }
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
    /// Offline/online merge rule (default: online overrides after 1 group).
    #[serde(default)]
    pub merge: TierMerge,
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
            merge: TierMerge::default(),
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
        if let TierMerge::Blend { offline_weight } = self.merge {
            if !(0.0..=1.0).contains(&offline_weight) {
                return Err(format!(
                    "tiers.merge.offline_weight must lie in [0, 1], got {offline_weight}"
                ));
            }
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

    /// The middle of a tier's pass-rate range (`None` for [`UNSEEN`] or out of range).
    pub fn representative_pass(&self, tier: u8) -> Option<f32> {
        let t = tier as usize;
        let lo = *self.min_pass.get(t)?;
        let hi = if t == 0 { 1.0 } else { self.min_pass[t - 1] };
        Some(if t + 1 == self.min_pass.len() {
            lo // the last tier is "never solved": keep it at its floor
        } else {
            0.5 * (lo + hi)
        })
    }

    /// The name of a tier index (`unseen` for [`UNSEEN`]).
    pub fn name(&self, tier: u8) -> &str {
        self.names
            .get(tier as usize)
            .map(String::as_str)
            .unwrap_or("unseen")
    }

    /// A sample's merged pass-rate estimate under [`TierConfig::merge`]: the online EMA,
    /// the offline tier's representative pass rate, or a blend; `None` when unknown.
    pub fn pass_estimate(&self, s: &SampleStats) -> Option<f32> {
        let online = (s.visits > 0).then_some(s.ema_pass);
        let offline = self.representative_pass(s.offline_tier);
        match self.merge {
            TierMerge::OnlineAfter { groups } => {
                if s.visits > 0 && s.visits >= groups {
                    online
                } else {
                    offline.or(online)
                }
            }
            TierMerge::Blend { offline_weight: w } => match (offline, online) {
                (Some(o), Some(p)) => Some(w * o + (1.0 - w) * p),
                (o, p) => o.or(p),
            },
            TierMerge::OfflineOnly => offline,
            TierMerge::OnlineOnly => online,
        }
    }

    /// The current tier of a sample under [`TierConfig::merge`], or [`UNSEEN`].
    pub fn current(&self, s: &SampleStats) -> u8 {
        let online = s.visits > 0;
        match self.merge {
            TierMerge::OnlineAfter { groups }
                if !(online && s.visits >= groups)
                    && s.offline_tier != UNSEEN
                    && (s.offline_tier as usize) < self.len() =>
            {
                return s.offline_tier;
            }
            TierMerge::OfflineOnly => {
                return if (s.offline_tier as usize) < self.len() {
                    s.offline_tier
                } else {
                    UNSEEN
                }
            }
            _ => {}
        }
        match self.pass_estimate(s) {
            Some(p) if online || matches!(self.merge, TierMerge::Blend { .. }) => self.tier_of(p),
            _ => UNSEEN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_stats_fit_the_memory_budget() {
        assert!(std::mem::size_of::<SampleStats>() <= 64);
        assert_eq!(std::mem::size_of::<SampleStats>(), 44);
    }

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
    fn merge_rules() {
        let mut s = SampleStats {
            offline_tier: 4, // very hard offline
            ..Default::default()
        };
        s.record(1, 0, 8, 8, 0.5); // solved online
        let with = |merge| TierConfig {
            merge,
            ..Default::default()
        };
        assert_eq!(with(TierMerge::OnlineAfter { groups: 1 }).current(&s), 0);
        assert_eq!(with(TierMerge::OnlineAfter { groups: 2 }).current(&s), 4);
        assert_eq!(with(TierMerge::OfflineOnly).current(&s), 4);
        assert_eq!(with(TierMerge::OnlineOnly).current(&s), 0);
        // 0.5 · 0 + 0.5 · 1 = 0.5: medium.
        let blend = with(TierMerge::Blend {
            offline_weight: 0.5,
        });
        assert_eq!(blend.current(&s), 2);
        let fresh = SampleStats {
            offline_tier: 1,
            ..Default::default()
        };
        assert_eq!(blend.current(&fresh), 1);
        assert_eq!(with(TierMerge::OnlineOnly).current(&fresh), UNSEEN);
        let toml_like: TierMerge =
            serde_json::from_str(r#"{"online_after":{"groups":3}}"#).unwrap();
        assert_eq!(toml_like, TierMerge::OnlineAfter { groups: 3 });
        assert_eq!(
            serde_json::from_str::<TierMerge>(r#""offline_only""#).unwrap(),
            TierMerge::OfflineOnly
        );
        assert!(serde_json::from_str::<TierMerge>(r#"{"blend":{"w":3}}"#).is_err());
    }

    #[test]
    fn ema_starts_at_first_observation_then_blends() {
        let mut s = SampleStats::default();
        s.record(1, 0, 8, 4, 0.5);
        assert_eq!(s.ema_pass, 0.5);
        s.record(2, 1, 8, 8, 0.5);
        assert_eq!(s.ema_pass, 0.75);
        assert_eq!((s.attempts, s.successes, s.last_seen), (16, 12, 2));
        assert_eq!(s.abs_advantage(), None);
        s.record_signal(Some(1.0), None, 0.5);
        s.record_signal(Some(0.0), Some(100.0), 0.5);
        assert_eq!(s.abs_advantage(), Some(0.5));
        assert_eq!(s.response_len(), Some(100.0));
    }

    #[test]
    fn pass_at_k_matches_the_estimator() {
        assert_eq!(pass_at_k(8, 0, 4), 0.0);
        assert_eq!(pass_at_k(8, 8, 1), 1.0);
        assert!((pass_at_k(8, 2, 1) - 0.25).abs() < 1e-6);
        // 1 − C(6,2)/C(8,2) = 1 − 15/28
        assert!((pass_at_k(8, 2, 2) - (1.0 - 15.0 / 28.0)).abs() < 1e-6);
        assert_eq!(pass_at_k(8, 1, 8), 1.0);
        assert_eq!(pass_at_k(0, 0, 1), 0.0);
        let a = grpo_mean_abs_advantage(&[1.0, 0.0, 1.0, 0.0]);
        assert!((a - 1.0).abs() < 1e-6);
        assert_eq!(grpo_mean_abs_advantage(&[1.0, 1.0]), 0.0);
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
        let t = TierConfig {
            merge: TierMerge::Blend {
                offline_weight: 2.0,
            },
            ..Default::default()
        };
        assert!(t.validate().unwrap_err().contains("offline_weight"));
    }
}
