//! # rlcs-experiments
//!
//! Experiment files, the run driver and reports. [`run_experiment`] reads a TOML
//! experiment, builds the domain pools, opens the store, starts the actor graph,
//! evaluates, runs the RL iterations, evaluates again, and writes `report.json`,
//! `report.md` and `events.jsonl` into the run directory.
#![deny(missing_docs)]

pub mod bench;
pub mod config;
pub mod export;
pub mod inspect;
pub mod plot;
pub mod report;
pub mod score;
pub mod study;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use rlcs_actors::bus::SinkFn;
use rlcs_actors::driver::{RlDriver, RlPlan};
use rlcs_actors::graph::{GraphSpec, PoolSizes, RunGraph};
use rlcs_actors::pools::{FaultPlan, PolicyBuilder};
use rlcs_actors::{ActorsError, RunEvent};
use rlcs_curriculum::{Curriculum, PoolEntry};
use rlcs_domains::{build_pool, domain_by_name, mix_seed, stable_hash, PoolSpec, Sample};
use rlcs_model::sim::SimulatedLearner;
use rlcs_model::Policy;
use rlcs_storage::{RunRecord, RunStatus, Store};

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
    /// An earlier run named by `grade.from_run` cannot give offline tiers.
    #[error("reading offline tiers from {path}: {reason}")]
    Offline {
        /// The run directory or store.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// How a run is presented.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run directory; default `runs/<name>-<UTC timestamp>`.
    pub out: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress: bool,
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

fn utc_stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d, h, mi, sec) = civil_utc(secs);
    format!("{y:04}{m:02}{d:02}-{h:02}{mi:02}{sec:02}")
}

fn prepare_run_dir(path: &Path) -> Result<(), RunError> {
    let err = |reason: String| RunError::RunDir {
        path: path.to_path_buf(),
        reason,
    };
    if path.exists() {
        let mut entries = std::fs::read_dir(path).map_err(|e| err(e.to_string()))?;
        if entries.next().is_some() {
            return Err(err("exists and is not empty; choose another --out".into()));
        }
    }
    std::fs::create_dir_all(path).map_err(|e| err(e.to_string()))
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
}

