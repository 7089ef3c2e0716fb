//! End-to-end tests of `rlcs data` and of runs over the built-in multimodal domains,
//! through the real binary.

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
    let o = rlcs(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
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
