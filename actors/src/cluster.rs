//! Pools on other machines, over `ractor_cluster`.
//!
//! A run's coordinator ([`Cluster::serve`]) opens a `ractor_cluster` node server;
//! worker nodes (`rlcs node`, [`join`]) connect to it with the run's shared secret
//! (the cookie: a node without it fails the handshake and is refused). Each worker
//! node runs one [`NodeAgent`], a remote-capable actor in the process group
//! [`NODES_GROUP`]; the framework mirrors the group on the coordinator, whose
//! monitor admits each agent ([`NodeMsg::Describe`], and for replica nodes
//! [`NodeMsg::Configure`] with the run's config) as a member of the verifier or the
//! replica pool with `slots` concurrent jobs.
//!
//! Jobs go to the least-loaded place: the local pool or a remote member
//! ([`call_spread`]). A remote job that fails because its node is gone (killed,
//! disconnected: the framework drops the reply port) removes the member and is
//! re-issued elsewhere; jobs are pure functions of their inputs (seeded), and each
//! caller records exactly one reply, so no sample is lost or scored twice. A node
//! that comes back joins the group again and is re-admitted.
//!
//! Remote replicas follow the learner's weights by tag ([`WeightsTag`]: the graph's
//! generation and the policy version): a generate request names the tag it needs,
//! a replica holding other weights answers [`GenerateError::Stale`], and the
//! coordinator sends it the weights ([`NodeMsg::LoadWeights`]) and asks again.
//!
//! Messages cross the wire as bincode (size-limited on decode: a malformed frame is
//! an error, never a panic or an unbounded allocation).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bincode::Options;
use ractor::concurrency::oneshot;
use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::pg::GroupChangeMessage;
use ractor::rpc::CallResult;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeEventSubscription, NodeServer, NodeServerMessage};
use rlcs_model::{GenerationParams, Policy, Prompt, Rollout, Weights};
use rlcs_rewards::{Registry, Verdict};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Semaphore};

use crate::bus::BusMsg;
use crate::pools::{PolicyBuilder, Pool};
use crate::trace::TraceContext;
use crate::{ActorsError, RunEvent};

/// The process group every worker node's agent joins.
pub const NODES_GROUP: &str = "rlcs.nodes";

/// Largest message taken from the wire, frames and decoded payloads alike (weights
/// of the models rlcs trains fit; the framework's default frame limit, 16 MiB, is
/// about four million fp32 parameters).
const WIRE_LIMIT: u64 = 1 << 30;

fn wire() -> impl Options + Copy {
    bincode::options().with_limit(WIRE_LIMIT)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, BoxedDowncastErr> {
    wire().serialize(value).map_err(|_| BoxedDowncastErr)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxedDowncastErr> {
    wire().deserialize(bytes).map_err(|_| BoxedDowncastErr)
}

/// What a worker node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Members of the verifier pool.
    Verifiers,
    /// Members of the replica pool.
    Replicas,
}

impl Role {
    /// The pool's name (`verifiers`, `replicas`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Verifiers => "verifiers",
            Role::Replicas => "replicas",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "verifiers" => Ok(Role::Verifiers),
            "replicas" => Ok(Role::Replicas),
            other => Err(format!(
                "unknown role `{other}` (expected `verifiers` or `replicas`)"
            )),
        }
    }
}

/// What a node tells the coordinator when admitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's name (unique per process).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Jobs it runs at once.
    pub slots: usize,
    /// Verifier names it can score with (verifier nodes).
    pub verifiers: Vec<String>,
}

/// Which weights a replica must hold: the graph's generation (one per stage graph of
/// a run) and the learner's published version (`None`: the freshly built policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsTag {
    /// The graph this request belongs to.
    pub generation: u64,
    /// The published policy version, if any was published.
    pub version: Option<u64>,
}

/// A group to score on a verifier node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreRequest {
    /// Registry name of the verifier.
    pub verifier: String,
    /// Responses to score.
    pub responses: Vec<String>,
    /// Gold answer.
    pub gold: String,
    /// The sender's span.
    pub trace: TraceContext,
}

/// A group to generate on a replica node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Sampling settings, including the group's seed.
    pub params: GenerationParams,
    /// The weights the group must come from.
    pub weights: WeightsTag,
    /// The sender's span.
    pub trace: TraceContext,
}

/// Why a replica node did not generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GenerateError {
    /// It holds other weights than the request's (`have`: what it holds).
    Stale {
        /// The tag it holds, if any.
        have: Option<WeightsTag>,
    },
    /// The policy failed, or the node is not configured.
    Failed(String),
}

/// Weights sent to a replica node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireWeights {
    /// Which weights these are.
    pub tag: WeightsTag,
    /// The encoded parameters.
    pub bytes: Vec<u8>,
}

