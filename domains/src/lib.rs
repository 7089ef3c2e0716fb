//! # rlcs-domains
//!
//! A domain is the unit teams plug in: a task source with a difficulty knob, the name
//! of the verifier that scores its answers, and a reasoning template for SFT.
//!
//! - [`Domain`]: `generate(seed, difficulty)` → [`Sample`] (prompt, images, typed
//!   [`Answer`], gold, template); `perturb` gives a plausible wrong answer.
//! - Built in ([`BUILTIN_DOMAINS`], [`domain_by_name`]): [`arithmetic`] (text),
//!   [`stem`], [`counting`], [`ocr`], [`chart`], [`grounding`], [`gui`] and [`video`],
//!   rendered with [`Canvas`] and the 5 × 7 [`font`].
//! - [`build_pool`]: a seeded train/eval pool of distinct samples per domain.
//! - [`reader`]: verl-format JSONL and Parquet datasets.
//!
//! ## Adding a domain
//!
//! A domain is one file plus one registry line. Write `src/<name>.rs` with a unit
//! struct implementing [`Domain`]: derive everything from `ChaCha8Rng::seed_from_u64(seed)`,
//! clamp the difficulty, draw the scene with [`Canvas`], and build the sample with
//! [`Sample::new`] (which hashes the content into the id) and [`glm_template`]. Then add
//! `pub mod <name>;`, the name to [`BUILTIN_DOMAINS`] and one arm to
//! [`domain_by_name`]; `tests/conformance.rs` then checks it with every other domain
//! (determinism, image bounds, template reward 1, wrong answers below 1, pools). Add
//! a test of your own that difficulty changes the task monotonically, measured on
//! what is generated. `rlcs data preview --domain <name>` shows what the model sees.
//!
//! A complete domain — which of two bars is taller:
//! ```
//! use rand::{Rng, SeedableRng};
//! use rand_chacha::ChaCha8Rng;
//! use rlcs_domains::image::{BLACK, WHITE};
//! use rlcs_domains::{build_pool, glm_template, Answer, Canvas, Domain, PoolSpec, Sample};
//!
//! struct TallerBar;
//!
//! impl Domain for TallerBar {
//!     fn name(&self) -> &str { "taller_bar" }
//!     fn verifier(&self) -> &str { "choice" }
//!     fn generate(&self, seed: u64, difficulty: f32) -> Sample {
//!         let d = if difficulty.is_finite() { difficulty.clamp(0.0, 1.0) } else { 0.0 };
//!         let mut rng = ChaCha8Rng::seed_from_u64(seed);
//!         // Harder: the two heights are closer.
//!         let a = rng.random_range(4..28i64);
//!         let gap = 1 + ((1.0 - d) * 10.0) as i64;
//!         let b = if a + gap < 30 { a + gap } else { a - gap };
//!         let (left, right) = if rng.random::<bool>() { (a, b) } else { (b, a) };
//!         let mut c = Canvas::new(32, 32, WHITE);
//!         c.fill_rect(6, 31 - left, 6, left, BLACK);
//!         c.fill_rect(20, 31 - right, 6, right, BLACK);
//!         let answer = Answer::text(if left > right { "A" } else { "B" });
//!         let think = format!("The left bar is {left} px tall and the right one {right} px.");
//!         let template = glm_template(&think, "", &answer.response());
//!         Sample::new(
//!             "taller_bar",
//!             "Which bar is taller? (A) left (B) right".into(),
//!             vec![c.finish()],
//!             answer,
//!             d,
//!             template,
//!         )
//!     }
//! }
//!
//! let d = TallerBar;
//! let s = d.generate(7, 0.9);
//! let verifier = rlcs_rewards::Registry::builtin().get(d.verifier()).unwrap();
//! assert_eq!(verifier.verify(&s.template, &s.gold).reward, 1.0);
//! let spec = PoolSpec { train: 20, eval: 5, difficulty_min: 0.0, difficulty_max: 1.0 };
//! let pool = build_pool(&d, &spec, 1).unwrap();
//! assert_eq!(pool.train.len(), 20);
//! ```
#![deny(missing_docs)]

pub mod answer;
pub mod arithmetic;
pub mod chart;
pub mod counting;
pub mod font;
pub mod grounding;
pub mod gui;
pub mod image;
mod knobs;
pub mod ocr;
pub mod reader;
mod shapes;
pub mod stem;
pub mod video;

use std::collections::HashSet;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use answer::{Action, Answer};
pub use image::{Canvas, Image, ImageError, Rgb};

/// Stable identifier of a sample: a hash of its domain and content.
pub type SampleId = u64;

