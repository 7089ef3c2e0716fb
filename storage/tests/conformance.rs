//! One conformance suite for every store backend: each check is written once as a
//! function of [`BackendKind`] and instantiated for sled and redb by `conformance!`.

use std::path::Path;

use proptest::prelude::*;
use rlcs_curriculum::Observation;
use rlcs_storage::{
    encoding, BackendKind, CheckpointRecord, RunRecord, RunStatus, Store, StoreError, Table,
    MARKER_FILE,
};

fn obs(sample: u64, iteration: u32) -> Observation {
    Observation {
        sample,
        iteration,
        policy_version: iteration as u64,
        rollouts: 8,
        successes: (sample % 9) as u32,
        mean_reward: (sample % 9) as f32 / 8.0,
        tier_after: (sample % 5) as u8,
    }
}

fn run(name: &str, status: RunStatus) -> RunRecord {
    RunRecord {
        run: name.into(),
        seed: 7,
        config: serde_json::json!({"name": name}),
        status,
        last_iteration: 0,
    }
}

fn open(kind: BackendKind, dir: &Path) -> Store {
    Store::open_with(dir, kind).unwrap()
}

/// The raw backend of a store whose records are damaged.
fn open_raw(kind: BackendKind, dir: &Path) -> Box<dyn rlcs_storage::Backend> {
    rlcs_storage::open_backend(kind, dir).unwrap()
}

fn round_trip_in_order_and_survive_reopen(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(kind, dir.path());
        assert_eq!(s.kind(), kind);
        s.append_iteration(&[obs(7, 2), obs(9, 2)]).unwrap();
        s.append_iteration(&[obs(7, 1), obs(7, 3)]).unwrap();
        assert_eq!(s.observation_count(), 4);
    }
    // `open` finds the backend from the marker.
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.kind(), kind);
    assert_eq!(s.observation_count(), 4);
    let h = s.history(7).unwrap();
    assert_eq!(h, vec![obs(7, 1), obs(7, 2), obs(7, 3)]);
    assert_eq!(s.history(8).unwrap(), vec![]);
    // Stable order: run, iteration, sample.
    let all = s.all_observations().unwrap();
    let keys: Vec<(u32, u64)> = all.iter().map(|o| (o.iteration, o.sample)).collect();
    assert_eq!(keys, vec![(1, 7), (2, 7), (2, 9), (3, 7)]);
    // Exact values survive, including a reward that is not successes / rollouts and a
    // policy version that differs within the iteration.
    let odd = Observation {
        sample: u64::MAX,
        iteration: u32::MAX,
        policy_version: u64::MAX,
        rollouts: u32::MAX,
        successes: 3,
        mean_reward: -0.123,
        tier_after: 255,
    };
    let mut other = obs(1, u32::MAX);
    other.policy_version = 0;
    s.append_iteration(&[odd.clone(), other.clone()]).unwrap();
    assert_eq!(s.history(u64::MAX).unwrap(), vec![odd]);
    assert_eq!(s.history(1).unwrap(), vec![other]);
}

fn same_sample_and_iteration_replaces(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(kind, dir.path());
    s.append_iteration(&[obs(1, 1), obs(2, 1)]).unwrap();
    let mut again = obs(1, 1);
    again.successes = 8;
    again.mean_reward = 1.0;
    again.tier_after = 4;
    s.append_iteration(&[again.clone(), obs(3, 1)]).unwrap();
    assert_eq!(s.observation_count(), 3);
    assert_eq!(s.history(1).unwrap(), vec![again]);
    let t = s.sample_totals(1).unwrap().unwrap();
    assert_eq!(
        (t.attempts, t.successes, t.observations, t.tier),
        (8, 8, 1, 4)
    );
    let sum = s.summary().unwrap();
    assert_eq!((sum.samples, sum.observations, sum.iterations), (3, 3, 1));
}

