//! Building blocks: rotary embeddings (1D, 2D and 3D), attention with an optional KV
//! cache, RMSNorm, and the transformer blocks of the vision encoder and the decoder.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Rotary tables for positions with three axes (time, height, width).
///
/// The head dimension's `head_dim / 2` frequency pairs are split into three sections,
/// one per axis: pair `i` rotates by `position[axis(i)] · θ^(−2i/head_dim)`. A text
/// token has the same value on all three axes, which makes this the ordinary 1D RoPE;
/// `sections = [0, a, b]` with time fixed is the vision encoder's 2D RoPE.
/// `positions` is `[.., 3]` (float or integer); returns `(cos, sin)`, each
/// `[.., head_dim]`.
pub fn rope_tables(
    positions: &Tensor,
    sections: [i64; 3],
    head_dim: i64,
    theta: f64,
) -> (Tensor, Tensor) {
    let pairs = head_dim / 2;
    let device = positions.device();
    let inv: Vec<f32> = (0..pairs)
        .map(|i| (theta.powf(-2.0 * i as f64 / head_dim as f64)) as f32)
        .collect();
    let inv = Tensor::from_slice(&inv).to_device(device);
    let mut axis = Vec::with_capacity(pairs as usize);
    for (a, &n) in sections.iter().enumerate() {
        axis.extend(std::iter::repeat_n(a as i64, n as usize));
    }
    let axis = Tensor::from_slice(&axis).to_device(device);
    let pos = positions.to_kind(Kind::Float).index_select(-1, &axis);
    let angles = pos * inv;
    let angles = Tensor::cat(&[&angles, &angles], -1);
    (angles.cos(), angles.sin())
}

/// Splits `head_dim / 2` rotary pairs over (time, height, width): a quarter for
/// time, the rest halved between height and width.
pub fn mrope_sections(head_dim: i64) -> [i64; 3] {
    let pairs = head_dim / 2;
    let t = pairs / 4;
    let h = (pairs - t) / 2;
    [t, h, pairs - t - h]
}

/// The vision encoder's 2D sections: no time, half the pairs each for rows and
/// columns.
pub fn rope2d_sections(head_dim: i64) -> [i64; 3] {
    let pairs = head_dim / 2;
    [0, pairs / 2, pairs - pairs / 2]
}

/// Rotates `x` (`[.., T, D]`) by the tables `cos`, `sin` (broadcastable to it).
pub fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let last = x.dim() as i64 - 1;
    let half = x.size()[last as usize] / 2;
    let x1 = x.narrow(last, 0, half);
    let x2 = x.narrow(last, half, half);
    let rotated = Tensor::cat(&[&x2.neg(), &x1], last);
    x * cos + rotated * sin
}

/// Cached keys and values of one attention layer: preallocated buffers
/// `[B, H, capacity, D]` of which the first `len` positions are filled, so a decode
/// step writes one position instead of copying the whole cache.
#[derive(Debug)]
pub struct LayerCache {
    /// Keys.
    pub k: Tensor,
    /// Values.
    pub v: Tensor,
    /// Filled positions.
    pub len: i64,
}

impl LayerCache {
    /// Keeps only the batch rows `rows` (a 1-D int64 tensor).
    pub fn select_rows(&mut self, rows: &Tensor) {
        self.k = self.k.index_select(0, rows);
        self.v = self.v.index_select(0, rows);
    }

    /// Repeats the batch `n` times (one prompt's prefill shared by its group).
    pub fn repeat_batch(&mut self, n: i64) {
        self.k = self.k.repeat([n, 1, 1, 1]);
        self.v = self.v.repeat([n, 1, 1, 1]);
    }
}

/// How a forward pass masks attention.
pub enum Masking<'a> {
    /// Every query sees every key (vision encoder).
    Full,
    /// Causal over the sequence (and the cache before it).
    Causal,
    /// Packed sequences, each attending causally to itself only, computed sequence
    /// by sequence (no work on the masked-out blocks a dense mask would cost).
    Segments(&'a Segments),
}

/// Where the sequences of packed rows lie, grouped into buckets of similar length
/// for [`Masking::Segments`].
#[derive(Debug)]
pub struct Segments {
    /// Per bucket: gather index (`n · len` flat token positions, padding pointing at
    /// an extra zero row), sequences `n`, padded length `len`.
    buckets: Vec<(Tensor, i64, i64)>,
    /// For each flat token position, its row among the buckets' outputs (positions
    /// outside every sequence read a zero row).
    inverse: Tensor,
}

