//! Batched sampling with a KV cache, temperature, top-p and force answering.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::fused::{log_softmax_rows, values, FusedDecoder, FusedState, StepInput};
use super::nn::Masking;
use super::{mix, Vlm};
use crate::tokenizer::Special;
use crate::{ModelError, Prompt};

/// How to sample one group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GenerateOptions {
    /// Responses sampled for the prompt (G).
    pub group_size: usize,
    /// Softmax temperature; 0 picks the most likely token.
    pub temperature: f32,
    /// Nucleus threshold (1.0 samples the whole distribution).
    pub top_p: f32,
    /// Seed; response `i` uses its own stream derived from it, so a response does
    /// not depend on the group size.
    pub seed: u64,
    /// Most tokens per response (forced tokens included).
    pub max_new_tokens: usize,
    /// Thinking budget: once a response has this many tokens without `</think>`,
    /// `</think><answer>` is inserted (and masked from the loss). `None`: no budget.
    pub thinking_budget: Option<usize>,
    /// Reuse keys and values across steps (off recomputes the whole sequence each
    /// step; for benchmarks and checks).
    pub use_cache: bool,
    /// End a response at `<|endoftext|>` (off: always `max_new_tokens`, for
    /// benchmarks).
    pub stop_at_eos: bool,
    /// On the CPU with the cache, run each decode step as one fused Rust pass
    /// instead of libtorch's operators (the same arithmetic up to float rounding;
    /// several times fewer microseconds per step at small sizes). Off: libtorch's
    /// operators, for comparison. Other devices always use libtorch.
    pub fused_cpu: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            group_size: 1,
            temperature: 1.0,
            top_p: 1.0,
            seed: 0,
            max_new_tokens: 256,
            thinking_budget: Some(192),
            use_cache: true,
            stop_at_eos: true,
            fused_cpu: true,
        }
    }
}

/// One sampled response.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Token ids, the end-of-text token included when sampled.
    pub token_ids: Vec<u32>,
    /// Log-probability of each token under the sampling distribution (temperature
    /// applied; the whole vocabulary, before top-p truncation).
    pub logprobs: Vec<f32>,
    /// False for tokens force answering inserted.
    pub loss_mask: Vec<bool>,
    /// Whether force answering fired.
    pub force_answered: bool,
    /// The response text (without the end-of-text token).
    pub text: String,
}

struct Row {
    out: Generated,
    rng: ChaCha8Rng,
    closed: bool,
    forced: Vec<u32>,
    done: bool,
}

fn sample(lp: &[f32], temperature: f32, top_p: f32, rng: &mut ChaCha8Rng) -> usize {
    if temperature <= 0.0 {
        return lp
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                if v > best.1 {
                    (i, v)
                } else {
                    best
                }
            })
            .0;
    }
    let probs: Vec<f64> = lp.iter().map(|&v| (v as f64).exp()).collect();
    let (order, total): (Vec<usize>, f64) = if top_p < 1.0 {
        let mut idx: Vec<usize> = (0..probs.len()).collect();
        idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        let mut sum = 0.0;
        let mut keep = Vec::new();
        for i in idx {
            keep.push(i);
            sum += probs[i];
            if sum >= top_p as f64 {
                break;
            }
        }
        (keep, sum)
    } else {
        ((0..probs.len()).collect(), probs.iter().sum())
    };
    let u = rng.random::<f64>() * total;
    let mut acc = 0.0;
    let mut last = order.first().copied().unwrap_or(0);
    for i in order {
        if probs[i] > 0.0 {
            last = i;
            acc += probs[i];
            if u < acc {
                return i;
            }
        }
    }
    last
}

