//! Worker pools on ractor factories: data loaders, model replicas and verifiers.
//!
//! A worker that crashes is replaced by its factory; the job it held is lost with
//! its reply port, which the caller sees and re-issues (see [`call_pool`]). Each
//! factory counts the workers it had to rebuild.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::factory::{
    queues, routing, worker_builder, Factory, FactoryArguments, FactoryMessage, Job, Worker,
    WorkerId,
};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use rlcs_domains::{Sample, SampleId};
use rlcs_model::{GenerationParams, ModelError, Policy, Prompt, Rollout, Weights};
use rlcs_rewards::{Registry, Verdict};
use tokio::sync::watch;

use crate::bus::BusMsg;
use crate::telemetry::{PoolProbe, Telemetry};
use crate::trace::TraceContext;
use crate::{local_message, ActorsError, RunEvent};

/// A factory reference keyed by sample id.
pub type PoolRef<M> = ActorRef<FactoryMessage<u64, M>>;

/// Samples by id: what loaders read from.
pub type SampleTable = Arc<HashMap<SampleId, Arc<Sample>>>;

/// Builds a fresh policy for a replica (a restarted replica builds another).
pub type PolicyBuilder = Arc<dyn Fn() -> Result<Box<dyn Policy>, ModelError> + Send + Sync>;

/// Messages of loader workers.
pub enum LoaderMsg {
    /// Resolves sample ids to samples.
    Load {
        /// Ids to load.
        ids: Vec<SampleId>,
        /// The sender's span.
        trace: TraceContext,
        /// The samples, in the order asked, or the first unknown id.
        reply: RpcReplyPort<Result<Vec<Arc<Sample>>, SampleId>>,
    },
}

/// Messages of replica workers.
pub enum ReplicaMsg {
    /// Generates one group.
    Generate {
        /// The prompt.
        prompt: Prompt,
        /// The sender's span.
        trace: TraceContext,
        /// Sampling settings, including the group's seed.
        params: GenerationParams,
        /// The rollouts, or the policy's error.
        reply: RpcReplyPort<Result<Vec<Rollout>, String>>,
    },
}

/// Messages of verifier workers.
pub enum VerifierMsg {
    /// Scores every response of one group.
    ScoreGroup {
        /// Registry name of the verifier.
        verifier: String,
        /// The sender's span.
        trace: TraceContext,
        /// Responses to score.
        responses: Vec<String>,
        /// Gold answer.
        gold: String,
        /// One verdict per response, or the registry's error.
        reply: RpcReplyPort<Result<Vec<Verdict>, String>>,
    },
}

local_message!(LoaderMsg, ReplicaMsg, VerifierMsg);

/// Faults injected on purpose, for tests of supervision.
#[derive(Debug, Default)]
pub struct FaultPlan {
    /// Panic a verifier worker when it takes this job number (1-based, counted
    /// across the pool), once.
    pub verifier_panic_on_job: Option<u64>,
    verifier_jobs: AtomicU64,
    fired: AtomicBool,
}

impl FaultPlan {
    /// A plan that panics a verifier at job `n`.
    pub fn verifier_panic_on_job(n: Option<u64>) -> Self {
        FaultPlan {
            verifier_panic_on_job: n,
            ..Default::default()
        }
    }

    fn verifier_job(&self) -> bool {
        let n = self.verifier_jobs.fetch_add(1, Ordering::SeqCst) + 1;
        Some(n) == self.verifier_panic_on_job && !self.fired.swap(true, Ordering::SeqCst)
    }
}

/// Loader worker: resolves ids against the sample table.
pub struct LoaderWorker {
    table: SampleTable,
}

impl Worker for LoaderWorker {
    type Key = u64;
    type Message = LoaderMsg;
    type Arguments = ();
    type State = ();

    async fn pre_start(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<u64, LoaderMsg>>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<u64, LoaderMsg>>,
        Job { msg, key, .. }: Job<u64, LoaderMsg>,
        _state: &mut (),
    ) -> Result<u64, ActorProcessingErr> {
        match msg {
            LoaderMsg::Load { ids, trace, reply } => {
                let span = tracing::debug_span!("loader.load", samples = ids.len());
                trace.adopt(&span);
                let _entered = span.enter();
                let out: Result<Vec<_>, _> = ids
                    .iter()
                    .map(|id| self.table.get(id).cloned().ok_or(*id))
                    .collect();
                let _ = reply.send(out);
            }
        }
        Ok(key)
    }
}

/// Replica worker: owns one policy, follows the learner's published weights.
pub struct ReplicaWorker {
    build: PolicyBuilder,
    weights: watch::Receiver<Option<Weights>>,
    busy: Arc<AtomicU64>,
    telemetry: Option<Arc<Telemetry>>,
}

impl Worker for ReplicaWorker {
    type Key = u64;
    type Message = ReplicaMsg;
    type Arguments = ();
    type State = Box<dyn Policy>;

