//! What only a Redis store has: round trips and Redis commands per operation, expiry checked
//! by the store itself, tombstones that free their memory, script-cache loss, typed errors
//! for a stopped or frozen server, and configuration errors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use session_core::redis::{Command, Reply, Store, Transport};
use session_core::{Delta, Error, KeyLayout, Namespace, NewSession, Policy, SessionStore};
use session_redis::{RedisStoreBuilder, RedisTransport, Topology};
use session_testkit::topology::{self, RedisDeployment};

/// Counts batches, i.e. network round trips.
#[derive(Debug)]
struct Counting {
    inner: RedisTransport,
    batches: AtomicUsize,
}

#[async_trait]
impl Transport for Counting {
    async fn batch(
        &self,
        key: &str,
        commands: &[Command],
        writes: bool,
    ) -> session_core::Result<Vec<Reply>> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.inner.batch(key, commands, writes).await
    }
}

async fn raw(store: &Store<Counting>, command: &'static str, args: &[&str]) -> Reply {
    let args = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    store
        .transport()
        .inner
        .batch("", &[Command::Plain(command, args)], false)
        .await
        .unwrap()
        .pop()
        .unwrap()
}

/// Redis-side calls per command since the last `CONFIG RESETSTAT`, scripts' inner calls
/// included.
async fn command_stats(store: &Store<Counting>) -> BTreeMap<String, u64> {
    let Reply::Bytes(info) = raw(store, "INFO", &["commandstats"]).await else {
        panic!("INFO")
    };
    String::from_utf8(info)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

async fn counting_store(url: &str, policy: Policy) -> Store<Counting> {
    let builder = RedisStoreBuilder::new()
        .url(url)
        .response_timeout(Duration::from_millis(500));
    let inner = builder.build_transport().await.unwrap();
    Store::new(
        Counting {
            inner,
            batches: AtomicUsize::new(0),
        },
        KeyLayout::new(Namespace::new("rt").unwrap()),
        policy,
    )
    .unwrap()
}

/// Every operation is one round trip (rotation: read, copy, mark; a forwarded token: one
/// more per hop; a principal change: one more for its index), measured at the transport, and
/// the Redis commands each costs, measured with `INFO commandstats` on a private server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_and_redis_commands_per_operation() {
    let dep = RedisDeployment::start(topology::Topology::Standalone)
        .await
        .unwrap();
    let store = counting_store(&dep.url(), Policy::default()).await;
    let token = store
        .create(NewSession::new().put("a", &1).unwrap())
        .await
        .unwrap()
        .token;
    // Warm the script cache: a script's first use on a server costs one NOSCRIPT retry.
    store.load(&token).await.unwrap();
    store.apply(&token, &Delta::new().touch()).await.unwrap();
    let warm = store.create(NewSession::new()).await.unwrap().token;
    store.rotate(&warm).await.unwrap();
    store.delete(&warm).await.unwrap();
    let mut table = Vec::new();
    macro_rules! measure {
        ($name:literal, $trips:expr, $op:expr) => {{
            raw(&store, "CONFIG", &["RESETSTAT"]).await;
            store.transport().batches.store(0, Ordering::SeqCst);
            let result = $op;
            let trips = store.transport().batches.load(Ordering::SeqCst);
            let stats = command_stats(&store).await;
            table.push(format!(
                "{:<28} round trips {trips}  redis calls {stats:?}",
                $name
            ));
            assert_eq!(trips, $trips, "{}", $name);
            (result, stats)
        }};
    }
    let (_, stats) = measure!("load", 1, store.load(&token).await.unwrap().unwrap());
    assert_eq!(
        (stats.get("hgetall"), stats.get("evalsha")),
        (Some(&1), Some(&1))
    );
    let (_, stats) = measure!(
        "load_read_only",
        1,
        store.load_read_only(&token).await.unwrap().unwrap()
    );
    assert_eq!(
        (
            stats.get("hgetall"),
            stats.get("time"),
            stats.get("evalsha")
        ),
        (Some(&1), Some(&1), None)
    );
    let (_, stats) = measure!(
        "load_some",
        1,
        store.load_some(&token, &["a"]).await.unwrap().unwrap()
    );
    // One HMGET of ours, one inside the touch script (commandstats count nested calls).
    assert_eq!(
        (stats.get("hmget"), stats.get("evalsha")),
        (Some(&2), Some(&1))
    );
    let (_, stats) = measure!(
        "apply (1 attribute)",
        1,
        store
            .apply(&token, &Delta::new().increment("n", 1))
            .await
            .unwrap()
    );
    assert_eq!(stats.get("evalsha"), Some(&1));
    measure!("touch", 1, store.touch(&token).await.unwrap());
    measure!("create", 1, store.create(NewSession::new()).await.unwrap());
    measure!(
        "create with principal",
        2,
        store
            .create(NewSession::new().principal("p"))
            .await
            .unwrap()
    );
    measure!(
        "apply setting a principal",
        2,
        store
            .apply(&token, &Delta::new().set_principal("p"))
            .await
            .unwrap()
    );
    let (new, _) = measure!(
        "rotate (session has a principal)",
        4,
        store.rotate(&token).await.unwrap()
    );
    measure!(
        "load through a forward",
        2,
        store.load(&token).await.unwrap().unwrap()
    );
    // SMEMBERS, one read per entry (3), one SREM for the entry a rotation left stale.
    measure!(
        "sessions_of (3 entries, 1 stale)",
        5,
        store.sessions_of("p").await.unwrap()
    );
    measure!("delete", 1, store.delete(&new).await.unwrap());
    println!("{}", table.join("\n"));
}