fn failed_batch_leaves_nothing(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(kind, dir.path());
    s.append_iteration(&[obs(1, 1)]).unwrap();
    // The invalid observation sorts last: earlier ones are already staged when it fails.
    let mut bad = obs(u64::MAX, 2);
    bad.successes = 9;
    let err = s
        .append_iteration(&[obs(2, 2), obs(1, 2), bad])
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidObservation {
                sample: u64::MAX,
                iteration: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("9 successes of 8 rollouts"),
        "{err}"
    );
    assert_eq!(s.observation_count(), 1);
    assert_eq!(s.history(1).unwrap(), vec![obs(1, 1)]);
    assert_eq!(s.sample_totals(2).unwrap(), None);
    assert_eq!(s.sample_totals(1).unwrap().unwrap().observations, 1);
    assert_eq!(s.summary().unwrap().iterations, 1);
    // The same at the backend level, with a failure the engine cannot see coming.
    let r = s.backend().transact(&mut |t| {
        t.put(Table::Meta, b"x", b"1")?;
        t.put(Table::Checkpoints, b"12345678", b"junk")?;
        assert_eq!(t.get(Table::Meta, b"x")?, Some(b"1".to_vec()));
        Err(StoreError::Registry {
            run: "injected".into(),
            reason: "fault".into(),
        })
    });
    assert!(r.is_err());
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.backend().get(Table::Meta, b"x").unwrap(), None);
    assert_eq!(
        s.backend().get(Table::Checkpoints, b"12345678").unwrap(),
        None
    );
    assert_eq!(s.all_observations().unwrap(), vec![obs(1, 1)]);
}

