//! # rlcs-experiments
//!
//! Experiment files, the run driver and reports. [`run_experiment`] reads a TOML
//! experiment, builds the domain pools, opens the store, starts the actor graph,
//! evaluates, runs the RL iterations, evaluates again, and writes `report.json`,
//! `report.md` and `events.jsonl` into the run directory.
#![deny(missing_docs)]

pub mod bench;
pub mod compare;
pub mod config;
pub mod data;
pub mod export;
pub mod inspect;
pub mod plot;
pub mod report;
pub mod score;
pub mod spans;
pub mod stages;
pub mod study;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rlcs_actors::bus::SinkFn;
use rlcs_actors::checkpoint::{load_checkpoint, Checkpointing, LoadedCheckpoint};
pub use rlcs_actors::cluster;
use rlcs_actors::driver::{EvalResult, IterationRecord, RlDriver, RlPlan};
use rlcs_actors::graph::{GraphSpec, PoolSizes, RunGraph};
use rlcs_actors::pools::{FaultPlan, PolicyBuilder};
use rlcs_actors::supervised::SupervisedKind;
use rlcs_actors::telemetry::Telemetry;
pub use rlcs_actors::trace;
use rlcs_actors::{ActorsError, RunEvent};
use rlcs_curriculum::{Curriculum, PoolEntry};
use rlcs_domains::{build_pool, domain_by_name, mix_seed, stable_hash, PoolSpec, Sample, SampleId};
use rlcs_model::sim::SimulatedLearner;
use rlcs_model::Policy;
use rlcs_storage::{RunRecord, RunStatus, Store};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

