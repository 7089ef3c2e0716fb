//! # rlcs-actors
//!
//! The actor graph of an rlcs run, on ractor:
//!
//! ```text
//! RunSupervisor
//! ├── EventBus      typed fan-out of RunEvents to sinks, in order
//! ├── Storage       the only writer of the sled store
//! ├── Curriculum    select before rollout, observe after
//! ├── loaders       factory pool: SampleId → Sample
//! ├── replicas      factory pool: G rollouts per prompt, each worker its own policy
//! ├── verifiers     factory pool: score groups with the domain's verifier
//! └── Learner       train step, publishes weights
//! ```
//!
//! Actors are thin: they own state and translate messages into calls on the pure
//! crates. The RL iteration itself is driven by [`driver::RlDriver`], which talks to
//! the graph only through messages with timeouts. `RUNTIME.md` in this crate states
//! the guarantees (exactly-once scoring, restarts, ordering).
#![deny(missing_docs)]

pub mod bus;
pub mod checkpoint;
pub mod cluster;
pub mod driver;
pub mod graph;
pub mod pools;
pub mod serve;
pub mod singletons;
pub mod supervised;
pub mod telemetry;
pub mod trace;

use serde::{Deserialize, Serialize};

/// Implements `ractor::Message` for local message types. The `cluster` feature of
/// ractor is on (pools will move to other nodes), which turns off ractor's blanket
/// impl; payloads stay serde-serializable for that move.
macro_rules! local_message {
    ($($t:ty),* $(,)?) => { $(impl ractor::Message for $t {})* };
}
pub(crate) use local_message;

