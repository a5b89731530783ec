//! Checks only a store on Redis has, for every Redis adapter: round trips and Redis commands
//! per operation, the store's own expiry check, failed writes and damaged data that leave the
//! key untouched, tombstones that free memory, script-cache loss, typed errors for a frozen
//! or stopped server, no double apply when connections are cut, `WAIT` on the write's node,
//! and master failures in a Cluster and under Sentinel.
//!
//! An adapter runs them all with [`redis_store_checks!`](crate::redis_store_checks) and its
//! [`Connect`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use session_core::redis::{Command, Durability, Reply, Settings, Store, Transport, layout};
use session_core::{
    Clock, Deadline, Delta, Error, ManualClock, NewSession, Policy, SessionStore, SystemClock,
    Timestamp,
};

use crate::failover::StoreWorkload;

mod damage;
mod recent;
use crate::redis_factory::{Connect, Counting, settings_for};
use crate::topology::{self, FailoverConfig, FaultKind, RedisDeployment, run_failover_workload};
pub use damage::damage_is_judged_alike_on_every_path;
pub use recent::a_write_after_a_read_skips_the_merge;

/// Expands to one `#[tokio::test]` per check, for the adapter the expression connects. Each
/// test first needs the shared standalone deployment ([`ready`]): without Redis, every check
/// fails with the same readable line instead of a panic and backtrace.
#[macro_export]
macro_rules! redis_store_checks {
    ($connect:expr) => {
        $crate::__redis_checks!($connect;
            round_trips_and_redis_commands_per_operation, sessions_change_form_with_their_size,
            loads_touch_only_when_due,
            the_key_expires_at_the_session_expiry, loads_tolerate_clock_skew,
            failed_applies_leave_the_key_untouched, damage_is_judged_alike_on_every_path,
            a_write_after_a_read_skips_the_merge,
            tombstones_expire_after_the_grace_period, principal_indexes_end_with_their_sessions,
            scripts_reload_after_the_cache_is_flushed,
            unavailable_servers_give_typed_errors, connection_cuts_never_apply_a_write_twice,
            wait_runs_on_the_node_of_the_write, store_survives_cluster_master_failures,
            store_follows_a_sentinel_failover,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __redis_checks {
    ($connect:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() -> ::std::result::Result<(), $crate::conformance::NotReady> {
                $crate::redis_checks::ready().await?;
                $crate::redis_checks::$check(&$connect).await;
                Ok(())
            }
        )*
    };
}

/// Whether Redis can be started here: the shared standalone deployment (kept for the process,
/// failures too), whose provider the checks' private deployments use as well. Without Redis,
/// one check gives the reason and the others point to it.
pub async fn ready() -> Result<(), crate::conformance::NotReady> {
    static SAID: AtomicBool = AtomicBool::new(false);
    let t = topology::Shape::Standalone;
    match topology::shared(t).await {
        Ok(_) => Ok(()),
        Err(e) => Err(crate::redis_factory::once_per_suite(&SAID, t, e)),
    }
}

fn fast(dep: &RedisDeployment, policy: Policy) -> Settings {
    let mut settings = settings_for(dep, policy);
    settings.response_timeout = Duration::from_millis(500);
    settings
}

async fn counting<C: Connect>(c: &C, settings: Settings) -> Store<Counting<C::Transport>> {
    let inner = c.transport(&settings).await.expect("transport");
    settings.into_store(Counting::new(inner)).expect("store")
}

/// One command through a transport, on the node serving `key` ("" for any node).
async fn raw<T: Transport>(t: &T, key: &str, command: &'static str, args: &[&str]) -> Reply {
    let args = args.iter().map(|a| Cow::Borrowed(a.as_bytes())).collect();
    t.batch(key, &[Command::Plain(command, args)], false)
        .await
        .expect("command")
        .pop()
        .expect("reply")
}

/// Redis-side calls per command since the last `CONFIG RESETSTAT`, scripts' inner calls
/// included.
async fn command_stats<T: Transport>(t: &T) -> BTreeMap<String, u64> {
    let Reply::Bytes(info) = raw(t, "", "INFO", &["commandstats"]).await else {
        panic!("INFO")
    };
    String::from_utf8(info.to_vec())
        .expect("utf8")
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

/// Every operation is one round trip (rotation: a read, then one script, plus the principal
/// index; a forwarded token: one more per hop; a principal change: one more for its index),
/// measured at the transport, and the Redis commands each costs, measured with
/// `INFO commandstats` on a private server.
pub async fn round_trips_and_redis_commands_per_operation<C: Connect>(c: &C) {
    let dep = RedisDeployment::start(topology::Shape::Standalone)
        .await
        .expect("redis");
    let store = counting(c, fast(&dep, Policy::default())).await;
    let t = || store.transport().inner();
    let token = store
        .create(NewSession::new().put("a", &1).unwrap())
        .await
        .unwrap()
        .token;
    // Warm the script cache: a script's first use on a server costs one NOSCRIPT retry,
    // which counts as a round trip.
    for script in session_core::redis::SCRIPTS {
        raw(t(), "", "SCRIPT", &["LOAD", script.source]).await;
    }
    store.load(&token).await.unwrap();
    store.apply(&token, &Delta::new().touch()).await.unwrap();
    let warm = store.create(NewSession::new()).await.unwrap().token;
    store
        .apply(&warm, &Delta::new().increment("n", 1))
        .await
        .unwrap();
    store.rotate(&warm).await.unwrap();
    store.delete(&warm).await.unwrap();
    let mut table = Vec::new();
    macro_rules! measure {
        ($name:literal, $trips:expr, $op:expr) => {{
            raw(t(), "", "CONFIG", &["RESETSTAT"]).await;
            store.transport().reset();
            let result = $op;
            let trips = store.transport().batches();
            let stats = command_stats(t()).await;
            table.push(format!(
                "{:<34} round trips {trips}  redis calls {stats:?}",
                $name
            ));
            assert_eq!(trips, $trips, "{}", $name);
            (result, stats)
        }};
    }
    // Within the touch interval (default 60 s) a load is one command: no script, no TIME.
    for read_only in [false, true] {
        let (_, stats) = measure!("load (and load_read_only)", 1, {
            let loaded = if read_only {
                store.load_read_only(&token).await
            } else {
                store.load(&token).await
            };
            loaded.unwrap().unwrap()
        });
        assert_eq!(served(&stats), 1, "{stats:?}");
        assert_eq!(stats.get("get"), Some(&1));
    }
    let (_, stats) = measure!(
        "load_some",
        1,
        store.load_some(&token, &["a"]).await.unwrap().unwrap()
    );
    assert_eq!((stats.get("get"), served(&stats)), (Some(&1), 1));
    // A packed session: the script reads it with one GET and writes it with one SET,
    // without TIME (commandstats count the calls a script makes).
    let (_, stats) = measure!(
        "apply (1 attribute)",
        1,
        store
            .apply(&token, &Delta::new().increment("n", 1))
            .await
            .unwrap()
    );
    assert_eq!(
        (
            stats.get("evalsha"),
            stats.get("get"),
            stats.get("set"),
            served(&stats)
        ),
        (Some(&1), Some(&1), Some(&1), 3),
        "{stats:?}"
    );
    // A hashed (large) session: its first load is GET (WRONGTYPE), then HGETALL; the store
    // then remembers the form, so later reads are one HGETALL or HMGET.
    let big = "x".repeat(layout::PACKED_MAX);
    let large = store
        .create(NewSession::new().put("big", &big).unwrap())
        .await
        .unwrap()
        .token;
    let (_, stats) = measure!(
        "load (large session, first)",
        2,
        store.load(&large).await.unwrap().unwrap()
    );
    assert_eq!((stats.get("hgetall"), served(&stats)), (Some(&1), 2));
    let (_, stats) = measure!(
        "load (large session, then)",
        1,
        store.load(&large).await.unwrap().unwrap()
    );
    assert_eq!((stats.get("hgetall"), served(&stats)), (Some(&1), 1));
    let (_, stats) = measure!(
        "load_some (large session)",
        1,
        store.load_some(&large, &["big"]).await.unwrap().unwrap()
    );
    assert_eq!((stats.get("hmget"), served(&stats)), (Some(&1), 1));
    // The store read it hashed, so the script goes straight to one HMGET and one HSET.
    let (_, stats) = measure!(
        "apply (1 attribute, large session)",
        1,
        store
            .apply(&large, &Delta::new().increment("n", 1))
            .await
            .unwrap()
    );
    assert_eq!(
        (stats.get("hmget"), stats.get("hset"), served(&stats)),
        (Some(&1), Some(&1), 3)
    );
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
        3,
        store.rotate(&token).await.unwrap()
    );
    measure!(
        "load through a forward",
        2,
        store.load(&token).await.unwrap().unwrap()
    );
    // SMEMBERS, then one batch per entry (3): a GET and an HMGET of the metadata record,
    // one of which answers WRONGTYPE. Reads only: the stale entry stays.
    let (listed, stats) = measure!(
        "summaries_of (3 entries, 1 stale)",
        4,
        store.summaries_of("p").await.unwrap()
    );
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (
            stats.get("smembers"),
            stats.get("get"),
            stats.get("hmget"),
            served(&stats)
        ),
        (Some(&1), Some(&3), Some(&3), 7),
        "{stats:?}"
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

/// A session is packed (a string) while small and hashed once large, and moves between the
/// two on writes of either script, keeping its attributes, their versions, its metadata and
/// its key's expiry; rotation copies either form.
pub async fn sessions_change_form_with_their_size<C: Connect>(c: &C) {
    let dep = topology::shared(topology::Shape::Standalone)
        .await
        .expect("redis");
    let settings = fast(&dep, Policy::default());
    let store = c.store(settings.clone()).await.expect("store");
    let form = |token: &session_core::SessionToken| {
        let key = store.layout().session_key(&token.handle());
        let t = store.transport();
        async move {
            let Reply::Bytes(kind) = raw(t, &key, "TYPE", &[&key]).await else {
                panic!("TYPE")
            };
            let Reply::Int(expiry) = raw(t, &key, "PEXPIRETIME", &[&key]).await else {
                panic!("PEXPIRETIME")
            };
            (String::from_utf8_lossy(&kind).into_owned(), expiry)
        }
    };
    let big = "x".repeat(layout::PACKED_MAX);
    let new = NewSession::new().principal("ann").put("small", &1).unwrap();
    let token = store.create(new).await.unwrap().token;
    let first = store.load_read_only(&token).await.unwrap().unwrap();
    let expiry = first.expires_at().as_millis() as i64;
    assert_eq!(
        form(&token).await,
        ("string".to_owned(), expiry),
        "created small"
    );

    // apply_attrs grows it into a hash...
    let grow = Delta::new().put("big", &big).unwrap();
    store.apply(&token, &grow).await.unwrap();
    assert_eq!(form(&token).await, ("hash".to_owned(), expiry), "grown");
    let grown = store.load_read_only(&token).await.unwrap().unwrap();
    assert_eq!(grown.get::<String>("big").unwrap(), Some(big.clone()));
    assert_eq!(grown.attribute_version("small"), Some(1));
    assert_eq!(grown.principal.as_deref(), Some("ann"));
    let some = store.load_some(&token, &["small"]).await.unwrap().unwrap();
    assert_eq!(some.attributes.len(), 1);
    assert_eq!(some.get::<i64>("small").unwrap(), Some(1));

    // ...rotation copies the hash, and a removal packs it again.
    let token = store.rotate(&token).await.unwrap();
    assert_eq!(form(&token).await.0, "hash", "rotated while large");
    let shrink = Delta::new().remove("big").increment("small", 1);
    store.apply(&token, &shrink).await.unwrap();
    assert_eq!(form(&token).await.0, "string", "shrunk");
    let shrunk = store.load_read_only(&token).await.unwrap().unwrap();
    assert_eq!(shrunk.get::<i64>("small").unwrap(), Some(2));
    assert!(shrunk.get_bytes("big").is_none());
    assert_eq!(shrunk.principal.as_deref(), Some("ann"));
    let (_, at) = form(&token).await;
    assert_eq!(at, shrunk.expires_at().as_millis() as i64, "expiry kept");

    // The general script (a touch in the delta) grows and shrinks it too.
    store
        .apply(&token, &Delta::new().touch().put("big", &big).unwrap())
        .await
        .unwrap();
    assert_eq!(form(&token).await.0, "hash", "grown by apply");
    store
        .apply(&token, &Delta::new().touch().remove("big"))
        .await
        .unwrap();
    let (kind, at) = form(&token).await;
    let last = store.load_read_only(&token).await.unwrap().unwrap();
    assert_eq!(
        (kind.as_str(), at),
        ("string", last.expires_at().as_millis() as i64)
    );
    assert_eq!(last.get::<i64>("small").unwrap(), Some(2));
    let token = store.rotate(&token).await.unwrap();
    assert_eq!(form(&token).await.0, "string", "rotated while small");
    assert_eq!(
        store.sessions_of("ann").await.unwrap(),
        vec![token.handle()]
    );

    // A store remembers the sessions it read hashed and writes to them as hashes first. A
    // stale memory costs a command, never a wrong answer: another server's store packs the
    // session again, deletes it, or it vanishes.
    let other = c.store(settings).await.expect("store");
    let large = NewSession::new().put("big", &big).unwrap();
    let token = store.create(large.clone()).await.unwrap().token;
    store.load_read_only(&token).await.unwrap().unwrap();
    other
        .apply(&token, &Delta::new().remove("big"))
        .await
        .unwrap();
    assert_eq!(form(&token).await.0, "string", "packed by the other store");
    store
        .apply(&token, &Delta::new().increment("n", 1))
        .await
        .unwrap();
    let seen = other.load_read_only(&token).await.unwrap().unwrap();
    assert_eq!(seen.get::<i64>("n").unwrap(), Some(1));
    other.delete(&token).await.unwrap();
    assert!(matches!(
        store.apply(&token, &Delta::new().increment("n", 1)).await,
        Err(Error::NotFound { .. })
    ));
    let token = store.create(large).await.unwrap().token;
    store.load_read_only(&token).await.unwrap().unwrap();
    let key = store.layout().session_key(&token.handle());
    raw(store.transport(), &key, "DEL", &[&key]).await;
    assert!(matches!(
        store.apply(&token, &Delta::new().increment("n", 1)).await,
        Err(Error::NotFound { .. })
    ));
}

/// Commands Redis ran for the store (the measurement's own `CONFIG RESETSTAT` left out).
fn served(stats: &BTreeMap<String, u64>) -> u64 {
    stats
        .iter()
        .filter(|(name, _)| !name.starts_with("config"))
        .map(|(_, calls)| calls)
        .sum()
}

/// A load writes a touch only when one is due. With the default policy a load within the
/// interval is one plain read; a session with a short idle timeout (where 30 s of clock skew
/// could outlast half of it) asks the touch script on every load and the script decides on
/// Redis's clock; with a zero interval the script rides in the read's round trip.
pub async fn loads_touch_only_when_due<C: Connect>(c: &C) {
    let dep = RedisDeployment::start(topology::Shape::Standalone)
        .await
        .expect("redis");
    let store = counting(c, fast(&dep, Policy::default())).await;
    let token = store.create(NewSession::new()).await.unwrap().token;
    store.touch(&token).await.unwrap(); // warms the script cache
    for _ in 0..3 {
        let (trips, scripts, _) = load_cost(&store, &token).await;
        assert_eq!((trips, scripts), (1, None), "not due: a plain read");
    }

    // Idle 400 ms: a touch is due 200 ms after the last one, far less than the skew bound.
    let short = || NewSession::new().idle_timeout(Duration::from_millis(400));
    let token = store.create(short()).await.unwrap().token;
    let (trips, scripts, first) = load_cost(&store, &token).await;
    assert_eq!(
        (trips, scripts),
        (2, Some(1)),
        "short idle: the script decides"
    );
    assert_eq!(
        store
            .load_read_only(&token)
            .await
            .unwrap()
            .unwrap()
            .last_access,
        first,
        "not due on Redis's clock: nothing written"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (trips, scripts, touched) = load_cost(&store, &token).await;
    assert_eq!((trips, scripts), (2, Some(1)), "due: read, then the touch");
    assert!(touched > first, "{touched:?} <= {first:?}");

    let every_load = Policy {
        touch_interval: Duration::ZERO,
        ..Policy::default()
    };
    let store = counting(c, fast(&dep, every_load)).await;
    let token = store.create(short()).await.unwrap().token;
    let (trips, scripts, _) = load_cost(&store, &token).await;
    assert_eq!(
        (trips, scripts),
        (1, Some(1)),
        "zero interval: one round trip"
    );
}

/// Loads judge whether a touch is due on the application server's clock. A clock 30 s
/// ahead or behind Redis's neither writes on every read nor lets a session in use go
/// untouched (`Policy::load_touch`); the session's last access is moved back in storage to
/// stand in for time passing.
pub async fn loads_tolerate_clock_skew<C: Connect>(c: &C) {
    let dep = RedisDeployment::start(topology::Shape::Standalone)
        .await
        .expect("redis");
    let skew = session_core::CLOCK_SKEW_BOUND;
    for ahead in [true, false] {
        let clock = ManualClock::default();
        let skewed = |clock: &ManualClock| {
            let now = SystemClock.now();
            clock.set(if ahead {
                now.saturating_add(skew)
            } else {
                Timestamp::from_millis(now.as_millis() - skew.as_millis() as u64)
            });
        };
        let store = counting(c, fast(&dep, Policy::default()))
            .await
            .with_clock(Arc::new(clock.clone()));
        let token = store.create(NewSession::new()).await.unwrap().token;
        store.touch(&token).await.unwrap(); // warms the script cache
        for _ in 0..5 {
            skewed(&clock);
            let (trips, scripts, _) = load_cost(&store, &token).await;
            assert_eq!(
                (trips, scripts),
                (1, None),
                "ahead {ahead}: a fresh session is read without a write"
            );
        }
        // 40 s idle on Redis's clock: a clock 30 s ahead sees 70 s and asks, and the script
        // (threshold 30 s) touches. 100 s idle: a clock 30 s behind sees 70 s and asks too.
        let idle_for = if ahead { 40 } else { 100 };
        age_last_access(&store, &token, Duration::from_secs(idle_for)).await;
        skewed(&clock);
        let before = SystemClock.now();
        let (trips, scripts, touched) = load_cost(&store, &token).await;
        assert_eq!(
            (trips, scripts),
            (2, Some(1)),
            "ahead {ahead}: due, touched"
        );
        assert!(touched >= before, "ahead {ahead}: {touched:?} < {before:?}");
        skewed(&clock);
        let (trips, scripts, _) = load_cost(&store, &token).await;
        assert_eq!((trips, scripts), (1, None), "ahead {ahead}: touched once");
    }
}

/// Moves a session's stored last access `by` into the past, as if it had been idle that long.
async fn age_last_access<T: Transport>(
    store: &Store<T>,
    token: &session_core::SessionToken,
    by: Duration,
) {
    let key = store.layout().session_key(&token.handle());
    let Reply::Bytes(packed) = raw(store.transport(), &key, "GET", &[&key]).await else {
        panic!("a packed session")
    };
    let (layout::Record::Live(mut meta), end) = layout::Record::decode_prefix(&packed).unwrap()
    else {
        panic!("live")
    };
    meta.last_access = Timestamp::from_millis(meta.last_access.as_millis() - by.as_millis() as u64);
    let mut rewritten = layout::Record::Live(meta).encode();
    rewritten.extend_from_slice(&packed[end..]);
    let write = Command::Plain(
        "SET",
        vec![
            Cow::Borrowed(key.as_bytes()),
            Cow::Owned(rewritten),
            Cow::Borrowed(b"KEEPTTL"),
        ],
    );
    store.transport().batch(&key, &[write], true).await.unwrap();
}

/// One load: its round trips, the scripts Redis ran, the last access it returned.
async fn load_cost<T: Transport>(
    store: &Store<Counting<T>>,
    token: &session_core::SessionToken,
) -> (u64, Option<u64>, session_core::Timestamp) {
    let t = store.transport().inner();
    raw(t, "", "CONFIG", &["RESETSTAT"]).await;
    store.transport().reset();
    let session = store.load(token).await.unwrap().expect("live");
    let trips = store.transport().batches();
    let scripts = command_stats(t).await.get("evalsha").copied();
    (trips, scripts, session.last_access)
}

/// Loads ask Redis for no clock: they rely on the key expiring at the session's expiry
/// instant, which every write that moves it keeps (`PEXPIRETIME`), so an expired session is
/// never returned.
pub async fn the_key_expires_at_the_session_expiry<C: Connect>(c: &C) {
    let dep = topology::shared(topology::Shape::Standalone)
        .await
        .expect("redis");
    let store = c.store(fast(&dep, Policy::default())).await.expect("store");
    let new = NewSession::new().idle_timeout(Duration::from_millis(600));
    let token = store.create(new).await.unwrap().token;
    let key = store.layout().session_key(&token.handle());
    let expiry = || async {
        let Reply::Int(at) = raw(store.transport(), &key, "PEXPIRETIME", &[&key]).await else {
            panic!("PEXPIRETIME")
        };
        at
    };
    let at = |s: &session_core::SessionRecord| s.expires_at().as_millis() as i64;
    let session = store.load_read_only(&token).await.unwrap().unwrap();
    assert_eq!(expiry().await, at(&session), "after create");
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.touch(&token).await.unwrap();
    let touched = store.load_read_only(&token).await.unwrap().unwrap();
    assert!(touched.last_access > session.last_access);
    assert_eq!(expiry().await, at(&touched), "after a touch");
    store
        .apply(&token, &Delta::new().put("a", &1).unwrap())
        .await
        .unwrap();
    assert_eq!(expiry().await, at(&touched), "an attribute write keeps it");
    let deadline = Deadline::In(Duration::from_millis(300));
    store
        .apply(&token, &Delta::new().set_deadline(deadline))
        .await
        .unwrap();
    let limited = store.load_read_only(&token).await.unwrap().unwrap();
    assert!(limited.deadline.is_some());
    assert_eq!(expiry().await, at(&limited), "after a deadline");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(store.load(&token).await.unwrap().is_none());
    assert_eq!(
        raw(store.transport(), &key, "EXISTS", &[&key]).await,
        Reply::Int(0),
        "Redis freed it"
    );
    assert!(matches!(
        store
            .apply(&token, &Delta::new().put("late", &1).unwrap())
            .await,
        Err(Error::NotFound { .. })
    ));
}

/// A session key's bytes: a packed session's string, or a hashed one's fields and values
/// sorted (a hash's `DUMP` is no good: Redis rehashes a large hash incrementally on reads
/// too, which reorders it), and its expiry instant.
async fn key_bytes<T: Transport>(t: &T, key: &str) -> (Vec<Vec<u8>>, Reply) {
    let content = match raw(t, key, "GET", &[key]).await {
        Reply::Bytes(packed) => vec![packed.to_vec()],
        _ => match raw(t, key, "HGETALL", &[key]).await {
            Reply::Array(items) => {
                let mut pairs: Vec<Vec<u8>> = items
                    .chunks(2)
                    .map(|pair| {
                        pair.iter()
                            .flat_map(|r| match r {
                                Reply::Bytes(b) => [&b[..], b"\0"].concat(),
                                other => panic!("HGETALL item {other:?}"),
                            })
                            .collect()
                    })
                    .collect();
                pairs.sort();
                pairs
            }
            other => panic!("HGETALL: {other:?}"),
        },
    };
    (content, raw(t, key, "PEXPIRETIME", &[key]).await)
}

/// A failed apply leaves the session's key byte for byte as it was (its string, or its
/// hash's fields and values, and its expiry instant), whatever the session's form, the script (`apply_attrs`, or `apply` for a
/// delta that also touches) and the failure (a guard, a counter of the wrong type, an
/// overflow, the size limit), after any number of operations that would have succeeded:
/// generated sessions and deltas (`SESSION_TESTKIT_CASES` scales the count).
pub async fn failed_applies_leave_the_key_untouched<C: Connect>(c: &C) {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let dep = topology::shared(topology::Shape::Standalone)
        .await
        .expect("redis");
    let policy = Policy {
        limits: session_core::Limits {
            max_value_bytes: 3000,
            max_session_bytes: 9000,
            max_delta_ops: 16,
        },
        ..Policy::default()
    };
    let store = c.store(fast(&dep, policy)).await.expect("store");
    let t = store.transport();
    const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
    // Attributes of up to 3,000 bytes: sessions on both sides of the packing line.
    let session = proptest::collection::vec((0..NAMES.len(), 1usize..3000), 0..5);
    let ops = proptest::collection::vec((0..NAMES.len(), proptest::option::of(1usize..600)), 0..5);
    let strategy = (session, ops, 0u8..6, any::<bool>());
    let mut runner = TestRunner::deterministic();
    let (mut packed, mut hashed) = (0, 0);
    for case in 0..crate::workload::cases(40) {
        let (attributes, ops, failure, general) = strategy
            .new_tree(&mut runner)
            .expect("a generated case")
            .current();
        let mut new = NewSession::new()
            .put_bytes("count", b"5".to_vec())
            .put_bytes("text", b"abc".to_vec());
        for (name, len) in &attributes {
            new = new.put_bytes(NAMES[*name], vec![b'v'; *len]);
        }
        let created = match store.create(new).await {
            Ok(created) => created,
            Err(Error::LimitExceeded { .. }) => continue,
            Err(e) => panic!("case {case}: create: {e:?}"),
        };
        let mut delta = Delta::new();
        for (name, len) in &ops {
            delta = match len {
                Some(len) => delta.put_bytes(NAMES[*name], vec![b'w'; *len]),
                None => delta.remove(NAMES[*name]),
            };
        }
        if general {
            delta = delta.touch();
        }
        let version = created.session.version;
        let delta = match failure {
            0 => delta.if_session_version(version + 5),
            1 => delta.increment("text", 1),
            2 => delta.increment("count", session_core::MAX_COUNTER),
            3 => delta
                .put_bytes("big1", vec![b'x'; 3000])
                .put_bytes("big2", vec![b'y'; 3000])
                .put_bytes("big3", vec![b'z'; 3000]),
            4 => delta.if_attribute_version("count", version + 5),
            _ => delta.if_absent("text"),
        };
        let key = store.layout().session_key(&created.token.handle());
        let Reply::Bytes(form) = raw(t, &key, "TYPE", &[&key]).await else {
            panic!("TYPE")
        };
        if &form[..] == b"hash" {
            hashed += 1;
        } else {
            packed += 1;
        }
        let before = key_bytes(t, &key).await;
        let result = store.apply(&created.token, &delta).await;
        let expected = match failure {
            0 | 4 | 5 => matches!(result, Err(Error::Conflict { .. })),
            1 => matches!(result, Err(Error::TypeMismatch { .. })),
            2 => matches!(result, Err(Error::Overflow { .. })),
            _ => matches!(result, Err(Error::LimitExceeded { .. })),
        };
        assert!(expected, "case {case}: {delta:?} answered {result:?}");
        assert_eq!(
            key_bytes(t, &key).await,
            before,
            "case {case}: the failed {delta:?} changed the key"
        );
    }
    assert!(
        packed > 0 && hashed > 0,
        "both forms met: {packed} packed, {hashed} hashed"
    );
}

/// The server's clock less the clock-skew bound: the slowest application clock the contract
/// allows. A store estimates a new index entry's expiry on its own clock plus that bound, so
/// with this clock the estimate is the server's, and the test need not wait 30 s for it.
#[derive(Debug)]
struct Behind;

impl Clock for Behind {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now().as_millis();
        Timestamp::from_millis(now - session_core::CLOCK_SKEW_BOUND.as_millis() as u64)
    }
}

/// Every key of `namespace` on a standalone server (`SCAN`).
async fn keys_of<T: Transport>(t: &T, namespace: &str) -> Vec<String> {
    let pattern = format!("{namespace}:*");
    let mut cursor = "0".to_owned();
    let mut keys = Vec::new();
    loop {
        let reply = raw(
            t,
            "",
            "SCAN",
            &[&cursor, "MATCH", &pattern, "COUNT", "1000"],
        )
        .await;
        let Reply::Array(mut parts) = reply else {
            panic!("SCAN: {reply:?}")
        };
        let (Some(Reply::Array(found)), Some(Reply::Bytes(next))) = (parts.pop(), parts.pop())
        else {
            panic!("SCAN reply")
        };
        keys.extend(found.into_iter().map(|k| match k {
            Reply::Bytes(k) => String::from_utf8_lossy(&k).into_owned(),
            other => panic!("SCAN key {other:?}"),
        }));
        cursor = String::from_utf8_lossy(&next).into_owned();
        if cursor == "0" {
            return keys;
        }
    }
}

/// A principal's index has an expiry from its first entry on, follows its sessions' touches,
/// and ends within the delete grace of its last session: once every session has ended
/// (expired, deleted, rotated away) and the graces have passed, the namespace holds no key.
pub async fn principal_indexes_end_with_their_sessions<C: Connect>(c: &C) {
    let dep = topology::shared(topology::Shape::Standalone)
        .await
        .expect("redis");
    let policy = Policy {
        default_idle_timeout: Duration::from_millis(600),
        touch_interval: Duration::from_millis(100),
        delete_grace: Duration::from_millis(400),
        rotate_grace: Duration::from_millis(400),
        ..Policy::default()
    };
    let store = c
        .store(fast(&dep, policy))
        .await
        .expect("store")
        .with_clock(Arc::new(Behind));
    let t = store.transport();
    let namespace = store.layout().namespace().as_str().to_owned();
    let index = store.layout().principal_key("ann");
    let with_ann = || NewSession::new().principal("ann");
    let kept = store.create(with_ann()).await.unwrap().token;
    let Reply::Int(ttl) = raw(t, &index, "PTTL", &[&index]).await else {
        panic!("PTTL")
    };
    assert!(
        (600..=1100).contains(&ttl),
        "the index expires with its entry: {ttl} ms"
    );
    let later = store.create(NewSession::new()).await.unwrap().token;
    store
        .apply(&later, &Delta::new().set_principal("ann"))
        .await
        .unwrap();
    let rotated = store.create(with_ann()).await.unwrap().token;
    store.rotate(&rotated).await.unwrap();
    let deleted = store.create(with_ann()).await.unwrap().token;
    store.delete(&deleted).await.unwrap();

    // `kept` stays in use (loads that touch, and touches) long after the others ended and
    // after the index's first expiry: the index follows it.
    let start = Instant::now();
    let mut step = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        if step % 2 == 0 {
            assert!(store.load(&kept).await.unwrap().is_some());
        } else {
            store.touch(&kept).await.unwrap();
        }
        step += 1;
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    assert_eq!(
        store.sessions_of("ann").await.unwrap(),
        vec![kept.handle()],
        "the index outlived its first expiry with the session it lists"
    );
    assert_eq!(
        keys_of(t, &namespace).await.len(),
        2,
        "the session and its index"
    );

    // Left alone, the session expires (600 ms) and its index within the grace (400 ms).
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(keys_of(t, &namespace).await, Vec::<String>::new());
}

/// A deleted session's key becomes a tombstone that expires after the grace period, so the
/// memory is freed.
pub async fn tombstones_expire_after_the_grace_period<C: Connect>(c: &C) {
    let dep = topology::shared(topology::Shape::Standalone)
        .await
        .expect("redis");
    let policy = Policy {
        delete_grace: Duration::from_millis(400),
        ..Policy::default()
    };
    let store = c.store(fast(&dep, policy)).await.expect("store");
    let token = store
        .create(
            NewSession::new()
                .put("big", &"x".repeat(layout::PACKED_MAX))
                .unwrap(),
        )
        .await
        .unwrap()
        .token;
    let key = store.layout().session_key(&token.handle());
    assert!(store.delete(&token).await.unwrap());
    assert_eq!(
        raw(store.transport(), &key, "GET", &[&key]).await,
        Reply::Bytes(layout::Record::Deleted.encode().into())
    );
    let Reply::Int(ttl) = raw(store.transport(), &key, "PTTL", &[&key]).await else {
        panic!("PTTL")
    };
    assert!((1..=400).contains(&ttl), "tombstone TTL {ttl}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        raw(store.transport(), &key, "EXISTS", &[&key]).await,
        Reply::Int(0)
    );
}

/// After the server loses its script cache (a restart, a new master), the store reloads its
/// scripts transparently.
pub async fn scripts_reload_after_the_cache_is_flushed<C: Connect>(c: &C) {
    let dep = RedisDeployment::start(topology::Shape::Standalone)
        .await
        .expect("redis");
    let store = c.store(fast(&dep, Policy::default())).await.expect("store");
    let token = store.create(NewSession::new()).await.unwrap().token;
    assert_eq!(
        raw(store.transport(), "", "SCRIPT", &["FLUSH"]).await,
        Reply::Bytes("OK".into())
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

/// A frozen server: a write's outcome is unknown (never retried blindly) and applied exactly
/// once when the server resumes; a read times out. A stopped server: a typed error soon. The
/// store serves again after the restart.
pub async fn unavailable_servers_give_typed_errors<C: Connect>(c: &C) {
    let dep = RedisDeployment::start(topology::Shape::Standalone)
        .await
        .expect("redis");
    let store = c.store(fast(&dep, Policy::default())).await.expect("store");
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
    tokio::time::sleep(Duration::from_millis(200)).await;
    let n: Option<i64> = store
        .load_read_only(&token)
        .await
        .unwrap()
        .unwrap()
        .get("n")
        .unwrap();
    assert_eq!(
        n,
        Some(2),
        "the frozen increment ran once, and was not re-sent"
    );

    let t = Instant::now();
    dep.stop(node).await.unwrap();
    let down = store.load(&token).await;
    println!(
        "load on a stopped server answered after {:?}: {down:?}",
        t.elapsed()
    );
    assert!(
        matches!(down, Err(Error::Unavailable(_) | Error::Timeout)),
        "a stopped server is a typed error: {down:?}"
    );
    // Bounded by a couple of connect timeouts (2 s by default): a stopped container's
    // address answers only when ARP gives up (about 3 s), a stopped process at once.
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "a dead server is reported within a couple of connect timeouts"
    );
    dep.start_node(node).await.unwrap();
    dep.wait_healthy(Duration::from_secs(10)).await.unwrap();
    // The server came back empty (no persistence): the store must serve it again.
    let mut back = None;
    for _ in 0..50 {
        if let Ok(created) = store.create(NewSession::new()).await {
            back = Some(created.token);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = back.expect("the store serves again after the restart");
    assert!(store.load(&back).await.unwrap().is_some());
}

/// 8 tasks increment one counter while another connection kills every client connection
/// (`CLIENT KILL TYPE normal`) every 50 ms: the counter ends between the acknowledged
/// increments and those plus the ones with an unknown outcome, never above. No client-level
/// re-send applied an increment twice, and no other error hid an applied one.
pub async fn connection_cuts_never_apply_a_write_twice<C: Connect>(c: &C) {
    let dep = RedisDeployment::start(topology::Shape::Standalone)
        .await
        .expect("redis");
    let store = Arc::new(c.store(fast(&dep, Policy::default())).await.expect("store"));
    let killer = c
        .transport(&fast(&dep, Policy::default()))
        .await
        .expect("transport");
    let token = store.create(NewSession::new()).await.unwrap().token;
    let inc = Delta::new().increment("n", 1);
    // Warm the apply script, so a cut never lands in a NOSCRIPT re-send.
    store.apply(&token, &inc).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let kills = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut killed = 0;
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let kill = Command::Plain(
                    "CLIENT",
                    vec![
                        Cow::Borrowed(b"KILL"),
                        Cow::Borrowed(b"TYPE"),
                        Cow::Borrowed(b"normal"),
                    ],
                );
                if let Ok(mut r) = killer.batch("", &[kill], false).await
                    && let Some(Reply::Int(n)) = r.pop()
                {
                    killed += n;
                }
            }
            killed
        }
    });
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, token, inc) = (store.clone(), token.clone(), inc.clone());
        tasks.push(tokio::spawn(async move {
            let (mut acked, mut unknown, mut failed) = (0u64, 0u64, 0u64);
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(4) {
                match store.apply(&token, &inc).await {
                    Ok(_) => acked += 1,
                    Err(Error::OutcomeUnknown(_)) => unknown += 1,
                    Err(_) => failed += 1,
                }
            }
            (acked, unknown, failed)
        }));
    }
    let (mut acked, mut unknown, mut failed) = (1u64, 0u64, 0u64);
    for task in tasks {
        let (a, u, f) = task.await.unwrap();
        acked += a;
        unknown += u;
        failed += f;
    }
    stop.store(true, Ordering::SeqCst);
    let killed = kills.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut n = None;
    for _ in 0..50 {
        if let Ok(Some(session)) = store.load_read_only(&token).await {
            n = session.get::<i64>("n").unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = n.expect("the counter") as u64;
    println!(
        "connection cuts: {killed} connections killed; {acked} acknowledged, {unknown} unknown outcome, \
         {failed} failed; counter {n}"
    );
    assert!(killed > 10, "connections were cut ({killed})");
    assert!(
        n >= acked,
        "an acknowledged increment was lost: {n} < {acked}"
    );
    assert!(
        n <= acked + unknown,
        "an increment was applied twice (or a failed one applied): {n} > {acked} + {unknown}"
    );
}

/// With durability on, the `WAIT` travels in the write's pipeline, on the connection to the
/// master serving the session's key, so it counts that write: on a cluster, the `WAIT` calls
/// land on exactly that node (each node's `INFO commandstats`), none elsewhere.
pub async fn wait_runs_on_the_node_of_the_write<C: Connect>(c: &C) {
    let dep = topology::shared(topology::Shape::Cluster)
        .await
        .expect("cluster");
    // Generous: this checks where `WAIT` runs, not how fast replicas answer. With 500 ms the
    // create failed once in a full workspace run on the loaded 2-core machine (not reproduced
    // in 4 runs of this suite alone); a replica missing the window is the likely cause.
    let durability = Some(Durability {
        replicas: 1,
        timeout: Duration::from_secs(3),
    });
    let mut settings = settings_for(&dep, Policy::default());
    settings.durability = durability;
    let store = c.store(settings).await.expect("store");
    let token = store.create(NewSession::new()).await.unwrap().token;
    // Warm the apply script (a NOSCRIPT re-send would run the WAIT twice).
    store
        .apply(&token, &Delta::new().increment("n", 1))
        .await
        .unwrap();
    let key = store.layout().session_key(&token.handle());
    let mut nodes = Vec::new();
    for url in dep.node_urls() {
        let mut settings = Settings::default();
        settings.response_timeout = Duration::from_millis(300);
        settings.url(&url);
        nodes.push((url, c.transport(&settings).await.expect("node transport")));
    }
    async fn waits<T: Transport>(t: &T) -> u64 {
        let stats = command_stats(t).await;
        stats.get("wait").copied().unwrap_or(0)
    }
    let mut before = Vec::new();
    for (_, t) in &nodes {
        before.push(waits(t).await);
    }
    for _ in 0..20 {
        store
            .apply(&token, &Delta::new().increment("n", 1))
            .await
            .unwrap();
    }
    let mut owner = None;
    for ((url, t), before) in nodes.iter().zip(before) {
        let delta = waits(t).await - before;
        // Only the master serving the key answers EXISTS with 1 (the others redirect). Sent
        // once, without the retry policy, which would send a redirected command again
        // until its budget is spent.
        let exists = [Command::Plain(
            "EXISTS",
            vec![Cow::Borrowed(key.as_bytes())],
        )];
        let serves = t.send(&key, &exists, false).await.expect("EXISTS") == [Reply::Int(1)];
        println!("{url}: {delta} WAIT calls, serves the key: {serves}");
        if serves {
            owner = Some(url.clone());
            assert_eq!(delta, 20, "every WAIT ran on the key's master");
        } else {
            assert_eq!(delta, 0, "no WAIT elsewhere ({url})");
        }
    }
    assert!(owner.is_some(), "one node serves the key");
}

/// A master of a 3+3 Cluster is killed, or paused past the node timeout, while 8 tasks
/// increment counters in 32 sessions; then the cluster heals. The store must serve again,
/// every session must be intact (version = 1 + applied increments, never more than
/// attempted), and the acknowledged increments lost are measured (printed), with and
/// without `WAIT 1`.
pub async fn store_survives_cluster_master_failures<C: Connect>(c: &C) {
    let dep = RedisDeployment::start(topology::Shape::Cluster)
        .await
        .expect("cluster");
    let wait = Some(Durability {
        replicas: 1,
        timeout: Duration::from_millis(500),
    });
    let mut summary = Vec::new();
    for fault in [FaultKind::Kill, FaultKind::Pause] {
        for durability in [None, wait] {
            let mut settings = settings_for(&dep, Policy::default());
            settings.durability = durability;
            settings.response_timeout = Duration::from_secs(1);
            let store = Arc::new(c.store(settings).await.expect("store"));
            let workload = Arc::new(
                StoreWorkload::prepare(store.clone(), 32)
                    .await
                    .expect("sessions"),
            );
            let report = run_failover_workload(&dep, FailoverConfig::for_fault(fault), workload)
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
            assert_eq!(report.check.keys_checked, 32);
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
pub async fn store_follows_a_sentinel_failover<C: Connect>(c: &C) {
    let dep = RedisDeployment::start(topology::Shape::Sentinel)
        .await
        .expect("sentinel");
    let mut settings = fast(&dep, Policy::default());
    settings.durability = Some(Durability {
        replicas: 1,
        timeout: Duration::from_secs(1),
    });
    let store = c.store(settings).await.expect("store");
    let token = store.create(NewSession::new()).await.expect("create").token;
    let inc = Delta::new().increment("n", 1);
    assert_eq!(
        store.apply(&token, &inc).await.expect("apply").increments,
        vec![1]
    );

    let master = dep.masters().await.expect("masters")[0];
    dep.kill(master).await.expect("kill");
    let killed = Instant::now();
    let mut errors = 0;
    let value = loop {
        match store.apply(&token, &inc).await {
            Ok(applied) => break applied.increments[0],
            // Right after the failover there is no replica to WAIT for: applied, not durable.
            Err(Error::NotDurable { .. }) => break 2,
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
