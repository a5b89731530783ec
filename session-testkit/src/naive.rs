//! The negative control: a store that does what popular session stores do.
//!
//! It loads the whole record, changes it in the application, and writes the whole record
//! back, with no tombstones and no forwarding. Run through the concurrency check it must be
//! caught losing updates; if it is not, the check is broken.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use session_core::{
    Applied, Attribute, Clock, Created, Delta, Error, Model, NewSession, Policy, Result, Session,
    SessionHandle, SessionStore, SessionToken, SystemClock, Timestamp,
};

/// Where the naive store keeps whole records.
#[async_trait]
pub trait RecordBackend: Send + Sync + std::fmt::Debug {
    /// Reads a record.
    async fn get(&self, handle: &SessionHandle) -> Result<Option<Session>>;
    /// Writes a whole record.
    async fn set(&self, session: &Session) -> Result<()>;
    /// Removes a record.
    async fn remove(&self, handle: &SessionHandle) -> Result<()>;
}

/// Records in process memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryRecords(Arc<Mutex<HashMap<SessionHandle, Session>>>);

#[async_trait]
impl RecordBackend for MemoryRecords {
    async fn get(&self, handle: &SessionHandle) -> Result<Option<Session>> {
        Ok(self.0.lock().expect("lock").get(handle).cloned())
    }
    async fn set(&self, session: &Session) -> Result<()> {
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

/// Records as JSON strings in Redis (`GET`/`SET`/`DEL`), like tower-sessions' Redis store.
#[derive(Clone)]
pub struct RedisRecords {
    connection: redis::aio::ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRecords")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisRecords {
    /// Connects to a standalone Redis; keys are `<prefix>:<handle>`.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self> {
        let client = redis::Client::open(url).map_err(Error::backend)?;
        let connection = client
            .get_connection_manager()
            .await
            .map_err(Error::backend)?;
        Ok(RedisRecords {
            connection,
            prefix: prefix.into(),
        })
    }

    fn key(&self, handle: &SessionHandle) -> String {
        format!("{}:{}", self.prefix, handle.to_hex())
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    version: u64,
    created: u64,
    last_access: u64,
    idle_ms: u64,
    deadline: Option<u64>,
    principal: Option<String>,
    attributes: Vec<(String, Vec<u8>, u64)>,
}

#[async_trait]
impl RecordBackend for RedisRecords {
    async fn get(&self, handle: &SessionHandle) -> Result<Option<Session>> {
        let raw: Option<Vec<u8>> = self
            .connection
            .clone()
            .get(self.key(handle))
            .await
            .map_err(Error::backend)?;
        let Some(raw) = raw else { return Ok(None) };
        let r: Record = serde_json::from_slice(&raw).map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(Some(Session {
            handle: *handle,
            version: r.version,
            created_at: Timestamp::from_millis(r.created),
            last_access: Timestamp::from_millis(r.last_access),
            idle_timeout: Duration::from_millis(r.idle_ms),
            deadline: r.deadline.map(Timestamp::from_millis),
            principal: r.principal,
            attributes: r
                .attributes
                .into_iter()
                .map(|(n, value, version)| {
                    let value = value.into();
                    (n, Attribute { value, version })
                })
                .collect(),
            damaged: Default::default(),
        }))
    }

    async fn set(&self, s: &Session) -> Result<()> {
        let record = Record {
            version: s.version,
            created: s.created_at.as_millis(),
            last_access: s.last_access.as_millis(),
            idle_ms: s.idle_timeout.as_millis() as u64,
            deadline: s.deadline.map(Timestamp::as_millis),
            principal: s.principal.clone(),
            attributes: s
                .attributes
                .iter()
                .map(|(n, a)| (n.clone(), a.value.to_vec(), a.version))
                .collect(),
        };
        let raw = serde_json::to_vec(&record).map_err(Error::backend)?;
        let ttl = s.idle_timeout.as_secs().max(1);
        let () = self
            .connection
            .clone()
            .set_ex(self.key(&s.handle), raw, ttl)
            .await
            .map_err(Error::backend)?;
        Ok(())
    }

    async fn remove(&self, handle: &SessionHandle) -> Result<()> {
        let () = self
            .connection
            .clone()
            .del(self.key(handle))
            .await
            .map_err(Error::backend)?;
        Ok(())
    }
}

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

    async fn live(&self, token: &SessionToken) -> Result<Option<Session>> {
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

    async fn load(&self, token: &SessionToken) -> Result<Option<Session>> {
        self.live(token).await
    }

    async fn load_read_only(&self, token: &SessionToken) -> Result<Option<Session>> {
        self.live(token).await
    }

    async fn load_some(&self, token: &SessionToken, names: &[&str]) -> Result<Option<Session>> {
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
