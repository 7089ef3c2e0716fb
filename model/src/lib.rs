//! # rlcs-model
//!
//! The policies an rlcs run trains and samples from, behind one [`Policy`] trait:
//!
//! - [`sim::SimulatedLearner`]: a latent-skill model of a learner, for studying
//!   curricula over many samples in seconds. It answers in the GLM format, so the
//!   real verifiers score it.
//! - [`vlm::Vlm`] (feature `torch`): a small GLM-4.1V-style vision-language model on
//!   libtorch — a ViT with 2D-RoPE, a 2×2 patch-merging MLP projector and a decoder
//!   with 3D-RoPE — with KV-cache generation, force answering, packed next-token
//!   training and GRPO with clip-higher.
//!
//! The tensor-free parts live here whatever the features: the [`tokenizer`], the
//! sequence packer and learning-rate schedule ([`pack`]), and the model's
//! [`config`] (so experiment files validate in builds without libtorch).
#![deny(missing_docs)]

pub mod config;
pub mod gpu;
pub mod pack;
pub mod sim;
pub mod tokenizer;
#[cfg(feature = "torch")]
pub mod torch;
#[cfg(feature = "torch")]
pub mod vlm;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An RGB image handed to a policy. The pixels are shared, not copied, between the
/// prompts and rollouts that refer to them.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width · height · 3` bytes, row-major RGB.
    pub rgb: Arc<[u8]>,
}

impl std::fmt::Debug for PromptImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PromptImage({}x{})", self.width, self.height)
    }
}

/// A prompt as a policy sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// Stable sample id.
    pub sample_id: u64,
    /// Domain name.
    pub domain: String,
    /// Prompt text.
    pub text: String,
    /// Gold answer. Real models never read it; the simulated learner uses it to
    /// write a right or a plausible wrong answer.
    pub gold: String,
    /// What a correct response puts in its answer box (the simulated learner's right
    /// answer; empty means `gold`).
    pub answer: String,
    /// Plausible wrong answers (the simulated learner's mistakes; empty means it makes
    /// its own from `gold`).
    pub wrong_answers: Vec<String>,
    /// Difficulty knob the sample was generated with, in `[0, 1]`.
    pub difficulty: f32,
    /// Images the prompt shows, in order.
    #[serde(default)]
    pub images: Vec<PromptImage>,
    /// Whether `images` are the frames of one video rather than separate images.
    #[serde(default)]
    pub video: bool,
}

/// Sampling settings for one group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GenerationParams {
    /// Rollouts in the group (G).
    pub group_size: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Nucleus sampling threshold (the paper uses 1.0).
    pub top_p: f32,
    /// Seed of this group's randomness.
    pub seed: u64,
}

/// One sampled response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// The prompt's sample id.
    pub sample_id: u64,
    /// Index within its group.
    pub index: u32,
    /// The full response text.
    pub response: String,
    /// Version of the policy that produced it.
    pub policy_version: u64,
    /// Response length in tokens.
    pub tokens: u32,
    /// Whether force answering closed the thinking.
    pub force_answered: bool,
    /// The response's token ids (empty for policies without tokens, such as the
    /// simulated learner).
    #[serde(default)]
    pub token_ids: Vec<u32>,
    /// Log-probability of each token under the policy that sampled it.
    #[serde(default)]
    pub logprobs: Vec<f32>,
    /// Whether each token is trained on: tokens inserted by force answering are not.
    #[serde(default)]
    pub loss_mask: Vec<bool>,
}

/// A group with its rewards, as the learner trains on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainGroup {
    /// The prompt.
    pub prompt: Prompt,
    /// Its rollouts.
    pub rollouts: Vec<Rollout>,
    /// Reward of each rollout, parallel to `rollouts`.
    pub rewards: Vec<f32>,
}

/// What one learner step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Policy version after the step.
    pub policy_version: u64,
    /// Groups trained on.
    pub groups: usize,
    /// Groups that carried a learning signal (rewards not all equal).
    pub groups_with_signal: usize,
    /// Loss or learning-signal magnitude of the step.
    pub loss: f64,
}

/// Policy parameters handed from the learner to replicas. The bytes move once, by
/// shared reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Policy version these weights belong to.
    pub version: u64,
    /// Encoded parameters (format chosen by the policy).
    pub bytes: Arc<Vec<u8>>,
}

