//! Fault injection against the store on a real Redis Cluster (3 masters, 3 replicas): a
//! master is killed, or paused past the node timeout, while 8 tasks increment counters in
//! 32 sessions; then the cluster heals. The store must serve again, every session must be
//! intact (version = 1 + applied increments, never more than attempted), and the number of
//! acknowledged increments that were lost is measured, with and without `WAIT 1`.

use std::sync::Arc;
use std::time::Duration;

use session_core::SessionStore;
use session_redis::{Durability, RedisStore, RedisStoreBuilder, Topology};
use session_testkit::failover::StoreWorkload;
use session_testkit::topology::{
    self, FailoverConfig, FaultKind, RedisDeployment, run_failover_workload,
};

fn config(fault: FaultKind) -> FailoverConfig {
    FailoverConfig {
        tasks: 8,
        max_ops_per_task: 4_000,
        max_duration: Duration::from_secs(60),
        fault_after: Duration::from_millis(1500),
        fault,
        outage: match fault {
            FaultKind::Kill => Duration::from_secs(1),
            FaultKind::Pause => Duration::from_secs(6),
        },
        after_heal: Duration::from_millis(1500),
        heal_timeout: Duration::from_secs(30),
        victim: None,
        op_interval: Duration::from_millis(2),
    }
}

async fn store(dep: &RedisDeployment, durability: Option<Durability>) -> Arc<RedisStore> {
    let namespace = format!("failover{}", rand_suffix());
    let store = RedisStoreBuilder::new()
        .topology(Topology::Cluster(dep.node_urls()))
        .namespace(&namespace)
        .response_timeout(Duration::from_secs(1))
        .durability(durability)
        .build()
        .await
        .expect("store");
    Arc::new(store)
}

fn rand_suffix() -> String {
    session_core::SessionToken::generate().handle().to_hex()[..10].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_survives_master_failures_and_reports_lost_writes() {
    let dep = RedisDeployment::start(topology::Topology::Cluster)
        .await
        .expect("cluster");
    let wait = Some(Durability {
        replicas: 1,
        timeout: Duration::from_millis(500),
    });
    let mut summary = Vec::new();
    for fault in [FaultKind::Kill, FaultKind::Pause] {
        for durability in [None, wait] {
            let store = store(&dep, durability).await;
            let workload = Arc::new(
                StoreWorkload::prepare(store.clone(), 32)
                    .await
                    .expect("sessions"),
            );
            let report = run_failover_workload(&dep, config(fault), workload)
                .await
                .expect("run");
            println!("{report}");
            assert!(report.is_consistent(), "{report}");
            assert!(
                report.acknowledged_after_heal > 0,
                "the store serves after healing: {report}"
            );
            assert_eq!(report.check.read_failures, 0, "{report}");
            assert_eq!(
                report.check.corrupted_keys, 0,
                "sessions intact: {}",
                report.check.details
            );
            assert!(report.check.keys_checked == 32);
            summary.push(format!(
                "{fault:?} {}: {} attempted, {} acknowledged ({} not durable), {} errors, {} acknowledged lost, {} durable lost, failover {:?}, healed {:?}",
                if durability.is_some() { "with WAIT 1" } else { "without WAIT" },
                report.attempted,
                report.acknowledged,
                report.acknowledged_not_durable,
                report.errors,
                report.check.lost_acknowledged,
                report.check.lost_durable,
                report.time_to_failover,
                report.time_to_heal,
            ));
            dep.wait_healthy(Duration::from_secs(30))
                .await
                .expect("healthy between runs");
        }
    }
    println!("\nsummary:\n{}", summary.join("\n"));
}

/// Sentinel: the master is killed; once the sentinels promote the replica, the store finds
/// the new master by itself and the session (replicated with `WAIT 1`) is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_follows_a_sentinel_failover() {
    let dep = RedisDeployment::start(topology::Topology::Sentinel)
        .await
        .expect("sentinel");
    let store = RedisStoreBuilder::new()
        .topology(Topology::Sentinel {
            sentinels: dep.sentinel_urls(),
            master: dep.sentinel_master_name().expect("master name").to_owned(),
        })
        .namespace(&format!("sentinel{}", rand_suffix()))
        .response_timeout(Duration::from_millis(500))
        .durability(Some(Durability {
            replicas: 1,
            timeout: Duration::from_secs(1),
        }))
        .build()
        .await
        .expect("store");
    let token = store
        .create(session_core::NewSession::new())
        .await
        .expect("create")
        .token;
    let inc = session_core::Delta::new().increment("n", 1);
    assert_eq!(
        store.apply(&token, &inc).await.expect("apply").increments,
        vec![1]
    );

    let master = dep.masters().await.expect("masters")[0];
    dep.kill(master).await.expect("kill");
    let killed = std::time::Instant::now();
    let mut errors = 0;
    let value = loop {
        match store.apply(&token, &inc).await {
            Ok(applied) => break applied.increments[0],
            // Without a replica to WAIT for right after the failover, the write is applied
            // but not durable: it counts.
            Err(session_core::Error::NotDurable { .. }) => break 2,
            Err(_) => errors += 1,
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no new master after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "sentinel failover: serving again after {:?} ({errors} failed calls)",
        killed.elapsed()
    );
    assert_eq!(value, 2, "the replicated session survived the failover");
    assert!(store.load(&token).await.expect("load").is_some());
}
