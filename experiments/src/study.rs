//! Curriculum studies: every sampler on several scenarios, at an equal rollout budget,
//! through the real run path ([`crate::run_config`], the actor graph).
//!
//! A study file holds a base experiment (the `rlcs run` schema, under `[base]`), the
//! samplers to compare and a target eval accuracy (`[study]`), and named scenarios
//! (`[[scenarios]]`) whose `set` table is merged into the base: tables merge key by
//! key, anything else (numbers, strings, arrays such as `domains`) is replaced.
//!
//! ```toml
//! [study]
//! name = "demo"
//! target_accuracy = 0.6
//! baseline = "uniform"                       # label of the row others are compared with
//! samplers = [
//!   { sampler = "uniform", expansion = false }, # label defaults to the sampler name
//!   { sampler = "rlcs" },                       # expansion as the base config says
//!   { label = "rlcs-noexp", sampler = "rlcs", expansion = false },
//!   # per-row settings, merged after the scenario's:
//!   { label = "rlcs-balanced", sampler = "rlcs", set = { curriculum.rlcs.within_tier = "balanced" } },
//! ]
//!
//! [base]
//! name = "demo"
//! run = { batch_size = 32, max_rollouts = 20000, iterations = 200, eval_every = 5 }
//! domains = [{ name = "arithmetic", train = 2000 }]
//!
//! [[scenarios]]
//! name = "revisit"
//! description = "a small pool, seen over several epochs"
//! set = { domains = [{ name = "arithmetic", train = 300 }] }
//! ```
//!
//! Each scenario × sampler runs into `<out>/<scenario>/<label>/`; then the study writes
//! `<out>/study.json` (deterministic for a given file), `<out>/study.md` (the tables)
//! and `<out>/<scenario>.png` (eval accuracy against training rollouts, one line per
//! sampler).
//!
//! **Rollouts (steps) to target** is the first crossing of the target by the eval
//! curve, linearly interpolated between the last evaluation below the target and the
//! first at or above it; 0 when the initial policy already meets it, none when the
//! run never does. Rows with the uniform sampler skip the grade stage and
//! `grade.from_run` (uniform ignores tiers), so the baseline pays no grading. Grade-stage rollouts are not part of the budget nor of "rollouts to
//! target"; the table shows them separately and a ratio that includes them.
//!
//! Targets (checked for every row against the baseline, which should be uniform
//! without expansion at the same batch size): with ratio-EMA expansion on, at least
//! [`STEPS_TARGET`]× fewer training steps; in scenarios with offline tiers (a grade
//! stage or an earlier run) or where the baseline revisits the pool (at least
//! [`REVISIT_EPOCHS`] epochs), at least [`ROLLOUTS_TARGET`]× fewer rollouts; otherwise
//! at most [`NO_WORSE`]× the baseline's rollouts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{locate, ConfigError, ExperimentConfig};
use crate::plot::{LinePlot, PlotError, Series};
use crate::report::{EvalPoint, Report};
use crate::{RunError, RunOptions, SamplerKind};

/// Fewer training steps than the baseline that expansion must achieve.
pub const STEPS_TARGET: f64 = 1.5;
/// Fewer rollouts than the baseline needed with offline tiers or a revisited pool.
pub const ROLLOUTS_TARGET: f64 = 1.2;
/// Most rollouts, relative to the baseline, allowed elsewhere.
pub const NO_WORSE: f64 = 1.05;
/// Epochs over the train pool (baseline samples selected / pool size) from which a
/// scenario counts as revisiting its pool.
pub const REVISIT_EPOCHS: f64 = 2.0;

/// Errors of a study.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The study file cannot be read or parsed, or a value in it is wrong
    /// (`Invalid.key` is the dotted key in the study file).
    #[error(transparent)]
    File(#[from] ConfigError),
    /// One run of the study failed.
    #[error("scenario `{scenario}`, sampler `{label}`: {source}")]
    Run {
        /// The scenario.
        scenario: String,
        /// The sampler row.
        label: String,
        /// What failed.
        #[source]
        source: Box<RunError>,
    },
    /// The output directory is unusable.
    #[error("study directory {path}: {reason}")]
    OutDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing an output file failed.
    #[error("writing {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Drawing a plot failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// One row of the comparison: a sampler and its expansion switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerSpec {
    /// Row label and run directory name (default: the sampler name).
    #[serde(default)]
    pub label: Option<String>,
    /// Sampler name (`uniform`, `rlcs`, `dapo`, …).
    pub sampler: String,
    /// Ratio-EMA expansion on or off (default: as the base config says).
    #[serde(default)]
    pub expansion: Option<bool>,
    /// Settings merged into this row's experiment after the scenario's (the `rlcs
    /// run` schema), e.g. `{ curriculum = { rlcs = { within_tier = "balanced" } } }`,
    /// so variants of one sampler can sit side by side.
    #[serde(default)]
    pub set: toml::Table,
}

impl SamplerSpec {
    /// The row label.
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.sampler)
    }
}

/// The `[study]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudySettings {
    /// Study name (default output directory `runs/<name>-<timestamp>`).
    pub name: String,
    /// Eval accuracy every sampler races to.
    pub target_accuracy: f64,
    /// Label of the baseline row (default `uniform`).
    #[serde(default = "default_baseline")]
    pub baseline: String,
    /// The rows, in table order.
    pub samplers: Vec<SamplerSpec>,
    /// Seeds every cell runs with (default: the base experiment's seed alone). With
    /// several, ratios are paired per seed and rows give their mean and standard
    /// deviation; target verdicts use the mean.
    #[serde(default)]
    pub seeds: Vec<u64>,
}

fn default_baseline() -> String {
    "uniform".into()
}

