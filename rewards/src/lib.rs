//! # rlcs-rewards
//!
//! Turns a model's response into a reward. Synchronous: no async runtime, no actors.
//! The built-in verifiers are pure (no I/O), so they are fast to test, fuzz and
//! benchmark; the plug-in verifiers block on plain `std` I/O and say so through
//! [`Verifier::blocking`]:
//!
//! - [`external`]: a team's verifier in any language, as a supervised pool of
//!   processes speaking JSON lines (`examples/verifiers/exact_match.py`);
//! - [`code`]: Python programs run against tests in the [`sandbox`] (namespaces,
//!   rlimits, Landlock, seccomp, wall clock);
//! - [`judge`]: a majority vote of OpenAI-compatible chat endpoints;
//! - [`plugins`]: the `[verifiers.<name>]` TOML entries that register them.
//!
//! A verification has two steps:
//!
//! 1. **Extraction** ([`extract()`], [`ExtractMode`]): the strict GLM format gate —
//!    `<think>…</think><answer>…<|begin_of_box|>X<|end_of_box|>…</answer>` — or, for
//!    scoring other models, the last `\boxed{}` or a lenient search. A failure is a
//!    [`FormatError`] and gives reward 0 with its reason.
//! 2. **Judgement** ([`Verifier::judge`]): the extracted answer against the gold answer,
//!    by the domain's rule (paper Table 1): [`math`] (also `physics` with units),
//!    [`chart`], [`ocr`], [`counting`], [`choice`], [`grounding`], [`gui`].
//!
//! [`Verifier::verify`] and [`verify_with`] run both (plus the optional [`gates`]) and
//! return a [`Verdict`]. The [`Registry`] finds a verifier by domain or `data_source`
//! name. Every verifier passes the shared [`conformance`] suite: it never panics, hangs
//! or blows the stack, whatever the model wrote.
#![deny(missing_docs)]

pub mod chart;
pub mod choice;
pub mod code;
pub mod conformance;
pub mod counting;
pub mod external;
pub mod extract;
pub mod gates;
pub mod grounding;
pub mod gui;
pub mod judge;
pub mod math;
pub mod ocr;
pub mod plugins;
pub mod sandbox;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use extract::{extract, extract_glm, ExtractMode, FormatError};
pub use gates::{GateConfig, GateFailure};

/// The sub-score a verdict carries (value 1) when the verifier itself failed (a
/// process that died twice, a sandbox that could not start): the reward is 0 and
/// the reason says why. Runs count these per iteration (`verifier_errors`).
pub const VERIFIER_ERROR: &str = "verifier_error";

/// Longest excerpt of an answer or gold quoted in a reason, in chars.
const REASON_EXCERPT_CHARS: usize = 200;

/// At most 200 chars of `s`, with `…` when cut: for quoting model output in reasons.
pub fn excerpt(s: &str) -> String {
    match s.char_indices().nth(REASON_EXCERPT_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A numeric tolerance that overrides a verifier's default for one request.
///
/// In JSON: `{"rel": 0.01}` (relative: `|a − g| ≤ 0.01 · max(|a|, |g|)`) or
/// `{"abs": 0.5}` (absolute: `|a − g| ≤ 0.5`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tolerance {
    /// Relative tolerance.
    Rel(f64),
    /// Absolute tolerance.
    Abs(f64),
}

impl Tolerance {
    /// Whether `a` and `g` are within this tolerance of each other. Equal values
    /// always match; non-finite values match nothing else.
    pub fn close(&self, a: f64, g: f64) -> bool {
        if a == g {
            return true;
        }
        if !a.is_finite() || !g.is_finite() {
            return false;
        }
        match *self {
            Tolerance::Rel(r) => (a - g).abs() <= r * a.abs().max(g.abs()),
            Tolerance::Abs(t) => (a - g).abs() <= t,
        }
    }
}

/// A verifier's judgement of an extracted answer against the gold answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Score in `[0, 1]` (partial credit for OCR, grounding, GUI).
    pub score: f64,
    /// Whether the answer counts as correct.
    pub correct: bool,
    /// Named partial scores (e.g. `iou`, `type`, `text`).
    pub subscores: BTreeMap<String, f64>,
    /// Why the score is not 1, when it is not.
    pub reason: Option<String>,
}

