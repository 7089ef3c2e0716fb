//! Configuration of the libtorch model — sizes, optimiser, GRPO, generation and
//! device — as plain serde types, so experiment files parse and validate whether or
//! not the binary was built with libtorch.

use serde::{Deserialize, Serialize};

use crate::pack::Schedule;
use crate::tokenizer::TokenizerSpec;
use crate::ModelError;

/// Sizes of the model (the `[tch.model]` table of an experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VlmConfig {
    /// Tokenizer.
    pub tokenizer: TokenizerSpec,
    /// Side of a square patch in pixels.
    pub patch_size: i64,
    /// How pixels become patch features: one linear map per patch, or a small
    /// stack of strided convolutions (a power-of-two `patch_size` is required).
    pub patch_stem: PatchStem,
    /// Longest image side after resizing, in pixels.
    pub max_image_side: i64,
    /// Vision encoder width.
    pub vision_dim: i64,
    /// Vision encoder blocks.
    pub vision_layers: i64,
    /// Vision encoder attention heads.
    pub vision_heads: i64,
    /// Decoder width.
    pub dim: i64,
    /// Decoder blocks.
    pub layers: i64,
    /// Decoder attention heads.
    pub heads: i64,
    /// Decoder SwiGLU width.
    pub mlp_hidden: i64,
    /// Rotary base.
    pub rope_theta: f64,
    /// Longest sequence (prompt and response) the model trains on.
    pub max_seq_len: usize,
}

impl Default for VlmConfig {
    fn default() -> Self {
        VlmConfig {
            tokenizer: TokenizerSpec::Chars,
            patch_size: 8,
            patch_stem: PatchStem::Linear,
            max_image_side: 96,
            vision_dim: 128,
            vision_layers: 2,
            vision_heads: 4,
            dim: 256,
            layers: 4,
            heads: 4,
            mlp_hidden: 704,
            rope_theta: 10_000.0,
            max_seq_len: 1024,
        }
    }
}

impl VlmConfig {
    /// Output channels of the convolutional stem's strided layers, first to last:
    /// `log2(patch_size)` layers whose widths double up to `vision_dim` (at least 8
    /// each). Empty for the linear stem.
    pub fn stem_channels(&self) -> Vec<i64> {
        if self.patch_stem != PatchStem::Conv {
            return Vec::new();
        }
        let depth = self.patch_size.max(2).trailing_zeros() as i64;
        (0..depth)
            .map(|i| (self.vision_dim >> (depth - 1 - i)).max(8))
            .collect()
    }

    /// Checks every value; the message names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Config(m));
        for (k, v) in [
            ("patch_size", self.patch_size),
            ("vision_dim", self.vision_dim),
            ("vision_layers", self.vision_layers),
            ("vision_heads", self.vision_heads),
            ("dim", self.dim),
            ("layers", self.layers),
            ("heads", self.heads),
            ("mlp_hidden", self.mlp_hidden),
        ] {
            if v <= 0 {
                return bad(format!("model.{k} must be positive, got {v}"));
            }
        }
        for (k, d, h) in [
            ("vision", self.vision_dim, self.vision_heads),
            ("", self.dim, self.heads),
        ] {
            if d % h != 0 || (d / h) % 4 != 0 {
                let field = if k.is_empty() {
                    "model.dim".to_string()
                } else {
                    "model.vision_dim".to_string()
                };
                return bad(format!(
                    "{field} ({d}) must be a multiple of 4 × its heads ({h}) so each head has rotary pairs for every axis"
                ));
            }
        }
        if self.max_image_side < 2 * self.patch_size {
            return bad(format!(
                "model.max_image_side ({}) must be at least twice model.patch_size ({})",
                self.max_image_side, self.patch_size
            ));
        }
        if self.patch_stem == PatchStem::Conv
            && (self.patch_size < 2 || self.patch_size & (self.patch_size - 1) != 0)
        {
            return bad(format!(
                "model.patch_stem = \"conv\" halves the image once per layer, so model.patch_size must be a power of two (2, 4, 8, …), got {}",
                self.patch_size
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad(format!(
                "model.rope_theta must be a number above 1, got {}",
                self.rope_theta
            ));
        }
        if self.max_seq_len < 8 {
            return bad(format!(
                "model.max_seq_len must be at least 8, got {}",
                self.max_seq_len
            ));
        }
        Ok(())
    }
}

/// How the vision encoder turns pixels into patch features (`model.patch_stem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PatchStem {
    /// Each `patch_size × patch_size` patch flattened and mapped linearly (the ViT
    /// original).
    #[default]
    Linear,
    /// `log2(patch_size)` 3 × 3 convolutions of stride 2 (GELU after each, channels
    /// doubling up to the vision width) and a 1 × 1 projection: the locality prior
    /// of a CNN in front of the transformer (BENCHMARKS.md has what it measured).
    Conv,
}

