//! `rlcs bench store`: how fast each store backend takes observations, how many
//! bytes one costs on disk, and how long opening and summarising the store take.
//!
//! The workload is the RL loop's: each iteration appends [`PER_ITERATION`]
//! observations (4 batches of 1024 samples) in one durable
//! [`Store::append_iteration`], drawn without repeats within the iteration from a
//! pool of a quarter as many samples as observations (so each sample is seen
//! about four times), 8 rollouts each. Every backend runs the same workload in the
//! same process, one after the other, each in a fresh directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rlcs_curriculum::Observation;
pub use rlcs_storage::BackendKind;
use rlcs_storage::{RunRecord, RunStatus, Store, StoreError};
use serde::Serialize;

/// Observations per iteration: 4 batches of 1024 samples.
pub const PER_ITERATION: usize = 4 * 1024;
/// The target write rate, observations per second.
pub const TARGET_OBSERVATIONS_PER_SECOND: f64 = 500_000.0;
/// The target size, bytes on disk per observation.
pub const TARGET_BYTES_PER_OBSERVATION: f64 = 40.0;
/// Rollouts per observation.
const GROUP: u32 = 8;

/// Errors of the store benchmark.
#[derive(Debug, thiserror::Error)]
pub enum StoreBenchError {
    /// The benchmark directory could not be prepared.
    #[error("benchmark directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Zero observations were asked for.
    #[error("--observations must be at least 1")]
    NoObservations,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store read back a different count than was written.
    #[error("{backend}: wrote {written} observations but the summary counts {counted}")]
    Miscount {
        /// The backend.
        backend: BackendKind,
        /// Observations written.
        written: u64,
        /// Observations the summary counted.
        counted: u64,
    },
}

/// Results of one backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendResult {
    /// The backend.
    pub backend: BackendKind,
    /// Observations written.
    pub observations: u64,
    /// Durable appends (iterations).
    pub iterations: u64,
    /// Seconds in the store: creating it, registering the run and every append.
    pub write_seconds: f64,
    /// Observations written per second.
    pub observations_per_second: f64,
    /// Bytes of the store's files after the writes.
    pub bytes_on_disk: u64,
    /// `bytes_on_disk / observations`.
    pub bytes_per_observation: f64,
    /// Milliseconds to reopen the written store.
    pub open_ms: f64,
    /// Milliseconds of `Store::summary` on the reopened store (one full scan).
    pub summary_ms: f64,
    /// Whether the write rate meets [`TARGET_OBSERVATIONS_PER_SECOND`].
    pub meets_rate_target: bool,
    /// Whether the size meets [`TARGET_BYTES_PER_OBSERVATION`].
    pub meets_size_target: bool,
}

/// The `rlcs bench store` report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreBenchReport {
    /// Observations asked for.
    pub observations: u64,
    /// Observations per durable append.
    pub per_iteration: usize,
    /// Distinct samples in the pool.
    pub pool: u64,
    /// Target write rate (observations per second).
    pub target_observations_per_second: f64,
    /// Target bytes on disk per observation.
    pub target_bytes_per_observation: f64,
    /// One result per backend, in the order asked.
    pub results: Vec<BackendResult>,
}

/// 64-bit mix (splitmix64's finaliser), for sample ids and outcomes that look random
/// but are the same on every run.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The pool: a power of two of at least a quarter of `observations` and at least
/// one iteration's worth.
fn pool_size(observations: u64) -> u64 {
    (observations / 4)
        .max(PER_ITERATION as u64)
        .next_power_of_two()
}

/// Observations `first..first + n` of the workload. Position `k` observes pool slot
/// `k * odd mod pool`: a bijection on the pool, so any `pool` consecutive positions
/// (one iteration included) hit distinct samples.
fn workload(first: u64, n: usize, pool: u64, iteration: u32) -> Vec<Observation> {
    (first..first + n as u64)
        .map(|k| {
            let slot = k.wrapping_mul(0x9e37_79b9_7f4a_7c15) & (pool - 1);
            let sample = mix(slot);
            let successes = (mix(k ^ 0x5eed) % u64::from(GROUP + 1)) as u32;
            Observation {
                sample,
                iteration,
                policy_version: u64::from(iteration),
                rollouts: GROUP,
                successes,
                mean_reward: successes as f32 / GROUP as f32,
                tier_after: (mix(sample) % 4) as u8,
            }
        })
        .collect()
}