/// One `[[scenarios]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Scenario name (a directory name).
    pub name: String,
    /// One line saying what it tests.
    #[serde(default)]
    pub description: String,
    /// Overrides merged into `[base]`.
    #[serde(default)]
    pub set: toml::Table,
}

/// A study file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyFile {
    /// Samplers and target.
    pub study: StudySettings,
    /// The base experiment.
    pub base: toml::Table,
    /// The scenarios, in order.
    pub scenarios: Vec<ScenarioSpec>,
}

/// A parsed and validated study: every scenario × sampler experiment, resolved.
#[derive(Debug, Clone)]
pub struct Study {
    /// The file as written.
    pub file: StudyFile,
    /// `experiments[scenario][row]`.
    pub experiments: Vec<Vec<ExperimentConfig>>,
}

/// Merges `over` into `base`: tables key by key (recursively), other values replaced.
pub fn merge_tables(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The dotted key (array indices as numbers) whose key or value spans `offset` in
/// `src`, innermost first.
fn key_at(src: &str, offset: usize) -> Option<String> {
    fn walk(t: &dyn toml_edit::TableLike, offset: usize, path: &mut Vec<String>) -> bool {
        for (k, item) in t.iter() {
            let key_hit = t
                .key(k)
                .and_then(|key| key.span())
                .is_some_and(|s| s.contains(&offset));
            path.push(k.to_string());
            let inner = match item {
                toml_edit::Item::Table(t) => {
                    t.span().is_some_and(|s| s.contains(&offset)) || walk(t, offset, path)
                }
                toml_edit::Item::ArrayOfTables(a) => {
                    let mut hit = false;
                    for (i, t) in a.iter().enumerate() {
                        path.push(i.to_string());
                        if walk(t, offset, path) || t.span().is_some_and(|s| s.contains(&offset)) {
                            hit = true;
                            break;
                        }
                        path.pop();
                    }
                    hit
                }
                toml_edit::Item::Value(v) => {
                    if let Some(it) = v.as_inline_table() {
                        walk(it, offset, path) || v.span().is_some_and(|s| s.contains(&offset))
                    } else if let Some(arr) = v.as_array() {
                        let mut hit = false;
                        for (i, e) in arr.iter().enumerate() {
                            if e.span().is_some_and(|s| s.contains(&offset)) {
                                path.push(i.to_string());
                                if let Some(it) = e.as_inline_table() {
                                    walk(it, offset, path);
                                }
                                hit = true;
                                break;
                            }
                        }
                        hit || v.span().is_some_and(|s| s.contains(&offset))
                    } else {
                        v.span().is_some_and(|s| s.contains(&offset))
                    }
                }
                toml_edit::Item::None => false,
            };
            if inner || key_hit {
                return true;
            }
            path.pop();
        }
        false
    }
    let doc = toml_edit::Document::parse(src).ok()?;
    let mut path = Vec::new();
    walk(doc.as_table(), offset, &mut path).then(|| path.join("."))
}

/// The line of the longest prefix of dotted `key` written in `src`.
fn locate_prefix(src: &str, key: &str) -> Option<usize> {
    let parts: Vec<&str> = key.split('.').collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| locate(src, &parts[..n].join(".")))
}

fn is_dir_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && s != "."
        && s != ".."
}

impl Study {
    /// Reads, parses and validates a study file.
    pub fn load(path: &Path) -> Result<Self, StudyError> {
        Self::parse(&crate::config::read_source(path)?, path)
    }

