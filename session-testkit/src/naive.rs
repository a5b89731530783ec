//! The negative control: a store that does what popular session stores do.
//!
//! It loads the whole record, changes it in the application, and writes the whole record
//! back, with no tombstones and no forwarding. Run through the concurrency check it must be
//! caught losing updates; if it is not, the check is broken.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use session_core::{
    Applied, Clock, Created, Delta, Error, Model, NewSession, Policy, Result, SessionHandle,
    SessionRecord, SessionStore, SessionToken, SystemClock, Timestamp,
};

/// Where the naive store keeps whole records.
#[async_trait]
pub trait RecordBackend: Send + Sync + std::fmt::Debug {
    /// Reads a record.
    async fn get(&self, handle: &SessionHandle) -> Result<Option<SessionRecord>>;
    /// Writes a whole record.
    async fn set(&self, session: &SessionRecord) -> Result<()>;
    /// Removes a record.
    async fn remove(&self, handle: &SessionHandle) -> Result<()>;
}

/// Records in process memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryRecords(Arc<Mutex<HashMap<SessionHandle, SessionRecord>>>);

#[async_trait]
impl RecordBackend for MemoryRecords {
    async fn get(&self, handle: &SessionHandle) -> Result<Option<SessionRecord>> {
        Ok(self.0.lock().expect("lock").get(handle).cloned())
    }
    async fn set(&self, session: &SessionRecord) -> Result<()> {
        self.0
            .lock()
            .expect("lock")
            .insert(session.handle, session.clone());
        Ok(())
    }
    async fn remove(&self, handle: &SessionHandle) -> Result<()> {
        self.0.lock().expect("lock").remove(handle);
        Ok(())
    }
}

#[cfg(feature = "redis")]
#[path = "naive_redis.rs"]
mod on_redis;
#[cfg(feature = "redis")]
pub use on_redis::RedisRecords;

/// Load, change, write back: the lost-update pattern, on purpose.
#[derive(Debug)]
pub struct NaiveStore<B> {
    backend: B,
    policy: Policy,
    /// Simulated request work between reading and writing back (real handlers have some).
    think: Duration,
}

impl<B: RecordBackend> NaiveStore<B> {
    /// A naive store over `backend`.
    pub fn new(backend: B, policy: Policy) -> Self {
        NaiveStore {
            backend,
            policy,
            think: Duration::from_micros(200),
        }
    }

    fn now() -> Timestamp {
        SystemClock.now()
    }

    async fn live(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        let now = Self::now();
        Ok(self
            .backend
            .get(&token.handle())
            .await?
            .filter(|s| now < s.expires_at()))
    }

    /// Runs one model operation on a copy of the record and writes the copy back whole.
    async fn read_modify_write<T>(
        &self,
        token: &SessionToken,
        f: impl FnOnce(&mut Model, Timestamp, &SessionHandle) -> Result<T> + Send,
    ) -> Result<T> {
        let handle = token.handle();
        let session = self.live(token).await?.ok_or(Error::NotFound { handle })?;
        tokio::time::sleep(self.think).await;
        let mut model = Model::new(self.policy.clone());
        model.restore(session);
        let now = Self::now();
        let result = f(&mut model, now, &handle)?;
        if let Some(s) = model.load_read_only(now, &handle) {
            self.backend.set(&s).await?;
        }
        Ok(result)
    }
}

#[async_trait]
impl<B: RecordBackend> SessionStore for NaiveStore<B> {
    fn policy(&self) -> Policy {
        self.policy.clone()
    }

    async fn create(&self, new: NewSession) -> Result<Created> {
        let token = SessionToken::generate();
        let mut model = Model::new(self.policy.clone());
        let session = model
            .create(Self::now(), token.handle(), new)?
            .ok_or_else(|| Error::backend("fresh handle taken"))?;
        self.backend.set(&session).await?;
        Ok(Created { token, session })
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        self.live(token).await
    }

    async fn load_read_only(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        self.live(token).await
    }

    async fn load_some(
        &self,
        token: &SessionToken,
        names: &[&str],
    ) -> Result<Option<SessionRecord>> {
        Ok(self.live(token).await?.map(|mut s| {
            s.attributes.retain(|n, _| names.contains(&n.as_str()));
            s
        }))
    }

    async fn apply(&self, token: &SessionToken, delta: &Delta) -> Result<Applied> {
        self.read_modify_write(token, |m, now, h| m.apply(now, h, delta))
            .await
    }

    async fn touch(&self, token: &SessionToken) -> Result<()> {
        self.read_modify_write(token, |m, now, h| m.touch(now, h))
            .await
    }

    async fn delete(&self, token: &SessionToken) -> Result<bool> {
        let existed = self.live(token).await?.is_some();
        self.backend.remove(&token.handle()).await?;
        Ok(existed)
    }

    async fn rotate(&self, token: &SessionToken) -> Result<SessionToken> {
        let handle = token.handle();
        let mut session = self.live(token).await?.ok_or(Error::NotFound { handle })?;
        let new = SessionToken::generate();
        session.handle = new.handle();
        self.backend.set(&session).await?;
        self.backend.remove(&handle).await?;
        Ok(new)
    }

    async fn sessions_of(&self, _principal: &str) -> Result<Vec<SessionHandle>> {
        Err(Error::backend("the naive store keeps no principal index"))
    }

    async fn delete_all_of(&self, _principal: &str) -> Result<usize> {
        Err(Error::backend("the naive store keeps no principal index"))
    }
}
