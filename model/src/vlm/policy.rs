//! The libtorch model behind the [`Policy`] trait: generation, GRPO and next-token
//! steps, weights and checkpoints as safetensors, and device placement.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use safetensors::tensor::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::train::{pack_rows, AdamW, GrpoSequence, Objective, Seq};
use super::{GenerateOptions, TchConfig, Vlm};
use crate::tokenizer::Special;
use crate::LmExample;
use crate::{
    grpo_advantages, GenerationParams, ModelError, Policy, Prompt, Rollout, StepStats, TrainGroup,
    Weights,
};

/// Parses a device name: `auto`, `cpu`, `cuda` or `cuda:N`.
pub fn device_from(name: &str) -> Result<Device, ModelError> {
    match name {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .map(Device::Cuda)
            .ok_or_else(|| {
                ModelError::Config(format!(
                    "tch.device must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got {other:?}"
                ))
            }),
    }
}

/// What a next-token step did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LmStats {
    /// Policy version after the step.
    pub policy_version: u64,
    /// The batch loss (`Σ weight · mean token loss`).
    pub loss: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Packed rows.
    pub rows: usize,
    /// Share of the rows' tokens that were real.
    pub packing_efficiency: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// The libtorch vision-language model as a trainable [`Policy`].
#[derive(Debug)]
pub struct TchPolicy {
    /// The model.
    pub model: Vlm,
    /// Configuration.
    pub config: TchConfig,
    optimiser: AdamW,
    version: u64,
}

/// Metadata stored with saved weights and state.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    version: u64,
    optimiser_steps: u64,
    config: TchConfig,
}

struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn raw(t: &Tensor) -> Result<Raw, ModelError> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let n = t.numel();
    let mut data = vec![0u8; n * 4];
    t.f_copy_data_u8(&mut data, n)
        .map_err(|e| ModelError::Config(format!("cannot read a tensor: {e}")))?;
    Ok(Raw {
        dtype: Dtype::F32,
        shape: t.size().iter().map(|&d| d as usize).collect(),
        data,
    })
}

/// Splits the groups' sequences into `k` mini-batches of whole groups, in order,
/// sizes differing by at most one group (`k` is capped at the number of groups; no
/// groups give one empty mini-batch, as a step without groups did before).
pub(crate) fn mini_batches<T>(groups: Vec<Vec<T>>, k: usize) -> Vec<Vec<T>> {
    let n = groups.len();
    let k = k.clamp(1, n.max(1));
    let mut out: Vec<Vec<T>> = (0..k).map(|_| Vec::new()).collect();
    for (i, g) in groups.into_iter().enumerate() {
        // Group i goes to the chunk whose range holds it: the first n % k chunks
        // take ⌈n/k⌉ groups, the rest ⌊n/k⌋.
        let (q, r) = (n / k, n % k);
        let chunk = if i < r * (q + 1) {
            i / (q + 1)
        } else {
            r + (i - r * (q + 1)) / q.max(1)
        };
        out[chunk].extend(g);
    }
    out
}

impl TchPolicy {
    /// A fresh policy; its weights depend only on `seed`.
    pub fn new(config: TchConfig, seed: u64) -> Result<TchPolicy, ModelError> {
        config.validate()?;
        let device = device_from(&config.device)?;
        if config.threads > 0 {
            tch::set_num_threads(config.threads as i32);
        }
        let model = Vlm::new(config.model.clone(), seed, device)?;
        let optimiser = AdamW::new(&model);
        Ok(TchPolicy {
            model,
            config,
            optimiser,
            version: 0,
        })
    }

    /// Generation options for `params` under this policy's settings.
    pub fn options(&self, params: &GenerationParams) -> GenerateOptions {
        GenerateOptions {
            group_size: params.group_size,
            temperature: params.temperature,
            top_p: params.top_p,
            seed: params.seed,
            max_new_tokens: self.config.max_new_tokens,
            thinking_budget: (self.config.thinking_budget > 0)
                .then_some(self.config.thinking_budget),
            use_cache: true,
            stop_at_eos: true,
            fused_cpu: self.config.fused_decode,
        }
    }

