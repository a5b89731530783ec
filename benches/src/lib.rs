//! The check program (`session-check`, the README's main command) and the benchmark report
//! (`session-bench`), which compares the stores with the raw clients and the session stores
//! in use today.
//!
//! `session-check` runs the testkit's conformance suite, model-equivalence and concurrency
//! checks (and on request fault injection) against the memory store and the Redis stores on
//! standalone Redis, Redis Cluster and Sentinel, and prints a table. See `--help`.
//!
//! `session-bench` measures throughput, latency, Redis CPU, commands, round trips and memory
//! per session, and lost updates, for our stores, the raw redis-rs and fred clients,
//! `tower-sessions-redis-store` and `actix-session`, and writes a Markdown report; its
//! library part is [`mod@bench`]. See `--help`.

pub mod bench;
