//! The run report: `report.json` (a contract other tools read) and `report.md`.

use std::fmt::Write as _;
use std::path::Path;

use rlcs_actors::driver::{EvalResult, IterationRecord};
use serde::{Deserialize, Serialize};

use crate::RunError;

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
        crate::write_file(&dir.join("report.md"), self.markdown().as_bytes())
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
        let _ = writeln!(s, "| domain | initial | final |\n|---|---|---|");
        for (d, a) in &self.final_eval.per_domain {
            let i = self
                .initial_eval
                .per_domain
                .get(d)
                .copied()
                .unwrap_or(f64::NAN);
            let _ = writeln!(s, "| {d} | {i:.3} | {a:.3} |");
        }
        let _ = writeln!(
            s,
            "| **all** | {:.3} | {:.3} |\n",
            self.initial_eval.accuracy, self.final_eval.accuracy
        );
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
