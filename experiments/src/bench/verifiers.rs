//! `rlcs bench verifiers`: verifications per second on a built-in mixed workload or
//! on a cases file, accuracy against each case's expected verdict, and the worst
//! time any verifier takes on the adversarial inputs of the conformance suite.
//!
//! A cases file is JSON lines in the schema shared with `bench/math_verify_run.py`:
//! `{"id", "source", "domain", "gold", "response", "expected", "extract"?, "tolerance"?}`.
//! The JSON report has the same schema for both tools, so `bench/verifiers.sh` can
//! put them side by side.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rlcs_rewards::{
    conformance, verify_with, ExtractMode, Registry, Tolerance, Verifier, VerifyOptions,
};
use serde::{Deserialize, Serialize};

/// The per-call budget on adversarial input (DESIGN: scored or rejected in < 10 ms).
pub const ADVERSARIAL_BUDGET_MS: f64 = 10.0;

/// One benchmark case: a response, its gold and the verdict we expect.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchCase {
    /// Case id.
    pub id: String,
    /// Where the case comes from (`file::test`; grouped by the part before `::`).
    #[serde(default)]
    pub source: String,
    /// The verifier (domain) name.
    pub domain: String,
    /// The gold answer.
    pub gold: String,
    /// The model's full response.
    pub response: String,
    /// Whether the response should be judged correct.
    pub expected: bool,
    /// Extraction mode (default `glm`).
    #[serde(default)]
    pub extract: ExtractMode,
    /// Tolerance override.
    #[serde(default)]
    pub tolerance: Option<Tolerance>,
}

/// Errors reading a cases file.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a valid case.
    #[error("{path}:{line}: {reason}")]
    Case {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no cases.
    #[error("{path}: no cases")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Reads a cases file (JSON lines; blank lines skipped). Every case's domain must be
/// a registered verifier.
pub fn load_cases(path: &Path, registry: &Registry) -> Result<Vec<BenchCase>, BenchError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
        path: name.clone(),
        source,
    })?;
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: String| BenchError::Case {
            path: name.clone(),
            line: i + 1,
            reason,
        };
        let case: BenchCase = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        registry
            .get(&case.domain)
            .map_err(|e| err(format!("`domain`: {e}")))?;
        cases.push(case);
    }
    if cases.is_empty() {
        return Err(BenchError::Empty { path: name });
    }
    Ok(cases)
}

fn glm(answer: &str) -> String {
    format!("<think>Let me work it out.</think><answer>The answer is <|begin_of_box|>{answer}<|end_of_box|>.</answer>")
}

/// The built-in mixed workload: GLM-format responses over every built-in verifier,
/// right answers and near misses, in the proportions of a mixed RL batch.
pub fn builtin_workload() -> Vec<BenchCase> {
    let rows: &[(&str, &str, &str, bool)] = &[
        ("math", "4", "4", true),
        ("math", "\\frac{1}{2}", "0.5", true),
        ("math", "\\frac{3}{4}", "\\frac{6}{8}", true),
        ("math", "2\\sqrt{2}", "\\sqrt{8}", true),
        ("math", "x^2+2x+1", "(x+1)^2", true),
        ("math", "(2,\\infty)", "x>2", true),
        ("math", "\\{1,2\\}", "\\{2,1\\}", true),
        ("math", "(1,2)", "(2,1)", false),
        ("math", "\\frac{1}{3}", "0.333", false),
        ("math", "1000", "1{,}000", true),
        ("math", "6.02\\times10^{23}", "6.02e23", true),
        ("math", "25\\%", "0.25", true),
        ("math", "x=3", "3", true),
        ("math", "\\pi", "3.14", false),
        ("math", "-7", "7", false),
        ("physics", "5 m", "500 cm", true),
        ("physics", "5 m", "5 cm", false),
        ("chart", "100", "101", true),
        ("chart", "2020", "2019", false),
        ("chart", "Apple", "apple", true),
        ("ocr", "Hello World", "Hello World", true),
        ("ocr", "Hello World", "Helo World", false),
        ("counting", "7", "7", true),
        ("counting", "7", "between 5 and 8", false),
        ("choice", "B", "(B)", true),
        ("choice", "B", "Option C", false),
        ("grounding", "[10,20,300,400]", "[12,22,298,405]", true),
        ("grounding", "[10,20,300,400]", "[500,500,600,600]", false),
        (
            "gui",
            r#"{"action":"click","box":[100,100,200,200]}"#,
            r#"{"action":"click","point":[150,150]}"#,
            true,
        ),
        (
            "gui",
            r#"{"action":"type","text":"hello"}"#,
            r#"{"action":"click","point":[1,1]}"#,
            false,
        ),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, (domain, gold, answer, expected))| BenchCase {
            id: format!("builtin-{:02}", i + 1),
            source: format!("rlcs builtin/{domain}"),
            domain: domain.to_string(),
            gold: gold.to_string(),
            response: glm(answer),
            expected: *expected,
            extract: ExtractMode::Glm,
            tolerance: None,
        })
        .collect()
}

