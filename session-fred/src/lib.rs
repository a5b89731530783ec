//! [`SessionStore`](session_core::SessionStore) over the [`fred`] crate, for standalone
//! Redis, Redis Sentinel and Redis Cluster.
//!
//! This crate is a thin transport: the key layout, the Lua scripts, argument encoding,
//! reply decoding and the store's logic live in [`session_core::redis`], shared with the
//! redis-rs adapter (`session-redis`), so both adapters read and write the same sessions.
//! Every operation is one round trip (following a rotated token's forward costs one more per
//! hop; rotation reads the session, then moves it with one script).
//!
//! A batch is one fred pipeline on one client, routed as a whole to the node serving the
//! session's key, so the optional `WAIT` of [`Durability`] counts the write it follows.
//! fred's own re-sending of in-flight commands after a reconnect is turned off
//! (`max_command_attempts = 1`): a write whose connection dropped is reported as
//! [`Error::OutcomeUnknown`](session_core::Error::OutcomeUnknown), never applied twice.
//!
//! ```no_run
//! use session_core::{Delta, NewSession, SessionStore};
//! use session_fred::FredStoreBuilder;
//!
//! # async fn demo() -> Result<(), session_core::Error> {
//! // redis://[user:password@]host:port[/db], redis+cluster://h1:p1,h2:p2,
//! // redis+sentinel://s1:p1,s2:p2/master-name (rediss variants with the tls-rustls feature)
//! let store = FredStoreBuilder::new()
//!     .url("redis://127.0.0.1:6379")
//!     .namespace("myapp")
//!     .pool_size(2)
//!     .build()
//!     .await?;
//! let token = store.create(NewSession::new()).await?.token;
//! store.apply(&token, &Delta::new().increment("visits", 1)).await?;
//! # Ok(()) }
//! ```
//!
//! # Features
//! - `tls-rustls`: `rediss://` URLs (fred's `enable-rustls-ring`).

mod config;
mod transport;

pub use config::{FredStoreBuilder, fred_config};
pub use fred;
pub use session_core;
pub use session_core::redis::{Durability, Topology};
pub use transport::FredTransport;

/// The session store over fred.
pub type FredStore = session_core::redis::Store<FredTransport>;