impl Vlm {
    /// Samples `options.group_size` responses to `prompt`: one prefill, the cache
    /// shared by the group, then one batched step per token; finished responses
    /// leave the batch.
    pub fn generate(
        &self,
        prompt: &Prompt,
        options: &GenerateOptions,
    ) -> Result<Vec<Generated>, ModelError> {
        let o = options;
        if !(o.temperature.is_finite() && o.temperature >= 0.0) {
            return Err(ModelError::Config(format!(
                "temperature must be a non-negative number, got {}",
                o.temperature
            )));
        }
        if !(o.top_p > 0.0 && o.top_p <= 1.0) {
            return Err(ModelError::Config(format!(
                "top_p must be in (0, 1], got {}",
                o.top_p
            )));
        }
        let layout = self.layout(prompt)?;
        if layout.ids.len() + o.max_new_tokens > self.config.max_seq_len.max(layout.ids.len() + 1) {
            return Err(ModelError::Config(format!(
                "prompt of {} tokens plus {} new tokens exceeds model.max_seq_len ({})",
                layout.ids.len(),
                o.max_new_tokens,
                self.config.max_seq_len
            )));
        }
        let t = &self.tokenizer;
        let eos = t.special(Special::EndOfText);
        let end_think = t.special(Special::EndThink);
        let forced_seq = [t.special(Special::Answer), end_think];
        let mut rows: Vec<Row> = (0..o.group_size)
            .map(|i| Row {
                out: Generated {
                    token_ids: Vec::new(),
                    logprobs: Vec::new(),
                    loss_mask: Vec::new(),
                    force_answered: false,
                    text: String::new(),
                },
                rng: ChaCha8Rng::seed_from_u64(mix(o.seed, i as u64 + 1)),
                closed: false,
                forced: Vec::new(),
                done: o.max_new_tokens == 0,
            })
            .collect();
        if o.group_size == 0 {
            return Ok(Vec::new());
        }
        tch::no_grad(|| {
            let dev = self.device();
            let n = layout.ids.len() as i64;
            let ids: Vec<i64> = layout.ids.iter().map(|&i| i as i64).collect();
            let ids = Tensor::from_slice(&ids).view([1, n]).to_device(dev);
            let pos: Vec<i64> = layout.positions.iter().flatten().copied().collect();
            let pos = Tensor::from_slice(&pos).view([1, n, 3]).to_device(dev);
            let imgs: Vec<_> = layout.images.iter().map(|(_, i)| i).collect();
            let feats = self.encode_images(&imgs);
            let (idx, f) = self.slots(&[(0, &layout)], &feats);
            let prompt_x = self.embed(&ids, Some((&idx, &f)));
            let fused = o.use_cache && o.fused_cpu && dev == tch::Device::Cpu;
            let capacity = if fused {
                n
            } else {
                n + o.max_new_tokens as i64
            };
            let mut cache = o.use_cache.then(|| self.new_cache(1, capacity));
            let h = self.decode(&prompt_x, &pos, &Masking::Causal, cache.as_mut());
            let g = o.group_size as i64;
            let last = self.logits(&h.select(1, n - 1)).repeat([g, 1]);
            // Rotary tables of every response position, computed once.
            let first = layout.next_position;
            let gp: Vec<i64> = (0..o.max_new_tokens as i64)
                .flat_map(|j| [first + j; 3])
                .collect();
            let gen_pos = Tensor::from_slice(&gp)
                .view([1, o.max_new_tokens as i64, 3])
                .to_device(dev);
            let (gen_cos, gen_sin) = self.rope(&gen_pos);
            let mut fused = match (fused, cache.as_ref()) {
                (true, Some(c)) => {
                    let weights = FusedDecoder::new(self)?;
                    let state = FusedState::new(&weights, c, o.group_size, o.max_new_tokens)?;
                    let (cos, sin) = (values(&gen_cos, "cos")?, values(&gen_sin, "sin")?);
                    Some((weights, state, cos, sin))
                }
                _ => None,
            };
            if fused.is_none() {
                if let Some(c) = cache.as_mut() {
                    for l in c.iter_mut() {
                        l.repeat_batch(g);
                    }
                }
            }
            let vocab = self.tokenizer.vocab_size();
            let mut active: Vec<usize> = (0..o.group_size).filter(|&r| !rows[r].done).collect();
            let scale = if o.temperature > 0.0 {
                o.temperature
            } else {
                1.0
            };
            let log_probs = |logits: &Tensor| {
                values(
                    &(logits / scale as f64).log_softmax(-1, Kind::Float),
                    "log-probabilities",
                )
            };
            let mut lp = log_probs(&last)?;
            let mut step = 0usize;
            while !active.is_empty() {
                for (a, &r) in active.iter().enumerate() {
                    let row = &mut rows[r];
                    let dist = &lp[a * vocab..(a + 1) * vocab];
                    let (tok, trained) = match row.forced.pop() {
                        Some(f) => (f, false),
                        None => (
                            sample(dist, o.temperature, o.top_p, &mut row.rng) as u32,
                            true,
                        ),
                    };
                    row.out.token_ids.push(tok);
                    row.out
                        .logprobs
                        .push(dist.get(tok as usize).copied().unwrap_or(f32::NEG_INFINITY));
                    row.out.loss_mask.push(trained);
                    if tok == end_think {
                        row.closed = true;
                    }
                    let len = row.out.token_ids.len();
                    if (tok == eos && o.stop_at_eos) || len >= o.max_new_tokens {
                        row.done = true;
                    } else if !row.closed
                        && row.forced.is_empty()
                        && o.thinking_budget.is_some_and(|b| len >= b)
                    {
                        row.forced = forced_seq.to_vec();
                        row.out.force_answered = true;
                    }
                }
                let keep: Vec<i64> = active
                    .iter()
                    .enumerate()
                    .filter(|(_, &r)| !rows[r].done)
                    .map(|(a, _)| a as i64)
                    .collect();
                let before = active.len();
                active.retain(|&r| !rows[r].done);
                if active.is_empty() {
                    break;
                }
                let m = active.len() as i64;
                let next: Vec<u32> = active
                    .iter()
                    .map(|&r| rows[r].out.token_ids[step])
                    .collect();
                let s = step as i64;
                if let Some((weights, state, cos, sin)) = fused.as_mut() {
                    let hd = cos.len() / o.max_new_tokens.max(1);
                    let at = step * hd..(step + 1) * hd;
                    let input = StepInput {
                        rows: &active,
                        tokens: &next,
                        step,
                        cos: &cos[at.clone()],
                        sin: &sin[at],
                    };
                    let mut logits = state.step(weights, input)?;
                    log_softmax_rows(&mut logits, weights.vocab(), scale);
                    lp = logits;
                } else if let Some(c) = cache.as_mut() {
                    let next: Vec<i64> = next.iter().map(|&t| t as i64).collect();
                    let next = Tensor::from_slice(&next).view([m, 1]).to_device(dev);
                    if keep.len() < before {
                        let keep = Tensor::from_slice(&keep).to_device(dev);
                        for l in c.iter_mut() {
                            l.select_rows(&keep);
                        }
                    }
                    let x = self.embed(&next, None);
                    let cos = gen_cos.narrow(1, s, 1);
                    let sin = gen_sin.narrow(1, s, 1);
                    let h = self.decode_rotated(&x, &cos, &sin, &Masking::Causal, Some(c));
                    lp = log_probs(&self.logits(&h.select(1, 0)))?;
                } else {
                    // Recompute: the prompt and every generated token so far.
                    let sofar: Vec<i64> = active
                        .iter()
                        .flat_map(|&r| rows[r].out.token_ids.iter().map(|&t| t as i64))
                        .collect();
                    let k = step as i64 + 1;
                    let gen = Tensor::from_slice(&sofar).view([m, k]).to_device(dev);
                    let x = Tensor::cat(&[prompt_x.repeat([m, 1, 1]), self.embed(&gen, None)], 1);
                    let all_pos =
                        Tensor::cat(&[&pos, &gen_pos.narrow(1, 0, k)], 1).repeat([m, 1, 1]);
                    let h = self.decode(&x, &all_pos, &Masking::Causal, None);
                    lp = log_probs(&self.logits(&h.select(1, n + k - 1)))?;
                }
                step += 1;
            }
            Ok(())
        })?;
        Ok(rows
            .into_iter()
            .map(|mut r| {
                let body: Vec<u32> = r
                    .out
                    .token_ids
                    .iter()
                    .copied()
                    .filter(|&id| id != eos)
                    .collect();
                r.out.text = t.decode(&body);
                r.out
            })
            .collect())
    }
}
