//! End-to-end tests of runs on the libtorch model (`policy.backend = "tch"`) through
//! the real binary: replicas serve the model, the learner takes GRPO steps and hands
//! its weights on, runs are deterministic on CPU, and a resumed run continues
//! exactly (the checkpoint carries the optimiser state).
#![cfg(feature = "torch")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn rlcs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(args)
        .output()
        .expect("the rlcs binary starts")
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "rlcs failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The shipped tch config with `iterations` and a CPU device.
fn config(dir: &Path, iterations: u32) -> String {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/configs/tch-counting.toml"),
    )
    .unwrap();
    let text = shipped
        .replace("iterations = 3", &format!("iterations = {iterations}"))
        .replace("device = \"auto\"", "device = \"cpu\"");
    assert!(text.contains(&format!("iterations = {iterations}")));
    let p = dir.join(format!("tch-{iterations}.toml"));
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn run(cfg: &str, out: &Path) -> PathBuf {
    ok(&rlcs(&[
        "run",
        cfg,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    out.to_path_buf()
}

fn report(run: &Path) -> Value {
    let text = std::fs::read_to_string(run.join("report.json")).unwrap();
    let mut r: Value = serde_json::from_str(&text).unwrap();
    rlcs_experiments::report::strip_wall_times(&mut r);
    r
}

fn events(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn replicas_serve_the_model_and_the_learner_hands_weights_on() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 3);
    let a = run(&cfg, &dir.path().join("a"));
    let r = report(&a);
    let its = r["iterations"].as_array().unwrap();
    assert_eq!(its.len(), 3);
    for (k, it) in its.iter().enumerate() {
        assert_eq!(it["policy_version"], k as u64 + 1);
        assert!(it["rollouts"].as_u64().unwrap() > 0);
    }
    // Iteration k's rollouts come from the weights the learner published after
    // iteration k − 1.
    let ev = events(&a);
    let generated: Vec<u64> = ev
        .iter()
        .filter(|e| e["event"] == "rollouts_generated")
        .map(|e| e["policy_version"].as_u64().unwrap())
        .collect();
    assert_eq!(generated, vec![0, 1, 2]);
    let published: Vec<u64> = ev
        .iter()
        .filter(|e| e["event"] == "weights_published")
        .map(|e| e["policy_version"].as_u64().unwrap())
        .collect();
    assert_eq!(published, vec![1, 2, 3]);
    assert_eq!(
        r["totals"]["rollouts"].as_u64().unwrap(),
        its.iter()
            .map(|i| i["rollouts"].as_u64().unwrap())
            .sum::<u64>()
    );
    // Same seed and config on CPU: the same report.
    let b = run(&cfg, &dir.path().join("b"));
    assert_eq!(report(&b), r);
}

#[test]
fn a_resumed_tch_run_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let long = config(dir.path(), 3);
    let short = config(dir.path(), 2);
    let reference = run(&long, &dir.path().join("reference"));
    let extended = run(&short, &dir.path().join("extended"));
    ok(&rlcs(&[
        "run",
        &long,
        "--resume",
        extended.to_str().unwrap(),
        "--quiet",
    ]));
    assert_eq!(report(&extended), report(&reference));
}

#[test]
fn a_bad_tch_table_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("heads = 4", "heads = 3");
    std::fs::write(&cfg, text).unwrap();
    let o = rlcs(&["run", &cfg, "--out", dir.path().join("x").to_str().unwrap()]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("tch.model.dim") && e.contains("tch-1.toml"),
        "{e}"
    );
    assert!(
        !dir.path().join("x").exists(),
        "nothing written on a bad config"
    );
}

#[test]
fn bench_perception_prints_a_curve_per_task_and_names_a_bad_task() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1);
    let o = rlcs(&[
        "bench",
        "perception",
        "--config",
        &cfg,
        "--tasks",
        "colour,counting",
        "--steps",
        "4",
        "--batch",
        "2",
        "--eval",
        "6",
        "--every",
        "2",
        "--json",
    ]);
    ok(&o);
    let report: Value = serde_json::from_slice(&o.stdout).expect("a JSON report");
    let tasks = report["tasks"].as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t["task"].as_str().unwrap()).collect();
    assert_eq!(names, ["colour", "counting"]);
    for t in tasks {
        let steps: Vec<u64> = t["curve"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [2, 4], "{t}");
        let guess = t["guessing_rate"].as_f64().unwrap();
        assert!(guess > 0.0 && guess <= 1.0, "{t}");
    }
    let bad = rlcs(&[
        "bench",
        "perception",
        "--config",
        &cfg,
        "--tasks",
        "colours",
    ]);
    assert!(!bad.status.success());
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(
        e.contains("\"colours\"") && e.contains("two-colours"),
        "{e}"
    );
}
