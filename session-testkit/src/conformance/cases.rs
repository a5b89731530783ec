//! The cases. Each states one obligation of the contract and fails with a message saying
//! which.

use std::sync::Arc;
use std::time::Duration;

use session_core::{
    Applied, Deadline, Delta, Error, Limit, Limits, MAX_PRINCIPAL_LEN, NewSession, Policy,
    RetryPolicy, SessionStore, SessionStoreExt, SessionSummary, SessionToken, TokenError,
};

use super::{Foreign, StoreFactory};

async fn store<F: StoreFactory>(f: &F, policy: Policy) -> F::Store {
    f.make(policy).await.expect("the factory makes a store")
}

async fn default_store<F: StoreFactory>(f: &F) -> F::Store {
    store(f, Policy::default()).await
}

async fn new_token<S: SessionStore>(s: &S) -> SessionToken {
    s.create(NewSession::new()).await.expect("create").token
}

fn not_found<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    assert!(
        matches!(r, Err(Error::NotFound { .. })),
        "{what}: expected NotFound, got {r:?}"
    );
}

async fn counter<S: SessionStore>(s: &S, t: &SessionToken, name: &str) -> Option<i64> {
    s.load_read_only(t)
        .await
        .expect("load")
        .expect("live")
        .get(name)
        .expect("decode")
}

/// `create` returns a live session at version 1 with its attributes at version 1.
pub async fn create_returns_version_one<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let new = NewSession::new()
        .put("a", &1)
        .unwrap()
        .principal("p")
        .idle_timeout(Duration::from_secs(60));
    let created = s.create(new).await.unwrap();
    assert_eq!(created.session.version, 1);
    assert_eq!(created.session.attribute_version("a"), Some(1));
    assert_eq!(created.session.handle, created.token.handle());
    let loaded = s
        .load_read_only(&created.token)
        .await
        .unwrap()
        .expect("created session loads");
    assert_eq!(loaded.version, 1);
    assert_eq!(loaded.get::<i64>("a").unwrap(), Some(1));
    assert_eq!(loaded.principal.as_deref(), Some("p"));
    assert_eq!(loaded.idle_timeout, Duration::from_secs(60));
}

/// `create_with_token` creates under the given token exactly once, however many callers
/// race for it, and never over a tombstone or a forward.
pub async fn create_with_token_claims_a_token_once<F: StoreFactory>(f: &F) {
    let s = Arc::new(default_store(f).await);
    let token = SessionToken::generate();
    if !f.capabilities().create_with_token {
        let r = s.create_with_token(&token, NewSession::new()).await;
        assert!(
            matches!(r, Err(Error::Unsupported(_))),
            "without the capability: expected Unsupported, got {r:?}"
        );
        return;
    }
    let mut racers = Vec::new();
    for i in 0..16i64 {
        let (s, token) = (s.clone(), token.clone());
        racers.push(tokio::spawn(async move {
            let new = NewSession::new().put("by", &i).unwrap();
            s.create_with_token(&token, new).await.unwrap()
        }));
    }
    let mut winners = Vec::new();
    for racer in racers {
        if let Some(created) = racer.await.unwrap() {
            winners.push(created);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one caller creates the session");
    let created = winners.pop().unwrap();
    assert_eq!(created.token, token);
    assert_eq!(created.session.version, 1);
    let by: i64 = created.session.get("by").unwrap().unwrap();
    assert_eq!(
        counter(&*s, &token, "by").await,
        Some(by),
        "the winner's data is stored"
    );

    // A forward (after rotation) and a tombstone (after delete) keep the token taken.
    let successor = s.rotate(&token).await.unwrap();
    let again = s
        .create_with_token(&token, NewSession::new())
        .await
        .unwrap();
    assert!(again.is_none(), "a forward's token is taken");
    assert_eq!(counter(&*s, &successor, "by").await, Some(by));
    s.delete(&successor).await.unwrap();
    let again = s
        .create_with_token(&successor, NewSession::new())
        .await
        .unwrap();
    assert!(again.is_none(), "a tombstone's token is taken");
    assert!(s.load_read_only(&successor).await.unwrap().is_none());

    // Invalid input is rejected as by `create`, with nothing written.
    let fresh = SessionToken::generate();
    let r = s
        .create_with_token(&fresh, NewSession::new().idle_timeout(Duration::ZERO))
        .await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "got {r:?}");
    assert!(
        s.create_with_token(&fresh, NewSession::new())
            .await
            .unwrap()
            .is_some()
    );
}

/// Invalid input to `create` is a typed error and nothing is written.
pub async fn create_rejects_invalid_input<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let cases = [
        NewSession::new().put_bytes("", b"x".to_vec()),
        NewSession::new().put_bytes("n".repeat(257), b"x".to_vec()),
        NewSession::new().idle_timeout(Duration::ZERO),
        NewSession::new().principal(""),
        NewSession::new().deadline(Deadline::At(session_core::Timestamp::from_millis(1))),
    ];
    for new in cases {
        let r = s.create(new.clone()).await;
        assert!(matches!(r, Err(Error::InvalidInput(_))), "{new:?}: {r:?}");
    }
    let big = NewSession::new().put_bytes("a", vec![0; Limits::default().max_value_bytes + 1]);
    let r = s.create(big).await;
    assert!(
        matches!(
            r,
            Err(Error::LimitExceeded {
                limit: Limit::ValueSize,
                ..
            })
        ),
        "{r:?}"
    );
}

