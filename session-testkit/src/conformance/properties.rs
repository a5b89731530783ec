//! Property checks run through proptest's runner, so any store factory can use them and a
//! failure is shrunk to a small, readable history.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::StoreFactory;
use crate::linearizability::Verdict;
use crate::workload::{
    Concurrent, Report, check_equivalence, checked_policy, concurrent_workload, run_concurrent,
    sequential_workload, verify,
};

/// Search steps per session before the checker answers "unknown".
pub const STEP_LIMIT: usize = 200_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Model equivalence: generated sequences of calls over a few sessions give, call by call,
/// the same results on the store as on the model. Panics with the shrunk history otherwise.
pub fn model_equivalence<F: StoreFactory>(factory: &F, cases: u32) {
    if let Err(e) = check_model_equivalence(factory, cases) {
        panic!("model equivalence failed: {e}");
    }
}

/// [`model_equivalence`] returning the shrunk failing history instead of panicking.
pub fn check_model_equivalence<F: StoreFactory>(factory: &F, cases: u32) -> Result<(), String> {
    let rt = runtime();
    let result = runner(cases).run(&sequential_workload(40), |steps| {
        rt.block_on(async {
            let store = factory
                .make(checked_policy())
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            check_equivalence(&store, &steps)
                .await
                .map_err(TestCaseError::fail)
        })
    });
    result.map_err(|e| e.to_string())
}

/// Runs one concurrent workload against a fresh store and checks it.
pub async fn check_concurrent<F: StoreFactory>(
    factory: &F,
    workload: &Concurrent,
    sessions: usize,
) -> Result<Report, String> {
    let store = Arc::new(
        factory
            .make(checked_policy())
            .await
            .map_err(|e| e.to_string())?,
    );
    let run = run_concurrent(store, workload, sessions)
        .await
        .map_err(|e| e.to_string())?;
    Ok(verify(&run, STEP_LIMIT))
}

/// What [`check_histories`] found.
#[derive(Debug, Clone, Default)]
pub struct HistoryStats {
    /// Histories run and checked.
    pub histories: usize,
    /// Calls in them.
    pub calls: usize,
    /// Histories whose check hit the step limit.
    pub unknown: usize,
    /// Time spent running and checking.
    pub elapsed: std::time::Duration,
    /// The shrunk history and anomaly report, if one was found.
    pub failure: Option<String>,
}

/// Concurrency: generated histories of 2 to 8 clients with up to 20 calls each over two
/// sessions run truly concurrently; each must be linearizable per session against the model
/// and keep the invariants (no lost increment, no resurrection, no stale forward). Returns
/// the counts and, on an anomaly, the shrunk history with a concrete description.
pub fn check_histories<F: StoreFactory>(factory: &F, cases: u32) -> HistoryStats {
    let rt = runtime();
    let started = std::time::Instant::now();
    let (histories, calls, unknown) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let result = runner(cases).run(&concurrent_workload(8, 20, 2), |workload| {
        let report = rt
            .block_on(check_concurrent(factory, &workload, 2))
            .map_err(TestCaseError::fail)?;
        histories.fetch_add(1, Ordering::Relaxed);
        calls.fetch_add(workload.iter().map(Vec::len).sum(), Ordering::Relaxed);
        if matches!(report.verdict, Verdict::Unknown { .. }) {
            unknown.fetch_add(1, Ordering::Relaxed);
        }
        if report.has_anomalies() {
            return Err(TestCaseError::fail(report.to_string()));
        }
        Ok(())
    });
    HistoryStats {
        histories: histories.into_inner(),
        calls: calls.into_inner(),
        unknown: unknown.into_inner(),
        elapsed: started.elapsed(),
        failure: result.err().map(|e| e.to_string()),
    }
}

/// [`check_histories`] as a test: panics with the report on an anomaly.
pub fn linearizable_histories<F: StoreFactory>(factory: &F, cases: u32) {
    let stats = check_histories(factory, cases);
    eprintln!(
        "linearizability: {} histories ({} calls) checked, {} unknown (step limit)",
        stats.histories, stats.calls, stats.unknown
    );
    if let Some(failure) = stats.failure {
        panic!("concurrency check failed: {failure}");
    }
}

/// The workload a negative control runs: `clients` clients each incrementing one session's
/// counter `ops` times, the pattern on which whole-record write-back loses updates.
pub fn increment_storm(clients: usize, ops: usize) -> Concurrent {
    let call = (
        0,
        crate::history::Call::Apply(session_core::Delta::new().increment("n", 1)),
    );
    vec![vec![call; ops]; clients]
}

/// The negative control: 8 clients × 20 concurrent increments through a store that must
/// lose updates (a whole-record write-back store). Panics unless the checks report the lost
/// increments concretely and the history as not linearizable; returns the report. If this
/// fails, the checks cannot be trusted to catch a broken store either.
pub async fn negative_control<F: StoreFactory>(factory: &F) -> Report {
    let report = check_concurrent(factory, &increment_storm(8, 20), 1)
        .await
        .expect("run");
    println!("{report}");
    let lost = report
        .lost_increments
        .first()
        .expect("lost increments are reported");
    assert_eq!(lost.acknowledged, 160);
    assert!(lost.final_value < 160, "{lost:?}");
    assert!(
        matches!(report.verdict, Verdict::NotLinearizable(_)),
        "{:?}",
        report.verdict
    );
    report
}

/// The in-memory store on the system clock: the factory for checking `MemoryStore` (and an
/// example of the smallest [`StoreFactory`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryFactory;

#[async_trait::async_trait]
impl StoreFactory for MemoryFactory {
    type Store = session_core::MemoryStore;
    async fn make(&self, policy: session_core::Policy) -> session_core::Result<Self::Store> {
        session_core::MemoryStore::with(policy, Arc::new(session_core::SystemClock))
    }
}
