//! The run report: `report.json` (a contract other tools read) and `report.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use rlcs_actors::driver::{EvalResult, IterationRecord};
use serde::{Deserialize, Serialize};

use crate::RunError;

/// The folder of a run's plots, inside the run directory.
pub const PLOTS_DIR: &str = "plots";

/// Run-wide counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Rollouts generated in training iterations.
    pub rollouts: usize,
    /// Samples the curriculum selected.
    pub samples_selected: usize,
    /// Samples whose group was scored, exactly once each.
    pub samples_scored: usize,
    /// Workers rebuilt after crashes.
    pub restarts: usize,
    /// History records in the store at the end.
    pub store_observations: usize,
    /// Rollouts spent by the grade stage before RL (not in `rollouts`).
    #[serde(default)]
    pub grade_rollouts: usize,
    /// Train samples given an offline tier (grade stage or an earlier run).
    #[serde(default)]
    pub offline_samples: usize,
    /// Samples in the RL train pool (after `run.train_domains`).
    #[serde(default)]
    pub train_pool: usize,
}

/// One evaluation of the held-out split during a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Iterations finished before this evaluation (0: the initial one).
    pub iteration: u32,
    /// Training rollouts spent so far (grade rollouts excluded).
    pub rollouts: usize,
    /// Learner steps taken so far (one per iteration).
    pub steps: u32,
    /// Eval accuracy.
    pub accuracy: f64,
}

/// Removes from a parsed `report.json` the fields that vary between runs of the
/// same seed and config (wall times of the run, its iterations and its stages), so
/// two reports compare equal exactly when the runs did the same work.
pub fn strip_wall_times(report: &mut serde_json::Value) {
    if let Some(r) = report.as_object_mut() {
        r.remove("wall_seconds");
    }
    for (list, keys) in [
        ("iterations", &["wall_ms", "phase_ms"][..]),
        ("stages", &["wall_seconds"][..]),
    ] {
        if let Some(items) = report.get_mut(list).and_then(|v| v.as_array_mut()) {
            for it in items {
                if let Some(o) = it.as_object_mut() {
                    for k in keys {
                        o.remove(*k);
                    }
                }
            }
        }
    }
}

/// One stage of the recipe as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// `pretrain`, `sft`, `grade`, `rl` or `eval`.
    pub name: String,
    /// Wall time of the stage, in seconds.
    pub wall_seconds: f64,
    /// Learner steps (supervised steps, or RL iterations).
    pub steps: u32,
    /// Training examples seen (supervised stages).
    #[serde(default)]
    pub examples: usize,
    /// Rollouts generated (grade and RL; evaluations excluded).
    #[serde(default)]
    pub rollouts: usize,
    /// Mean token loss of every step (supervised stages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub losses: Vec<f64>,
    /// The held-out evaluation of the stage's model, where it was evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalResult>,
}

impl StageReport {
    /// A stage that took `wall_seconds` and nothing else yet.
    pub fn new(name: &str, wall_seconds: f64) -> Self {
        StageReport {
            name: name.to_string(),
            wall_seconds,
            steps: 0,
            examples: 0,
            rollouts: 0,
            losses: Vec::new(),
            eval: None,
        }
    }
}

/// Everything a run reports. Field names are a contract: keep them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Experiment name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// The resolved config.
    pub config: serde_json::Value,
    /// One record per iteration.
    pub iterations: Vec<IterationRecord>,
    /// Eval before the first iteration.
    pub initial_eval: EvalResult,
    /// Eval after the last iteration.
    pub final_eval: EvalResult,
    /// Every evaluation in order: the initial one, every `run.eval_every` iterations,
    /// and the final one.
    #[serde(default)]
    pub eval_curve: Vec<EvalPoint>,
    /// Counters.
    pub totals: Totals,
    /// The stages in the order they ran, each with its held-out evaluation where
    /// its model was evaluated.
    #[serde(default)]
    pub stages: Vec<StageReport>,
    /// Wall time of the run, in seconds (the only field that varies between runs of
    /// the same seed and config).
    pub wall_seconds: f64,
}

