//! `tower-sessions`: `tower-sessions-redis-store` 0.16 (over one fred 10 client, configured
//! from the same URL as our fred store) at its store level (`tower_sessions::SessionStore`),
//! doing what `tower_sessions::Session` does around a request.
//!
//! A session is one string key (the record's id, no prefix) holding the whole record as
//! MessagePack, written with `SET … XX EXAT` (save) or `SET … NX EXAT` (create), read with
//! `GET`, removed with `DEL`: one command per round trip. So: load = `load`; apply = the
//! record changed in memory, saved whole; cycle = `load`, change one key, `save`; rotate =
//! `delete` of the old id and `create` of the record under a new one (what `cycle_id` plus
//! the following `save` send). It has no partial read: no `load_some`, and its narrow cycle
//! is its cycle.

use std::fmt;

use async_trait::async_trait;
use fred::clients::Client;
use serde_json::Value;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::SessionStore;
use tower_sessions_redis_store::RedisStore;

use super::error::{BenchError, Result};
use super::plan::Workload;
use super::raw_fred;
use super::subject::{Attrs, Subject, Support};

const NAME: &str = "tower-sessions";

/// The tower-sessions subject.
pub struct Tower {
    store: RedisStore<Client>,
    client: Client,
}

impl fmt::Debug for Tower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tower")
    }
}

/// Connects to `url` (`redis://…` or `redis+cluster://…`).
pub async fn connect(url: &str) -> Result<Tower> {
    let client = raw_fred::client(url).await?;
    Ok(Tower {
        store: RedisStore::new(client.clone()),
        client,
    })
}

impl Drop for Tower {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            runtime.spawn(async move {
                let _ = fred::interfaces::ClientLike::quit(&client).await;
            });
        }
    }
}

fn text(value: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(value).into_owned())
}

fn peer(e: impl fmt::Display) -> BenchError {
    BenchError::peer(NAME, e)
}

impl Tower {
    async fn fetch(&self, id: &Id) -> Result<Record> {
        self.store
            .load(id)
            .await
            .map_err(peer)?
            .ok_or_else(|| BenchError::Missing(id.to_string()))
    }
}

#[async_trait]
impl Subject for Tower {
    type Session = Record;

    fn support(&self, workload: Workload) -> Support {
        match workload {
            Workload::LoadSome => Support::Unsupported("no partial read: a record is one value"),
            Workload::Narrow => Support::AsCycle,
            _ => Support::Native,
        }
    }

    async fn create(&self, attrs: &Attrs) -> Result<Record> {
        let mut record = Record {
            id: Id::default(),
            data: attrs.iter().map(|(n, v)| (n.clone(), text(v))).collect(),
            expiry_date: OffsetDateTime::now_utc() + time::Duration::minutes(30),
        };
        self.store.create(&mut record).await.map_err(peer)?;
        Ok(record)
    }

    async fn load(&self, record: &Record) -> Result<()> {
        self.fetch(&record.id).await.map(drop)
    }

    async fn read_request(&self, record: &mut Record, sliding: bool) -> Result<()> {
        let loaded = self.fetch(&record.id).await?;
        if sliding {
            // `SessionManagerLayer::with_always_save(true)`: the only way its docs give to
            // slide an unchanged session's expiry; the whole record is saved.
            self.store.save(&loaded).await.map_err(peer)?;
        }
        Ok(())
    }

    async fn load_some(&self, _: &Record, _: &str) -> Result<()> {
        Err(peer("no partial read"))
    }

    async fn apply(&self, record: &mut Record, name: &str, value: &[u8]) -> Result<()> {
        record.data.insert(name.to_owned(), text(value));
        self.store.save(record).await.map_err(peer)
    }

    async fn cycle(&self, record: &mut Record, name: &str, value: &[u8]) -> Result<()> {
        let mut loaded = self.fetch(&record.id).await?;
        loaded.data.insert(name.to_owned(), text(value));
        self.store.save(&loaded).await.map_err(peer)?;
        *record = loaded;
        Ok(())
    }

    async fn rotate(&self, record: &mut Record) -> Result<()> {
        // As `cycle_id` then `save`: the old id is deleted, the record created under a new one.
        let old = std::mem::take(&mut record.id);
        self.store.delete(&old).await.map_err(peer)?;
        self.store.create(record).await.map_err(peer)
    }

    async fn names(&self, record: &Record) -> Result<Vec<String>> {
        Ok(self.fetch(&record.id).await?.data.into_keys().collect())
    }

    fn key(&self, record: &Record) -> String {
        record.id.to_string()
    }

    fn round_trips(&self) -> Option<u64> {
        None
    }
}
