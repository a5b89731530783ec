//! The testkit's conformance suite, model equivalence and linearizability checks against
//! real Redis: standalone, Cluster (3 masters, 3 replicas) and Sentinel.

use session_core::redis::{Command, Reply, Transport};
use session_core::{Policy, Result, SessionHandle, SessionToken};
use session_redis::{RedisStore, RedisStoreBuilder, Topology};
use session_testkit::conformance::{Capabilities, Foreign, StoreFactory};
use session_testkit::topology::{self, RedisDeployment};

struct Factory(topology::Topology);

async fn deployment(t: topology::Topology) -> std::sync::Arc<RedisDeployment> {
    topology::shared(t).await.expect("a Redis deployment")
}

/// The store's topology for a deployment.
fn topology_of(dep: &RedisDeployment) -> Topology {
    match dep.topology() {
        topology::Topology::Standalone => Topology::Standalone(dep.url()),
        topology::Topology::Cluster => Topology::Cluster(dep.node_urls()),
        topology::Topology::Sentinel => Topology::Sentinel {
            sentinels: dep.sentinel_urls(),
            master: dep
                .sentinel_master_name()
                .expect("a master name")
                .to_owned(),
        },
    }
}

fn random_namespace() -> String {
    format!("t{}", &SessionToken::generate().handle().to_hex()[..16])
}

fn planted(kind: Foreign) -> Vec<Vec<u8>> {
    match kind {
        Foreign::WrongType => vec![b"a foreign string".to_vec()],
        Foreign::GarbledField => [
            "_v",
            "not a number",
            "_c",
            "1",
            "_a",
            "1",
            "_i",
            "86400000",
            "_z",
            "0",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
    }
}

#[async_trait::async_trait]
impl StoreFactory for Factory {
    type Store = RedisStore;

    async fn make(&self, policy: Policy) -> Result<RedisStore> {
        let dep = deployment(self.0).await;
        RedisStoreBuilder::new()
            .topology(topology_of(&dep))
            .namespace(&random_namespace())
            .policy(policy)
            .build()
            .await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            principal_index: true,
            foreign_data: true,
        }
    }

    async fn plant_foreign(
        &self,
        store: &RedisStore,
        handle: &SessionHandle,
        kind: Foreign,
    ) -> Result<()> {
        let key = store.layout().session_key(handle);
        let mut args = vec![key.clone().into_bytes()];
        args.extend(planted(kind));
        let command = match kind {
            Foreign::WrongType => Command::Plain("SET", args),
            Foreign::GarbledField => Command::Plain("HSET", args),
        };
        store.transport().batch(&key, &[command], true).await?;
        Ok(())
    }

    async fn foreign_intact(
        &self,
        store: &RedisStore,
        handle: &SessionHandle,
        kind: Foreign,
    ) -> Result<bool> {
        let key = store.layout().session_key(handle);
        let read = match kind {
            Foreign::WrongType => Command::Plain("GET", vec![key.clone().into_bytes()]),
            Foreign::GarbledField => Command::Plain("HGETALL", vec![key.clone().into_bytes()]),
        };
        let reply = store.transport().batch(&key, &[read], false).await?.pop();
        Ok(match (kind, reply) {
            (Foreign::WrongType, Some(Reply::Bytes(b))) => b == planted(kind)[0],
            (Foreign::GarbledField, Some(Reply::Array(items))) => {
                let mut got: Vec<Vec<u8>> = items
                    .into_iter()
                    .filter_map(|r| match r {
                        Reply::Bytes(b) => Some(b),
                        _ => None,
                    })
                    .collect();
                let mut want = planted(kind);
                // Compare as field/value pairs, whatever order HGETALL used.
                let pairs = |v: &mut Vec<Vec<u8>>| {
                    let mut p: Vec<(Vec<u8>, Vec<u8>)> =
                        v.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
                    p.sort();
                    p
                };
                pairs(&mut got) == pairs(&mut want)
            }
            _ => false,
        })
    }
}

mod standalone {
    use super::*;
    session_testkit::conformance_suite!(Factory(topology::Topology::Standalone));
}

mod cluster {
    use super::*;
    session_testkit::conformance_suite!(Factory(topology::Topology::Cluster));
}

mod sentinel {
    use super::*;
    session_testkit::conformance_suite!(Factory(topology::Topology::Sentinel));
}
