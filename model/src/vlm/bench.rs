//! The model benchmark behind `rlcs bench model`: training tokens/s and MFU against
//! the machine's fp32 matmul peak measured in the same run, generation tokens/s
//! with and without the KV cache, and packing efficiency.
//!
//! The workload is fixed so `bench/model_eager.py` (the same architecture in eager
//! PyTorch) can run exactly the same one:
//! - a training step is 16 sequences of 128 tokens (one 64 × 64 image = 16 image
//!   tokens, 100 prompt characters, 7 response characters), packed four to a row
//!   into 4 rows of 512, next-token loss on the 111 non-image positions of each,
//!   one AdamW step with gradient clipping;
//! - generation is a group of 8 responses of exactly 128 tokens to a 52-token
//!   prompt with one 64 × 64 image, sampled at temperature 1.

use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::{GenerateOptions, LmExample, TchConfig, TchPolicy, Vlm};
use crate::{ModelError, Prompt, PromptImage};

/// How long to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Timed training steps (after 2 warm-up steps).
    pub train_steps: usize,
    /// Timed generation runs with the cache (after 1 warm-up); one without.
    pub gen_runs: usize,
    /// Device name (`cpu`, `cuda`, …).
    pub device: String,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            train_steps: 10,
            gen_runs: 3,
            device: "cpu".into(),
        }
    }
}

/// What the benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Always `"rlcs-tch"`.
    pub implementation: String,
    /// Device used.
    pub device: String,
    /// Intra-op threads libtorch used.
    pub threads: i32,
    /// Model parameters.
    pub parameters: usize,
    /// Mean seconds per training step.
    pub train_step_seconds: f64,
    /// Token slots per second (4 × 512 per step).
    pub train_tokens_per_s: f64,
    /// Model FLOPs of one training step (matmuls and causal attention, forward and
    /// backward).
    pub train_flops_per_step: f64,
    /// fp32 matmul peak measured now (1024³ matmuls), GFLOP/s.
    pub peak_gflops: f64,
    /// Model FLOPs utilisation: FLOPs per step / step time / peak.
    pub mfu: f64,
    /// Generated tokens per second with the KV cache (on the CPU, the fused decode
    /// step the runs use).
    pub gen_tokens_per_s_cache: f64,
    /// Generated tokens per second with the KV cache through libtorch's operators
    /// (the fused CPU step off; equal to the above on other devices).
    pub gen_tokens_per_s_cache_ops: f64,
    /// Generated tokens per second recomputing the sequence each step.
    pub gen_tokens_per_s_no_cache: f64,
    /// Best-fit packing efficiency of 10 000 sequences of 40–600 tokens into rows
    /// of 1024.
    pub packing_efficiency: f64,
}

fn random_image(rng: &mut ChaCha8Rng) -> PromptImage {
    let rgb: Vec<u8> = (0..64 * 64 * 3).map(|_| rng.random()).collect();
    PromptImage {
        width: 64,
        height: 64,
        rgb: Arc::from(rgb),
    }
}

fn text(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| rng.random_range(b'a'..=b'z') as char)
        .collect()
}

fn prompt(id: u64, text: String, image: PromptImage) -> Prompt {
    Prompt {
        sample_id: id,
        domain: "bench".into(),
        text,
        gold: String::new(),
        answer: String::new(),
        wrong_answers: Vec::new(),
        difficulty: 0.5,
        images: vec![image],
        video: false,
    }
}

/// Training FLOPs of one benchmark step for `m`'s sizes (forward + backward = 3 ×
/// forward; a matmul of an n-vector by a p-parameter matrix is 2·p FLOPs).
fn train_flops(m: &Vlm) -> f64 {
    let c = &m.config;
    let (d, h, l) = (c.dim as f64, c.mlp_hidden as f64, c.layers as f64);
    let (dv, lv) = (c.vision_dim as f64, c.vision_layers as f64);
    let vocab = m.tokenizer.vocab_size() as f64;
    let (seqs, n, targets, patches_per_image) = (16.0, 128.0, 111.0, 64.0);
    let stem = stem_macs_per_patch(c);
    let decoder = seqs * n * l * (4.0 * d * d + 3.0 * d * h);
    let head = seqs * targets * vocab * d;
    // Causal attention: QKᵀ and AV over n²/2 pairs, 2·d FLOPs each → 2·d·n².
    let attention = seqs * l * d * n * n;
    let vision = seqs * patches_per_image * (lv * 12.0 * dv * dv + stem);
    // Full attention over the image's patches.
    let vision_attention = seqs * lv * 2.0 * dv * patches_per_image * patches_per_image;
    let projector = seqs * (patches_per_image / 4.0) * (4.0 * dv * d + d * d);
    6.0 * (decoder + head + attention + vision + vision_attention + projector)
}