    /// Parses and validates study text; `path` names it in errors, and relative
    /// paths in the experiments are resolved against its directory.
    pub fn parse(src: &str, path: &Path) -> Result<Self, StudyError> {
        let file: StudyFile = crate::config::parse_toml(src, path)?;
        let invalid = |key: String, message: String| {
            StudyError::File(ConfigError::Invalid {
                path: path.to_path_buf(),
                line: locate_prefix(src, &key).unwrap_or(0),
                key,
                message,
            })
        };
        let s = &file.study;
        if !is_dir_name(&s.name) {
            return Err(invalid(
                "study.name".into(),
                format!(
                    "must be non-empty and use only letters, digits, `-`, `_`, `.`; got {:?}",
                    s.name
                ),
            ));
        }
        if !(s.target_accuracy > 0.0 && s.target_accuracy <= 1.0) {
            return Err(invalid(
                "study.target_accuracy".into(),
                format!("must lie in (0, 1], got {}", s.target_accuracy),
            ));
        }
        if s.samplers.is_empty() {
            return Err(invalid(
                "study.samplers".into(),
                "at least one sampler is needed".into(),
            ));
        }
        for (i, row) in s.samplers.iter().enumerate() {
            if SamplerKind::from_name(&row.sampler).is_none() {
                let known: Vec<&str> = SamplerKind::ALL.iter().map(|k| k.name()).collect();
                return Err(invalid(
                    format!("study.samplers.{i}.sampler"),
                    format!(
                        "unknown sampler `{}` (known: {})",
                        row.sampler,
                        known.join(", ")
                    ),
                ));
            }
            if !is_dir_name(row.label()) {
                return Err(invalid(
                    format!("study.samplers.{i}.label"),
                    format!(
                        "must use only letters, digits, `-`, `_`, `.`; got {:?}",
                        row.label()
                    ),
                ));
            }
            if s.samplers[..i].iter().any(|o| o.label() == row.label()) {
                return Err(invalid(
                    format!("study.samplers.{i}"),
                    format!(
                        "label `{}` is used twice; give the row a `label`",
                        row.label()
                    ),
                ));
            }
        }
        if let Some(i) = (1..s.seeds.len()).find(|&i| s.seeds[..i].contains(&s.seeds[i])) {
            return Err(invalid(
                "study.seeds".into(),
                format!("seed {} is listed twice", s.seeds[i]),
            ));
        }
        if !s.samplers.iter().any(|r| r.label() == s.baseline) {
            return Err(invalid(
                "study.baseline".into(),
                format!("no sampler row is labelled `{}`", s.baseline),
            ));
        }
        if file.scenarios.is_empty() {
            return Err(invalid(
                "scenarios".into(),
                "at least one [[scenarios]] entry is needed".into(),
            ));
        }
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let mut experiments = Vec::with_capacity(file.scenarios.len());
        for (i, sc) in file.scenarios.iter().enumerate() {
            if !is_dir_name(&sc.name) {
                return Err(invalid(
                    format!("scenarios.{i}.name"),
                    format!(
                        "must use only letters, digits, `-`, `_`, `.`; got {:?}",
                        sc.name
                    ),
                ));
            }
            if file.scenarios[..i].iter().any(|o| o.name == sc.name) {
                return Err(invalid(
                    format!("scenarios.{i}.name"),
                    format!("scenario `{}` is listed twice", sc.name),
                ));
            }
            let mut merged = file.base.clone();
            // Study runs are cheap to redo and many: unless the study says otherwise
            // they checkpoint only before the first and after the last iteration.
            if let toml::Value::Table(run) = merged
                .entry("run")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            {
                run.entry("checkpoint_every")
                    .or_insert(toml::Value::Integer(0));
            }
            merge_tables(&mut merged, &sc.set);
            let mut rows = Vec::with_capacity(s.samplers.len());
            for row in &s.samplers {
                let mut t = merged.clone();
                merge_tables(&mut t, &row.set);
                let name = format!("{}-{}-{}", s.name, sc.name, row.label());
                t.insert("name".into(), toml::Value::String(name));
                let cur = t
                    .entry("curriculum")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(cur) = cur {
                    cur.insert("sampler".into(), toml::Value::String(row.sampler.clone()));
                    if let Some(e) = row.expansion {
                        let exp = cur
                            .entry("expansion")
                            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                        if let toml::Value::Table(exp) = exp {
                            exp.insert("enabled".into(), toml::Value::Boolean(e));
                        }
                    }
                }
                let text = toml::to_string(&t).map_err(|e| {
                    invalid(format!("scenarios.{i}.set"), format!("cannot merge: {e}"))
                })?;
                let mut config = ExperimentConfig::parse(&text, Path::new("merged"))
                    .map_err(|e| scenario_error(src, &text, i, &sc.name, e, &invalid))?;
                config.resolve_paths(base_dir);
                // Uniform ignores tiers: grading for it would be pure waste.
                if config.curriculum.sampler == SamplerKind::Uniform {
                    config.grade = Default::default();
                }
                rows.push(config);
            }
            experiments.push(rows);
        }
        Ok(Study { file, experiments })
    }
}

/// Maps an error in a merged experiment back to the study file: the key is looked up
/// in the scenario's `set` first, then in `[base]`.
fn scenario_error(
    src: &str,
    merged: &str,
    scenario: usize,
    name: &str,
    e: ConfigError,
    invalid: &dyn Fn(String, String) -> StudyError,
) -> StudyError {
    let (key, message) = match e {
        ConfigError::Invalid { key, message, .. } => (Some(key), message),
        ConfigError::Parse {
            line,
            column,
            message,
            ..
        } => {
            // Offset of (line, column) in the merged text.
            let offset = merged
                .split_inclusive('\n')
                .take(line.saturating_sub(1))
                .map(str::len)
                .sum::<usize>()
                + column.saturating_sub(1);
            (key_at(merged, offset), message)
        }
        ConfigError::Read { source, .. } => (None, source.to_string()),
    };
    let message = format!("{message} (in scenario `{name}`)");
    match key {
        Some(k) => {
            let in_set = format!("scenarios.{scenario}.set.{k}");
            let in_base = format!("base.{k}");
            let key = if locate(src, &in_set).is_some() {
                in_set
            } else if locate(src, &in_base).is_some() {
                in_base
            } else {
                format!("scenarios.{scenario}.set.{k}")
            };
            invalid(key, message)
        }
        None => invalid(format!("scenarios.{scenario}"), message),
    }
}

/// The first crossing of `target` by `(x, accuracy)` points, linearly interpolated
/// between the last point below and the first at or above; 0 when the first point
/// already meets it; `None` when no point does.
pub fn first_crossing(points: &[(f64, f64)], target: f64) -> Option<f64> {
    let first = points.first()?;
    if first.1 >= target {
        return Some(first.0);
    }
    points.windows(2).find_map(|w| {
        let ((x0, a0), (x1, a1)) = (w[0], w[1]);
        (a1 >= target).then(|| {
            if a1 > a0 {
                x0 + (target - a0) / (a1 - a0) * (x1 - x0)
            } else {
                x1
            }
        })
    })
}

