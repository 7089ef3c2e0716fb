//! End-to-end tests of plug-in verifiers in `rlcs run`: a domain re-routed to an
//! external Python verifier by one TOML entry, and bad entries refused up front.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/verifiers/exact_match.py"
);

fn rlcs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(args)
        .output()
        .expect("the rlcs binary starts")
}

fn config(verifiers: &str) -> String {
    format!(
        r#"name = "plugged"
seed = 5

[run]
iterations = 6
batch_size = 8
group_size = 4
eval_rollouts = 2

[[domains]]
name = "counting"
train = 120
eval = 40

[actors]
loaders = 1
replicas = 1
verifiers = 2
{verifiers}
"#
    )
}

fn run(dir: &Path, name: &str, toml: &str) -> (Output, PathBuf) {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, toml).expect("write config");
    let out = dir.join(name);
    let o = rlcs(&[
        "run",
        &cfg.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
        "--quiet",
    ]);
    (o, out)
}

fn rewards(out: &Path) -> Vec<f64> {
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report"))
            .expect("json");
    report["iterations"]
        .as_array()
        .expect("iterations")
        .iter()
        .map(|it| it["mean_reward"].as_f64().expect("mean_reward"))
        .collect()
}

fn succeed(o: &Output) {
    assert!(
        o.status.success(),
        "rlcs run failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_python_verifier_scores_a_domain_with_one_toml_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (o, builtin) = run(dir.path(), "builtin", &config(""));
    succeed(&o);
    // The example's exact match agrees with the built-in counting rule on what the
    // policy writes, so the run is the same, iteration by iteration.
    let external = format!(
        "[verifiers.counting]\nkind = \"external\"\ncommand = [\"python3\", {EXAMPLE:?}]\n"
    );
    let (o, plugged) = run(dir.path(), "external", &config(&external));
    succeed(&o);
    let (a, b) = (rewards(&builtin), rewards(&plugged));
    assert_eq!(a.len(), 6);
    assert_eq!(a, b, "builtin vs external rewards");
    assert!(
        a.iter().any(|r| *r > 0.0),
        "the policy earns some reward: {a:?}"
    );
    // A verifier that never gives credit proves the rewards above came from the
    // process: every reward is now 0. Its script sits beside the config (relative
    // paths are read from the config's directory).
    std::fs::write(
        dir.path().join("never.py"),
        "import sys, json\nfor line in sys.stdin:\n    r = json.loads(line)\n    print(json.dumps({'id': r['id'], 'reward': 0.0, 'reason': 'never'}), flush=True)\n",
    )
    .expect("write script");
    let never = "[verifiers.tally]\nkind = \"external\"\naliases = [\"counting\"]\ncommand = [\"python3\", \"never.py\"]\n";
    let (o, zero) = run(dir.path(), "never", &config(never));
    succeed(&o);
    assert!(
        rewards(&zero).iter().all(|r| *r == 0.0),
        "{:?}",
        rewards(&zero)
    );
}

#[test]
fn bad_verifier_entries_fail_before_the_run_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (o, out) = run(
        dir.path(),
        "empty",
        &config("[verifiers.counting]\nkind = \"external\"\ncommand = []\n"),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("empty.toml:19"), "names file and line: {err}");
    assert!(err.contains("verifiers.counting"), "names the key: {err}");
    assert!(err.contains("`command`"), "{err}");
    assert!(!out.exists(), "nothing written");
    let (o, out) = run(
        dir.path(),
        "missing",
        &config("[verifiers.counting]\nkind = \"external\"\ncommand = [\"/no/such/verifier\"]\n"),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot start external verifier `/no/such/verifier`"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
    let (o, _) = run(
        dir.path(),
        "kind",
        &config("[verifiers.counting]\nkind = \"grpc\"\n"),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown kind `grpc`"), "{err}");
}

#[test]
fn rlcs_score_takes_plug_in_verifiers_from_a_toml_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = dir.path().join("verifiers.toml");
    std::fs::write(
        &table,
        format!(
            "[verifiers.tally]\nkind = \"external\"\naliases = [\"my_source\"]\ncommand = [\"python3\", {EXAMPLE:?}]\n\n\
             [verifiers.code]\nkind = \"code\"\nsandbox = {{ timeout_s = 5 }}\n"
        ),
    )
    .expect("write");
    let input = dir.path().join("in.jsonl");
    let box_ =
        |a: &str| format!("<think>t</think><answer><|begin_of_box|>{a}<|end_of_box|></answer>");
    let lines = [
        serde_json::json!({"id": 1, "domain": "my_source", "response": box_("Seven"), "gold": "seven"}),
        serde_json::json!({"id": 2, "domain": "my_source", "response": box_("8"), "gold": "seven"}),
        serde_json::json!({"id": 3, "domain": "code", "response": box_("print(int(input()) * 2)"),
            "gold": serde_json::json!({"tests": [{"input": "21\n", "output": "42\n"}]}).to_string()}),
        serde_json::json!({"id": 4, "domain": "code", "response": box_("import os\nos.fork()\nprint(42)"),
            "gold": serde_json::json!({"tests": [{"input": "", "output": "42"}]}).to_string()}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&input, body).expect("write input");
    let out = dir.path().join("out.jsonl");
    let o = rlcs(&[
        "score",
        "--input",
        &input.to_string_lossy(),
        "--output",
        &out.to_string_lossy(),
        "--verifiers",
        &table.to_string_lossy(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let scored: Vec<Value> = std::fs::read_to_string(&out)
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let rewards: Vec<f64> = scored
        .iter()
        .map(|s| s["reward"].as_f64().expect("reward"))
        .collect();
    assert_eq!(rewards, [1.0, 0.0, 1.0, 0.0], "{scored:?}");
    assert!(
        scored[3]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("PermissionError"),
        "{:?}",
        scored[3]
    );
    // Without the file those names are unknown: the lines fail, naming their line.
    let o = rlcs(&["score", "--input", &input.to_string_lossy()]);
    assert!(!o.status.success());
}

#[test]
fn a_verifier_that_keeps_dying_scores_zero_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("dies.py"),
        "import sys\nsys.stdin.readline()\nsys.stderr.write('model weights missing\\n')\nsys.exit(1)\n",
    )
    .expect("write script");
    let entry = "[verifiers.counting]\nkind = \"external\"\ncommand = [\"python3\", \"dies.py\"]\nconcurrency = 1\n";
    let toml = config(entry)
        .replace("iterations = 6", "iterations = 1")
        .replace("eval_rollouts = 2", "eval_rollouts = 1");
    let (o, out) = run(dir.path(), "dies", &toml);
    succeed(&o);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report"))
            .expect("json");
    let it = &report["iterations"][0];
    assert_eq!(it["mean_reward"].as_f64(), Some(0.0), "{it}");
    let rollouts = it["rollouts"].as_u64().expect("rollouts");
    assert!(rollouts > 0);
    assert_eq!(
        it["verifier_errors"].as_u64(),
        Some(rollouts),
        "every rollout's verifier failed: {it}"
    );
    let sampled = std::fs::read_to_string(out.join("rollouts.jsonl")).expect("rollouts.jsonl");
    assert!(
        sampled.contains("failed twice") && sampled.contains("model weights missing"),
        "the reason is recorded"
    );
}
