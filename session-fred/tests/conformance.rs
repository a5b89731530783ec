//! The testkit's conformance suite, model equivalence and linearizability checks against
//! real Redis: standalone, Cluster (3 masters, 3 replicas) and Sentinel.

mod common;

use common::Fred;

session_testkit::redis_conformance_suites!(Fred);
