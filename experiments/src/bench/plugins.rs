//! `rlcs bench plugins`: requests per second through plug-in verifiers against the
//! same rule in-process, measured in one run.
//!
//! The workload is groups of 8 GLM-format responses to counting questions (half of
//! them right). Rows:
//!
//! - `in-process`: the built-in `counting` verifier (the baseline);
//! - `external ×c`: the external verifier (by default the repository's
//!   `examples/verifiers/exact_match.py`, the same exact/numeric rule) with `c`
//!   processes, driven by `c` callers as the verifier actors would;
//! - `code sandbox ×c` (unless skipped): one sandboxed Python run per response of a
//!   one-test stdio spec, `c` at once.
//!
//! Each row reports requests (responses scored) per second and its ratio to the
//! baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rlcs_rewards::code::{CodeConfig, CodeVerifier};
use rlcs_rewards::external::{ExternalConfig, ExternalVerifier};
use rlcs_rewards::{Registry, Verifier};
use serde::Serialize;

/// Responses per group.
const GROUP: usize = 8;

/// Settings of the benchmark.
#[derive(Debug, Clone)]
pub struct PluginBenchOptions {
    /// The external verifier's command.
    pub command: Vec<String>,
    /// Process counts to measure.
    pub concurrency: Vec<usize>,
    /// Minimum timed seconds per row.
    pub min_time: Duration,
    /// Measure the code sandbox too.
    pub sandbox: bool,
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct PluginRow {
    /// What was measured.
    pub name: String,
    /// Processes (or sandboxes) at once; 1 in-process.
    pub concurrency: usize,
    /// Responses scored.
    pub requests: u64,
    /// Timed seconds.
    pub seconds: f64,
    /// Responses scored per second.
    pub per_second: f64,
    /// `per_second` over the in-process baseline's.
    pub vs_in_process: f64,
    /// Rewards that differ from the baseline's on the same responses.
    pub disagreements: u64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct PluginReport {
    /// Rows, the baseline first.
    pub rows: Vec<PluginRow>,
}

impl PluginReport {
    /// A plain-text table.
    pub fn to_text(&self) -> String {
        let mut s = String::from(
            "verifier                 conc   requests   seconds      req/s  slower than in-process  disagree\n",
        );
        for r in &self.rows {
            s.push_str(&format!(
                "{:<24} {:>4} {:>10} {:>9.2} {:>10.0} {:>22.1}x {:>9}\n",
                r.name,
                r.concurrency,
                r.requests,
                r.seconds,
                r.per_second,
                1.0 / r.vs_in_process.max(f64::MIN_POSITIVE),
                r.disagreements
            ));
        }
        s
    }
}

/// The workload: groups of responses with their gold.
fn workload() -> Vec<(Vec<String>, String)> {
    (0..64u64)
        .map(|g| {
            let gold = (3 + g % 17).to_string();
            let responses = (0..GROUP as u64)
                .map(|k| {
                    let answer = if k % 2 == 0 { gold.clone() } else { (4 + (g + k) % 19).to_string() };
                    format!("<think>I count the shapes one by one.</think><answer>There are <|begin_of_box|>{answer}<|end_of_box|> shapes.</answer>")
                })
                .collect();
            (responses, gold)
        })
        .collect()
}

/// Loops `callers` threads over the workload until `min_time`; responses scored and
/// seconds, and how many rewards differ from `expected`.
fn drive(
    verifier: &dyn Verifier,
    groups: &[(Vec<String>, String)],
    expected: &[Vec<f64>],
    callers: usize,
    min_time: Duration,
) -> (u64, f64, u64) {
    let started = Instant::now();
    let counts: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..callers.max(1))
            .map(|c| {
                s.spawn(move || {
                    let (mut n, mut bad) = (0u64, 0u64);
                    let mut i = c;
                    while started.elapsed() < min_time {
                        let k = i % groups.len();
                        let (responses, gold) = &groups[k];
                        for (v, want) in verifier
                            .verify_group(responses, gold)
                            .iter()
                            .zip(&expected[k])
                        {
                            bad += u64::from(v.reward != *want);
                        }
                        n += responses.len() as u64;
                        i += callers;
                    }
                    (n, bad)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let requests = counts.iter().map(|c| c.0).sum();
    let bad = counts.iter().map(|c| c.1).sum();
    (requests, seconds, bad)
}

/// Runs the benchmark.
pub fn run(options: &PluginBenchOptions) -> Result<PluginReport, String> {
    let groups = workload();
    let builtin = Registry::builtin()
        .get("counting")
        .map_err(|e| e.to_string())?;
    let expected: Vec<Vec<f64>> = groups
        .iter()
        .map(|(r, g)| {
            builtin
                .verify_group(r, g)
                .iter()
                .map(|v| v.reward)
                .collect()
        })
        .collect();
    let (requests, seconds, _) = drive(builtin.as_ref(), &groups, &expected, 1, options.min_time);
    let base = requests as f64 / seconds;
    let row = |name: String, concurrency: usize, (requests, seconds, bad): (u64, f64, u64)| {
        let per_second = requests as f64 / seconds;
        PluginRow {
            name,
            concurrency,
            requests,
            seconds,
            per_second,
            vs_in_process: per_second / base,
            disagreements: bad,
        }
    };
    let mut rows = vec![row("in-process counting".into(), 1, (requests, seconds, 0))];
    for &c in &options.concurrency {
        let mut config = ExternalConfig::new(&[]);
        config.command = options.command.clone();
        config.concurrency = c;
        let v = ExternalVerifier::start("counting", config).map_err(|e| e.to_string())?;
        let measured = drive(&v, &groups, &expected, c, options.min_time);
        if v.stats().failed > 0 {
            return Err(format!(
                "the external verifier failed {} requests",
                v.stats().failed
            ));
        }
        rows.push(row(format!("external x{c}"), c, measured));
    }
    if options.sandbox {
        // One stdio test per response; the program prints its boxed answer.
        let code_groups: Vec<(Vec<String>, String)> = groups
            .iter()
            .take(8)
            .map(|(responses, gold)| {
                let programs = responses
                    .iter()
                    .map(|r| {
                        let answer = r
                            .split("<|begin_of_box|>")
                            .nth(1)
                            .and_then(|t| t.split("<|end_of_box|>").next())
                            .unwrap_or("0");
                        format!("<think>t</think><answer><|begin_of_box|>print({answer})<|end_of_box|></answer>")
                    })
                    .collect();
                let spec = serde_json::json!({"tests": [{"input": "", "output": gold}]}).to_string();
                (programs, spec)
            })
            .collect();
        let code_expected: Vec<Vec<f64>> = expected.iter().take(8).cloned().collect();
        for &c in &options.concurrency {
            let config = CodeConfig {
                concurrency: c,
                ..CodeConfig::default()
            };
            let v = Arc::new(CodeVerifier::new("code", config).map_err(|e| e.to_string())?);
            let measured = drive(
                v.as_ref(),
                &code_groups,
                &code_expected,
                1,
                options.min_time,
            );
            rows.push(row(format!("code sandbox x{c}"), c, measured));
        }
    }
    Ok(PluginReport { rows })
}