/// One task: what the model sees and what counts as right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Content hash of domain, prompt and images; stable across runs and machines.
    pub id: SampleId,
    /// Domain name.
    pub domain: String,
    /// Prompt text.
    pub prompt: String,
    /// Images the prompt refers to, in order (several frames for video).
    #[serde(default)]
    pub images: Vec<Image>,
    /// The typed gold answer.
    pub answer: Answer,
    /// Gold answer as the verifier reads it ([`Answer::gold`]).
    pub gold: String,
    /// Difficulty in `[0, 1]` the generator was asked for.
    pub difficulty: f32,
    /// SFT reasoning template: a short think trace and the boxed answer, GLM format.
    pub template: String,
}

impl Sample {
    /// A sample whose id hashes the domain, prompt and images and whose gold is
    /// `answer`'s verifier form.
    pub fn new(
        domain: &str,
        prompt: String,
        images: Vec<Image>,
        answer: Answer,
        difficulty: f32,
        template: String,
    ) -> Sample {
        Sample {
            id: content_id(domain, &prompt, &images),
            domain: domain.to_string(),
            gold: answer.gold(),
            prompt,
            images,
            answer,
            difficulty: if difficulty.is_finite() {
                difficulty.clamp(0.0, 1.0)
            } else {
                0.0
            },
            template,
        }
    }
}

/// The stable id of a sample: FNV-1a over the domain, the prompt and every image's
/// size and pixels (without images it is `stable_hash([domain, prompt])`).
pub fn content_id(domain: &str, prompt: &str, images: &[Image]) -> SampleId {
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(images.len());
    for img in images {
        let mut p = Vec::with_capacity(8 + img.rgb.len());
        p.extend_from_slice(&img.width.to_le_bytes());
        p.extend_from_slice(&img.height.to_le_bytes());
        p.extend_from_slice(&img.rgb);
        parts.push(p);
    }
    let mut all: Vec<&[u8]> = vec![domain.as_bytes(), prompt.as_bytes()];
    all.extend(parts.iter().map(Vec::as_slice));
    stable_hash(&all)
}

/// The SFT reasoning template in the GLM format: `think` inside `<think>`, then
/// `lead` and the boxed answer inside `<answer>`.
pub fn glm_template(think: &str, lead: &str, boxed: &str) -> String {
    format!("<think>{think}</think><answer>{lead}<|begin_of_box|>{boxed}<|end_of_box|></answer>")
}

/// Which half of a pool a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Used for training.
    Train,
    /// Held out for evaluation.
    Eval,
}

/// A task source with a difficulty knob and a verifier.
pub trait Domain: Send + Sync {
    /// The domain's name (as written in configs).
    fn name(&self) -> &str;
    /// The registry name of the verifier that scores this domain's answers.
    fn verifier(&self) -> &str;
    /// Generates one sample; the same seed and difficulty give the same sample.
    fn generate(&self, seed: u64, difficulty: f32) -> Sample;
    /// A plausible wrong answer to `sample` (what a model would put in the box),
    /// different for different seeds where the answer allows; it scores below 1
    /// with the domain's verifier. Defaults to [`Answer::perturbed`].
    fn perturb(&self, sample: &Sample, seed: u64) -> String {
        sample.answer.perturbed(seed)
    }
}

/// Errors from the domain registry and pool builder.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DomainError {
    /// No domain of this name.
    #[error("unknown domain `{name}` (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Known names, comma separated.
        known: String,
    },
    /// The generator could not produce enough distinct samples.
    #[error("domain `{domain}` produced only {got} distinct samples of the {wanted} asked for (difficulty range too narrow?)")]
    TooFewDistinct {
        /// The domain.
        domain: String,
        /// Distinct samples produced.
        got: usize,
        /// Samples asked for.
        wanted: usize,
    },
    /// A difficulty range outside `[0, 1]` or reversed.
    #[error("difficulty range [{min}, {max}] must lie within [0, 1] with min <= max")]
    BadDifficulty {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
}

/// Names of the built-in domains.
pub const BUILTIN_DOMAINS: &[&str] = &[
    "arithmetic",
    "stem",
    "counting",
    "ocr",
    "chart",
    "grounding",
    "gui",
    "video",
];

/// The built-in domain called `name`.
pub fn domain_by_name(name: &str) -> Result<Arc<dyn Domain>, DomainError> {
    match name {
        "arithmetic" => Ok(Arc::new(arithmetic::Arithmetic)),
        "stem" => Ok(Arc::new(stem::Stem)),
        "counting" => Ok(Arc::new(counting::Counting)),
        "ocr" => Ok(Arc::new(ocr::Ocr)),
        "chart" => Ok(Arc::new(chart::Chart)),
        "gui" => Ok(Arc::new(gui::Gui)),
        "grounding" => Ok(Arc::new(grounding::Grounding)),
        "video" => Ok(Arc::new(video::Video)),
        _ => Err(DomainError::Unknown {
            name: name.to_string(),
            known: BUILTIN_DOMAINS.join(", "),
        }),
    }
}