/// Cases and correct verdicts of one source group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SourceTally {
    /// Cases in the group.
    pub cases: usize,
    /// Cases whose verdict matched the expectation.
    pub correct: usize,
}

/// A case whose verdict did not match the expectation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchFailure {
    /// Case id.
    pub id: String,
    /// Expected verdict.
    pub expected: bool,
    /// The verdict given.
    pub got: bool,
    /// The extracted answer, if any.
    pub extracted: Option<String>,
    /// The verifier's reason.
    pub reason: Option<String>,
}

/// The slowest adversarial call of one verifier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdversarialTiming {
    /// Verifier name.
    pub verifier: String,
    /// Label of the slowest adversarial input.
    pub input: String,
    /// Its time in milliseconds (best of three).
    pub ms: f64,
}

/// Worst-case timings on the conformance suite's adversarial inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdversarialReport {
    /// The per-call budget in milliseconds.
    pub budget_ms: f64,
    /// Slowest input per verifier.
    pub worst: Vec<AdversarialTiming>,
    /// Every (verifier, input) over the budget.
    pub over_budget: Vec<AdversarialTiming>,
}

/// A benchmark report, in the schema shared with `bench/math_verify_run.py`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// `rlcs`.
    pub tool: String,
    /// This build's version.
    pub version: String,
    /// Number of cases.
    pub cases: usize,
    /// Cases whose verdict matched the expectation.
    pub correct: usize,
    /// `correct / cases`.
    pub accuracy: f64,
    /// Verifications per second (all threads together).
    pub verifications_per_sec: f64,
    /// Seconds of timed work.
    pub seconds: f64,
    /// Threads used.
    pub threads: usize,
    /// Tallies by source (the part of `source` before `::`).
    pub by_source: BTreeMap<String, SourceTally>,
    /// Cases whose verdict did not match.
    pub failures: Vec<BenchFailure>,
    /// Worst-case adversarial timings, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adversarial: Option<AdversarialReport>,
}

/// How long and on how many threads to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchOptions {
    /// Keep repeating the cases until this much time has passed.
    pub min_time: Duration,
    /// Threads, each looping over all cases.
    pub threads: usize,
    /// Also time the adversarial inputs.
    pub adversarial: bool,
}

struct Prepared {
    verifier: Arc<dyn Verifier>,
    options: VerifyOptions,
}

