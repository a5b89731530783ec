//! Operations on a running [`RedisDeployment`]: finding the current masters, the fault
//! controls on single nodes (kill, stop, start, pause, resume) and flushing all data.

use std::time::Duration;

use crate::topology::cluster::{ClusterView, cluster_view};
use crate::topology::probe::{query, sentinel_master_addr, wait_ping};
use crate::topology::{NodeHandle, NodeId, NodeState, Provider, Shape, TopologyError};

use super::RedisDeployment;

impl RedisDeployment {
    /// The current masters: standalone the node; cluster the masters serving slots (from
    /// `CLUSTER NODES` of a reachable node); sentinel the master the sentinels report.
    pub async fn masters(&self) -> Result<Vec<NodeId>, TopologyError> {
        match self.topology {
            Shape::Standalone => Ok(vec![NodeId(0)]),
            Shape::Cluster => {
                let mut out: Vec<NodeId> = self
                    .running_cluster_view()
                    .await?
                    .masters_with_slots()
                    .filter_map(|e| self.node_by_addr(&e.addr))
                    .collect();
                out.sort();
                Ok(out)
            }
            Shape::Sentinel => {
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

    /// The cluster as the first running node that answers sees it.
    async fn running_cluster_view(&self) -> Result<ClusterView, TopologyError> {
        let mut last = None;
        for n in self
            .nodes
            .iter()
            .filter(|n| n.state() == NodeState::Running)
        {
            match cluster_view(&n.url()).await {
                Ok(view) => return Ok(view),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| TopologyError::Config("no running cluster node".into())))
    }

    /// Freezes a node (SIGSTOP / `docker pause`): its sockets stay open but it does not answer.
    pub async fn pause(&self, node: NodeId) -> Result<(), TopologyError> {
        self.set_frozen(node, true).await
    }

    /// Resumes a paused node (SIGCONT / `docker unpause`).
    pub async fn resume(&self, node: NodeId) -> Result<(), TopologyError> {
        self.set_frozen(node, false).await
    }

    /// Pauses (`frozen`) a running node or resumes a paused one.
    async fn set_frozen(&self, node: NodeId, frozen: bool) -> Result<(), TopologyError> {
        let (from, to, operation) = if frozen {
            (NodeState::Running, NodeState::Paused, "pause")
        } else {
            (NodeState::Paused, NodeState::Running, "resume")
        };
        let n = self.node(node)?;
        if n.state() != from {
            return Err(TopologyError::InvalidState {
                node,
                state: n.state(),
                operation,
            });
        }
        match &n.handle {
            NodeHandle::Container(c) if frozen => c.pause().await?,
            NodeHandle::Container(c) => c.unpause().await?,
            NodeHandle::Process(p) => p.signal(if frozen { "-STOP" } else { "-CONT" }).await?,
            NodeHandle::External => return Err(self.unsupported(operation)),
        }
        n.set_state(to);
        Ok(())
    }

    /// `FLUSHALL` on every current master.
    pub async fn flush(&self) -> Result<(), TopologyError> {
        let urls: Vec<String> = match (self.topology, self.provider) {
            (Shape::Sentinel, _) => {
                let name = self.master_name.clone().unwrap_or_default();
                vec![format!(
                    "redis://{}",
                    sentinel_master_addr(&self.sentinels[0].url(), &name).await?
                )]
            }
            (Shape::Cluster, _) => self
                .running_cluster_view()
                .await?
                .masters_with_slots()
                .map(|e| format!("redis://{}", e.addr))
                .collect(),
            (Shape::Standalone, _) => vec![self.nodes[0].url()],
        };
        for u in urls {
            let _: () = query(&u, &redis::cmd("FLUSHALL")).await?;
        }
        Ok(())
    }
}
