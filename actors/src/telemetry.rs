//! Telemetry of a run: Prometheus metrics and the dashboard's state.
//!
//! [`Telemetry`] consumes the run's events (it is a sink on every graph's bus) and
//! keeps two views of them: OpenMetrics gauges, counters and histograms that
//! [`Telemetry::metrics_text`] encodes for `/metrics`, and a [`Dashboard`] (curves,
//! the actor tree with restarts, the latest rollouts) that the web page polls. The
//! same state is rebuilt after a run by replaying its event logs
//! ([`Telemetry::replay`]), so the live and the after-the-fact dashboards show the
//! same thing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::bus::SinkFn;
use crate::RunEvent;

/// Label set of a metric family.
type Labels = Vec<(String, String)>;
/// A gauge of floating-point values.
type FloatGauge = Gauge<f64, AtomicU64>;

fn label(key: &str, value: &str) -> Labels {
    vec![(key.to_string(), value.to_string())]
}

/// Latest rollouts kept for the dashboard.
pub const LATEST_ROLLOUTS: usize = 24;
/// Supervised-stage losses kept for the dashboard (the newest).
const MAX_LOSSES: usize = 4000;

/// One rollout as the dashboard shows it: what was asked, what the policy
/// answered, how it was scored, and the image it answered about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutView {
    /// Iteration that produced it.
    pub iteration: u32,
    /// The sample, as 16 hex digits.
    pub sample_id: String,
    /// Its domain.
    pub domain: String,
    /// The prompt (cut to a few hundred characters).
    pub prompt: String,
    /// The response (cut to about a thousand characters).
    pub response: String,
    /// Its reward.
    pub reward: f64,
    /// Whether it was judged correct.
    pub correct: bool,
    /// Why its reward is not 1, as the verifier said (cut to a few hundred
    /// characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Correct rollouts in its group.
    pub group_correct: usize,
    /// Rollouts in its group.
    pub group_size: usize,
    /// The sample's first image (first frame of a video) as base64 PNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_png: Option<String>,
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// An actor of the run's tree, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorInfo {
    /// Its name (`verifiers`, `learner`, …).
    pub name: String,
    /// Its supervisor's name (empty for the root).
    pub parent: String,
    /// Workers, for pools; 1 for singletons.
    pub workers: usize,
}

/// One iteration's point on the dashboard's curves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IterationPoint {
    /// Iteration number.
    pub iteration: u32,
    /// Rollouts so far, this iteration included.
    pub rollouts: usize,
    /// Mean reward of the iteration's rollouts.
    pub mean_reward: f64,
    /// Share of correct rollouts.
    pub accuracy: f64,
    /// `(reward, accuracy)` per domain.
    pub per_domain: BTreeMap<String, (f64, f64)>,
    /// Samples per tier.
    pub tier_counts: BTreeMap<String, usize>,
    /// EMA of the expansion ratio.
    pub expansion_ratio_ema: f64,
    /// Share of all-correct or all-wrong groups.
    pub not_valid_rate: f64,
    /// Share of rollouts closed by force answering.
    pub force_answer_rate: f64,
    /// Mean response length in tokens.
    pub mean_response_tokens: f64,
    /// Wall time of the iteration, in milliseconds.
    pub wall_ms: f64,
}

/// An actor's health on the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorHealth {
    /// The actor.
    #[serde(flatten)]
    pub info: ActorInfo,
    /// Workers rebuilt after crashes.
    pub restarts: u64,
    /// `running`, `restarted` (running after a crash) or `stopped`.
    pub status: String,
}