/// FNV-1a, 64 bit: a stable content hash (the std hasher is not stable across releases).
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64 finaliser: derives independent seeds from one run seed.
pub fn mix_seed(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How many samples of one domain to build, and at which difficulties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// Train samples.
    pub train: usize,
    /// Held-out eval samples.
    pub eval: usize,
    /// Lowest difficulty.
    pub difficulty_min: f32,
    /// Highest difficulty; difficulties are drawn uniformly in between.
    pub difficulty_max: f32,
}

/// A domain's samples, split into train and eval. Ids are distinct across both.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    /// Train samples.
    pub train: Vec<Arc<Sample>>,
    /// Eval samples.
    pub eval: Vec<Arc<Sample>>,
}

/// Builds `spec.train + spec.eval` distinct samples of `domain`, deterministically
/// from `seed`; the first `train` go to the train split, the rest to eval.
pub fn build_pool(domain: &dyn Domain, spec: &PoolSpec, seed: u64) -> Result<Pool, DomainError> {
    let (lo, hi) = (spec.difficulty_min, spec.difficulty_max);
    if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
        return Err(DomainError::BadDifficulty { min: lo, max: hi });
    }
    let wanted = spec.train + spec.eval;
    let mut rng =
        ChaCha8Rng::seed_from_u64(mix_seed(seed, stable_hash(&[domain.name().as_bytes()])));
    let mut seen = HashSet::with_capacity(wanted);
    let mut out = Vec::with_capacity(wanted);
    // Generators can repeat themselves at low difficulty; bound the retries.
    let max_tries = wanted.saturating_mul(20).max(1000);
    let mut tries = 0;
    while out.len() < wanted && tries < max_tries {
        tries += 1;
        let d = if hi > lo {
            rng.random_range(lo..=hi)
        } else {
            lo
        };
        let s = domain.generate(rng.random(), d);
        if seen.insert(s.id) {
            out.push(Arc::new(s));
        }
    }
    if out.len() < wanted {
        return Err(DomainError::TooFewDistinct {
            domain: domain.name().to_string(),
            got: out.len(),
            wanted,
        });
    }
    let eval = out.split_off(spec.train);
    Ok(Pool { train: out, eval })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(train: usize, eval: usize) -> PoolSpec {
        PoolSpec {
            train,
            eval,
            difficulty_min: 0.0,
            difficulty_max: 1.0,
        }
    }

    #[test]
    fn pools_are_deterministic_and_distinct() {
        let d = domain_by_name("arithmetic").unwrap();
        let a = build_pool(d.as_ref(), &spec(200, 50), 3).unwrap();
        let b = build_pool(d.as_ref(), &spec(200, 50), 3).unwrap();
        assert_eq!(a.train, b.train);
        assert_eq!(a.eval, b.eval);
        let ids: HashSet<_> = a.train.iter().chain(&a.eval).map(|s| s.id).collect();
        assert_eq!(ids.len(), 250);
        let c = build_pool(d.as_ref(), &spec(200, 50), 4).unwrap();
        assert_ne!(a.train, c.train);
    }

    #[test]
    fn bad_specs_are_errors() {
        let d = domain_by_name("arithmetic").unwrap();
        let mut s = spec(10, 10);
        s.difficulty_max = 1.5;
        assert!(matches!(
            build_pool(d.as_ref(), &s, 0),
            Err(DomainError::BadDifficulty { .. })
        ));
        // The easiest arithmetic has far fewer than a thousand distinct problems.
        let tiny = PoolSpec {
            train: 1_000,
            eval: 0,
            difficulty_min: 0.0,
            difficulty_max: 0.0,
        };
        assert!(matches!(
            build_pool(d.as_ref(), &tiny, 0),
            Err(DomainError::TooFewDistinct { .. })
        ));
        assert!(matches!(
            domain_by_name("chess"),
            Err(DomainError::Unknown { .. })
        ));
    }

    #[test]
    fn stable_hash_is_stable() {
        // Pinned: ids must not change between releases.
        assert_eq!(
            stable_hash(&[b"arithmetic", b"1 + 2"]),
            stable_hash(&[b"arithmetic", b"1 + 2"])
        );
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_eq!(stable_hash(&[]), 0xcbf2_9ce4_8422_2325);
    }
}
