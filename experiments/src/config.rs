//! Experiment files: TOML with documented defaults and errors that name the file,
//! line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rlcs_curriculum::CurriculumConfig;
use rlcs_domains::reader::OnBadRow;
use rlcs_model::sim::SimConfig;
use rlcs_rewards::plugins::{VerifierEntry, VerifierSpec};
use serde::{Deserialize, Serialize};

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name of the experiment; the run directory is `runs/<name>-<timestamp>`.
    pub name: String,
    /// The run's seed: every random choice derives from it.
    #[serde(default)]
    pub seed: u64,
    /// The recipe's stages, in this order: any of `pretrain`, `sft`, `grade`, `rl`,
    /// `eval`. Each hands its model to the next. Default (empty): `grade` when
    /// `grade.enabled`, then `rl` (which evaluates before and after).
    #[serde(default)]
    pub stages: Vec<StageName>,
    /// The grid `rlcs sweep` runs when given no `--set`: `key=v1,v2,…` entries,
    /// as on the command line. `rlcs run` ignores it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<String>,
    /// The `pretrain` stage: next-token training on the domains' image–text pairs.
    #[serde(default = "SupervisedConfig::pretrain")]
    pub pretrain: SupervisedConfig,
    /// The `sft` stage: long-CoT SFT on the domains' GLM-format templates.
    #[serde(default = "SupervisedConfig::sft")]
    pub sft: SupervisedConfig,
    /// The RL loop.
    #[serde(default)]
    pub run: RunConfig,
    /// Domains and their pools.
    pub domains: Vec<DomainConfig>,
    /// Which policy backend trains.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Simulated-learner parameters (used with `policy.backend = "sim"`).
    #[serde(default)]
    pub sim: SimConfig,
    /// The libtorch model (used with `policy.backend = "tch"`). Its training
    /// temperature is always `run.temperature`, the rollouts'.
    #[serde(default)]
    pub tch: rlcs_model::config::TchConfig,
    /// The curriculum.
    #[serde(default)]
    pub curriculum: CurriculumConfig,
    /// Pool sizes and request limits.
    #[serde(default)]
    pub actors: ActorsConfig,
    /// Offline difficulty grading before RL (a `grade` stage, or an earlier run's
    /// history).
    #[serde(default)]
    pub grade: GradeConfig,
    /// The run's store (`RUN_DIR/store`).
    #[serde(default)]
    pub store: StoreConfig,
    /// Metrics, spans and where spans go (`[telemetry]`).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Worker nodes serving the pools (`[cluster]`).
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Plug-in verifiers (`[verifiers.<name>]`): a domain or `data_source` of that
    /// name (or one of the entry's `aliases`) is scored by it; see
    /// [`rlcs_rewards::plugins`]. External processes run in the config file's
    /// directory unless the entry sets `cwd`, so relative script paths are read from
    /// there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verifiers: BTreeMap<String, VerifierEntry>,
    /// Switches for tests of supervision; leave unset in real runs.
    #[serde(default)]
    pub testing: TestingConfig,
}

/// The `[cluster]` table: worker nodes (`rlcs node --join`) that serve the verifier
/// and replica pools besides the local workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Where worker nodes join (`HOST:PORT`; port 0 picks a free one, printed at
    /// start). None: no cluster, unless `rlcs run --serve-cluster` names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The file holding the cluster's shared secret (relative to the config's
    /// directory); nodes must present the same one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_file: Option<PathBuf>,
    /// Verifier nodes to wait for before the run starts (default 0).
    pub wait_for_verifiers: usize,
    /// Replica nodes to wait for before the run starts (default 0).
    pub wait_for_replicas: usize,
    /// How long to wait for them, in seconds (default 120).
    pub join_timeout_s: f64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            listen: None,
            cookie_file: None,
            wait_for_verifiers: 0,
            wait_for_replicas: 0,
            join_timeout_s: 120.0,
        }
    }
}

impl ClusterConfig {
    /// The listen address, or why it is not one.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        self.listen
            .as_deref()
            .map(|a| {
                a.trim()
                    .parse()
                    .map_err(|e| format!("not an address (HOST:PORT with an IP): {a:?}: {e}"))
            })
            .transpose()
    }
}

/// The `[telemetry]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Collect metrics and the dashboard's state during the run (default true):
    /// the Prometheus registry, latency histograms, pool probes. Off, `--serve` is
    /// refused; the event log and `rollouts.jsonl` are written either way, so `rlcs
    /// dashboard` still works afterwards.
    pub metrics: bool,
    /// Keep the run's spans (default true): `RUN/spans.jsonl`, and the collector
    /// below. Spans are still made in the process unless `RLCS_TRACE=off`.
    pub spans: bool,
    /// An OTLP/HTTP collector for this run's spans, as `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// takes it (`http://host:4318`; `/v1/traces` is appended unless the path
    /// already ends with it). The environment variables name a collector for every
    /// span of the process; this one only for the run's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            metrics: true,
            spans: true,
            otlp_endpoint: None,
        }
    }
}