/// Messages of a worker node's agent; every one is a call with a reply.
pub enum NodeMsg {
    /// Who the node is.
    Describe(RpcReplyPort<NodeInfo>),
    /// Builds the replica policies from the run's config (JSON).
    Configure(String, RpcReplyPort<Result<(), String>>),
    /// Scores a group.
    Score(ScoreRequest, RpcReplyPort<Result<Vec<Verdict>, String>>),
    /// Generates a group.
    Generate(
        GenerateRequest,
        RpcReplyPort<Result<Vec<Rollout>, GenerateError>>,
    ),
    /// Takes new weights; replies with their version.
    LoadWeights(WireWeights, RpcReplyPort<Result<u64, String>>),
}

/// A typed reply port whose answer is encoded into the framework's byte port.
fn reply_out<R: Serialize + Send + 'static>(reply: RpcReplyPort<Vec<u8>>) -> RpcReplyPort<R> {
    let (tx, rx) = oneshot::<R>();
    tokio::spawn(async move {
        if let Ok(r) = rx.await {
            if let Ok(bytes) = encode(&r) {
                let _ = reply.send(bytes);
            }
        }
    });
    tx.into()
}

/// A call to a remote node: the arguments encoded, the reply decoded into `reply`.
/// An undecodable reply drops `reply`: the caller sees the job fail and re-issues it.
fn call_out<A: Serialize, R: DeserializeOwned + Send + 'static>(
    variant: &str,
    args: &A,
    reply: RpcReplyPort<R>,
) -> Result<SerializedMessage, BoxedDowncastErr> {
    let args = encode(args)?;
    let (tx, rx) = oneshot::<Vec<u8>>();
    let timeout = reply.get_timeout();
    tokio::spawn(async move {
        let bytes = match timeout {
            Some(t) => tokio::time::timeout(t, rx).await.ok().and_then(Result::ok),
            None => rx.await.ok(),
        };
        if let Some(bytes) = bytes {
            if let Ok(r) = decode::<R>(&bytes) {
                let _ = reply.send(r);
            }
        }
    });
    let port: RpcReplyPort<Vec<u8>> = match timeout {
        Some(t) => (tx, t).into(),
        None => tx.into(),
    };
    Ok(SerializedMessage::Call {
        variant: variant.to_string(),
        args,
        reply: port,
        metadata: None,
    })
}

impl ractor::Message for NodeMsg {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        match self {
            NodeMsg::Describe(reply) => call_out("describe", &(), reply),
            NodeMsg::Configure(config, reply) => call_out("configure", &config, reply),
            NodeMsg::Score(req, reply) => call_out("score", &req, reply),
            NodeMsg::Generate(req, reply) => call_out("generate", &req, reply),
            NodeMsg::LoadWeights(w, reply) => call_out("load_weights", &w, reply),
        }
    }

    fn deserialize(bytes: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        let SerializedMessage::Call {
            variant,
            args,
            reply,
            ..
        } = bytes
        else {
            return Err(BoxedDowncastErr);
        };
        Ok(match variant.as_str() {
            "describe" => NodeMsg::Describe(reply_out(reply)),
            "configure" => NodeMsg::Configure(decode(&args)?, reply_out(reply)),
            "score" => NodeMsg::Score(decode(&args)?, reply_out(reply)),
            "generate" => NodeMsg::Generate(decode(&args)?, reply_out(reply)),
            "load_weights" => NodeMsg::LoadWeights(decode(&args)?, reply_out(reply)),
            _ => return Err(BoxedDowncastErr),
        })
    }
}

/// Builds replica policies from a run's config (JSON), on a worker node.
pub type PolicyFactory = Arc<dyn Fn(&str) -> Result<PolicyBuilder, String> + Send + Sync>;

/// What a worker node's agent is made of.
pub struct AgentArgs {
    /// The node's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Jobs at once.
    pub slots: usize,
    /// Verifiers (verifier nodes).
    pub registry: Arc<Registry>,
    /// Builds replica policies from the run's config (replica nodes).
    pub policies: Option<PolicyFactory>,
}

/// One replica policy of a node and the weights it holds.
struct Slot {
    policy: Box<dyn Policy>,
    tag: Option<WeightsTag>,
}

/// The replicas of a replica node.
#[derive(Default)]
struct Replicas {
    builder: Option<PolicyBuilder>,
    config: Option<String>,
    slots: Vec<Slot>,
    weights: Option<(WeightsTag, Weights)>,
}

/// A worker node's agent: serves the coordinator's jobs, `slots` at a time.
pub struct NodeAgent;

/// The agent's state.
pub struct AgentState {
    args: AgentArgs,
    permits: Arc<Semaphore>,
    replicas: Arc<Mutex<Replicas>>,
    jobs: Arc<AtomicU64>,
}

impl Actor for NodeAgent {
    type Msg = NodeMsg;
    type State = AgentState;
    /// The agent's settings and its counter of jobs served.
    type Arguments = (AgentArgs, Arc<AtomicU64>);

