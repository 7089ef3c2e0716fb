//! End-to-end tests of `rlcs inspect`, `rlcs export` and `rlcs bench store`, through
//! the real binary, on the store of a small `rlcs run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

fn rlcs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(args)
        .output()
        .expect("the rlcs binary starts")
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// A small sim experiment (as in run_e2e.rs), run into `dir/run`.
fn small_run(dir: &Path) -> (PathBuf, Value) {
    let cfg = dir.join("exp.toml");
    std::fs::write(
        &cfg,
        r#"name = "e2e-inspect"
seed = 5

[run]
iterations = 6
batch_size = 16
group_size = 8
eval_rollouts = 4

[[domains]]
name = "arithmetic"
train = 200
eval = 50

[curriculum]
sampler = "rlcs"

[actors]
loaders = 1
replicas = 1
verifiers = 2
"#,
    )
    .unwrap();
    let out = dir.join("run");
    let o = rlcs(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    ok(&o, "rlcs run");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    (out, report)
}

#[test]
fn inspect_and_export_agree_with_the_run_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (run_dir, report) = small_run(tmp.path());
    let store = run_dir.join("store");
    let store_arg = store.to_str().unwrap();
    let expected = report["totals"]["store_observations"]
        .as_u64()
        .expect("totals.store_observations");
    assert!(expected > 0);

    // Summary, as text and JSON; a run directory is accepted for its store.
    let text = ok(&rlcs(&["inspect", store_arg, "summary"]), "inspect summary");
    assert!(
        text.contains(&format!("observations:  {expected}")),
        "{text}"
    );
    assert!(text.contains("finished"), "{text}");
    let json: Value = serde_json::from_str(&ok(
        &rlcs(&["inspect", run_dir.to_str().unwrap(), "summary", "--json"]),
        "inspect summary --json",
    ))
    .expect("summary --json is JSON");
    assert_eq!(json["observations"].as_u64(), Some(expected));
    assert_eq!(json["runs"][0]["status"], "finished");
    assert!(json["runs"][0]["started_unix_ms"].is_u64());
    assert!(json["bytes_on_disk"].as_u64().unwrap() > 0);

    // JSON lines export: one row per observation.
    let jsonl = tmp.path().join("obs.jsonl");
    ok(
        &rlcs(&[
            "export",
            store_arg,
            "--format",
            "jsonl",
            "--out",
            jsonl.to_str().unwrap(),
        ]),
        "export jsonl",
    );
    let rows: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each row is JSON"))
        .collect();
    assert_eq!(rows.len() as u64, expected);
    for key in [
        "run",
        "iteration",
        "sample_id",
        "policy_version",
        "rollouts",
        "successes",
        "mean_reward",
        "tier_after",
    ] {
        assert!(!rows[0][key].is_null(), "row has {key}: {}", rows[0]);
    }

    // A sample from the export, by decimal and hex id.
    let sample = rows[rows.len() / 2]["sample_id"].as_u64().unwrap();
    let in_export = rows
        .iter()
        .filter(|r| r["sample_id"].as_u64() == Some(sample))
        .count();
    let table = ok(
        &rlcs(&["inspect", store_arg, "sample", &sample.to_string()]),
        "inspect sample",
    );
    assert!(
        table.contains("pass rate") && table.contains(&format!("{sample:#x}")),
        "{table}"
    );
    let hist: Value = serde_json::from_str(&ok(
        &rlcs(&[
            "inspect",
            store_arg,
            "sample",
            &format!("{sample:#x}"),
            "--json",
        ]),
        "inspect sample --json",
    ))
    .unwrap();
    assert_eq!(hist["sample"].as_u64(), Some(sample));
    assert_eq!(hist["history"].as_array().unwrap().len(), in_export);

    // An unknown sample fails and names the id.
    let unknown = (0..u64::MAX)
        .find(|id| !rows.iter().any(|r| r["sample_id"].as_u64() == Some(*id)))
        .unwrap();
    let o = rlcs(&["inspect", store_arg, "sample", &unknown.to_string()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("sample {unknown}")), "{err}");

    // Parquet export reads back with the right row count.
    let pq = tmp.path().join("obs.parquet");
    ok(
        &rlcs(&[
            "export",
            store_arg,
            "--format",
            "parquet",
            "--out",
            pq.to_str().unwrap(),
            "--row-group-rows",
            "100",
        ]),
        "export parquet",
    );
    let reader = SerializedFileReader::new(std::fs::File::open(&pq).unwrap()).unwrap();
    assert_eq!(
        reader.metadata().file_metadata().num_rows() as u64,
        expected
    );
    assert_eq!(reader.get_row_iter(None).unwrap().count() as u64, expected);
}

#[test]
fn inspect_refuses_a_directory_that_is_not_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("not-a-store");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "hello").unwrap();
    for args in [
        vec!["inspect", dir.to_str().unwrap(), "summary"],
        vec![
            "export",
            dir.to_str().unwrap(),
            "--format",
            "jsonl",
            "--out",
            "-",
        ],
    ] {
        let o = rlcs(&args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(dir.to_str().unwrap()), "{err}");
    }
    // A missing directory is reported, not created.
    let missing = tmp.path().join("missing");
    let o = rlcs(&["inspect", missing.to_str().unwrap(), "summary"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no rlcs store"));
    assert!(!missing.exists());
}

#[test]
fn bench_store_prints_json_for_both_backends() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(
        &rlcs(&[
            "bench",
            "store",
            "--observations",
            "20000",
            "--json",
            "--dir",
            tmp.path().to_str().unwrap(),
        ]),
        "bench store",
    );
    let report: Value = serde_json::from_str(&out).expect("bench store --json is JSON");
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        assert_eq!(r["observations"].as_u64(), Some(20_000));
        assert!(r["observations_per_second"].as_f64().unwrap() > 0.0);
        assert!(r["bytes_per_observation"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