impl Judgement {
    /// A correct answer: score 1.
    pub fn right() -> Self {
        Judgement {
            score: 1.0,
            correct: true,
            subscores: BTreeMap::new(),
            reason: None,
        }
    }

    /// A wrong answer: score 0, with the reason.
    pub fn wrong(reason: impl Into<String>) -> Self {
        Judgement {
            score: 0.0,
            correct: false,
            subscores: BTreeMap::new(),
            reason: Some(reason.into()),
        }
    }

    /// Right when `ok`, else wrong with the reason `answer "A" != gold "G"`.
    pub fn exact(ok: bool, answer: &str, gold: &str) -> Self {
        if ok {
            Self::right()
        } else {
            Self::wrong(format!(
                "answer \"{}\" != gold \"{}\"",
                excerpt(answer),
                excerpt(gold)
            ))
        }
    }

    /// Partial credit: `score` clamped to `[0, 1]` (NaN becomes 0); correct only at 1.
    pub fn partial(score: f64, reason: Option<String>) -> Self {
        let score = if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 1.0)
        };
        let correct = score >= 1.0;
        Judgement {
            score,
            correct,
            subscores: BTreeMap::new(),
            reason: if correct { None } else { reason },
        }
    }

    /// Adds a named sub-score.
    pub fn with(mut self, name: &str, value: f64) -> Self {
        self.subscores.insert(name.to_string(), value);
        self
    }
}

/// The outcome of verifying one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Reward in `[0, 1]`.
    pub reward: f64,
    /// Whether the answer counts as correct.
    pub correct: bool,
    /// Whether the response passed the format gate (extraction and gates).
    pub format_ok: bool,
    /// The extracted final answer, when extraction succeeded.
    pub extracted: Option<String>,
    /// Named partial scores (always `format`; `answer` once extracted; verifier extras).
    pub subscores: BTreeMap<String, f64>,
    /// Why the reward is not 1, when it is not.
    pub reason: Option<String>,
}

impl Verdict {
    /// A format failure: reward 0, with the reason.
    pub fn format_failure(err: &FormatError) -> Self {
        Self::rejected(format!("format: {err}"))
    }

    /// A response rejected before judgement (format or gate): reward 0.
    pub(crate) fn rejected(reason: String) -> Self {
        let mut subscores = BTreeMap::new();
        subscores.insert("format".to_string(), 0.0);
        Verdict {
            reward: 0.0,
            correct: false,
            format_ok: false,
            extracted: None,
            subscores,
            reason: Some(reason),
        }
    }

    /// The verdict for an extracted answer and its judgement.
    pub fn judged(extracted: &str, judgement: Judgement) -> Self {
        let mut subscores = judgement.subscores;
        subscores.insert("format".to_string(), 1.0);
        subscores.insert("answer".to_string(), judgement.score);
        Verdict {
            reward: judgement.score,
            correct: judgement.correct,
            format_ok: true,
            extracted: Some(extracted.to_string()),
            subscores,
            reason: judgement.reason,
        }
    }
}

/// How one response is verified: extraction mode, tolerance override, gates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyOptions {
    /// How the final answer is found in the response (default: strict `glm`).
    pub extract: ExtractMode,
    /// Overrides the verifier's default numeric tolerance.
    pub tolerance: Option<Tolerance>,
    /// Language-mix and repetition gates (default: off).
    pub gates: GateConfig,
}

/// Compares an extracted answer with a gold answer by one domain's rule.
/// Implementations never panic, whatever the answer holds: model outputs are
/// adversarial. They bound their own work (see [`conformance`]).
pub trait Verifier: Send + Sync {
    /// The registry name of this verifier (e.g. `math`).
    fn name(&self) -> &str;

    /// Judges the extracted `answer` against `gold`. `tolerance`, when given,
    /// overrides the verifier's default numeric tolerance.
    fn judge(&self, answer: &str, gold: &str, tolerance: Option<Tolerance>) -> Judgement;

    /// Scores a full response with the default options (strict GLM extraction).
    fn verify(&self, response: &str, gold: &str) -> Verdict {
        verify_with(self, response, gold, &VerifyOptions::default())
    }

