//! `rlcs inspect`: read-only views of a store — one sample's history across runs,
//! and a summary of what the store holds.
//!
//! A store is opened only when it exists: inspecting a missing or empty directory is
//! an error naming it, never a fresh store created as a side effect.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rlcs_curriculum::SampleId;
use rlcs_storage::{RunIndex, RunStatus, Store, StoreError, StoreSummary};
use serde::{Deserialize, Serialize};

/// Errors of `rlcs inspect` and `rlcs export`.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// There is no store at the path (missing, or an empty directory).
    #[error("no rlcs store at {path} (expected a store directory or a run directory with a store/ inside)")]
    NoStore {
        /// The path given.
        path: PathBuf,
    },
    /// A sample id is neither decimal nor `0x`-hex.
    #[error("sample id {text:?} is not a decimal or 0x-hex unsigned 64-bit number")]
    BadSampleId {
        /// What was given.
        text: String,
    },
    /// The sample was never observed in the store.
    #[error("sample {sample} ({sample:#x}) has no observation in the store at {path}")]
    UnknownSample {
        /// The sample.
        sample: SampleId,
        /// The store's directory.
        path: PathBuf,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store directory for `path`: `path/store` when `path` is a run directory that
/// has one, `path` otherwise.
pub fn store_dir(path: &Path) -> PathBuf {
    let inner = path.join("store");
    if inner.join(rlcs_storage::MARKER_FILE).is_file() {
        inner
    } else {
        path.to_path_buf()
    }
}

/// Opens the existing store at `path` (a store directory, or a run directory with a
/// `store/` inside); fails with [`InspectError::NoStore`] instead of creating one.
pub fn open_existing(path: &Path) -> Result<Store, InspectError> {
    let dir = store_dir(path);
    match Store::detect(&dir)? {
        Some(kind) => Ok(Store::open_with(&dir, kind)?),
        None => Err(InspectError::NoStore {
            path: path.to_path_buf(),
        }),
    }
}

/// Parses a sample id written in decimal or as `0x`-prefixed hex.
pub fn parse_sample_id(text: &str) -> Result<SampleId, InspectError> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => SampleId::from_str_radix(&hex.replace('_', ""), 16),
        None => t.replace('_', "").parse::<SampleId>(),
    };
    parsed.map_err(|_| InspectError::BadSampleId {
        text: text.to_string(),
    })
}

/// Run names by run index (index 0, observations with no run registered, is `-`).
pub fn run_names(store: &Store) -> Result<BTreeMap<RunIndex, String>, StoreError> {
    let mut names: BTreeMap<RunIndex, String> = store
        .runs()?
        .into_iter()
        .map(|e| (e.index, e.record.run))
        .collect();
    names.entry(0).or_insert_with(|| "-".to_string());
    Ok(names)
}

/// The name of run `index`, or `#index` when the registry does not know it.
pub fn run_name(names: &BTreeMap<RunIndex, String>, index: RunIndex) -> String {
    names
        .get(&index)
        .cloned()
        .unwrap_or_else(|| format!("#{index}"))
}

/// One observation of a sample, as `rlcs inspect sample` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    /// Run name.
    pub run: String,
    /// Run index in the store.
    pub run_index: RunIndex,
    /// Iteration.
    pub iteration: u32,
    /// Policy version of the rollouts.
    pub policy_version: u64,
    /// Rollouts.
    pub rollouts: u32,
    /// Correct rollouts.
    pub successes: u32,
    /// `successes / rollouts` (`None` with no rollout).
    pub pass_rate: Option<f64>,
    /// Mean reward.
    pub mean_reward: f32,
    /// Tier after this observation.
    pub tier_after: u8,
}

/// A sample's history across runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleReport {
    /// The sample.
    pub sample: SampleId,
    /// Observations.
    pub observations: u64,
    /// Rollouts over all observations.
    pub attempts: u64,
    /// Correct rollouts over all observations.
    pub successes: u64,
    /// `successes / attempts` over all observations.
    pub pass_rate: Option<f64>,
    /// Tier after the latest observation.
    pub tier: u8,
    /// Every observation, oldest first (run index, then iteration).
    pub history: Vec<SampleRow>,
}