    async fn pre_start(
        &self,
        _myself: ActorRef<NodeMsg>,
        (args, jobs): Self::Arguments,
    ) -> Result<AgentState, ActorProcessingErr> {
        Ok(AgentState {
            permits: Arc::new(Semaphore::new(args.slots.max(1))),
            args,
            replicas: Arc::new(Mutex::new(Replicas::default())),
            jobs,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<NodeMsg>,
        msg: NodeMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NodeMsg::Describe(reply) => {
                let _ = reply.send(NodeInfo {
                    name: state.args.name.clone(),
                    role: state.args.role,
                    slots: state.args.slots.max(1),
                    verifiers: state.args.registry.names(),
                });
            }
            NodeMsg::Configure(config, reply) => {
                let out = configure(state, config);
                let _ = reply.send(out);
            }
            NodeMsg::LoadWeights(w, reply) => {
                let version = w.tag.version.unwrap_or(0);
                let out = match state.replicas.lock() {
                    Ok(mut r) => {
                        r.weights = Some((
                            w.tag,
                            Weights {
                                version,
                                bytes: Arc::new(w.bytes),
                            },
                        ));
                        Ok(version)
                    }
                    Err(_) => Err("replica state poisoned".to_string()),
                };
                let _ = reply.send(out);
            }
            NodeMsg::Score(req, reply) => {
                let permits = state.permits.clone();
                let registry = state.args.registry.clone();
                let jobs = state.jobs.clone();
                tokio::spawn(async move {
                    let Ok(_permit) = permits.acquire_owned().await else {
                        return;
                    };
                    let span =
                        tracing::debug_span!("node.verifier.score", verifier = %req.verifier);
                    req.trace.adopt(&span);
                    let out = tokio::task::spawn_blocking(move || {
                        let _entered = span.enter();
                        registry
                            .get(&req.verifier)
                            .map(|v| v.verify_group(&req.responses, &req.gold))
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("verifier task failed: {e}")));
                    jobs.fetch_add(1, Ordering::Relaxed);
                    let _ = reply.send(out);
                });
            }
            NodeMsg::Generate(req, reply) => {
                let permits = state.permits.clone();
                let replicas = state.replicas.clone();
                let jobs = state.jobs.clone();
                tokio::spawn(async move {
                    let Ok(_permit) = permits.acquire_owned().await else {
                        return;
                    };
                    let out = tokio::task::spawn_blocking(move || generate(&replicas, req))
                        .await
                        .unwrap_or_else(|e| {
                            Err(GenerateError::Failed(format!("replica task failed: {e}")))
                        });
                    jobs.fetch_add(1, Ordering::Relaxed);
                    let _ = reply.send(out);
                });
            }
        }
        Ok(())
    }
}

/// Builds the node's replica policies for a run's config (kept when it is the same).
fn configure(state: &mut AgentState, config: String) -> Result<(), String> {
    let factory = state
        .args
        .policies
        .as_ref()
        .ok_or_else(|| format!("node `{}` serves no replicas", state.args.name))?;
    let mut r = state
        .replicas
        .lock()
        .map_err(|_| "replica state poisoned".to_string())?;
    if r.config.as_deref() == Some(config.as_str()) {
        return Ok(());
    }
    let builder = factory(&config)?;
    let mut slots = Vec::new();
    for _ in 0..state.args.slots.max(1) {
        slots.push(Slot {
            policy: builder().map_err(|e| e.to_string())?,
            tag: None,
        });
    }
    *r = Replicas {
        builder: Some(builder),
        config: Some(config),
        slots,
        weights: None,
    };
    Ok(())
}

/// Generates one group with a free slot holding the request's weights.
fn generate(
    replicas: &Mutex<Replicas>,
    req: GenerateRequest,
) -> Result<Vec<Rollout>, GenerateError> {
    let poisoned = || GenerateError::Failed("replica state poisoned".into());
    // Take a slot (the permit guarantees one is free) and what it needs.
    let (mut slot, builder, weights) = {
        let mut r = replicas.lock().map_err(|_| poisoned())?;
        let builder = r
            .builder
            .clone()
            .ok_or_else(|| GenerateError::Failed("node not configured".into()))?;
        let weights = r.weights.clone();
        let slot = r
            .slots
            .pop()
            .ok_or_else(|| GenerateError::Failed("no free replica".into()))?;
        (slot, builder, weights)
    };
    let span = tracing::debug_span!("node.replica.generate", sample = req.prompt.sample_id);
    req.trace.adopt(&span);
    let _entered = span.enter();
    let prepared = if slot.tag == Some(req.weights) {
        Ok(())
    } else if req.weights.version.is_none() {
        // The graph's fresh policy, as a newly built local replica has.
        builder()
            .map(|p| {
                slot.policy = p;
                slot.tag = Some(req.weights);
            })
            .map_err(|e| GenerateError::Failed(e.to_string()))
    } else {
        match &weights {
            Some((tag, w)) if *tag == req.weights => slot
                .policy
                .import_weights(w)
                .map(|_| slot.tag = Some(req.weights))
                .map_err(|e| GenerateError::Failed(e.to_string())),
            _ => Err(GenerateError::Stale { have: slot.tag }),
        }
    };
    let out = prepared.and_then(|_| {
        slot.policy
            .generate(&req.prompt, &req.params)
            .map_err(|e| GenerateError::Failed(e.to_string()))
    });
    if let Ok(mut r) = replicas.lock() {
        r.slots.push(slot);
    }
    out
}

/// Reads a cluster's shared secret from `path` (surrounding whitespace ignored);
/// the error names the file.
pub fn read_cookie(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cookie file {}: {e}", path.display()))?;
    let cookie = text.trim();
    if cookie.is_empty() {
        return Err(format!("cookie file {}: empty", path.display()));
    }
    Ok(cookie.to_string())
}

/// Reports whether the connection to the coordinator authenticated, and when it
/// closed.
struct SessionWatch {
    authenticated: watch::Sender<bool>,
    closed: watch::Sender<bool>,
}

impl NodeEventSubscription for SessionWatch {
    fn node_session_opened(&self, _ses: NodeServerSessionInformation) {}
    fn node_session_disconnected(&self, _ses: NodeServerSessionInformation) {
        let _ = self.closed.send(true);
    }
    fn node_session_authenticated(&self, _ses: NodeServerSessionInformation) {
        let _ = self.authenticated.send(true);
    }
}

/// Why joining a coordinator failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Nothing listens there (yet).
    #[error("cannot reach the coordinator at {addr}: {reason}")]
    Unreachable {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The coordinator closed the connection before authenticating it.
    #[error("the coordinator at {addr} refused this node: the cookie does not match the run's")]
    Refused {
        /// The address.
        addr: String,
    },
    /// The node's actors could not start.
    #[error("cannot start the node: {0}")]
    Start(String),
}

/// A worker node connected to a coordinator.
pub struct JoinedNode {
    server: ActorRef<NodeServerMessage>,
    agent: ActorRef<NodeMsg>,
    closed: watch::Receiver<bool>,
    jobs: Arc<AtomicU64>,
}

impl JoinedNode {
    /// Waits until the connection to the coordinator closes.
    pub async fn disconnected(&mut self) {
        let _ = self.closed.wait_for(|c| *c).await;
    }

