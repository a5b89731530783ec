//! Calls, their outcomes, and running a call on a store or on the model.
//!
//! Outcomes are normalised so that a store and the model can be compared: clock readings
//! (created-at, last access, the resolved deadline) are left out because a store reads its
//! own clock (Redis `TIME`) while the model is driven by the test. Everything else (versions,
//! values, attribute versions, principal, idle timeout, errors with their payload) must match
//! exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use session_core::{
    Applied, Delta, Error, Model, NewSession, SessionHandle, SessionRecord, SessionStore,
    SessionToken, Timestamp,
};

/// One operation of the contract, on the session a test refers to by token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `load`.
    Load,
    /// `load_read_only`.
    LoadReadOnly,
    /// `load_some` with these names.
    LoadSome(Vec<String>),
    /// `apply`.
    Apply(Delta),
    /// `touch`.
    Touch,
    /// `delete`.
    Delete,
    /// `rotate`.
    Rotate,
}

/// A session as compared between a store and the model (clock readings left out).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct View {
    /// The handle of the session the token led to (after forwards).
    pub handle: SessionHandle,
    /// Session version.
    pub version: u64,
    /// Attributes: value and version.
    pub attributes: BTreeMap<String, (Vec<u8>, u64)>,
    /// Principal.
    pub principal: Option<String>,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Whether a deadline is set.
    pub has_deadline: bool,
}

impl From<&SessionRecord> for View {
    fn from(s: &SessionRecord) -> Self {
        View {
            handle: s.handle,
            version: s.version,
            attributes: s
                .attributes
                .iter()
                .map(|(n, a)| (n.clone(), (a.value.to_vec(), a.version)))
                .collect(),
            principal: s.principal.clone(),
            idle_timeout: s.idle_timeout,
            has_deadline: s.deadline.is_some(),
        }
    }
}

/// An error, reduced to what every store must agree on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `Error::NotFound`.
    NotFound,
    /// `Error::Conflict` with the current version.
    Conflict(u64),
    /// `Error::TypeMismatch`.
    TypeMismatch,
    /// `Error::Overflow`.
    Overflow,
    /// `Error::LimitExceeded`.
    LimitExceeded,
    /// `Error::InvalidInput`.
    InvalidInput,
    /// `Error::Rotated`, with the successor.
    Rotated(SessionHandle),
    /// Anything else (backend failures, timeouts, unknown outcomes), with its text.
    Other(String),
}

impl From<&Error> for ErrorKind {
    fn from(e: &Error) -> Self {
        match e {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { current_version } => ErrorKind::Conflict(*current_version),
            Error::TypeMismatch { .. } => ErrorKind::TypeMismatch,
            Error::Overflow { .. } => ErrorKind::Overflow,
            Error::LimitExceeded { .. } => ErrorKind::LimitExceeded,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Rotated { successor } => ErrorKind::Rotated(*successor),
            other => ErrorKind::Other(error_chain(other)),
        }
    }
}

/// An error and its sources on one line (`outer: cause: root cause`), so a recorded outcome
/// or a report keeps the cause a client library put in `source()`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The normalised result of a [`Call`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A load's result.
    Loaded(Option<View>),
    /// An apply's result.
    Applied(Applied),
    /// A touch succeeded.
    Touched,
    /// A delete's result.
    Deleted(bool),
    /// A rotation, with the new session's handle.
    Rotated(SessionHandle),
    /// A failure.
    Failed(ErrorKind),
}