/// What the dashboard shows: the whole state behind its page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// Run name.
    pub run: String,
    /// `starting`, `running` or `finished`.
    pub status: String,
    /// The stage running now (or last).
    pub stage: String,
    /// Iterations finished.
    pub iteration: u32,
    /// Policy version of the newest weights.
    pub policy_version: u64,
    /// One point per RL iteration.
    pub iterations: Vec<IterationPoint>,
    /// `(stage, step, loss)` of supervised stages (the newest few thousand).
    pub losses: Vec<(String, u32, f64)>,
    /// `(label, accuracy)` of evaluations, in order.
    pub evals: Vec<(String, f64)>,
    /// Grading progress: `(graded, total, pass rate)`.
    pub grading: Option<(usize, usize, f64)>,
    /// The actor tree of the newest graph.
    pub actors: Vec<ActorHealth>,
    /// The newest rollouts, newest last.
    pub rollouts: VecDeque<RolloutView>,
}

impl Dashboard {
    /// Folds one event into the state.
    pub fn apply(&mut self, event: &RunEvent) {
        match event {
            RunEvent::GraphStarted { run, actors } => {
                if self.status.is_empty() || self.status == "finished" {
                    self.status = "running".into();
                }
                self.run = run.clone();
                // Restart counts carry over by name: stages start graphs of their own.
                let old = std::mem::take(&mut self.actors);
                self.actors = actors
                    .iter()
                    .map(|info| {
                        let restarts = old
                            .iter()
                            .find(|a| a.info.name == info.name)
                            .map_or(0, |a| a.restarts);
                        ActorHealth {
                            info: info.clone(),
                            restarts,
                            status: status_of(restarts).into(),
                        }
                    })
                    .collect();
            }
            RunEvent::StageStarted { stage } => {
                self.stage = stage.clone();
                self.status = "running".into();
            }
            RunEvent::SupervisedStepped {
                stage,
                step,
                loss,
                policy_version,
                ..
            } => {
                self.losses.push((stage.clone(), *step, *loss));
                if self.losses.len() > MAX_LOSSES {
                    let extra = self.losses.len() - MAX_LOSSES;
                    self.losses.drain(..extra);
                }
                self.policy_version = *policy_version;
            }
            RunEvent::SampleGraded {
                graded,
                total,
                correct,
                rollouts,
            } => {
                let rate = *correct as f64 / (*rollouts).max(1) as f64;
                self.grading = Some((*graded, *total, rate));
            }
            RunEvent::IterationStarted { .. } => {
                if self.stage != "rl" {
                    self.stage = "rl".into();
                }
                self.status = "running".into();
            }
            RunEvent::IterationFinished { point } => {
                self.iteration = point.iteration;
                self.iterations.push((**point).clone());
            }
            RunEvent::WeightsPublished { policy_version } => {
                self.policy_version = *policy_version;
            }
            RunEvent::ActorRestarted { actor, .. } => {
                if let Some(a) = self.actors.iter_mut().find(|a| &a.info.name == actor) {
                    a.restarts += 1;
                    a.status = status_of(a.restarts).into();
                }
            }
            RunEvent::Evaluated { label, accuracy } => {
                self.evals.push((label.clone(), *accuracy));
            }
            RunEvent::RolloutsSampled { rollouts, .. } => {
                for r in rollouts {
                    self.rollouts.push_back(r.clone());
                }
                while self.rollouts.len() > LATEST_ROLLOUTS {
                    self.rollouts.pop_front();
                }
            }
            RunEvent::RunResumed { from_iteration, .. } => {
                // The resumed run re-publishes what came after its checkpoint.
                self.iterations.retain(|p| p.iteration <= *from_iteration);
                self.iteration = *from_iteration;
            }
            RunEvent::RunFinished { .. } => {
                self.status = "finished".into();
                for a in &mut self.actors {
                    a.status = "stopped".into();
                }
            }
            _ => {}
        }
    }
}

fn status_of(restarts: u64) -> &'static str {
    if restarts > 0 {
        "restarted"
    } else {
        "running"
    }
}

