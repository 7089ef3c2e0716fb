//! End-to-end tests of `rlcs run` on the simulated learner, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn rlcs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(args)
        .output()
        .expect("the rlcs binary starts")
}

/// A small but complete sim experiment.
fn small_config(sampler: &str, expansion: bool, extra: &str) -> String {
    format!(
        r#"name = "e2e-{sampler}"
seed = 11

[run]
iterations = 25
batch_size = 16
group_size = 8
eval_rollouts = 4

[[domains]]
name = "arithmetic"
train = 400
eval = 150

[curriculum]
sampler = "{sampler}"

[curriculum.expansion]
enabled = {expansion}

[actors]
loaders = 2
replicas = 2
verifiers = 3
{extra}
"#
    )
}

fn run_config(dir: &Path, toml: &str) -> (PathBuf, Value) {
    let cfg = dir.join("exp.toml");
    std::fs::write(&cfg, toml).unwrap();
    let out = dir.join("run");
    let o = rlcs(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        o.status.success(),
        "rlcs run failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    (out, report)
}

fn check_contract(report: &Value) {
    assert!(report["config"].is_object(), "config");
    let its = report["iterations"].as_array().expect("iterations array");
    assert!(!its.is_empty());
    for it in its {
        for key in [
            "iteration",
            "rollouts",
            "mean_reward",
            "accuracy",
            "not_valid_rate",
            "expansion_ratio_ema",
        ] {
            assert!(it[key].is_number(), "iteration field {key}: {it}");
        }
        assert!(it["tier_counts"].is_object(), "tier_counts");
    }
    assert!(report["final_eval"]["accuracy"].is_number());
    assert!(report["final_eval"]["per_domain"]["arithmetic"].is_number());
    for key in ["rollouts", "samples_selected", "samples_scored", "restarts"] {
        assert!(report["totals"][key].is_u64(), "totals.{key}");
    }
}

/// Every observation the run reported is one history entry in the sled store.
fn check_store(run_dir: &Path, report: &Value) {
    let store = rlcs_storage::Store::open(&run_dir.join("store")).unwrap();
    let all = store.all_observations().unwrap();
    let selected = report["totals"]["samples_selected"].as_u64().unwrap() as usize;
    assert_eq!(all.len(), selected, "one history entry per observation");
    let rollouts: u64 = all.iter().map(|o| o.rollouts as u64).sum();
    assert_eq!(rollouts, report["totals"]["rollouts"].as_u64().unwrap());
    // Per iteration the store holds exactly the groups the iteration rolled out.
    for it in report["iterations"].as_array().unwrap() {
        let n = it["iteration"].as_u64().unwrap() as u32;
        let in_store = all.iter().filter(|o| o.iteration == n).count();
        assert_eq!(
            in_store as u64,
            it["selected"].as_u64().unwrap(),
            "iteration {n}"
        );
    }
    // The registry knows the run, its end, and (built in a checkout) the commit.
    let name = run_dir.file_name().unwrap().to_str().unwrap();
    let entry = store.run_entry(name).unwrap().expect("run registered");
    assert_eq!(entry.record.status, rlcs_storage::RunStatus::Finished);
    assert!(entry.ended_unix_ms >= entry.started_unix_ms);
    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Some(g) = git.ok().filter(|g| g.status.success()) {
        let head = String::from_utf8_lossy(&g.stdout).trim().to_string();
        assert_eq!(entry.code_revision.as_deref(), Some(head.as_str()));
    }
}

/// Evaluations of a run draw the same sampling seeds (common random numbers): a
/// model that does not change scores the same at every evaluation, so the change
/// between two evaluations is the model's, not the sampling draw's.
#[test]
fn evaluations_of_unchanged_weights_give_the_same_scores() {
    let dir = tempfile::tempdir().unwrap();
    // A simulated learner that learns nothing, evaluated every 5 iterations.
    let toml = small_config(
        "rlcs",
        true,
        "[sim]\nlearning_rate = 0.0\nmemorization = 0.0\n",
    )
    .replacen(
        "eval_rollouts = 4\n",
        "eval_rollouts = 4\neval_every = 5\n",
        1,
    );
    let (_, report) = run_config(dir.path(), &toml);
    let (initial, fin) = (&report["initial_eval"], &report["final_eval"]);
    let accuracy = initial["accuracy"].as_f64().unwrap();
    // The simulated policy is stochastic: neither always right nor always wrong.
    assert!(accuracy > 0.0 && accuracy < 1.0, "{accuracy}");
    assert_eq!(initial, fin);
    let curve = report["eval_curve"].as_array().unwrap();
    assert_eq!(curve.len(), 6, "{curve:?}");
    for point in curve {
        assert_eq!(point["accuracy"].as_f64(), Some(accuracy), "{curve:?}");
    }
}

/// `run.eval_temperature = 0` evaluates greedily: one path per sample, so the
/// figure does not depend on how many rollouts each sample gets, while training
/// rollouts still sample at `run.temperature`; the report says how it evaluated.
#[test]
fn a_greedy_evaluation_does_not_depend_on_its_rollout_count() {
    let eval = |dir: &Path, rollouts: usize, temperature: &str| -> Value {
        let toml = small_config("rlcs", true, "").replacen(
            "eval_rollouts = 4\n",
            &format!("eval_rollouts = {rollouts}\n{temperature}"),
            1,
        );
        let (run, mut report) = run_config(dir, &toml);
        rlcs_experiments::report::strip_wall_times(&mut report);
        if !temperature.is_empty() {
            let md = std::fs::read_to_string(run.join("report.md")).unwrap();
            assert!(md.contains("Greedy decoding (temperature 0)"), "{md}");
        }
        report
    };
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let greedy = "eval_temperature = 0.0\n";
    let (one, four) = (
        eval(dirs[0].path(), 1, greedy),
        eval(dirs[1].path(), 4, greedy),
    );
    for key in ["initial_eval", "final_eval"] {
        let (a, b) = (&one[key], &four[key]);
        assert_eq!(a["accuracy"], b["accuracy"], "{key}");
        assert_eq!(a["per_domain"], b["per_domain"], "{key}");
        assert_eq!(a["temperature"].as_f64(), Some(0.0));
        assert_eq!(
            b["rollouts"].as_u64(),
            Some(4 * a["rollouts"].as_u64().unwrap())
        );
    }
    // Training rollouts are the same as without the setting: only evaluation
    // changed temperature.
    let sampled = eval(dirs[2].path(), 4, "");
    assert_eq!(sampled["iterations"], four["iterations"]);
    // Sampled evaluations do depend on the draw: the check above can fail.
    let sampled_one = eval(dirs[3].path(), 1, "");
    assert_ne!(
        sampled_one["initial_eval"]["accuracy"],
        sampled["initial_eval"]["accuracy"]
    );
    assert_eq!(sampled["initial_eval"]["temperature"].as_f64(), Some(1.0));
}

#[test]
fn rlcs_run_learns_scores_exactly_once_and_persists_histories() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, report) = run_config(dir.path(), &small_config("rlcs", true, ""));
    check_contract(&report);
    let t = &report["totals"];
    assert_eq!(t["samples_scored"], t["samples_selected"]);
    assert_eq!(t["restarts"], 0);
    let before = report["initial_eval"]["accuracy"].as_f64().unwrap();
    let after = report["final_eval"]["accuracy"].as_f64().unwrap();
    assert!(after > before + 0.05, "eval accuracy {before} -> {after}");
    // Expansion kicked in: some iteration rolled out more prompts than the batch.
    assert!(report["iterations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|it| it["selected"].as_u64().unwrap() > 16));
    check_store(&run_dir, &report);
    for f in ["report.md", "events.jsonl", "config.resolved.toml"] {
        assert!(run_dir.join(f).is_file(), "{f}");
    }
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert!(events.contains("\"event\":\"run_finished\""));
    assert_eq!(events.matches("\"event\":\"learner_stepped\"").count(), 25);
}

#[test]
fn uniform_baseline_runs_without_expansion() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, report) = run_config(dir.path(), &small_config("uniform", false, ""));
    check_contract(&report);
    for it in report["iterations"].as_array().unwrap() {
        assert_eq!(it["selected"], 16);
    }
    let t = &report["totals"];
    assert_eq!(t["samples_scored"], t["samples_selected"]);
    check_store(&run_dir, &report);
}

