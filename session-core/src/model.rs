//! The contract as a pure, deterministic state machine: the oracle every store is held to.
//!
//! Every operation takes the current time explicitly and does no I/O, so a test can replay
//! any history and compare a real store's answers with the model's. It favours being obvious
//! over being fast; [`MemoryStore`](crate::MemoryStore) wraps it behind a lock.
//!
//! The order in which an operation checks things is part of the contract, because it decides
//! which error a bad request gets:
//! 1. input that needs no stored state (names, sizes, timeouts): [`Error::InvalidInput`],
//!    [`Error::LimitExceeded`], [`Error::Overflow`];
//! 2. the session: [`Error::NotFound`] if absent, expired, deleted or past its forward;
//! 3. guards: [`Error::Conflict`];
//! 4. operations in order: [`Error::TypeMismatch`], [`Error::Overflow`];
//! 5. the resulting session size: [`Error::LimitExceeded`].

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

use crate::delta::{Applied, Delta, Guard, Op, parse_counter};
use crate::error::{Error, Limit, Result};
use crate::handle::SessionHandle;
use crate::policy::{self, Limits, MAX_COUNTER, MAX_FORWARDS, Policy};
use crate::session::{Attribute, NewSession, SessionRecord, SessionSummary};
use crate::time::Timestamp;

/// What a handle holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entry {
    /// A session (possibly past its expiry, until purged: loads check the instant).
    Live(SessionRecord),
    /// A deleted session, kept until `until` so nothing can write it back.
    Tombstone {
        /// End of the grace period.
        until: Timestamp,
    },
    /// A rotated token, forwarding to its successor until `until`.
    Forward {
        /// The successor.
        to: SessionHandle,
        /// End of the grace period.
        until: Timestamp,
    },
}

/// The model: all sessions and the principal index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Model {
    policy: Policy,
    entries: BTreeMap<SessionHandle, Entry>,
    /// Principal -> handles. May hold stale handles (sessions since deleted, expired, rotated
    /// or given another principal); readers prune them, as a Redis index would have to.
    principals: BTreeMap<String, BTreeSet<SessionHandle>>,
}

