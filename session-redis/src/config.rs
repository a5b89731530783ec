//! Configuration: where Redis is, and how the store behaves.

use std::time::Duration;

use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo};
use session_core::redis::{Settings, Topology};
use session_core::{Error, Result};
use tokio::sync::Mutex;

use crate::RedisStore;
use crate::transport::{Connection, RedisTransport, Sentinel};

/// Builds a [`RedisStore`].
#[derive(Debug, Clone, Default)]
pub struct RedisStoreBuilder {
    settings: Settings,
}

impl RedisStoreBuilder {
    /// The defaults: namespace `session`, the default [`Policy`](session_core::Policy), 2 s timeouts, no `WAIT`.
    pub fn new() -> Self {
        Self::default()
    }

    session_core::redis_builder_settings!();

    /// Connects and returns the store.
    pub async fn build(self) -> Result<RedisStore> {
        let transport = self.build_transport().await?;
        self.settings.into_store(transport)
    }

    /// Connects and returns only the transport (to wrap it, say, in a `Store` of your own).
    pub async fn build_transport(&self) -> Result<RedisTransport> {
        let topology = self.settings.topology()?.clone();
        let response_timeout = self.settings.effective_response_timeout();
        let connect_timeout = self.settings.connect_timeout;
        let connection = match topology {
            Topology::Standalone(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| Error::InvalidInput(e.to_string()))?;
                // Reconnect quickly and give up soon: a request must not hang on a dead server.
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(0)
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
                    .connection_timeout(connect_timeout)
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
                    .set_connection_timeout(Some(connect_timeout))
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