/// Errors of the actor graph.
#[derive(Debug, thiserror::Error)]
pub enum ActorsError {
    /// An actor could not be spawned.
    #[error("cannot start actor `{actor}`: {reason}")]
    Spawn {
        /// Which actor.
        actor: String,
        /// Why.
        reason: String,
    },
    /// A request failed after its retries.
    #[error("{what} failed after {attempts} attempts: {reason}")]
    Request {
        /// The request.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// An actor replied with an error.
    #[error("{actor}: {reason}")]
    Actor {
        /// Which actor.
        actor: String,
        /// Its error.
        reason: String,
    },
    /// A rollout was scored twice, or a selected sample was not scored.
    #[error("exactly-once violated: {0}")]
    ExactlyOnce(String),
    /// A checkpoint could not be written, or cannot be resumed from.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint's directory or file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// A stateful actor failed and the run cannot continue.
    #[error("actor `{actor}` failed: {reason}")]
    Failed {
        /// Which actor.
        actor: String,
        /// Why.
        reason: String,
    },
}

/// Events published on the bus. Every iteration publishes them in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// An iteration began.
    IterationStarted {
        /// Iteration number (1-based).
        iteration: u32,
    },
    /// The curriculum chose prompts.
    SamplesSelected {
        /// Iteration.
        iteration: u32,
        /// Prompts to roll out.
        selected: usize,
        /// Groups to keep for training.
        keep: usize,
    },
    /// Replicas produced rollouts.
    RolloutsGenerated {
        /// Iteration.
        iteration: u32,
        /// Rollouts.
        rollouts: usize,
        /// Policy version of the rollouts.
        policy_version: u64,
    },
    /// Verifiers scored the rollouts.
    RolloutsScored {
        /// Iteration.
        iteration: u32,
        /// Groups scored.
        groups: usize,
        /// Mean reward.
        mean_reward: f64,
        /// Share of correct rollouts.
        accuracy: f64,
    },
    /// The curriculum updated difficulty statistics and tiers.
    DifficultyUpdated {
        /// Iteration.
        iteration: u32,
        /// Samples per tier.
        tier_counts: Vec<(String, usize)>,
    },
    /// Balanced selection kept the groups to train on.
    GroupsFiltered {
        /// Iteration.
        iteration: u32,
        /// Groups kept.
        kept: usize,
        /// Kept groups with a learning signal.
        kept_mixed: usize,
        /// Share of all-correct or all-wrong groups.
        not_valid_rate: f64,
        /// EMA of the expansion ratio.
        expansion_ratio_ema: f64,
    },
    /// The learner took a step.
    LearnerStepped {
        /// Iteration.
        iteration: u32,
        /// Version after the step.
        policy_version: u64,
        /// Loss of the step.
        loss: f64,
    },
    /// New weights are available to replicas.
    WeightsPublished {
        /// Their version.
        policy_version: u64,
    },
    /// The iteration's history is durable in the store.
    CheckpointWritten {
        /// Iteration.
        iteration: u32,
        /// Observations written.
        observations: usize,
    },
    /// The run's whole state after an iteration (curriculum, policy, progress) is
    /// on disk; a resumed run continues from here.
    Checkpointed {
        /// Iterations finished (0: before the first).
        iteration: u32,
        /// Bytes written.
        bytes: u64,
    },
    /// The run was resumed from a checkpoint.
    RunResumed {
        /// Iterations finished at the checkpoint.
        from_iteration: u32,
        /// Observations of later iterations dropped from the store (they are done
        /// again).
        rolled_back: usize,
    },
    /// A worker node was admitted to a pool.
    NodeJoined {
        /// The node's name.
        node: String,
        /// The pool it serves (`verifiers`, `replicas`).
        role: String,
        /// Jobs it runs at once.
        slots: usize,
    },
    /// A worker node was lost (killed, disconnected, left); its jobs go elsewhere.
    NodeLost {
        /// The node's name.
        node: String,
        /// The pool it served.
        role: String,
        /// Why.
        reason: String,
    },
    /// A worker node connected but was not admitted.
    NodeRefused {
        /// The node's name.
        node: String,
        /// Why.
        reason: String,
    },
    /// Jobs a worker node answered in a graph (published when the graph ends).
    NodeWork {
        /// The node's name.
        node: String,
        /// The pool it served.
        role: String,
        /// Jobs answered.
        jobs: u64,
    },
    /// A worker was restarted by its supervisor.
    ActorRestarted {
        /// Pool or actor name.
        actor: String,
        /// Worker index in its pool.
        worker: usize,
    },
    /// An evaluation finished.
    Evaluated {
        /// `initial` or `final`.
        label: String,
        /// Accuracy over the eval split.
        accuracy: f64,
    },
    /// A stage before RL (pretrain, sft or grade) began (in the stage's own log).
    StageStarted {
        /// The stage.
        stage: String,
    },
    /// A supervised stage (pretrain or sft) took a learner step.
    SupervisedStepped {
        /// The stage.
        stage: String,
        /// Step number (1-based).
        step: u32,
        /// Examples trained on.
        examples: usize,
        /// Version after the step.
        policy_version: u64,
        /// Mean token loss of the step.
        loss: f64,
    },
    /// A stage before RL (pretrain, sft or grade) ended (in the stage's own log).
    StageFinished {
        /// The stage.
        stage: String,
        /// Its wall time, in seconds.
        seconds: f64,
    },
    /// The grade stage scored another sample's group.
    SampleGraded {
        /// Samples graded so far.
        graded: usize,
        /// Samples to grade.
        total: usize,
        /// Correct rollouts so far.
        correct: usize,
        /// Rollouts so far.
        rollouts: usize,
    },
    /// A run graph started (each stage starts one): the actor tree.
    GraphStarted {
        /// The run's name.
        run: String,
        /// Its actors, parents first.
        actors: Vec<telemetry::ActorInfo>,
    },
    /// An RL iteration finished: what the dashboard and metrics plot.
    IterationFinished {
        /// The iteration's figures.
        point: Box<telemetry::IterationPoint>,
    },
    /// A few of an iteration's rollouts, as the dashboard shows them (written to
    /// `rollouts.jsonl`, not to the event log).
    RolloutsSampled {
        /// Iteration.
        iteration: u32,
        /// The rollouts.
        rollouts: Vec<telemetry::RolloutView>,
    },
    /// The run is over.
    RunFinished {
        /// Iterations completed.
        iterations: u32,
    },
}

local_message!(RunEvent);
