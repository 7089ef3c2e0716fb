//! Readers for real datasets: JSONL and Parquet rows in verl's RL format.
//!
//! A row holds:
//! - `prompt`: a string, or a chat — a list of `{"role", "content"}` messages whose
//!   `content` is a string or a list of parts (`{"type": "text", "text": …}`); the
//!   text of the user messages is the prompt. `<image>` placeholders are removed
//!   (the images travel separately, in order).
//! - `images` (or `image`): a list (or one) of image paths, or objects with `bytes`
//!   (base64 in JSONL, binary in Parquet) and/or `path`. Paths are relative to the
//!   data file's folder. PNG and JPEG are decoded.
//! - `data_source` and `ability`: the domain name is `data_source` (else `ability`);
//!   the verifier is [`ReaderOptions::verifier`] when set, else the row's `verifier`,
//!   `ability` or `data_source` (whole, then its last `/` segment), whichever the
//!   registry knows first.
//! - `reward_model.ground_truth` (or a top-level `ground_truth`/`answer`): the gold;
//!   a number is kept as its text, a list or object as compact JSON (grounding boxes,
//!   GUI actions).
//! - optional `difficulty` or `extra_info.difficulty` in `[0, 1]` (else 0.5), and
//!   `extra_info.solution`/`response` as the SFT template when it is in the GLM
//!   format (`<think>…</think><answer>…</answer>`); other text becomes the think
//!   trace before the boxed gold, and a row without one gets an empty trace.
//!
//! A bad row gets a [`RowError`] naming the file, the row (1-based; JSONL: the line)
//! and the field; with [`OnBadRow::Skip`] the rest still loads and the errors are
//! returned alongside, with [`OnBadRow::Fail`] the first one fails the read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use rlcs_rewards::Registry;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Answer, Image, Sample};

/// What to do with a row that cannot be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRow {
    /// Report it and go on (default).
    #[default]
    Skip,
    /// Stop at the first bad row.
    Fail,
}

/// Settings of a dataset read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReaderOptions {
    /// Bad rows: skip (default) or fail.
    pub on_bad_row: OnBadRow,
    /// The verifier of every row, overriding what rows say.
    pub verifier: Option<String>,
    /// The domain name of every row, overriding `data_source`/`ability`.
    pub domain: Option<String>,
    /// Read at most this many rows (all when absent).
    pub limit: Option<usize>,
}

/// One row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The data file.
    pub file: PathBuf,
    /// Row number, 1-based (for JSONL the line number).
    pub row: usize,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: row {}", self.file.display(), self.row)?;
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Errors of a dataset read.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// The file could not be opened or read.
    #[error("{file}: {message}")]
    File {
        /// The data file.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A bad row, with [`OnBadRow::Fail`].
    #[error("{0}")]
    Row(RowError),
    /// The extension is neither `.jsonl`/`.json` nor `.parquet`.
    #[error("{0}: unknown dataset format (expected .jsonl, .json or .parquet)")]
    Format(PathBuf),
}

/// A dataset's samples, each with its verifier, and the rows skipped.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Samples in file order.
    pub samples: Vec<Sample>,
    /// The verifier of each sample (same order).
    pub verifiers: Vec<String>,
    /// Rows that were skipped, with why.
    pub skipped: Vec<RowError>,
}

/// Reads a `.jsonl`/`.json` (one JSON object per line) or `.parquet` file.
pub fn read_dataset(
    path: &Path,
    registry: &Registry,
    options: &ReaderOptions,
) -> Result<Dataset, ReaderError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jsonl") | Some("json") | Some("ndjson") => read_jsonl(path, registry, options),
        Some("parquet") | Some("pq") => read_parquet(path, registry, options),
        _ => Err(ReaderError::Format(path.to_path_buf())),
    }
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> ReaderError {
    ReaderError::File {
        file: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Reads a JSONL file (blank lines are skipped; the row number is the line number).
pub fn read_jsonl(
    path: &Path,
    registry: &Registry,
    options: &ReaderOptions,
) -> Result<Dataset, ReaderError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let mut b = Builder::new(path, registry, options);
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if b.full() {
            break;
        }
        let row = serde_json::from_str::<Value>(line).map_err(|e| RowError {
            file: path.to_path_buf(),
            row: k + 1,
            field: None,
            message: format!("not a JSON object: {e}"),
        });
        b.push(k + 1, row)?;
    }
    Ok(b.finish())
}

/// Reads a Parquet file row by row (nested columns are read through the record API).
pub fn read_parquet(
    path: &Path,
    registry: &Registry,
    options: &ReaderOptions,
) -> Result<Dataset, ReaderError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).map_err(|e| file_error(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| file_error(path, e))?;
    let rows = reader.get_row_iter(None).map_err(|e| file_error(path, e))?;
    let mut b = Builder::new(path, registry, options);
    for (k, row) in rows.enumerate() {
        if b.full() {
            break;
        }
        let row = row.map(|r| r.to_json_value()).map_err(|e| RowError {
            file: path.to_path_buf(),
            row: k + 1,
            field: None,
            message: format!("unreadable row: {e}"),
        });
        b.push(k + 1, row)?;
    }
    Ok(b.finish())
}

