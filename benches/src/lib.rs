//! The check program (`session-check`, the README's main command) and, later, benchmarks of
//! the stores against the raw clients and the session stores in use today.
//!
//! `session-check` runs the testkit's conformance suite, model-equivalence and concurrency
//! checks (and on request fault injection) against the memory store and the Redis stores on
//! standalone Redis, Redis Cluster and Sentinel, and prints a table. See `--help`.
