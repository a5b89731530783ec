//! The lost-update comparison, the reason this library exists: many requests of one user
//! overlap, each changes its own attribute, and the store must keep every change it
//! acknowledged. Whole-record stores (load, change, save all) let the last writer erase the
//! others; a delta keeps them all.
//!
//! A round: one session; `tasks` tasks wait on a barrier, then each runs one full request
//! cycle that sets its own attribute `task-<i>`. An update is acknowledged when the cycle
//! returned success, and lost when the session read afterwards lacks it.

use std::sync::Arc;

use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::deploy::Target;
use super::error::{BenchError, Result};
use super::plan::{Size, attributes};
use super::subject::Subject;

/// The lost-update comparison's result for one subject and task count.
#[derive(Debug, Clone, Default)]
pub struct Lost {
    /// Concurrent cycles per round.
    pub tasks: usize,
    /// Rounds run.
    pub rounds: usize,
    /// Cycles that reported success.
    pub acknowledged: u64,
    /// Acknowledged updates missing afterwards.
    pub lost: u64,
    /// Cycles that failed (not acknowledged, so not counted as lost).
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

impl Lost {
    /// Lost / acknowledged.
    pub fn share(&self) -> f64 {
        self.lost as f64 / (self.acknowledged.max(1) as f64)
    }
}

/// Runs `rounds` rounds of `tasks` concurrent cycles.
pub async fn lost<S: Subject>(
    subject: &Arc<S>,
    target: &Target,
    tasks: usize,
    rounds: usize,
) -> Result<Lost> {
    let mut total = Lost {
        tasks,
        rounds,
        ..Lost::default()
    };
    for _ in 0..rounds {
        let session = subject.create(&attributes(Size::One)).await?;
        let barrier = Arc::new(Barrier::new(tasks));
        let mut set = JoinSet::new();
        for i in 0..tasks {
            let (subject, barrier) = (subject.clone(), barrier.clone());
            let mut mine = session.clone();
            set.spawn(async move {
                let name = format!("task-{i}");
                barrier.wait().await;
                let result = subject
                    .cycle(&mut mine, &name, format!("value-{i}").as_bytes())
                    .await;
                (name, result)
            });
        }
        let mut acknowledged = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (name, result) = joined.map_err(|e| BenchError::Unexpected(e.to_string()))?;
            match result {
                Ok(()) => acknowledged.push(name),
                Err(e) => {
                    total.errors += 1;
                    total.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let present = subject.names(&session).await?;
        total.acknowledged += acknowledged.len() as u64;
        total.lost += acknowledged.iter().filter(|n| !present.contains(n)).count() as u64;
        target.delete(&[subject.key(&session)]).await?;
    }
    Ok(total)
}
