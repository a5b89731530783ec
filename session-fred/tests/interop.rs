//! Interoperability with the redis-rs adapter (`session-redis`): both run the shared Redis
//! code, so a session written through one is read and updated correctly through the other,
//! and a store that alternates every call between the two passes the conformance suite,
//! model equivalence and the linearizability checks, on standalone Redis and on Cluster.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use session_core::{
    Applied, Created, Delta, NewSession, Policy, Result, SessionHandle, SessionRecord,
    SessionStore, SessionSummary, SessionToken,
};
use session_fred::{FredStore, FredStoreBuilder, Topology as FredTopology};
use session_redis::{RedisStore, RedisStoreBuilder, Topology as RedisTopology};
use session_testkit::conformance::StoreFactory;
use session_testkit::topology::{self, RedisDeployment};

fn random_namespace() -> String {
    format!("i{}", &SessionToken::generate().handle().to_hex()[..16])
}

/// A fred store and a redis-rs store on the same deployment and namespace.
async fn pair(t: topology::Shape, namespace: &str, policy: Policy) -> (FredStore, RedisStore) {
    let dep: std::sync::Arc<RedisDeployment> = topology::shared(t).await.expect("deployment");
    let (fred, redis) = match t {
        topology::Shape::Standalone => (
            FredTopology::Standalone(dep.url()),
            RedisTopology::Standalone(dep.url()),
        ),
        topology::Shape::Cluster => (
            FredTopology::Cluster(dep.node_urls()),
            RedisTopology::Cluster(dep.node_urls()),
        ),
        topology::Shape::Sentinel => {
            let master = dep.sentinel_master_name().expect("master").to_owned();
            (
                FredTopology::Sentinel {
                    sentinels: dep.sentinel_urls(),
                    master: master.clone(),
                },
                RedisTopology::Sentinel {
                    sentinels: dep.sentinel_urls(),
                    master,
                },
            )
        }
    };
    let fred = FredStoreBuilder::new()
        .topology(fred)
        .namespace(namespace)
        .policy(policy.clone())
        .build()
        .await
        .expect("fred store");
    let redis = RedisStoreBuilder::new()
        .topology(redis)
        .namespace(namespace)
        .policy(policy)
        .build()
        .await
        .expect("redis store");
    (fred, redis)
}

/// Alternates every call between the fred store and the redis-rs store.
#[derive(Debug)]
struct Mixed {
    fred: FredStore,
    redis: RedisStore,
    next: AtomicUsize,
}

impl Mixed {
    fn pick(&self) -> &dyn SessionStore {
        if self.next.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
            &self.fred
        } else {
            &self.redis
        }
    }
}

#[async_trait]
impl SessionStore for Mixed {
    fn policy(&self) -> Policy {
        self.fred.policy()
    }
    async fn create(&self, new: NewSession) -> Result<Created> {
        self.pick().create(new).await
    }
    async fn create_with_token(
        &self,
        token: &SessionToken,
        new: NewSession,
    ) -> Result<Option<Created>> {
        self.pick().create_with_token(token, new).await
    }
    async fn load(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        self.pick().load(token).await
    }
    async fn load_read_only(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        self.pick().load_read_only(token).await
    }
    async fn load_some(
        &self,
        token: &SessionToken,
        names: &[&str],
    ) -> Result<Option<SessionRecord>> {
        self.pick().load_some(token, names).await
    }
    async fn apply(&self, token: &SessionToken, delta: &Delta) -> Result<Applied> {
        self.pick().apply(token, delta).await
    }
    async fn touch(&self, token: &SessionToken) -> Result<()> {
        self.pick().touch(token).await
    }
    async fn delete(&self, token: &SessionToken) -> Result<bool> {
        self.pick().delete(token).await
    }
    async fn rotate(&self, token: &SessionToken) -> Result<SessionToken> {
        self.pick().rotate(token).await
    }
    async fn sessions_of(&self, principal: &str) -> Result<Vec<SessionHandle>> {
        self.pick().sessions_of(principal).await
    }
    async fn summaries_of(&self, principal: &str) -> Result<Vec<SessionSummary>> {
        self.pick().summaries_of(principal).await
    }
    async fn delete_all_of(&self, principal: &str) -> Result<usize> {
        self.pick().delete_all_of(principal).await
    }
}

struct MixedFactory(topology::Shape);

#[async_trait]
impl StoreFactory for MixedFactory {
    type Store = Mixed;

