//! The conformance suite: one public async function per behaviour of the contract, each
//! taking a [`StoreFactory`], plus [`conformance_suite!`](crate::conformance_suite) which
//! expands to one test per case, so a failure names the behaviour.
//!
//! # Running it against your store
//!
//! ```no_run
//! use session_core::{MemoryStore, Policy, Result};
//! use session_testkit::conformance::{Capabilities, StoreFactory};
//!
//! struct MyFactory;
//!
//! #[async_trait::async_trait]
//! impl StoreFactory for MyFactory {
//!     type Store = MemoryStore; // your store type
//!     async fn make(&self, policy: Policy) -> Result<MemoryStore> {
//!         // A fresh, empty store (for Redis: a new random namespace) with this policy.
//!         MemoryStore::with(policy, std::sync::Arc::new(session_core::SystemClock))
//!     }
//! }
//!
//! // In tests/conformance.rs (needs tokio with "macros" and "rt-multi-thread"):
//! session_testkit::conformance_suite!(MyFactory);
//! # fn main() {}
//! ```

mod cases;

use async_trait::async_trait;
use session_core::{Error, Policy, Result, SessionHandle, SessionStore};

pub use cases::*;

/// What a store supports beyond the core contract, so cases that need more can skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `sessions_of` and `delete_all_of` work.
    pub principal_index: bool,
    /// The factory can plant foreign data under a session's key
    /// ([`StoreFactory::plant_foreign`]).
    pub foreign_data: bool,
    /// `create_with_token` works (a store that keeps the trait's default answers
    /// `Error::Unsupported`, and the case checks just that).
    pub create_with_token: bool,
    /// `summaries_of` works (a store that keeps the trait's default answers
    /// `Error::Unsupported`, and the case checks just that).
    pub summaries_of: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            principal_index: true,
            foreign_data: false,
            create_with_token: true,
            summaries_of: true,
        }
    }
}

/// Data that is not a session in the store's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// The session's key holds a value of another type (a Redis string instead of a hash).
    WrongType,
    /// The key has the right type, but a field holds garbage.
    GarbledField,
}

/// Makes stores for the suite.
#[async_trait]
pub trait StoreFactory: Send + Sync + 'static {
    /// The store under test.
    type Store: SessionStore + 'static;

    /// A fresh, empty store with `policy` (for a shared backend: a new random namespace).
    async fn make(&self, policy: Policy) -> Result<Self::Store>;

    /// Whether the factory can make stores at all (for Redis: its deployment started).
    /// The generated tests ask first, so a missing backend fails each test of a suite with
    /// the same readable line ([`NotReady`]) instead of a panic and backtrace per case.
    /// Default: ready.
    async fn ready(&self) -> Result<()> {
        Ok(())
    }

    /// What the store supports.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Writes foreign data under the key of `handle`.
    async fn plant_foreign(
        &self,
        _store: &Self::Store,
        _handle: &SessionHandle,
        _kind: Foreign,
    ) -> Result<()> {
        Err(Error::backend("this factory cannot plant foreign data"))
    }

    /// True if the foreign data planted under `handle` is exactly as planted.
    async fn foreign_intact(
        &self,
        _store: &Self::Store,
        _handle: &SessionHandle,
        _kind: Foreign,
    ) -> Result<bool> {
        Err(Error::backend("this factory cannot plant foreign data"))
    }
}

/// Expands to one `#[tokio::test]` per conformance case and one `#[test]` per property
/// check, all against the store the factory expression makes. Each test first asks
/// [`StoreFactory::ready`]; when the backend is missing it fails with that one line.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::__for_each_case!(__conformance_cases($factory));
        #[test]
        fn model_equivalence() -> ::std::result::Result<(), $crate::conformance::NotReady> {
            $crate::conformance::ready_blocking(&$factory)?;
            $crate::conformance::model_equivalence(&$factory, $crate::workload::cases(48));
            Ok(())
        }
        #[test]
        fn concurrent_histories_are_linearizable()
        -> ::std::result::Result<(), $crate::conformance::NotReady> {
            $crate::conformance::ready_blocking(&$factory)?;
            $crate::conformance::linearizable_histories(&$factory, $crate::workload::cases(24));
            Ok(())
        }
    };
}

