//! Benchmarks and the check program.
//!
//! Not built yet (its own issue): side-by-side benchmarks of both adapters against the raw
//! clients and the session stores in use today, and the command-line check program.

pub use session_core;
