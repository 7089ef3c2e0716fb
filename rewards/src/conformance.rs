//! The conformance suite every verifier passes, written once and run against each
//! (built-in and plug-in alike).
//!
//! [`check`] feeds a verifier the [`adversarial_answers`] — empty, huge, unicode,
//! deeply nested, binary-ish, numeric bombs — against the golds you give it, plus
//! each gold against itself, and reports every broken promise as a [`Violation`]:
//!
//! - `judge` returns (no panic, no stack overflow) within [`HANG_LIMIT`];
//! - the score is finite and in `[0, 1]`, and `correct` holds exactly when it is 1;
//! - a wrong answer says why (`reason` is set);
//! - the same input gives the same judgement;
//! - every gold, given as the answer, is judged correct;
//! - [`verify_with`] on whole responses keeps the reward in `[0, 1]`, gives 0 to
//!   every format failure, and never panics in any [`ExtractMode`].
//!
//! The hang limit is a guard against runaway work, not a performance target: the
//! per-call budget (10 ms on adversarial input) is measured by `rlcs bench verifiers`.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::{verify_with, ExtractMode, Judgement, Verifier, VerifyOptions};

/// Longest a single call may take before the suite calls it a hang (generous, so
/// that unoptimised test builds on slow machines pass; see the module docs).
pub const HANG_LIMIT: Duration = Duration::from_secs(2);

/// A broken promise found by [`check`].
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The verifier's name.
    pub verifier: String,
    /// Which adversarial input or gold (a short label).
    pub input: String,
    /// What went wrong.
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.verifier, self.input, self.problem)
    }
}

/// Adversarial final answers: `(label, answer)`. Model outputs are adversarial, so
/// every verifier must survive all of these.
pub fn adversarial_answers() -> Vec<(String, String)> {
    let binaryish: String = (0u8..=255).map(char::from).collect();
    let mut v: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("whitespace", " \t\n\r\u{3000}\u{a0}".to_string()),
        ("1 MB of letters", "a".repeat(1 << 20)),
        ("1 MB of digits", "9".repeat(1 << 20)),
        ("1 MB of words", "word ".repeat(1 << 18)),
        (
            "100k nested braces",
            "{".repeat(100_000) + &"}".repeat(100_000),
        ),
        ("100k open parens", "(".repeat(100_000)),
        (
            "100k nested brackets",
            "[".repeat(100_000) + &"]".repeat(100_000),
        ),
        (
            "nested fractions",
            "\\frac{".repeat(20_000) + "1" + &"}{2}".repeat(20_000),
        ),
        (
            "nested roots",
            "\\sqrt{".repeat(20_000) + "2" + &"}".repeat(20_000),
        ),
        ("power tower", "10^{10^{10^{10}}}".to_string()),
        ("tall power tower", "2^".repeat(10_000) + "2"),
        ("huge factorial", "1000000!".to_string()),
        ("nested factorial", "(100!)!".to_string()),
        ("huge exponent", "9^{9^9}".to_string()),
        ("overflowing float", "1e999999".to_string()),
        ("10k-digit number", "7".repeat(10_000)),
        (
            "10k-digit fraction",
            format!("{}/{}", "3".repeat(10_000), "7".repeat(10_000)),
        ),
        ("division by zero", "1/0".to_string()),
        ("zero over zero", "0/0".to_string()),
        ("nan and inf", "NaN inf -inf \\infty".to_string()),
        ("sqrt of negative", "\\sqrt{-1}".to_string()),
        (
            "unicode",
            "答案是 ⅔ ≈ 0.667 — π² ≠ ∞ 🎉 مرحبا עברית".to_string(),
        ),
        ("combining marks", "e\u{301}\u{302}\u{303}".repeat(10_000)),
        (
            "zero width",
            "\u{200b}\u{200d}\u{feff}4\u{200b}".to_string(),
        ),
        ("rtl override", "\u{202e}42\u{202c}".to_string()),
        ("binary-ish", binaryish),
        ("NUL bytes", "\0".repeat(1000)),
        ("lone backslashes", "\\".repeat(10_001)),
        (
            "latex soup",
            "\\left(\\right]\\begin{pmatrix}\\end{bmatrix}&&\\\\".repeat(1000),
        ),
        (
            "unclosed environment",
            "\\begin{pmatrix}1&2\\\\3".to_string(),
        ),
        ("json bomb", "[".repeat(100_000)),
        ("json object bomb", "{\"a\":".repeat(50_000)),
        ("deep json", "[[[[[[[[[[1,2,3,4]]]]]]]]]]".to_string()),
        ("box tokens", "<|begin_of_box|>1<|end_of_box|>".repeat(1000)),
        ("many numbers", "1, ".repeat(100_000)),
        ("many intervals", "(1,2]\\cup".repeat(10_000) + "(3,4)"),
        ("many equals", "x=".repeat(50_000) + "1"),
        ("plus-minus chain", "1\\pm".repeat(64) + "1"),
        ("hedge", "a number between 0 and 10".to_string()),
        ("many variables", "abcdefghijklmnopqrstuvwxyz".repeat(1000)),
    ];
    v.push(("percent signs", "%".repeat(100_000)));
    v.into_iter().map(|(l, a)| (l.to_string(), a)).collect()
}

