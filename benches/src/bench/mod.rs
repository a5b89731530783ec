//! `session-bench`: our stores side by side with the raw clients they run over and the
//! Redis session stores Rust applications use today, in one process against the same Redis,
//! so that the numbers can be compared and the ratios mean something.
//!
//! Ratios answer the two questions users ask: what does the store cost over the bare
//! client (ours / raw: the price of atomic deltas, versions, expiry checks), and is it
//! faster or slower than what they use now (ours / peer). Throughput depends on the
//! machine; Redis CPU, commands and round trips per request cycle, and memory per session,
//! hardly do, so they are reported too. The lost-update comparison shows what the deltas buy.
//!
//! Layout: [`plan`] (what to run), [`subject`] (the interface), one module per subject
//! family ([`ours`], [`raw`] with [`raw_redis`] and [`raw_fred`], [`tower`] for
//! tower-sessions and the compatibility store over ours, [`actix`]),
//! [`deploy`] (the Redis under test), [`runner`] (throughput cells), [`cost`] and
//! [`metrics`] (Redis' own accounting), [`lost`] (lost updates), [`suite`] (one topology's
//! run), [`targets`] and [`report`] (the Markdown).

pub mod actix;
pub mod cost;
pub mod deploy;
pub mod error;
pub mod lost;
pub mod metrics;
pub mod ours;
pub mod plan;
pub mod raw;
pub mod raw_fred;
pub mod raw_redis;
pub mod report;
pub mod runner;
pub mod subject;
pub mod suite;
pub mod targets;
pub mod tower;

pub use error::{BenchError, Result};
