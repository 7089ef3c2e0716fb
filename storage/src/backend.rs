//! The key-value engines under a [`Store`](crate::Store): a small trait and its two
//! implementations, sled and redb.
//!
//! A backend only stores bytes in a handful of ordered tables and applies a
//! transaction atomically and durably; every layout decision lives in the store
//! facade, so both backends hold byte-identical records.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use redb::ReadableTable;

use crate::error::{Result, StoreError};

/// Which key-value engine a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// sled 0.34: a log-structured tree, one directory.
    Sled,
    /// redb 2: a copy-on-write B-tree in one file (`store.redb`).
    Redb,
}

impl BackendKind {
    /// Every backend, for conformance tests and benchmarks.
    pub const ALL: [BackendKind; 2] = [BackendKind::Sled, BackendKind::Redb];

    /// The backend's name in the `FORMAT` marker and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sled => "sled",
            BackendKind::Redb => "redb",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is neither `sled` nor `redb`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown store backend {0:?} (expected sled or redb)")]
pub struct UnknownBackend(pub String);

impl FromStr for BackendKind {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, UnknownBackend> {
        match s {
            "sled" => Ok(BackendKind::Sled),
            "redb" => Ok(BackendKind::Redb),
            other => Err(UnknownBackend(other.chars().take(40).collect())),
        }
    }
}

/// The tables of a store. Keys sort bytewise within a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Store-wide values: format, dataset fingerprint, run indices, counters.
    Meta,
    /// One record per `(run, iteration)` with that iteration's observations.
    Iterations,
    /// Run registry: run id → JSON entry.
    Runs,
    /// Checkpoint index: `(run, iteration)` → JSON record.
    Checkpoints,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 4] = [
        Table::Meta,
        Table::Iterations,
        Table::Runs,
        Table::Checkpoints,
    ];

    fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Iterations => "iterations",
            Table::Runs => "runs",
            Table::Checkpoints => "checkpoints",
        }
    }

    fn prefix(self) -> u8 {
        match self {
            Table::Meta => b'm',
            Table::Iterations => b'i',
            Table::Runs => b'r',
            Table::Checkpoints => b'c',
        }
    }
}

/// Reads and writes inside one transaction; nothing is visible to others, or
/// durable, until the transaction commits.
pub trait Txn {
    /// The value under `key`, including this transaction's own writes.
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Sets `key` to `value`.
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()>;
    /// Removes `key`.
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<()>;
}

/// Visits `(key, value)` pairs in key order; returns `Ok(false)` to stop early.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

/// A key-value engine with atomic, durable transactions.
pub trait Backend: Send + Sync {
    /// Which engine this is.
    fn kind(&self) -> BackendKind;

    /// The value under `key`, as last committed.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Visits the committed pairs with `from <= key < to` (`to = None`: to the end)
    /// in key order, from one consistent snapshot where the engine has them (redb).
    fn scan(&self, table: Table, from: &[u8], to: Option<&[u8]>, visit: &mut Visit) -> Result<()>;

    /// Runs `body` in one transaction. When `body` returns `Ok`, every write is
    /// committed atomically and is on disk when this returns; when it returns `Err`
    /// (or the commit fails), none is. Transactions are serialised.
    fn transact(&self, body: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()>;
}

/// Opens (or creates) the engine's files in directory `dir`.
pub fn open_backend(kind: BackendKind, dir: &Path) -> Result<Box<dyn Backend>> {
    Ok(match kind {
        BackendKind::Sled => Box::new(guard(dir, kind, || SledBackend::open(dir))?),
        BackendKind::Redb => Box::new(guard(dir, kind, || RedbBackend::open(dir))?),
    })
}

/// Runs `f`, turning a panic inside the engine into [`StoreError::Corrupt`]: both
/// engines assert on some damaged files (redb on a truncated one) instead of
/// returning an error, and a damaged store must be an error, not a crash.
fn guard<T>(dir: &Path, kind: BackendKind, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(StoreError::Corrupt {
            path: dir.display().to_string(),
            record: format!("{kind} database file"),
            reason: format!("{kind} panicked: {message}"),
        })
    })
}

/// The sled engine: every table in one sled tree under a one-byte table prefix, so an
/// iteration's writes to several tables are one atomic `Batch`.
pub struct SledBackend {
    db: sled::Db,
    tree: sled::Tree,
    path: String,
    // Serialises read-modify-write transactions (sled batches are write-only).
    write: Mutex<()>,
}

fn prefixed(table: Table, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(table.prefix());
    k.extend_from_slice(key);
    k
}

/// How long opening a sled store waits for a lock held by a store of this process
/// that is closing.
const SLED_LOCK_WAIT_MS: u64 = 1000;

impl SledBackend {
    /// Opens (or creates) a sled database in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.display().to_string();
        let err = |source| StoreError::Sled {
            path: path.clone(),
            source,
        };
        // A store closed a moment ago in this process may still be locked while
        // sled's background threads wind down: wait for that briefly. A store that
        // stays locked (open in another process) is an error.
        let mut waited_ms = 0;
        let db = loop {
            match sled::Config::new().path(dir).open() {
                Err(sled::Error::Io(e))
                    if waited_ms < SLED_LOCK_WAIT_MS
                        && e.to_string().contains("could not acquire lock") =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    waited_ms += 10;
                }
                r => break r.map_err(err)?,
            }
        };
        let tree = db.open_tree("rlcs").map_err(err)?;
        Ok(SledBackend {
            db,
            tree,
            path,
            write: Mutex::new(()),
        })
    }

    fn err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }
}

