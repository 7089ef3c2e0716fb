//! `rlcs data`: look at what the model sees. [`preview`] renders samples of a domain
//! as PNG files with a JSON sidecar each; [`check`] reads a dataset file and reports
//! what loads and which rows do not; [`vocab`] writes a word-level vocabulary of the
//! built-in domains' text for `[tch.model] tokenizer`.

use std::path::{Path, PathBuf};

use rlcs_domains::reader::{read_dataset, ReaderError, RowError};
pub use rlcs_domains::reader::{OnBadRow, ReaderOptions};
use rlcs_domains::{domain_by_name, mix_seed, Answer, DomainError};
use rlcs_rewards::Registry;
use serde::Serialize;

/// Errors of `rlcs data`.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Unknown domain.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A value out of range, named.
    #[error("--{flag}: {reason}")]
    Arg {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The output directory cannot be used.
    #[error("{path}: {reason}")]
    Out {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The domain names a verifier the registry lacks.
    #[error("domain `{domain}` uses verifier `{verifier}`, which is not registered")]
    Verifier {
        /// The domain.
        domain: String,
        /// Its verifier.
        verifier: String,
    },
    /// Reading a dataset failed.
    #[error(transparent)]
    Read(#[from] ReaderError),
}

/// What [`vocab`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct VocabSummary {
    /// The `tokenizer.json` written.
    pub path: PathBuf,
    /// Texts read (each sample's prompt, SFT template and gold answer).
    pub texts: usize,
    /// Vocabulary size, specials included.
    pub vocab_size: usize,
    /// Mean tokens per text with the vocabulary.
    pub mean_tokens: f64,
    /// Mean tokens per text with the character-level tokenizer.
    pub mean_chars: f64,
}

/// Writes to `out` (which must not exist) a word-level vocabulary
/// ([`rlcs_model::tokenizer::word_vocabulary`]) of the built-in domains' text:
/// `samples` samples of every built-in domain at each of `difficulties`, seeded by
/// `seed`; words seen fewer than `min_count` times stay spelled out.
pub fn vocab(
    out: &Path,
    samples: usize,
    difficulties: &[f32],
    seed: u64,
    min_count: usize,
) -> Result<VocabSummary, DataError> {
    if samples == 0 || samples > MAX_PREVIEW {
        return Err(DataError::Arg {
            flag: "samples",
            reason: format!("must be 1 to {MAX_PREVIEW}, got {samples}"),
        });
    }
    if let Some(d) = difficulties
        .iter()
        .find(|d| !(0.0..=1.0).contains(*d) || d.is_nan())
    {
        return Err(DataError::Arg {
            flag: "difficulties",
            reason: format!("each must be in [0, 1], got {d}"),
        });
    }
    if difficulties.is_empty() {
        return Err(DataError::Arg {
            flag: "difficulties",
            reason: "give at least one".into(),
        });
    }
    if out.exists() {
        return Err(DataError::Out {
            path: out.to_path_buf(),
            reason: "already exists; give a new file".into(),
        });
    }
    let mut texts: Vec<String> = Vec::new();
    for name in rlcs_domains::BUILTIN_DOMAINS {
        let d = domain_by_name(name)?;
        for (j, &difficulty) in difficulties.iter().enumerate() {
            for k in 0..samples {
                let s = d.generate(mix_seed(seed, (j * samples + k) as u64), difficulty);
                texts.extend([s.prompt, s.template, s.gold]);
            }
        }
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let file = rlcs_model::tokenizer::word_vocabulary(&refs, min_count);
    let tokenizer =
        rlcs_model::tokenizer::Tokenizer::parse_hugging_face(&file, &out.display().to_string())
            .map_err(|e| DataError::Out {
                path: out.to_path_buf(),
                reason: e.to_string(),
            })?;
    let chars = rlcs_model::tokenizer::Tokenizer::chars();
    let mean = |t: &rlcs_model::tokenizer::Tokenizer| {
        refs.iter().map(|x| t.encode(x).len()).sum::<usize>() as f64 / refs.len().max(1) as f64
    };
    write(out.to_path_buf(), file.as_bytes())?;
    Ok(VocabSummary {
        path: out.to_path_buf(),
        texts: refs.len(),
        vocab_size: tokenizer.vocab_size(),
        mean_tokens: mean(&tokenizer),
        mean_chars: mean(&chars),
    })
}

/// Most samples one preview writes.
pub const MAX_PREVIEW: usize = 10_000;

/// The JSON sidecar of one previewed sample.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewEntry {
    /// Sample id (hex).
    pub id: String,
    /// Domain.
    pub domain: String,
    /// Difficulty the sample was generated with.
    pub difficulty: f32,
    /// Prompt text.
    pub prompt: String,
    /// The image files of this sample, in order (relative to the preview folder).
    pub images: Vec<String>,
    /// Image sizes, `[width, height]` each.
    pub sizes: Vec<[u32; 2]>,
    /// Typed gold answer.
    pub answer: Answer,
    /// Gold as the verifier reads it.
    pub gold: String,
    /// The verifier.
    pub verifier: String,
    /// SFT reasoning template.
    pub template: String,
    /// Reward of the template under the verifier (1 for a well-formed domain).
    pub template_reward: f64,
    /// A wrong answer and its reward (below 1 for a well-formed domain).
    pub wrong_answer: String,
    /// Reward of the template with the wrong answer in its box.
    pub wrong_reward: f64,
}

/// What a preview wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewSummary {
    /// Samples written.
    pub samples: Vec<PreviewEntry>,
    /// Files written (images and sidecars).
    pub files: usize,
}