pub use config::{ConfigError, ExperimentConfig};
pub use report::Report;
pub use rlcs_curriculum::SamplerKind;
pub use rlcs_rewards::Registry;

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The experiment file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A configured verifier could not start.
    #[error("{0}")]
    Verifier(String),
    /// A domain could not build its pool.
    #[error("building the pool of domain `{domain}`: {reason}")]
    Pool {
        /// The domain.
        domain: String,
        /// Why.
        reason: String,
    },
    /// The run directory is unusable.
    #[error("run directory {path}: {reason}")]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing an output file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] rlcs_storage::StoreError),
    /// The curriculum rejected its pool or config.
    #[error(transparent)]
    Curriculum(#[from] rlcs_curriculum::CurriculumError),
    /// The policy could not be built.
    #[error(transparent)]
    Model(#[from] rlcs_model::ModelError),
    /// The actor graph failed.
    #[error(transparent)]
    Actors(#[from] ActorsError),
    /// `--resume` cannot continue this run directory with this config.
    #[error("cannot resume {path}: {reason}")]
    Resume {
        /// The run directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Stage weights (`policy.init_from`, a stage's hand-off) cannot be used.
    #[error("weights {path}: {reason}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An earlier run named by `grade.from_run` cannot give offline tiers.
    #[error("reading offline tiers from {path}: {reason}")]
    Offline {
        /// The run directory or store.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The dashboard cannot listen on its address.
    #[error("serving the dashboard on {addr}: {source}")]
    Serve {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The run's telemetry settings cannot be honoured.
    #[error("`telemetry`: {0}")]
    Telemetry(String),
    /// The run's cluster cannot be served, or its nodes did not join.
    #[error("`cluster`: {0}")]
    Cluster(String),
}

/// How a run is presented.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run directory; default `runs/<name>-<UTC timestamp>`.
    pub out: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// The code revision the run is built from, recorded in the run registry.
    pub code_revision: Option<String>,
    /// Stages that ran before this run, elsewhere (a sweep's shared pretrain and
    /// SFT, whose weights `policy.init_from` names): listed first in the report,
    /// and RL's initial evaluation is the last one's when it was evaluated.
    pub prior_stages: Vec<report::StageReport>,
    /// Serve the live dashboard and `/metrics` on this address during the run.
    pub serve: Option<std::net::SocketAddr>,
    /// Write the run's spans to `spans.jsonl` (when tracing is installed; studies
    /// of many runs leave it off).
    pub spans: bool,
    /// Let worker nodes join on this address (overrides `[cluster] listen`).
    pub serve_cluster: Option<std::net::SocketAddr>,
    /// The cluster's shared secret (overrides `[cluster] cookie_file`).
    pub cookie_file: Option<PathBuf>,
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutcome {
    /// Where its files are.
    pub run_dir: PathBuf,
    /// Its report.
    pub report: Report,
}

/// `(year, month, day, hour, minute, second)` in UTC of `secs` since the Unix epoch
/// (civil date by Howard Hinnant's algorithm).
pub(crate) fn civil_utc(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

pub(crate) fn utc_stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d, h, mi, sec) = civil_utc(secs);
    format!("{y:04}{m:02}{d:02}-{h:02}{mi:02}{sec:02}")
}

/// Creates `path` unless it exists; an existing directory must be empty. The error
/// says why (for the caller to wrap with the path).
pub(crate) fn new_or_empty_dir(path: &Path) -> Result<(), String> {
    if path.exists() {
        let mut entries = std::fs::read_dir(path).map_err(|e| e.to_string())?;
        if entries.next().is_some() {
            return Err("exists and is not empty; choose another --out".into());
        }
    }
    std::fs::create_dir_all(path).map_err(|e| e.to_string())
}

fn prepare_run_dir(path: &Path) -> Result<(), RunError> {
    // A run killed while writing its config leaves only the half-written temporary
    // file: the directory holds nothing of a run yet.
    let leftover = path.join(".config.resolved.toml.tmp");
    let only_leftover = std::fs::read_dir(path)
        .map(|entries| {
            let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            names.len() == 1 && names[0] == ".config.resolved.toml.tmp"
        })
        .unwrap_or(false);
    if only_leftover {
        let _ = std::fs::remove_file(&leftover);
    }
    new_or_empty_dir(path).map_err(|reason| RunError::RunDir {
        path: path.to_path_buf(),
        reason,
    })
}

/// Writes `config.resolved.toml` into the run directory, whole or not at all.
fn write_config(run_dir: &Path, config: &ExperimentConfig) -> Result<(), RunError> {
    let path = run_dir.join("config.resolved.toml");
    let text = toml::to_string_pretty(config).map_err(|e| RunError::Write {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    rlcs_storage::write_durable(&path, text.as_bytes()).map_err(|e| RunError::RunDir {
        path,
        reason: e.to_string(),
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    std::fs::write(path, bytes).map_err(|source| RunError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Train and eval samples of every domain, and each domain's verifier name.
struct Pools {
    train: Vec<Arc<Sample>>,
    eval: Vec<Arc<Sample>>,
    verifiers: HashMap<String, String>,
    /// Data of the pretrain and SFT stages drawn for them alone
    /// (`[pretrain].samples`, `[sft].samples`); empty: the train split.
    pretrain: Vec<Arc<Sample>>,
    sft: Vec<Arc<Sample>>,
}

/// Builds every domain's pool.
fn build_pools(config: &ExperimentConfig) -> Result<Pools, RunError> {
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    // Stages that run and draw data of their own: (index in `stage_data`, name, samples
    // per domain).
    let wanted: Vec<(usize, &str, usize)> = [
        ("pretrain", config.pretrain.samples),
        ("sft", config.sft.samples),
    ]
    .into_iter()
    .enumerate()
    .filter(|(_, (stage, samples))| {
        *samples > 0 && config.stages.iter().any(|s| s.as_str() == *stage)
    })
    .map(|(k, (stage, samples))| (k, stage, samples))
    .collect();
    let mut stage_data: [Vec<Arc<Sample>>; 2] = [Vec::new(), Vec::new()];
    let mut verifiers = HashMap::new();
    for d in &config.domains {
        let pool_err = pool_error(&d.name);
        if d.dataset.is_some() {
            let pool = dataset_pool(config, d)?;
            verifiers.insert(d.name.clone(), pool.verifier);
            for &(k, _, samples) in &wanted {
                // Rows left over after the splits first, then the train split.
                stage_data[k].extend(pool.rest.iter().chain(&pool.train).take(samples).cloned());
            }
            train.extend(pool.train);
            eval.extend(pool.eval);
            continue;
        }
        let domain = domain_by_name(d.generator_name()).map_err(|e| pool_err(e.to_string()))?;
        let spec = PoolSpec {
            train: d.train_or_default(),
            eval: d.eval,
            difficulty_min: d.difficulty_min,
            difficulty_max: d.difficulty_max,
        };
        // A domain named apart from its generator gets its own seed, its own name on
        // every sample and ids salted with that name, so two domains sharing one
        // generator never share a sample.
        let renamed = d.name != domain.name();
        let seed = if renamed {
            mix_seed(config.seed, stable_hash(&[d.name.as_bytes()]))
        } else {
            config.seed
        };
        let pool = build_pool(domain.as_ref(), &spec, seed).map_err(|e| pool_err(e.to_string()))?;
        let rename = |s: Arc<Sample>| -> Arc<Sample> {
            if !renamed {
                return s;
            }
            let mut s = (*s).clone();
            s.id = stable_hash(&[d.name.as_bytes(), &s.id.to_le_bytes()]);
            s.domain = d.name.clone();
            Arc::new(s)
        };
        verifiers.insert(d.name.clone(), domain.verifier().to_string());
        let split: HashSet<SampleId> = pool.train.iter().chain(&pool.eval).map(|s| s.id).collect();
        for &(k, stage, samples) in &wanted {
            let spec = PoolSpec {
                train: samples,
                eval: 0,
                ..spec.clone()
            };
            let stage_seed = mix_seed(seed, stable_hash(&[b"stage data", stage.as_bytes()]));
            let extra = build_pool(domain.as_ref(), &spec, stage_seed)
                .map_err(|e| pool_err(format!("drawing {stage}.samples = {samples}: {e}")))?;
            // The stage never sees a held-out sample (nor repeats an RL train one).
            stage_data[k].extend(
                extra
                    .train
                    .into_iter()
                    .filter(|s| !split.contains(&s.id))
                    .map(rename),
            );
        }
        train.extend(pool.train.into_iter().map(rename));
        eval.extend(pool.eval.into_iter().map(rename));
    }
    let [pretrain, sft] = stage_data;
    Ok(Pools {
        train,
        eval,
        verifiers,
        pretrain,
        sft,
    })
}

/// Errors of building `domain`'s pool.
fn pool_error(domain: &str) -> impl Fn(String) -> RunError + '_ {
    move |reason| RunError::Pool {
        domain: domain.to_string(),
        reason,
    }
}

/// A dataset domain's splits ([`config::DomainConfig::dataset`]).
struct DatasetPool {
    train: Vec<Arc<Sample>>,
    eval: Vec<Arc<Sample>>,
    /// Rows in neither split (when `train` caps it), in seeded order.
    rest: Vec<Arc<Sample>>,
    verifier: String,
}

/// Skipped rows printed per file; `rlcs data check FILE` lists them all.
const SKIPPED_SHOWN: usize = 10;

/// Reads a dataset file for domain `d`: rows named after the domain, within its
/// difficulty range, in an order drawn from the run's seed; the verifier the domain
/// names, else the one every row names.
fn read_domain_rows(
    d: &config::DomainConfig,
    path: &Path,
) -> Result<(Vec<Sample>, Option<String>), RunError> {
    let pool_err = pool_error(&d.name);
    let options = rlcs_domains::reader::ReaderOptions {
        on_bad_row: d.on_bad_row.unwrap_or_default(),
        verifier: d.verifier.clone(),
        domain: Some(d.name.clone()),
        limit: None,
    };
    let data = rlcs_domains::reader::read_dataset(path, &Registry::builtin(), &options)
        .map_err(|e| pool_err(format!("reading the dataset: {e}")))?;
    for e in data.skipped.iter().take(SKIPPED_SHOWN) {
        eprintln!("domain `{}`: skipped {e}", d.name);
    }
    if data.skipped.len() > SKIPPED_SHOWN {
        eprintln!(
            "domain `{}`: skipped {} more rows of {} (`rlcs data check` lists them all)",
            d.name,
            data.skipped.len() - SKIPPED_SHOWN,
            path.display()
        );
    }
    let mut named: Option<(String, usize)> = None;
    for (row, v) in data.verifiers.iter().enumerate() {
        match &named {
            None => named = Some((v.clone(), row)),
            Some((first, at)) if first != v => {
                return Err(pool_err(format!(
                    "{}: the rows name several verifiers (`{first}` for loaded row {}, `{v}` for loaded row {}); \
                     set `verifier` in the domain or split the file",
                    path.display(),
                    at + 1,
                    row + 1
                )))
            }
            Some(_) => {}
        }
    }
    let (lo, hi) = (d.difficulty_min, d.difficulty_max);
    let rows = data
        .samples
        .into_iter()
        .filter(|s| (lo..=hi).contains(&s.difficulty))
        .collect();
    Ok((rows, named.map(|(v, _)| v)))
}

/// A dataset domain's train and eval splits.
fn dataset_pool(
    config: &ExperimentConfig,
    d: &config::DomainConfig,
) -> Result<DatasetPool, RunError> {
    use rand::seq::SliceRandom;
    let pool_err = pool_error(&d.name);
    let Some(path) = d.dataset.as_deref() else {
        return Err(pool_err("no dataset file".into()));
    };
    let seed = mix_seed(config.seed, stable_hash(&[b"dataset", d.name.as_bytes()]));
    let shuffled = |rows: Vec<Sample>, salt: &[u8]| -> Vec<Arc<Sample>> {
        let mut rows: Vec<Arc<Sample>> = rows.into_iter().map(Arc::new).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, stable_hash(&[salt])));
        rows.shuffle(&mut rng);
        rows
    };
    let (rows, verifier) = read_domain_rows(d, path)?;
    let mut rows = shuffled(rows, b"train");
    let eval = match d.eval_dataset.as_deref() {
        Some(eval_path) => {
            let (eval_rows, eval_verifier) = read_domain_rows(d, eval_path)?;
            if d.verifier.is_none() && eval_verifier.is_some() && eval_verifier != verifier {
                return Err(pool_err(format!(
                    "{} names verifier `{}` and {} names `{}`; set `verifier` in the domain",
                    path.display(),
                    verifier.as_deref().unwrap_or("none"),
                    eval_path.display(),
                    eval_verifier.as_deref().unwrap_or("none")
                )));
            }
            let mut eval = shuffled(eval_rows, b"eval");
            // A row in both files stays in the held-out split only.
            let held: HashSet<SampleId> = eval.iter().take(d.eval).map(|s| s.id).collect();
            rows.retain(|s| !held.contains(&s.id));
            if eval.len() < d.eval {
                return Err(pool_err(format!(
                    "{} has {} usable rows, fewer than `eval = {}`",
                    eval_path.display(),
                    eval.len(),
                    d.eval
                )));
            }
            eval.truncate(d.eval);
            eval
        }
        None => {
            if rows.len() <= d.eval {
                return Err(pool_err(format!(
                    "{} has {} usable rows and `eval = {}` holds them all out: none is left to train on",
                    path.display(),
                    rows.len(),
                    d.eval
                )));
            }
            rows.drain(..d.eval).collect()
        }
    };
    let take = d.train.unwrap_or(rows.len());
    if rows.len() < take {
        return Err(pool_err(format!(
            "{} has {} usable rows besides the held-out ones, fewer than `train = {take}`",
            path.display(),
            rows.len()
        )));
    }
    if rows.is_empty() {
        return Err(pool_err(format!(
            "{} leaves no row to train on",
            path.display()
        )));
    }
    let rest = rows.split_off(take);
    let verifier = d.verifier.clone().or(verifier).ok_or_else(|| {
        pool_err(format!(
            "{}: no row names a verifier; set `verifier` in the domain",
            path.display()
        ))
    })?;
    Ok(DatasetPool {
        train: rows,
        eval,
        rest,
        verifier,
    })
}

/// Runs the experiment in `config_path`.
pub async fn run_experiment(
    config_path: &Path,
    options: RunOptions,
) -> Result<RunOutcome, RunError> {
    let mut config = ExperimentConfig::load(config_path)?;
    config.resolve_paths(config_path.parent().unwrap_or(Path::new(".")));
    run_config(config, options).await
}

/// Stops the run's cluster (its node server) when the run ends, however it ends.
struct ServingCluster(Option<Arc<rlcs_actors::cluster::Cluster>>);

impl Drop for ServingCluster {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.shutdown();
        }
    }
}

/// Opens the run's cluster when the config or the options name one, and waits for
/// the nodes the config asks for.
async fn start_cluster(
    config: &ExperimentConfig,
    options: &RunOptions,
    verifiers: &HashMap<String, String>,
) -> Result<Option<Arc<rlcs_actors::cluster::Cluster>>, RunError> {
    let listen = match options.serve_cluster {
        Some(addr) => Some(addr),
        None => config.cluster.listen_addr().map_err(RunError::Cluster)?,
    };
    let Some(addr) = listen else {
        return Ok(None);
    };
    let cookie_file = options
        .cookie_file
        .clone()
        .or_else(|| config.cluster.cookie_file.clone())
        .ok_or_else(|| {
            RunError::Cluster(
                "a cluster needs a shared secret: `[cluster] cookie_file` or `--cookie-file`"
                    .into(),
            )
        })?;
    let cookie = rlcs_actors::cluster::read_cookie(&cookie_file).map_err(RunError::Cluster)?;
    let config_json = serde_json::to_string(config)
        .map_err(|e| RunError::Cluster(format!("the config as JSON: {e}")))?;
    let needed = verifiers.values().cloned().collect();
    let cluster = rlcs_actors::cluster::Cluster::serve(addr, &cookie, config_json, needed)
        .await
        .map_err(|e| RunError::Cluster(e.to_string()))?;
    eprintln!("cluster: nodes join at {}", cluster.addr);
    let c = &config.cluster;
    if c.wait_for_verifiers + c.wait_for_replicas > 0 {
        if let Err(e) = cluster
            .wait_for(
                c.wait_for_verifiers,
                c.wait_for_replicas,
                Duration::from_secs_f64(c.join_timeout_s),
            )
            .await
        {
            cluster.shutdown();
            return Err(RunError::Cluster(e));
        }
    }
    Ok(Some(cluster))
}

/// Builds replica policies from a run's config sent as JSON (what a replica node
/// receives when it joins).
pub fn replica_builder_from_json(json: &str) -> Result<PolicyBuilder, String> {
    let config: ExperimentConfig =
        serde_json::from_str(json).map_err(|e| format!("the run's config: {e}"))?;
    policy_builder(&config).map_err(|e| e.to_string())
}

/// Options that contradict the config.
fn check_options(config: &ExperimentConfig, options: &RunOptions) -> Result<(), RunError> {
    if options.serve.is_some() && !config.telemetry.metrics {
        return Err(RunError::Telemetry(
            "`--serve` needs the metrics that `telemetry.metrics = false` turns off".into(),
        ));
    }
    Ok(())
}

/// Runs an already-parsed experiment.
pub async fn run_config(
    config: ExperimentConfig,
    options: RunOptions,
) -> Result<RunOutcome, RunError> {
    // Everything that can fail on bad input happens before the run directory exists.
    check_options(&config, &options)?;
    let prepared = prepare(&config)?;
    let from_run = prepared.offline_rates(&config)?;
    let run_dir = options
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-{}", config.name, utc_stamp())));
    prepare_run_dir(&run_dir)?;
    // The config comes first: a run directory with anything in it can be resumed.
    write_config(&run_dir, &config)?;
    let store = Store::open_with(&run_dir.join("store"), config.store.backend)?;
    execute(
        config,
        prepared,
        run_dir,
        store,
        Start::Fresh { from_run },
        &options,
    )
    .await
}

/// Continues the run in `run_dir` (made by `rlcs run CONFIG`) from its newest
/// checkpoint; see [`resume_config`].
pub async fn resume_experiment(
    config_path: &Path,
    run_dir: &Path,
    options: RunOptions,
) -> Result<RunOutcome, RunError> {
    let mut config = ExperimentConfig::load(config_path)?;
    config.resolve_paths(config_path.parent().unwrap_or(Path::new(".")));
    resume_config(config, run_dir, options).await
}

/// Continues the run in `run_dir` from its newest checkpoint: the curriculum
/// (statistics, sampler and RNG), the policy, the iteration records, evaluations and
/// counters come back exactly, the store's history of later iterations is rolled
/// back, and the run goes on to `run.iterations`. With the same seed and config the
/// final report equals that of an uninterrupted run (wall times aside).
///
/// `config` must be the run's config; only `run.iterations`, `run.max_rollouts`,
/// `run.checkpoint_every`, `run.keep_checkpoints`, `[actors]` and `[testing]` may
/// differ. A run killed before its first checkpoint starts over in the same
/// directory. Every check happens before anything in `run_dir` is changed.
pub async fn resume_config(
    config: ExperimentConfig,
    run_dir: &Path,
    options: RunOptions,
) -> Result<RunOutcome, RunError> {
    let err = |reason: String| RunError::Resume {
        path: run_dir.to_path_buf(),
        reason,
    };
    if !run_dir.is_dir() {
        return Err(err("no such run directory".into()));
    }
    check_options(&config, &options)?;
    let resolved = run_dir.join("config.resolved.toml");
    if !resolved.is_file() {
        return Err(err(
            "no config.resolved.toml: not a run directory made by `rlcs run`".into(),
        ));
    }
    let prior = ExperimentConfig::load(&resolved)?;
    check_resumable(&prior, &config).map_err(err)?;
    let prepared = prepare(&config)?;
    let store_dir = run_dir.join("store");
    if !store_dir.is_dir() {
        // Killed before the store existed: nothing was done yet.
        return restart_in_place(config, prepared, run_dir, options).await;
    }
    let store = Store::open(&store_dir)?;
    store.check_dataset(&prepared.fingerprint)?;
    let run = run_id(run_dir, &config);
    let entry = store.run_entry(&run)?;
    let latest = match &entry {
        Some(_) => store.latest_checkpoint(&run)?,
        None => None,
    };
    let Some(record) = latest else {
        drop(store);
        return restart_in_place(config, prepared, run_dir, options).await;
    };
    let at = record.iteration;
    if at > config.run.iterations {
        return Err(err(format!(
            "its newest checkpoint is after iteration {at}, beyond run.iterations = {}",
            config.run.iterations
        )));
    }
    let loaded = load_checkpoint(run_dir, &run, record)?;
    let progress: Progress = serde_json::from_slice(&loaded.progress).map_err(|e| {
        err(format!(
            "{}: cannot decode: {e}",
            rlcs_actors::checkpoint::checkpoint_dir(at)
        ))
    })?;
    if progress.iteration != at || progress.records.len() != at as usize {
        return Err(err(format!(
            "checkpoint of iteration {at} holds progress of iteration {} with {} records",
            progress.iteration,
            progress.records.len()
        )));
    }
    let budget = config.run.max_rollouts;
    let spent = budget > 0 && progress.totals.rollouts >= budget;
    if let Some(e) = &entry {
        if e.record.status == RunStatus::Finished && (at >= config.run.iterations || spent) {
            return Err(err(format!(
                "the run finished after {} iterations; raise run.iterations (or \
                 run.max_rollouts) to continue it",
                e.record.last_iteration
            )));
        }
    }
    if loaded.curriculum.entries != prepared.entries {
        return Err(err(
            "the checkpoint's curriculum pool differs from this config's samples".into(),
        ));
    }
    execute(
        config,
        prepared,
        run_dir.to_path_buf(),
        store,
        Start::Resume(Box::new(Resumed { loaded, progress })),
        &options,
    )
    .await
}

/// Starts a run over in its own directory (it was killed before its first
/// checkpoint): the outputs of the lost attempt are removed; the store is kept
/// with the attempt's history (if any) rolled back.
async fn restart_in_place(
    config: ExperimentConfig,
    prepared: Prepared,
    run_dir: &Path,
    options: RunOptions,
) -> Result<RunOutcome, RunError> {
    let events = run_dir.join("events.jsonl");
    if events.exists() {
        std::fs::remove_file(&events).map_err(|source| RunError::Write {
            path: events.clone(),
            source,
        })?;
    }
    for name in ["grade", rlcs_actors::checkpoint::CHECKPOINTS_DIR] {
        let d = run_dir.join(name);
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|e| RunError::RunDir {
                path: d.clone(),
                reason: e.to_string(),
            })?;
        }
    }
    write_config(run_dir, &config)?;
    let store = Store::open_with(&run_dir.join("store"), config.store.backend)?;
    let run = run_id(run_dir, &config);
    if store.run_entry(&run)?.is_some() {
        store.rollback_after(&run, 0)?;
    }
    let from_run = prepared.offline_rates(&config)?;
    execute(
        config,
        prepared,
        run_dir.to_path_buf(),
        store,
        Start::Fresh { from_run },
        &options,
    )
    .await
}

/// Fields of a config that `--resume` lets change: they do not change what the
/// iterations already done would have been.
const RESUMABLE_CHANGES: [&str; 7] = [
    "run.iterations",
    "run.max_rollouts",
    "run.checkpoint_every",
    "run.keep_checkpoints",
    "actors",
    "cluster",
    "testing",
];

/// Checks that `new` may continue a run made with `prior`; the error names the
/// first differing key.
fn check_resumable(prior: &ExperimentConfig, new: &ExperimentConfig) -> Result<(), String> {
    let canonical = |c: &ExperimentConfig| -> serde_json::Value {
        let mut c = c.clone();
        if let Some(p) = &c.grade.from_run {
            c.grade.from_run = Some(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()));
        }
        let mut v = serde_json::to_value(&c).unwrap_or(serde_json::Value::Null);
        for key in RESUMABLE_CHANGES {
            let mut parts: Vec<&str> = key.split('.').collect();
            let last = parts.pop().unwrap_or_default();
            let mut at = &mut v;
            for p in parts {
                at = &mut at[p];
            }
            if let Some(o) = at.as_object_mut() {
                o.remove(last);
            }
        }
        v
    };
    match first_difference(&canonical(prior), &canonical(new), "") {
        None => Ok(()),
        Some((key, was, now)) => Err(format!(
            "the config differs from the run's at `{key}` (run: {was}, now: {now}); only {} may change",
            RESUMABLE_CHANGES.join(", ")
        )),
    }
}

/// The first dotted key where `a` and `b` differ, with both values.
fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
    at: &str,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    let key = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                first_difference(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &key(k),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &key(&i.to_string()))),
        _ if a == b => None,
        _ => Some((at.to_string(), a.to_string(), b.to_string())),
    }
}