/// One row of a scenario's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRow {
    /// Row label.
    pub label: String,
    /// Sampler name.
    pub sampler: String,
    /// Ratio-EMA expansion on.
    pub expansion: bool,
    /// Training rollouts to reach the target (interpolated), if reached.
    pub rollouts_to_target: Option<f64>,
    /// Training steps to reach the target (interpolated), if reached.
    pub steps_to_target: Option<f64>,
    /// Eval accuracy at the end.
    pub final_accuracy: f64,
    /// Training rollouts spent.
    pub rollouts: usize,
    /// Training steps taken.
    pub steps: usize,
    /// Rollouts of the grade stage (not in `rollouts`).
    pub grade_rollouts: usize,
    /// Baseline rollouts to target / this row's (higher is better).
    pub rollouts_speedup: Option<f64>,
    /// As `rollouts_speedup`, with each side's grade rollouts added.
    pub rollouts_speedup_with_grade: Option<f64>,
    /// Baseline steps to target / this row's (higher is better).
    pub steps_speedup: Option<f64>,
    /// Which targets apply and whether they are met; `None` for the baseline.
    pub target: Option<TargetCheck>,
    /// The eval curve (of the first seed).
    pub curve: Vec<EvalPoint>,
    /// Standard deviation of `rollouts_speedup` over seeds (several seeds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollouts_speedup_sd: Option<f64>,
    /// Standard deviation of `steps_speedup` over seeds (several seeds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_speedup_sd: Option<f64>,
    /// Each seed's own numbers (several seeds only); the row's are their means.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_seed: Vec<SeedRow>,
}

/// One seed's numbers of a study row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedRow {
    /// The seed.
    pub seed: u64,
    /// Training rollouts to the target, if reached.
    pub rollouts_to_target: Option<f64>,
    /// Training steps to the target, if reached.
    pub steps_to_target: Option<f64>,
    /// Final eval accuracy.
    pub final_accuracy: f64,
    /// Baseline (same seed) rollouts to target / this row's.
    pub rollouts_speedup: Option<f64>,
    /// As `rollouts_speedup`, grade rollouts included.
    pub rollouts_speedup_with_grade: Option<f64>,
    /// Baseline (same seed) steps to target / this row's.
    pub steps_speedup: Option<f64>,
}

/// The targets that apply to a row and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    /// `Some(met)` when the steps target applies (expansion on).
    pub steps: Option<bool>,
    /// The rollouts rule that applies: `fewer` (≥ 1.2× fewer) or `no_worse` (≤ 1.05×).
    pub rollouts_rule: String,
    /// Whether the rollouts rule is met on training rollouts.
    pub rollouts: bool,
    /// Whether it is met when grade rollouts count too.
    pub rollouts_with_grade: bool,
    /// Everything that applies is met (training rollouts).
    pub met: bool,
}

/// One scenario's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Train pool size (all domains).
    pub pool: usize,
    /// Training rollout budget per run (0: none).
    pub max_rollouts: usize,
    /// Whether offline tiers exist (grade stage or an earlier run).
    pub offline_tiers: bool,
    /// Epochs over the pool the baseline ran (samples selected / pool).
    pub baseline_epochs: f64,
    /// The rows, in study order.
    pub rows: Vec<StudyRow>,
}

/// The whole study (`study.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyResult {
    /// Study name.
    pub name: String,
    /// Target eval accuracy.
    pub target_accuracy: f64,
    /// Baseline row label.
    pub baseline: String,
    /// The seeds every cell ran with.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Per scenario.
    pub scenarios: Vec<ScenarioResult>,
}

/// How a study is run.
#[derive(Debug, Clone, Default)]
pub struct StudyOptions {
    /// Output directory; default `runs/<study name>-<UTC timestamp>`.
    pub out: Option<PathBuf>,
    /// Print one line per finished run on stderr.
    pub progress: bool,
    /// The code revision, recorded in every run's registry entry.
    pub code_revision: Option<String>,
}

/// A finished study.
#[derive(Debug)]
pub struct StudyOutcome {
    /// Where its files are.
    pub out: PathBuf,
    /// The results.
    pub result: StudyResult,
    /// Wall time of the whole study, seconds.
    pub wall_seconds: f64,
}

fn speedup(base: Option<f64>, row: Option<f64>) -> Option<f64> {
    match (base, row) {
        (Some(b), Some(r)) if r > 0.0 => Some(b / r),
        // Both at the target from the start: no difference.
        (Some(b), Some(_)) if b <= 0.0 => Some(1.0),
        (Some(_), Some(_)) => Some(f64::INFINITY),
        _ => None,
    }
}

fn row_of(label: &str, config: &ExperimentConfig, report: &Report, target: f64) -> StudyRow {
    let by = |f: fn(&EvalPoint) -> f64| -> Option<f64> {
        let pts: Vec<(f64, f64)> = report
            .eval_curve
            .iter()
            .map(|p| (f(p), p.accuracy))
            .collect();
        first_crossing(&pts, target)
    };
    StudyRow {
        label: label.to_string(),
        sampler: config.curriculum.sampler.name().to_string(),
        expansion: config.curriculum.expansion.enabled
            && config.curriculum.sampler != SamplerKind::Dapo,
        rollouts_to_target: by(|p| p.rollouts as f64),
        steps_to_target: by(|p| p.steps as f64),
        final_accuracy: report.final_eval.accuracy,
        rollouts: report.totals.rollouts,
        steps: report.iterations.len(),
        grade_rollouts: report.totals.grade_rollouts,
        rollouts_speedup: None,
        rollouts_speedup_with_grade: None,
        steps_speedup: None,
        target: None,
        curve: report.eval_curve.clone(),
        rollouts_speedup_sd: None,
        steps_speedup_sd: None,
        per_seed: Vec::new(),
    }
}

/// Mean and (sample) standard deviation of values that are all present; `None`
/// when any is missing.
fn mean_sd(values: &[Option<f64>]) -> Option<(f64, f64)> {
    let v: Vec<f64> = values.iter().copied().collect::<Option<_>>()?;
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some((mean, sd))
}

