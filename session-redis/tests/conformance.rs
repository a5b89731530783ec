//! The testkit's conformance suite, model equivalence and linearizability checks against
//! real Redis: standalone, Cluster (3 masters, 3 replicas) and Sentinel.

mod common;

use common::RedisRs;
use session_testkit::redis_factory::{Deployment, RedisFactory};
use session_testkit::topology;

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
