//! The decoder's generation step on the CPU as one fused Rust pass.
//!
//! A decode step of a small model on the CPU is not bound by arithmetic: for a
//! group of 8 rows libtorch runs about a hundred operators per step (norms, the
//! rotary rotation, cache writes, attention, activations, residual adds), each
//! costing a dispatch and a thread hand-off of a few microseconds on a few
//! thousand numbers. This module runs the same step — the same weights, rotary
//! tables and KV cache contents, the same arithmetic up to float rounding — as
//! plain loops over contiguous `f32` buffers: one pass per layer, no allocation
//! per operator, the matrix products blocked so each weight row is read once per
//! step for all rows. The loops are compiled twice, portable and with AVX2 + FMA,
//! and the wider one is picked at run time when the CPU has it.
//!
//! The prompt's prefill (vision encoder included) stays on libtorch; its keys and
//! values are copied here once and shared by the whole group, and each row keeps
//! the keys and values of its own response.

use tch::{Kind, Tensor};

use super::nn::LayerCache;
use super::Vlm;
use crate::ModelError;

/// A tensor's values as `f32`, row-major, on the CPU (`what` names it in the error).
pub(crate) fn values(t: &Tensor, what: &str) -> Result<Vec<f32>, ModelError> {
    let flat = t
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .view([-1]);
    Vec::<f32>::try_from(&flat).map_err(|e| ModelError::Config(format!("cannot read {what}: {e}")))
}

/// One decoder block's weights.
struct Block {
    norm1: Vec<f32>,
    /// `[3·dim, dim]`: queries, keys, values, head after head.
    qkv: Vec<f32>,
    /// `[dim, dim]`.
    out: Vec<f32>,
    norm2: Vec<f32>,
    /// `[2·hidden, dim]`: gate rows, then up rows.
    gate_up: Vec<f32>,
    /// `[dim, hidden]`.
    down: Vec<f32>,
}

/// A snapshot of the decoder's weights for fused steps.
pub(crate) struct FusedDecoder {
    dim: usize,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    vocab: usize,
    eps: f32,
    blocks: Vec<Block>,
    norm: Vec<f32>,
    /// `[vocab, dim]`: the input embedding and (tied) the output projection.
    embed: Vec<f32>,
}

impl FusedDecoder {
    /// Copies the decoder's weights out of `model`.
    pub(crate) fn new(model: &Vlm) -> Result<FusedDecoder, ModelError> {
        let c = &model.config;
        let mut eps = 1e-6;
        let mut blocks = Vec::with_capacity(model.blocks.len());
        for (i, b) in model.blocks.iter().enumerate() {
            let ([n1, qkv, out, n2, gu, down], e) = b.weights();
            eps = e;
            let name = |part: &str| format!("lm.blocks.{i}.{part}");
            blocks.push(Block {
                norm1: values(n1, &name("norm1"))?,
                qkv: values(qkv, &name("attn.qkv"))?,
                out: values(out, &name("attn.out"))?,
                norm2: values(n2, &name("norm2"))?,
                gate_up: values(gu, &name("gate_up"))?,
                down: values(down, &name("down"))?,
            });
        }
        let (norm, _) = model.norm.parts();
        let dim = c.dim as usize;
        let heads = c.heads as usize;
        Ok(FusedDecoder {
            dim,
            heads,
            head_dim: dim / heads,
            hidden: c.mlp_hidden as usize,
            vocab: model.tokenizer.vocab_size(),
            eps: eps as f32,
            blocks,
            norm: values(norm, "lm.norm")?,
            embed: values(&model.embed, "lm.embed")?,
        })
    }

    /// Vocabulary size (the width of each row of [`FusedState::step`]'s logits).
    pub(crate) fn vocab(&self) -> usize {
        self.vocab
    }
}

/// What one decode step takes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepInput<'a> {
    /// The rows stepping (indices into the group).
    pub rows: &'a [usize],
    /// Each row's latest token.
    pub tokens: &'a [u32],
    /// The response position of those tokens.
    pub step: usize,
    /// Rotary tables of that position, `head_dim` values each.
    pub cos: &'a [f32],
    /// See `cos`.
    pub sin: &'a [f32],
}