/// The built-in verifiers plus the `[verifiers.<name>]` entries of the file at
/// `path` (started: processes spawned, the sandbox probed).
pub fn registry_from(path: &Path) -> Result<Registry, RunError> {
    let entries = config::load_verifiers(path)?;
    rlcs_rewards::plugins::build_registry(&entries).map_err(|e| RunError::Verifier(e.to_string()))
}

/// The run's id in the store's registry: its directory's name.
fn run_id(run_dir: &Path, config: &ExperimentConfig) -> String {
    run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| config.name.clone())
}

/// Everything built from a config before a run directory is touched.
struct Prepared {
    train: Vec<Arc<Sample>>,
    eval: Vec<Arc<Sample>>,
    /// Stage data of `[pretrain].samples` and `[sft].samples` (empty: the train split).
    pretrain: Vec<Arc<Sample>>,
    sft: Vec<Arc<Sample>>,
    verifiers: HashMap<String, String>,
    registry: Arc<Registry>,
    domain_names: Vec<String>,
    entries: Vec<PoolEntry>,
    fingerprint: String,
    /// A new curriculum over the train pool (built here, so a bad pool or config
    /// fails before anything is written).
    curriculum: Curriculum,
}

impl Prepared {
    /// Offline pass rates from the earlier run named by `grade.from_run`, if any.
    fn offline_rates(
        &self,
        config: &ExperimentConfig,
    ) -> Result<Option<Vec<(u64, f32)>>, RunError> {
        config
            .grade
            .from_run
            .as_deref()
            .map(|from| offline_from_run(from, &self.entries))
            .transpose()
    }
}

