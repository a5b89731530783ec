//! [`SessionStore`](session_core::SessionStore) over the `redis` crate (redis-rs), for
//! standalone Redis, Redis Sentinel and Redis Cluster.
//!
//! This crate is a thin transport: the key layout, the Lua scripts, argument encoding,
//! reply decoding and the store's logic live in [`session_core::redis`], shared with the
//! fred adapter. Every operation is one round trip (following a rotated token's forward
//! costs one more per hop; rotation reads the session, then moves it with one script).
//!
//! ```no_run
//! use session_core::{Delta, NewSession, SessionStore};
//! use session_redis::RedisStoreBuilder;
//!
//! # async fn demo() -> Result<(), session_core::Error> {
//! // redis://[user:password@]host:port[/db], redis+cluster://h1:p1,h2:p2,
//! // redis+sentinel://s1:p1,s2:p2/master-name (rediss variants with the tls-rustls feature)
//! let store = RedisStoreBuilder::new().url("redis://127.0.0.1:6379").namespace("myapp").build().await?;
//! let token = store.create(NewSession::new()).await?.token;
//! store.apply(&token, &Delta::new().increment("visits", 1)).await?;
//! # Ok(()) }
//! ```

mod config;
mod transport;

pub use config::RedisStoreBuilder;
pub use session_core;
pub use session_core::redis::{Durability, Topology};
pub use transport::RedisTransport;

/// The session store over redis-rs.
pub type RedisStore = session_core::redis::Store<RedisTransport>;
