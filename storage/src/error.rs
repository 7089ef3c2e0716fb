//! The store's typed errors. Every message names the store's path and the offending
//! record or value, so a failure in a long run can be traced to its cause.

use std::path::PathBuf;

use rlcs_curriculum::SampleId;

use crate::BackendKind;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file of the store could not be read or written.
    #[error("store at {path}: {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The sled database failed.
    #[error("store at {path}: sled: {source}")]
    Sled {
        /// The store's directory.
        path: String,
        /// The underlying error.
        #[source]
        source: sled::Error,
    },
    /// The redb database failed (this includes a corrupt or truncated database file).
    #[error("store at {path}: redb: {source}")]
    Redb {
        /// The store's directory.
        path: String,
        /// The underlying error (boxed: redb's error is large).
        #[source]
        source: Box<redb::Error>,
    },
    /// The `FORMAT` marker file does not name a known store format.
    #[error("store at {path}: FORMAT marker {content:?} is not `rlcs-store v<N> sled|redb`")]
    UnknownMarker {
        /// The store's directory.
        path: PathBuf,
        /// What the marker holds (at most 80 characters).
        content: String,
    },
    /// The store was written by a newer version of rlcs.
    #[error("store at {path}: format version {found}; this build reads version {supported}")]
    NewerFormat {
        /// The store's directory.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The directory is not empty but holds no `FORMAT` marker.
    #[error("store at {path}: not an rlcs store ({reason})")]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// `open_with` asked for one backend but the store was created with another.
    #[error("store at {path} uses the {found} backend, not {requested}")]
    BackendMismatch {
        /// The store's directory.
        path: PathBuf,
        /// The backend asked for.
        requested: BackendKind,
        /// The backend the store was created with.
        found: BackendKind,
    },
    /// A record could not be decoded.
    #[error("store at {path}: {record} is corrupt: {reason}")]
    Corrupt {
        /// The store's directory.
        path: String,
        /// Which record (e.g. `history of run 1 iteration 7`).
        record: String,
        /// What is wrong.
        reason: String,
    },
    /// A record was written with a newer encoding by a newer version of rlcs.
    #[error("store at {path}: {record} has encoding version {found}; this build reads version {supported}")]
    NewerEncoding {
        /// The store's directory.
        path: String,
        /// Which record.
        record: String,
        /// The version found.
        found: u8,
        /// The newest version this build reads.
        supported: u8,
    },
    /// A registry or checkpoint entry could not be encoded or decoded.
    #[error("run registry entry `{run}`: {reason}")]
    Registry {
        /// The run id.
        run: String,
        /// What is wrong.
        reason: String,
    },
    /// A run id that the registry does not hold.
    #[error("store at {path}: no run `{run}` in the registry")]
    UnknownRun {
        /// The store's directory.
        path: String,
        /// The run id asked for.
        run: String,
    },
    /// The registry is full (run indices are 16 bits).
    #[error("store at {path}: registry full, cannot add run `{run}`")]
    TooManyRuns {
        /// The store's directory.
        path: String,
        /// The run that did not fit.
        run: String,
    },
    /// An observation that cannot be stored; the whole batch was rejected.
    #[error("observation of sample {sample:#018x} at iteration {iteration}: {reason}")]
    InvalidObservation {
        /// The sample.
        sample: SampleId,
        /// Its iteration.
        iteration: u32,
        /// What is wrong.
        reason: String,
    },
    /// The store holds histories of another dataset.
    #[error("store at {path} holds dataset {stored:?}, not {expected:?}")]
    DatasetMismatch {
        /// The store's directory.
        path: String,
        /// The fingerprint recorded in the store.
        stored: String,
        /// The fingerprint asked for.
        expected: String,
    },
    /// A checkpoint file is missing or its hash differs from the index.
    #[error("checkpoint of run `{run}` at iteration {iteration}: file {file}: {reason}")]
    Checkpoint {
        /// The run.
        run: String,
        /// The checkpoint's iteration.
        iteration: u32,
        /// The file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
