//! Server configuration shared by the container and process providers: `redis-server`
//! arguments for data nodes and the sentinel configuration file.

use super::{Shape, TopologyOptions};

/// Data-node configuration arguments common to both providers.
pub(crate) fn common_server_args(topology: Shape, options: &TopologyOptions) -> Vec<String> {
    let mut a: Vec<String> = [
        "--protected-mode",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if topology == Shape::Cluster {
        a.extend([
            "--cluster-enabled".to_string(),
            "yes".into(),
            "--cluster-config-file".into(),
            "nodes.conf".into(),
            "--cluster-node-timeout".into(),
            options.cluster_node_timeout.as_millis().to_string(),
            "--cluster-replica-validity-factor".into(),
            "0".into(),
        ]);
    }
    a
}

/// Sentinel configuration file (without `port`/`bind`/`dir`, which the providers add).
pub(crate) fn sentinel_conf(
    options: &TopologyOptions,
    master_host: &str,
    master_port: u16,
) -> String {
    let name = &options.sentinel_master_name;
    format!(
        "protected-mode no\n\
         sentinel monitor {name} {master_host} {master_port} 2\n\
         sentinel down-after-milliseconds {name} {}\n\
         sentinel failover-timeout {name} {}\n\
         sentinel parallel-syncs {name} 1\n",
        options.sentinel_down_after.as_millis(),
        options.sentinel_failover_timeout.as_millis(),
    )
}
