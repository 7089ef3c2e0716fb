//! The RL iteration, driven through the graph's actors:
//! Curriculum.select → loaders → replicas → verifiers → Curriculum.observe →
//! Storage (durable history) → Learner.step (weights to replicas) → events.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use futures::{StreamExt, TryStreamExt};
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use rlcs_curriculum::{GroupOutcome, ObserveSummary, Selection};
use rlcs_domains::{mix_seed as mix, stable_hash, Sample, SampleId};
use rlcs_model::{GenerationParams, Prompt, PromptImage, Rollout, StepStats, TrainGroup};
use rlcs_rewards::Verdict;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::bus::BusMsg;
use crate::cluster::{
    call_spread, GenerateRequest, RemoteJob, RemoteReply, Role, ScoreRequest, WeightsTag,
};
use crate::graph::RunGraph;
use crate::pools::{call_pool, LoaderMsg, ReplicaMsg, VerifierMsg};
use crate::singletons::{CurriculumMsg, LearnerMsg, StorageMsg};
use crate::telemetry::{clip, IterationPoint, RolloutView};
use crate::trace::TraceContext;
use crate::{ActorsError, RunEvent};
use base64::Engine as _;

/// Settings of the RL loop.
#[derive(Debug, Clone)]
pub struct RlPlan {
    /// Rollouts per prompt (G).
    pub group_size: usize,
    /// Sampling temperature of training rollouts and grading.
    pub temperature: f32,
    /// Sampling temperature of held-out evaluations (0: greedy decoding).
    pub eval_temperature: f32,
    /// Nucleus threshold.
    pub top_p: f32,
    /// The run's seed.
    pub seed: u64,
    /// Timeout of one request to an actor or pool.
    pub timeout: Duration,
    /// Timeout of one request to the learner (a training step, a weights export):
    /// training a whole batch on a CPU or a loaded machine takes far longer than
    /// any other request.
    pub learner_timeout: Duration,
    /// Attempts per pool job before the run fails.
    pub attempts: u32,
    /// Sample ids per loader job.
    pub loader_chunk: usize,
    /// Verifier name per domain.
    pub verifiers: HashMap<String, String>,
    /// Publish a few rollouts for the dashboard every this many iterations (0:
    /// never).
    pub sample_rollouts_every: u32,
}

/// One iteration, as the report records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    /// Iteration number (1-based).
    pub iteration: u32,
    /// Prompts rolled out.
    pub selected: usize,
    /// Rollouts generated and scored.
    pub rollouts: usize,
    /// Mean reward over all rollouts.
    pub mean_reward: f64,
    /// Share of correct rollouts.
    pub accuracy: f64,
    /// Share of rollouts that passed the format gate.
    pub format_ok_rate: f64,
    /// Share of groups all correct or all wrong.
    pub not_valid_rate: f64,
    /// Clamped `1 / (1 − not_valid_rate)`.
    pub expansion_ratio: f64,
    /// EMA of the expansion ratio after this iteration.
    pub expansion_ratio_ema: f64,
    /// Groups kept for training.
    pub kept: usize,
    /// Kept groups that carry a learning signal.
    pub kept_mixed: usize,
    /// Samples per tier after the update.
    pub tier_counts: BTreeMap<String, usize>,
    /// Sampling weight per tier, for samplers that have one.
    pub tier_weights: Option<Vec<f64>>,
    /// The pass rate the sampler aims its batches at, for samplers that move one
    /// with the reward (AdaRFT; RLCS steering on a graded pool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_pass_rate: Option<f64>,
    /// Policy version after the learner step.
    pub policy_version: u64,
    /// Learner loss.
    pub loss: f64,
    /// Wall time of the iteration, in milliseconds.
    pub wall_ms: f64,
    /// Where the iteration's wall time went.
    #[serde(default)]
    pub phase_ms: PhaseTimes,
    /// Reward and accuracy of this iteration's rollouts per domain (top-up rounds
    /// included).
    #[serde(default)]
    pub per_domain: BTreeMap<String, DomainRollouts>,
    /// Share of rollouts whose thinking was closed by force answering.
    #[serde(default)]
    pub force_answer_rate: f64,
    /// Mean response length in tokens.
    #[serde(default)]
    pub mean_response_tokens: f64,
    /// Rollouts scored 0 because their verifier failed (a plug-in verifier's
    /// process died twice or its sandbox could not run); the sampled rollouts'
    /// `reason` says why.
    #[serde(default)]
    pub verifier_errors: usize,
}