impl Segments {
    /// Segments for sequences `spans` = (flat start, length) within `total` flat
    /// positions (rows × row width). A bucket holds sequences at least half as long
    /// as its longest, so padding at most doubles a sequence.
    pub fn new(spans: &[(usize, usize)], total: usize, device: tch::Device) -> Segments {
        let mut order: Vec<usize> = (0..spans.len()).filter(|&i| spans[i].1 > 0).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(spans[i].1), i));
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for i in order {
            match groups.last_mut() {
                Some(g) if 2 * spans[i].1 >= spans[g[0]].1 => g.push(i),
                _ => groups.push(vec![i]),
            }
        }
        let mut inverse = vec![-1i64; total];
        let mut buckets = Vec::with_capacity(groups.len());
        let mut offset = 0i64;
        for g in &groups {
            let len = spans[g[0]].1;
            let mut idx = Vec::with_capacity(g.len() * len);
            for (k, &i) in g.iter().enumerate() {
                let (start, n) = spans[i];
                for j in 0..len {
                    if j < n {
                        idx.push((start + j) as i64);
                        inverse[start + j] = offset + (k * len + j) as i64;
                    } else {
                        idx.push(total as i64);
                    }
                }
            }
            buckets.push((
                Tensor::from_slice(&idx).to_device(device),
                g.len() as i64,
                len as i64,
            ));
            offset += (g.len() * len) as i64;
        }
        for v in inverse.iter_mut().filter(|v| **v < 0) {
            *v = offset;
        }
        Segments {
            buckets,
            inverse: Tensor::from_slice(&inverse).to_device(device),
        }
    }

    /// Causal attention of `q`, `k`, `v` (`[B, H, T, D]`) within each sequence;
    /// returns `[B, T, H·D]`.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
        let (b, h, t, d) = q.size4().unwrap_or((1, 1, 1, 1));
        let flat = |x: &Tensor| {
            let f = x.permute([0, 2, 1, 3]).reshape([b * t, h * d]);
            Tensor::cat(
                &[f, Tensor::zeros([1, h * d], (Kind::Float, x.device()))],
                0,
            )
        };
        let (fq, fk, fv) = (flat(q), flat(k), flat(v));
        let mut outs: Vec<Tensor> = Vec::with_capacity(self.buckets.len() + 1);
        for (idx, n, len) in &self.buckets {
            let pick = |f: &Tensor| {
                f.index_select(0, idx)
                    .view([*n, *len, h, d])
                    .transpose(1, 2)
            };
            let y = Tensor::scaled_dot_product_attention::<Tensor>(
                &pick(&fq),
                &pick(&fk),
                &pick(&fv),
                None,
                0.0,
                true,
                None,
                false,
            );
            outs.push(y.transpose(1, 2).reshape([n * len, h * d]));
        }
        outs.push(Tensor::zeros([1, h * d], (Kind::Float, q.device())));
        Tensor::cat(&outs, 0)
            .index_select(0, &self.inverse)
            .view([b, t, h * d])
    }
}

/// Multi-head self-attention with rotary positions.
#[derive(Debug)]
pub struct Attention {
    qkv: nn::Linear,
    out: nn::Linear,
    heads: i64,
    head_dim: i64,
}

impl Attention {
    /// Attention over `dim` with `heads` heads; `bias` on the projections.
    pub fn new(p: nn::Path, dim: i64, heads: i64, bias: bool) -> Attention {
        let cfg = nn::LinearConfig {
            bias,
            ..Default::default()
        };
        Attention {
            qkv: nn::linear(&p / "qkv", dim, 3 * dim, cfg),
            out: nn::linear(&p / "out", dim, dim, cfg),
            heads,
            head_dim: dim / heads,
        }
    }

    /// `x` is `[B, T, dim]`; `cos`/`sin` `[B, T, head_dim]` (or broadcastable). With
    /// `cache`, the new keys and values are written after its filled positions and
    /// the queries attend to all of them.
    pub fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        masking: &Masking<'_>,
        cache: Option<&mut LayerCache>,
    ) -> Tensor {
        let (b, t, d) = x.size3().unwrap_or((1, 1, 1));
        let qkv = x
            .apply(&self.qkv)
            .view([b, t, 3, self.heads, self.head_dim])
            .permute([2, 0, 3, 1, 4]);
        // Queries and keys rotate together: [2, B, H, T, D].
        let qk = apply_rope(&qkv.narrow(0, 0, 2), &cos.unsqueeze(1), &sin.unsqueeze(1));
        let q = qk.get(0);
        let mut k = qk.get(1);
        let mut v = qkv.get(2);
        let mut past = 0;
        if let Some(c) = cache {
            past = c.len;
            c.k.narrow(2, past, t).copy_(&k);
            c.v.narrow(2, past, t).copy_(&v);
            c.len += t;
            k = c.k.narrow(2, 0, c.len);
            v = c.v.narrow(2, 0, c.len);
        }
        let y = match masking {
            Masking::Full => Tensor::scaled_dot_product_attention::<Tensor>(
                &q, &k, &v, None, 0.0, false, None, false,
            ),
            // A single new query after a cache sees everything: no mask needed.
            Masking::Causal if t == 1 => Tensor::scaled_dot_product_attention::<Tensor>(
                &q, &k, &v, None, 0.0, false, None, false,
            ),
            Masking::Causal if past == 0 => Tensor::scaled_dot_product_attention::<Tensor>(
                &q, &k, &v, None, 0.0, true, None, false,
            ),
            Masking::Causal => {
                let total = past + t;
                let mask = Tensor::ones([t, total], (Kind::Bool, x.device())).tril(past);
                Tensor::scaled_dot_product_attention(
                    &q,
                    &k,
                    &v,
                    Some(&mask),
                    0.0,
                    false,
                    None,
                    false,
                )
            }
            Masking::Segments(segments) => {
                return segments.attend(&q, &k, &v).apply(&self.out);
            }
        };
        y.transpose(1, 2)
            .contiguous()
            .view([b, t, d])
            .apply(&self.out)
    }
}