    async fn pre_start(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<u64, ReplicaMsg>>,
        _args: (),
    ) -> Result<Box<dyn Policy>, ActorProcessingErr> {
        Ok((self.build)()?)
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<u64, ReplicaMsg>>,
        Job { msg, key, .. }: Job<u64, ReplicaMsg>,
        policy: &mut Box<dyn Policy>,
    ) -> Result<u64, ActorProcessingErr> {
        match msg {
            ReplicaMsg::Generate {
                prompt,
                trace,
                params,
                reply,
            } => {
                let span = tracing::debug_span!(
                    "replica.generate",
                    sample = prompt.sample_id,
                    group_size = params.group_size
                );
                trace.adopt(&span);
                let _entered = span.enter();
                // Follow the newest published weights before generating.
                let started = std::time::Instant::now();
                let latest = self.weights.borrow().clone();
                let result = match latest {
                    Some(w) if w.version != policy.version() => policy
                        .import_weights(&w)
                        .and_then(|_| policy.generate(&prompt, &params)),
                    _ => policy.generate(&prompt, &params),
                };
                let seconds = add_elapsed(&self.busy, started);
                if let Some(t) = &self.telemetry {
                    t.generate_latency(seconds);
                }
                let _ = reply.send(result.map_err(|e| e.to_string()));
            }
        }
        Ok(key)
    }
}

/// Adds the time since `started` to `busy`; returns it in seconds.
fn add_elapsed(busy: &AtomicU64, started: std::time::Instant) -> f64 {
    let elapsed = started.elapsed();
    busy.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    elapsed.as_secs_f64()
}

/// Verifier worker: scores with the registry's verifiers.
pub struct VerifierWorker {
    registry: Arc<Registry>,
    faults: Arc<FaultPlan>,
    busy: Arc<AtomicU64>,
    telemetry: Option<Arc<Telemetry>>,
}

impl Worker for VerifierWorker {
    type Key = u64;
    type Message = VerifierMsg;
    type Arguments = ();
    type State = ();

    async fn pre_start(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<u64, VerifierMsg>>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<u64, VerifierMsg>>,
        Job { msg, key, .. }: Job<u64, VerifierMsg>,
        _state: &mut (),
    ) -> Result<u64, ActorProcessingErr> {
        if self.faults.verifier_job() {
            panic!("injected fault: verifier worker {wid} panics on job for sample {key:#x}");
        }
        match msg {
            VerifierMsg::ScoreGroup {
                verifier,
                trace,
                responses,
                gold,
                reply,
            } => {
                let span = tracing::debug_span!("verifier.score", verifier = %verifier);
                trace.adopt(&span);
                let started = std::time::Instant::now();
                let out = match self.registry.get(&verifier) {
                    Err(e) => Err(e.to_string()),
                    // Processes, sandboxes and endpoints wait on I/O: off the
                    // runtime's threads, so the rest of the graph keeps moving.
                    Ok(v) if v.blocking() => {
                        let span = span.clone();
                        tokio::task::spawn_blocking(move || {
                            let _entered = span.enter();
                            v.verify_group(&responses, &gold)
                        })
                        .await
                        .map_err(|e| format!("verifier `{verifier}` failed: {e}"))
                    }
                    Ok(v) => {
                        let _entered = span.enter();
                        Ok(v.verify_group(&responses, &gold))
                    }
                };
                let seconds = add_elapsed(&self.busy, started);
                if let Some(t) = &self.telemetry {
                    t.verifier_latency(seconds);
                }
                let _ = reply.send(out);
            }
        }
        Ok(key)
    }
}

/// A running pool and how often its workers were rebuilt after a crash.
pub struct Pool<M: ractor::Message> {
    /// The factory.
    pub factory: PoolRef<M>,
    /// Workers rebuilt after a crash.
    pub restarts: Arc<AtomicUsize>,
    /// The pool's name.
    pub name: String,
    /// Workers in the pool.
    pub workers: usize,
    /// Nanoseconds the workers spent inside their handlers (replicas generating,
    /// verifiers scoring), summed over workers; not the callers' waiting time.
    pub busy_ns: Arc<AtomicU64>,
    /// Jobs sent through [`call_pool`] and not yet answered (queued or running).
    pub in_flight: Arc<AtomicUsize>,
}

impl<M: ractor::Message> Pool<M> {
    /// The pool's live counters, for `/metrics`.
    pub fn probe(&self) -> PoolProbe {
        PoolProbe {
            name: self.name.clone(),
            workers: self.workers,
            in_flight: self.in_flight.clone(),
        }
    }
}

impl<M: ractor::Message> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            factory: self.factory.clone(),
            restarts: self.restarts.clone(),
            name: self.name.clone(),
            workers: self.workers,
            busy_ns: self.busy_ns.clone(),
            in_flight: self.in_flight.clone(),
        }
    }
}