/// Keys and values of one group: the prompt's, shared, and each row's own.
pub(crate) struct FusedState {
    prompt_len: usize,
    /// Rows of the group.
    rows: usize,
    /// Per layer `[heads, prompt_len, head_dim]`.
    prompt_k: Vec<Vec<f32>>,
    prompt_v: Vec<Vec<f32>>,
    /// Per layer `[rows, heads, capacity, head_dim]`.
    gen_k: Vec<Vec<f32>>,
    gen_v: Vec<Vec<f32>>,
    capacity: usize,
}

impl FusedState {
    /// The prompt's keys and values from a libtorch cache of one row (`len`
    /// positions filled), with room for `rows` responses of `capacity` tokens.
    pub(crate) fn new(
        decoder: &FusedDecoder,
        cache: &[LayerCache],
        rows: usize,
        capacity: usize,
    ) -> Result<FusedState, ModelError> {
        let prompt_len = cache.first().map_or(0, |c| c.len.max(0) as usize);
        let mut prompt_k = Vec::with_capacity(cache.len());
        let mut prompt_v = Vec::with_capacity(cache.len());
        for (i, c) in cache.iter().enumerate() {
            let n = prompt_len as i64;
            prompt_k.push(values(
                &c.k.get(0).narrow(1, 0, n),
                &format!("layer {i} keys"),
            )?);
            prompt_v.push(values(
                &c.v.get(0).narrow(1, 0, n),
                &format!("layer {i} values"),
            )?);
        }
        let per_layer = rows * decoder.heads * capacity * decoder.head_dim;
        Ok(FusedState {
            prompt_len,
            rows,
            prompt_k,
            prompt_v,
            gen_k: vec![vec![0.0; per_layer]; cache.len()],
            gen_v: vec![vec![0.0; per_layer]; cache.len()],
            capacity,
        })
    }

    /// One decode step of `input.rows`; returns the next-token logits,
    /// `[rows.len(), vocab]`.
    pub(crate) fn step(
        &mut self,
        w: &FusedDecoder,
        input: StepInput<'_>,
    ) -> Result<Vec<f32>, ModelError> {
        let StepInput {
            rows,
            tokens,
            step,
            cos,
            sin,
        } = input;
        if rows.len() != tokens.len() || step >= self.capacity {
            return Err(ModelError::Config(format!(
                "fused decode step {step} of {} rows with {} tokens (capacity {})",
                rows.len(),
                tokens.len(),
                self.capacity
            )));
        }
        if let Some(&r) = rows.iter().find(|&&r| r >= self.rows) {
            return Err(ModelError::Config(format!(
                "row {r} outside a group of {}",
                self.rows
            )));
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= w.vocab) {
            return Err(ModelError::Config(format!(
                "token {t} outside the vocabulary of {}",
                w.vocab
            )));
        }
        if cos.len() != w.head_dim || sin.len() != w.head_dim {
            return Err(ModelError::Config(format!(
                "rotary tables of {} and {} values for head_dim {}",
                cos.len(),
                sin.len(),
                w.head_dim
            )));
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = Avx2::detect() {
            // SAFETY: `detect` found AVX2 and FMA on this CPU.
            return Ok(unsafe { step_avx2(k, self, w, input) });
        }
        Ok(step_body(Portable, self, w, input))
    }
}

/// The step compiled for AVX2 + FMA (the elementwise loops vectorize 8 wide).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn step_avx2(
    k: Avx2,
    s: &mut FusedState,
    w: &FusedDecoder,
    input: StepInput<'_>,
) -> Vec<f32> {
    step_body(k, s, w, input)
}

/// The inner products a step is made of, one implementation per instruction set.
trait Kernels: Copy {
    /// `Σ a[i]·b[i]` over the shorter length.
    fn dot(self, a: &[f32], b: &[f32]) -> f32;
    /// `out[r][c] = Σ x[r][i]·w[c][i]` over `w[0].len()` (every slice at least as
    /// long): each weight vector is read once for four rows.
    fn dot4x2(self, x: [&[f32]; 4], w: [&[f32]; 2]) -> [[f32; 2]; 4];
}

/// Plain loops (what the compiler vectorizes for the build's baseline target).
#[derive(Debug, Clone, Copy)]
struct Portable;

/// Lanes of the portable accumulators.
const LANES: usize = 8;

