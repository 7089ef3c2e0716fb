//! Checkpoints of a run: everything needed to continue it exactly.
//!
//! After an iteration (and once before the first) the driver asks the curriculum
//! actor and the learner to write their whole state, writes the caller's progress
//! (records, evaluations, counters), hashes the files and records them in the
//! store's checkpoint index. The layout under the run directory:
//!
//! ```text
//! checkpoints/iter-000012/curriculum.bin   statistics, sampler (RNG, indexes), ratio EMA
//! checkpoints/iter-000012/policy.bin       Policy::save_state (weights, optimiser)
//! checkpoints/iter-000012/progress.json    the caller's progress (report so far)
//! ```
//!
//! A checkpoint is built in a hidden `.iter-NNNNNN.partial` directory and renamed
//! into place, then indexed; a kill at any moment leaves the index pointing at a
//! whole, hash-checked checkpoint (or at none). Only the newest `keep` are kept.

use std::path::{Path, PathBuf};

use rlcs_curriculum::CurriculumState;
use rlcs_storage::{sync_dir, write_synced, CheckpointRecord};

use crate::driver::RlDriver;
use crate::singletons::{CurriculumMsg, LearnerMsg, StorageMsg};
use crate::{ActorsError, RunEvent};

/// Directory of checkpoints under the run directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The curriculum's state (bincode of [`CurriculumState`]).
pub const CURRICULUM_FILE: &str = "curriculum.bin";
/// The policy's training state.
pub const POLICY_FILE: &str = "policy.bin";
/// The caller's progress.
pub const PROGRESS_FILE: &str = "progress.json";

/// Path of the checkpoint after `iteration`, relative to the run directory.
pub fn checkpoint_dir(iteration: u32) -> String {
    format!("{CHECKPOINTS_DIR}/iter-{iteration:06}")
}

/// Where and how a run keeps checkpoints.
#[derive(Debug, Clone)]
pub struct Checkpointing {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The run's id in the store's registry.
    pub run: String,
    /// How many of the newest checkpoints to keep (at least 1).
    pub keep: usize,
}

/// A checkpoint read back and checked against the index.
#[derive(Debug)]
pub struct LoadedCheckpoint {
    /// Its index entry.
    pub record: CheckpointRecord,
    /// The curriculum's state.
    pub curriculum: CurriculumState,
    /// The policy's training state.
    pub policy: Vec<u8>,
    /// The caller's progress, as written.
    pub progress: Vec<u8>,
}

