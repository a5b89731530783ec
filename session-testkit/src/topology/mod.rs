//! Real Redis topologies on demand: standalone, cluster (3 masters + 3 replicas) and sentinel
//! (1 master, 1 replica, 3 sentinels), with fault controls (kill, stop/start, pause/resume).
//!
//! # Providers
//! The provider is chosen with the environment variable `SESSION_TESTKIT_REDIS`:
//! * `containers`: Docker containers started with testcontainers, image from `REDIS_TEST_IMAGE`
//!   (`name:tag`, default `redis:7.4`). Every deployment gets its own user-defined Docker
//!   network, and the host talks to the container IPs directly (Linux).
//! * `processes`: `redis-server` (and `redis-cli` for cluster creation) from `PATH`, or
//!   `valkey-server` and `valkey-cli`, on free loopback ports, each node in its own temporary
//!   directory.
//! * `url`: an external deployment: `SESSION_TESTKIT_REDIS_URL` (standalone),
//!   `SESSION_TESTKIT_REDIS_CLUSTER_URLS` (comma-separated seeds), or
//!   `SESSION_TESTKIT_REDIS_SENTINEL_URLS` + `SESSION_TESTKIT_REDIS_SENTINEL_MASTER`. Fault
//!   controls return [`TopologyError::Unsupported`].
//! * `auto`, or unset: containers if Docker answers and the image is present or can be pulled,
//!   else processes if `redis-server` or `valkey-server` is on `PATH`, else an error naming
//!   the install command that would add Redis. [`ProviderChoice`] says which was taken and
//!   why; an explicit choice that cannot be met fails with one line.
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
mod cluster;
mod config;
mod containers;
mod deployment;
pub mod faults;
mod probe;
mod processes;
mod provider;

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

pub use cluster::{cluster_masters, key_slot};
pub use deployment::{RedisDeployment, shared};
pub use faults::{
    FailoverConfig, FailoverReport, FailoverWorkload, FaultKind, IncrWorkload, OpOutcome,
    WaitConfig, WorkloadCheck, run_failover_workload, run_raw_incr_failover,
};
pub use processes::SERVER_VARIABLE;
pub use provider::{Provider, ProviderChoice, ProviderRequest};

// Crate-internal items the providers (`containers`, `processes`) use through `super::`.
pub(crate) use config::{common_server_args, sentinel_conf};
pub(crate) use deployment::Started;
pub(crate) use probe::{poll_until, query};

/// The shape of a Redis deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// One node.
    Standalone,
    /// Redis Cluster: 3 masters with 1 replica each.
    Cluster,
    /// One master, one replica and three sentinels (quorum 2).
    Sentinel,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Standalone => "standalone",
            Shape::Cluster => "cluster",
            Shape::Sentinel => "sentinel",
        })
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
        topology: Shape,
    },
    /// Invalid or missing configuration (environment variables).
    #[error("configuration: {0}")]
    Config(String),
    /// `auto` found no usable provider on this machine: why each was passed over, and the
    /// install command that would add Redis.
    #[error("no Redis provider available: {0}")]
    NoProvider(String),
    /// An explicitly requested provider cannot be used here (one line, for the user who asked).
    #[error("the {provider} provider was requested but cannot be used: {reason}")]
    ProviderUnavailable {
        /// The requested provider.
        provider: Provider,
        /// Why it cannot be used.
        reason: String,
    },
    /// A [`shared`] deployment could not be started. The first failure is kept and handed to
    /// every later caller, so all tests of a suite report the same line instead of each
    /// retrying a start that already failed.
    #[error("cannot start Redis ({topology}): {reason}")]
    CannotStart {
        /// The topology that was to be started.
        topology: Shape,
        /// The first start's error.
        reason: std::sync::Arc<TopologyError>,
    },
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
