//! Real Redis topologies on demand: standalone, cluster (3 masters + 3 replicas) and sentinel
//! (1 master, 1 replica, 3 sentinels), with fault controls (kill, stop/start, pause/resume).
//!
//! # Providers
//! The provider is chosen with the environment variable `SESSION_TESTKIT_REDIS`:
//! * `containers`: Docker containers started with testcontainers, image from `REDIS_TEST_IMAGE`
//!   (`name:tag`, default `redis:7.4`). Every deployment gets its own user-defined Docker
//!   network, and the host talks to the container IPs directly (Linux).
//! * `processes`: `redis-server` (and `redis-cli` for cluster creation) from `PATH`, on free
//!   loopback ports, each node in its own temporary directory.
//! * `url`: an external deployment: `SESSION_TESTKIT_REDIS_URL` (standalone),
//!   `SESSION_TESTKIT_REDIS_CLUSTER_URLS` (comma-separated seeds), or
//!   `SESSION_TESTKIT_REDIS_SENTINEL_URLS` + `SESSION_TESTKIT_REDIS_SENTINEL_MASTER`. Fault
//!   controls return [`TopologyError::Unsupported`].
//! * unset: `containers` if `docker info` succeeds, else `processes` if `redis-server` is on
//!   `PATH`, else an error.
//!
//! # Cleanup
//! Nothing started here outlives the test process: a [`RedisDeployment`] removes its
//! containers, network, processes and directories when dropped; everything still registered
//! (for example [`shared`] deployments, which live in statics) is removed synchronously by a
//! process-exit hook; and resources left behind by test processes that were killed are reaped
//! when the next deployment of the same provider starts (containers and networks are labelled
//! with the owning process, process run directories contain an `owner` file and `pid` files).
//!
//! A deployment holds no runtime-bound resources (no cached connections, no
//! `ContainerAsync`), so it can be used from any tokio runtime; every call opens fresh
//! connections.

mod cleanup;
mod containers;
pub mod faults;
mod processes;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{AsyncConnectionConfig, FromRedisValue, Value};

pub use faults::{
    FailoverConfig, FailoverReport, FailoverWorkload, FaultKind, IncrWorkload, OpOutcome,
    WaitConfig, WorkloadCheck, run_failover_workload, run_raw_incr_failover,
};

/// The shape of a Redis deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topology {
    /// One node.
    Standalone,
    /// Redis Cluster: 3 masters with 1 replica each.
    Cluster,
    /// One master, one replica and three sentinels (quorum 2).
    Sentinel,
}

/// How the Redis servers are provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Docker containers started with testcontainers.
    Containers,
    /// `redis-server` processes on loopback ports.
    Processes,
    /// An external deployment given by URLs in environment variables.
    Url,
}

impl Provider {
    /// Reads `SESSION_TESTKIT_REDIS` (`containers` | `processes` | `url`); when unset or empty,
    /// picks `Containers` if `docker info` succeeds, else `Processes` if `redis-server` is on
    /// `PATH`, else returns [`TopologyError::NoProvider`].
    pub fn from_env() -> Result<Provider, TopologyError> {
        match std::env::var("SESSION_TESTKIT_REDIS")
            .unwrap_or_default()
            .trim()
        {
            "containers" => Ok(Provider::Containers),
            "processes" => Ok(Provider::Processes),
            "url" => Ok(Provider::Url),
            "" => {
                if containers::docker_available() {
                    Ok(Provider::Containers)
                } else if processes::redis_server_available() {
                    Ok(Provider::Processes)
                } else {
                    Err(TopologyError::NoProvider(
                        "Docker is not usable (`docker info` failed) and `redis-server` is not on \
                         PATH: start Docker (SESSION_TESTKIT_REDIS=containers) or install Redis \
                         (SESSION_TESTKIT_REDIS=processes), or point SESSION_TESTKIT_REDIS=url at \
                         a deployment"
                            .into(),
                    ))
                }
            }
            other => Err(TopologyError::Config(format!(
                "SESSION_TESTKIT_REDIS={other:?}: expected `containers`, `processes` or `url`"
            ))),
        }
    }

    /// Whether this provider can be used on this machine right now (Docker reachable,
    /// `redis-server` on `PATH`, or the URL variable set for the standalone topology).
    pub fn is_available(self) -> bool {
        match self {
            Provider::Containers => containers::docker_available(),
            Provider::Processes => processes::redis_server_available(),
            Provider::Url => std::env::var("SESSION_TESTKIT_REDIS_URL").is_ok(),
        }
    }
}

