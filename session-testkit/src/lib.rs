//! How a `SessionStore` proves it keeps the contract.
//!
//! Not built yet (its own issue). It will hold: Redis topologies on demand (containers,
//! local `redis-server` processes, or a given URL), a conformance suite any store can run,
//! property-based concurrent histories checked for linearizability against
//! `session_core::Model`, and fault injection.

pub use session_core;
