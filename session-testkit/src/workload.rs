//! Generated workloads: sequential ones compared call by call with the model, and
//! concurrent ones checked for linearizability and for the contract's invariants.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use session_core::{Delta, Model, NewSession, Policy, SessionStore, SessionToken, Timestamp};

use crate::history::{Call, ErrorKind, Outcome, View, create_in_both, run_on_model, run_on_store};
use crate::linearizability::{self, Event, Verdict};

/// Reads a case count from the environment, with a default for CI.
///
/// `SESSION_TESTKIT_CASES` scales every property test of the testkit (a soak run might use
/// 1000); the defaults keep a CI run within a few minutes.
pub fn cases(default: u32) -> u32 {
    std::env::var("SESSION_TESTKIT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The model's clock for checks in which time must not matter (timeouts are long).
pub const MODEL_NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

/// The policy histories run under: long timeouts and graces (time must not matter), and
/// limits that histories reach (so limit errors occur), with room for two large values: a
/// session then crosses the sizes at which a store may change how it keeps a session (on
/// Redis, packed in one string up to 4 KiB, a hash above), both ways.
pub fn checked_policy() -> Policy {
    Policy {
        limits: session_core::Limits {
            max_value_bytes: 3000,
            max_session_bytes: 6000,
            max_delta_ops: 8,
        },
        default_idle_timeout: Duration::from_secs(3600),
        delete_grace: Duration::from_secs(600),
        rotate_grace: Duration::from_secs(600),
        touch_interval: Duration::ZERO,
    }
}

const NAMES: [&str; 3] = ["a", "b", "n"];

fn name() -> impl Strategy<Value = String> {
    proptest::sample::select(&NAMES[..]).prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (-3i64..10).prop_map(|n| n.to_string().into_bytes()),
        1 => proptest::collection::vec(b'a'..=b'z', 0..6),
        1 => Just(vec![b'x'; 3100]), // over the value limit
        1 => Just(vec![b'y'; 2500]), // two make a large session, three exceed the limit
    ]
}

fn delta() -> impl Strategy<Value = Delta> {
    let guard = prop_oneof![
        (1u64..8).prop_map(|v| Delta::new().if_session_version(v)),
        (name(), 1u64..8).prop_map(|(n, v)| Delta::new().if_attribute_version(n, v)),
        name().prop_map(|n| Delta::new().if_absent(n)),
    ];
    let op = prop_oneof![
        4 => (name(), value()).prop_map(|(n, v)| session_core::Op::Put { name: n, value: v }),
        2 => name().prop_map(|n| session_core::Op::Remove { name: n }),
        4 => (name(), -2i64..5).prop_map(|(n, by)| session_core::Op::Increment { name: n, by }),
        1 => Just(session_core::Op::Touch),
        1 => (1u64..7200).prop_map(|s| session_core::Op::SetIdleTimeout(Duration::from_secs(s))),
        1 => prop_oneof![
            Just(session_core::Deadline::Never),
            Just(session_core::Deadline::In(Duration::from_secs(7200))),
        ].prop_map(session_core::Op::SetDeadline),
        1 => proptest::option::of(prop_oneof![Just("p1".to_owned()), Just("p2".to_owned())])
            .prop_map(session_core::Op::SetPrincipal),
    ];
    (
        proptest::option::weighted(0.3, guard),
        proptest::collection::vec(op, 0..4),
    )
        .prop_map(|(guard, ops)| ops.into_iter().fold(guard.unwrap_or_default(), Delta::op))
}

/// Any call, for sequential model equivalence.
pub fn any_call() -> impl Strategy<Value = Call> {
    prop_oneof![
        3 => Just(Call::Load),
        1 => Just(Call::LoadReadOnly),
        1 => proptest::collection::vec(name(), 0..3).prop_map(Call::LoadSome),
        8 => delta().prop_map(Call::Apply),
        1 => Just(Call::Touch),
        1 => Just(Call::Delete),
        1 => Just(Call::Rotate),
    ]
}

/// A step of a sequential workload.
#[derive(Debug, Clone)]
pub enum Step {
    /// Create a session (it gets the next token slot).
    Create(NewSession),
    /// A call through the token in a slot (modulo the number of slots; none yet: an
    /// unknown token).
    Call(usize, Call),
    /// `sessions_of`.
    SessionsOf(String),
    /// `delete_all_of`.
    DeleteAllOf(String),
}

/// Sequential workloads over a few sessions.
pub fn sequential_workload(max_steps: usize) -> impl Strategy<Value = Vec<Step>> {
    let new_session = (
        proptest::collection::vec((name(), value()), 0..3),
        proptest::option::of(prop_oneof![Just("p1".to_owned()), Just("p2".to_owned())]),
    )
        .prop_map(|(attributes, principal)| NewSession {
            attributes,
            principal,
            ..NewSession::default()
        });
    let principal = prop_oneof![Just("p1".to_owned()), Just("p2".to_owned())];
    let step = prop_oneof![
        2 => new_session.prop_map(Step::Create),
        12 => (0usize..6, any_call()).prop_map(|(slot, call)| Step::Call(slot, call)),
        1 => principal.clone().prop_map(Step::SessionsOf),
        1 => principal.prop_map(Step::DeleteAllOf),
    ];
    proptest::collection::vec(step, 1..max_steps)
}

/// Runs a sequential workload on `store` and on the model; the first disagreement is
/// returned as a readable report of the history up to it.
pub async fn check_equivalence<S: SessionStore + ?Sized>(
    store: &S,
    steps: &[Step],
) -> Result<(), String> {
    let mut model = Model::new(store.policy());
    let mut tokens: Vec<SessionToken> = Vec::new();
    let unknown = SessionToken::generate();
    let mut log = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let (what, got, want) = match step {
            Step::Create(new) => {
                let got = store.create(new.clone()).await;
                // The model creates under the store's handle; if the store refused, under a
                // fresh one (which no later step can address).
                let handle = got
                    .as_ref()
                    .map_or_else(|_| SessionToken::generate().handle(), |c| c.token.handle());
                let want = match model.create(MODEL_NOW, handle, new.clone()) {
                    Ok(Some(s)) => Ok(View::from(&s)),
                    Ok(None) => Err(ErrorKind::Other("handle taken".into())),
                    Err(e) => Err(ErrorKind::from(&e)),
                };
                let got = got.map(|c| {
                    tokens.push(c.token);
                    View::from(&c.session)
                });
                let got = got.map_err(|e| ErrorKind::from(&e));
                (
                    format!("create {new:?}"),
                    format!("{got:?}"),
                    format!("{want:?}"),
                )
            }
            Step::Call(slot, call) => {
                let token = match tokens.len() {
                    0 => unknown.clone(),
                    len => tokens[slot % len].clone(),
                };
                let (got, new_token) = run_on_store(store, &token, call).await;
                let rotated = new_token.as_ref().map(SessionToken::handle);
                let want = run_on_model(&mut model, MODEL_NOW, &token.handle(), call, rotated);
                tokens.extend(new_token);
                (
                    format!("{call:?} via slot {slot}"),
                    format!("{got:?}"),
                    format!("{want:?}"),
                )
            }
            Step::SessionsOf(p) => {
                let got = store
                    .sessions_of(p)
                    .await
                    .map(sorted)
                    .map_err(|e| ErrorKind::from(&e));
                let want = model
                    .sessions_of(MODEL_NOW, p)
                    .map(sorted)
                    .map_err(|e| ErrorKind::from(&e));
                (
                    format!("sessions_of {p}"),
                    format!("{got:?}"),
                    format!("{want:?}"),
                )
            }
            Step::DeleteAllOf(p) => {
                let got = store
                    .delete_all_of(p)
                    .await
                    .map_err(|e| ErrorKind::from(&e));
                let want = model
                    .delete_all_of(MODEL_NOW, p)
                    .map_err(|e| ErrorKind::from(&e));
                (
                    format!("delete_all_of {p}"),
                    format!("{got:?}"),
                    format!("{want:?}"),
                )
            }
        };
        log.push(format!("  {i:>3}: {what} -> {got}"));
        if got != want {
            return Err(format!(
                "step {i} differs from the model\n  store: {got}\n  model: {want}\nhistory:\n{}",
                log.join("\n")
            ));
        }
    }
    Ok(())
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// A concurrent workload: for each client, its calls as (session index, call).
pub type Concurrent = Vec<Vec<(usize, Call)>>;

/// Calls for concurrent histories: counters, small puts, guarded writes, reads, and rare
/// deletes and rotations. Only increments touch `n`, so acknowledged increments can be
/// counted against its final value.
pub fn concurrent_call() -> impl Strategy<Value = Call> {
    let small = proptest::collection::vec(b'a'..=b'z', 1..4);
    prop_oneof![
        6 => Just(Call::Apply(Delta::new().increment("n", 1))),
        2 => small.clone().prop_map(|v| Call::Apply(Delta::new().put_bytes("a", v))),
        1 => small.clone().prop_map(|v| Call::Apply(Delta::new().if_absent("b").put_bytes("b", v))),
        1 => (1u64..6, small).prop_map(|(g, v)| Call::Apply(Delta::new().if_session_version(g).put_bytes("a", v))),
        1 => Just(Call::Apply(Delta::new().remove("a").remove("b"))),
        3 => Just(Call::Load),
        1 => Just(Call::LoadReadOnly),
        1 => Just(Call::LoadSome(vec!["n".to_owned()])),
        1 => Just(Call::Touch),
        1 => prop_oneof![39 => Just(Call::Touch), 1 => Just(Call::Delete)],
        1 => prop_oneof![19 => Just(Call::Load), 1 => Just(Call::Rotate)],
    ]
}

/// 2 to `max_clients` clients with up to `max_ops` calls each over `sessions` sessions.
pub fn concurrent_workload(
    max_clients: usize,
    max_ops: usize,
    sessions: usize,
) -> impl Strategy<Value = Concurrent> {
    let client = proptest::collection::vec((0..sessions, concurrent_call()), 1..=max_ops);
    proptest::collection::vec(client, 2..=max_clients)
}

/// A concurrent run: the history and what the checks need.
#[derive(Debug)]
pub struct ConcurrentRun {
    /// Every call with invocation and response order.
    pub events: Vec<Event>,
    /// Each session's model state before the run.
    pub initial: BTreeMap<usize, Model>,
    /// Each session's token.
    pub tokens: Vec<SessionToken>,
    /// Each session as read (read-only) through its token after the run.
    pub finals: Vec<Option<View>>,
}

/// Runs the clients truly concurrently (one tokio task each) against `store`, recording
/// invocation and response order with one global counter.
pub async fn run_concurrent<S: SessionStore + 'static>(
    store: Arc<S>,
    workload: &Concurrent,
    sessions: usize,
) -> Result<ConcurrentRun, session_core::Error> {
    let mut initial = BTreeMap::new();
    let mut tokens = Vec::new();
    for s in 0..sessions {
        let mut model = Model::new(store.policy());
        tokens.push(create_in_both(&*store, &mut model, MODEL_NOW, NewSession::new()).await?);
        initial.insert(s, model);
    }
    let clock = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (client, calls) in workload.iter().enumerate() {
        let (store, clock, tokens, calls) =
            (store.clone(), clock.clone(), tokens.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            let mut events = Vec::new();
            for (session, call) in calls {
                let token = &tokens[session];
                let invoked = clock.fetch_add(1, Ordering::SeqCst);
                let (outcome, _) = run_on_store(&*store, token, &call).await;
                let returned = clock.fetch_add(1, Ordering::SeqCst);
                events.push(Event {
                    client,
                    session,
                    handle: token.handle(),
                    call,
                    invoked,
                    returned,
                    outcome,
                });
            }
            events
        }));
    }
    let mut events = Vec::new();
    for task in tasks {
        events.extend(task.await.map_err(session_core::Error::backend)?);
    }
    events.sort_by_key(|e| e.invoked);
    let mut finals = Vec::new();
    for token in &tokens {
        finals.push(store.load_read_only(token).await?.as_ref().map(View::from));
    }
    Ok(ConcurrentRun {
        events,
        initial,
        tokens,
        finals,
    })
}

