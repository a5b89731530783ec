//! Laws of the model, checked with generated inputs. The model is the oracle every store is
//! compared with, so each law is stated independently of the model's own code.

use std::time::Duration;

use proptest::prelude::*;
use session_core::{
    Deadline, Delta, Entry, Error, Limit, Limits, Model, NewSession, Op, Policy, SessionHandle,
    SessionSummary, SessionToken, Timestamp,
};

const T0: Timestamp = Timestamp::from_millis(1_000_000);
const NAMES: [&str; 4] = ["a", "b", "c", "n"];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(offset_ms: u64) -> Timestamp {
    T0.saturating_add(ms(offset_ms))
}

fn handle(seed: u8) -> SessionHandle {
    SessionToken::from_bytes([seed; 16]).handle()
}

/// Touching on every load, so the laws about expiry and touches need no interval arithmetic
/// (the interval has its own tests below).
fn every_load_touches() -> Policy {
    Policy {
        touch_interval: Duration::ZERO,
        ..Policy::default()
    }
}

fn model() -> Model {
    Model::new(every_load_touches())
}

/// A model with one fresh session (idle timeout one hour) under `handle(1)`.
fn one_session(policy: Policy) -> (Model, SessionHandle) {
    let mut m = Model::new(policy);
    let h = handle(1);
    let new = NewSession::new().idle_timeout(Duration::from_secs(3600));
    m.create(T0, h, new).unwrap().unwrap();
    (m, h)
}

fn name() -> impl Strategy<Value = String> {
    proptest::sample::select(&NAMES[..]).prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-5i64..5).prop_map(|n| n.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ]
}

/// Unguarded operations that may fail (increment of a non-integer).
fn plain_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (name(), value()).prop_map(|(name, value)| Op::Put { name, value }),
        name().prop_map(|name| Op::Remove { name }),
        (name(), -3i64..4).prop_map(|(name, by)| Op::Increment { name, by }),
        Just(Op::Touch),
    ]
}

fn not_found<T>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::NotFound { .. }))
}

fn counter(m: &Model, h: &SessionHandle, now: Timestamp, name: &str) -> Option<i64> {
    m.load_read_only(now, h).unwrap().get::<i64>(name).unwrap()
}