/// How GRPO averages token losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Mean over a response's tokens, then mean over responses (the paper's choice).
    #[default]
    PerSample,
    /// Mean over all tokens of the batch (DAPO's choice).
    Token,
}

/// GRPO settings (`[tch.train.grpo]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoConfig {
    /// Lower clip: ratios below `1 − eps_low` stop pushing down.
    pub eps_low: f64,
    /// Upper clip (clip-higher): ratios above `1 + eps_high` stop pushing up.
    pub eps_high: f64,
    /// Loss aggregation.
    pub aggregation: Aggregation,
    /// Optimiser steps per RL iteration: the iteration's kept groups are split
    /// into this many mini-batches (whole groups, in order), each one AdamW step
    /// (verl's `ppo_mini_batch_size`). Later mini-batches are off-policy by the
    /// earlier steps, which the clipped ratio bounds. More steps per rollout; the
    /// learning-rate schedule counts steps, not iterations.
    pub mini_batches: usize,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        GrpoConfig {
            eps_low: 0.2,
            eps_high: 0.28,
            aggregation: Aggregation::PerSample,
            mini_batches: 1,
        }
    }
}

/// Optimiser settings (`[tch.train]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// AdamW β₁.
    pub beta1: f64,
    /// AdamW β₂.
    pub beta2: f64,
    /// AdamW ε.
    pub eps: f64,
    /// Decoupled weight decay (matrices only).
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 disables).
    pub grad_clip: f64,
    /// Packed rows per micro-step; gradients accumulate over micro-steps.
    pub rows_per_micro_step: usize,
    /// GRPO.
    pub grpo: GrpoConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            schedule: Schedule::default(),
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.01,
            grad_clip: 1.0,
            rows_per_micro_step: 4,
            grpo: GrpoConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Checks every value; the message names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.schedule
            .validate("train.schedule")
            .map_err(ModelError::Config)?;
        let bad = |m: String| Err(ModelError::Config(m));
        for (k, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return bad(format!("train.{k} must be in [0, 1), got {v}"));
            }
        }
        for (k, v) in [
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("grad_clip", self.grad_clip),
            ("grpo.eps_low", self.grpo.eps_low),
            ("grpo.eps_high", self.grpo.eps_high),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("train.{k} must be a non-negative number, got {v}"));
            }
        }
        if self.grpo.eps_low >= 1.0 {
            return bad(format!(
                "train.grpo.eps_low must be below 1, got {}",
                self.grpo.eps_low
            ));
        }
        if self.grpo.mini_batches == 0 {
            return bad("train.grpo.mini_batches must be at least 1".into());
        }
        if self.rows_per_micro_step == 0 {
            return bad("train.rows_per_micro_step must be at least 1".into());
        }
        Ok(())
    }
}

/// Everything about the libtorch policy (the `[tch]` table of an experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TchConfig {
    /// Sizes and tokenizer.
    pub model: VlmConfig,
    /// Optimiser, schedule and GRPO.
    pub train: TrainConfig,
    /// Most tokens per response.
    pub max_new_tokens: usize,
    /// Thinking budget for force answering (0: none).
    pub thinking_budget: usize,
    /// Sampling temperature used in training's log-probabilities; rollouts use the
    /// run's temperature, which should match.
    pub temperature: f64,
    /// `"auto"` (CUDA if available), `"cpu"`, `"cuda"` or `"cuda:N"`.
    pub device: String,
    /// Intra-op CPU threads (0: libtorch's default). libtorch keeps one setting per
    /// process, so the last replica built sets it for all.
    pub threads: usize,
    /// Decode steps on the CPU run as one fused Rust pass per step instead of
    /// libtorch's operators (default true; same arithmetic up to float rounding,
    /// several times faster at small sizes). Prefill and other devices always use
    /// libtorch.
    pub fused_decode: bool,
}

impl Default for TchConfig {
    fn default() -> Self {
        TchConfig {
            model: VlmConfig::default(),
            train: TrainConfig::default(),
            max_new_tokens: 256,
            thinking_budget: 192,
            temperature: 1.0,
            device: "auto".into(),
            threads: 0,
            fused_decode: true,
        }
    }
}

impl TchConfig {
    /// Checks every value; the message names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.model.validate()?;
        self.train.validate()?;
        check_device(&self.device)?;
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(ModelError::Config(format!(
                "tch.temperature must be a positive number, got {}",
                self.temperature
            )));
        }
        if self.max_new_tokens == 0 {
            return Err(ModelError::Config(
                "tch.max_new_tokens must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Checks a device name: `auto`, `cpu`, `cuda` or `cuda:N`.
pub fn check_device(name: &str) -> Result<(), ModelError> {
    let ok = matches!(name, "auto" | "cpu" | "cuda")
        || name
            .strip_prefix("cuda:")
            .is_some_and(|n| n.parse::<usize>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(ModelError::Config(format!(
            "tch.device must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got {name:?}"
        )))
    }
}