/// A data node of a deployment (index into [`RedisDeployment::nodes`]); stable for the
/// lifetime of the deployment, also across restarts and failovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node{}", self.0)
    }
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The operation is not available with this provider or topology.
    #[error("{operation} is not supported by the {provider:?} provider / {topology:?} topology")]
    Unsupported {
        /// What was attempted.
        operation: &'static str,
        /// The provider of the deployment.
        provider: Provider,
        /// The topology of the deployment.
        topology: Topology,
    },
    /// Invalid or missing configuration (environment variables).
    #[error("configuration: {0}")]
    Config(String),
    /// No provider is usable on this machine.
    #[error("no Redis provider available: {0}")]
    NoProvider(String),
    /// A Docker operation failed.
    #[error("docker: {0}")]
    Docker(String),
    /// testcontainers failed to start a container.
    #[error("testcontainers: {0}")]
    Testcontainers(#[from] testcontainers::TestcontainersError),
    /// A local `redis-server`/`redis-cli` process failed.
    #[error("redis process: {0}")]
    Process(String),
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited, including the last observation.
        what: String,
        /// The time limit.
        after: Duration,
    },
    /// A Redis command failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// An I/O error (files, sockets).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The node id does not belong to this deployment.
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    /// The node is not in a state that allows the operation (e.g. pausing a stopped node).
    #[error("{node} is {state:?}, cannot {operation}")]
    InvalidState {
        /// The node.
        node: NodeId,
        /// Its current state.
        state: NodeState,
        /// What was attempted.
        operation: &'static str,
    },
}

/// The state of a data node as driven by the fault controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Running normally.
    Running,
    /// Frozen (SIGSTOP / docker pause).
    Paused,
    /// Not running (killed or stopped).
    Stopped,
}

/// Tunables of a deployment; [`Default`] gives fast failovers suitable for tests.
#[derive(Debug, Clone)]
pub struct TopologyOptions {
    /// `cluster-node-timeout` (default 2000 ms).
    pub cluster_node_timeout: Duration,
    /// `sentinel down-after-milliseconds` (default 1000 ms).
    pub sentinel_down_after: Duration,
    /// `sentinel failover-timeout` (default 5000 ms).
    pub sentinel_failover_timeout: Duration,
    /// The sentinel master name (default `mymaster`).
    pub sentinel_master_name: String,
    /// Limit for starting the whole topology and for it to become healthy (default 90 s).
    pub start_timeout: Duration,
}

impl Default for TopologyOptions {
    fn default() -> Self {
        TopologyOptions {
            cluster_node_timeout: Duration::from_millis(2000),
            sentinel_down_after: Duration::from_millis(1000),
            sentinel_failover_timeout: Duration::from_millis(5000),
            sentinel_master_name: "mymaster".into(),
            start_timeout: Duration::from_secs(90),
        }
    }
}

/// How a node is driven.
pub(crate) enum NodeHandle {
    Container(containers::ContainerNode),
    Process(processes::ProcessNode),
    External,
}

/// A data node or sentinel of a deployment.
pub(crate) struct Node {
    /// `host:port` as reachable from the test process (may change after a container restart).
    addr: Mutex<String>,
    state: Mutex<NodeState>,
    handle: NodeHandle,
}

impl Node {
    pub(crate) fn new(addr: String, handle: NodeHandle) -> Node {
        Node {
            addr: Mutex::new(addr),
            state: Mutex::new(NodeState::Running),
            handle,
        }
    }
    fn addr(&self) -> String {
        self.addr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }
    fn state(&self) -> NodeState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set_state(&self, s: NodeState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

/// A running Redis topology. Dropping it removes everything it started.
pub struct RedisDeployment {
    topology: Topology,
    provider: Provider,
    run: Option<u64>,
    nodes: Vec<Node>,
    sentinels: Vec<Node>,
    master_name: Option<String>,
    initial_url: String,
    options: TopologyOptions,
}

impl fmt::Debug for RedisDeployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDeployment")
            .field("topology", &self.topology)
            .field("provider", &self.provider)
            .field("nodes", &self.node_urls())
            .field("sentinels", &self.sentinel_urls())
            .finish()
    }
}

impl Drop for RedisDeployment {
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            cleanup::cleanup_run(run);
        }
    }
}

/// What the providers hand back to [`RedisDeployment::start_with_options`].
pub(crate) struct Started {
    pub(crate) nodes: Vec<Node>,
    pub(crate) sentinels: Vec<Node>,
}

/// Removes a half-started deployment if starting fails or panics.
struct RunGuard(Option<u64>);
impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            cleanup::cleanup_run(run);
        }
    }
}

impl RedisDeployment {
    /// Starts `topology` with the provider chosen by [`Provider::from_env`].
    pub async fn start(topology: Topology) -> Result<Self, TopologyError> {
        Self::start_with(topology, Provider::from_env()?).await
    }

