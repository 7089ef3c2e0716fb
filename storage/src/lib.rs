//! # rlcs-storage
//!
//! The durable side of a run, in a store directory (`RUN_DIR/store`):
//!
//! - per-sample difficulty histories: every [`Observation`] appended under its run
//!   and iteration, compactly encoded and versioned (about 12 bytes each, see
//!   [`encoding`]);
//! - totals per sample (attempts, successes, current tier), derived from the history
//!   in one scan, so a new run can seed offline tiers from earlier runs
//!   ([`Store::pass_rates`]);
//! - the run registry: resolved config, seed, status, start and end, code revision;
//! - the checkpoint index: iteration → files and their SHA-256.
//!
//! A [`Store`] is a facade over a key-value [`Backend`]: sled 0.34 or redb 2, picked
//! with [`Store::open_with`] and recorded in a `FORMAT` marker file
//! (`rlcs-store v1 redb`) so [`Store::open`] finds it again. Both backends hold
//! byte-identical records and pass one conformance suite.
//!
//! Writes of one iteration go in one atomic transaction, on disk before
//! [`Store::append_iteration`] returns.
#![deny(missing_docs)]

pub mod backend;
pub mod encoding;
mod error;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rlcs_curriculum::{Observation, SampleId};
use serde::{Deserialize, Serialize};

pub use backend::{open_backend, Backend, BackendKind, Table, Txn, UnknownBackend};
use encoding::{DecodeError, Packed, RunCounters, Totals};
pub use encoding::{RunIndex, HISTORY_ENCODING};
pub use error::{Result, StoreError};

/// Version of the store layout, written in the `FORMAT` marker and in the database.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the marker file in a store directory.
pub const MARKER_FILE: &str = "FORMAT";
/// The backend [`Store::open`] creates a new store with: sled, as the design asks,
/// until the kill -9 crash test (storage issue) has compared both backends.
pub const DEFAULT_BACKEND: BackendKind = BackendKind::Sled;

const META_FORMAT: &[u8] = b"format";
const META_DATASET: &[u8] = b"dataset";
const META_NEXT_RUN: &[u8] = b"next_run";
const META_RUN_NAME: &[u8] = b"run/";
const META_COUNTERS: &[u8] = b"count/";
const NO_ACTIVE_RUN: u32 = u32::MAX;

/// Status of a run in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started, not finished.
    Running,
    /// Finished normally.
    Finished,
    /// Stopped by an error.
    Failed,
}

/// A run registry entry, as the caller writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id (the run directory's name).
    pub run: String,
    /// The run's seed.
    pub seed: u64,
    /// The resolved config, as JSON.
    pub config: serde_json::Value,
    /// Status.
    pub status: RunStatus,
    /// Last completed iteration.
    pub last_iteration: u32,
}

/// A run registry entry with what the store adds: its index, start and end times,
/// code revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    /// What the caller wrote.
    #[serde(flatten)]
    pub record: RunRecord,
    /// The run's compact index in this store (keys of its history).
    pub index: RunIndex,
    /// When the run was first registered as running (ms since the Unix epoch).
    #[serde(default)]
    pub started_unix_ms: Option<u64>,
    /// When the run was last marked finished or failed.
    #[serde(default)]
    pub ended_unix_ms: Option<u64>,
    /// The code revision (e.g. a git commit) the run was built from, when known.
    #[serde(default)]
    pub code_revision: Option<String>,
}

/// One stored observation with the run it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct RunObservation {
    /// The run's index (see [`RunEntry::index`]; 0 = no run registered).
    pub run: RunIndex,
    /// The observation.
    pub observation: Observation,
}

/// A sample's totals over every run in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleTotals {
    /// The sample.
    pub sample: SampleId,
    /// Rollouts over all observations.
    pub attempts: u64,
    /// Correct rollouts over all observations.
    pub successes: u64,
    /// Number of observations.
    pub observations: u64,
    /// Tier after the latest observation.
    pub tier: u8,
    /// Run index of the earliest observation.
    pub first_run: RunIndex,
    /// Iteration of the earliest observation.
    pub first_iteration: u32,
    /// Run index of the latest observation.
    pub last_run: RunIndex,
    /// Iteration of the latest observation.
    pub last_iteration: u32,
}

impl SampleTotals {
    /// `successes / attempts`, or `None` before any rollout.
    pub fn pass_rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.successes as f64 / self.attempts as f64)
    }
}