impl Weights {
    /// The weights as one byte string: the 8-byte little-endian version, then the
    /// parameter bytes (what stage checkpoints hold; [`Weights::decode`] reads it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.bytes.len());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.bytes);
        out
    }

    /// Reads bytes written by [`Weights::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Weights, ModelError> {
        let (head, rest) = bytes.split_at_checked(8).ok_or(ModelError::BadWeights {
            version: 0,
            reason: format!("{} bytes hold no version header", bytes.len()),
        })?;
        let mut v = [0u8; 8];
        v.copy_from_slice(head);
        Ok(Weights {
            version: u64::from_le_bytes(v),
            bytes: Arc::new(rest.to_vec()),
        })
    }
}

/// A next-token (supervised) training example: a prompt (images and text) and a
/// response. Pretraining trains on the prompt's text too; SFT on the response only.
#[derive(Debug, Clone)]
pub struct LmExample {
    /// The prompt.
    pub prompt: Prompt,
    /// The response text; `<|endoftext|>` is appended.
    pub response: String,
    /// Also train on the prompt's text tokens (pretraining); SFT trains on the
    /// response only.
    pub train_prompt: bool,
    /// Weight of this example's mean token loss in the batch loss.
    pub weight: f32,
}

/// Errors from policies.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Weights could not be decoded.
    #[error("cannot decode weights of version {version}: {reason}")]
    BadWeights {
        /// Version claimed.
        version: u64,
        /// What went wrong.
        reason: String,
    },
    /// A config value is invalid.
    #[error("invalid model config: {0}")]
    Config(String),
    /// Rewards and rollouts disagree in length.
    #[error("group of sample {sample_id:#018x} has {rollouts} rollouts but {rewards} rewards")]
    RaggedGroup {
        /// The sample.
        sample_id: u64,
        /// Rollouts.
        rollouts: usize,
        /// Rewards.
        rewards: usize,
    },
    /// The policy cannot do what was asked (e.g. supervised training of the
    /// simulated learner).
    #[error("{policy} does not support {what}")]
    Unsupported {
        /// The policy.
        policy: String,
        /// What it was asked.
        what: String,
    },
}

/// A trainable policy: samples groups of responses, takes learner steps, and hands
/// its weights to replicas.
pub trait Policy: Send {
    /// Version of the current parameters; every step increments it.
    fn version(&self) -> u64;
    /// Samples `params.group_size` responses to `prompt`.
    fn generate(
        &mut self,
        prompt: &Prompt,
        params: &GenerationParams,
    ) -> Result<Vec<Rollout>, ModelError>;
    /// One optimisation step on `batch`.
    fn train_step(&mut self, batch: &[TrainGroup]) -> Result<StepStats, ModelError>;
    /// One supervised (next-token) optimisation step on `batch`: the pretraining and
    /// SFT stages. `groups` of the returned stats counts the examples. Policies that
    /// cannot learn from text (the simulated learner) answer
    /// [`ModelError::Unsupported`], the default.
    fn train_supervised(&mut self, batch: &[LmExample]) -> Result<StepStats, ModelError> {
        let _ = batch;
        Err(ModelError::Unsupported {
            policy: "this policy".into(),
            what: "supervised training (pretrain and sft stages)".into(),
        })
    }
    /// The current parameters.
    fn export_weights(&self) -> Result<Weights, ModelError>;
    /// Replaces the parameters.
    fn import_weights(&mut self, weights: &Weights) -> Result<(), ModelError>;

    /// Everything needed to continue training exactly where the policy is now: its
    /// parameters and, for policies that have one, the optimiser state. The default
    /// is the weights (8-byte little-endian version, then the weight bytes), right for
    /// policies whose weights are their whole training state.
    fn save_state(&self) -> Result<Vec<u8>, ModelError> {
        Ok(self.export_weights()?.encode())
    }

    /// Continues from bytes written by [`save_state`](Policy::save_state).
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), ModelError> {
        self.import_weights(&Weights::decode(bytes)?)
    }
}

/// GRPO advantages of one group: `(r_i − mean) / std`; all zeros when the rewards are
/// all equal (such a group carries no learning signal).
pub fn grpo_advantages(rewards: &[f32]) -> Vec<f32> {
    let n = rewards.len();
    if n == 0 {
        return Vec::new();
    }
    let mean = rewards.iter().sum::<f32>() / n as f32;
    let var = rewards.iter().map(|r| (r - mean) * (r - mean)).sum::<f32>() / n as f32;
    let std = var.sqrt();
    if std < 1e-6 {
        return vec![0.0; n];
    }
    rewards.iter().map(|r| (r - mean) / std).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advantages_are_normalised_and_zero_for_uniform_groups() {
        let a = grpo_advantages(&[1.0, 0.0, 1.0, 0.0]);
        assert_eq!(a, vec![1.0, -1.0, 1.0, -1.0]);
        assert_eq!(grpo_advantages(&[1.0; 8]), vec![0.0; 8]);
        assert!(grpo_advantages(&[]).is_empty());
    }
}