    /// Starts `topology` with an explicit provider and default options.
    pub async fn start_with(topology: Topology, provider: Provider) -> Result<Self, TopologyError> {
        Self::start_with_options(topology, provider, TopologyOptions::default()).await
    }

    /// Starts `topology` with an explicit provider and options, and waits until it is fully
    /// formed (cluster: state ok, all slots covered, every master has a connected replica;
    /// sentinel: all sentinels know each other and the replica).
    pub async fn start_with_options(
        topology: Topology,
        provider: Provider,
        options: TopologyOptions,
    ) -> Result<Self, TopologyError> {
        if provider == Provider::Url {
            return Self::from_urls(topology, options).await;
        }
        let (run, tag) = cleanup::new_run();
        let mut guard = RunGuard(Some(run));
        let started = match provider {
            Provider::Containers => containers::start(topology, &options, run, &tag).await?,
            Provider::Processes => processes::start(topology, &options, run).await?,
            Provider::Url => unreachable!(),
        };
        let master_name =
            (topology == Topology::Sentinel).then(|| options.sentinel_master_name.clone());
        let initial_url = started.nodes[0].url();
        let dep = RedisDeployment {
            topology,
            provider,
            run: guard.0.take(),
            nodes: started.nodes,
            sentinels: started.sentinels,
            master_name,
            initial_url,
            options,
        };
        dep.wait_formed(dep.options.start_timeout).await?;
        Ok(dep)
    }