/// One row from its per-seed rows (ratios already filled per seed): means, the
/// spread of the ratios, and every seed's numbers.
fn aggregate(mut per_seed: Vec<(u64, StudyRow)>) -> Option<StudyRow> {
    if per_seed.len() < 2 {
        return per_seed.pop().map(|(_, r)| r);
    }
    let rows: Vec<&StudyRow> = per_seed.iter().map(|(_, r)| r).collect();
    let mean = |f: &dyn Fn(&StudyRow) -> Option<f64>| {
        mean_sd(&rows.iter().map(|r| f(r)).collect::<Vec<_>>())
    };
    let n = rows.len().max(1) as f64;
    let avg = |f: &dyn Fn(&StudyRow) -> f64| rows.iter().map(|r| f(r)).sum::<f64>() / n;
    let mut row = rows[0].clone();
    row.rollouts_to_target = mean(&|r| r.rollouts_to_target).map(|m| m.0);
    row.steps_to_target = mean(&|r| r.steps_to_target).map(|m| m.0);
    row.final_accuracy = avg(&|r| r.final_accuracy);
    row.rollouts = avg(&|r| r.rollouts as f64).round() as usize;
    row.steps = avg(&|r| r.steps as f64).round() as usize;
    row.grade_rollouts = avg(&|r| r.grade_rollouts as f64).round() as usize;
    let speed = mean(&|r| r.rollouts_speedup);
    let steps = mean(&|r| r.steps_speedup);
    row.rollouts_speedup = speed.map(|m| m.0);
    row.rollouts_speedup_sd = speed.map(|m| m.1);
    row.steps_speedup = steps.map(|m| m.0);
    row.steps_speedup_sd = steps.map(|m| m.1);
    row.rollouts_speedup_with_grade = mean(&|r| r.rollouts_speedup_with_grade).map(|m| m.0);
    row.per_seed = per_seed
        .iter()
        .map(|(seed, r)| SeedRow {
            seed: *seed,
            rollouts_to_target: r.rollouts_to_target,
            steps_to_target: r.steps_to_target,
            final_accuracy: r.final_accuracy,
            rollouts_speedup: r.rollouts_speedup,
            rollouts_speedup_with_grade: r.rollouts_speedup_with_grade,
            steps_speedup: r.steps_speedup,
        })
        .collect();
    Some(row)
}

/// Fills the ratios and target verdicts of `rows` against the baseline row.
#[cfg(test)]
fn compare(rows: &mut [StudyRow], baseline: usize, fewer_rule: bool) {
    fill_ratios(rows, baseline);
    judge(rows, baseline, fewer_rule);
}

/// Fills the ratios of `rows` against the baseline row (all of one seed).
fn fill_ratios(rows: &mut [StudyRow], baseline: usize) {
    let b = rows[baseline].clone();
    let with_grade = |r: &StudyRow| r.rollouts_to_target.map(|x| x + r.grade_rollouts as f64);
    for r in rows.iter_mut() {
        r.rollouts_speedup = speedup(b.rollouts_to_target, r.rollouts_to_target);
        r.rollouts_speedup_with_grade = speedup(with_grade(&b), with_grade(r));
        r.steps_speedup = speedup(b.steps_to_target, r.steps_to_target);
    }
}

/// Fills the target verdicts of `rows` from their ratios.
fn judge(rows: &mut [StudyRow], baseline: usize, fewer_rule: bool) {
    for (k, r) in rows.iter_mut().enumerate() {
        if k == baseline {
            continue;
        }
        let rule = |s: Option<f64>| match s {
            Some(s) if fewer_rule => s >= ROLLOUTS_TARGET,
            Some(s) => s >= 1.0 / NO_WORSE,
            None => false,
        };
        let steps = r
            .expansion
            .then(|| r.steps_speedup.is_some_and(|s| s >= STEPS_TARGET));
        let rollouts = rule(r.rollouts_speedup);
        r.target = Some(TargetCheck {
            steps,
            rollouts_rule: if fewer_rule { "fewer" } else { "no_worse" }.into(),
            rollouts,
            rollouts_with_grade: rule(r.rollouts_speedup_with_grade),
            met: rollouts && steps.unwrap_or(true),
        });
    }
}

/// Runs every scenario × sampler of the study in `path` and writes the study files.
pub async fn run_study(path: &Path, options: StudyOptions) -> Result<StudyOutcome, StudyError> {
    let study = Study::load(path)?;
    run_loaded(study, options).await
}