#[test]
fn every_sampler_runs_through_the_actor_graph() {
    for sampler in [
        "dapo",
        "band_pass",
        "kimi",
        "p1mp",
        "plr",
        "adarft",
        "learning_progress",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let toml = small_config(sampler, sampler != "dapo", "")
            .replace("iterations = 25", "iterations = 6");
        let (run_dir, report) = run_config(dir.path(), &toml);
        check_contract(&report);
        let t = &report["totals"];
        assert_eq!(t["samples_scored"], t["samples_selected"], "{sampler}");
        check_store(&run_dir, &report);
        if sampler == "dapo" {
            // DAPO tops the batch up with extra rounds until B mixed groups are
            // kept (or its round cap is hit): never more than B, mostly exactly B.
            let its = report["iterations"].as_array().unwrap();
            assert!(its.iter().all(|it| it["kept"].as_u64() <= Some(16)));
            assert!(its.iter().filter(|it| it["kept"] == 16).count() >= its.len() / 2);
            assert!(its.iter().all(|it| it["kept"] == it["kept_mixed"]));
        }
    }
}

#[test]
fn offline_tiers_come_from_an_earlier_run_and_never_from_another_dataset() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a", "b", "c"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let (a_dir, _) = run_config(&dir.path().join("a"), &small_config("uniform", false, ""));
    let from = format!("\n[grade]\nfrom_run = {:?}\n", a_dir.to_str().unwrap());
    // Same pool: the earlier run's history seeds offline tiers.
    let (_, b) = run_config(&dir.path().join("b"), &small_config("rlcs", true, &from));
    check_contract(&b);
    assert!(b["totals"]["offline_samples"].as_u64().unwrap() > 0);
    // Another dataset (the same generator under another domain name gives other
    // samples): a clear error, not silently zero offline tiers.
    let other = small_config("rlcs", true, &from).replace(
        "name = \"arithmetic\"",
        "name = \"algebra\"\ngenerator = \"arithmetic\"",
    );
    let c_dir = dir.path().join("c");
    let cfg = c_dir.join("exp.toml");
    std::fs::write(&cfg, other).unwrap();
    let o = rlcs(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        c_dir.join("run").to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("another dataset") && err.contains(a_dir.to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn same_seed_same_report() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let strip = |mut r: Value| {
        rlcs_experiments::report::strip_wall_times(&mut r);
        r
    };
    let (_, ra) = run_config(a.path(), &small_config("rlcs", true, ""));
    let (_, rb) = run_config(b.path(), &small_config("rlcs", true, ""));
    assert_eq!(strip(ra), strip(rb));
}

#[test]
fn a_panicking_verifier_is_restarted_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, report) = run_config(
        dir.path(),
        &small_config("rlcs", true, "\n[testing]\nverifier_panic_on_job = 200\n"),
    );
    check_contract(&report);
    let t = &report["totals"];
    assert!(t["restarts"].as_u64().unwrap() >= 1, "restarts: {t}");
    assert_eq!(t["samples_scored"], t["samples_selected"]);
    check_store(&run_dir, &report);
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert!(events.contains("\"event\":\"actor_restarted\",\"actor\":\"verifiers\""));
    // The crash changes nothing the run computes: same report as without it.
    let clean = tempfile::tempdir().unwrap();
    let (_, base) = run_config(clean.path(), &small_config("rlcs", true, ""));
    assert_eq!(report["iterations"].as_array().unwrap().len(), 25);
    assert_eq!(report["final_eval"], base["final_eval"]);
    assert_eq!(t["samples_selected"], base["totals"]["samples_selected"]);
}

