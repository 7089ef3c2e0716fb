//! The run supervisor and the graph it supervises.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use rlcs_curriculum::Curriculum;
use rlcs_model::Policy;
use rlcs_rewards::Registry;
use rlcs_storage::Store;
use tokio::sync::watch;

use crate::cluster::Cluster;

use crate::bus::{BusMsg, EventBus, EventSink, SinkFn};
use crate::pools::{
    spawn_loaders, spawn_replicas, spawn_verifiers, FaultPlan, LoaderMsg, PolicyBuilder, Pool,
    ReplicaMsg, SampleTable, VerifierMsg,
};
use crate::singletons::{
    CurriculumActor, CurriculumMsg, LearnerActor, LearnerArgs, LearnerMsg, StorageActor,
    StorageArgs, StorageMsg,
};
use crate::telemetry::{ActorInfo, Telemetry};
use crate::{local_message, ActorsError, RunEvent};

/// Messages of the run supervisor (it only supervises).
pub enum SupervisorMsg {}
local_message!(SupervisorMsg);

/// The root of a run's supervision tree. Pools restart their own workers; a failure
/// of a singleton (storage, curriculum, learner, bus) is recorded here, and the
/// driver stops the run with that reason instead of the supervisor dying silently.
pub struct RunSupervisor;

impl Actor for RunSupervisor {
    type Msg = SupervisorMsg;
    type State = Arc<Mutex<Vec<String>>>;
    type Arguments = Arc<Mutex<Vec<String>>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        failures: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(failures)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        failures: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(who, reason) = event {
            let name = who.get_name().unwrap_or_else(|| who.get_id().to_string());
            tracing::error!(actor = %name, "actor failed: {reason}");
            if let Ok(mut f) = failures.lock() {
                f.push(format!("{name}: {reason}"));
            }
        }
        Ok(())
    }
}

/// Worker counts per pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolSizes {
    /// Data loaders.
    pub loaders: usize,
    /// Model replicas.
    pub replicas: usize,
    /// Verifiers.
    pub verifiers: usize,
}

/// Everything a run graph is built from.
pub struct GraphSpec {
    /// Train and eval samples by id.
    pub samples: SampleTable,
    /// The curriculum over the train pool.
    pub curriculum: Curriculum,
    /// The opened store.
    pub store: Store,
    /// The trainable policy.
    pub learner: Box<dyn Policy>,
    /// Builds replica policies.
    pub replica_builder: PolicyBuilder,
    /// Verifiers by name.
    pub registry: Arc<Registry>,
    /// Injected faults (tests).
    pub faults: Arc<FaultPlan>,
    /// Pool sizes.
    pub pools: PoolSizes,
    /// Event sinks, in order.
    pub sinks: Vec<SinkFn>,
    /// The run's name (the actor tree published at start names it).
    pub run_name: String,
    /// The run's telemetry: fed by this graph's events, pool latencies and queue
    /// depths.
    pub telemetry: Option<Arc<Telemetry>>,
    /// Worker nodes that serve this graph's verifier and replica pools besides the
    /// local workers.
    pub cluster: Option<Arc<Cluster>>,
}

/// Handles to a running graph.
pub struct RunGraph {
    /// The supervisor.
    pub supervisor: ActorRef<SupervisorMsg>,
    /// The event bus.
    pub bus: ActorRef<BusMsg>,
    /// The storage actor.
    pub storage: ActorRef<StorageMsg>,
    /// The curriculum actor.
    pub curriculum: ActorRef<CurriculumMsg>,
    /// The learner actor.
    pub learner: ActorRef<LearnerMsg>,
    /// Loader pool.
    pub loaders: Pool<LoaderMsg>,
    /// Replica pool.
    pub replicas: Pool<ReplicaMsg>,
    /// Verifier pool.
    pub verifiers: Pool<VerifierMsg>,
    /// The run's telemetry, if any.
    pub telemetry: Option<Arc<Telemetry>>,
    /// Worker nodes serving the pools, if the run has a cluster.
    pub cluster: Option<Arc<Cluster>>,
    failures: Arc<Mutex<Vec<String>>>,
}

fn spawn_err(actor: &str) -> impl Fn(ractor::SpawnErr) -> ActorsError + '_ {
    move |e| ActorsError::Spawn {
        actor: actor.to_string(),
        reason: e.to_string(),
    }
}

