//! Comparing runs side by side (`rlcs compare RUN_DIR…`) and running a grid of
//! config variants (`rlcs sweep CONFIG --set key=v1,v2 …`), which ends in a
//! comparison of its cells.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ExperimentConfig, StageName};
use crate::plot::{LinePlot, PlotError, Series};
use crate::report::Report;
use crate::{run_config, RunError, RunOptions};

/// What can go wrong comparing or sweeping.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Fewer than one run to compare.
    #[error("nothing to compare: give at least one run directory")]
    Empty,
    /// A run directory without a readable report.
    #[error("{path}: {reason}")]
    Report {
        /// The report file.
        path: PathBuf,
        /// Why it could not be read.
        reason: String,
    },
    /// A `--set` argument that is malformed or makes the config invalid.
    #[error("--set {arg}: {reason}")]
    Set {
        /// The argument as given.
        arg: String,
        /// What is wrong.
        reason: String,
    },
    /// A sweep without axes.
    #[error("nothing to sweep: give --set key=v1,v2,… or list axes in `sweep` of {path}")]
    NoAxes {
        /// The config file.
        path: PathBuf,
    },
    /// The config file of a sweep.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A cell of a sweep failed.
    #[error("sweep cell `{cell}`: {source}")]
    Cell {
        /// The cell's name (its settings).
        cell: String,
        /// The run's error.
        #[source]
        source: Box<RunError>,
    },
    /// Drawing a plot.
    #[error("plotting: {0}")]
    Plot(#[from] PlotError),
    /// Writing an output file.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// One run in a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparedRun {
    /// The run directory as given.
    pub run_dir: PathBuf,
    /// Experiment name.
    pub name: String,
    /// Config keys whose value differs between the compared runs, with this run's
    /// value (dotted keys; `name` and paths excluded).
    pub differs: BTreeMap<String, serde_json::Value>,
    /// RL iterations.
    pub iterations: usize,
    /// Training rollouts.
    pub rollouts: usize,
    /// Held-out accuracy before RL.
    pub initial_accuracy: f64,
    /// Held-out accuracy at the end.
    pub final_accuracy: f64,
    /// Final held-out accuracy per domain.
    pub per_domain: BTreeMap<String, f64>,
    /// Mean `expansion_ratio_ema` over iterations (0 without iterations).
    pub mean_ratio_ema: f64,
    /// Mean share of kept groups with a learning signal (0 without iterations).
    pub mixed_share: f64,
    /// Wall time of the run, in seconds.
    pub wall_seconds: f64,
}

/// A finished comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The runs, in the order given.
    pub runs: Vec<ComparedRun>,
}

/// Reads the report of a run directory (or a `report.json` path).
pub fn read_report(run: &Path) -> Result<Report, CompareError> {
    let path = if run.is_dir() {
        run.join("report.json")
    } else {
        run.to_path_buf()
    };
    let bytes = std::fs::read(&path).map_err(|e| CompareError::Report {
        path: path.clone(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            "no report.json (has the run finished?)".into()
        } else {
            e.to_string()
        },
    })?;
    serde_json::from_slice(&bytes).map_err(|e| CompareError::Report {
        path,
        reason: format!("not a run report: {e}"),
    })
}

/// Flattens a JSON value into dotted keys (arrays by index).
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&key(k), v, out);
            }
        }
        serde_json::Value::Array(a) if a.iter().any(|x| x.is_object()) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&key(&i.to_string()), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// Config keys that say nothing about what a run did differently.
fn ignored_key(k: &str) -> bool {
    k == "name" || k.ends_with("from_run") || k.ends_with("init_from")
}