impl TelemetryConfig {
    /// The traces URL of [`TelemetryConfig::otlp_endpoint`], or why it is not one.
    pub fn otlp_traces_url(&self) -> Result<Option<String>, String> {
        let Some(e) = &self.otlp_endpoint else {
            return Ok(None);
        };
        let e = e.trim();
        let rest = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"))
            .ok_or_else(|| format!("must start with http:// or https://, got {e:?}"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("names no host: {e:?}"));
        }
        let base = e.trim_end_matches('/');
        Ok(Some(if base.ends_with("/v1/traces") {
            base.to_string()
        } else {
            format!("{base}/v1/traces")
        }))
    }
}

/// A stage of the recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageName {
    /// Multimodal pretraining (`[pretrain]`).
    Pretrain,
    /// Long-CoT SFT (`[sft]`).
    Sft,
    /// Offline difficulty grading (`[grade]`).
    Grade,
    /// RL with GRPO and the curriculum (`[run]`, `[curriculum]`).
    Rl,
    /// Per-domain accuracy on the held-out split.
    Eval,
}

impl StageName {
    /// The name in configs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Pretrain => "pretrain",
            StageName::Sft => "sft",
            StageName::Grade => "grade",
            StageName::Rl => "rl",
            StageName::Eval => "eval",
        }
    }
}

/// A supervised stage (`[pretrain]` or `[sft]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisedConfig {
    /// Learner steps (default 100).
    #[serde(default = "default_steps")]
    pub steps: u32,
    /// Examples per step (default 16), drawn from the stage's data without
    /// repeats until every sample was seen (a seeded order per epoch).
    #[serde(default = "default_examples")]
    pub batch_size: usize,
    /// Samples per domain drawn for this stage alone, from each domain's generator
    /// with a seed of the stage's own (so apart from the RL train and eval splits),
    /// at the domain's difficulty range. Default 0: the stage trains on the RL train
    /// split. Pretraining and SFT data are usually far larger than the RL pool.
    #[serde(default)]
    pub samples: usize,
    /// Learning-rate schedule of the stage (its own AdamW; the next stage starts a
    /// fresh one). Default: `tch.train.schedule`'s peak rate and floor, a tenth of
    /// the steps as warmup, the cosine ending at the last step.
    #[serde(default)]
    pub schedule: Option<rlcs_model::pack::Schedule>,
    /// Evaluate the held-out split after the stage (default: false for pretrain,
    /// true for sft). RL's initial evaluation reuses it.
    #[serde(default)]
    pub eval: Option<bool>,
    /// `[pretrain]` only: what each image–text sequence reads after its prompt —
    /// `"answer"` (default: the gold answer) or `"caption"` (the sample's
    /// description of its images, its template's thinking, then the answer). SFT
    /// always trains on the GLM-format template, so `[sft]` refuses the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<rlcs_actors::supervised::PretrainText>,
}

fn default_steps() -> u32 {
    100
}
fn default_examples() -> usize {
    16
}

impl SupervisedConfig {
    /// Defaults of `[pretrain]`.
    pub fn pretrain() -> Self {
        SupervisedConfig {
            steps: default_steps(),
            batch_size: default_examples(),
            samples: 0,
            schedule: None,
            eval: Some(false),
            text: None,
        }
    }

    /// Defaults of `[sft]`.
    pub fn sft() -> Self {
        SupervisedConfig {
            eval: Some(true),
            ..Self::pretrain()
        }
    }

    /// The stage's schedule given the model's (`base`).
    pub fn schedule_over(&self, base: &rlcs_model::pack::Schedule) -> rlcs_model::pack::Schedule {
        self.schedule.unwrap_or_else(|| rlcs_model::pack::Schedule {
            lr: base.lr,
            warmup_steps: u64::from(self.steps / 10),
            total_steps: u64::from(self.steps.max(1)),
            min_ratio: base.min_ratio,
        })
    }
}

/// The `[store]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Key-value engine of the run's store: `sled` (default) or `redb`.
    pub backend: rlcs_storage::BackendKind,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: rlcs_storage::DEFAULT_BACKEND,
        }
    }
}

/// The `[grade]` table: offline difficulty tiers for the curriculum, set before the
/// first RL iteration through [`rlcs_curriculum::Curriculum::set_offline_pass_rates`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradeConfig {
    /// Run a grade stage: roll out every train sample `rollouts` times with the
    /// initial policy through the replica and verifier pools, and use the pass rates
    /// as offline tiers (default false). These rollouts are counted in
    /// `totals.grade_rollouts`, not in `totals.rollouts`.
    pub enabled: bool,
    /// Rollouts per train sample in the grade stage (default 0, meaning 4 when
    /// `enabled`).
    pub rollouts: usize,
    /// An earlier run directory (or its `store` directory) whose stored difficulty
    /// history gives offline pass rates (successes / rollouts per sample, over all its
    /// observations); samples it never saw stay unseen (default: none). Relative paths
    /// are resolved against the experiment file's directory.
    pub from_run: Option<PathBuf>,
}

