//! The simulated learner: a latent-skill model of an RL-trained policy.
//!
//! Each domain has a skill; each sample a latent difficulty (from its difficulty knob
//! plus seeded noise) and a familiarity that grows when the learner trains on it.
//! A rollout is correct with probability
//! `sigmoid(skill[domain] + familiarity[sample] − difficulty[sample])`.
//! A learner step raises each domain's skill in proportion to the learning signal of
//! its groups — groups whose rewards are all equal teach nothing, as in GRPO — passes
//! a share to other domains through a transfer matrix, and raises the familiarity of
//! the trained samples (memorisation), so revisiting solved samples wastes rollouts.

use std::collections::{BTreeMap, HashMap};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{
    GenerationParams, ModelError, Policy, Prompt, Rollout, StepStats, TrainGroup, Weights,
};

/// Parameters of the simulated learner (the `[sim]` table of an experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Starting skill of every domain not listed in `domain_skill`.
    pub initial_skill: f64,
    /// Starting skill per domain.
    pub domain_skill: BTreeMap<String, f64>,
    /// Latent difficulty is `difficulty_scale · (difficulty − 0.5) + noise`.
    pub difficulty_scale: f64,
    /// Standard deviation of the per-sample latent difficulty noise.
    pub difficulty_noise: f64,
    /// Skill gained per step when every group of the batch carries full signal.
    pub learning_rate: f64,
    /// Familiarity a sample gains per unit of learning signal it is trained with.
    pub memorization: f64,
    /// Share of a domain's skill gain passed to other domains: `transfer.from.to`.
    pub transfer: BTreeMap<String, BTreeMap<String, f64>>,
    /// Probability that a response is malformed (fails the format gate).
    pub malformed_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            initial_skill: -1.0,
            domain_skill: BTreeMap::new(),
            difficulty_scale: 6.0,
            difficulty_noise: 1.0,
            learning_rate: 0.1,
            memorization: 1.0,
            transfer: BTreeMap::new(),
            malformed_rate: 0.02,
        }
    }
}