/// Compares finished runs: their reports side by side.
pub fn compare(runs: &[PathBuf]) -> Result<(Comparison, Vec<Report>), CompareError> {
    if runs.is_empty() {
        return Err(CompareError::Empty);
    }
    let reports: Vec<Report> = runs
        .iter()
        .map(|r| read_report(r))
        .collect::<Result<_, _>>()?;
    let flat: Vec<BTreeMap<String, serde_json::Value>> = reports
        .iter()
        .map(|r| {
            let mut m = BTreeMap::new();
            flatten("", &r.config, &mut m);
            m
        })
        .collect();
    let mut keys: Vec<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    let differing: Vec<&String> = keys
        .into_iter()
        .filter(|k| !ignored_key(k))
        .filter(|k| flat.iter().any(|m| m.get(*k) != flat[0].get(*k)))
        .collect();
    let compared = reports
        .iter()
        .zip(runs)
        .zip(&flat)
        .map(|((r, dir), m)| {
            let n = r.iterations.len().max(1) as f64;
            let kept: usize = r.iterations.iter().map(|i| i.kept).sum();
            let mixed: usize = r.iterations.iter().map(|i| i.kept_mixed).sum();
            ComparedRun {
                run_dir: dir.clone(),
                name: r.name.clone(),
                differs: differing
                    .iter()
                    .map(|k| {
                        let v = m.get(*k).cloned().unwrap_or(serde_json::Value::Null);
                        ((*k).clone(), v)
                    })
                    .collect(),
                iterations: r.iterations.len(),
                rollouts: r.totals.rollouts,
                initial_accuracy: r.initial_eval.accuracy,
                final_accuracy: r.final_eval.accuracy,
                per_domain: r.final_eval.per_domain.clone(),
                mean_ratio_ema: r
                    .iterations
                    .iter()
                    .map(|i| i.expansion_ratio_ema)
                    .sum::<f64>()
                    / n,
                mixed_share: if kept > 0 {
                    mixed as f64 / kept as f64
                } else {
                    0.0
                },
                wall_seconds: r.wall_seconds,
            }
        })
        .collect();
    Ok((Comparison { runs: compared }, reports))
}