fn multiple_runs_and_pass_rates(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(kind, dir.path());
        s.put_run(&run("a", RunStatus::Running)).unwrap();
        assert_eq!(s.active_run(), 1);
        s.append_iteration(&[obs(1, 1), obs(2, 1)]).unwrap();
        s.append_iteration(&[obs(1, 2)]).unwrap();
        s.put_run(&run("a", RunStatus::Finished)).unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    // A fresh handle has no active run until one is registered as running.
    assert_eq!(s.active_run(), 0);
    s.put_run(&run("b", RunStatus::Running)).unwrap();
    assert_eq!(s.active_run(), 2);
    s.append_iteration(&[obs(1, 1), obs(3, 1)]).unwrap();
    s.append_run_iteration("a", &[obs(4, 9)]).unwrap();
    let h = s.run_history(1).unwrap();
    let at: Vec<(u16, u32)> = h.iter().map(|o| (o.run, o.observation.iteration)).collect();
    assert_eq!(at, vec![(1, 1), (1, 2), (2, 1)]);
    let rates = s.pass_rates(&[3, 1, 99, 1]).unwrap();
    assert_eq!(
        rates.iter().map(|r| r.sample).collect::<Vec<_>>(),
        vec![3, 1]
    );
    let one = rates[1];
    assert_eq!((one.attempts, one.successes, one.observations), (24, 3, 3));
    assert_eq!(one.pass_rate(), Some(3.0 / 24.0));
    assert_eq!((one.first_run, one.first_iteration), (1, 1));
    assert_eq!((one.last_run, one.last_iteration), (2, 1));
    let all = s.all_pass_rates().unwrap();
    assert_eq!(
        all.iter().map(|r| r.sample).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(matches!(
        s.append_run_iteration("nope", &[obs(1, 1)]),
        Err(StoreError::UnknownRun { .. })
    ));
    let sum = s.summary().unwrap();
    assert_eq!(sum.backend, kind);
    assert_eq!(sum.observations, 6);
    assert_eq!(s.observation_count(), 6);
    let runs: Vec<(&str, u64, u64, u32)> = sum
        .runs
        .iter()
        .map(|r| {
            (
                r.run.as_str(),
                r.observations,
                r.iterations,
                r.last_iteration,
            )
        })
        .collect();
    assert_eq!(runs, vec![("a", 4, 3, 9), ("b", 2, 1, 1)]);
    assert_eq!(sum.runs[0].status, Some(RunStatus::Finished));
    // Tier histogram: current tier of each of samples 1..=4 (sample % 5).
    assert_eq!(
        sum.tier_histogram.into_iter().collect::<Vec<_>>(),
        vec![(1, 1), (2, 1), (3, 1), (4, 1)]
    );
    assert!(sum.bytes_on_disk > 0);
}

fn rollback_removes_one_runs_later_iterations_only(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(kind, dir.path());
        s.put_run(&run("a", RunStatus::Running)).unwrap();
        for it in 1..=5 {
            s.append_iteration(&[obs(1, it), obs(2, it)]).unwrap();
        }
        s.put_run(&run("b", RunStatus::Running)).unwrap();
        s.append_iteration(&[obs(1, 4)]).unwrap();
        assert_eq!(s.observation_count(), 11);
        assert_eq!(s.rollback_after("a", 3).unwrap(), 4);
        assert_eq!(s.rollback_after("a", 3).unwrap(), 0, "idempotent");
        assert_eq!(s.observation_count(), 7);
        assert!(s.rollback_after("nobody", 0).is_err());
        // The run continues from iteration 4 as if 4 and 5 never happened.
        s.append_run_iteration("a", &[obs(1, 4)]).unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    let at: Vec<(u16, u32)> = s
        .run_history(1)
        .unwrap()
        .iter()
        .map(|o| (o.run, o.observation.iteration))
        .collect();
    assert_eq!(at, vec![(1, 1), (1, 2), (1, 3), (1, 4), (2, 4)]);
    assert_eq!(s.observation_count(), 8);
    let summary = s.summary().unwrap();
    assert_eq!(summary.observations, 8);
}

fn registry_round_trips_with_times_and_revision(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(kind, dir.path());
    let r = run("r1", RunStatus::Running);
    s.put_run(&r).unwrap();
    assert_eq!(s.run("r1").unwrap(), Some(r.clone()));
    assert_eq!(s.run("r2").unwrap(), None);
    s.set_code_revision("r1", "abc123").unwrap();
    let mut done = r.clone();
    done.status = RunStatus::Finished;
    done.last_iteration = 12;
    s.put_run(&done).unwrap();
    let e = s.run_entry("r1").unwrap().unwrap();
    assert_eq!(e.record, done);
    assert_eq!(e.index, 1);
    assert_eq!(e.code_revision.as_deref(), Some("abc123"));
    let (start, end) = (e.started_unix_ms.unwrap(), e.ended_unix_ms.unwrap());
    assert!(start > 0 && end >= start);
    assert_eq!(s.runs().unwrap().len(), 1);
    assert!(matches!(
        s.set_code_revision("zz", "x"),
        Err(StoreError::UnknownRun { .. })
    ));
}

fn checkpoint_index(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    std::fs::write(run_dir.path().join("weights.bin"), b"weights").unwrap();
    std::fs::write(run_dir.path().join("sampler.json"), b"{}").unwrap();
    let s = open(kind, dir.path());
    assert!(matches!(
        s.checkpoints("r"),
        Err(StoreError::UnknownRun { .. })
    ));
    s.put_run(&run("r", RunStatus::Running)).unwrap();
    assert_eq!(s.latest_checkpoint("r").unwrap(), None);
    let files = ["weights.bin", "sampler.json"];
    let c10 = CheckpointRecord::of_files(run_dir.path(), 10, &files).unwrap();
    let c5 = CheckpointRecord::of_files(run_dir.path(), 5, &files[..1]).unwrap();
    assert_eq!(c10.files[0].bytes, 7);
    assert_eq!(c10.files[0].sha256.len(), 64);
    s.put_checkpoint("r", &c10).unwrap();
    s.put_checkpoint("r", &c5).unwrap();
    // Another run's checkpoints stay apart.
    s.put_run(&run("q", RunStatus::Running)).unwrap();
    s.put_checkpoint("q", &c5).unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.checkpoints("r").unwrap(), vec![c5.clone(), c10.clone()]);
    assert_eq!(s.latest_checkpoint("r").unwrap(), Some(c10.clone()));
    assert_eq!(s.checkpoints("q").unwrap(), vec![c5.clone()]);
    // Removing one leaves the others, of this run and of another.
    assert!(s.remove_checkpoint("r", 5).unwrap());
    assert!(!s.remove_checkpoint("r", 5).unwrap());
    assert_eq!(s.checkpoints("r").unwrap(), vec![c10.clone()]);
    assert_eq!(s.checkpoints("q").unwrap(), vec![c5]);
    c10.verify(run_dir.path(), "r").unwrap();
    std::fs::write(run_dir.path().join("weights.bin"), b"weightz").unwrap();
    let err = c10.verify(run_dir.path(), "r").unwrap_err();
    assert!(
        matches!(err, StoreError::Checkpoint { iteration: 10, .. }),
        "{err}"
    );
    std::fs::remove_file(run_dir.path().join("sampler.json")).unwrap();
    std::fs::write(run_dir.path().join("weights.bin"), b"weights").unwrap();
    let err = c10.verify(run_dir.path(), "r").unwrap_err();
    assert!(err.to_string().contains("sampler.json"), "{err}");
}

