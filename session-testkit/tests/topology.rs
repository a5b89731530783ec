//! Real-Redis tests of `session_testkit::topology` for both local providers and all topologies.
//!
//! With `SESSION_TESTKIT_REDIS` unset (or `auto`), each provider's tests run where it can be
//! used (containers: Docker answers and the image is present or can be pulled; processes:
//! `redis-server` or `valkey-server` on `PATH`) and return early otherwise, printing why.
//! When it names a provider, that provider's tests run and must pass (CI runs the containers
//! ones that way, with the local image), and the other's return early. Containers use
//! `REDIS_TEST_IMAGE`.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr};
use session_testkit::topology::{
    Provider, ProviderChoice, ProviderRequest, RedisDeployment, Shape,
};

fn selected(provider: Provider) -> bool {
    let wanted = std::env::var("SESSION_TESTKIT_REDIS").unwrap_or_default();
    let wanted = wanted.trim();
    if wanted.is_empty() || wanted == "auto" {
        match ProviderChoice::for_request(ProviderRequest::Exactly(provider)) {
            Ok(_) => true,
            Err(e) => {
                eprintln!("skipping {provider}: {e}");
                false
            }
        }
    } else if wanted == provider.to_string() {
        true
    } else {
        eprintln!("skipping {provider}: SESSION_TESTKIT_REDIS={wanted}");
        false
    }
}

async fn start(topology: Shape, provider: Provider) -> RedisDeployment {
    let t = Instant::now();
    let dep = RedisDeployment::start_with(topology, provider)
        .await
        .unwrap_or_else(|e| panic!("starting {topology:?} with {provider:?}: {e}"));
    eprintln!(
        "started {topology:?} with {provider:?} in {:?}: {dep:?}",
        t.elapsed()
    );
    dep
}

async fn con(
    url: &str,
    response_timeout: Duration,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(response_timeout));
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
}

async fn standalone(provider: Provider) {
    let dep = start(Shape::Standalone, provider).await;
    assert_eq!(dep.nodes().len(), 1);
    assert_eq!(dep.masters().await.unwrap(), dep.nodes());
    let mut c = con(&dep.url(), Duration::from_secs(2)).await.unwrap();
    let _: () = c.set("k", "v").await.unwrap();
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "v");

    // Pause: a command with a short timeout fails; resume: it works again.
    let node = dep.nodes()[0];
    dep.pause(node).await.unwrap();
    let mut short = con(&dep.url(), Duration::from_millis(300)).await;
    let res = match &mut short {
        Ok(c) => c.get::<_, Option<String>>("k").await.map(drop),
        Err(e) => Err(e.clone()),
    };
    assert!(res.is_err(), "a paused node must not answer");
    dep.resume(node).await.unwrap();
    dep.wait_healthy(Duration::from_secs(10)).await.unwrap();
    let mut c = con(&dep.url(), Duration::from_secs(2)).await.unwrap();
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "v");

    // Restart: same address (no persistence configured, so the data is gone).
    let url = dep.url();
    dep.stop(node).await.unwrap();
    assert!(
        con(&url, Duration::from_millis(300)).await.is_err(),
        "a stopped node must not accept connections"
    );
    dep.start_node(node).await.unwrap();
    dep.wait_healthy(Duration::from_secs(10)).await.unwrap();
    assert_eq!(dep.node_urls()[0], url);
    let mut c = con(&url, Duration::from_secs(2)).await.unwrap();
    let _: () = c.set("k2", "v2").await.unwrap();
    dep.flush().await.unwrap();
    assert_eq!(c.get::<_, Option<String>>("k2").await.unwrap(), None);
}

async fn cluster_roundtrip(dep: &RedisDeployment, tag: &str) {
    let client = ClusterClientBuilder::new(dep.node_urls())
        .response_timeout(Duration::from_secs(2))
        .retries(6)
        .min_retry_wait(100)
        .max_retry_wait(1000)
        .build()
        .unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("{tag}:{i}")).collect();
    let slots: std::collections::BTreeSet<u16> = keys
        .iter()
        .map(|k| session_testkit::topology::key_slot(k.as_bytes()))
        .collect();
    assert!(slots.len() > 150, "keys should spread over many slots");
    for (i, k) in keys.iter().enumerate() {
        let _: () = c.set(k, i).await.unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(c.get::<_, usize>(k).await.unwrap(), i, "{k}");
    }
}

async fn cluster(provider: Provider) {
    let dep = start(Shape::Cluster, provider).await;
    assert_eq!(dep.nodes().len(), 6);
    let masters = dep.masters().await.unwrap();
    assert_eq!(masters.len(), 3);
    for url in dep.node_urls() {
        let mut c = con(&url, Duration::from_secs(2)).await.unwrap();
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(info.contains("cluster_state:ok"), "{url}: {info}");
        assert!(info.contains("cluster_slots_ok:16384"), "{url}: {info}");
    }
    cluster_roundtrip(&dep, "a").await;

    // Kill a master: its replica is promoted.
    let victim = masters[0];
    let t = Instant::now();
    dep.kill(victim).await.unwrap();
    dep.wait_healthy(Duration::from_secs(30)).await.unwrap();
    eprintln!(
        "{provider:?} cluster failover after kill: {:?}",
        t.elapsed()
    );
    let after = dep.masters().await.unwrap();
    assert_eq!(after.len(), 3);
    assert!(
        !after.contains(&victim),
        "{victim} must no longer be a master: {after:?}"
    );
    cluster_roundtrip(&dep, "b").await;

    // Bring it back: it rejoins as a replica.
    let t = Instant::now();
    dep.start_node(victim).await.unwrap();
    dep.wait_fully_replicated(Duration::from_secs(30))
        .await
        .unwrap();
    eprintln!("{provider:?} cluster rejoin: {:?}", t.elapsed());
    assert!(!dep.masters().await.unwrap().contains(&victim));
    cluster_roundtrip(&dep, "c").await;
    dep.flush().await.unwrap();
}