/// A pool's live counters, read when `/metrics` is scraped.
#[derive(Debug, Clone)]
pub struct PoolProbe {
    /// The pool's name.
    pub name: String,
    /// Its workers.
    pub workers: usize,
    /// Jobs sent and not yet answered.
    pub in_flight: Arc<AtomicUsize>,
}

/// The metrics a run exports.
struct Metrics {
    registry: Registry,
    iteration: Gauge,
    policy_version: Gauge,
    rollouts: Counter,
    reward: Family<Labels, FloatGauge>,
    accuracy: Family<Labels, FloatGauge>,
    eval_accuracy: Family<Labels, FloatGauge>,
    tier_samples: Family<Labels, Gauge>,
    expansion_ratio_ema: FloatGauge,
    not_valid_rate: FloatGauge,
    force_answer_rate: FloatGauge,
    supervised_loss: Family<Labels, FloatGauge>,
    restarts: Family<Labels, Counter>,
    pool_workers: Family<Labels, Gauge>,
    pool_in_flight: Family<Labels, Gauge>,
    pool_queue_depth: Family<Labels, Gauge>,
    verifier_latency: Histogram,
    generate_latency: Histogram,
    store_write: Histogram,
}

impl Metrics {
    fn new() -> Self {
        let mut m = Metrics {
            iteration: Gauge::default(),
            policy_version: Gauge::default(),
            rollouts: Counter::default(),
            reward: Family::default(),
            accuracy: Family::default(),
            eval_accuracy: Family::default(),
            tier_samples: Family::default(),
            expansion_ratio_ema: FloatGauge::default(),
            not_valid_rate: FloatGauge::default(),
            force_answer_rate: FloatGauge::default(),
            supervised_loss: Family::default(),
            restarts: Family::default(),
            pool_workers: Family::default(),
            pool_in_flight: Family::default(),
            pool_queue_depth: Family::default(),
            // 10 µs to about 40 s.
            verifier_latency: Histogram::new(exponential_buckets(1e-5, 4.0, 12)),
            generate_latency: Histogram::new(exponential_buckets(1e-4, 4.0, 12)),
            store_write: Histogram::new(exponential_buckets(1e-5, 4.0, 12)),
            registry: Registry::with_prefix("rlcs"),
        };
        let r = &mut m.registry;
        r.register("iteration", "RL iterations finished", m.iteration.clone());
        r.register(
            "policy_version",
            "Version of the newest published weights",
            m.policy_version.clone(),
        );
        r.register(
            "rollouts",
            "Rollouts generated and scored",
            m.rollouts.clone(),
        );
        r.register(
            "reward",
            "Mean reward of the last iteration's rollouts, per domain (domain=\"all\": every rollout)",
            m.reward.clone(),
        );
        r.register(
            "accuracy",
            "Share of correct rollouts in the last iteration, per domain (domain=\"all\": every rollout)",
            m.accuracy.clone(),
        );
        r.register(
            "eval_accuracy",
            "Accuracy of the newest evaluation on the held-out split, per label",
            m.eval_accuracy.clone(),
        );
        r.register(
            "tier_samples",
            "Samples per difficulty tier after the last iteration",
            m.tier_samples.clone(),
        );
        r.register(
            "expansion_ratio_ema",
            "EMA of the dynamic-sampling expansion ratio",
            m.expansion_ratio_ema.clone(),
        );
        r.register(
            "not_valid_rate",
            "Share of the last iteration's groups that were all correct or all wrong",
            m.not_valid_rate.clone(),
        );
        r.register(
            "force_answer_rate",
            "Share of the last iteration's rollouts closed by force answering",
            m.force_answer_rate.clone(),
        );
        r.register(
            "supervised_loss",
            "Loss of the newest step of a supervised stage, per stage",
            m.supervised_loss.clone(),
        );
        r.register(
            "actor_restarts",
            "Workers rebuilt after a crash, per pool",
            m.restarts.clone(),
        );
        r.register("pool_workers", "Workers per pool", m.pool_workers.clone());
        r.register(
            "pool_in_flight",
            "Jobs sent to a pool and not yet answered",
            m.pool_in_flight.clone(),
        );
        r.register(
            "pool_queue_depth",
            "Jobs waiting in a pool's queue for a free worker",
            m.pool_queue_depth.clone(),
        );
        r.register(
            "verifier_latency_seconds",
            "Time a verifier worker spends scoring one group",
            m.verifier_latency.clone(),
        );
        r.register(
            "generate_latency_seconds",
            "Time a replica spends generating one group",
            m.generate_latency.clone(),
        );
        r.register(
            "store_write_seconds",
            "Time of one durable history write to the store",
            m.store_write.clone(),
        );
        m
    }