struct Builder<'a> {
    path: &'a Path,
    dir: PathBuf,
    registry: &'a Registry,
    options: &'a ReaderOptions,
    out: Dataset,
    rows_by_id: HashMap<u64, usize>,
}

impl<'a> Builder<'a> {
    fn new(path: &'a Path, registry: &'a Registry, options: &'a ReaderOptions) -> Self {
        Builder {
            path,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            registry,
            options,
            out: Dataset::default(),
            rows_by_id: HashMap::new(),
        }
    }

    fn full(&self) -> bool {
        self.options
            .limit
            .is_some_and(|l| self.out.samples.len() >= l)
    }

    fn push(&mut self, row: usize, value: Result<Value, RowError>) -> Result<(), ReaderError> {
        let parsed = value.and_then(|v| {
            self.parse(&v).map_err(|(field, message)| RowError {
                file: self.path.to_path_buf(),
                row,
                field,
                message,
            })
        });
        let parsed = parsed.and_then(|(sample, verifier)| match self.rows_by_id.get(&sample.id) {
            Some(first) => Err(RowError {
                file: self.path.to_path_buf(),
                row,
                field: None,
                message: format!("duplicate of row {first} (same domain, prompt and images)"),
            }),
            None => Ok((sample, verifier)),
        });
        match parsed {
            Ok((sample, verifier)) => {
                self.rows_by_id.insert(sample.id, row);
                self.out.samples.push(sample);
                self.out.verifiers.push(verifier);
                Ok(())
            }
            Err(e) if self.options.on_bad_row == OnBadRow::Skip => {
                self.out.skipped.push(e);
                Ok(())
            }
            Err(e) => Err(ReaderError::Row(e)),
        }
    }

    fn finish(self) -> Dataset {
        self.out
    }

    /// One row to a sample and its verifier; errors name the field.
    fn parse(&self, v: &Value) -> Result<(Sample, String), (Option<String>, String)> {
        let err = |field: &str, msg: String| (Some(field.to_string()), msg);
        let obj = v
            .as_object()
            .ok_or((None, "a row must be a JSON object".to_string()))?;
        let prompt = match obj.get("prompt") {
            Some(p) => prompt_text(p).map_err(|m| err("prompt", m))?,
            None => return Err(err("prompt", "missing".into())),
        };
        let images = match obj.get("images").or_else(|| obj.get("image")) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(k, item)| {
                    self.image(item)
                        .map_err(|m| err("images", format!("image {}: {m}", k + 1)))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(one) => vec![self.image(one).map_err(|m| err("images", m))?],
        };
        let gold = obj
            .get("reward_model")
            .and_then(|r| r.get("ground_truth"))
            .map(|g| ("reward_model.ground_truth", g))
            .or_else(|| obj.get("ground_truth").map(|g| ("ground_truth", g)))
            .or_else(|| obj.get("answer").map(|g| ("answer", g)));
        let gold = match gold {
            None => {
                return Err(err(
                    "reward_model.ground_truth",
                    "missing (also looked for `ground_truth` and `answer`)".into(),
                ))
            }
            Some((field, g)) => gold_text(g).map_err(|m| err(field, m))?,
        };
        let text_field = |name: &str| obj.get(name).and_then(Value::as_str).map(str::trim);
        let domain = self
            .options
            .domain
            .as_deref()
            .or_else(|| text_field("data_source").filter(|s| !s.is_empty()))
            .or_else(|| text_field("ability").filter(|s| !s.is_empty()))
            .ok_or_else(|| err("data_source", "missing (and no `ability`)".into()))?
            .to_string();
        let verifier = self.verifier(obj).map_err(|m| err("ability", m))?;
        let extra = obj.get("extra_info");
        let difficulty = match obj
            .get("difficulty")
            .or_else(|| extra.and_then(|e| e.get("difficulty")))
        {
            None | Some(Value::Null) => 0.5,
            Some(d) => match d.as_f64() {
                Some(x) if (0.0..=1.0).contains(&x) => x as f32,
                _ => {
                    return Err(err(
                        "difficulty",
                        format!("must be a number in [0, 1], got {d}"),
                    ))
                }
            },
        };
        let solution = extra
            .and_then(|e| e.get("solution").or_else(|| e.get("response")))
            .and_then(Value::as_str)
            .unwrap_or("");
        // A response already in the GLM format is the template as it stands; other
        // text becomes the think trace before the boxed gold.
        let template = if solution.contains("<answer>") {
            solution.to_string()
        } else {
            crate::glm_template(solution.trim(), "", &gold)
        };
        let answer = if gold.trim().parse::<f64>().is_ok() {
            Answer::Number { value: gold }
        } else {
            Answer::Text { value: gold }
        };
        Ok((
            Sample::new(&domain, prompt, images, answer, difficulty, template),
            verifier,
        ))
    }