/// Tokens are fresh for every session, and malformed token text never parses.
pub async fn tokens_are_fresh_and_parse_strictly<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let a = new_token(&s).await;
    let b = new_token(&s).await;
    assert_ne!(a, b);
    assert_eq!(SessionToken::parse(&a.expose()), Ok(a.clone()));
    assert_eq!(SessionToken::parse("short"), Err(TokenError::Length(5)));
    assert_eq!(
        SessionToken::parse("AAAAAAAAAAAAAAAAAAAA+A"),
        Err(TokenError::Alphabet(20))
    );
    assert_eq!(
        SessionToken::parse("AAAAAAAAAAAAAAAAAAAAAB"),
        Err(TokenError::NonCanonical)
    );
}

/// An unknown token loads as none and cannot be written to.
pub async fn load_unknown_is_none<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let unknown = SessionToken::generate();
    assert!(s.load(&unknown).await.unwrap().is_none());
    assert!(s.load_read_only(&unknown).await.unwrap().is_none());
    assert!(s.load_some(&unknown, &["a"]).await.unwrap().is_none());
    not_found(
        s.apply(&unknown, &Delta::new().increment("n", 1)).await,
        "apply to unknown",
    );
    not_found(s.touch(&unknown).await, "touch unknown");
    not_found(s.rotate(&unknown).await, "rotate unknown");
    assert!(!s.delete(&unknown).await.unwrap());
    assert!(
        s.load(&unknown).await.unwrap().is_none(),
        "nothing was created"
    );
}

/// `load` moves the last access forward; `load_read_only` does not.
pub async fn load_touches_read_only_does_not<F: StoreFactory>(f: &F) {
    let every_load = Policy {
        touch_interval: Duration::ZERO,
        ..Policy::default()
    };
    let s = store(f, every_load).await;
    let t = new_token(&s).await;
    let first = s.load_read_only(&t).await.unwrap().unwrap().last_access;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        s.load_read_only(&t).await.unwrap().unwrap().last_access,
        first
    );
    let touched = s.load(&t).await.unwrap().unwrap().last_access;
    assert!(touched > first, "load must touch: {touched:?} <= {first:?}");
    assert_eq!(
        s.load_read_only(&t).await.unwrap().unwrap().version,
        1,
        "a touch is no new version"
    );
}

/// With a touch interval, a load touches only when the last touch is at least that old, and
/// never later than half the idle timeout, so a session in use never expires.
pub async fn load_touches_once_per_interval<F: StoreFactory>(f: &F) {
    let s = store(
        f,
        Policy {
            touch_interval: Duration::from_secs(600),
            ..Policy::default()
        },
    )
    .await;
    // Idle 400 ms: the effective interval is 200 ms, not 10 minutes.
    let t = s
        .create(NewSession::new().idle_timeout(Duration::from_millis(400)))
        .await
        .unwrap()
        .token;
    let first = s.load_read_only(&t).await.unwrap().unwrap().last_access;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        s.load(&t).await.unwrap().unwrap().last_access,
        first,
        "a load within the interval writes no touch"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let touched = s.load(&t).await.unwrap().unwrap().last_access;
    assert!(
        touched > first,
        "a due load touches: {touched:?} <= {first:?}"
    );
    assert_eq!(
        s.load_read_only(&t).await.unwrap().unwrap().last_access,
        touched,
        "the touch was stored"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        s.load(&t).await.unwrap().is_some(),
        "loaded twice per idle timeout, the session stays alive past its first expiry"
    );
}

/// `load_some` returns metadata and only the named attributes that exist.
pub async fn load_some_returns_only_named<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let new = NewSession::new()
        .put("a", &1)
        .unwrap()
        .put("b", &2)
        .unwrap()
        .put("c", &3)
        .unwrap();
    let t = s.create(new).await.unwrap().token;
    let some = s.load_some(&t, &["b", "zz"]).await.unwrap().unwrap();
    assert_eq!(
        some.attributes.keys().cloned().collect::<Vec<_>>(),
        vec!["b".to_owned()]
    );
    assert_eq!(some.get::<i64>("b").unwrap(), Some(2));
    assert_eq!(some.version, 1);
    let r = s.load_some(&t, &[""]).await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}");
}

/// Put, remove and increment, with versions stamped by the applying delta.
pub async fn apply_put_remove_increment<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = new_token(&s).await;
    let a = s
        .apply(
            &t,
            &Delta::new().put("x", &"one").unwrap().increment("n", 5),
        )
        .await
        .unwrap();
    assert_eq!((a.version, a.increments.clone()), (2, vec![5]));
    let b = s
        .apply(
            &t,
            &Delta::new()
                .increment("n", -2)
                .increment("n", 10)
                .remove("x"),
        )
        .await
        .unwrap();
    assert_eq!((b.version, b.increments.clone()), (3, vec![3, 13]));
    let session = s.load_read_only(&t).await.unwrap().unwrap();
    assert_eq!(session.version, 3);
    assert_eq!(session.get_bytes("n"), Some(&b"13"[..]));
    assert_eq!(session.attribute_version("n"), Some(3));
    assert!(session.get_bytes("x").is_none());
}

/// Increment of a value that is not a canonical decimal integer is a type mismatch and
/// applies nothing.
pub async fn increment_rejects_non_integers<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = new_token(&s).await;
    for bad in [&b"1.5"[..], b"007", b"abc", b"", b" 1", b"-0"] {
        s.apply(&t, &Delta::new().put_bytes("v", bad.to_vec()))
            .await
            .unwrap();
        let before = s.load_read_only(&t).await.unwrap().unwrap();
        let r = s
            .apply(&t, &Delta::new().increment("ok", 1).increment("v", 1))
            .await;
        assert!(
            matches!(r, Err(Error::TypeMismatch { .. })),
            "{bad:?}: {r:?}"
        );
        assert_eq!(
            s.load_read_only(&t).await.unwrap().unwrap(),
            before,
            "nothing applied"
        );
    }
}

