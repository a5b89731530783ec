//! What a store costs Redis, independent of how fast the client is: server CPU, commands
//! executed and round trips per request cycle, and memory per session.
//!
//! A cost run warms up, zeroes the servers' command counters, reads their CPU time, runs
//! cycles from a few tasks for a fixed time, waits for every task, and reads the counters
//! again; everything Redis did in between is divided by the cycles completed. Commands
//! include those a Lua script runs (Redis counts them), housekeeping excluded (see
//! [`metrics`](super::metrics)). Background work of the servers (cron, cluster bus,
//! replication to replicas) is included: a deployment pays it too, and it is small next to
//! thousands of cycles per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::deploy::Target;
use super::error::{BenchError, Result};
use super::plan::{Size, Workload, attributes, value};
use super::runner::{operation, prepare};
use super::subject::Subject;

/// Warm-up before a cost run's counters are read.
const WARMUP: Duration = Duration::from_millis(100);

/// Redis' cost of one request cycle.
#[derive(Debug, Clone, Default)]
pub struct Cost {
    /// Cycles completed.
    pub cycles: u64,
    /// Cycles that failed.
    pub errors: u64,
    /// Server CPU (user + sys, summed over masters) per cycle, in microseconds.
    pub cpu_us: f64,
    /// Commands executed per cycle (script-internal calls included).
    pub commands: f64,
    /// Round trips per cycle, where the subject counts them.
    pub round_trips: Option<f64>,
    /// Commands per cycle by command, largest first.
    pub breakdown: Vec<(String, f64)>,
}

/// Runs `workload` (a cycle or narrow cycle) from `tasks` tasks for `time`, each task on
/// its own session; `time` zero runs only the warm-up.
async fn drive<S: Subject>(
    subject: &Arc<S>,
    workload: Workload,
    sessions: &[S::Session],
    size: Size,
    time: Duration,
) -> Result<(u64, u64)> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let attrs = Arc::new(attributes(size));
    let values = Arc::new([value(size.value_len(), 17), value(size.value_len(), 18)]);
    let end = Instant::now() + time;
    let mut set = JoinSet::new();
    for session in sessions {
        let mut session = session.clone();
        let (subject, attrs, values, done, failed) = (
            subject.clone(),
            attrs.clone(),
            values.clone(),
            done.clone(),
            failed.clone(),
        );
        set.spawn(async move {
            let mut n = 0;
            while Instant::now() < end {
                n += 1;
                let value = &values[n % 2];
                match operation(&*subject, workload, &mut session, &attrs, value).await {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.map_err(|e| BenchError::Unexpected(e.to_string()))?;
    }
    Ok((done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed)))
}

/// Measures Redis' cost of `workload` on sessions of `size`.
pub async fn cost<S: Subject>(
    subject: &Arc<S>,
    target: &Target,
    workload: Workload,
    size: Size,
    tasks: usize,
    time: Duration,
) -> Result<Cost> {
    let sessions = prepare(subject, size, tasks.max(1)).await?;
    let keys: Vec<String> = sessions.iter().map(|s| subject.key(s)).collect();
    drive(subject, workload, &sessions, size, WARMUP).await?;

    target.reset_stats().await?;
    let before = target.snapshot().await?;
    let trips_before = subject.round_trips();
    let (cycles, errors) = drive(subject, workload, &sessions, size, time).await?;
    let after = target.snapshot().await?;
    let trips_after = subject.round_trips();
    target.delete(&keys).await?;

    let delta = before.until(&after);
    let per = |x: f64| x / (cycles.max(1) as f64);
    let mut breakdown: Vec<(String, f64)> = delta
        .calls
        .iter()
        .map(|(c, n)| (c.clone(), per(*n as f64)))
        .collect();
    breakdown.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(Cost {
        cycles,
        errors,
        cpu_us: per(delta.cpu_seconds * 1e6),
        commands: per(delta.total_calls() as f64),
        round_trips: match (trips_before, trips_after) {
            (Some(a), Some(b)) => Some(per(b.saturating_sub(a) as f64)),
            _ => None,
        },
        breakdown,
    })
}

/// `MEMORY USAGE` of a fresh session of `size` (then deleted).
pub async fn memory<S: Subject>(subject: &S, target: &Target, size: Size) -> Result<u64> {
    let session = subject.create(&attributes(size)).await?;
    let key = subject.key(&session);
    let bytes = target.memory_usage(&key).await;
    target.delete(&[key]).await?;
    bytes
}