impl GradeConfig {
    /// Rollouts per sample of the grade stage (the default 4 when unset).
    pub fn rollouts_per_sample(&self) -> usize {
        if self.rollouts == 0 {
            4
        } else {
            self.rollouts
        }
    }
}

/// The `[run]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// RL iterations (default 30).
    pub iterations: u32,
    /// Groups trained on per iteration, B (default 32).
    pub batch_size: usize,
    /// Rollouts per prompt, G (default 8).
    pub group_size: usize,
    /// Sampling temperature (default 1.0).
    pub temperature: f32,
    /// Nucleus threshold; the paper uses 1.0 (default 1.0).
    pub top_p: f32,
    /// Rollouts per eval sample at the start and end of the run (default 4).
    pub eval_rollouts: usize,
    /// Sampling temperature of held-out evaluations; 0 decodes greedily, so one
    /// rollout per sample is enough and the figure is free of sampling noise.
    /// Default: `temperature`, the training rollouts'. (A libtorch model's logits
    /// are trained at `temperature`, so this is relative to it.)
    pub eval_temperature: Option<f32>,
    /// Evaluate the held-out split every this many iterations as well (default 0:
    /// only at the start and the end). Each point goes into the report's `eval_curve`.
    pub eval_every: u32,
    /// Stop the run once this many training rollouts are spent (checked after each
    /// iteration, so the last iteration may overshoot by up to one iteration's
    /// rollouts); 0 (default) means no budget: `iterations` decides.
    pub max_rollouts: usize,
    /// Write a checkpoint (curriculum, policy, progress) every this many iterations,
    /// and always before the first and after the last, so `rlcs run --resume` can
    /// continue the run (default 1; 0: only before the first and after the last).
    pub checkpoint_every: u32,
    /// How many of the newest checkpoints to keep on disk (default 2, at least 1).
    pub keep_checkpoints: usize,
    /// The domains RL (and grading) trains on; default (empty): every domain.
    /// Evaluation still covers every domain, so training on one and measuring all
    /// gives the cross-domain transfer table.
    pub train_domains: Vec<String>,
}

impl RunConfig {
    /// The temperature evaluations sample at: `eval_temperature`, else the rollouts'.
    pub fn eval_temperature(&self) -> f32 {
        self.eval_temperature.unwrap_or(self.temperature)
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            iterations: 30,
            batch_size: 32,
            group_size: 8,
            temperature: 1.0,
            top_p: 1.0,
            eval_rollouts: 4,
            eval_temperature: None,
            eval_every: 0,
            max_rollouts: 0,
            checkpoint_every: 1,
            keep_checkpoints: 2,
            train_domains: Vec::new(),
        }
    }
}

/// One `[[domains]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// Domain name: what the samples, the report, `[sim]` skills and transfer and
    /// `curriculum.rlcs.domain_weights` call it. Without `generator` it must be a
    /// built-in domain.
    pub name: String,
    /// Built-in generator that makes this domain's samples (default: `name`). Lets
    /// several domains share one generator with their own difficulty ranges, e.g.
    /// `name = "geometry"`, `generator = "arithmetic"`; their sample ids are distinct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    /// Train samples (default 1000; with `dataset`, every row not held out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<usize>,
    /// Held-out eval samples (default 200).
    #[serde(default = "default_eval")]
    pub eval: usize,
    /// Lowest difficulty (default 0).
    #[serde(default)]
    pub difficulty_min: f32,
    /// Highest difficulty (default 1).
    #[serde(default = "one")]
    pub difficulty_max: f32,
    /// A dataset file of verl rows (`.jsonl` or `.parquet`, relative to the config
    /// file) this domain's samples come from instead of a generator: every row is
    /// named after this domain; `eval` rows (a seeded draw) are held out, `train`
    /// caps the rest; rows outside `[difficulty_min, difficulty_max]` are left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<PathBuf>,
    /// The held-out rows from a file of their own (with `dataset`; default: held
    /// out of `dataset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_dataset: Option<PathBuf>,
    /// The verifier of every row of `dataset` (a built-in or a `[verifiers]` entry;
    /// default: the one the rows name through `verifier`, `ability` or
    /// `data_source`, which must then be one for the whole file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
    /// A row of `dataset` that cannot be read: `skip` (default; each one is logged
    /// with its file, row and field) or `fail` (the run does not start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_bad_row: Option<OnBadRow>,
}

impl DomainConfig {
    /// The built-in generator of this domain (`generator`, else `name`).
    pub fn generator_name(&self) -> &str {
        self.generator.as_deref().unwrap_or(&self.name)
    }

    /// Train samples of a generated domain (`train`, default 1000).
    pub fn train_or_default(&self) -> usize {
        self.train.unwrap_or(DEFAULT_TRAIN)
    }
}