/// Builds every domain's pool.
fn build_pools(config: &ExperimentConfig) -> Result<Pools, RunError> {
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    let mut verifiers = HashMap::new();
    for d in &config.domains {
        let pool_err = |reason: String| RunError::Pool {
            domain: d.name.clone(),
            reason,
        };
        let domain = domain_by_name(d.generator_name()).map_err(|e| pool_err(e.to_string()))?;
        let spec = PoolSpec {
            train: d.train,
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
        train.extend(pool.train.into_iter().map(rename));
        eval.extend(pool.eval.into_iter().map(rename));
    }
    Ok(Pools {
        train,
        eval,
        verifiers,
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

/// Runs an already-parsed experiment.
pub async fn run_config(
    config: ExperimentConfig,
    options: RunOptions,
) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    // Everything that can fail on bad input happens before the run directory exists.
    let Pools {
        train,
        eval,
        verifiers,
    } = build_pools(&config)?;
    let registry = Arc::new(Registry::builtin());
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
    let mut curriculum = Curriculum::new(
        config.curriculum.clone(),
        domain_names.clone(),
        entries.clone(),
        config.run.batch_size,
        mix_seed(config.seed, 1),
    )?;
    let sim_seed = mix_seed(config.seed, 2);
    let learner: Box<dyn Policy> = Box::new(SimulatedLearner::new(config.sim.clone(), sim_seed)?);
    let sim = config.sim.clone();
    let replica_builder: PolicyBuilder = Arc::new(move || {
        Ok(Box::new(SimulatedLearner::new(sim.clone(), sim_seed)?) as Box<dyn Policy>)
    });
    // An earlier run's history is read before anything is written.
    let from_run = match &config.grade.from_run {
        Some(from) => Some(offline_from_run(from, &curriculum)?),
        None => None,
    };

    let run_dir = options
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-{}", config.name, utc_stamp())));
    prepare_run_dir(&run_dir)?;
    let resolved = toml::to_string_pretty(&config).unwrap_or_default();
    write_file(&run_dir.join("config.resolved.toml"), resolved.as_bytes())?;
    let config_json = serde_json::to_value(&config).unwrap_or(serde_json::Value::Null);

    let mut table: HashMap<u64, Arc<Sample>> = HashMap::new();
    for s in train.iter().chain(&eval) {
        table.insert(s.id, s.clone());
    }
    let table = Arc::new(table);
    // Offline tiers: an earlier run's pass rates, then (overriding them) a grade stage.
    let mut offline_samples = 0;
    if let Some(rates) = from_run {
        offline_samples = curriculum.set_offline_pass_rates(&rates)?;
    }
    let mut grade_rollouts = 0;
    if config.grade.enabled {
        let graded = grade_stage(
            &config,
            &GradeInputs {
                table: table.clone(),
                train: &train,
                registry: registry.clone(),
                replica_builder: replica_builder.clone(),
                verifiers: verifiers.clone(),
                domain_names,
                entries,
            },
            &run_dir,
        )
        .await?;
        grade_rollouts = graded.iter().map(|g| g.2).sum();
        let rates: Vec<(u64, f32)> = graded
            .iter()
            .map(|&(id, ok, n)| (id, ok as f32 / n.max(1) as f32))
            .collect();
        offline_samples = offline_samples.max(curriculum.set_offline_pass_rates(&rates)?);
    }

    let store = Store::open_with(&run_dir.join("store"), config.store.backend)?;
    // The store records which samples it describes, so a later run reading it
    // (offline tiers, resume) can tell another dataset from this one.
    store.bind_dataset(&dataset_fingerprint(&train, &eval))?;
    let run_id = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| config.name.clone());
    let mut record = RunRecord {
        run: run_id,
        seed: config.seed,
        config: config_json.clone(),
        status: RunStatus::Running,
        last_iteration: 0,
    };
    store.put_run(&record)?;

    let sinks = event_sinks(&run_dir, &config, options.progress)?;
    let graph = RunGraph::start(GraphSpec {
        samples: table,
        curriculum,
        store,
        learner,
        replica_builder,
        registry,
        faults: Arc::new(FaultPlan::verifier_panic_on_job(
            config.testing.verifier_panic_on_job,
        )),
        pools: pool_sizes(&config),
        sinks,
    })
    .await?;

    let result = drive(&graph, &config, &eval, verifiers).await;
    let restarts = graph.restarts();
    // Record the outcome in the registry through the storage actor, then stop.
    let status = if result.is_ok() {
        RunStatus::Finished
    } else {
        RunStatus::Failed
    };
    record.status = status;
    record.last_iteration = result.as_ref().map(|r| r.records.len() as u32).unwrap_or(0);
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
    let Driven {
        records: iterations,
        initial: initial_eval,
        fin: final_eval,
        totals,
        curve: eval_curve,
    } = result?;
    let store_observations = match store_observations {
        Ok(ractor::rpc::CallResult::Success(n)) => n,
        _ => {
            return Err(RunError::Actors(ActorsError::Failed {
                actor: "storage".into(),
                reason: "did not report its observation count".into(),
            }))
        }
    };
    let report = Report {
        name: config.name.clone(),
        seed: config.seed,
        config: config_json,
        iterations,
        initial_eval,
        final_eval,
        eval_curve,
        totals: report::Totals {
            rollouts: totals.rollouts,
            samples_selected: totals.samples_selected,
            samples_scored: totals.samples_scored,
            restarts,
            store_observations,
            grade_rollouts,
            offline_samples,
        },
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    report.write(&run_dir)?;
    Ok(RunOutcome { run_dir, report })
}

fn pool_sizes(config: &ExperimentConfig) -> PoolSizes {
    PoolSizes {
        loaders: config.actors.loaders,
        replicas: config.actors.replicas,
        verifiers: config.actors.verifiers,
    }
}

fn plan_of(config: &ExperimentConfig, verifiers: HashMap<String, String>) -> RlPlan {
    RlPlan {
        group_size: config.run.group_size,
        temperature: config.run.temperature,
        top_p: config.run.top_p,
        seed: config.seed,
        timeout: Duration::from_millis(config.actors.timeout_ms),
        attempts: config.actors.attempts,
        loader_chunk: config.actors.loader_chunk,
        verifiers,
    }
}

/// Offline pass rates from an earlier run's stored history: successes / rollouts over
/// all of a sample's observations, for the samples of this pool.
fn offline_from_run(from: &Path, curriculum: &Curriculum) -> Result<Vec<(u64, f32)>, RunError> {
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
        if curriculum.stats(o.sample).is_some() {
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
struct GradeInputs<'a> {
    table: Arc<HashMap<u64, Arc<Sample>>>,
    train: &'a [Arc<Sample>],
    registry: Arc<Registry>,
    replica_builder: PolicyBuilder,
    verifiers: HashMap<String, String>,
    domain_names: Vec<String>,
    entries: Vec<PoolEntry>,
}

/// The grade stage: a graph of its own (initial policy, same pools, its own store in
/// `<run>/grade/store`) rolls out every train sample `grade.rollouts` times; returns
/// `(sample, successes, rollouts)` per train sample.
async fn grade_stage(
    config: &ExperimentConfig,
    inputs: &GradeInputs<'_>,
    run_dir: &Path,
) -> Result<Vec<(u64, usize, usize)>, RunError> {
    let dir = run_dir.join("grade");
    std::fs::create_dir_all(&dir).map_err(|e| RunError::RunDir {
        path: dir.clone(),
        reason: e.to_string(),
    })?;
    // The grade graph needs a curriculum actor; it is never asked to select.
    let curriculum = Curriculum::new(
        rlcs_curriculum::CurriculumConfig::with_sampler(SamplerKind::Uniform),
        inputs.domain_names.clone(),
        inputs.entries.clone(),
        config.run.batch_size,
        mix_seed(config.seed, 3),
    )?;
    let learner = (inputs.replica_builder)()?;
    let graph = RunGraph::start(GraphSpec {
        samples: inputs.table.clone(),
        curriculum,
        store: Store::open_with(&dir.join("store"), config.store.backend)?,
        learner,
        replica_builder: inputs.replica_builder.clone(),
        registry: inputs.registry.clone(),
        faults: Arc::new(FaultPlan::verifier_panic_on_job(None)),
        pools: pool_sizes(config),
        sinks: Vec::new(),
    })
    .await?;
    let driver = RlDriver::new(&graph, plan_of(config, inputs.verifiers.clone()));
    let result = driver
        .grade(inputs.train, config.grade.rollouts_per_sample(), "grade")
        .await;
    graph.shutdown().await;
    Ok(result?)
}

/// What [`drive`] returns.
struct Driven {
    records: Vec<rlcs_actors::driver::IterationRecord>,
    initial: rlcs_actors::driver::EvalResult,
    fin: rlcs_actors::driver::EvalResult,
    totals: rlcs_actors::driver::Totals,
    curve: Vec<report::EvalPoint>,
}

async fn drive(
    graph: &RunGraph,
    config: &ExperimentConfig,
    eval: &[Arc<Sample>],
    verifiers: HashMap<String, String>,
) -> Result<Driven, RunError> {
    let mut driver = RlDriver::new(graph, plan_of(config, verifiers));
    let k = config.run.eval_rollouts;
    let initial = driver.evaluate(eval, k, "initial").await?;
    let point = |iteration: usize, rollouts: usize, accuracy: f64| report::EvalPoint {
        iteration: iteration as u32,
        rollouts,
        steps: iteration as u32,
        accuracy,
    };
    let mut curve = vec![point(0, 0, initial.accuracy)];
    let mut records = Vec::with_capacity(config.run.iterations as usize);
    let (every, budget) = (config.run.eval_every, config.run.max_rollouts);
    for it in 1..=config.run.iterations {
        records.push(driver.iteration(it).await?);
        let spent = budget > 0 && driver.totals.rollouts >= budget;
        // The last iteration is evaluated once, as "final".
        if it == config.run.iterations || spent {
            break;
        }
        if every > 0 && it % every == 0 {
            let e = driver.evaluate(eval, k, &format!("iteration-{it}")).await?;
            curve.push(point(it as usize, driver.totals.rollouts, e.accuracy));
        }
    }
    let fin = driver.evaluate(eval, k, "final").await?;
    curve.push(point(records.len(), driver.totals.rollouts, fin.accuracy));
    driver.finish(records.len() as u32);
    Ok(Driven {
        records,
        initial,
        fin,
        totals: driver.totals.clone(),
        curve,
    })
}

fn event_sinks(
    run_dir: &Path,
    config: &ExperimentConfig,
    progress: bool,
) -> Result<Vec<SinkFn>, RunError> {
    let path = run_dir.join("events.jsonl");
    let file = std::fs::File::create(&path).map_err(|source| RunError::Write {
        path: path.clone(),
        source,
    })?;
    let mut log = std::io::BufWriter::new(file);
    let mut sinks: Vec<SinkFn> = vec![Box::new(move |e: &RunEvent| {
        if let Ok(line) = serde_json::to_string(e) {
            let _ = writeln!(log, "{line}");
        }
        if matches!(
            e,
            RunEvent::RunFinished { .. } | RunEvent::CheckpointWritten { .. }
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
            RunEvent::RunFinished { .. } => bar.finish(),
            _ => {}
        }));
    }
    Ok(sinks)
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