impl Report {
    /// Writes `report.json` and `report.md` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), RunError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| RunError::Write {
            path: dir.join("report.json"),
            source: std::io::Error::other(e),
        })?;
        crate::write_file(&dir.join("report.json"), &json)?;
        crate::write_file(&dir.join("report.md"), self.markdown().as_bytes())?;
        let plots = self.plots().map_err(|e| RunError::Write {
            path: dir.join(PLOTS_DIR),
            source: std::io::Error::other(e),
        })?;
        let plots_dir = dir.join(PLOTS_DIR);
        std::fs::create_dir_all(&plots_dir).map_err(|source| RunError::Write {
            path: plots_dir.clone(),
            source,
        })?;
        for (name, png) in plots {
            crate::write_file(&plots_dir.join(name), &png)?;
        }
        Ok(())
    }

    /// The run's plots as `(file name, PNG bytes)`: reward and accuracy per domain
    /// over iterations, tier counts, the expansion ratio and not-valid rate,
    /// force-answer rate, response length, the eval curve, supervised losses and
    /// seconds per stage. Plots without data are left out.
    pub fn plots(&self) -> Result<Vec<(String, Vec<u8>)>, crate::plot::PlotError> {
        use crate::plot::{BarChart, LinePlot, Series};
        let its = &self.iterations;
        let x = |r: &IterationRecord| f64::from(r.iteration);
        let line = |label: &str, f: &dyn Fn(&IterationRecord) -> Option<f64>| Series {
            label: label.to_string(),
            points: its.iter().filter_map(|r| Some((x(r), f(r)?))).collect(),
        };
        let plot = |title: &str, y_label: &str, series: Vec<Series>| LinePlot {
            title: title.into(),
            x_label: "iteration".into(),
            y_label: y_label.into(),
            series,
            ..LinePlot::default()
        };
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        if !its.is_empty() {
            let mut domains: Vec<&String> = its.iter().flat_map(|r| r.per_domain.keys()).collect();
            domains.sort();
            domains.dedup();
            let per_domain = |all: &str,
                              f: fn(&rlcs_actors::driver::DomainRollouts) -> f64,
                              total: fn(&IterationRecord) -> f64| {
                let mut series: Vec<Series> = domains
                    .iter()
                    .map(|d| line(d, &|r| r.per_domain.get(*d).map(f)))
                    .collect();
                series.push(line(all, &|r| Some(total(r))));
                series
            };
            let mut tiers: Vec<&String> = its.iter().flat_map(|r| r.tier_counts.keys()).collect();
            tiers.sort();
            tiers.dedup();
            let plots = [
                (
                    "accuracy_per_domain.png",
                    plot(
                        "Accuracy of training rollouts per domain",
                        "accuracy",
                        per_domain("all", |d| d.accuracy, |r| r.accuracy),
                    ),
                ),
                (
                    "reward_per_domain.png",
                    plot(
                        "Mean reward of training rollouts per domain",
                        "reward",
                        per_domain("all", |d| d.mean_reward, |r| r.mean_reward),
                    ),
                ),
                (
                    "tiers.png",
                    plot(
                        "Samples per difficulty tier",
                        "samples",
                        tiers
                            .iter()
                            .map(|t| line(t, &|r| r.tier_counts.get(*t).map(|c| *c as f64)))
                            .collect(),
                    ),
                ),
                (
                    "expansion.png",
                    plot(
                        "Dynamic sampling expansion",
                        "ratio / rate",
                        vec![
                            line("expansion_ratio_ema", &|r| Some(r.expansion_ratio_ema)),
                            line("expansion_ratio", &|r| Some(r.expansion_ratio)),
                            line("not_valid_rate", &|r| Some(r.not_valid_rate)),
                        ],
                    ),
                ),
                (
                    "force_answer.png",
                    plot(
                        "Share of rollouts closed by force answering",
                        "rate",
                        vec![line("force_answer_rate", &|r| Some(r.force_answer_rate))],
                    ),
                ),
                (
                    "response_length.png",
                    plot(
                        "Mean response length",
                        "tokens",
                        vec![line("mean tokens", &|r| Some(r.mean_response_tokens))],
                    ),
                ),
            ];
            for (name, p) in plots {
                out.push((name.to_string(), p.to_png()?));
            }
        }
        if !self.eval_curve.is_empty() {
            let curve = LinePlot {
                series: vec![Series {
                    label: "held-out accuracy".into(),
                    points: self
                        .eval_curve
                        .iter()
                        .map(|p| (f64::from(p.iteration), p.accuracy))
                        .collect(),
                }],
                ..plot("Held-out accuracy", "accuracy", Vec::new())
            };
            out.push(("eval_accuracy.png".into(), curve.to_png()?));
        }
        let losses: Vec<Series> = self
            .stages
            .iter()
            .filter(|st| !st.losses.is_empty())
            .map(|st| Series {
                label: st.name.clone(),
                points: st
                    .losses
                    .iter()
                    .enumerate()
                    .map(|(k, l)| (k as f64 + 1.0, *l))
                    .collect(),
            })
            .collect();
        if !losses.is_empty() {
            let p = LinePlot {
                x_label: "step".into(),
                ..plot("Loss of the supervised stages", "token loss", losses)
            };
            out.push(("losses.png".into(), p.to_png()?));
        }
        if !self.stages.is_empty() {
            let chart = BarChart {
                title: "Seconds per stage".into(),
                x_label: "seconds".into(),
                bars: self
                    .stages
                    .iter()
                    .map(|st| (st.name.clone(), st.wall_seconds))
                    .collect(),
                width: 800,
            };
            out.push(("stage_time.png".into(), chart.to_png()?));
        }
        Ok(out)
    }

    /// Where RL iterations spent their time, summed over all iterations.
    fn time_split_markdown(&self, s: &mut String) {
        let wall: f64 = self.iterations.iter().map(|r| r.wall_ms).sum();
        if self.iterations.is_empty() || wall <= 0.0 {
            return;
        }
        let sum = |f: fn(&rlcs_actors::driver::PhaseTimes) -> f64| -> f64 {
            self.iterations.iter().map(|r| f(&r.phase_ms)).sum()
        };
        let overhead: f64 = self
            .iterations
            .iter()
            .map(|r| r.phase_ms.overhead_ms(r.wall_ms))
            .sum();
        let _ = writeln!(s, "## Time split of RL iterations\n");
        let _ = writeln!(
            s,
            "| phase | seconds | share of iteration time |\n|---|---|---|"
        );
        let rows: [(&str, f64); 7] = [
            ("select", sum(|p| p.select)),
            ("load", sum(|p| p.load)),
            ("generate + score (wall)", sum(|p| p.rollout)),
            ("observe", sum(|p| p.observe)),
            ("store", sum(|p| p.store)),
            ("train + publish weights", sum(|p| p.train)),
            ("platform overhead (all but generate and train)", overhead),
        ];
        for (name, ms) in rows {
            let _ = writeln!(
                s,
                "| {name} | {:.2} | {:.1} % |",
                ms / 1e3,
                100.0 * ms / wall
            );
        }
        let _ = writeln!(
            s,
            "\nTime inside the workers, summed over workers: replicas generating {:.2} s, verifiers scoring {:.2} s.\n",
            sum(|p| p.generate_busy) / 1e3,
            sum(|p| p.score_busy) / 1e3
        );
    }

    /// The stages table, and per-domain accuracy after each evaluated stage.
    fn stages_markdown(&self, s: &mut String) {
        if self.stages.is_empty() {
            return;
        }
        let _ = writeln!(s, "## Stages\n");
        let _ = writeln!(
            s,
            "| stage | seconds | steps | examples | rollouts | first → last loss | accuracy |\n|---|---|---|---|---|---|---|"
        );
        for st in &self.stages {
            let loss = match (st.losses.first(), st.losses.last()) {
                (Some(a), Some(b)) => format!("{a:.3} → {b:.3}"),
                _ => "—".into(),
            };
            let acc = st
                .eval
                .as_ref()
                .map_or("—".into(), |e| format!("{:.3}", e.accuracy));
            let _ = writeln!(
                s,
                "| {} | {:.1} | {} | {} | {} | {loss} | {acc} |",
                st.name, st.wall_seconds, st.steps, st.examples, st.rollouts
            );
        }
        let evaluated: Vec<&StageReport> =
            self.stages.iter().filter(|st| st.eval.is_some()).collect();
        if evaluated.is_empty() {
            let _ = writeln!(s);
            return;
        }
        let mut domains: Vec<&String> = evaluated
            .iter()
            .filter_map(|st| st.eval.as_ref())
            .flat_map(|e| e.per_domain.keys())
            .collect();
        domains.sort();
        domains.dedup();
        let _ = write!(
            s,
            "\nAccuracy per domain after each evaluated stage:\n\n| domain |"
        );
        for st in &evaluated {
            let _ = write!(s, " {} |", st.name);
        }
        let _ = write!(s, "\n|---|");
        for _ in &evaluated {
            let _ = write!(s, "---|");
        }
        let _ = writeln!(s);
        for d in domains {
            let _ = write!(s, "| {d} |");
            for st in &evaluated {
                let a = st.eval.as_ref().and_then(|e| e.per_domain.get(d));
                let _ = match a {
                    Some(a) => write!(s, " {a:.3} |"),
                    None => write!(s, " — |"),
                };
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }

    /// The human-readable report.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Run report: {}\n", self.name);
        let _ = writeln!(
            s,
            "Seed {}, {} iterations, {:.1} s.\n",
            self.seed,
            self.iterations.len(),
            self.wall_seconds
        );
        let _ = writeln!(s, "## Evaluation (held-out split)\n");
        let _ = writeln!(
            s,
            "Accuracy counts full credit only; mean reward includes partial credit.{}\n",
            eval_sampling(&self.final_eval)
        );
        let _ = writeln!(
            s,
            "| domain | initial | final | mean reward initial | mean reward final |\n|---|---|---|---|---|"
        );
        let (ie, fe) = (&self.initial_eval, &self.final_eval);
        let get = |m: &BTreeMap<String, f64>, d: &str| m.get(d).copied().unwrap_or(f64::NAN);
        for (d, a) in &fe.per_domain {
            let _ = writeln!(
                s,
                "| {d} | {:.3} | {a:.3} | {:.3} | {:.3} |",
                get(&ie.per_domain, d),
                get(&ie.reward_per_domain, d),
                get(&fe.reward_per_domain, d)
            );
        }
        let _ = writeln!(
            s,
            "| **all** | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            ie.accuracy, fe.accuracy, ie.mean_reward, fe.mean_reward
        );
        self.stages_markdown(&mut s);
        let _ = writeln!(s, "## Eval curve\n");
        let _ = writeln!(
            s,
            "| iteration | steps | rollouts | accuracy |\n|---|---|---|---|"
        );
        for p in &self.eval_curve {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.3} |",
                p.iteration, p.steps, p.rollouts, p.accuracy
            );
        }
        let _ = writeln!(s);
        let t = &self.totals;
        let _ = writeln!(s, "## Totals\n");
        let _ = writeln!(
            s,
            "rollouts {}, samples selected {}, samples scored {}, worker restarts {}, history records {}, grade rollouts {}, samples with offline tiers {}\n",
            t.rollouts,
            t.samples_selected,
            t.samples_scored,
            t.restarts,
            t.store_observations,
            t.grade_rollouts,
            t.offline_samples
        );
        self.time_split_markdown(&mut s);
        let _ = writeln!(s, "## Iterations\n");
        let _ = writeln!(
            s,
            "| it | selected | kept (mixed) | mean reward | accuracy | not_valid | ratio EMA | samples per tier |\n|---|---|---|---|---|---|---|---|"
        );
        for r in &self.iterations {
            let tiers: Vec<String> = r
                .tier_counts
                .iter()
                .map(|(t, c)| format!("{t} {c}"))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} ({}) | {:.3} | {:.3} | {:.2} | {:.2} | {} |",
                r.iteration,
                r.selected,
                r.kept,
                r.kept_mixed,
                r.mean_reward,
                r.accuracy,
                r.not_valid_rate,
                r.expansion_ratio_ema,
                tiers.join(", ")
            );
        }
        s
    }
}

/// How an evaluation sampled, as a sentence for report.md ("" when not recorded).
fn eval_sampling(e: &EvalResult) -> String {
    let per = e.rollouts / e.samples.max(1);
    match e.temperature {
        Some(t) if t <= 0.0 => {
            format!(" Greedy decoding (temperature 0), {per} rollout(s) per sample.")
        }
        Some(t) => format!(" Sampled at temperature {t}, {per} rollout(s) per sample."),
        None => String::new(),
    }
}