/// Train samples of a generated domain when `train` is not given.
pub const DEFAULT_TRAIN: usize = 1000;
fn default_eval() -> usize {
    200
}
fn one() -> f32 {
    1.0
}

/// Policy backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The simulated learner.
    Sim,
    /// The libtorch vision-language model (the `[tch]` table; needs a build with
    /// the `torch` feature, the default).
    Tch,
}

/// The `[policy]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Backend: `sim` (default) or `tch`.
    pub backend: Backend,
    /// Weights the first stage starts from: a stage directory of an earlier run
    /// (`RUN/stages/<stage>`, holding `policy.weights`) or such a file (default:
    /// none, a fresh seeded model). Relative paths are resolved against the
    /// experiment file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            backend: Backend::Sim,
            init_from: None,
        }
    }
}

/// The `[actors]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActorsConfig {
    /// Data-loader workers (default 2).
    pub loaders: usize,
    /// Model replicas (default 2).
    pub replicas: usize,
    /// Verifier workers (default 2).
    pub verifiers: usize,
    /// Timeout of one request, in milliseconds (default 30000).
    pub timeout_ms: u64,
    /// Timeout of one request to the learner — a training step, a weights export —
    /// in milliseconds (default 600000: a step on a whole batch can take minutes on
    /// a CPU or a loaded machine; a hung learner still fails the run).
    pub learner_timeout_ms: u64,
    /// Attempts per pool job before the run fails (default 3).
    pub attempts: u32,
    /// Sample ids per loader job (default 16).
    pub loader_chunk: usize,
}

impl Default for ActorsConfig {
    fn default() -> Self {
        ActorsConfig {
            loaders: 2,
            replicas: 2,
            verifiers: 2,
            timeout_ms: 30_000,
            learner_timeout_ms: 600_000,
            attempts: 3,
            loader_chunk: 16,
        }
    }
}

/// The `[testing]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// Panic a verifier worker on this job number (1-based), once.
    pub verifier_panic_on_job: Option<u64>,
}

/// An error in a TOML file the user wrote (an experiment or a study), located in it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A value is out of range.
    #[error("{path}:{line}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key (0 when the key is absent and a default was bad).
        line: usize,
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// The 1-based line where dotted `key` (array indices as numbers) is written.
pub(crate) fn locate(src: &str, key: &str) -> Option<usize> {
    let doc = toml_edit::Document::parse(src).ok()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut span = None;
    let parts: Vec<&str> = key.split('.').collect();
    let mut i = 0;
    while i < parts.len() {
        let (k, v) = table.get_key_value(parts[i])?;
        span = k.span().or_else(|| v.span()).or(span);
        i += 1;
        if i == parts.len() {
            break;
        }
        if let Ok(idx) = parts[i].parse::<usize>() {
            let t = v.as_array_of_tables()?.get(idx)?;
            span = t.span().or(span);
            table = t;
            i += 1;
        } else {
            table = v.as_table_like()?;
        }
    }
    span.map(|s| line_col(src, s.start).0)
}

/// Reads a file the user wrote; errors name it.
pub(crate) fn read_source(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Deserialises TOML text; a syntax or schema error names `path`, line and column.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    src: &str,
    path: &Path,
) -> Result<T, ConfigError> {
    toml::from_str(src).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(src, s.start)).unwrap_or((0, 0));
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })
}

/// Reads the `[verifiers.<name>]` tables of a file (an experiment file, or a file
/// of only those tables), validated, with external commands set to run in the
/// file's directory. Other tables are ignored.
pub fn load_verifiers(path: &Path) -> Result<BTreeMap<String, VerifierEntry>, ConfigError> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(default)]
        verifiers: BTreeMap<String, VerifierEntry>,
    }
    let src = read_source(path)?;
    let only: Only = parse_toml(&src, path)?;
    for (name, entry) in &only.verifiers {
        if let Err(e) = rlcs_rewards::plugins::validate(name, entry) {
            let key = format!("verifiers.{name}");
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line: locate(&src, &key).unwrap_or(0),
                key,
                message: e.reason,
            });
        }
    }
    let mut holder = only.verifiers;
    resolve_verifier_dirs(&mut holder, path.parent().unwrap_or(Path::new(".")));
    Ok(holder)
}

/// External verifiers run in `base` (the config file's directory) unless their
/// `cwd` is absolute; a relative `cwd` is read from `base`.
fn resolve_verifier_dirs(entries: &mut BTreeMap<String, VerifierEntry>, base: &Path) {
    for entry in entries.values_mut() {
        if let VerifierSpec::External(c) = &mut entry.spec {
            c.cwd = Some(match c.cwd.take() {
                Some(dir) if dir.is_absolute() => dir,
                Some(dir) => base.join(dir),
                None => base.to_path_buf(),
            });
        }
    }
}

