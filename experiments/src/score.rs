//! `rlcs score`: offline scoring of any model's outputs with exactly the verifiers
//! used in training.
//!
//! Input is JSON lines, one request per line:
//!
//! ```json
//! {"id": 7, "domain": "math", "response": "…", "gold": "\\frac12", "tolerance": {"rel": 0.01}, "extract": "boxed"}
//! ```
//!
//! `id` (any JSON value), `tolerance` and `extract` are optional; `gold` is a string,
//! or JSON (boxes, GUI actions) which is handed to the verifier as JSON text. Other
//! fields are ignored, so dataset rows can be scored as they are. Blank lines are
//! skipped.
//!
//! Output is one JSON line per input line, in input order:
//! `{"id", "reward", "correct", "format_ok", "extracted", "subscores", "reason", "error"}`.
//! A line that cannot be scored (bad JSON, unknown domain, bad tolerance) gets
//! `reward: null` and an `error` naming its line number; the other lines are still
//! scored.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::num::NonZeroUsize;
use std::sync::Arc;

use rlcs_rewards::{verify_with, ExtractMode, Registry, Tolerance, Verifier, VerifyOptions};
use serde::{Deserialize, Serialize};

/// Lines scored per parallel batch: bounds memory on files of any length.
const BATCH_LINES: usize = 4096;

/// Settings of a scoring run.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Extraction mode for lines that do not name one.
    pub extract: ExtractMode,
    /// Worker threads (at least 1).
    pub threads: NonZeroUsize,
}