/// Increments outside ±(2^53 - 1) are a typed overflow.
pub async fn increment_overflow_is_typed<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = new_token(&s).await;
    let max = session_core::MAX_COUNTER;
    s.apply(&t, &Delta::new().put("n", &(max - 1)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        s.apply(&t, &Delta::new().increment("n", 1))
            .await
            .unwrap()
            .increments,
        vec![max]
    );
    let r = s.apply(&t, &Delta::new().increment("n", 1)).await;
    assert!(matches!(r, Err(Error::Overflow { .. })), "{r:?}");
    let r = s.apply(&t, &Delta::new().increment("m", max + 1)).await;
    assert!(matches!(r, Err(Error::Overflow { .. })), "{r:?}");
    assert_eq!(counter(&s, &t, "n").await, Some(max));
}

/// A delta that fails late leaves no trace of its earlier operations.
pub async fn apply_is_all_or_nothing<F: StoreFactory>(f: &F) {
    let policy = Policy {
        limits: Limits {
            max_session_bytes: 100,
            ..Limits::default()
        },
        ..Policy::default()
    };
    let s = store(f, policy).await;
    let t = s
        .create(NewSession::new().put("keep", &1).unwrap().principal("p1"))
        .await
        .unwrap()
        .token;
    let before = s.load_read_only(&t).await.unwrap().unwrap();
    let failing = [
        Delta::new()
            .put("a", &2)
            .unwrap()
            .remove("keep")
            .set_principal("p2")
            .put_bytes("t", b"x".to_vec())
            .increment("t", 1),
        Delta::new()
            .increment("keep", 1)
            .put_bytes("big", vec![b'x'; 200]),
    ];
    for delta in failing {
        assert!(s.apply(&t, &delta).await.is_err());
        assert_eq!(
            s.load_read_only(&t).await.unwrap().unwrap(),
            before,
            "{delta:?} left a trace"
        );
    }
}

/// A delta as large as the limits allow is all-or-nothing too: a failing one leaves no
/// trace (not even in the stored size), and a succeeding one lands whole. The sizes are far
/// beyond what one Lua `unpack` or one `HMGET` of a script takes (about 8,000 values), so
/// a store must validate everything first and write in chunks.
pub async fn apply_at_the_largest_delta_is_all_or_nothing<F: StoreFactory>(f: &F) {
    const OPS: usize = 10_000;
    let policy = Policy {
        limits: Limits {
            max_delta_ops: OPS,
            max_session_bytes: 120_000,
            max_value_bytes: 120_000,
        },
        ..Policy::default()
    };
    let s = store(f, policy).await;
    let mut new = NewSession::new();
    for i in 0..OPS / 2 {
        new = new.put_bytes(format!("k{i}"), vec![b'1'; 8]);
    }
    let t = s.create(new).await.unwrap().token;
    let before = s.load_read_only(&t).await.unwrap().unwrap();

    // One put, then removes and increments of every attribute; the last increment fails.
    let mut failing = Delta::new().put_bytes("new", b"x".to_vec());
    for i in 0..OPS / 2 - 1 {
        failing = failing.remove(format!("k{i}"));
    }
    failing = failing.put_bytes("bad", b"not a number".to_vec());
    while failing.ops().len() < OPS {
        failing = failing.increment("bad", 1);
    }
    assert_eq!(failing.ops().len(), OPS);
    assert!(matches!(
        s.apply(&t, &failing).await,
        Err(Error::TypeMismatch { .. })
    ));
    let after = s.load_read_only(&t).await.unwrap().unwrap();
    assert_eq!(after, before, "a failed large delta left a trace");
    assert_eq!(after.size(), before.size());

    // The same shape without the failing increments lands whole.
    let mut landing = Delta::new().put_bytes("new", b"x".to_vec());
    for i in 0..OPS / 2 {
        landing = landing.remove(format!("k{i}"));
    }
    while landing.ops().len() < OPS {
        let n = landing.ops().len();
        landing = landing.put_bytes(format!("p{n}"), b"v".to_vec());
    }
    let applied = s.apply(&t, &landing).await.unwrap();
    assert_eq!(applied.version, before.version + 1);
    let after = s.load_read_only(&t).await.unwrap().unwrap();
    assert_eq!(after.attributes.len(), OPS - OPS / 2);
    assert!(!after.attributes.keys().any(|k| k.starts_with('k')));
    // The stored size followed: a value that fits exactly the remaining room still lands.
    let room = s.policy().limits.max_session_bytes - after.size() - "fill".len();
    s.apply(&t, &Delta::new().put_bytes("fill", vec![b'f'; room]))
        .await
        .unwrap();
    assert!(matches!(
        s.apply(&t, &Delta::new().put_bytes("more", b"m".to_vec()))
            .await,
        Err(Error::LimitExceeded { .. })
    ));
}

/// `if_session_version` admits exactly the version read.
pub async fn guard_session_version<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = new_token(&s).await;
    s.apply(
        &t,
        &Delta::new().if_session_version(1).put("a", &1).unwrap(),
    )
    .await
    .unwrap();
    let r = s
        .apply(
            &t,
            &Delta::new().if_session_version(1).put("a", &2).unwrap(),
        )
        .await;
    assert!(
        matches!(r, Err(Error::Conflict { current_version: 2 })),
        "{r:?}"
    );
    assert_eq!(counter(&s, &t, "a").await, Some(1));
}