impl IterationRecord {
    /// The iteration's point on the dashboard's curves; `rollouts` counts every
    /// rollout of the run so far.
    pub fn point(&self, rollouts: usize) -> IterationPoint {
        IterationPoint {
            iteration: self.iteration,
            rollouts,
            mean_reward: self.mean_reward,
            accuracy: self.accuracy,
            per_domain: self
                .per_domain
                .iter()
                .map(|(d, r)| (d.clone(), (r.mean_reward, r.accuracy)))
                .collect(),
            tier_counts: self.tier_counts.clone(),
            expansion_ratio_ema: self.expansion_ratio_ema,
            not_valid_rate: self.not_valid_rate,
            force_answer_rate: self.force_answer_rate,
            mean_response_tokens: self.mean_response_tokens,
            wall_ms: self.wall_ms,
        }
    }
}

/// Groups shown on the dashboard per sampled iteration (the first of each domain).
const SAMPLED_GROUPS: usize = 8;

/// The first rollout of the first group of each domain (at most
/// [`SAMPLED_GROUPS`]), with the sample's first image.
fn sample_views(
    iteration: u32,
    samples: &[Arc<Sample>],
    groups: &[(Vec<Rollout>, Vec<Verdict>)],
) -> Vec<RolloutView> {
    let mut domains: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for (s, (rollouts, verdicts)) in samples.iter().zip(groups) {
        if out.len() >= SAMPLED_GROUPS || !domains.insert(s.domain.as_str()) {
            continue;
        }
        let (Some(r), Some(v)) = (rollouts.first(), verdicts.first()) else {
            continue;
        };
        let image_png = s
            .images
            .first()
            .and_then(|img| img.to_png().ok())
            .map(|png| base64::engine::general_purpose::STANDARD.encode(png));
        out.push(RolloutView {
            iteration,
            sample_id: format!("{:016x}", s.id),
            domain: s.domain.clone(),
            prompt: clip(&s.prompt, 400),
            response: clip(&r.response, 1200),
            reward: v.reward,
            correct: v.correct,
            reason: v.reason.as_deref().map(|r| clip(r, 400)),
            group_correct: verdicts.iter().filter(|v| v.correct).count(),
            group_size: verdicts.len(),
            image_png,
        });
    }
    out
}

/// One domain's rollouts in an iteration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainRollouts {
    /// Rollouts generated and scored.
    pub rollouts: usize,
    /// Mean reward.
    pub mean_reward: f64,
    /// Share of correct rollouts.
    pub accuracy: f64,
}

/// Where an iteration's time went, in milliseconds. `select`, `load`, `rollout`,
/// `observe`, `store` and `train` are wall times of the driver's phases (top-up
/// rounds add up); inside `rollout` groups are generated and scored concurrently,
/// so `generate_busy` and `score_busy` sum the time the replica and verifier
/// workers spent in their handlers (generating, scoring) instead — not the time
/// calls waited in a queue or for a core. `train` includes handing the new weights
/// to the replicas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Curriculum selection (first round and top-ups).
    pub select: f64,
    /// Loading samples through the loader pool.
    pub load: f64,
    /// Generating and scoring every group (wall).
    pub rollout: f64,
    /// Time the replica workers spent generating, summed over workers.
    pub generate_busy: f64,
    /// Time the verifier workers spent scoring, summed over workers.
    pub score_busy: f64,
    /// Curriculum observation (statistics, tiers, balanced selection).
    pub observe: f64,
    /// Durable history append to the store.
    pub store: f64,
    /// The learner step and weight publication.
    pub train: f64,
}

impl PhaseTimes {
    /// The platform's own share of the iteration: everything but generation and
    /// training. Scoring runs while other groups generate; it is charged by its
    /// share of the busy time spent in the rollout phase.
    pub fn overhead_ms(&self, wall_ms: f64) -> f64 {
        let busy = self.generate_busy + self.score_busy;
        let scoring = if busy > 0.0 {
            self.rollout * self.score_busy / busy
        } else {
            0.0
        };
        (wall_ms - self.train - self.rollout + scoring).max(0.0)
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Accuracy over a set of held-out samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Share of correct rollouts.
    pub accuracy: f64,
    /// Accuracy per domain.
    pub per_domain: BTreeMap<String, f64>,
    /// Mean reward of the rollouts: partial credit (OCR's edit distance, a
    /// fraction of boxes matched, …) moves it where accuracy (correct only at full
    /// credit) has not moved yet. Absent (0) in reports written before it existed.
    #[serde(default)]
    pub mean_reward: f64,
    /// Mean reward per domain.
    #[serde(default)]
    pub reward_per_domain: BTreeMap<String, f64>,
    /// Samples evaluated.
    pub samples: usize,
    /// Rollouts scored.
    pub rollouts: usize,
    /// The sampling temperature of the evaluation (0: greedy decoding). Absent in
    /// reports written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

/// Counters across the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Rollouts generated in training iterations.
    pub rollouts: usize,
    /// Samples selected by the curriculum.
    pub samples_selected: usize,
    /// Samples whose whole group was scored (exactly once each).
    pub samples_scored: usize,
}

/// Drives RL iterations over a running graph.
pub struct RlDriver<'a> {
    pub(crate) graph: &'a RunGraph,
    plan: RlPlan,
    /// Counters so far.
    pub totals: Totals,
    phases: PhaseTimes,
    /// The span of each group rolled out in the current iteration, which the
    /// learner's step links to.
    group_traces: std::sync::Mutex<HashMap<SampleId, TraceContext>>,
    /// Parent of the iteration, evaluation and grading spans (the stage's span).
    parent: tracing::Span,
    /// The current iteration's span, parent of its phase spans. Phases name their
    /// parent instead of running inside it, so each poll of a phase enters one span,
    /// not the run's, the stage's and the iteration's as well.
    iteration_span: tracing::Span,
}

