//! Redis Cluster inspection: parsing `CLUSTER NODES` into a [`ClusterView`], and the public
//! helpers [`cluster_masters`] and [`key_slot`] for tools that address masters or slots.

use std::collections::{BTreeMap, BTreeSet};

use super::TopologyError;
use super::probe::query;

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub(crate) struct ClusterEntry {
    pub(crate) id: String,
    pub(crate) addr: String,
    pub(crate) master_id: Option<String>,
    pub(crate) failed: bool,
    pub(crate) connected: bool,
    pub(crate) slots: Vec<(usize, usize)>,
}

/// A parsed `CLUSTER NODES` reply.
#[derive(Debug, Clone)]
pub(crate) struct ClusterView {
    pub(crate) entries: Vec<ClusterEntry>,
}

impl ClusterView {
    pub(crate) fn parse(text: &str) -> ClusterView {
        let entries = text
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 8 {
                    return None;
                }
                let addr = f[1]
                    .split('@')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .to_string();
                let flags = f[2];
                let slots = f[8..]
                    .iter()
                    .filter(|s| !s.starts_with('['))
                    .filter_map(|s| match s.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => s.parse().ok().map(|x| (x, x)),
                    })
                    .collect();
                Some(ClusterEntry {
                    id: f[0].to_string(),
                    addr,
                    master_id: (f[3] != "-").then(|| f[3].to_string()),
                    failed: flags
                        .split(',')
                        .any(|x| x == "fail" || x == "fail?" || x == "noaddr"),
                    connected: f[7] == "connected",
                    slots,
                })
            })
            .collect();
        ClusterView { entries }
    }

    pub(crate) fn masters_with_slots(&self) -> impl Iterator<Item = &ClusterEntry> {
        self.entries.iter().filter(|e| !e.slots.is_empty())
    }

    /// master address -> slot ranges, for comparing views.
    pub(super) fn slot_owners(&self) -> BTreeMap<String, BTreeSet<(usize, usize)>> {
        self.masters_with_slots()
            .map(|e| (e.addr.clone(), e.slots.iter().copied().collect()))
            .collect()
    }
}

pub(crate) async fn cluster_view(url: &str) -> Result<ClusterView, TopologyError> {
    let text: String = query(url, redis::cmd("CLUSTER").arg("NODES")).await?;
    Ok(ClusterView::parse(&text))
}

/// The masters that serve slots, with their slot ranges, from a `CLUSTER NODES` reply;
/// failed nodes are left out. For tools that address every master (the benchmarks sum
/// `INFO` over them).
pub fn cluster_masters(cluster_nodes: &str) -> Vec<(String, Vec<(u16, u16)>)> {
    ClusterView::parse(cluster_nodes)
        .masters_with_slots()
        .filter(|e| !e.failed)
        .map(|e| {
            let slots = e.slots.iter().map(|&(a, b)| (a as u16, b as u16)).collect();
            (e.addr.clone(), slots)
        })
        .collect()
}

/// The cluster hash slot of a key (CRC16/XMODEM of the hash tag or key, mod 16384), by
/// session-core's rule, the one the stores route by.
pub fn key_slot(key: &[u8]) -> u16 {
    session_core::redis::layout::key_slot(session_core::redis::layout::hashed_part(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_masters_lists_serving_masters_and_their_slots() {
        let nodes = "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
                     b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 [5462->-c]\n\
                     c 127.0.0.1:7002@17002,host master - 0 0 3 connected 10923-16383\n\
                     d 127.0.0.1:7003@17003 slave a 0 0 1 connected\n\
                     e 127.0.0.1:7004@17004 master,fail - 0 0 4 connected 7\n";
        let masters = cluster_masters(nodes);
        assert_eq!(masters.len(), 3);
        assert_eq!(masters[0], ("127.0.0.1:7000".into(), vec![(0, 5460)]));
        assert_eq!(masters[1], ("127.0.0.1:7001".into(), vec![(5461, 10922)]));
        assert_eq!(masters[2].0, "127.0.0.1:7002");
    }

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    }
}