    /// Accumulates gradients of `seqs` over micro-steps, clips them and takes one
    /// AdamW step.
    fn optimise(&mut self, seqs: &[Seq], objective: Objective) -> Result<LmStats, ModelError> {
        let packing = pack_rows(seqs, self.config.model.max_seq_len)?;
        AdamW::zero_grad(&self.model);
        let mut total = 0.0;
        for chunk in packing.rows.chunks(self.config.train.rows_per_micro_step) {
            let (loss, _) = self
                .model
                .packed_loss(seqs, chunk, objective, self.config.temperature);
            loss.backward();
            total += loss.double_value(&[]);
        }
        let norm = AdamW::clip_grad_norm(&self.model, self.config.train.grad_clip);
        let lr = self.config.train.schedule.at(self.optimiser.steps);
        self.optimiser.step(&self.model, lr, &self.config.train);
        self.version += 1;
        Ok(LmStats {
            policy_version: self.version,
            loss: total,
            grad_norm: norm,
            rows: packing.rows.len(),
            packing_efficiency: packing.efficiency(),
            lr,
        })
    }

    /// One next-token step (pretraining, or SFT with `train_prompt` off).
    pub fn train_lm(&mut self, examples: &[LmExample]) -> Result<LmStats, ModelError> {
        let seqs = self.model.lm_sequences(examples)?;
        self.optimise(&seqs, Objective::NextToken)
    }

    /// One GRPO step on prepared sequences.
    pub fn train_grpo(&mut self, batch: &[GrpoSequence]) -> Result<LmStats, ModelError> {
        let seqs = self
            .model
            .grpo_sequences(batch, self.config.train.grpo.aggregation)?;
        self.optimise(&seqs, Objective::Grpo(self.config.train.grpo))
    }

    /// Log-probabilities of `tokens` after `prompt` under the current parameters
    /// (at the training temperature).
    pub fn logprobs(&self, prompt: &Prompt, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        let layout = self.model.layout(prompt)?;
        let p = layout.ids.len();
        tch::no_grad(|| {
            let logits = self.model.sequence_logits(&layout, tokens);
            let lp = (logits / self.config.temperature).log_softmax(-1, Kind::Float);
            tokens
                .iter()
                .enumerate()
                .map(|(i, &t)| Ok(lp.double_value(&[(p + i - 1) as i64, t as i64]) as f32))
                .collect()
        })
    }

    fn encode(&self, with_optimiser: bool) -> Result<Vec<u8>, ModelError> {
        let mut named: Vec<(String, Raw)> = Vec::new();
        for (name, t) in self.model.named_parameters() {
            named.push((name, raw(&t)?));
        }
        if with_optimiser {
            for (k, name) in self.optimiser.names.iter().enumerate() {
                named.push((format!("optimiser.m.{name}"), raw(&self.optimiser.m[k])?));
                named.push((format!("optimiser.v.{name}"), raw(&self.optimiser.v[k])?));
            }
        }
        let meta = Meta {
            version: self.version,
            optimiser_steps: self.optimiser.steps,
            config: self.config.clone(),
        };
        let json = serde_json::to_string(&meta)
            .map_err(|e| ModelError::Config(format!("cannot encode metadata: {e}")))?;
        let info = Some(HashMap::from([("rlcs".to_string(), json)]));
        safetensors::tensor::serialize(named, &info).map_err(|e| ModelError::BadWeights {
            version: self.version,
            reason: e.to_string(),
        })
    }

