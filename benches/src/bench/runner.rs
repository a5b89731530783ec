//! Throughput and latency of one cell (subject x workload x size x concurrency).
//!
//! Every task works on its own session, created before the clock starts, so a cell measures
//! the store, not contention on one key. Tasks run flat out for the warm-up and the measured
//! window; an operation counts when it completes inside the window, which does not favour
//! fast or slow operations. A cell also stops at an operation budget (and `create` at a
//! memory budget), in which case the window ends at the last completion.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::deploy::Target;
use super::error::{BenchError, Result};
use super::plan::{CHANGED, Size, Timing, Workload, attributes, value};
use super::subject::Subject;

/// Bytes of sessions a `create` cell may leave behind before it stops early (they are
/// deleted after the cell).
const CREATE_BUDGET: usize = 256 << 20;
/// Sessions created concurrently while preparing a cell.
const PREPARE_PARALLELISM: usize = 32;

/// What one cell measured.
#[derive(Debug, Clone, Default)]
pub struct CellStats {
    /// Operations completed in the window.
    pub ops: u64,
    /// Operations that failed in the window.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// The measured window.
    pub window: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl CellStats {
    /// Successful operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

/// Creates `count` sessions of `size` with some parallelism.
pub async fn prepare<S: Subject>(
    subject: &Arc<S>,
    size: Size,
    count: usize,
) -> Result<Vec<S::Session>> {
    let attrs = Arc::new(attributes(size));
    let mut sessions = Vec::with_capacity(count);
    let mut set = JoinSet::new();
    for i in 0..count {
        let (subject, attrs) = (subject.clone(), attrs.clone());
        set.spawn(async move { subject.create(&attrs).await });
        if set.len() >= PREPARE_PARALLELISM || i + 1 == count {
            while let Some(done) = set.join_next().await {
                sessions.push(done.map_err(|e| BenchError::Unexpected(e.to_string()))??);
            }
        }
    }
    Ok(sessions)
}

/// Runs one operation of `workload`; for `create`, returns the new session.
pub async fn operation<S: Subject>(
    subject: &S,
    workload: Workload,
    session: &mut S::Session,
    attrs: &[(String, Vec<u8>)],
    value: &[u8],
) -> Result<Option<S::Session>> {
    match workload {
        Workload::Create => return subject.create(attrs).await.map(Some),
        Workload::Load => subject.load(session).await?,
        Workload::LoadSome => subject.load_some(session, CHANGED).await?,
        Workload::Apply => subject.apply(session, CHANGED, value).await?,
        Workload::Cycle => subject.cycle(session, CHANGED, value).await?,
        Workload::Narrow => subject.narrow(session, CHANGED, value).await?,
        Workload::Rotate => subject.rotate(session).await?,
        Workload::WebMix | Workload::WebMixDefault => {
            let sliding = workload == Workload::WebMix;
            for _ in 0..9 {
                subject.read_request(session, sliding).await?;
            }
            subject.cycle(session, CHANGED, value).await?;
        }
    }
    Ok(None)
}

/// What a task brings back.
struct TaskOutcome {
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    last_completion: Option<Instant>,
    keys: Vec<String>,
}

/// Measures one cell; deletes every session it created afterwards.
pub async fn measure<S: Subject>(
    subject: &Arc<S>,
    target: &Target,
    workload: Workload,
    size: Size,
    tasks: usize,
    timing: Timing,
) -> Result<CellStats> {
    let tasks = tasks.max(1);
    let sessions = if workload == Workload::Create {
        // A create cell needs no prepared session; the tasks hold a placeholder.
        let one = prepare(subject, size, 1).await?;
        vec![one[0].clone(); tasks]
    } else {
        prepare(subject, size, tasks).await?
    };
    let mut keys: Vec<String> = sessions.iter().map(|s| subject.key(s)).collect();
    let limit = if workload == Workload::Create {
        timing
            .max_ops
            .min((CREATE_BUDGET / size.payload_bytes().max(1)) as u64)
    } else {
        timing.max_ops
    };
    let attrs = Arc::new(attributes(size));
    let values = Arc::new([value(size.value_len(), 23), value(size.value_len(), 24)]);
    let started = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let window_start = start + timing.warmup;
    let window_end = window_start + timing.measure;

    let mut set = JoinSet::new();
    for mut session in sessions {
        let (subject, attrs, values, started) = (
            subject.clone(),
            attrs.clone(),
            values.clone(),
            started.clone(),
        );
        set.spawn(async move {
            let mut out = TaskOutcome {
                latencies: Vec::new(),
                errors: 0,
                first_error: None,
                last_completion: None,
                keys: Vec::new(),
            };
            let mut n = 0usize;
            while Instant::now() < window_end && started.fetch_add(1, Ordering::Relaxed) < limit {
                n += 1;
                let value = &values[n % 2];
                let t0 = Instant::now();
                let result = operation(&*subject, workload, &mut session, &attrs, value).await;
                let t1 = Instant::now();
                let counted = t1 >= window_start && t1 <= window_end;
                match result {
                    Ok(created) => {
                        if let Some(created) = created {
                            out.keys.push(subject.key(&created));
                        }
                        if counted {
                            out.latencies.push((t1 - t0).as_nanos() as u64);
                            out.last_completion = Some(t1);
                        }
                    }
                    Err(e) => {
                        if counted {
                            out.errors += 1;
                        }
                        out.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            if workload != Workload::Create {
                out.keys.push(subject.key(&session));
            }
            out
        });
    }

    let mut latencies = Vec::new();
    let mut stats = CellStats::default();
    let mut last = None::<Instant>;
    while let Some(done) = set.join_next().await {
        let out = done.map_err(|e| BenchError::Unexpected(e.to_string()))?;
        latencies.extend(out.latencies);
        stats.errors += out.errors;
        if stats.first_error.is_none() {
            stats.first_error = out.first_error;
        }
        last = last.max(out.last_completion);
        keys.extend(out.keys);
    }
    let budget_hit = started.load(Ordering::Relaxed) >= limit;
    let end = match last {
        Some(last) if budget_hit => last.min(window_end),
        _ => window_end,
    };
    stats.window = end.saturating_duration_since(window_start);
    stats.ops = latencies.len() as u64;
    latencies.sort_unstable();
    stats.p50 = percentile(&latencies, 0.50);
    stats.p99 = percentile(&latencies, 0.99);
    keys.sort_unstable();
    keys.dedup();
    target.delete(&keys).await?;
    Ok(stats)
}

/// The `q`-quantile (nearest rank) of sorted nanosecond latencies.
pub fn percentile(sorted: &[u64], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    Duration::from_nanos(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_nanos(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_nanos(99));
        assert_eq!(percentile(&[7], 0.99), Duration::from_nanos(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