impl Kernels for Portable {
    #[inline(always)]
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0f32; LANES];
        let mut ca = a.chunks_exact(LANES);
        let mut cb = b.chunks_exact(LANES);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for l in 0..LANES {
                acc[l] += x[l] * y[l];
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            sum += x * y;
        }
        sum
    }

    #[inline(always)]
    fn dot4x2(self, x: [&[f32]; 4], w: [&[f32]; 2]) -> [[f32; 2]; 4] {
        let k = w[0].len();
        let mut out = [[0f32; 2]; 4];
        for (o, xr) in out.iter_mut().zip(x) {
            for (v, wc) in o.iter_mut().zip(w) {
                *v = self.dot(&xr[..k], wc);
            }
        }
        out
    }
}

/// AVX2 + FMA intrinsics; a value exists only on a CPU that has both.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
struct Avx2 {
    _checked: (),
}

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    /// `Some` when this CPU has AVX2 and FMA.
    fn detect() -> Option<Avx2> {
        (std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
            .then_some(Avx2 { _checked: () })
    }
}

#[cfg(target_arch = "x86_64")]
impl Kernels for Avx2 {
    #[inline(always)]
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: an `Avx2` exists only where `detect` found AVX2 and FMA.
        unsafe { avx2::dot(a, b) }
    }

    #[inline(always)]
    fn dot4x2(self, x: [&[f32]; 4], w: [&[f32]; 2]) -> [[f32; 2]; 4] {
        // SAFETY: as above.
        unsafe { avx2::dot4x2(x, w) }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Sum of the eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// See [`super::Kernels::dot`]. Safety: the CPU has AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        // Every load reads 8 floats at i < n - 7 of slices of at least n floats.
        while i + 16 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                s1,
            );
            i += 16;
        }
        if i + 8 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(s0, s1));
        for j in i..n {
            sum += a[j] * b[j];
        }
        sum
    }

    /// See [`super::Kernels::dot4x2`]. Safety: the CPU has AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot4x2(x: [&[f32]; 4], w: [&[f32]; 2]) -> [[f32; 2]; 4] {
        let k = w[0].len();
        assert!(w[1].len() >= k && x.iter().all(|r| r.len() >= k));
        let px = x.map(|r| r.as_ptr());
        let pw = w.map(|r| r.as_ptr());
        let mut acc = [[_mm256_setzero_ps(); 2]; 4];
        let mut i = 0;
        // Every load reads 8 floats at i < k - 7 of slices of at least k floats.
        while i + 8 <= k {
            let w0 = _mm256_loadu_ps(pw[0].add(i));
            let w1 = _mm256_loadu_ps(pw[1].add(i));
            for r in 0..4 {
                let xv = _mm256_loadu_ps(px[r].add(i));
                acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
            }
            i += 8;
        }
        let mut out = [[0f32; 2]; 4];
        for r in 0..4 {
            for c in 0..2 {
                let mut sum = hsum(acc[r][c]);
                for j in i..k {
                    sum += x[r][j] * w[c][j];
                }
                out[r][c] = sum;
            }
        }
        out
    }
}

/// `e^x` without a library call, so loops over slices of it vectorize: `x = n·ln 2 + r`
/// with `|r| ≤ ln 2 / 2`, `e^r` by a degree-7 polynomial (Cephes' `expf`
/// coefficients; relative error about 2e-7), `2^n` written into the exponent bits.
/// Inputs are clamped to `[-87, 88]` (`e^-87` is the smallest normal range kept).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer.
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    let bits = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    e * f32::from_bits((bits.wrapping_add(127) << 23) as u32)
}

