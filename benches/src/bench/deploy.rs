//! The Redis under test: started by the testkit (standalone, or a 3+3 cluster) or given by
//! URL, plus direct connections to every master for what the subjects must not do
//! themselves: reading Redis' counters, `MEMORY USAGE`, and removing the benchmark's keys
//! (keys are routed to their master by hash slot here, so no cluster client is needed).

use std::collections::BTreeMap;

use redis::aio::MultiplexedConnection;
use session_core::redis::Topology;
use session_testkit::topology::{Provider, RedisDeployment, Shape, cluster_masters, key_slot};

use super::error::{BenchError, Result};
use super::metrics::{self, Snapshot};

/// Keys deleted per pipeline.
const DELETE_CHUNK: usize = 500;

struct Master {
    addr: String,
    connection: MultiplexedConnection,
    /// Slot ranges it serves (standalone: all).
    slots: Vec<(u16, u16)>,
}

/// A Redis deployment the benchmark runs against.
pub struct Target {
    /// `standalone` or `cluster`.
    pub label: &'static str,
    /// Where it comes from (provider, or the URL given).
    pub source: String,
    /// The URL the stores are built from (`redis://…` or `redis+cluster://…`).
    pub url: String,
    masters: Vec<Master>,
    /// Keeps a started deployment alive; dropping it removes it.
    _deployment: Option<RedisDeployment>,
}

fn deployment_error(e: impl std::fmt::Display) -> BenchError {
    BenchError::Deployment(e.to_string())
}

/// `redis://[auth@]addr` with the credentials of `seed`.
fn node_url(seed: &str, addr: &str) -> String {
    let (scheme, rest) = seed.split_once("://").unwrap_or(("redis", seed));
    let auth = rest.rsplit_once('@').map(|(a, _)| a);
    match auth {
        Some(auth) => format!("{scheme}://{auth}@{addr}"),
        None => format!("{scheme}://{addr}"),
    }
}

async fn connect(url: &str) -> Result<MultiplexedConnection> {
    Ok(redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?)
}

impl Target {
    /// Starts `topology` (standalone or cluster) with `provider`.
    pub async fn start(topology: Shape, provider: Provider) -> Result<Target> {
        let deployment = RedisDeployment::start_with(topology, provider)
            .await
            .map_err(deployment_error)?;
        let mut target = Target::connect(&deployment.store_url()).await?;
        target.source = match provider {
            Provider::Processes => "local redis-server processes (testkit)".into(),
            Provider::Containers => "Docker containers (testkit)".into(),
            Provider::Url => "URLs from the environment (testkit)".into(),
        };
        target._deployment = Some(deployment);
        Ok(target)
    }

    /// An existing deployment at `url` (`redis://…` or `redis+cluster://seed1,seed2`).
    pub async fn connect(url: &str) -> Result<Target> {
        let (label, masters) = match Topology::from_url(url)? {
            Topology::Standalone(u) => (
                "standalone",
                vec![Master {
                    addr: u.clone(),
                    connection: connect(&u).await?,
                    slots: vec![(0, 16383)],
                }],
            ),
            Topology::Cluster(seeds) => {
                let seed = seeds
                    .first()
                    .ok_or_else(|| BenchError::Invalid("no cluster seed".into()))?;
                let mut connection = connect(seed).await?;
                let nodes: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async(&mut connection)
                    .await?;
                let mut masters = Vec::new();
                for (addr, slots) in cluster_masters(&nodes) {
                    masters.push(Master {
                        connection: connect(&node_url(seed, &addr)).await?,
                        addr,
                        slots,
                    });
                }
                if masters.is_empty() {
                    return Err(BenchError::Deployment(format!("no master in {nodes:?}")));
                }
                ("cluster", masters)
            }
            Topology::Sentinel { .. } => {
                return Err(BenchError::Invalid(
                    "sentinel is not benchmarked: give a standalone or cluster URL".into(),
                ));
            }
        };
        Ok(Target {
            label,
            source: format!("existing deployment ({} master(s))", masters.len()),
            url: url.to_owned(),
            masters,
            _deployment: None,
        })
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        self.label == "cluster"
    }

    /// The addresses of the masters.
    pub fn masters(&self) -> Vec<String> {
        self.masters.iter().map(|m| m.addr.clone()).collect()
    }

    fn master_for(&self, key: &str) -> &Master {
        let slot = key_slot(key.as_bytes());
        self.masters
            .iter()
            .find(|m| m.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .unwrap_or(&self.masters[0])
    }

    /// `MEMORY USAGE key SAMPLES 0` (every field counted).
    pub async fn memory_usage(&self, key: &str) -> Result<u64> {
        let mut c = self.master_for(key).connection.clone();
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut c)
            .await?;
        bytes.ok_or_else(|| BenchError::Missing(key.to_owned()))
    }

    /// Deletes `keys`.
    pub async fn delete(&self, keys: &[String]) -> Result<()> {
        let mut by_master: BTreeMap<usize, Vec<&String>> = BTreeMap::new();
        for key in keys {
            let slot = key_slot(key.as_bytes());
            let index = self
                .masters
                .iter()
                .position(|m| m.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
                .unwrap_or(0);
            by_master.entry(index).or_default().push(key);
        }
        for (index, keys) in by_master {
            let mut c = self.masters[index].connection.clone();
            for chunk in keys.chunks(DELETE_CHUNK) {
                let mut pipe = redis::pipe();
                for key in chunk {
                    pipe.del(key.as_str()).ignore();
                }
                pipe.query_async::<()>(&mut c).await?;
            }
        }
        Ok(())
    }

    /// Deletes every key starting with `prefix` (the run's own namespaces); returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        let mut removed = 0;
        for master in &self.masters {
            let mut c = master.connection.clone();
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{prefix}*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await?;
                if !keys.is_empty() {
                    let mut pipe = redis::pipe();
                    for key in &keys {
                        pipe.del(key).ignore();
                    }
                    pipe.query_async::<()>(&mut c).await?;
                    removed += keys.len();
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(removed)
    }

    /// `CONFIG RESETSTAT` on every master (zeroes `commandstats`).
    pub async fn reset_stats(&self) -> Result<()> {
        for master in &self.masters {
            let mut c = master.connection.clone();
            redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query_async::<()>(&mut c)
                .await?;
        }
        Ok(())
    }

    /// CPU and command counters, summed over the masters.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        for master in &self.masters {
            let mut c = master.connection.clone();
            let info: String = redis::cmd("INFO")
                .arg("cpu")
                .arg("commandstats")
                .query_async(&mut c)
                .await?;
            snapshot.add_info(&info);
        }
        Ok(snapshot)
    }

    /// The server version (of the first master).
    pub async fn redis_version(&self) -> Result<String> {
        let mut c = self.masters[0].connection.clone();
        let info: String = redis::cmd("INFO").arg("server").query_async(&mut c).await?;
        Ok(metrics::text_field(&info, "redis_version")
            .unwrap_or("unknown")
            .to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_keep_the_credentials() {
        assert_eq!(node_url("redis://u:p@h:1", "x:2"), "redis://u:p@x:2");
        assert_eq!(node_url("redis://h:1", "x:2"), "redis://x:2");
    }
}