fn ck_err(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> ActorsError {
    ActorsError::Checkpoint {
        path: path.into(),
        reason: reason.to_string(),
    }
}

impl RlDriver<'_> {
    /// Writes the checkpoint after `iteration` with `progress` (the caller's own
    /// state, opaque here), indexes it durably, publishes
    /// [`RunEvent::Checkpointed`] and prunes checkpoints beyond `ck.keep`.
    pub async fn checkpoint(
        &self,
        ck: &Checkpointing,
        iteration: u32,
        progress: &[u8],
    ) -> Result<CheckpointRecord, ActorsError> {
        let rel = checkpoint_dir(iteration);
        let root = ck.run_dir.join(CHECKPOINTS_DIR);
        let partial = root.join(format!(".iter-{iteration:06}.partial"));
        let fresh_dir = |d: &Path| -> Result<(), ActorsError> {
            if d.exists() {
                std::fs::remove_dir_all(d).map_err(|e| ck_err(d, e))?;
            }
            std::fs::create_dir_all(d).map_err(|e| ck_err(d, e))
        };
        fresh_dir(&partial)?;
        let curriculum_bytes = self
            .call(&self.graph.curriculum, "curriculum", |reply| {
                CurriculumMsg::SaveState {
                    path: partial.join(CURRICULUM_FILE),
                    reply,
                }
            })
            .await?
            .map_err(|reason| ck_err(partial.join(CURRICULUM_FILE), reason))?;
        let policy_bytes = self
            .call_learner(|reply| LearnerMsg::SaveState {
                path: partial.join(POLICY_FILE),
                reply,
            })
            .await?
            .map_err(|reason| ck_err(partial.join(POLICY_FILE), reason))?;
        write_synced(&partial.join(PROGRESS_FILE), progress)
            .map_err(|e| ck_err(partial.join(PROGRESS_FILE), e))?;
        sync_dir(&partial);
        let target = ck.run_dir.join(&rel);
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(|e| ck_err(&target, e))?;
        }
        std::fs::rename(&partial, &target).map_err(|e| ck_err(&target, e))?;
        sync_dir(&root);
        let files: Vec<String> = [CURRICULUM_FILE, POLICY_FILE, PROGRESS_FILE]
            .iter()
            .map(|f| format!("{rel}/{f}"))
            .collect();
        let run_dir = ck.run_dir.clone();
        let record = tokio::task::spawn_blocking(move || {
            let names: Vec<&str> = files.iter().map(String::as_str).collect();
            CheckpointRecord::of_files(&run_dir, iteration, &names)
        })
        .await
        .map_err(|e| ck_err(&target, e))?
        .map_err(|e| ck_err(&target, e))?;
        // The event is in the log before the index names the checkpoint, so a resumed
        // run always finds the line to cut its event log after.
        self.publish(RunEvent::Checkpointed {
            iteration,
            bytes: curriculum_bytes + policy_bytes + progress.len() as u64,
        });
        self.graph.flush_events().await;
        self.call(&self.graph.storage, "storage", |reply| {
            StorageMsg::PutCheckpoint {
                run: ck.run.clone(),
                record: Box::new(record.clone()),
                reply,
            }
        })
        .await?
        .map_err(|reason| ck_err(&target, reason))?;
        self.prune(ck, iteration).await?;
        Ok(record)
    }

    /// Drops checkpoints older than the newest `ck.keep` (index first, then files).
    async fn prune(&self, ck: &Checkpointing, newest: u32) -> Result<(), ActorsError> {
        let root = ck.run_dir.join(CHECKPOINTS_DIR);
        let mut older: Vec<u32> = std::fs::read_dir(&root)
            .map_err(|e| ck_err(&root, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("iter-")?.parse::<u32>().ok()
            })
            .filter(|&it| it < newest)
            .collect();
        older.sort_unstable();
        let excess = (older.len() + 1).saturating_sub(ck.keep.max(1));
        let doomed: Vec<u32> = older.into_iter().take(excess).collect();
        if doomed.is_empty() {
            return Ok(());
        }
        self.call(&self.graph.storage, "storage", |reply| {
            StorageMsg::RemoveCheckpoints {
                run: ck.run.clone(),
                iterations: doomed.clone(),
                reply,
            }
        })
        .await?
        .map_err(|reason| ck_err(&root, reason))?;
        for it in doomed {
            let d = ck.run_dir.join(checkpoint_dir(it));
            std::fs::remove_dir_all(&d).map_err(|e| ck_err(&d, e))?;
        }
        Ok(())
    }
}

/// Reads the checkpoint `record` of `run` under `run_dir`: every file must match the
/// size and SHA-256 the index holds, and decode.
pub fn load_checkpoint(
    run_dir: &Path,
    run: &str,
    record: CheckpointRecord,
) -> Result<LoadedCheckpoint, ActorsError> {
    let dir = run_dir.join(checkpoint_dir(record.iteration));
    record
        .verify(run_dir, run)
        .map_err(|e| ck_err(&dir, format!("{e}; the checkpoint was changed or damaged")))?;
    let read = |name: &str| -> Result<Vec<u8>, ActorsError> {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| ck_err(p, e))
    };
    let curriculum_bytes = read(CURRICULUM_FILE)?;
    let curriculum = CurriculumState::decode(&curriculum_bytes)
        .map_err(|e| ck_err(dir.join(CURRICULUM_FILE), e))?;
    Ok(LoadedCheckpoint {
        curriculum,
        policy: read(POLICY_FILE)?,
        progress: read(PROGRESS_FILE)?,
        record,
    })
}
