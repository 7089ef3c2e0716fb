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

/// Rotates `x` (`[B, H, T, D]`) by the tables `cos`, `sin` (`[B, 1, T, D]`).
pub fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = x.size()[3] / 2;
    let x1 = x.narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    let rotated = Tensor::cat(&[&x2.neg(), &x1], 3);
    x * cos + rotated * sin
}

/// Cached keys and values of one attention layer, `[B, H, T, D]` each.
#[derive(Debug)]
pub struct LayerCache {
    /// Keys.
    pub k: Tensor,
    /// Values.
    pub v: Tensor,
}

/// How a forward pass masks attention.
pub enum Masking<'a> {
    /// Every query sees every key (vision encoder).
    Full,
    /// Causal over the sequence (and the cache before it).
    Causal,
    /// An explicit boolean mask `[B, 1, Tq, Tk]`, true where attention is allowed.
    Mask(&'a Tensor),
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

    /// `x` is `[B, T, dim]`; `cos`/`sin` `[B, T, head_dim]`. With `cache`, the new keys
    /// and values are appended to it and the queries attend to all of it.
    pub fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        masking: &Masking<'_>,
        cache: Option<&mut Option<LayerCache>>,
    ) -> Tensor {
        let (b, t, d) = x.size3().unwrap_or((1, 1, 1));
        let qkv = x
            .apply(&self.qkv)
            .view([b, t, 3, self.heads, self.head_dim])
            .permute([2, 0, 3, 1, 4]);
        let cos = cos.unsqueeze(1);
        let sin = sin.unsqueeze(1);
        let q = apply_rope(&qkv.get(0), &cos, &sin);
        let mut k = apply_rope(&qkv.get(1), &cos, &sin);
        let mut v = qkv.get(2);
        let mut past = 0;
        if let Some(slot) = cache {
            if let Some(c) = slot.take() {
                past = c.k.size()[2];
                k = Tensor::cat(&[&c.k, &k], 2);
                v = Tensor::cat(&[&c.v, &v], 2);
            }
            *slot = Some(LayerCache {
                k: k.shallow_clone(),
                v: v.shallow_clone(),
            });
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
            Masking::Mask(m) => {
                Tensor::scaled_dot_product_attention(&q, &k, &v, Some(*m), 0.0, false, None, false)
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

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let scale = (x.square().mean_dim(-1, true, Kind::Float) + self.eps).rsqrt();
        x * scale * &self.weight
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

    /// `x` is `[B, T, dim]`.
    pub fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        masking: &Masking<'_>,
        cache: Option<&mut Option<LayerCache>>,
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