    async fn from_urls(
        topology: Topology,
        options: TopologyOptions,
    ) -> Result<Self, TopologyError> {
        let var = |name: &str| -> Result<String, TopologyError> {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                TopologyError::Config(format!(
                    "SESSION_TESTKIT_REDIS=url and the {topology:?} topology needs {name} to be set"
                ))
            })
        };
        let split = |s: String| -> Vec<String> {
            s.split(',')
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect()
        };
        let (urls, master) = match topology {
            Topology::Standalone => (vec![var("SESSION_TESTKIT_REDIS_URL")?], None),
            Topology::Cluster => (split(var("SESSION_TESTKIT_REDIS_CLUSTER_URLS")?), None),
            Topology::Sentinel => (
                split(var("SESSION_TESTKIT_REDIS_SENTINEL_URLS")?),
                Some(var("SESSION_TESTKIT_REDIS_SENTINEL_MASTER")?),
            ),
        };
        Self::external_with_options(topology, urls, master, options).await
    }

    /// A deployment that runs elsewhere: `urls` are the standalone server, the cluster's seed
    /// nodes, or the sentinels (then `sentinel_master` names the master). Fault controls are
    /// [`TopologyError::Unsupported`] on it.
    pub async fn external(
        topology: Topology,
        urls: Vec<String>,
        sentinel_master: Option<String>,
    ) -> Result<Self, TopologyError> {
        Self::external_with_options(topology, urls, sentinel_master, TopologyOptions::default())
            .await
    }

    async fn external_with_options(
        topology: Topology,
        urls: Vec<String>,
        sentinel_master: Option<String>,
        options: TopologyOptions,
    ) -> Result<Self, TopologyError> {
        let strip = |u: &str| -> String {
            let rest = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
            rest.rsplit_once('@')
                .map(|(_, r)| r)
                .unwrap_or(rest)
                .trim_end_matches('/')
                .to_string()
        };
        let ext = |addr: String| Node::new(addr, NodeHandle::External);
        let first = urls.first().cloned().ok_or_else(|| {
            TopologyError::Config("an external deployment needs at least one URL".into())
        })?;
        let mut master_name = None;
        let (nodes, sentinels, initial_url) = match topology {
            Topology::Standalone => (vec![ext(strip(&first))], vec![], first),
            Topology::Cluster => (urls.iter().map(|u| ext(strip(u))).collect(), vec![], first),
            Topology::Sentinel => {
                let name = sentinel_master.ok_or_else(|| {
                    TopologyError::Config("a sentinel deployment needs the master's name".into())
                })?;
                let sentinels: Vec<Node> = urls.iter().map(|u| ext(strip(u))).collect();
                let master = sentinel_master_addr(&sentinels[0].url(), &name).await?;
                master_name = Some(name);
                (
                    vec![ext(master.clone())],
                    sentinels,
                    format!("redis://{master}"),
                )
            }
        };
        let dep = RedisDeployment {
            topology,
            provider: Provider::Url,
            run: None,
            nodes,
            sentinels,
            master_name,
            initial_url,
            options,
        };
        dep.wait_healthy(Duration::from_secs(10)).await?;
        Ok(dep)
    }

    /// The topology.
    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The options the deployment was started with.
    pub fn options(&self) -> &TopologyOptions {
        &self.options
    }

    /// Standalone: the node; cluster: one seed node; sentinel: the master at start time.
    pub fn url(&self) -> String {
        self.initial_url.clone()
    }

    /// URLs (`redis://host:port`) of all data nodes, in [`NodeId`] order (current addresses).
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// URL of one data node.
    pub fn node_url(&self, node: NodeId) -> Result<String, TopologyError> {
        Ok(self.node(node)?.url())
    }

    /// URLs of the sentinels (empty unless the topology is [`Topology::Sentinel`]).
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(Node::url).collect()
    }

    /// The sentinel master name (sentinel topology only).
    pub fn sentinel_master_name(&self) -> Option<&str> {
        self.master_name.as_deref()
    }

    /// The deployment as one URL in the form both session stores accept:
    /// `redis://h:p`, `redis+cluster://h1:p1,h2:p2,...`, or
    /// `redis+sentinel://s1:p1,s2:p2,.../<master>`.
    pub fn store_url(&self) -> String {
        let hosts = |urls: Vec<String>| -> String {
            urls.iter()
                .map(|u| {
                    u.split_once("://")
                        .map_or(u.as_str(), |(_, rest)| rest)
                        .trim_end_matches('/')
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        match self.topology {
            Topology::Standalone => self.url(),
            Topology::Cluster => format!("redis+cluster://{}", hosts(self.node_urls())),
            Topology::Sentinel => format!(
                "redis+sentinel://{}/{}",
                hosts(self.sentinel_urls()),
                self.master_name.as_deref().unwrap_or_default()
            ),
        }
    }

    /// The data nodes.
    pub fn nodes(&self) -> Vec<NodeId> {
        (0..self.nodes.len()).map(NodeId).collect()
    }

    /// The state of a node as driven by the fault controls.
    pub fn node_state(&self, node: NodeId) -> Result<NodeState, TopologyError> {
        Ok(self.node(node)?.state())
    }

    fn node(&self, node: NodeId) -> Result<&Node, TopologyError> {
        self.nodes
            .get(node.0)
            .ok_or(TopologyError::UnknownNode(node))
    }

    fn node_by_addr(&self, addr: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.addr() == addr).map(NodeId)
    }

    fn unsupported(&self, operation: &'static str) -> TopologyError {
        TopologyError::Unsupported {
            operation,
            provider: self.provider,
            topology: self.topology,
        }
    }

    /// The current masters: standalone the node; cluster the masters serving slots (from
    /// `CLUSTER NODES` of a reachable node); sentinel the master the sentinels report.
    pub async fn masters(&self) -> Result<Vec<NodeId>, TopologyError> {
        match self.topology {
            Topology::Standalone => Ok(vec![NodeId(0)]),
            Topology::Cluster => {
                let mut last = None;
                for n in self
                    .nodes
                    .iter()
                    .filter(|n| n.state() == NodeState::Running)
                {
                    match cluster_view(&n.url()).await {
                        Ok(view) => {
                            let mut out: Vec<NodeId> = view
                                .masters_with_slots()
                                .filter_map(|e| self.node_by_addr(&e.addr))
                                .collect();
                            out.sort();
                            return Ok(out);
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| TopologyError::Config("no running cluster node".into())))
            }
            Topology::Sentinel => {
                let mut last = None;
                for s in &self.sentinels {
                    match sentinel_master_addr(
                        &s.url(),
                        self.master_name.as_deref().unwrap_or_default(),
                    )
                    .await
                    {
                        Ok(addr) => {
                            return match self.node_by_addr(&addr) {
                                Some(id) => Ok(vec![id]),
                                None if self.provider == Provider::Url => Ok(vec![NodeId(0)]),
                                None => Err(TopologyError::Config(format!(
                                    "sentinels report master {addr}, which is not a node of this deployment"
                                ))),
                            };
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| TopologyError::Config("no sentinel".into())))
            }
        }
    }

    /// Kills a data node (SIGKILL / `docker kill`). Bring it back with [`Self::start_node`].
    pub async fn kill(&self, node: NodeId) -> Result<(), TopologyError> {
        let n = self.node(node)?;
        match &n.handle {
            NodeHandle::Container(c) => c.kill().await?,
            NodeHandle::Process(p) => p.kill()?,
            NodeHandle::External => return Err(self.unsupported("kill")),
        }
        n.set_state(NodeState::Stopped);
        Ok(())
    }

    /// Stops a data node gracefully (SIGTERM, then SIGKILL after 10 s / `docker stop`).
    pub async fn stop(&self, node: NodeId) -> Result<(), TopologyError> {
        let n = self.node(node)?;
        match &n.handle {
            NodeHandle::Container(c) => c.stop().await?,
            NodeHandle::Process(p) => p.stop().await?,
            NodeHandle::External => return Err(self.unsupported("stop")),
        }
        n.set_state(NodeState::Stopped);
        Ok(())
    }

    /// Starts a stopped or killed node again, with the same data directory / container and
    /// port, and waits (bounded) until it answers PING. A running node is left alone.
    /// A container may get a different IP on restart; [`Self::node_urls`] reflects it.
    pub async fn start_node(&self, node: NodeId) -> Result<(), TopologyError> {
        let n = self.node(node)?;
        match n.state() {
            NodeState::Running => return Ok(()),
            NodeState::Paused => {
                return Err(TopologyError::InvalidState {
                    node,
                    state: NodeState::Paused,
                    operation: "start (use resume)",
                });
            }
            NodeState::Stopped => {}
        }
        match &n.handle {
            NodeHandle::Container(c) => {
                let addr = c.start().await?;
                *n.addr.lock().unwrap_or_else(|e| e.into_inner()) = addr;
            }
            NodeHandle::Process(p) => p.start().await?,
            NodeHandle::External => return Err(self.unsupported("start_node")),
        }
        n.set_state(NodeState::Running);
        wait_ping(&n.url(), Duration::from_secs(30)).await
    }

    /// Freezes a node (SIGSTOP / `docker pause`): its sockets stay open but it does not answer.
    pub async fn pause(&self, node: NodeId) -> Result<(), TopologyError> {
        let n = self.node(node)?;
        if n.state() != NodeState::Running {
            return Err(TopologyError::InvalidState {
                node,
                state: n.state(),
                operation: "pause",
            });
        }
        match &n.handle {
            NodeHandle::Container(c) => c.pause().await?,
            NodeHandle::Process(p) => p.signal("-STOP").await?,
            NodeHandle::External => return Err(self.unsupported("pause")),
        }
        n.set_state(NodeState::Paused);
        Ok(())
    }

    /// Resumes a paused node (SIGCONT / `docker unpause`).
    pub async fn resume(&self, node: NodeId) -> Result<(), TopologyError> {
        let n = self.node(node)?;
        if n.state() != NodeState::Paused {
            return Err(TopologyError::InvalidState {
                node,
                state: n.state(),
                operation: "resume",
            });
        }
        match &n.handle {
            NodeHandle::Container(c) => c.unpause().await?,
            NodeHandle::Process(p) => p.signal("-CONT").await?,
            NodeHandle::External => return Err(self.unsupported("resume")),
        }
        n.set_state(NodeState::Running);
        Ok(())
    }

    /// Waits until the deployment serves: standalone PING; cluster: the running nodes agree on
    /// the masters, `cluster_state:ok`, all 16384 slots covered, every master answers;
    /// sentinel: all sentinels agree on the master, it is not down and answers `ROLE` as master.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<(), TopologyError> {
        self.wait_check(timeout, false).await
    }

    /// Like [`Self::wait_healthy`], and additionally every master has at least one replica
    /// with an up replication link (and, for sentinel, every sentinel sees the other sentinels).
    pub async fn wait_fully_replicated(&self, timeout: Duration) -> Result<(), TopologyError> {
        self.wait_check(timeout, true).await
    }

    async fn wait_formed(&self, timeout: Duration) -> Result<(), TopologyError> {
        self.wait_check(timeout, true).await
    }

    async fn wait_check(&self, timeout: Duration, full: bool) -> Result<(), TopologyError> {
        let what = format!(
            "{:?} deployment to be {}",
            self.topology,
            if full { "fully replicated" } else { "healthy" }
        );
        poll_until(&what, timeout, Duration::from_millis(200), || async {
            match self.topology {
                Topology::Standalone => ping(&self.nodes[0].url()).await.map_err(|e| e.to_string()),
                Topology::Cluster => self.check_cluster(full).await,
                Topology::Sentinel => self.check_sentinel(full).await,
            }
            .map(Some)
        })
        .await
    }

    async fn check_cluster(&self, full: bool) -> Result<(), String> {
        let running: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|n| n.state() == NodeState::Running)
            .collect();
        let mut views = Vec::new();
        for n in &running {
            let info: String = query(&n.url(), redis::cmd("CLUSTER").arg("INFO"))
                .await
                .map_err(|e| format!("CLUSTER INFO on {}: {e}", n.addr()))?;
            let field = |k: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix(':')))
                    .map(str::trim)
                    .unwrap_or("")
                    .to_string()
            };
            if field("cluster_state") != "ok" {
                return Err(format!(
                    "{}: cluster_state {}",
                    n.addr(),
                    field("cluster_state")
                ));
            }
            if field("cluster_slots_ok") != "16384" {
                return Err(format!(
                    "{}: cluster_slots_ok {}",
                    n.addr(),
                    field("cluster_slots_ok")
                ));
            }
            views.push(cluster_view(&n.url()).await.map_err(|e| e.to_string())?);
        }
        let Some(first) = views.first() else {
            return Err("no running node".into());
        };
        let masters = first.slot_owners();
        let covered: usize = masters
            .values()
            .map(|r| r.iter().map(|(a, b)| b - a + 1).sum::<usize>())
            .sum();
        if covered != 16384 {
            return Err(format!("masters cover {covered} slots"));
        }
        for (v, n) in views.iter().zip(&running) {
            if v.slot_owners() != masters {
                return Err(format!("{} disagrees about the slot owners", n.addr()));
            }
            // A running node must not be seen as failed, and must know its role.
            for e in &v.entries {
                if e.failed && running.iter().any(|r| r.addr() == e.addr) {
                    return Err(format!(
                        "{} sees running node {} as failed",
                        n.addr(),
                        e.addr
                    ));
                }
            }
        }
        for m in first.masters_with_slots() {
            if first.entries.iter().any(|e| e.id == m.id && e.failed) {
                return Err(format!("master {} is failed", m.addr));
            }
            ping(&format!("redis://{}", m.addr))
                .await
                .map_err(|e| format!("master {}: {e}", m.addr))?;
            if full {
                let replica_ok = first.entries.iter().any(|e| {
                    e.master_id.as_deref() == Some(m.id.as_str()) && !e.failed && e.connected
                });
                if !replica_ok {
                    return Err(format!("master {} has no connected replica", m.addr));
                }
                for r in first
                    .entries
                    .iter()
                    .filter(|e| e.master_id.as_deref() == Some(m.id.as_str()) && !e.failed)
                {
                    let info: String = query(
                        &format!("redis://{}", r.addr),
                        redis::cmd("INFO").arg("replication"),
                    )
                    .await
                    .map_err(|e| format!("replica {}: {e}", r.addr))?;
                    if !info.contains("master_link_status:up") {
                        return Err(format!("replica {} link not up", r.addr));
                    }
                }
            }
        }
        // Running nodes must all be known as members with a role (a restarted ex-master has
        // to have become a replica before we call the cluster healthy).
        for n in &running {
            if !first
                .entries
                .iter()
                .any(|e| e.addr == n.addr() && (e.master_id.is_some() || !e.slots.is_empty()))
            {
                return Err(format!("{} has no role in the cluster yet", n.addr()));
            }
        }
        Ok(())
    }

    async fn check_sentinel(&self, full: bool) -> Result<(), String> {
        let name = self.master_name.clone().unwrap_or_default();
        let mut agreed: Option<String> = None;
        for s in &self.sentinels {
            let addr = sentinel_master_addr(&s.url(), &name)
                .await
                .map_err(|e| format!("sentinel {}: {e}", s.addr()))?;
            match &agreed {
                None => agreed = Some(addr),
                Some(a) if *a == addr => {}
                Some(a) => return Err(format!("sentinels disagree: {a} vs {addr}")),
            }
            let info: Vec<String> =
                query(&s.url(), redis::cmd("SENTINEL").arg("MASTER").arg(&name))
                    .await
                    .map_err(|e| format!("sentinel {}: {e}", s.addr()))?;
            let get = |k: &str| {
                info.iter()
                    .position(|x| x == k)
                    .and_then(|i| info.get(i + 1))
                    .cloned()
                    .unwrap_or_default()
            };
            let flags = get("flags");
            if flags != "master" {
                return Err(format!("sentinel {} sees master flags {flags}", s.addr()));
            }
            if full {
                if get("num-other-sentinels") != (self.sentinels.len() - 1).to_string() {
                    return Err(format!(
                        "sentinel {} knows {} other sentinels",
                        s.addr(),
                        get("num-other-sentinels")
                    ));
                }
                if get("num-slaves").parse::<usize>().unwrap_or(0) < 1 {
                    return Err(format!("sentinel {} knows no replica", s.addr()));
                }
            }
        }
        let master = agreed.ok_or("no sentinel")?;
        let role: Vec<Value> = query(&format!("redis://{master}"), &redis::cmd("ROLE"))
            .await
            .map_err(|e| format!("master {master}: {e}"))?;
        let role_name = role
            .first()
            .map(|v| String::from_redis_value(v.clone()).unwrap_or_default())
            .unwrap_or_default();
        if role_name != "master" {
            return Err(format!("{master} has role {role_name}"));
        }
        if full {
            let info: String = query(
                &format!("redis://{master}"),
                redis::cmd("INFO").arg("replication"),
            )
            .await
            .map_err(|e| format!("master {master}: {e}"))?;
            if !info.contains("connected_slaves:1") || !info.contains("state=online") {
                return Err(format!("master {master} has no online replica"));
            }
        }
        Ok(())
    }

    /// `FLUSHALL` on every current master.
    pub async fn flush(&self) -> Result<(), TopologyError> {
        let urls: Vec<String> = match (self.topology, self.provider) {
            (Topology::Sentinel, _) => {
                let name = self.master_name.clone().unwrap_or_default();
                vec![format!(
                    "redis://{}",
                    sentinel_master_addr(&self.sentinels[0].url(), &name).await?
                )]
            }
            (Topology::Cluster, _) => {
                let mut out = Vec::new();
                let mut last = None;
                for n in self
                    .nodes
                    .iter()
                    .filter(|n| n.state() == NodeState::Running)
                {
                    match cluster_view(&n.url()).await {
                        Ok(v) => {
                            out = v
                                .masters_with_slots()
                                .map(|e| format!("redis://{}", e.addr))
                                .collect();
                            last = None;
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                if let Some(e) = last {
                    return Err(e);
                }
                out
            }
            (Topology::Standalone, _) => vec![self.nodes[0].url()],
        };
        for u in urls {
            let _: () = query(&u, &redis::cmd("FLUSHALL")).await?;
        }
        Ok(())
    }
}

/// Started once per test binary and topology (provider from [`Provider::from_env`]), shared by
/// tests that do not inject faults. Lives until process exit, when it is removed by the exit
/// hook. Holds no runtime-bound resources, so every `#[tokio::test]` runtime can use it.
pub async fn shared(topology: Topology) -> Result<Arc<RedisDeployment>, TopologyError> {
    static CELLS: [tokio::sync::OnceCell<Arc<RedisDeployment>>; 3] = [
        tokio::sync::OnceCell::const_new(),
        tokio::sync::OnceCell::const_new(),
        tokio::sync::OnceCell::const_new(),
    ];
    let cell = &CELLS[match topology {
        Topology::Standalone => 0,
        Topology::Cluster => 1,
        Topology::Sentinel => 2,
    }];
    cell.get_or_try_init(|| async { RedisDeployment::start(topology).await.map(Arc::new) })
        .await
        .cloned()
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the providers.

/// Polls `f` every `interval` until it returns `Ok(Some(_))` or `timeout` passes. `Err(msg)` and
/// `Ok(None)` mean "not yet"; the last message is part of the timeout error.
pub(crate) async fn poll_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut f: F,
) -> Result<T, TopologyError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no attempt finished");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left.max(Duration::from_millis(1)), f()).await {
            Ok(Ok(Some(v))) => return Ok(v),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => last = e,
            Err(_) => last = "attempt did not finish in time".into(),
        }
        if Instant::now() + interval >= deadline {
            return Err(TopologyError::Timeout {
                what: format!("{what} (last: {last})"),
                after: timeout,
            });
        }
        tokio::time::sleep(interval).await;
    }
}

