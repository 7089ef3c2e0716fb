//! End-to-end tests of the staged recipe through the real binary: pretrain → SFT →
//! grade → RL → eval on the libtorch model, stages handing their weights on, a
//! run starting from an earlier run's stage, resume in the middle of RL, and
//! config errors that name the key.
#![cfg(feature = "torch")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A tiny pipeline: two domains, a 2-layer model, a few steps per stage.
const PIPELINE: &str = r#"
name = "pipeline"
seed = 3
stages = STAGES

[pretrain]
steps = 6
batch_size = 8

[sft]
steps = 12
batch_size = 8

[grade]
rollouts = 2

[run]
iterations = ITERATIONS
batch_size = 4
group_size = 4
eval_rollouts = 1

[[domains]]
name = "counting"
train = 24
eval = 6

[[domains]]
name = "arithmetic"
train = 24
eval = 6

[policy]
backend = "tch"
INIT

[tch]
max_new_tokens = 40
thinking_budget = 24
device = "cpu"
threads = 1

[tch.model]
dim = 64
layers = 2
heads = 4
mlp_hidden = 176
vision_dim = 32
vision_layers = 1
vision_heads = 2
max_seq_len = 512

[tch.train.schedule]
lr = 1e-3
warmup_steps = 1
total_steps = 10

[actors]
loaders = 1
replicas = 2
verifiers = 1
"#;

fn config(dir: &Path, name: &str, stages: &str, iterations: u32, init: Option<&Path>) -> String {
    let init = init.map_or(String::new(), |p| {
        format!("init_from = {:?}", p.to_str().unwrap())
    });
    let text = PIPELINE
        .replace("STAGES", stages)
        .replace("ITERATIONS", &iterations.to_string())
        .replace("INIT", &init);
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn rlcs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(args)
        .output()
        .expect("the rlcs binary starts")
}