const EVAL_SALT: u64 = 0x6576_616c;
const GRADE_SALT: u64 = 0x0067_7261_6465;

/// Most top-up rounds the driver runs in one iteration, whatever the curriculum asks.
const MAX_TOPUP_ROUNDS: u32 = 16;

/// Sums over the rounds of one iteration.
#[derive(Default)]
struct RoundTotals {
    selected: usize,
    scored: usize,
    rollouts: usize,
    reward_sum: f64,
    correct: usize,
    format_ok: usize,
    verifier_errors: usize,
    kept_mixed: usize,
    forced: usize,
    tokens: u64,
    /// Per domain: rollouts, reward sum, correct.
    per_domain: BTreeMap<String, (usize, f64, usize)>,
}

/// Wrong answers handed to the simulated learner per prompt.
const WRONG_ANSWERS: u64 = 3;

/// The policy prompt of a sample: its text and images (several images are the frames
/// of a video), gold and typed answer, and a few wrong answers for the simulated
/// learner.
pub fn prompt_of(s: &Sample) -> Prompt {
    Prompt {
        sample_id: s.id,
        domain: s.domain.clone(),
        text: s.prompt.clone(),
        gold: s.gold.clone(),
        answer: s.answer.response(),
        wrong_answers: (0..WRONG_ANSWERS).map(|k| s.answer.perturbed(k)).collect(),
        difficulty: s.difficulty,
        images: s
            .images
            .iter()
            .map(|i| PromptImage {
                width: i.width,
                height: i.height,
                rgb: Arc::from(i.rgb.as_slice()),
            })
            .collect(),
        // Built-in samples with several images are the frames of a video.
        video: s.images.len() > 1,
    }
}

impl<'a> RlDriver<'a> {
    /// A driver for `graph`.
    pub fn new(graph: &'a RunGraph, plan: RlPlan) -> Self {
        RlDriver {
            graph,
            plan,
            totals: Totals::default(),
            phases: PhaseTimes::default(),
            group_traces: Default::default(),
            parent: tracing::Span::current(),
            iteration_span: tracing::Span::none(),
        }
    }