fn prepare(config: &ExperimentConfig) -> Result<Prepared, RunError> {
    let Pools {
        mut train,
        eval,
        mut verifiers,
        pretrain,
        sft,
    } = build_pools(config)?;
    // RL trains on `run.train_domains` only (every domain when empty); evaluation
    // keeps every domain.
    let only = &config.run.train_domains;
    if !only.is_empty() {
        train.retain(|s| only.contains(&s.domain));
    }
    // Plug-in verifiers start here (processes, sandbox probe), before anything is
    // written; a domain named by an entry (or an alias) is scored by it.
    let registry = Arc::new(
        rlcs_rewards::plugins::build_registry(&config.verifiers)
            .map_err(|e| RunError::Verifier(e.to_string()))?,
    );
    let plugged = rlcs_rewards::plugins::names(&config.verifiers);
    for (domain, v) in verifiers.iter_mut() {
        if plugged.contains(domain) {
            *v = domain.clone();
        }
    }
    for (domain, v) in &verifiers {
        registry.get(v).map_err(|e| RunError::Pool {
            domain: domain.clone(),
            reason: e.to_string(),
        })?;
    }
    let domain_names: Vec<String> = config.domains.iter().map(|d| d.name.clone()).collect();
    let entries: Vec<PoolEntry> = train
        .iter()
        .map(|s| PoolEntry {
            id: s.id,
            domain: domain_names
                .iter()
                .position(|n| *n == s.domain)
                .unwrap_or(0) as u16,
        })
        .collect();
    let fingerprint = dataset_fingerprint(&train, &eval);
    let curriculum = Curriculum::new(
        config.curriculum.clone(),
        domain_names.clone(),
        entries.clone(),
        config.run.batch_size,
        mix_seed(config.seed, 1),
    )?;
    Ok(Prepared {
        train,
        eval,
        pretrain,
        sft,
        verifiers,
        registry,
        domain_names,
        entries,
        fingerprint,
        curriculum,
    })
}

/// The progress of a run as a checkpoint records it: the report so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    /// Iterations finished.
    iteration: u32,
    records: Vec<IterationRecord>,
    initial_eval: EvalResult,
    curve: Vec<report::EvalPoint>,
    totals: rlcs_actors::driver::Totals,
    /// Worker restarts of earlier attempts.
    restarts: usize,
    grade_rollouts: usize,
    offline_samples: usize,
    /// Wall time of earlier attempts and this one up to the checkpoint.
    wall_seconds: f64,
    /// The stages that ran before RL.
    #[serde(default)]
    stages: Vec<report::StageReport>,
}

/// How [`execute`] starts.
enum Start {
    /// From the beginning, with offline pass rates of an earlier run (if any).
    Fresh { from_run: Option<Vec<(u64, f32)>> },
    /// From a checkpoint.
    Resume(Box<Resumed>),
}

struct Resumed {
    loaded: LoadedCheckpoint,
    progress: Progress,
}

/// Runs the graph in `run_dir` from `start` to the end and writes the report.
async fn execute(
    config: ExperimentConfig,
    prepared: Prepared,
    run_dir: PathBuf,
    store: Store,
    start: Start,
    options: &RunOptions,
) -> Result<RunOutcome, RunError> {
    let tracing = trace::global().filter(|_| options.spans && config.telemetry.spans);
    if let Some(t) = tracing {
        t.write_spans_to(&run_dir)
            .map_err(|source| RunError::Write {
                path: run_dir.join(trace::SPANS_FILE),
                source,
            })?;
        let url = config
            .telemetry
            .otlp_traces_url()
            .map_err(|m| RunError::Telemetry(format!("otlp_endpoint {m}")))?;
        if let Some(url) = url {
            t.export_run_to(&url).map_err(RunError::Telemetry)?;
        }
    }
    // The run's span is the named parent of the stage spans rather than entered
    // around the run, so that a poll inside an iteration enters only its phase's span.
    let span = tracing::info_span!("run", run = %config.name, seed = config.seed);
    let outcome = execute_in_span(config, prepared, run_dir, store, start, options, &span).await;
    drop(span);
    // The run span has ended: every span of the run is in its file after this,
    // and no later span lands there.
    if let Some(t) = tracing {
        t.finish_run();
    }
    outcome
}

