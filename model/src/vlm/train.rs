//! Losses over packed sequences (next-token and GRPO with clip-higher) and AdamW.

use tch::{Kind, Tensor};

use super::nn::{Masking, Segments};
use super::{Layout, Vlm};
use crate::config::{Aggregation, GrpoConfig, TrainConfig};
use crate::tokenizer::Special;
use crate::{LmExample, ModelError, Prompt};

/// A sampled response with what GRPO needs.
#[derive(Debug, Clone)]
pub struct GrpoSequence {
    /// The prompt.
    pub prompt: Prompt,
    /// Response tokens.
    pub tokens: Vec<u32>,
    /// Log-probability of each token under the sampling policy.
    pub old_logprobs: Vec<f32>,
    /// Whether each token is trained on.
    pub loss_mask: Vec<bool>,
    /// The response's group-normalised advantage.
    pub advantage: f32,
}

/// A sequence ready for packing: the prompt layout, then `tail` tokens; per token
/// (indexed by the position of the token being predicted) a loss weight and, for
/// GRPO, the old log-probability.
pub(crate) struct Seq {
    pub layout: Layout,
    pub tail: Vec<u32>,
    pub weight: Vec<f32>,
    pub old_logprob: Vec<f32>,
    pub advantage: f32,
}

impl Seq {
    pub fn len(&self) -> usize {
        self.layout.ids.len() + self.tail.len()
    }
}

/// What a packed pass computes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Objective {
    /// Σ weight · (−log p).
    NextToken,
    /// Σ weight · clipped surrogate.
    Grpo(GrpoConfig),
}

impl Vlm {
    /// Sequences for next-token examples; weights make the batch loss
    /// `Σ_s weight_s · mean token loss of s`.
    pub(crate) fn lm_sequences(&self, examples: &[LmExample]) -> Result<Vec<Seq>, ModelError> {
        let eos = self.tokenizer.special(Special::EndOfText);
        examples
            .iter()
            .map(|e| {
                let layout = self.layout(&e.prompt)?;
                let mut tail = self.tokenizer.encode(&e.response);
                tail.push(eos);
                let n = layout.ids.len() + tail.len();
                let mut trained = vec![false; n];
                for slot in trained.iter_mut().skip(layout.ids.len()) {
                    *slot = true;
                }
                if e.train_prompt {
                    // Text tokens of the prompt (not its first token, images or markers).
                    let image = self.tokenizer.special(Special::Image);
                    let video = self.tokenizer.special(Special::Video);
                    for (t, &id) in layout.ids.iter().enumerate().skip(1) {
                        trained[t] = id != image && id != video;
                    }
                }
                let count = trained.iter().filter(|&&b| b).count().max(1) as f32;
                let weight = trained
                    .iter()
                    .map(|&b| if b { e.weight / count } else { 0.0 })
                    .collect();
                Ok(Seq {
                    layout,
                    tail,
                    weight,
                    old_logprob: vec![0.0; n],
                    advantage: 0.0,
                })
            })
            .collect()
    }

    /// Sequences for GRPO; per-sample aggregation weights each token
    /// `1 / (tokens of its response · responses)`, token-level `1 / all tokens`.
    pub(crate) fn grpo_sequences(
        &self,
        batch: &[GrpoSequence],
        aggregation: Aggregation,
    ) -> Result<Vec<Seq>, ModelError> {
        let trained = |s: &GrpoSequence| {
            (0..s.tokens.len())
                .filter(|&i| s.loss_mask.get(i).copied().unwrap_or(true))
                .count()
        };
        let all: usize = batch.iter().map(trained).sum();
        batch
            .iter()
            .map(|s| {
                if s.old_logprobs.len() != s.tokens.len() {
                    return Err(ModelError::Config(format!(
                        "response of sample {:#018x} has {} tokens but {} log-probabilities",
                        s.prompt.sample_id,
                        s.tokens.len(),
                        s.old_logprobs.len()
                    )));
                }
                let layout = self.layout(&s.prompt)?;
                let p = layout.ids.len();
                let n = p + s.tokens.len();
                let per = match aggregation {
                    Aggregation::PerSample => {
                        1.0 / (trained(s).max(1) as f32 * batch.len().max(1) as f32)
                    }
                    Aggregation::Token => 1.0 / all.max(1) as f32,
                };
                let mut weight = vec![0.0; n];
                let mut old = vec![0.0; n];
                for i in 0..s.tokens.len() {
                    if s.loss_mask.get(i).copied().unwrap_or(true) {
                        weight[p + i] = per;
                    }
                    old[p + i] = s.old_logprobs[i];
                }
                Ok(Seq {
                    layout,
                    tail: s.tokens.clone(),
                    weight,
                    old_logprob: old,
                    advantage: s.advantage,
                })
            })
            .collect()
    }