fn dataset_fingerprint(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(kind, dir.path());
        s.check_dataset("anything").unwrap();
        assert_eq!(s.dataset_fingerprint().unwrap(), None);
        s.bind_dataset("ds-1").unwrap();
        s.bind_dataset("ds-1").unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.dataset_fingerprint().unwrap().as_deref(), Some("ds-1"));
    s.check_dataset("ds-1").unwrap();
    for err in [
        s.check_dataset("ds-2").unwrap_err(),
        s.bind_dataset("ds-2").unwrap_err(),
    ] {
        assert!(
            matches!(&err, StoreError::DatasetMismatch { stored, expected, .. } if stored == "ds-1" && expected == "ds-2"),
            "{err}"
        );
    }
    assert_eq!(s.summary().unwrap().dataset.as_deref(), Some("ds-1"));
}

fn bad_markers_are_typed_errors(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    drop(open(kind, dir.path()));
    let other = match kind {
        BackendKind::Sled => BackendKind::Redb,
        BackendKind::Redb => BackendKind::Sled,
    };
    let err = Store::open_with(dir.path(), other).unwrap_err();
    assert!(
        matches!(err, StoreError::BackendMismatch { requested, found, .. } if requested == other && found == kind),
        "{err}"
    );
    let marker = dir.path().join(MARKER_FILE);
    std::fs::write(&marker, format!("rlcs-store v2 {kind}\n")).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerFormat {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    for junk in [
        "rlcs-store v1 lmdb",
        "hello",
        "",
        "rlcs-store vX sled",
        "\u{0}\u{ff}",
    ] {
        std::fs::write(&marker, junk).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::UnknownMarker { .. }),
            "{junk:?}: {err}"
        );
    }
    std::fs::remove_file(&marker).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    // A plain file where the directory should be.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        Store::open_with(&file, kind),
        Err(StoreError::NotAStore { .. })
    ));
}

fn newer_and_corrupt_records_are_errors(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(kind, dir.path());
    s.append_iteration(&[obs(1, 1)]).unwrap();
    let key = encoding::iteration_key(0, 1);
    let good = s.backend().get(Table::Iterations, &key).unwrap().unwrap();
    let mut newer = good.clone();
    newer[0] = encoding::HISTORY_ENCODING + 1;
    let put = |v: &[u8]| {
        s.backend()
            .transact(&mut |t| t.put(Table::Iterations, &key, v))
            .unwrap()
    };
    put(&newer);
    let err = s.all_observations().unwrap_err();
    assert!(
        matches!(&err, StoreError::NewerEncoding { found, record, .. } if *found == encoding::HISTORY_ENCODING + 1 && record.contains("iteration 1")),
        "{err}"
    );
    assert!(matches!(
        s.history(1),
        Err(StoreError::NewerEncoding { .. })
    ));
    put(&good[..good.len() - 1]);
    let err = s.all_observations().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    // Appending into a corrupt iteration record fails and changes nothing.
    assert!(matches!(
        s.append_iteration(&[obs(2, 1)]),
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(
        s.backend().get(Table::Iterations, &key).unwrap().unwrap(),
        good[..good.len() - 1]
    );
    assert_eq!(s.observation_count(), 1);
    assert!(matches!(
        s.pass_rates(&[1]),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(s.summary(), Err(StoreError::Corrupt { .. })));
    s.backend()
        .transact(&mut |t| t.put(Table::Iterations, &key, &good))
        .unwrap();
    assert_eq!(s.all_observations().unwrap(), vec![obs(1, 1)]);
    // Corrupt per-run counters are found when the store opens.
    s.backend()
        .transact(&mut |t| t.put(Table::Meta, b"count/\0\0", &[1, 0xff]))
        .unwrap();
    drop(s);
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { record, .. } if record.contains("counters of run 0")),
        "{err}"
    );
    let s = open_raw(kind, dir.path());
    // A newer format recorded inside the database (the marker still says v1).
    s.transact(&mut |t| t.put(Table::Meta, b"format", b"rlcs-store 9"))
        .unwrap();
    drop(s);
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::NewerFormat { found: 9, .. })
    ));
}

/// The files of the database proper (not the marker).
fn data_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != MARKER_FILE))
        .collect();
    out.sort();
    out
}

