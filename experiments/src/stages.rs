//! The supervised stages of the recipe (pretrain, SFT) and the hand-off of weights
//! between stages. Each stage runs its own actor graph under a run supervisor: the
//! loaders resolve every batch, the learner trains and publishes weights to the
//! replicas, and (when asked) the replicas and verifiers evaluate the held-out split.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rlcs_actors::bus::SinkFn;
use rlcs_actors::driver::RlDriver;
use rlcs_actors::graph::{GraphSpec, RunGraph};
use rlcs_actors::pools::{FaultPlan, PolicyBuilder};
use rlcs_actors::supervised::SupervisedKind;
use rlcs_actors::RunEvent;
use rlcs_curriculum::{Curriculum, SamplerKind};
use rlcs_domains::{mix_seed, SampleId};
use rlcs_model::{Policy, Weights};
use rlcs_storage::Store;

use crate::config::{ExperimentConfig, StageName, SupervisedConfig};
use crate::report::StageReport;
use crate::{plan_of, pool_sizes, GradeInputs, RunError};

/// The file a stage's weights are handed to the next stage in.
pub const WEIGHTS_FILE: &str = "policy.weights";

/// The report of a finished supervised stage, written last: a run restarted after
/// a kill (`rlcs run --resume` before RL's first checkpoint) skips the stages that
/// have one.
pub const STAGE_REPORT_FILE: &str = "stage.json";

