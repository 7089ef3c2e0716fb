//! `rlcs export`: every observation of a store as one row, for pandas or polars.
//!
//! Rows are streamed from [`Store::for_each_observation`] in store order (run index,
//! iteration, sample): JSON lines are written as they are read, and Parquet is
//! written in row groups of at most [`ParquetOptions::row_group_rows`] rows, so
//! memory stays bounded however large the store is.
//!
//! Columns: `run` (name), `iteration`, `sample_id`, `policy_version`, `rollouts`,
//! `successes`, `mean_reward`, `tier_after`. In Parquet, unsigned integers carry
//! their unsigned logical types (`UINT_32`, `UINT_64`, `UINT_8`), so readers get
//! `uint32`/`uint64`/`uint8` columns.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, FloatType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use rlcs_storage::{RunIndex, RunObservation, Store, StoreError};
use serde::Serialize;

use crate::inspect::{run_name, run_names};

/// The Parquet schema of an export.
pub const PARQUET_SCHEMA: &str = "message observation {
  REQUIRED BYTE_ARRAY run (UTF8);
  REQUIRED INT32 iteration (UINT_32);
  REQUIRED INT64 sample_id (UINT_64);
  REQUIRED INT64 policy_version (UINT_64);
  REQUIRED INT32 rollouts (UINT_32);
  REQUIRED INT32 successes (UINT_32);
  REQUIRED FLOAT mean_reward;
  REQUIRED INT32 tier_after (UINT_8);
}";

/// Errors of an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet writer failed.
    #[error("writing Parquet file {path}: {source}")]
    Parquet {
        /// The output file.
        path: PathBuf,
        /// The Parquet error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A row group size of zero was asked for.
    #[error("row group size must be at least 1 row")]
    ZeroRowGroup,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One exported row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportRow<'a> {
    /// Run name (`-` for observations with no run registered).
    pub run: &'a str,
    /// Iteration.
    pub iteration: u32,
    /// The sample.
    pub sample_id: u64,
    /// Policy version of the rollouts.
    pub policy_version: u64,
    /// Rollouts.
    pub rollouts: u32,
    /// Correct rollouts.
    pub successes: u32,
    /// Mean reward.
    pub mean_reward: f32,
    /// Tier after this observation.
    pub tier_after: u8,
}

/// Run names by index, looked up once, so each row borrows its run's name.
struct Runs(BTreeMap<RunIndex, String>);

impl Runs {
    fn of(store: &Store) -> Result<Self, StoreError> {
        Ok(Runs(run_names(store)?))
    }

    fn name(&self, index: RunIndex) -> std::borrow::Cow<'_, str> {
        match self.0.get(&index) {
            Some(n) => std::borrow::Cow::Borrowed(n.as_str()),
            None => std::borrow::Cow::Owned(run_name(&self.0, index)),
        }
    }
}

fn row<'a>(o: &RunObservation, name: &'a str) -> ExportRow<'a> {
    ExportRow {
        run: name,
        iteration: o.observation.iteration,
        sample_id: o.observation.sample,
        policy_version: o.observation.policy_version,
        rollouts: o.observation.rollouts,
        successes: o.observation.successes,
        mean_reward: o.observation.mean_reward,
        tier_after: o.observation.tier_after,
    }
}

/// Writes every observation of `store` as one JSON object per line to `out`
/// (`path` names it in errors) and returns the number of rows.
pub fn export_jsonl(store: &Store, out: impl Write, path: &Path) -> Result<u64, ExportError> {
    let runs = Runs::of(store)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let write_err = |source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut rows = 0u64;
    store.for_each_observation(|o| {
        let name = runs.name(o.run);
        serde_json::to_writer(&mut out, &row(o, &name))
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        out.write_all(b"\n").map_err(write_err)?;
        rows += 1;
        Ok::<_, ExportError>(())
    })?;
    out.flush().map_err(write_err)?;
    Ok(rows)
}

/// Options of a Parquet export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetOptions {
    /// Rows per row group (and the most rows held in memory).
    pub row_group_rows: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            row_group_rows: 1 << 20,
        }
    }
}

/// Column buffers of one row group.
#[derive(Default)]
struct Columns {
    run: Vec<ByteArray>,
    iteration: Vec<i32>,
    sample_id: Vec<i64>,
    policy_version: Vec<i64>,
    rollouts: Vec<i32>,
    successes: Vec<i32>,
    mean_reward: Vec<f32>,
    tier_after: Vec<i32>,
}

impl Columns {
    fn len(&self) -> usize {
        self.iteration.len()
    }

    // Unsigned values are stored bit-for-bit in the signed physical types; the
    // UINT_* logical types tell readers to read them back as unsigned.
    fn push(&mut self, run: ByteArray, o: &RunObservation) {
        let o = &o.observation;
        self.run.push(run);
        self.iteration.push(o.iteration as i32);
        self.sample_id.push(o.sample as i64);
        self.policy_version.push(o.policy_version as i64);
        self.rollouts.push(o.rollouts as i32);
        self.successes.push(o.successes as i32);
        self.mean_reward.push(o.mean_reward);
        self.tier_after.push(i32::from(o.tier_after));
    }

    fn clear(&mut self) {
        self.run.clear();
        self.iteration.clear();
        self.sample_id.clear();
        self.policy_version.clear();
        self.rollouts.clear();
        self.successes.clear();
        self.mean_reward.clear();
        self.tier_after.clear();
    }

