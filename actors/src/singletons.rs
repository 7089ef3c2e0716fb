//! The stateful singletons: Storage, Curriculum and Learner. Each wraps a pure core
//! and answers requests; none holds logic of its own.

use std::path::PathBuf;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rlcs_curriculum::{Curriculum, GroupOutcome, Observation, ObserveSummary, Selection};
use rlcs_model::{LmExample, ModelError, Policy, StepStats, TrainGroup, Weights};
use rlcs_storage::{write_synced, CheckpointRecord, RunRecord, Store};
use tokio::sync::watch;

use crate::bus::BusMsg;
use crate::trace::TraceContext;
use crate::{local_message, RunEvent};

/// Messages of the storage actor.
pub enum StorageMsg {
    /// Appends one iteration's observations atomically and durably.
    AppendIteration {
        /// Iteration (for the event).
        iteration: u32,
        /// The sender's span.
        trace: TraceContext,
        /// The observations.
        observations: Vec<Observation>,
        /// Done, or the store's error.
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// Number of history records in the store.
    ObservationCount(RpcReplyPort<usize>),
    /// Writes a run registry entry.
    PutRun {
        /// The entry.
        record: Box<RunRecord>,
        /// Done, or the store's error.
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// Records a checkpoint in the index, durably.
    PutCheckpoint {
        /// The run.
        run: String,
        /// The checkpoint.
        record: Box<CheckpointRecord>,
        /// Done, or the store's error.
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// Drops checkpoints of a run from the index.
    RemoveCheckpoints {
        /// The run.
        run: String,
        /// Their iterations.
        iterations: Vec<u32>,
        /// Done, or the store's error.
        reply: RpcReplyPort<Result<(), String>>,
    },
}

/// The storage actor: the only writer of the store.
pub struct StorageActor;

/// Arguments and state of the storage actor.
pub struct StorageArgs {
    /// The opened store.
    pub store: Store,
    /// Where to publish events.
    pub bus: ActorRef<BusMsg>,
}

impl Actor for StorageActor {
    type Msg = StorageMsg;
    /// The arguments are the state: the store and the bus.
    type State = StorageArgs;
    type Arguments = StorageArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<StorageMsg>,
        args: StorageArgs,
    ) -> Result<StorageArgs, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<StorageMsg>,
        msg: StorageMsg,
        state: &mut StorageArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            StorageMsg::AppendIteration {
                iteration,
                trace,
                observations,
                reply,
            } => {
                let span = tracing::info_span!(
                    "storage.append",
                    iteration,
                    observations = observations.len()
                );
                trace.adopt(&span);
                let r = span.in_scope(|| state.store.append_iteration(&observations));
                if r.is_ok() {
                    let _ = state.bus.cast(BusMsg::Publish(RunEvent::CheckpointWritten {
                        iteration,
                        observations: observations.len(),
                    }));
                }
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            StorageMsg::ObservationCount(reply) => {
                let _ = reply.send(state.store.observation_count());
            }
            StorageMsg::PutRun { record, reply } => {
                let _ = reply.send(state.store.put_run(&record).map_err(|e| e.to_string()));
            }
            StorageMsg::PutCheckpoint { run, record, reply } => {
                let r = state.store.put_checkpoint(&run, &record);
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            StorageMsg::RemoveCheckpoints {
                run,
                iterations,
                reply,
            } => {
                let r = iterations
                    .iter()
                    .try_for_each(|&it| state.store.remove_checkpoint(&run, it).map(|_| ()));
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
        }
        Ok(())
    }
}

/// Writes an encoded state to `path` (synced); the bytes written, or why not.
fn write_state<E: std::fmt::Display>(
    path: &std::path::Path,
    bytes: Result<Vec<u8>, E>,
) -> Result<u64, String> {
    let bytes = bytes.map_err(|e| e.to_string())?;
    write_synced(path, &bytes).map_err(|e| e.to_string())?;
    Ok(bytes.len() as u64)
}

/// Messages of the curriculum actor.
pub enum CurriculumMsg {
    /// Picks the prompts of the next iteration.
    Select(RpcReplyPort<Selection>),
    /// Picks `n` more prompts for a top-up round of the current iteration (DAPO).
    SelectMore {
        /// How many.
        n: usize,
        /// The selection.
        reply: RpcReplyPort<Selection>,
    },
    /// Records scored groups; replies with tiers, the ratio EMA and the kept groups.
    Observe {
        /// Iteration.
        iteration: u32,
        /// The sender's span.
        trace: TraceContext,
        /// The groups.
        groups: Vec<GroupOutcome>,
        /// Summary, or the curriculum's error.
        reply: RpcReplyPort<Result<ObserveSummary, String>>,
    },
    /// Writes the curriculum's whole state (statistics, sampler, RNG, ratio EMA) to
    /// `path` durably; replies with the bytes written.
    SaveState {
        /// The file.
        path: PathBuf,
        /// Bytes written, or why not.
        reply: RpcReplyPort<Result<u64, String>>,
    },
}

/// The curriculum actor.
pub struct CurriculumActor;

impl Actor for CurriculumActor {
    type Msg = CurriculumMsg;
    type State = Curriculum;
    type Arguments = Curriculum;

    async fn pre_start(
        &self,
        _myself: ActorRef<CurriculumMsg>,
        c: Curriculum,
    ) -> Result<Curriculum, ActorProcessingErr> {
        Ok(c)
    }

    async fn handle(
        &self,
        _myself: ActorRef<CurriculumMsg>,
        msg: CurriculumMsg,
        c: &mut Curriculum,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CurriculumMsg::Select(reply) => {
                let _ = reply.send(c.select());
            }
            CurriculumMsg::SelectMore { n, reply } => {
                let _ = reply.send(c.select_more(n));
            }
            CurriculumMsg::Observe {
                iteration,
                trace,
                groups,
                reply,
            } => {
                let span =
                    tracing::info_span!("curriculum.observe", iteration, groups = groups.len());
                trace.adopt(&span);
                let r = span.in_scope(|| c.observe(iteration, &groups));
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            CurriculumMsg::SaveState { path, reply } => {
                let _ = reply.send(write_state(&path, c.save().encode()));
            }
        }
        Ok(())
    }
}

/// Messages of the learner actor.
pub enum LearnerMsg {
    /// One train step on the kept groups; publishes the new weights.
    Step {
        /// Iteration (for events).
        iteration: u32,
        /// The sender's span.
        trace: TraceContext,
        /// The spans of the groups the batch was built from (the step's span links
        /// to each).
        links: Vec<TraceContext>,
        /// The groups.
        groups: Vec<TrainGroup>,
        /// Step statistics, or the policy's error.
        reply: RpcReplyPort<Result<StepStats, String>>,
    },
    /// One supervised (next-token) step of a pretrain or sft stage; publishes the
    /// new weights.
    Supervised {
        /// The stage (for events).
        stage: String,
        /// Step number (for events).
        step: u32,
        /// The examples.
        examples: Vec<LmExample>,
        /// Step statistics, or the policy's error.
        reply: RpcReplyPort<Result<StepStats, String>>,
    },
    /// Writes the policy's weights ([`Weights::encode`]) to `path` durably: the
    /// checkpoint a stage hands to the next; replies with the bytes written.
    SaveWeights {
        /// The file.
        path: PathBuf,
        /// Bytes written, or why not.
        reply: RpcReplyPort<Result<u64, String>>,
    },
    /// Writes the policy's training state ([`Policy::save_state`]) to `path`
    /// durably; replies with the bytes written.
    SaveState {
        /// The file.
        path: PathBuf,
        /// Bytes written, or why not.
        reply: RpcReplyPort<Result<u64, String>>,
    },
}

local_message!(StorageMsg, CurriculumMsg, LearnerMsg);

/// The learner actor: owns the trainable policy.
pub struct LearnerActor;

/// State of the learner actor.
pub struct LearnerState {
    policy: Box<dyn Policy>,
    weights: watch::Sender<Option<Weights>>,
    bus: ActorRef<BusMsg>,
}

impl LearnerState {
    /// Runs one optimisation step, then publishes the new weights to the replicas
    /// and `event` (then `WeightsPublished`) on the bus.
    fn step(
        &mut self,
        run: impl FnOnce(&mut dyn Policy) -> Result<StepStats, ModelError>,
        event: impl FnOnce(&StepStats) -> RunEvent,
    ) -> Result<StepStats, String> {
        let stats = run(self.policy.as_mut()).map_err(|e| e.to_string())?;
        let w = self.policy.export_weights().map_err(|e| e.to_string())?;
        let version = w.version;
        self.weights.send_replace(Some(w));
        let _ = self.bus.cast(BusMsg::Publish(event(&stats)));
        let _ = self.bus.cast(BusMsg::Publish(RunEvent::WeightsPublished {
            policy_version: version,
        }));
        Ok(stats)
    }
}

/// Arguments of the learner actor.
pub struct LearnerArgs {
    /// The trainable policy.
    pub policy: Box<dyn Policy>,
    /// Where replicas read weights from.
    pub weights: watch::Sender<Option<Weights>>,
    /// Where to publish events.
    pub bus: ActorRef<BusMsg>,
}

impl Actor for LearnerActor {
    type Msg = LearnerMsg;
    type State = LearnerState;
    type Arguments = LearnerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<LearnerMsg>,
        args: LearnerArgs,
    ) -> Result<LearnerState, ActorProcessingErr> {
        // Replicas start from the learner's initial weights.
        let w = args.policy.export_weights()?;
        args.weights.send_replace(Some(w));
        Ok(LearnerState {
            policy: args.policy,
            weights: args.weights,
            bus: args.bus,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<LearnerMsg>,
        msg: LearnerMsg,
        state: &mut LearnerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LearnerMsg::Step {
                iteration,
                trace,
                links,
                groups,
                reply,
            } => {
                let span = tracing::info_span!("learner.step", iteration, groups = groups.len());
                trace.adopt(&span);
                for link in &links {
                    link.link(&span);
                }
                let _entered = span.enter();
                let r = state.step(
                    |p| p.train_step(&groups),
                    |stats| RunEvent::LearnerStepped {
                        iteration,
                        policy_version: stats.policy_version,
                        loss: stats.loss,
                    },
                );
                let _ = reply.send(r);
            }
            LearnerMsg::Supervised {
                stage,
                step,
                examples,
                reply,
            } => {
                let r = state.step(
                    |p| p.train_supervised(&examples),
                    |stats| RunEvent::SupervisedStepped {
                        stage,
                        step,
                        examples: examples.len(),
                        policy_version: stats.policy_version,
                        loss: stats.loss,
                    },
                );
                let _ = reply.send(r);
            }
            LearnerMsg::SaveWeights { path, reply } => {
                let bytes = state.policy.export_weights().map(|w| w.encode());
                let _ = reply.send(write_state(&path, bytes));
            }
            LearnerMsg::SaveState { path, reply } => {
                let _ = reply.send(write_state(&path, state.policy.save_state()));
            }
        }
        Ok(())
    }
}
