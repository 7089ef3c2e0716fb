//! The coding domain's verifier: runs the answer, a Python program, against tests
//! in the [`sandbox`](crate::sandbox). Reward = the fraction of tests passed.
//!
//! The gold answer is JSON in one of two forms:
//!
//! - **stdio tests** (competitive-programming style):
//!   `{"tests": [{"input": "1 2\n", "output": "3\n"}, …]}`. Each test is its own
//!   sandboxed run with `input` on stdin; it passes when the program exits 0 in time
//!   and its stdout equals `output` up to trailing whitespace on each line and
//!   trailing blank lines. rlcs compares the output itself, so a program cannot
//!   claim a pass it did not earn.
//! - **assert tests** (function style): `{"asserts": ["assert add(1, 2) == 3", …],
//!   "setup": "optional code run before each assert"}`. Each assert is its own run:
//!   the program is executed, then the assert; it passes when the run exits 0 and
//!   prints a per-run secret marker after the assert. The program shares the
//!   interpreter with its asserts, so a program written to forge the marker (by
//!   introspecting the harness) is not ruled out; frame, `gc` and `ctypes`
//!   introspection are refused by an audit hook to raise the bar. Prefer stdio tests
//!   where reward hacking matters.
//!
//! The program is the extracted answer; a Markdown code fence around it
//! (```` ```python … ``` ````) is removed. Tests of one answer run one after another;
//! [`Verifier::verify_group`] runs a group's answers in parallel, up to
//! `concurrency` sandboxes at once.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::sandbox::{Layers, Outcome, Sandbox, SandboxConfig, SandboxError};
use crate::{excerpt, Judgement, Tolerance, Verifier};

/// Most tests one gold answer may hold.
const MAX_TESTS: usize = 256;

/// Settings of the code verifier (`kind = "code"` in the TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeConfig {
    /// Sandboxes run at once when scoring a group (default 2).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Stop at the first failed test (its score is then the fraction passed before
    /// it; default false: run them all).
    #[serde(default)]
    pub stop_at_first_failure: bool,
    /// The sandbox's limits, per test run (`sandbox = { timeout_s = 5, … }`).
    #[serde(default)]
    pub sandbox: SandboxConfig,
}

fn default_concurrency() -> usize {
    2
}

impl Default for CodeConfig {
    fn default() -> Self {
        CodeConfig {
            concurrency: default_concurrency(),
            stop_at_first_failure: false,
            sandbox: SandboxConfig::default(),
        }
    }
}

/// One stdio test.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct StdioTest {
    #[serde(default)]
    input: String,
    output: String,
}

/// The tests of a gold answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Gold {
    #[serde(default)]
    tests: Vec<StdioTest>,
    #[serde(default)]
    asserts: Vec<String>,
    #[serde(default)]
    setup: String,
}

/// The harness of assert tests: reads the marker into a local, refuses frame
/// introspection, runs program, setup and one assert, then prints the marker.
const HARNESS: &str = r#"import sys
def _run():
    marker = sys.stdin.readline().strip()
    def _hook(event, args):
        if event in ("sys._getframe", "sys._current_frames", "gc.get_objects",
                     "gc.get_referrers", "gc.get_referents", "ctypes.dlopen",
                     "ctypes.dlsym", "ctypes.addressof", "ctypes.cdata",
                     "sys.settrace", "sys.setprofile"):
            raise RuntimeError("refused in the rlcs sandbox: " + event)
        if event == "object.__getattr__" and len(args) > 1 and args[1] in (
                "tb_frame", "f_back", "f_locals", "f_globals", "gi_frame",
                "cr_frame", "ag_frame"):
            raise RuntimeError("refused in the rlcs sandbox: " + str(args[1]))
    sys.addaudithook(_hook)
    with open("solution.py") as f:
        program = f.read()
    with open("test.py") as f:
        test = f.read()
    env = {"__name__": "__main__", "__builtins__": __builtins__}
    exec(compile(program, "solution.py", "exec"), env)
    exec(compile(test, "test.py", "exec"), env)
    sys.stdout.flush()
    sys.stdout.write("\n" + marker + "\n")
    sys.stdout.flush()
_run()
"#;

/// Runs answers as Python programs against their tests in a [`Sandbox`].
pub struct CodeVerifier {
    name: String,
    config: CodeConfig,
    sandbox: Sandbox,
    runs: AtomicU64,
}

impl CodeVerifier {
    /// Builds the sandbox (probing the kernel and the interpreter).
    pub fn new(name: &str, config: CodeConfig) -> Result<Self, SandboxError> {
        if config.concurrency == 0 || config.concurrency > 256 {
            return Err(SandboxError::Config {
                field: "concurrency",
                reason: format!("must lie in 1..=256, got {}", config.concurrency),
            });
        }
        let sandbox = Sandbox::new(config.sandbox.clone())?;
        Ok(CodeVerifier {
            name: name.to_string(),
            config,
            sandbox,
            runs: AtomicU64::new(0),
        })
    }

    /// The sandbox's layers.
    pub fn layers(&self) -> Layers {
        self.sandbox.layers()
    }