async fn execute_in_span(
    config: ExperimentConfig,
    prepared: Prepared,
    run_dir: PathBuf,
    store: Store,
    start: Start,
    options: &RunOptions,
    run_span: &tracing::Span,
) -> Result<RunOutcome, RunError> {
    let progress_bar = options.progress;
    let started = Instant::now();
    // Off (`telemetry.metrics = false`): no registry, histograms or pool probes.
    let telemetry = config.telemetry.metrics.then(|| Arc::new(Telemetry::new()));
    let _server = match (options.serve, &telemetry) {
        (Some(addr), Some(telemetry)) => {
            let server = rlcs_actors::serve::serve(addr, telemetry.clone())
                .await
                .map_err(|source| RunError::Serve { addr, source })?;
            eprintln!("dashboard: http://{}/  (metrics: /metrics)", server.addr);
            Some(server)
        }
        _ => None,
    };
    let cluster = start_cluster(&config, options, &prepared.verifiers).await?;
    let _serving = ServingCluster(cluster.clone());
    let replica_builder = policy_builder(&config)?;
    let mut learner: Box<dyn Policy> = replica_builder()?;
    let mut table: HashMap<u64, Arc<Sample>> = HashMap::new();
    for s in prepared
        .train
        .iter()
        .chain(&prepared.eval)
        .chain(&prepared.pretrain)
        .chain(&prepared.sft)
    {
        table.insert(s.id, s.clone());
    }
    let table = Arc::new(table);
    let run = run_id(&run_dir, &config);
    let config_json = serde_json::to_value(&config).unwrap_or(serde_json::Value::Null);

    let (curriculum, resume, resumed) = match start {
        Start::Fresh { from_run } => {
            let mut curriculum = prepared.curriculum;
            // Offline tiers: an earlier run's pass rates, then (overriding them) a
            // grade stage.
            let mut offline_samples = 0;
            if let Some(rates) = from_run {
                offline_samples = curriculum.set_offline_pass_rates(&rates)?;
            }
            let order = stages::stage_order(&config);
            let mut inputs = GradeInputs {
                table: table.clone(),
                train: &prepared.train,
                registry: prepared.registry.clone(),
                replica_builder: replica_builder.clone(),
                verifiers: prepared.verifiers.clone(),
                domain_names: prepared.domain_names.clone(),
                entries: prepared.entries.clone(),
                init: config.policy.init_from.clone(),
                telemetry: telemetry.clone(),
                cluster: cluster.clone(),
            };
            let mut done_stages = options.prior_stages.clone();
            let pretrain = SupervisedKind::Pretrain(config.pretrain.text.unwrap_or_default());
            for kind in [pretrain, SupervisedKind::Sft] {
                let (name, settings) = stages::supervised_settings(&config, kind);
                if !order.contains(&name) {
                    continue;
                }
                // A run restarted after a kill keeps the stages it finished.
                if let Some(done) = stages::finished_stage(&run_dir, name) {
                    inputs.init =
                        Some(stages::stage_dir(&run_dir, name).join(stages::WEIGHTS_FILE));
                    done_stages.push(done);
                    continue;
                }
                let learner_builder = stage_policy_builder(&config, settings)?;
                let data = match kind {
                    SupervisedKind::Pretrain(_) => &prepared.pretrain,
                    SupervisedKind::Sft => &prepared.sft,
                };
                let stage = stages::supervised_stage(
                    &config,
                    kind,
                    &stages::StageInputs {
                        grade: &inputs,
                        data: if data.is_empty() {
                            &prepared.train
                        } else {
                            data
                        },
                        eval: &prepared.eval,
                        learner_builder,
                        init: inputs.init.clone(),
                        progress: progress_bar,
                    },
                    &run_dir,
                )
                .instrument(tracing::info_span!(parent: run_span, "stage", stage = name.as_str()))
                .await?;
                inputs.init = Some(stages::stage_dir(&run_dir, name).join(stages::WEIGHTS_FILE));
                done_stages.push(stage);
            }
            let mut grade_rollouts = 0;
            if order.contains(&config::StageName::Grade) {
                let grade_started = Instant::now();
                let graded = grade_stage(&config, &inputs, &run_dir, progress_bar)
                    .instrument(tracing::info_span!(parent: run_span, "stage", stage = "grade"))
                    .await?;
                grade_rollouts = graded.iter().map(|g| g.2).sum();
                let rates: Vec<(u64, f32)> = graded
                    .iter()
                    .map(|&(id, ok, n)| (id, ok as f32 / n.max(1) as f32))
                    .collect();
                offline_samples = offline_samples.max(curriculum.set_offline_pass_rates(&rates)?);
                done_stages.push(report::StageReport {
                    rollouts: grade_rollouts,
                    ..report::StageReport::new("grade", grade_started.elapsed().as_secs_f64())
                });
            }
            if let Some(path) = &inputs.init {
                learner = stages::build_with(&replica_builder, Some(path))?;
            }
            // The store records which samples it describes, so a later run reading
            // it (offline tiers, resume) can tell another dataset from this one.
            store.bind_dataset(&prepared.fingerprint)?;
            let start = FreshStart {
                grade_rollouts,
                offline_samples,
                // Grading does not change the model: RL starts from the last
                // evaluated stage's model and reuses its evaluation.
                initial: done_stages
                    .iter()
                    .rev()
                    .find(|st| st.name != "grade")
                    .and_then(|st| st.eval.clone()),
                stages: done_stages,
            };
            (curriculum, Begin::Fresh(start), None)
        }
        Start::Resume(r) => {
            let Resumed { loaded, progress } = *r;
            // The run's config from now on (run.iterations may have grown).
            write_config(&run_dir, &config)?;
            let curriculum = Curriculum::restore(loaded.curriculum)?;
            learner.load_state(&loaded.policy)?;
            // The log is cut before the store rolls back: a kill in between leaves
            // history the log does not claim, never a claim the store lacks.
            let events = run_dir.join("events.jsonl");
            truncate_events_after(&events, progress.iteration).map_err(|source| {
                RunError::Write {
                    path: events.clone(),
                    source,
                }
            })?;
            // The live dashboard of a resumed run starts from its history up to
            // the checkpoint, as `rlcs dashboard` would show it.
            if let Some(t) = &telemetry {
                t.apply_logs(run_logs(&run_dir).0.iter().map(String::as_str));
            }
            let rolled_back = store.rollback_after(&run, progress.iteration)?;
            let resumed = Some((progress.iteration, rolled_back));
            (curriculum, Begin::From(progress), resumed)
        }
    };
    let mut record = RunRecord {
        run: run.clone(),
        seed: config.seed,
        config: config_json.clone(),
        status: RunStatus::Running,
        last_iteration: match &resume {
            Begin::From(p) => p.iteration,
            Begin::Fresh(_) => 0,
        },
    };
    store.put_run(&record)?;
    if let Some(rev) = &options.code_revision {
        store.set_code_revision(&run, rev)?;
    }

    let sinks = event_sinks(&run_dir, &config, progress_bar, resumed.map(|r| r.0))?;
    let graph = RunGraph::start(GraphSpec {
        samples: table,
        curriculum,
        store,
        learner,
        replica_builder,
        registry: prepared.registry.clone(),
        faults: Arc::new(FaultPlan::verifier_panic_on_job(
            config.testing.verifier_panic_on_job,
        )),
        pools: pool_sizes(&config),
        sinks,
        run_name: config.name.clone(),
        telemetry: telemetry.clone(),
        cluster: cluster.clone(),
    })
    .await?;
    if let Some((from_iteration, rolled_back)) = resumed {
        let _ = graph
            .bus
            .cast(rlcs_actors::bus::BusMsg::Publish(RunEvent::RunResumed {
                from_iteration,
                rolled_back,
            }));
    }
    let checkpointing = Checkpointing {
        run_dir: run_dir.clone(),
        run: run.clone(),
        keep: config.run.keep_checkpoints,
    };
    let driver = RlDriver::new(&graph, plan_of(&config, prepared.verifiers.clone()))
        .with_span(tracing::info_span!(parent: run_span, "stage", stage = "rl"));
    let result = drive(
        driver,
        &config,
        &prepared.eval,
        &checkpointing,
        resume,
        started,
    )
    .await;
    let restarts = graph.restarts();
    // Record the outcome in the registry through the storage actor, then stop.
    let status = if result.is_ok() {
        RunStatus::Finished
    } else {
        RunStatus::Failed
    };
    record.status = status;
    record.last_iteration = result
        .as_ref()
        .map(|r| r.progress.records.len() as u32)
        .unwrap_or(0);
    let _ = graph
        .storage
        .call(
            |reply| rlcs_actors::singletons::StorageMsg::PutRun {
                record: Box::new(record),
                reply,
            },
            Some(Duration::from_secs(30)),
        )
        .await;
    let store_observations = graph
        .storage
        .call(
            rlcs_actors::singletons::StorageMsg::ObservationCount,
            Some(Duration::from_secs(30)),
        )
        .await;
    graph.shutdown().await;
    let Driven { progress, fin } = result?;
    let store_observations = match store_observations {
        Ok(ractor::rpc::CallResult::Success(n)) => n,
        _ => {
            return Err(RunError::Actors(ActorsError::Failed {
                actor: "storage".into(),
                reason: "did not report its observation count".into(),
            }))
        }
    };
    let wall_seconds = progress.wall_seconds + started.elapsed().as_secs_f64();
    let mut stage_reports = progress.stages.clone();
    // Stages of this run before RL (a sweep's shared stages ran elsewhere and are
    // not part of this run's wall time).
    let before: f64 = stage_reports
        .iter()
        .skip(options.prior_stages.len())
        .map(|s| s.wall_seconds)
        .sum();
    let order = stages::stage_order(&config);
    if order.contains(&config::StageName::Rl) {
        stage_reports.push(report::StageReport {
            steps: progress.records.len() as u32,
            rollouts: progress.totals.rollouts,
            eval: Some(fin.clone()),
            ..report::StageReport::new("rl", (wall_seconds - before).max(0.0))
        });
    }
    if order.contains(&config::StageName::Eval) {
        stage_reports.push(report::StageReport {
            eval: Some(fin.clone()),
            ..report::StageReport::new("eval", 0.0)
        });
    }
    let report = Report {
        name: config.name.clone(),
        seed: config.seed,
        config: config_json,
        iterations: progress.records,
        initial_eval: progress.initial_eval,
        final_eval: fin,
        eval_curve: progress.curve,
        totals: report::Totals {
            rollouts: progress.totals.rollouts,
            samples_selected: progress.totals.samples_selected,
            samples_scored: progress.totals.samples_scored,
            restarts: progress.restarts + restarts,
            store_observations,
            grade_rollouts: progress.grade_rollouts,
            offline_samples: progress.offline_samples,
            train_pool: prepared.entries.len(),
        },
        stages: stage_reports,
        wall_seconds,
    };
    report.write(&run_dir)?;
    Ok(RunOutcome { run_dir, report })
}