    fn write<W: Write + Send>(
        &self,
        writer: &mut SerializedFileWriter<W>,
    ) -> parquet::errors::Result<()> {
        let mut group = writer.next_row_group()?;
        let mut column = 0;
        while let Some(mut c) = group.next_column()? {
            match column {
                0 => c
                    .typed::<ByteArrayType>()
                    .write_batch(&self.run, None, None)?,
                1 => c
                    .typed::<Int32Type>()
                    .write_batch(&self.iteration, None, None)?,
                2 => c
                    .typed::<Int64Type>()
                    .write_batch(&self.sample_id, None, None)?,
                3 => c
                    .typed::<Int64Type>()
                    .write_batch(&self.policy_version, None, None)?,
                4 => c
                    .typed::<Int32Type>()
                    .write_batch(&self.rollouts, None, None)?,
                5 => c
                    .typed::<Int32Type>()
                    .write_batch(&self.successes, None, None)?,
                6 => c
                    .typed::<FloatType>()
                    .write_batch(&self.mean_reward, None, None)?,
                _ => c
                    .typed::<Int32Type>()
                    .write_batch(&self.tier_after, None, None)?,
            };
            c.close()?;
            column += 1;
        }
        group.close()?;
        Ok(())
    }
}

/// Writes every observation of `store` to the Parquet file `path` (uncompressed,
/// dictionary-encoded where it pays) and returns the number of rows.
pub fn export_parquet(
    store: &Store,
    path: &Path,
    options: ParquetOptions,
) -> Result<u64, ExportError> {
    if options.row_group_rows == 0 {
        return Err(ExportError::ZeroRowGroup);
    }
    let pq = |source| ExportError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let runs = Runs::of(store)?;
    let schema = Arc::new(parse_message_type(PARQUET_SCHEMA).map_err(pq)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .set_max_row_group_row_count(Some(options.row_group_rows))
            .set_created_by(format!("rlcs {}", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    let file = std::fs::File::create(path).map_err(|source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    let mut writer = SerializedFileWriter::new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        schema,
        props,
    )
    .map_err(pq)?;
    let names: BTreeMap<RunIndex, ByteArray> = runs
        .0
        .iter()
        .map(|(&i, n)| (i, ByteArray::from(n.as_str())))
        .collect();
    let mut columns = Columns::default();
    let mut rows = 0u64;
    store.for_each_observation(|o| {
        let name = match names.get(&o.run) {
            Some(n) => n.clone(),
            None => ByteArray::from(runs.name(o.run).as_ref()),
        };
        columns.push(name, o);
        rows += 1;
        if columns.len() >= options.row_group_rows {
            columns.write(&mut writer).map_err(pq)?;
            columns.clear();
        }
        Ok::<_, ExportError>(())
    })?;
    if columns.len() > 0 || rows == 0 {
        columns.write(&mut writer).map_err(pq)?;
    }
    let inner = writer.into_inner().map_err(pq)?;
    let file = inner.into_inner().map_err(|e| ExportError::Write {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(|source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    use rlcs_curriculum::Observation;
    use rlcs_storage::{RunRecord, RunStatus};

    fn store_with(dir: &Path, iterations: u32, per_iteration: u64) -> Store {
        let store = Store::open(&dir.join("store")).unwrap();
        store
            .put_run(&RunRecord {
                run: "r1".into(),
                seed: 1,
                config: serde_json::json!({}),
                status: RunStatus::Running,
                last_iteration: 0,
            })
            .unwrap();
        for it in 1..=iterations {
            let obs: Vec<Observation> = (0..per_iteration)
                .map(|s| Observation {
                    sample: s * 0x1_0000_0001 + u64::MAX / 2,
                    iteration: it,
                    policy_version: u64::from(it) + 3,
                    rollouts: 8,
                    successes: (s % 9) as u32,
                    mean_reward: (s % 9) as f32 / 8.0,
                    tier_after: (s % 5) as u8,
                })
                .collect();
            store.append_iteration(&obs).unwrap();
        }
        store
    }

    #[test]
    fn jsonl_has_one_row_per_observation() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 3, 10);
        let mut out = Vec::new();
        let n = export_jsonl(&store, &mut out, Path::new("mem")).unwrap();
        assert_eq!(n, 30);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 30);
        assert_eq!(lines[0]["run"], "r1");
        assert_eq!(lines[0]["sample_id"], u64::MAX / 2);
        assert_eq!(lines[29]["iteration"], 3);
    }

    #[test]
    fn parquet_reads_back_with_unsigned_values_over_several_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 5, 7);
        let path = dir.path().join("out.parquet");
        let n = export_parquet(&store, &path, ParquetOptions { row_group_rows: 8 }).unwrap();
        assert_eq!(n, 35);
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), 35);
        assert_eq!(meta.num_row_groups(), 5);
        let mut expected = Vec::new();
        store
            .for_each_observation(|o| {
                expected.push(o.observation.clone());
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let rows: Vec<_> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), 35);
        for (row, o) in rows.iter().zip(&expected) {
            let cols: Vec<(&String, &Field)> = row.get_column_iter().collect();
            assert_eq!(cols[0], (&"run".to_string(), &Field::Str("r1".into())));
            assert_eq!(cols[1].1, &Field::UInt(o.iteration));
            assert_eq!(cols[2].1, &Field::ULong(o.sample));
            assert_eq!(cols[3].1, &Field::ULong(o.policy_version));
            assert_eq!(cols[4].1, &Field::UInt(o.rollouts));
            assert_eq!(cols[5].1, &Field::UInt(o.successes));
            assert_eq!(cols[6].1, &Field::Float(o.mean_reward));
            assert_eq!(cols[7].1, &Field::UByte(o.tier_after));
        }
    }

    #[test]
    fn an_empty_store_exports_an_empty_but_valid_parquet_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 0, 0);
        let path = dir.path().join("empty.parquet");
        assert_eq!(
            export_parquet(&store, &path, ParquetOptions::default()).unwrap(),
            0
        );
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
    }
}