    fn apply(&self, event: &RunEvent) {
        match event {
            RunEvent::IterationFinished { point } => {
                self.iteration.set(i64::from(point.iteration));
                self.reward
                    .get_or_create(&label("domain", "all"))
                    .set(point.mean_reward);
                self.accuracy
                    .get_or_create(&label("domain", "all"))
                    .set(point.accuracy);
                for (domain, (reward, accuracy)) in &point.per_domain {
                    self.reward
                        .get_or_create(&label("domain", domain))
                        .set(*reward);
                    self.accuracy
                        .get_or_create(&label("domain", domain))
                        .set(*accuracy);
                }
                for (tier, n) in &point.tier_counts {
                    self.tier_samples
                        .get_or_create(&label("tier", tier))
                        .set(*n as i64);
                }
                self.expansion_ratio_ema.set(point.expansion_ratio_ema);
                self.not_valid_rate.set(point.not_valid_rate);
                self.force_answer_rate.set(point.force_answer_rate);
            }
            RunEvent::RolloutsGenerated { rollouts, .. } => {
                self.rollouts.inc_by(*rollouts as u64);
            }
            RunEvent::WeightsPublished { policy_version } => {
                self.policy_version.set(*policy_version as i64);
            }
            RunEvent::SupervisedStepped {
                stage,
                loss,
                policy_version,
                ..
            } => {
                self.supervised_loss
                    .get_or_create(&label("stage", stage))
                    .set(*loss);
                self.policy_version.set(*policy_version as i64);
            }
            RunEvent::ActorRestarted { actor, .. } => {
                self.restarts.get_or_create(&label("actor", actor)).inc();
            }
            RunEvent::Evaluated { label: l, accuracy } => {
                self.eval_accuracy
                    .get_or_create(&label("label", l))
                    .set(*accuracy);
            }
            RunEvent::GraphStarted { actors, .. } => {
                for a in actors {
                    // Present from the start, so a scrape shows zero restarts.
                    let _ = self.restarts.get_or_create(&label("actor", &a.name));
                }
            }
            _ => {}
        }
    }
}