    /// Jobs served so far.
    pub fn jobs(&self) -> u64 {
        self.jobs.load(Ordering::Relaxed)
    }

    /// Stops the node's actors.
    pub async fn stop(self) {
        let _ = self
            .agent
            .stop_and_wait(None, Some(Duration::from_secs(5)))
            .await;
        let _ = self
            .server
            .stop_and_wait(None, Some(Duration::from_secs(5)))
            .await;
    }
}

/// Connects a worker node to the coordinator at `addr` with `cookie`, and serves
/// its pool through an agent built from `args`. Returns once the coordinator has
/// authenticated the node.
pub async fn join(addr: &str, cookie: &str, args: AgentArgs) -> Result<JoinedNode, JoinError> {
    let name = args.name.clone();
    let server = NodeServer::new(
        0,
        cookie.to_string(),
        name.clone(),
        "localhost".into(),
        None,
        Some(ractor_cluster::node::NodeConnectionMode::Isolated),
    )
    .with_listen_addr(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    .with_max_inbound_frame_size(WIRE_LIMIT);
    let (server, _) = Actor::spawn(None, server, ())
        .await
        .map_err(|e| JoinError::Start(e.to_string()))?;
    let (auth_tx, mut auth_rx) = watch::channel(false);
    let (closed_tx, closed) = watch::channel(false);
    let _ = server.cast(NodeServerMessage::SubscribeToEvents {
        id: "rlcs-join".into(),
        subscription: Box::new(SessionWatch {
            authenticated: auth_tx,
            closed: closed_tx,
        }),
    });
    let jobs = Arc::new(AtomicU64::new(0));
    let (agent, _) = Actor::spawn(None, NodeAgent, (args, jobs.clone()))
        .await
        .map_err(|e| JoinError::Start(e.to_string()))?;
    ractor::pg::join(NODES_GROUP.to_string(), vec![agent.get_cell()]);
    let stop = |server: &ActorRef<NodeServerMessage>, agent: &ActorRef<NodeMsg>| {
        server.stop(None);
        agent.stop(None);
    };
    if let Err(e) = ractor_cluster::client_connect(&server, addr).await {
        stop(&server, &agent);
        return Err(JoinError::Unreachable {
            addr: addr.to_string(),
            reason: e.to_string(),
        });
    }
    let mut closed_rx = closed.clone();
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            r = auth_rx.wait_for(|a| *a) => r.is_ok(),
            _ = closed_rx.wait_for(|c| *c) => false,
        }
    })
    .await;
    match outcome {
        Ok(true) => Ok(JoinedNode {
            server,
            agent,
            closed,
            jobs,
        }),
        // Closed before authenticating: the coordinator refused the cookie.
        Ok(false) => {
            stop(&server, &agent);
            Err(JoinError::Refused {
                addr: addr.to_string(),
            })
        }
        // No handshake at all (not a coordinator; or, on loopback, a connection
        // to itself when nothing listens on that port any more): try again later.
        Err(_) => {
            stop(&server, &agent);
            Err(JoinError::Unreachable {
                addr: addr.to_string(),
                reason: "no handshake within 10 s".into(),
            })
        }
    }
}