/// Representative golds for a built-in verifier (by its name), in that verifier's
/// gold syntax; `None` for a name that is not built in.
pub fn builtin_golds(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "math" => &[
            "4",
            "\\frac{1}{2}",
            "x^2+1",
            "(1,2]",
            "\\{1,2\\}",
            "x=3",
            "\\text{yes}",
        ],
        "physics" => &["5 m", "9.8 m/s^2", "3"],
        "chart" => &["12.5", "2019", "Apple"],
        "ocr" => &["Hello World", "答案 42"],
        "counting" => &["7", "0"],
        "choice" => &["B", "AC"],
        "grounding" => &["[10,20,300,400]", "[[0,0,100,100],[500,500,600,600]]"],
        "gui" => &[
            r#"{"action":"click","point":[100,200]}"#,
            r#"{"action":"type","text":"hello"}"#,
        ],
        _ => return None,
    })
}

/// Runs `f`, turning a panic into a [`Violation`] and timing it against [`HANG_LIMIT`].
fn guarded<T>(
    verifier: &str,
    input: &str,
    out: &mut Vec<Violation>,
    f: impl FnOnce() -> T,
) -> Option<T> {
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(f));
    let elapsed = start.elapsed();
    let mut violation = |problem: String| {
        out.push(Violation {
            verifier: verifier.to_string(),
            input: input.to_string(),
            problem,
        })
    };
    if elapsed > HANG_LIMIT {
        violation(format!("took {elapsed:?} (hang limit {HANG_LIMIT:?})"));
    }
    match result {
        Ok(t) => Some(t),
        Err(_) => {
            violation("panicked".to_string());
            None
        }
    }
}

/// The problems with one judgement, if any.
fn judgement_problems(j: &Judgement) -> Vec<String> {
    let mut p = Vec::new();
    if !j.score.is_finite() || !(0.0..=1.0).contains(&j.score) {
        p.push(format!("score {} outside [0, 1]", j.score));
    }
    if j.correct != (j.score >= 1.0) {
        p.push(format!("correct = {} but score = {}", j.correct, j.score));
    }
    if !j.correct && j.reason.as_deref().is_none_or(str::is_empty) {
        p.push("wrong answer without a reason".to_string());
    }
    for (k, v) in &j.subscores {
        if !v.is_finite() {
            p.push(format!("sub-score `{k}` is {v}"));
        }
    }
    p
}