struct SledTxn<'a> {
    backend: &'a SledBackend,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Txn for SledTxn<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let k = prefixed(table, key);
        if let Some(v) = self.pending.get(&k) {
            return Ok(v.clone());
        }
        let v = self.backend.tree.get(&k).map_err(|e| self.backend.err(e))?;
        Ok(v.map(|v| v.to_vec()))
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        self.pending
            .insert(prefixed(table, key), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<()> {
        self.pending.insert(prefixed(table, key), None);
        Ok(())
    }
}

impl Backend for SledBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sled
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let v = self
            .tree
            .get(prefixed(table, key))
            .map_err(|e| self.err(e))?;
        Ok(v.map(|v| v.to_vec()))
    }

    fn scan(&self, table: Table, from: &[u8], to: Option<&[u8]>, visit: &mut Visit) -> Result<()> {
        let start = prefixed(table, from);
        let end = match to {
            Some(to) => prefixed(table, to),
            None => vec![table.prefix() + 1],
        };
        if start >= end {
            return Ok(());
        }
        for kv in self.tree.range(start..end) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            if !visit(&k[1..], &v)? {
                break;
            }
        }
        Ok(())
    }

    fn transact(&self, body: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()> {
        // A poisoned lock only means another writer panicked; the tree is intact.
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut txn = SledTxn {
            backend: self,
            pending: BTreeMap::new(),
        };
        body(&mut txn)?;
        let mut batch = sled::Batch::default();
        for (k, v) in txn.pending {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.tree.apply_batch(batch).map_err(|e| self.err(e))?;
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// The redb engine: one redb table per [`Table`] in `DIR/store.redb`; every commit
/// is `Durability::Immediate` (fsynced before `commit` returns).
pub struct RedbBackend {
    db: redb::Database,
    path: String,
}

/// File name of the redb database inside the store directory.
pub const REDB_FILE: &str = "store.redb";

type RedbTable = redb::TableDefinition<'static, &'static [u8], &'static [u8]>;

fn redb_table(table: Table) -> RedbTable {
    redb::TableDefinition::new(table.name())
}

impl RedbBackend {
    /// Opens (or creates) `dir/store.redb`.
    pub fn open(dir: &Path) -> Result<Self> {
        let file: PathBuf = dir.join(REDB_FILE);
        let path = dir.display().to_string();
        let db = if file.exists() {
            redb::Database::open(&file)
        } else {
            redb::Database::create(&file)
        }
        .map_err(|e| StoreError::Redb {
            path: path.clone(),
            source: Box::new(e.into()),
        })?;
        let backend = RedbBackend { db, path };
        // Create the tables once, so readers never meet a missing one.
        let txn = backend.db.begin_write().map_err(|e| backend.err(e))?;
        for t in Table::ALL {
            txn.open_table(redb_table(t)).map_err(|e| backend.err(e))?;
        }
        txn.commit().map_err(|e| backend.err(e))?;
        Ok(backend)
    }

    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Redb {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }
}

struct RedbTxn<'t> {
    tables: Vec<redb::Table<'t, &'static [u8], &'static [u8]>>,
    path: &'t str,
}

impl<'t> RedbTxn<'t> {
    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Redb {
            path: self.path.to_string(),
            source: Box::new(e.into()),
        }
    }

    fn table(&mut self, t: Table) -> &mut redb::Table<'t, &'static [u8], &'static [u8]> {
        // Opened in `Table::ALL` order.
        &mut self.tables[t as usize]
    }
}

impl Txn for RedbTxn<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let r = self
            .table(table)
            .get(key)
            .map(|v| v.map(|g| g.value().to_vec()));
        r.map_err(|e| self.err(e))
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        let r = self.table(table).insert(key, value).map(|_| ());
        r.map_err(|e| self.err(e))
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<()> {
        let r = self.table(table).remove(key).map(|_| ());
        r.map_err(|e| self.err(e))
    }
}

impl Backend for RedbBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Redb
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        guard(Path::new(&self.path), BackendKind::Redb, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let t = txn.open_table(redb_table(table)).map_err(|e| self.err(e))?;
            let v = t.get(key).map_err(|e| self.err(e))?;
            Ok(v.map(|g| g.value().to_vec()))
        })
    }

    fn scan(&self, table: Table, from: &[u8], to: Option<&[u8]>, visit: &mut Visit) -> Result<()> {
        guard(Path::new(&self.path), BackendKind::Redb, || {
            self.scan_unguarded(table, from, to, visit)
        })
    }

    fn transact(&self, body: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()> {
        guard(Path::new(&self.path), BackendKind::Redb, || {
            self.transact_unguarded(body)
        })
    }
}

impl RedbBackend {
    fn scan_unguarded(
        &self,
        table: Table,
        from: &[u8],
        to: Option<&[u8]>,
        visit: &mut Visit,
    ) -> Result<()> {
        if to.is_some_and(|to| from >= to) {
            return Ok(());
        }
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(redb_table(table)).map_err(|e| self.err(e))?;
        let range = match to {
            Some(to) => t.range::<&[u8]>(from..to),
            None => t.range::<&[u8]>(from..),
        }
        .map_err(|e| self.err(e))?;
        for kv in range {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            if !visit(k.value(), v.value())? {
                break;
            }
        }
        Ok(())
    }

    fn transact_unguarded(&self, body: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(redb::Durability::Immediate);
        let outcome = {
            let mut tables = Vec::with_capacity(Table::ALL.len());
            for t in Table::ALL {
                tables.push(txn.open_table(redb_table(t)).map_err(|e| self.err(e))?);
            }
            let mut t = RedbTxn {
                tables,
                path: &self.path,
            };
            body(&mut t)
        };
        match outcome {
            Ok(()) => txn.commit().map_err(|e| self.err(e)),
            Err(e) => {
                // Nothing of the body's writes survives; an abort error adds nothing.
                let _ = txn.abort();
                Err(e)
            }
        }
    }
}