/// A remote member of a pool: one worker node's agent.
pub struct Member {
    /// The agent's actor id.
    pub id: ActorId,
    /// The node's name.
    pub node: String,
    agent: ActorRef<NodeMsg>,
    /// Jobs it runs at once.
    pub slots: usize,
    load: AtomicUsize,
    /// Jobs it answered.
    pub jobs: AtomicU64,
}

/// The remote members of one pool.
#[derive(Default)]
pub struct RoleMembers {
    members: Mutex<Vec<Arc<Member>>>,
}

impl RoleMembers {
    /// Members now.
    pub fn list(&self) -> Vec<Arc<Member>> {
        self.members.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Slots over every member.
    pub fn slots(&self) -> usize {
        self.list().iter().map(|m| m.slots).sum()
    }

    /// The least-loaded member, if it is less loaded than `local` (jobs per worker
    /// of the local pool).
    fn pick(&self, local: f64) -> Option<Arc<Member>> {
        let members = self.members.lock().ok()?;
        members
            .iter()
            .map(|m| {
                (
                    m.load.load(Ordering::Relaxed) as f64 / m.slots.max(1) as f64,
                    m,
                )
            })
            .filter(|(load, _)| *load < local)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, m)| m.clone())
    }

    fn add(&self, member: Arc<Member>) {
        if let Ok(mut m) = self.members.lock() {
            m.retain(|x| x.id != member.id);
            m.push(member);
        }
    }

    /// Removes a member; returns it if it was there.
    fn remove(&self, id: ActorId) -> Option<Arc<Member>> {
        let mut m = self.members.lock().ok()?;
        let at = m.iter().position(|x| x.id == id)?;
        Some(m.remove(at))
    }
}

/// The graph a cluster's members work for now: where its events go and which
/// weights its replicas follow.
struct Attachment {
    bus: ActorRef<BusMsg>,
    generation: u64,
    weights: watch::Receiver<Option<Weights>>,
}

/// A run's coordinator: the node server, and the members it admitted.
pub struct Cluster {
    /// Where worker nodes connect.
    pub addr: SocketAddr,
    /// Remote verifier members.
    pub verifiers: RoleMembers,
    /// Remote replica members.
    pub replicas: RoleMembers,
    config: String,
    needed_verifiers: BTreeSet<String>,
    attachment: Mutex<Option<Attachment>>,
    generations: AtomicU64,
    server: Mutex<Option<ActorRef<NodeServerMessage>>>,
    monitor: Mutex<Option<ActorRef<AdmissionsMsg>>>,
    admitted: tokio::sync::Notify,
}

/// Why the coordinator could not open its cluster.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve the cluster on {addr}: {reason}")]
pub struct ServeError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    pub reason: String,
}

impl Cluster {
    /// Opens the node server on `addr` (port 0: a free port, see [`Cluster::addr`])
    /// with `cookie`, and admits worker nodes as they join. `config` (JSON) is the
    /// run's config, sent to replica nodes; `needed_verifiers` are the verifier names
    /// the run scores with (a verifier node lacking one is not admitted).
    pub async fn serve(
        addr: SocketAddr,
        cookie: &str,
        config: String,
        needed_verifiers: BTreeSet<String>,
    ) -> Result<Arc<Cluster>, ServeError> {
        let err = |reason: String| ServeError { addr, reason };
        // The node server reports no port it picked: pick one the OS says is free.
        let addr = if addr.port() == 0 {
            let probe = std::net::TcpListener::bind(addr).map_err(|e| err(e.to_string()))?;
            probe.local_addr().map_err(|e| err(e.to_string()))?
        } else {
            // Fail here, with the address, when the port is taken.
            drop(std::net::TcpListener::bind(addr).map_err(|e| err(e.to_string()))?);
            addr
        };
        let server = NodeServer::new(
            addr.port(),
            cookie.to_string(),
            format!("coordinator-{}", std::process::id()),
            addr.ip().to_string(),
            None,
            Some(ractor_cluster::node::NodeConnectionMode::Isolated),
        )
        .with_listen_addr(addr.ip())
        .with_max_inbound_frame_size(WIRE_LIMIT);
        let (server, _) = Actor::spawn(None, server, ())
            .await
            .map_err(|e| err(e.to_string()))?;
        let cluster = Arc::new(Cluster {
            addr,
            verifiers: RoleMembers::default(),
            replicas: RoleMembers::default(),
            config,
            needed_verifiers,
            attachment: Mutex::new(None),
            generations: AtomicU64::new(0),
            server: Mutex::new(Some(server)),
            monitor: Mutex::new(None),
            admitted: tokio::sync::Notify::new(),
        });
        let (monitor, _) = Actor::spawn(None, Admissions, Arc::downgrade(&cluster))
            .await
            .map_err(|e| err(e.to_string()))?;
        if let Ok(mut m) = cluster.monitor.lock() {
            *m = Some(monitor);
        }
        Ok(cluster)
    }