/// `if_attribute_version` ignores changes to other attributes.
pub async fn guard_attribute_version<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = new_token(&s).await;
    let v = s
        .apply(&t, &Delta::new().put("a", &1).unwrap())
        .await
        .unwrap()
        .version;
    s.apply(&t, &Delta::new().increment("other", 1))
        .await
        .unwrap();
    s.apply(
        &t,
        &Delta::new()
            .if_attribute_version("a", v)
            .put("a", &2)
            .unwrap(),
    )
    .await
    .unwrap();
    let r = s
        .apply(
            &t,
            &Delta::new()
                .if_attribute_version("a", v)
                .put("a", &3)
                .unwrap(),
        )
        .await;
    assert!(
        matches!(r, Err(Error::Conflict { current_version: 4 })),
        "{r:?}"
    );
    let r = s
        .apply(&t, &Delta::new().if_attribute_version("missing", 1).touch())
        .await;
    assert!(
        matches!(r, Err(Error::Conflict { .. })),
        "a guard on an absent attribute fails: {r:?}"
    );
    assert_eq!(counter(&s, &t, "a").await, Some(2));
}

/// `if_absent` admits only absent attributes.
pub async fn guard_absent<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = new_token(&s).await;
    s.apply(&t, &Delta::new().if_absent("a").put("a", &1).unwrap())
        .await
        .unwrap();
    let r = s
        .apply(&t, &Delta::new().if_absent("a").put("a", &2).unwrap())
        .await;
    assert!(
        matches!(r, Err(Error::Conflict { current_version: 2 })),
        "{r:?}"
    );
    s.apply(&t, &Delta::new().remove("a")).await.unwrap();
    s.apply(&t, &Delta::new().if_absent("a").put("a", &3).unwrap())
        .await
        .unwrap();
    assert_eq!(counter(&s, &t, "a").await, Some(3));
}

/// An empty delta checks existence and guards but writes nothing.
pub async fn empty_delta_writes_nothing<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = new_token(&s).await;
    assert_eq!(s.apply(&t, &Delta::new()).await.unwrap().version, 1);
    let r = s.apply(&t, &Delta::new().if_session_version(7)).await;
    assert!(
        matches!(r, Err(Error::Conflict { current_version: 1 })),
        "{r:?}"
    );
    assert_eq!(s.load_read_only(&t).await.unwrap().unwrap().version, 1);
    not_found(
        s.apply(&SessionToken::generate(), &Delta::new()).await,
        "empty delta on unknown",
    );
}

/// No write recreates a session that is gone.
pub async fn apply_never_recreates<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = new_token(&s).await;
    assert!(s.delete(&t).await.unwrap());
    not_found(
        s.apply(&t, &Delta::new().put("a", &1).unwrap()).await,
        "apply after delete",
    );
    not_found(
        s.apply(&t, &Delta::new().if_absent("a").increment("n", 1))
            .await,
        "guarded apply after delete",
    );
    not_found(s.touch(&t).await, "touch after delete");
    assert!(s.load(&t).await.unwrap().is_none());
}

