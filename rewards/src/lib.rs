//! # rlcs-rewards
//!
//! Turns a model's response into a reward. Pure and synchronous: no I/O, no async
//! runtime, no actors, so it is fast to test, fuzz and benchmark.
//!
//! - [`extract`]: the strict GLM format gate — `<think>…</think><answer>…
//!   <|begin_of_box|>X<|end_of_box|>…</answer>` — which yields the boxed answer or a
//!   [`FormatError`] naming what is wrong.
//! - [`Verifier`]: scores one response against a gold answer and returns a [`Verdict`].
//! - [`math::MathVerifier`]: numeric and exact comparison for math/STEM answers.
//! - [`Registry`]: verifiers by name (a domain or `data_source` names its verifier).
#![deny(missing_docs)]

pub mod extract;
pub mod math;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use extract::{extract_glm, FormatError};

/// The outcome of verifying one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Reward in `[0, 1]`.
    pub reward: f64,
    /// Whether the answer counts as correct.
    pub correct: bool,
    /// Whether the response passed the format gate.
    pub format_ok: bool,
    /// The extracted final answer, when extraction succeeded.
    pub extracted: Option<String>,
    /// Named partial scores (e.g. `format`, `answer`).
    pub subscores: BTreeMap<String, f64>,
    /// Why the reward is not 1, when it is not.
    pub reason: Option<String>,
}

impl Verdict {
    /// A format failure: reward 0, with the reason.
    pub fn format_failure(err: &FormatError) -> Self {
        let mut subscores = BTreeMap::new();
        subscores.insert("format".to_string(), 0.0);
        Verdict {
            reward: 0.0,
            correct: false,
            format_ok: false,
            extracted: None,
            subscores,
            reason: Some(format!("format: {err}")),
        }
    }
}

/// Scores a response against a gold answer. Implementations never panic, whatever the
/// response holds: model outputs are adversarial.
pub trait Verifier: Send + Sync {
    /// The registry name of this verifier (e.g. `math`).
    fn name(&self) -> &str;
    /// Scores `response` (the full model output) against `gold`.
    fn verify(&self, response: &str, gold: &str) -> Verdict;
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

/// Verifiers by name.
#[derive(Clone, Default)]
pub struct Registry {
    verifiers: BTreeMap<String, Arc<dyn Verifier>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in verifiers: `math` (aliases `arithmetic`, `stem`).
    pub fn builtin() -> Self {
        let mut r = Self::new();
        let math: Arc<dyn Verifier> = Arc::new(math::MathVerifier::default());
        for name in ["math", "arithmetic", "stem"] {
            r.register(name, math.clone());
        }
        r
    }

    /// Registers `verifier` under `name`, replacing any earlier one.
    pub fn register(&mut self, name: &str, verifier: Arc<dyn Verifier>) {
        self.verifiers.insert(name.to_string(), verifier);
    }

    /// The verifier registered under `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Verifier>, RegistryError> {
        self.verifiers
            .get(name)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_registry_has_math_and_aliases() {
        let r = Registry::builtin();
        assert_eq!(r.names(), vec!["arithmetic", "math", "stem"]);
        for name in ["math", "arithmetic", "stem"] {
            let v = r.get(name).expect("registered");
            assert_eq!(v.name(), "math");
            let ok = v.verify(
                "<think>2+2</think><answer><|begin_of_box|>4<|end_of_box|></answer>",
                "4",
            );
            assert_eq!(ok.reward, 1.0);
        }
        assert_eq!(
            r.get("code").err(),
            Some(RegistryError::Unknown {
                name: "code".to_string(),
                known: "arithmetic, math, stem".to_string(),
            })
        );
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
}