fn truncated_or_garbage_files_do_not_panic(kind: BackendKind) {
    let mk = || {
        let dir = tempfile::tempdir().unwrap();
        let s = open(kind, dir.path());
        s.put_run(&run("r", RunStatus::Running)).unwrap();
        for i in 0..20 {
            s.append_iteration(&(0..200).map(|x| obs(x, i)).collect::<Vec<_>>())
                .unwrap();
        }
        drop(s);
        dir
    };
    // Whatever the engine makes of a damaged file, the answer is a value: an error,
    // or (for a log-structured engine that recovers a prefix) a store whose reads
    // return errors or a consistent prefix, never a panic.
    let exercise = |dir: &Path| match Store::open(dir) {
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
        Ok(s) => {
            let _ = s.all_observations();
            let _ = s.summary();
            let _ = s.history(3);
        }
    };
    let dir = mk();
    for f in data_files(dir.path()) {
        let len = std::fs::metadata(&f).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        file.set_len(len / 3).unwrap();
    }
    exercise(dir.path());
    let dir = mk();
    for f in data_files(dir.path()) {
        let len = std::fs::metadata(&f).unwrap().len() as usize;
        let junk: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
        std::fs::write(&f, junk).unwrap();
    }
    exercise(dir.path());
    if kind == BackendKind::Redb {
        // redb checks its header: a zeroed file is an error, not an empty store.
        let dir = mk();
        let f = dir.path().join(rlcs_storage::backend::REDB_FILE);
        let len = std::fs::metadata(&f).unwrap().len() as usize;
        std::fs::write(&f, vec![0u8; len]).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Redb { .. })
        ));
    }
}

fn second_open_of_a_live_store_is_an_error(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let _s = open(kind, dir.path());
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::Sled { .. } | StoreError::Redb { .. }),
        "{err}"
    );
}

