//! End-to-end tests of `rlcs study` on the simulated learner, through the real binary.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn rlcs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(args)
        .output()
        .expect("the rlcs binary starts")
}

/// Two samplers, two scenarios (one with a grade stage), a few iterations.
const STUDY: &str = r#"[study]
name = "tiny"
target_accuracy = 0.45
samplers = [
  { sampler = "uniform", expansion = false },
  { sampler = "rlcs", expansion = true },
]

[base]
name = "tiny"
seed = 5
[base.run]
iterations = 100
max_rollouts = 1600
batch_size = 8
group_size = 4
eval_rollouts = 2
eval_every = 2
[[base.domains]]
name = "arithmetic"
train = 60
eval = 40

[[scenarios]]
name = "revisit"

[[scenarios]]
name = "graded"
[scenarios.set.grade]
enabled = true
rollouts = 2
[[scenarios.set.domains]]
name = "algebra"
generator = "arithmetic"
train = 60
eval = 20
[[scenarios.set.domains]]
name = "geometry"
generator = "arithmetic"
train = 60
eval = 20
difficulty_min = 0.5
"#;

fn run_study(dir: &Path, text: &str, out: &str) -> Output {
    let cfg = dir.join("study.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = dir.join(out);
    rlcs(&[
        "study",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ])
}

#[test]
fn study_writes_tables_curves_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_study(dir.path(), STUDY, "a");
    assert!(
        o.status.success(),
        "rlcs study failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = dir.path().join("a");
    for f in ["study.md", "study.json", "revisit.png", "graded.png"] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    for png in ["revisit.png", "graded.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png} header");
        assert_eq!(&bytes[12..16], b"IHDR");
    }
    // Every run went through `rlcs run`'s path and left its report.
    for sc in ["revisit", "graded"] {
        for s in ["uniform", "rlcs"] {
            let report: Value = serde_json::from_slice(
                &std::fs::read(out.join(sc).join(s).join("report.json")).unwrap(),
            )
            .unwrap();
            let curve = report["eval_curve"].as_array().expect("eval_curve");
            assert_eq!(curve[0]["iteration"], 0, "initial point");
            assert!(curve.len() >= 3, "periodic evaluations");
            // The budget stops the run: at most one iteration past it.
            let rollouts = report["totals"]["rollouts"].as_u64().unwrap();
            assert!((1600..1600 + 8 * 4 * 4).contains(&rollouts), "{rollouts}");
        }
    }
    let md = std::fs::read_to_string(out.join("study.md")).unwrap();
    for sc in ["## revisit", "## graded"] {
        assert!(md.contains(sc), "{md}");
    }
    assert_eq!(md.matches("\n| uniform | off |").count(), 2, "{md}");
    assert_eq!(md.matches("\n| rlcs | on |").count(), 2, "{md}");
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join("study.json")).unwrap()).unwrap();
    let graded = &json["scenarios"][1];
    assert_eq!(graded["offline_tiers"], true);
    // The baseline skips grading; RLCS pays 2 rollouts per train sample.
    assert_eq!(graded["rows"][0]["grade_rollouts"], 0);
    assert_eq!(graded["rows"][1]["grade_rollouts"], 240);
    for row in json["scenarios"][0]["rows"].as_array().unwrap() {
        assert!(row["final_accuracy"].is_number());
        assert!(row.get("rollouts_to_target").is_some());
        assert!(row.get("steps_to_target").is_some());
    }

    // Same file, same seed: the same study.json.
    let o = run_study(dir.path(), STUDY, "b");
    assert!(o.status.success());
    assert_eq!(
        std::fs::read(out.join("study.json")).unwrap(),
        std::fs::read(dir.path().join("b").join("study.json")).unwrap(),
        "study.json is deterministic"
    );
}

#[test]
fn bad_study_files_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = STUDY.replace(
        "enabled = true\nrollouts = 2\n",
        "enabled = true\nrollouts = 2\nbogus = 1\n",
    );
    let o = run_study(dir.path(), &bad, "x");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("study.toml:32: `scenarios.1.set.grade.bogus`"),
        "{err}"
    );
    assert!(err.contains("unknown field `bogus`"), "{err}");
    let bad = STUDY.replace("batch_size = 8", "batch_size = 0");
    let o = run_study(dir.path(), &bad, "y");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("study.toml:15: `base.run.batch_size`: must be at least 1"),
        "{err}"
    );
    assert!(!dir.path().join("x").exists() && !dir.path().join("y").exists());
}

#[test]
fn several_seeds_give_paired_ratios_with_their_spread() {
    let dir = tempfile::tempdir().unwrap();
    let text = STUDY.replace(
        "target_accuracy = 0.45\n",
        "target_accuracy = 0.45\nseeds = [5, 6, 7]\n",
    );
    let o = run_study(dir.path(), &text, "s");
    assert!(
        o.status.success(),
        "rlcs study failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = dir.path().join("s");
    // One run per scenario × sampler × seed, each with its own seed.
    for seed in [5u64, 6, 7] {
        let report: Value = serde_json::from_slice(
            &std::fs::read(out.join(format!("revisit/rlcs/seed-{seed}/report.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report["seed"], seed);
    }
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join("study.json")).unwrap()).unwrap();
    assert_eq!(json["seeds"], serde_json::json!([5, 6, 7]));
    let rlcs = &json["scenarios"][0]["rows"][1];
    let per_seed = rlcs["per_seed"].as_array().unwrap();
    assert_eq!(per_seed.len(), 3);
    // The row's ratio is the mean of the per-seed (paired) ratios, with their spread.
    let ratios: Vec<f64> = per_seed
        .iter()
        .filter_map(|p| p["rollouts_speedup"].as_f64())
        .collect();
    if ratios.len() == 3 {
        let mean = ratios.iter().sum::<f64>() / 3.0;
        let got = rlcs["rollouts_speedup"].as_f64().unwrap();
        assert!((got - mean).abs() < 1e-9, "{got} vs {mean}");
        assert!(rlcs["rollouts_speedup_sd"].as_f64().unwrap() >= 0.0);
    } else {
        // A seed that never reached the target leaves the mean undefined.
        assert!(rlcs["rollouts_speedup"].is_null(), "{rlcs}");
    }
    let md = std::fs::read_to_string(out.join("study.md")).unwrap();
    assert!(md.contains("Seeds 5, 6, 7"), "{md}");
}