/// Per-run line of a [`StoreSummary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's index.
    pub index: RunIndex,
    /// Run id (empty for index 0: observations appended with no run registered).
    pub run: String,
    /// Registry status (none for index 0).
    pub status: Option<RunStatus>,
    /// Observations stored.
    pub observations: u64,
    /// Iterations stored.
    pub iterations: u64,
    /// Highest iteration stored.
    pub last_iteration: u32,
    /// Start (ms since the Unix epoch), when registered.
    pub started_unix_ms: Option<u64>,
    /// End (ms since the Unix epoch), when finished or failed.
    pub ended_unix_ms: Option<u64>,
    /// The code revision the run was built from, when known.
    #[serde(default)]
    pub code_revision: Option<String>,
}

/// What a store holds, for `rlcs inspect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreSummary {
    /// The backend.
    pub backend: BackendKind,
    /// The store's format version.
    pub format_version: u32,
    /// Distinct samples observed.
    pub samples: u64,
    /// Observations stored.
    pub observations: u64,
    /// `(run, iteration)` records stored.
    pub iterations: u64,
    /// Samples per current tier.
    pub tier_histogram: BTreeMap<u8, u64>,
    /// Runs, by index.
    pub runs: Vec<RunSummary>,
    /// The dataset fingerprint, when one was bound.
    pub dataset: Option<String>,
    /// Bytes of the store's files.
    pub bytes_on_disk: u64,
}

/// One file of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointFile {
    /// Path relative to the run directory.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}

impl CheckpointFile {
    /// Hashes `base/path` (streaming; any size).
    pub fn hash(base: &Path, path: &str) -> Result<Self> {
        use sha2::Digest;
        let full = base.join(path);
        let io = |action, source| StoreError::Io {
            path: full.clone(),
            action,
            source,
        };
        let mut f = std::fs::File::open(&full).map_err(|e| io("opening checkpoint file", e))?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut bytes = 0u64;
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| io("reading checkpoint file", e))?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            h.update(&buf[..n]);
        }
        let sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(CheckpointFile {
            path: path.to_string(),
            bytes,
            sha256,
        })
    }
}

/// An entry of the checkpoint index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// The iteration the checkpoint was taken after.
    pub iteration: u32,
    /// Its files.
    pub files: Vec<CheckpointFile>,
    /// When it was written (ms since the Unix epoch).
    #[serde(default)]
    pub written_unix_ms: u64,
}

impl CheckpointRecord {
    /// A record of `files` (relative to `base`), hashed now.
    pub fn of_files(base: &Path, iteration: u32, files: &[&str]) -> Result<Self> {
        Ok(CheckpointRecord {
            iteration,
            files: files
                .iter()
                .map(|f| CheckpointFile::hash(base, f))
                .collect::<Result<_>>()?,
            written_unix_ms: now_ms(),
        })
    }