/// The label of a run in tables and legends: what differs, else its directory.
fn label(run: &ComparedRun) -> String {
    if run.differs.is_empty() {
        return run
            .run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| run.name.clone());
    }
    run.differs
        .iter()
        .map(|(k, v)| format!("{k}={}", value_text(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A config value as a label shows it. Single-precision settings (a temperature
/// of 0.7) come back from report.json widened (0.699999988079071); they are shown
/// at single precision, as they were written.
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        serde_json::Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(x) if f64::from(x as f32) == x => (x as f32).to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

impl Comparison {
    /// The side-by-side table.
    pub fn markdown(&self) -> String {
        let mut s = String::from("# Comparison\n\n");
        let mut domains: Vec<&String> =
            self.runs.iter().flat_map(|r| r.per_domain.keys()).collect();
        domains.sort();
        domains.dedup();
        let _ = write!(
            s,
            "| run | iterations | rollouts | initial | final | Δ | kept mixed | mean ratio EMA |"
        );
        for d in &domains {
            let _ = write!(s, " {d} |");
        }
        let _ = write!(s, " seconds |\n|---|---|---|---|---|---|---|---|");
        for _ in &domains {
            let _ = write!(s, "---|");
        }
        let _ = writeln!(s, "---|");
        for r in &self.runs {
            let _ = write!(
                s,
                "| {} | {} | {} | {:.3} | {:.3} | {:+.3} | {:.0} % | {:.2} |",
                label(r),
                r.iterations,
                r.rollouts,
                r.initial_accuracy,
                r.final_accuracy,
                r.final_accuracy - r.initial_accuracy,
                100.0 * r.mixed_share,
                r.mean_ratio_ema
            );
            for d in &domains {
                let _ = match r.per_domain.get(*d) {
                    Some(a) => write!(s, " {a:.3} |"),
                    None => write!(s, " — |"),
                };
            }
            let _ = writeln!(s, " {:.1} |", r.wall_seconds);
        }
        let _ = writeln!(s, "\nRun directories:\n");
        for r in &self.runs {
            let _ = writeln!(s, "- {}: `{}`", label(r), r.run_dir.display());
        }
        s
    }

    /// Overlay plots `(file name, PNG)`: held-out accuracy against training
    /// rollouts, training accuracy, the expansion-ratio EMA and the not-valid rate
    /// per iteration, one line per run.
    pub fn plots(&self, reports: &[Report]) -> Result<Vec<(String, Vec<u8>)>, PlotError> {
        type Pick = fn(&Report) -> Vec<(f64, f64)>;
        let specs: [(&str, &str, &str, &str, Pick); 4] = [
            (
                "eval_accuracy.png",
                "Held-out accuracy",
                "training rollouts",
                "accuracy",
                |r| {
                    r.eval_curve
                        .iter()
                        .map(|p| (p.rollouts as f64, p.accuracy))
                        .collect()
                },
            ),
            (
                "train_accuracy.png",
                "Accuracy of training rollouts",
                "iteration",
                "accuracy",
                |r| {
                    r.iterations
                        .iter()
                        .map(|i| (f64::from(i.iteration), i.accuracy))
                        .collect()
                },
            ),
            (
                "expansion_ratio_ema.png",
                "Expansion ratio EMA",
                "iteration",
                "ratio",
                |r| {
                    r.iterations
                        .iter()
                        .map(|i| (f64::from(i.iteration), i.expansion_ratio_ema))
                        .collect()
                },
            ),
            (
                "not_valid_rate.png",
                "Share of groups all correct or all wrong",
                "iteration",
                "rate",
                |r| {
                    r.iterations
                        .iter()
                        .map(|i| (f64::from(i.iteration), i.not_valid_rate))
                        .collect()
                },
            ),
        ];
        let mut out = Vec::new();
        for (file, title, x_label, y_label, pick) in specs {
            let series: Vec<Series> = self
                .runs
                .iter()
                .zip(reports)
                .map(|(c, r)| Series {
                    label: label(c),
                    points: pick(r),
                })
                .collect();
            if series.iter().all(|s| s.points.is_empty()) {
                continue;
            }
            let plot = LinePlot {
                title: title.into(),
                x_label: x_label.into(),
                y_label: y_label.into(),
                series,
                ..LinePlot::default()
            };
            out.push((file.to_string(), plot.to_png()?));
        }
        Ok(out)
    }

    /// Writes `compare.md`, `compare.json` and the overlay plots into `dir`.
    pub fn write(&self, reports: &[Report], dir: &Path) -> Result<(), CompareError> {
        let write = |path: PathBuf, bytes: &[u8]| {
            std::fs::write(&path, bytes).map_err(|source| CompareError::Write { path, source })
        };
        std::fs::create_dir_all(dir).map_err(|source| CompareError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        write(dir.join("compare.md"), self.markdown().as_bytes())?;
        let json = serde_json::to_vec_pretty(self).map_err(|e| CompareError::Write {
            path: dir.join("compare.json"),
            source: std::io::Error::other(e),
        })?;
        write(dir.join("compare.json"), &json)?;
        for (name, png) in self.plots(reports)? {
            write(dir.join(name), &png)?;
        }
        Ok(())
    }
}

/// One `--set key=v1,v2,…` of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepAxis {
    /// Dotted config key (`run.lr`, `curriculum.sampler`, `domains.0.train`).
    pub key: String,
    /// The values, as TOML literals (bare words are strings).
    pub values: Vec<toml::Value>,
    /// The argument as given, for errors.
    pub arg: String,
}

impl SweepAxis {
    /// Parses `key=v1,v2,…`. A value is a TOML literal (`1e-5`, `true`, `"a,b"` is
    /// not split), else a string.
    pub fn parse(arg: &str) -> Result<Self, CompareError> {
        let bad = |reason: &str| CompareError::Set {
            arg: arg.to_string(),
            reason: reason.to_string(),
        };
        let (key, rest) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected key=v1,v2,…"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(|p| p.trim().is_empty()) {
            return Err(bad("the key is empty or has an empty part"));
        }
        let mut values = Vec::new();
        for v in split_values(rest) {
            let v = v.trim();
            if v.is_empty() {
                return Err(bad("an empty value"));
            }
            let parsed = toml::from_str::<toml::Table>(&format!("v = {v}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(v.to_string()));
            values.push(parsed);
        }
        if values.is_empty() {
            return Err(bad("no values"));
        }
        Ok(SweepAxis {
            key: key.to_string(),
            values,
            arg: arg.to_string(),
        })
    }
}

/// Splits on commas outside quotes and brackets.
fn split_values(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None);
    for c in s.chars() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('[' | '{', None) => depth += 1,
            (']' | '}', None) => depth -= 1,
            (',', None) if depth <= 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// Sets the dotted `key` in `table` (creating tables on the way; a numeric part
/// indexes an array).
fn set_key(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    let (last, path) = parts.split_last().ok_or("empty key")?;
    let mut cur: &mut toml::Value = &mut *table
        .entry(path.first().copied().unwrap_or(last).to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if path.is_empty() {
        *cur = value;
        return Ok(());
    }
    for (i, part) in path.iter().enumerate().skip(1) {
        cur = step(cur, part, &parts[..=i])?;
    }
    match cur {
        toml::Value::Table(t) => {
            t.insert(last.to_string(), value);
            Ok(())
        }
        toml::Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("`{}` is an array; index it with a number", path.join(".")))?;
            let n = a.len();
            let slot = a
                .get_mut(i)
                .ok_or_else(|| format!("`{}` has {n} entries, no index {i}", path.join(".")))?;
            *slot = value;
            Ok(())
        }
        _ => Err(format!("`{}` is not a table", path.join("."))),
    }
}

fn step<'a>(
    cur: &'a mut toml::Value,
    part: &str,
    so_far: &[&str],
) -> Result<&'a mut toml::Value, String> {
    let here = so_far[..so_far.len() - 1].join(".");
    match cur {
        toml::Value::Table(t) => Ok(t
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))),
        toml::Value::Array(a) => {
            let i: usize = part
                .parse()
                .map_err(|_| format!("`{here}` is an array; index it with a number"))?;
            let n = a.len();
            a.get_mut(i)
                .ok_or_else(|| format!("`{here}` has {n} entries, no index {i}"))
        }
        _ => Err(format!("`{here}` is not a table")),
    }
}

