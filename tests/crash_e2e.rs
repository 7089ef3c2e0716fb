//! Crash test: `rlcs run` is SIGKILLed at seeded random moments; after every kill
//! the store must open, and every iteration the run reported as durable
//! (`checkpoint_written` in events.jsonl) must be in the store whole — no committed
//! iteration lost, none half-written.
//!
//! The default run kills 8 times; `RLCS_CRASH_KILLS=20` (or more) is the full test.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CONFIG: &str = r#"name = "crash"
seed = 5

[run]
iterations = 400
batch_size = 32
group_size = 8
eval_rollouts = 1

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
fn sigkill_at_any_moment_loses_no_committed_iteration_sled() {
    sigkill_at_any_moment("sled");
}

#[test]
fn sigkill_at_any_moment_loses_no_committed_iteration_redb() {
    sigkill_at_any_moment("redb");
}

fn sigkill_at_any_moment(backend: &str) {
    let kills: usize = std::env::var("RLCS_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("crash.toml");
    std::fs::write(&cfg, CONFIG.replace("BACKEND", backend)).unwrap();
    let mut rng = 0x5eed_u64;
    let mut checked_iterations = 0;
    let mut opened = 0;
    for k in 0..kills {
        let out = dir.path().join(format!("run{k}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_rlcs"))
            .args([
                "run",
                cfg.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rlcs starts");
        let wait_ms = 30 + next(&mut rng) % 1500;
        std::thread::sleep(Duration::from_millis(wait_ms));
        let _ = child.kill(); // SIGKILL on Unix; the run may already be done
        let _ = child.wait();

        let store_dir = out.join("store");
        if !store_dir.exists() {
            continue; // killed before the store was created
        }
        let store = rlcs_storage::Store::open(&store_dir).unwrap_or_else(|e| {
            panic!("{backend}: kill {k} after {wait_ms} ms: store does not open: {e}")
        });
        assert_eq!(store.kind().to_string(), backend);
        opened += 1;
        let mut in_store: BTreeMap<u32, u64> = BTreeMap::new();
        for o in store.all_observations().expect("history reads") {
            *in_store.entry(o.iteration).or_insert(0) += 1;
        }
        let (durable, selected) = reported(&out);
        for (it, n) in &durable {
            assert_eq!(
                in_store.get(it),
                Some(n),
                "{backend}: kill {k} after {wait_ms} ms: iteration {it} was reported durable with {n} observations"
            );
            checked_iterations += 1;
        }
        // Whatever is stored is whole: an iteration is one atomic batch.
        for (it, n) in &in_store {
            if let Some(sel) = selected.get(it) {
                assert_eq!(
                    n, sel,
                    "{backend}: kill {k} after {wait_ms} ms: iteration {it} is partial"
                );
            }
        }
    }
    println!(
        "{backend}: {kills} kills, {opened} stores reopened, {checked_iterations} durable iterations checked"
    );
    assert!(
        checked_iterations > 0,
        "no kill happened after a durable iteration; the test checked nothing"
    );
}