/// What the checks of a concurrent run found.
#[derive(Debug)]
pub struct Report {
    /// The linearizability verdict.
    pub verdict: Verdict,
    /// Sessions whose counter misses acknowledged increments (or has more than were made).
    pub lost_increments: Vec<LostIncrements>,
    /// Calls that saw or changed a session after its deletion was acknowledged.
    pub resurrections: Vec<String>,
    /// Loads that saw the pre-rotation session after the rotation was acknowledged.
    pub stale_forwards: Vec<String>,
}

/// Increments counted against a counter's final value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostIncrements {
    /// The session.
    pub session: usize,
    /// Sum of acknowledged increments.
    pub acknowledged: i64,
    /// Sum of increments whose outcome is unknown.
    pub indeterminate: i64,
    /// The counter after the run.
    pub final_value: i64,
}

impl Report {
    /// True if a check found an anomaly (an "unknown" verdict is not one).
    pub fn has_anomalies(&self) -> bool {
        matches!(self.verdict, Verdict::NotLinearizable(_))
            || !self.lost_increments.is_empty()
            || !self.resurrections.is_empty()
            || !self.stale_forwards.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.verdict {
            Verdict::Linearizable => writeln!(f, "linearizable")?,
            Verdict::NotLinearizable(v) => write!(f, "NOT linearizable: {v}")?,
            Verdict::Unknown { session, steps } => {
                writeln!(f, "unknown: session {session} after {steps} steps")?
            }
        }
        for l in &self.lost_increments {
            writeln!(
                f,
                "session {}: {} increments acknowledged (+{} unknown), counter ends at {}: {} lost",
                l.session,
                l.acknowledged,
                l.indeterminate,
                l.final_value,
                l.acknowledged - l.final_value
            )?;
        }
        for r in self.resurrections.iter().chain(&self.stale_forwards) {
            writeln!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Checks a run: linearizability per session, and the contract's invariants (no lost
/// increment, no resurrection, no stale forward), each reported concretely.
pub fn verify(run: &ConcurrentRun, step_limit: usize) -> Report {
    let verdict = linearizability::check(&run.events, &run.initial, MODEL_NOW, step_limit);
    let mut lost_increments = Vec::new();
    let mut resurrections = Vec::new();
    let mut stale_forwards = Vec::new();
    for (session, token) in run.tokens.iter().enumerate() {
        let events: Vec<&Event> = run.events.iter().filter(|e| e.session == session).collect();
        let increment_of = |e: &Event| match &e.call {
            Call::Apply(d) => d
                .ops()
                .iter()
                .map(|op| match op {
                    session_core::Op::Increment { name, by } if name == "n" => *by,
                    _ => 0,
                })
                .sum(),
            _ => 0,
        };
        let acknowledged: i64 = events
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Applied(_)))
            .map(|e| increment_of(e))
            .sum();
        let indeterminate: i64 = events
            .iter()
            .filter(|e| e.outcome.is_indeterminate())
            .map(|e| increment_of(e))
            .sum();
        if let Some(view) = &run.finals[session] {
            let final_value = view
                .attributes
                .get("n")
                .and_then(|(v, _)| session_core::parse_counter(v))
                .unwrap_or(0);
            if final_value < acknowledged || final_value > acknowledged + indeterminate {
                lost_increments.push(LostIncrements {
                    session,
                    acknowledged,
                    indeterminate,
                    final_value,
                });
            }
        }
        let deleted_at = events
            .iter()
            .filter(|e| e.outcome == Outcome::Deleted(true))
            .map(|e| e.returned)
            .min();
        if let Some(at) = deleted_at {
            for e in events.iter().filter(|e| e.invoked > at) {
                let alive = matches!(
                    e.outcome,
                    Outcome::Loaded(Some(_))
                        | Outcome::Applied(_)
                        | Outcome::Touched
                        | Outcome::Rotated(_)
                );
                if alive {
                    resurrections.push(format!(
                        "session {session}: {:?} invoked at {} after the delete acknowledged at {at} returned {}",
                        e.call, e.invoked, e.outcome
                    ));
                }
            }
            if run.finals[session].is_some() {
                resurrections.push(format!(
                    "session {session}: still loads after its acknowledged delete"
                ));
            }
        }
        let rotated_at = events
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Rotated(_)))
            .map(|e| e.returned)
            .min();
        if let Some(at) = rotated_at {
            for e in events.iter().filter(|e| e.invoked > at) {
                if let Outcome::Loaded(Some(v)) = &e.outcome
                    && v.handle == token.handle()
                {
                    stale_forwards.push(format!(
                        "session {session}: load invoked at {} saw the pre-rotation session after the rotation returned at {at}",
                        e.invoked
                    ));
                }
            }
        }
    }
    Report {
        verdict,
        lost_increments,
        resurrections,
        stale_forwards,
    }
}
