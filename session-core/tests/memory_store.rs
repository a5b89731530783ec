//! MemoryStore under real concurrency, and its memory reclamation.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use session_core::{
    Delta, Error, ManualClock, MemoryStore, NewSession, Policy, RetryPolicy, SessionStore,
    SessionStoreExt, SessionToken, Timestamp,
};

const TASKS: u64 = 64;
const ROUNDS: u64 = 24;

/// 64 tasks hammer one session with three kinds of writes at once. The final state must
/// account for every acknowledged operation and nothing else:
/// - plain increments: the counter equals the number acknowledged;
/// - `update` appending to a JSON list (a whole-value read-modify-write): the list holds
///   exactly the acknowledged appends, each once;
/// - hand-written compare-and-set with an attribute guard: the value equals the number of
///   successful swaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_lose_nothing() {
    let store = MemoryStore::new();
    let token = store.create(NewSession::new()).await.unwrap().token;
    let acked_increments = Arc::new(AtomicU64::new(0));
    let acked_swaps = Arc::new(AtomicU64::new(0));

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (store, token) = (store.clone(), token.clone());
        let (increments, swaps) = (acked_increments.clone(), acked_swaps.clone());
        tasks.push(tokio::spawn(async move {
            let mut appended = Vec::new();
            for round in 0..ROUNDS {
                match (task + round) % 3 {
                    0 => {
                        if store
                            .apply(&token, &Delta::new().increment("hits", 1))
                            .await
                            .is_ok()
                        {
                            increments.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    1 => {
                        let item = task * 1000 + round;
                        let retry = RetryPolicy {
                            max_attempts: 200,
                            ..RetryPolicy::default()
                        };
                        let result = store
                            .update_with(&token, retry, |s| {
                                let mut log: Vec<u64> = s.get("log")?.unwrap_or_default();
                                log.push(item);
                                Delta::new().put("log", &log)
                            })
                            .await;
                        match result {
                            Ok(_) => appended.push(item),
                            Err(Error::Conflict { .. }) => {}
                            Err(e) => panic!("update failed: {e}"),
                        }
                    }
                    _ => loop {
                        let s = store.load(&token).await.unwrap().unwrap();
                        let current: i64 = s.get("cas").unwrap().unwrap_or(0);
                        let delta = match s.attribute_version("cas") {
                            Some(v) => Delta::new().if_attribute_version("cas", v),
                            None => Delta::new().if_absent("cas"),
                        };
                        let delta = delta.put("cas", &(current + 1)).unwrap();
                        match store.apply(&token, &delta).await {
                            Ok(_) => {
                                swaps.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            Err(Error::Conflict { .. }) => tokio::task::yield_now().await,
                            Err(e) => panic!("swap failed: {e}"),
                        }
                    },
                }
            }
            appended
        }));
    }
    let mut acked_appends = BTreeSet::new();
    for task in tasks {
        acked_appends.extend(task.await.unwrap());
    }

    let session = store.load(&token).await.unwrap().unwrap();
    let hits: u64 = session.get("hits").unwrap().unwrap();
    let log: Vec<u64> = session.get("log").unwrap().unwrap();
    let cas: u64 = session.get("cas").unwrap().unwrap();
    assert_eq!(hits, acked_increments.load(Ordering::SeqCst));
    assert_eq!(cas, acked_swaps.load(Ordering::SeqCst));
    let logged: BTreeSet<u64> = log.iter().copied().collect();
    assert_eq!(logged.len(), log.len(), "an append landed twice");
    assert_eq!(logged, acked_appends, "appends lost or invented");
    // Every operation was acknowledged in this run (the retry budgets are generous), so
    // the totals are also known exactly.
    let per_kind = TASKS * ROUNDS / 3;
    assert_eq!(
        (hits, cas, log.len() as u64),
        (per_kind, per_kind, per_kind)
    );
    // One version per applied delta, plus the creation.
    assert_eq!(session.version, 1 + 3 * per_kind);
}

fn manual_store(policy: Policy) -> (MemoryStore, ManualClock) {
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let store = MemoryStore::with(policy, Arc::new(clock.clone())).unwrap();
    (store, clock)
}

#[tokio::test]
async fn expired_sessions_are_reclaimed() {
    let (store, clock) = manual_store(Policy::default());
    for _ in 0..100 {
        store
            .create(NewSession::new().idle_timeout(Duration::from_secs(1)))
            .await
            .unwrap();
    }
    let keeper = store.create(NewSession::new()).await.unwrap().token;
    assert_eq!(store.len(), 101);
    clock.advance(Duration::from_secs(2));
    // Not swept yet, but loads see the expiry instant themselves.
    assert_eq!(store.len(), 101);
    // The next operation after the sweep interval reclaims them.
    clock.advance(Duration::from_secs(5));
    assert!(store.load(&keeper).await.unwrap().is_some());
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn rotate_forwards_then_dies() {
    let policy = Policy {
        rotate_grace: Duration::from_secs(10),
        ..Policy::default()
    };
    let (store, clock) = manual_store(policy);
    let old = store
        .create(NewSession::new().principal("ann"))
        .await
        .unwrap()
        .token;
    let new = store.rotate(&old).await.unwrap();
    assert_ne!(old, new);
    store
        .apply(&old, &Delta::new().increment("n", 1))
        .await
        .unwrap();
    assert_eq!(
        store
            .load(&new)
            .await
            .unwrap()
            .unwrap()
            .get::<i64>("n")
            .unwrap(),
        Some(1)
    );
    assert_eq!(store.sessions_of("ann").await.unwrap(), vec![new.handle()]);
    clock.advance(Duration::from_secs(10));
    assert!(store.load(&old).await.unwrap().is_none());
    assert!(matches!(
        store.apply(&old, &Delta::new().touch()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(store.load(&new).await.unwrap().is_some());
}

#[tokio::test]
async fn update_gives_up_with_a_conflict_and_reports_not_found() {
    let store = MemoryStore::new();
    let token = store.create(NewSession::new()).await.unwrap().token;
    // A closure that changes the session behind its own back always conflicts.
    let retry = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let mut runs = 0;
    let inner = store.clone();
    let result = store
        .update_with(&token, retry, |s| {
            runs += 1;
            let _ = s.get::<i64>("x")?;
            let bump = Delta::new().increment("x", 1);
            // Blocking on the store from inside the closure is fine for the memory store.
            poll_once(inner.apply(&token, &bump))?;
            Delta::new().put("x", &0)
        })
        .await;
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
    assert_eq!(runs, 3);

    let unknown = SessionToken::generate();
    let result = store.update(&unknown, |_| Ok(Delta::new().touch())).await;
    assert!(matches!(result, Err(Error::NotFound { .. })));
}

/// Polls a future that is ready on its first poll (the memory store never awaits).
fn poll_once<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the memory store never awaits"),
    }
}

#[tokio::test]
async fn update_guards_only_what_it_read() {
    let store = MemoryStore::new();
    let token = store.create(NewSession::new()).await.unwrap().token;
    let other = store.clone();
    let t2 = token.clone();
    let mut runs = 0;
    // A concurrent change to an attribute the closure did not read must not force a retry.
    store
        .update(&token, |s| {
            runs += 1;
            let n: i64 = s.get("mine")?.unwrap_or(0);
            if runs == 1 {
                poll_once(other.apply(&t2, &Delta::new().increment("theirs", 1)))?;
            }
            Delta::new().put("mine", &(n + 1))
        })
        .await
        .unwrap();
    assert_eq!(runs, 1);

    // A concurrent change to what it read forces exactly one retry, and both changes land.
    let mut runs = 0;
    store
        .update(&token, |s| {
            runs += 1;
            let n: i64 = s.get("mine")?.unwrap_or(0);
            if runs == 1 {
                poll_once(other.apply(&t2, &Delta::new().increment("mine", 10)))?;
            }
            Delta::new().put("mine", &(n + 1))
        })
        .await
        .unwrap();
    assert_eq!(runs, 2);
    let mine: i64 = store
        .load(&token)
        .await
        .unwrap()
        .unwrap()
        .get("mine")
        .unwrap()
        .unwrap();
    assert_eq!(mine, 12);
}