    /// Checks that every file exists under `base` with the recorded size and hash.
    pub fn verify(&self, base: &Path, run: &str) -> Result<()> {
        for f in &self.files {
            let bad = |reason: String| StoreError::Checkpoint {
                run: run.to_string(),
                iteration: self.iteration,
                file: base.join(&f.path),
                reason,
            };
            let found = CheckpointFile::hash(base, &f.path).map_err(|e| bad(e.to_string()))?;
            if found.bytes != f.bytes || found.sha256 != f.sha256 {
                return Err(bad(format!(
                    "{} bytes sha256 {}, index says {} bytes sha256 {}",
                    found.bytes, found.sha256, f.bytes, f.sha256
                )));
            }
        }
        Ok(())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The store of one run directory (or of several runs sharing one store).
///
/// `Send + Sync`; every method takes `&self`. Writes are serialised by the backend.
pub struct Store {
    backend: Box<dyn Backend>,
    path: PathBuf,
    active_run: AtomicU32,
    observations: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("backend", &self.backend.kind())
            .finish()
    }
}

/// Parses a `FORMAT` marker's contents.
pub fn parse_marker(path: &Path, content: &str) -> Result<BackendKind> {
    let unknown = || StoreError::UnknownMarker {
        path: path.to_path_buf(),
        content: content.chars().take(80).collect(),
    };
    let words: Vec<&str> = content.split_whitespace().collect();
    let [magic, version, backend] = words[..] else {
        return Err(unknown());
    };
    if magic != "rlcs-store" {
        return Err(unknown());
    }
    let version: u32 = version
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .ok_or_else(unknown)?;
    if version > FORMAT_VERSION {
        return Err(StoreError::NewerFormat {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version != FORMAT_VERSION {
        return Err(unknown());
    }
    backend.parse().map_err(|_| unknown())
}

fn marker_text(kind: BackendKind) -> String {
    format!("rlcs-store v{FORMAT_VERSION} {kind}\n")
}

impl Store {
    /// Opens the store in directory `path` with the backend its `FORMAT` marker
    /// names, or creates it with [`DEFAULT_BACKEND`] when the directory is missing
    /// or empty.
    pub fn open(path: &Path) -> Result<Self> {
        let kind = Self::detect(path)?.unwrap_or(DEFAULT_BACKEND);
        Self::open_with(path, kind)
    }

    /// Opens the store in `path`, which must use `kind`, or creates it with `kind`.
    pub fn open_with(path: &Path, kind: BackendKind) -> Result<Self> {
        match Self::detect(path)? {
            Some(found) if found != kind => {
                return Err(StoreError::BackendMismatch {
                    path: path.to_path_buf(),
                    requested: kind,
                    found,
                })
            }
            Some(_) => {}
            None => write_marker(path, kind)?,
        }
        let backend = open_backend(kind, path)?;
        let store = Store {
            backend,
            path: path.to_path_buf(),
            active_run: AtomicU32::new(NO_ACTIVE_RUN),
            observations: AtomicU64::new(0),
        };
        store.check_format()?;
        let total = store.run_counters()?.values().map(|c| c.observations).sum();
        store.observations.store(total, Ordering::Relaxed);
        Ok(store)
    }

    /// The backend of the store in `path`: `None` when there is no store yet (no
    /// directory, or an empty one).
    pub fn detect(path: &Path) -> Result<Option<BackendKind>> {
        let io = |action, source| StoreError::Io {
            path: path.to_path_buf(),
            action,
            source,
        };
        if !path.exists() {
            return Ok(None);
        }
        if !path.is_dir() {
            return Err(StoreError::NotAStore {
                path: path.to_path_buf(),
                reason: "a file, not a directory".into(),
            });
        }
        let marker = path.join(MARKER_FILE);
        if marker.exists() {
            let mut bytes = Vec::new();
            std::fs::File::open(&marker)
                .and_then(|f| f.take(256).read_to_end(&mut bytes))
                .map_err(|e| io("reading FORMAT marker", e))?;
            return parse_marker(path, &String::from_utf8_lossy(&bytes)).map(Some);
        }
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map_err(|e| io("listing store directory", e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        names.sort();
        let legacy = names.iter().any(|n| n == "conf") && names.iter().any(|n| n == "db");
        Err(StoreError::NotAStore {
            path: path.to_path_buf(),
            reason: if legacy {
                "a sled store from before the FORMAT marker (layout v0); re-run to rebuild it"
                    .into()
            } else {
                format!(
                    "no {MARKER_FILE} marker; found {}",
                    names.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                )
            },
        })
    }

    fn check_format(&self) -> Result<()> {
        let want = format!("rlcs-store {FORMAT_VERSION}");
        match self.backend.get(Table::Meta, META_FORMAT)? {
            None => self
                .backend
                .transact(&mut |t| t.put(Table::Meta, META_FORMAT, want.as_bytes())),
            Some(v) if v == want.as_bytes() => Ok(()),
            Some(v) => {
                let text = String::from_utf8_lossy(&v).into_owned();
                match text
                    .strip_prefix("rlcs-store ")
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    Some(found) if found > FORMAT_VERSION => Err(StoreError::NewerFormat {
                        path: self.path.clone(),
                        found,
                        supported: FORMAT_VERSION,
                    }),
                    _ => Err(self.corrupt("format record", format!("{text:?}"))),
                }
            }
        }
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's backend.
    pub fn kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// The raw backend, for tools and tests that work below the record layout.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    fn path_str(&self) -> String {
        self.path.display().to_string()
    }

    fn corrupt(&self, record: impl Into<String>, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path_str(),
            record: record.into(),
            reason: reason.into(),
        }
    }

    fn decoded<T>(
        &self,
        r: std::result::Result<T, DecodeError>,
        record: impl FnOnce() -> String,
    ) -> Result<T> {
        r.map_err(|e| match e {
            DecodeError::Newer(found) => StoreError::NewerEncoding {
                path: self.path_str(),
                record: record(),
                found,
                supported: HISTORY_ENCODING,
            },
            DecodeError::Corrupt(reason) => self.corrupt(record(), reason),
        })
    }

    // ---- run registry ----

    fn registry_err(run: &str, e: impl ToString) -> StoreError {
        StoreError::Registry {
            run: run.to_string(),
            reason: e.to_string(),
        }
    }

    /// Writes or replaces a run registry entry, durably. A new run gets the next
    /// run index; a run written as [`RunStatus::Running`] becomes the run that
    /// [`append_iteration`](Self::append_iteration) appends to. Start and end times
    /// are stamped here; the code revision is kept.
    pub fn put_run(&self, record: &RunRecord) -> Result<()> {
        let mut index = 0;
        let path = self.path_str();
        self.backend.transact(&mut |t| {
            let entry = match t.get(Table::Runs, record.run.as_bytes())? {
                Some(v) => {
                    let mut e: RunEntry = serde_json::from_slice(&v)
                        .map_err(|e| Self::registry_err(&record.run, e))?;
                    e.record = record.clone();
                    e
                }
                None => {
                    let next = match t.get(Table::Meta, META_NEXT_RUN)? {
                        Some(v) => <[u8; 2]>::try_from(&v[..])
                            .map(u16::from_le_bytes)
                            .map_err(|_| StoreError::Corrupt {
                                path: path.clone(),
                                record: "next run index".into(),
                                reason: format!("{} bytes, expected 2", v.len()),
                            })?,
                        None => 1,
                    };
                    let after = next.checked_add(1).ok_or_else(|| StoreError::TooManyRuns {
                        path: path.clone(),
                        run: record.run.clone(),
                    })?;
                    if next == 0 {
                        return Err(StoreError::TooManyRuns {
                            path: path.clone(),
                            run: record.run.clone(),
                        });
                    }
                    t.put(Table::Meta, META_NEXT_RUN, &after.to_le_bytes())?;
                    t.put(
                        Table::Meta,
                        &[META_RUN_NAME, &next.to_be_bytes()[..]].concat(),
                        record.run.as_bytes(),
                    )?;
                    RunEntry {
                        record: record.clone(),
                        index: next,
                        started_unix_ms: None,
                        ended_unix_ms: None,
                        code_revision: None,
                    }
                }
            };
            let mut entry = entry;
            match record.status {
                RunStatus::Running => {
                    entry.started_unix_ms.get_or_insert_with(now_ms);
                    entry.ended_unix_ms = None;
                }
                RunStatus::Finished | RunStatus::Failed => entry.ended_unix_ms = Some(now_ms()),
            }
            index = entry.index;
            let bytes =
                serde_json::to_vec(&entry).map_err(|e| Self::registry_err(&record.run, e))?;
            t.put(Table::Runs, record.run.as_bytes(), &bytes)
        })?;
        if record.status == RunStatus::Running {
            self.active_run.store(index as u32, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The registry entry of a run, as last written.
    pub fn run(&self, run: &str) -> Result<Option<RunRecord>> {
        Ok(self.run_entry(run)?.map(|e| e.record))
    }

    /// The full registry entry of a run.
    pub fn run_entry(&self, run: &str) -> Result<Option<RunEntry>> {
        match self.backend.get(Table::Runs, run.as_bytes())? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| Self::registry_err(run, e)),
        }
    }

    /// Every registered run, by index.
    pub fn runs(&self) -> Result<Vec<RunEntry>> {
        let mut out = Vec::new();
        self.backend.scan(Table::Runs, &[], None, &mut |k, v| {
            let run = String::from_utf8_lossy(k);
            out.push(
                serde_json::from_slice::<RunEntry>(v).map_err(|e| Self::registry_err(&run, e))?,
            );
            Ok(true)
        })?;
        out.sort_by_key(|e| e.index);
        Ok(out)
    }

    fn run_index(&self, run: &str) -> Result<RunIndex> {
        self.run_entry(run)?
            .map(|e| e.index)
            .ok_or_else(|| StoreError::UnknownRun {
                path: self.path_str(),
                run: run.to_string(),
            })
    }

    /// Records the code revision a run was built from.
    pub fn set_code_revision(&self, run: &str, revision: &str) -> Result<()> {
        let path = self.path_str();
        self.backend.transact(&mut |t| {
            let Some(v) = t.get(Table::Runs, run.as_bytes())? else {
                return Err(StoreError::UnknownRun {
                    path: path.clone(),
                    run: run.to_string(),
                });
            };
            let mut e: RunEntry =
                serde_json::from_slice(&v).map_err(|e| Self::registry_err(run, e))?;
            e.code_revision = Some(revision.to_string());
            let bytes = serde_json::to_vec(&e).map_err(|e| Self::registry_err(run, e))?;
            t.put(Table::Runs, run.as_bytes(), &bytes)
        })
    }

    /// Makes `run` (already registered) the run that
    /// [`append_iteration`](Self::append_iteration) appends to; returns its index.
    pub fn set_active_run(&self, run: &str) -> Result<RunIndex> {
        let index = self.run_index(run)?;
        self.active_run.store(index as u32, Ordering::Relaxed);
        Ok(index)
    }

    /// Index of the run appends go to (0 when none was registered).
    pub fn active_run(&self) -> RunIndex {
        match self.active_run.load(Ordering::Relaxed) {
            NO_ACTIVE_RUN => 0,
            i => i as RunIndex,
        }
    }

    // ---- history ----

    /// Appends one iteration's observations to the active run (see
    /// [`put_run`](Self::put_run)) in one atomic transaction, on disk when this
    /// returns. Observations may span iterations; an observation of a sample at an
    /// iteration already stored for this run replaces the stored one. An invalid
    /// observation rejects the whole batch.
    pub fn append_iteration(&self, observations: &[Observation]) -> Result<()> {
        self.append_to(self.active_run(), observations)
    }

    /// [`append_iteration`](Self::append_iteration) to a named, registered run.
    pub fn append_run_iteration(&self, run: &str, observations: &[Observation]) -> Result<()> {
        let index = self.run_index(run)?;
        self.append_to(index, observations)
    }

    fn append_to(&self, run: RunIndex, observations: &[Observation]) -> Result<()> {
        if observations.is_empty() {
            return Ok(());
        }
        // Group by iteration, sorted by sample; a later duplicate replaces an earlier one.
        let mut by_iteration: BTreeMap<u32, BTreeMap<SampleId, &Observation>> = BTreeMap::new();
        for o in observations {
            by_iteration
                .entry(o.iteration)
                .or_default()
                .insert(o.sample, o);
        }
        let mut added = 0u64;
        self.backend.transact(&mut |t| {
            added = 0;
            let counters_key = counters_key(run);
            let mut counters = match t.get(Table::Meta, &counters_key)? {
                Some(v) => {
                    self.decoded(RunCounters::decode(&v), || format!("counters of run {run}"))?
                }
                None => RunCounters::default(),
            };
            for (&iteration, fresh) in &by_iteration {
                let key = encoding::iteration_key(run, iteration);
                let record = || format!("history of run {run} iteration {iteration}");
                let mut merged: BTreeMap<SampleId, Packed> = BTreeMap::new();
                match t.get(Table::Iterations, &key)? {
                    Some(v) => {
                        for p in self.decoded(encoding::decode_iteration(&v), record)? {
                            merged.insert(p.sample, p);
                        }
                    }
                    None => counters.iterations += 1,
                }
                for (&sample, o) in fresh {
                    if o.successes > o.rollouts {
                        return Err(StoreError::InvalidObservation {
                            sample,
                            iteration,
                            reason: format!("{} successes of {} rollouts", o.successes, o.rollouts),
                        });
                    }
                    if merged.insert(sample, Packed::of(o)).is_none() {
                        counters.observations += 1;
                        added += 1;
                    }
                }
                counters.last_iteration = counters.last_iteration.max(iteration);
                let records: Vec<Packed> = merged.into_values().collect();
                t.put(
                    Table::Iterations,
                    &key,
                    &encoding::encode_iteration(&records),
                )?;
            }
            t.put(Table::Meta, &counters_key, &counters.encode())
        })?;
        self.observations.fetch_add(added, Ordering::Relaxed);
        Ok(())
    }

    /// Removes every observation of `run` after `iteration`, in one durable
    /// transaction, and returns how many were removed: a resumed run rolls its
    /// history back to the last checkpoint before it continues, so no iteration is
    /// stored twice or half.
    pub fn rollback_after(&self, run: &str, iteration: u32) -> Result<usize> {
        let index = self.run_index(run)?;
        let Some(first) = iteration.checked_add(1) else {
            return Ok(0);
        };
        let from = encoding::iteration_key(index, first);
        let to = match index.checked_add(1) {
            Some(next) => encoding::iteration_key(next, 0).to_vec(),
            None => vec![0xff; 7],
        };
        let mut doomed: Vec<([u8; 6], u64)> = Vec::new();
        self.scan_iterations::<StoreError>(&from, Some(&to), &mut |r, it, packed| {
            doomed.push((encoding::iteration_key(r, it), packed.len() as u64));
            Ok(())
        })?;
        if doomed.is_empty() {
            return Ok(0);
        }
        let removed: u64 = doomed.iter().map(|(_, n)| n).sum();
        self.backend.transact(&mut |t| {
            let counters_key = counters_key(index);
            let mut counters = match t.get(Table::Meta, &counters_key)? {
                Some(v) => self.decoded(RunCounters::decode(&v), || {
                    format!("counters of run {index}")
                })?,
                None => RunCounters::default(),
            };
            for (key, _) in &doomed {
                t.delete(Table::Iterations, key)?;
            }
            counters.observations = counters.observations.saturating_sub(removed);
            counters.iterations = counters.iterations.saturating_sub(doomed.len() as u64);
            counters.last_iteration = counters.last_iteration.min(iteration);
            t.put(Table::Meta, &counters_key, &counters.encode())
        })?;
        self.observations.fetch_sub(
            removed.min(self.observations.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        Ok(removed as usize)
    }

    /// Number of observations across all runs.
    pub fn observation_count(&self) -> usize {
        self.observations.load(Ordering::Relaxed) as usize
    }

    /// Visits every `(run, iteration)` record in key order (run index, then
    /// iteration) with its observations sorted by sample. The visitor's error stops
    /// the scan and is returned.
    pub fn for_each_iteration<E: From<StoreError>>(
        &self,
        mut visit: impl FnMut(RunIndex, u32, Vec<Observation>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.scan_iterations(&[], None, &mut |run, iteration, packed| {
            visit(
                run,
                iteration,
                packed.iter().map(|p| p.at(iteration)).collect(),
            )
        })
    }

    fn scan_iterations<E: From<StoreError>>(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        visit: &mut dyn FnMut(RunIndex, u32, Vec<Packed>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut failed: Option<E> = None;
        self.backend
            .scan(Table::Iterations, from, to, &mut |k, v| {
                let (run, iteration) =
                    self.decoded(encoding::parse_iteration_key(k), || "iteration key".into())?;
                let packed = self.decoded(encoding::decode_iteration(v), || {
                    format!("history of run {run} iteration {iteration}")
                })?;
                match visit(run, iteration, packed) {
                    Ok(()) => Ok(true),
                    Err(e) => {
                        failed = Some(e);
                        Ok(false)
                    }
                }
            })
            .map_err(E::from)?;
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Visits every observation in a stable order: run index, iteration, sample.
    pub fn for_each_observation<E: From<StoreError>>(
        &self,
        mut visit: impl FnMut(&RunObservation) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.scan_iterations(&[], None, &mut |run, iteration, packed| {
            for p in &packed {
                visit(&RunObservation {
                    run,
                    observation: p.at(iteration),
                })?;
            }
            Ok(())
        })
    }

    /// Every observation, ordered by run index, iteration, then sample.
    pub fn all_observations(&self) -> Result<Vec<Observation>> {
        let mut out = Vec::with_capacity(self.observation_count());
        self.for_each_observation(|o| {
            out.push(o.observation.clone());
            Ok::<_, StoreError>(())
        })?;
        Ok(out)
    }

    /// The history of one sample over every run, oldest first (run index, then
    /// iteration).
    pub fn run_history(&self, sample: SampleId) -> Result<Vec<RunObservation>> {
        let mut out = Vec::new();
        self.scan_iterations(&[], None, &mut |run, iteration, packed| {
            if let Ok(i) = packed.binary_search_by_key(&sample, |p| p.sample) {
                out.push(RunObservation {
                    run,
                    observation: packed[i].at(iteration),
                });
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(out)
    }

    /// The difficulty history of one sample, oldest first (all runs).
    pub fn history(&self, sample: SampleId) -> Result<Vec<Observation>> {
        Ok(self
            .run_history(sample)?
            .into_iter()
            .map(|o| o.observation)
            .collect())
    }

    // ---- totals across runs ----

    /// Totals of the samples `keep` accepts, derived from one scan of the history
    /// (the log is compact enough that a scan beats keeping totals on every write).
    fn totals_where(
        &self,
        keep: impl Fn(SampleId) -> bool,
    ) -> Result<std::collections::HashMap<SampleId, Totals>> {
        let mut totals: std::collections::HashMap<SampleId, Totals> =
            std::collections::HashMap::new();
        self.scan_iterations(&[], None, &mut |run, iteration, packed| {
            for p in packed.iter().filter(|p| keep(p.sample)) {
                totals.entry(p.sample).or_default().add(run, iteration, p);
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(totals)
    }

    /// A sample's totals over every run, or `None` if it was never observed.
    pub fn sample_totals(&self, sample: SampleId) -> Result<Option<SampleTotals>> {
        Ok(self.pass_rates(&[sample])?.pop())
    }

    /// Totals of the given samples that the store has seen, in the order asked
    /// (duplicates once); for seeding offline tiers of a new run from earlier runs.
    /// One scan of the history.
    pub fn pass_rates(&self, samples: &[SampleId]) -> Result<Vec<SampleTotals>> {
        let wanted: std::collections::HashSet<SampleId> = samples.iter().copied().collect();
        let totals = self.totals_where(|s| wanted.contains(&s))?;
        let mut seen = std::collections::HashSet::with_capacity(samples.len());
        Ok(samples
            .iter()
            .filter(|&&s| seen.insert(s))
            .filter_map(|&s| totals.get(&s).map(|t| totals_of(s, t)))
            .collect())
    }

    /// Totals of every sample the store has seen, by sample id.
    pub fn all_pass_rates(&self) -> Result<Vec<SampleTotals>> {
        let mut out: Vec<SampleTotals> = self
            .totals_where(|_| true)?
            .iter()
            .map(|(&s, t)| totals_of(s, t))
            .collect();
        out.sort_unstable_by_key(|t| t.sample);
        Ok(out)
    }

    // ---- summary ----

    fn run_counters(&self) -> Result<BTreeMap<RunIndex, RunCounters>> {
        let mut out = BTreeMap::new();
        let mut end = META_COUNTERS.to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        self.backend
            .scan(Table::Meta, META_COUNTERS, Some(&end), &mut |k, v| {
                let run = match &k[META_COUNTERS.len()..] {
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    _ => return Err(self.corrupt("counters key", format!("{k:?}"))),
                };
                let c =
                    self.decoded(RunCounters::decode(v), || format!("counters of run {run}"))?;
                out.insert(run, c);
                Ok(true)
            })?;
        Ok(out)
    }

    /// What the store holds: samples, observations, tier histogram, runs.
    pub fn summary(&self) -> Result<StoreSummary> {
        let totals = self.totals_where(|_| true)?;
        let samples = totals.len() as u64;
        let mut tier_histogram = BTreeMap::new();
        for t in totals.values() {
            *tier_histogram.entry(t.tier).or_insert(0) += 1;
        }
        let counters = self.run_counters()?;
        let entries: BTreeMap<RunIndex, RunEntry> =
            self.runs()?.into_iter().map(|e| (e.index, e)).collect();
        let mut indices: Vec<RunIndex> = counters.keys().chain(entries.keys()).copied().collect();
        indices.sort_unstable();
        indices.dedup();
        let runs = indices
            .into_iter()
            .map(|i| {
                let c = counters.get(&i).copied().unwrap_or_default();
                let e = entries.get(&i);
                RunSummary {
                    index: i,
                    run: e.map(|e| e.record.run.clone()).unwrap_or_default(),
                    status: e.map(|e| e.record.status.clone()),
                    observations: c.observations,
                    iterations: c.iterations,
                    last_iteration: c.last_iteration,
                    started_unix_ms: e.and_then(|e| e.started_unix_ms),
                    ended_unix_ms: e.and_then(|e| e.ended_unix_ms),
                    code_revision: e.and_then(|e| e.code_revision.clone()),
                }
            })
            .collect::<Vec<_>>();
        Ok(StoreSummary {
            backend: self.kind(),
            format_version: FORMAT_VERSION,
            samples,
            observations: counters.values().map(|c| c.observations).sum(),
            iterations: counters.values().map(|c| c.iterations).sum(),
            tier_histogram,
            runs,
            dataset: self.dataset_fingerprint()?,
            bytes_on_disk: self.bytes_on_disk()?,
        })
    }

    /// Total size of the store's files: blocks allocated on Unix (a preallocated or
    /// sparse file counts what it uses), the file length elsewhere.
    pub fn bytes_on_disk(&self) -> Result<u64> {
        dir_size(&self.path)
    }

    // ---- dataset fingerprint ----

    /// The dataset fingerprint bound to this store, if any.
    pub fn dataset_fingerprint(&self) -> Result<Option<String>> {
        Ok(self
            .backend
            .get(Table::Meta, META_DATASET)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Fails with [`StoreError::DatasetMismatch`] when the store is bound to another
    /// dataset; a store with no fingerprint passes.
    pub fn check_dataset(&self, fingerprint: &str) -> Result<()> {
        match self.dataset_fingerprint()? {
            Some(stored) if stored != fingerprint => Err(StoreError::DatasetMismatch {
                path: self.path_str(),
                stored,
                expected: fingerprint.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Binds the store to a dataset: records `fingerprint` if none is recorded,
    /// else checks it as [`check_dataset`](Self::check_dataset) does.
    pub fn bind_dataset(&self, fingerprint: &str) -> Result<()> {
        let path = self.path_str();
        self.backend
            .transact(&mut |t| match t.get(Table::Meta, META_DATASET)? {
                Some(v) if v != fingerprint.as_bytes() => Err(StoreError::DatasetMismatch {
                    path: path.clone(),
                    stored: String::from_utf8_lossy(&v).into_owned(),
                    expected: fingerprint.to_string(),
                }),
                Some(_) => Ok(()),
                None => t.put(Table::Meta, META_DATASET, fingerprint.as_bytes()),
            })
    }

    // ---- checkpoint index ----

    /// Records a checkpoint of a registered run, durably (replaces one at the same
    /// iteration).
    pub fn put_checkpoint(&self, run: &str, checkpoint: &CheckpointRecord) -> Result<()> {
        let index = self.run_index(run)?;
        let bytes = serde_json::to_vec(checkpoint).map_err(|e| Self::registry_err(run, e))?;
        let key = encoding::iteration_key(index, checkpoint.iteration);
        self.backend
            .transact(&mut |t| t.put(Table::Checkpoints, &key, &bytes))
    }

    /// The checkpoints of a run, by iteration.
    pub fn checkpoints(&self, run: &str) -> Result<Vec<CheckpointRecord>> {
        let index = self.run_index(run)?;
        let from = encoding::iteration_key(index, 0);
        let mut out = Vec::new();
        let mut visit = |_: &[u8], v: &[u8]| {
            out.push(
                serde_json::from_slice::<CheckpointRecord>(v)
                    .map_err(|e| Self::registry_err(run, format!("checkpoint: {e}")))?,
            );
            Ok(true)
        };
        match index.checked_add(1) {
            Some(next) => self.backend.scan(
                Table::Checkpoints,
                &from,
                Some(&encoding::iteration_key(next, 0)),
                &mut visit,
            )?,
            None => self
                .backend
                .scan(Table::Checkpoints, &from, None, &mut visit)?,
        }
        Ok(out)
    }

    /// Removes a checkpoint of a run from the index, durably (its files are the
    /// caller's); `false` when there was none at that iteration.
    pub fn remove_checkpoint(&self, run: &str, iteration: u32) -> Result<bool> {
        let index = self.run_index(run)?;
        let key = encoding::iteration_key(index, iteration);
        let mut found = false;
        self.backend.transact(&mut |t| {
            found = t.get(Table::Checkpoints, &key)?.is_some();
            if found {
                t.delete(Table::Checkpoints, &key)?;
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// The latest checkpoint of a run.
    pub fn latest_checkpoint(&self, run: &str) -> Result<Option<CheckpointRecord>> {
        Ok(self.checkpoints(run)?.pop())
    }
}

fn counters_key(run: RunIndex) -> Vec<u8> {
    [META_COUNTERS, &run.to_be_bytes()[..]].concat()
}

fn totals_of(sample: SampleId, t: &Totals) -> SampleTotals {
    SampleTotals {
        sample,
        attempts: t.attempts,
        successes: t.successes,
        observations: t.observations,
        tier: t.tier,
        first_run: t.first_run,
        first_iteration: t.first_iteration,
        last_run: t.last_run,
        last_iteration: t.last_iteration,
    }
}

fn write_marker(path: &Path, kind: BackendKind) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        action: "creating store directory",
        source,
    })?;
    write_durable(&path.join(MARKER_FILE), marker_text(kind).as_bytes())
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the old
/// file or the whole new one: a temporary file beside it, synced, renamed over it,
/// and the directory synced.
pub fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |p: &Path, action, source| StoreError::Io {
        path: p.to_path_buf(),
        action,
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, "creating file", e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io(&tmp, "writing file", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, "renaming file into place", e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}

/// Writes `bytes` to a new file at `path` and syncs it to disk (no rename: for
/// files inside a directory that is itself renamed into place once whole).
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |action, source| StoreError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let mut f = std::fs::File::create(path).map_err(|e| io("creating file", e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io("writing file", e))
}

/// Makes renames and creations in `dir` durable (best effort: not every platform
/// can open a directory).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn dir_size(path: &Path) -> Result<u64> {
    let io = |action, source| StoreError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let mut total = 0;
    for e in std::fs::read_dir(path).map_err(|e| io("listing store directory", e))? {
        let e = e.map_err(|e| io("listing store directory", e))?;
        let meta = e.metadata().map_err(|e| io("reading file size", e))?;
        total += if meta.is_dir() {
            dir_size(&e.path())?
        } else {
            file_bytes(&meta)
        };
    }
    Ok(total)
}

#[cfg(unix)]
fn file_bytes(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    (meta.blocks() * 512).min(meta.len().max(meta.blocks() * 512))
}

#[cfg(not(unix))]
fn file_bytes(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}
