//! [`RedisDeployment`]: the struct, its lifecycle (starting with a provider, attaching to an
//! external deployment, removal on drop), its accessors, and the per-process [`shared`]
//! deployments. Health waits and node/fault operations are in the submodules.

mod control;
mod health;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::topology::cleanup;
use crate::topology::probe::sentinel_master_addr;
use crate::topology::{
    Node, NodeHandle, NodeId, NodeState, Provider, Shape, TopologyError, TopologyOptions,
    containers, processes,
};

/// A running Redis topology. Dropping it removes everything it started.
pub struct RedisDeployment {
    topology: Shape,
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
    pub async fn start(topology: Shape) -> Result<Self, TopologyError> {
        Self::start_with(topology, Provider::from_env()?).await
    }

    /// Starts `topology` with an explicit provider and default options.
    pub async fn start_with(topology: Shape, provider: Provider) -> Result<Self, TopologyError> {
        Self::start_with_options(topology, provider, TopologyOptions::default()).await
    }

    /// Starts `topology` with an explicit provider and options, and waits until it is fully
    /// formed (cluster: state ok, all slots covered, every master has a connected replica;
    /// sentinel: all sentinels know each other and the replica).
    pub async fn start_with_options(
        topology: Shape,
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
            (topology == Shape::Sentinel).then(|| options.sentinel_master_name.clone());
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

    async fn from_urls(topology: Shape, options: TopologyOptions) -> Result<Self, TopologyError> {
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
            Shape::Standalone => (vec![var("SESSION_TESTKIT_REDIS_URL")?], None),
            Shape::Cluster => (split(var("SESSION_TESTKIT_REDIS_CLUSTER_URLS")?), None),
            Shape::Sentinel => (
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
        topology: Shape,
        urls: Vec<String>,
        sentinel_master: Option<String>,
    ) -> Result<Self, TopologyError> {
        Self::external_with_options(topology, urls, sentinel_master, TopologyOptions::default())
            .await
    }

    async fn external_with_options(
        topology: Shape,
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
            Shape::Standalone => (vec![ext(strip(&first))], vec![], first),
            Shape::Cluster => (urls.iter().map(|u| ext(strip(u))).collect(), vec![], first),
            Shape::Sentinel => {
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
    pub fn topology(&self) -> Shape {
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

    /// URLs of the sentinels (empty unless the topology is [`Shape::Sentinel`]).
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
            Shape::Standalone => self.url(),
            Shape::Cluster => format!("redis+cluster://{}", hosts(self.node_urls())),
            Shape::Sentinel => format!(
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
}

/// Started once per test binary and topology (provider from [`Provider::from_env`]), shared by
/// tests that do not inject faults. Lives until process exit, when it is removed by the exit
/// hook. Holds no runtime-bound resources, so every `#[tokio::test]` runtime can use it.
///
/// A failed start is kept too: every caller gets [`TopologyError::CannotStart`] with the first
/// start's error, at once, instead of each test of a suite retrying (and waiting) again.
pub async fn shared(topology: Shape) -> Result<Arc<RedisDeployment>, TopologyError> {
    type Cell = tokio::sync::OnceCell<Result<Arc<RedisDeployment>, Arc<TopologyError>>>;
    static CELLS: [Cell; 3] = [Cell::const_new(), Cell::const_new(), Cell::const_new()];
    let cell = &CELLS[match topology {
        Shape::Standalone => 0,
        Shape::Cluster => 1,
        Shape::Sentinel => 2,
    }];
    cell.get_or_init(|| async {
        RedisDeployment::start(topology)
            .await
            .map(Arc::new)
            .map_err(Arc::new)
    })
    .await
    .clone()
    .map_err(|reason| TopologyError::CannotStart { topology, reason })
}