/// Value size, session size and delta length limits are typed errors, nothing written.
pub async fn limits_are_enforced<F: StoreFactory>(f: &F) {
    let limits = Limits {
        max_value_bytes: 10,
        max_session_bytes: 30,
        max_delta_ops: 4,
    };
    let s = store(
        f,
        Policy {
            limits,
            ..Policy::default()
        },
    )
    .await;
    let t = new_token(&s).await;
    let r = s.apply(&t, &Delta::new().put_bytes("a", vec![0; 11])).await;
    assert!(
        matches!(
            r,
            Err(Error::LimitExceeded {
                limit: Limit::ValueSize,
                actual: 11,
                max: 10
            })
        ),
        "{r:?}"
    );
    s.apply(
        &t,
        &Delta::new()
            .put_bytes("a", vec![0; 10])
            .put_bytes("b", vec![0; 10]),
    )
    .await
    .unwrap();
    let r = s.apply(&t, &Delta::new().put_bytes("c", vec![0; 10])).await;
    assert!(
        matches!(
            r,
            Err(Error::LimitExceeded {
                limit: Limit::SessionSize,
                actual: 33,
                max: 30
            })
        ),
        "{r:?}"
    );
    let r = s
        .apply(&t, &Delta::new().touch().touch().touch().touch().touch())
        .await;
    assert!(
        matches!(
            r,
            Err(Error::LimitExceeded {
                limit: Limit::DeltaOps,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(s.load_read_only(&t).await.unwrap().unwrap().version, 2);
}

/// The session size follows values that are replaced, grown, shrunk and emptied, large ones
/// included (Redis counts the old value of a large put by its length, not by reading it).
pub async fn session_size_follows_replaced_values<F: StoreFactory>(f: &F) {
    let limits = Limits {
        max_value_bytes: 4096,
        max_session_bytes: 3000,
        ..Limits::default()
    };
    let s = store(
        f,
        Policy {
            limits,
            ..Policy::default()
        },
    )
    .await;
    let t = s
        .create(NewSession::new().put_bytes("a", vec![b'a'; 1000]))
        .await
        .unwrap()
        .token;
    let put = |name: &'static str, len: usize| Delta::new().put_bytes(name, vec![b'v'; len]);
    let over = |r: Result<Applied, Error>, actual: usize| {
        assert!(
            matches!(
                r,
                Err(Error::LimitExceeded {
                    limit: Limit::SessionSize,
                    actual: a,
                    max: 3000
                }) if a == actual
            ),
            "{r:?}, expected a session size of {actual}"
        );
    };
    // Sizes count each attribute's name and value: a 1 + 1500, b 1 + 1400.
    s.apply(&t, &put("a", 1500)).await.unwrap();
    s.apply(&t, &put("b", 1400)).await.unwrap();
    over(s.apply(&t, &put("b", 1600)).await, 1501 + 1601);
    s.apply(&t, &put("a", 600)).await.unwrap();
    s.apply(&t, &put("b", 1600)).await.unwrap();
    s.apply(&t, &put("e", 0)).await.unwrap();
    // 601 + 1601 + 1 + 797 = 3000 exactly: allowed; one byte more is not.
    s.apply(&t, &put("e", 797)).await.unwrap();
    over(s.apply(&t, &put("e", 798)).await, 3001);
    s.apply(&t, &put("b", 10)).await.unwrap();
    s.apply(&t, &put("e", 2000)).await.unwrap();
    let session = s.load_read_only(&t).await.unwrap().unwrap();
    let lens: Vec<(&str, usize)> = session
        .attributes
        .iter()
        .map(|(name, a)| (name.as_str(), a.value.len()))
        .collect();
    assert_eq!(lens, [("a", 600), ("b", 10), ("e", 2000)]);
    assert_eq!(session.version, 9);
}

/// Idle timeout, deadline and principal change through deltas.
pub async fn metadata_operations<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = new_token(&s).await;
    let delta = Delta::new()
        .set_idle_timeout(Duration::from_secs(90))
        .set_deadline(Deadline::In(Duration::from_secs(3600)))
        .set_principal("ann")
        .touch();
    s.apply(&t, &delta).await.unwrap();
    let session = s.load_read_only(&t).await.unwrap().unwrap();
    assert_eq!(session.idle_timeout, Duration::from_secs(90));
    assert!(session.deadline.is_some());
    assert_eq!(session.principal.as_deref(), Some("ann"));
    assert_eq!(
        session.expires_at(),
        session.last_access.saturating_add(Duration::from_secs(90))
    );
    s.apply(
        &t,
        &Delta::new().set_deadline(Deadline::Never).clear_principal(),
    )
    .await
    .unwrap();
    let session = s.load_read_only(&t).await.unwrap().unwrap();
    assert!(session.deadline.is_none() && session.principal.is_none());
    assert_eq!(session.version, 3);
}

/// `update` under contention: every acknowledged change is in the final value.
pub async fn update_loses_nothing_under_contention<F: StoreFactory>(f: &F) {
    let s = Arc::new(default_store(f).await);
    let t = new_token(&*s).await;
    let mut tasks = Vec::new();
    for i in 0..16u32 {
        let (s, t) = (s.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let retry = RetryPolicy {
                max_attempts: 100,
                ..RetryPolicy::default()
            };
            s.update_with(&t, retry, |r| {
                let mut list: Vec<u32> = r.get("list")?.unwrap_or_default();
                list.push(i);
                Delta::new().put("list", &list)
            })
            .await
            .map(|_| i)
        }));
    }
    let mut acked = Vec::new();
    for task in tasks {
        if let Ok(i) = task.await.unwrap() {
            acked.push(i);
        }
    }
    let mut list: Vec<u32> = s
        .load_read_only(&t)
        .await
        .unwrap()
        .unwrap()
        .get("list")
        .unwrap()
        .unwrap();
    list.sort_unstable();
    acked.sort_unstable();
    assert_eq!(list, acked, "update lost or invented a change");
    assert!(!acked.is_empty());
}

/// `update` reports a conflict once its attempts run out.
pub async fn update_gives_up_with_conflict<F: StoreFactory>(f: &F) {
    let s = Arc::new(default_store(f).await);
    let t = new_token(&*s).await;
    let retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };
    let (s2, t2) = (s.clone(), t.clone());
    // A writer that bumps "x" between every read and write of the update.
    let mut runs = 0;
    let result = s
        .update_with(&t, retry, |r| {
            runs += 1;
            let x: i64 = r.get("x")?.unwrap_or(0);
            let (s2, t2) = (s2.clone(), t2.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(s2.apply(&t2, &Delta::new().increment("x", 1)))
                    .unwrap();
            })
            .join()
            .unwrap();
            Delta::new().put("x", &(x + 100))
        })
        .await;
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
    assert_eq!(runs, 2);
    assert_eq!(counter(&*s, &t, "x").await, Some(2));
}

/// A deleted session stays dead through its tombstone, and delete reports what it found.
pub async fn delete_leaves_a_tombstone<F: StoreFactory>(f: &F) {
    let s = store(
        f,
        Policy {
            delete_grace: Duration::from_millis(300),
            ..Policy::default()
        },
    )
    .await;
    let t = new_token(&s).await;
    assert!(s.delete(&t).await.unwrap());
    assert!(!s.delete(&t).await.unwrap(), "second delete finds nothing");
    assert!(s.load(&t).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        s.load(&t).await.unwrap().is_none(),
        "still gone after the grace period"
    );
    not_found(
        s.apply(&t, &Delta::new().increment("n", 1)).await,
        "apply after grace",
    );
}

/// Rotation moves content and versions; the old token forwards.
pub async fn rotate_moves_and_forwards<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let old = s
        .create(NewSession::new().put("a", &1).unwrap())
        .await
        .unwrap()
        .token;
    s.apply(&old, &Delta::new().increment("n", 1))
        .await
        .unwrap();
    let new = s.rotate(&old).await.unwrap();
    assert_ne!(new, old);
    let moved = s.load_read_only(&new).await.unwrap().unwrap();
    assert_eq!((moved.version, moved.handle), (2, new.handle()));
    assert_eq!(moved.attribute_version("a"), Some(1));
    let via_old = s.load(&old).await.unwrap().unwrap();
    assert_eq!(
        via_old.handle,
        new.handle(),
        "old token forwards to the new session"
    );
    assert_eq!(
        s.apply(&old, &Delta::new().increment("n", 1))
            .await
            .unwrap()
            .increments,
        vec![2]
    );
    assert_eq!(counter(&s, &new, "n").await, Some(2));
    // Logout with the old cookie ends the new session.
    assert!(s.delete(&old).await.unwrap());
    assert!(s.load(&new).await.unwrap().is_none());
}

