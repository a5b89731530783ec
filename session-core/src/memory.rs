//! The in-memory store: the embedded default, and the model behind a lock.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::delta::{Applied, Delta};
use crate::error::{Error, Result};
use crate::handle::SessionHandle;
use crate::model::Model;
use crate::policy::Policy;
use crate::session::{NewSession, SessionRecord, SessionSummary};
use crate::store::{Created, SessionStore};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::token::SessionToken;

/// How often (on the store's clock) an operation also sweeps out what has expired.
const PURGE_EVERY: Duration = Duration::from_secs(5);
/// Fresh tokens tried before giving up on `create`/`rotate`: more than one collision of
/// 128-bit random tokens means the random source is broken.
const TOKEN_ATTEMPTS: usize = 8;

/// Sessions in this process's memory.
///
/// For a single server, for tests, and as the reference the Redis stores are checked
/// against. It keeps every guarantee of the contract (it runs [`Model`] under a mutex that is
/// never held across an `.await`), and expired sessions, tombstones and forwards are swept
/// out as time passes, so memory does not grow without bound. Clones share one store.
///
/// ```
/// use session_core::{Delta, MemoryStore, NewSession, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let token = store.create(NewSession::new()).await?.token;
/// let applied = store.apply(&token, &Delta::new().increment("visits", 1)).await?;
/// assert_eq!((applied.version, applied.increments), (2, vec![1]));
/// # Ok::<_, session_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug)]
struct State {
    model: Model,
    last_purge: Timestamp,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with the default [`Policy`] on the system clock.
    pub fn new() -> Self {
        Self::build(Policy::default(), Arc::new(SystemClock))
    }

    /// A store with `policy` and `clock` (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with(policy: Policy, clock: Arc<dyn Clock>) -> Result<Self> {
        policy.validate()?;
        Ok(Self::build(policy, clock))
    }

    fn build(policy: Policy, clock: Arc<dyn Clock>) -> Self {
        let state = State {
            model: Model::new(policy),
            last_purge: clock.now(),
        };
        MemoryStore {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                clock,
            }),
        }
    }

    /// Runs `f` on the model at the current time, sweeping expired entries first when due.
    fn with_model<T>(&self, f: impl FnOnce(&mut Model, Timestamp) -> T) -> T {
        let now = self.inner.clock.now();
        let mut state = self.lock();
        if now.saturating_since(state.last_purge) >= PURGE_EVERY {
            state.model.purge(now);
            state.last_purge = now;
        }
        f(&mut state.model, now)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The model mutates only after all its checks pass, so a panic cannot leave a
        // half-applied change behind: the state is usable even if a holder panicked.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sweeps out everything expired now, whatever the schedule.
    pub fn purge(&self) {
        let now = self.inner.clock.now();
        let mut state = self.lock();
        state.model.purge(now);
        state.last_purge = now;
    }

    /// Entries held, including tombstones, forwards and expired sessions not yet swept.
    pub fn len(&self) -> usize {
        self.lock().model.len()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tries fresh tokens until `attempt` finds a free handle.
    fn with_fresh_token<T>(
        &self,
        mut attempt: impl FnMut(&mut Model, Timestamp, SessionHandle) -> Result<Option<T>>,
    ) -> Result<(SessionToken, T)> {
        for _ in 0..TOKEN_ATTEMPTS {
            let token = SessionToken::generate();
            let handle = token.handle();
            if let Some(value) = self.with_model(|m, now| attempt(m, now, handle))? {
                return Ok((token, value));
            }
        }
        Err(Error::backend(
            "no free session token after repeated attempts: is the OS RNG broken?",
        ))
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn policy(&self) -> Policy {
        self.lock().model.policy().clone()
    }

    #[tracing::instrument(level = "debug", name = "session.create", skip_all)]
    async fn create(&self, new: NewSession) -> Result<Created> {
        let (token, session) = self.with_fresh_token(|m, now, h| m.create(now, h, new.clone()))?;
        Ok(Created { token, session })
    }

    #[tracing::instrument(level = "debug", name = "session.create_with_token", skip_all, fields(handle = %token.handle()))]
    async fn create_with_token(
        &self,
        token: &SessionToken,
        new: NewSession,
    ) -> Result<Option<Created>> {
        let handle = token.handle();
        let session = self.with_model(|m, now| m.create(now, handle, new))?;
        Ok(session.map(|session| Created {
            token: token.clone(),
            session,
        }))
    }

    #[tracing::instrument(level = "debug", name = "session.load", skip_all, fields(handle = %token.handle()))]
    async fn load(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        Ok(self.with_model(|m, now| m.load(now, &token.handle())))
    }

    #[tracing::instrument(level = "debug", name = "session.load_read_only", skip_all, fields(handle = %token.handle()))]
    async fn load_read_only(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        Ok(self.with_model(|m, now| m.load_read_only(now, &token.handle())))
    }

    #[tracing::instrument(level = "debug", name = "session.load_some", skip_all, fields(handle = %token.handle()))]
    async fn load_some(
        &self,
        token: &SessionToken,
        names: &[&str],
    ) -> Result<Option<SessionRecord>> {
        self.with_model(|m, now| m.load_some(now, &token.handle(), names))
    }

    #[tracing::instrument(level = "debug", name = "session.apply", skip_all, fields(handle = %token.handle()))]
    async fn apply(&self, token: &SessionToken, delta: &Delta) -> Result<Applied> {
        self.with_model(|m, now| m.apply(now, &token.handle(), delta))
    }

    #[tracing::instrument(level = "debug", name = "session.touch", skip_all, fields(handle = %token.handle()))]
    async fn touch(&self, token: &SessionToken) -> Result<()> {
        self.with_model(|m, now| m.touch(now, &token.handle()))
    }

    #[tracing::instrument(level = "debug", name = "session.delete", skip_all, fields(handle = %token.handle()))]
    async fn delete(&self, token: &SessionToken) -> Result<bool> {
        Ok(self.with_model(|m, now| m.delete(now, &token.handle())))
    }

    #[tracing::instrument(level = "debug", name = "session.rotate", skip_all, fields(handle = %token.handle()))]
    async fn rotate(&self, token: &SessionToken) -> Result<SessionToken> {
        let old = token.handle();
        let (new, _) = self.with_fresh_token(|m, now, h| m.rotate(now, &old, h))?;
        Ok(new)
    }

    #[tracing::instrument(level = "debug", name = "session.sessions_of", skip_all)]
    async fn sessions_of(&self, principal: &str) -> Result<Vec<SessionHandle>> {
        self.with_model(|m, now| m.sessions_of(now, principal))
    }

    #[tracing::instrument(level = "debug", name = "session.summaries_of", skip_all)]
    async fn summaries_of(&self, principal: &str) -> Result<Vec<SessionSummary>> {
        self.with_model(|m, now| m.summaries_of(now, principal))
    }

    #[tracing::instrument(level = "debug", name = "session.delete_all_of", skip_all)]
    async fn delete_all_of(&self, principal: &str) -> Result<usize> {
        self.with_model(|m, now| m.delete_all_of(now, principal))
    }
}