    /// The graph this driver runs.
    pub fn graph(&self) -> &'a RunGraph {
        self.graph
    }

    /// Makes `span` the parent of this driver's spans (default: the span current
    /// when the driver was made).
    pub fn with_span(mut self, span: tracing::Span) -> Self {
        self.parent = span;
        self
    }

    /// Publishes `e` on the run's bus.
    pub fn publish(&self, e: RunEvent) {
        let _ = self.graph.bus.cast(BusMsg::Publish(e));
    }

    /// Calls a singleton with the plan's timeout; a failure names the actor and any
    /// failure the supervisor recorded.
    pub(crate) async fn call<M, R>(
        &self,
        actor: &ActorRef<M>,
        name: &str,
        build: impl FnOnce(RpcReplyPort<R>) -> M,
    ) -> Result<R, ActorsError>
    where
        M: ractor::Message,
        R: Send + 'static,
    {
        self.call_within(actor, name, self.plan.timeout, build)
            .await
    }

    /// Calls the learner with the plan's learner timeout.
    pub(crate) async fn call_learner<R>(
        &self,
        build: impl FnOnce(RpcReplyPort<R>) -> LearnerMsg,
    ) -> Result<R, ActorsError>
    where
        R: Send + 'static,
    {
        self.call_within(
            &self.graph.learner,
            "learner",
            self.plan.learner_timeout,
            build,
        )
        .await
    }

    async fn call_within<M, R>(
        &self,
        actor: &ActorRef<M>,
        name: &str,
        timeout: Duration,
        build: impl FnOnce(RpcReplyPort<R>) -> M,
    ) -> Result<R, ActorsError>
    where
        M: ractor::Message,
        R: Send + 'static,
    {
        let reason = match actor.call(build, Some(timeout)).await {
            Ok(CallResult::Success(r)) => return Ok(r),
            Ok(CallResult::Timeout) => format!("no reply within {timeout:?}"),
            Ok(CallResult::SenderError) => "stopped before replying".to_string(),
            Err(e) => e.to_string(),
        };
        let recorded = self.graph.failures();
        Err(ActorsError::Failed {
            actor: name.to_string(),
            reason: if recorded.is_empty() {
                reason
            } else {
                format!("{reason}; supervisor recorded: {}", recorded.join("; "))
            },
        })
    }

    pub(crate) async fn load(&self, ids: &[SampleId]) -> Result<Vec<Arc<Sample>>, ActorsError> {
        let chunks = ids.chunks(self.plan.loader_chunk.max(1)).map(|chunk| {
            let chunk = chunk.to_vec();
            let key = chunk.first().copied().unwrap_or(0);
            async move {
                let r = call_pool(
                    &self.graph.loaders,
                    key,
                    self.plan.timeout,
                    self.plan.attempts,
                    || format!("loading {} samples", chunk.len()),
                    |reply| LoaderMsg::Load {
                        ids: chunk.clone(),
                        trace: TraceContext::current(),
                        reply,
                    },
                )
                .await?;
                r.map_err(|id| ActorsError::Actor {
                    actor: "loaders".into(),
                    reason: format!("unknown sample {id:#018x}"),
                })
            }
        });
        Ok(try_join_all(chunks).await?.into_iter().flatten().collect())
    }

    /// Generates and scores one group per `(sample, seed)`, in order, with at most
    /// two groups per replica in flight: a request's timeout then covers its own
    /// work and one queued ahead of it, not a queue of every group at once (a
    /// grade stage asks for thousands). `on_done` sees each group as it completes,
    /// in order.
    async fn rollout_groups<'s>(
        &self,
        jobs: impl Iterator<Item = (&'s Sample, u64)>,
        group_size: usize,
        temperature: f32,
        span: &tracing::Span,
        mut on_done: impl FnMut(&(Vec<Rollout>, Vec<Verdict>)),
    ) -> Result<Vec<(Vec<Rollout>, Vec<Verdict>)>, ActorsError> {
        let remote = self
            .graph
            .cluster
            .as_ref()
            .map(|c| c.replicas.slots())
            .unwrap_or(0);
        let in_flight = 2 * (self.graph.replicas.workers.max(1) + remote);
        // `span` (the phase's) is the named parent of each group's span and is never
        // entered: these futures wake once per reply, and entering the span on every
        // poll cost more than the rest of the tracing together.
        let phase = TraceContext::of(span);
        futures::stream::iter(
            jobs.map(|(s, seed)| {
                self.rollout_group(s, seed, group_size, temperature, span, &phase)
            }),
        )
        .buffered(in_flight)
        .inspect_ok(|group| on_done(group))
        .try_collect()
        .await
    }

    /// Generates and scores one group. A job re-issued after a crash reproduces the
    /// same result (seeded), and only one reply is ever recorded.
    async fn rollout_group(
        &self,
        sample: &Sample,
        seed: u64,
        group_size: usize,
        temperature: f32,
        parent: &tracing::Span,
        parent_trace: &TraceContext,
    ) -> Result<(Vec<Rollout>, Vec<Verdict>), ActorsError> {
        let span = tracing::debug_span!(parent: parent, "group", sample = sample.id, domain = %sample.domain);
        // The pools' handlers are children of the group's span, or of the phase's
        // when group spans are off (then the learner has no group to link to).
        let trace = if span.is_disabled() {
            parent_trace.clone()
        } else {
            let group = TraceContext::of(&span);
            if let Ok(mut traces) = self.group_traces.lock() {
                traces.insert(sample.id, group.clone());
            }
            group
        };
        let result = self
            .generate_and_score(sample, seed, group_size, temperature, &trace)
            .await;
        drop(span);
        result
    }

    async fn generate_and_score(
        &self,
        sample: &Sample,
        seed: u64,
        group_size: usize,
        temperature: f32,
        trace: &TraceContext,
    ) -> Result<(Vec<Rollout>, Vec<Verdict>), ActorsError> {
        let prompt = prompt_of(sample);
        let params = GenerationParams {
            group_size,
            temperature,
            top_p: self.plan.top_p,
            seed,
        };
        let rollouts = call_spread(
            &self.graph.replicas,
            self.graph.cluster.as_deref(),
            Role::Replicas,
            sample.id,
            self.plan.timeout,
            self.plan.attempts,
            || format!("generating for sample {:#018x}", sample.id),
            |reply| ReplicaMsg::Generate {
                prompt: prompt.clone(),
                trace: trace.clone(),
                params,
                reply,
            },
            || {
                RemoteJob::Generate(GenerateRequest {
                    prompt: prompt.clone(),
                    params,
                    // Set to the current weights when sent.
                    weights: WeightsTag {
                        generation: 0,
                        version: None,
                    },
                    trace: trace.clone(),
                })
            },
            |reply| match reply {
                RemoteReply::Generate(r) => Some(r),
                RemoteReply::Score(_) => None,
            },
        )
        .await?
        .map_err(|reason| ActorsError::Actor {
            actor: "replicas".into(),
            reason,
        })?;
        let verifier = self
            .plan
            .verifiers
            .get(&sample.domain)
            .cloned()
            .ok_or_else(|| ActorsError::Actor {
                actor: "verifiers".into(),
                reason: format!("no verifier configured for domain `{}`", sample.domain),
            })?;
        let responses: Vec<String> = rollouts.iter().map(|r| r.response.clone()).collect();
        let verdicts = call_spread(
            &self.graph.verifiers,
            self.graph.cluster.as_deref(),
            Role::Verifiers,
            sample.id,
            self.plan.timeout,
            self.plan.attempts,
            || format!("scoring sample {:#018x}", sample.id),
            |reply| VerifierMsg::ScoreGroup {
                verifier: verifier.clone(),
                trace: trace.clone(),
                responses: responses.clone(),
                gold: sample.gold.clone(),
                reply,
            },
            || {
                RemoteJob::Score(ScoreRequest {
                    verifier: verifier.clone(),
                    responses: responses.clone(),
                    gold: sample.gold.clone(),
                    trace: trace.clone(),
                })
            },
            |reply| match reply {
                RemoteReply::Score(r) => Some(r),
                RemoteReply::Generate(_) => None,
            },
        )
        .await?
        .map_err(|reason| ActorsError::Actor {
            actor: "verifiers".into(),
            reason,
        })?;
        if verdicts.len() != rollouts.len() {
            return Err(ActorsError::ExactlyOnce(format!(
                "sample {:#018x}: {} rollouts but {} verdicts",
                sample.id,
                rollouts.len(),
                verdicts.len()
            )));
        }
        Ok((rollouts, verdicts))
    }

    /// Handler time of the replica and verifier pools so far (nanoseconds).
    fn pool_busy_ns(&self) -> (u64, u64) {
        (
            self.graph.replicas.busy_ns.load(Ordering::Relaxed),
            self.graph.verifiers.busy_ns.load(Ordering::Relaxed),
        )
    }

    /// Runs one RL iteration.
    pub async fn iteration(&mut self, iteration: u32) -> Result<IterationRecord, ActorsError> {
        self.iteration_span = tracing::info_span!(parent: &self.parent, "iteration", iteration);
        let result = self.iteration_inner(iteration).await;
        // The iteration's span ends here, with its phases.
        self.iteration_span = tracing::Span::none();
        result
    }

    async fn iteration_inner(&mut self, iteration: u32) -> Result<IterationRecord, ActorsError> {
        let start = Instant::now();
        self.phases = PhaseTimes::default();
        let busy_at_start = self.pool_busy_ns();
        self.publish(RunEvent::IterationStarted { iteration });
        let t = Instant::now();
        let mut selection: Selection = self
            .call(&self.graph.curriculum, "curriculum", CurriculumMsg::Select)
            .instrument(tracing::info_span!(parent: &self.iteration_span, "select"))
            .await?;
        self.phases.select += ms_since(t);
        // Samples rolled out in this iteration. The curriculum never offers one twice
        // in an iteration (top-up rounds draw others); a repeat would store a sample
        // twice for one iteration, so it fails the run instead.
        let mut seen: HashSet<SampleId> = HashSet::new();
        let mut batch: Vec<TrainGroup> = Vec::new();
        let mut totals = RoundTotals::default();
        let mut first: Option<ObserveSummary> = None;
        let mut last: Option<ObserveSummary>;
        let mut rounds = 0u32;
        loop {
            if let Some(id) = selection.samples.iter().find(|id| !seen.insert(**id)) {
                return Err(ActorsError::ExactlyOnce(format!(
                    "the curriculum selected sample {id:#018x} twice in iteration {iteration}"
                )));
            }
            let (summary, kept_groups) = self.round(iteration, &selection, &mut totals).await?;
            batch.extend(kept_groups);
            rounds += 1;
            let resample = summary.resample;
            if first.is_none() {
                first = Some(summary.clone());
            }
            last = Some(summary);
            // The curriculum caps top-up rounds; the driver caps them again so a
            // misbehaving sampler cannot loop forever.
            if resample == 0 || rounds > MAX_TOPUP_ROUNDS {
                break;
            }
            let t = Instant::now();
            selection = self
                .call(&self.graph.curriculum, "curriculum", |reply| {
                    CurriculumMsg::SelectMore { n: resample, reply }
                })
                .await?;
            self.phases.select += ms_since(t);
            if selection.samples.is_empty() {
                break;
            }
        }
        let (Some(first), Some(last)) = (first, last) else {
            return Err(ActorsError::Actor {
                actor: "driver".into(),
                reason: "an iteration ran no round".into(),
            });
        };

        let kept = batch.len();
        let t = Instant::now();
        let links: Vec<TraceContext> = match self.group_traces.lock() {
            Ok(mut traces) => {
                let links = batch
                    .iter()
                    .filter_map(|g| traces.get(&g.prompt.sample_id).cloned())
                    .collect();
                traces.clear();
                links
            }
            Err(_) => Vec::new(),
        };
        let step: StepStats = self
            .call_learner(|reply| LearnerMsg::Step {
                iteration,
                trace: TraceContext::current(),
                links,
                groups: batch,
                reply,
            })
            .instrument(tracing::info_span!(parent: &self.iteration_span, "train", groups = kept))
            .await?
            .map_err(|reason| ActorsError::Actor {
                actor: "learner".into(),
                reason,
            })?;

        self.phases.train += ms_since(t);
        let mut phase_ms = std::mem::take(&mut self.phases);
        let busy_now = self.pool_busy_ns();
        phase_ms.generate_busy = busy_now.0.saturating_sub(busy_at_start.0) as f64 / 1e6;
        phase_ms.score_busy = busy_now.1.saturating_sub(busy_at_start.1) as f64 / 1e6;
        let denom = totals.rollouts.max(1) as f64;
        self.totals.rollouts += totals.rollouts;
        self.totals.samples_selected += totals.selected;
        self.totals.samples_scored += totals.scored;
        let record = IterationRecord {
            iteration,
            selected: totals.selected,
            rollouts: totals.rollouts,
            mean_reward: totals.reward_sum / denom,
            accuracy: totals.correct as f64 / denom,
            format_ok_rate: totals.format_ok as f64 / denom,
            verifier_errors: totals.verifier_errors,
            not_valid_rate: first.not_valid_rate,
            expansion_ratio: first.expansion_ratio,
            expansion_ratio_ema: last.expansion_ratio_ema,
            kept,
            kept_mixed: totals.kept_mixed,
            tier_counts: last.tier_counts.into_iter().collect(),
            tier_weights: last.tier_weights,
            target_pass_rate: last.target_pass_rate,
            policy_version: step.policy_version,
            loss: step.loss,
            wall_ms: start.elapsed().as_secs_f64() * 1e3,
            phase_ms,
            per_domain: totals
                .per_domain
                .into_iter()
                .map(|(d, (n, reward, correct))| {
                    let m = n.max(1) as f64;
                    let stats = DomainRollouts {
                        rollouts: n,
                        mean_reward: reward / m,
                        accuracy: correct as f64 / m,
                    };
                    (d, stats)
                })
                .collect(),
            force_answer_rate: totals.forced as f64 / denom,
            mean_response_tokens: totals.tokens as f64 / denom,
        };
        self.publish(RunEvent::IterationFinished {
            point: Box::new(record.point(self.totals.rollouts)),
        });
        Ok(record)
    }

    /// One round of an iteration: load, roll out and score `selection`, observe the
    /// groups, persist their history; returns the summary and the kept groups.
    async fn round(
        &mut self,
        iteration: u32,
        selection: &Selection,
        totals: &mut RoundTotals,
    ) -> Result<(ObserveSummary, Vec<TrainGroup>), ActorsError> {
        self.publish(RunEvent::SamplesSelected {
            iteration,
            selected: selection.samples.len(),
            keep: selection.keep,
        });
        let t = Instant::now();
        let samples = self
            .load(&selection.samples)
            .instrument(tracing::info_span!(
                parent: &self.iteration_span,
                "load",
                samples = selection.samples.len()
            ))
            .await?;
        self.phases.load += ms_since(t);
        let g = self.plan.group_size;
        let t = Instant::now();
        let span = tracing::info_span!(
            parent: &self.iteration_span,
            "rollout_and_score",
            groups = samples.len()
        );
        let groups = self
            .rollout_groups(
                samples
                    .iter()
                    .map(|s| (s.as_ref(), mix(mix(self.plan.seed, iteration as u64), s.id))),
                g,
                self.plan.temperature,
                &span,
                |_| {},
            )
            .await?;
        drop(span);
        self.phases.rollout += ms_since(t);

        // Exactly once: one scored group per selected sample, none twice.
        let mut scored: HashMap<SampleId, usize> = HashMap::with_capacity(samples.len());
        for (k, s) in samples.iter().enumerate() {
            if scored.insert(s.id, k).is_some() {
                return Err(ActorsError::ExactlyOnce(format!(
                    "sample {:#018x} scored twice in iteration {iteration}",
                    s.id
                )));
            }
        }
        if let Some(missing) = selection.samples.iter().find(|id| !scored.contains_key(id)) {
            return Err(ActorsError::ExactlyOnce(format!(
                "selected sample {missing:#018x} was not scored in iteration {iteration}"
            )));
        }
        let policy_version = groups
            .iter()
            .flat_map(|(r, _)| r.iter().map(|r| r.policy_version))
            .min()
            .unwrap_or(0);
        let rollouts: usize = groups.iter().map(|(r, _)| r.len()).sum();
        self.publish(RunEvent::RolloutsGenerated {
            iteration,
            rollouts,
            policy_version,
        });
        let (mut reward_sum, mut correct, mut format_ok) = (0.0, 0usize, 0usize);
        let outcomes: Vec<GroupOutcome> = samples
            .iter()
            .zip(&groups)
            .map(|(s, (r, v))| {
                let rewards: Vec<f64> = v.iter().map(|v| v.reward).collect();
                let lengths: Vec<u32> = r.iter().map(|r| r.tokens).collect();
                let successes = v.iter().filter(|v| v.correct).count();
                let group_reward = rewards.iter().sum::<f64>();
                reward_sum += group_reward;
                correct += successes;
                let d = totals.per_domain.entry(s.domain.clone()).or_default();
                d.0 += rewards.len();
                d.1 += group_reward;
                d.2 += successes;
                totals.forced += r.iter().filter(|r| r.force_answered).count();
                totals.tokens += r.iter().map(|r| u64::from(r.tokens)).sum::<u64>();
                format_ok += v.iter().filter(|v| v.format_ok).count();
                totals.verifier_errors += v
                    .iter()
                    .filter(|v| v.subscores.contains_key(rlcs_rewards::VERIFIER_ERROR))
                    .count();
                let version = r.first().map(|r| r.policy_version).unwrap_or(0);
                GroupOutcome::from_rollouts(s.id, version, &rewards, successes, &lengths)
            })
            .collect();
        let every = self.plan.sample_rollouts_every;
        if every > 0 && iteration.is_multiple_of(every) && totals.rollouts == 0 {
            self.publish(RunEvent::RolloutsSampled {
                iteration,
                rollouts: sample_views(iteration, &samples, &groups),
            });
        }
        let denom = rollouts.max(1) as f64;
        self.publish(RunEvent::RolloutsScored {
            iteration,
            groups: outcomes.len(),
            mean_reward: reward_sum / denom,
            accuracy: correct as f64 / denom,
        });

        let t = Instant::now();
        let summary: ObserveSummary = self
            .call(&self.graph.curriculum, "curriculum", |reply| {
                CurriculumMsg::Observe {
                    iteration,
                    trace: TraceContext::current(),
                    groups: outcomes,
                    reply,
                }
            })
            .instrument(tracing::info_span!(parent: &self.iteration_span, "observe"))
            .await?
            .map_err(|reason| ActorsError::Actor {
                actor: "curriculum".into(),
                reason,
            })?;
        self.phases.observe += ms_since(t);
        self.publish(RunEvent::DifficultyUpdated {
            iteration,
            tier_counts: summary.tier_counts.clone(),
        });
        self.publish(RunEvent::GroupsFiltered {
            iteration,
            kept: summary.kept.len(),
            kept_mixed: summary.kept_mixed,
            not_valid_rate: summary.not_valid_rate,
            expansion_ratio_ema: summary.expansion_ratio_ema,
        });
        // The round's history is durable before the iteration counts as done.
        let t = Instant::now();
        self.call(&self.graph.storage, "storage", |reply| {
            StorageMsg::AppendIteration {
                iteration,
                trace: TraceContext::current(),
                observations: summary.observations.clone(),
                reply,
            }
        })
        .instrument(tracing::info_span!(parent: &self.iteration_span, "store"))
        .await?
        .map_err(|reason| ActorsError::Actor {
            actor: "storage".into(),
            reason,
        })?;
        if let Some(telemetry) = &self.graph.telemetry {
            telemetry.store_write(t.elapsed().as_secs_f64());
        }
        self.phases.store += ms_since(t);

        let kept_groups: Vec<TrainGroup> = summary
            .kept
            .iter()
            .filter_map(|&k| {
                let s = samples.get(k)?;
                let (r, v) = groups.get(k)?;
                Some(TrainGroup {
                    prompt: prompt_of(s),
                    rollouts: r.clone(),
                    rewards: v.iter().map(|v| v.reward as f32).collect(),
                })
            })
            .collect();
        totals.rollouts += rollouts;
        totals.selected += selection.samples.len();
        totals.scored += scored.len();
        totals.reward_sum += reward_sum;
        totals.correct += correct;
        totals.format_ok += format_ok;
        totals.kept_mixed += summary.kept_mixed;
        Ok((summary, kept_groups))
    }

    /// Accuracy of the current policy on `samples`, `rollouts` rollouts each, through
    /// the replica and verifier pools. `label` names the evaluation in events and
    /// spans. Every evaluation of a run draws the same sampling seeds for a sample
    /// (common random numbers), so two evaluations differ by the model, not by
    /// the draw: the same policy evaluated twice scores the same.
    pub async fn evaluate(
        &self,
        samples: &[Arc<Sample>],
        rollouts: usize,
        label: &str,
    ) -> Result<EvalResult, ActorsError> {
        let salt = mix(self.plan.seed, EVAL_SALT);
        let span = tracing::info_span!(parent: &self.parent, "evaluate", label);
        let results = self
            .rollout_groups(
                samples.iter().map(|s| (s.as_ref(), mix(salt, s.id))),
                rollouts.max(1),
                self.plan.eval_temperature,
                &span,
                |_| {},
            )
            .await?;
        drop(span);
        // Per domain: correct, rollouts, reward sum.
        let mut per: BTreeMap<String, (usize, usize, f64)> = BTreeMap::new();
        let (mut correct, mut total, mut reward) = (0, 0, 0.0);
        for (s, (_, v)) in samples.iter().zip(&results) {
            let c = v.iter().filter(|v| v.correct).count();
            let r: f64 = v.iter().map(|v| v.reward).sum();
            let e = per.entry(s.domain.clone()).or_default();
            e.0 += c;
            e.1 += v.len();
            e.2 += r;
            correct += c;
            total += v.len();
            reward += r;
        }
        let accuracy = correct as f64 / total.max(1) as f64;
        self.publish(RunEvent::Evaluated {
            label: label.to_string(),
            accuracy,
        });
        Ok(EvalResult {
            accuracy,
            per_domain: per
                .iter()
                .map(|(d, &(c, n, _))| (d.clone(), c as f64 / n.max(1) as f64))
                .collect(),
            mean_reward: reward / total.max(1) as f64,
            reward_per_domain: per
                .into_iter()
                .map(|(d, (_, n, r))| (d, r / n.max(1) as f64))
                .collect(),
            samples: samples.len(),
            rollouts: total,
            temperature: Some(self.plan.eval_temperature),
        })
    }

    /// Offline grading: rolls out every sample `rollouts` times with the current
    /// policy through the replica and verifier pools (seeds salted by `label`) and
    /// returns `(sample, successes, rollouts)` per sample, in input order. Nothing is
    /// observed by the curriculum or trained on.
    pub async fn grade(
        &self,
        samples: &[Arc<Sample>],
        rollouts: usize,
        label: &str,
    ) -> Result<Vec<(SampleId, usize, usize)>, ActorsError> {
        let salt = mix(
            self.plan.seed ^ GRADE_SALT,
            stable_hash(&[label.as_bytes()]),
        );
        let total = samples.len();
        let (mut graded, mut correct, mut scored) = (0, 0, 0);
        let span = tracing::info_span!(parent: &self.parent, "grade", label);
        let results = self
            .rollout_groups(
                samples.iter().map(|s| (s.as_ref(), mix(salt, s.id))),
                rollouts.max(1),
                self.plan.temperature,
                &span,
                |(_, v)| {
                    graded += 1;
                    correct += v.iter().filter(|v| v.correct).count();
                    scored += v.len();
                    self.publish(RunEvent::SampleGraded {
                        graded,
                        total,
                        correct,
                        rollouts: scored,
                    });
                },
            )
            .await?;
        drop(span);
        Ok(samples
            .iter()
            .zip(&results)
            .map(|(s, (_, v))| (s.id, v.iter().filter(|v| v.correct).count(), v.len()))
            .collect())
    }

    /// Publishes the end of the run.
    pub fn finish(&self, iterations: u32) {
        self.publish(RunEvent::RunFinished { iterations });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_is_everything_but_generation_and_training() {
        let p = PhaseTimes {
            select: 1.0,
            load: 1.0,
            rollout: 80.0,
            generate_busy: 150.0,
            score_busy: 10.0,
            observe: 2.0,
            store: 1.0,
            train: 10.0,
        };
        // 95 ms of phases in a 100 ms iteration: 5 ms unaccounted, 5 ms of
        // select/load/observe/store, and scoring's 1/16 share of the rollout wall.
        let o = p.overhead_ms(100.0);
        assert!((o - (100.0 - 10.0 - 80.0 + 5.0)).abs() < 1e-9, "{o}");
        assert_eq!(PhaseTimes::default().overhead_ms(3.0), 3.0);
        // Never negative, whatever the clocks say.
        assert_eq!(p.overhead_ms(50.0), 0.0);
    }
}
