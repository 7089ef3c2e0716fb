//! End-to-end tests of `rlcs data` and of runs over the built-in multimodal domains,
//! through the real binary.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const DOMAINS: [&str; 8] = [
    "arithmetic",
    "stem",
    "counting",
    "ocr",
    "chart",
    "grounding",
    "gui",
    "video",
];

fn rlcs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(args)
        .output()
        .expect("the rlcs binary starts")
}

/// `rlcs run CFG --out OUT --quiet`.
fn run_quiet(cfg: &Path, out: &Path) -> Output {
    rlcs(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ])
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn preview_writes_pngs_and_sidecars_for_every_domain() {
    let dir = tempfile::tempdir().unwrap();
    for domain in DOMAINS {
        let out = dir.path().join(domain);
        let o = rlcs(&[
            "data",
            "preview",
            "--domain",
            domain,
            "--difficulty",
            "0.7",
            "--count",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{domain}: {}", text(&o));
        let index: Value =
            serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        let entries = index.as_array().unwrap();
        assert_eq!(entries.len(), 3, "{domain}");
        for e in entries {
            assert_eq!(e["domain"], domain);
            assert_eq!(e["template_reward"], 1.0, "{domain}: {e}");
            assert!(e["wrong_reward"].as_f64().unwrap() < 1.0, "{domain}: {e}");
            let id = e["id"].as_str().unwrap();
            let sidecars: Vec<_> = std::fs::read_dir(&out)
                .unwrap()
                .filter_map(|f| f.ok())
                .filter(|f| {
                    f.file_name()
                        .to_string_lossy()
                        .ends_with(&format!("{id}.json"))
                })
                .collect();
            assert_eq!(sidecars.len(), 1, "{domain}: sidecar of {id}");
            for img in e["images"].as_array().unwrap() {
                let png = std::fs::read(out.join(img.as_str().unwrap())).unwrap();
                assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{domain}: {img}");
            }
            if domain != "arithmetic" {
                assert!(!e["images"].as_array().unwrap().is_empty(), "{domain}");
            }
        }
    }
    // Bad input: an unknown domain and a difficulty out of range name the problem.
    let o = rlcs(&["data", "preview", "--domain", "chess", "--out", "x"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown domain `chess`"), "{}", text(&o));
    let o = rlcs(&[
        "data",
        "preview",
        "--domain",
        "ocr",
        "--difficulty",
        "1.5",
        "--out",
        dir.path().join("bad").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--difficulty"), "{}", text(&o));
}

#[test]
fn a_run_uses_every_builtin_domain_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::from(
        r#"name = "all-domains"
seed = 3

[run]
iterations = 4
batch_size = 16
group_size = 4
eval_rollouts = 2
"#,
    );
    for d in DOMAINS {
        toml.push_str(&format!(
            "\n[[domains]]\nname = \"{d}\"\ntrain = 40\neval = 10\n"
        ));
    }
    let cfg = dir.path().join("exp.toml");
    std::fs::write(&cfg, toml).unwrap();
    let out = dir.path().join("run");
    let o = run_quiet(&cfg, &out);
    assert!(o.status.success(), "{}", text(&o));
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    for d in DOMAINS {
        assert!(
            report["final_eval"]["per_domain"][d].is_number(),
            "{d} missing from {}",
            report["final_eval"]
        );
    }
}

#[test]
fn data_check_reports_what_loads_and_names_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"data_source": "counting", "prompt": "How many?", "reward_model": {"ground_truth": "3"}}"#,
            "\n",
            r#"{"data_source": "counting", "prompt": "How many more?"}"#,
            "\n",
        ),
    )
    .unwrap();
    let o = rlcs(&["data", "check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("1 rows load"), "{t}");
    assert!(
        t.contains("rows.jsonl: row 2, field `reward_model.ground_truth`"),
        "{t}"
    );
    let o = rlcs(&["data", "check", path.to_str().unwrap(), "--fail-on-bad-row"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("row 2"), "{}", text(&o));
    let o = rlcs(&["data", "check", path.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["loaded"], 1);
    assert_eq!(v["by_verifier"]["counting"], 1);
}

/// A verl-style JSONL file of `n` arithmetic rows (math verifier through `ability`),
/// row `bad` (1-based) without its gold.
fn math_rows(n: usize, bad: usize, ability: impl Fn(usize) -> &'static str) -> String {
    (1..=n)
        .map(|i| {
            if i == bad {
                format!("{{\"ability\": \"math\", \"prompt\": \"What is {i} + 1?\"}}\n")
            } else {
                format!(
                    "{{\"data_source\": \"mathset\", \"ability\": \"{}\", \"prompt\": \"What is {i} + 1?\", \
                     \"reward_model\": {{\"ground_truth\": \"{}\"}}, \"extra_info\": {{\"difficulty\": {}}}}}\n",
                    ability(i),
                    i + 1,
                    (i % 10) as f64 / 10.0
                )
            }
        })
        .collect()
}

#[test]
fn a_run_trains_on_a_dataset_file_beside_a_generated_domain() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/rows.jsonl"),
        math_rows(120, 5, |_| "math"),
    )
    .unwrap();
    // `extra` goes into the dataset domain, `counting_extra` into the generated one.
    let config = |extra: &str, counting_extra: &str| {
        format!(
            r#"name = "dataset-run"
seed = 5

[run]
iterations = 4
batch_size = 12
group_size = 4
eval_rollouts = 2

[[domains]]
name = "sums"
dataset = "data/rows.jsonl"
eval = 20
{extra}

[[domains]]
name = "counting"
train = 40
eval = 10
{counting_extra}
"#
        )
    };
    let write = |name: &str, extra: &str, counting_extra: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, config(extra, counting_extra)).unwrap();
        p
    };
    let run = |cfg: &Path, out: &str| {
        let out = dir.path().join(out);
        (run_quiet(cfg, &out), out)
    };

    // The path is relative to the config file; the bad row is named and skipped.
    let cfg = write("exp.toml", "", "");
    let (o, out) = run(&cfg, "run");
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("rows.jsonl: row 5, field `reward_model.ground_truth`"),
        "{t}"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    // 119 rows load; 20 are held out; 40 generated counting samples.
    assert_eq!(
        report["totals"]["train_pool"],
        99 + 40,
        "{}",
        report["totals"]
    );
    for d in ["sums", "counting"] {
        assert!(
            report["final_eval"]["per_domain"][d].is_number(),
            "{d} missing from {}",
            report["final_eval"]
        );
    }
    // Rollouts of the dataset domain were scored by the math verifier: some right.
    let sums_reward: f64 = report["iterations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|it| it["per_domain"]["sums"]["mean_reward"].as_f64())
        .sum();
    assert!(sums_reward > 0.0, "{}", report["iterations"]);
    // The same config and seed give the same run.
    let (o, again) = run(&cfg, "again");
    assert!(o.status.success(), "{}", text(&o));
    let strip = |p: &Path| {
        let mut v: Value =
            serde_json::from_slice(&std::fs::read(p.join("report.json")).unwrap()).unwrap();
        rlcs_experiments::report::strip_wall_times(&mut v);
        v
    };
    assert_eq!(strip(&out), strip(&again));

    // Bad settings fail before anything is written, naming what is wrong.
    let cases = [
        ("fail.toml", "on_bad_row = \"fail\"", "", "row 5"),
        (
            "eval.toml",
            "verifier = \"math\"\ntrain = 500",
            "",
            "fewer than `train = 500`",
        ),
        (
            "missing.toml",
            "eval_dataset = \"data/nope.jsonl\"",
            "",
            "nope.jsonl",
        ),
        (
            "generated.toml",
            "",
            "verifier = \"math\"",
            "`domains.1.verifier`: applies to a `dataset` domain only",
        ),
    ];
    for (name, extra, counting_extra, needle) in cases {
        let cfg = write(name, extra, counting_extra);
        let (o, out) = run(&cfg, &format!("{name}.out"));
        assert!(!o.status.success(), "{name}: {}", text(&o));
        let t = text(&o);
        assert!(t.contains(needle), "{name}: {t}");
        assert!(!out.exists(), "{name}: the run directory was made");
    }

    // Rows that name two verifiers need the domain to pick one.
    std::fs::write(
        dir.path().join("data/rows.jsonl"),
        math_rows(120, 0, |i| if i == 7 { "counting" } else { "math" }),
    )
    .unwrap();
    let (o, _) = run(&cfg, "mixed");
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("several verifiers") && t.contains("set `verifier`"),
        "{t}"
    );
}

#[test]
fn data_vocab_writes_a_vocabulary_a_config_can_name() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.json");
    let v = vocab.to_str().unwrap();
    let o = rlcs(&["data", "vocab", "--out", v, "--samples", "10"]);
    assert!(o.status.success(), "{}", text(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("vocab.json") && said.contains("tokens per text"),
        "{said}"
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&vocab).unwrap()).unwrap();
    let words = file["model"]["vocab"].as_object().unwrap();
    assert!(
        words.contains_key(" many") && words.contains_key("a"),
        "{said}"
    );
    // A second write would replace a vocabulary a run may depend on: refused.
    let again = rlcs(&["data", "vocab", "--out", v, "--samples", "10"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
}