    /// Waits until at least `verifiers` verifier members and `replicas` replica
    /// members are admitted, or `timeout` passes (then says who is missing).
    pub async fn wait_for(
        &self,
        verifiers: usize,
        replicas: usize,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.admitted.notified();
            let (v, r) = (self.verifiers.list().len(), self.replicas.list().len());
            if v >= verifiers && r >= replicas {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(format!(
                    "{v} of {verifiers} verifier nodes and {r} of {replicas} replica nodes joined within {timeout:?}"
                ));
            }
        }
    }

    /// Makes the members work for a new graph: its events, its weights. Returns the
    /// graph's generation.
    pub fn attach(&self, bus: ActorRef<BusMsg>, weights: watch::Receiver<Option<Weights>>) -> u64 {
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        for (role, members) in [
            (Role::Verifiers, &self.verifiers),
            (Role::Replicas, &self.replicas),
        ] {
            for m in members.list() {
                let _ = bus.cast(BusMsg::Publish(RunEvent::NodeJoined {
                    node: m.node.clone(),
                    role: role.name().into(),
                    slots: m.slots,
                }));
            }
        }
        if let Ok(mut a) = self.attachment.lock() {
            *a = Some(Attachment {
                bus,
                generation,
                weights,
            });
        }
        generation
    }

    /// The weights replicas must hold now, with their bytes.
    fn current_weights(&self) -> (WeightsTag, Option<Weights>) {
        let a = self.attachment.lock().ok();
        match a.as_ref().and_then(|a| a.as_ref()) {
            Some(a) => {
                let w = a.weights.borrow().clone();
                (
                    WeightsTag {
                        generation: a.generation,
                        version: w.as_ref().map(|w| w.version),
                    },
                    w,
                )
            }
            None => (
                WeightsTag {
                    generation: 0,
                    version: None,
                },
                None,
            ),
        }
    }

    fn publish(&self, event: RunEvent) {
        if let Ok(a) = self.attachment.lock() {
            if let Some(a) = a.as_ref() {
                let _ = a.bus.cast(BusMsg::Publish(event));
            }
        }
    }

    /// Publishes on `bus` how many jobs each member answered, and stops sending
    /// events there (a graph's end).
    pub fn detach_to(&self, bus: &ActorRef<BusMsg>) {
        for (role, members) in [
            (Role::Verifiers, &self.verifiers),
            (Role::Replicas, &self.replicas),
        ] {
            for m in members.list() {
                let _ = bus.cast(BusMsg::Publish(RunEvent::NodeWork {
                    node: m.node.clone(),
                    role: role.name().into(),
                    jobs: m.jobs.swap(0, Ordering::Relaxed),
                }));
            }
        }
        if let Ok(mut a) = self.attachment.lock() {
            *a = None;
        }
    }

    fn members(&self, role: Role) -> &RoleMembers {
        match role {
            Role::Verifiers => &self.verifiers,
            Role::Replicas => &self.replicas,
        }
    }

    /// A member is gone (its node was lost or left): out of its pool.
    fn lost(&self, role: Role, id: ActorId, reason: &str) {
        if let Some(m) = self.members(role).remove(id) {
            tracing::warn!(node = %m.node, role = role.name(), "node lost: {reason}");
            self.publish(RunEvent::NodeLost {
                node: m.node.clone(),
                role: role.name().into(),
                reason: reason.to_string(),
            });
        }
    }

    /// Stops the node server (worker nodes see the connection close).
    pub fn shutdown(&self) {
        if let Ok(mut m) = self.monitor.lock() {
            if let Some(m) = m.take() {
                m.stop(None);
            }
        }
        if let Ok(mut s) = self.server.lock() {
            if let Some(s) = s.take() {
                s.stop(None);
            }
        }
    }

    async fn admit(self: Arc<Self>, cell: ActorCell) {
        let agent: ActorRef<NodeMsg> = cell.clone().into();
        let timeout = Duration::from_secs(10);
        let info = match agent.call(NodeMsg::Describe, Some(timeout)).await {
            Ok(CallResult::Success(info)) => info,
            other => {
                tracing::warn!("a joining node did not describe itself: {other:?}");
                return;
            }
        };
        if info.role == Role::Verifiers {
            let have: BTreeSet<String> = info.verifiers.iter().cloned().collect();
            let missing: Vec<&String> = self.needed_verifiers.difference(&have).collect();
            if !missing.is_empty() {
                self.publish(RunEvent::NodeRefused {
                    node: info.name.clone(),
                    reason: format!("it lacks the verifiers {missing:?}"),
                });
                return;
            }
        } else {
            let config = self.config.clone();
            let configured = agent
                .call(
                    |reply| NodeMsg::Configure(config, reply),
                    Some(Duration::from_secs(300)),
                )
                .await;
            match configured {
                Ok(CallResult::Success(Ok(()))) => {}
                other => {
                    let reason = match other {
                        Ok(CallResult::Success(Err(e))) => e,
                        other => format!("{other:?}"),
                    };
                    self.publish(RunEvent::NodeRefused {
                        node: info.name.clone(),
                        reason: format!("cannot build the run's policy: {reason}"),
                    });
                    return;
                }
            }
        }
        let member = Arc::new(Member {
            id: cell.get_id(),
            node: info.name.clone(),
            agent,
            slots: info.slots.max(1),
            load: AtomicUsize::new(0),
            jobs: AtomicU64::new(0),
        });
        self.members(info.role).add(member);
        self.publish(RunEvent::NodeJoined {
            node: info.name,
            role: info.role.name().into(),
            slots: info.slots.max(1),
        });
        self.admitted.notify_waiters();
    }
}

