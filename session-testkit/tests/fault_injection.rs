//! The fault-injection machinery proven with a raw `INCR` workload on a real cluster (provider
//! from `SESSION_TESTKIT_REDIS`, auto-detected when unset): a master is killed (and restarted),
//! or paused past the node timeout (and resumed), with and without `WAIT 1`.
//!
//! Lost-write numbers are measured and printed, not asserted to be zero.

use std::time::Duration;

use redis::AsyncCommands;
use redis::cluster::ClusterClientBuilder;
use session_testkit::topology::{
    FailoverConfig, FailoverReport, FaultKind, RedisDeployment, Shape, WaitConfig,
    run_raw_incr_failover,
};

const KEYS: usize = 64;

async fn assert_serves(dep: &RedisDeployment) {
    let client = ClusterClientBuilder::new(dep.node_urls())
        .response_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    for i in 0..50 {
        let k = format!("after-heal:{i}");
        let _: () = c.set(&k, i).await.unwrap();
        assert_eq!(c.get::<_, i32>(&k).await.unwrap(), i);
    }
}

fn check(report: &FailoverReport) {
    println!("{report}");
    if !report.check.details.is_empty() {
        println!(
            "  first differences:\n{}",
            report
                .check
                .details
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(report.is_consistent(), "inconsistent counts: {report:?}");
    assert!(
        report.attempted > 0 && report.acknowledged > 0,
        "{report:?}"
    );
    assert!(
        report.acknowledged_after_heal > 0,
        "the cluster must serve the workload after healing: {report:?}"
    );
    assert_eq!(report.check.keys_checked, KEYS);
    assert_eq!(
        report.check.read_failures, 0,
        "every key must be readable: {report:?}"
    );
    assert_eq!(
        report.check.corrupted_keys, 0,
        "no value may exceed what could have been applied: {report:?}"
    );
    assert!(report.check.lost_durable <= report.check.lost_acknowledged);
    assert!(
        report.time_to_failover.is_some(),
        "a replica must have been promoted: {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_failover_under_incr_load() {
    let dep = RedisDeployment::start(Shape::Cluster).await.unwrap();
    eprintln!("cluster via {:?}", dep.provider());
    let wait = WaitConfig {
        replicas: 1,
        timeout: Duration::from_millis(500),
    };
    for fault in [FaultKind::Kill, FaultKind::Pause] {
        for w in [None, Some(wait)] {
            dep.wait_fully_replicated(Duration::from_secs(30))
                .await
                .unwrap();
            dep.flush().await.unwrap();
            let report = run_raw_incr_failover(&dep, FailoverConfig::for_fault(fault), KEYS, w)
                .await
                .unwrap();
            check(&report);
            if w.is_some() {
                // With WAIT, acknowledged writes that a replica confirmed should not be lost
                // when that replica is promoted; not asserted (measured), see the report.
                println!("  durable-but-lost: {}", report.check.lost_durable);
            }
            assert_serves(&dep).await;
        }
    }
}
