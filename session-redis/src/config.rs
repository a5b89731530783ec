//! Configuration: where Redis is, and how the store behaves.

use std::time::Duration;

use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo};
use session_core::redis::{Durability, Store};
use session_core::{Error, KeyLayout, Namespace, Policy, Result};
use tokio::sync::Mutex;

use crate::RedisStore;
use crate::transport::{Connection, RedisTransport, Sentinel};

/// Where the sessions live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server: `redis://[user:password@]host:port[/db]`.
    Standalone(String),
    /// Redis Cluster: seed node URLs.
    Cluster(Vec<String>),
    /// Redis Sentinel: sentinel URLs and the master's name.
    Sentinel {
        /// Sentinel URLs.
        sentinels: Vec<String>,
        /// The monitored master's name.
        master: String,
    },
}

impl Topology {
    /// Parses `redis://...` (standalone), `redis+cluster://h1:p1,h2:p2` (cluster seeds) or
    /// `redis+sentinel://h1:p1,h2:p2/master` (the `rediss` forms for TLS). Credentials in the
    /// URL apply to every node.
    pub fn from_url(url: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidInput(format!("redis URL: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        let (base, mode) = match scheme.split_once('+') {
            Some((base, mode)) => (base, Some(mode)),
            None => (scheme, None),
        };
        if base != "redis" && base != "rediss" {
            return Err(bad("scheme must be redis or rediss"));
        }
        let (auth, hosts_and_path) = match rest.rsplit_once('@') {
            Some((auth, tail)) => (format!("{auth}@"), tail),
            None => (String::new(), rest),
        };
        let (hosts, path) = match hosts_and_path.split_once('/') {
            Some((h, p)) => (h, p),
            None => (hosts_and_path, ""),
        };
        let urls: Vec<String> = hosts
            .split(',')
            .map(|h| format!("{base}://{auth}{h}"))
            .collect();
        match mode {
            None => Ok(Topology::Standalone(url.to_owned())),
            Some("cluster") => Ok(Topology::Cluster(urls)),
            Some("sentinel") if !path.is_empty() => Ok(Topology::Sentinel {
                sentinels: urls,
                master: path.to_owned(),
            }),
            Some("sentinel") => Err(bad("sentinel URLs end in /<master name>")),
            Some(other) => Err(bad(&format!("unknown mode {other:?}"))),
        }
    }
}

/// Builds a [`RedisStore`].
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    topology: Option<Topology>,
    namespace: Namespace,
    policy: Policy,
    durability: Option<Durability>,
    connect_timeout: Duration,
    response_timeout: Duration,
    /// The first invalid setting, reported by `build`.
    invalid: Option<String>,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        RedisStoreBuilder {
            topology: None,
            namespace: Namespace::default(),
            policy: Policy::default(),
            durability: None,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            invalid: None,
        }
    }
}

impl RedisStoreBuilder {
    /// The defaults: namespace `session`, the default [`Policy`], 2 s timeouts, no `WAIT`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where Redis is, as a URL (see [`Topology::from_url`]). Errors surface in `build`.
    pub fn url(mut self, url: &str) -> Self {
        match Topology::from_url(url) {
            Ok(t) => self.topology = Some(t),
            Err(e) => self.invalid = self.invalid.or(Some(e.to_string())),
        }
        self
    }

    /// Where Redis is.
    pub fn topology(mut self, topology: Topology) -> Self {
        self.topology = Some(topology);
        self
    }

    /// Key prefix (default `session`). Invalid names are reported by `build`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        match Namespace::new(namespace) {
            Ok(n) => self.namespace = n,
            Err(e) => self.invalid = self.invalid.or(Some(e.to_string())),
        }
        self
    }

    /// Limits, grace periods, touch interval.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// `WAIT`-based durability after every write (see [`Durability`]).
    pub fn durability(mut self, durability: Option<Durability>) -> Self {
        self.durability = durability;
        self
    }

    /// Time to establish a connection (default 2 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Time to wait for a reply (default 2 s). With durability on, it is raised above the
    /// `WAIT` timeout.
    pub fn response_timeout(mut self, d: Duration) -> Self {
        self.response_timeout = d;
        self
    }

    /// Connects and returns the store.
    pub async fn build(self) -> Result<RedisStore> {
        let transport = self.build_transport().await?;
        Ok(
            Store::new(transport, KeyLayout::new(self.namespace), self.policy)?
                .with_durability(self.durability),
        )
    }

    /// Connects and returns only the transport (to wrap it, say, in a `Store` of your own).
    pub async fn build_transport(&self) -> Result<RedisTransport> {
        if let Some(why) = &self.invalid {
            return Err(Error::InvalidInput(why.clone()));
        }
        let response_timeout = match self.durability {
            Some(d) => self
                .response_timeout
                .max(d.timeout + Duration::from_secs(1)),
            None => self.response_timeout,
        };
        let topology = self
            .topology
            .clone()
            .ok_or_else(|| Error::InvalidInput("no Redis URL or topology given".into()))?;
        let connection = match topology {
            Topology::Standalone(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| Error::InvalidInput(e.to_string()))?;
                // Reconnect quickly and give up soon: a request must not hang on a dead server.
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                Connection::Standalone(
                    client
                        .get_connection_manager_with_config(config)
                        .await
                        .map_err(Error::backend)?,
                )
            }
            Topology::Cluster(urls) => {
                let client = ClusterClientBuilder::new(urls)
                    .connection_timeout(self.connect_timeout)
                    .response_timeout(response_timeout)
                    // The client's own retries re-send after I/O errors, which could apply a
                    // write twice; the transport re-sends only what Redis refused to run.
                    .retries(0)
                    .build()
                    .map_err(|e| Error::InvalidInput(e.to_string()))?;
                Connection::Cluster(
                    client
                        .get_async_connection()
                        .await
                        .map_err(Error::backend)?,
                )
            }
            Topology::Sentinel { sentinels, master } => {
                let infos = sentinels
                    .iter()
                    .map(|u| {
                        u.as_str()
                            .into_connection_info()
                            .map_err(|e| Error::InvalidInput(e.to_string()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let addrs: Vec<ConnectionAddr> = infos.iter().map(|i| i.addr().clone()).collect();
                let mut builder =
                    SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)
                        .map_err(|e| Error::InvalidInput(e.to_string()))?;
                if let Some(info) = infos.first() {
                    let redis = info.redis_settings();
                    if let Some(user) = redis.username() {
                        builder = builder.set_client_to_redis_username(user);
                    }
                    if let Some(password) = redis.password() {
                        builder = builder.set_client_to_redis_password(password);
                    }
                }
                let client = builder
                    .build()
                    .map_err(|e| Error::InvalidInput(e.to_string()))?;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(response_timeout));
                Connection::Sentinel(Box::new(Sentinel {
                    client: Mutex::new(client),
                    master: Mutex::new(None),
                    config,
                }))
            }
        };
        Ok(RedisTransport {
            connection,
            retry_budget: response_timeout,
        })
    }
}