/// Root-mean-square normalisation with a learned scale.
#[derive(Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// A norm over the last dimension of size `dim`.
    pub fn new(p: nn::Path, dim: i64) -> RmsNorm {
        RmsNorm {
            weight: p.var("weight", &[dim], nn::Init::Const(1.0)),
            eps: 1e-6,
        }
    }
}

impl RmsNorm {
    /// The learned scale and the epsilon.
    pub(crate) fn parts(&self) -> (&Tensor, f64) {
        (&self.weight, self.eps)
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let d = self.weight.size()[0];
        x.rms_norm([d], Some(&self.weight), self.eps)
    }
}

/// A vision-encoder block: pre-LayerNorm attention and a GELU MLP, with biases.
#[derive(Debug)]
pub struct VisionBlock {
    norm1: nn::LayerNorm,
    attn: Attention,
    norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl VisionBlock {
    /// A block of width `dim`, `heads` heads and MLP width `hidden`.
    pub fn new(p: nn::Path, dim: i64, heads: i64, hidden: i64) -> VisionBlock {
        VisionBlock {
            norm1: nn::layer_norm(&p / "norm1", vec![dim], Default::default()),
            attn: Attention::new(&p / "attn", dim, heads, true),
            norm2: nn::layer_norm(&p / "norm2", vec![dim], Default::default()),
            fc1: nn::linear(&p / "fc1", dim, hidden, Default::default()),
            fc2: nn::linear(&p / "fc2", hidden, dim, Default::default()),
        }
    }

    /// `x` is `[B, N, dim]`, every image of the batch the same size.
    pub fn forward(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
        let x = x + self
            .attn
            .forward(&x.apply(&self.norm1), cos, sin, &Masking::Full, None);
        let h = x
            .apply(&self.norm2)
            .apply(&self.fc1)
            .gelu("none")
            .apply(&self.fc2);
        x + h
    }
}

/// A decoder block: pre-RMSNorm attention and a SwiGLU MLP, no biases.
#[derive(Debug)]
pub struct DecoderBlock {
    norm1: RmsNorm,
    attn: Attention,
    norm2: RmsNorm,
    gate_up: nn::Linear,
    down: nn::Linear,
    hidden: i64,
}

impl DecoderBlock {
    /// A block of width `dim`, `heads` heads and SwiGLU width `hidden`.
    pub fn new(p: nn::Path, dim: i64, heads: i64, hidden: i64) -> DecoderBlock {
        let cfg = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        DecoderBlock {
            norm1: RmsNorm::new(&p / "norm1", dim),
            attn: Attention::new(&p / "attn", dim, heads, false),
            norm2: RmsNorm::new(&p / "norm2", dim),
            gate_up: nn::linear(&p / "gate_up", dim, 2 * hidden, cfg),
            down: nn::linear(&p / "down", hidden, dim, cfg),
            hidden,
        }
    }

    /// The block's weights, in the order the fused CPU decode step reads them:
    /// `norm1` scale, `qkv` `[3·dim, dim]`, `out` `[dim, dim]`, `norm2` scale,
    /// `gate_up` `[2·hidden, dim]`, `down` `[dim, hidden]`; and the norms' epsilon.
    pub(crate) fn weights(&self) -> ([&Tensor; 6], f64) {
        (
            [
                &self.norm1.weight,
                &self.attn.qkv.ws,
                &self.attn.out.ws,
                &self.norm2.weight,
                &self.gate_up.ws,
                &self.down.ws,
            ],
            self.norm1.eps,
        )
    }

    /// `x` is `[B, T, dim]`.
    pub fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        masking: &Masking<'_>,
        cache: Option<&mut LayerCache>,
    ) -> Tensor {
        let x = x + self
            .attn
            .forward(&x.apply(&self.norm1), cos, sin, masking, cache);
        let gu = x.apply(&self.norm2).apply(&self.gate_up);
        let gate = gu.narrow(-1, 0, self.hidden);
        let up = gu.narrow(-1, self.hidden, self.hidden);
        x + (gate.silu() * up).apply(&self.down)
    }
}