    /// Loads parameters (and, when `with_optimiser`, the optimiser state) from
    /// safetensors bytes; every tensor is checked by name and shape before any is
    /// copied, so a bad file changes nothing.
    fn decode(
        &mut self,
        bytes: &[u8],
        with_optimiser: bool,
        version: u64,
    ) -> Result<Meta, ModelError> {
        let bad = |reason: String| ModelError::BadWeights { version, reason };
        let (_, metadata) =
            SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not safetensors: {e}")))?;
        let meta: Meta = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get("rlcs"))
            .ok_or_else(|| bad("no rlcs metadata".into()))
            .and_then(|s| serde_json::from_str(s).map_err(|e| bad(format!("bad metadata: {e}"))))?;
        if meta.config.model != self.config.model {
            return Err(bad(
                "weights are for another model configuration (sizes or tokenizer differ)".into(),
            ));
        }
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not safetensors: {e}")))?;
        let mut plan: Vec<(Tensor, Tensor)> = Vec::new();
        let mut targets: Vec<(String, Tensor)> = self.model.named_parameters();
        if with_optimiser {
            for (k, name) in self.optimiser.names.iter().enumerate() {
                targets.push((
                    format!("optimiser.m.{name}"),
                    self.optimiser.m[k].shallow_clone(),
                ));
                targets.push((
                    format!("optimiser.v.{name}"),
                    self.optimiser.v[k].shallow_clone(),
                ));
            }
        }
        for (name, t) in targets {
            let view = st
                .tensor(&name)
                .map_err(|_| bad(format!("tensor {name} is missing")))?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            if shape != t.size() || view.dtype() != Dtype::F32 {
                return Err(bad(format!(
                    "tensor {name} is {:?} {:?}, expected F32 {:?}",
                    view.dtype(),
                    shape,
                    t.size()
                )));
            }
            let src = Tensor::f_from_data_size(view.data(), &shape, Kind::Float)
                .map_err(|e| bad(format!("tensor {name}: {e}")))?;
            plan.push((t, src));
        }
        tch::no_grad(|| {
            for (mut t, src) in plan {
                t.copy_(&src.to_device(t.device()));
            }
        });
        Ok(meta)
    }

    /// Writes `model.safetensors` and `config.json` into `dir` (created if needed).
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), ModelError> {
        let io = |e: std::io::Error, p: &Path| {
            ModelError::Config(format!("cannot write {}: {e}", p.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
        let weights = self.encode(false)?;
        let w = dir.join("model.safetensors");
        std::fs::write(&w, weights).map_err(|e| io(e, &w))?;
        let c = dir.join("config.json");
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "version": self.version,
            "parameters": self.model.parameter_count(),
            "tch": self.config,
        }))
        .map_err(|e| ModelError::Config(e.to_string()))?;
        std::fs::write(&c, json).map_err(|e| io(e, &c))?;
        Ok(())
    }

    /// Loads a checkpoint written by [`save_checkpoint`](TchPolicy::save_checkpoint);
    /// `device` overrides the saved device when given.
    pub fn load_checkpoint(dir: &Path, device: Option<&str>) -> Result<TchPolicy, ModelError> {
        let c = dir.join("config.json");
        let text = std::fs::read_to_string(&c)
            .map_err(|e| ModelError::Config(format!("cannot read {}: {e}", c.display())))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::Config(format!("{}: not JSON: {e}", c.display())))?;
        let mut config: TchConfig = v
            .get("tch")
            .cloned()
            .ok_or_else(|| ModelError::Config(format!("{}: missing field tch", c.display())))
            .and_then(|t| {
                serde_json::from_value(t)
                    .map_err(|e| ModelError::Config(format!("{}: field tch: {e}", c.display())))
            })?;
        if let Some(d) = device {
            config.device = d.to_string();
        }
        let mut policy = TchPolicy::new(config, 0)?;
        let w = dir.join("model.safetensors");
        let bytes = std::fs::read(&w)
            .map_err(|e| ModelError::Config(format!("cannot read {}: {e}", w.display())))?;
        let meta = policy.decode(&bytes, false, 0)?;
        policy.version = meta.version;
        Ok(policy)
    }

    fn rollout_sequence(
        &self,
        g: &TrainGroup,
        r: &Rollout,
        advantage: f32,
    ) -> Result<GrpoSequence, ModelError> {
        let (tokens, old) = if r.token_ids.is_empty() {
            // A rollout without tokens (another policy's text): score it on-policy.
            let mut t = self.model.tokenizer.encode(&r.response);
            t.push(self.model.tokenizer.special(Special::EndOfText));
            let lp = self.logprobs(&g.prompt, &t)?;
            (t, lp)
        } else {
            (r.token_ids.clone(), r.logprobs.clone())
        };
        Ok(GrpoSequence {
            prompt: g.prompt.clone(),
            loss_mask: if r.loss_mask.len() == tokens.len() {
                r.loss_mask.clone()
            } else {
                vec![true; tokens.len()]
            },
            tokens,
            old_logprobs: old,
            advantage,
        })
    }
}

