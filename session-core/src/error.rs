//! The one error type every store returns.
//!
//! Variants are semantic, not per backend: an adapter maps its client's errors into these,
//! so application code (and the conformance suite) can match on `Error::Conflict { .. }`
//! whatever store is behind the trait.

use std::fmt;

use crate::handle::SessionHandle;
use crate::token::TokenError;

/// A boxed error from a backend (a Redis client, an I/O layer).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a session operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token is malformed. Raised before any I/O.
    #[error("invalid session token: {0}")]
    InvalidToken(#[from] TokenError),

    /// An argument is outside what the contract allows (an empty or overlong attribute name,
    /// a zero idle timeout, a malformed namespace...). Raised before any I/O; nothing written.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The session does not exist, has expired, was deleted, or its forward ran out.
    /// Write operations never recreate it.
    #[error("session {handle} not found (absent, expired or deleted)")]
    NotFound {
        /// The handle that was looked up (safe to log: it is not a token).
        handle: SessionHandle,
    },

    /// `rotate` was given a token that another rotation already moved: it forwards to
    /// `successor` for the rest of its grace period. The rotation that won handed its new
    /// token to its own caller (in a web app, the response that sets the cookie), so the user
    /// keeps the session; nothing was changed.
    #[error("session was rotated already; it forwards to {successor}")]
    Rotated {
        /// The session the token forwards to (a handle, safe to log).
        successor: SessionHandle,
    },

    /// A guard of the delta did not hold; nothing was applied.
    #[error("conflict: the session is at version {current_version}")]
    Conflict {
        /// The session's version when the guard was checked.
        current_version: u64,
    },

    /// An operation found a value of the wrong kind (for example `increment` on a value that
    /// is not a decimal integer). Nothing was applied.
    #[error("attribute {name:?} is not {expected}")]
    TypeMismatch {
        /// The attribute's name.
        name: String,
        /// What the operation needed.
        expected: &'static str,
    },

    /// An increment would leave the range of exactly representable counters
    /// (see [`MAX_COUNTER`](crate::MAX_COUNTER)). Nothing was applied.
    #[error("increment of {name:?} overflows the counter range")]
    Overflow {
        /// The attribute's name.
        name: String,
    },

    /// A size limit would be exceeded; nothing was written.
    #[error("{limit} exceeded: {actual} > {max}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The size the operation would have produced.
        actual: usize,
        /// The configured maximum.
        max: usize,
    },

    /// A value could not be serialized for `put`.
    #[error("could not encode attribute {name:?}")]
    Encode {
        /// The attribute's name.
        name: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored value could not be deserialized into the requested type.
    #[error("could not decode attribute {name:?}")]
    Decode {
        /// The attribute's name.
        name: String,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// The store holds data that is not a session in this library's layout (a foreign key of
    /// another type, a garbled field). The data was left untouched.
    #[error("corrupt session data: {0}")]
    Corrupt(String),

    /// The operation did not finish in time and was not sent, or is known not to have taken
    /// effect; it is safe to retry.
    #[error("timed out")]
    Timeout,

    /// Redis could not be reached, or refused the command without running it (connection
    /// refused, no node serving the key's slot, a failover in progress), until the store's
    /// retry budget ran out. It is safe to retry: the operation did not run, or it is one
    /// that may run twice (a read, a touch, a delete; a delta never is reported so).
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),

    /// A write was sent but its outcome is unknown (the connection dropped or the reply timed
    /// out after sending). It may or may not have been applied; retrying blindly could apply
    /// it twice.
    #[error("outcome of the write is unknown")]
    OutcomeUnknown(#[source] BoxError),

    /// The write took effect on the primary, but fewer replicas than required acknowledged
    /// it in time (the optional `WAIT` durability setting): a failover now could lose it.
    #[error("write not durable: {acknowledged} of {required} replicas acknowledged")]
    NotDurable {
        /// Replicas that acknowledged.
        acknowledged: u64,
        /// Replicas required.
        required: u64,
    },

    /// Any other failure of the backend (connection refused, server error...).
    #[error("backend error")]
    Backend(#[source] BoxError),

    /// The store does not offer this operation (an optional method of
    /// [`SessionStore`](crate::SessionStore) it keeps the default of); the name says which.
    #[error("not supported by this store: {0}")]
    Unsupported(&'static str),
}

impl Error {
    /// Wraps any backend error.
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Error::Backend(source.into())
    }

    /// True for errors worth retrying with a fresh read (a guard conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

/// The size limits of [`Limits`](crate::Limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// Bytes of one attribute value.
    ValueSize,
    /// Bytes of all attribute names and values of one session.
    SessionSize,
    /// Number of attributes of one session.
    AttributeCount,
    /// Operations in one delta.
    DeltaOps,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::ValueSize => "value size limit",
            Limit::SessionSize => "session size limit",
            Limit::AttributeCount => "attribute count limit",
            Limit::DeltaOps => "delta operation limit",
        })
    }
}