/// A sweep's cells: every combination of the axes' values, first axis slowest.
pub fn grid(axes: &[SweepAxis]) -> Vec<Vec<(String, toml::Value)>> {
    let mut cells: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for axis in axes {
        cells = cells
            .into_iter()
            .flat_map(|cell| {
                axis.values.iter().map(move |v| {
                    let mut c = cell.clone();
                    c.push((axis.key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    cells
}

/// A cell's name: `key=value` joined by `,`, safe as a directory name.
pub fn cell_name(cell: &[(String, toml::Value)]) -> String {
    fn text(v: &toml::Value) -> String {
        match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Array(a) if a.is_empty() => "empty".into(),
            toml::Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join("+"),
            other => other.to_string(),
        }
    }
    let text = cell
        .iter()
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect::<Vec<_>>()
        .join(",");
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=.,-_+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Builds the config of every cell; a key the schema does not know or a value it
/// refuses fails before anything runs, naming the `--set`.
pub fn sweep_configs(
    config_path: &Path,
    axes: &[SweepAxis],
) -> Result<Vec<(String, ExperimentConfig)>, CompareError> {
    let src = crate::config::read_source(config_path)?;
    // The file itself must be valid.
    ExperimentConfig::parse(&src, config_path)?;
    let base: toml::Table =
        toml::from_str(&src).map_err(|e| crate::config::ConfigError::Parse {
            path: config_path.to_path_buf(),
            line: 0,
            column: 0,
            message: e.message().to_string(),
        })?;
    let mut out = Vec::new();
    for cell in grid(axes) {
        let mut table = base.clone();
        // A cell is a plain run: it does not carry the grid on.
        table.remove("sweep");
        for (key, value) in &cell {
            let arg = axes
                .iter()
                .find(|a| &a.key == key)
                .map_or_else(|| key.clone(), |a| a.arg.clone());
            set_key(&mut table, key, value.clone())
                .map_err(|reason| CompareError::Set { arg, reason })?;
        }
        let text = toml::to_string(&table).map_err(|e| CompareError::Set {
            arg: cell_name(&cell),
            reason: e.to_string(),
        })?;
        let mut config = ExperimentConfig::parse(&text, config_path).map_err(|e| {
            let reason = match e {
                crate::config::ConfigError::Invalid { key, message, .. } => {
                    format!("`{key}`: {message}")
                }
                crate::config::ConfigError::Parse { message, .. } => message,
                other => other.to_string(),
            };
            CompareError::Set {
                arg: axes
                    .iter()
                    .map(|a| a.arg.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                reason,
            }
        })?;
        config.resolve_paths(config_path.parent().unwrap_or(Path::new(".")));
        let name = cell_name(&cell);
        // The run's name keeps to what a config's `name` allows, so a cell's
        // `config.resolved.toml` can resume it with `rlcs run … --resume`.
        let run_name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        config.name = format!("{}-{run_name}", config.name);
        out.push((name, config));
    }
    Ok(out)
}

/// The folder, inside a sweep's directory, of the supervised stages its cells share.
pub const SHARED_DIR: &str = "shared-stages";

fn is_supervised(s: StageName) -> bool {
    matches!(s, StageName::Pretrain | StageName::Sft)
}

fn stage_list(stages: &[StageName]) -> String {
    stages
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The supervised stages a sweep's cells can share: those of `base` when every
/// axis only changes what happens from grading on (RL, curriculum, grading, GRPO,
/// and RL's schedule when each supervised stage has its own). `None` when there
/// are none or an axis could change them.
pub fn shared_stages(base: &ExperimentConfig, axes: &[SweepAxis]) -> Option<Vec<StageName>> {
    let supervised: Vec<StageName> = base
        .stages
        .iter()
        .copied()
        .filter(|s| is_supervised(*s))
        .collect();
    if supervised.is_empty() {
        return None;
    }
    let settings = |s: &StageName| match s {
        StageName::Pretrain => &base.pretrain,
        _ => &base.sft,
    };
    // Stage data of their own: RL's train split (and so train_domains) is not theirs.
    let own_data = supervised.iter().all(|s| settings(s).samples > 0);
    let own_schedule = supervised.iter().all(|s| settings(s).schedule.is_some());
    let rl_side = |key: &str| {
        let run_key = key.strip_prefix("run.");
        key.starts_with("curriculum.")
            || key.starts_with("grade.")
            || key.starts_with("tch.train.grpo.")
            || (own_schedule && key.starts_with("tch.train.schedule."))
            || matches!(
                run_key,
                Some(
                    "iterations"
                        | "batch_size"
                        | "group_size"
                        | "max_rollouts"
                        | "eval_every"
                        | "checkpoint_every"
                        | "keep_checkpoints"
                )
            )
            || (own_data && run_key == Some("train_domains"))
    };
    axes.iter().all(|a| rl_side(&a.key)).then_some(supervised)
}

/// A finished sweep.
#[derive(Debug)]
pub struct SweepOutcome {
    /// The sweep's directory: one run directory per cell and the comparison.
    pub out: PathBuf,
    /// The comparison of the cells.
    pub comparison: Comparison,
}

/// Runs every cell of a sweep into `out/<cell>/`, then compares them into `out/`.
pub async fn sweep(
    config_path: &Path,
    axes: &[SweepAxis],
    out: Option<PathBuf>,
    progress: bool,
    code_revision: Option<String>,
) -> Result<SweepOutcome, CompareError> {
    let base = ExperimentConfig::load(config_path)?;
    let from_file;
    let axes = if axes.is_empty() {
        from_file = base
            .sweep
            .iter()
            .map(|a| SweepAxis::parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        &from_file[..]
    } else {
        axes
    };
    if axes.is_empty() {
        return Err(CompareError::NoAxes {
            path: config_path.to_path_buf(),
        });
    }
    let cells = sweep_configs(config_path, axes)?;
    let base_name = base.name.clone();
    let out = out.unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{base_name}-sweep-{}", crate::utc_stamp()))
    });
    crate::new_or_empty_dir(&out).map_err(|reason| CompareError::Write {
        path: out.clone(),
        source: std::io::Error::other(reason),
    })?;
    // Cells that differ only in what happens from grading on share one run of
    // the supervised stages.
    let mut prior_stages = Vec::new();
    let mut shared_init = None;
    if let Some(supervised) = shared_stages(&base, axes) {
        let dir = out.join(SHARED_DIR);
        if progress {
            eprintln!("sweep: {SHARED_DIR} ({})", stage_list(&supervised));
        }
        let mut shared = base.clone();
        shared.stages = supervised.clone();
        shared.sweep.clear();
        shared.name = format!("{}-{SHARED_DIR}", base.name);
        shared.resolve_paths(config_path.parent().unwrap_or(Path::new(".")));
        let outcome = run_config(
            shared,
            RunOptions {
                out: Some(dir.clone()),
                progress,
                code_revision: code_revision.clone(),
                prior_stages: Vec::new(),
                serve: None,
                spans: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| CompareError::Cell {
            cell: SHARED_DIR.into(),
            source: Box::new(e),
        })?;
        prior_stages = outcome.report.stages;
        if let Some(last) = supervised.last() {
            shared_init =
                Some(crate::stages::stage_dir(&dir, *last).join(crate::stages::WEIGHTS_FILE));
        }
    }
    let mut dirs = Vec::new();
    for (name, mut config) in cells {
        let dir = out.join(&name);
        if progress {
            eprintln!("sweep: {name}");
        }
        if let Some(init) = &shared_init {
            config.stages.retain(|s| !is_supervised(*s));
            config.policy.init_from = Some(init.clone());
        }
        run_config(
            config,
            RunOptions {
                out: Some(dir.clone()),
                progress,
                code_revision: code_revision.clone(),
                prior_stages: prior_stages.clone(),
                serve: None,
                spans: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| CompareError::Cell {
            cell: name.clone(),
            source: Box::new(e),
        })?;
        dirs.push(dir);
    }
    let (comparison, reports) = compare(&dirs)?;
    comparison.write(&reports, &out)?;
    Ok(SweepOutcome { out, comparison })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_show_single_precision_values_as_written() {
        let widened = serde_json::json!(0.7f32);
        assert_eq!(widened.to_string(), "0.699999988079071");
        assert_eq!(value_text(&widened), "0.7");
        assert_eq!(value_text(&serde_json::json!(3e-5)), "0.00003");
        assert_eq!(value_text(&serde_json::json!(0.1f64)), "0.1");
        assert_eq!(value_text(&serde_json::json!(16)), "16");
        assert_eq!(value_text(&serde_json::json!("rlcs")), "rlcs");
    }

    #[test]
    fn axes_parse_literals_and_words() {
        let a = SweepAxis::parse("tch.train.schedule.lr=1e-5,3e-5").unwrap();
        assert_eq!(a.key, "tch.train.schedule.lr");
        assert_eq!(
            a.values,
            vec![toml::Value::Float(1e-5), toml::Value::Float(3e-5)]
        );
        let b = SweepAxis::parse("curriculum.sampler=rlcs,uniform").unwrap();
        assert_eq!(b.values[1], toml::Value::String("uniform".into()));
        let c = SweepAxis::parse("stages=[\"sft\",\"rl\"],[\"rl\"]").unwrap();
        assert_eq!(c.values.len(), 2);
        assert!(c.values[0].is_array());
        for bad in ["nokey", "=1", "a..b=1", "a=1,,2"] {
            assert!(
                matches!(SweepAxis::parse(bad), Err(CompareError::Set { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_cells_config_is_a_valid_config_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exp.toml");
        std::fs::write(
            &path,
            "name = \"t\"\n[[domains]]\nname = \"arithmetic\"\n[[domains]]\nname = \"stem\"\n",
        )
        .unwrap();
        let axis = SweepAxis::parse("run.train_domains=[\"stem\"],[]").unwrap();
        let cells = sweep_configs(&path, &[axis]).unwrap();
        let names: Vec<(&str, &str)> = cells
            .iter()
            .map(|(cell, c)| (cell.as_str(), c.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("run.train_domains=stem", "t-run.train_domains-stem"),
                ("run.train_domains=empty", "t-run.train_domains-empty")
            ]
        );
        // What a cell writes to config.resolved.toml parses back (so it resumes).
        for (_, c) in &cells {
            let text = toml::to_string(c).unwrap();
            ExperimentConfig::parse(&text, &path).unwrap();
        }
    }

    #[test]
    fn grid_is_the_cartesian_product_first_axis_slowest() {
        let axes = [
            SweepAxis::parse("a=1,2").unwrap(),
            SweepAxis::parse("b=x,y,z").unwrap(),
        ];
        let g = grid(&axes);
        assert_eq!(g.len(), 6);
        assert_eq!(cell_name(&g[0]), "a=1,b=x");
        assert_eq!(cell_name(&g[5]), "a=2,b=z");
        assert_eq!(
            cell_name(&[("p".into(), toml::Value::String("a/b c".into()))]),
            "p=a_b_c"
        );
    }

    #[test]
    fn set_key_walks_tables_and_arrays() {
        let mut t: toml::Table =
            toml::from_str("[run]\niterations = 3\n[[domains]]\nname = \"x\"\ntrain = 5\n")
                .unwrap();
        set_key(&mut t, "run.iterations", toml::Value::Integer(9)).unwrap();
        set_key(&mut t, "domains.0.train", toml::Value::Integer(7)).unwrap();
        set_key(
            &mut t,
            "curriculum.sampler",
            toml::Value::String("uniform".into()),
        )
        .unwrap();
        assert_eq!(t["run"]["iterations"].as_integer(), Some(9));
        assert_eq!(t["domains"][0]["train"].as_integer(), Some(7));
        assert_eq!(t["curriculum"]["sampler"].as_str(), Some("uniform"));
        assert!(set_key(&mut t, "domains.3.train", toml::Value::Integer(1))
            .unwrap_err()
            .contains("no index 3"));
        assert!(set_key(&mut t, "run.iterations.x", toml::Value::Integer(1))
            .unwrap_err()
            .contains("not a table"));
    }

    #[test]
    fn flatten_keeps_scalar_lists_whole() {
        let mut m = BTreeMap::new();
        flatten(
            "",
            &serde_json::json!({"a": {"b": 1}, "s": ["x", "y"], "d": [{"n": 1}]}),
            &mut m,
        );
        assert_eq!(m["a.b"], serde_json::json!(1));
        assert_eq!(m["s"], serde_json::json!(["x", "y"]));
        assert_eq!(m["d.0.n"], serde_json::json!(1));
    }
}