impl ExperimentConfig {
    /// Reads, parses and validates an experiment file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(&read_source(path)?, path)
    }

    /// Parses and validates experiment text; `path` names it in errors.
    pub fn parse(src: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: ExperimentConfig = parse_toml(src, path)?;
        config.pretrain.eval.get_or_insert(false);
        config.sft.eval.get_or_insert(true);
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: locate(src, &key).unwrap_or(0),
                key,
                message,
            })?;
        Ok(config)
    }

    /// Resolves relative paths in the config (datasets, `grade.from_run`,
    /// `policy.init_from`, verifier directories, the cluster's cookie file and a
    /// `tch.model.tokenizer` file) against `base`, the directory of the file they were
    /// written in.
    pub fn resolve_paths(&mut self, base: &Path) {
        for d in &mut self.domains {
            for p in [&mut d.dataset, &mut d.eval_dataset].into_iter().flatten() {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        if let Some(p) = &self.grade.from_run {
            if p.is_relative() {
                self.grade.from_run = Some(base.join(p));
            }
        }
        if let Some(p) = &self.policy.init_from {
            if p.is_relative() {
                self.policy.init_from = Some(base.join(p));
            }
        }
        resolve_verifier_dirs(&mut self.verifiers, base);
        if let rlcs_model::tokenizer::TokenizerSpec::HuggingFace { path } =
            &mut self.tch.model.tokenizer
        {
            if Path::new(path.as_str()).is_relative() {
                *path = base.join(path.as_str()).to_string_lossy().into_owned();
            }
        }
        if let Some(p) = &self.cluster.cookie_file {
            if p.is_relative() {
                self.cluster.cookie_file = Some(base.join(p));
            }
        }
    }

    /// Checks values; the error is `(dotted key, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((k.to_string(), m));
        if self.name.trim().is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return bad(
                "name",
                format!(
                    "must be non-empty and use only letters, digits, `-`, `_`, `.`; got {:?}",
                    self.name
                ),
            );
        }
        if let Err(m) = self.telemetry.otlp_traces_url() {
            return bad("telemetry.otlp_endpoint", m);
        }
        if let Err(m) = self.cluster.listen_addr() {
            return bad("cluster.listen", m);
        }
        if self.cluster.listen.is_some() && self.cluster.cookie_file.is_none() {
            return bad(
                "cluster.cookie_file",
                "a cluster needs a shared secret: name the file that holds it".into(),
            );
        }
        if !(self.cluster.join_timeout_s.is_finite() && self.cluster.join_timeout_s > 0.0) {
            return bad(
                "cluster.join_timeout_s",
                format!(
                    "must be a positive number of seconds, got {}",
                    self.cluster.join_timeout_s
                ),
            );
        }
        for (name, entry) in &self.verifiers {
            if let Err(e) = rlcs_rewards::plugins::validate(name, entry) {
                return bad(&format!("verifiers.{name}"), e.reason);
            }
        }
        for (i, s) in self.stages.iter().enumerate() {
            if self.stages[..i].contains(s) {
                return bad("stages", format!("`{}` is listed twice", s.as_str()));
            }
            if i > 0 && self.stages[i - 1] > *s {
                return bad(
                    "stages",
                    format!(
                        "`{}` cannot come after `{}`: the order is pretrain, sft, grade, rl, eval",
                        s.as_str(),
                        self.stages[i - 1].as_str()
                    ),
                );
            }
            if matches!(s, StageName::Pretrain | StageName::Sft)
                && self.policy.backend == Backend::Sim
            {
                return bad(
                    "stages",
                    format!(
                        "`{}` trains on text, which the simulated learner cannot: set policy.backend = \"tch\"",
                        s.as_str()
                    ),
                );
            }
        }
        if !self.stages.is_empty() && self.grade.enabled && !self.stages.contains(&StageName::Grade)
        {
            return bad(
                "grade.enabled",
                "is true but `stages` does not list \"grade\"; list it there instead".into(),
            );
        }
        for (name, st) in [("pretrain", &self.pretrain), ("sft", &self.sft)] {
            if st.steps == 0 {
                return bad(&format!("{name}.steps"), "must be at least 1".into());
            }
            if !(1..=4096).contains(&st.batch_size) {
                return bad(
                    &format!("{name}.batch_size"),
                    format!("must lie in [1, 4096], got {}", st.batch_size),
                );
            }
            if st.samples > 1_000_000 {
                return bad(
                    &format!("{name}.samples"),
                    format!("must be at most 1000000 per domain, got {}", st.samples),
                );
            }
            if let Some(sc) = &st.schedule {
                if let Err(m) = sc.validate(&format!("{name}.schedule")) {
                    let key = m.split_whitespace().next().unwrap_or(name).to_string();
                    return bad(key.trim_end_matches(':'), m);
                }
            }
        }
        if self.sft.text.is_some() {
            return bad(
                "sft.text",
                "only [pretrain] chooses its text; SFT always trains on the GLM-format template"
                    .into(),
            );
        }
        let r = &self.run;
        if r.iterations == 0 {
            return bad("run.iterations", "must be at least 1".into());
        }
        if r.batch_size == 0 {
            return bad("run.batch_size", "must be at least 1".into());
        }
        if !(2..=1024).contains(&r.group_size) {
            return bad(
                "run.group_size",
                format!(
                    "must lie in [2, 1024] (GRPO needs a group), got {}",
                    r.group_size
                ),
            );
        }
        if !(r.temperature > 0.0 && r.temperature.is_finite()) {
            return bad(
                "run.temperature",
                format!("must be positive, got {}", r.temperature),
            );
        }
        if !(r.top_p > 0.0 && r.top_p <= 1.0) {
            return bad("run.top_p", format!("must lie in (0, 1], got {}", r.top_p));
        }
        if r.eval_rollouts == 0 {
            return bad("run.eval_rollouts", "must be at least 1".into());
        }
        if let Some(t) = r.eval_temperature {
            if !(t >= 0.0 && t.is_finite()) {
                return bad(
                    "run.eval_temperature",
                    format!("must be a number of at least 0, got {t}"),
                );
            }
        }
        if r.keep_checkpoints == 0 {
            return bad("run.keep_checkpoints", "must be at least 1".into());
        }
        if self.grade.rollouts > 1024 {
            return bad(
                "grade.rollouts",
                format!("must lie in [1, 1024], got {}", self.grade.rollouts),
            );
        }
        if self.domains.is_empty() {
            return bad("domains", "at least one [[domains]] entry is needed".into());
        }
        for (i, t) in self.run.train_domains.iter().enumerate() {
            if !self.domains.iter().any(|d| &d.name == t) {
                return bad(
                    &format!("run.train_domains.{i}"),
                    format!("`{t}` is not one of the [[domains]]"),
                );
            }
            if self.run.train_domains[..i].contains(t) {
                return bad(
                    &format!("run.train_domains.{i}"),
                    format!("`{t}` is listed twice"),
                );
            }
        }
        for (i, d) in self.domains.iter().enumerate() {
            if d.dataset.is_some() {
                if d.generator.is_some() {
                    return bad(
                        &format!("domains.{i}.generator"),
                        "a domain draws its samples from a generator or from a `dataset`, not both"
                            .into(),
                    );
                }
            } else if let Some(key) = [
                ("eval_dataset", d.eval_dataset.is_some()),
                ("verifier", d.verifier.is_some()),
                ("on_bad_row", d.on_bad_row.is_some()),
            ]
            .into_iter()
            .find_map(|(k, set)| set.then_some(k))
            {
                return bad(
                    &format!("domains.{i}.{key}"),
                    "applies to a `dataset` domain only (this one is generated)".into(),
                );
            } else if let Err(e) = rlcs_domains::domain_by_name(d.generator_name()) {
                let key = if d.generator.is_some() {
                    "generator"
                } else {
                    "name"
                };
                return bad(&format!("domains.{i}.{key}"), e.to_string());
            }
            if d.name.trim().is_empty() {
                return bad(&format!("domains.{i}.name"), "must not be empty".into());
            }
            if self.domains[..i].iter().any(|o| o.name == d.name) {
                return bad(
                    &format!("domains.{i}.name"),
                    format!("domain `{}` is listed twice", d.name),
                );
            }
            if d.train == Some(0) {
                return bad(&format!("domains.{i}.train"), "must be at least 1".into());
            }
            for (k, v) in [
                ("difficulty_min", d.difficulty_min),
                ("difficulty_max", d.difficulty_max),
            ] {
                if !(0.0..=1.0).contains(&v) {
                    return bad(
                        &format!("domains.{i}.{k}"),
                        format!("must lie in [0, 1], got {v}"),
                    );
                }
            }
            if d.difficulty_min > d.difficulty_max {
                return bad(
                    &format!("domains.{i}.difficulty_min"),
                    "must not exceed difficulty_max".into(),
                );
            }
        }
        if let Err(m) = self.sim.validate() {
            let key = m.split_whitespace().next().unwrap_or("sim").to_string();
            return bad(&key, m);
        }
        if let Err(rlcs_model::ModelError::Config(m)) = self.tch.validate() {
            let field = m.split_whitespace().next().unwrap_or("");
            let key = if field.starts_with("tch.") {
                field.to_string()
            } else {
                format!("tch.{field}")
            };
            return bad(&key, m);
        }
        if let Err(m) = self.curriculum.validate() {
            let field = m.split_whitespace().next().unwrap_or("");
            return bad(&format!("curriculum.{field}"), m);
        }
        let a = &self.actors;
        for (k, v) in [
            ("loaders", a.loaders),
            ("replicas", a.replicas),
            ("verifiers", a.verifiers),
            ("loader_chunk", a.loader_chunk),
        ] {
            if !(1..=256).contains(&v) {
                return bad(
                    &format!("actors.{k}"),
                    format!("must lie in [1, 256], got {v}"),
                );
            }
        }
        if a.timeout_ms == 0 {
            return bad("actors.timeout_ms", "must be at least 1".into());
        }
        if a.learner_timeout_ms == 0 {
            return bad("actors.learner_timeout_ms", "must be at least 1".into());
        }
        if a.attempts == 0 {
            return bad("actors.attempts", "must be at least 1".into());
        }
        if self.testing.verifier_panic_on_job == Some(0) {
            return bad(
                "testing.verifier_panic_on_job",
                "jobs are numbered from 1".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error message of a config that must not parse.
    fn parse_err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const MINIMAL: &str = "name = \"t\"\n[[domains]]\nname = \"arithmetic\"\n";

    fn parse(s: &str) -> Result<ExperimentConfig, ConfigError> {
        ExperimentConfig::parse(s, Path::new("exp.toml"))
    }

    #[test]
    fn dataset_keys_belong_to_dataset_domains() {
        let both = "name = \"t\"\n[[domains]]\nname = \"m\"\ndataset = \"d.jsonl\"\ngenerator = \"stem\"\n";
        let e = parse_err(both);
        assert!(
            e.contains("exp.toml:5") && e.contains("domains.0.generator"),
            "{e}"
        );
        for key in [
            "eval_dataset = \"e.jsonl\"",
            "verifier = \"math\"",
            "on_bad_row = \"fail\"",
        ] {
            let e = parse_err(&format!("{MINIMAL}{key}\n"));
            let name = key.split(' ').next().unwrap_or_default();
            assert!(e.contains(&format!("domains.0.{name}")), "{e}");
        }
        let ok = parse("name = \"t\"\n[[domains]]\nname = \"m\"\ndataset = \"d.jsonl\"\non_bad_row = \"fail\"\n");
        let mut c = ok.unwrap();
        assert_eq!(c.domains[0].train, None);
        c.resolve_paths(Path::new("cfg"));
        assert_eq!(
            c.domains[0].dataset.as_deref(),
            Some(Path::new("cfg/d.jsonl"))
        );
    }

    #[test]
    fn a_tokenizer_file_is_read_from_the_config_directory() {
        use rlcs_model::tokenizer::TokenizerSpec;
        let src = format!(
            "{MINIMAL}[tch.model]\ntokenizer = {{ kind = \"hugging_face\", path = \"vocab.json\" }}\n"
        );
        let mut c = parse(&src).unwrap();
        c.resolve_paths(Path::new("cfg"));
        let want = Path::new("cfg")
            .join("vocab.json")
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            c.tch.model.tokenizer,
            TokenizerSpec::HuggingFace { path: want }
        );
        let abs = std::env::temp_dir()
            .join("v.json")
            .to_string_lossy()
            .into_owned();
        let mut c = parse(&src.replace("vocab.json", &abs)).unwrap();
        c.resolve_paths(Path::new("cfg"));
        assert_eq!(
            c.tch.model.tokenizer,
            TokenizerSpec::HuggingFace { path: abs }
        );
    }

    #[test]
    fn the_learner_has_a_timeout_of_its_own() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            (c.actors.timeout_ms, c.actors.learner_timeout_ms),
            (30_000, 600_000)
        );
        let e = parse_err(&format!("{MINIMAL}[actors]\nlearner_timeout_ms = 0\n"));
        assert!(
            e.contains("exp.toml:5") && e.contains("actors.learner_timeout_ms"),
            "{e}"
        );
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.run, RunConfig::default());
        assert_eq!(c.domains[0].train_or_default(), 1000);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse_err("name = \"t\"\n[run]\nlr = 3\n[[domains]]\nname = \"arithmetic\"\n");
        assert!(err.starts_with("exp.toml:3:"), "{err}");
        assert!(err.contains("unknown field `lr`"), "{err}");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let err =
            parse_err("name = \"t\"\n[run]\nbatch_size = 0\n[[domains]]\nname = \"arithmetic\"\n");
        assert_eq!(err, "exp.toml:3: `run.batch_size`: must be at least 1");
        let err = parse_err(
            "name = \"t\"\n[[domains]]\nname = \"arithmetic\"\n\n[[domains]]\nname = \"chess\"\n",
        );
        assert!(
            err.starts_with("exp.toml:6: `domains.1.name`: unknown domain `chess`"),
            "{err}"
        );
        let err = parse_err(&format!("{MINIMAL}[sim]\nmalformed_rate = 3.0\n"));
        assert!(err.starts_with("exp.toml:5: `sim.malformed_rate`"), "{err}");
        let err = parse_err(&format!(
            "{MINIMAL}[curriculum.expansion]\nmax_ratio = 0.5\n"
        ));
        assert!(
            err.starts_with("exp.toml:5: `curriculum.expansion.max_ratio`"),
            "{err}"
        );
    }

    #[test]
    fn pretraining_text_is_chosen_in_pretrain_only() {
        use rlcs_actors::supervised::PretrainText;
        assert_eq!(parse(MINIMAL).unwrap().pretrain.text, None);
        let c = parse(&format!("{MINIMAL}[pretrain]\ntext = \"caption\"\n")).unwrap();
        assert_eq!(c.pretrain.text, Some(PretrainText::Caption));
        let err = parse_err(&format!("{MINIMAL}[sft]\ntext = \"caption\"\n"));
        assert!(
            err.starts_with("exp.toml:5: `sft.text`: only [pretrain]"),
            "{err}"
        );
        let err = parse_err(&format!("{MINIMAL}[pretrain]\ntext = \"captions\"\n"));
        assert!(err.starts_with("exp.toml:5"), "{err}");
        assert!(err.contains("unknown variant `captions`"), "{err}");
    }

    #[test]
    fn the_eval_temperature_defaults_to_the_rollouts_and_is_checked() {
        let c = parse(&format!("{MINIMAL}[run]\ntemperature = 0.7\n")).unwrap();
        assert_eq!(c.run.eval_temperature(), 0.7);
        let c = parse(&format!(
            "{MINIMAL}[run]\ntemperature = 0.7\neval_temperature = 0.0\n"
        ))
        .unwrap();
        assert_eq!(c.run.eval_temperature(), 0.0);
        let err = parse_err(&format!("{MINIMAL}[run]\neval_temperature = -1.0\n"));
        assert_eq!(
            err,
            "exp.toml:5: `run.eval_temperature`: must be a number of at least 0, got -1"
        );
    }

    #[test]
    fn the_patch_stem_is_a_model_key_and_checked() {
        assert_eq!(
            parse(MINIMAL).unwrap().tch.model.patch_stem,
            rlcs_model::config::PatchStem::Linear
        );
        let c = parse(&format!("{MINIMAL}[tch.model]\npatch_stem = \"conv\"\n")).unwrap();
        assert_eq!(c.tch.model.patch_stem, rlcs_model::config::PatchStem::Conv);
        let err = parse_err(&format!(
            "{MINIMAL}[tch.model]\npatch_stem = \"conv\"\npatch_size = 6\n"
        ));
        assert!(
            err.starts_with("exp.toml:5: `tch.model.patch_stem`:") && err.contains("patch_size"),
            "{err}"
        );
        let err = parse_err(&format!("{MINIMAL}[tch.model]\npatch_stem = \"cnn\"\n"));
        assert!(
            err.starts_with("exp.toml:5:") && err.contains("`linear` or `conv`"),
            "{err}"
        );
    }

    #[test]
    fn telemetry_endpoint_is_checked_and_completed() {
        let c = parse(MINIMAL).unwrap();
        assert!(c.telemetry.metrics && c.telemetry.spans);
        assert_eq!(c.telemetry.otlp_traces_url(), Ok(None));
        let with = |e: &str| {
            parse(&format!("{MINIMAL}[telemetry]\notlp_endpoint = \"{e}\"\n"))
                .map(|c| c.telemetry.otlp_traces_url().unwrap().unwrap())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            with("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            with("https://otel.example:443/v1/traces/").unwrap(),
            "https://otel.example:443/v1/traces"
        );
        let err = with("127.0.0.1:4318").unwrap_err();
        assert!(
            err.starts_with("exp.toml:5: `telemetry.otlp_endpoint`: must start with http"),
            "{err}"
        );
        assert!(with("http:///v1/traces").unwrap_err().contains("no host"));
        let err = parse_err(&format!("{MINIMAL}[telemetry]\nmetric = false\n"));
        assert!(err.contains("unknown field `metric`"), "{err}");
    }

    #[test]
    fn malformed_toml_and_wrong_types_are_located() {
        let err = parse_err("name = \"t\"\n[run\n");
        assert!(err.starts_with("exp.toml:2:"), "{err}");
        let err = parse_err(
            "name = \"t\"\n[run]\niterations = \"many\"\n[[domains]]\nname = \"arithmetic\"\n",
        );
        assert!(err.starts_with("exp.toml:3:"), "{err}");
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn shipped_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&p).unwrap();
                // Study files (`rlcs study`) hold experiments under `[base]`.
                if text.lines().any(|l| l.trim() == "[study]") {
                    crate::study::Study::load(&p).unwrap_or_else(|e| panic!("{e}"));
                } else {
                    ExperimentConfig::load(&p).unwrap_or_else(|e| panic!("{e}"));
                }
                n += 1;
            }
        }
        assert!(n >= 2);
    }

    #[test]
    fn every_shipped_experiment_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // Study files (a [study] table) have their own schema.
            if path.extension().is_some_and(|e| e == "toml") && !text.contains("[study]") {
                let c = ExperimentConfig::load(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                for axis in &c.sweep {
                    crate::compare::SweepAxis::parse(axis).unwrap();
                }
                n += 1;
            }
        }
        assert!(n >= 5, "{n} configs");
    }
}
