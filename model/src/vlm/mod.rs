//! A small GLM-4.1V-style vision-language model on libtorch.
//!
//! - **Vision encoder**: images are resized (aspect ratio kept) to multiples of twice
//!   the patch size, cut into patches, embedded linearly (or by a stack of strided
//!   convolutions, `patch_stem = "conv"`) and encoded by a ViT whose attention uses
//!   2D rotary positions over the patch grid — no position table, so any height,
//!   width and aspect ratio works.
//! - **Projector**: each 2 × 2 block of patch features is concatenated and mapped by
//!   an MLP to one language-model token.
//! - **Decoder**: a decoder-only transformer (RMSNorm, SwiGLU, tied embeddings) with
//!   3D rotary positions: text tokens advance time, height and width together; the
//!   tokens of an image share its start time and take height and width from their
//!   grid cell; a video's frames advance time.
//!
//! Prompts are laid out as
//! `<|user|><|begin_of_image|><|image|>…<|end_of_image|>TEXT<|assistant|>` (videos in
//! `<|begin_of_video|>…<|end_of_video|>`), and responses follow in the GLM format,
//! ending with `<|endoftext|>`.

pub mod bench;
mod fused;
mod generate;
pub mod nn;
mod policy;
mod train;

pub use crate::config::{Aggregation, GrpoConfig, PatchStem, TchConfig, TrainConfig, VlmConfig};
pub use crate::LmExample;
pub use generate::{GenerateOptions, Generated};
pub use policy::{device_from, LmStats, TchPolicy};
pub use train::{AdamW, GrpoSequence};

use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use crate::tokenizer::{Special, Tokenizer};
use crate::{ModelError, Prompt, PromptImage};
use nn::{DecoderBlock, LayerCache, Masking, RmsNorm, VisionBlock};

/// A prompt laid out as tokens: ids, 3D positions and where image features go.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Token ids.
    pub ids: Vec<u32>,
    /// (time, height, width) position of each token.
    pub positions: Vec<[i64; 3]>,
    /// The images, in order, with the offset of their first feature token.
    pub images: Vec<(usize, PreparedImage)>,
    /// Position of the next token.
    pub next_position: i64,
}

/// An image resized and ready for the encoder.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// The source pixels (shared; also the cache key within a batch).
    pub source: PromptImage,
    /// Height after resizing, a multiple of twice the patch size.
    pub height: i64,
    /// Width after resizing.
    pub width: i64,
}

impl PreparedImage {
    /// Merged-token grid (rows, columns) for `patch`-pixel patches.
    pub fn grid(&self, patch: i64) -> (i64, i64) {
        (self.height / (2 * patch), self.width / (2 * patch))
    }
}

/// Pixels to patch features.
enum Stem {
    /// `patch_embed`: a flattened patch mapped linearly.
    Linear(tch::nn::Linear),
    /// Strided 3 × 3 convolutions, then a 1 × 1 projection to the vision width.
    Conv {
        layers: Vec<tch::nn::Conv2D>,
        proj: tch::nn::Conv2D,
    },
}

impl Stem {
    fn new(v: &tch::nn::Path, c: &VlmConfig) -> Stem {
        match c.patch_stem {
            PatchStem::Linear => Stem::Linear(tch::nn::linear(
                v / "patch_embed",
                3 * c.patch_size * c.patch_size,
                c.vision_dim,
                Default::default(),
            )),
            PatchStem::Conv => {
                let conv = tch::nn::ConvConfig {
                    stride: 2,
                    padding: 1,
                    ..Default::default()
                };
                let mut inputs = 3;
                let layers = c
                    .stem_channels()
                    .into_iter()
                    .enumerate()
                    .map(|(i, out)| {
                        let l = tch::nn::conv2d(v / "stem" / i, inputs, out, 3, conv);
                        inputs = out;
                        l
                    })
                    .collect();
                let proj = tch::nn::conv2d(
                    v / "stem" / "proj",
                    inputs,
                    c.vision_dim,
                    1,
                    Default::default(),
                );
                Stem::Conv { layers, proj }
            }
        }
    }