impl Model {
    /// An empty model with `policy`.
    pub fn new(policy: Policy) -> Self {
        Model {
            policy,
            ..Default::default()
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// What `handle` holds right now, for tests and diagnostics.
    pub fn entry(&self, handle: &SessionHandle) -> Option<&Entry> {
        self.entries.get(handle)
    }

    /// Number of entries held (live, expired-but-unpurged, tombstones, forwards).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Puts a session as it is, replacing whatever its handle held. For stores that keep
    /// whole records and let the model compute each change on a copy.
    pub fn restore(&mut self, session: SessionRecord) {
        self.index(&session);
        self.entries.insert(session.handle, Entry::Live(session));
    }

    /// Creates a session under `handle`; `Ok(None)` if the handle is taken (the caller picks
    /// another token).
    pub fn create(
        &mut self,
        now: Timestamp,
        handle: SessionHandle,
        new: NewSession,
    ) -> Result<Option<SessionRecord>> {
        let new = prepare_new(&self.policy, new)?;
        let deadline = new.deadline.resolve(now);
        if deadline.is_some_and(|d| d <= now) {
            return Err(past_deadline());
        }
        let session = new.into_session(handle, now, deadline);
        if self.occupied(now, &handle) {
            return Ok(None);
        }
        self.index(&session);
        self.entries.insert(handle, Entry::Live(session.clone()));
        Ok(Some(session))
    }

    /// Loads and touches (subject to [`Policy::touch_interval`]).
    pub fn load(&mut self, now: Timestamp, handle: &SessionHandle) -> Option<SessionRecord> {
        let target = self.resolve(now, handle)?;
        let due = matches!(self.entries.get(&target),
            Some(Entry::Live(s)) if self.policy.touch_due(s, now));
        let session = self.live_mut(&target);
        if due {
            session.last_access = now;
        }
        Some(session.clone())
    }

    /// Loads without touching.
    pub fn load_read_only(&self, now: Timestamp, handle: &SessionHandle) -> Option<SessionRecord> {
        let target = self.resolve(now, handle)?;
        match self.entries.get(&target) {
            Some(Entry::Live(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// Like [`Model::load`], but keeps only the named attributes.
    pub fn load_some(
        &mut self,
        now: Timestamp,
        handle: &SessionHandle,
        names: &[&str],
    ) -> Result<Option<SessionRecord>> {
        validate_names(names, &self.policy.limits)?;
        Ok(self.load(now, handle).map(|mut session| {
            session
                .attributes
                .retain(|name, _| names.contains(&name.as_str()));
            session
        }))
    }

    /// Applies a delta all-or-nothing.
    pub fn apply(
        &mut self,
        now: Timestamp,
        handle: &SessionHandle,
        delta: &Delta,
    ) -> Result<Applied> {
        delta.validate(&self.policy.limits)?;
        let target = self
            .resolve(now, handle)
            .ok_or(Error::NotFound { handle: *handle })?;
        let current = self.live_mut(&target).clone();
        for guard in delta.guards() {
            if !guard_holds(guard, &current) {
                return Err(Error::Conflict {
                    current_version: current.version,
                });
            }
        }
        if delta.is_empty() {
            return Ok(Applied {
                version: current.version,
                increments: Vec::new(),
            });
        }
        let mut next = current;
        next.version += 1;
        let version = next.version;
        let mut increments = Vec::new();
        for op in delta.ops() {
            match op {
                Op::Put { name, value } => {
                    next.attributes.insert(
                        name.clone(),
                        Attribute {
                            value: Bytes::from(value.clone()),
                            version,
                        },
                    );
                }
                Op::Remove { name } => {
                    next.attributes.remove(name);
                }
                Op::Increment { name, by } => {
                    let old = match next.attributes.get(name) {
                        None => 0,
                        Some(a) => parse_counter(&a.value).ok_or_else(|| Error::TypeMismatch {
                            name: name.clone(),
                            expected: "a decimal integer",
                        })?,
                    };
                    let new = old + by; // both within ±2^53, so no i64 overflow
                    if !(-MAX_COUNTER..=MAX_COUNTER).contains(&new) {
                        return Err(Error::Overflow { name: name.clone() });
                    }
                    let value = Bytes::from(new.to_string());
                    next.attributes
                        .insert(name.clone(), Attribute { value, version });
                    increments.push(new);
                }
                Op::SetIdleTimeout(d) => next.idle_timeout = *d,
                Op::SetDeadline(deadline) => next.deadline = deadline.resolve(now),
                Op::SetPrincipal(principal) => next.principal = principal.clone(),
                Op::Touch => next.last_access = next.last_access.max(now),
            }
        }
        let limits = self.policy.limits;
        Limits::check(Limit::SessionSize, next.size(), limits.max_session_bytes)?;
        self.index(&next);
        self.entries.insert(target, Entry::Live(next));
        Ok(Applied {
            version,
            increments,
        })
    }

    /// Touches unconditionally; [`Error::NotFound`] if there is nothing to touch.
    pub fn touch(&mut self, now: Timestamp, handle: &SessionHandle) -> Result<()> {
        let target = self
            .resolve(now, handle)
            .ok_or(Error::NotFound { handle: *handle })?;
        let session = self.live_mut(&target);
        session.last_access = session.last_access.max(now);
        Ok(())
    }

    /// Deletes (through forwards): the session becomes a tombstone for
    /// [`Policy::delete_grace`]. False if there was no live session.
    pub fn delete(&mut self, now: Timestamp, handle: &SessionHandle) -> bool {
        let Some(target) = self.resolve(now, handle) else {
            return false;
        };
        let until = now.saturating_add(self.policy.delete_grace);
        self.entries.insert(target, Entry::Tombstone { until });
        true
    }

    /// Moves the session to `new_handle`; the old handle forwards for
    /// [`Policy::rotate_grace`]. Content, versions and creation time move unchanged; a
    /// rotation is activity, so the last access becomes now. `Ok(None)` if `new_handle` is
    /// taken. A handle that forwards already was rotated: [`Error::Rotated`], and nothing
    /// changes, so concurrent rotations of one token make one successor.
    pub fn rotate(
        &mut self,
        now: Timestamp,
        handle: &SessionHandle,
        new_handle: SessionHandle,
    ) -> Result<Option<SessionRecord>> {
        if let Some(Entry::Forward { to, until }) = self.entries.get(handle)
            && now < *until
        {
            return Err(Error::Rotated { successor: *to });
        }
        let target = self
            .resolve(now, handle)
            .ok_or(Error::NotFound { handle: *handle })?;
        if self.occupied(now, &new_handle) {
            return Ok(None);
        }
        let mut session = self.live_mut(&target).clone();
        session.handle = new_handle;
        session.last_access = session.last_access.max(now);
        let until = now.saturating_add(self.policy.rotate_grace);
        self.entries.insert(
            target,
            Entry::Forward {
                to: new_handle,
                until,
            },
        );
        self.index(&session);
        self.entries
            .insert(new_handle, Entry::Live(session.clone()));
        Ok(Some(session))
    }

    /// Handles of the principal's live sessions, sorted; prunes stale index entries.
    pub fn sessions_of(&mut self, now: Timestamp, principal: &str) -> Result<Vec<SessionHandle>> {
        policy::validate_principal(principal)?;
        let Some(handles) = self.principals.get(principal) else {
            return Ok(Vec::new());
        };
        let live: BTreeSet<SessionHandle> = handles
            .iter()
            .filter(|h| self.is_live_of(now, h, principal))
            .copied()
            .collect();
        if live.is_empty() {
            self.principals.remove(principal);
        } else {
            self.principals.insert(principal.to_owned(), live.clone());
        }
        Ok(live.into_iter().collect())
    }

    /// Summaries of the principal's live sessions, sorted by handle: the sessions
    /// [`Model::sessions_of`] lists (so it validates and prunes as that does), each as
    /// [`Model::load_read_only`] would return it, untouched.
    pub fn summaries_of(&mut self, now: Timestamp, principal: &str) -> Result<Vec<SessionSummary>> {
        let handles = self.sessions_of(now, principal)?;
        Ok(handles
            .iter()
            .filter_map(|handle| match self.entries.get(handle) {
                Some(Entry::Live(s)) => Some(SessionSummary::from(s)),
                _ => None,
            })
            .collect())
    }

    /// Deletes every live session of the principal; returns how many.
    pub fn delete_all_of(&mut self, now: Timestamp, principal: &str) -> Result<usize> {
        let handles = self.sessions_of(now, principal)?;
        for handle in &handles {
            self.delete(now, handle);
        }
        Ok(handles.len())
    }

    /// Forgets what can no longer be observed: expired sessions, tombstones and forwards past
    /// their grace, and index entries of sessions that are gone. Results of every other
    /// operation are the same with or without purging.
    pub fn purge(&mut self, now: Timestamp) {
        self.entries.retain(|_, entry| match entry {
            Entry::Live(s) => now < s.expires_at(),
            Entry::Tombstone { until } | Entry::Forward { until, .. } => now < *until,
        });
        let principals: Vec<String> = self.principals.keys().cloned().collect();
        for principal in principals {
            // Cannot fail: indexed principals were validated when written.
            let _ = self.sessions_of(now, &principal);
        }
    }

    /// The handle of the live, unexpired session `handle` leads to, following forwards.
    pub fn resolve(&self, now: Timestamp, handle: &SessionHandle) -> Option<SessionHandle> {
        let mut current = *handle;
        for _ in 0..=MAX_FORWARDS {
            match self.entries.get(&current)? {
                Entry::Live(s) => return (now < s.expires_at()).then_some(current),
                Entry::Forward { to, until } if now < *until => current = *to,
                Entry::Forward { .. } | Entry::Tombstone { .. } => return None,
            }
        }
        None
    }

    fn occupied(&self, now: Timestamp, handle: &SessionHandle) -> bool {
        match self.entries.get(handle) {
            None => false,
            Some(Entry::Live(s)) => now < s.expires_at(),
            Some(Entry::Tombstone { until } | Entry::Forward { until, .. }) => now < *until,
        }
    }

    fn live_mut(&mut self, handle: &SessionHandle) -> &mut SessionRecord {
        match self.entries.get_mut(handle) {
            Some(Entry::Live(s)) => s,
            _ => unreachable!("resolve() returns only live handles"),
        }
    }

    fn is_live_of(&self, now: Timestamp, handle: &SessionHandle, principal: &str) -> bool {
        matches!(self.entries.get(handle), Some(Entry::Live(s))
            if now < s.expires_at() && s.principal.as_deref() == Some(principal))
    }

    fn index(&mut self, session: &SessionRecord) {
        if let Some(p) = &session.principal {
            self.principals
                .entry(p.clone())
                .or_default()
                .insert(session.handle);
        }
    }
}

/// A [`NewSession`] checked against a policy, with defaults filled in and repeated names
/// resolved (the last value wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedNew {
    /// The idle timeout.
    pub idle_timeout: std::time::Duration,
    /// The deadline, still relative to the store's clock.
    pub deadline: crate::Deadline,
    /// The principal.
    pub principal: Option<String>,
    /// Attributes by name.
    pub attributes: BTreeMap<String, Vec<u8>>,
    /// Bytes of names and values.
    pub size: usize,
}

impl PreparedNew {
    /// The session at version 1, created at `now` with the resolved `deadline`.
    pub fn into_session(
        self,
        handle: SessionHandle,
        now: Timestamp,
        deadline: Option<Timestamp>,
    ) -> SessionRecord {
        SessionRecord {
            handle,
            version: 1,
            created_at: now,
            last_access: now,
            idle_timeout: self.idle_timeout,
            deadline,
            principal: self.principal,
            attributes: self
                .attributes
                .into_iter()
                .map(|(name, value)| {
                    let value = Bytes::from(value);
                    (name, Attribute { value, version: 1 })
                })
                .collect(),
            damaged: BTreeMap::new(),
        }
    }
}

/// Checks everything about a new session that needs no clock: idle timeout, principal,
/// names, value sizes and the total size. (Whether a deadline has passed needs the store's
/// clock and is checked last.)
pub fn prepare_new(policy: &Policy, new: NewSession) -> Result<PreparedNew> {
    let idle_timeout = new.idle_timeout.unwrap_or(policy.default_idle_timeout);
    policy::validate_idle_timeout(idle_timeout)?;
    if let Some(p) = &new.principal {
        policy::validate_principal(p)?;
    }
    let limits = policy.limits;
    let mut attributes = BTreeMap::new();
    for (name, value) in new.attributes {
        policy::validate_name(&name)?;
        Limits::check(Limit::ValueSize, value.len(), limits.max_value_bytes)?;
        attributes.insert(name, value);
    }
    let size = attributes.iter().map(|(n, v)| n.len() + v.len()).sum();
    Limits::check(Limit::SessionSize, size, limits.max_session_bytes)?;
    Ok(PreparedNew {
        idle_timeout,
        deadline: new.deadline,
        principal: new.principal,
        attributes,
        size,
    })
}

/// The error for a new session whose deadline has already passed.
pub fn past_deadline() -> Error {
    Error::InvalidInput("the deadline of a new session has passed".into())
}

fn guard_holds(guard: &Guard, session: &SessionRecord) -> bool {
    match guard {
        Guard::SessionVersion(v) => session.version == *v,
        Guard::AttributeVersion { name, version } => {
            session.attribute_version(name) == Some(*version)
        }
        Guard::Absent { name } => !session.attributes.contains_key(name),
    }
}

/// Names asked of `load_some`: each valid, at most `max_delta_ops` of them.
pub fn validate_names(names: &[&str], limits: &Limits) -> Result<()> {
    Limits::check(Limit::DeltaOps, names.len(), limits.max_delta_ops)?;
    names.iter().try_for_each(|n| policy::validate_name(n))
}