fn export_visitors_stop_on_the_callers_error(kind: BackendKind) {
    #[derive(Debug)]
    enum ExportError {
        Store,
        Full,
    }
    impl From<StoreError> for ExportError {
        fn from(_: StoreError) -> Self {
            ExportError::Store
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let s = open(kind, dir.path());
    for i in 0..3 {
        s.append_iteration(&[obs(1, i), obs(2, i)]).unwrap();
    }
    let mut seen = 0;
    let r = s.for_each_observation(|_| {
        seen += 1;
        if seen == 3 {
            Err(ExportError::Full)
        } else {
            Ok(())
        }
    });
    assert!(matches!(r, Err(ExportError::Full)));
    assert_eq!(seen, 3);
    let mut iters = Vec::new();
    s.for_each_iteration(|run, it, o| {
        iters.push((run, it, o.len()));
        Ok::<_, ExportError>(())
    })
    .unwrap();
    assert_eq!(iters, vec![(0, 0, 2), (0, 1, 2), (0, 2, 2)]);
}

fn arb_observation() -> impl Strategy<Value = Observation> {
    (
        0u64..64,
        0u32..4,
        prop_oneof![Just(3u64), any::<u64>()],
        prop_oneof![0u32..20, any::<u32>()],
        any::<u32>(),
        prop_oneof![Just(None), any::<f32>().prop_map(Some)],
        any::<u8>(),
    )
        .prop_map(|(sample, iteration, pv, rollouts, s, reward, tier)| {
            let successes = if rollouts == 0 { 0 } else { s % (rollouts + 1) };
            Observation {
                sample,
                iteration,
                policy_version: pv,
                rollouts,
                successes,
                mean_reward: reward.unwrap_or((successes as f64 / rollouts.max(1) as f64) as f32),
                tier_after: tier,
            }
        })
}

/// What a store must hold after a sequence of appends: the last write of each
/// `(sample, iteration)`.
fn store_matches_model(kind: BackendKind, batches: Vec<Vec<Observation>>) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(kind, dir.path());
    let mut model = std::collections::BTreeMap::new();
    for b in &batches {
        s.append_iteration(b).unwrap();
        for o in b {
            model.insert((o.iteration, o.sample), o.clone());
        }
    }
    let got = s.all_observations().unwrap();
    let bits = |o: &Observation| (o.sample, o.iteration, o.mean_reward.to_bits());
    assert_eq!(
        got.iter().map(bits).collect::<Vec<_>>(),
        model.values().map(bits).collect::<Vec<_>>()
    );
    for (g, m) in got.iter().zip(model.values()) {
        assert_eq!(
            (g.policy_version, g.rollouts, g.successes, g.tier_after),
            (m.policy_version, m.rollouts, m.successes, m.tier_after)
        );
    }
    assert_eq!(s.observation_count(), model.len());
    for r in s.all_pass_rates().unwrap() {
        let mine: Vec<&Observation> = model.values().filter(|o| o.sample == r.sample).collect();
        assert_eq!(r.observations, mine.len() as u64);
        assert_eq!(
            r.attempts,
            mine.iter().map(|o| o.rollouts as u64).sum::<u64>()
        );
        assert_eq!(r.tier, mine.last().map(|o| o.tier_after).unwrap_or(0));
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sled_backend {
            $(#[test] fn $name() { super::$name(super::BackendKind::Sled) })*
            proptest::proptest! {
                #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
                #[test]
                fn store_matches_model(batches in proptest::collection::vec(
                    proptest::collection::vec(super::arb_observation(), 0..12), 1..4)) {
                    super::store_matches_model(super::BackendKind::Sled, batches)
                }
            }
        }
        mod redb_backend {
            $(#[test] fn $name() { super::$name(super::BackendKind::Redb) })*
            proptest::proptest! {
                #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
                #[test]
                fn store_matches_model(batches in proptest::collection::vec(
                    proptest::collection::vec(super::arb_observation(), 0..12), 1..4)) {
                    super::store_matches_model(super::BackendKind::Redb, batches)
                }
            }
        }
    };
}

conformance!(
    rollback_removes_one_runs_later_iterations_only,
    round_trip_in_order_and_survive_reopen,
    same_sample_and_iteration_replaces,
    failed_batch_leaves_nothing,
    multiple_runs_and_pass_rates,
    registry_round_trips_with_times_and_revision,
    checkpoint_index,
    dataset_fingerprint,
    bad_markers_are_typed_errors,
    newer_and_corrupt_records_are_errors,
    truncated_or_garbage_files_do_not_panic,
    second_open_of_a_live_store_is_an_error,
    export_visitors_stop_on_the_callers_error,
);

#[test]
fn default_backend_is_used_for_a_new_store_and_marker_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/store");
    assert_eq!(Store::detect(&path).unwrap(), None);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.kind(), rlcs_storage::DEFAULT_BACKEND);
    let marker = std::fs::read_to_string(path.join(MARKER_FILE)).unwrap();
    assert_eq!(
        marker,
        format!("rlcs-store v1 {}\n", rlcs_storage::DEFAULT_BACKEND)
    );
    drop(s);
    assert_eq!(
        Store::detect(&path).unwrap(),
        Some(rlcs_storage::DEFAULT_BACKEND)
    );
}

proptest! {
    #[test]
    fn iteration_encoding_round_trips(obs in proptest::collection::vec(arb_observation(), 0..50)) {
        let mut by_sample = std::collections::BTreeMap::new();
        for o in &obs {
            by_sample.insert(o.sample, encoding::Packed::of(o));
        }
        let recs: Vec<_> = by_sample.into_values().collect();
        let bytes = encoding::encode_iteration(&recs);
        let back = encoding::decode_iteration(&bytes).unwrap();
        prop_assert_eq!(back.len(), recs.len());
        for (a, b) in back.iter().zip(&recs) {
            prop_assert_eq!(a.mean_reward.to_bits(), b.mean_reward.to_bits());
            prop_assert_eq!((a.sample, a.policy_version, a.rollouts, a.successes, a.tier_after),
                (b.sample, b.policy_version, b.rollouts, b.successes, b.tier_after));
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = encoding::decode_iteration(&bytes);
        let _ = encoding::RunCounters::decode(&bytes);
        let _ = encoding::parse_iteration_key(&bytes);
    }

    #[test]
    fn decoding_mutated_records_never_panics(
        obs in proptest::collection::vec(arb_observation(), 1..20),
        at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let mut by_sample = std::collections::BTreeMap::new();
        for o in &obs {
            by_sample.insert(o.sample, encoding::Packed::of(o));
        }
        let recs: Vec<_> = by_sample.into_values().collect();
        let mut bytes = encoding::encode_iteration(&recs);
        let i = at % bytes.len();
        bytes[i] = byte;
        let _ = encoding::decode_iteration(&bytes);
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = encoding::decode_iteration(&bytes);
    }
}
