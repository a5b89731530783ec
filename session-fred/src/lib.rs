//! `SessionStore` over the `fred` crate, for standalone Redis, Sentinel and Redis Cluster.
//!
//! Not built yet (its own issue). Like `session-redis`, it will be a thin transport over the
//! Redis-side code shared in `session-core`.

pub use session_core;