#[test]
fn config_errors_name_file_line_and_key_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            small_config("rlcs", true, "").replace("batch_size = 16", "batch_size = 16\nlr = 0.1"),
            "unknown field `lr`",
            ":7:",
        ),
        (
            small_config("rlcs", true, "").replace("group_size = 8", "group_size = 1"),
            "`run.group_size`",
            ":7:",
        ),
        (
            small_config("rlcs", true, "").replace("sampler = \"rlcs\"", "sampler = \"best\""),
            "unknown variant `best`",
            ":16:",
        ),
        ("name = \"x\"\n[run\n".to_string(), "exp.toml:2:", ":2:"),
    ];
    for (toml, needle, line) in cases {
        let cfg = dir.path().join("exp.toml");
        std::fs::write(&cfg, &toml).unwrap();
        let out = dir.path().join("never");
        let o = rlcs(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("exp.toml"), "names the file: {err}");
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        assert!(err.contains(line), "expected line {line:?} in: {err}");
        assert!(!out.exists(), "nothing written for a bad config");
    }
    let o = rlcs(&["run", "does/not/exist.toml"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("does/not/exist.toml"));
}

#[test]
fn a_non_empty_run_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("exp.toml");
    std::fs::write(&cfg, small_config("rlcs", true, "")).unwrap();
    std::fs::write(dir.path().join("keep.txt"), "precious").unwrap();
    let o = rlcs(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
        "precious"
    );
}

#[test]
fn shipped_skeleton_configs_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["sim-rlcs.toml", "sim-uniform.toml"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = root.join("experiments/configs").join(name);
        let (_, r) = run_config(dir.path(), &std::fs::read_to_string(cfg).unwrap());
        check_contract(&r);
        assert!(r["final_eval"]["accuracy"].as_f64() > r["initial_eval"]["accuracy"].as_f64());
    }
}
