//! # rlcs-storage
//!
//! The durable side of a run, in a sled database at `RUN_DIR/store`:
//!
//! - per-sample difficulty histories: every [`Observation`] appended under its
//!   sample, compactly encoded and versioned;
//! - the run registry: resolved config, seed, status.
//!
//! Writes of one iteration go in one atomic batch, flushed before the iteration
//! counts as done.
#![deny(missing_docs)]

use std::path::Path;

use rlcs_curriculum::{Observation, SampleId};
use serde::{Deserialize, Serialize};

/// Encoding version of history records; bumped on any layout change.
pub const HISTORY_ENCODING: u8 = 1;
const RECORD_LEN: usize = 1 + 4 + 8 + 4 + 4 + 4 + 1;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or written.
    #[error("store at {path}: {source}")]
    Sled {
        /// The store's directory.
        path: String,
        /// The underlying error.
        #[source]
        source: sled::Error,
    },
    /// A record could not be decoded.
    #[error("history record of sample {sample:#018x} is corrupt: {reason}")]
    Corrupt {
        /// The sample.
        sample: SampleId,
        /// What is wrong.
        reason: String,
    },
    /// A record was written by a newer version of rlcs.
    #[error("history record of sample {sample:#018x} has encoding version {found}; this build reads version {HISTORY_ENCODING}")]
    NewerEncoding {
        /// The sample.
        sample: SampleId,
        /// The version found.
        found: u8,
    },
    /// A registry entry could not be encoded or decoded.
    #[error("run registry entry `{run}`: {reason}")]
    Registry {
        /// The run id.
        run: String,
        /// What is wrong.
        reason: String,
    },
}

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

/// A run registry entry.
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

/// The sled-backed store of one run.
pub struct Store {
    db: sled::Db,
    history: sled::Tree,
    runs: sled::Tree,
    path: String,
}

impl Store {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let p = path.display().to_string();
        let err = |source| StoreError::Sled {
            path: p.clone(),
            source,
        };
        let db = sled::Config::new().path(path).open().map_err(err)?;
        let history = db.open_tree("history").map_err(err)?;
        let runs = db.open_tree("runs").map_err(err)?;
        Ok(Store {
            db,
            history,
            runs,
            path: p,
        })
    }

    fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends one iteration's observations in one atomic batch and flushes it to disk.
    pub fn append_iteration(&self, observations: &[Observation]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for o in observations {
            batch.insert(&history_key(o.sample, o.iteration)[..], &encode(o)[..]);
        }
        self.history
            .apply_batch(batch)
            .map_err(|e| self.sled_err(e))?;
        self.db.flush().map_err(|e| self.sled_err(e))?;
        Ok(())
    }

    /// The difficulty history of one sample, oldest first.
    pub fn history(&self, sample: SampleId) -> Result<Vec<Observation>, StoreError> {
        self.history
            .scan_prefix(sample.to_be_bytes())
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.sled_err(e))?;
                decode(&k, &v)
            })
            .collect()
    }

    /// Number of history records across all samples.
    pub fn observation_count(&self) -> usize {
        self.history.len()
    }

    /// Every history record, ordered by sample then iteration.
    pub fn all_observations(&self) -> Result<Vec<Observation>, StoreError> {
        self.history
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.sled_err(e))?;
                decode(&k, &v)
            })
            .collect()
    }

    /// Writes or replaces a run registry entry, durably.
    pub fn put_run(&self, record: &RunRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Registry {
            run: record.run.clone(),
            reason: e.to_string(),
        })?;
        self.runs
            .insert(record.run.as_bytes(), bytes)
            .map_err(|e| self.sled_err(e))?;
        self.db.flush().map_err(|e| self.sled_err(e))?;
        Ok(())
    }

    /// The registry entry of a run.
    pub fn run(&self, run: &str) -> Result<Option<RunRecord>, StoreError> {
        match self
            .runs
            .get(run.as_bytes())
            .map_err(|e| self.sled_err(e))?
        {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Registry {
                    run: run.to_string(),
                    reason: e.to_string(),
                }),
        }
    }
}