/// Watches the nodes group: admits agents that join, drops those that leave.
struct Admissions;

/// The admissions actor takes no messages of its own: group changes come as
/// supervision events.
enum AdmissionsMsg {}

crate::local_message!(AdmissionsMsg);

impl Actor for Admissions {
    type Msg = AdmissionsMsg;
    type State = std::sync::Weak<Cluster>;
    type Arguments = std::sync::Weak<Cluster>;

    async fn pre_start(
        &self,
        myself: ActorRef<AdmissionsMsg>,
        cluster: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        ractor::pg::monitor(NODES_GROUP.to_string(), myself.get_cell());
        // Agents already mirrored before the monitor started.
        if let Some(c) = cluster.upgrade() {
            for cell in ractor::pg::get_members(&NODES_GROUP.to_string()) {
                if !cell.get_id().is_local() {
                    tokio::spawn(c.clone().admit(cell));
                }
            }
        }
        Ok(cluster)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<AdmissionsMsg>,
        event: SupervisionEvent,
        cluster: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (Some(c), SupervisionEvent::ProcessGroupChanged(change)) = (cluster.upgrade(), event)
        else {
            return Ok(());
        };
        match change {
            GroupChangeMessage::Join(_, _, cells) => {
                for cell in cells.into_iter().filter(|c| !c.get_id().is_local()) {
                    tokio::spawn(c.clone().admit(cell));
                }
            }
            GroupChangeMessage::Leave(_, _, cells) => {
                for cell in cells {
                    for role in [Role::Verifiers, Role::Replicas] {
                        c.lost(role, cell.get_id(), "left the cluster");
                    }
                }
            }
        }
        Ok(())
    }
}

/// How a remote attempt failed.
enum RemoteFailure {
    /// The member is gone (its node died or disconnected): drop it.
    Lost(String),
    /// No answer in time; the member stays.
    Slow(String),
}

fn remote_failure<T>(
    r: Result<CallResult<T>, ractor::MessagingErr<NodeMsg>>,
) -> Result<T, RemoteFailure> {
    match r {
        Ok(CallResult::Success(t)) => Ok(t),
        Ok(CallResult::Timeout) => Err(RemoteFailure::Slow("timed out".into())),
        Ok(CallResult::SenderError) => {
            Err(RemoteFailure::Lost("node stopped before replying".into()))
        }
        Err(e) => Err(RemoteFailure::Lost(format!("node unreachable: {e}"))),
    }
}

impl Member {
    async fn score(
        &self,
        req: ScoreRequest,
        timeout: Duration,
    ) -> Result<Result<Vec<Verdict>, String>, RemoteFailure> {
        remote_failure(
            self.agent
                .call(|reply| NodeMsg::Score(req, reply), Some(timeout))
                .await,
        )
    }

    async fn generate(
        &self,
        cluster: &Cluster,
        mut req: GenerateRequest,
        timeout: Duration,
    ) -> Result<Result<Vec<Rollout>, String>, RemoteFailure> {
        // A stale replica gets the weights and is asked again (twice at most: the
        // learner may publish in between).
        for _ in 0..3 {
            let (tag, weights) = cluster.current_weights();
            req.weights = tag;
            let r = self
                .agent
                .call(|reply| NodeMsg::Generate(req.clone(), reply), Some(timeout))
                .await;
            match remote_failure(r)? {
                Ok(rollouts) => return Ok(Ok(rollouts)),
                Err(GenerateError::Failed(e)) => return Ok(Err(e)),
                Err(GenerateError::Stale { .. }) => {
                    let Some(w) = weights else {
                        return Ok(Err("replica node stale with no weights to send".into()));
                    };
                    let wire = WireWeights {
                        tag,
                        bytes: w.bytes.as_ref().clone(),
                    };
                    let r = self
                        .agent
                        .call(|reply| NodeMsg::LoadWeights(wire, reply), Some(timeout))
                        .await;
                    if let Err(e) = remote_failure(r)? {
                        return Ok(Err(e));
                    }
                }
            }
        }
        Err(RemoteFailure::Slow(
            "replica node kept holding stale weights".into(),
        ))
    }
}