    /// `[n, 3, H, W]` pixels to `[n, (H/p)·(W/p), vision_dim]` patch features in
    /// 2 × 2 merge order (the four patches of each merged token consecutive).
    fn forward(&self, pixels: &Tensor, p: i64) -> Tensor {
        let (n, _, h, w) = pixels.size4().unwrap_or((1, 3, 2 * p, 2 * p));
        let (mh, mw) = (h / (2 * p), w / (2 * p));
        match self {
            Stem::Linear(embed) => pixels
                // [n, 3, mh, 2, p, mw, 2, p] → [n, mh, mw, 2, 2, 3, p, p].
                .view(&[n, 3, mh, 2, p, mw, 2, p][..])
                .permute([0, 2, 5, 3, 6, 1, 4, 7])
                .reshape([n, mh * mw * 4, 3 * p * p])
                .apply(embed),
            Stem::Conv { layers, proj } => {
                let mut x = pixels.shallow_clone();
                for l in layers {
                    x = x.apply(l).gelu("none");
                }
                let x = x.apply(proj);
                let d = x.size()[1];
                // [n, d, mh, 2, mw, 2] → [n, mh, mw, 2, 2, d].
                x.view(&[n, d, mh, 2, mw, 2][..])
                    .permute([0, 2, 4, 3, 5, 1])
                    .reshape([n, mh * mw * 4, d])
            }
        }
    }
}

/// The model: vision encoder, projector and decoder.
pub struct Vlm {
    /// Sizes.
    pub config: VlmConfig,
    /// Tokenizer.
    pub tokenizer: Tokenizer,
    vs: tch::nn::VarStore,
    stem: Stem,
    vision: Vec<VisionBlock>,
    vision_norm: tch::nn::LayerNorm,
    merge1: tch::nn::Linear,
    merge2: tch::nn::Linear,
    embed: Tensor,
    blocks: Vec<DecoderBlock>,
    norm: RmsNorm,
}

impl std::fmt::Debug for Vlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Vlm({} parameters on {:?})",
            self.parameter_count(),
            self.device()
        )
    }
}

fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Vlm {
    /// A freshly initialised model on `device`; the weights depend only on `seed`.
    pub fn new(config: VlmConfig, seed: u64, device: Device) -> Result<Vlm, ModelError> {
        config.validate()?;
        let tokenizer = Tokenizer::from_spec(&config.tokenizer)
            .map_err(|e| ModelError::Config(e.to_string()))?;
        let vs = tch::nn::VarStore::new(device);
        let root = vs.root();
        let c = &config;
        let v = &root / "vision";
        let stem = Stem::new(&v, c);
        let vision = (0..c.vision_layers)
            .map(|i| {
                VisionBlock::new(
                    &v / "blocks" / i,
                    c.vision_dim,
                    c.vision_heads,
                    4 * c.vision_dim,
                )
            })
            .collect();
        let vision_norm = tch::nn::layer_norm(&v / "norm", vec![c.vision_dim], Default::default());
        let pj = &root / "projector";
        let merge1 = tch::nn::linear(&pj / "fc1", 4 * c.vision_dim, c.dim, Default::default());
        let merge2 = tch::nn::linear(&pj / "fc2", c.dim, c.dim, Default::default());
        let lm = &root / "lm";
        let vocab = tokenizer.vocab_size() as i64;
        let embed = lm.var("embed", &[vocab, c.dim], tch::nn::Init::Const(0.0));
        let blocks = (0..c.layers)
            .map(|i| DecoderBlock::new(&lm / "blocks" / i, c.dim, c.heads, c.mlp_hidden))
            .collect();
        let norm = RmsNorm::new(&lm / "norm", c.dim);
        let model = Vlm {
            config,
            tokenizer,
            vs,
            stem,
            vision,
            vision_norm,
            merge1,
            merge2,
            embed,
            blocks,
            norm,
        };
        model.initialise(seed);
        Ok(model)
    }

    /// Seeded initialisation independent of libtorch's global generator: biases 0,
    /// norm scales 1, matrices normal(0, 0.02) (output projections scaled by
    /// 1/√(2·layers)), 3 × 3 stem convolutions normal(0, √(2 / fan-in)).
    fn initialise(&self, seed: u64) {
        use rand::{Rng, SeedableRng};
        let layers = self.config.layers.max(self.config.vision_layers) as f64;
        tch::no_grad(|| {
            for (name, mut t) in self.named_parameters() {
                let numel = t.numel();
                let values: Vec<f32> = if name.ends_with("bias") {
                    vec![0.0; numel]
                } else if t.dim() == 1 {
                    vec![1.0; numel]
                } else {
                    let size = t.size();
                    let std = if t.dim() == 4 && size[2] > 1 {
                        // He initialisation of the convolutional stem's 3 × 3
                        // layers (GELU after each): fan-in = channels × 9.
                        (2.0 / (size[1] * size[2] * size[3]) as f64).sqrt()
                    } else if name.ends_with("out.weight")
                        || name.ends_with("down.weight")
                        || name.ends_with("fc2.weight")
                    {
                        0.02 / (2.0 * layers).sqrt()
                    } else {
                        0.02
                    };
                    let mut rng =
                        rand_chacha::ChaCha8Rng::seed_from_u64(mix(seed, name_hash(&name)));
                    (0..numel)
                        .map(|_| {
                            // Box–Muller.
                            let u1: f64 = rng.random::<f64>().max(1e-300);
                            let u2: f64 = rng.random();
                            (std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
                                as f32
                        })
                        .collect()
                };
                let src = Tensor::from_slice(&values)
                    .view(t.size().as_slice())
                    .to_device(t.device());
                t.copy_(&src);
            }
        });
    }

    /// Parameters by name, sorted by name.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Number of scalar parameters.
    pub fn parameter_count(&self) -> usize {
        self.vs.variables().values().map(|t| t.numel()).sum()
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The variable store (for optimisers and checkpoints).
    pub fn var_store(&self) -> &tch::nn::VarStore {
        &self.vs
    }

    /// Mutable variable store.
    pub fn var_store_mut(&mut self) -> &mut tch::nn::VarStore {
        &mut self.vs
    }

    /// Resizes `image` so both sides are multiples of twice the patch size, the
    /// longest at most `max_image_side`, the aspect ratio kept as well as that allows.
    pub fn prepare_image(&self, image: &PromptImage) -> Result<PreparedImage, ModelError> {
        let (w, h) = (image.width as i64, image.height as i64);
        if w == 0 || h == 0 || image.rgb.len() as i64 != w * h * 3 {
            return Err(ModelError::Config(format!(
                "image of {}x{} has {} bytes, expected {}",
                image.width,
                image.height,
                image.rgb.len(),
                w * h * 3
            )));
        }
        let unit = 2 * self.config.patch_size;
        let max = self.config.max_image_side / unit * unit;
        let scale = (max as f64 / w.max(h) as f64).min(1.0);
        let fit = |side: i64| -> i64 {
            let s = ((side as f64 * scale / unit as f64).round() as i64).max(1) * unit;
            s.min(max)
        };
        Ok(PreparedImage {
            source: image.clone(),
            height: fit(h),
            width: fit(w),
        })
    }

    /// Lays `prompt` out as tokens.
    pub fn layout(&self, prompt: &Prompt) -> Result<Layout, ModelError> {
        let t = &self.tokenizer;
        let mut ids = vec![t.special(Special::User)];
        let mut positions = vec![[0i64; 3]];
        let mut next = 1i64;
        let mut images = Vec::new();
        let patch = self.config.patch_size;
        let prepared = prompt
            .images
            .iter()
            .map(|i| self.prepare_image(i))
            .collect::<Result<Vec<_>, _>>()?;
        let push = |ids: &mut Vec<u32>, positions: &mut Vec<[i64; 3]>, id: u32, p: i64| {
            ids.push(id);
            positions.push([p, p, p]);
        };
        if prompt.video && !prepared.is_empty() {
            push(
                &mut ids,
                &mut positions,
                t.special(Special::BeginVideo),
                next,
            );
            next += 1;
            let start = next;
            let mut extent = 0;
            for (f, img) in prepared.into_iter().enumerate() {
                let (gh, gw) = img.grid(patch);
                images.push((ids.len(), img));
                for r in 0..gh {
                    for c in 0..gw {
                        ids.push(t.special(Special::Video));
                        positions.push([start + f as i64, start + r, start + c]);
                    }
                }
                extent = extent.max(f as i64 + 1).max(gh).max(gw);
            }
            next = start + extent;
            push(&mut ids, &mut positions, t.special(Special::EndVideo), next);
            next += 1;
        } else {
            for img in prepared {
                push(
                    &mut ids,
                    &mut positions,
                    t.special(Special::BeginImage),
                    next,
                );
                next += 1;
                let (gh, gw) = img.grid(patch);
                images.push((ids.len(), img));
                for r in 0..gh {
                    for c in 0..gw {
                        ids.push(t.special(Special::Image));
                        positions.push([next, next + r, next + c]);
                    }
                }
                next += gh.max(gw);
                push(&mut ids, &mut positions, t.special(Special::EndImage), next);
                next += 1;
            }
        }
        for id in t.encode(&prompt.text) {
            push(&mut ids, &mut positions, id, next);
            next += 1;
        }
        push(
            &mut ids,
            &mut positions,
            t.special(Special::Assistant),
            next,
        );
        next += 1;
        Ok(Layout {
            ids,
            positions,
            images,
            next_position: next,
        })
    }

    /// Encodes images of one size (`[n, 3, H, W]` in [-1, 1]) to projected tokens
    /// `[n, H·W / (4·patch²), dim]`.
    fn encode_same_size(&self, pixels: &Tensor) -> Tensor {
        let p = self.config.patch_size;
        let (n, _, h, w) = pixels.size4().unwrap_or((1, 3, 2 * p, 2 * p));
        let (mh, mw) = (h / (2 * p), w / (2 * p));
        let mut pos = Vec::with_capacity((mh * mw * 4 * 3) as usize);
        for r in 0..mh {
            for c in 0..mw {
                for dr in 0..2 {
                    for dc in 0..2 {
                        pos.extend_from_slice(&[0, 2 * r + dr, 2 * c + dc]);
                    }
                }
            }
        }
        let pos = Tensor::from_slice(&pos)
            .view([1, mh * mw * 4, 3])
            .to_device(pixels.device());
        let hd = self.config.vision_dim / self.config.vision_heads;
        let (cos, sin) = nn::rope_tables(&pos, nn::rope2d_sections(hd), hd, self.config.rope_theta);
        let mut x = self.stem.forward(pixels, p);
        for b in &self.vision {
            x = b.forward(&x, &cos, &sin);
        }
        let x = x.apply(&self.vision_norm);
        x.reshape([n, mh * mw, 4 * self.config.vision_dim])
            .apply(&self.merge1)
            .gelu("none")
            .apply(&self.merge2)
    }

    /// Pixels of a prepared image as `[3, H, W]` in [-1, 1] on the model's device.
    fn pixels(&self, img: &PreparedImage) -> Tensor {
        let s = &img.source;
        let raw = Tensor::from_slice(&s.rgb[..])
            .view([s.height as i64, s.width as i64, 3])
            .permute([2, 0, 1])
            .to_device(self.device())
            .to_kind(Kind::Float)
            .unsqueeze(0)
            / 127.5
            - 1.0;
        let resized = if (s.height as i64, s.width as i64) == (img.height, img.width) {
            raw
        } else {
            raw.upsample_bilinear2d([img.height, img.width], false, None, None)
        };
        resized.squeeze_dim(0)
    }

    /// Encodes `images` to projected tokens, one `[tokens, dim]` tensor per image.
    /// Identical images (the same shared pixels) are encoded once; images of one
    /// size go through the encoder together.
    pub fn encode_images(&self, images: &[&PreparedImage]) -> Vec<Tensor> {
        let mut unique: Vec<usize> = Vec::new();
        let mut of: Vec<usize> = Vec::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            let same = unique.iter().position(|&u| {
                let o = images[u];
                Arc::ptr_eq(&o.source.rgb, &img.source.rgb)
                    && (o.height, o.width) == (img.height, img.width)
            });
            match same {
                Some(k) => of.push(k),
                None => {
                    of.push(unique.len());
                    unique.push(i);
                }
            }
        }
        let mut encoded: Vec<Option<Tensor>> = (0..unique.len()).map(|_| None).collect();
        let mut by_size: std::collections::BTreeMap<(i64, i64), Vec<usize>> = Default::default();
        for (k, &i) in unique.iter().enumerate() {
            by_size
                .entry((images[i].height, images[i].width))
                .or_default()
                .push(k);
        }
        for ks in by_size.values() {
            let px: Vec<Tensor> = ks.iter().map(|&k| self.pixels(images[unique[k]])).collect();
            let out = self.encode_same_size(&Tensor::stack(&px, 0));
            for (j, &k) in ks.iter().enumerate() {
                encoded[k] = Some(out.get(j as i64));
            }
        }
        of.iter()
            .map(|&k| {
                encoded[k]
                    .as_ref()
                    .map(|t| t.shallow_clone())
                    .unwrap_or_else(|| {
                        Tensor::zeros([0, self.config.dim], (Kind::Float, self.device()))
                    })
            })
            .collect()
    }

    /// Input embeddings `[B, T, dim]` for token ids `[B, T]`, with `features`
    /// (`[n, dim]`) written at the flat positions `slots` (`[n]`, indices into B·T).
    pub fn embed(&self, ids: &Tensor, slots: Option<(&Tensor, &Tensor)>) -> Tensor {
        let (b, t) = ids.size2().unwrap_or((1, 1));
        let x = self.embed.index_select(0, &ids.view([-1]));
        let x = match slots {
            Some((idx, feats)) if feats.size()[0] > 0 => x.index_copy(0, idx, feats),
            _ => x,
        };
        x.view([b, t, self.config.dim])
    }

    /// Decoder pass: `x` `[B, T, dim]`, `positions` `[B, T, 3]`; returns the final
    /// hidden states `[B, T, dim]` (before the vocabulary projection).
    pub fn decode(
        &self,
        x: &Tensor,
        positions: &Tensor,
        masking: &Masking<'_>,
        cache: Option<&mut Vec<LayerCache>>,
    ) -> Tensor {
        let (cos, sin) = self.rope(positions);
        self.decode_rotated(x, &cos, &sin, masking, cache)
    }

    /// The decoder's rotary tables for `positions` (`[.., 3]`).
    pub fn rope(&self, positions: &Tensor) -> (Tensor, Tensor) {
        let hd = self.config.dim / self.config.heads;
        nn::rope_tables(
            positions,
            nn::mrope_sections(hd),
            hd,
            self.config.rope_theta,
        )
    }

    /// [`decode`](Vlm::decode) with the rotary tables already computed.
    pub fn decode_rotated(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        masking: &Masking<'_>,
        mut cache: Option<&mut Vec<LayerCache>>,
    ) -> Tensor {
        let mut x = x.shallow_clone();
        for (i, b) in self.blocks.iter().enumerate() {
            let slot = cache.as_deref_mut().and_then(|c| c.get_mut(i));
            x = b.forward(&x, cos, sin, masking, slot);
        }
        x.apply(&self.norm)
    }

    /// Vocabulary logits of hidden states (the embedding matrix, tied).
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        hidden.matmul(&self.embed.tr())
    }

    /// An empty KV cache for `batch` rows of up to `capacity` positions.
    pub fn new_cache(&self, batch: i64, capacity: i64) -> Vec<LayerCache> {
        let hd = self.config.dim / self.config.heads;
        let shape = [batch, self.config.heads, capacity, hd];
        (0..self.blocks.len())
            .map(|_| LayerCache {
                k: Tensor::zeros(shape, (Kind::Float, self.device())),
                v: Tensor::zeros(shape, (Kind::Float, self.device())),
                len: 0,
            })
            .collect()
    }

    /// Next-token logits `[T, vocab]` for one laid-out prompt followed by `extra`
    /// tokens, in one pass without a cache (for tests and checks).
    pub fn sequence_logits(&self, layout: &Layout, extra: &[u32]) -> Tensor {
        let mut ids: Vec<i64> = layout.ids.iter().map(|&i| i as i64).collect();
        let mut pos: Vec<i64> = layout.positions.iter().flatten().copied().collect();
        for (k, &e) in extra.iter().enumerate() {
            ids.push(e as i64);
            let p = layout.next_position + k as i64;
            pos.extend_from_slice(&[p, p, p]);
        }
        let dev = self.device();
        let t = ids.len() as i64;
        let ids = Tensor::from_slice(&ids).view([1, t]).to_device(dev);
        let pos = Tensor::from_slice(&pos).view([1, t, 3]).to_device(dev);
        let imgs: Vec<&PreparedImage> = layout.images.iter().map(|(_, i)| i).collect();
        let feats = self.encode_images(&imgs);
        let (idx, feats) = self.slots(&[(0, layout)], &feats);
        let x = self.embed(&ids, Some((&idx, &feats)));
        let h = self.decode(&x, &pos, &Masking::Causal, None);
        self.logits(&h).squeeze_dim(0)
    }

    /// Flat slot indices and concatenated features for layouts placed at flat
    /// offsets: `placed` = (offset of the layout's first token in B·T, layout);
    /// `feats` one tensor per image of the layouts, in order.
    pub(crate) fn slots(&self, placed: &[(i64, &Layout)], feats: &[Tensor]) -> (Tensor, Tensor) {
        let mut idx: Vec<i64> = Vec::new();
        let mut parts: Vec<&Tensor> = Vec::new();
        let mut k = 0;
        for (offset, layout) in placed {
            for (at, _) in &layout.images {
                let f = &feats[k];
                let n = f.size()[0];
                idx.extend((0..n).map(|j| offset + *at as i64 + j));
                parts.push(f);
                k += 1;
            }
        }
        let dev = self.device();
        if parts.is_empty() {
            return (
                Tensor::zeros([0], (Kind::Int64, dev)),
                Tensor::zeros([0, self.config.dim], (Kind::Float, dev)),
            );
        }
        (
            Tensor::from_slice(&idx).to_device(dev),
            Tensor::cat(&parts, 0),
        )
    }
}

/// A stable 64-bit hash of a string (FNV-1a), for seeding per-parameter streams.
pub(crate) fn name_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests;