impl Policy for TchPolicy {
    fn version(&self) -> u64 {
        self.version
    }

    fn generate(
        &mut self,
        prompt: &Prompt,
        params: &GenerationParams,
    ) -> Result<Vec<Rollout>, ModelError> {
        let options = self.options(params);
        let out = self.model.generate(prompt, &options)?;
        Ok(out
            .into_iter()
            .enumerate()
            .map(|(i, g)| Rollout {
                sample_id: prompt.sample_id,
                index: i as u32,
                response: g.text,
                policy_version: self.version,
                tokens: g.token_ids.len() as u32,
                force_answered: g.force_answered,
                token_ids: g.token_ids,
                logprobs: g.logprobs,
                loss_mask: g.loss_mask,
            })
            .collect())
    }

    fn train_supervised(&mut self, batch: &[LmExample]) -> Result<StepStats, ModelError> {
        let stats = self.train_lm(batch)?;
        // The batch loss sums weighted per-example means; report the mean.
        let weight: f64 = batch.iter().map(|e| f64::from(e.weight)).sum();
        Ok(StepStats {
            policy_version: stats.policy_version,
            groups: batch.len(),
            groups_with_signal: batch.len(),
            loss: if weight > 0.0 {
                stats.loss / weight
            } else {
                stats.loss
            },
        })
    }

    fn train_step(&mut self, batch: &[TrainGroup]) -> Result<StepStats, ModelError> {
        // Every group's sequences, built (and checked) before any step is taken.
        let mut per_group = Vec::with_capacity(batch.len());
        let mut with_signal = 0;
        for g in batch {
            if g.rollouts.len() != g.rewards.len() {
                return Err(ModelError::RaggedGroup {
                    sample_id: g.prompt.sample_id,
                    rollouts: g.rollouts.len(),
                    rewards: g.rewards.len(),
                });
            }
            let adv = grpo_advantages(&g.rewards);
            if adv.iter().any(|a| *a != 0.0) {
                with_signal += 1;
            }
            let seqs = g
                .rollouts
                .iter()
                .zip(adv)
                .map(|(r, a)| self.rollout_sequence(g, r, a))
                .collect::<Result<Vec<_>, _>>()?;
            per_group.push(seqs);
        }
        let mut losses = Vec::new();
        let mut version = self.version;
        for chunk in mini_batches(per_group, self.config.train.grpo.mini_batches) {
            let stats = self.train_grpo(&chunk)?;
            losses.push(stats.loss);
            version = stats.policy_version;
        }
        Ok(StepStats {
            policy_version: version,
            groups: batch.len(),
            groups_with_signal: with_signal,
            loss: losses.iter().sum::<f64>() / losses.len().max(1) as f64,
        })
    }

    fn export_weights(&self) -> Result<Weights, ModelError> {
        Ok(Weights {
            version: self.version,
            bytes: Arc::new(self.encode(false)?),
        })
    }

    fn import_weights(&mut self, weights: &Weights) -> Result<(), ModelError> {
        self.decode(&weights.bytes, false, weights.version)?;
        self.version = weights.version;
        Ok(())
    }

    fn save_state(&self) -> Result<Vec<u8>, ModelError> {
        self.encode(true)
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), ModelError> {
        let meta = self.decode(bytes, true, 0)?;
        self.version = meta.version;
        self.optimiser.steps = meta.optimiser_steps;
        Ok(())
    }
}