async fn spawn_pool<W, M>(
    name: &str,
    workers: usize,
    supervisor: ActorCell,
    bus: ActorRef<BusMsg>,
    mut make: impl FnMut(Arc<AtomicU64>) -> W + Send + Sync + 'static,
) -> Result<Pool<M>, ActorsError>
where
    W: Worker<Key = u64, Message = M, Arguments = ()>,
    M: ractor::Message,
{
    let restarts = Arc::new(AtomicUsize::new(0));
    let busy_ns = Arc::new(AtomicU64::new(0));
    let busy = busy_ns.clone();
    let built = Arc::new(AtomicUsize::new(0));
    let (r, b, pool_name) = (restarts.clone(), built.clone(), name.to_string());
    let builder = worker_builder(move |wid: WorkerId| {
        // Builds beyond the initial ones replace crashed workers.
        if b.fetch_add(1, Ordering::SeqCst) >= workers {
            r.fetch_add(1, Ordering::SeqCst);
            let _ = bus.cast(BusMsg::Publish(RunEvent::ActorRestarted {
                actor: pool_name.clone(),
                worker: wid,
            }));
        }
        (make(busy.clone()), ())
    });
    let factory = Factory::<
        u64,
        M,
        (),
        W,
        routing::QueuerRouting<u64, M>,
        queues::DefaultQueue<u64, M>,
    >::default();
    let args = FactoryArguments::builder()
        .worker_builder(Box::new(builder))
        .queue(Default::default())
        .router(Default::default())
        .num_initial_workers(workers.max(1))
        .build();
    let (factory, _handle) = Actor::spawn_linked(None, factory, args, supervisor)
        .await
        .map_err(|e| ActorsError::Spawn {
            actor: name.to_string(),
            reason: e.to_string(),
        })?;
    Ok(Pool {
        factory,
        restarts,
        name: name.to_string(),
        workers: workers.max(1),
        busy_ns,
        in_flight: Arc::new(AtomicUsize::new(0)),
    })
}

/// Starts the loader pool.
pub async fn spawn_loaders(
    workers: usize,
    table: SampleTable,
    supervisor: ActorCell,
    bus: ActorRef<BusMsg>,
) -> Result<Pool<LoaderMsg>, ActorsError> {
    spawn_pool("loaders", workers, supervisor, bus, move |_| LoaderWorker {
        table: table.clone(),
    })
    .await
}

/// Starts the replica pool.
pub async fn spawn_replicas(
    workers: usize,
    build: PolicyBuilder,
    weights: watch::Receiver<Option<Weights>>,
    supervisor: ActorCell,
    bus: ActorRef<BusMsg>,
    telemetry: Option<Arc<Telemetry>>,
) -> Result<Pool<ReplicaMsg>, ActorsError> {
    spawn_pool("replicas", workers, supervisor, bus, move |busy| {
        ReplicaWorker {
            build: build.clone(),
            weights: weights.clone(),
            busy,
            telemetry: telemetry.clone(),
        }
    })
    .await
}

/// Starts the verifier pool.
pub async fn spawn_verifiers(
    workers: usize,
    registry: Arc<Registry>,
    faults: Arc<FaultPlan>,
    supervisor: ActorCell,
    bus: ActorRef<BusMsg>,
    telemetry: Option<Arc<Telemetry>>,
) -> Result<Pool<VerifierMsg>, ActorsError> {
    spawn_pool("verifiers", workers, supervisor, bus, move |busy| {
        VerifierWorker {
            registry: registry.clone(),
            faults: faults.clone(),
            busy,
            telemetry: telemetry.clone(),
        }
    })
    .await
}

/// Sends a job to a pool and waits for the reply, with a timeout per attempt. A
/// worker crash drops the job's reply port; the job is then re-issued, up to
/// `attempts` times. Jobs are pure functions of their inputs, so a re-issued job
/// yields the same result and the caller records it once.
pub async fn call_pool<M, R>(
    pool: &Pool<M>,
    key: u64,
    timeout: Duration,
    attempts: u32,
    what: impl Fn() -> String,
    build: impl Fn(RpcReplyPort<R>) -> M,
) -> Result<R, ActorsError>
where
    M: ractor::Message,
    R: Send + 'static,
{
    let mut last = String::new();
    for _ in 0..attempts.max(1) {
        match call_once(pool, key, timeout, &build).await {
            Ok(r) => return Ok(r),
            Err(reason) => last = reason,
        }
        tracing::warn!(pool = %pool.name, key, "re-issuing job: {last}");
    }
    Err(ActorsError::Request {
        what: what(),
        attempts,
        reason: last,
    })
}

/// One attempt of a job on the local pool: the reply, or why there is none.
pub(crate) async fn call_once<M, R>(
    pool: &Pool<M>,
    key: u64,
    timeout: Duration,
    build: &impl Fn(RpcReplyPort<R>) -> M,
) -> Result<R, String>
where
    M: ractor::Message,
    R: Send + 'static,
{
    let _in_flight = InFlight::enter(&pool.in_flight);
    match pool.factory.call_job(key, build, Some(timeout)).await {
        Ok(CallResult::Success(r)) => Ok(r),
        Ok(CallResult::Timeout) => Err(format!("timed out after {timeout:?}")),
        Ok(CallResult::SenderError) => Err("worker stopped before replying".into()),
        Err(e) => Err(format!("pool `{}` unreachable: {e}", pool.name)),
    }
}

/// Counts a job as in flight while alive (also when the caller's future is dropped).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