/// `y += alpha · x`.
#[inline(always)]
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// `out[i, j] = Σ_t x[i, t] · w[j, t]` for the `m` rows of `x` (`[m, k]`) and the
/// rows of `w` (a linear layer's `[out, in]` weight): weight rows two at a time,
/// each read once for four rows of `x`.
#[inline(always)]
fn matmul_t<K: Kernels>(kern: K, x: &[f32], m: usize, k: usize, w: &[f32], out: &mut [f32]) {
    let n = w.len() / k;
    let row = |i: usize| &x[i * k..(i + 1) * k];
    let mut j = 0;
    while j < n {
        let pair = j + 1 < n;
        let w0 = &w[j * k..(j + 1) * k];
        let w1 = if pair {
            &w[(j + 1) * k..(j + 2) * k]
        } else {
            w0
        };
        let mut i = 0;
        while i + 4 <= m {
            let r = kern.dot4x2([row(i), row(i + 1), row(i + 2), row(i + 3)], [w0, w1]);
            for (d, v) in r.into_iter().enumerate() {
                out[(i + d) * n + j] = v[0];
                if pair {
                    out[(i + d) * n + j + 1] = v[1];
                }
            }
            i += 4;
        }
        for i in i..m {
            out[i * n + j] = kern.dot(row(i), w0);
            if pair {
                out[i * n + j + 1] = kern.dot(row(i), w1);
            }
        }
        j += 2;
    }
}

/// RMSNorm of each `dim`-row of `x` into `out`, scaled by `weight`.
#[inline(always)]
fn rms_norm<K: Kernels>(kern: K, x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let dim = weight.len();
    for (xr, or) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let ms = kern.dot(xr, xr) / dim as f32;
        let r = 1.0 / (ms + eps).sqrt();
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(weight) {
            *o = v * r * g;
        }
    }
}

/// Rotates one head's vector in place (the halves' rotation of [`super::nn::apply_rope`]).
#[inline(always)]
fn rope(x: &mut [f32], cos: &[f32], sin: &[f32], scratch: &mut [f32]) {
    let half = x.len() / 2;
    scratch[..x.len()].copy_from_slice(x);
    for i in 0..half {
        x[i] = scratch[i] * cos[i] - scratch[i + half] * sin[i];
        x[i + half] = scratch[i + half] * cos[i + half] + scratch[i] * sin[i + half];
    }
}

#[inline(always)]
fn step_body<K: Kernels>(
    kern: K,
    s: &mut FusedState,
    w: &FusedDecoder,
    input: StepInput<'_>,
) -> Vec<f32> {
    let StepInput {
        rows,
        tokens,
        step,
        cos,
        sin,
    } = input;
    let (d, hd, heads, hidden) = (w.dim, w.head_dim, w.heads, w.hidden);
    let m = rows.len();
    let n_prompt = s.prompt_len;
    let cap = s.capacity;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut x = vec![0f32; m * d];
    for (a, &t) in tokens.iter().enumerate() {
        let t = t as usize;
        x[a * d..(a + 1) * d].copy_from_slice(&w.embed[t * d..(t + 1) * d]);
    }
    let mut normed = vec![0f32; m * d];
    let mut qkv = vec![0f32; m * 3 * d];
    let mut attn = vec![0f32; m * d];
    let mut proj = vec![0f32; m * d];
    let mut gu = vec![0f32; m * 2 * hidden];
    let mut act = vec![0f32; m * hidden];
    let mut scores = vec![0f32; n_prompt + step + 1];
    let mut scratch = vec![0f32; hd];
    for (li, b) in w.blocks.iter().enumerate() {
        rms_norm(kern, &x, &b.norm1, w.eps, &mut normed);
        matmul_t(kern, &normed, m, d, &b.qkv, &mut qkv);
        let (pk, pv) = (&s.prompt_k[li], &s.prompt_v[li]);
        let (gk, gv) = (&mut s.gen_k[li], &mut s.gen_v[li]);
        for (a, &r) in rows.iter().enumerate() {
            let row = &mut qkv[a * 3 * d..(a + 1) * 3 * d];
            for h in 0..heads {
                let (q, rest) = row.split_at_mut(d);
                rope(&mut q[h * hd..(h + 1) * hd], cos, sin, &mut scratch);
                let (k, v) = rest.split_at_mut(d);
                rope(&mut k[h * hd..(h + 1) * hd], cos, sin, &mut scratch);
                let at = ((r * heads + h) * cap + step) * hd;
                gk[at..at + hd].copy_from_slice(&k[h * hd..(h + 1) * hd]);
                gv[at..at + hd].copy_from_slice(&v[h * hd..(h + 1) * hd]);
            }
            for h in 0..heads {
                let q = &row[h * hd..(h + 1) * hd];
                let pkh = &pk[h * n_prompt * hd..(h + 1) * n_prompt * hd];
                let base = (r * heads + h) * cap * hd;
                let gkh = &gk[base..base + (step + 1) * hd];
                for (sc, key) in scores
                    .iter_mut()
                    .zip(pkh.chunks_exact(hd).chain(gkh.chunks_exact(hd)))
                {
                    *sc = kern.dot(q, key) * scale;
                }
                let max = scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                for sc in scores.iter_mut() {
                    *sc = exp(*sc - max);
                }
                let total: f32 = scores.iter().sum();
                let out = &mut attn[a * d + h * hd..a * d + (h + 1) * hd];
                out.fill(0.0);
                let pvh = &pv[h * n_prompt * hd..(h + 1) * n_prompt * hd];
                let gvh = &gv[base..base + (step + 1) * hd];
                for (&p, val) in scores
                    .iter()
                    .zip(pvh.chunks_exact(hd).chain(gvh.chunks_exact(hd)))
                {
                    axpy(p / total, val, out);
                }
            }
        }
        matmul_t(kern, &attn, m, d, &b.out, &mut proj);
        for (x, p) in x.iter_mut().zip(&proj) {
            *x += p;
        }
        rms_norm(kern, &x, &b.norm2, w.eps, &mut normed);
        matmul_t(kern, &normed, m, d, &b.gate_up, &mut gu);
        for a in 0..m {
            let g = &gu[a * 2 * hidden..a * 2 * hidden + hidden];
            let u = &gu[a * 2 * hidden + hidden..(a + 1) * 2 * hidden];
            for ((o, &g), &u) in act[a * hidden..(a + 1) * hidden].iter_mut().zip(g).zip(u) {
                *o = g / (1.0 + exp(-g)) * u;
            }
        }
        matmul_t(kern, &act, m, hidden, &b.down, &mut proj);
        for (x, p) in x.iter_mut().zip(&proj) {
            *x += p;
        }
    }
    rms_norm(kern, &x, &w.norm, w.eps, &mut normed);
    let mut logits = vec![0f32; m * w.vocab];
    matmul_t(kern, &normed, m, d, &w.embed, &mut logits);
    logits
}

