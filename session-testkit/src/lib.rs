//! How a [`SessionStore`](session_core::SessionStore) proves it keeps the contract
//! (`docs/semantics.md` in the repository).
//!
//! Generic, for any store (no Redis, Docker or testcontainers in the dependency tree):
//!
//! - [`conformance`]: one async function per behaviour of the contract, a
//!   [`conformance_suite!`] macro that makes one test per behaviour, and the property checks:
//!   model equivalence and linearizability of concurrent histories.
//! - [`linearizability`]: the checker (Wing & Gong's search with memoization, per session),
//!   and [`workload`]: generated workloads, the concurrent runner and the invariants (no lost
//!   increment, no resurrection, no stale forward).
//! - [`naive`]: the negative control, a whole-record write-back store like the popular ones,
//!   which the checks must catch losing updates.
//! - [`history`]: calls and normalised outcomes shared by all of the above.
//!
//! With the `redis` feature (off by default), for stores on Redis or Valkey:
//!
//! - `topology`: Redis on demand: standalone, Cluster (3 masters, 3 replicas) and Sentinel,
//!   as containers (testcontainers), local `redis-server` processes, or an external URL,
//!   with fault controls (kill, stop, restart, pause, resume, wait until healthy).
//! - `redis_factory`, `redis_checks`, `failover`: the conformance suites on those topologies
//!   for an adapter, the checks only a store on Redis has, and failover workloads.
//!
//! With the `http` feature (off by default): `http`, the client of the framework crates'
//! HTTP tests (one request over loopback, its `Set-Cookie` headers parsed).
//!
//! # Running the suite against your store
//!
//! Implement [`StoreFactory`](conformance::StoreFactory) (a fresh, empty store per call;
//! for a shared backend, a new random namespace each time) and expand the macro in an
//! integration test. Your crate needs `tokio` (features `macros`, `rt-multi-thread`) and
//! `async-trait` as dev-dependencies.
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_core::{MemoryStore, Policy, Result, SystemClock};
//! use session_testkit::conformance::{Capabilities, StoreFactory};
//!
//! struct MyStoreFactory;
//!
//! #[async_trait::async_trait]
//! impl StoreFactory for MyStoreFactory {
//!     type Store = MemoryStore; // your store
//!     async fn make(&self, policy: Policy) -> Result<MemoryStore> {
//!         MemoryStore::with(policy, Arc::new(SystemClock))
//!     }
//!     fn capabilities(&self) -> Capabilities {
//!         Capabilities { foreign_data: false, ..Capabilities::default() }
//!     }
//! }
//!
//! // tests/conformance.rs: one test per behaviour, plus model equivalence and
//! // linearizability property tests.
//! session_testkit::conformance_suite!(MyStoreFactory);
//! # fn main() {}
//! ```
//!
//! The same suite runs from a program too ([`conformance::run_all`]), which is how this
//! example checks a toy store, a wrapper around the memory store that stands for yours:
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use session_core::{
//!     Applied, Created, Delta, MemoryStore, NewSession, Policy, Result, SessionRecord,
//!     SessionHandle, SessionStore, SessionToken, SystemClock,
//! };
//! use session_testkit::conformance::{Capabilities, StoreFactory, run_all};
//!
//! /// Your store: here every call goes to the memory store.
//! #[derive(Debug)]
//! struct Toy(MemoryStore);
//!
//! #[async_trait]
//! impl SessionStore for Toy {
//!     fn policy(&self) -> Policy { self.0.policy() }
//!     async fn create(&self, new: NewSession) -> Result<Created> { self.0.create(new).await }
//!     async fn load(&self, t: &SessionToken) -> Result<Option<SessionRecord>> { self.0.load(t).await }
//!     async fn load_read_only(&self, t: &SessionToken) -> Result<Option<SessionRecord>> {
//!         self.0.load_read_only(t).await
//!     }
//!     async fn load_some(&self, t: &SessionToken, names: &[&str]) -> Result<Option<SessionRecord>> {
//!         self.0.load_some(t, names).await
//!     }
//!     async fn apply(&self, t: &SessionToken, d: &Delta) -> Result<Applied> {
//!         self.0.apply(t, d).await
//!     }
//!     async fn touch(&self, t: &SessionToken) -> Result<()> { self.0.touch(t).await }
//!     async fn delete(&self, t: &SessionToken) -> Result<bool> { self.0.delete(t).await }
//!     async fn rotate(&self, t: &SessionToken) -> Result<SessionToken> { self.0.rotate(t).await }
//!     async fn sessions_of(&self, p: &str) -> Result<Vec<SessionHandle>> {
//!         self.0.sessions_of(p).await
//!     }
//!     async fn delete_all_of(&self, p: &str) -> Result<usize> { self.0.delete_all_of(p).await }
//! }
//!
//! struct ToyFactory;
//!
//! #[async_trait]
//! impl StoreFactory for ToyFactory {
//!     type Store = Toy;
//!     async fn make(&self, policy: Policy) -> Result<Toy> {
//!         Ok(Toy(MemoryStore::with(policy, Arc::new(SystemClock))?))
//!     }
//!     fn capabilities(&self) -> Capabilities {
//!         // Toy keeps the defaults of the optional `create_with_token` and `summaries_of`
//!         // (Unsupported).
//!         Capabilities {
//!             principal_index: true,
//!             foreign_data: false,
//!             create_with_token: false,
//!             summaries_of: false,
//!         }
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let outcomes = run_all(Arc::new(ToyFactory), |_| {}).await;
//! let failed: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
//! assert!(failed.is_empty(), "{failed:?}");
//! assert!(outcomes.len() > 30);
//! # });
//! ```
//!
//! Stores on Redis (the `redis` feature) get a deployment from `topology::shared` (started
//! once per test binary) and build their factory on its URL. The provider is chosen by
//! `SESSION_TESTKIT_REDIS` (`containers`, `processes`, `url`; unset or `auto`: containers if
//! Docker answers and the image is present or can be pulled, else local `redis-server`; see
//! `topology::ProviderChoice`), the container image by `REDIS_TEST_IMAGE`. Without Redis,
//! the generated tests fail with one readable line ([`conformance::NotReady`]).
//!
//! # Case counts
//!
//! `SESSION_TESTKIT_CASES` sets the number of generated cases of every property check
//! (defaults: 48 sequential workloads, 24 concurrent histories, chosen to keep CI within a
//! few minutes). A soak run: `SESSION_TESTKIT_CASES=2000 cargo test --workspace`.

pub mod conformance;
#[cfg(feature = "redis")]
pub mod failover;
pub mod history;
#[cfg(feature = "http")]
pub mod http;
pub mod linearizability;
pub mod naive;
#[cfg(feature = "redis")]
pub mod redis_checks;
#[cfg(feature = "redis")]
pub mod redis_factory;
#[cfg(feature = "redis")]
pub mod topology;
pub mod workload;

pub use session_core;