/// What a job runs remotely.
pub(crate) enum RemoteJob {
    /// Score a group.
    Score(ScoreRequest),
    /// Generate a group.
    Generate(GenerateRequest),
}

/// A remote job's reply.
pub(crate) enum RemoteReply {
    /// Verdicts, or the verifier's error.
    Score(Result<Vec<Verdict>, String>),
    /// Rollouts, or the policy's error.
    Generate(Result<Vec<Rollout>, String>),
}

/// Sends a job to the least-loaded place, the local `pool` or a remote member of
/// `role` in `cluster`, and waits for its reply, with a timeout per attempt. A
/// failed attempt (worker crash, lost node, timeout) is re-issued, up to `attempts`
/// times; a lost node's member is dropped first, so the job goes elsewhere.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn call_spread<M, R>(
    pool: &Pool<M>,
    cluster: Option<&Cluster>,
    role: Role,
    key: u64,
    timeout: Duration,
    attempts: u32,
    what: impl Fn() -> String,
    local: impl Fn(RpcReplyPort<R>) -> M,
    remote: impl Fn() -> RemoteJob,
    from_remote: impl Fn(RemoteReply) -> Option<R>,
) -> Result<R, ActorsError>
where
    M: ractor::Message,
    R: Send + 'static,
{
    let mut last = String::new();
    for _ in 0..attempts.max(1) {
        let local_load = pool.in_flight.load(Ordering::Relaxed) as f64 / pool.workers.max(1) as f64;
        let member = cluster.and_then(|c| c.members(role).pick(local_load));
        let (Some(c), Some(member)) = (cluster, member) else {
            match crate::pools::call_once(pool, key, timeout, &local).await {
                Ok(r) => return Ok(r),
                Err(reason) => last = reason,
            }
            tracing::warn!(pool = %pool.name, key, "re-issuing job: {last}");
            continue;
        };
        member.load.fetch_add(1, Ordering::Relaxed);
        let reply = match remote() {
            RemoteJob::Score(req) => member.score(req, timeout).await.map(RemoteReply::Score),
            RemoteJob::Generate(req) => member
                .generate(c, req, timeout)
                .await
                .map(RemoteReply::Generate),
        };
        member.load.fetch_sub(1, Ordering::Relaxed);
        match reply {
            Ok(reply) => match from_remote(reply) {
                Some(r) => {
                    member.jobs.fetch_add(1, Ordering::Relaxed);
                    return Ok(r);
                }
                None => last = format!("node `{}` answered another job's kind", member.node),
            },
            Err(RemoteFailure::Lost(reason)) => {
                c.lost(role, member.id, &reason);
                last = format!("node `{}`: {reason}", member.node);
            }
            Err(RemoteFailure::Slow(reason)) => last = format!("node `{}`: {reason}", member.node),
        }
        tracing::warn!(pool = %pool.name, key, "re-issuing job: {last}");
    }
    Err(ActorsError::Request {
        what: what(),
        attempts,
        reason: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::Message;

    #[test]
    fn requests_round_trip_on_the_wire_and_junk_is_an_error() {
        let req = ScoreRequest {
            verifier: "counting".into(),
            responses: vec!["<answer>3</answer>".into()],
            gold: "3".into(),
            trace: TraceContext::default(),
        };
        let bytes = encode(&req).unwrap();
        let back: ScoreRequest = decode(&bytes).unwrap();
        assert_eq!(back.responses, req.responses);
        // Truncated, garbage, and a length prefix claiming terabytes: errors.
        assert!(decode::<ScoreRequest>(&bytes[..bytes.len() / 2]).is_err());
        assert!(decode::<ScoreRequest>(&[0xff; 64]).is_err());
        let mut huge = vec![0xfd];
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<ScoreRequest>(&huge).is_err());
    }

    #[test]
    fn an_unknown_variant_or_a_cast_does_not_deserialize() {
        let (tx, _rx) = oneshot::<Vec<u8>>();
        let call = SerializedMessage::Call {
            variant: "format_disk".into(),
            args: vec![],
            reply: tx.into(),
            metadata: None,
        };
        assert!(NodeMsg::deserialize(call).is_err());
        let cast = SerializedMessage::Cast {
            variant: "describe".into(),
            args: vec![],
            metadata: None,
        };
        assert!(NodeMsg::deserialize(cast).is_err());
    }

    #[test]
    fn roles_parse_and_name_their_pool() {
        assert_eq!("verifiers".parse::<Role>(), Ok(Role::Verifiers));
        assert_eq!("replicas".parse::<Role>().map(Role::name), Ok("replicas"));
        assert!("learners".parse::<Role>().unwrap_err().contains("learners"));
    }
}