/// Row-wise `log_softmax(logits / temperature)` over `vocab`-wide rows.
pub(crate) fn log_softmax_rows(logits: &mut [f32], vocab: usize, temperature: f32) {
    for row in logits.chunks_exact_mut(vocab.max(1)) {
        let mut max = f32::NEG_INFINITY;
        for v in row.iter_mut() {
            *v /= temperature;
            max = max.max(*v);
        }
        let total: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
        let log_total = max + total.ln() as f32;
        for v in row.iter_mut() {
            *v -= log_total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_polynomial_exp_matches_the_library_one() {
        let mut worst = 0f32;
        for i in -87_000..=88_000 {
            let x = i as f32 / 1000.0;
            let (a, b) = (exp(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 1e-6, "relative error {worst}");
        // Out of range: clamped, finite, never NaN.
        assert!(exp(-1e9) >= 0.0 && exp(-1e9) < 1e-37);
        assert!(exp(1e9).is_finite() && exp(1e9) > 1e38);
        assert!(exp(f32::NAN).is_nan());
    }

    fn check_matmul<K: Kernels>(kern: K) {
        // 7 rows (a 4-row block and 3 left), 5 weight rows (two pairs and one left),
        // k = 21 (two 8-lane blocks and 5 left; 16-wide and 8-wide steps of `dot`).
        let (m, k, n) = (7, 21, 5);
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0)
            .collect();
        let mut out = vec![f32::NAN; m * n];
        matmul_t(kern, &x, m, k, &w, &mut out);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum();
                assert!((out[i * n + j] - want).abs() < 1e-4, "{i},{j}");
            }
        }
        for len in [0, 1, 7, 8, 15, 16, 17, 33] {
            let want: f32 = x[..len].iter().zip(&w[..len]).map(|(a, b)| a * b).sum();
            assert!(
                (kern.dot(&x[..len], &w[..len]) - want).abs() < 1e-4,
                "{len}"
            );
        }
    }

    #[test]
    fn every_kernel_set_computes_the_matmul() {
        check_matmul(Portable);
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = Avx2::detect() {
            check_matmul(k);
        }
    }
}
