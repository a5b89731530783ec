//! Bounded waits until a [`RedisDeployment`] is healthy or fully replicated, with the
//! per-topology checks (cluster slot coverage and agreement, sentinel agreement and roles).

use std::time::Duration;

use redis::{FromRedisValue, Value};

use crate::topology::cluster::cluster_view;
use crate::topology::probe::{ping, poll_until, query, sentinel_master_addr};
use crate::topology::{Node, NodeState, Shape, TopologyError};

use super::RedisDeployment;

impl RedisDeployment {
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

    pub(super) async fn wait_formed(&self, timeout: Duration) -> Result<(), TopologyError> {
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
                Shape::Standalone => ping(&self.nodes[0].url()).await.map_err(|e| e.to_string()),
                Shape::Cluster => self.check_cluster(full).await,
                Shape::Sentinel => self.check_sentinel(full).await,
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
}