proptest! {
    /// Law: increments commute. Applied in any order, they reach the same total, and each
    /// reports the running sum of the order it ran in.
    #[test]
    fn increments_commute(
        amounts in proptest::collection::vec(-1000i64..1000, 1..12),
        seed in any::<u64>(),
    ) {
        let mut shuffled = amounts.clone();
        // A seeded Fisher-Yates keeps the case reproducible.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut totals = Vec::new();
        for order in [&amounts, &shuffled] {
            let (mut m, h) = one_session(Policy::default());
            let mut running = 0;
            for by in order {
                running += by;
                let applied = m.apply(T0, &h, &Delta::new().increment("n", *by)).unwrap();
                prop_assert_eq!(applied.increments, vec![running]);
            }
            totals.push(counter(&m, &h, T0, "n"));
        }
        prop_assert_eq!(totals[0], Some(amounts.iter().sum::<i64>()));
        prop_assert_eq!(totals[0], totals[1]);
    }

    /// Law: a guarded write applies exactly when what it guards is unchanged; otherwise it
    /// changes nothing and reports the current version. So a guarded put never overwrites a
    /// version it did not see.
    #[test]
    fn guards_admit_exactly_the_unchanged(
        history in proptest::collection::vec(
            (plain_op(), name(), 0u64..8, 0u8..3, value()), 1..30),
    ) {
        let (mut m, h) = one_session(Policy::default());
        for (op, guarded_name, guess, kind, new_value) in history {
            // Some unguarded change happens...
            let _ = m.apply(T0, &h, &Delta::new().op(op));
            // ...then a guarded put, with a guess at what the writer read.
            let before = m.load_read_only(T0, &h).unwrap();
            let (delta, should_hold) = match kind {
                0 => (Delta::new().if_session_version(guess), before.version == guess),
                1 => (
                    Delta::new().if_attribute_version(guarded_name.clone(), guess),
                    before.attribute_version(&guarded_name) == Some(guess),
                ),
                _ => (
                    Delta::new().if_absent(guarded_name.clone()),
                    !before.attributes.contains_key(&guarded_name),
                ),
            };
            let delta = delta.put_bytes(guarded_name.clone(), new_value.clone());
            match m.apply(T0, &h, &delta) {
                Ok(applied) => {
                    prop_assert!(should_hold, "guard passed on a changed session");
                    let after = m.load_read_only(T0, &h).unwrap();
                    prop_assert_eq!(applied.version, before.version + 1);
                    prop_assert_eq!(after.get_bytes(&guarded_name), Some(&new_value[..]));
                    prop_assert_eq!(after.attribute_version(&guarded_name), Some(applied.version));
                }
                Err(Error::Conflict { current_version }) => {
                    prop_assert!(!should_hold, "guard failed on an unchanged session");
                    prop_assert_eq!(current_version, before.version);
                    prop_assert_eq!(m.load_read_only(T0, &h).unwrap(), before);
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }

    /// Law: apply is all-or-nothing. A delta whose last operation fails leaves the session,
    /// its version and the principal index exactly as they were.
    #[test]
    fn apply_is_all_or_nothing(
        prefix in proptest::collection::vec(plain_op(), 0..6),
        failure in 0u8..3,
    ) {
        let policy = Policy {
            limits: Limits { max_session_bytes: 200, ..Limits::default() },
            ..Policy::default()
        };
        let (mut m, h) = one_session(policy);
        // Every name the prefix may touch holds a value, so any leaked change shows.
        let setup = NAMES
            .iter()
            .fold(Delta::new(), |d, name| d.put_bytes(*name, b"7".to_vec()))
            .put_bytes("text", b"not a number".to_vec())
            .set_principal("p1");
        m.apply(T0, &h, &setup).unwrap();
        let before = m.entry(&h).cloned();
        // The prefix may itself fail; either way the whole delta must leave no trace.
        let mut delta = prefix.into_iter().fold(Delta::new().set_principal("p2"), Delta::op);
        delta = match failure {
            0 => delta.increment("text", 1),
            1 => delta.put_bytes("big", vec![b'x'; 300]),
            _ => delta
                .put_bytes("n", session_core::MAX_COUNTER.to_string())
                .increment("n", 1),
        };
        let err = m.apply(T0, &h, &delta).unwrap_err();
        let expected_kind = matches!(
            (&err, failure),
            (Error::TypeMismatch { .. }, _)
                | (Error::LimitExceeded { limit: Limit::SessionSize, .. }, 1)
                | (Error::Overflow { .. }, 2)
        );
        prop_assert!(expected_kind, "unexpected error {:?}", err);
        prop_assert_eq!(m.entry(&h).cloned(), before);
        prop_assert_eq!(m.sessions_of(T0, "p1").unwrap(), vec![h]);
        prop_assert!(m.sessions_of(T0, "p2").unwrap().is_empty());
    }

    /// Law: delete is final. Whatever happens afterwards (applies, touches, rotations,
    /// other creations, time passing), the deleted token never loads and nothing recreates
    /// it.
    #[test]
    fn delete_is_final(
        later in proptest::collection::vec((0u8..6, plain_op(), 0u64..120_000), 1..20),
    ) {
        let (mut m, h) = one_session(Policy::default());
        prop_assert!(m.delete(T0, &h));
        let mut now = T0;
        for (i, (action, op, step)) in later.into_iter().enumerate() {
            now = now.saturating_add(ms(step));
            match action {
                0 => prop_assert!(not_found(m.apply(now, &h, &Delta::new().op(op)))),
                1 => prop_assert!(not_found(m.touch(now, &h))),
                2 => prop_assert!(not_found(m.rotate(now, &h, handle(100 + i as u8)))),
                3 => prop_assert!(!m.delete(now, &h)),
                4 => m.purge(now),
                _ => {
                    m.create(now, handle(50 + i as u8), NewSession::new()).unwrap();
                }
            }
            prop_assert_eq!(m.load(now, &h), None);
            prop_assert_eq!(m.load_read_only(now, &h), None);
        }
    }

    /// Law: a rotated token forwards to the new session strictly within the grace period,
    /// and only there; afterwards it is dead while the new token lives on.
    #[test]
    fn rotation_forwards_only_within_grace(grace in 1u64..10_000, probe in 0u64..20_000) {
        let policy = Policy { rotate_grace: ms(grace), ..Policy::default() };
        let (mut m, old) = one_session(policy);
        m.apply(T0, &old, &Delta::new().increment("n", 1)).unwrap();
        let new = handle(2);
        let moved = m.rotate(T0, &old, new).unwrap().unwrap();
        prop_assert_eq!(moved.version, 2);

        let now = at(probe);
        let through_old = m.load_read_only(now, &old);
        let write = m.apply(now, &old, &Delta::new().increment("n", 1));
        if probe < grace {
            prop_assert_eq!(through_old.map(|s| s.handle), Some(new));
            prop_assert_eq!(write.unwrap().increments, vec![2]);
            prop_assert_eq!(counter(&m, &new, now, "n"), Some(2));
        } else {
            prop_assert_eq!(through_old, None);
            prop_assert!(not_found(write));
            prop_assert_eq!(counter(&m, &new, now, "n"), Some(1));
        }
        // The old handle itself never holds a live session again.
        let forwards = matches!(m.entry(&old), Some(Entry::Forward { to, .. }) if *to == new);
        prop_assert!(forwards);
    }

    /// Law: a session expires exactly at min(last access + idle timeout, deadline): it is
    /// there one millisecond before and gone at that instant, for loads and applies.
    #[test]
    fn expiry_is_exact(
        idle in 1u64..100_000,
        deadline in proptest::option::of(1u64..100_000),
        touch_at in proptest::option::of(0u64..100_000),
    ) {
        let mut m = model();
        let h = handle(1);
        let new = NewSession::new()
            .idle_timeout(ms(idle))
            .deadline(deadline.map_or(Deadline::Never, |d| Deadline::At(at(d))));
        m.create(T0, h, new).unwrap().unwrap();
        let mut last_access = 0;
        if let Some(t) = touch_at {
            let expires = deadline.map_or(idle, |d| idle.min(d));
            let touched = m.load(at(t), &h);
            prop_assert_eq!(touched.is_some(), t < expires);
            if t < expires {
                last_access = t;
            }
        }
        let expiry = deadline.map_or(last_access + idle, |d| (last_access + idle).min(d));
        prop_assert!(m.load_read_only(at(expiry - 1), &h).is_some());
        prop_assert_eq!(
            m.load_read_only(at(expiry - 1), &h).unwrap().expires_at(),
            at(expiry)
        );
        prop_assert_eq!(m.load_read_only(at(expiry), &h), None);
        prop_assert!(not_found(m.apply(at(expiry), &h, &Delta::new().touch())));
        prop_assert_eq!(m.load(at(expiry), &h), None);
    }
}

#[test]
fn touch_interval_skips_young_touches() {
    let policy = Policy {
        touch_interval: ms(1000),
        ..Policy::default()
    };
    let (mut m, h) = one_session(policy);
    assert_eq!(m.load(at(999), &h).unwrap().last_access, T0);
    assert_eq!(m.load(at(1000), &h).unwrap().last_access, at(1000));
    // read-only never touches; an explicit touch always does.
    assert_eq!(
        m.load_read_only(at(1500), &h).unwrap().last_access,
        at(1000)
    );
    m.touch(at(1500), &h).unwrap();
    assert_eq!(
        m.load_read_only(at(1500), &h).unwrap().last_access,
        at(1500)
    );
}

#[test]
fn touch_interval_is_capped_at_half_the_idle_timeout() {
    let policy = Policy {
        touch_interval: ms(60_000),
        ..Policy::default()
    };
    let mut m = Model::new(policy.clone());
    let new = NewSession::new().idle_timeout(ms(1001));
    let h = handle(7);
    m.create(T0, h, new).unwrap().unwrap();
    // Half of 1001 ms in whole milliseconds: 500.
    assert_eq!(policy.effective_touch_interval(ms(1001)), ms(500));
    assert_eq!(m.load(at(499), &h).unwrap().last_access, T0);
    assert_eq!(m.load(at(500), &h).unwrap().last_access, at(500));
    // Loaded every half idle timeout, the session never expires.
    assert_eq!(m.load(at(1000), &h).unwrap().last_access, at(1000));
    assert!(m.load(at(1900), &h).is_some());
}

#[test]
fn versions_count_applied_deltas_and_stamp_written_attributes() {
    let (mut m, h) = one_session(Policy::default());
    let a = m
        .apply(T0, &h, &Delta::new().put_bytes("a", b"1".to_vec()))
        .unwrap();
    let b = m
        .apply(T0, &h, &Delta::new().increment("n", 5).remove("zzz"))
        .unwrap();
    // An empty delta checks and writes nothing.
    let c = m
        .apply(T0, &h, &Delta::new().if_session_version(3))
        .unwrap();
    assert_eq!((a.version, b.version, c.version), (2, 3, 3));
    let s = m.load_read_only(T0, &h).unwrap();
    assert_eq!(s.attribute_version("a"), Some(2));
    assert_eq!(s.attribute_version("n"), Some(3));
    assert_eq!(s.get::<i64>("n").unwrap(), Some(5));
    // Remove then guard on absence.
    m.apply(T0, &h, &Delta::new().remove("a")).unwrap();
    assert!(
        m.apply(
            T0,
            &h,
            &Delta::new().if_absent("a").put_bytes("a", b"2".to_vec())
        )
        .is_ok()
    );
}

#[test]
fn load_some_returns_only_the_named_attributes_and_touches() {
    let (mut m, h) = one_session(every_load_touches());
    m.apply(
        T0,
        &h,
        &Delta::new()
            .put_bytes("a", b"1".to_vec())
            .put_bytes("b", b"2".to_vec()),
    )
    .unwrap();
    let some = m.load_some(at(10), &h, &["b", "missing"]).unwrap().unwrap();
    assert_eq!(some.attributes.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!((some.version, some.last_access), (2, at(10)));
    assert!(matches!(
        m.load_some(at(10), &h, &[""]),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(m.load_some(at(10), &handle(9), &["a"]).unwrap(), None);
}

#[test]
fn errors_come_in_the_documented_order() {
    let (mut m, h) = one_session(Policy::default());
    let missing = handle(9);
    // Input before existence.
    let bad = Delta::new().put_bytes("", b"x".to_vec());
    assert!(matches!(
        m.apply(T0, &missing, &bad),
        Err(Error::InvalidInput(_))
    ));
    // Existence before guards.
    let guarded = Delta::new().if_session_version(99).touch();
    assert!(matches!(
        m.apply(T0, &missing, &guarded),
        Err(Error::NotFound { .. })
    ));
    // Guards before operations.
    m.apply(T0, &h, &Delta::new().put_bytes("s", b"x".to_vec()))
        .unwrap();
    let both = Delta::new().if_session_version(99).increment("s", 1);
    assert!(matches!(
        m.apply(T0, &h, &both),
        Err(Error::Conflict { current_version: 2 })
    ));
    assert!(matches!(
        m.apply(T0, &h, &Delta::new().increment("s", 1)),
        Err(Error::TypeMismatch { .. })
    ));
}

#[test]
fn create_validates_and_never_reuses_an_occupied_handle() {
    let mut m = model();
    let h = handle(1);
    let huge = NewSession::new().put_bytes("a", vec![0; 70 * 1024]);
    assert!(matches!(
        m.create(T0, h, huge),
        Err(Error::LimitExceeded {
            limit: Limit::ValueSize,
            ..
        })
    ));
    let past = NewSession::new().deadline(Deadline::At(T0));
    assert!(matches!(m.create(T0, h, past), Err(Error::InvalidInput(_))));
    let zero = NewSession::new().idle_timeout(Duration::ZERO);
    assert!(matches!(m.create(T0, h, zero), Err(Error::InvalidInput(_))));
    assert!(m.is_empty());

    let s = m
        .create(T0, h, NewSession::new().put_bytes("a", b"1".to_vec()))
        .unwrap()
        .unwrap();
    assert_eq!((s.version, s.attribute_version("a")), (1, Some(1)));
    assert_eq!(
        m.create(T0, h, NewSession::new()).unwrap(),
        None,
        "live session"
    );
    m.delete(T0, &h);
    assert_eq!(
        m.create(at(1), h, NewSession::new()).unwrap(),
        None,
        "tombstone"
    );
    let after_grace = at(60_000);
    assert!(
        m.create(after_grace, h, NewSession::new())
            .unwrap()
            .is_some()
    );
}

#[test]
fn principal_index_tolerates_stale_entries_and_prunes_them() {
    let mut m = model();
    let (a, b, c) = (handle(1), handle(2), handle(3));
    for h in [a, b, c] {
        m.create(T0, h, NewSession::new().principal("alice"))
            .unwrap()
            .unwrap();
    }
    let mut all = vec![a, b, c];
    all.sort();
    assert_eq!(m.sessions_of(T0, "alice").unwrap(), all);

    // b changes owner, c is rotated: neither old entry may be returned.
    m.apply(T0, &b, &Delta::new().set_principal("bob")).unwrap();
    let c2 = handle(4);
    m.rotate(T0, &c, c2).unwrap().unwrap();
    let mut expected = vec![a, c2];
    expected.sort();
    assert_eq!(m.sessions_of(T0, "alice").unwrap(), expected);
    assert_eq!(m.sessions_of(T0, "bob").unwrap(), vec![b]);

    // Log alice out everywhere; bob keeps his session.
    assert_eq!(m.delete_all_of(T0, "alice").unwrap(), 2);
    assert!(m.sessions_of(T0, "alice").unwrap().is_empty());
    assert!(m.load_read_only(T0, &a).is_none() && m.load_read_only(T0, &c).is_none());
    assert!(m.load_read_only(T0, &b).is_some());
    assert!(matches!(m.sessions_of(T0, ""), Err(Error::InvalidInput(_))));
}

#[test]
fn summaries_list_the_live_sessions_of_sessions_of_untouched() {
    let mut m = model();
    let (a, b, c, d) = (handle(1), handle(2), handle(3), handle(4));
    let new = |idle| NewSession::new().principal("alice").idle_timeout(ms(idle));
    m.create(T0, a, new(60_000)).unwrap().unwrap();
    let deadline = Deadline::At(at(30_000));
    m.create(T0, b, new(60_000).deadline(deadline))
        .unwrap()
        .unwrap();
    m.create(T0, c, new(100)).unwrap().unwrap();
    m.create(T0, d, new(60_000)).unwrap().unwrap();
    m.apply(at(10), &a, &Delta::new().increment("n", 1))
        .unwrap();
    m.touch(at(20), &b).unwrap();
    m.delete(at(30), &d);

    // At 200 ms c has expired and d is deleted.
    let now = at(200);
    let listed = m.summaries_of(now, "alice").unwrap();
    let handles: Vec<SessionHandle> = listed.iter().map(|s| s.handle).collect();
    assert_eq!(handles, m.sessions_of(now, "alice").unwrap());
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(handles, expected);
    for summary in &listed {
        let record = m.load_read_only(now, &summary.handle).unwrap();
        assert_eq!(*summary, SessionSummary::from(&record));
        assert_eq!(summary.last_access, record.last_access, "no touch");
    }
    let of = |h| listed.iter().find(|s| s.handle == h).unwrap();
    assert_eq!((of(a).version, of(a).expires_at), (2, at(60_000)));
    assert_eq!((of(b).last_access, of(b).expires_at), (at(20), at(30_000)));
    assert!(m.summaries_of(now, "bob").unwrap().is_empty());
    assert!(matches!(
        m.summaries_of(now, ""),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn delete_follows_forwards_and_rotation_happens_once() {
    let (mut m, old) = one_session(Policy::default());
    let mid = handle(2);
    let newest = handle(3);
    m.rotate(T0, &old, mid).unwrap().unwrap();
    // A second rotation through the old token changes nothing and names the successor, so
    // concurrent rotations of one token make one successor.
    assert!(matches!(
        m.rotate(T0, &old, newest),
        Err(Error::Rotated { successor }) if successor == mid
    ));
    assert!(m.load_read_only(T0, &newest).is_none());
    // The successor rotates like any session.
    m.rotate(T0, &mid, newest).unwrap().unwrap();
    assert_eq!(m.load_read_only(T0, &old).unwrap().handle, newest);
    // Logging out with the oldest cookie ends the session itself.
    assert!(m.delete(T0, &old));
    assert_eq!(m.load_read_only(T0, &newest), None);
    assert_eq!(m.load_read_only(T0, &mid), None);
}

#[test]
fn purge_forgets_only_what_cannot_be_observed() {
    let policy = Policy {
        delete_grace: ms(100),
        rotate_grace: ms(100),
        ..Policy::default()
    };
    let mut m = Model::new(policy);
    let (live, gone, moved) = (handle(1), handle(2), handle(3));
    for h in [live, gone, moved] {
        m.create(T0, h, NewSession::new().idle_timeout(ms(1000)))
            .unwrap()
            .unwrap();
    }
    m.delete(T0, &gone);
    m.rotate(T0, &moved, handle(4)).unwrap().unwrap();
    m.purge(at(99));
    assert_eq!(m.len(), 4);
    m.purge(at(100));
    assert_eq!(
        m.len(),
        2,
        "tombstone and forward are gone after their grace"
    );
    m.purge(at(1000));
    assert!(m.is_empty(), "sessions are gone at their idle expiry");
}

#[test]
fn increments_reject_non_counters_and_overflow() {
    let (mut m, h) = one_session(Policy::default());
    for bad in [&b"1.5"[..], b"007", b"", b"\"3\""] {
        m.apply(T0, &h, &Delta::new().put_bytes("x", bad.to_vec()))
            .unwrap();
        assert!(matches!(
            m.apply(T0, &h, &Delta::new().increment("x", 1)),
            Err(Error::TypeMismatch { .. })
        ));
    }
    m.apply(
        T0,
        &h,
        &Delta::new()
            .put("x", &(session_core::MAX_COUNTER - 1))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        m.apply(T0, &h, &Delta::new().increment("x", 1))
            .unwrap()
            .increments,
        vec![session_core::MAX_COUNTER]
    );
    assert!(matches!(
        m.apply(T0, &h, &Delta::new().increment("x", 1)),
        Err(Error::Overflow { .. })
    ));
}