/// Opens a fresh connection (1 s connect timeout, 3 s response timeout) and runs one command.
pub(crate) async fn query<T: FromRedisValue>(
    url: &str,
    cmd: &redis::Cmd,
) -> Result<T, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(3)));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    cmd.query_async(&mut con).await
}

async fn ping(url: &str) -> Result<(), redis::RedisError> {
    let pong: String = query(url, &redis::cmd("PING")).await?;
    if pong == "PONG" {
        Ok(())
    } else {
        Err(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "PING reply",
            pong,
        )))
    }
}

pub(crate) async fn wait_ping(url: &str, timeout: Duration) -> Result<(), TopologyError> {
    poll_until(
        &format!("{url} to answer PING"),
        timeout,
        Duration::from_millis(100),
        || async { ping(url).await.map(Some).map_err(|e| e.to_string()) },
    )
    .await
}

/// `host:port` of the master according to one sentinel.
async fn sentinel_master_addr(sentinel_url: &str, name: &str) -> Result<String, TopologyError> {
    let addr: Option<(String, u16)> = query(
        sentinel_url,
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name),
    )
    .await?;
    let (host, port) = addr
        .ok_or_else(|| TopologyError::Config(format!("sentinel does not know master {name:?}")))?;
    Ok(format!("{host}:{port}"))
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub(crate) struct ClusterEntry {
    pub(crate) id: String,
    pub(crate) addr: String,
    pub(crate) master_id: Option<String>,
    pub(crate) failed: bool,
    pub(crate) connected: bool,
    pub(crate) slots: Vec<(usize, usize)>,
}

