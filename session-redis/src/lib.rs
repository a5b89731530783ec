//! `SessionStore` over the `redis` crate (redis-rs), for standalone Redis, Sentinel and Redis
//! Cluster.
//!
//! Not built yet (its own issue). It will be a thin transport: the key layout, Lua scripts,
//! argument encoding and reply decoding that it shares with `session-fred` will live in
//! `session-core`, so both adapters run the same code against Redis.

pub use session_core;