/// The history of `sample` in `store`; [`InspectError::UnknownSample`] when it has none.
pub fn sample_report(store: &Store, sample: SampleId) -> Result<SampleReport, InspectError> {
    let names = run_names(store)?;
    let history: Vec<SampleRow> = store
        .run_history(sample)?
        .into_iter()
        .map(|r| {
            let o = r.observation;
            SampleRow {
                run: run_name(&names, r.run),
                run_index: r.run,
                iteration: o.iteration,
                policy_version: o.policy_version,
                rollouts: o.rollouts,
                successes: o.successes,
                pass_rate: (o.rollouts > 0).then(|| o.successes as f64 / o.rollouts as f64),
                mean_reward: o.mean_reward,
                tier_after: o.tier_after,
            }
        })
        .collect();
    let Some(last) = history.last() else {
        return Err(InspectError::UnknownSample {
            sample,
            path: store.path().to_path_buf(),
        });
    };
    let attempts: u64 = history.iter().map(|r| u64::from(r.rollouts)).sum();
    let successes: u64 = history.iter().map(|r| u64::from(r.successes)).sum();
    Ok(SampleReport {
        sample,
        observations: history.len() as u64,
        attempts,
        successes,
        pass_rate: (attempts > 0).then(|| successes as f64 / attempts as f64),
        tier: last.tier_after,
        history,
    })
}

fn rate(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.3}")).unwrap_or_else(|| "-".into())
}

impl SampleReport {
    /// A plain-text table, one line per observation.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "sample {} ({:#x}): {} observations, {} of {} rollouts correct (pass rate {}), tier {}",
            self.sample,
            self.sample,
            self.observations,
            self.successes,
            self.attempts,
            rate(self.pass_rate),
            self.tier
        );
        let run_w = name_width(self.history.iter().map(|r| r.run.as_str()));
        let _ = writeln!(
            s,
            "{:<run_w$}  {:>9}  {:>6}  {:>8}  {:>9}  {:>9}  {:>11}  {:>10}",
            "run",
            "iteration",
            "policy",
            "rollouts",
            "successes",
            "pass rate",
            "mean reward",
            "tier after"
        );
        for r in &self.history {
            let _ = writeln!(
                s,
                "{:<run_w$}  {:>9}  {:>6}  {:>8}  {:>9}  {:>9}  {:>11.3}  {:>10}",
                r.run,
                r.iteration,
                r.policy_version,
                r.rollouts,
                r.successes,
                rate(r.pass_rate),
                r.mean_reward,
                r.tier_after
            );
        }
        s
    }
}

/// What `rlcs inspect STORE summary` prints: the store's own summary (runs with
/// their start and end) and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryReport {
    /// The store's directory.
    pub path: PathBuf,
    /// The summary.
    #[serde(flatten)]
    pub store: StoreSummary,
}

/// The summary of `store`.
pub fn summary_report(store: &Store) -> Result<SummaryReport, InspectError> {
    Ok(SummaryReport {
        path: store.path().to_path_buf(),
        store: store.summary()?,
    })
}

/// Width of the `run` column: the longest run name, at least the header's.
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(0).max(3)
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time in milliseconds.
pub fn utc_time(unix_ms: u64) -> String {
    let (y, m, d, h, mi, sec) = crate::civil_utc(unix_ms / 1000);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{sec:02} UTC")
}