    async fn make(&self, policy: Policy) -> Result<Mixed> {
        let (fred, redis) = pair(self.0, &random_namespace(), policy).await;
        Ok(Mixed {
            fred,
            redis,
            next: AtomicUsize::new(0),
        })
    }
}

/// Written by one adapter, read and updated by the other, in both directions: attributes,
/// counters, versions, principals, rotation forwards and deletion.
async fn sessions_cross_adapters(t: topology::Shape) {
    let (fred, redis) = pair(t, &random_namespace(), Policy::default()).await;
    let stores: [(&str, &dyn SessionStore, &dyn SessionStore); 2] = [
        ("fred->redis", &fred, &redis),
        ("redis->fred", &redis, &fred),
    ];
    for (direction, writer, reader) in stores {
        let created = writer
            .create(
                NewSession::new()
                    .put("name", &"ada")
                    .unwrap()
                    .principal("user-1"),
            )
            .await
            .unwrap();
        let token = created.token;
        writer
            .apply(&token, &Delta::new().increment("n", 5))
            .await
            .unwrap();
        let seen = reader.load(&token).await.unwrap().expect(direction);
        assert_eq!(
            seen.get::<String>("name").unwrap().as_deref(),
            Some("ada"),
            "{direction}"
        );
        assert_eq!(seen.get::<i64>("n").unwrap(), Some(5), "{direction}");
        assert_eq!(seen.version, 2, "{direction}");
        let applied = reader
            .apply(
                &token,
                &Delta::new()
                    .increment("n", 1)
                    .put("by", &"reader")
                    .unwrap()
                    .remove("name"),
            )
            .await
            .unwrap();
        assert_eq!(applied.increments, vec![6], "{direction}");
        let back = writer
            .load_read_only(&token)
            .await
            .unwrap()
            .expect(direction);
        assert_eq!(back.version, 3, "{direction}");
        assert_eq!(back.get::<i64>("n").unwrap(), Some(6), "{direction}");
        assert_eq!(back.get::<String>("by").unwrap().as_deref(), Some("reader"));
        assert_eq!(back.get::<String>("name").unwrap(), None, "{direction}");
        assert_eq!(back.principal.as_deref(), Some("user-1"), "{direction}");
        let part = reader.load_some(&token, &["n"]).await.unwrap().unwrap();
        assert_eq!(part.get::<i64>("n").unwrap(), Some(6), "{direction}");
        assert!(
            reader
                .sessions_of("user-1")
                .await
                .unwrap()
                .contains(&token.handle()),
            "{direction}"
        );
        let now = writer
            .load_read_only(&token)
            .await
            .unwrap()
            .expect(direction);
        assert!(
            reader
                .summaries_of("user-1")
                .await
                .unwrap()
                .contains(&SessionSummary::from(&now)),
            "{direction}: the other adapter lists the session as it stands"
        );

        // A rotation by one is followed by the other, both ways.
        let rotated = writer.rotate(&token).await.unwrap();
        let through_forward = reader
            .load_read_only(&token)
            .await
            .unwrap()
            .expect(direction);
        assert_eq!(
            through_forward.get::<i64>("n").unwrap(),
            Some(6),
            "{direction}"
        );
        reader
            .apply(&token, &Delta::new().increment("n", 1))
            .await
            .unwrap();
        let moved = writer
            .load_read_only(&rotated)
            .await
            .unwrap()
            .expect(direction);
        assert_eq!(moved.get::<i64>("n").unwrap(), Some(7), "{direction}");

        // Deleted by one: gone for the other, and never recreated by it.
        assert!(reader.delete(&rotated).await.unwrap(), "{direction}");
        assert!(
            writer.load(&rotated).await.unwrap().is_none(),
            "{direction}"
        );
        assert!(writer.load(&token).await.unwrap().is_none(), "{direction}");
        assert!(
            writer
                .apply(&rotated, &Delta::new().increment("n", 1))
                .await
                .is_err(),
            "{direction}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cross_adapters_standalone() {
    sessions_cross_adapters(topology::Shape::Standalone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cross_adapters_cluster() {
    sessions_cross_adapters(topology::Shape::Cluster).await;
}

mod mixed_standalone {
    use super::*;
    session_testkit::conformance_suite!(MixedFactory(topology::Shape::Standalone));
}

mod mixed_cluster {
    use super::*;
    session_testkit::conformance_suite!(MixedFactory(topology::Shape::Cluster));
}