async fn sentinel_master(dep: &RedisDeployment) -> redis::aio::MultiplexedConnection {
    let addrs: Vec<ConnectionAddr> = dep
        .sentinel_urls()
        .iter()
        .map(|u| {
            let (host, port) = u.trim_start_matches("redis://").rsplit_once(':').unwrap();
            ConnectionAddr::Tcp(host.to_string(), port.parse().unwrap())
        })
        .collect();
    let mut sc = SentinelClientBuilder::new(
        addrs,
        dep.sentinel_master_name().unwrap(),
        SentinelServerType::Master,
    )
    .unwrap()
    .build()
    .unwrap();
    sc.get_async_connection_with_config(
        &AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(2))),
    )
    .await
    .unwrap()
}

async fn master_addr_from_sentinel(dep: &RedisDeployment) -> String {
    let mut c = con(&dep.sentinel_urls()[0], Duration::from_secs(2))
        .await
        .unwrap();
    let (host, port): (String, u16) = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(dep.sentinel_master_name().unwrap())
        .query_async(&mut c)
        .await
        .unwrap();
    format!("redis://{host}:{port}")
}

async fn sentinel(provider: Provider) {
    let dep = start(Shape::Sentinel, provider).await;
    assert_eq!(dep.sentinel_urls().len(), 3);
    assert_eq!(dep.nodes().len(), 2);
    let master = master_addr_from_sentinel(&dep).await;
    assert_eq!(master, dep.url());
    let mut c = sentinel_master(&dep).await;
    let _: () = c.set("k", "v").await.unwrap();
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "v");
    let _: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(2000)
        .query_async(&mut c)
        .await
        .unwrap();

    let victim = dep.masters().await.unwrap()[0];
    let t = Instant::now();
    dep.kill(victim).await.unwrap();
    dep.wait_healthy(Duration::from_secs(30)).await.unwrap();
    eprintln!(
        "{provider:?} sentinel failover after kill: {:?}",
        t.elapsed()
    );
    let new_master = master_addr_from_sentinel(&dep).await;
    assert_ne!(new_master, master, "the replica must have been promoted");
    assert_ne!(dep.masters().await.unwrap(), vec![victim]);
    let mut c = sentinel_master(&dep).await;
    assert_eq!(
        c.get::<_, String>("k").await.unwrap(),
        "v",
        "replicated write survives failover"
    );
    let _: () = c.set("k2", "v2").await.unwrap();
    assert_eq!(c.get::<_, String>("k2").await.unwrap(), "v2");

    // The old master comes back as a replica of the new one.
    dep.start_node(victim).await.unwrap();
    dep.wait_fully_replicated(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(master_addr_from_sentinel(&dep).await, new_master);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_standalone() {
    if selected(Provider::Containers) {
        standalone(Provider::Containers).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_standalone() {
    if selected(Provider::Processes) {
        standalone(Provider::Processes).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_cluster() {
    if selected(Provider::Containers) {
        cluster(Provider::Containers).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_cluster() {
    if selected(Provider::Processes) {
        cluster(Provider::Processes).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_sentinel() {
    if selected(Provider::Containers) {
        sentinel(Provider::Containers).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sentinel() {
    if selected(Provider::Processes) {
        sentinel(Provider::Processes).await;
    }
}

/// `shared()` is started once and usable from several test runtimes (provider from env).
#[tokio::test]
async fn shared_standalone_first_runtime() {
    shared_roundtrip("first").await;
}

/// See [`shared_standalone_first_runtime`].
#[tokio::test]
async fn shared_standalone_second_runtime() {
    shared_roundtrip("second").await;
}

async fn shared_roundtrip(key: &str) {
    let dep = session_testkit::topology::shared(Shape::Standalone)
        .await
        .unwrap();
    let again = session_testkit::topology::shared(Shape::Standalone)
        .await
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&dep, &again));
    let mut c = con(&dep.url(), Duration::from_secs(2)).await.unwrap();
    let _: () = c.set(key, 1).await.unwrap();
    assert_eq!(c.get::<_, i64>(key).await.unwrap(), 1);
}

#[tokio::test]
async fn url_provider_reports_missing_variable() {
    // Only inspects configuration errors; does not need a server.
    if std::env::var("SESSION_TESTKIT_REDIS_CLUSTER_URLS").is_err() {
        let err = RedisDeployment::start_with(Shape::Cluster, Provider::Url)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("SESSION_TESTKIT_REDIS_CLUSTER_URLS"),
            "{err}"
        );
    }
}