    /// Sandboxed runs so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// A fresh marker for one assert run: unpredictable to the program, so printing it
    /// takes the harness getting past the assert.
    fn marker(&self) -> String {
        let n = self.runs.load(Ordering::Relaxed);
        let mut bytes = [0u8; 16];
        let seeded = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .is_ok();
        if !seeded {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            bytes[..16].copy_from_slice(&(t ^ ((n as u128) << 64)).to_le_bytes());
        }
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("RLCS-PASS-{hex}")
    }

    fn run(
        &self,
        files: &[(&str, &[u8])],
        script: &str,
        stdin: &[u8],
    ) -> Result<Outcome, SandboxError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.sandbox.run(files, script, stdin)
    }

    /// Runs one test; `Ok(None)` when it passed, `Ok(Some(why))` when it failed.
    fn stdio_test(&self, program: &[u8], t: &StdioTest) -> Result<Option<String>, SandboxError> {
        let out = self.run(
            &[("solution.py", program)],
            "solution.py",
            t.input.as_bytes(),
        )?;
        if !out.success() {
            return Ok(Some(out.describe()));
        }
        if normalise(&out.stdout) == normalise(&t.output) {
            Ok(None)
        } else {
            Ok(Some(format!(
                "output \"{}\" != expected \"{}\"",
                excerpt(out.stdout.trim_end()),
                excerpt(t.output.trim_end())
            )))
        }
    }

    fn assert_test(
        &self,
        program: &[u8],
        setup: &str,
        assert: &str,
    ) -> Result<Option<String>, SandboxError> {
        let marker = self.marker();
        let test = format!("{setup}\n{assert}\n");
        let stdin = format!("{marker}\n");
        let out = self.run(
            &[
                ("solution.py", program),
                ("test.py", test.as_bytes()),
                ("harness.py", HARNESS.as_bytes()),
            ],
            "harness.py",
            stdin.as_bytes(),
        )?;
        let marked =
            out.stdout.lines().rev().find(|l| !l.trim().is_empty()) == Some(marker.as_str());
        if out.success() && marked {
            Ok(None)
        } else if out.success() {
            Ok(Some("the run ended before its assert finished".into()))
        } else {
            Ok(Some(out.describe()))
        }
    }
}

/// Output compared line by line without trailing whitespace, ignoring trailing blank
/// lines.
fn normalise(s: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = s.lines().map(str::trim_end).collect();
    while lines.last() == Some(&"") {
        lines.pop();
    }
    lines
}

/// The program inside an optional Markdown code fence.
pub fn strip_fence(answer: &str) -> &str {
    let t = answer.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    // Skip the info string (```python).
    let body = match rest.find('\n') {
        Some(i) => &rest[i + 1..],
        None => return t,
    };
    body.trim_end()
        .strip_suffix("```")
        .unwrap_or(body)
        .trim_end()
}

impl Verifier for CodeVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        let gold: Gold = match serde_json::from_str(gold) {
            Ok(g) => g,
            Err(e) => return Judgement::wrong(format!("gold is not a code test spec: {e}")),
        };
        let total = gold.tests.len() + gold.asserts.len();
        if total == 0 {
            return Judgement::wrong("gold has no `tests` and no `asserts`");
        }
        if total > MAX_TESTS {
            return Judgement::wrong(format!("gold has {total} tests (at most {MAX_TESTS})"));
        }
        let program = strip_fence(answer);
        if program.is_empty() {
            return Judgement::wrong("empty program");
        }
        let mut passed = 0usize;
        let mut first_failure: Option<String> = None;
        let mut ran = 0usize;
        let mut sandbox_failed = false;
        let tests = gold
            .tests
            .iter()
            .map(|t| (Some(t), None))
            .chain(gold.asserts.iter().map(|a| (None, Some(a.as_str()))));
        for (k, (stdio, assert)) in tests.enumerate() {
            let result = match (stdio, assert) {
                (Some(t), _) => self.stdio_test(program.as_bytes(), t),
                (None, Some(a)) => self.assert_test(program.as_bytes(), &gold.setup, a),
                (None, None) => continue,
            };
            ran += 1;
            match result {
                Ok(None) => passed += 1,
                Ok(Some(why)) => {
                    first_failure.get_or_insert_with(|| format!("test {}: {why}", k + 1));
                    if self.config.stop_at_first_failure {
                        break;
                    }
                }
                Err(e) => {
                    first_failure
                        .get_or_insert_with(|| format!("test {}: sandbox error: {e}", k + 1));
                    sandbox_failed = true;
                    break;
                }
            }
        }
        let score = passed as f64 / total as f64;
        let reason = first_failure.map(|f| format!("{passed}/{total} tests passed; {f}"));
        let mut j = Judgement::partial(score, reason)
            .with("tests_passed", passed as f64)
            .with("tests_total", total as f64);
        if ran < total {
            j = j.with("tests_skipped", (total - ran) as f64);
        }
        if sandbox_failed {
            j = j.with(crate::VERIFIER_ERROR, 1.0);
        }
        j
    }

    fn verify_group(&self, responses: &[String], gold: &str) -> Vec<crate::Verdict> {
        crate::parallel_verify(self, responses, gold, self.config.concurrency)
    }

    fn blocking(&self) -> bool {
        true
    }
}