impl SimConfig {
    /// Checks every value; the message names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        let finite = [
            ("initial_skill", self.initial_skill),
            ("difficulty_scale", self.difficulty_scale),
            ("difficulty_noise", self.difficulty_noise),
            ("learning_rate", self.learning_rate),
            ("memorization", self.memorization),
        ];
        for (k, v) in finite {
            if !v.is_finite() {
                return Err(format!("sim.{k} must be finite, got {v}"));
            }
        }
        for (k, v) in [
            ("difficulty_noise", self.difficulty_noise),
            ("learning_rate", self.learning_rate),
            ("memorization", self.memorization),
        ] {
            if v < 0.0 {
                return Err(format!("sim.{k} must be non-negative, got {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.malformed_rate) {
            return Err(format!(
                "sim.malformed_rate must lie in [0, 1], got {}",
                self.malformed_rate
            ));
        }
        for (from, row) in &self.transfer {
            for (to, v) in row {
                if !(v.is_finite() && (0.0..=1.0).contains(v)) {
                    return Err(format!(
                        "sim.transfer.{from}.{to} must lie in [0, 1], got {v}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The learner's state: what its weights encode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SimState {
    version: u64,
    skill: BTreeMap<String, f64>,
    familiarity: HashMap<u64, f64>,
}

/// A simulated policy (learner or replica: both hold the same state).
#[derive(Debug, Clone)]
pub struct SimulatedLearner {
    config: SimConfig,
    seed: u64,
    state: SimState,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SimulatedLearner {
    /// A learner with the config's starting skills; `seed` fixes the latent
    /// difficulties.
    pub fn new(config: SimConfig, seed: u64) -> Result<Self, ModelError> {
        config.validate().map_err(ModelError::Config)?;
        let skill = config.domain_skill.clone();
        Ok(SimulatedLearner {
            config,
            seed,
            state: SimState {
                version: 0,
                skill,
                familiarity: HashMap::new(),
            },
        })
    }

    /// Current skill of a domain.
    pub fn skill(&self, domain: &str) -> f64 {
        self.state
            .skill
            .get(domain)
            .copied()
            .unwrap_or(self.config.initial_skill)
    }

    /// Latent difficulty of a sample: its knob, scaled, plus seeded Gaussian noise.
    pub fn latent_difficulty(&self, prompt: &Prompt) -> f64 {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, prompt.sample_id));
        // Box–Muller.
        let u1: f64 = rng.random::<f64>().max(1e-12);
        let u2: f64 = rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let d = if prompt.difficulty.is_finite() {
            prompt.difficulty.clamp(0.0, 1.0) as f64
        } else {
            0.5
        };
        self.config.difficulty_scale * (d - 0.5) + self.config.difficulty_noise * z
    }

    /// Probability that a rollout of `prompt` is correct (at temperature 1).
    pub fn p_correct(&self, prompt: &Prompt) -> f64 {
        self.p_correct_at(prompt, 1.0)
    }

    /// Probability that a rollout of `prompt` sampled at `temperature` is correct:
    /// the latent logit (skill + familiarity − difficulty) divided by the
    /// temperature, as sampling divides a model's logits; at 0 (greedy) the answer
    /// is right exactly when the logit is positive.
    pub fn p_correct_at(&self, prompt: &Prompt, temperature: f32) -> f64 {
        let fam = self
            .state
            .familiarity
            .get(&prompt.sample_id)
            .copied()
            .unwrap_or(0.0);
        let logit = self.skill(&prompt.domain) + fam - self.latent_difficulty(prompt);
        if temperature > 0.0 {
            sigmoid(logit / f64::from(temperature))
        } else if logit > 0.0 {
            1.0
        } else {
            0.0
        }
    }

    /// An integer gold gets a fresh offset per rollout; any other gold one of the
    /// prompt's wrong answers (or the gold with a character appended when it has none).
    fn wrong_answer(prompt: &Prompt, rng: &mut ChaCha8Rng) -> String {
        let gold = &prompt.gold;
        if let Ok(g) = gold.trim().parse::<i64>() {
            let mut off = rng.random_range(1..=10i64);
            if rng.random::<bool>() {
                off = -off;
            }
            return g.saturating_add(off).to_string();
        }
        if prompt.wrong_answers.is_empty() {
            return format!("{gold}x");
        }
        let k = rng.random_range(0..prompt.wrong_answers.len());
        prompt.wrong_answers[k].clone()
    }

    fn respond(prompt: &Prompt, correct: bool, malformed: bool, rng: &mut ChaCha8Rng) -> String {
        let answer = if correct {
            if prompt.answer.is_empty() {
                prompt.gold.clone()
            } else {
                prompt.answer.clone()
            }
        } else {
            Self::wrong_answer(prompt, rng)
        };
        let think = "Let me work through the problem step by step.";
        if malformed {
            return match rng.random_range(0..3) {
                // Thinking never closed.
                0 => format!("<think>{think} The answer is {answer}"),
                // Two boxes.
                1 => format!(
                    "<think>{think}</think><answer><|begin_of_box|>{answer}<|end_of_box|> or <|begin_of_box|>{}<|end_of_box|></answer>",
                    Self::wrong_answer(prompt, rng)
                ),
                // LaTeX box instead of box tokens.
                _ => format!("<think>{think}</think><answer>\\boxed{{{answer}}}</answer>"),
            };
        }
        format!("<think>{think}</think><answer>The answer is <|begin_of_box|>{answer}<|end_of_box|></answer>")
    }
}

impl Policy for SimulatedLearner {
    fn version(&self) -> u64 {
        self.state.version
    }

    fn generate(
        &mut self,
        prompt: &Prompt,
        params: &GenerationParams,
    ) -> Result<Vec<Rollout>, ModelError> {
        let p = self.p_correct_at(prompt, params.temperature);
        // Greedy decoding (temperature 0) follows one path: every rollout of the
        // group is the first one's response.
        let greedy = params.temperature <= 0.0;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let mut first: Option<String> = None;
        Ok((0..params.group_size)
            .map(|i| {
                let response = match &first {
                    Some(r) if greedy => r.clone(),
                    _ => {
                        let correct = rng.random::<f64>() < p;
                        let malformed = rng.random::<f64>() < self.config.malformed_rate;
                        let r = Self::respond(prompt, correct, malformed, &mut rng);
                        if greedy {
                            first = Some(r.clone());
                        }
                        r
                    }
                };
                Rollout {
                    sample_id: prompt.sample_id,
                    index: i as u32,
                    tokens: (response.len() / 4) as u32,
                    response,
                    policy_version: self.state.version,
                    force_answered: false,
                    token_ids: Vec::new(),
                    logprobs: Vec::new(),
                    loss_mask: Vec::new(),
                }
            })
            .collect())
    }

    fn train_supervised(&mut self, _batch: &[crate::LmExample]) -> Result<StepStats, ModelError> {
        Err(ModelError::Unsupported {
            policy: "the simulated learner".into(),
            what: "supervised training (pretrain and sft stages need policy.backend = \"tch\")"
                .into(),
        })
    }

    fn train_step(&mut self, batch: &[TrainGroup]) -> Result<StepStats, ModelError> {
        let mut gain: BTreeMap<String, f64> = BTreeMap::new();
        let mut with_signal = 0;
        let mut total_signal = 0.0;
        for g in batch {
            if g.rewards.len() != g.rollouts.len() {
                return Err(ModelError::RaggedGroup {
                    sample_id: g.prompt.sample_id,
                    rollouts: g.rollouts.len(),
                    rewards: g.rewards.len(),
                });
            }
            let n = g.rewards.len().max(1) as f64;
            let mean = g.rewards.iter().map(|&r| r as f64).sum::<f64>() / n;
            // 2·mean|r − r̄|: 4p(1−p) for binary rewards, 0 when all rewards agree.
            let signal = 2.0
                * g.rewards
                    .iter()
                    .map(|&r| (r as f64 - mean).abs())
                    .sum::<f64>()
                / n;
            if signal > 1e-9 {
                with_signal += 1;
            }
            total_signal += signal;
            *gain.entry(g.prompt.domain.clone()).or_default() += signal;
            *self
                .state
                .familiarity
                .entry(g.prompt.sample_id)
                .or_default() += self.config.memorization * signal;
        }
        let b = batch.len().max(1) as f64;
        let mut deltas: BTreeMap<String, f64> = BTreeMap::new();
        for (domain, s) in &gain {
            let d = self.config.learning_rate * s / b;
            *deltas.entry(domain.clone()).or_default() += d;
            if let Some(row) = self.config.transfer.get(domain) {
                for (to, share) in row {
                    if to != domain {
                        *deltas.entry(to.clone()).or_default() += share * d;
                    }
                }
            }
        }
        for (domain, d) in deltas {
            let s = self.skill(&domain) + d;
            self.state.skill.insert(domain, s);
        }
        self.state.version += 1;
        Ok(StepStats {
            policy_version: self.state.version,
            groups: batch.len(),
            groups_with_signal: with_signal,
            loss: total_signal / b,
        })
    }

    fn export_weights(&self) -> Result<Weights, ModelError> {
        let bytes = bincode::serialize(&self.state).map_err(|e| ModelError::BadWeights {
            version: self.state.version,
            reason: e.to_string(),
        })?;
        Ok(Weights {
            version: self.state.version,
            bytes: std::sync::Arc::new(bytes),
        })
    }

    fn import_weights(&mut self, weights: &Weights) -> Result<(), ModelError> {
        let state: SimState =
            bincode::deserialize(&weights.bytes).map_err(|e| ModelError::BadWeights {
                version: weights.version,
                reason: e.to_string(),
            })?;
        if state.version != weights.version {
            return Err(ModelError::BadWeights {
                version: weights.version,
                reason: format!("payload holds version {}", state.version),
            });
        }
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(id: u64, difficulty: f32) -> Prompt {
        Prompt {
            sample_id: id,
            domain: "arithmetic".into(),
            text: "Compute 1 + 2.".into(),
            answer: String::new(),
            wrong_answers: Vec::new(),
            gold: "3".into(),
            difficulty,
            images: Vec::new(),
            video: false,
        }
    }

    fn params(seed: u64) -> GenerationParams {
        GenerationParams {
            group_size: 8,
            temperature: 1.0,
            top_p: 1.0,
            seed,
        }
    }

    fn group(l: &mut SimulatedLearner, id: u64, rewards: Vec<f32>) -> TrainGroup {
        let p = prompt(id, 0.5);
        let rollouts = l
            .generate(
                &p,
                &GenerationParams {
                    group_size: rewards.len(),
                    ..params(1)
                },
            )
            .unwrap();
        TrainGroup {
            prompt: p,
            rollouts,
            rewards,
        }
    }

    #[test]
    fn generation_is_seeded() {
        let mut a = SimulatedLearner::new(SimConfig::default(), 1).unwrap();
        let mut b = SimulatedLearner::new(SimConfig::default(), 1).unwrap();
        assert_eq!(
            a.generate(&prompt(5, 0.5), &params(9)).unwrap(),
            b.generate(&prompt(5, 0.5), &params(9)).unwrap()
        );
    }

    #[test]
    fn temperature_sharpens_and_zero_decodes_greedily() {
        let config = SimConfig {
            malformed_rate: 0.0,
            ..SimConfig::default()
        };
        let mut l = SimulatedLearner::new(config, 1).unwrap();
        let (mut right, mut wrong) = (0, 0);
        for id in 0..64 {
            let p = prompt(id, 0.5);
            let (cold, warm) = (l.p_correct_at(&p, 0.25), l.p_correct(&p));
            // Lower temperature pushes the chance of success away from one half.
            assert!((cold - 0.5).abs() >= (warm - 0.5).abs(), "{cold} {warm}");
            let greedy = l
                .generate(
                    &p,
                    &GenerationParams {
                        temperature: 0.0,
                        ..params(id)
                    },
                )
                .unwrap();
            // One path: every rollout says the same, right exactly when p > 1/2.
            assert!(greedy.iter().all(|r| r.response == greedy[0].response));
            assert_eq!(greedy.len(), 8);
            assert!(greedy.iter().enumerate().all(|(i, r)| r.index == i as u32));
            let correct = greedy[0]
                .response
                .contains("<|begin_of_box|>3<|end_of_box|>");
            assert_eq!(correct, warm > 0.5, "{warm}: {}", greedy[0].response);
            if correct {
                right += 1;
            } else {
                wrong += 1;
            }
        }
        assert!(right > 0 && wrong > 0, "{right} {wrong}");
    }

    #[test]
    fn harder_samples_are_solved_less_often() {
        let l = SimulatedLearner::new(SimConfig::default(), 1).unwrap();
        let mean = |d: f32| (0..200).map(|i| l.p_correct(&prompt(i, d))).sum::<f64>() / 200.0;
        assert!(mean(0.0) > mean(0.5));
        assert!(mean(0.5) > mean(1.0));
    }

    #[test]
    fn only_mixed_groups_teach() {
        let mut l = SimulatedLearner::new(SimConfig::default(), 1).unwrap();
        let before = l.skill("arithmetic");
        let batch = vec![
            group(&mut l, 1, vec![1.0; 8]),
            group(&mut l, 2, vec![0.0; 8]),
        ];
        let s = l.train_step(&batch).unwrap();
        assert_eq!(s.groups_with_signal, 0);
        assert_eq!(l.skill("arithmetic"), before);
        assert_eq!(l.version(), 1);
        let batch = vec![group(&mut l, 3, vec![1.0, 0.0, 1.0, 0.0])];
        let s = l.train_step(&batch).unwrap();
        assert_eq!(s.groups_with_signal, 1);
        assert!(l.skill("arithmetic") > before);
        // Memorisation: the trained sample got easier than an untrained twin.
        let mut forgetful = l.clone();
        forgetful.state.familiarity.clear();
        assert!(l.p_correct(&prompt(3, 0.5)) > forgetful.p_correct(&prompt(3, 0.5)));
    }

    #[test]
    fn transfer_moves_other_domains() {
        let mut config = SimConfig::default();
        config
            .transfer
            .insert("arithmetic".into(), [("ocr".to_string(), 0.5)].into());
        let mut l = SimulatedLearner::new(config, 1).unwrap();
        let batch = vec![group(&mut l, 3, vec![1.0, 0.0])];
        l.train_step(&batch).unwrap();
        let gain = l.skill("arithmetic") - SimConfig::default().initial_skill;
        let moved = l.skill("ocr") - SimConfig::default().initial_skill;
        assert!((moved - 0.5 * gain).abs() < 1e-12);
    }

    #[test]
    fn weights_round_trip_and_reject_garbage() {
        let mut l = SimulatedLearner::new(SimConfig::default(), 1).unwrap();
        let batch = vec![group(&mut l, 3, vec![1.0, 0.0])];
        l.train_step(&batch).unwrap();
        let w = l.export_weights().unwrap();
        let mut r = SimulatedLearner::new(SimConfig::default(), 1).unwrap();
        r.import_weights(&w).unwrap();
        assert_eq!(r.version(), 1);
        assert_eq!(r.skill("arithmetic"), l.skill("arithmetic"));
        let bad = Weights {
            version: 1,
            bytes: std::sync::Arc::new(vec![1, 2, 3]),
        };
        assert!(r.import_weights(&bad).is_err());
    }

    #[test]
    fn saved_state_continues_training_identically() {
        let mut l = SimulatedLearner::new(SimConfig::default(), 1).unwrap();
        let batch = vec![
            group(&mut l, 3, vec![1.0, 0.0]),
            group(&mut l, 4, vec![0.0, 1.0]),
        ];
        l.train_step(&batch).unwrap();
        let saved = l.save_state().unwrap();
        let mut r = SimulatedLearner::new(SimConfig::default(), 1).unwrap();
        r.load_state(&saved).unwrap();
        // Both continue with the same step and sample the same responses after it.
        let (a, b) = (l.train_step(&batch).unwrap(), r.train_step(&batch).unwrap());
        assert_eq!(a, b);
        let p = prompt(9, 0.4);
        assert_eq!(
            l.generate(&p, &params(7)).unwrap(),
            r.generate(&p, &params(7)).unwrap()
        );
        assert!(r.load_state(&saved[..5]).is_err());
        assert!(r.load_state(&[0u8; 12]).is_err());
    }

    #[test]
    fn ragged_groups_are_errors() {
        let mut l = SimulatedLearner::new(SimConfig::default(), 1).unwrap();
        let mut g = group(&mut l, 3, vec![1.0, 0.0]);
        g.rewards.pop();
        assert!(matches!(
            l.train_step(&[g]),
            Err(ModelError::RaggedGroup { .. })
        ));
    }

    #[test]
    fn bad_config_names_the_field() {
        let c = SimConfig {
            malformed_rate: 2.0,
            ..Default::default()
        };
        let err = SimulatedLearner::new(c, 0).unwrap_err().to_string();
        assert!(err.contains("sim.malformed_rate"), "{err}");
    }
}