fn out_dir(path: &Path) -> Result<(), DataError> {
    crate::new_or_empty_dir(path).map_err(|reason| DataError::Out {
        path: path.to_path_buf(),
        reason,
    })
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<(), DataError> {
    std::fs::write(&path, bytes).map_err(|source| DataError::Write { path, source })
}

/// Renders `count` samples of `domain` at `difficulty` (seeded by `seed`) into `out`:
/// `NNN-<id>-<frame>.png` per image and `NNN-<id>.json` per sample ([`PreviewEntry`]),
/// plus `index.json` listing them all. `out` must be new or empty.
pub fn preview(
    domain: &str,
    difficulty: f32,
    count: usize,
    seed: u64,
    out: &Path,
) -> Result<PreviewSummary, DataError> {
    let d = domain_by_name(domain)?;
    if !(0.0..=1.0).contains(&difficulty) {
        return Err(DataError::Arg {
            flag: "difficulty",
            reason: format!("must lie in [0, 1], got {difficulty}"),
        });
    }
    if count == 0 || count > MAX_PREVIEW {
        return Err(DataError::Arg {
            flag: "count",
            reason: format!("must lie in 1..={MAX_PREVIEW}, got {count}"),
        });
    }
    let registry = Registry::builtin();
    let verifier = registry
        .get(d.verifier())
        .map_err(|_| DataError::Verifier {
            domain: domain.to_string(),
            verifier: d.verifier().to_string(),
        })?;
    out_dir(out)?;
    let mut samples = Vec::with_capacity(count);
    let mut files = 0;
    for k in 0..count {
        let s = d.generate(mix_seed(seed, k as u64), difficulty);
        let stem = format!("{k:03}-{:016x}", s.id);
        let mut images = Vec::with_capacity(s.images.len());
        let mut sizes = Vec::with_capacity(s.images.len());
        for (f, img) in s.images.iter().enumerate() {
            let name = format!("{stem}-{f}.png");
            let png = img.to_png().map_err(|e| DataError::Write {
                path: out.join(&name),
                source: std::io::Error::other(e.to_string()),
            })?;
            write(out.join(&name), &png)?;
            files += 1;
            images.push(name);
            sizes.push([img.width, img.height]);
        }
        let template_reward = verifier.verify(&s.template, &s.gold).reward;
        let wrong_answer = d.perturb(&s, k as u64);
        let right_box = format!("<|begin_of_box|>{}<|end_of_box|>", s.answer.response());
        let wrong = s.template.replace(
            &right_box,
            &format!("<|begin_of_box|>{wrong_answer}<|end_of_box|>"),
        );
        let wrong_reward = verifier.verify(&wrong, &s.gold).reward;
        let entry = PreviewEntry {
            id: format!("{:016x}", s.id),
            domain: s.domain.clone(),
            difficulty: s.difficulty,
            prompt: s.prompt.clone(),
            images,
            sizes,
            answer: s.answer.clone(),
            gold: s.gold.clone(),
            verifier: d.verifier().to_string(),
            template: s.template.clone(),
            template_reward,
            wrong_answer,
            wrong_reward,
        };
        let json = serde_json::to_vec_pretty(&entry).map_err(|e| DataError::Write {
            path: out.join(format!("{stem}.json")),
            source: std::io::Error::other(e),
        })?;
        write(out.join(format!("{stem}.json")), &json)?;
        files += 1;
        samples.push(entry);
    }
    let summary = PreviewSummary { samples, files };
    let index = serde_json::to_vec_pretty(&summary.samples).map_err(|e| DataError::Write {
        path: out.join("index.json"),
        source: std::io::Error::other(e),
    })?;
    write(out.join("index.json"), &index)?;
    Ok(summary)
}

/// What [`check`] found in a dataset file.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The file.
    pub file: PathBuf,
    /// Rows that load.
    pub loaded: usize,
    /// Loaded rows per verifier.
    pub by_verifier: std::collections::BTreeMap<String, usize>,
    /// Loaded rows per domain.
    pub by_domain: std::collections::BTreeMap<String, usize>,
    /// Images across loaded rows.
    pub images: usize,
    /// Rows that do not load, each naming file, row and field.
    pub bad_rows: Vec<String>,
}