/// Where [`drive`] begins.
enum Begin {
    /// Before the first iteration.
    Fresh(FreshStart),
    /// After a checkpoint.
    From(Progress),
}

/// What a fresh start contributes to the report.
struct FreshStart {
    grade_rollouts: usize,
    offline_samples: usize,
    /// The evaluation of the model RL starts from, when the stage before made one.
    initial: Option<EvalResult>,
    /// The stages run before RL.
    stages: Vec<report::StageReport>,
}

pub(crate) fn pool_sizes(config: &ExperimentConfig) -> PoolSizes {
    PoolSizes {
        loaders: config.actors.loaders,
        replicas: config.actors.replicas,
        verifiers: config.actors.verifiers,
    }
}

pub(crate) fn plan_of(config: &ExperimentConfig, verifiers: HashMap<String, String>) -> RlPlan {
    RlPlan {
        group_size: config.run.group_size,
        temperature: config.run.temperature,
        eval_temperature: config.run.eval_temperature(),
        top_p: config.run.top_p,
        seed: config.seed,
        timeout: Duration::from_millis(config.actors.timeout_ms),
        learner_timeout: Duration::from_millis(config.actors.learner_timeout_ms),
        attempts: config.actors.attempts,
        loader_chunk: config.actors.loader_chunk,
        verifiers,
        // About 200 sampled iterations per run, whatever its length.
        sample_rollouts_every: config.run.iterations.div_ceil(200).max(1),
    }
}

/// Offline pass rates from an earlier run's stored history: successes / rollouts over
/// all of a sample's observations, for the samples of this pool.
fn offline_from_run(from: &Path, pool: &[PoolEntry]) -> Result<Vec<(u64, f32)>, RunError> {
    let in_pool: std::collections::HashSet<u64> = pool.iter().map(|e| e.id).collect();
    let store_dir = if from.join("store").is_dir() {
        from.join("store")
    } else {
        from.to_path_buf()
    };
    if !store_dir.is_dir() {
        return Err(RunError::Offline {
            path: from.to_path_buf(),
            reason: "no such run directory or store".into(),
        });
    }
    let store = Store::open(&store_dir)?;
    let mut counts: HashMap<u64, (u64, u64)> = HashMap::new();
    for o in store.all_observations()? {
        if in_pool.contains(&o.sample) {
            let c = counts.entry(o.sample).or_default();
            c.0 += o.successes as u64;
            c.1 += o.rollouts as u64;
        }
    }
    let mut rates: Vec<(u64, f32)> = counts
        .into_iter()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(id, (ok, n))| (id, ok as f32 / n as f32))
        .collect();
    if rates.is_empty() {
        let dataset = store
            .dataset_fingerprint()?
            .unwrap_or_else(|| "none".into());
        return Err(RunError::Offline {
            path: from.to_path_buf(),
            reason: format!(
                "the store holds no observation of this run's train samples \
                 (its dataset fingerprint is {dataset}): another dataset?"
            ),
        });
    }
    // Deterministic order, whatever the hash map's.
    rates.sort_by_key(|r| r.0);
    Ok(rates)
}

/// A fingerprint of the samples a run uses: their ids (train, then eval), sorted,
/// hashed. Equal pools give equal fingerprints whatever their order.
fn dataset_fingerprint(train: &[Arc<Sample>], eval: &[Arc<Sample>]) -> String {
    let mut ids: Vec<u64> = train.iter().map(|s| s.id).collect();
    ids.sort_unstable();
    let mut eval_ids: Vec<u64> = eval.iter().map(|s| s.id).collect();
    eval_ids.sort_unstable();
    let bytes: Vec<u8> = ids
        .iter()
        .chain([u64::MAX].iter())
        .chain(eval_ids.iter())
        .flat_map(|id| id.to_be_bytes())
        .collect();
    format!(
        "samples:{}+{}:{:016x}",
        ids.len(),
        eval_ids.len(),
        rlcs_domains::stable_hash(&[&bytes])
    )
}

/// What the grade stage needs from the run being prepared.
pub(crate) struct GradeInputs<'a> {
    pub(crate) table: Arc<HashMap<u64, Arc<Sample>>>,
    pub(crate) train: &'a [Arc<Sample>],
    pub(crate) registry: Arc<Registry>,
    pub(crate) replica_builder: PolicyBuilder,
    pub(crate) verifiers: HashMap<String, String>,
    pub(crate) domain_names: Vec<String>,
    pub(crate) entries: Vec<PoolEntry>,
    /// Weights the graded policy starts from.
    pub(crate) init: Option<PathBuf>,
    /// The run's telemetry (every stage's graph feeds it), unless metrics are off.
    pub(crate) telemetry: Option<Arc<Telemetry>>,
    /// Worker nodes serving every stage's pools, if the run has a cluster.
    pub(crate) cluster: Option<Arc<rlcs_actors::cluster::Cluster>>,
}