/// Runs the benchmark: one pass for accuracy, then timed passes.
pub fn run_bench(registry: &Registry, cases: &[BenchCase], options: &BenchOptions) -> BenchReport {
    let prepared: Vec<Option<Prepared>> = cases
        .iter()
        .map(|c| {
            registry.get(&c.domain).ok().map(|verifier| Prepared {
                verifier,
                options: VerifyOptions {
                    extract: c.extract,
                    tolerance: c.tolerance,
                    ..VerifyOptions::default()
                },
            })
        })
        .collect();

    let mut by_source: BTreeMap<String, SourceTally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut correct = 0;
    for (case, p) in cases.iter().zip(&prepared) {
        let verdict = p
            .as_ref()
            .map(|p| verify_with(p.verifier.as_ref(), &case.response, &case.gold, &p.options));
        let got = verdict.as_ref().is_some_and(|v| v.correct);
        let group = case
            .source
            .split("::")
            .next()
            .unwrap_or_default()
            .to_string();
        let tally = by_source.entry(group).or_default();
        tally.cases += 1;
        if got == case.expected {
            correct += 1;
            tally.correct += 1;
        } else {
            failures.push(BenchFailure {
                id: case.id.clone(),
                expected: case.expected,
                got,
                extracted: verdict.as_ref().and_then(|v| v.extracted.clone()),
                reason: verdict.and_then(|v| v.reason),
            });
        }
    }

    let threads = options.threads.max(1);
    let start = Instant::now();
    let count: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let prepared = &prepared;
                s.spawn(move || {
                    let mut n = 0u64;
                    while start.elapsed() < options.min_time || n == 0 {
                        for (case, p) in cases.iter().zip(prepared) {
                            if let Some(p) = p {
                                black_box(verify_with(
                                    p.verifier.as_ref(),
                                    black_box(&case.response),
                                    black_box(&case.gold),
                                    &p.options,
                                ));
                                n += 1;
                            }
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let seconds = start.elapsed().as_secs_f64();

    BenchReport {
        tool: "rlcs".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        cases: cases.len(),
        correct,
        accuracy: if cases.is_empty() {
            0.0
        } else {
            correct as f64 / cases.len() as f64
        },
        verifications_per_sec: count as f64 / seconds.max(f64::MIN_POSITIVE),
        seconds,
        threads,
        by_source,
        failures,
        adversarial: options.adversarial.then(|| adversarial_timings(registry)),
    }
}

/// Times every built-in verifier on every adversarial input of the conformance
/// suite (judging the bare answer and verifying a GLM response holding it), best of
/// three, against [`ADVERSARIAL_BUDGET_MS`].
pub fn adversarial_timings(registry: &Registry) -> AdversarialReport {
    let inputs = conformance::adversarial_answers();
    let mut worst = Vec::new();
    let mut over_budget = Vec::new();
    for (_, verifier) in registry.distinct() {
        let golds = conformance::builtin_golds(verifier.name()).unwrap_or(&["1"]);
        let gold = golds.first().copied().unwrap_or("1");
        let mut slowest = AdversarialTiming {
            verifier: verifier.name().to_string(),
            input: String::new(),
            ms: 0.0,
        };
        for (label, answer) in &inputs {
            let response = glm(answer);
            let ms = (0..3)
                .map(|_| {
                    let t = Instant::now();
                    black_box(verifier.judge(black_box(answer), gold, None));
                    black_box(verifier.verify(black_box(&response), gold));
                    t.elapsed().as_secs_f64() * 1e3
                })
                .fold(f64::INFINITY, f64::min);
            let timing = AdversarialTiming {
                verifier: verifier.name().to_string(),
                input: label.clone(),
                ms,
            };
            if ms > ADVERSARIAL_BUDGET_MS {
                over_budget.push(timing.clone());
            }
            if ms > slowest.ms {
                slowest = timing;
            }
        }
        worst.push(slowest);
    }
    AdversarialReport {
        budget_ms: ADVERSARIAL_BUDGET_MS,
        worst,
        over_budget,
    }
}

impl BenchReport {
    /// A human-readable summary.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} cases, {} threads: {:.0} verifications/s over {:.1} s; accuracy {:.1}% ({}/{})\n",
            self.cases,
            self.threads,
            self.verifications_per_sec,
            self.seconds,
            100.0 * self.accuracy,
            self.correct,
            self.cases
        );
        for (source, t) in &self.by_source {
            s += &format!("  {source}: {}/{}\n", t.correct, t.cases);
        }
        for f in &self.failures {
            s += &format!(
                "  mismatch {}: expected {}, got {} (extracted {:?}; {})\n",
                f.id,
                f.expected,
                f.got,
                f.extracted.as_deref().unwrap_or("-"),
                f.reason.as_deref().unwrap_or("-")
            );
        }
        if let Some(a) = &self.adversarial {
            s += &format!("adversarial inputs (budget {} ms per call):\n", a.budget_ms);
            for w in &a.worst {
                s += &format!("  {}: slowest {:.3} ms ({})\n", w.verifier, w.ms, w.input);
            }
            for o in &a.over_budget {
                s += &format!(
                    "  OVER BUDGET {}: {:.3} ms ({})\n",
                    o.verifier, o.ms, o.input
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_workload_covers_every_builtin_verifier() {
        let r = Registry::builtin();
        let cases = builtin_workload();
        for (_, v) in r.distinct() {
            assert!(
                cases.iter().any(|c| c.domain == v.name()),
                "no case for {}",
                v.name()
            );
        }
        for c in &cases {
            assert!(r.get(&c.domain).is_ok(), "{}", c.domain);
        }
    }

    #[test]
    fn report_counts_mismatches_by_source() {
        let r = Registry::builtin();
        let mut cases = builtin_workload();
        cases.truncate(2);
        cases[1].expected = false; // 1/2 vs 0.5 is right: a deliberate mismatch
        cases[1].source = "other::x".into();
        let report = run_bench(
            &r,
            &cases,
            &BenchOptions {
                min_time: Duration::from_millis(10),
                threads: 2,
                adversarial: false,
            },
        );
        assert_eq!(report.cases, 2);
        assert_eq!(report.correct, 1);
        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].id, cases[1].id);
        assert_eq!(
            report.by_source["other"],
            SourceTally {
                cases: 1,
                correct: 0
            }
        );
        assert!(report.verifications_per_sec > 0.0);
        let json = serde_json::to_value(&report).expect("serialises");
        for key in [
            "tool",
            "cases",
            "correct",
            "accuracy",
            "verifications_per_sec",
            "seconds",
            "by_source",
            "failures",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn cases_file_errors_name_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cases.jsonl");
        let good = r#"{"id":"a","domain":"math","gold":"1","response":"\\boxed{1}","expected":true,"extract":"boxed"}"#;
        let r = Registry::builtin();
        std::fs::write(&path, format!("{good}\n\n{{\"id\":\"b\"}}\n")).expect("write");
        let e = load_cases(&path, &r)
            .expect_err("line 3 is bad")
            .to_string();
        assert!(
            e.contains("cases.jsonl:3:") && e.contains("missing field"),
            "{e}"
        );
        std::fs::write(&path, good.replace("math", "poetry")).expect("write");
        let e = load_cases(&path, &r).expect_err("bad domain").to_string();
        assert!(
            e.contains(":1:") && e.contains("unknown verifier `poetry`"),
            "{e}"
        );
        std::fs::write(&path, "\n").expect("write");
        assert!(matches!(
            load_cases(&path, &r),
            Err(BenchError::Empty { .. })
        ));
        std::fs::write(&path, good).expect("write");
        assert_eq!(load_cases(&path, &r).expect("loads").len(), 1);
    }
}
