//! `rlcs bench model`: the libtorch model's training and generation throughput.
//!
//! Needs the `torch` feature; [`run`] says so when the binary was built without it.

/// Runs the model benchmark on `device` (`cpu`, `cuda`, `cuda:N`, `auto`).
#[cfg(feature = "torch")]
pub fn run(train_steps: usize, gen_runs: usize, device: &str) -> Result<serde_json::Value, String> {
    use rlcs_model::vlm::bench;
    let device = match device {
        "auto" => {
            if tch_cuda_available() {
                "cuda".to_string()
            } else {
                "cpu".to_string()
            }
        }
        d => d.to_string(),
    };
    let report = bench::run(&bench::BenchOptions {
        train_steps,
        gen_runs,
        device,
    })
    .map_err(|e| e.to_string())?;
    serde_json::to_value(report).map_err(|e| e.to_string())
}

#[cfg(feature = "torch")]
fn tch_cuda_available() -> bool {
    rlcs_model::torch::runtime_info().cuda_available
}

/// Built without the `torch` feature: the model cannot be benchmarked.
#[cfg(not(feature = "torch"))]
pub fn run(_: usize, _: usize, _: &str) -> Result<serde_json::Value, String> {
    Err("this rlcs was built without the `torch` feature; rebuild with default features to benchmark the model".into())
}

/// A readable summary of a report from [`run`].
pub fn to_markdown(report: &serde_json::Value) -> String {
    let f = |k: &str| report.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    let mut out = String::new();
    out.push_str(&format!(
        "model: {} parameters on {} ({} threads)\n\n",
        f("parameters"),
        report.get("device").and_then(|v| v.as_str()).unwrap_or("?"),
        f("threads"),
    ));
    out.push_str("| measure | value |\n|---|---|\n");
    for (label, key, scale) in [
        ("training step (s)", "train_step_seconds", 1.0),
        ("training tokens/s", "train_tokens_per_s", 1.0),
        ("fp32 matmul peak (GFLOP/s)", "peak_gflops", 1.0),
        ("MFU", "mfu", 1.0),
        (
            "generation tokens/s, KV cache",
            "gen_tokens_per_s_cache",
            1.0,
        ),
        (
            "generation tokens/s, KV cache, libtorch operators",
            "gen_tokens_per_s_cache_ops",
            1.0,
        ),
        (
            "generation tokens/s, no cache",
            "gen_tokens_per_s_no_cache",
            1.0,
        ),
        ("packing efficiency", "packing_efficiency", 1.0),
    ] {
        out.push_str(&format!("| {label} | {:.4} |\n", f(key) * scale));
    }
    out
}