/// Multiply-adds of the patch stem per patch.
fn stem_macs_per_patch(c: &crate::config::VlmConfig) -> f64 {
    match c.patch_stem {
        crate::config::PatchStem::Linear => (3 * c.patch_size * c.patch_size * c.vision_dim) as f64,
        crate::config::PatchStem::Conv => {
            // Layer i has (p / 2^(i+1))² outputs per patch, 9·in·out each.
            let mut inputs = 3;
            let mut macs = 0.0;
            for (i, out) in c.stem_channels().into_iter().enumerate() {
                let side = c.patch_size >> (i + 1);
                macs += (side * side * 9 * inputs * out) as f64;
                inputs = out;
            }
            macs + (inputs * c.vision_dim) as f64
        }
    }
}

/// fp32 matmul GFLOP/s of 1024³ products on `device`, best of 10.
pub fn matmul_peak(device: Device) -> f64 {
    let n = 1024i64;
    let a = Tensor::ones([n, n], (Kind::Float, device)) * 0.5;
    let b = Tensor::ones([n, n], (Kind::Float, device)) * 0.25;
    let sync = |t: &Tensor| t.sum(Kind::Float).double_value(&[]);
    sync(&a.matmul(&b));
    let mut best = f64::INFINITY;
    for _ in 0..10 {
        let t0 = Instant::now();
        let c = a.matmul(&b);
        sync(&c.narrow(0, 0, 1));
        best = best.min(t0.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

/// Runs the benchmark with the default model sizes.
pub fn run(options: &BenchOptions) -> Result<BenchReport, ModelError> {
    let mut config = TchConfig {
        device: options.device.clone(),
        ..TchConfig::default()
    };
    config.model.max_seq_len = 512;
    config.train.rows_per_micro_step = 4;
    let mut policy = TchPolicy::new(config, 1)?;
    let device = policy.model.device();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let examples: Vec<LmExample> = (0..16)
        .map(|i| {
            let image = random_image(&mut rng);
            LmExample {
                prompt: prompt(i, text(&mut rng, 100), image),
                response: text(&mut rng, 7),
                train_prompt: true,
                weight: 1.0 / 16.0,
            }
        })
        .collect();
    for _ in 0..2 {
        policy.train_lm(&examples)?;
    }
    let t0 = Instant::now();
    for _ in 0..options.train_steps.max(1) {
        let s = policy.train_lm(&examples)?;
        if s.rows != 4 {
            return Err(ModelError::Config(format!(
                "bench workload packed into {} rows, expected 4",
                s.rows
            )));
        }
    }
    let step = t0.elapsed().as_secs_f64() / options.train_steps.max(1) as f64;
    let flops = train_flops(&policy.model);
    let peak = matmul_peak(device);

    let gen_prompt = prompt(99, text(&mut rng, 32), random_image(&mut rng));
    let gen = |use_cache: bool, fused_cpu: bool, runs: usize| -> Result<f64, ModelError> {
        let o = GenerateOptions {
            group_size: 8,
            temperature: 1.0,
            top_p: 1.0,
            seed: 3,
            max_new_tokens: 128,
            thinking_budget: None,
            use_cache,
            stop_at_eos: false,
            fused_cpu,
        };
        let t0 = Instant::now();
        for _ in 0..runs {
            policy.model.generate(&gen_prompt, &o)?;
        }
        Ok((8 * 128 * runs) as f64 / t0.elapsed().as_secs_f64())
    };
    gen(true, true, 1)?;
    let cache = gen(true, true, options.gen_runs.max(1))?;
    gen(true, false, 1)?;
    let cache_ops = gen(true, false, options.gen_runs.max(1))?;
    let no_cache = gen(false, false, 1)?;

    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let lengths: Vec<usize> = (0..10_000).map(|_| rng.random_range(40..=600)).collect();
    let packing = crate::pack::best_fit(&lengths, 1024)
        .map_err(|e| ModelError::Config(e.to_string()))?
        .efficiency();
    Ok(BenchReport {
        implementation: "rlcs-tch".into(),
        device: format!("{device:?}"),
        threads: tch::get_num_threads(),
        parameters: policy.model.parameter_count(),
        train_step_seconds: step,
        train_tokens_per_s: (4 * 512) as f64 / step,
        train_flops_per_step: flops,
        peak_gflops: peak,
        mfu: flops / step / (peak * 1e9),
        gen_tokens_per_s_cache: cache,
        gen_tokens_per_s_cache_ops: cache_ops,
        gen_tokens_per_s_no_cache: no_cache,
        packing_efficiency: packing,
    })
}
