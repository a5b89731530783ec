//! The testkit's conformance suite, model equivalence and linearizability checks against
//! real Redis: standalone, Cluster (3 masters, 3 replicas) and Sentinel.

use session_core::redis::Store;
use session_core::{Policy, Result};
use session_redis::{RedisStoreBuilder, RedisTransport};
use session_testkit::redis_factory::{Connect, Deployment, RedisFactory};
use session_testkit::topology::{self, RedisDeployment};

/// Connects the redis-rs store to a test deployment.
struct RedisRs;

#[async_trait::async_trait]
impl Connect for RedisRs {
    type Transport = RedisTransport;
    async fn connect(
        &self,
        dep: &RedisDeployment,
        namespace: &str,
        policy: Policy,
    ) -> Result<Store<RedisTransport>> {
        RedisStoreBuilder::new()
            .url(&dep.store_url())
            .namespace(namespace)
            .policy(policy)
            .build()
            .await
    }
}

fn factory(t: topology::Topology) -> RedisFactory<RedisRs> {
    RedisFactory {
        deployment: Deployment::Shared(t),
        connect: RedisRs,
    }
}

mod standalone {
    use super::*;
    session_testkit::conformance_suite!(factory(topology::Topology::Standalone));
}

mod cluster {
    use super::*;
    session_testkit::conformance_suite!(factory(topology::Topology::Cluster));
}

mod sentinel {
    use super::*;
    session_testkit::conformance_suite!(factory(topology::Topology::Sentinel));
}