/// After the grace period the old token is dead and the new one lives on.
pub async fn rotate_forward_ends_after_grace<F: StoreFactory>(f: &F) {
    let s = store(
        f,
        Policy {
            rotate_grace: Duration::from_millis(300),
            ..Policy::default()
        },
    )
    .await;
    let old = new_token(&s).await;
    let new = s.rotate(&old).await.unwrap();
    assert!(s.load_read_only(&old).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(s.load(&old).await.unwrap().is_none());
    not_found(
        s.apply(&old, &Delta::new().increment("n", 1)).await,
        "apply through expired forward",
    );
    assert!(s.load(&new).await.unwrap().is_some());
}

/// Writes through the old token racing a rotation all land in the new session, and
/// concurrent loads (which touch) do not keep the rotation from completing.
pub async fn rotate_keeps_concurrent_writes<F: StoreFactory>(f: &F) {
    let s = Arc::new(default_store(f).await);
    let old = new_token(&*s).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (s, old, stop) = (s.clone(), old.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(
                    s.load(&old).await.expect("load").is_some(),
                    "the old token forwards"
                );
                // An in-memory store never suspends: let the writers and the rotation run.
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (s, old) = (s.clone(), old.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = 0;
            for _ in 0..25 {
                if s.apply(&old, &Delta::new().increment("n", 1)).await.is_ok() {
                    acked += 1;
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    let new = s.rotate(&old).await.unwrap();
    let mut acked = 0;
    for w in writers {
        acked += w.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    assert_eq!(
        acked, 100,
        "every write through a forwarding token is acknowledged"
    );
    assert_eq!(counter(&*s, &new, "n").await, Some(acked));
}

/// 32 concurrent rotations of one token (a double-submitted login, several tabs) and 16
/// writers through it: one rotation wins, every other one is told the winner's successor
/// (`Error::Rotated`), no acknowledged write is lost, and the old token forwards to that
/// one successor for its grace period.
pub async fn rotate_concurrently_makes_one_successor<F: StoreFactory>(f: &F) {
    let s = Arc::new(default_store(f).await);
    let old = s
        .create(NewSession::new().principal("rotating-user"))
        .await
        .unwrap()
        .token;
    let start = Arc::new(tokio::sync::Barrier::new(48));
    let mut writers = Vec::new();
    for _ in 0..16 {
        let (s, old, start) = (s.clone(), old.clone(), start.clone());
        writers.push(tokio::spawn(async move {
            start.wait().await;
            let mut acked = 0;
            for _ in 0..10 {
                match s.apply(&old, &Delta::new().increment("n", 1)).await {
                    Ok(_) => acked += 1,
                    Err(e) => panic!("a write through the rotating token failed: {e:?}"),
                }
                tokio::task::yield_now().await;
            }
            acked
        }));
    }
    let mut rotations = Vec::new();
    for _ in 0..32 {
        let (s, old, start) = (s.clone(), old.clone(), start.clone());
        rotations.push(tokio::spawn(async move {
            start.wait().await;
            s.rotate(&old).await
        }));
    }
    let mut winners = Vec::new();
    let mut successors = Vec::new();
    for r in rotations {
        match r.await.unwrap() {
            Ok(new) => winners.push(new),
            Err(Error::Rotated { successor }) => successors.push(successor),
            Err(e) => panic!("a concurrent rotation failed otherwise: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins");
    let new = winners.pop().unwrap();
    assert_eq!(successors.len(), 31);
    assert!(
        successors.iter().all(|h| *h == new.handle()),
        "the others are told the winner's successor"
    );
    let mut acked = 0;
    for w in writers {
        acked += w.await.unwrap();
    }
    assert_eq!(
        acked, 160,
        "every write through the old token is acknowledged"
    );
    assert_eq!(counter(&*s, &new, "n").await, Some(160), "no write lost");
    let via_old = s
        .load(&old)
        .await
        .unwrap()
        .expect("the old token still forwards");
    assert_eq!(via_old.handle, new.handle(), "to the one successor");
    // The successor is a session like any other: it rotates once more, with a short chain.
    let next = s.rotate(&new).await.unwrap();
    assert_eq!(s.load(&old).await.unwrap().unwrap().handle, next.handle());
    if f.capabilities().principal_index {
        assert_eq!(
            s.sessions_of("rotating-user").await.unwrap(),
            vec![next.handle()]
        );
    }
}

/// A session expires at its idle timeout.
pub async fn expiry_by_idle_timeout<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = s
        .create(NewSession::new().idle_timeout(Duration::from_millis(300)))
        .await
        .unwrap()
        .token;
    assert!(s.load_read_only(&t).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(s.load(&t).await.unwrap().is_none());
    not_found(
        s.apply(&t, &Delta::new().touch()).await,
        "apply after expiry",
    );
}

/// A session expires at its deadline even when active.
pub async fn expiry_by_deadline<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let new = NewSession::new().deadline(Deadline::In(Duration::from_millis(500)));
    let t = s.create(new).await.unwrap().token;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.touch(&t).await.expect("still live before the deadline");
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        s.load(&t).await.unwrap().is_none(),
        "activity does not outlive the deadline"
    );
}

/// Touching slides the idle expiry.
pub async fn touch_slides_idle_expiry<F: StoreFactory>(f: &F) {
    let s = default_store(f).await;
    let t = s
        .create(NewSession::new().idle_timeout(Duration::from_millis(600)))
        .await
        .unwrap()
        .token;
    tokio::time::sleep(Duration::from_millis(350)).await;
    s.touch(&t).await.unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        s.load(&t).await.unwrap().is_some(),
        "a touched session outlives its first expiry"
    );
    tokio::time::sleep(Duration::from_millis(750)).await;
    assert!(s.load_read_only(&t).await.unwrap().is_none());
}

/// The principal index lists live sessions only.
pub async fn principal_index_lists_and_prunes<F: StoreFactory>(f: &F) {
    if !f.capabilities().principal_index {
        return eprintln!("skipped: the store has no principal index");
    }
    let s = default_store(f).await;
    let p = format!("user-{}", SessionToken::generate().handle().to_hex());
    let a = s
        .create(NewSession::new().principal(p.clone()))
        .await
        .unwrap()
        .token;
    let b = s
        .create(NewSession::new().principal(p.clone()))
        .await
        .unwrap()
        .token;
    let c = s
        .create(NewSession::new().principal(p.clone()))
        .await
        .unwrap()
        .token;
    let mut all = vec![a.handle(), b.handle(), c.handle()];
    all.sort();
    let mut listed = s.sessions_of(&p).await.unwrap();
    listed.sort();
    assert_eq!(listed, all);
    s.delete(&a).await.unwrap();
    s.apply(&b, &Delta::new().set_principal("someone-else"))
        .await
        .unwrap();
    let c2 = s.rotate(&c).await.unwrap();
    assert_eq!(s.sessions_of(&p).await.unwrap(), vec![c2.handle()]);
    assert!(matches!(
        s.sessions_of("").await,
        Err(Error::InvalidInput(_))
    ));
}

/// `delete_all_of` ends every session of the principal and no other.
pub async fn delete_all_of_logs_out_everywhere<F: StoreFactory>(f: &F) {
    if !f.capabilities().principal_index {
        return eprintln!("skipped: the store has no principal index");
    }
    let s = default_store(f).await;
    let p = format!("user-{}", SessionToken::generate().handle().to_hex());
    let mine: Vec<SessionToken> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(
                s.create(NewSession::new().principal(p.clone()))
                    .await
                    .unwrap()
                    .token,
            );
        }
        v
    };
    let other = s
        .create(NewSession::new().principal(format!("{p}-other")))
        .await
        .unwrap()
        .token;
    assert_eq!(s.delete_all_of(&p).await.unwrap(), 3);
    for t in &mine {
        assert!(s.load(t).await.unwrap().is_none());
        not_found(
            s.apply(t, &Delta::new().touch()).await,
            "apply after logout everywhere",
        );
    }
    assert!(s.load(&other).await.unwrap().is_some());
    assert_eq!(s.delete_all_of(&p).await.unwrap(), 0);
}

/// `summaries_of` lists exactly the principal's live sessions, each with the metadata a
/// read-only load gives (expiry instant included), touches none of them, and rejects input
/// as `sessions_of` does.
pub async fn summaries_of_lists_live_sessions_with_metadata<F: StoreFactory>(f: &F) {
    // Every load touches: a store that listed by loading would move the last accesses.
    let every_load = Policy {
        touch_interval: Duration::ZERO,
        ..Policy::default()
    };
    let s = store(f, every_load).await;
    let p = format!("user-{}", SessionToken::generate().handle().to_hex());
    if !f.capabilities().summaries_of {
        let r = s.summaries_of(&p).await;
        assert!(
            matches!(r, Err(Error::Unsupported(_))),
            "without the capability: expected Unsupported, got {r:?}"
        );
        return;
    }
    if !f.capabilities().principal_index {
        return eprintln!("skipped: the store has no principal index");
    }
    let mine = |idle: Duration| NewSession::new().principal(p.clone()).idle_timeout(idle);
    let secs = Duration::from_secs;
    // Listed: `a` (written to, so at version 2), `b` (large, which a store may keep in
    // another form; its deadline comes before its idle expiry; touched below) and `d2` (the
    // successor of a rotation).
    let a = s.create(mine(secs(60))).await.unwrap().token;
    s.apply(&a, &Delta::new().increment("n", 1)).await.unwrap();
    let large = mine(secs(120))
        .deadline(Deadline::In(secs(90)))
        .put("large", &"x".repeat(8 * 1024))
        .unwrap();
    let b = s.create(large).await.unwrap().token;
    let d = s.create(mine(secs(180))).await.unwrap().token;
    let d2 = s.rotate(&d).await.unwrap();
    // Not listed: deleted, expired, given to another principal, another principal's.
    let c = s.create(mine(secs(300))).await.unwrap().token;
    assert!(s.delete(&c).await.unwrap());
    let e = s
        .create(mine(Duration::from_millis(150)))
        .await
        .unwrap()
        .token;
    let g = s.create(mine(secs(60))).await.unwrap().token;
    s.apply(&g, &Delta::new().set_principal(format!("{p}-else")))
        .await
        .unwrap();
    let other_p = format!("{p}-other");
    let other = s
        .create(NewSession::new().principal(other_p.clone()))
        .await
        .unwrap()
        .token;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.load_read_only(&e).await.unwrap().is_none(), "e expired");
    s.touch(&b).await.unwrap();

    let records = |tokens: Vec<SessionToken>| {
        let s = &s;
        async move {
            let mut records = Vec::new();
            for t in &tokens {
                records.push(s.load_read_only(t).await.unwrap().expect("live"));
            }
            records.sort_by_key(|r| r.handle);
            records
        }
    };
    let before = records(vec![a.clone(), b.clone(), d2.clone()]).await;
    // Time passes, so that a listing that touched would show in the last accesses.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut listed = s.summaries_of(&p).await.unwrap();
    listed.sort_by_key(|summary| summary.handle);
    let expected: Vec<SessionSummary> = before.iter().map(SessionSummary::from).collect();
    assert_eq!(
        listed, expected,
        "the live sessions of the principal (a, b and d's successor), as loaded read-only"
    );
    // Field by field, with the expiry computed here rather than by `From`.
    for (summary, record) in listed.iter().zip(&before) {
        assert_eq!(summary.handle, record.handle);
        assert_eq!(
            (summary.version, summary.created_at, summary.last_access),
            (record.version, record.created_at, record.last_access)
        );
        assert_eq!(
            (summary.idle_timeout, summary.deadline),
            (record.idle_timeout, record.deadline)
        );
        let idle = record.last_access.saturating_add(record.idle_timeout);
        let expires_at = record.deadline.map_or(idle, |deadline| idle.min(deadline));
        assert_eq!(summary.expires_at, expires_at, "the expiry instant");
    }
    let of = |t: &SessionToken| {
        let handle = t.handle();
        listed
            .iter()
            .find(|summary| summary.handle == handle)
            .expect("listed")
    };
    assert_eq!(
        (of(&a).version, of(&a).idle_timeout),
        (2, secs(60)),
        "a was written once"
    );
    let b_summary = of(&b);
    assert_eq!(b_summary.idle_timeout, secs(120));
    assert!(
        b_summary.last_access > b_summary.created_at,
        "b's touch shows: {b_summary:?}"
    );
    assert_eq!(
        Some(b_summary.expires_at),
        b_summary.deadline,
        "b expires at its deadline, before its idle expiry"
    );
    assert_eq!((of(&d2).version, of(&d2).idle_timeout), (1, secs(180)));

    // Listing touched nothing.
    assert_eq!(
        records(vec![a.clone(), b.clone(), d2.clone()]).await,
        before,
        "summaries_of must not touch (or otherwise change) the sessions it lists"
    );
    // The same sessions as sessions_of.
    let mut handles = s.sessions_of(&p).await.unwrap();
    handles.sort();
    let listed_handles: Vec<_> = listed.iter().map(|summary| summary.handle).collect();
    assert_eq!(
        handles, listed_handles,
        "summaries_of lists what sessions_of lists"
    );
    // Other principals: their own sessions, or none.
    let theirs = records(vec![other]).await;
    assert_eq!(
        s.summaries_of(&other_p).await.unwrap(),
        vec![SessionSummary::from(&theirs[0])]
    );
    assert_eq!(
        s.summaries_of(&format!("{p}-nobody")).await.unwrap(),
        Vec::new()
    );
    // Invalid input: the error of sessions_of.
    for bad in [String::new(), "x".repeat(MAX_PRINCIPAL_LEN + 1)] {
        let listed = s.summaries_of(&bad).await;
        let expected = s.sessions_of(&bad).await;
        assert!(
            matches!(listed, Err(Error::InvalidInput(_))),
            "a principal of {} bytes: {listed:?}",
            bad.len()
        );
        assert_eq!(
            listed.unwrap_err().to_string(),
            expected.unwrap_err().to_string(),
            "summaries_of rejects input as sessions_of does"
        );
    }
}

async fn foreign_case<F: StoreFactory>(f: &F, kind: Foreign) {
    if !f.capabilities().foreign_data {
        return eprintln!("skipped: the factory cannot plant foreign data");
    }
    let s = default_store(f).await;
    let t = SessionToken::generate();
    f.plant_foreign(&s, &t.handle(), kind).await.expect("plant");
    let corrupt = |what: &str, r: Result<String, Error>| {
        assert!(
            matches!(r, Err(Error::Corrupt(_))),
            "{kind:?}, {what}: expected Corrupt, got {r:?}"
        );
    };
    corrupt("load", s.load(&t).await.map(|x| format!("{x:?}")));
    corrupt(
        "load_read_only",
        s.load_read_only(&t).await.map(|x| format!("{x:?}")),
    );
    corrupt(
        "load_some",
        s.load_some(&t, &["a"]).await.map(|x| format!("{x:?}")),
    );
    corrupt(
        "apply",
        s.apply(&t, &Delta::new().put("a", &1).unwrap())
            .await
            .map(|x| format!("{x:?}")),
    );
    corrupt("touch", s.touch(&t).await.map(|x| format!("{x:?}")));
    corrupt("rotate", s.rotate(&t).await.map(|x| format!("{x:?}")));
    corrupt("delete", s.delete(&t).await.map(|x| format!("{x:?}")));
    assert!(
        f.foreign_intact(&s, &t.handle(), kind)
            .await
            .expect("inspect"),
        "{kind:?}: foreign data changed"
    );
}

/// A key of the wrong type is a typed error, and the foreign value is left alone.
pub async fn foreign_wrong_type_is_typed_and_untouched<F: StoreFactory>(f: &F) {
    foreign_case(f, Foreign::WrongType).await;
}

/// A garbled field is a typed error, and the foreign value is left alone.
pub async fn foreign_garbled_field_is_typed_and_untouched<F: StoreFactory>(f: &F) {
    foreign_case(f, Foreign::GarbledField).await;
}