/// The one list of case names: calls `$crate::$callback!(args; case, case, ...)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_case {
    ($callback:ident($($args:tt)*)) => {
        $crate::$callback! {$($args)*;
            create_returns_version_one, create_rejects_invalid_input, tokens_are_fresh_and_parse_strictly,
            create_with_token_claims_a_token_once,
            load_unknown_is_none, load_touches_read_only_does_not, load_touches_once_per_interval,
            load_some_returns_only_named,
            apply_put_remove_increment, increment_rejects_non_integers, increment_overflow_is_typed,
            apply_is_all_or_nothing, apply_at_the_largest_delta_is_all_or_nothing,
            guard_session_version, guard_attribute_version, guard_absent,
            empty_delta_writes_nothing, apply_never_recreates, limits_are_enforced,
            session_size_follows_replaced_values, metadata_operations,
            update_loses_nothing_under_contention, update_gives_up_with_conflict,
            delete_leaves_a_tombstone, rotate_moves_and_forwards, rotate_forward_ends_after_grace,
            rotate_keeps_concurrent_writes, rotate_concurrently_makes_one_successor,
            expiry_by_idle_timeout, expiry_by_deadline,
            touch_slides_idle_expiry, principal_index_lists_and_prunes, delete_all_of_logs_out_everywhere,
            summaries_of_lists_live_sessions_with_metadata,
            foreign_wrong_type_is_typed_and_untouched, foreign_garbled_field_is_typed_and_untouched,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() -> ::std::result::Result<(), $crate::conformance::NotReady> {
                $crate::conformance::ready(&$factory).await?;
                $crate::conformance::$case(&$factory).await;
                Ok(())
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_list {
    ($f:ty; $($case:ident),* $(,)?) => {
        vec![$(
            (stringify!($case), (|f: std::sync::Arc<$f>| -> $crate::conformance::CaseFuture {
                Box::pin(async move { $crate::conformance::$case(&*f).await })
            }) as $crate::conformance::CaseFn<$f>),
        )*]
    };
}

/// Why a suite's backend cannot make stores (for Redis: `cannot start Redis (standalone): ...`).
/// Generated tests return it, and the test harness prints it as `Error: <the line>`, without
/// a panic or a backtrace; `Debug` is the plain line for that reason.
#[derive(Clone, PartialEq, Eq)]
pub struct NotReady(pub String);

impl std::fmt::Debug for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotReady {}

impl From<Error> for NotReady {
    /// The error's own line; for [`Error::Backend`], the backend's (the wrapper says only
    /// "backend error").
    fn from(e: Error) -> Self {
        match &e {
            Error::Backend(source) => NotReady(source.to_string()),
            other => NotReady(other.to_string()),
        }
    }
}

/// [`StoreFactory::ready`], as the generated tests ask it.
pub async fn ready<F: StoreFactory>(factory: &F) -> std::result::Result<(), NotReady> {
    factory.ready().await.map_err(NotReady::from)
}

/// [`ready`] for synchronous tests, on a runtime of its own.
pub fn ready_blocking<F: StoreFactory>(factory: &F) -> std::result::Result<(), NotReady> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| NotReady(format!("cannot build a tokio runtime: {e}")))?
        .block_on(ready(factory))
}

/// A running conformance case.
pub type CaseFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A case, as a function of the factory.
pub type CaseFn<F> = fn(std::sync::Arc<F>) -> CaseFuture;

/// The result of one case run by [`run_all`].
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    /// The case (its function's name).
    pub name: &'static str,
    /// Why it failed; `None` if it passed.
    pub failure: Option<String>,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

/// Every case's name and function, for programs that run the suite themselves.
pub fn cases<F: StoreFactory>() -> Vec<(&'static str, CaseFn<F>)> {
    crate::__for_each_case!(__case_list(F))
}

/// Runs every case against `factory`, each in its own task so a failing (panicking) case is
/// reported, not fatal; `progress` is called after each case.
pub async fn run_all<F: StoreFactory>(
    factory: std::sync::Arc<F>,
    mut progress: impl FnMut(&CaseOutcome),
) -> Vec<CaseOutcome> {
    let mut outcomes = Vec::new();
    for (name, case) in cases::<F>() {
        let started = std::time::Instant::now();
        let failure = match tokio::spawn(case(factory.clone())).await {
            Ok(()) => None,
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                Some(
                    payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panicked".into()),
                )
            }
            Err(e) => Some(e.to_string()),
        };
        let outcome = CaseOutcome {
            name,
            failure,
            elapsed: started.elapsed(),
        };
        progress(&outcome);
        outcomes.push(outcome);
    }
    outcomes
}

mod properties;
pub use properties::{
    HistoryStats, MemoryFactory, STEP_LIMIT, check_concurrent, check_histories,
    check_model_equivalence, increment_storm, linearizable_histories, model_equivalence,
    negative_control,
};