/// Runs the whole suite against `verifier` with these representative `golds` (in the
/// verifier's own gold syntax, e.g. JSON boxes for grounding). Returns every
/// violation found; an empty list means the verifier conforms.
pub fn check(verifier: &dyn Verifier, golds: &[&str]) -> Vec<Violation> {
    let name = verifier.name().to_string();
    let mut out = Vec::new();
    let answers = adversarial_answers();
    for gold in golds {
        // A gold, given back as the answer, is right.
        let label = format!("gold {:?} as answer", crate::excerpt(gold));
        if let Some(j) = guarded(&name, &label, &mut out, || verifier.judge(gold, gold, None)) {
            if !j.correct {
                out.push(Violation {
                    verifier: name.clone(),
                    input: label,
                    problem: format!("the gold itself is judged wrong: {:?}", j.reason),
                });
            }
        }
        for (label, answer) in &answers {
            let label = format!("{label} vs gold {:?}", crate::excerpt(gold));
            let first = guarded(&name, &label, &mut out, || {
                verifier.judge(answer, gold, None)
            });
            let Some(first) = first else { continue };
            for problem in judgement_problems(&first) {
                out.push(Violation {
                    verifier: name.clone(),
                    input: label.clone(),
                    problem,
                });
            }
            // The adversarial text as the gold must not break the verifier either.
            let _ = guarded(&name, &format!("{label} (as gold)"), &mut out, || {
                verifier.judge(gold, answer, None)
            });
            let again = guarded(&name, &label, &mut out, || {
                verifier.judge(answer, gold, None)
            });
            if again.as_ref() != Some(&first) {
                out.push(Violation {
                    verifier: name.clone(),
                    input: label.clone(),
                    problem: "the same input gave a different judgement".to_string(),
                });
            }
        }
        // Whole responses through every extraction mode.
        for (label, answer) in answers.iter().take(12) {
            let responses = [
                answer.clone(),
                format!("<think>{answer}</think><answer><|begin_of_box|>{answer}<|end_of_box|></answer>"),
                format!("The answer is \\boxed{{{answer}}}"),
            ];
            for (i, response) in responses.iter().enumerate() {
                for mode in ExtractMode::ALL {
                    let label = format!("response {i} of {label} in mode {}", mode.name());
                    let options = VerifyOptions {
                        extract: mode,
                        ..VerifyOptions::default()
                    };
                    let Some(v) = guarded(&name, &label, &mut out, || {
                        verify_with(verifier, response, gold, &options)
                    }) else {
                        continue;
                    };
                    let bad = !(0.0..=1.0).contains(&v.reward)
                        || (!v.format_ok && v.reward != 0.0)
                        || (v.correct && v.reward < 1.0);
                    if bad {
                        out.push(Violation {
                            verifier: name.clone(),
                            input: label,
                            problem: format!(
                                "verdict reward {} correct {} format_ok {}",
                                v.reward, v.correct, v.format_ok
                            ),
                        });
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Judgement, Tolerance};

    /// A verifier that breaks every rule, to prove the suite catches it.
    struct Broken;
    impl Verifier for Broken {
        fn name(&self) -> &str {
            "broken"
        }
        fn judge(&self, answer: &str, _gold: &str, _t: Option<Tolerance>) -> Judgement {
            if answer.len() > 500_000 {
                panic!("too long");
            }
            Judgement {
                score: if answer.is_empty() { 2.0 } else { 0.5 },
                correct: true,
                subscores: Default::default(),
                reason: None,
            }
        }
    }

    #[test]
    fn the_suite_catches_a_broken_verifier() {
        let violations = check(&Broken, &["1"]);
        let problems: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
        let has = |s: &str| problems.iter().any(|p| p.contains(s));
        assert!(has("panicked"), "{problems:?}");
        assert!(has("outside [0, 1]"), "{problems:?}");
        assert!(has("correct = true but score = 0.5"), "{problems:?}");
    }

    #[test]
    fn inputs_are_labelled_uniquely() {
        let inputs = adversarial_answers();
        let mut labels: Vec<&String> = inputs.iter().map(|(l, _)| l).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), inputs.len());
    }
}
