//! The negative control on real Redis: a whole-record write-back store (GET, change, SET,
//! as the popular session stores do) loses updates under concurrent requests, and the
//! checks report it concretely. If this test fails, the checks cannot be trusted to catch
//! a broken adapter either.

use session_core::{Policy, Result, SessionToken};
use session_testkit::conformance::{StoreFactory, check_concurrent, increment_storm};
use session_testkit::linearizability::Verdict;
use session_testkit::naive::{NaiveStore, RedisRecords};
use session_testkit::topology::{Topology, shared};

struct NaiveOnRedis {
    url: String,
}

#[async_trait::async_trait]
impl StoreFactory for NaiveOnRedis {
    type Store = NaiveStore<RedisRecords>;
    async fn make(&self, policy: Policy) -> Result<Self::Store> {
        // A random prefix per store: tests sharing the server never see each other's keys.
        let prefix = format!(
            "naive-{}",
            &SessionToken::generate().handle().to_hex()[..12]
        );
        Ok(NaiveStore::new(
            RedisRecords::connect(&self.url, prefix).await?,
            policy,
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn negative_control_is_caught_on_real_redis() {
    let redis = shared(Topology::Standalone)
        .await
        .expect("a standalone Redis");
    let factory = NaiveOnRedis { url: redis.url() };
    let report = check_concurrent(&factory, &increment_storm(8, 20), 1)
        .await
        .expect("run");
    println!("{report}");
    let lost = report
        .lost_increments
        .first()
        .expect("lost increments are reported");
    assert_eq!(lost.acknowledged, 160);
    assert!(lost.final_value < 160, "{lost:?}");
    assert!(
        matches!(report.verdict, Verdict::NotLinearizable(_)),
        "{:?}",
        report.verdict
    );
}