fn history_key(sample: SampleId, iteration: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&sample.to_be_bytes());
    k[8..].copy_from_slice(&iteration.to_be_bytes());
    k
}

fn encode(o: &Observation) -> [u8; RECORD_LEN] {
    let mut v = [0u8; RECORD_LEN];
    v[0] = HISTORY_ENCODING;
    v[1..5].copy_from_slice(&o.iteration.to_le_bytes());
    v[5..13].copy_from_slice(&o.policy_version.to_le_bytes());
    v[13..17].copy_from_slice(&o.rollouts.to_le_bytes());
    v[17..21].copy_from_slice(&o.successes.to_le_bytes());
    v[21..25].copy_from_slice(&o.mean_reward.to_le_bytes());
    v[25] = o.tier_after;
    v
}

fn decode(key: &[u8], v: &[u8]) -> Result<Observation, StoreError> {
    let sample = key
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            sample: 0,
            reason: format!("key of {} bytes", key.len()),
        })?;
    let corrupt = |reason: String| StoreError::Corrupt { sample, reason };
    match v.first() {
        None => return Err(corrupt("empty record".into())),
        Some(&ver) if ver > HISTORY_ENCODING => {
            return Err(StoreError::NewerEncoding { sample, found: ver })
        }
        Some(&ver) if ver != HISTORY_ENCODING => {
            return Err(corrupt(format!("unknown encoding version {ver}")))
        }
        _ => {}
    }
    if v.len() != RECORD_LEN {
        return Err(corrupt(format!(
            "record of {} bytes, expected {RECORD_LEN}",
            v.len()
        )));
    }
    let u32_at = |i: usize| u32::from_le_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
    let mut pv = [0u8; 8];
    pv.copy_from_slice(&v[5..13]);
    Ok(Observation {
        sample,
        iteration: u32_at(1),
        policy_version: u64::from_le_bytes(pv),
        rollouts: u32_at(13),
        successes: u32_at(17),
        mean_reward: f32::from_bits(u32_at(21)),
        tier_after: v[25],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(sample: SampleId, iteration: u32) -> Observation {
        Observation {
            sample,
            iteration,
            policy_version: iteration as u64,
            rollouts: 8,
            successes: 3,
            mean_reward: 0.375,
            tier_after: 2,
        }
    }

    #[test]
    fn histories_round_trip_in_order_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.append_iteration(&[obs(7, 2), obs(9, 2)]).unwrap();
            s.append_iteration(&[obs(7, 1), obs(7, 3)]).unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.observation_count(), 4);
        let h = s.history(7).unwrap();
        assert_eq!(
            h.iter().map(|o| o.iteration).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(h[0], obs(7, 1));
        assert_eq!(s.history(8).unwrap(), vec![]);
        assert_eq!(s.all_observations().unwrap().len(), 4);
    }

    #[test]
    fn newer_and_corrupt_records_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut rec = encode(&obs(1, 1));
        rec[0] = HISTORY_ENCODING + 1;
        s.history.insert(history_key(1, 1), &rec[..]).unwrap();
        assert!(
            matches!(s.history(1), Err(StoreError::NewerEncoding { found, .. }) if found == HISTORY_ENCODING + 1)
        );
        s.history
            .insert(history_key(2, 1), &[HISTORY_ENCODING, 1, 2][..])
            .unwrap();
        let err = s.history(2).unwrap_err().to_string();
        assert!(err.contains("record of 3 bytes"), "{err}");
    }

    #[test]
    fn run_registry_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let r = RunRecord {
            run: "r1".into(),
            seed: 3,
            config: serde_json::json!({"a": 1}),
            status: RunStatus::Running,
            last_iteration: 0,
        };
        s.put_run(&r).unwrap();
        assert_eq!(s.run("r1").unwrap(), Some(r));
        assert_eq!(s.run("r2").unwrap(), None);
    }
}