/// The report of `stage` if it finished in `run_dir` (its report and weights are
/// there and the report reads back); `None` means it must run (again).
pub fn finished_stage(run_dir: &Path, stage: StageName) -> Option<StageReport> {
    let dir = stage_dir(run_dir, stage);
    if !dir.join(WEIGHTS_FILE).is_file() {
        return None;
    }
    let bytes = std::fs::read(dir.join(STAGE_REPORT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes a finished stage's report atomically (a temporary file renamed).
fn write_stage_report(dir: &Path, report: &StageReport) -> Result<(), RunError> {
    let path = dir.join(STAGE_REPORT_FILE);
    let tmp = dir.join(format!("{STAGE_REPORT_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(report).map_err(|e| RunError::Write {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| RunError::Write { path, source })
}

/// The stages a config runs, in order: `stages`, or (when empty) `grade` if
/// enabled, then `rl`.
pub fn stage_order(config: &ExperimentConfig) -> Vec<StageName> {
    if config.stages.is_empty() {
        let mut s = Vec::new();
        if config.grade.enabled {
            s.push(StageName::Grade);
        }
        s.push(StageName::Rl);
        s
    } else {
        config.stages.clone()
    }
}

/// The directory of a stage's files in a run.
pub fn stage_dir(run_dir: &Path, stage: StageName) -> PathBuf {
    run_dir.join("stages").join(stage.as_str())
}

/// Reads the weights at `path`: a `policy.weights` file or a stage directory that
/// holds one.
pub fn read_weights(path: &Path) -> Result<Weights, RunError> {
    let file = if path.is_dir() {
        path.join(WEIGHTS_FILE)
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&file).map_err(|e| RunError::Weights {
        path: file.clone(),
        reason: e.to_string(),
    })?;
    Weights::decode(&bytes).map_err(|e| RunError::Weights {
        path: file,
        reason: e.to_string(),
    })
}

/// Builds a policy and gives it the weights at `init` (if any); a policy of another
/// shape than the weights fails with the file named.
pub fn build_with(
    builder: &PolicyBuilder,
    init: Option<&Path>,
) -> Result<Box<dyn Policy>, RunError> {
    let mut policy = builder()?;
    if let Some(path) = init {
        let w = read_weights(path)?;
        policy.import_weights(&w).map_err(|e| RunError::Weights {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(policy)
}

/// Batches of a supervised stage: `steps` batches of `batch` train ids, every
/// sample once per epoch in a seeded order.
pub fn batches(ids: &[SampleId], steps: u32, batch: usize, seed: u64) -> Vec<Vec<SampleId>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<SampleId> = Vec::new();
    let mut next = 0;
    let mut out = Vec::with_capacity(steps as usize);
    for _ in 0..steps {
        let mut b = Vec::with_capacity(batch);
        while b.len() < batch.min(ids.len()) {
            if next == order.len() {
                order = ids.to_vec();
                order.shuffle(&mut rng);
                next = 0;
            }
            b.push(order[next]);
            next += 1;
        }
        out.push(b);
    }
    out
}

/// The stage a supervised kind is, and its settings.
pub(crate) fn supervised_settings(
    config: &ExperimentConfig,
    kind: SupervisedKind,
) -> (StageName, &SupervisedConfig) {
    match kind {
        SupervisedKind::Pretrain(_) => (StageName::Pretrain, &config.pretrain),
        SupervisedKind::Sft => (StageName::Sft, &config.sft),
    }
}

/// Starts the graph of a stage before RL (pretrain, sft, grade) in `dir`: the run's
/// pools, `learner`, a store of its own in `dir/store`, and a curriculum actor the
/// stage never asks to select.
pub(crate) async fn side_graph(
    config: &ExperimentConfig,
    context: &GradeInputs<'_>,
    dir: &Path,
    learner: Box<dyn Policy>,
    sinks: Vec<SinkFn>,
) -> Result<RunGraph, RunError> {
    std::fs::create_dir_all(dir).map_err(|e| RunError::RunDir {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let curriculum = Curriculum::new(
        rlcs_curriculum::CurriculumConfig::with_sampler(SamplerKind::Uniform),
        context.domain_names.clone(),
        context.entries.clone(),
        config.run.batch_size,
        mix_seed(config.seed, 3),
    )?;
    Ok(RunGraph::start(GraphSpec {
        samples: context.table.clone(),
        curriculum,
        store: Store::open_with(&dir.join("store"), config.store.backend)?,
        learner,
        replica_builder: context.replica_builder.clone(),
        registry: context.registry.clone(),
        faults: Arc::new(FaultPlan::verifier_panic_on_job(None)),
        pools: pool_sizes(config),
        sinks,
        run_name: config.name.clone(),
        telemetry: context.telemetry.clone(),
        cluster: context.cluster.clone(),
    })
    .await?)
}

/// What a supervised stage is given.
pub(crate) struct StageInputs<'a> {
    pub(crate) grade: &'a GradeInputs<'a>,
    /// The samples the stage trains on.
    pub(crate) data: &'a [Arc<rlcs_domains::Sample>],
    pub(crate) eval: &'a [Arc<rlcs_domains::Sample>],
    /// Builds the stage's learner (its own schedule).
    pub(crate) learner_builder: PolicyBuilder,
    /// Weights to start from.
    pub(crate) init: Option<PathBuf>,
    pub(crate) progress: bool,
}

/// Runs a supervised stage in its own graph; writes its events to
/// `stages/<stage>/events.jsonl` and its weights to `stages/<stage>/policy.weights`.
pub(crate) async fn supervised_stage(
    config: &ExperimentConfig,
    kind: SupervisedKind,
    inputs: &StageInputs<'_>,
    run_dir: &Path,
) -> Result<StageReport, RunError> {
    let started = Instant::now();
    let (stage, settings) = supervised_settings(config, kind);
    let dir = stage_dir(run_dir, stage);
    let learner = build_with(&inputs.learner_builder, inputs.init.as_deref())?;
    std::fs::create_dir_all(&dir).map_err(|e| RunError::RunDir {
        path: dir.clone(),
        reason: e.to_string(),
    })?;
    let sinks = stage_sinks(
        &dir,
        config,
        stage,
        u64::from(settings.steps),
        inputs.progress,
    )?;
    let graph = side_graph(config, inputs.grade, &dir, learner, sinks).await?;
    let result = run_steps(&graph, config, kind, settings, inputs, &dir, started).await;
    graph.shutdown().await;
    let (losses, eval) = result?;
    let report = StageReport {
        steps: settings.steps,
        examples: settings.steps as usize * settings.batch_size.min(inputs.data.len()),
        losses,
        eval,
        ..StageReport::new(stage.as_str(), started.elapsed().as_secs_f64())
    };
    write_stage_report(&dir, &report)?;
    Ok(report)
}

async fn run_steps(
    graph: &RunGraph,
    config: &ExperimentConfig,
    kind: SupervisedKind,
    settings: &SupervisedConfig,
    inputs: &StageInputs<'_>,
    dir: &Path,
    started: Instant,
) -> Result<(Vec<f64>, Option<rlcs_actors::driver::EvalResult>), RunError> {
    let stage = kind.name();
    let plan = plan_of(config, inputs.grade.verifiers.clone());
    let driver = RlDriver::new(graph, plan);
    driver.publish(RunEvent::StageStarted {
        stage: stage.to_string(),
    });
    let ids: Vec<SampleId> = inputs.data.iter().map(|s| s.id).collect();
    let seed = mix_seed(config.seed, rlcs_domains::stable_hash(&[stage.as_bytes()]));
    let mut losses = Vec::with_capacity(settings.steps as usize);
    for (i, batch) in batches(&ids, settings.steps, settings.batch_size, seed)
        .iter()
        .enumerate()
    {
        let stats = driver.supervised_step(kind, i as u32 + 1, batch).await?;
        losses.push(stats.loss);
    }
    driver.save_weights(dir.join(WEIGHTS_FILE)).await?;
    let eval = if settings.eval.unwrap_or(kind == SupervisedKind::Sft) {
        Some(
            driver
                .evaluate(inputs.eval, config.run.eval_rollouts, stage)
                .await?,
        )
    } else {
        None
    };
    driver.publish(RunEvent::StageFinished {
        stage: stage.to_string(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok((losses, eval))
}

/// The sinks of a stage before RL: its own `events.jsonl` in `dir` and, when
/// `progress`, a bar of `total` steps (supervised steps, or samples graded).
pub(crate) fn stage_sinks(
    dir: &Path,
    config: &ExperimentConfig,
    stage: StageName,
    total: u64,
    progress: bool,
) -> Result<Vec<SinkFn>, RunError> {
    use std::io::Write;
    let path = dir.join("events.jsonl");
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
            RunEvent::StageFinished { .. } | RunEvent::Evaluated { .. }
        ) {
            let _ = log.flush();
        }
    })];
    if progress {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{} {}", config.name, stage.as_str()));
        sinks.push(Box::new(move |e: &RunEvent| match e {
            RunEvent::SupervisedStepped { loss, .. } => {
                bar.inc(1);
                bar.set_message(format!("loss {loss:.3}"));
            }
            RunEvent::SampleGraded {
                graded,
                correct,
                rollouts,
                ..
            } => {
                bar.set_position(*graded as u64);
                let rate = *correct as f64 / (*rollouts).max(1) as f64;
                bar.set_message(format!("pass rate {rate:.3}"));
            }
            RunEvent::Evaluated { label, accuracy } => {
                bar.println(format!("eval ({label}): accuracy {accuracy:.3}"));
            }
            RunEvent::StageFinished { .. } => bar.finish(),
            _ => {}
        }));
    }
    Ok(sinks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_sample_once_per_epoch_in_a_seeded_order() {
        let ids: Vec<u64> = (0..10).collect();
        let b = batches(&ids, 5, 4, 1);
        assert_eq!(b.len(), 5);
        assert!(b.iter().all(|x| x.len() == 4));
        // The first 8 of epoch one are distinct; 20 draws cover every id twice.
        let flat: Vec<u64> = b.concat();
        let mut first: Vec<u64> = flat[..10].to_vec();
        first.sort_unstable();
        assert_eq!(first, ids);
        assert_eq!(b, batches(&ids, 5, 4, 1));
        assert_ne!(b, batches(&ids, 5, 4, 2));
        // A batch larger than the pool holds the pool once.
        assert!(batches(&ids[..3], 2, 8, 1).iter().all(|x| x.len() == 3));
    }
}