impl Default for ScoreOptions {
    /// Strict `glm` extraction, one thread per core.
    fn default() -> Self {
        ScoreOptions {
            extract: ExtractMode::Glm,
            threads: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// What a scoring run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreSummary {
    /// Requests read (blank lines not counted).
    pub lines: usize,
    /// Requests scored.
    pub scored: usize,
    /// Scored requests judged correct.
    pub correct: usize,
    /// Requests that could not be scored (each has an `error` in the output).
    pub failed: usize,
}

/// A scoring run failed as a whole (reading input or writing output).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// Reading the input failed.
    #[error("reading {name}: {source}")]
    Read {
        /// The input's name (a path or `-`).
        name: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing the output failed.
    #[error("writing {name}: {source}")]
    Write {
        /// The output's name (a path or `-`).
        name: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One input line.
#[derive(Debug, Deserialize)]
struct Request {
    #[serde(default)]
    id: Option<serde_json::Value>,
    domain: String,
    response: String,
    gold: serde_json::Value,
    #[serde(default)]
    tolerance: Option<Tolerance>,
    #[serde(default)]
    extract: Option<String>,
}

/// One output line.
#[derive(Debug, Serialize, PartialEq)]
pub struct ScoreLine {
    /// The request's `id`, if it had one.
    pub id: Option<serde_json::Value>,
    /// Reward in `[0, 1]`; `null` when the line could not be scored.
    pub reward: Option<f64>,
    /// Whether the answer is correct; `null` when not scored.
    pub correct: Option<bool>,
    /// Whether the response passed extraction; `null` when not scored.
    pub format_ok: Option<bool>,
    /// The extracted final answer.
    pub extracted: Option<String>,
    /// Named sub-scores.
    pub subscores: BTreeMap<String, f64>,
    /// Why the reward is not 1.
    pub reason: Option<String>,
    /// Why the line could not be scored, naming its line number.
    pub error: Option<String>,
}

impl ScoreLine {
    fn failed(line_no: usize, id: Option<serde_json::Value>, why: String) -> Self {
        ScoreLine {
            id,
            reward: None,
            correct: None,
            format_ok: None,
            extracted: None,
            subscores: BTreeMap::new(),
            reason: None,
            error: Some(format!("line {line_no}: {why}")),
        }
    }
}

/// serde_json's message without its " at line 1 column N" suffix, plus the column.
fn json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    if e.column() > 0 {
        format!("invalid request at column {}: {msg}", e.column())
    } else {
        format!("invalid request: {msg}")
    }
}

/// Scores one input line (`line_no` is 1-based).
pub fn score_line(
    registry: &Registry,
    default_extract: ExtractMode,
    line_no: usize,
    line: &str,
) -> ScoreLine {
    let request: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => {
            // Keep the id when the line is valid JSON with an id but a bad field.
            let id = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("id").cloned());
            return ScoreLine::failed(line_no, id, json_error(&e));
        }
    };
    let id = request.id.clone();
    let verifier: Arc<dyn Verifier> = match registry.get(&request.domain) {
        Ok(v) => v,
        Err(e) => return ScoreLine::failed(line_no, id, format!("`domain`: {e}")),
    };
    let extract = match request.extract.as_deref() {
        None => default_extract,
        Some(name) => match name.parse::<ExtractMode>() {
            Ok(m) => m,
            Err(e) => return ScoreLine::failed(line_no, id, format!("`extract`: {e}")),
        },
    };
    if let Some(t) = request.tolerance {
        let (Tolerance::Rel(x) | Tolerance::Abs(x)) = t;
        if !x.is_finite() || x < 0.0 {
            return ScoreLine::failed(
                line_no,
                id,
                format!("`tolerance`: must be a finite number >= 0, got {x}"),
            );
        }
    }
    let gold = match request.gold {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    let options = VerifyOptions {
        extract,
        tolerance: request.tolerance,
        ..VerifyOptions::default()
    };
    let v = verify_with(verifier.as_ref(), &request.response, &gold, &options);
    ScoreLine {
        id,
        reward: Some(v.reward),
        correct: Some(v.correct),
        format_ok: Some(v.format_ok),
        extracted: v.extracted,
        subscores: v.subscores,
        reason: v.reason,
        error: None,
    }
}

/// Scores every line of `input` into `output` (same order), `options.threads`
/// lines at a time in parallel, in batches of bounded size.
pub fn score_stream<R: BufRead, W: Write>(
    registry: &Registry,
    input: R,
    input_name: &str,
    mut output: W,
    output_name: &str,
    options: &ScoreOptions,
) -> Result<ScoreSummary, ScoreError> {
    let mut summary = ScoreSummary::default();
    let mut batch: Vec<(usize, String)> = Vec::with_capacity(BATCH_LINES);
    let write_err = |source| ScoreError::Write {
        name: output_name.to_string(),
        source,
    };
    let mut lines = input.lines().enumerate();
    loop {
        batch.clear();
        for (i, line) in lines.by_ref() {
            let line = line.map_err(|source| ScoreError::Read {
                name: format!("{input_name}: line {}", i + 1),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            batch.push((i + 1, line));
            if batch.len() == BATCH_LINES {
                break;
            }
        }
        if batch.is_empty() {
            break;
        }
        for scored in score_batch(registry, options, &batch) {
            summary.lines += 1;
            if scored.error.is_some() {
                summary.failed += 1;
            } else {
                summary.scored += 1;
                summary.correct += usize::from(scored.correct == Some(true));
            }
            let text = serde_json::to_string(&scored).map_err(|e| write_err(e.into()))?;
            writeln!(output, "{text}").map_err(write_err)?;
        }
    }
    output.flush().map_err(write_err)?;
    Ok(summary)
}

/// Scores a batch on up to `options.threads` threads; results in batch order.
fn score_batch(
    registry: &Registry,
    options: &ScoreOptions,
    batch: &[(usize, String)],
) -> Vec<ScoreLine> {
    let threads = options.threads.get().min(batch.len()).max(1);
    if threads == 1 {
        return batch
            .iter()
            .map(|(n, l)| score_line(registry, options.extract, *n, l))
            .collect();
    }
    let chunk = batch.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(n, l)| score_line(registry, options.extract, *n, l))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(batch.chunks(chunk))
            .flat_map(|(h, part)| {
                // Verifiers do not panic (conformance suite); should one ever do,
                // its lines are reported as failed rather than lost.
                h.join().unwrap_or_else(|_| {
                    part.iter()
                        .map(|(n, _)| ScoreLine::failed(*n, None, "verifier panicked".into()))
                        .collect()
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, threads: usize) -> (Vec<serde_json::Value>, ScoreSummary) {
        let mut out = Vec::new();
        let options = ScoreOptions {
            extract: ExtractMode::Glm,
            threads: NonZeroUsize::new(threads).expect("threads > 0"),
        };
        let summary = score_stream(
            &Registry::builtin(),
            input.as_bytes(),
            "input",
            &mut out,
            "output",
            &options,
        )
        .expect("scoring runs");
        let text = String::from_utf8(out).expect("utf-8");
        let lines = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("output is JSON"))
            .collect();
        (lines, summary)
    }

    const GOOD: &str = r#"{"id": 1, "domain": "math", "response": "<think>t</think><answer><|begin_of_box|>4<|end_of_box|></answer>", "gold": "4"}"#;

    #[test]
    fn scores_lines_in_order_and_reports_bad_ones_by_line() {
        let input = [
            GOOD,
            "",
            r#"{"id": "b", "domain": "math", "response": "The answer is \\boxed{0.5}", "gold": "\\frac12", "extract": "boxed"}"#,
            r#"{"id": 3, "domain": "math", "response": "x" "#,
            r#"{"id": 4, "domain": "poetry", "response": "x", "gold": "y"}"#,
            r#"{"id": 5, "domain": "math", "response": "x", "gold": "y", "extract": "loose"}"#,
            r#"{"id": 6, "domain": "math", "gold": "y"}"#,
            r#"{"id": 7, "domain": "math", "response": "\\boxed{0.333}", "gold": "1/3", "extract": "boxed", "tolerance": {"rel": -1}}"#,
            r#"{"id": 8, "domain": "math", "response": "no box", "gold": "4", "question": "ignored"}"#,
        ]
        .join("\n");
        for threads in [1, 3] {
            let (out, summary) = run(&input, threads);
            assert_eq!(
                summary,
                ScoreSummary {
                    lines: 8,
                    scored: 3,
                    correct: 2,
                    failed: 5
                }
            );
            let ids: Vec<String> = out.iter().map(|l| l["id"].to_string()).collect();
            assert_eq!(ids, ["1", "\"b\"", "null", "4", "5", "6", "7", "8"]);
            assert_eq!(out[0]["reward"], 1.0);
            assert_eq!(out[0]["extracted"], "4");
            assert_eq!(out[1]["correct"], true);
            let err = |i: usize| out[i]["error"].as_str().unwrap_or_default().to_string();
            assert!(err(2).starts_with("line 4: invalid request"), "{}", err(2));
            assert!(err(3).starts_with("line 5: `domain`: unknown verifier `poetry`"));
            assert!(err(4).starts_with("line 6: `extract`: unknown extraction mode"));
            assert!(err(5).contains("line 7") && err(5).contains("missing field `response`"));
            assert!(err(6).starts_with("line 8: `tolerance`"));
            assert!(out[2]["reward"].is_null());
            assert_eq!(out[7]["reward"], 0.0);
            assert_eq!(out[7]["format_ok"], false);
            assert!(out[7]["error"].is_null());
            assert!(out[7]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("format")));
        }
    }

    #[test]
    fn json_gold_reaches_the_verifier_as_json_text() {
        let line = r#"{"domain": "grounding", "response": "\\boxed{[10,10,100,100]}", "gold": [10,10,100,100], "extract": "boxed"}"#;
        let (out, summary) = run(line, 1);
        assert_eq!(summary.scored, 1);
        assert_eq!(out[0]["extracted"], "[10,10,100,100]");
    }

    #[test]
    fn tolerance_override_applies() {
        let line = |tol: &str| {
            format!(
                r#"{{"domain": "math", "response": "\\boxed{{0.333}}", "gold": "1/3", "extract": "boxed"{tol}}}"#
            )
        };
        let (strict, _) = run(&line(""), 1);
        let (loose, _) = run(&line(r#", "tolerance": {"rel": 0.01}"#), 1);
        assert_eq!(strict[0]["correct"], false);
        assert_eq!(loose[0]["correct"], true);
    }

    #[test]
    fn many_lines_keep_their_order_across_batches() {
        let n = BATCH_LINES + 17;
        let input: String = (0..n)
            .map(|i| {
                format!(
                    r#"{{"id": {i}, "domain": "math", "response": "\\boxed{{{i}}}", "gold": "{i}", "extract": "boxed"}}"#
                ) + "\n"
            })
            .collect();
        let (out, summary) = run(&input, 2);
        assert_eq!(summary.correct, n);
        for (i, l) in out.iter().enumerate() {
            assert_eq!(l["id"], i);
        }
    }
}