impl RunGraph {
    /// Spawns the supervisor and every child under it.
    pub async fn start(spec: GraphSpec) -> Result<Self, ActorsError> {
        let failures = Arc::new(Mutex::new(Vec::new()));
        let (supervisor, _) = Actor::spawn(None, RunSupervisor, failures.clone())
            .await
            .map_err(spawn_err("supervisor"))?;
        let cell = supervisor.get_cell();
        let (bus, _) = Actor::spawn_linked(None, EventBus, (), cell.clone())
            .await
            .map_err(spawn_err("event bus"))?;
        let telemetry_sink = spec.telemetry.as_ref().map(|t| t.sink());
        for sink in spec.sinks.into_iter().chain(telemetry_sink) {
            let (s, _) = Actor::spawn_linked(None, EventSink, sink, cell.clone())
                .await
                .map_err(spawn_err("event sink"))?;
            bus.cast(BusMsg::Subscribe(s))
                .map_err(|e| ActorsError::Spawn {
                    actor: "event sink".into(),
                    reason: e.to_string(),
                })?;
        }
        let (storage, _) = Actor::spawn_linked(
            None,
            StorageActor,
            StorageArgs {
                store: spec.store,
                bus: bus.clone(),
            },
            cell.clone(),
        )
        .await
        .map_err(spawn_err("storage"))?;
        let (curriculum, _) =
            Actor::spawn_linked(None, CurriculumActor, spec.curriculum, cell.clone())
                .await
                .map_err(spawn_err("curriculum"))?;
        let (weights_tx, weights_rx) = watch::channel(None);
        let (learner, _) = Actor::spawn_linked(
            None,
            LearnerActor,
            LearnerArgs {
                policy: spec.learner,
                weights: weights_tx,
                bus: bus.clone(),
            },
            cell.clone(),
        )
        .await
        .map_err(spawn_err("learner"))?;
        let loaders =
            spawn_loaders(spec.pools.loaders, spec.samples, cell.clone(), bus.clone()).await?;
        if let Some(c) = &spec.cluster {
            c.attach(bus.clone(), weights_rx.clone());
        }
        let replicas = spawn_replicas(
            spec.pools.replicas,
            spec.replica_builder,
            weights_rx,
            cell.clone(),
            bus.clone(),
            spec.telemetry.clone(),
        )
        .await?;
        let verifiers = spawn_verifiers(
            spec.pools.verifiers,
            spec.registry,
            spec.faults,
            cell,
            bus.clone(),
            spec.telemetry.clone(),
        )
        .await?;
        if let Some(t) = &spec.telemetry {
            t.add_pool(loaders.probe());
            t.add_pool(replicas.probe());
            t.add_pool(verifiers.probe());
        }
        let child = |name: &str, workers: usize| ActorInfo {
            name: name.into(),
            parent: "supervisor".into(),
            workers,
        };
        let actors = vec![
            ActorInfo {
                name: "supervisor".into(),
                parent: String::new(),
                workers: 1,
            },
            child("event bus", 1),
            child("storage", 1),
            child("curriculum", 1),
            child("learner", 1),
            child("loaders", loaders.workers),
            child("replicas", replicas.workers),
            child("verifiers", verifiers.workers),
        ];
        let _ = bus.cast(BusMsg::Publish(RunEvent::GraphStarted {
            run: spec.run_name,
            actors,
        }));
        Ok(RunGraph {
            supervisor,
            bus,
            storage,
            curriculum,
            learner,
            loaders,
            replicas,
            verifiers,
            telemetry: spec.telemetry,
            cluster: spec.cluster,
            failures,
        })
    }

    /// Workers rebuilt after crashes, across all pools.
    pub fn restarts(&self) -> usize {
        self.loaders.restarts.load(Ordering::SeqCst)
            + self.replicas.restarts.load(Ordering::SeqCst)
            + self.verifiers.restarts.load(Ordering::SeqCst)
    }

    /// Failures of singletons recorded by the supervisor.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Waits until every sink has handled every event published so far.
    pub async fn flush_events(&self) {
        let _ = self
            .bus
            .call(BusMsg::Flush, Some(Duration::from_secs(60)))
            .await;
    }

    /// Stops the whole tree.
    pub async fn shutdown(self) {
        if let Some(c) = &self.cluster {
            c.detach_to(&self.bus);
        }
        self.flush_events().await;
        let _ = self
            .supervisor
            .stop_and_wait(None, Some(Duration::from_secs(10)))
            .await;
    }
}
