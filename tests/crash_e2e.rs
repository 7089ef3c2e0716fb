//! Crash test: `rlcs run` is SIGKILLed at seeded random moments and resumed with
//! `rlcs run CONFIG --resume RUN_DIR` after every kill. After each kill the store
//! must open, and every iteration the run reported as durable
//! (`checkpoint_written` in events.jsonl) must be in the store whole — no committed
//! iteration lost, none half-written. After the last kill the run is resumed to the
//! end: its report must equal an uninterrupted run's (wall times aside) and its
//! stored history must be the same observations.
//!
//! The default run kills 8 times per backend; `RLCS_CRASH_KILLS=20` (or more) is the
//! full test, and `RLCS_CRASH_SEED=N` draws other kill times.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CONFIG: &str = r#"name = "crash"
seed = 5

[run]
iterations = 300
batch_size = 32
group_size = 8
eval_rollouts = 1
eval_every = 25

[[domains]]
name = "arithmetic"
train = 2000
eval = 50

[curriculum]
sampler = "rlcs"

[store]
backend = "BACKEND"
"#;

/// SplitMix64: the test's own seeded randomness for kill times.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Observations per iteration that the run's events say are durable, and the
/// selected counts it announced.
fn reported(run_dir: &Path) -> (BTreeMap<u32, u64>, BTreeMap<u32, u64>) {
    let text = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap_or_default();
    let (mut durable, mut selected) = (BTreeMap::new(), BTreeMap::new());
    // The last line may be cut off by the kill: only whole JSON lines count.
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let it = e["iteration"].as_u64().unwrap_or(0) as u32;
        match e["event"].as_str() {
            Some("checkpoint_written") => {
                *durable.entry(it).or_insert(0) += e["observations"].as_u64().unwrap_or(0)
            }
            Some("samples_selected") => {
                *selected.entry(it).or_insert(0) += e["selected"].as_u64().unwrap_or(0)
            }
            _ => {}
        }
    }
    (durable, selected)
}

#[test]
fn sigkill_at_any_moment_then_resume_sled() {
    sigkill_and_resume("sled");
}

#[test]
fn sigkill_at_any_moment_then_resume_redb() {
    sigkill_and_resume("redb");
}

fn rlcs(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rlcs"));
    c.args(args)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// The report without the fields that vary between runs (wall times).
fn report_without_wall(run_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run_dir.join("report.json")).expect("report.json");
    let mut r: serde_json::Value = serde_json::from_str(&text).expect("report parses");
    rlcs_experiments::report::strip_wall_times(&mut r);
    r
}

/// Every stored observation as (iteration, sample, policy version, rollouts,
/// successes, mean reward bits, tier after), sorted: the history without run ids.
fn history(run_dir: &Path) -> Vec<(u32, u64, u64, u32, u32, u32, u8)> {
    let store = rlcs_storage::Store::open(&run_dir.join("store")).expect("store opens");
    let mut h: Vec<_> = store
        .all_observations()
        .expect("history reads")
        .into_iter()
        .map(|o| {
            (
                o.iteration,
                o.sample,
                o.policy_version,
                o.rollouts,
                o.successes,
                o.mean_reward.to_bits(),
                o.tier_after,
            )
        })
        .collect();
    h.sort_unstable();
    h
}

fn sigkill_and_resume(backend: &str) {
    let kills: usize = std::env::var("RLCS_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("crash.toml");
    std::fs::write(&cfg, CONFIG.replace("BACKEND", backend)).unwrap();
    let cfg = cfg.to_str().unwrap();

    let reference = dir.path().join("reference");
    let out = rlcs(&["run", cfg, "--out", reference.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let seed: u64 = std::env::var("RLCS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = seed ^ backend.len() as u64;
    let (mut killed, mut checked_iterations, mut opened) = (0, 0, 0);
    let mut finished_early = false;
    // Kills land 0–450 ms after `base`; on a loaded machine that can be before any
    // iteration is durable, so `base` grows until kills do land after one.
    let mut base_ms = 30;
    while killed < kills || (checked_iterations == 0 && killed < kills * 4) {
        // A directory without its config was killed before anything: start anew.
        let fresh = !run.join("config.resolved.toml").exists();
        let args = if fresh {
            ["run", cfg, "--out", run_s]
        } else {
            ["run", cfg, "--resume", run_s]
        };
        let mut child = rlcs(&args).spawn().expect("rlcs starts");
        let wait_ms = base_ms + next(&mut rng) % 450;
        std::thread::sleep(Duration::from_millis(wait_ms));
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            assert!(status.success(), "{backend}: attempt failed: {err}");
            finished_early = true;
            break; // the run reached its end between kills
        }
        let _ = child.kill(); // SIGKILL on Unix
        let _ = child.wait();
        killed += 1;

        let store_dir = run.join("store");
        if !store_dir.exists() {
            base_ms = (base_ms * 2).min(4000);
            continue; // killed before the store was created
        }
        let store = rlcs_storage::Store::open(&store_dir).unwrap_or_else(|e| {
            panic!("{backend}: kill {killed} after {wait_ms} ms: store does not open: {e}")
        });
        assert_eq!(store.kind().to_string(), backend);
        opened += 1;
        let mut in_store: BTreeMap<u32, u64> = BTreeMap::new();
        for o in store.all_observations().expect("history reads") {
            *in_store.entry(o.iteration).or_insert(0) += 1;
        }
        drop(store);
        let (durable, selected) = reported(&run);
        if durable.is_empty() && checked_iterations == 0 {
            base_ms = (base_ms * 2).min(4000);
        }
        for (it, n) in &durable {
            assert_eq!(
                in_store.get(it),
                Some(n),
                "{backend}: kill {killed} after {wait_ms} ms: iteration {it} was reported durable with {n} observations"
            );
            checked_iterations += 1;
        }
        // Whatever is stored is whole: an iteration is one atomic batch.
        for (it, n) in &in_store {
            if let Some(sel) = selected.get(it) {
                assert_eq!(
                    n, sel,
                    "{backend}: kill {killed} after {wait_ms} ms: iteration {it} is partial"
                );
            }
        }
    }
    if !finished_early {
        let out = rlcs(&["run", cfg, "--resume", run_s]).output().unwrap();
        assert!(
            out.status.success(),
            "{backend}: final resume failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "{backend}: {killed} kills, {opened} stores reopened, {checked_iterations} durable iterations checked"
    );
    assert!(
        checked_iterations > 0,
        "no kill happened after a durable iteration; the test checked nothing"
    );
    assert_eq!(
        report_without_wall(&run),
        report_without_wall(&reference),
        "{backend}: the resumed run's report differs from the uninterrupted run's"
    );
    assert_eq!(
        history(&run),
        history(&reference),
        "{backend}: the resumed run's stored history differs from the uninterrupted run's"
    );
    // The event log holds each iteration once, as if never interrupted.
    let text = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    let started = text.matches("\"iteration_started\"").count();
    assert_eq!(started, 300, "{backend}: iteration_started events");
}