/// Runs an already-loaded study.
pub async fn run_loaded(study: Study, options: StudyOptions) -> Result<StudyOutcome, StudyError> {
    let started = std::time::Instant::now();
    let s = &study.file.study;
    let out = options.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{}-{}", s.name, crate::utc_stamp()))
    });
    crate::prepare_run_dir(&out).map_err(|e| StudyError::OutDir {
        path: out.clone(),
        reason: e.to_string(),
    })?;
    let baseline = s
        .samplers
        .iter()
        .position(|r| r.label() == s.baseline)
        .unwrap_or(0);
    let seeds: Vec<u64> = if s.seeds.is_empty() {
        vec![study
            .experiments
            .first()
            .and_then(|c| c.first())
            .map(|c| c.seed)
            .unwrap_or(0)]
    } else {
        s.seeds.clone()
    };
    let several = seeds.len() > 1;
    let total = study.experiments.len() * s.samplers.len() * seeds.len();
    let mut done = 0;
    let mut scenarios = Vec::with_capacity(study.file.scenarios.len());
    for (sc, configs) in study.file.scenarios.iter().zip(&study.experiments) {
        // per_seed[row] = that row's (seed, row) for every seed.
        let mut per_seed: Vec<Vec<(u64, StudyRow)>> = vec![Vec::new(); configs.len()];
        let mut reports = Vec::with_capacity(configs.len());
        for &seed in &seeds {
            let mut rows = Vec::with_capacity(configs.len());
            for (spec, config) in s.samplers.iter().zip(configs) {
                let mut config = config.clone();
                config.seed = seed;
                let mut dir = out.join(&sc.name).join(spec.label());
                if several {
                    dir = dir.join(format!("seed-{seed}"));
                }
                let outcome = crate::run_config(
                    config.clone(),
                    RunOptions {
                        out: Some(dir),
                        progress: false,
                        code_revision: options.code_revision.clone(),
                        prior_stages: Vec::new(),
                        serve: None,
                        spans: false,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| StudyError::Run {
                    scenario: sc.name.clone(),
                    label: spec.label().to_string(),
                    source: Box::new(e),
                })?;
                let row = row_of(spec.label(), &config, &outcome.report, s.target_accuracy);
                done += 1;
                if options.progress {
                    eprintln!(
                        "[{done}/{total}] {}/{} seed {seed}: final accuracy {:.3}, {} rollouts, {} steps, target at {} rollouts ({:.1} s)",
                        sc.name,
                        row.label,
                        row.final_accuracy,
                        row.rollouts,
                        row.steps,
                        row.rollouts_to_target
                            .map(|r| format!("{r:.0}"))
                            .unwrap_or_else(|| "never".into()),
                        outcome.report.wall_seconds
                    );
                }
                rows.push(row);
                if seed == seeds[0] {
                    reports.push(outcome.report);
                }
            }
            fill_ratios(&mut rows, baseline);
            for (k, r) in rows.into_iter().enumerate() {
                per_seed[k].push((seed, r));
            }
        }
        let mut rows: Vec<StudyRow> = per_seed.into_iter().filter_map(aggregate).collect();
        let first = &configs[baseline];
        let pool = match reports[baseline].totals.train_pool {
            // Reports written before the pool size was recorded.
            0 => first.domains.iter().map(|d| d.train_or_default()).sum(),
            n => n,
        };
        let baseline_epochs = reports[baseline].totals.samples_selected as f64 / pool.max(1) as f64;
        let offline_tiers = configs
            .iter()
            .any(|c| c.grade.enabled || c.grade.from_run.is_some());
        judge(
            &mut rows,
            baseline,
            offline_tiers || baseline_epochs >= REVISIT_EPOCHS,
        );
        scenarios.push(ScenarioResult {
            name: sc.name.clone(),
            description: sc.description.clone(),
            pool,
            max_rollouts: first.run.max_rollouts,
            offline_tiers,
            baseline_epochs,
            rows,
        });
    }
    let result = StudyResult {
        name: s.name.clone(),
        target_accuracy: s.target_accuracy,
        baseline: s.baseline.clone(),
        seeds,
        scenarios,
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    write_outputs(&out, &result, wall_seconds)?;
    Ok(StudyOutcome {
        out,
        result,
        wall_seconds,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), StudyError> {
    std::fs::write(path, bytes).map_err(|e| StudyError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn write_outputs(out: &Path, result: &StudyResult, wall_seconds: f64) -> Result<(), StudyError> {
    let json = serde_json::to_vec_pretty(result).map_err(|e| StudyError::Write {
        path: out.join("study.json"),
        reason: e.to_string(),
    })?;
    write(&out.join("study.json"), &json)?;
    write(
        &out.join("study.md"),
        result.markdown(Some(wall_seconds)).as_bytes(),
    )?;
    for sc in &result.scenarios {
        let plot = LinePlot {
            title: format!("{}: eval accuracy vs training rollouts", sc.name),
            x_label: "training rollouts".into(),
            y_label: "eval accuracy".into(),
            series: sc
                .rows
                .iter()
                .map(|r| Series {
                    label: r.label.clone(),
                    points: r
                        .curve
                        .iter()
                        .map(|p| (p.rollouts as f64, p.accuracy))
                        .collect(),
                })
                .collect(),
            hline: Some((
                result.target_accuracy,
                format!("target {}", result.target_accuracy),
            )),
            ..LinePlot::default()
        };
        write(&out.join(format!("{}.png", sc.name)), &plot.to_png()?)?;
    }
    Ok(())
}

fn opt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_infinite() => "∞".into(),
        Some(x) => format!("{x:.digits$}"),
        None => "not reached".into(),
    }
}

fn ratio(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_infinite() => "∞".into(),
        Some(x) => format!("{x:.2}×"),
        None => "—".into(),
    }
}

/// A ratio with its spread over seeds, when there is one.
fn ratio_sd(v: Option<f64>, sd: Option<f64>) -> String {
    match (v, sd) {
        (Some(x), Some(d)) if x.is_finite() && d.is_finite() => format!("{x:.2}× ± {d:.2}"),
        _ => ratio(v),
    }
}

impl StudyResult {
    /// The tables of `study.md`; `wall_seconds`, when given, is stated.
    pub fn markdown(&self, wall_seconds: Option<f64>) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Curriculum study: {}\n", self.name);
        let _ = writeln!(
            s,
            "Target eval accuracy {}. Baseline row: `{}`. Ratios are baseline / row (higher is \
             better): \"to target\" is the first crossing of the target by the eval curve, \
             linearly interpolated between evaluations. The rollout budget counts training \
             rollouts only; grade-stage rollouts are shown separately, and the \"incl. grade\" \
             ratio adds them to both sides. Targets: expansion on → ≥ {STEPS_TARGET}× fewer \
             steps; offline tiers or a revisited pool (≥ {REVISIT_EPOCHS} baseline epochs) → \
             ≥ {ROLLOUTS_TARGET}× fewer rollouts; otherwise ≤ {NO_WORSE}× the baseline's \
             rollouts.",
            self.target_accuracy, self.baseline
        );
        if self.seeds.len() > 1 {
            let seeds: Vec<String> = self.seeds.iter().map(|s| s.to_string()).collect();
            let _ = writeln!(
                s,
                "\nSeeds {}: every number is the mean over seeds; ratios are paired (row and \
                 baseline of the same seed) and shown ± one standard deviation; verdicts use \
                 the mean. Each seed's numbers are in `study.json` (`per_seed`).",
                seeds.join(", ")
            );
        }
        if let Some(w) = wall_seconds {
            let _ = writeln!(s, "\nWall time of the whole study: {w:.1} s.");
        }
        for sc in &self.scenarios {
            let _ = writeln!(s, "\n## {}\n", sc.name);
            if !sc.description.is_empty() {
                let _ = writeln!(s, "{}\n", sc.description);
            }
            let rule = if sc.offline_tiers || sc.baseline_epochs >= REVISIT_EPOCHS {
                format!("≥ {ROLLOUTS_TARGET}× fewer rollouts")
            } else {
                format!("≤ {NO_WORSE}× the baseline's rollouts")
            };
            let _ = writeln!(
                s,
                "Train pool {}, budget {} training rollouts per run, offline tiers: {}, \
                 baseline epochs over the pool: {:.2}. Rollouts rule here: {rule}. \
                 Curves: `{}.png`.\n",
                sc.pool,
                if sc.max_rollouts == 0 {
                    "none".to_string()
                } else {
                    sc.max_rollouts.to_string()
                },
                if sc.offline_tiers { "yes" } else { "no" },
                sc.baseline_epochs,
                sc.name
            );
            let _ = writeln!(
                s,
                "| sampler | expansion | rollouts to target | steps to target | final accuracy | \
                 rollouts ratio | steps ratio | grade rollouts | rollouts ratio incl. grade | \
                 target met? |\n|---|---|---|---|---|---|---|---|---|---|"
            );
            for r in &sc.rows {
                let verdict = match &r.target {
                    None => "baseline".to_string(),
                    Some(t) => {
                        let mut parts = Vec::new();
                        if let Some(ok) = t.steps {
                            parts.push(format!("steps {}", if ok { "yes" } else { "NO" }));
                        }
                        parts.push(format!(
                            "rollouts {}",
                            if t.rollouts { "yes" } else { "NO" }
                        ));
                        if r.grade_rollouts > 0 || sc.offline_tiers {
                            parts.push(format!(
                                "incl. grade {}",
                                if t.rollouts_with_grade { "yes" } else { "NO" }
                            ));
                        }
                        format!(
                            "**{}** ({})",
                            if t.met { "yes" } else { "no" },
                            parts.join(", ")
                        )
                    }
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {:.3} | {} | {} | {} | {} | {} |",
                    r.label,
                    if r.expansion { "on" } else { "off" },
                    opt(r.rollouts_to_target, 0),
                    opt(r.steps_to_target, 1),
                    r.final_accuracy,
                    ratio_sd(r.rollouts_speedup, r.rollouts_speedup_sd),
                    ratio_sd(r.steps_speedup, r.steps_speedup_sd),
                    r.grade_rollouts,
                    ratio(r.rollouts_speedup_with_grade),
                    verdict
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUDY: &str = r#"[study]
name = "t"
target_accuracy = 0.5
samplers = [
  { sampler = "uniform", expansion = false },
  { sampler = "rlcs" },
  { label = "rlcs-bal", sampler = "rlcs", set = { curriculum.rlcs.within_tier = "balanced", run.batch_size = 2 } },
]

[base]
name = "ignored"
seed = 3
[base.run]
iterations = 4
batch_size = 8
[[base.domains]]
name = "arithmetic"
train = 100
eval = 20

[[scenarios]]
name = "small"
[scenarios.set.run]
batch_size = 4
"#;

    fn parse(s: &str) -> Result<Study, StudyError> {
        Study::parse(s, Path::new("study.toml"))
    }

    #[test]
    fn merge_replaces_values_and_merges_tables() {
        let mut base: toml::Table =
            toml::from_str("a = 1\n[t]\nx = 1\ny = 2\n[[arr]]\nk = 1\n[[arr]]\nk = 2\n").unwrap();
        let over: toml::Table =
            toml::from_str("a = 5\n[t]\ny = 3\nz = 4\n[[arr]]\nk = 9\n").unwrap();
        merge_tables(&mut base, &over);
        let want: toml::Table =
            toml::from_str("a = 5\n[t]\nx = 1\ny = 3\nz = 4\n[[arr]]\nk = 9\n").unwrap();
        assert_eq!(base, want);
    }

    #[test]
    fn study_builds_one_experiment_per_scenario_and_sampler() {
        let st = parse(STUDY).unwrap();
        assert_eq!(st.experiments.len(), 1);
        let [u, r, b] = &st.experiments[0][..] else {
            panic!("three rows")
        };
        assert_eq!(u.name, "t-small-uniform");
        assert_eq!(u.curriculum.sampler, SamplerKind::Uniform);
        assert!(!u.curriculum.expansion.enabled);
        assert_eq!(r.curriculum.sampler, SamplerKind::Rlcs);
        assert!(r.curriculum.expansion.enabled);
        // The scenario's table merged into the base, the rest kept.
        assert_eq!(r.run.batch_size, 4);
        assert_eq!(r.run.iterations, 4);
        assert_eq!(r.seed, 3);
        // A row's own settings go over the scenario's, for that row only.
        assert_eq!(b.name, "t-small-rlcs-bal");
        assert_eq!(
            b.curriculum.rlcs.within_tier,
            rlcs_curriculum::WithinTier::Balanced
        );
        assert_eq!(
            r.curriculum.rlcs.within_tier,
            rlcs_curriculum::WithinTier::Random
        );
        assert_eq!(b.run.batch_size, 2);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        // An unknown key in a scenario's overrides.
        let bad = STUDY.replace("batch_size = 4", "batch_size = 4\nlr = 3");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with("study.toml:25: `scenarios.0.set.run.lr`"),
            "{e}"
        );
        assert!(e.contains("unknown field `lr`"), "{e}");
        // A bad value in a scenario.
        let e = parse(&STUDY.replace("batch_size = 4", "batch_size = 0"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("study.toml:24: `scenarios.0.set.run.batch_size`: must be at least 1"),
            "{e}"
        );
        // A bad value in the base.
        let e = parse(&STUDY.replace("iterations = 4", "iterations = 0"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("study.toml:14: `base.run.iterations`"), "{e}");
        // A wrong type in the base.
        let e = parse(&STUDY.replace("iterations = 4", "iterations = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("study.toml:14: `base.run.iterations`"), "{e}");
        // Study-level errors.
        let e = parse(&STUDY.replace("\"rlcs\"", "\"nope\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("study.toml:4: `study.samplers.1.sampler`"),
            "{e}"
        );
        let e = parse(&STUDY.replace("target_accuracy = 0.5", "target_accuracy = 2"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("study.toml:3: `study.target_accuracy`"),
            "{e}"
        );
        let e = parse(&STUDY.replace("[study]", "[study]\nbogus = 1"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("study.toml:2:"), "{e}");
    }

    #[test]
    fn first_crossing_interpolates() {
        let pts = [(0.0, 0.2), (100.0, 0.4), (200.0, 0.8), (300.0, 0.9)];
        // Between 100 (0.4) and 200 (0.8): a quarter of the way.
        assert_eq!(first_crossing(&pts, 0.5), Some(125.0));
        assert_eq!(first_crossing(&pts, 0.8), Some(200.0));
        assert_eq!(first_crossing(&pts, 0.1), Some(0.0));
        assert_eq!(first_crossing(&pts, 0.95), None);
        // The first crossing counts, even if the curve dips again.
        let dip = [(0.0, 0.2), (10.0, 0.6), (20.0, 0.3), (30.0, 0.7)];
        assert_eq!(first_crossing(&dip, 0.6), Some(10.0));
        assert_eq!(first_crossing(&[], 0.5), None);
    }

    #[test]
    fn compare_applies_the_rules() {
        let row = |label: &str, exp: bool, r: Option<f64>, st: Option<f64>, g: usize| StudyRow {
            label: label.into(),
            sampler: label.into(),
            expansion: exp,
            rollouts_to_target: r,
            steps_to_target: st,
            final_accuracy: 0.7,
            rollouts: 0,
            steps: 0,
            grade_rollouts: g,
            rollouts_speedup: None,
            rollouts_speedup_with_grade: None,
            steps_speedup: None,
            target: None,
            curve: Vec::new(),
            rollouts_speedup_sd: None,
            steps_speedup_sd: None,
            per_seed: Vec::new(),
        };
        let mut rows = vec![
            row("uniform", false, Some(1200.0), Some(30.0), 0),
            row("rlcs", true, Some(1000.0), Some(15.0), 400),
            row("kimi", false, Some(1300.0), Some(33.0), 0),
            row("never", true, None, None, 0),
        ];
        compare(&mut rows, 0, true);
        let t = rows[1].target.clone().unwrap();
        assert_eq!(t.steps, Some(true));
        assert!(t.rollouts && !t.rollouts_with_grade && t.met);
        assert_eq!(rows[1].rollouts_speedup, Some(1.2));
        assert!(!rows[2].target.clone().unwrap().met);
        assert!(!rows[3].target.clone().unwrap().met);
        assert!(rows[0].target.is_none());
        compare(&mut rows, 0, false);
        // 1300 / 1200 is more than 5 % worse.
        assert!(!rows[2].target.clone().unwrap().rollouts);
        assert!(rows[1].target.clone().unwrap().met);

        // Several seeds: ratios paired per seed, then mean ± sd; a seed that never
        // reaches the target leaves the row's mean undefined.
        let seed_rows = |b: f64, r: f64| {
            let mut v = vec![
                row("uniform", false, Some(b), Some(b / 40.0), 0),
                row("rlcs", true, Some(r), Some(r / 80.0), 0),
            ];
            fill_ratios(&mut v, 0);
            v.remove(1)
        };
        let agg = aggregate(vec![
            (1, seed_rows(1200.0, 1000.0)),
            (2, seed_rows(1400.0, 1000.0)),
        ])
        .unwrap();
        let (mean, sd) = (
            agg.rollouts_speedup.unwrap(),
            agg.rollouts_speedup_sd.unwrap(),
        );
        assert!((mean - 1.3).abs() < 1e-12, "{mean}");
        assert!((sd - 0.1 * 2f64.sqrt()).abs() < 1e-12, "{sd}");
        assert_eq!(agg.rollouts_to_target, Some(1000.0));
        assert_eq!(agg.per_seed.len(), 2);
        assert_eq!(agg.per_seed[1].seed, 2);
        let mut never = seed_rows(1200.0, 1000.0);
        never.rollouts_to_target = None;
        never.rollouts_speedup = None;
        let agg = aggregate(vec![(1, seed_rows(1200.0, 1000.0)), (2, never)]).unwrap();
        assert_eq!(agg.rollouts_speedup, None);
        assert_eq!(agg.rollouts_to_target, None);
        // One seed: the row as it was.
        let one = seed_rows(1200.0, 1000.0);
        assert_eq!(aggregate(vec![(1, one.clone())]), Some(one));
    }

    #[test]
    fn seeds_must_be_distinct() {
        let e = parse(&STUDY.replace("[study]", "[study]\nseeds = [1, 2, 1]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`study.seeds`: seed 1 is listed twice"), "{e}");
    }
}