impl Outcome {
    /// True if the call may or may not have taken effect (timeouts, lost connections): the
    /// checker lets such a call take effect at any point after its invocation, or never.
    pub fn is_indeterminate(&self) -> bool {
        matches!(self, Outcome::Failed(ErrorKind::Other(_)))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Loaded(None) => write!(f, "none"),
            Outcome::Loaded(Some(v)) => {
                write!(f, "v{} {{", v.version)?;
                for (i, (name, (value, version))) in v.attributes.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(
                        f,
                        "{sep}{name}={}@{version}",
                        String::from_utf8_lossy(value)
                    )?;
                }
                write!(f, "}}")
            }
            Outcome::Applied(a) => write!(f, "ok v{} {:?}", a.version, a.increments),
            Outcome::Touched => write!(f, "ok"),
            Outcome::Deleted(d) => write!(f, "deleted={d}"),
            Outcome::Rotated(h) => write!(f, "rotated to {}", &h.to_hex()[..8]),
            Outcome::Failed(e) => write!(f, "error {e:?}"),
        }
    }
}

impl Outcome {
    fn of<T>(result: Result<T, Error>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
        match result {
            Ok(v) => ok(v),
            Err(e) => Outcome::Failed(ErrorKind::from(&e)),
        }
    }
}

/// Runs `call` on a store. A rotation also returns the new token.
pub async fn run_on_store<S: SessionStore + ?Sized>(
    store: &S,
    token: &SessionToken,
    call: &Call,
) -> (Outcome, Option<SessionToken>) {
    let view = |s: Option<SessionRecord>| Outcome::Loaded(s.as_ref().map(View::from));
    let outcome = match call {
        Call::Load => Outcome::of(store.load(token).await, view),
        Call::LoadReadOnly => Outcome::of(store.load_read_only(token).await, view),
        Call::LoadSome(names) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            Outcome::of(store.load_some(token, &names).await, view)
        }
        Call::Apply(delta) => Outcome::of(store.apply(token, delta).await, Outcome::Applied),
        Call::Touch => Outcome::of(store.touch(token).await, |()| Outcome::Touched),
        Call::Delete => Outcome::of(store.delete(token).await, Outcome::Deleted),
        Call::Rotate => match store.rotate(token).await {
            Ok(new) => return (Outcome::Rotated(new.handle()), Some(new)),
            Err(e) => Outcome::Failed(ErrorKind::from(&e)),
        },
    };
    (outcome, None)
}

/// Runs `call` on the model at `now`. For a rotation, `rotated_to` is the handle the store
/// chose (the model cannot draw the same random token), and any handle if the store failed.
pub fn run_on_model(
    model: &mut Model,
    now: Timestamp,
    handle: &SessionHandle,
    call: &Call,
    rotated_to: Option<SessionHandle>,
) -> Outcome {
    let view = |s: Option<SessionRecord>| Outcome::Loaded(s.as_ref().map(View::from));
    match call {
        Call::Load => view(model.load(now, handle)),
        Call::LoadReadOnly => view(model.load_read_only(now, handle)),
        Call::LoadSome(names) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            Outcome::of(model.load_some(now, handle, &names), view)
        }
        Call::Apply(delta) => Outcome::of(model.apply(now, handle, delta), Outcome::Applied),
        Call::Touch => Outcome::of(model.touch(now, handle), |()| Outcome::Touched),
        Call::Delete => Outcome::Deleted(model.delete(now, handle)),
        Call::Rotate => {
            // A handle no token maps to stands in when the store reported a failure.
            let to = rotated_to.unwrap_or(SessionHandle::of(&SessionToken::from_bytes([0xEE; 16])));
            match model.rotate(now, handle, to) {
                Ok(Some(_)) => Outcome::Rotated(to),
                Ok(None) => Outcome::Failed(ErrorKind::Other("rotation target taken".into())),
                Err(e) => Outcome::Failed(ErrorKind::from(&e)),
            }
        }
    }
}

/// Creates the same session in a store and in the model (the model under the store's
/// handle), for tests that start from existing sessions.
pub async fn create_in_both<S: SessionStore + ?Sized>(
    store: &S,
    model: &mut Model,
    now: Timestamp,
    new: NewSession,
) -> Result<SessionToken, Error> {
    let created = store.create(new.clone()).await?;
    model
        .create(now, created.token.handle(), new)?
        .ok_or_else(|| Error::backend("the model already holds the store's fresh handle"))?;
    Ok(created.token)
}