/// Loads and writes compare the expiry instant with the server clock themselves: a session
/// whose key lost its TTL (or has not been evicted yet) is still gone at its expiry, and a
/// load does not revive it by touching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_checked_without_relying_on_the_key_ttl() {
    let dep = topology::shared(topology::Topology::Standalone)
        .await
        .unwrap();
    let store = counting_store(&dep.url(), Policy::default()).await;
    let token = store
        .create(NewSession::new().idle_timeout(Duration::from_millis(300)))
        .await
        .unwrap()
        .token;
    let key = store.layout().session_key(&token.handle());
    assert_eq!(raw(&store, "PERSIST", &[&key]).await, Reply::Int(1));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        raw(&store, "EXISTS", &[&key]).await,
        Reply::Int(1),
        "the key is still there"
    );
    assert!(store.load(&token).await.unwrap().is_none());
    assert!(
        store.load(&token).await.unwrap().is_none(),
        "a load must not revive it"
    );
    assert!(store.load_read_only(&token).await.unwrap().is_none());
    assert!(matches!(
        store.apply(&token, &Delta::new().touch()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.touch(&token).await,
        Err(Error::NotFound { .. })
    ));
}

/// A deleted session's key becomes a tombstone that expires after the grace period, so the
/// memory is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_expire_after_the_grace_period() {
    let dep = topology::shared(topology::Topology::Standalone)
        .await
        .unwrap();
    let policy = Policy {
        delete_grace: Duration::from_millis(400),
        ..Policy::default()
    };
    let store = counting_store(&dep.url(), policy).await;
    let token = store
        .create(NewSession::new().put("big", &"x".repeat(1000)).unwrap())
        .await
        .unwrap()
        .token;
    let key = store.layout().session_key(&token.handle());
    assert!(store.delete(&token).await.unwrap());
    assert_eq!(
        raw(&store, "HGETALL", &[&key]).await,
        Reply::Array(vec![
            Reply::Bytes(b"_s".to_vec()),
            Reply::Bytes(b"deleted".to_vec())
        ])
    );
    let Reply::Int(ttl) = raw(&store, "PTTL", &[&key]).await else {
        panic!("PTTL")
    };
    assert!((1..=400).contains(&ttl), "tombstone TTL {ttl}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(raw(&store, "EXISTS", &[&key]).await, Reply::Int(0));
}