/// A parsed `CLUSTER NODES` reply.
#[derive(Debug, Clone)]
pub(crate) struct ClusterView {
    pub(crate) entries: Vec<ClusterEntry>,
}

impl ClusterView {
    pub(crate) fn parse(text: &str) -> ClusterView {
        let entries = text
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 8 {
                    return None;
                }
                let addr = f[1]
                    .split('@')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .to_string();
                let flags = f[2];
                let slots = f[8..]
                    .iter()
                    .filter(|s| !s.starts_with('['))
                    .filter_map(|s| match s.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => s.parse().ok().map(|x| (x, x)),
                    })
                    .collect();
                Some(ClusterEntry {
                    id: f[0].to_string(),
                    addr,
                    master_id: (f[3] != "-").then(|| f[3].to_string()),
                    failed: flags
                        .split(',')
                        .any(|x| x == "fail" || x == "fail?" || x == "noaddr"),
                    connected: f[7] == "connected",
                    slots,
                })
            })
            .collect();
        ClusterView { entries }
    }

    pub(crate) fn masters_with_slots(&self) -> impl Iterator<Item = &ClusterEntry> {
        self.entries.iter().filter(|e| !e.slots.is_empty())
    }

    /// master address -> slot ranges, for comparing views.
    fn slot_owners(&self) -> BTreeMap<String, BTreeSet<(usize, usize)>> {
        self.masters_with_slots()
            .map(|e| (e.addr.clone(), e.slots.iter().copied().collect()))
            .collect()
    }
}