/// Telemetry of one run: metrics and the dashboard, fed by the run's events.
pub struct Telemetry {
    metrics: Metrics,
    dashboard: Mutex<Dashboard>,
    pools: Mutex<Vec<PoolProbe>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Telemetry {
    /// Empty telemetry.
    pub fn new() -> Self {
        Telemetry {
            metrics: Metrics::new(),
            dashboard: Mutex::new(Dashboard {
                status: "starting".into(),
                ..Dashboard::default()
            }),
            pools: Mutex::new(Vec::new()),
        }
    }

    /// Folds one event into the metrics and the dashboard.
    pub fn apply(&self, event: &RunEvent) {
        self.metrics.apply(event);
        locked(&self.dashboard).apply(event);
    }

    /// A bus sink that feeds this telemetry.
    pub fn sink(self: &Arc<Self>) -> SinkFn {
        let me = self.clone();
        Box::new(move |e: &RunEvent| me.apply(e))
    }

    /// Registers a pool's live counters (a pool of the same name is replaced: each
    /// stage starts a graph of its own).
    pub fn add_pool(&self, probe: PoolProbe) {
        let mut pools = locked(&self.pools);
        pools.retain(|p| p.name != probe.name);
        pools.push(probe);
    }

    /// Records one verifier job's latency.
    pub fn verifier_latency(&self, seconds: f64) {
        self.metrics.verifier_latency.observe(seconds);
    }

    /// Records one replica job's latency.
    pub fn generate_latency(&self, seconds: f64) {
        self.metrics.generate_latency.observe(seconds);
    }

    /// Records one durable store write's latency.
    pub fn store_write(&self, seconds: f64) {
        self.metrics.store_write.observe(seconds);
    }

    /// A copy of the dashboard's state.
    pub fn dashboard(&self) -> Dashboard {
        locked(&self.dashboard).clone()
    }

    /// The metrics in the OpenMetrics text format (what Prometheus scrapes).
    pub fn metrics_text(&self) -> String {
        for p in locked(&self.pools).iter() {
            let l = label("pool", &p.name);
            let in_flight = p.in_flight.load(Ordering::Relaxed);
            self.metrics
                .pool_workers
                .get_or_create(&l)
                .set(p.workers as i64);
            self.metrics
                .pool_in_flight
                .get_or_create(&l)
                .set(in_flight as i64);
            self.metrics
                .pool_queue_depth
                .get_or_create(&l)
                .set(in_flight.saturating_sub(p.workers) as i64);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.metrics.registry);
        out
    }

    /// Rebuilds telemetry from a finished (or running) run's event logs, given in
    /// order; lines that are not events (a torn last line) are skipped.
    pub fn replay<'a>(logs: impl IntoIterator<Item = &'a str>) -> Self {
        let t = Telemetry::new();
        t.apply_logs(logs);
        t
    }