/// The grade stage: a graph of its own (initial policy, same pools, its own store in
/// `<run>/grade/store`) rolls out every train sample `grade.rollouts` times; returns
/// `(sample, successes, rollouts)` per train sample.
async fn grade_stage(
    config: &ExperimentConfig,
    inputs: &GradeInputs<'_>,
    run_dir: &Path,
    progress: bool,
) -> Result<Vec<(u64, usize, usize)>, RunError> {
    let started = Instant::now();
    let learner = stages::build_with(&inputs.replica_builder, inputs.init.as_deref())?;
    let dir = run_dir.join("grade");
    std::fs::create_dir_all(&dir).map_err(|e| RunError::RunDir {
        path: dir.clone(),
        reason: e.to_string(),
    })?;
    let sinks = stages::stage_sinks(
        &dir,
        config,
        config::StageName::Grade,
        inputs.train.len() as u64,
        progress,
    )?;
    let graph = stages::side_graph(config, inputs, &dir, learner, sinks).await?;
    let driver = RlDriver::new(&graph, plan_of(config, inputs.verifiers.clone()));
    driver.publish(RunEvent::StageStarted {
        stage: "grade".into(),
    });
    let result = driver
        .grade(inputs.train, config.grade.rollouts_per_sample(), "grade")
        .await;
    if result.is_ok() {
        driver.publish(RunEvent::StageFinished {
            stage: "grade".into(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    graph.shutdown().await;
    Ok(result?)
}

/// Writes the checkpoint of `progress` (its wall time already set); its restarts
/// count this attempt's too.
async fn save_checkpoint(
    graph: &RunGraph,
    driver: &RlDriver<'_>,
    ck: &Checkpointing,
    mut progress: Progress,
) -> Result<(), RunError> {
    progress.iteration = progress.records.len() as u32;
    progress.restarts += graph.restarts();
    let bytes = serde_json::to_vec(&progress).map_err(|e| ActorsError::Checkpoint {
        path: ck
            .run_dir
            .join(rlcs_actors::checkpoint::checkpoint_dir(progress.iteration)),
        reason: format!("encoding progress: {e}"),
    })?;
    driver.checkpoint(ck, progress.iteration, &bytes).await?;
    Ok(())
}

/// What [`drive`] returns.
struct Driven {
    progress: Progress,
    fin: EvalResult,
}

/// Evaluates, runs the iterations from `begin` to the end with a checkpoint
/// before the first, every `run.checkpoint_every` and after the last, and
/// evaluates again.
async fn drive(
    mut driver: RlDriver<'_>,
    config: &ExperimentConfig,
    eval: &[Arc<Sample>],
    ck: &Checkpointing,
    begin: Begin,
    started: Instant,
) -> Result<Driven, RunError> {
    let graph = driver.graph();
    let k = config.run.eval_rollouts;
    let point = |iteration: usize, rollouts: usize, accuracy: f64| report::EvalPoint {
        iteration: iteration as u32,
        rollouts,
        steps: iteration as u32,
        accuracy,
    };
    let (every, budget) = (config.run.eval_every, config.run.max_rollouts);
    let ck_every = config.run.checkpoint_every;
    // Without an `rl` stage the graph only evaluates the model it was given.
    let rl = stages::stage_order(config).contains(&config::StageName::Rl);
    let last = if rl { config.run.iterations } else { 0 };
    // Wall time of earlier attempts, added to this one's at each checkpoint.
    let earlier_wall;
    let mut progress = match begin {
        Begin::Fresh(f) => {
            let initial = match f.initial {
                Some(e) => e,
                None => driver.evaluate(eval, k, "initial").await?,
            };
            earlier_wall = 0.0;
            Progress {
                iteration: 0,
                records: Vec::with_capacity(last as usize),
                curve: vec![point(0, 0, initial.accuracy)],
                initial_eval: initial,
                totals: Default::default(),
                restarts: 0,
                grade_rollouts: f.grade_rollouts,
                offline_samples: f.offline_samples,
                wall_seconds: 0.0,
                stages: f.stages,
            }
        }
        Begin::From(p) => {
            driver.totals = p.totals.clone();
            earlier_wall = p.wall_seconds;
            p
        }
    };
    // What a checkpoint records: the progress with the wall time so far.
    let snapshot = |progress: &Progress| {
        let mut p = progress.clone();
        p.wall_seconds = earlier_wall + started.elapsed().as_secs_f64();
        p
    };
    let spent = |d: &RlDriver<'_>| budget > 0 && d.totals.rollouts >= budget;
    let done = |it: u32, d: &RlDriver<'_>| it >= last || spent(d);
    let resumed_at = progress.iteration;
    if resumed_at == 0 {
        save_checkpoint(graph, &driver, ck, snapshot(&progress)).await?;
    } else if !done(resumed_at, &driver)
        && every > 0
        && resumed_at % every == 0
        && progress.curve.last().map(|p| p.iteration) != Some(resumed_at)
    {
        // Resumed after the run's last iteration with more iterations to go: the
        // evaluation an uninterrupted run would have made here.
        let e = driver
            .evaluate(eval, k, &format!("iteration-{resumed_at}"))
            .await?;
        progress.curve.push(point(
            resumed_at as usize,
            driver.totals.rollouts,
            e.accuracy,
        ));
    }
    if !done(resumed_at, &driver) {
        for it in resumed_at + 1..=last {
            progress.records.push(driver.iteration(it).await?);
            progress.totals = driver.totals.clone();
            // The last iteration is evaluated once, as "final".
            let finished = done(it, &driver);
            if !finished && every > 0 && it % every == 0 {
                let e = driver.evaluate(eval, k, &format!("iteration-{it}")).await?;
                progress
                    .curve
                    .push(point(it as usize, driver.totals.rollouts, e.accuracy));
            }
            if finished || (ck_every > 0 && it % ck_every == 0) {
                save_checkpoint(graph, &driver, ck, snapshot(&progress)).await?;
            }
            if finished {
                break;
            }
        }
    }
    if last == 0 && progress.records.is_empty() {
        // Nothing trained since the initial evaluation: it is the final one too.
        let fin = progress.initial_eval.clone();
        driver.finish(0);
        return Ok(Driven { progress, fin });
    }
    let fin = driver.evaluate(eval, k, "final").await?;
    progress.curve.push(point(
        progress.records.len(),
        driver.totals.rollouts,
        fin.accuracy,
    ));
    progress.totals = driver.totals.clone();
    progress.iteration = progress.records.len() as u32;
    driver.finish(progress.iteration);
    Ok(Driven { progress, fin })
}

/// The file of a run's sampled rollouts (the dashboard's "latest rollouts").
pub const ROLLOUTS_FILE: &str = "rollouts.jsonl";

/// The texts of a run's logs in the order they replay (stage logs, the RL log, the
/// sampled rollouts), and whether any event log was there.
fn run_logs(run_dir: &Path) -> (Vec<String>, bool) {
    let main = run_dir.join("events.jsonl");
    let stage_logs = [
        stages::stage_dir(run_dir, config::StageName::Pretrain).join("events.jsonl"),
        stages::stage_dir(run_dir, config::StageName::Sft).join("events.jsonl"),
        run_dir.join("grade").join("events.jsonl"),
    ];
    let mut texts = Vec::new();
    for path in stage_logs {
        if let Ok(text) = std::fs::read_to_string(&path) {
            texts.push(text);
        }
    }
    let has_logs = main.is_file() || !texts.is_empty();
    if let Ok(text) = std::fs::read_to_string(&main) {
        texts.push(text);
    }
    if let Ok(text) = std::fs::read_to_string(run_dir.join(ROLLOUTS_FILE)) {
        texts.push(text);
    }
    (texts, has_logs)
}

/// A run's telemetry rebuilt from its logs (stage logs first, then the RL log and
/// the sampled rollouts), for `rlcs dashboard RUN_DIR`.
pub fn replay_run(run_dir: &Path) -> Result<Telemetry, RunError> {
    let (texts, has_logs) = run_logs(run_dir);
    if !has_logs {
        return Err(RunError::RunDir {
            path: run_dir.to_path_buf(),
            reason: "no events.jsonl: not a run directory made by `rlcs run`".into(),
        });
    }
    let telemetry = Telemetry::replay(texts.iter().map(String::as_str));
    // Logs of older runs lack iteration points; their report has the records.
    if telemetry.dashboard().iterations.is_empty() {
        if let Ok(report) = compare::read_report(run_dir) {
            let mut rollouts = 0;
            for record in &report.iterations {
                rollouts += record.rollouts;
                telemetry.apply(&RunEvent::IterationFinished {
                    point: Box::new(record.point(rollouts)),
                });
            }
        }
    }
    Ok(telemetry)
}

/// Serves the dashboard of the run in `run_dir`, rebuilt from its logs as they are
/// now, on `addr` until the returned server is stopped.
pub async fn serve_dashboard(
    run_dir: &Path,
    addr: std::net::SocketAddr,
) -> Result<rlcs_actors::serve::DashboardServer, RunError> {
    let telemetry = Arc::new(replay_run(run_dir)?);
    rlcs_actors::serve::serve(addr, telemetry)
        .await
        .map_err(|source| RunError::Serve { addr, source })
}

fn event_sinks(
    run_dir: &Path,
    config: &ExperimentConfig,
    progress: bool,
    resumed_after: Option<u32>,
) -> Result<Vec<SinkFn>, RunError> {
    let path = run_dir.join("events.jsonl");
    let write_err = |source| RunError::Write {
        path: path.clone(),
        source,
    };
    // A resumed run appends to its log, already cut after the checkpoint's line.
    let file = match resumed_after {
        None => std::fs::File::create(&path).map_err(write_err)?,
        Some(_) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(write_err)?,
    };
    let mut log = std::io::BufWriter::new(file);
    // The dashboard's sampled rollouts (with their images) go to a file of their
    // own, appended to on resume, so the event log stays small.
    let rollouts_path = run_dir.join(ROLLOUTS_FILE);
    let rollouts_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&rollouts_path)
        .map_err(|source| RunError::Write {
            path: rollouts_path.clone(),
            source,
        })?;
    let mut rollouts = std::io::BufWriter::new(rollouts_file);
    let mut sinks: Vec<SinkFn> = vec![Box::new(move |e: &RunEvent| {
        if let RunEvent::RolloutsSampled { .. } = e {
            if let Ok(line) = serde_json::to_string(e) {
                let _ = writeln!(rollouts, "{line}");
                let _ = rollouts.flush();
            }
            return;
        }
        if let Ok(line) = serde_json::to_string(e) {
            let _ = writeln!(log, "{line}");
        }
        if matches!(
            e,
            RunEvent::RunFinished { .. }
                | RunEvent::CheckpointWritten { .. }
                | RunEvent::Checkpointed { .. }
        ) {
            let _ = log.flush();
        }
    })];
    if progress {
        let bar = ProgressBar::new(config.run.iterations as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(config.name.clone());
        if let Some(iteration) = resumed_after {
            bar.set_position(iteration as u64);
        }
        let (mut reward, mut acc) = (0.0, 0.0);
        sinks.push(Box::new(move |e: &RunEvent| match e {
            RunEvent::RolloutsScored {
                mean_reward,
                accuracy,
                ..
            } => {
                reward = *mean_reward;
                acc = *accuracy;
            }
            RunEvent::GroupsFiltered {
                expansion_ratio_ema,
                not_valid_rate,
                ..
            } => {
                bar.set_message(format!(
                    "reward {reward:.3} acc {acc:.3} not_valid {not_valid_rate:.2} ratio_ema {expansion_ratio_ema:.2}"
                ));
            }
            RunEvent::LearnerStepped { .. } => bar.inc(1),
            RunEvent::Evaluated { label, accuracy } => {
                bar.println(format!("eval ({label}): accuracy {accuracy:.3}"));
            }
            RunEvent::ActorRestarted { actor, worker } => {
                bar.println(format!("restarted {actor} worker {worker}"));
            }
            RunEvent::RunResumed {
                from_iteration,
                rolled_back,
            } => {
                bar.println(format!(
                    "resumed after iteration {from_iteration} ({rolled_back} observations of later iterations rolled back)"
                ));
            }
            RunEvent::RunFinished { .. } => bar.finish(),
            _ => {}
        }));
    }
    Ok(sinks)
}

/// Cuts a run's event log after the line of the `checkpointed` event of
/// `iteration`, so a resumed run's log holds no event of the iterations it does
/// again; returns whether that line was found (without it nothing is cut). A line
/// cut off by a kill ends the search.
fn truncate_events_after(events: &Path, iteration: u32) -> std::io::Result<bool> {
    let text = match std::fs::read(events) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let needle = b"\"checkpointed\"";
    let mut cut = None;
    let mut offset = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        offset += line.len();
        let Some(body) = line.strip_suffix(b"\n") else {
            break;
        };
        if !body.windows(needle.len()).any(|w| w == needle) {
            continue;
        }
        if let Ok(RunEvent::Checkpointed { iteration: it, .. }) = serde_json::from_slice(body) {
            if it == iteration {
                cut = Some(offset);
            }
        }
    }
    let Some(cut) = cut else {
        return Ok(false);
    };
    let f = std::fs::OpenOptions::new().write(true).open(events)?;
    f.set_len(cut as u64)?;
    f.sync_all()?;
    Ok(true)
}

/// Builds the run's policy (the learner and every replica start from the same
/// seeded parameters).
/// The learner builder of a supervised stage: the run's model with the stage's
/// learning-rate schedule.
fn stage_policy_builder(
    config: &ExperimentConfig,
    stage: &config::SupervisedConfig,
) -> Result<PolicyBuilder, RunError> {
    let mut c = config.clone();
    c.tch.train.schedule = stage.schedule_over(&config.tch.train.schedule);
    policy_builder(&c)
}

fn policy_builder(config: &ExperimentConfig) -> Result<PolicyBuilder, RunError> {
    let seed = mix_seed(config.seed, 2);
    match config.policy.backend {
        config::Backend::Sim => {
            let sim = config.sim.clone();
            // Fail here, before the graph starts, on a bad config.
            SimulatedLearner::new(sim.clone(), seed)?;
            Ok(Arc::new(move || {
                Ok(Box::new(SimulatedLearner::new(sim.clone(), seed)?) as Box<dyn Policy>)
            }))
        }
        config::Backend::Tch => tch_builder(config, seed),
    }
}

#[cfg(feature = "torch")]
fn tch_builder(config: &ExperimentConfig, seed: u64) -> Result<PolicyBuilder, RunError> {
    use rlcs_model::vlm::TchPolicy;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut tch = config.tch.clone();
    tch.temperature = config.run.temperature as f64;
    // One device per policy in build order (the learner, then the replicas; a
    // restarted replica takes the next): `auto` spreads them over the GPUs by free
    // memory when discovery is built in. Each needs its weights, gradients and
    // AdamW moments plus working room.
    let params = {
        let mut cpu = tch.clone();
        cpu.device = "cpu".into();
        TchPolicy::new(cpu, seed)?.model.parameter_count() as u64
    };
    let gpus = rlcs_model::gpu::discover().ok();
    let devices = rlcs_model::gpu::plan_devices(
        &tch.device,
        config.actors.replicas + 1,
        params * 16 + (256 << 20),
        gpus.as_deref(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let build = move || {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let mut c = tch.clone();
        c.device = devices[i % devices.len()].clone();
        TchPolicy::new(c, seed)
    };
    Ok(Arc::new(move || Ok(Box::new(build()?) as Box<dyn Policy>)))
}

#[cfg(not(feature = "torch"))]
fn tch_builder(_: &ExperimentConfig, _: u64) -> Result<PolicyBuilder, RunError> {
    Err(RunError::Model(rlcs_model::ModelError::Config(
        "policy.backend = \"tch\" needs an rlcs built with the `torch` feature (the default)"
            .into(),
    )))
}

/// What the linked libtorch reports (with the `torch` feature).
#[cfg(feature = "torch")]
pub fn torch_info() -> Option<serde_json::Value> {
    serde_json::to_value(rlcs_model::torch::runtime_info()).ok()
}

/// What the linked libtorch reports (built without the `torch` feature: nothing).
#[cfg(not(feature = "torch"))]
pub fn torch_info() -> Option<serde_json::Value> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> ExperimentConfig {
        let src = format!(
            r#"name = "pools"
seed = 5
stages = ["pretrain", "sft", "rl"]
{extra}
[run]
iterations = 1
[[domains]]
name = "counting"
train = 20
eval = 10
[[domains]]
name = "arithmetic"
train = 20
eval = 10
[policy]
backend = "tch"
"#
        );
        ExperimentConfig::parse(&src, Path::new("pools.toml")).unwrap()
    }

    #[test]
    fn stage_data_is_drawn_apart_from_the_rl_splits() {
        let pools =
            build_pools(&config("[pretrain]\nsamples = 30\n[sft]\nsamples = 15\n")).unwrap();
        let split: HashSet<u64> = pools
            .train
            .iter()
            .chain(&pools.eval)
            .map(|s| s.id)
            .collect();
        for (data, per_domain) in [(&pools.pretrain, 30), (&pools.sft, 15)] {
            // Both domains, about `samples` each (a draw equal to a split sample is
            // left out), never a train or eval sample.
            for d in ["counting", "arithmetic"] {
                let n = data.iter().filter(|s| s.domain == d).count();
                assert!(n > per_domain * 8 / 10 && n <= per_domain, "{d}: {n}");
            }
            assert!(data.iter().all(|s| !split.contains(&s.id)));
        }
        let pre: HashSet<u64> = pools.pretrain.iter().map(|s| s.id).collect();
        assert!(pools.sft.iter().filter(|s| pre.contains(&s.id)).count() < 5);
        // The same config draws the same data; without `samples`, none is drawn.
        let again =
            build_pools(&config("[pretrain]\nsamples = 30\n[sft]\nsamples = 15\n")).unwrap();
        let ids = |v: &[Arc<Sample>]| v.iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(&again.pretrain), ids(&pools.pretrain));
        let plain = build_pools(&config("")).unwrap();
        assert!(plain.pretrain.is_empty() && plain.sft.is_empty());
        assert_eq!(ids(&plain.train), ids(&pools.train));
    }
}
