//! End-to-end tests of `rlcs run CONFIG --resume RUN_DIR` through the real binary:
//! continuing a run gives the report of an uninterrupted one, and every way a
//! resume can be wrong is refused with an error that names the cause, before the
//! run directory is touched. (Resuming after SIGKILLs is in `crash_e2e.rs`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn rlcs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(args)
        .arg("--quiet")
        .output()
        .expect("the rlcs binary starts")
}

fn config(iterations: u32, seed: u64, train: usize) -> String {
    format!(
        r#"name = "resume"
seed = {seed}

[run]
iterations = {iterations}
batch_size = 16
group_size = 8
eval_rollouts = 2
eval_every = 5

[[domains]]
name = "arithmetic"
train = {train}
eval = 60

[grade]
enabled = true
rollouts = 2

[curriculum]
sampler = "rlcs"
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "rlcs failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn err(o: &Output) -> String {
    assert!(!o.status.success(), "rlcs should have failed");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn report(run: &Path) -> Value {
    let text = std::fs::read_to_string(run.join("report.json")).unwrap();
    let mut r: Value = serde_json::from_str(&text).unwrap();
    rlcs_experiments::report::strip_wall_times(&mut r);
    r
}

fn run(dir: &Path, cfg: &str, name: &str) -> PathBuf {
    let out = dir.join(name);
    ok(&rlcs(&["run", cfg, "--out", out.to_str().unwrap()]));
    out
}

#[test]
fn extending_a_finished_run_equals_running_longer_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let short = write(dir.path(), "short.toml", &config(10, 3, 300));
    let long = write(dir.path(), "long.toml", &config(15, 3, 300));
    let reference = run(dir.path(), &long, "reference");
    let extended = run(dir.path(), &short, "extended");
    assert_eq!(
        report(&extended)["iterations"].as_array().unwrap().len(),
        10
    );

    // Same length: nothing to continue.
    let e = err(&rlcs(&[
        "run",
        &short,
        "--resume",
        extended.to_str().unwrap(),
    ]));
    assert!(e.contains("raise run.iterations"), "{e}");

    let o = rlcs(&["run", &long, "--resume", extended.to_str().unwrap()]);
    ok(&o);
    let (a, b) = (report(&extended), report(&reference));
    // The grade stage ran once; the curve has the point at 10 the short run's end
    // replaced with "final", as the uninterrupted run has.
    assert_eq!(a["totals"]["grade_rollouts"], 600);
    let points: Vec<u64> = a["eval_curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["iteration"].as_u64().unwrap())
        .collect();
    assert_eq!(points, vec![0, 5, 10, 15]);
    assert_eq!(a, b);

    // The events say where it resumed, and every iteration started once.
    let events = std::fs::read_to_string(extended.join("events.jsonl")).unwrap();
    assert!(
        events.contains(r#"{"event":"run_resumed","from_iteration":10,"rolled_back":0}"#),
        "{events}"
    );
    assert_eq!(events.matches("\"iteration_started\"").count(), 15);
    // Only the newest checkpoints are kept (run.keep_checkpoints, default 2).
    let mut kept: Vec<String> = std::fs::read_dir(extended.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(kept, vec!["iter-000014", "iter-000015"]);
    let store = rlcs_storage::Store::open(&extended.join("store")).unwrap();
    let indexed: Vec<u32> = store
        .checkpoints("extended")
        .unwrap()
        .iter()
        .map(|c| c.iteration)
        .collect();
    assert_eq!(indexed, vec![14, 15]);
}

#[test]
fn a_resume_that_cannot_be_right_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "exp.toml", &config(6, 3, 200));
    let target = run(dir.path(), &cfg, "run");
    let target_s = target.to_str().unwrap();
    let long = write(dir.path(), "long.toml", &config(8, 3, 200));
    let before = std::fs::read(target.join("report.json")).unwrap();

    // Another seed: the run's config differs; the error names the key.
    let other_seed = write(dir.path(), "seed.toml", &config(8, 4, 200));
    let e = err(&rlcs(&["run", &other_seed, "--resume", target_s]));
    assert!(e.contains("`seed`") && e.contains("run: 3, now: 4"), "{e}");

    // Another sampler, nested key.
    let other = config(8, 3, 200).replace("sampler = \"rlcs\"", "sampler = \"uniform\"");
    let other = write(dir.path(), "sampler.toml", &other);
    let e = err(&rlcs(&["run", &other, "--resume", target_s]));
    assert!(e.contains("`curriculum.sampler`"), "{e}");

    // No such directory; a directory that is not a run.
    let e = err(&rlcs(&[
        "run",
        &long,
        "--resume",
        dir.path().join("nope").to_str().unwrap(),
    ]));
    assert!(e.contains("no such run directory"), "{e}");
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let e = err(&rlcs(&[
        "run",
        &long,
        "--resume",
        dir.path().join("empty").to_str().unwrap(),
    ]));
    assert!(e.contains("config.resolved.toml"), "{e}");

    // --out and --resume together.
    let e = err(&rlcs(&["run", &long, "--resume", target_s, "--out", "x"]));
    assert!(e.contains("--out") && e.contains("--resume"), "{e}");

    // A damaged checkpoint: named, with the file and the hashes.
    let file = target.join("checkpoints/iter-000006/curriculum.bin");
    let good = std::fs::read(&file).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&file, &bad).unwrap();
    let e = err(&rlcs(&["run", &long, "--resume", target_s]));
    assert!(
        e.contains("curriculum.bin") && e.contains("sha256") && e.contains("damaged"),
        "{e}"
    );
    std::fs::write(&file, &good).unwrap();

    // A store of another dataset in the run directory.
    let other_data = write(dir.path(), "data.toml", &config(1, 3, 150));
    let foreign = run(dir.path(), &other_data, "foreign");
    let own_store = target.join("store");
    let kept_store = dir.path().join("own-store");
    std::fs::rename(&own_store, &kept_store).unwrap();
    std::fs::rename(foreign.join("store"), &own_store).unwrap();
    let e = err(&rlcs(&["run", &long, "--resume", target_s]));
    assert!(e.contains("holds dataset"), "{e}");
    std::fs::remove_dir_all(&own_store).unwrap();
    std::fs::rename(&kept_store, &own_store).unwrap();

    // Nothing above touched the run: it still resumes, to the uninterrupted result.
    assert_eq!(std::fs::read(target.join("report.json")).unwrap(), before);
    ok(&rlcs(&["run", &long, "--resume", target_s]));
    let reference = run(dir.path(), &long, "reference");
    assert_eq!(report(&target), report(&reference));
}

#[test]
fn a_run_killed_before_its_first_checkpoint_starts_over_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "exp.toml", &config(4, 3, 200));
    let target = run(dir.path(), &cfg, "run");
    // As if killed before the first checkpoint: no checkpoints, a half log, and a
    // stale grade store.
    std::fs::remove_dir_all(target.join("checkpoints")).unwrap();
    {
        let store = rlcs_storage::Store::open(&target.join("store")).unwrap();
        for c in store.checkpoints("run").unwrap() {
            assert!(store.remove_checkpoint("run", c.iteration).unwrap());
        }
    }
    std::fs::remove_file(target.join("report.json")).unwrap();
    std::fs::write(target.join("events.jsonl"), "{\"event\":\"iteration_sta").unwrap();
    ok(&rlcs(&["run", &cfg, "--resume", target.to_str().unwrap()]));
    let reference = run(dir.path(), &cfg, "reference");
    assert_eq!(report(&target), report(&reference));
    let events = std::fs::read_to_string(target.join("events.jsonl")).unwrap();
    assert_eq!(events.matches("\"iteration_started\"").count(), 4);
    assert!(!events.contains("iteration_sta\n"));
}