    /// Scores the responses of one group (one prompt, one gold answer), in order.
    /// The default scores them one after another; verifiers backed by processes or
    /// endpoints score them concurrently, up to their own concurrency limit.
    fn verify_group(&self, responses: &[String], gold: &str) -> Vec<Verdict> {
        responses.iter().map(|r| self.verify(r, gold)).collect()
    }

    /// Whether a call may wait on I/O (a process, a sandbox, an HTTP endpoint):
    /// callers on an async runtime then run it on a blocking thread.
    fn blocking(&self) -> bool {
        false
    }
}

/// Scores a full response: gates, extraction, then [`Verifier::judge`].
pub fn verify_with<V: Verifier + ?Sized>(
    verifier: &V,
    response: &str,
    gold: &str,
    options: &VerifyOptions,
) -> Verdict {
    if let Err(e) = gates::check(response, &options.gates) {
        return Verdict::rejected(format!("gate: {e}"));
    }
    match extract(response, options.extract) {
        Ok(answer) => Verdict::judged(&answer, verifier.judge(&answer, gold, options.tolerance)),
        Err(e) => Verdict::format_failure(&e),
    }
}

/// Scores `responses` with up to `threads` at once, in order.
pub(crate) fn parallel_verify<V: Verifier + ?Sized>(
    verifier: &V,
    responses: &[String],
    gold: &str,
    threads: usize,
) -> Vec<Verdict> {
    let threads = threads.clamp(1, responses.len().max(1));
    if threads == 1 {
        return responses.iter().map(|r| verifier.verify(r, gold)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut scored: Vec<(usize, Verdict)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(r) = responses.get(i) else {
                            return mine;
                        };
                        mine.push((i, verifier.verify(r, gold)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    scored.sort_by_key(|(i, _)| *i);
    let mut out: Vec<Verdict> = Vec::with_capacity(responses.len());
    let mut it = scored.into_iter().peekable();
    for i in 0..responses.len() {
        match it.next_if(|(j, _)| *j == i) {
            Some((_, v)) => out.push(v),
            // A scoring thread panicked: that response scores 0, the rest stand.
            None => out.push(Verdict::rejected("verifier thread panicked".into())),
        }
    }
    out
}

/// Error from the verifier registry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// No verifier is registered under this name.
    #[error("unknown verifier `{name}` (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registered names, comma separated.
        known: String,
    },
}

/// Verifiers by name (a domain or `data_source` names its verifier).
#[derive(Clone, Default)]
pub struct Registry {
    verifiers: BTreeMap<String, Arc<dyn Verifier>>,
}

/// The built-in verifier names and their aliases: `(name, aliases)`.
pub const BUILTIN_NAMES: [(&str, &[&str]); 8] = [
    ("math", &["arithmetic", "stem", "mathematics"]),
    ("physics", &["chemistry", "science"]),
    ("chart", &["chartqa", "table"]),
    ("ocr", &["text_recognition"]),
    ("counting", &["count"]),
    ("choice", &["multiple_choice", "mcq"]),
    ("grounding", &["bbox", "detection"]),
    ("gui", &["gui_agent", "agent"]),
];

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in verifiers with their default settings, under the names and
    /// aliases of [`BUILTIN_NAMES`].
    pub fn builtin() -> Self {
        let mut r = Self::new();
        for (name, aliases) in BUILTIN_NAMES {
            let v: Arc<dyn Verifier> = match name {
                "math" => Arc::new(math::MathVerifier::default()),
                "physics" => Arc::new(math::MathVerifier::physics()),
                "chart" => Arc::new(chart::ChartVerifier::default()),
                "ocr" => Arc::new(ocr::OcrVerifier::default()),
                "counting" => Arc::new(counting::CountingVerifier),
                "choice" => Arc::new(choice::ChoiceVerifier),
                "grounding" => Arc::new(grounding::GroundingVerifier::default()),
                _ => Arc::new(gui::GuiVerifier::default()),
            };
            r.register(name, v.clone());
            for alias in aliases {
                r.register(alias, v.clone());
            }
        }
        r
    }

    /// Registers `verifier` under `name`, replacing any earlier one.
    pub fn register(&mut self, name: &str, verifier: Arc<dyn Verifier>) {
        self.verifiers.insert(name.to_string(), verifier);
    }

    /// The verifier registered under `name` (exact, else case-insensitive with `-`
    /// read as `_`).
    pub fn get(&self, name: &str) -> Result<Arc<dyn Verifier>, RegistryError> {
        if let Some(v) = self.verifiers.get(name) {
            return Ok(v.clone());
        }
        let folded = name.trim().to_ascii_lowercase().replace('-', "_");
        self.verifiers
            .get(&folded)
            .cloned()
            .ok_or_else(|| RegistryError::Unknown {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.verifiers.keys().cloned().collect()
    }

    /// Each distinct verifier once, with the first name it is registered under.
    pub fn distinct(&self) -> Vec<(String, Arc<dyn Verifier>)> {
        let mut out: Vec<(String, Arc<dyn Verifier>)> = Vec::new();
        for (name, v) in &self.verifiers {
            if !out.iter().any(|(_, w)| Arc::ptr_eq(w, v)) {
                out.push((name.clone(), v.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_4: &str = "<think>2+2</think><answer><|begin_of_box|>4<|end_of_box|></answer>";

    #[test]
    fn builtin_registry_has_every_domain_and_aliases() {
        let r = Registry::builtin();
        for (name, aliases) in BUILTIN_NAMES {
            assert_eq!(r.get(name).expect("registered").name(), name);
            for alias in aliases {
                assert_eq!(r.get(alias).expect("alias").name(), name, "alias {alias}");
            }
        }
        assert_eq!(r.get("Multiple-Choice").expect("folded").name(), "choice");
        assert_eq!(r.distinct().len(), BUILTIN_NAMES.len());
        let math = r.get("math").expect("math");
        assert_eq!(math.verify(GOOD_4, "4").reward, 1.0);
        match r.get("code") {
            Err(RegistryError::Unknown { name, known }) => {
                assert_eq!(name, "code");
                assert!(known.contains("grounding") && known.contains("math"));
            }
            Ok(_) => panic!("`code` is not registered"),
        }
    }

    #[test]
    fn format_failure_verdict() {
        let v = Verdict::format_failure(&FormatError::NoBox);
        assert_eq!(v.reward, 0.0);
        assert!(!v.correct && !v.format_ok && v.extracted.is_none());
        assert_eq!(v.subscores.get("format"), Some(&0.0));
        assert_eq!(
            v.reason.as_deref(),
            Some("format: no `<|begin_of_box|>…<|end_of_box|>` in the answer")
        );
    }

    #[test]
    fn judged_verdict_carries_subscores() {
        let j = Judgement::partial(0.5, Some("half".into())).with("iou", 0.5);
        let v = Verdict::judged("x", j);
        assert_eq!(v.reward, 0.5);
        assert!(!v.correct && v.format_ok);
        assert_eq!(v.subscores.get("format"), Some(&1.0));
        assert_eq!(v.subscores.get("answer"), Some(&0.5));
        assert_eq!(v.subscores.get("iou"), Some(&0.5));
        assert_eq!(v.reason.as_deref(), Some("half"));
        assert_eq!(Judgement::partial(f64::NAN, None).score, 0.0);
        assert!(Judgement::partial(1.5, None).correct);
    }

    #[test]
    fn tolerance_parses_and_compares() {
        let rel: Tolerance = serde_json::from_str(r#"{"rel": 0.01}"#).expect("rel");
        let abs: Tolerance = serde_json::from_str(r#"{"abs": 0.5}"#).expect("abs");
        assert_eq!(rel, Tolerance::Rel(0.01));
        assert_eq!(abs, Tolerance::Abs(0.5));
        assert!(rel.close(100.0, 100.9) && !rel.close(100.0, 101.1));
        assert!(abs.close(3.0, 3.5) && !abs.close(3.0, 3.6));
        assert!(!rel.close(f64::NAN, f64::NAN) && !abs.close(f64::INFINITY, 1.0));
        assert!(serde_json::from_str::<Tolerance>(r#"{"pct": 1}"#).is_err());
    }
}