    /// Loss of `rows` of `seqs` packed side by side: each row holds its sequences
    /// back to back, positions restart per sequence, and attention never crosses
    /// from one sequence to another. Returns the scalar loss and the number of
    /// real tokens in the rows.
    pub(crate) fn packed_loss(
        &self,
        seqs: &[Seq],
        rows: &[Vec<usize>],
        objective: Objective,
        temperature: f64,
    ) -> (Tensor, usize) {
        let dev = self.device();
        let width = rows
            .iter()
            .map(|r| r.iter().map(|&i| seqs[i].len()).sum::<usize>())
            .max()
            .unwrap_or(1)
            .max(1);
        let r = rows.len();
        let mut ids = vec![0i64; r * width];
        let mut pos = vec![0i64; r * width * 3];
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut target = Vec::new();
        let mut at = Vec::new();
        let mut weight = Vec::new();
        let mut old = Vec::new();
        let mut adv = Vec::new();
        let mut placed: Vec<(i64, &Layout)> = Vec::new();
        let mut images = Vec::new();
        let mut real = 0;
        for (ri, row) in rows.iter().enumerate() {
            let mut off = ri * width;
            for &si in row {
                let s = &seqs[si];
                let l = &s.layout;
                let n = s.len();
                real += n;
                placed.push((off as i64, l));
                spans.push((off, n));
                images.extend(l.images.iter().map(|(_, img)| img));
                for t in 0..n {
                    let id = if t < l.ids.len() {
                        l.ids[t]
                    } else {
                        s.tail[t - l.ids.len()]
                    };
                    ids[off + t] = id as i64;
                    let p = if t < l.ids.len() {
                        l.positions[t]
                    } else {
                        let q = l.next_position + (t - l.ids.len()) as i64;
                        [q, q, q]
                    };
                    pos[(off + t) * 3..(off + t) * 3 + 3].copy_from_slice(&p);
                    // Token t is predicted from the hidden state at t − 1.
                    if t > 0 && s.weight[t] != 0.0 {
                        at.push((off + t - 1) as i64);
                        target.push(id as i64);
                        weight.push(s.weight[t]);
                        old.push(s.old_logprob[t]);
                        adv.push(s.advantage);
                    }
                }
                off += n;
            }
        }
        let w = width as i64;
        let rr = r as i64;
        let ids_t = Tensor::from_slice(&ids).view([rr, w]).to_device(dev);
        let pos_t = Tensor::from_slice(&pos).view([rr, w, 3]).to_device(dev);
        let feats = self.encode_images(&images);
        let (slot_idx, slot_feats) = self.slots(&placed, &feats);
        let x = self.embed(&ids_t, Some((&slot_idx, &slot_feats)));
        let segments = Segments::new(&spans, r * width, dev);
        let h = self.decode(&x, &pos_t, &Masking::Segments(&segments), None);
        if at.is_empty() {
            return (h.sum(Kind::Float) * 0.0, real);
        }
        let at_t = Tensor::from_slice(&at).to_device(dev);
        let h = h.view([-1, self.config.dim]).index_select(0, &at_t);
        let logits = self.logits(&h);
        let lp = (logits / temperature)
            .log_softmax(-1, Kind::Float)
            .gather(
                1,
                &Tensor::from_slice(&target).to_device(dev).unsqueeze(1),
                false,
            )
            .squeeze_dim(1);
        let weight_t = Tensor::from_slice(&weight).to_device(dev);
        let loss = match objective {
            Objective::NextToken => -(lp * &weight_t).sum(Kind::Float),
            Objective::Grpo(g) => {
                let old_t = Tensor::from_slice(&old).to_device(dev);
                let adv_t = Tensor::from_slice(&adv).to_device(dev);
                let ratio = (lp - old_t).exp();
                let s1 = &ratio * &adv_t;
                let s2 = ratio.clamp(1.0 - g.eps_low, 1.0 + g.eps_high) * &adv_t;
                -(s1.minimum(&s2) * &weight_t).sum(Kind::Float)
            }
        };
        (loss, real)
    }

