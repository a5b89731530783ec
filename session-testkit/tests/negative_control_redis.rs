//! The negative control on real Redis: a whole-record write-back store (GET, change, SET,
//! as the popular session stores do) loses updates under concurrent requests, and the
//! checks report it concretely. If this test fails, the checks cannot be trusted to catch
//! a broken adapter either.

use session_core::{Policy, Result, SessionToken};
use session_testkit::conformance::StoreFactory;
use session_testkit::naive::{NaiveStore, RedisRecords};
use session_testkit::topology::{Shape, shared};

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
    let redis = shared(Shape::Standalone).await.expect("a standalone Redis");
    let factory = NaiveOnRedis { url: redis.url() };
    session_testkit::conformance::negative_control(&factory).await;
}
