//! Configuration: where Redis is, and how the store behaves.

use fred::prelude::{Builder, ClientLike, Config, ReconnectPolicy, ServerConfig};
use fred::types::config::{ClusterDiscoveryPolicy, ReconnectError};
use session_core::redis::{NodeUrl, Settings, Topology};
use session_core::{Error, Result};

use crate::FredStore;
use crate::transport::FredTransport;

fn bad(why: &str) -> Error {
    Error::InvalidInput(format!("redis URL: {why}"))
}

/// The fred configuration for a topology.
pub fn fred_config(topology: &Topology) -> Result<Config> {
    let invalid = |e: fred::error::Error| Error::InvalidInput(format!("redis URL: {e}"));
    match topology {
        Topology::Standalone(url) => {
            NodeUrl::parse(url)?;
            Config::from_url_centralized(url).map_err(invalid)
        }
        Topology::Cluster(urls) => {
            let seeds = urls
                .iter()
                .map(|u| NodeUrl::parse(u))
                .collect::<Result<Vec<_>>>()?;
            let first = seeds.first().ok_or_else(|| bad("no cluster seed"))?;
            let mut url = format!("{}-cluster://{}{}", first.scheme, first.auth, first.host);
            for (i, seed) in seeds.iter().enumerate().skip(1) {
                url.push(if i == 1 { '?' } else { '&' });
                url.push_str("node=");
                url.push_str(seed.host);
            }
            let mut config = Config::from_url_clustered(&url).map_err(invalid)?;
            // After a failover, find the cluster through every node seen so far, not only
            // the seeds.
            config
                .server
                .set_cluster_discovery_policy(ClusterDiscoveryPolicy::UseCache)
                .map_err(invalid)?;
            Ok(config)
        }
        Topology::Sentinel { sentinels, master } => {
            let nodes = sentinels
                .iter()
                .map(|u| NodeUrl::parse(u))
                .collect::<Result<Vec<_>>>()?;
            let first = nodes.first().ok_or_else(|| bad("no sentinel"))?;
            if master.is_empty() || master.contains(['&', '?', '#', '/']) {
                return Err(bad("invalid master name"));
            }
            let mut url = format!(
                "{}-sentinel://{}{}{}?sentinelServiceName={master}",
                first.scheme, first.auth, first.host, first.path
            );
            for node in &nodes[1..] {
                url.push_str("&node=");
                url.push_str(node.host);
            }
            Config::from_url_sentinel(&url).map_err(invalid)
        }
    }
}

/// Builds a [`FredStore`].
#[derive(Debug, Clone)]
pub struct FredStoreBuilder {
    settings: Settings,
    fred_config: Option<Config>,
    pool_size: usize,
    reconnect: ReconnectPolicy,
}

impl Default for FredStoreBuilder {
    fn default() -> Self {
        FredStoreBuilder {
            settings: Settings::default(),
            fred_config: None,
            pool_size: 1,
            reconnect: ReconnectPolicy::new_exponential(0, 50, 1_000, 2),
        }
    }
}

impl FredStoreBuilder {
    /// The defaults: namespace `session`, the default [`Policy`](session_core::Policy), 2 s timeouts, no `WAIT`,
    /// one client, reconnecting forever with exponential backoff from 50 ms to 1 s.
    pub fn new() -> Self {
        Self::default()
    }

    session_core::redis_builder_settings!();

    /// Where Redis is and how to reach it, as a fred [`Config`] (any of fred's URL forms via
    /// [`Config::from_url`], TLS settings, credential providers). Takes precedence over
    /// [`url`](Self::url) and [`topology`](Self::topology).
    pub fn fred_config(mut self, config: Config) -> Self {
        self.fred_config = Some(config);
        self
    }

    /// Number of fred clients (each with its own connection to every node) that batches are
    /// spread over, round-robin (default 1; fred pipelines concurrent tasks' commands on each
    /// connection). A batch always stays on one client. Zero is reported by `build`.
    pub fn pool_size(mut self, clients: usize) -> Self {
        if clients == 0 {
            self.settings.invalid("pool size must be at least 1");
        }
        self.pool_size = clients.max(1);
        self
    }

    /// How fred reconnects after a lost connection (default: forever, exponential backoff
    /// from 50 ms to 1 s). Commands in flight when a connection drops are never re-sent,
    /// whatever the policy.
    pub fn reconnect_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Connects and returns the store.
    pub async fn build(self) -> Result<FredStore> {
        let transport = self.build_transport().await?;
        self.settings.into_store(transport)
    }

    /// Connects and returns only the transport (to wrap it, say, in a `Store` of your own).
    pub async fn build_transport(&self) -> Result<FredTransport> {
        self.settings.check()?;
        let response_timeout = self.settings.effective_response_timeout();
        let mut config = match &self.fred_config {
            Some(config) => config.clone(),
            None => fred_config(self.settings.topology()?)?,
        };
        config.fail_fast = true;
        let sentinel = matches!(config.server, ServerConfig::Sentinel { .. });
        let connect_timeout = self.settings.connect_timeout;
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = connect_timeout;
                c.internal_command_timeout = response_timeout.max(connect_timeout);
                // Write every command at most once: fred would otherwise re-send commands
                // that were in flight when a connection dropped, which could apply a write
                // twice. The transport re-sends only batches Redis refused to run.
                c.max_command_attempts = 1;
                // A master demoted by a failover answers READONLY: reconnect, which makes
                // fred find the current master (sentinels) or refresh the slot map.
                c.reconnect_errors = vec![ReconnectError::ReadOnly];
                if sentinel {
                    c.reconnect_errors.push(ReconnectError::Loading);
                }
            })
            .with_performance_config(|p| {
                p.default_command_timeout = response_timeout;
            })
            .set_policy(self.reconnect.clone());
        let pool = builder
            .build_pool(self.pool_size)
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let budget = connect_timeout + response_timeout;
        match tokio::time::timeout(budget, pool.init()).await {
            Ok(Ok(_handle)) => {}
            Ok(Err(e)) => {
                let _ = pool.quit().await;
                return Err(Error::backend(e));
            }
            Err(_) => {
                let _ = pool.quit().await;
                return Err(Error::backend(format!(
                    "could not connect to Redis within {budget:?}"
                )));
            }
        }
        Ok(FredTransport::new(pool, response_timeout))
    }
}