fn run(cfg: &str, out: &Path) -> PathBuf {
    let o = rlcs(&["run", cfg, "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(
        o.status.success(),
        "rlcs failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.to_path_buf()
}

fn report(run: &Path) -> Value {
    let text = std::fs::read_to_string(run.join("report.json")).unwrap();
    let mut r: Value = serde_json::from_str(&text).unwrap();
    rlcs_experiments::report::strip_wall_times(&mut r);
    r
}

fn stage_names(r: &Value) -> Vec<String> {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn five_stages_hand_their_model_on_and_report_each() {
    let dir = tempfile::tempdir().unwrap();
    let all = r#"["pretrain", "sft", "grade", "rl", "eval"]"#;
    let out = run(
        &config(dir.path(), "all", all, 2, None),
        &dir.path().join("run"),
    );
    let r = report(&out);
    assert_eq!(stage_names(&r), ["pretrain", "sft", "grade", "rl", "eval"]);
    let stages = r["stages"].as_array().unwrap();
    // Supervised stages train: the loss falls, every step is recorded.
    for (i, steps) in [(0, 6), (1, 12)] {
        let losses: Vec<f64> = stages[i]["losses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(losses.len(), steps);
        assert!(
            losses.last().unwrap() < losses.first().unwrap(),
            "{}: {losses:?}",
            stages[i]["name"]
        );
        assert!(out
            .join("stages")
            .join(stages[i]["name"].as_str().unwrap())
            .join("policy.weights")
            .is_file());
    }
    // Pretraining is not evaluated by default; SFT, RL and eval are, per domain.
    assert!(stages[0].get("eval").is_none());
    for i in [1, 3, 4] {
        let per = stages[i]["eval"]["per_domain"].as_object().unwrap();
        assert_eq!(per.len(), 2, "{}", stages[i]["name"]);
    }
    // RL starts from the SFT model (its initial evaluation is SFT's) and grading
    // spent 2 rollouts per train sample.
    assert_eq!(r["initial_eval"], stages[1]["eval"]);
    assert_eq!(stages[2]["rollouts"], 96);
    assert_eq!(r["totals"]["grade_rollouts"], 96);
    assert_eq!(stages[3]["steps"], 2);
    assert_eq!(r["final_eval"], stages[4]["eval"]);
    // The SFT stage's events are in its own log.
    let events = std::fs::read_to_string(out.join("stages/sft/events.jsonl")).unwrap();
    assert_eq!(events.matches("\"supervised_stepped\"").count(), 12);
    // The grade stage logs its progress: one event per graded sample, in order.
    let events = std::fs::read_to_string(out.join("grade/events.jsonl")).unwrap();
    let graded: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "sample_graded")
        .collect();
    assert_eq!(graded.len(), 48);
    assert_eq!(graded.last().unwrap()["graded"], 48);
    assert_eq!(graded.last().unwrap()["rollouts"], 96);
    assert!(events.contains("\"stage_started\"") && events.contains("\"stage_finished\""));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Stages") && md.contains("| sft |"), "{md}");
    assert!(md.contains("## Time split of RL iterations"), "{md}");
    // Every RL iteration says where its time went.
    let text = std::fs::read_to_string(out.join("report.json")).unwrap();
    let raw: Value = serde_json::from_str(&text).unwrap();
    for it in raw["iterations"].as_array().unwrap() {
        let p = &it["phase_ms"];
        for k in ["rollout", "generate_busy", "train"] {
            assert!(p[k].as_f64().unwrap() > 0.0, "{k}: {p}");
        }
        let parts: f64 = ["select", "load", "rollout", "observe", "store", "train"]
            .iter()
            .map(|k| p[*k].as_f64().unwrap())
            .sum();
        assert!(parts <= it["wall_ms"].as_f64().unwrap() + 1e-6, "{it}");
    }
}

#[test]
fn a_run_starts_from_an_earlier_runs_stage_and_resumes_mid_rl_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sft_rl = r#"["pretrain", "sft", "rl"]"#;
    let whole = run(&config(d, "whole", sft_rl, 3, None), &d.join("whole"));
    let whole_report = report(&whole);

    // RL alone from the first run's SFT weights takes the same iterations.
    let sft = whole.join("stages/sft");
    let from = run(
        &config(d, "from", r#"["rl"]"#, 3, Some(&sft)),
        &d.join("from"),
    );
    let from_report = report(&from);
    assert_eq!(from_report["iterations"], whole_report["iterations"]);
    assert_eq!(stage_names(&from_report), ["rl"]);

    // Stopped after one RL iteration, resumed to three: the same final report.
    let part = run(&config(d, "part", sft_rl, 1, None), &d.join("part"));
    let o = rlcs(&[
        "run",
        &config(d, "whole", sft_rl, 3, None),
        "--resume",
        part.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut resumed = report(&part);
    let mut expected = whole_report.clone();
    // The run directories' names differ; nothing else may.
    for r in [&mut resumed, &mut expected] {
        r["config"]["name"] = Value::Null;
    }
    assert_eq!(resumed["stages"], expected["stages"]);
    assert_eq!(resumed["iterations"], expected["iterations"]);
    assert_eq!(resumed["final_eval"], expected["final_eval"]);
}

/// `[pretrain] text = "caption"` pretrains on each sample's description of its
/// images and then its answer: other text than the answers alone (other losses from
/// the same seed), written into the resolved config; `[sft] text` is refused.
#[test]
fn caption_pretraining_reads_descriptions_and_only_pretrain_chooses_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let answers = config(d, "answers", r#"["pretrain"]"#, 1, None);
    let text = std::fs::read_to_string(&answers).unwrap().replacen(
        "[pretrain]\n",
        "[pretrain]\ntext = \"caption\"\n",
        1,
    );
    let captions = d.join("captions.toml");
    std::fs::write(&captions, &text).unwrap();
    let losses = |run: &Path| report(run)["stages"][0]["losses"].clone();
    let a = run(&answers, &d.join("a"));
    let c = run(captions.to_str().unwrap(), &d.join("c"));
    let (la, lc) = (losses(&a), losses(&c));
    assert_eq!(la.as_array().unwrap().len(), 6);
    assert_ne!(la, lc, "captions are other text than answers");
    let resolved = std::fs::read_to_string(c.join("config.resolved.toml")).unwrap();
    assert!(resolved.contains("text = \"caption\""), "{resolved}");
    // The same config twice: the same losses.
    assert_eq!(losses(&run(captions.to_str().unwrap(), &d.join("c2"))), lc);

    let sft = d.join("sft-text.toml");
    std::fs::write(
        &sft,
        text.replacen("[sft]\n", "[sft]\ntext = \"caption\"\n", 1),
    )
    .unwrap();
    let o = rlcs(&[
        "run",
        sft.to_str().unwrap(),
        "--out",
        d.join("x").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("sft.text") && err.contains("sft-text.toml"),
        "{err}"
    );
    assert!(!d.join("x").exists(), "nothing written on a bad config");
}

#[test]
fn bad_stages_and_weights_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = rlcs(&[
        "run",
        &config(d, "order", r#"["sft", "pretrain"]"#, 1, None),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("`stages`") && err.contains("cannot come after"),
        "{err}"
    );

    let missing = d.join("nowhere");
    let o = rlcs(&[
        "run",
        &config(d, "missing", r#"["rl"]"#, 1, Some(&missing)),
        "--out",
        d.join("missing-run").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("nowhere"), "{err}");

    // Weights of another model shape: the file is named, not a libtorch panic.
    let junk = d.join("junk.weights");
    std::fs::write(&junk, b"01234567 not safetensors").unwrap();
    let o = rlcs(&[
        "run",
        &config(d, "junk", r#"["rl"]"#, 1, Some(&junk)),
        "--out",
        d.join("junk-run").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("junk.weights"), "{err}");
}

#[test]
fn a_sweep_over_rl_settings_shares_one_pretrain_and_sft() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stages = r#"["pretrain", "sft", "rl"]"#;
    let cfg = config(d, "sweep", stages, 2, None);
    let out = d.join("sweep");
    let o = rlcs(&[
        "sweep",
        &cfg,
        "--set",
        "curriculum.sampler=rlcs,uniform",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Pretrain and SFT ran once, in the shared folder; the cells ran RL only.
    assert!(out
        .join("shared-stages/stages/sft/policy.weights")
        .is_file());
    let cell = out.join("curriculum.sampler=uniform");
    assert!(!cell.join("stages/sft").exists());
    let shared = report(&out.join("shared-stages"));
    let uniform = report(&cell);
    assert_eq!(stage_names(&uniform), ["pretrain", "sft", "rl"]);
    assert_eq!(uniform["stages"][1], shared["stages"][1]);
    assert_eq!(uniform["initial_eval"], shared["stages"][1]["eval"]);
    // The cell's RL time is its own (the shared stages ran before the cell did).
    let timed: Value =
        serde_json::from_str(&std::fs::read_to_string(cell.join("report.json")).unwrap()).unwrap();
    let rl_seconds = timed["stages"][2]["wall_seconds"].as_f64().unwrap();
    assert!(
        rl_seconds > 0.0 && rl_seconds <= timed["wall_seconds"].as_f64().unwrap(),
        "{}",
        timed["stages"]
    );
    // A cell gives what a plain run of its config gives.
    let plain_cfg = std::fs::read_to_string(&cfg).unwrap().replace(
        "[policy]",
        "[curriculum]\nsampler = \"uniform\"\n\n[policy]",
    );
    let plain_path = d.join("plain.toml");
    std::fs::write(&plain_path, plain_cfg).unwrap();
    let plain = report(&run(plain_path.to_str().unwrap(), &d.join("plain")));
    assert_eq!(plain["iterations"], uniform["iterations"]);
    assert_eq!(plain["final_eval"], uniform["final_eval"]);
    assert_eq!(plain["stages"][1]["losses"], uniform["stages"][1]["losses"]);
}

#[test]
fn a_run_killed_before_rl_keeps_its_finished_stages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stages = r#"["pretrain", "sft", "rl"]"#;
    let cfg = config(d, "kill", stages, 2, None);
    let whole = run(&cfg, &d.join("whole"));
    let expected = report(&whole);

    // The state of a run killed after SFT, before RL wrote anything: the stages'
    // files, the config, an empty store.
    let killed = d.join("killed");
    std::fs::create_dir_all(killed.join("stages")).unwrap();
    std::fs::copy(
        whole.join("config.resolved.toml"),
        killed.join("config.resolved.toml"),
    )
    .unwrap();
    for st in ["pretrain", "sft"] {
        let (from, to) = (
            whole.join("stages").join(st),
            killed.join("stages").join(st),
        );
        std::fs::create_dir_all(&to).unwrap();
        for f in ["policy.weights", "stage.json", "events.jsonl"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
    // A stage whose report was never written runs again; mark pretrain's log to
    // see that it does not.
    std::fs::write(killed.join("stages/pretrain/events.jsonl"), "kept\n").unwrap();
    let o = rlcs(&["run", &cfg, "--resume", killed.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(killed.join("stages/pretrain/events.jsonl")).unwrap(),
        "kept\n"
    );
    let mut resumed = report(&killed);
    let mut expected = expected;
    for r in [&mut resumed, &mut expected] {
        r["config"]["name"] = Value::Null;
    }
    assert_eq!(resumed["stages"], expected["stages"]);
    assert_eq!(resumed["iterations"], expected["iterations"]);
    assert_eq!(resumed["final_eval"], expected["final_eval"]);
}
