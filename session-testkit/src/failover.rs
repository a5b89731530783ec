//! A session-store workload for [`run_failover_workload`](crate::topology::run_failover_workload): increments on a few
//! sessions while a master fails, then a count of what survived.
//!
//! Any store runs it (both adapters do), so their lost-write figures are comparable.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use session_core::{Delta, Error, NewSession, SessionStore, SessionToken};

use crate::topology::{FailoverWorkload, OpOutcome, TopologyError, WorkloadCheck};

#[derive(Debug, Default)]
struct Tally {
    attempted: AtomicU64,
    acknowledged: AtomicU64,
    durable: AtomicU64,
}

/// Increments of `n` on `sessions` sessions of a store.
#[derive(Debug)]
pub struct StoreWorkload<S> {
    store: Arc<S>,
    tokens: Vec<SessionToken>,
    tallies: Vec<Tally>,
}

impl<S: SessionStore + 'static> StoreWorkload<S> {
    /// Creates the sessions (spread over the cluster's slots by their random handles).
    pub async fn prepare(store: Arc<S>, sessions: usize) -> Result<Self, Error> {
        let mut tokens = Vec::new();
        for _ in 0..sessions {
            let new = NewSession::new().idle_timeout(Duration::from_secs(3600));
            tokens.push(store.create(new).await?.token);
        }
        let tallies = (0..sessions).map(|_| Tally::default()).collect();
        Ok(StoreWorkload {
            store,
            tokens,
            tallies,
        })
    }
}

#[async_trait]
impl<S: SessionStore + 'static> FailoverWorkload for StoreWorkload<S> {
    async fn operation(&self, task: usize, op: usize) -> OpOutcome {
        let i = (task * 7919 + op) % self.tokens.len();
        let tally = &self.tallies[i];
        tally.attempted.fetch_add(1, Ordering::SeqCst);
        match self
            .store
            .apply(&self.tokens[i], &Delta::new().increment("n", 1))
            .await
        {
            Ok(_) => {
                tally.acknowledged.fetch_add(1, Ordering::SeqCst);
                tally.durable.fetch_add(1, Ordering::SeqCst);
                OpOutcome::Acknowledged
            }
            Err(Error::NotDurable { .. }) => {
                tally.acknowledged.fetch_add(1, Ordering::SeqCst);
                OpOutcome::AcknowledgedNotDurable
            }
            Err(_) => OpOutcome::Failed,
        }
    }

    async fn verify(&self) -> Result<WorkloadCheck, TopologyError> {
        let mut check = WorkloadCheck::default();
        for (token, tally) in self.tokens.iter().zip(&self.tallies) {
            let mut read = None;
            for _ in 0..20 {
                match self.store.load_read_only(token).await {
                    Ok(s) => {
                        read = Some(s);
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
            check.keys_checked += 1;
            let Some(read) = read else {
                check.read_failures += 1;
                continue;
            };
            let Some(session) = read else {
                check.corrupted_keys += 1;
                check.details.push_str("a session vanished; ");
                continue;
            };
            let value = session.get::<i64>("n").ok().flatten().unwrap_or(0).max(0) as u64;
            let (attempted, acked, durable) = (
                tally.attempted.load(Ordering::SeqCst),
                tally.acknowledged.load(Ordering::SeqCst),
                tally.durable.load(Ordering::SeqCst),
            );
            // Each applied increment is one version: anything else means a torn write.
            if value > attempted || session.version != value + 1 {
                check.corrupted_keys += 1;
                check.details.push_str(&format!(
                    "{}: value {value}, version {}, attempted {attempted}; ",
                    session.handle, session.version
                ));
            }
            check.lost_acknowledged += acked.saturating_sub(value);
            check.lost_durable += durable.saturating_sub(value);
            check.applied_total += value;
        }
        Ok(check)
    }

    fn describe(&self) -> String {
        format!("session store increments on {} sessions", self.tokens.len())
    }
}