    /// The next-token loss of `examples` packed into one row each way the packer
    /// places them (`capacity` tokens per row): `Σ_s weight_s · mean token loss`.
    pub fn lm_loss(&self, examples: &[LmExample], capacity: usize) -> Result<Tensor, ModelError> {
        let seqs = self.lm_sequences(examples)?;
        let rows = pack_rows(&seqs, capacity)?;
        Ok(self
            .packed_loss(&seqs, &rows.rows, Objective::NextToken, 1.0)
            .0)
    }

    /// The GRPO loss of `batch`, packed at `capacity` tokens per row.
    pub fn grpo_loss(
        &self,
        batch: &[GrpoSequence],
        config: &GrpoConfig,
        temperature: f64,
        capacity: usize,
    ) -> Result<Tensor, ModelError> {
        let seqs = self.grpo_sequences(batch, config.aggregation)?;
        let rows = pack_rows(&seqs, capacity)?;
        Ok(self
            .packed_loss(&seqs, &rows.rows, Objective::Grpo(*config), temperature)
            .0)
    }
}

/// Best-fit packing of sequences; a sequence over `capacity` is an error naming it.
pub(crate) fn pack_rows(seqs: &[Seq], capacity: usize) -> Result<crate::pack::Packing, ModelError> {
    let lengths: Vec<usize> = seqs.iter().map(Seq::len).collect();
    crate::pack::best_fit(&lengths, capacity).map_err(|e| {
        ModelError::Config(format!(
            "{e} (model.max_seq_len); shorten the prompt or response, or raise it"
        ))
    })
}

/// AdamW with decoupled weight decay on matrices, state kept as tensors so it can
/// be saved and restored exactly.
#[derive(Debug)]
pub struct AdamW {
    /// Parameter names, in order.
    pub names: Vec<String>,
    /// First moments.
    pub m: Vec<Tensor>,
    /// Second moments.
    pub v: Vec<Tensor>,
    /// Steps taken.
    pub steps: u64,
}

impl AdamW {
    /// Zeroed state for `model`'s parameters.
    pub fn new(model: &Vlm) -> AdamW {
        let params = model.named_parameters();
        AdamW {
            names: params.iter().map(|(n, _)| n.clone()).collect(),
            m: params.iter().map(|(_, p)| p.zeros_like()).collect(),
            v: params.iter().map(|(_, p)| p.zeros_like()).collect(),
            steps: 0,
        }
    }

    /// Clears the gradients of `model`.
    pub fn zero_grad(model: &Vlm) {
        for (_, p) in model.named_parameters() {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// Scales gradients so their global norm is at most `max`; returns the norm
    /// before clipping.
    pub fn clip_grad_norm(model: &Vlm, max: f64) -> f64 {
        tch::no_grad(|| {
            let grads: Vec<Tensor> = model
                .named_parameters()
                .into_iter()
                .map(|(_, p)| p.grad())
                .filter(|g| g.defined())
                .collect();
            if grads.is_empty() {
                return 0.0;
            }
            let norms: Vec<Tensor> = grads.iter().map(|g| g.square().sum(Kind::Float)).collect();
            let total = Tensor::stack(&norms, 0)
                .sum(Kind::Float)
                .sqrt()
                .double_value(&[]);
            if max > 0.0 && total > max {
                let c = max / (total + 1e-6);
                for mut g in grads {
                    let _ = g.g_mul_scalar_(c);
                }
            }
            total
        })
    }

    /// One update of `model` with learning rate `lr`.
    pub fn step(&mut self, model: &Vlm, lr: f64, c: &TrainConfig) {
        self.steps += 1;
        let bc1 = 1.0 - c.beta1.powi(self.steps as i32);
        let bc2 = 1.0 - c.beta2.powi(self.steps as i32);
        tch::no_grad(|| {
            for (k, (_, mut p)) in model.named_parameters().into_iter().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                // In place, as torch's single-tensor AdamW: two temporaries (g², √v).
                let m = &mut self.m[k];
                let v = &mut self.v[k];
                let _ = m.lerp_(&g, 1.0 - c.beta1);
                let _ = v.lerp_(&g.square(), 1.0 - c.beta2);
                if p.dim() > 1 && c.weight_decay > 0.0 {
                    let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
                }
                // p −= lr/bc1 · m / (√(v/bc2) + ε), as p += m / denom with
                // denom = −(√v/√bc2 + ε)·bc1/lr.
                let mut denom = v.sqrt();
                let _ = denom.g_div_scalar_(bc2.sqrt());
                let _ = denom.g_add_scalar_(c.eps);
                let _ = denom.g_mul_scalar_(-bc1 / lr);
                if lr > 0.0 {
                    let _ = p.addcdiv_(m, &denom);
                }
            }
        });
    }
}
