//! [`RedisRecords`]: the negative control's records in Redis (the `redis` feature).

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use session_core::{Attribute, Error, Result, SessionHandle, SessionRecord, Timestamp};

use super::RecordBackend;

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
    async fn get(&self, handle: &SessionHandle) -> Result<Option<SessionRecord>> {
        let raw: Option<Vec<u8>> = self
            .connection
            .clone()
            .get(self.key(handle))
            .await
            .map_err(Error::backend)?;
        let Some(raw) = raw else { return Ok(None) };
        let r: Record = serde_json::from_slice(&raw).map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(Some(SessionRecord {
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

    async fn set(&self, s: &SessionRecord) -> Result<()> {
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