/// After the server loses its script cache (a restart, a new master), the store reloads its
/// scripts transparently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_reload_after_the_cache_is_flushed() {
    let dep = RedisDeployment::start(topology::Topology::Standalone)
        .await
        .unwrap();
    let store = counting_store(&dep.url(), Policy::default()).await;
    let token = store.create(NewSession::new()).await.unwrap().token;
    assert_eq!(
        raw(&store, "SCRIPT", &["FLUSH"]).await,
        Reply::Bytes(b"OK".to_vec())
    );
    assert_eq!(
        store
            .apply(&token, &Delta::new().increment("n", 1))
            .await
            .unwrap()
            .increments,
        vec![1]
    );
    assert!(store.load(&token).await.unwrap().is_some());
    assert_eq!(
        store
            .apply(&token, &Delta::new().increment("n", 1))
            .await
            .unwrap()
            .increments,
        vec![2]
    );
}

/// A frozen server: a write's outcome is unknown (never retried blindly), a read times out.
/// A stopped server: a backend error. Neither panics, and the store works again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_servers_give_typed_errors() {
    let dep = RedisDeployment::start(topology::Topology::Standalone)
        .await
        .unwrap();
    let store = counting_store(&dep.url(), Policy::default()).await;
    let token = store.create(NewSession::new()).await.unwrap().token;
    // One increment first, so the apply script is cached when the server freezes.
    store
        .apply(&token, &Delta::new().increment("n", 1))
        .await
        .unwrap();
    let node = dep.nodes()[0];

    dep.pause(node).await.unwrap();
    let write = store.apply(&token, &Delta::new().increment("n", 1)).await;
    let read = store.load_read_only(&token).await;
    dep.resume(node).await.unwrap();
    assert!(matches!(write, Err(Error::OutcomeUnknown(_))), "{write:?}");
    assert!(matches!(read, Err(Error::Timeout)), "{read:?}");
    // The frozen increment ran when the server resumed, exactly once: it was not re-sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let n: Option<i64> = store
        .load_read_only(&token)
        .await
        .unwrap()
        .unwrap()
        .get("n")
        .unwrap();
    assert_eq!(n, Some(2));

    let t = std::time::Instant::now();
    dep.stop(node).await.unwrap();
    eprintln!("stopped after {:?}", t.elapsed());
    let down = store.load(&token).await;
    eprintln!(
        "load on a stopped server answered after {:?}: {down:?}",
        t.elapsed()
    );
    assert!(
        matches!(down, Err(Error::Backend(_) | Error::Timeout)),
        "{down:?}"
    );
    dep.start_node(node).await.unwrap();
    dep.wait_healthy(Duration::from_secs(10)).await.unwrap();
    eprintln!("restarted after {:?}: {:?}", t.elapsed(), dep.node_urls());
    // The server came back empty (no persistence): the store must serve it again.
    let mut back = None;
    for _ in 0..50 {
        match store.create(NewSession::new()).await {
            Ok(created) => {
                back = Some(created.token);
                break;
            }
            other => eprintln!("{:?}: {other:?}", t.elapsed()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = back.expect("the store serves again after the restart");
    assert!(store.load(&back).await.unwrap().is_some());
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "recovery took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn configuration_errors_are_typed() {
    let bad_url = RedisStoreBuilder::new().url("http://nope").build().await;
    assert!(
        matches!(bad_url, Err(Error::InvalidInput(_))),
        "{bad_url:?}"
    );
    let bad_ns = RedisStoreBuilder::new()
        .url("redis://127.0.0.1:1")
        .namespace("a{b}")
        .build()
        .await;
    assert!(matches!(bad_ns, Err(Error::InvalidInput(_))), "{bad_ns:?}");
    let none = RedisStoreBuilder::new().build().await;
    assert!(matches!(none, Err(Error::InvalidInput(_))), "{none:?}");
    assert_eq!(
        Topology::from_url("redis+sentinel://u:p@s1:26379,s2:26379/mymaster").unwrap(),
        Topology::Sentinel {
            sentinels: vec!["redis://u:p@s1:26379".into(), "redis://u:p@s2:26379".into()],
            master: "mymaster".into()
        }
    );
    assert_eq!(
        Topology::from_url("redis+cluster://a:1,b:2").unwrap(),
        Topology::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
    );
    assert!(Topology::from_url("redis+sentinel://s1:26379").is_err());
    let _ = Arc::new(());
}