/// Reads a dataset file as a run would and reports what loads.
pub fn check(path: &Path, options: &ReaderOptions) -> Result<CheckReport, DataError> {
    let registry = Registry::builtin();
    let ds = read_dataset(path, &registry, options)?;
    let mut by_verifier = std::collections::BTreeMap::new();
    let mut by_domain = std::collections::BTreeMap::new();
    for (s, v) in ds.samples.iter().zip(&ds.verifiers) {
        *by_verifier.entry(v.clone()).or_insert(0) += 1;
        *by_domain.entry(s.domain.clone()).or_insert(0) += 1;
    }
    Ok(CheckReport {
        file: path.to_path_buf(),
        loaded: ds.samples.len(),
        by_verifier,
        by_domain,
        images: ds.samples.iter().map(|s| s.images.len()).sum(),
        bad_rows: ds.skipped.iter().map(RowError::to_string).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_writes_a_loadable_shorter_vocabulary_and_refuses_bad_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("vocab.json");
        let v = vocab(&out, 20, &[0.1], 3, 2).unwrap();
        assert_eq!(v.texts, 3 * 20 * rlcs_domains::BUILTIN_DOMAINS.len());
        let t = rlcs_model::tokenizer::Tokenizer::from_hugging_face(&out).unwrap();
        assert_eq!(t.vocab_size(), v.vocab_size);
        assert!(v.vocab_size > 128 + 50, "{v:?}");
        assert!(v.mean_tokens * 2.0 < v.mean_chars, "{v:?}");
        let prompt = "How many red circles are there in the image? Answer with a number.";
        assert_eq!(t.decode(&t.encode(prompt)), prompt);
        let again = vocab(&out, 20, &[0.1], 3, 2).unwrap_err().to_string();
        assert!(
            again.contains("vocab.json") && again.contains("exists"),
            "{again}"
        );
        let other = dir.path().join("other.json");
        let bad = vocab(&other, 20, &[0.1, 1.5], 3, 2)
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("--difficulties") && bad.contains("1.5"),
            "{bad}"
        );
        let bad = vocab(&other, 0, &[0.1], 3, 2).unwrap_err().to_string();
        assert!(bad.contains("--samples"), "{bad}");
        assert!(!other.exists());
    }

    #[test]
    fn preview_writes_sidecars_and_refuses_bad_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("p");
        let s = preview("arithmetic", 0.5, 3, 1, &out).unwrap();
        assert_eq!(s.samples.len(), 3);
        assert!(s.samples.iter().all(|e| e.template_reward == 1.0));
        assert!(s.samples.iter().all(|e| e.wrong_reward < 1.0));
        for (k, e) in s.samples.iter().enumerate() {
            let sidecar = out.join(format!("{k:03}-{}.json", e.id));
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(sidecar).unwrap()).unwrap();
            assert_eq!(v["prompt"], e.prompt.as_str());
            assert_eq!(v["gold"], e.gold.as_str());
            assert_eq!(v["template_reward"], 1.0);
        }
        assert!(out.join("index.json").exists());
        // Non-empty output, bad difficulty, bad count, unknown domain.
        assert!(matches!(
            preview("arithmetic", 0.5, 3, 1, &out),
            Err(DataError::Out { .. })
        ));
        let fresh = dir.path().join("q");
        assert!(matches!(
            preview("arithmetic", 1.5, 3, 1, &fresh),
            Err(DataError::Arg {
                flag: "difficulty",
                ..
            })
        ));
        assert!(matches!(
            preview("arithmetic", 0.5, 0, 1, &fresh),
            Err(DataError::Arg { flag: "count", .. })
        ));
        assert!(matches!(
            preview("chess", 0.5, 1, 1, &fresh),
            Err(DataError::Domain(_))
        ));
        assert!(!fresh.exists(), "a refused preview writes nothing");
    }
}