    fn verifier(&self, obj: &serde_json::Map<String, Value>) -> Result<String, String> {
        if let Some(v) = &self.options.verifier {
            return Ok(v.clone());
        }
        let mut tried = Vec::new();
        for field in ["verifier", "ability", "data_source"] {
            let Some(name) = obj.get(field).and_then(Value::as_str) else {
                continue;
            };
            let last = name.rsplit('/').next().unwrap_or(name);
            for candidate in [name, last] {
                if self.registry.get(candidate).is_ok() {
                    return Ok(candidate.to_string());
                }
                tried.push(candidate.to_string());
            }
        }
        tried.dedup();
        Err(format!(
            "no known verifier for this row (tried {}; known: {}); set the dataset's `verifier`",
            if tried.is_empty() {
                "nothing: no `verifier`, `ability` or `data_source`".to_string()
            } else {
                tried.join(", ")
            },
            self.registry.names().join(", ")
        ))
    }

    fn image(&self, item: &Value) -> Result<Image, String> {
        let bytes = match item {
            Value::String(p) => self.read_image_file(p)?,
            Value::Object(o) => match (o.get("bytes"), o.get("path")) {
                (Some(b), _) if !b.is_null() => image_bytes(b)?,
                (_, Some(Value::String(p))) => self.read_image_file(p)?,
                _ => return Err("an image object needs `bytes` or `path`".into()),
            },
            other => return Err(format!("expected a path or an object, got {other}")),
        };
        Image::decode(&bytes).map_err(|e| e.to_string())
    }

    fn read_image_file(&self, p: &str) -> Result<Vec<u8>, String> {
        let path = Path::new(p);
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        };
        std::fs::read(&full).map_err(|e| format!("{}: {e}", full.display()))
    }
}

fn image_bytes(b: &Value) -> Result<Vec<u8>, String> {
    match b {
        Value::String(s) => base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| format!("`bytes` is not base64: {e}")),
        Value::Array(items) => items
            .iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| "`bytes` list holds a non-byte".to_string())
            })
            .collect(),
        other => Err(format!(
            "`bytes` must be base64 text or a byte list, got {other}"
        )),
    }
}

fn gold_text(g: &Value) -> Result<String, String> {
    match g {
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        Value::String(_) => Err("empty".into()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Err("null".into()),
        Value::Bool(b) => Ok(b.to_string()),
        // Boxes, actions, lists of acceptable answers: the verifier reads JSON.
        other => Ok(other.to_string()),
    }
}

fn prompt_text(p: &Value) -> Result<String, String> {
    let text = match p {
        Value::String(s) => s.clone(),
        Value::Array(messages) => {
            let mut parts = Vec::new();
            for (k, m) in messages.iter().enumerate() {
                let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
                if role != "user" {
                    continue;
                }
                match m.get("content") {
                    Some(Value::String(s)) => parts.push(s.clone()),
                    Some(Value::Array(content)) => {
                        for c in content {
                            if let Some(t) = c.get("text").and_then(Value::as_str) {
                                parts.push(t.to_string());
                            } else if let Some(t) = c.as_str() {
                                parts.push(t.to_string());
                            }
                        }
                    }
                    _ => return Err(format!("message {} has no text `content`", k + 1)),
                }
            }
            parts.join("\n")
        }
        other => return Err(format!("expected text or a list of messages, got {other}")),
    };
    let text = text.replace("<image>", "").trim().to_string();
    if text.is_empty() {
        return Err("no user text".into());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ReaderOptions {
        ReaderOptions::default()
    }

    #[test]
    fn chat_prompts_and_placeholders() {
        let p = serde_json::json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "<image>How many cats?"}
        ]);
        assert_eq!(prompt_text(&p).unwrap(), "How many cats?");
        let parts = serde_json::json!([{"role": "user", "content": [
            {"type": "image"}, {"type": "text", "text": "Read it."}]}]);
        assert_eq!(prompt_text(&parts).unwrap(), "Read it.");
        assert!(prompt_text(&serde_json::json!(3)).is_err());
        assert!(prompt_text(&serde_json::json!("<image>")).is_err());
    }

    #[test]
    fn gold_forms() {
        assert_eq!(gold_text(&serde_json::json!(42)).unwrap(), "42");
        assert_eq!(
            gold_text(&serde_json::json!([[1, 2, 3, 4]])).unwrap(),
            "[[1,2,3,4]]"
        );
        assert!(gold_text(&serde_json::json!(" ")).is_err());
    }

    #[test]
    fn unknown_extension_is_an_error() {
        let r = read_dataset(Path::new("x.csv"), &Registry::builtin(), &opts());
        assert!(matches!(r, Err(ReaderError::Format(_))));
    }
}
