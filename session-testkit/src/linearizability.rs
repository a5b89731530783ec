//! A linearizability checker for session histories (Wing & Gong's search, with Lowe's
//! memoization of visited states), partitioned by session.
//!
//! Every session is an independent object, so a history is checked one session at a time:
//! the search looks for an order of that session's calls that respects real time (a call
//! that returned before another was invoked comes first) and in which the model, replaying
//! the calls in that order, gives every recorded outcome. Calls with an indeterminate
//! outcome (a timeout, a lost connection) may take effect anywhere after their invocation,
//! or never. The search is bounded: past `step_limit` it answers [`Verdict::Unknown`] rather
//! than running on.

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Write as _};

use session_core::{Model, SessionHandle, Timestamp};

use crate::history::{Call, Outcome, run_on_model};

/// One call in a concurrent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Which client made it.
    pub client: usize,
    /// Which session it addressed (the partition).
    pub session: usize,
    /// The handle of the token it used.
    pub handle: SessionHandle,
    /// The call.
    pub call: Call,
    /// Logical time of the invocation.
    pub invoked: u64,
    /// Logical time of the response.
    pub returned: u64,
    /// What the store answered.
    pub outcome: Outcome,
}

/// What the checker concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every session's calls have a valid linearization.
    Linearizable,
    /// This session's calls have none.
    NotLinearizable(Violation),
    /// The search for this session hit the step limit.
    Unknown {
        /// The session.
        session: usize,
        /// Steps taken.
        steps: usize,
    },
}

/// A session history with no linearization, and how far the search got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The session.
    pub session: usize,
    /// The session's calls, by invocation.
    pub events: Vec<Event>,
    /// The longest order of calls (indexes into `events`) the model accepted.
    pub longest: Vec<usize>,
    /// After `longest`, what each call that could have come next expected instead.
    pub rejected: Vec<(usize, Outcome)>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "session {}: no linearization of {} calls",
            self.session,
            self.events.len()
        )?;
        writeln!(f, "{}", render(&self.events))?;
        let order: Vec<String> = self.longest.iter().map(|i| format!("#{i}")).collect();
        writeln!(f, "longest valid order: [{}]", order.join(" "))?;
        for (i, expected) in &self.rejected {
            let e = &self.events[*i];
            writeln!(
                f,
                "  next could be #{i}, but it returned `{}` where the model gives `{expected}`",
                e.outcome
            )?;
        }
        Ok(())
    }
}

/// A history as a readable table, one call per line in invocation order.
pub fn render(events: &[Event]) -> String {
    let mut out = String::new();
    for (i, e) in events.iter().enumerate() {
        let _ = writeln!(
            out,
            "  #{i:<3} client {:<2} [{:>4}..{:>4}] {:<48} -> {}",
            e.client,
            e.invoked,
            e.returned,
            describe(&e.call),
            e.outcome
        );
    }
    out
}

fn describe(call: &Call) -> String {
    match call {
        Call::Apply(delta) => {
            let mut parts: Vec<String> = delta.guards().iter().map(|g| format!("{g:?}")).collect();
            parts.extend(delta.ops().iter().map(|op| match op {
                session_core::Op::Put { name, value } => {
                    format!("put {name}={}", String::from_utf8_lossy(value))
                }
                other => format!("{other:?}"),
            }));
            format!("apply({})", parts.join(", "))
        }
        other => format!("{other:?}"),
    }
}

/// Checks a history. `initial` holds each session's model state before the history began
/// (keyed like [`Event::session`]); `now` is the time the model runs at (histories are
/// checked with timeouts long enough that time does not matter).
pub fn check(
    events: &[Event],
    initial: &BTreeMap<usize, Model>,
    now: Timestamp,
    step_limit: usize,
) -> Verdict {
    let mut sessions: BTreeMap<usize, Vec<Event>> = BTreeMap::new();
    for e in events {
        sessions.entry(e.session).or_default().push(e.clone());
    }
    for (session, mut calls) in sessions {
        calls.sort_by_key(|e| e.invoked);
        let model = initial.get(&session).cloned().unwrap_or_default();
        match check_session(session, calls, model, now, step_limit) {
            Verdict::Linearizable => {}
            other => return other,
        }
    }
    Verdict::Linearizable
}

fn check_session(
    session: usize,
    events: Vec<Event>,
    model: Model,
    now: Timestamp,
    step_limit: usize,
) -> Verdict {
    let n = events.len();
    // An indeterminate call never "returned": it constrains nothing and need not be placed.
    let returned: Vec<u64> = events
        .iter()
        .map(|e| {
            if e.outcome.is_indeterminate() {
                u64::MAX
            } else {
                e.returned
            }
        })
        .collect();
    let required: Vec<bool> = events
        .iter()
        .map(|e| !e.outcome.is_indeterminate())
        .collect();
    let rotated_to = |e: &Event| match &e.outcome {
        Outcome::Rotated(h) => Some(*h),
        _ => None,
    };

    let mut visited: HashSet<(Vec<bool>, Model)> = HashSet::new();
    let mut stack: Vec<(Vec<bool>, Model, Vec<usize>)> = vec![(vec![false; n], model, Vec::new())];
    let mut best: (Vec<usize>, Vec<(usize, Outcome)>) = (Vec::new(), Vec::new());
    let mut steps = 0;
    while let Some((done, model, order)) = stack.pop() {
        if (0..n).all(|i| done[i] || !required[i]) {
            return Verdict::Linearizable;
        }
        steps += 1;
        if steps > step_limit {
            return Verdict::Unknown { session, steps };
        }
        // A call may go next if no pending call returned before it was invoked.
        let horizon = (0..n)
            .filter(|&i| !done[i])
            .map(|i| returned[i])
            .min()
            .unwrap_or(u64::MAX);
        let mut rejected = Vec::new();
        for i in (0..n).filter(|&i| !done[i] && events[i].invoked < horizon) {
            let e = &events[i];
            let mut next = model.clone();
            let got = run_on_model(&mut next, now, &e.handle, &e.call, rotated_to(e));
            if required[i] && got != e.outcome {
                rejected.push((i, got));
                continue;
            }
            let mut now_done = done.clone();
            now_done[i] = true;
            if visited.insert((now_done.clone(), next.clone())) {
                let mut next_order = order.clone();
                next_order.push(i);
                stack.push((now_done, next, next_order));
            }
        }
        if order.len() >= best.0.len() && !rejected.is_empty() {
            best = (order, rejected);
        }
    }
    Verdict::NotLinearizable(Violation {
        session,
        events,
        longest: best.0,
        rejected: best.1,
    })
}