pub(crate) async fn cluster_view(url: &str) -> Result<ClusterView, TopologyError> {
    let text: String = query(url, redis::cmd("CLUSTER").arg("NODES")).await?;
    Ok(ClusterView::parse(&text))
}

/// The masters that serve slots, with their slot ranges, from a `CLUSTER NODES` reply;
/// failed nodes are left out. For tools that address every master (the benchmarks sum
/// `INFO` over them).
pub fn cluster_masters(cluster_nodes: &str) -> Vec<(String, Vec<(u16, u16)>)> {
    ClusterView::parse(cluster_nodes)
        .masters_with_slots()
        .filter(|e| !e.failed)
        .map(|e| {
            let slots = e.slots.iter().map(|&(a, b)| (a as u16, b as u16)).collect();
            (e.addr.clone(), slots)
        })
        .collect()
}

/// The cluster hash slot of a key (CRC16/XMODEM of the hash tag or key, mod 16384).
pub fn key_slot(key: &[u8]) -> u16 {
    let mut k = key;
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(close) = key[open + 1..].iter().position(|&b| b == b'}')
        && close > 0
    {
        k = &key[open + 1..open + 1 + close];
    }
    let mut crc: u16 = 0;
    for &b in k {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Data-node configuration arguments common to both providers.
pub(crate) fn common_server_args(topology: Topology, options: &TopologyOptions) -> Vec<String> {
    let mut a: Vec<String> = [
        "--protected-mode",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if topology == Topology::Cluster {
        a.extend([
            "--cluster-enabled".to_string(),
            "yes".into(),
            "--cluster-config-file".into(),
            "nodes.conf".into(),
            "--cluster-node-timeout".into(),
            options.cluster_node_timeout.as_millis().to_string(),
            "--cluster-replica-validity-factor".into(),
            "0".into(),
        ]);
    }
    a
}

/// Sentinel configuration file (without `port`/`bind`/`dir`, which the providers add).
pub(crate) fn sentinel_conf(
    options: &TopologyOptions,
    master_host: &str,
    master_port: u16,
) -> String {
    let name = &options.sentinel_master_name;
    format!(
        "protected-mode no\n\
         sentinel monitor {name} {master_host} {master_port} 2\n\
         sentinel down-after-milliseconds {name} {}\n\
         sentinel failover-timeout {name} {}\n\
         sentinel parallel-syncs {name} 1\n",
        options.sentinel_down_after.as_millis(),
        options.sentinel_failover_timeout.as_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_masters_lists_serving_masters_and_their_slots() {
        let nodes = "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
                     b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 [5462->-c]\n\
                     c 127.0.0.1:7002@17002,host master - 0 0 3 connected 10923-16383\n\
                     d 127.0.0.1:7003@17003 slave a 0 0 1 connected\n\
                     e 127.0.0.1:7004@17004 master,fail - 0 0 4 connected 7\n";
        let masters = cluster_masters(nodes);
        assert_eq!(masters.len(), 3);
        assert_eq!(masters[0], ("127.0.0.1:7000".into(), vec![(0, 5460)]));
        assert_eq!(masters[1], ("127.0.0.1:7001".into(), vec![(5461, 10922)]));
        assert_eq!(masters[2].0, "127.0.0.1:7002");
    }

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    }
}