    /// Applies the events of logs given in order (a resumed run's history before
    /// its live events); lines that are not events are skipped.
    pub fn apply_logs<'a>(&self, logs: impl IntoIterator<Item = &'a str>) {
        for text in logs {
            for line in text.lines() {
                if let Ok(e) = serde_json::from_str::<RunEvent>(line) {
                    self.apply(&e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(iteration: u32, accuracy: f64) -> RunEvent {
        let mut per_domain = BTreeMap::new();
        per_domain.insert("counting".to_string(), (accuracy * 2.0, accuracy));
        RunEvent::IterationFinished {
            point: Box::new(IterationPoint {
                iteration,
                rollouts: 64 * iteration as usize,
                mean_reward: accuracy,
                accuracy,
                per_domain,
                tier_counts: [("easy".to_string(), 3usize)].into_iter().collect(),
                expansion_ratio_ema: 1.5,
                not_valid_rate: 0.25,
                ..IterationPoint::default()
            }),
        }
    }

    fn graph() -> RunEvent {
        RunEvent::GraphStarted {
            run: "r".into(),
            actors: vec![
                ActorInfo {
                    name: "supervisor".into(),
                    parent: String::new(),
                    workers: 1,
                },
                ActorInfo {
                    name: "verifiers".into(),
                    parent: "supervisor".into(),
                    workers: 2,
                },
            ],
        }
    }

    #[test]
    fn metrics_follow_the_events() {
        let t = Telemetry::new();
        t.apply(&graph());
        t.apply(&point(1, 0.25));
        t.apply(&point(2, 0.5));
        t.apply(&RunEvent::ActorRestarted {
            actor: "verifiers".into(),
            worker: 1,
        });
        let text = t.metrics_text();
        assert!(text.contains("rlcs_iteration 2"), "{text}");
        assert!(
            text.contains("rlcs_accuracy{domain=\"counting\"} 0.5"),
            "{text}"
        );
        assert!(
            text.contains("rlcs_reward{domain=\"counting\"} 1.0"),
            "{text}"
        );
        assert!(
            text.contains("rlcs_tier_samples{tier=\"easy\"} 3"),
            "{text}"
        );
        assert!(text.contains("rlcs_expansion_ratio_ema 1.5"), "{text}");
        assert!(
            text.contains("rlcs_actor_restarts_total{actor=\"verifiers\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("rlcs_actor_restarts_total{actor=\"supervisor\"} 0"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }

    #[test]
    fn pool_probes_give_queue_depth() {
        let t = Telemetry::new();
        let in_flight = Arc::new(AtomicUsize::new(5));
        t.add_pool(PoolProbe {
            name: "replicas".into(),
            workers: 2,
            in_flight: in_flight.clone(),
        });
        let text = t.metrics_text();
        assert!(
            text.contains("rlcs_pool_queue_depth{pool=\"replicas\"} 3"),
            "{text}"
        );
        in_flight.store(1, Ordering::Relaxed);
        let text = t.metrics_text();
        assert!(
            text.contains("rlcs_pool_queue_depth{pool=\"replicas\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("rlcs_pool_in_flight{pool=\"replicas\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn the_dashboard_tracks_curves_restarts_and_latest_rollouts() {
        let t = Telemetry::new();
        t.apply(&graph());
        for i in 1..=3 {
            t.apply(&point(i, 0.1 * f64::from(i)));
        }
        t.apply(&RunEvent::ActorRestarted {
            actor: "verifiers".into(),
            worker: 0,
        });
        let view = |k: usize| RolloutView {
            iteration: 1,
            sample_id: format!("{k:016x}"),
            domain: "ocr".into(),
            prompt: "p".into(),
            response: "r".into(),
            reward: 0.0,
            correct: false,
            reason: None,
            group_correct: 0,
            group_size: 8,
            image_png: None,
        };
        t.apply(&RunEvent::RolloutsSampled {
            iteration: 1,
            rollouts: (0..LATEST_ROLLOUTS + 5).map(view).collect(),
        });
        let d = t.dashboard();
        assert_eq!(d.iterations.len(), 3);
        assert_eq!(d.iteration, 3);
        assert_eq!(d.rollouts.len(), LATEST_ROLLOUTS);
        assert_eq!(
            d.rollouts.back().map(|r| r.sample_id.clone()),
            Some(view(LATEST_ROLLOUTS + 4).sample_id)
        );
        let v = d
            .actors
            .iter()
            .find(|a| a.info.name == "verifiers")
            .unwrap();
        assert_eq!((v.restarts, v.status.as_str()), (1, "restarted"));
        // A new graph (the next stage) keeps the restart count.
        t.apply(&graph());
        t.apply(&RunEvent::RunFinished { iterations: 3 });
        let d = t.dashboard();
        let v = d
            .actors
            .iter()
            .find(|a| a.info.name == "verifiers")
            .unwrap();
        assert_eq!(
            (v.restarts, v.status.as_str(), d.status.as_str()),
            (1, "stopped", "finished")
        );
    }

    #[test]
    fn a_replayed_log_gives_the_live_state_and_skips_torn_lines() {
        let events = [
            graph(),
            point(1, 0.2),
            point(2, 0.4),
            RunEvent::RunFinished { iterations: 2 },
        ];
        let live = Telemetry::new();
        let mut log = String::new();
        for e in &events {
            live.apply(e);
            log.push_str(&serde_json::to_string(e).unwrap());
            log.push('\n');
        }
        log.push_str("{\"event\":\"iteration_sta");
        let replayed = Telemetry::replay([log.as_str()]);
        assert_eq!(replayed.dashboard(), live.dashboard());
        // Label sets of a family come in hash order; compare the samples as sets.
        let lines = |t: &Telemetry| {
            let mut l: Vec<String> = t.metrics_text().lines().map(String::from).collect();
            l.sort();
            l
        };
        assert_eq!(lines(&replayed), lines(&live));
    }

    #[test]
    fn clip_cuts_on_characters() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hi", 2), "hi");
    }
}
