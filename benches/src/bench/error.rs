//! One error type for the whole benchmark, so a failed subject, a refused Redis command or a
//! bad flag ends up as one line of text in the report or on stderr instead of a panic.

use std::fmt;

/// What can go wrong while benchmarking.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Our store answered with an error.
    #[error("session store: {0}")]
    Session(#[from] session_core::Error),
    /// redis-rs (the raw subject, or the administrative connections) failed.
    #[error("redis-rs: {0}")]
    Redis(#[from] redis::RedisError),
    /// fred (the raw subject) failed.
    #[error("fred: {0}")]
    Fred(#[from] fred::error::Error),
    /// A peer store (tower-sessions, actix-session) or the compatibility store
    /// (tower-sessions-compat) failed; its error as text.
    #[error("{store}: {message}")]
    Peer {
        /// Which peer.
        store: &'static str,
        /// Its error.
        message: String,
    },
    /// A session that should exist was not found (expired, lost or never written).
    #[error("session {0} not found")]
    Missing(String),
    /// Starting or reaching the Redis deployment failed.
    #[error("redis deployment: {0}")]
    Deployment(String),
    /// A reply was not what the benchmark expected.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// Writing the report failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The command line asked for something impossible.
    #[error("invalid arguments: {0}")]
    Invalid(String),
}

impl BenchError {
    /// A peer store's error.
    pub fn peer(store: &'static str, error: impl fmt::Display) -> Self {
        BenchError::Peer {
            store,
            message: error.to_string(),
        }
    }
}

/// The benchmark's result type.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