/// Benchmarks one backend in the fresh directory `dir`.
pub fn bench_backend(
    kind: BackendKind,
    dir: &Path,
    observations: u64,
) -> Result<BackendResult, StoreBenchError> {
    if observations == 0 {
        return Err(StoreBenchError::NoObservations);
    }
    let pool = pool_size(observations);
    let start = Instant::now();
    let store = Store::open_with(dir, kind)?;
    store.put_run(&RunRecord {
        run: "bench".into(),
        seed: 0,
        config: serde_json::json!({ "bench": "store" }),
        status: RunStatus::Running,
        last_iteration: 0,
    })?;
    let mut store_time = start.elapsed();
    let mut written = 0u64;
    let mut iteration = 0u32;
    while written < observations {
        iteration += 1;
        let n = (observations - written).min(PER_ITERATION as u64) as usize;
        // Building the batch is part of the loop in a real run too, but keep it out
        // of the store's time: the batch is ready when the learner reports it.
        let batch = workload(written, n, pool, iteration);
        let t = Instant::now();
        store.append_iteration(&batch)?;
        store_time += t.elapsed();
        written += n as u64;
    }
    let write_seconds = store_time.as_secs_f64();
    drop(store);

    let t = Instant::now();
    let store = Store::open_with(dir, kind)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let summary = store.summary()?;
    let summary_ms = t.elapsed().as_secs_f64() * 1e3;
    if summary.observations != written {
        return Err(StoreBenchError::Miscount {
            backend: kind,
            written,
            counted: summary.observations,
        });
    }
    let bytes_on_disk = summary.bytes_on_disk;
    let observations_per_second = written as f64 / write_seconds.max(1e-9);
    let bytes_per_observation = bytes_on_disk as f64 / written as f64;
    Ok(BackendResult {
        backend: kind,
        observations: written,
        iterations: u64::from(iteration),
        write_seconds,
        observations_per_second,
        bytes_on_disk,
        bytes_per_observation,
        open_ms,
        summary_ms,
        meets_rate_target: observations_per_second >= TARGET_OBSERVATIONS_PER_SECOND,
        meets_size_target: bytes_per_observation <= TARGET_BYTES_PER_OBSERVATION,
    })
}

/// Runs the benchmark for each backend in `backends`, each in a new subdirectory of
/// `dir` that is removed afterwards.
pub fn run(
    dir: &Path,
    observations: u64,
    backends: &[BackendKind],
) -> Result<StoreBenchReport, StoreBenchError> {
    let mut results = Vec::with_capacity(backends.len());
    for &kind in backends {
        let sub = dir.join(format!("bench-{kind}"));
        let dir_err = |source| StoreBenchError::Dir {
            path: sub.clone(),
            source,
        };
        if sub.exists() {
            std::fs::remove_dir_all(&sub).map_err(dir_err)?;
        }
        std::fs::create_dir_all(&sub).map_err(dir_err)?;
        let result = bench_backend(kind, &sub, observations);
        std::fs::remove_dir_all(&sub).map_err(dir_err)?;
        results.push(result?);
    }
    Ok(StoreBenchReport {
        observations,
        per_iteration: PER_ITERATION,
        pool: pool_size(observations),
        target_observations_per_second: TARGET_OBSERVATIONS_PER_SECOND,
        target_bytes_per_observation: TARGET_BYTES_PER_OBSERVATION,
        results,
    })
}

impl StoreBenchReport {
    /// A Markdown table with the targets next to the numbers.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "store benchmark: {} observations, {} per durable append, pool of {} samples\n\n",
            self.observations, self.per_iteration, self.pool
        );
        s.push_str(&format!(
            "| backend | observations/s (target ≥ {:.0}) | bytes/observation (target ≤ {:.0}) | bytes on disk | write s | open ms | summary ms |\n",
            self.target_observations_per_second, self.target_bytes_per_observation
        ));
        s.push_str("|---|---|---|---|---|---|---|\n");
        let mark = |ok: bool| if ok { "ok" } else { "MISSED" };
        for r in &self.results {
            s.push_str(&format!(
                "| {} | {:.0} {} | {:.1} {} | {} | {:.2} | {:.1} | {:.1} |\n",
                r.backend,
                r.observations_per_second,
                mark(r.meets_rate_target),
                r.bytes_per_observation,
                mark(r.meets_size_target),
                r.bytes_on_disk,
                r.write_seconds,
                r.open_ms,
                r.summary_ms
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_iterations_hold_distinct_samples() {
        let pool = pool_size(10_000);
        assert_eq!(pool, 4096);
        let batch = workload(3 * PER_ITERATION as u64, PER_ITERATION, pool, 4);
        let mut ids: Vec<u64> = batch.iter().map(|o| o.sample).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), PER_ITERATION);
        assert!(batch.iter().all(|o| o.successes <= o.rollouts));
    }

    #[test]
    fn both_backends_report_every_observation_on_a_small_run() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(dir.path(), 10_000, &BackendKind::ALL).unwrap();
        assert_eq!(report.results.len(), 2);
        for r in &report.results {
            assert_eq!(r.observations, 10_000);
            assert_eq!(r.iterations, 3);
            assert!(r.observations_per_second > 0.0 && r.bytes_on_disk > 0);
            assert!(r.open_ms >= 0.0 && r.summary_ms >= 0.0);
        }
        // The directories are cleaned up.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let md = report.to_markdown();
        assert!(md.contains("| sled |") && md.contains("| redb |"), "{md}");
    }
}