impl SummaryReport {
    /// A plain-text summary.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "store:         {}", self.path.display());
        let _ = writeln!(
            s,
            "backend:       {} (format v{})",
            self.store.backend, self.store.format_version
        );
        let per_obs = if self.store.observations > 0 {
            format!(
                " ({:.1} bytes/observation)",
                self.store.bytes_on_disk as f64 / self.store.observations as f64
            )
        } else {
            String::new()
        };
        let _ = writeln!(s, "bytes on disk: {}{per_obs}", self.store.bytes_on_disk);
        let _ = writeln!(s, "samples:       {}", self.store.samples);
        let _ = writeln!(s, "observations:  {}", self.store.observations);
        let _ = writeln!(s, "iterations:    {}", self.store.iterations);
        if let Some(d) = &self.store.dataset {
            let _ = writeln!(s, "dataset:       {d}");
        }
        let tiers: Vec<String> = self
            .store
            .tier_histogram
            .iter()
            .map(|(t, n)| format!("{t}: {n}"))
            .collect();
        let _ = writeln!(s, "tiers:         {}", tiers.join(", "));
        let run_w = name_width(self.store.runs.iter().map(|r| r.run.as_str()));
        let _ = writeln!(
            s,
            "\n{:<run_w$}  {:<8}  {:>12}  {:>10}  {:<23}  {:<23}  revision",
            "run", "status", "observations", "iterations", "start", "end"
        );
        let time = |t: Option<u64>| t.map(utc_time).unwrap_or_else(|| "-".into());
        for r in &self.store.runs {
            let status = match &r.status {
                Some(RunStatus::Running) => "running",
                Some(RunStatus::Finished) => "finished",
                Some(RunStatus::Failed) => "failed",
                None => "-",
            };
            let _ = writeln!(
                s,
                "{:<run_w$}  {:<8}  {:>12}  {:>10}  {:<23}  {:<23}  {}",
                if r.run.is_empty() { "-" } else { &r.run },
                status,
                r.observations,
                r.iterations,
                time(r.started_unix_ms),
                time(r.ended_unix_ms),
                r.code_revision.as_deref().unwrap_or("-")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlcs_curriculum::Observation;
    use rlcs_storage::RunRecord;

    #[test]
    fn sample_ids_parse_in_decimal_and_hex() {
        for (text, want) in [
            ("42", Some(42)),
            ("0x2a", Some(42)),
            ("0X2A", Some(42)),
            (" 7 ", Some(7)),
            ("0xffffffffffffffff", Some(u64::MAX)),
            ("-1", None),
            ("0x", None),
            ("abc", None),
            ("18446744073709551616", None),
        ] {
            assert_eq!(parse_sample_id(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn utc_time_formats_known_instants() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(1_700_000_000_123), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn missing_and_empty_directories_are_not_created_as_stores() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            open_existing(&missing),
            Err(InspectError::NoStore { .. })
        ));
        assert!(!missing.exists());
        assert!(matches!(
            open_existing(dir.path()),
            Err(InspectError::NoStore { .. })
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn sample_history_and_summary_cover_every_run() {
        let dir = tempfile::tempdir().unwrap();
        let store_path = dir.path().join("store");
        let store = Store::open(&store_path).unwrap();
        for (run, base) in [("a", 0u32), ("b", 10)] {
            store
                .put_run(&RunRecord {
                    run: run.into(),
                    seed: 1,
                    config: serde_json::json!({}),
                    status: RunStatus::Running,
                    last_iteration: 0,
                })
                .unwrap();
            let obs: Vec<Observation> = (0..3)
                .map(|s| Observation {
                    sample: s,
                    iteration: base + 1,
                    policy_version: u64::from(base),
                    rollouts: 8,
                    successes: s as u32,
                    mean_reward: 0.5,
                    tier_after: 1,
                })
                .collect();
            store.append_iteration(&obs).unwrap();
        }
        drop(store);
        // A run directory is accepted in place of its store.
        let store = open_existing(dir.path()).unwrap();
        let r = sample_report(&store, 2).unwrap();
        assert_eq!(r.observations, 2);
        assert_eq!(
            r.history.iter().map(|h| h.run.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!((r.attempts, r.successes), (16, 4));
        assert!(r.to_table().contains("0.250"));
        let err = sample_report(&store, 99).unwrap_err().to_string();
        assert!(err.contains("sample 99") && err.contains("store"), "{err}");
        let report = summary_report(&store).unwrap();
        let s = &report.store;
        assert_eq!((s.samples, s.observations, s.iterations), (3, 6, 2));
        assert_eq!(s.runs.len(), 2);
        assert!(s.runs.iter().all(|r| r.started_unix_ms.is_some()));
        assert!(report.to_text().contains("observations:  6"));
    }
}
