//! End-to-end tests of `rlcs sweep` and `rlcs compare` through the real binary, on
//! the simulated learner, and of the plots every run writes.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn rlcs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(args)
        .output()
        .expect("the rlcs binary starts")
}

const SMALL: &str = r#"name = "sweepme"
seed = 4

[run]
iterations = 6
batch_size = 8
group_size = 4
eval_rollouts = 2

[[domains]]
name = "arithmetic"
train = 120
eval = 40

[[domains]]
name = "counting"
train = 120
eval = 40

[curriculum]
sampler = "rlcs"
"#;

fn write_config(dir: &Path) -> String {
    let p = dir.join("small.toml");
    std::fs::write(&p, SMALL).unwrap();
    p.to_str().unwrap().to_string()
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_sweep_runs_every_cell_and_compares_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let out = dir.path().join("sweep");
    let o = rlcs(&[
        "sweep",
        &cfg,
        "--set",
        "curriculum.sampler=rlcs,uniform",
        "--set",
        "run.group_size=4,8",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cells = [
        "curriculum.sampler=rlcs,run.group_size=4",
        "curriculum.sampler=rlcs,run.group_size=8",
        "curriculum.sampler=uniform,run.group_size=4",
        "curriculum.sampler=uniform,run.group_size=8",
    ];
    let cmp = json(&out.join("compare.json"));
    let runs = cmp["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for (cell, row) in cells.iter().zip(runs) {
        // Each cell is a full run with the settings applied...
        let report = json(&out.join(cell).join("report.json"));
        let (sampler, g) = cell.split_once(',').unwrap();
        assert_eq!(
            report["config"]["curriculum"]["sampler"],
            sampler.trim_start_matches("curriculum.sampler=")
        );
        assert_eq!(
            report["config"]["run"]["group_size"].to_string(),
            g.trim_start_matches("run.group_size=")
        );
        // ...and the comparison carries its numbers and what differs.
        assert_eq!(row["final_accuracy"], report["final_eval"]["accuracy"]);
        assert_eq!(row["rollouts"], report["totals"]["rollouts"]);
        let differs = row["differs"].as_object().unwrap();
        assert_eq!(
            differs.keys().collect::<Vec<_>>(),
            ["curriculum.sampler", "run.group_size"]
        );
    }
    // Each cell rolled out groups of its own size.
    for row in runs {
        let g = row["differs"]["run.group_size"].as_u64().unwrap();
        assert_eq!(row["rollouts"].as_u64().unwrap() % g, 0, "{row}");
    }
    assert_ne!(runs[0]["rollouts"], runs[1]["rollouts"]);
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(
        md.contains("curriculum.sampler=uniform run.group_size=8"),
        "{md}"
    );
    for plot in [
        "eval_accuracy.png",
        "train_accuracy.png",
        "expansion_ratio_ema.png",
        "not_valid_rate.png",
    ] {
        assert!(is_png(&out.join(plot)), "{plot}");
    }

    // `rlcs compare` over two of the cells prints the same rows.
    let a = out.join(cells[0]);
    let b = out.join(cells[2]);
    let o = rlcs(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("| curriculum.sampler=rlcs |")
            && table.contains("| curriculum.sampler=uniform |"),
        "{table}"
    );

    // Every run draws its own plots.
    for plot in [
        "accuracy_per_domain.png",
        "reward_per_domain.png",
        "tiers.png",
        "expansion.png",
        "force_answer.png",
        "response_length.png",
        "eval_accuracy.png",
    ] {
        assert!(is_png(&a.join("plots").join(plot)), "{plot}");
    }
    let report = json(&a.join("report.json"));
    let it = &report["iterations"][0];
    let per_domain = it["per_domain"].as_object().unwrap();
    let n: u64 = per_domain
        .values()
        .map(|d| d["rollouts"].as_u64().unwrap())
        .sum();
    assert_eq!(n, it["rollouts"].as_u64().unwrap());
}

#[test]
fn bad_sweeps_and_comparisons_are_named_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let out = dir.path().join("never");
    // A key the schema does not know.
    let o = rlcs(&[
        "sweep",
        &cfg,
        "--set",
        "run.learning_rate=1,2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("--set run.learning_rate=1,2") && err.contains("learning_rate"),
        "{err}"
    );
    assert!(!out.exists());
    // A value the schema refuses names the key.
    let o = rlcs(&["sweep", &cfg, "--set", "run.group_size=1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("run.group_size"), "{err}");
    // A malformed axis.
    let o = rlcs(&["sweep", &cfg, "--set", "run.iterations"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("key=v1,v2"));
    // A directory without a report.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = rlcs(&["compare", empty.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("report.json") && err.contains("empty"),
        "{err}"
    );
}

#[test]
fn a_config_carries_its_own_grid_and_rl_can_train_on_one_domain() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("transfer.toml");
    let text = SMALL.replace(
        "seed = 4\n",
        "seed = 4\nsweep = ['run.train_domains=[\"arithmetic\"],[\"counting\"],[]']\n",
    );
    std::fs::write(&p, text).unwrap();
    let out = dir.path().join("t");
    let o = rlcs(&[
        "sweep",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (cell, trained) in [
        ("run.train_domains=arithmetic", &["arithmetic"][..]),
        ("run.train_domains=counting", &["counting"][..]),
        ("run.train_domains=empty", &["arithmetic", "counting"][..]),
    ] {
        let r = json(&out.join(cell).join("report.json"));
        // RL rolled out only the chosen domains; evaluation covered both.
        for it in r["iterations"].as_array().unwrap() {
            let seen: Vec<&String> = it["per_domain"].as_object().unwrap().keys().collect();
            assert!(
                seen.iter().all(|d| trained.contains(&d.as_str())),
                "{cell}: {seen:?}"
            );
        }
        assert_eq!(r["final_eval"]["per_domain"].as_object().unwrap().len(), 2);
    }
    // An unknown domain is named.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        SMALL.replace(
            "iterations = 6\n",
            "iterations = 6\ntrain_domains = [\"chess\"]\n",
        ),
    )
    .unwrap();
    let o = rlcs(&[
        "run",
        bad.to_str().unwrap(),
        "--out",
        dir.path().join("b").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("run.train_domains.0") && err.contains("chess"),
        "{err}"
    );
}
