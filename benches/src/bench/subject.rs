//! The one interface every compared store or client implements ([`Subject`]), and its
//! type-erased form ([`Bench`]) that lets the suite run different subjects side by side,
//! cell by cell, so slow drift of the machine hits every subject alike.
//!
//! A subject maps each workload to what an application would do with that store: ours send
//! deltas, the raw clients send the fewest commands on our layout (the floor), the peers
//! load and save whole records. Where a subject has no such operation it says so
//! ([`Support`]) and the report shows why.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::cost::{self, Cost};
use super::deploy::Target;
use super::error::Result;
use super::lost::{self, Lost};
use super::plan::{Size, SubjectKind, Timing, Workload};
use super::runner::{self, CellStats};

/// A session's attributes: name and value.
pub type Attrs = [(String, Vec<u8>)];

/// How a subject runs a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// It has the operation.
    Native,
    /// It has no narrow read, so its narrow cycle is its full cycle (shown, not re-measured).
    AsCycle,
    /// It cannot run the workload, and why.
    Unsupported(&'static str),
}

/// A store or client under test. Each benchmark task owns one `Session` (a handle the
/// subject needs to find the session again: a token, a key, an in-memory record).
#[async_trait]
pub trait Subject: Send + Sync + 'static {
    /// What a task holds to reach its session.
    type Session: Clone + Send + Sync + 'static;

    /// How this subject runs `workload` ([`Support::Native`] unless overridden).
    fn support(&self, workload: Workload) -> Support {
        let _ = workload;
        Support::Native
    }

    /// Creates a session holding `attrs`.
    async fn create(&self, attrs: &Attrs) -> Result<Self::Session>;
    /// Loads the whole session; an absent session is an error.
    async fn load(&self, session: &Self::Session) -> Result<()>;
    /// A request that only reads the session. `sliding`: keep the idle expiry sliding as
    /// the store's docs configure it (ours touch once per interval in any case); else the
    /// store's default configuration. A plain load unless overridden.
    async fn read_request(&self, session: &mut Self::Session, sliding: bool) -> Result<()> {
        let _ = sliding;
        self.load(session).await
    }
    /// Loads only attribute `name`.
    async fn load_some(&self, session: &Self::Session, name: &str) -> Result<()>;
    /// Saves attribute `name` = `value` without reading first.
    async fn apply(&self, session: &mut Self::Session, name: &str, value: &[u8]) -> Result<()>;
    /// Loads, sets `name` = `value`, saves.
    async fn cycle(&self, session: &mut Self::Session, name: &str, value: &[u8]) -> Result<()>;
    /// Loads only `name`, sets it to `value`, saves ([`Subject::cycle`] unless overridden).
    async fn narrow(&self, session: &mut Self::Session, name: &str, value: &[u8]) -> Result<()> {
        self.cycle(session, name, value).await
    }
    /// Moves the session to a new id; `session` then names the new one.
    async fn rotate(&self, session: &mut Self::Session) -> Result<()>;
    /// The names of the attributes the session holds now (for the lost-update check).
    async fn names(&self, session: &Self::Session) -> Result<Vec<String>>;
    /// The Redis key that holds the session.
    fn key(&self, session: &Self::Session) -> String;
    /// Round trips to Redis so far, where the subject can count them.
    fn round_trips(&self) -> Option<u64>;
}

/// A subject with its type erased: what the suite needs from each one.
#[async_trait]
pub trait Bench: Send + Sync {
    /// Which subject.
    fn kind(&self) -> SubjectKind;
    /// How it runs `workload`.
    fn support(&self, workload: Workload) -> Support;
    /// Measures one throughput cell.
    async fn measure(
        &self,
        target: &Target,
        workload: Workload,
        size: Size,
        tasks: usize,
        timing: Timing,
    ) -> Result<CellStats>;
    /// Measures Redis' cost of the cycle (or narrow cycle) on sessions of `size`.
    async fn cost(
        &self,
        target: &Target,
        workload: Workload,
        size: Size,
        tasks: usize,
        time: Duration,
    ) -> Result<Cost>;
    /// `MEMORY USAGE` of one session of `size`.
    async fn memory(&self, target: &Target, size: Size) -> Result<u64>;
    /// The lost-update comparison: `tasks` concurrent cycles on one session, `rounds` times.
    async fn lost(&self, target: &Target, tasks: usize, rounds: usize) -> Result<Lost>;
}

/// Erases a [`Subject`]'s session type.
pub struct Erased<S> {
    kind: SubjectKind,
    subject: Arc<S>,
}

impl<S: Subject> Erased<S> {
    /// Wraps `subject`, which the report calls `kind`.
    pub fn boxed(kind: SubjectKind, subject: S) -> Box<dyn Bench> {
        Box::new(Erased {
            kind,
            subject: Arc::new(subject),
        })
    }
}

#[async_trait]
impl<S: Subject> Bench for Erased<S> {
    fn kind(&self) -> SubjectKind {
        self.kind
    }

    fn support(&self, workload: Workload) -> Support {
        self.subject.support(workload)
    }

    async fn measure(
        &self,
        target: &Target,
        workload: Workload,
        size: Size,
        tasks: usize,
        timing: Timing,
    ) -> Result<CellStats> {
        runner::measure(&self.subject, target, workload, size, tasks, timing).await
    }

    async fn cost(
        &self,
        target: &Target,
        workload: Workload,
        size: Size,
        tasks: usize,
        time: Duration,
    ) -> Result<Cost> {
        cost::cost(&self.subject, target, workload, size, tasks, time).await
    }

    async fn memory(&self, target: &Target, size: Size) -> Result<u64> {
        cost::memory(&*self.subject, target, size).await
    }

    async fn lost(&self, target: &Target, tasks: usize, rounds: usize) -> Result<Lost> {
        lost::lost(&self.subject, target, tasks, rounds).await
    }
}
